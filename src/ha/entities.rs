//! Every entity a toy has in Home Assistant, described once.
//!
//! Discovery configs, command parsing and state rendering all read this
//! table, so adding an entity is one row here and one name per catalog.
//! A row's `key` is part of its `unique_id`: never rename one, or every user
//! gets a duplicate entity.

use crate::folotoy::Setting;

/// Names a toy entity. Its text (`as_str`) is in the entity's topics and
/// `unique_id`: never change one, or every user gets a duplicate entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Volume,
    RecordingMode,
    VolumeControl,
    PowerOnSound,
    LowBatteryAlarm,
    SleepAfter,
    Say,
    SpeakingRole,
    AnnouncementVolume,
    PlayAudio,
    LastCommand,
    Heard,
    Said,
    Conversation,
    LastActivity,
    Announce,
    PlayerState,
    PlayerTitle,
    PlayerVolume,
    PlayerMedia,
    Quiet,
    Alert,
    TalkTimeToday,
    ExchangesToday,
    DailyLimit,
    GoodbyeLine,
    AllowMoreTalk,
    Bedtime,
    BedtimeFrom,
    BedtimeUntil,
    BedtimeLine,
}

impl Key {
    pub const ALL: [Key; 31] = [
        Key::Volume,
        Key::RecordingMode,
        Key::VolumeControl,
        Key::PowerOnSound,
        Key::LowBatteryAlarm,
        Key::SleepAfter,
        Key::Say,
        Key::SpeakingRole,
        Key::AnnouncementVolume,
        Key::PlayAudio,
        Key::LastCommand,
        Key::Heard,
        Key::Said,
        Key::Conversation,
        Key::LastActivity,
        Key::Announce,
        Key::PlayerState,
        Key::PlayerTitle,
        Key::PlayerVolume,
        Key::PlayerMedia,
        Key::Quiet,
        Key::Alert,
        Key::TalkTimeToday,
        Key::ExchangesToday,
        Key::DailyLimit,
        Key::GoodbyeLine,
        Key::AllowMoreTalk,
        Key::Bedtime,
        Key::BedtimeFrom,
        Key::BedtimeUntil,
        Key::BedtimeLine,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Key::Volume => "volume",
            Key::RecordingMode => "recording_mode",
            Key::VolumeControl => "volume_control",
            Key::PowerOnSound => "power_on_sound",
            Key::LowBatteryAlarm => "low_battery_alarm",
            Key::SleepAfter => "sleep_after",
            Key::Say => "say",
            Key::SpeakingRole => "speaking_role",
            Key::AnnouncementVolume => "announcement_volume",
            Key::PlayAudio => "play_audio",
            Key::LastCommand => "last_command",
            Key::Heard => "heard",
            Key::Said => "said",
            Key::Conversation => "conversation",
            Key::LastActivity => "last_activity",
            Key::Announce => "announce",
            Key::PlayerState => "player_state",
            Key::PlayerTitle => "player_title",
            Key::PlayerVolume => "player_volume",
            Key::PlayerMedia => "player_media",
            Key::Quiet => "quiet",
            Key::Alert => "alert",
            Key::TalkTimeToday => "talk_time_today",
            Key::ExchangesToday => "exchanges_today",
            Key::DailyLimit => "daily_limit",
            Key::GoodbyeLine => "goodbye_line",
            Key::AllowMoreTalk => "allow_more_talk",
            Key::Bedtime => "bedtime",
            Key::BedtimeFrom => "bedtime_from",
            Key::BedtimeUntil => "bedtime_until",
            Key::BedtimeLine => "bedtime_line",
        }
    }

    /// The key a command topic names, if it is one.
    pub fn parse(text: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an entity does, which also fixes its Home Assistant platform.
///
/// Two enums, not one: a [`Key`] is a name (its text is in topics and unique
/// ids, and commands are parsed into it), a `Kind` is behaviour with the data
/// it needs (which setting, which options, which unit). Several keys share a
/// kind (Volume, Low-battery alarm and Sleep after are all `Number`s), and
/// [`TOY`] pairs each key with its kind once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A toy setting as a number.
    Number { setting: Setting, step: f64, mode: NumberMode, unit: Option<&'static str> },
    /// A toy setting chosen from labelled codes; labels come from the catalog.
    Select { setting: Setting, options: &'static [(&'static str, i64)] },
    /// A toy setting that is on or off.
    Switch { setting: Setting, on: i64, off: i64 },
    /// Text the toy speaks with its speaking role (`iwantplay` text).
    Say,
    /// A URL the toy plays (`iwantplay` url).
    PlayAudio,
    /// Which of the server's roles (1..7) speaks for Say. Kept by the bridge:
    /// FoloToy has no setting for it.
    SpeakingRole,
    /// While on, nothing makes the toy speak or play (a sleeping child's
    /// room); settings still go through. Kept by the bridge.
    Quiet,
    /// The volume announcements play at, 0 for the toy's own. Kept by the
    /// bridge, which sets it for the announcement and puts the toy's back.
    AnnouncementVolume,
    /// What the bridge last sent to the toy and how it ended.
    LastCommand,
    /// What the child said last (`recording_transcribed`).
    Heard,
    /// The toy's last answer, joined from its `voice_generated` sentences.
    Said,
    /// An event entity firing these event types, for automations: the
    /// Conversation entity (`heard`, `said`), the Alert entity (watch words).
    /// Its events are published as they happen, never retained.
    Event(&'static [&'static str]),
    /// When the toy last published anything.
    LastActivity,
    /// A notify entity: `notify.send_message` makes the toy speak.
    Announce,
    /// How much the toy talked today (see `crate::glance`), from the
    /// history: offered only while one is kept.
    Today(Today),
    /// A part of the toy's daily limit or bedtime (see `bridge/core/limits.rs`),
    /// kept by the bridge; offered only while a history is kept (the limit
    /// counts Talk time today, and both need the family's time zone).
    Limits(LimitsPart),
    /// One topic of the toy's media player. Home Assistant has no MQTT media
    /// player, so these rows make one config for the project's own `folotoy`
    /// custom component rather than an entity each.
    Player(PlayerPart),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Today {
    /// Minutes of conversation.
    TalkTime,
    /// What the child said, a sentence each.
    Exchanges,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitsPart {
    /// Minutes of Talk time today, 0 for no limit (a number).
    DailyLimit,
    /// What the toy says when the limit is reached (a text).
    GoodbyeLine,
    /// Lifts today's limit (a button).
    AllowMore,
    /// Whether bedtime is kept (a switch).
    Bedtime,
    /// When bedtime begins and ends (`HH:MM`, a text).
    From,
    Until,
    /// What the toy says when bedtime begins (a text).
    BedtimeLine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerPart {
    /// `playing` or `idle`.
    State,
    /// What is playing, or what the toy said last.
    Title,
    /// The toy's volume as 0..1, which is how Home Assistant's media players count.
    Volume,
    /// `play_media`: a URL (what Home Assistant's TTS resolves to) to play.
    Media,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumberMode {
    Slider,
    Box,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Category {
    Config,
    Diagnostic,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entity {
    pub key: Key,
    pub kind: Kind,
    pub icon: &'static str,
    pub category: Option<Category>,
    /// Home Assistant's device class, which picks icons, units and how a
    /// value is shown.
    pub device_class: Option<&'static str>,
}

/// The entities of one toy.
pub const TOY: &[Entity] = &[
    Entity {
        key: Key::Volume,
        kind: Kind::Number { setting: Setting::Volume, step: 1.0, mode: NumberMode::Slider, unit: Some("%") },
        icon: "mdi:volume-high",
        category: None,
        device_class: None,
    },
    Entity {
        key: Key::RecordingMode,
        kind: Kind::Select { setting: Setting::RecordType, options: &[("click", 1), ("hold", 2), ("continuous", 3)] },
        icon: "mdi:microphone-message",
        category: Some(Category::Config),
        device_class: None,
    },
    Entity {
        key: Key::VolumeControl,
        kind: Kind::Select { setting: Setting::VolumeControlType, options: &[("knob", 1), ("home_assistant", 2)] },
        icon: "mdi:knob",
        category: Some(Category::Config),
        device_class: None,
    },
    Entity {
        key: Key::PowerOnSound,
        kind: Kind::Switch { setting: Setting::OpenTipType, on: 1, off: 0 },
        icon: "mdi:bell-ring-outline",
        category: Some(Category::Config),
        device_class: None,
    },
    Entity {
        key: Key::LowBatteryAlarm,
        kind: Kind::Number { setting: Setting::VoltageAlarm, step: 0.05, mode: NumberMode::Box, unit: Some("V") },
        icon: "mdi:battery-alert-variant-outline",
        category: Some(Category::Config),
        device_class: Some("voltage"),
    },
    Entity {
        key: Key::SleepAfter,
        kind: Kind::Number { setting: Setting::SleepTriggerTime, step: 1.0, mode: NumberMode::Box, unit: Some("s") },
        icon: "mdi:sleep",
        category: Some(Category::Config),
        device_class: Some("duration"),
    },
    Entity { key: Key::Quiet, kind: Kind::Quiet, icon: "mdi:volume-off", category: None, device_class: None },
    Entity { key: Key::Say, kind: Kind::Say, icon: "mdi:account-voice", category: None, device_class: None },
    Entity {
        key: Key::SpeakingRole,
        kind: Kind::SpeakingRole,
        icon: "mdi:drama-masks",
        category: None,
        device_class: None,
    },
    Entity {
        key: Key::AnnouncementVolume,
        kind: Kind::AnnouncementVolume,
        icon: "mdi:bullhorn-variant-outline",
        category: Some(Category::Config),
        device_class: None,
    },
    Entity {
        key: Key::PlayAudio,
        kind: Kind::PlayAudio,
        icon: "mdi:music-box-outline",
        category: None,
        device_class: None,
    },
    Entity {
        key: Key::LastCommand,
        kind: Kind::LastCommand,
        icon: "mdi:message-reply-text-outline",
        category: Some(Category::Diagnostic),
        device_class: None,
    },
    Entity { key: Key::Heard, kind: Kind::Heard, icon: "mdi:ear-hearing", category: None, device_class: None },
    Entity { key: Key::Said, kind: Kind::Said, icon: "mdi:message-text-outline", category: None, device_class: None },
    Entity {
        key: Key::Conversation,
        kind: Kind::Event(EVENT_TYPES),
        icon: "mdi:chat-processing-outline",
        category: None,
        device_class: None,
    },
    Entity {
        key: Key::Alert,
        kind: Kind::Event(ALERT_EVENT_TYPES),
        icon: "mdi:bell-alert-outline",
        category: None,
        device_class: None,
    },
    Entity {
        key: Key::LastActivity,
        kind: Kind::LastActivity,
        icon: "mdi:clock-outline",
        category: Some(Category::Diagnostic),
        device_class: Some("timestamp"),
    },
    Entity {
        key: Key::TalkTimeToday,
        kind: Kind::Today(Today::TalkTime),
        icon: "mdi:timer-sand",
        category: None,
        device_class: Some("duration"),
    },
    Entity {
        key: Key::ExchangesToday,
        kind: Kind::Today(Today::Exchanges),
        icon: "mdi:forum-outline",
        category: None,
        device_class: None,
    },
    Entity {
        key: Key::DailyLimit,
        kind: Kind::Limits(LimitsPart::DailyLimit),
        icon: "mdi:timer-lock-outline",
        category: None,
        device_class: None,
    },
    Entity {
        key: Key::GoodbyeLine,
        kind: Kind::Limits(LimitsPart::GoodbyeLine),
        icon: "mdi:hand-wave-outline",
        category: Some(Category::Config),
        device_class: None,
    },
    Entity {
        key: Key::AllowMoreTalk,
        kind: Kind::Limits(LimitsPart::AllowMore),
        icon: "mdi:timer-plus-outline",
        category: None,
        device_class: None,
    },
    Entity {
        key: Key::Bedtime,
        kind: Kind::Limits(LimitsPart::Bedtime),
        icon: "mdi:weather-night",
        category: None,
        device_class: None,
    },
    Entity {
        key: Key::BedtimeFrom,
        kind: Kind::Limits(LimitsPart::From),
        icon: "mdi:bed-clock",
        category: None,
        device_class: None,
    },
    Entity {
        key: Key::BedtimeUntil,
        kind: Kind::Limits(LimitsPart::Until),
        icon: "mdi:weather-sunset-up",
        category: None,
        device_class: None,
    },
    Entity {
        key: Key::BedtimeLine,
        kind: Kind::Limits(LimitsPart::BedtimeLine),
        icon: "mdi:sleep",
        category: Some(Category::Config),
        device_class: None,
    },
    Entity {
        key: Key::Announce,
        kind: Kind::Announce,
        icon: "mdi:bullhorn-outline",
        category: None,
        device_class: None,
    },
    player(Key::PlayerState, PlayerPart::State),
    player(Key::PlayerTitle, PlayerPart::Title),
    player(Key::PlayerVolume, PlayerPart::Volume),
    player(Key::PlayerMedia, PlayerPart::Media),
];

const fn player(key: Key, part: PlayerPart) -> Entity {
    Entity { key, kind: Kind::Player(part), icon: "mdi:speaker", category: None, device_class: None }
}

/// Where a toy talks, which decides the entities it has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToyKind {
    /// On the family's own FoloToy server: every entity.
    #[default]
    SelfHosted,
    /// On FoloToy's cloud, relayed by the `folotoy` integration: only what
    /// its channel carries ([`CLOUD`]).
    Cloud,
}

/// The entities a cloud toy has: its channel carries what the child says,
/// the answers and notifications (text the toy speaks), nothing else; no
/// setting, no URL to play, no role or volume to speak with. Its media player
/// shows what it says and speaks text only: its config sends that to the
/// Announce entity (see `Discovery::media_player`), so it has no volume and
/// no media of its own.
pub const CLOUD: &[Key] = &[
    Key::Heard,
    Key::Said,
    Key::Conversation,
    Key::LastActivity,
    Key::LastCommand,
    Key::Say,
    Key::Announce,
    Key::Quiet,
    Key::Alert,
    Key::TalkTimeToday,
    Key::ExchangesToday,
    Key::DailyLimit,
    Key::GoodbyeLine,
    Key::AllowMoreTalk,
    Key::Bedtime,
    Key::BedtimeFrom,
    Key::BedtimeUntil,
    Key::BedtimeLine,
    Key::PlayerState,
    Key::PlayerTitle,
];

impl ToyKind {
    /// Whether a toy of this kind has the entity `key` names.
    pub fn has(self, key: Key) -> bool {
        match self {
            ToyKind::SelfHosted => true,
            ToyKind::Cloud => CLOUD.contains(&key),
        }
    }

    /// For the state file, which leaves the default out (older files load, and save back alike).
    pub fn is_self_hosted(&self) -> bool {
        *self == ToyKind::SelfHosted
    }
}

/// Device triggers: (type, subtype, event type). Home Assistant shows an
/// unknown pair as "subtype type": "child said", "toy said".
pub const TRIGGERS: &[(&str, &str, &str)] = &[("said", "child", "heard"), ("said", "toy", "said")];

/// The event types of the Conversation entity.
pub const EVENT_TYPES: &[&str] = &["heard", "said"];

/// The event types of the Alert entity: a watch word in what the child said,
/// or in what the toy said (see `crate::watch`); the daily limit reached
/// (see `bridge/core/limits.rs`).
pub const ALERT_EVENT_TYPES: &[&str] = &["child_said", "toy_said", "limit_reached"];

/// An announcement can be longer than a text entity; this bounds what one
/// `notify.send_message` can make the toy read out.
pub const MAX_ANNOUNCE: usize = 2000;

/// Home Assistant's text entities hold at most 255 characters.
pub const MAX_TEXT: usize = 255;

impl Entity {
    /// The entity a key names: every key has its row (a test checks).
    pub fn of(key: Key) -> &'static Entity {
        TOY.iter().find(|e| e.key == key).expect("a row for every key")
    }

    /// The entity a command topic names, if any.
    pub fn find(key: &str) -> Option<&'static Entity> {
        Key::parse(key).map(Entity::of)
    }

    /// The entity that shows a setting.
    pub fn for_setting(setting: Setting) -> &'static Entity {
        TOY.iter().find(|e| e.kind.setting() == Some(setting)).expect("every setting has an entity")
    }

    pub fn component(&self) -> &'static str {
        match self.kind {
            Kind::Number { .. } | Kind::AnnouncementVolume => "number",
            Kind::Select { .. } | Kind::SpeakingRole => "select",
            Kind::Switch { .. } | Kind::Quiet | Kind::Limits(LimitsPart::Bedtime) => "switch",
            Kind::Say | Kind::PlayAudio => "text",
            Kind::Limits(LimitsPart::DailyLimit) => "number",
            Kind::Limits(LimitsPart::AllowMore) => "button",
            Kind::Limits(_) => "text",
            Kind::LastCommand | Kind::Heard | Kind::Said | Kind::LastActivity | Kind::Today(_) => "sensor",
            Kind::Event(_) => "event",
            Kind::Announce => "notify",
            Kind::Player(_) => "media_player",
        }
    }

    /// Whether this entity shows `setting`: the media player shows the volume too.
    pub fn shows(&self, setting: Setting) -> bool {
        self.kind.setting() == Some(setting)
            || (setting == Setting::Volume && self.kind == Kind::Player(PlayerPart::Volume))
    }

    /// Whether Home Assistant can send to it.
    pub fn has_command(&self) -> bool {
        matches!(
            self.kind,
            Kind::Number { .. }
                | Kind::Select { .. }
                | Kind::Switch { .. }
                | Kind::Say
                | Kind::PlayAudio
                | Kind::SpeakingRole
                | Kind::AnnouncementVolume
                | Kind::Quiet
                | Kind::Announce
                | Kind::Limits(_)
                | Kind::Player(PlayerPart::Volume | PlayerPart::Media)
        )
    }

    /// Whether it reads a state topic (a notify entity has none).
    pub fn has_state(&self) -> bool {
        !matches!(self.kind, Kind::Announce | Kind::Limits(LimitsPart::AllowMore) | Kind::Player(PlayerPart::Media))
    }
}

