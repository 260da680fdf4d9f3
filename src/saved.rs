//! What the bridge saves: of each toy only what the toy confirmed, or what
//! the user chose in the bridge itself, as the state file has it. The core
//! keeps each part of a toy with the concern that changes it and assembles
//! a [`Snapshot`] from them; the store writes it. It depends on neither.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::folotoy::{Settings, Sn, Value};
use crate::glance::TimeOfDay;
use crate::ha::entities::ToyKind;

/// A toy as the state file has it: one object of every part the core keeps
/// of it (see `bridge/core/toys.rs`, which splits and assembles it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToyState {
    pub settings: Settings,
    /// The role (1..7) Say speaks with.
    pub role: u8,
    /// The last text the toy accepted to speak (the Say entity).
    pub say_text: Option<String>,
    /// The last URL the toy accepted to play (the Play audio entity).
    pub play_url: Option<String>,
    pub last_command: Option<LastCommand>,
    /// What the child said last.
    pub heard: Option<Heard>,
    /// The toy's last answer, as far as it has arrived.
    pub answer: Option<Answer>,
    /// When the toy last published anything, in ms since the Unix epoch.
    pub last_activity_ms: Option<u64>,
    /// The media player's title: what the toy played or said last.
    pub player_title: Option<String>,
    /// Whether the toy's Quiet switch is on.
    pub quiet: bool,
    /// The volume announcements play at (0..100), 0 for the toy's own.
    pub announcement_volume: u8,
    /// The volume to put back once an announcement played at its own
    /// volume is over. Saved, so a restart mid-announcement still puts it back.
    pub volume_to_restore: Option<Value>,
    /// Whether it was in `folotoy.toys` when last saved: one taken off the
    /// list that was never heard from is a mistyped serial number.
    pub listed: bool,
    /// Where it talks; left out for a self-hosted toy, so that a state file
    /// from before cloud toys saves back as it was.
    #[serde(skip_serializing_if = "ToyKind::is_self_hosted")]
    pub kind: ToyKind,
    /// The name a cloud toy's relay gave it (a listed toy's is the
    /// configuration's, a discovered self-hosted toy has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its daily limit and bedtime; left out while all is as at first, so a
    /// state file from before them saves back as it was.
    #[serde(skip_serializing_if = "LimitsState::is_default")]
    pub limits: LimitsState,
}

/// A toy's daily limit and bedtime, and where they stand (see
/// `bridge/core/limits.rs`): kept over restarts, so a limit reached stays
/// reached and a bedtime begun stays begun.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsState {
    /// Minutes of Talk time today; 0 for no limit.
    pub daily_limit: u16,
    /// What the toy says when the limit is reached; `None`: the default.
    pub goodbye_line: Option<String>,
    pub bedtime: bool,
    pub bedtime_from: TimeOfDay,
    pub bedtime_until: TimeOfDay,
    /// What the toy says when bedtime begins; `None`: the default.
    pub bedtime_line: Option<String>,
    /// The day the limit was reached, if it was today (or the bridge has
    /// not yet seen midnight since).
    pub reached: Option<Reached>,
    /// What made the toy quiet, when the limit or bedtime did (not a parent).
    pub quiet_by: Option<QuietBy>,
    /// The last bedtime boundary taken (ms since the Unix epoch): one that
    /// passed while the bridge was stopped is taken at its start.
    pub boundary_ms: Option<u64>,
    /// The volume the toy had before the limit or bedtime turned it to 0.
    pub turned_down: Option<Value>,
    /// Whether its answers come from Home Assistant's brain (the last one
    /// was checked by the bridge before it was said).
    pub brain: bool,
}

/// The day a toy's daily limit was reached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reached {
    /// `2026-12-07`, the family's day.
    pub day: String,
    /// A parent let the toy talk on that day.
    pub lifted: bool,
}

/// What made a toy quiet by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuietBy {
    Limit,
    Bedtime,
}

