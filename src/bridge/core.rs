//! The bridge's rules, as a state machine with no I/O.
//!
//! The runtime feeds one [`Input`] at a time with the current time and
//! carries out the [`Output`]: publishes, log lines, and whether to save.
//! Nothing here touches a socket or a clock, so every rule is a unit test.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::hold::Hold;
use super::pending::{slot_of, Pending, Sent, Slot, Waiting};
use crate::catalog::Catalog;
use crate::config::WatchWord;
use crate::folotoy::{self, Command, Inbound, Play, Setting, Settings, Sn, ToyEvent, Value};
use crate::glance::Zone;
use crate::ha::discovered::Discovered;
use crate::ha::discovery::Discovery;
use crate::ha::entities::{Entity, Key, Kind, TOY};
use crate::ha::topics::{toy_node, SERVER};
use crate::ha::{self, HaInbound, Media, Request, Topics};
use crate::saved::{Answer, Heard, LastCommand, Outcome, Part, ServerState, Snapshot, ToyState};
use crate::watch::{Speaker, WatchWords};

/// Home Assistant re-subscribes right after its birth message; publishing a
/// moment later makes sure it is listening (the delay zigbee2mqtt uses too).
pub const REPUBLISH_DELAY: Duration = Duration::from_secs(2);

/// How many refused serial numbers are remembered so each is warned about
/// once; past that a flood of made-up sns costs no memory.
const REFUSED_MEMORY: usize = 1024;

/// Bounds one answer's memory: a real answer has a handful of sentences.
const MAX_ANSWER_PARTS: usize = 256;

/// How often a conversation sensor may change (see [`Hold`]); the same
/// second as the Last activity sensor.
const CONVERSATION_HOLD: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub topics: Topics,
    pub catalog: Catalog,
    /// Names of roles 1..7, as the Speaking role select shows them.
    pub roles: Vec<String>,
    /// Configured toys and the names the user gave them.
    pub toys: Vec<(Sn, Option<String>)>,
    pub allow_unknown_toys: bool,
    pub max_toys: usize,
    pub command_timeout: Duration,
    /// Whether toys get a media player (needs the `folotoy` integration).
    pub media_player: bool,
    /// Phrases that fire a toy's Alert event when said (`watch_words`);
    /// the page can add more (see `watching.rs`).
    pub watch_words: Vec<WatchWord>,
    /// Where the family's days begin, for the day-at-a-glance sensors;
    /// `None` when no history is kept, and toys then have no such sensors.
    pub glance: Option<Zone>,
}

impl CoreConfig {
    /// Whether the user listed `sn` in `folotoy.toys`.
    fn lists(&self, sn: &Sn) -> bool {
        self.toys.iter().any(|(listed, _)| listed == sn)
    }
}

/// One thing that happened, for the core to decide on.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Connected (again) to Home Assistant's broker: everything is published
    /// anew, because a broker without persistence forgot it all.
    HaUp,
    /// Lost Home Assistant's broker: publishing waits for [`Input::HaUp`],
    /// which publishes everything, instead of piling up meanwhile.
    HaDown,
    FoloToyUp,
    FoloToyDown,
    FoloToy {
        topic: String,
        msg: Inbound,
        /// When it arrived, by the wall clock: the "Last activity" sensor
        /// shows it, and `Instant` cannot be turned into a date.
        at: SystemTime,
    },
    Ha {
        topic: String,
        msg: HaInbound,
    },
    /// Time passed: overdue acks and a scheduled republish are handled.
    Tick,
    /// The runtime published the last [`Output`] with `more` set: the next
    /// part of a republish.
    Continue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Ha,
    FoloToy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub side: Side,
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    /// Sent at most once (MQTT QoS 0) instead of at least once (QoS 1): the
    /// Conversation entity's events. The bridge's sessions are clean, so
    /// QoS 1 could not bring back an event lost with a dropped link (neither
    /// rumqttc nor the broker keeps it for the next connection); it would
    /// only cost the broker two more packets per sentence. States and
    /// commands stay QoS 1, as the discovery configs say.
    pub at_most_once: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warn,
}

/// A line for the log: always names the topic it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    pub level: Level,
    pub topic: String,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Output {
    pub publish: Vec<Publish>,
    pub logs: Vec<Log>,
    /// What the user set or a toy confirmed changed: call [`Core::snapshot`]
    /// and store it now.
    pub save: bool,
    /// Only what the toys report changed (conversations, activity), which a
    /// chatty toy changes with every sentence: store it soon, batched.
    pub save_soon: bool,
    /// A republish is not finished: publish this, then call again with
    /// [`Input::Continue`].
    pub more: bool,
    /// Sentences for the conversation history (the page).
    pub history: Vec<(Sn, crate::history::Line)>,
}

impl Output {
    fn ha(&mut self, topic: String, payload: impl Into<Vec<u8>>, retain: bool) {
        self.publish.push(Publish { side: Side::Ha, topic, payload: payload.into(), retain, at_most_once: false });
    }

