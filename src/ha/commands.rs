//! Turning a command payload from Home Assistant into what the toy is asked,
//! or a setting the bridge keeps for it.

use super::entities::{Entity, Kind, LimitsPart, PlayerPart, MAX_ANNOUNCE, MAX_TEXT};
use crate::catalog::Catalog;
use crate::folotoy::settings::RangeError;
use crate::folotoy::{Setting, Value};
use crate::glance::TimeOfDay;

/// What Home Assistant asked of a toy's entity, checked against its range:
/// something the toy is asked, or a setting the bridge keeps for it.
#[derive(Debug, Clone, PartialEq)]
pub enum HaCommand {
    Toy(ToyCommand),
    Own(OwnSetting),
    Limits(LimitSetting),
}

/// A part of a toy's daily limit or bedtime, kept by the bridge (see
/// `bridge/core/limits.rs`).
#[derive(Debug, Clone, PartialEq)]
pub enum LimitSetting {
    /// Minutes of Talk time today; 0 for none.
    DailyLimit(u16),
    /// The line said when the limit is reached; `None` for the default.
    GoodbyeLine(Option<String>),
    /// Lifts today's limit.
    AllowMore,
    Bedtime(bool),
    BedtimeFrom(TimeOfDay),
    BedtimeUntil(TimeOfDay),
    /// The line said when bedtime begins; `None` for the default.
    BedtimeLine(Option<String>),
}

/// The longest daily limit, in minutes: twelve hours.
pub const MAX_DAILY_LIMIT: u16 = 720;

/// What a toy is asked to set, say or play: sent to the toy.
#[derive(Debug, Clone, PartialEq)]
pub enum ToyCommand {
    Set(Setting, Value),
    Say(String),
    PlayAudio(String),
    /// The media player's `play_media`.
    PlayMedia(Media),
}

/// A setting the bridge keeps for a toy itself: nothing is asked of the toy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OwnSetting {
    /// The role (1..7) Say speaks with.
    SpeakingRole(u8),
    /// 0..100; 0 is the toy's own volume.
    AnnouncementVolume(u8),
    Quiet(bool),
}

/// What the media player was asked to play, as the `folotoy` integration
/// sends it: the URL already resolved by Home Assistant.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    pub url: String,
    /// What a TTS URL says, when Home Assistant knows it: the player's title,
    /// and how long the toy is shown speaking.
    pub text: Option<String>,
    /// Play at this volume, then put the toy's volume back.
    pub volume: Option<Value>,
    /// Home Assistant asked for an announcement (`tts.speak` does): it plays
    /// at the Announcement volume when it brings none of its own.
    pub announce: bool,
}

/// The media player's command payload (see `custom_components/folotoy`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaPayload {
    url: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    volume: Option<f64>,
    #[serde(default)]
    announce: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    #[error("{0:?} is not a number")]
    NotANumber(String),
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error("{value:?} is not one of {options:?}")]
    NotAnOption { value: String, options: Vec<String> },
    #[error("{0:?} is neither ON nor OFF")]
    NotOnOff(String),
    #[error("text is empty")]
    Empty,
    #[error("text has {0} characters; at most {1} are allowed")]
    TooLong(usize, usize),
    #[error("{0:?} is not an http:// or https:// URL (a path starting with / means Home Assistant has no internal URL set: Settings > System > Network)")]
    NotUrl(String),
    #[error("play_media payload is not {{\"url\": URL, \"text\": ..., \"volume\": 0..1}} or a URL: {0}")]
    BadMedia(String),
    #[error(transparent)]
    NotATime(#[from] crate::glance::NotATime),
    #[error("{0:?} is not PRESS")]
    NotPress(String),
    #[error("this entity takes no commands")]
    ReadOnly,
}

