//! Entity states as Home Assistant reads them from the state topics.

use super::entities::{Entity, Kind, LimitsPart, PlayerPart, Today, MAX_TEXT};
use crate::folotoy::{Setting, Settings};
use serde_json::json;

use crate::catalog::Catalog;
use crate::glance::{Tally, TimeOfDay};
use crate::saved::{Answer, Heard, LastCommand};
use crate::watch::{Hit, Speaker};

/// What Home Assistant's MQTT number, select and switch take as "unknown".
pub const UNKNOWN: &str = "None";

/// Home Assistant's recorder drops (with a warning) the attributes of a
/// state whose JSON is over 16 KiB, so each text attribute is capped in
/// bytes (Chinese takes three a character) and the voice URLs in number and
/// bytes: a Said state stays under 10 KiB however long the story.
pub const MAX_ATTRIBUTE_BYTES: usize = 4000;
const MAX_VOICE_URLS: usize = 16;

/// What a toy's entities show, read where the bridge keeps it: each part
/// with the concern that changes it, read here only.
#[derive(Debug, Clone, Copy)]
pub struct StateView<'a> {
    /// What the toy confirmed of its settings.
    pub settings: &'a Settings,
    /// The last text the toy accepted to speak (the Say entity).
    pub say_text: Option<&'a str>,
    /// The last URL the toy accepted to play (the Play audio entity).
    pub play_url: Option<&'a str>,
    pub last_command: Option<&'a LastCommand>,
    /// The role (1..7) Say speaks with.
    pub role: u8,
    /// The volume announcements play at (0..100), 0 for the toy's own.
    pub announcement_volume: u8,
    pub quiet: bool,
    pub heard: Option<&'a Heard>,
    pub answer: Option<&'a Answer>,
    pub today: Tally,
    /// When the toy last published anything, in ms since the Unix epoch.
    pub last_activity_ms: Option<u64>,
    pub playing: bool,
    /// The media player's title: what the toy played or said last.
    pub player_title: Option<&'a str>,
    pub limits: LimitsView<'a>,
}

/// What the daily limit's and bedtime's entities show.
#[derive(Debug, Clone, Copy)]
pub struct LimitsView<'a> {
    /// Minutes, 0 for none.
    pub daily_limit: u16,
    /// The lines the toy says: the parent's, else the default in the toy's language.
    pub goodbye_line: &'a str,
    pub bedtime: bool,
    pub from: TimeOfDay,
    pub until: TimeOfDay,
    pub bedtime_line: &'a str,
}

/// The state payload of `entity`, or `None` for entities that have no state
/// to publish (events fire once; notify has no state). Settings the toy
/// never confirmed are `None` (unknown), so Home Assistant never shows a guess.
pub fn render(entity: &Entity, toy: &StateView, catalog: &Catalog, roles: &[String]) -> Option<String> {
    let shown = match entity.kind {
        Kind::Number { setting, .. } => toy.settings.get(setting).map(|v| v.to_string()),
        Kind::Select { setting, options } => toy.settings.get(setting).and_then(|v| {
            let code = v.as_f64() as i64;
            options.iter().find(|(_, c)| *c == code).map(|(k, _)| catalog.option(entity.key.as_str(), k).to_owned())
        }),
        Kind::Switch { setting, on, .. } => {
            toy.settings.get(setting).map(|v| if v.as_f64() as i64 == on { "ON" } else { "OFF" }.to_owned())
        }
        Kind::SpeakingRole => roles.get(usize::from(toy.role).saturating_sub(1)).cloned(),
        Kind::AnnouncementVolume => Some(toy.announcement_volume.to_string()),
        Kind::Quiet => Some(if toy.quiet { "ON" } else { "OFF" }.to_owned()),
        // Empty until something was said or played, so the box a user types
        // into holds no "unknown" to delete first. Wrapped in JSON: an empty
        // retained payload would delete the retained state instead (Home
        // Assistant would then show unknown after its restart).
        Kind::Say => return Some(text_state(toy.say_text)),
        Kind::PlayAudio => return Some(text_state(toy.play_url)),
        Kind::LastCommand => Some(last_command(toy.last_command, catalog)),
        Kind::Heard => Some(heard(toy.heard)),
        Kind::Said => Some(said(toy.answer)),
        Kind::LastActivity => toy.last_activity_ms.map(rfc3339),
        Kind::Today(Today::TalkTime) => Some(toy.today.talk_minutes().to_string()),
        Kind::Today(Today::Exchanges) => Some(toy.today.exchanges().to_string()),
        Kind::Limits(part) => return limits(part, &toy.limits),
        Kind::Event(_) | Kind::Announce | Kind::Player(PlayerPart::Media) => return None,
        // The media player component reads plain values. A title or volume
        // not known yet is not published, as for Say: an empty retained
        // payload would only delete itself.
        Kind::Player(PlayerPart::State) => return Some(if toy.playing { "playing" } else { "idle" }.to_owned()),
        Kind::Player(PlayerPart::Title) => return toy.player_title.map(|t| truncate(t, MAX_TEXT)),
        Kind::Player(PlayerPart::Volume) => {
            return toy.settings.get(Setting::Volume).map(|v| (v.as_f64() / 100.0).to_string())
        }
    };
    Some(shown.unwrap_or_else(|| UNKNOWN.to_owned()))
}

