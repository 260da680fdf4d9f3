//! The bridge's rules, as a state machine with no I/O.
//!
//! The runtime feeds one [`Input`] at a time with the current time and
//! carries out the [`Output`]: publishes, log lines, and whether to save.
//! Nothing here touches a socket or a clock, so every rule is a unit test.

use std::collections::{BTreeMap, HashSet};
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
use crate::ha::entities::{Entity, Key, Kind, ToyKind, TOY};
use crate::ha::topics::CloudPart;
use crate::ha::topics::{toy_node, SERVER};
use crate::ha::{self, CloudInbound, HaCommand, HaInbound, Media, OwnSetting, Topics, ToyCommand};
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
        /// When it arrived, by the wall clock: the page shows when a toy was
        /// deleted in Home Assistant.
        at: SystemTime,
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
    /// A command for a toy on Home Assistant's side (a cloud toy's notify,
    /// which the integration relays): sent at least once (QoS 1), as the
    /// commands to self-hosted toys on FoloToy's, where Home Assistant's
    /// states and events go at QoS 0.
    pub command: bool,
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
        let payload = payload.into();
        self.publish.push(Publish { side: Side::Ha, topic, payload, retain, at_most_once: false, command: false });
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
            command: false,
        });
    }

    fn folotoy(&mut self, topic: String, payload: Vec<u8>) {
        let side = Side::FoloToy;
        self.publish.push(Publish { side, topic, payload, retain: false, at_most_once: false, command: true });
    }

    /// A command for a cloud toy, to the integration that relays it.
    fn cloud_command(&mut self, topic: String, payload: Vec<u8>) {
        let side = Side::Ha;
        self.publish.push(Publish { side, topic, payload, retain: false, at_most_once: false, command: true });
    }

    fn log(&mut self, level: Level, topic: &str, message: impl Into<String>) {
        self.logs.push(Log { level, topic: topic.to_owned(), message: message.into() });
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Log> {
        self.logs.iter().filter(|l| l.level == Level::Warn)
    }
}

/// Which brokers are connected.
#[derive(Debug, Clone, Copy, Default)]
struct Connected {
    ha: bool,
    folotoy: bool,
}

/// What every concern decides with besides its own state: the configuration,
/// which brokers are up, the toys (each with every concern's part of it, see
/// [`toys::Toy`]: a concern changes its own part and reads the others), and
/// the hold on the states a talking toy changes with every sentence.
#[derive(Debug)]
struct Common {
    cfg: CoreConfig,
    connected: Connected,
    toys: toys::Toys,
    hold: Hold,
}

impl Common {
    fn cx<'a>(&'a mut self, now: Instant, out: &'a mut Output) -> Cx<'a> {
        Cx { cfg: &self.cfg, connected: self.connected, toys: &mut self.toys, hold: &mut self.hold, now, out }
    }
}

/// What a concern's method gets besides its own state: the common part
/// (see [`Common`]), the moment of the input, and the output it adds to.
struct Cx<'a> {
    cfg: &'a CoreConfig,
    connected: Connected,
    toys: &'a mut toys::Toys,
    hold: &'a mut Hold,
    now: Instant,
    out: &'a mut Output,
}