    /// Sent once, at most once, never retained: an event of the Conversation
    /// or Alert entity (it cannot fire again when Home Assistant reconnects),
    /// or a screening verdict (for one request).
    fn event(&mut self, topic: String, payload: String) {
        self.publish.push(Publish {
            side: Side::Ha,
            topic,
            payload: payload.into(),
            retain: false,
            at_most_once: true,
        });
    }

    fn folotoy(&mut self, topic: String, payload: Vec<u8>) {
        self.publish.push(Publish { side: Side::FoloToy, topic, payload, retain: false, at_most_once: false });
    }

    fn log(&mut self, level: Level, topic: &str, message: impl Into<String>) {
        self.logs.push(Log { level, topic: topic.to_owned(), message: message.into() });
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Log> {
        self.logs.iter().filter(|l| l.level == Level::Warn)
    }
}

#[derive(Debug)]
pub struct Core {
    cfg: CoreConfig,
    toys: toys::Toys,
    pending: Pending,
    ha_up: bool,
    folotoy_up: bool,
    /// What Home Assistant has of the discovery, and a republish under way.
    republishing: republish::Republishing,
    /// When each playing toy is guessed to be done.
    playing: player::Playing,
    /// The FoloToy server's roles reload.
    server: server::Server,
    hold: Hold,
    /// Announcements played at their own volume.
    announcements: announcements::Announcements,
    /// The day the toys' tallies count (see `glance.rs`).
    today: Option<glance::Today>,
    /// The configured watch words and those a parent added on the page.
    watching: watching::Watching,
}

impl Core {
    /// Builds the core from the configuration and the saved state. Toys that
    /// are no longer allowed are left out, so their discovery gets cleared.
    pub fn new(cfg: CoreConfig, saved: Snapshot) -> (Core, Vec<Log>) {
        let mut logs = Vec::new();
        let mut saved_toys = saved.toys;
        // Listing a deleted toy brings it back.
        let mut deleted = saved.deleted_toys;
        deleted.retain(|sn| !cfg.lists(sn));
        let mut toys = BTreeMap::new();
        for (sn, name) in &cfg.toys {
            let state = ToyState { listed: true, ..saved_toys.remove(sn).unwrap_or_default() };
            toys.insert(sn.clone(), toys::Toy { name: name.clone(), state });
        }
        if cfg.allow_unknown_toys {
            for (sn, mut state) in saved_toys {
                // Listed once, taken off the list, and never heard from: a
                // mistyped serial number, not a toy that would come back.
                if std::mem::take(&mut state.listed) && state.last_activity_ms.is_none() {
                    logs.push(Log {
                        level: Level::Info,
                        topic: cfg.topics.state(&sn, "#"),
                        message: format!("saved toy {sn} left out: no longer in folotoy.toys and never heard from"),
                    });
                    continue;
                }
                if toys.len() >= cfg.max_toys {
                    logs.push(Log {
                        level: Level::Warn,
                        topic: cfg.topics.state(&sn, "#"),
                        message: format!("saved toy {sn} left out: folotoy.max_toys ({}) reached", cfg.max_toys),
                    });
                    continue;
                }
                // Ids in Home Assistant are lower case: a case twin of a toy
                // already here would take over its entities.
                if let Some(twin) = toys.keys().find(|k| k.ha_id() == sn.ha_id()) {
                    logs.push(Log {
                        level: Level::Warn,
                        topic: cfg.topics.state(&sn, "#"),
                        message: format!("saved toy {sn} left out: toy {twin} differs from it only in case"),
                    });
                    continue;
                }
                toys.insert(sn, toys::Toy { name: None, state });
            }
        }
        for (sn, toy) in &mut toys {
            for err in toy.state.settings.retain_valid() {
                logs.push(Log {
                    level: Level::Warn,
                    topic: cfg.topics.state(sn, "#"),
                    message: format!("saved setting dropped: {err}"),
                });
            }
            if toy.state.role == 0 || usize::from(toy.state.role) > cfg.roles.len() {
                toy.state.role = 1;
            }
            if let Some(cmd) = &mut toy.state.last_command {
                if cmd.outcome == Outcome::Pending {
                    cmd.outcome = Outcome::NoAnswer;
                    cmd.reason = Some("the bridge restarted before the toy answered".into());
                }
            }
        }
        let watching = watching::Watching::new(&cfg.watch_words, saved.page_watch_words, &mut logs);
        let core = Core {
            cfg,
            toys: toys::Toys::new(toys, deleted),
            pending: Pending::starting_at(saved.next_msg_id),
            republishing: republish::Republishing::new(saved.discovery_topics),
            ha_up: false,
            folotoy_up: false,
            playing: Default::default(),
            server: server::Server::new(saved.server),
            hold: Hold::new(CONVERSATION_HOLD),
            announcements: Default::default(),
            today: None,
            watching,
        };
        (core, logs)
    }

