//! The bridge's rules, as a state machine with no I/O.
//!
//! The runtime feeds one [`Input`] at a time with the current time and
//! carries out the [`Output`]: publishes, log lines, and whether to save.
//! Nothing here touches a socket or a clock, so every rule is a unit test.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::hold::Hold;
use super::pending::{slot_of, Pending, Sent, Slot, Waiting};
use crate::catalog::Catalog;
use crate::folotoy::{self, Command, Inbound, Play, Setting, Settings, Sn, ToyEvent, Value};
use crate::ha::discovery::Discovery;
use crate::ha::entities::{Entity, Kind, TOY};
use crate::ha::topics::{toy_node, SERVER};
use crate::ha::{self, HaInbound, Media, Request, Topics};
use crate::saved::{Answer, Heard, LastCommand, Outcome, Part, ServerState, Snapshot, ToyState};

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
}

impl Output {
    fn ha(&mut self, topic: String, payload: impl Into<Vec<u8>>, retain: bool) {
        self.publish.push(Publish { side: Side::Ha, topic, payload: payload.into(), retain, at_most_once: false });
    }

    /// An event of the Conversation entity: never retained, so it cannot
    /// fire again when Home Assistant reconnects.
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
struct Toy {
    /// The name the user configured; discovered toys have none.
    name: Option<String>,
    state: ToyState,
}

#[derive(Debug)]
pub struct Core {
    cfg: CoreConfig,
    toys: BTreeMap<Sn, Toy>,
    pending: Pending,
    next_msg_id: u32,
    /// Discovery topics that hold a config of ours, so stale ones are cleared.
    /// Shared with the snapshots being saved (copied only when it changes
    /// while one is still being written).
    published: Arc<BTreeSet<String>>,
    ha_up: bool,
    folotoy_up: bool,
    republish_at: Option<Instant>,
    refused: HashSet<Sn>,
    /// When each playing toy is guessed to be done.
    playing_until: BTreeMap<Sn, Instant>,
    /// Toys whose discovery is still to publish, and the configs published
    /// before this round (those not published again are cleared at the end).
    to_publish: Option<(std::collections::VecDeque<Sn>, Arc<BTreeSet<String>>)>,
    server: ServerState,
    /// The `load_roles_config` waiting for its configAck: msgId and deadline.
    roles_in_flight: Option<(u32, Instant)>,
    hold: Hold,
    /// Toys deleted in Home Assistant (see `on_deleted_in_ha`).
    deleted: BTreeSet<Sn>,
    /// Watched configs the bridge emptied itself, until their echo arrives.
    self_emptied: HashSet<String>,
    /// Announcements played at their own volume, per toy.
    announcing: BTreeMap<Sn, Announcing>,
}

/// Where an announcement at its own volume stands (see `Core::announce`).
#[derive(Debug)]
enum Announcing {
    /// Its volume is sent (this msgId); the announcement follows the answer.
    Volume { msg_id: u32, then: Waiting },
    /// The announcement is sent (this msgId).
    Media { msg_id: u32 },
    /// The toy is guessed to play it until then; the volume goes back after.
    Until(Instant),
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
            toys.insert(sn.clone(), Toy { name: name.clone(), state });
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
                toys.insert(sn, Toy { name: None, state });
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
        let core = Core {
            cfg,
            toys,
            pending: Pending::default(),
            next_msg_id: saved.next_msg_id.max(1),
            published: saved.discovery_topics,
            ha_up: false,
            folotoy_up: false,
            republish_at: None,
            refused: HashSet::new(),
            playing_until: BTreeMap::new(),
            to_publish: None,
            server: saved.server,
            roles_in_flight: None,
            hold: Hold::new(CONVERSATION_HOLD),
            deleted,
            self_emptied: HashSet::new(),
            announcing: BTreeMap::new(),
        };
        (core, logs)
    }