impl Cx<'_> {
    fn log(&mut self, level: Level, topic: &str, message: impl Into<String>) {
        self.out.log(level, topic, message);
    }

    fn discovery(&self) -> Discovery<'_> {
        let cfg = self.cfg;
        Discovery {
            topics: &cfg.topics,
            catalog: &cfg.catalog,
            roles: &cfg.roles,
            media_player: cfg.media_player,
            glance: cfg.glance.is_some(),
        }
    }

    fn publish(&mut self, sn: &Sn, key: Key) {
        self.publish_entity(sn, Entity::of(key));
    }

    /// States wait for Home Assistant: its connection publishes them all.
    fn publish_entity(&mut self, sn: &Sn, entity: &Entity) {
        if !self.connected.ha || !self.discovery().offers(entity) || !self.toys.toy(sn).kind().has(entity.key) {
            return;
        }
        let cfg = self.cfg;
        if let Some(payload) = ha::states::render(entity, &self.toys.toy(sn).state_view(), &cfg.catalog, &cfg.roles) {
            self.out.ha(cfg.topics.state(sn, entity.key.as_str()), payload, true);
        }
    }

    /// Publishes a state now, or once the [`Hold`] lets it.
    fn publish_held(&mut self, sn: &Sn, key: Key) {
        if self.hold.pass(sn, key, self.now) {
            self.publish(sn, key);
        }
    }

    /// Every state goes out now (a republish), the held ones with it.
    fn release_held(&mut self) {
        self.hold.clear();
    }

    /// The held states whose time came.
    fn publish_due(&mut self) {
        for (sn, key) in self.hold.due(self.now) {
            if self.toys.has(&sn) {
                self.publish(&sn, key);
            }
        }
    }
}

/// The bridge's rules: the common part and the concerns.
#[derive(Debug)]
pub struct Core {
    common: Common,
    concerns: Concerns,
}

/// The bridge's concerns, each owning its state (and its part of each toy,
/// see [`toys::Toy`]). `route.rs` passes each input to the concerns it is
/// about, and what one concern's decision means for another; the concerns'
/// files hold the decisions.
#[derive(Debug)]
struct Concerns {
    /// Commands sent to toys and waiting for their answers.
    commands: commands::Commands,
    /// What Home Assistant has of the discovery, and a republish under way.
    republishing: republish::Republishing,
    /// When each playing toy is guessed to be done.
    playing: player::Playing,
    /// The FoloToy server's roles reload.
    server: server::Server,
    /// Announcements played at their own volume.
    announcements: announcements::Announcements,
    /// What toys say, and the day their tallies count.
    talk: talk::Talk,
    /// The configured watch words and those a parent added on the page.
    watching: watching::Watching,
    /// The toys' daily limits and bedtimes.
    limits: limits::Limits,
}

impl Core {
    /// Builds the core from the configuration and the saved state. Toys that
    /// are no longer allowed are left out, so their discovery gets cleared.
    pub fn new(cfg: CoreConfig, saved: Snapshot) -> (Core, Vec<Log>) {
        let mut logs = Vec::new();
        let deleted = saved.deleted_toys.into_iter().map(|sn| {
            let at = saved.deleted_toys_at.get(&sn).copied();
            (sn, at)
        });
        let toys = toys::Toys::from_saved(&cfg, saved.toys, deleted.collect(), &mut logs);
        let watching = watching::Watching::new(&cfg.watch_words, saved.page_watch_words, saved.watch_lists, &mut logs);
        let concerns = Concerns {
            commands: commands::Commands::new(Pending::starting_at(saved.next_msg_id)),
            republishing: republish::Republishing::new(saved.discovery_topics),
            playing: Default::default(),
            server: server::Server::new(saved.server),
            announcements: Default::default(),
            talk: Default::default(),
            watching,
            limits: Default::default(),
        };
        let core = Core {
            common: Common { cfg, connected: Connected::default(), toys, hold: Hold::new(CONVERSATION_HOLD) },
            concerns,
        };
        (core, logs)
    }

    /// What to save: every toy (each concern's part of it), the discovery
    /// topics and what the concerns keep over a restart.
    pub fn snapshot(&self) -> Snapshot {
        let (toys, c) = (&self.common.toys, &self.concerns);
        Snapshot {
            next_msg_id: c.commands.next_msg_id(),
            toys: toys.iter().map(|(sn, t)| (sn.clone(), t.saved())).collect(),
            discovery_topics: c.republishing.published(),
            server: c.server.state().clone(),
            deleted_toys: toys.deleted().keys().cloned().collect(),
            deleted_toys_at: toys.deleted().iter().filter_map(|(sn, at)| Some((sn.clone(), (*at)?))).collect(),
            page_watch_words: c.watching.page().to_vec(),
            watch_lists: c.watching.lists().clone(),
            ..Snapshot::default()
        }
    }