impl Default for LimitsState {
    fn default() -> Self {
        LimitsState {
            daily_limit: 0,
            goodbye_line: None,
            bedtime: false,
            bedtime_from: TimeOfDay::hm(20, 0).expect("a time"),
            bedtime_until: TimeOfDay::hm(7, 0).expect("a time"),
            bedtime_line: None,
            reached: None,
            quiet_by: None,
            boundary_ms: None,
            turned_down: None,
            brain: false,
        }
    }
}

impl LimitsState {
    pub fn is_default(&self) -> bool {
        *self == LimitsState::default()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heard {
    pub text: String,
    pub recording_id: Option<i64>,
}

/// An answer arrives as one `voice_generated` per sentence (`order` 1..n,
/// same recordingId), possibly out of order or twice; it is kept by order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub recording_id: Option<i64>,
    pub role: Option<i64>,
    pub parts: BTreeMap<i64, Part>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub text: String,
    pub voice_url: Option<String>,
}

impl Answer {
    /// The sentences joined in order, as the language writes them (see `text::joined`).
    pub fn text(&self) -> String {
        crate::text::joined(self.parts.values().map(|p| p.text.as_str()))
    }

    pub fn voice_urls(&self) -> Vec<&str> {
        self.parts.values().filter_map(|p| p.voice_url.as_deref()).collect()
    }
}

impl Default for ToyState {
    fn default() -> Self {
        // Role 1 is the toy's default role in roles.json.
        ToyState {
            settings: Settings::default(),
            role: 1,
            say_text: None,
            play_url: None,
            last_command: None,
            heard: None,
            answer: None,
            last_activity_ms: None,
            player_title: None,
            quiet: false,
            announcement_volume: 0,
            volume_to_restore: None,
            listed: false,
            kind: ToyKind::SelfHosted,
            name: None,
            limits: LimitsState::default(),
        }
    }
}

/// What the bridge knows of the FoloToy server itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerState {
    /// The last "Reload roles" and how it ended, for the Roles reload sensor.
    pub roles_reload: Option<LastCommand>,
}

/// The Last command sensor: what was asked, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastCommand {
    /// The entity key the command came from (`volume`, `say`...).
    pub entity: String,
    /// The value asked for, as Home Assistant sent it.
    pub value: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pending,
    Ok,
    Refused,
    NoAnswer,
    Invalid,
    /// Not sent: the toy's Quiet switch was on.
    Quiet,
}

impl Outcome {
    pub fn key(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::NoAnswer => "no_answer",
            Outcome::Invalid => "invalid",
            Outcome::Quiet => "quiet",
        }
    }
}

/// Bumped when the format changes in a way older bridges cannot read.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    pub version: u32,
    /// The next msgId to use, so a restarted bridge does not take a late ack
    /// for an earlier command as the answer to a new one.
    pub next_msg_id: u32,
    pub toys: BTreeMap<Sn, ToyState>,
    /// Discovery topics that hold one of our configs in Home Assistant.
    /// Shared with the running bridge: with many toys it is most of the
    /// state, and a snapshot is taken for every confirmed change.
    pub discovery_topics: Arc<crate::ha::discovered::Discovered>,
    pub server: ServerState,
    /// Toys the user deleted in Home Assistant: kept out, even when they talk,
    /// until listed in `folotoy.toys` or let back in on the page.
    pub deleted_toys: BTreeSet<Sn>,
    /// When each of `deleted_toys` was deleted, in ms since the Unix epoch; one
    /// deleted by a bridge before this field has none. A field of its own, so
    /// that such a bridge still reads the file (it keeps `deleted_toys`).
    pub deleted_toys_at: BTreeMap<Sn, u64>,
    /// Watch words a parent added on the page (the configured ones are the
    /// configuration's).
    pub page_watch_words: Vec<crate::config::WatchWord>,
    /// The ready watch lists a parent turned on, and their phrases switched
    /// off. Not written while empty: a file without it reads and writes back
    /// as before.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub watch_lists: crate::watch_lists::Choices,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            version: VERSION,
            next_msg_id: 1,
            toys: BTreeMap::new(),
            discovery_topics: Arc::default(),
            server: ServerState::default(),
            deleted_toys: BTreeSet::new(),
            deleted_toys_at: BTreeMap::new(),
            page_watch_words: Vec::new(),
            watch_lists: Default::default(),
        }
    }
}