    /// What to save: every toy's confirmed state and the discovery topics.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            next_msg_id: self.next_msg_id,
            toys: self.toys.iter().map(|(sn, t)| (sn.clone(), t.state.clone())).collect(),
            discovery_topics: self.published.clone(),
            server: self.server.clone(),
            deleted_toys: self.deleted.clone(),
            ..Snapshot::default()
        }
    }

    /// When the runtime must call again with [`Input::Tick`]; `None` means
    /// only new input can change anything, so the bridge sleeps.
    pub fn next_deadline(&self) -> Option<Instant> {
        let playing = self.playing_until.values().min().copied();
        let roles = self.roles_in_flight.map(|(_, deadline)| deadline);
        let held = self.hold.next_deadline();
        let announcing = self
            .announcing
            .values()
            .filter_map(|a| match a {
                Announcing::Until(t) => Some(*t),
                _ => None,
            })
            .min();
        [self.pending.next_deadline(), self.republish_at, playing, roles, held, announcing].into_iter().flatten().min()
    }

    pub fn toys(&self) -> impl Iterator<Item = &Sn> {
        self.toys.keys()
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
                self.to_publish = None;
            }
            Input::FoloToyUp => {
                self.folotoy_up = true;
                self.publish_link(&mut out);
                // Volumes that announcements could not put back before.
                let owed: Vec<Sn> = self
                    .toys
                    .iter()
                    .filter(|(sn, t)| t.state.volume_to_restore.is_some() && !self.announcing.contains_key(*sn))
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
        if self.republish_at.is_some_and(|t| t <= now) {
            self.republish_at = None;
            self.publish_all(out);
        }
        for msg_id in self.pending.expired(now) {
            self.finish(msg_id, Outcome::NoAnswer, now, out);
        }
        if let Some((msg_id, _)) = self.roles_in_flight.filter(|(_, deadline)| *deadline <= now) {
            self.roles_in_flight = None;
            let secs = self.cfg.command_timeout.as_secs_f64();
            out.log(
                Level::Warn,
                folotoy::topics::CONFIG,
                format!("no answer from the FoloToy server to load_roles_config (msgId {msg_id}) within {secs} s"),
            );
            self.set_roles(Outcome::NoAnswer, msg_id, Some(format!("waited {secs} s")), out);
        }
        let done: Vec<Sn> = self.playing_until.iter().filter(|(_, t)| **t <= now).map(|(sn, _)| sn.clone()).collect();
        for sn in done {
            self.playing_until.remove(&sn);
            if let Some(toy) = self.toys.get_mut(&sn) {
                toy.state.playing = false;
                self.publish_key(&sn, "player_state", out);
            }
        }
        for (sn, key) in self.hold.due(now) {
            if self.toys.contains_key(&sn) {
                self.publish_key(&sn, key, out);
            }
        }
        let over: Vec<Sn> = self
            .announcing
            .iter()
            .filter(|(_, a)| matches!(a, Announcing::Until(t) if *t <= now))
            .map(|(sn, _)| sn.clone())
            .collect();
        for sn in over {
            self.announcing.remove(&sn);
            self.restore_volume(&sn, now, out);
        }
    }

    /// Shows the toy as playing `title` for about `length`.
    fn playing(&mut self, sn: &Sn, title: String, length: Duration, now: Instant, out: &mut Output) {
        let toy = self.toy_mut(sn);
        let was_playing = std::mem::replace(&mut toy.playing, true);
        toy.player_title = Some(title);
        self.playing_until.insert(sn.clone(), now + length);
        if !was_playing {
            self.publish_key(sn, "player_state", out);
        }
        self.publish_held(sn, "player_title", now, out);
    }

    fn on_ha(&mut self, topic: &str, msg: HaInbound, now: Instant, out: &mut Output) {
        match msg {
            HaInbound::Status { online: true } => {
                out.log(Level::Info, topic, "Home Assistant is online: publishing everything again shortly");
                self.republish_at.get_or_insert(now + REPUBLISH_DELAY);
            }
            HaInbound::Status { online: false } => out.log(Level::Info, topic, "Home Assistant went offline"),
            HaInbound::Command { sn, key, payload } => self.on_command(topic, &sn, &key, &payload, now, out),
            // Our own config coming back, or one we emptied ourselves.
            HaInbound::Discovery { emptied: false, .. } => {}
            HaInbound::Discovery { node, emptied: true } => {
                if self.self_emptied.remove(topic) {
                    return;
                }
                // Mid-republish, what was published before counts too.
                let republishing = self.to_publish.as_ref().is_some_and(|(_, before)| before.contains(topic));
                if self.published.contains(topic) || republishing {
                    self.on_deleted_in_ha(topic, &node, out);
                }
            }
        }
    }

    /// The user deleted a toy's device in Home Assistant, which emptied its
    /// configs. A toy that appeared by itself is forgotten and kept out, or
    /// it would come back with the next republish or sentence; a listed toy
    /// stays (the configuration says so), with a warning saying how.
    fn on_deleted_in_ha(&mut self, topic: &str, node: &str, out: &mut Output) {
        let Some(sn) = self.toys.keys().find(|sn| toy_node(sn) == node).cloned() else { return };
        if self.cfg.lists(&sn) {
            out.log(
                Level::Warn,
                topic,
                format!(
                    "toy {sn} was deleted in Home Assistant but is listed in folotoy.toys: it comes back when Home \
                     Assistant or the bridge restarts; take it off the list to keep it away"
                ),
            );
            return;
        }
        out.log(
            Level::Info,
            topic,
            format!("toy {sn} was deleted in Home Assistant: forgotten, and kept out until listed in folotoy.toys"),
        );
        self.toys.remove(&sn);
        self.pending.forget(&sn);
        self.playing_until.remove(&sn);
        self.announcing.remove(&sn);
        self.deleted.insert(sn);
        let topics = &self.cfg.topics;
        let mut gone: BTreeSet<String> =
            self.published.iter().filter(|t| topics.node_of(t) == Some(node)).cloned().collect();
        if let Some((_, before)) = self.to_publish.as_mut() {
            gone.extend(before.iter().filter(|t| topics.node_of(t) == Some(node)).cloned());
            Arc::make_mut(before).retain(|t| topics.node_of(t) != Some(node));
        }
        for t in gone {
            Arc::make_mut(&mut self.published).remove(&t);
            self.empty_config(t, out);
        }
        out.save = true;
    }

    /// Empties a discovery config of ours. The broker sends a watched one
    /// back to the bridge: that echo is remembered here so it is never taken
    /// for the user deleting the toy (which could by then be back).
    fn empty_config(&mut self, topic: String, out: &mut Output) {
        if self.cfg.topics.parse_deletion(&topic).is_some() {
            self.self_emptied.insert(topic.clone());
        }
        out.ha(topic, Vec::new(), true);
    }

    fn on_command(&mut self, topic: &str, sn: &str, key: &str, payload: &str, now: Instant, out: &mut Output) {
        if sn == SERVER {
            return self.on_server_command(topic, key, now, out);
        }
        let sn = match Sn::parse(sn) {
            Ok(sn) if self.toys.contains_key(&sn) => sn,
            Ok(_) => return out.log(Level::Warn, topic, format!("command for unknown toy {sn} ignored")),
            Err(e) => return out.log(Level::Warn, topic, format!("command ignored: {e}")),
        };
        let Some(entity) = Entity::find(key) else {
            return out.log(Level::Warn, topic, format!("command for unknown entity {key:?} ignored"));
        };
        if matches!(entity.kind, Kind::Player(_)) && !self.cfg.media_player {
            return out.log(Level::Warn, topic, "media player command ignored: homeassistant.media_player is off");
        }
        let request = match ha::commands::parse(entity, payload, &self.cfg.catalog, &self.cfg.roles) {
            Ok(r) => r,
            Err(e) => {
                out.log(Level::Warn, topic, format!("command refused before sending: {e}"));
                self.set_last(&sn, entity.key, payload, Outcome::Invalid, None, Some(e.to_string()), out);
                // Home Assistant may show the refused value until told otherwise.
                self.publish_state(&sn, entity, out);
                return;
            }
        };
        let mut raw = payload.to_owned();
        match request {
            // The role and the announcement volume are the bridge's own: nothing to ask the toy.
            Request::SpeakingRole(role) => self.toy_mut(&sn).role = role,
            Request::AnnouncementVolume(volume) => self.toy_mut(&sn).announcement_volume = volume,
            _ => {}
        }
        if matches!(request, Request::SpeakingRole(_) | Request::AnnouncementVolume(_)) {
            self.publish_state(&sn, entity, out);
            out.save = true;
            return;
        }
        if !self.folotoy_up {
            // Queued, it could reach the toy long after Home Assistant gave
            // up on it; so it is refused now, and the old value shown again.
            let why = "FoloToy's broker is not connected";
            out.log(Level::Warn, topic, format!("command not sent: {why}"));
            self.set_last(&sn, entity.key, payload, Outcome::Invalid, None, Some(why.into()), out);
            return self.publish_state(&sn, entity, out);
        }
        if let Request::Set(Setting::Volume, _) = request {
            // The user's volume wins over the one an announcement would put back.
            if self.toy_mut(&sn).volume_to_restore.take().is_some() {
                out.log(
                    Level::Info,
                    topic,
                    "a new volume was set: the volume from before the announcement is not put back",
                );
            }
        }
        if let Request::PlayMedia(media) = &request {
            // What the Last command sensor shows: what is said, or the URL, not the JSON.
            raw = media.text.clone().unwrap_or_else(|| media.url.clone());
        }
        if matches!(request, Request::PlayMedia(_)) || entity.kind == Kind::Announce {
            return self.announce(&sn, topic, entity.key, request, raw, now, out);
        }
        if let Request::Set(setting, _) = request {
            if let Some(busy) = self.pending.busy(&sn, Slot::Setting(setting)) {
                let replaced =
                    self.pending.wait(&sn, Slot::Setting(setting), Waiting { entity: entity.key, request, raw });
                let note = match replaced {
                    Some(old) => format!(", replacing {} which is not sent", old.raw),
                    None => String::new(),
                };
                out.log(
                    Level::Info,
                    topic,
                    format!(
                        "{} is waiting for the toy's answer to msgId {busy}; newest value sent after it{note}",
                        entity.key
                    ),
                );
                return;
            }
        }
        self.send(&sn, entity.key, request, raw, now, out);
    }

    /// "Reload roles": the server re-reads roles.json. Pressing again while
    /// one waits for its answer sends nothing more.
    fn on_server_command(&mut self, topic: &str, key: &str, now: Instant, out: &mut Output) {
        if key != "reload_roles" {
            return out.log(Level::Warn, topic, format!("command for unknown server entity {key:?} ignored"));
        }
        if let Some((msg_id, _)) = self.roles_in_flight {
            return out.log(Level::Info, topic, format!("roles reload msgId {msg_id} still waits for its answer"));
        }
        if !self.folotoy_up {
            return out.log(Level::Warn, topic, "roles reload not sent: FoloToy's broker is not connected");
        }
        let msg_id = self.take_msg_id();
        out.folotoy(folotoy::topics::CONFIG.to_owned(), folotoy::messages::load_roles_payload(msg_id));
        self.roles_in_flight = Some((msg_id, now + self.cfg.command_timeout));
        self.set_roles(Outcome::Pending, msg_id, None, out);
    }

    fn on_config_ack(&mut self, topic: &str, ack: folotoy::messages::ConfigAck, out: &mut Output) {
        if ack.identifier != "load_roles_config" {
            let why = format!("configAck for {:?}, which this bridge never sends; ignored", ack.identifier);
            return out.log(Level::Warn, topic, why);
        }
        match self.roles_in_flight {
            // FoloToy echoes the msgId only if one was sent; an ack without
            // one can only be for the reload that is waiting.
            Some((msg_id, _)) if ack.msg_id.map_or(true, |m| m == msg_id) => {
                self.roles_in_flight = None;
                if ack.ok {
                    out.log(Level::Info, topic, "the FoloToy server reloaded its roles");
                    self.set_roles(Outcome::Ok, msg_id, None, out);
                } else {
                    out.log(
                        Level::Warn,
                        topic,
                        format!("the FoloToy server refused load_roles_config (msgId {msg_id})"),
                    );
                    self.set_roles(Outcome::Refused, msg_id, None, out);
                }
            }
            Some((waiting, _)) => out.log(
                Level::Warn,
                topic,
                format!("configAck for msgId {:?} while msgId {waiting} waits; ignored", ack.msg_id),
            ),
            None => out.log(Level::Warn, topic, "configAck while no roles reload waits (late, or not ours); ignored"),
        }
    }

    fn set_roles(&mut self, outcome: Outcome, msg_id: u32, reason: Option<String>, out: &mut Output) {
        self.server.roles_reload = Some(LastCommand {
            entity: "reload_roles".into(),
            value: "roles.json".into(),
            outcome,
            msg_id: Some(msg_id),
            reason,
        });
        out.save = true;
        self.publish_server(out);
    }

    fn publish_server(&self, out: &mut Output) {
        if self.ha_up {
            let state = ha::states::last_command(self.server.roles_reload.as_ref(), &self.cfg.catalog);
            out.ha(self.cfg.topics.server_state("roles_reload"), state, true);
        }
    }

    /// A fresh msgId; it wraps, skipping 0, after four billion commands.
    fn take_msg_id(&mut self) -> u32 {
        let msg_id = self.next_msg_id;
        self.next_msg_id = self.next_msg_id.checked_add(1).unwrap_or(1);
        msg_id
    }

    /// Plays an announcement (the Announce entity, or what the media player
    /// was asked to play) at its volume: the one it came with, else the
    /// Announcement volume for announcements; and puts the toy's volume back
    /// once it is over.
    ///
    /// The volume is handled here and not in the Home Assistant integration:
    /// only the bridge knows which volume the toy confirmed, when it answered
    /// and how long it is guessed to play, and it keeps the volume to put back
    /// over a restart of Home Assistant or of itself. An announcement never
    /// leaves the toy louder or quieter than before, so one whose volume
    /// could not be put back plays at the toy's own volume.
    #[allow(clippy::too_many_arguments)]
    fn announce(
        &mut self,
        sn: &Sn,
        topic: &str,
        entity: &'static str,
        request: Request,
        raw: String,
        now: Instant,
        out: &mut Output,
    ) {
        let toy = &self.toys[sn].state;
        let own = (toy.announcement_volume > 0).then_some(Value::Int(toy.announcement_volume.into()));
        let (request, volume) = match request {
            Request::PlayMedia(m) => {
                let volume = m.volume.or(if m.announce { own } else { None });
                (Request::PlayMedia(Media { volume: None, ..m }), volume)
            }
            other => (other, own),
        };
        let Some(volume) = volume else {
            self.send(sn, entity, request, raw, now, out);
            return;
        };
        let confirmed = toy.settings.get(Setting::Volume);
        let before = toy.volume_to_restore.or(confirmed);
        let changing = self.pending.busy(sn, Slot::Setting(Setting::Volume)).is_some()
            || matches!(self.announcing.get(sn), Some(Announcing::Volume { .. } | Announcing::Media { .. }));
        let why_not = if before.is_none() {
            Some("the toy has not confirmed a volume yet, so none could be put back")
        } else if changing {
            Some("the toy's volume is being changed")
        } else {
            None
        };
        if let Some(why) = why_not {
            out.log(Level::Info, topic, format!("playing at the toy's own volume, not {volume}: {why}"));
        }
        if why_not.is_some() || confirmed == Some(volume) {
            self.send(sn, entity, request, raw, now, out);
            return;
        }
        self.toy_mut(sn).volume_to_restore = before;
        let shown = format!("{volume} (announcement)");
        let msg_id = self.send(sn, "player_volume", Request::Set(Setting::Volume, volume), shown, now, out);
        self.announcing.insert(sn.clone(), Announcing::Volume { msg_id, then: Waiting { entity, request, raw } });
    }

    /// The next step of an announcement once the toy answered `msg_id`.
    fn announcement_step(
        &mut self,
        sn: &Sn,
        msg_id: u32,
        outcome: Outcome,
        length: Duration,
        now: Instant,
        out: &mut Output,
    ) {
        match self.announcing.get(sn) {
            Some(Announcing::Volume { msg_id: m, .. }) if *m == msg_id => {
                let Some(Announcing::Volume { then, .. }) = self.announcing.remove(sn) else { return };
                if !self.folotoy_up {
                    // Its volume goes back when FoloToy's broker is back.
                    let topic = folotoy::topics::command(sn);
                    return out.log(Level::Warn, &topic, "announcement not played: FoloToy's broker is not connected");
                }
                // Refused or not answered, it is still played: at whatever volume the toy has.
                let msg_id = self.send(sn, then.entity, then.request, then.raw, now, out);
                self.announcing.insert(sn.clone(), Announcing::Media { msg_id });
            }
            Some(Announcing::Media { msg_id: m }) if *m == msg_id => {
                if outcome == Outcome::Ok {
                    self.announcing.insert(sn.clone(), Announcing::Until(now + length));
                } else {
                    self.announcing.remove(sn);
                    self.restore_volume(sn, now, out);
                }
            }
            // Something else played meanwhile: the volume goes back after it.
            Some(Announcing::Until(t)) if outcome == Outcome::Ok => {
                let t = (*t).max(now + length);
                self.announcing.insert(sn.clone(), Announcing::Until(t));
            }
            _ => {}
        }
    }

    /// Sends the volume the toy had before an announcement, if one is owed.
    fn restore_volume(&mut self, sn: &Sn, now: Instant, out: &mut Output) {
        if !self.folotoy_up {
            return; // owed until FoloToy's broker is back
        }
        let Some(volume) = self.toy_mut(sn).volume_to_restore.take() else { return };
        out.save = true;
        let request = Request::Set(Setting::Volume, volume);
        let raw = format!("{volume} (after the announcement)");
        let slot = Slot::Setting(Setting::Volume);
        if self.pending.busy(sn, slot).is_some() {
            self.pending.wait(sn, slot, Waiting { entity: "player_volume", request, raw });
        } else {
            self.send(sn, "player_volume", request, raw, now, out);
        }
    }

    /// Sends a request to the toy; returns its msgId.
    fn send(
        &mut self,
        sn: &Sn,
        entity: &'static str,
        request: Request,
        raw: String,
        now: Instant,
        out: &mut Output,
    ) -> u32 {
        let msg_id = self.take_msg_id();
        let role = self.toys[sn].state.role;
        let command = match &request {
            Request::Set(setting, value) => {
                let mut patch = Settings::default();
                patch.set(*setting, *value);
                Command::UpdateCommonConfig(patch)
            }
            Request::Say(text) => Command::Play(Play { role: Some(role), text: Some(text.clone()), url: None }),
            Request::PlayAudio(url) | Request::PlayMedia(Media { url, .. }) => {
                Command::Play(Play { role: None, text: None, url: Some(url.clone()) })
            }
            Request::SpeakingRole(_) | Request::AnnouncementVolume(_) => unreachable!("handled without the toy"),
        };
        out.folotoy(folotoy::topics::command(sn), command.payload(msg_id));
        self.set_last(sn, entity, &raw, Outcome::Pending, Some(msg_id), None, out);
        let deadline = now + self.cfg.command_timeout;
        let sent = Sent { sn: sn.clone(), identifier: command.identifier(), entity, request, raw, deadline };
        self.pending.insert(msg_id, slot_of(msg_id, &sent.request), sent);
        msg_id
    }

    fn on_folotoy(&mut self, topic: &str, msg: Inbound, now: Instant, at: SystemTime, out: &mut Output) {
        match msg {
            Inbound::Seen { sn } => {
                self.admit(&sn, topic, out);
            }
            Inbound::Event { sn, event } => {
                if !self.admit(&sn, topic, out) {
                    return;
                }
                self.active(&sn, at, out);
                self.on_event(&sn, topic, event, now, out);
            }
            Inbound::CallAck { sn, ack } => {
                if !self.admit(&sn, topic, out) {
                    return;
                }
                // An answer is the toy speaking up as much as an event is.
                self.active(&sn, at, out);
                match self.pending.get(ack.msg_id) {
                    Some(sent) if sent.sn == sn && sent.identifier == ack.identifier => {
                        let outcome = if ack.ok { Outcome::Ok } else { Outcome::Refused };
                        self.finish(ack.msg_id, outcome, now, out);
                    }
                    Some(sent) => out.log(
                        Level::Warn,
                        topic,
                        format!(
                            "ack for msgId {} does not match what was sent ({} to {}); ignored",
                            ack.msg_id, sent.identifier, sent.sn
                        ),
                    ),
                    None => out.log(
                        Level::Warn,
                        topic,
                        format!(
                            "ack for msgId {} which is not waiting for an answer (late, or not ours); ignored",
                            ack.msg_id
                        ),
                    ),
                }
            }
            Inbound::ConfigAck(ack) => self.on_config_ack(topic, ack, out),
        }
    }

    fn on_event(&mut self, sn: &Sn, topic: &str, event: ToyEvent, now: Instant, out: &mut Output) {
        let conversation = self.cfg.topics.state(sn, "conversation");
        match event {
            ToyEvent::RecordingTranscribed { recording_id, text } => {
                let heard = Heard { text, recording_id };
                if self.ha_up {
                    out.event(conversation, ha::states::heard_event(&heard));
                }
                self.toy_mut(sn).heard = Some(heard);
                self.publish_held(sn, "heard", now, out);
            }
            ToyEvent::VoiceGenerated { recording_id, order, text, voice_url, role } => {
                let toy = self.toy_mut(sn);
                let answer = match &mut toy.answer {
                    Some(a) if continues(a, recording_id, order) => a,
                    other => other.insert(Answer { recording_id, role, ..Answer::default() }),
                };
                // Without an order, a sentence goes after those already here.
                let order = order.unwrap_or_else(|| answer.parts.keys().next_back().map_or(1, |o| o + 1));
                if !answer.parts.contains_key(&order) && answer.parts.len() >= MAX_ANSWER_PARTS {
                    out.log(
                        Level::Warn,
                        topic,
                        format!(
                            "answer {recording_id:?} has over {MAX_ANSWER_PARTS} sentences; sentence {order} ignored"
                        ),
                    );
                    return;
                }
                answer.role = role.or(answer.role);
                answer.parts.insert(order, Part { text, voice_url });
                let event = ha::states::said_event(answer, order);
                let text = answer.text();
                if self.ha_up {
                    out.event(conversation, event);
                }
                self.publish_held(sn, "said", now, out);
                let length = speaking_time(&text);
                self.playing(sn, text, length, now, out);
            }
            ToyEvent::Other { identifier } => {
                out.log(Level::Warn, topic, format!("event {identifier:?} is not one this bridge knows; ignored"));
            }
        }
    }

    /// Records that a toy was heard from, for the Last activity sensor.
    /// Shown to the second: a toy reading a story sends a sentence every
    /// few hundred milliseconds, and one update a second says as much.
    fn active(&mut self, sn: &Sn, at: SystemTime, out: &mut Output) {
        let ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let toy = self.toy_mut(sn);
        let before = toy.last_activity_ms.replace(ms);
        if before.map(|b| b / 1000) != Some(ms / 1000) {
            self.publish_key(sn, "last_activity", out);
            out.save_soon = true;
        }
    }

    /// Publishes a conversation state now, or once the [`Hold`] lets it.
    fn publish_held(&mut self, sn: &Sn, key: &'static str, now: Instant, out: &mut Output) {
        if self.hold.pass(sn, key, now) {
            self.publish_key(sn, key, out);
        }
    }

    fn publish_key(&self, sn: &Sn, key: &str, out: &mut Output) {
        self.publish_state(sn, Entity::find(key).expect("key from the entity table"), out);
    }

    /// Ends a command: on success the value becomes the toy's state; on
    /// refusal or silence the last confirmed value is shown again.
    fn finish(&mut self, msg_id: u32, outcome: Outcome, now: Instant, out: &mut Output) {
        let Some((sent, next)) = self.pending.finish(msg_id) else { return };
        let entity = Entity::find(sent.entity).expect("sent from a table entity");
        let topic = folotoy::topics::command(&sent.sn);
        let (title, length) = match &sent.request {
            Request::Say(text) => (text.clone(), speaking_time(text)),
            Request::PlayAudio(url) | Request::PlayMedia(Media { url, text: None, .. }) => (title_of(url), PLAY_GUESS),
            Request::PlayMedia(Media { text: Some(text), .. }) => (text.clone(), speaking_time(text)),
            Request::Set(..) | Request::SpeakingRole(_) | Request::AnnouncementVolume(_) => {
                (String::new(), Duration::ZERO)
            }
        };
        let reason = match outcome {
            Outcome::Ok => {
                let toy = self.toy_mut(&sent.sn);
                match (&sent.request, entity.kind) {
                    (Request::Set(setting, value), _) => toy.settings.set(*setting, *value),
                    // An announcement or a media player URL is not what the
                    // Say and Play audio text entities show.
                    (Request::Say(text), Kind::Say) => toy.say_text = Some(text.clone()),
                    (Request::PlayAudio(url), Kind::PlayAudio) => toy.play_url = Some(url.clone()),
                    _ => {}
                }
                if !length.is_zero() {
                    self.playing(&sent.sn, title, length, now, out);
                }
                None
            }
            Outcome::Refused => {
                out.log(
                    Level::Warn,
                    &topic,
                    format!("toy {} refused {} {} (msgId {msg_id})", sent.sn, sent.entity, sent.raw),
                );
                None
            }
            _ => {
                let secs = self.cfg.command_timeout.as_secs_f64();
                out.log(
                    Level::Warn,
                    &topic,
                    format!(
                        "no answer from toy {} to {} {} (msgId {msg_id}) within {secs} s",
                        sent.sn, sent.entity, sent.raw
                    ),
                );
                Some(format!("waited {secs} s"))
            }
        };
        self.set_last(&sent.sn, sent.entity, &sent.raw, outcome, Some(msg_id), reason, out);
        // Confirmed or not, every entity showing the value shows the truth.
        match sent.request {
            Request::Set(setting, _) => {
                for e in TOY.iter().filter(|e| e.shows(setting)) {
                    self.publish_state(&sent.sn, e, out);
                }
            }
            _ => self.publish_state(&sent.sn, entity, out),
        }
        out.save = true;
        if let Some(w) = next {
            self.send(&sent.sn, w.entity, w.request, w.raw, now, out);
        }
        self.announcement_step(&sent.sn, msg_id, outcome, length, now, out);
    }

    /// Makes sure a toy that spoke is known; false if it may not be.
    fn admit(&mut self, sn: &Sn, topic: &str, out: &mut Output) -> bool {
        if self.toys.contains_key(sn) {
            return true;
        }
        let refusal = if !self.cfg.allow_unknown_toys {
            Some("it is not in folotoy.toys and folotoy.allow_unknown_toys is false".to_owned())
        } else if self.deleted.contains(sn) {
            Some("it was deleted in Home Assistant; list it in folotoy.toys to bring it back".to_owned())
        } else if self.toys.len() >= self.cfg.max_toys {
            Some(format!("folotoy.max_toys ({}) is reached", self.cfg.max_toys))
        } else {
            self.toys
                .keys()
                .find(|k| k.ha_id() == sn.ha_id())
                .map(|other| format!("toy {other} differs from it only in case, and Home Assistant ids are lower case"))
        };
        if let Some(why) = refusal {
            if self.refused.len() < REFUSED_MEMORY && self.refused.insert(sn.clone()) {
                out.log(Level::Warn, topic, format!("toy {sn} ignored: {why}"));
            }
            return false;
        }
        out.log(Level::Info, topic, format!("new toy {sn}: adding it to Home Assistant"));
        self.toys.insert(sn.clone(), Toy { name: None, state: ToyState::default() });
        out.save = true;
        if self.ha_up {
            self.publish_toy(sn, out);
        }
        true
    }

    fn toy_mut(&mut self, sn: &Sn) -> &mut ToyState {
        &mut self.toys.get_mut(sn).expect("checked by the caller").state
    }

    #[allow(clippy::too_many_arguments)]
    /// `value` is what Home Assistant sent, shortened here: an announcement
    /// can be 2,000 characters, the sensor needs only its start.
    fn set_last(
        &mut self,
        sn: &Sn,
        entity: &str,
        value: &str,
        outcome: Outcome,
        msg_id: Option<u32>,
        reason: Option<String>,
        out: &mut Output,
    ) {
        let value = ha::states::truncate(value, MAX_SHOWN_VALUE);
        self.toy_mut(sn).last_command = Some(LastCommand { entity: entity.to_owned(), value, outcome, msg_id, reason });
        // The Last command is saved state, and a sent command used up a
        // msgId that a restarted bridge must not hand out again.
        out.save = true;
        self.publish_key(sn, "last_command", out);
    }

    /// States wait for Home Assistant: its connection publishes them all.
    fn publish_state(&self, sn: &Sn, entity: &Entity, out: &mut Output) {
        if !self.ha_up || (matches!(entity.kind, Kind::Player(_)) && !self.cfg.media_player) {
            return;
        }
        let toy = &self.toys[sn].state;
        if let Some(payload) = ha::states::render(entity, toy, &self.cfg.catalog, &self.cfg.roles) {
            out.ha(self.cfg.topics.state(sn, entity.key), payload, true);
        }
    }

    fn publish_link(&self, out: &mut Output) {
        if self.ha_up {
            let link = if self.folotoy_up { "online" } else { "offline" };
            out.ha(self.cfg.topics.folotoy_link(), link, true);
        }
    }

    fn discovery(&self) -> Discovery<'_> {
        Discovery {
            topics: &self.cfg.topics,
            catalog: &self.cfg.catalog,
            roles: &self.cfg.roles,
            media_player: self.cfg.media_player,
        }
    }

    fn publish_toy(&mut self, sn: &Sn, out: &mut Output) {
        let name = self.toys[sn].name.as_deref();
        for c in self.discovery().toy(sn, name) {
            Arc::make_mut(&mut self.published).insert(c.topic.clone());
            out.ha(c.topic, c.payload, true);
        }
        for e in TOY {
            self.publish_state(sn, e, out);
        }
    }

    /// Availability, discovery and every state; clears configs of toys that
    /// are gone. Runs on every connect and after Home Assistant's birth.
    ///
    /// Toys come [`CHUNK`] at a time (`Output::more` asks for the next with
    /// [`Input::Continue`]): a thousand toys' configs at once would be tens
    /// of megabytes held at the same moment.
    fn publish_all(&mut self, out: &mut Output) {
        // Every state goes out now, the held ones with them.
        self.hold.clear();
        let before = std::mem::take(&mut self.published);
        for c in self.discovery().bridge() {
            Arc::make_mut(&mut self.published).insert(c.topic.clone());
            out.ha(c.topic, c.payload, true);
        }
        self.to_publish = Some((self.toys.keys().cloned().collect(), before));
        self.publish_more(out);
    }

    fn publish_more(&mut self, out: &mut Output) {
        let Some((mut sns, before)) = self.to_publish.take() else { return };
        for _ in 0..CHUNK {
            let Some(sn) = sns.pop_front() else { break };
            // A toy removed meanwhile has nothing to publish.
            if self.toys.contains_key(&sn) {
                self.publish_toy(&sn, out);
            }
        }
        if !sns.is_empty() {
            self.to_publish = Some((sns, before));
            out.more = true;
            return;
        }
        for stale in before.difference(&self.published).cloned().collect::<Vec<_>>() {
            out.log(Level::Info, &stale, "clearing the discovery config of an entity that is gone");
            self.empty_config(stale, out);
        }
        if before != self.published {
            out.save = true;
        }
        self.publish_server(out);
        out.ha(self.cfg.topics.bridge_state(), "online", true);
        self.publish_link(out);
    }
}