/// The state of a part of the daily limit or bedtime; the button has none.
fn limits(part: LimitsPart, l: &LimitsView) -> Option<String> {
    Some(match part {
        LimitsPart::DailyLimit => l.daily_limit.to_string(),
        LimitsPart::GoodbyeLine => text_state(Some(l.goodbye_line)),
        LimitsPart::BedtimeLine => text_state(Some(l.bedtime_line)),
        LimitsPart::Bedtime => if l.bedtime { "ON" } else { "OFF" }.to_owned(),
        LimitsPart::From => text_state(Some(&l.from.to_string())),
        LimitsPart::Until => text_state(Some(&l.until.to_string())),
        LimitsPart::AllowMore => return None,
    })
}

/// The Alert event when a toy's daily limit is reached: how long it talked
/// today, and the limit.
pub fn limit_event(talk_minutes: u64, daily_limit: u16) -> String {
    json!({ "event_type": "limit_reached", "talk_minutes": talk_minutes, "daily_limit": daily_limit }).to_string()
}

/// A text entity's state: `{"text": ...}`, read by its `value_template`.
fn text_state(text: Option<&str>) -> String {
    json!({ "text": text.unwrap_or_default() }).to_string()
}

/// A JSON sensor before anything happened: `null` renders as "None", which
/// Home Assistant shows as unknown ("" would be a blank state).
fn nothing_yet() -> String {
    json!({ "summary": null }).to_string()
}

fn heard(h: Option<&Heard>) -> String {
    let Some(h) = h else { return nothing_yet() };
    json!({
        "summary": truncate(&h.text, MAX_TEXT),
        "text": truncate_bytes(&h.text, MAX_ATTRIBUTE_BYTES),
        "recording_id": h.recording_id,
    })
    .to_string()
}

fn said(a: Option<&Answer>) -> String {
    let Some(a) = a else { return nothing_yet() };
    let text = a.text();
    json!({
        "summary": truncate(&text, MAX_TEXT),
        "text": truncate_bytes(&text, MAX_ATTRIBUTE_BYTES),
        "recording_id": a.recording_id,
        "role": a.role,
        "voice_urls": last_voice_urls(a),
        "order": a.parts.keys().next_back(),
        "parts": a.parts.len(),
    })
    .to_string()
}

/// The Conversation event for what the child said.
pub fn heard_event(h: &Heard) -> String {
    json!({ "event_type": "heard", "text": truncate_bytes(&h.text, MAX_ATTRIBUTE_BYTES), "recording_id": h.recording_id })
        .to_string()
}

/// The Conversation event for one sentence of the toy's answer. The whole
/// answer so far is the Said sensor's: carried in every event, a story
/// would be recorded over and over.
pub fn said_event(a: &Answer, order: i64) -> String {
    let part = a.parts.get(&order);
    json!({
        "event_type": "said",
        "text": part.map(|p| truncate_bytes(p.text.trim(), MAX_ATTRIBUTE_BYTES)),
        "recording_id": a.recording_id,
        "order": order,
        "role": a.role,
        "voice_url": part.and_then(|p| p.voice_url.as_deref()),
    })
    .to_string()
}

/// A sentence as it was said: by whom, and where it sits in the conversation.
#[derive(Debug, Clone, Copy)]
pub struct Spoken<'a> {
    pub speaker: Speaker,
    pub sentence: &'a str,
    pub recording_id: Option<i64>,
    /// For the toy's sentences: the sentence's place in the answer, and the role speaking.
    pub order: Option<i64>,
    pub role: Option<i64>,
}

/// The Alert event's `category` for the parent's own watch words.
pub const OWN_WORDS: &str = "own";

/// A sentence that holds watch words, for the Alert entity.
#[derive(Debug, Clone)]
pub struct Alert<'a> {
    pub spoken: Spoken<'a>,
    /// The watch words found, in the configured order.
    pub phrases: Vec<Hit<'a>>,
    /// An answer Home Assistant's chat endpoint held back (see `Core::screen`):
    /// the child never heard it.
    pub held_back: bool,
}