/// Parses `payload` sent to `entity`'s command topic. Select options are
/// compared with the labels of the user's language, which is what Home
/// Assistant sends; the option keys (`click`, `knob`...) are accepted too, so
/// automations keep working when the language changes.
pub fn parse(entity: &Entity, payload: &str, catalog: &Catalog, roles: &[String]) -> Result<HaCommand, CommandError> {
    let p = payload.trim();
    let command = match entity.kind {
        Kind::Number { setting, .. } => {
            let x: f64 = p.parse().map_err(|_| CommandError::NotANumber(short(p)))?;
            ToyCommand::Set(setting, setting.check(x)?)
        }
        Kind::Select { setting, options } => {
            let code = option(entity, options, p, catalog)?;
            ToyCommand::Set(setting, setting.check(code as f64)?)
        }
        Kind::Switch { setting, on, off } => {
            let code = match p {
                "ON" => on,
                "OFF" => off,
                _ => return Err(CommandError::NotOnOff(short(p))),
            };
            ToyCommand::Set(setting, setting.check(code as f64)?)
        }
        Kind::Say => ToyCommand::Say(text(payload, MAX_TEXT)?),
        Kind::Announce => ToyCommand::Say(text(payload, MAX_ANNOUNCE)?),
        Kind::PlayAudio => ToyCommand::PlayAudio(url(p, MAX_TEXT)?),
        Kind::Player(PlayerPart::Volume) => ToyCommand::Set(Setting::Volume, player_volume(p)?),
        Kind::Player(PlayerPart::Media) => ToyCommand::PlayMedia(media(p)?),
        Kind::Quiet | Kind::AnnouncementVolume | Kind::SpeakingRole => {
            return own_setting(entity.kind, p, roles).map(HaCommand::Own)
        }
        Kind::Limits(part) => return limit_setting(part, payload).map(HaCommand::Limits),
        Kind::LastCommand
        | Kind::Heard
        | Kind::Said
        | Kind::Event(_)
        | Kind::LastActivity
        | Kind::Today(_)
        | Kind::Player(PlayerPart::State | PlayerPart::Title) => return Err(CommandError::ReadOnly),
    };
    Ok(HaCommand::Toy(command))
}

/// A setting the bridge keeps itself, from its entity's payload.
fn own_setting(kind: Kind, p: &str, roles: &[String]) -> Result<OwnSetting, CommandError> {
    match kind {
        Kind::Quiet => match p {
            "ON" => Ok(OwnSetting::Quiet(true)),
            "OFF" => Ok(OwnSetting::Quiet(false)),
            _ => Err(CommandError::NotOnOff(short(p))),
        },
        Kind::AnnouncementVolume => {
            let x: f64 = p.parse().map_err(|_| CommandError::NotANumber(short(p)))?;
            // The toy's own volume range, 0 meaning "the toy's own volume".
            Ok(OwnSetting::AnnouncementVolume(Setting::Volume.check(x)?.as_f64() as u8))
        }
        _ => roles
            .iter()
            .position(|name| name == p)
            .or_else(|| p.parse::<usize>().ok().filter(|n| (1..=roles.len()).contains(n)).map(|n| n - 1))
            .map(|i| OwnSetting::SpeakingRole(i as u8 + 1))
            .ok_or_else(|| CommandError::NotAnOption { value: short(p), options: roles.to_vec() }),
    }
}