    /// What to save: every toy's confirmed state and the discovery topics.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            next_msg_id: self.pending.next_msg_id(),
            toys: self.toys.iter().map(|(sn, t)| (sn.clone(), t.state.clone())).collect(),
            discovery_topics: self.republishing.published(),
            server: self.server.state().clone(),
            deleted_toys: self.toys.deleted().clone(),
            page_watch_words: self.watching.page().to_vec(),
            ..Snapshot::default()
        }
    }

    /// When the runtime must call again with [`Input::Tick`]; `None` means
    /// only new input can change anything, so the bridge sleeps.
    pub fn next_deadline(&self) -> Option<Instant> {
        let playing = self.playing.next_deadline();
        let roles = self.server.next_deadline();
        let held = self.hold.next_deadline();
        let announcing = self.announcements.next_deadline();
        let midnight = self.today.as_ref().map(|t| t.ends);
        [self.pending.next_deadline(), self.republishing.next_deadline(), playing, roles, held, announcing, midnight]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn toys(&self) -> impl Iterator<Item = &Sn> {
        self.toys.sns()
    }

    /// Every toy with the name the user gave it, if any.
    pub fn named_toys(&self) -> impl Iterator<Item = (&Sn, Option<&str>)> {
        self.toys.iter().map(|(sn, t)| (sn, t.name.as_deref()))
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    pub fn handle(&mut self, input: Input, now: Instant) -> Output {
        let mut out = Output::default();
        match input {
            Input::HaUp => {
                self.ha_up = true;
                self.publish_all(&mut out);
            }
            Input::HaDown => {
                self.ha_up = false;
                self.republishing.stop();
            }
            Input::FoloToyUp => {
                self.folotoy_up = true;
                self.publish_link(&mut out);
                // Volumes that announcements could not put back before.
                let owed: Vec<Sn> = self
                    .toys
                    .iter()
                    .filter(|(sn, t)| t.state.volume_to_restore.is_some() && !self.announcements.has(sn))
                    .map(|(sn, _)| sn.clone())
                    .collect();
                for sn in owed {
                    self.restore_volume(&sn, now, &mut out);
                }
            }
            Input::FoloToyDown => {
                self.folotoy_up = false;
                self.publish_link(&mut out);
            }
            Input::Ha { topic, msg } => self.on_ha(&topic, msg, now, &mut out),
            Input::FoloToy { topic, msg, at } => self.on_folotoy(&topic, msg, now, at, &mut out),
            Input::Tick => self.on_tick(now, &mut out),
            Input::Continue => self.publish_more(&mut out),
        }
        out
    }

    fn on_tick(&mut self, now: Instant, out: &mut Output) {
        if self.republishing.due(now) {
            self.publish_all(out);
        }
        if self.today.as_ref().is_some_and(|t| t.ends <= now) {
            self.next_day(now, out);
        }
        for msg_id in self.pending.expired(now) {
            self.finish(msg_id, Outcome::NoAnswer, now, out);
        }
        self.roles_overdue(now, out);
        self.stop_playing(now, out);
        for (sn, key) in self.hold.due(now) {
            if self.toys.has(&sn) {
                self.publish_key(&sn, key, out);
            }
        }
        for sn in self.announcements.over(now) {
            self.restore_volume(&sn, now, out);
        }
    }

    fn publish_key(&self, sn: &Sn, key: Key, out: &mut Output) {
        self.publish_state(sn, Entity::of(key), out);
    }

    fn toy_mut(&mut self, sn: &Sn) -> &mut ToyState {
        self.toys.state_mut(sn).expect("checked by the caller")
    }

    /// States wait for Home Assistant: its connection publishes them all.
    fn publish_state(&self, sn: &Sn, entity: &Entity, out: &mut Output) {
        if !self.ha_up || !self.discovery().offers(entity) {
            return;
        }
        let toy = self.toys.state(sn);
        if let Some(payload) = ha::states::render(entity, toy, &self.cfg.catalog, &self.cfg.roles) {
            out.ha(self.cfg.topics.state(sn, entity.key.as_str()), payload, true);
        }
    }
}

/// Takes the toys whose entry is due out of `map`.
fn take_due<V>(map: &mut BTreeMap<Sn, V>, is_due: impl Fn(&V) -> bool) -> Vec<Sn> {
    let due: Vec<Sn> = map.iter().filter(|(_, v)| is_due(v)).map(|(sn, _)| sn.clone()).collect();
    for sn in &due {
        map.remove(sn);
    }
    due
}

mod announcements;
mod commands;
mod conversations;
mod glance;
mod player;
mod republish;
mod route;
mod server;
mod toys;
mod view;
mod watching;

pub use player::{speaking_time, PLAY_GUESS};
pub use republish::CHUNK;
pub use view::{Refused, ToyView, View};
pub use watching::PAGE_WATCH_WORDS;

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