impl Kind {
    pub fn setting(&self) -> Option<Setting> {
        match *self {
            Kind::Number { setting, .. } | Kind::Select { setting, .. } | Kind::Switch { setting, .. } => Some(setting),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, LANGUAGES};

    #[test]
    fn every_key_has_exactly_one_row() {
        for key in Key::ALL {
            assert_eq!(TOY.iter().filter(|e| e.key == key).count(), 1, "{key}");
        }
        assert_eq!(TOY.len(), Key::ALL.len());
    }

    #[test]
    fn a_cloud_toy_has_no_setting_no_url_no_role_no_volume_and_a_player_that_only_shows_what_it_says() {
        for e in TOY {
            let spoken_text_only = e.kind.setting().is_none()
                && !matches!(
                    e.kind,
                    Kind::PlayAudio
                        | Kind::SpeakingRole
                        | Kind::AnnouncementVolume
                        | Kind::Player(PlayerPart::Volume | PlayerPart::Media)
                );
            assert_eq!(ToyKind::Cloud.has(e.key), spoken_text_only, "{}", e.key);
            assert!(ToyKind::SelfHosted.has(e.key));
        }
    }

    #[test]
    fn every_setting_has_exactly_one_entity() {
        for s in Setting::ALL {
            assert_eq!(TOY.iter().filter(|e| e.kind.setting() == Some(s)).count(), 1, "{s}");
        }
    }

    #[test]
    fn every_entity_and_option_is_named_in_every_language() {
        for (code, _) in LANGUAGES {
            let cat = Catalog::load(code).unwrap();
            for e in TOY {
                assert_ne!(cat.entity(e.key.as_str()), e.key.as_str(), "{code} lacks entities.{}", e.key);
                if let Kind::Select { options, .. } = e.kind {
                    for (o, _) in options {
                        assert_ne!(cat.option(e.key.as_str(), o), *o, "{code} lacks options.{}.{o}", e.key);
                    }
                }
            }
        }
    }

    #[test]
    fn select_options_are_the_documented_codes() {
        for e in TOY {
            if let Kind::Select { setting, options } = e.kind {
                for (_, code) in options {
                    assert!(setting.check(*code as f64).is_ok(), "{}: {code}", e.key);
                }
            }
        }
    }
}