/// A part of the daily limit or bedtime, from its entity's payload. A line
/// left empty is the default line again.
fn limit_setting(part: LimitsPart, payload: &str) -> Result<LimitSetting, CommandError> {
    let p = payload.trim();
    let line = || -> Result<Option<String>, CommandError> {
        match text(payload, MAX_TEXT) {
            Ok(line) => Ok(Some(line.trim().to_owned())),
            Err(CommandError::Empty) => Ok(None),
            Err(e) => Err(e),
        }
    };
    Ok(match part {
        LimitsPart::DailyLimit => {
            let x: f64 = p.parse().map_err(|_| CommandError::NotANumber(short(p)))?;
            if !(0.0..=f64::from(MAX_DAILY_LIMIT)).contains(&x) || x.fract() != 0.0 {
                let (setting, max, value) = ("daily_limit", i64::from(MAX_DAILY_LIMIT), short(p));
                return Err(RangeError::Int { setting, min: 0, max, value }.into());
            }
            LimitSetting::DailyLimit(x as u16)
        }
        LimitsPart::GoodbyeLine => LimitSetting::GoodbyeLine(line()?),
        LimitsPart::BedtimeLine => LimitSetting::BedtimeLine(line()?),
        LimitsPart::AllowMore if p == "PRESS" => LimitSetting::AllowMore,
        LimitsPart::AllowMore => return Err(CommandError::NotPress(short(p))),
        LimitsPart::Bedtime => match p {
            "ON" => LimitSetting::Bedtime(true),
            "OFF" => LimitSetting::Bedtime(false),
            _ => return Err(CommandError::NotOnOff(short(p))),
        },
        LimitsPart::From => LimitSetting::BedtimeFrom(p.parse()?),
        LimitsPart::Until => LimitSetting::BedtimeUntil(p.parse()?),
    })
}

/// A select's option, by its key or its name in the catalog's language.
fn option(entity: &Entity, options: &[(&str, i64)], p: &str, catalog: &Catalog) -> Result<i64, CommandError> {
    let key = entity.key.as_str();
    options.iter().find(|(k, _)| p == *k || p == catalog.option(key, k)).map(|(_, code)| *code).ok_or_else(|| {
        CommandError::NotAnOption {
            value: short(p),
            options: options.iter().map(|(k, _)| catalog.option(key, k).to_owned()).collect(),
        }
    })
}

/// What the media player asks to play: the integration sends JSON; a bare URL is
/// taken too, for scripts.
fn media(p: &str) -> Result<Media, CommandError> {
    let m: MediaPayload = if p.starts_with('{') {
        serde_json::from_str(p).map_err(|e| CommandError::BadMedia(short(&e.to_string())))?
    } else {
        MediaPayload { url: p.to_owned(), text: None, volume: None, announce: false }
    };
    let text = m.text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let volume = m.volume.map(|v| player_volume(&v.to_string())).transpose()?;
    Ok(Media { url: url(m.url.trim(), MAX_ANNOUNCE)?, text, volume, announce: m.announce })
}

/// A media player volume (0..1) as the toy's 0..100; the range check
/// refuses the rest.
fn player_volume(p: &str) -> Result<Value, CommandError> {
    let x: f64 = p.parse().map_err(|_| CommandError::NotANumber(short(p)))?;
    let percent = if (0.0..=1.0).contains(&x) { (x * 100.0).round() } else { x * 100.0 };
    Ok(Setting::Volume.check(percent)?)
}

fn url(s: &str, max: usize) -> Result<String, CommandError> {
    let url = text(s, max)?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(CommandError::NotUrl(short(&url)));
    }
    Ok(url)
}

fn text(s: &str, max: usize) -> Result<String, CommandError> {
    let n = s.chars().count();
    if s.trim().is_empty() {
        Err(CommandError::Empty)
    } else if n > max {
        Err(CommandError::TooLong(n, max))
    } else {
        Ok(s.to_owned())
    }
}