/// The Alert event: `child_said` or `toy_said`, with `phrase` (the first
/// watch word found) and its `category` (a ready list's key, `own` for the
/// parent's words), `phrases` (all of them that fit the attribute budget) and
/// their `categories` (each once), `sentence` (capped like the Conversation
/// event's text) and the `recording_id`; the toy's also with `order` and `role`.
pub fn alert_event(a: &Alert) -> String {
    let mut budget = MAX_ATTRIBUTE_BYTES;
    let phrases: Vec<&str> = a
        .phrases
        .iter()
        .map(|h| h.phrase)
        .take_while(|p| budget.checked_sub(p.len()).map(|left| budget = left).is_some())
        .collect();
    fn category<'a>(h: &Hit<'a>) -> &'a str {
        h.category.unwrap_or(OWN_WORDS)
    }
    let mut categories: Vec<&str> = Vec::new();
    for c in a.phrases.iter().map(category) {
        if !categories.contains(&c) {
            categories.push(c);
        }
    }
    let s = &a.spoken;
    let mut event = json!({
        "event_type": s.speaker.event_type(),
        "phrase": a.phrases.first().map(|h| h.phrase),
        "category": a.phrases.first().map(category),
        "phrases": phrases,
        "categories": categories,
        "sentence": truncate_bytes(s.sentence.trim(), MAX_ATTRIBUTE_BYTES),
        "recording_id": s.recording_id,
    });
    if s.speaker == Speaker::Toy {
        event["order"] = s.order.into();
        event["role"] = s.role.into();
    }
    if a.held_back {
        event["held_back"] = true.into();
    }
    event.to_string()
}