/// Characters of a command's value kept in the Last command sensor.
const MAX_SHOWN_VALUE: usize = 64;

/// How long the toy is shown playing a URL: FoloToy never says when
/// playback ends, so this is a guess.
pub const PLAY_GUESS: Duration = Duration::from_secs(30);

/// Toys published per part of a republish.
pub const CHUNK: usize = 32;

/// Whether a sentence belongs to the answer being put together: the same
/// recordingId. Without one, nothing ties sentences together but their order:
/// a later sentence continues an answer that has no recordingId either, and a
/// first sentence (or one without an order) starts a new one, so answers to
/// different questions are never run together.
fn continues(answer: &Answer, recording_id: Option<i64>, order: Option<i64>) -> bool {
    match recording_id {
        Some(_) => answer.recording_id == recording_id,
        None => answer.recording_id.is_none() && order.is_some_and(|o| o > 1 && !answer.parts.contains_key(&o)),
    }
}

/// About how long the toy takes to read `text` aloud, for the media player's
/// `playing` state: FoloToy never says when it is done.
pub fn speaking_time(text: &str) -> Duration {
    let chars = text.chars().count() as u64;
    Duration::from_millis((chars * 80).clamp(2_000, 120_000))
}

/// The file name of a URL, which is the best title a bare URL has.
fn title_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.split_once("://").and_then(|(_, rest)| rest.split_once('/')).map(|(_, p)| p);
    match after_host.and_then(|p| p.rsplit('/').find(|s| !s.is_empty())) {
        Some(name) => name.to_owned(),
        None => url.to_owned(),
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