/// Keeps a warning readable when the payload was huge.
fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(key: &str, payload: &str) -> Result<HaCommand, CommandError> {
        let cat = Catalog::load("en").unwrap();
        parse(Entity::find(key).unwrap(), payload, &cat, &cat.roles)
    }

    fn toy(command: ToyCommand) -> Result<HaCommand, CommandError> {
        Ok(HaCommand::Toy(command))
    }

    fn own(setting: OwnSetting) -> Result<HaCommand, CommandError> {
        Ok(HaCommand::Own(setting))
    }

    #[test]
    fn each_entity_turns_its_payload_into_a_request() {
        assert_eq!(run("volume", "30"), toy(ToyCommand::Set(Setting::Volume, Value::Int(30))));
        assert_eq!(run("volume", "30.0"), toy(ToyCommand::Set(Setting::Volume, Value::Int(30))));
        assert_eq!(run("recording_mode", "Hold to talk"), toy(ToyCommand::Set(Setting::RecordType, Value::Int(2))));
        assert_eq!(run("recording_mode", "continuous"), toy(ToyCommand::Set(Setting::RecordType, Value::Int(3))));
        assert_eq!(
            run("volume_control", "Home Assistant"),
            toy(ToyCommand::Set(Setting::VolumeControlType, Value::Int(2)))
        );
        assert_eq!(run("power_on_sound", "OFF"), toy(ToyCommand::Set(Setting::OpenTipType, Value::Int(0))));
        assert_eq!(run("low_battery_alarm", "3.6"), toy(ToyCommand::Set(Setting::VoltageAlarm, Value::Float(3.6))));
        assert_eq!(run("sleep_after", "600"), toy(ToyCommand::Set(Setting::SleepTriggerTime, Value::Int(600))));
        assert_eq!(run("say", "Dinner is ready"), toy(ToyCommand::Say("Dinner is ready".into())));
        assert_eq!(run("play_audio", "http://h/a.mp3"), toy(ToyCommand::PlayAudio("http://h/a.mp3".into())));
        assert_eq!(run("speaking_role", "Role 3"), own(OwnSetting::SpeakingRole(3)));
        assert_eq!(run("speaking_role", "7"), own(OwnSetting::SpeakingRole(7)));
        let long = "word ".repeat(300);
        assert_eq!(run("announce", &long), toy(ToyCommand::Say(long.clone())));
        assert_eq!(run("player_volume", "0.3"), toy(ToyCommand::Set(Setting::Volume, Value::Int(30))));
        assert_eq!(run("player_volume", "1"), toy(ToyCommand::Set(Setting::Volume, Value::Int(100))));
        let tts = r#"{"url": "http://ha.local:8123/api/tts_proxy/abc.mp3", "text": "Dinner!", "announce": true}"#;
        let media = |url: &str, text: Option<&str>, volume: Option<i64>, announce: bool| {
            toy(ToyCommand::PlayMedia(Media {
                url: url.into(),
                text: text.map(Into::into),
                volume: volume.map(Value::Int),
                announce,
            }))
        };
        assert_eq!(
            run("player_media", tts),
            media("http://ha.local:8123/api/tts_proxy/abc.mp3", Some("Dinner!"), None, true)
        );
        let loud = r#"{"url": "http://h/a.mp3", "volume": 0.6, "announce": true}"#;
        assert_eq!(run("player_media", loud), media("http://h/a.mp3", None, Some(60), true));
        assert_eq!(run("announcement_volume", "60"), own(OwnSetting::AnnouncementVolume(60)));
        assert_eq!(run("announcement_volume", "0.0"), own(OwnSetting::AnnouncementVolume(0)));
        assert_eq!(run("player_media", "https://h/a.mp3"), media("https://h/a.mp3", None, None, false));
    }

    #[test]
    fn media_player_commands_that_cannot_play_are_refused_with_a_reason() {
        assert!(matches!(run("player_volume", "1.5"), Err(CommandError::Range(_))));
        assert!(matches!(run("player_volume", "-0.1"), Err(CommandError::Range(_))));
        assert!(matches!(run("player_volume", "loud"), Err(CommandError::NotANumber(_))));
        // Home Assistant without an internal URL hands out paths, which a toy cannot fetch.
        let relative = r#"{"url": "/api/tts_proxy/abc.mp3"}"#;
        let err = run("player_media", relative).unwrap_err();
        assert!(matches!(err, CommandError::NotUrl(_)));
        assert!(err.to_string().contains("internal URL"), "{err}");
        assert!(matches!(run("player_media", "{\"url\": 1"), Err(CommandError::BadMedia(_))));
        assert!(matches!(run("player_media", r#"{"media_id": "http://h/a.mp3"}"#), Err(CommandError::BadMedia(_))));
        let loud = r#"{"url": "http://h/a.mp3", "volume": 1.5}"#;
        assert!(matches!(run("player_media", loud), Err(CommandError::Range(_))));
        assert!(matches!(run("announcement_volume", "101"), Err(CommandError::Range(_))));
        assert!(matches!(run("announcement_volume", "loud"), Err(CommandError::NotANumber(_))));
        assert_eq!(run("player_state", "playing"), Err(CommandError::ReadOnly));
    }

    #[test]
    fn out_of_range_and_malformed_values_are_refused_with_a_reason() {
        assert!(matches!(run("volume", "120"), Err(CommandError::Range(_))));
        assert!(matches!(run("volume", "loud"), Err(CommandError::NotANumber(_))));
        assert!(matches!(run("volume", "NaN"), Err(CommandError::Range(_))));
        assert!(matches!(run("sleep_after", "10"), Err(CommandError::Range(_))));
        assert!(matches!(run("recording_mode", "Shout"), Err(CommandError::NotAnOption { .. })));
        assert!(matches!(run("power_on_sound", "on"), Err(CommandError::NotOnOff(_))));
        assert_eq!(run("say", "   "), Err(CommandError::Empty));
        assert_eq!(run("say", &"a".repeat(256)), Err(CommandError::TooLong(256, 255)));
        assert!(matches!(run("play_audio", "file:///etc/passwd"), Err(CommandError::NotUrl(_))));
        assert!(matches!(run("speaking_role", "8"), Err(CommandError::NotAnOption { .. })));
        assert_eq!(run("last_command", "x"), Err(CommandError::ReadOnly));
    }

    #[test]
    fn the_daily_limit_and_bedtime_take_minutes_a_press_on_off_times_of_day_and_lines() {
        let limit = |s: LimitSetting| Ok(HaCommand::Limits(s));
        let at = |h, m| TimeOfDay::hm(h, m).unwrap();
        assert_eq!(run("daily_limit", "90"), limit(LimitSetting::DailyLimit(90)));
        assert_eq!(run("daily_limit", "0.0"), limit(LimitSetting::DailyLimit(0)));
        assert_eq!(run("allow_more_talk", "PRESS"), limit(LimitSetting::AllowMore));
        assert_eq!(run("bedtime", "ON"), limit(LimitSetting::Bedtime(true)));
        assert_eq!(run("bedtime_from", "21:30"), limit(LimitSetting::BedtimeFrom(at(21, 30))));
        assert_eq!(run("bedtime_until", "07:00:00"), limit(LimitSetting::BedtimeUntil(at(7, 0))));
        assert_eq!(run("goodbye_line", " Bye! "), limit(LimitSetting::GoodbyeLine(Some("Bye!".into()))));
        assert_eq!(run("bedtime_line", ""), limit(LimitSetting::BedtimeLine(None)), "empty: the default again");
        for bad in ["721", "-1", "1.5", "NaN"] {
            assert!(matches!(run("daily_limit", bad), Err(CommandError::Range(_))), "{bad}");
        }
        assert!(matches!(run("daily_limit", "lots"), Err(CommandError::NotANumber(_))));
        assert!(matches!(run("allow_more_talk", "ON"), Err(CommandError::NotPress(_))));
        assert!(matches!(run("bedtime", "yes"), Err(CommandError::NotOnOff(_))));
        let err = run("bedtime_from", "25:00").unwrap_err();
        assert!(matches!(err, CommandError::NotATime(_)) && err.to_string().contains("HH:MM"), "{err}");
        assert_eq!(run("goodbye_line", &"a".repeat(256)), Err(CommandError::TooLong(256, 255)));
    }

    #[test]
    fn a_huge_payload_is_shortened_in_the_reason() {
        let err = run("volume", &"9".repeat(5000)).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
    }
}