/// `2026-11-25T12:00:00.000+00:00`: what a timestamp sensor takes.
pub fn rfc3339(ms: u64) -> String {
    let (secs, ms) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = crate::dates::civil(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}+00:00", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The Last command sensor's JSON: `summary` is its state (kept under Home
/// Assistant's 255-character limit), the rest are attributes.
pub fn last_command(cmd: Option<&LastCommand>, catalog: &Catalog) -> String {
    let Some(cmd) = cmd else {
        return nothing_yet();
    };
    let mut json = serde_json::to_value(cmd).expect("plain struct");
    json["summary"] = truncate(&last_command_summary(cmd, catalog), MAX_TEXT).into();
    json.to_string()
}

/// "Volume 80: refused by the toy", in the user's language: the Last command
/// sensor's state and what the page shows.
pub fn last_command_summary(cmd: &LastCommand, catalog: &Catalog) -> String {
    let name = catalog.entity(&cmd.entity);
    let mut summary = format!("{name} {}: {}", cmd.value, catalog.outcome(cmd.outcome.key()));
    if let Some(reason) = &cmd.reason {
        summary.push_str(&format!(" ({reason})"));
    }
    summary
}

/// The newest voice URLs that fit the attribute budget, oldest first.
fn last_voice_urls(a: &Answer) -> Vec<&str> {
    let mut budget = MAX_ATTRIBUTE_BYTES;
    let mut urls: Vec<&str> = a
        .voice_urls()
        .into_iter()
        .rev()
        .take(MAX_VOICE_URLS)
        .take_while(|u| budget.checked_sub(u.len()).map(|left| budget = left).is_some())
        .collect();
    urls.reverse();
    urls
}

/// Cuts `s` to at most `max` bytes at a character boundary, marking the cut
/// with an ellipsis (counted in).
pub fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Cuts `s` to at most `max` characters, marking the cut with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folotoy::{Setting, Value};
    use crate::saved::{Outcome, ToyState};

    /// What a toy shows when the bridge kept `toy` (as the state file has it).
    fn view_of(toy: &ToyState) -> StateView<'_> {
        StateView {
            settings: &toy.settings,
            say_text: toy.say_text.as_deref(),
            play_url: toy.play_url.as_deref(),
            last_command: toy.last_command.as_ref(),
            role: toy.role,
            announcement_volume: toy.announcement_volume,
            quiet: toy.quiet,
            heard: toy.heard.as_ref(),
            answer: toy.answer.as_ref(),
            today: Tally::default(),
            last_activity_ms: toy.last_activity_ms,
            playing: false,
            player_title: toy.player_title.as_deref(),
            limits: LimitsView {
                daily_limit: toy.limits.daily_limit,
                goodbye_line: toy.limits.goodbye_line.as_deref().unwrap_or("Bye"),
                bedtime: toy.limits.bedtime,
                from: toy.limits.bedtime_from,
                until: toy.limits.bedtime_until,
                bedtime_line: toy.limits.bedtime_line.as_deref().unwrap_or("Good night"),
            },
        }
    }

    #[test]
    fn unconfirmed_settings_are_unknown_and_confirmed_ones_are_labelled() {
        let cat = Catalog::load("en").unwrap();
        let mut toy = ToyState::default();
        let show = |toy: &ToyState, key| render(Entity::find(key).unwrap(), &view_of(toy), &cat, &cat.roles).unwrap();
        assert_eq!(show(&toy, "volume"), "None");
        assert_eq!(show(&toy, "recording_mode"), "None");
        toy.settings.set(Setting::Volume, Value::Int(30));
        toy.settings.set(Setting::RecordType, Value::Int(3));
        toy.settings.set(Setting::OpenTipType, Value::Int(0));
        toy.settings.set(Setting::VoltageAlarm, Value::Float(3.6));
        assert_eq!(show(&toy, "volume"), "30");
        assert_eq!(show(&toy, "recording_mode"), "Continuous conversation");
        assert_eq!(show(&toy, "power_on_sound"), "OFF");
        assert_eq!(show(&toy, "low_battery_alarm"), "3.6");
        assert_eq!(show(&toy, "speaking_role"), "Role 1");
        let say = render(Entity::find("say").unwrap(), &view_of(&toy), &cat, &cat.roles);
        assert_eq!(say.as_deref(), Some(r#"{"text":""}"#), "nothing said yet: an empty box");
    }

    #[test]
    fn timestamps_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123+00:00");
        assert_eq!(rfc3339(1_795_608_000_000), "2026-11-25T12:00:00.000+00:00");
    }

    #[test]
    fn a_long_answer_is_cut_to_255_in_the_state_and_kept_in_the_attributes() {
        let cat = Catalog::load("en").unwrap();
        let mut toy = ToyState::default();
        let mut a = Answer { recording_id: Some(3), role: Some(1), ..Answer::default() };
        for order in 1..=40 {
            let p = crate::saved::Part { text: format!(" Sentence {order}."), voice_url: None };
            a.parts.insert(order, p);
        }
        toy.answer = Some(a);
        let out = render(Entity::find("said").unwrap(), &view_of(&toy), &cat, &cat.roles).unwrap();
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json["summary"].as_str().unwrap().chars().count(), 255);
        assert!(json["text"].as_str().unwrap().ends_with("Sentence 40."));
        assert_eq!(json["parts"], 40);
    }

    #[test]
    fn a_story_of_256_chinese_sentences_stays_within_what_home_assistant_records() {
        let cat = Catalog::load("en").unwrap();
        let mut toy = ToyState::default();
        let mut a = Answer { recording_id: Some(3), role: Some(1), ..Answer::default() };
        for order in 1..=256 {
            let url = format!("http://192.168.52.164:8082/voice-{order:032}.mp3");
            let p = crate::saved::Part { text: "小兔子住在洞里。".repeat(3), voice_url: Some(url) };
            a.parts.insert(order, p);
        }
        toy.answer = Some(a.clone());
        let state = render(Entity::find("said").unwrap(), &view_of(&toy), &cat, &cat.roles).unwrap();
        // Home Assistant reads every key of this JSON as an attribute.
        assert!(state.len() < 10 * 1024, "{} bytes of attributes", state.len());
        let json: serde_json::Value = serde_json::from_str(&state).unwrap();
        assert!(json["text"].as_str().unwrap().ends_with('…'), "cut where a character ends");
        let urls = json["voice_urls"].as_array().unwrap();
        assert_eq!(urls.len(), MAX_VOICE_URLS);
        assert!(urls.last().unwrap().as_str().unwrap().contains("0256"), "the newest are kept");
        let event = said_event(&a, 256);
        assert!(event.len() < 1024, "an event carries its sentence, not the story: {event}");
    }

    #[test]
    fn cutting_to_bytes_never_splits_a_character() {
        assert_eq!(truncate_bytes("short", 10), "short");
        let cut = truncate_bytes("兔兔兔兔", 8);
        assert!(cut.len() <= 8, "{cut}");
        assert_eq!(cut, "兔…");
    }

    #[test]
    fn last_command_summary_stays_under_255_characters() {
        let cat = Catalog::load("en").unwrap();
        let cmd = LastCommand {
            entity: "say".into(),
            value: "x".repeat(255),
            outcome: Outcome::Refused,
            msg_id: Some(4),
            reason: None,
        };
        let json: serde_json::Value = serde_json::from_str(&last_command(Some(&cmd), &cat)).unwrap();
        assert_eq!(json["summary"].as_str().unwrap().chars().count(), 255);
        assert_eq!(json["outcome"], "refused");
        assert_eq!(json["msg_id"], 4);
    }
}