    /// When the runtime must call again with [`Input::Tick`]; `None` means
    /// only new input can change anything, so the bridge sleeps.
    pub fn next_deadline(&self) -> Option<Instant> {
        let c = &self.concerns;
        [
            c.commands.next_deadline(),
            c.republishing.next_deadline(),
            c.playing.next_deadline(),
            c.server.next_deadline(),
            self.common.hold.next_deadline(),
            c.announcements.next_deadline(),
            c.talk.next_deadline(),
            c.limits.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn toys(&self) -> impl Iterator<Item = &Sn> {
        self.common.toys.sns()
    }

    /// Every toy with the name the user gave it, if any.
    pub fn named_toys(&self) -> impl Iterator<Item = (&Sn, Option<&str>)> {
        self.common.toys.iter().map(|(sn, t)| (sn, t.name()))
    }

    /// At start: today's sentences so far, from the history (what the bridge
    /// counted before it stopped), at wall time `at`, which the daily limits
    /// and bedtimes count from too (what passed while the bridge was stopped
    /// is taken now: the log lines say what).
    pub fn begin_day(
        &mut self,
        sentences: Vec<(String, u64, crate::history::LineKind)>,
        at: SystemTime,
        now: Instant,
    ) -> Vec<Log> {
        let mut out = Output::default();
        let cx = &mut self.common.cx(now, &mut out);
        self.concerns.talk.begin_day(cx, sentences, at);
        self.concerns.limits.begin(cx, &mut self.concerns.commands, at);
        out.logs
    }

    /// A parent deleted conversations (see [`Talk::forgotten`](talk::Talk)): the Heard
    /// and Said sensors showing what went are emptied, and with `today` (what the history
    /// keeps of today, when what went was of today) the day's tallies are counted anew.
    pub fn forgotten(
        &mut self,
        what: &crate::history::Forget,
        gone: &crate::history::Forgotten,
        today: Option<Vec<(String, u64, crate::history::LineKind)>>,
        at: SystemTime,
        now: Instant,
    ) -> Output {
        let mut out = Output::default();
        self.concerns.talk.forgotten(&mut self.common.cx(now, &mut out), what, gone, today, at);
        out
    }

    /// The toys deleted in Home Assistant and kept out, with when (ms since
    /// the Unix epoch), if known.
    pub fn kept_out(&self) -> impl Iterator<Item = (&Sn, Option<u64>)> {
        self.common.toys.deleted().iter().map(|(sn, at)| (sn, *at))
    }

    /// A parent lets a toy deleted in Home Assistant back in (see
    /// [`toys::let_back_in`]): it is back in Home Assistant at once. `Err`
    /// says why not, and nothing changes.
    pub fn let_back_in(&mut self, sn: &Sn, now: Instant) -> Result<Output, String> {
        let mut out = Output::default();
        self.concerns.let_back_in(&mut self.common.cx(now, &mut out), sn)?;
        Ok(out)
    }

    pub fn in_flight(&self) -> usize {
        self.concerns.commands.len()
    }

    pub fn handle(&mut self, input: Input, now: Instant) -> Output {
        let mut out = Output::default();
        let connected = &mut self.common.connected;
        match input {
            Input::HaUp => connected.ha = true,
            Input::HaDown => connected.ha = false,
            Input::FoloToyUp => connected.folotoy = true,
            Input::FoloToyDown => connected.folotoy = false,
            _ => {}
        }
        self.concerns.route(&mut self.common.cx(now, &mut out), input);
        out
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
mod cloud;
mod commands;
mod glance;
mod limits;
mod own_settings;
mod player;
mod republish;
mod route;
mod server;
mod talk;
#[cfg(test)]
mod testing;
mod toys;
mod view;
mod watching;

pub use player::{speaking_time, PLAY_GUESS};
pub use republish::CHUNK;
pub use toys::LET_BACK_IN;
pub use view::{KeptOut, RefusedToy, ToyView, View};
pub use watching::PAGE_WATCH_WORDS;

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
