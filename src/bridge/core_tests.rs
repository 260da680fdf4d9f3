//! The core's rules as a user would notice them. No broker and no sleeping:
//! every input happens at `t0 + Duration`, and the output is inspected.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use serde_json::{json, Value as Json};

use super::*;
use crate::folotoy::{Setting, Value};
use crate::ha::discovered::PLATFORMS;
use crate::ha::entities::{PlayerPart, TRIGGERS};
use crate::watch::Sides;

/// The configured toy, named "Bunny".
const SN: &str = "fcb467dad0c0";
/// A second toy: configured in some tests, unknown in others.
const BEAR: &str = "08d1f9c6a310";
/// Where commands for Bunny go on FoloToy's broker.
const CALL: &str = "/sys/folotoy/fcb467dad0c0/thing/command/call";
const CALL_ACK: &str = "/sys/folotoy/fcb467dad0c0/thing/command/callAck";
const TIMEOUT: Duration = Duration::from_secs(10);
/// The entities that show one of the toy's `updatecommonconfig` settings.
const SETTINGS: [&str; 6] =
    ["volume", "recording_mode", "volume_control", "power_on_sound", "low_battery_alarm", "sleep_after"];
const SNAPSHOT: &str = "tests/snapshots/discovery-fcb467dad0c0.json";

fn sn(s: &str) -> Sn {
    Sn::parse(s).expect("a valid serial number")
}

fn topics() -> Topics {
    Topics { base: "folotoy".into(), discovery_prefix: "homeassistant".into(), status: "homeassistant/status".into() }
}

fn config_with(toys: &[(&str, Option<&str>)], allow_unknown_toys: bool, max_toys: usize) -> CoreConfig {
    let catalog = Catalog::load("en").expect("the English catalog");
    CoreConfig {
        topics: topics(),
        roles: catalog.roles.clone(),
        catalog,
        toys: toys.iter().map(|(s, name)| (sn(s), name.map(str::to_owned))).collect(),
        allow_unknown_toys,
        max_toys,
        command_timeout: TIMEOUT,
        media_player: true,
        watch_words: Vec::new(),
        glance: Some(Zone::utc()),
    }
}

/// One configured toy, Bunny; toys nobody configured are refused.
fn config() -> CoreConfig {
    config_with(&[(SN, Some("Bunny"))], false, 8)
}

/// Bunny configured, and any other toy that speaks is welcome.
fn open_config() -> CoreConfig {
    config_with(&[(SN, Some("Bunny"))], true, 8)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// The discovery topics a snapshot lists, as the state file has them.
fn listed(s: &Snapshot) -> BTreeSet<String> {
    s.discovery_topics.all().collect()
}

/// A saved state as it comes back from the state file.
fn through_disk(s: Snapshot) -> Snapshot {
    serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap()
}

/// The core and the moment the test starts.
struct Bridge {
    core: Core,
    t0: Instant,
}

impl Bridge {
    /// Built from the configuration with nothing saved; not connected yet.
    fn start(cfg: CoreConfig) -> Bridge {
        Bridge::restore(cfg, Snapshot::default())
    }

    /// Built from a saved state, which must load without a warning.
    fn restore(cfg: CoreConfig, saved: Snapshot) -> Bridge {
        let (b, logs) = Bridge::restore_with_logs(cfg, saved);
        assert!(logs.is_empty(), "unexpected logs at start: {logs:?}");
        b
    }

    fn restore_with_logs(cfg: CoreConfig, saved: Snapshot) -> (Bridge, Vec<Log>) {
        let (core, logs) = Core::new(cfg, saved);
        (Bridge { core, t0: Instant::now() }, logs)
    }

    /// Started and connected to both brokers at t0 (that output is dropped).
    fn up(cfg: CoreConfig) -> Bridge {
        let mut b = Bridge::start(cfg);
        b.at(secs(0), Input::HaUp);
        b.at(secs(0), Input::FoloToyUp);
        b
    }

    fn at(&mut self, after: Duration, input: Input) -> Output {
        self.core.handle(input, self.t0 + after)
    }

    /// When the core wants a Tick, counted from t0.
    fn deadline(&self) -> Option<Duration> {
        self.core.next_deadline().map(|d| d - self.t0)
    }

    /// A command to Bunny that the toy accepts at once; returns the ack's output.
    fn confirm(&mut self, after: Duration, key: &str, payload: &str) -> Output {
        let sent = self.at(after, command(key, payload)).to_toy();
        assert_eq!(sent.len(), 1, "{key} {payload} should be sent: {sent:?}");
        let identifier = sent[0]["identifier"].as_str().unwrap().to_owned();
        self.at(after, ack(SN, &identifier, msg_id(&sent[0]), 1))
    }
}

/// A command from Home Assistant to Bunny, parsed as the runtime would.
fn command(key: &str, payload: &str) -> Input {
    command_to(SN, key, payload)
}

fn command_to(sn: &str, key: &str, payload: &str) -> Input {
    let topic = format!("folotoy/{sn}/{key}/set");
    let msg = ha::inbound::parse(&topics(), &topic, payload.as_bytes(), false).expect("a command topic");
    Input::Ha { topic, msg, at: wall_clock() }
}

/// Home Assistant's birth message.
fn birth() -> Input {
    let topic = "homeassistant/status".to_owned();
    let msg = ha::inbound::parse(&topics(), &topic, b"online", false).unwrap();
    Input::Ha { topic, msg, at: wall_clock() }
}

/// When the test's messages arrive, by the wall clock.
fn wall_clock() -> SystemTime {
    std::time::UNIX_EPOCH + secs(1_795_608_000)
}

fn folotoy(topic: String, payload: Json) -> Input {
    let msg = folotoy::messages::parse(&topic, payload.to_string().as_bytes()).expect("a valid FoloToy message");
    Input::FoloToy { topic, msg, at: wall_clock() }
}

/// A toy's answer to a command (`result` 1 ok, 0 failed).
fn ack(sn: &str, identifier: &str, msg_id: u32, result: u8) -> Input {
    folotoy(
        format!("/sys/folotoy/{sn}/thing/command/callAck"),
        json!({"identifier": identifier, "msgId": msg_id, "result": result}),
    )
}

/// Bunny's answer to an `updatecommonconfig`.
fn settings_ack(msg_id: u32, result: u8) -> Input {
    ack(SN, "updatecommonconfig", msg_id, result)
}

/// Bunny's answer to an `iwantplay`.
fn play_ack(msg_id: u32, result: u8) -> Input {
    ack(SN, "iwantplay", msg_id, result)
}

/// A toy speaks: one sentence of an answer.
fn voice_from(sn: &str) -> Input {
    event_from(sn, "voice_generated")
}

fn event_from(sn: &str, identifier: &str) -> Input {
    folotoy(
        format!("/sys/folotoy/{sn}/thing/event/post"),
        json!({"msgId": 174, "identifier": identifier,
               "inputParams": {"recordingId": 31, "order": 1, "voiceText": " Hi!", "role": 1}}),
    )
}

fn msg_id(sent: &Json) -> u32 {
    sent["msgId"].as_u64().expect("a msgId") as u32
}

/// What a text entity (Say, Play audio) shows: its state is `{"text": ...}`.
fn text(out: &Output, key: &str) -> Option<String> {
    let state: Json = serde_json::from_str(&out.state(key)?).unwrap();
    Some(state["text"].as_str().unwrap().to_owned())
}

fn discovery_topic(component: &str, node: &str, key: &str) -> String {
    format!("homeassistant/{component}/{node}/{key}/config")
}

/// Every discovery topic of one toy.
/// Entities whose state is kept on the broker from the start (events fire
/// and are gone; the media player's title waits until something was said or
/// played, its volume until the toy confirmed one).
fn retains_state(e: &Entity) -> bool {
    e.has_state()
        && !matches!(e.kind, Kind::Event(_) | Kind::Player(PlayerPart::Title) | Kind::Player(PlayerPart::Volume))
}

fn toy_config_topics(sn: &str) -> BTreeSet<String> {
    let node = format!("folotoy_{sn}");
    let triggers =
        TRIGGERS.iter().map(|(_, subtype, _)| discovery_topic("device_automation", &node, &format!("{subtype}_said")));
    let entities = TOY.iter().filter(|e| !matches!(e.kind, Kind::Player(_)));
    entities
        .map(|e| discovery_topic(e.component(), &node, e.key.as_str()))
        .chain(triggers)
        .chain([discovery_topic("folotoy", &node, "media_player")])
        .collect()
}

fn bridge_config_topics() -> BTreeSet<String> {
    let bridge = ["connection", "folotoy_connection"].map(|k| discovery_topic("binary_sensor", "folotoy_bridge", k));
    let server = [
        discovery_topic("button", "folotoy_bridge_server", "reload_roles"),
        discovery_topic("sensor", "folotoy_bridge_server", "roles_reload"),
    ];
    bridge.into_iter().chain(server).chain([INTEGRATION_CONFIG.to_owned()]).collect()
}

/// What the project's integration reads of the bridge itself, under its players' component.
const INTEGRATION_CONFIG: &str = "homeassistant/folotoy/folotoy_bridge/bridge/config";

/// The node of a device-based discovery topic.
fn device_node(topic: &str) -> Option<&str> {
    topic.strip_prefix("homeassistant/device/")?.strip_suffix("/config")
}

/// A device config's components as Home Assistant reads them: each under
/// the single-component topic with the same discovery id, given the
/// device's `device`, `origin` and shared options it does not set itself.
/// A component that is only its platform is left out (it is being removed).
fn components(node: &str, config: &Json) -> Vec<(String, Json)> {
    let shared = ["availability", "availability_mode"];
    let mut out = Vec::new();
    for (id, component) in config["components"].as_object().expect("components") {
        let mut c = component.as_object().unwrap().clone();
        let platform = c.remove("platform").expect("every component has its platform");
        if c.is_empty() {
            continue;
        }
        c.insert("device".into(), config["device"].clone());
        c.insert("origin".into(), config["origin"].clone());
        for option in shared {
            if let (Some(v), false) = (config.get(option), c.contains_key(option)) {
                c.insert(option.into(), v.clone());
            }
        }
        out.push((discovery_topic(platform.as_str().unwrap(), node, id), Json::Object(c)));
    }
    out
}

/// The retained discovery topics of one toy: its device's config and its
/// media player's.
fn toy_retained_topics(sn: &str) -> BTreeSet<String> {
    let node = format!("folotoy_{sn}");
    BTreeSet::from([format!("homeassistant/device/{node}/config"), discovery_topic("folotoy", &node, "media_player")])
}

/// Reading an [`Output`] the way a test wants to.
trait Seen {
    /// The last payload published on `topic` to Home Assistant; it must be retained.
    fn retained(&self, topic: &str) -> Option<String>;
    /// The state Bunny's entity `key` was given.
    fn state(&self, key: &str) -> Option<String>;
    /// Bunny's Last command sensor, as JSON.
    fn last_command(&self) -> Option<Json>;
    /// Commands sent to Bunny on FoloToy's broker, as JSON.
    fn to_toy(&self) -> Vec<Json>;
    /// Anything sent on FoloToy's broker at all, as (topic, JSON).
    fn to_folotoy(&self) -> Vec<(String, Json)>;
    /// Discovery configs published, as Home Assistant reads them (see
    /// [`components`]), by topic (cleared ones left out).
    fn configs(&self) -> BTreeMap<String, Json>;
    /// Discovery topics cleared with an empty retained payload.
    fn cleared(&self) -> BTreeSet<String>;
    /// The warnings, as (topic, message).
    fn warned(&self) -> Vec<(&str, &str)>;
}

impl Seen for Output {
    fn retained(&self, topic: &str) -> Option<String> {
        let p = self.publish.iter().rev().find(|p| p.side == Side::Ha && p.topic == topic)?;
        assert!(p.retain, "{topic} must be retained");
        Some(String::from_utf8(p.payload.clone()).expect("text"))
    }

    fn state(&self, key: &str) -> Option<String> {
        self.retained(&format!("folotoy/{SN}/{key}"))
    }

    fn last_command(&self) -> Option<Json> {
        self.state("last_command").map(|s| serde_json::from_str(&s).expect("Last command is JSON"))
    }

    fn to_toy(&self) -> Vec<Json> {
        self.to_folotoy()
            .into_iter()
            .map(|(topic, json)| {
                assert_eq!(topic, CALL);
                json
            })
            .collect()
    }

    fn to_folotoy(&self) -> Vec<(String, Json)> {
        self.publish
            .iter()
            .filter(|p| p.side == Side::FoloToy)
            .map(|p| {
                assert!(!p.retain, "a command to a toy must never be retained: {}", p.topic);
                (p.topic.clone(), serde_json::from_slice(&p.payload).expect("commands are JSON"))
            })
            .collect()
    }

    fn configs(&self) -> BTreeMap<String, Json> {
        let mut configs = BTreeMap::new();
        for p in self.publish.iter().filter(|p| p.side == Side::Ha && p.topic.starts_with("homeassistant/")) {
            if p.payload.is_empty() || p.payload.starts_with(br#"{"migrate_discovery""#) {
                continue;
            }
            assert!(p.retain, "discovery {} must be retained", p.topic);
            let config: Json = serde_json::from_slice(&p.payload).expect("discovery is JSON");
            match device_node(&p.topic) {
                Some(node) => configs.extend(components(node, &config)),
                None => drop(configs.insert(p.topic.clone(), config)),
            }
        }
        configs
    }

    fn cleared(&self) -> BTreeSet<String> {
        self.publish
            .iter()
            .filter(|p| p.side == Side::Ha && p.topic.starts_with("homeassistant/") && p.payload.is_empty())
            .map(|p| {
                assert!(p.retain, "clearing {} only works retained", p.topic);
                p.topic.clone()
            })
            .collect()
    }

    fn warned(&self) -> Vec<(&str, &str)> {
        self.warnings().map(|l| (l.topic.as_str(), l.message.as_str())).collect()
    }
}

// --- Connecting to Home Assistant ------------------------------------------

#[test]
fn connecting_to_home_assistant_publishes_discovery_availability_and_every_state() {
    let mut b = Bridge::start(config());
    let out = b.at(secs(0), Input::HaUp);

    assert!(out.publish.iter().all(|p| p.side == Side::Ha && p.retain), "{:?}", out.publish);
    assert!(out.warned().is_empty(), "{:?}", out.warned());
    assert!(out.save, "the discovery topics now in Home Assistant are saved state");

    let configs = out.configs();
    let expected: BTreeSet<String> = bridge_config_topics().into_iter().chain(toy_config_topics(SN)).collect();
    assert_eq!(configs.keys().cloned().collect::<BTreeSet<_>>(), expected);

    let volume = &configs[&discovery_topic("number", "folotoy_fcb467dad0c0", "volume")];
    assert_eq!(volume["unique_id"], "folotoy_fcb467dad0c0_volume");
    assert_eq!(volume["default_entity_id"], "number.folotoy_fcb467dad0c0_volume");
    assert_eq!(volume["state_topic"], "folotoy/fcb467dad0c0/volume");
    assert_eq!(volume["command_topic"], "folotoy/fcb467dad0c0/volume/set");
    assert_eq!(volume["min"], 0.0);
    assert_eq!(volume["max"], 100.0);
    assert_eq!(volume["device"]["identifiers"], json!(["folotoy_fcb467dad0c0"]));
    assert_eq!(volume["device"]["name"], "Bunny");
    assert_eq!(volume["device"]["serial_number"], SN);
    assert_eq!(volume["device"]["manufacturer"], "FoloToy");
    assert_eq!(volume["device"]["via_device"], "folotoy_bridge");
    let by = |topic: &str| json!({"topic": topic, "payload_available": "online", "payload_not_available": "offline"});
    let availability = json!([by("folotoy/bridge/state"), by("folotoy/bridge/folotoy")]);
    assert_eq!(volume["availability"], availability);
    assert_eq!(volume["availability_mode"], "all");
    assert_eq!(volume["origin"]["name"], "folotoy-ha-bridge");
    assert_eq!(volume["origin"]["sw_version"], env!("CARGO_PKG_VERSION"));

    every_toy_entity_is_like_the_volume(&configs, volume, &availability);
    the_bridges_own_device_and_every_state(&out, &configs);
}

/// Every toy entity shares the volume's device, availability and origin (the
/// media player has a schema of its own, tested on its own).
fn every_toy_entity_is_like_the_volume(configs: &BTreeMap<String, Json>, volume: &Json, availability: &Json) {
    for e in TOY.iter().filter(|e| !matches!(e.kind, Kind::Player(_))) {
        let c = &configs[&discovery_topic(e.component(), "folotoy_fcb467dad0c0", e.key.as_str())];
        let id = format!("folotoy_fcb467dad0c0_{}", e.key);
        assert_eq!(c["unique_id"], id.as_str(), "{}", e.key);
        assert_eq!(c["default_entity_id"], format!("{}.{id}", e.component()).as_str());
        assert_eq!(c["device"], volume["device"], "{}", e.key);
        assert_eq!(c["availability"], *availability, "{}", e.key);
        assert_eq!(c["origin"], volume["origin"], "{}", e.key);
        if e.has_state() {
            assert_eq!(c["state_topic"], format!("folotoy/{SN}/{}", e.key).as_str());
        }
        assert_eq!(c.get("command_topic").is_some(), e.has_command(), "{}", e.key);
    }
}

fn the_bridges_own_device_and_every_state(out: &Output, configs: &BTreeMap<String, Json>) {
    // The bridge's own device: its connection must not depend on itself.
    let connection = &configs[&discovery_topic("binary_sensor", "folotoy_bridge", "connection")];
    assert_eq!(connection["device"]["identifiers"], json!(["folotoy_bridge"]));
    assert_eq!(connection["state_topic"], "folotoy/bridge/state");
    assert_eq!(connection["device_class"], "connectivity");
    assert!(connection.get("availability").is_none(), "{connection}");
    let link = &configs[&discovery_topic("binary_sensor", "folotoy_bridge", "folotoy_connection")];
    assert_eq!(link["state_topic"], "folotoy/bridge/folotoy");
    let by_bridge =
        json!({"topic": "folotoy/bridge/state", "payload_available": "online", "payload_not_available": "offline"});
    assert_eq!(link["availability"], json!([by_bridge]));

    assert_eq!(out.retained("folotoy/bridge/state").as_deref(), Some("online"));
    assert_eq!(out.retained("folotoy/bridge/folotoy").as_deref(), Some("offline"), "FoloToy is not connected yet");

    // Every state: settings the toy never confirmed are unknown, not a guess.
    for key in SETTINGS {
        assert_eq!(out.state(key).as_deref(), Some("None"), "{key}");
    }
    assert_eq!(out.state("speaking_role").as_deref(), Some("Role 1"));
    // Nothing said or played yet: empty, so the box holds nothing to delete
    // (and no empty retained payload, which would delete itself).
    assert_eq!(text(out, "say").as_deref(), Some(""));
    assert_eq!(text(out, "play_audio").as_deref(), Some(""));
    assert_eq!(out.last_command(), Some(json!({"summary": null})), "unknown until a command is sent");
    for e in TOY.iter().filter(|e| retains_state(e)) {
        assert!(out.state(e.key.as_str()).is_some(), "no state for {}", e.key);
    }
}

#[test]
fn unique_ids_come_from_the_serial_number_never_from_the_name() {
    let ids = |toys: &[(&str, Option<&str>)]| {
        let mut b = Bridge::start(config_with(toys, false, 8));
        let configs = b.at(secs(0), Input::HaUp).configs();
        // Device triggers have no unique_id: their topic identifies them.
        let ids: BTreeSet<String> =
            configs.values().filter_map(|c| c["unique_id"].as_str()).map(str::to_owned).collect();
        let names: BTreeSet<String> = configs
            .values()
            .filter(|c| c["device"]["serial_number"] == SN)
            .map(|c| c["device"]["name"].as_str().unwrap().to_owned())
            .collect();
        (ids, names)
    };
    let (bunny_ids, bunny_names) = ids(&[(SN, Some("Bunny"))]);
    let (teddy_ids, teddy_names) = ids(&[(SN, Some("Teddy"))]);
    let (unnamed_ids, unnamed_names) = ids(&[(SN, None)]);
    assert_eq!(bunny_ids, teddy_ids);
    assert_eq!(bunny_ids, unnamed_ids);
    assert_eq!(bunny_names, BTreeSet::from(["Bunny".to_owned()]));
    assert_eq!(teddy_names, BTreeSet::from(["Teddy".to_owned()]));
    assert_eq!(unnamed_names, BTreeSet::from(["FoloToy fcb467dad0c0".to_owned()]));

    // Home Assistant ids are lower case; topics keep the toy's own sn.
    let mut b = Bridge::start(config_with(&[("F234103026", None)], false, 8));
    let configs = b.at(secs(0), Input::HaUp).configs();
    let volume = &configs[&discovery_topic("number", "folotoy_f234103026", "volume")];
    assert_eq!(volume["unique_id"], "folotoy_f234103026_volume");
    assert_eq!(volume["state_topic"], "folotoy/F234103026/volume");
    assert_eq!(volume["device"]["serial_number"], "F234103026");
}

/// Lists what differs between two discovery payloads, key by key.
fn payload_diff(want: &Json, got: &Json) -> Vec<String> {
    let (Some(w), Some(g)) = (want.as_object(), got.as_object()) else {
        return vec![format!("  snapshot: {want}\n  now:      {got}")];
    };
    w.keys()
        .chain(g.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| w.get(*k) != g.get(*k))
        .map(|k| format!("  {k}: snapshot {}, now {}", shown(w.get(k)), shown(g.get(k))))
        .collect()
}

fn shown(v: Option<&Json>) -> String {
    v.map_or_else(|| "(absent)".to_owned(), Json::to_string)
}

#[test]
fn discovery_of_a_toy_matches_the_reviewed_snapshot() {
    let mut b = Bridge::start(config());
    // As sent: the device's config and the media player's.
    let mut got: BTreeMap<String, Json> = b
        .at(secs(0), Input::HaUp)
        .publish
        .into_iter()
        .filter(|p| {
            p.side == Side::Ha && p.topic.starts_with("homeassistant/") && p.topic.contains("/folotoy_fcb467dad0c0/")
        })
        .map(|p| (p.topic, serde_json::from_slice(&p.payload).expect("discovery is JSON")))
        .collect();
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), toy_retained_topics(SN));
    // The version changes with every release; the snapshot should not.
    for c in got.values_mut() {
        assert_eq!(c["origin"]["sw_version"], env!("CARGO_PKG_VERSION"));
        c["origin"]["sw_version"] = "<CARGO_PKG_VERSION>".into();
    }

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return;
    }
    let how = format!(
        "If the change is intended, read the new payloads as Home Assistant would, then regenerate {SNAPSHOT} with\n  \
         UPDATE_SNAPSHOTS=1 cargo test --lib discovery_of_a_toy_matches_the_reviewed_snapshot\n\
         and review the file's diff before committing it."
    );
    let saved = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {SNAPSHOT}: {e}\n{how}"));
    let want: BTreeMap<String, Json> =
        serde_json::from_str(&saved).unwrap_or_else(|e| panic!("{SNAPSHOT} is not valid JSON: {e}\n{how}"));

    let mut diffs = Vec::new();
    for topic in want.keys().chain(got.keys()).collect::<BTreeSet<_>>() {
        match (want.get(topic), got.get(topic)) {
            (Some(w), Some(g)) if w == g => {}
            (Some(w), Some(g)) => diffs.push(format!("{topic} changed:\n{}", payload_diff(w, g).join("\n"))),
            (Some(_), None) => diffs.push(format!("{topic} is no longer published")),
            (None, Some(g)) => diffs.push(format!("{topic} is new: {g}")),
            (None, None) => unreachable!(),
        }
    }
    assert!(diffs.is_empty(), "discovery payloads differ from {SNAPSHOT}:\n{}\n\n{how}", diffs.join("\n"));
}

// --- Commands and acks -----------------------------------------------------

#[test]
fn volume_shows_the_new_value_only_after_the_toy_confirms() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), command("volume", "30"));
    assert_eq!(
        out.to_toy(),
        vec![json!({"msgId": 1, "identifier": "updatecommonconfig", "inputParams": {"volume": 30}})]
    );
    assert_eq!(out.state("volume"), None, "nothing is shown before the toy answers");
    let last = out.last_command().unwrap();
    assert_eq!(last["entity"], "volume");
    assert_eq!(last["value"], "30");
    assert_eq!(last["outcome"], "pending");
    assert_eq!(last["msg_id"], 1);
    assert_eq!(last["summary"], "Volume 30: waiting for the toy");
    assert_eq!(b.deadline(), Some(TIMEOUT));

    let out = b.at(secs(1), settings_ack(1, 1));
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    let last = out.last_command().unwrap();
    assert_eq!(last["outcome"], "ok");
    assert_eq!(last["summary"], "Volume 30: done");
    assert!(out.save);
    assert!(out.warned().is_empty(), "{:?}", out.warned());
    assert!(out.to_folotoy().is_empty());
    assert_eq!(b.core.next_deadline(), None, "nothing is waiting any more");
    assert_eq!(b.core.in_flight(), 0);
}

#[test]
fn each_setting_sends_only_its_own_field_and_shows_what_the_toy_confirmed() {
    let cases = [
        ("volume", "30", "volume", json!(30), "30"),
        ("volume", "0", "volume", json!(0), "0"),
        ("recording_mode", "Hold to talk", "record_type", json!(2), "Hold to talk"),
        ("recording_mode", "Click to talk", "record_type", json!(1), "Click to talk"),
        ("recording_mode", "continuous", "record_type", json!(3), "Continuous conversation"),
        ("volume_control", "Home Assistant", "volume_control_type", json!(2), "Home Assistant"),
        ("volume_control", "Knob", "volume_control_type", json!(1), "Knob"),
        ("power_on_sound", "OFF", "open_tip_type", json!(0), "OFF"),
        ("power_on_sound", "ON", "open_tip_type", json!(1), "ON"),
        ("low_battery_alarm", "3.6", "voltage_alarm", json!(3.6), "3.6"),
        ("sleep_after", "600", "sleep_trigger_time", json!(600), "600"),
        ("sleep_after", "0", "sleep_trigger_time", json!(0), "0"),
    ];
    let mut b = Bridge::up(config());
    for (i, (key, payload, field, value, shown)) in cases.into_iter().enumerate() {
        let t = secs(i as u64);
        let out = b.at(t, command(key, payload));
        let sent = out.to_toy();
        assert_eq!(sent.len(), 1, "{key} {payload}");
        assert_eq!(sent[0]["identifier"], "updatecommonconfig");
        assert_eq!(sent[0]["inputParams"], json!({ field: value }), "{key} {payload}: only the changed field");
        assert_eq!(out.last_command().unwrap()["outcome"], "pending");

        let out = b.at(t, settings_ack(msg_id(&sent[0]), 1));
        assert_eq!(out.state(key).as_deref(), Some(shown), "{key} {payload}");
        assert_eq!(out.last_command().unwrap()["outcome"], "ok");
        assert!(out.save);
    }
}

#[test]
fn say_speaks_the_text_with_the_speaking_role_and_shows_it_once_spoken() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), command("say", "Dinner is ready"));
    assert_eq!(
        out.to_toy(),
        vec![json!({"msgId": 1, "identifier": "iwantplay", "inputParams": {"role": 1, "text": "Dinner is ready"}})]
    );
    assert_eq!(out.state("say"), None);
    assert_eq!(out.last_command().unwrap()["outcome"], "pending");

    let out = b.at(secs(2), play_ack(1, 1));
    assert_eq!(text(&out, "say").as_deref(), Some("Dinner is ready"));
    assert_eq!(out.last_command().unwrap()["summary"], "Say Dinner is ready: done");
    assert!(out.save);
}

#[test]
fn play_audio_sends_only_the_url_and_shows_it_once_played() {
    let mut b = Bridge::up(config());
    let url = "http://192.168.1.20:8123/local/dinner.mp3";
    let out = b.at(secs(0), command("play_audio", url));
    assert_eq!(out.to_toy(), vec![json!({"msgId": 1, "identifier": "iwantplay", "inputParams": {"url": url}})]);
    assert_eq!(out.state("play_audio"), None);

    let out = b.at(secs(1), play_ack(1, 1));
    assert_eq!(text(&out, "play_audio").as_deref(), Some(url));
    assert_eq!(out.last_command().unwrap()["outcome"], "ok");
}

#[test]
fn a_refused_volume_puts_back_the_last_confirmed_value_with_a_warning() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");

    let out = b.at(secs(1), command("volume", "80"));
    assert_eq!(out.to_toy()[0]["msgId"], 2);
    let out = b.at(secs(2), settings_ack(2, 0));
    assert_eq!(out.state("volume").as_deref(), Some("30"), "the toy still has 30");
    let last = out.last_command().unwrap();
    assert_eq!(last["outcome"], "refused");
    assert_eq!(last["value"], "80");
    assert_eq!(last["summary"], "Volume 80: refused by the toy");
    let warned = out.warned();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].0, CALL);
    assert!(warned[0].1.contains("refused"), "{warned:?}");
    assert!(out.save);
    assert_eq!(b.core.next_deadline(), None);
}

#[test]
fn a_refused_setting_the_toy_never_confirmed_stays_unknown() {
    let mut b = Bridge::up(config());
    b.at(secs(0), command("recording_mode", "Hold to talk"));
    let out = b.at(secs(1), settings_ack(1, 0));
    assert_eq!(out.state("recording_mode").as_deref(), Some("None"));
    assert_eq!(out.last_command().unwrap()["outcome"], "refused");
    assert_eq!(out.warned().len(), 1);
}

#[test]
fn a_refused_say_keeps_showing_what_was_last_spoken() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "say", "Hello");
    b.at(secs(1), command("say", "Goodbye"));
    let out = b.at(secs(2), play_ack(2, 0));
    assert_eq!(text(&out, "say").as_deref(), Some("Hello"));
    assert_eq!(out.last_command().unwrap()["outcome"], "refused");
}

#[test]
fn a_toy_that_never_answers_gets_its_old_value_back_after_the_timeout() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");
    b.at(secs(5), command("volume", "80"));
    assert_eq!(b.deadline(), Some(secs(5) + TIMEOUT));

    let out = b.at(secs(15) - ms(1), Input::Tick);
    assert!(out.publish.is_empty() && out.logs.is_empty(), "too early: {out:?}");
    assert_eq!(b.core.in_flight(), 1);

    let out = b.at(secs(15), Input::Tick);
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    let last = out.last_command().unwrap();
    assert_eq!(last["outcome"], "no_answer");
    assert_eq!(last["msg_id"], 2);
    assert!(last["reason"].as_str().unwrap().contains("10 s"), "{last}");
    assert!(last["summary"].as_str().unwrap().starts_with("Volume 80: no answer from the toy"), "{last}");
    let warned = out.warned();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].0, CALL);
    assert!(out.save);
    assert!(out.to_folotoy().is_empty());
    assert_eq!(b.core.next_deadline(), None);

    // The answer coming after all is not taken for a new command's.
    let out = b.at(secs(16), settings_ack(2, 1));
    assert_eq!(out.state("volume"), None);
    assert_eq!(out.warned().len(), 1);
    assert_eq!(out.warned()[0].0, CALL_ACK);
}

#[test]
fn a_say_nobody_answers_never_shows_as_said() {
    let mut b = Bridge::up(config());
    b.at(secs(0), command("say", "Anyone there?"));
    let out = b.at(TIMEOUT, Input::Tick);
    assert_eq!(text(&out, "say").as_deref(), Some(""), "still nothing said");
    assert_eq!(out.last_command().unwrap()["outcome"], "no_answer");
}

#[test]
fn next_deadline_follows_the_oldest_unanswered_command() {
    let mut b = Bridge::up(config());
    assert_eq!(b.core.next_deadline(), None, "nothing to wait for");

    b.at(secs(0), command("volume", "30"));
    assert_eq!(b.core.next_deadline(), Some(b.t0 + TIMEOUT));
    b.at(secs(3), command("say", "Hi"));
    assert_eq!(b.core.next_deadline(), Some(b.t0 + TIMEOUT), "the older command is due first");

    b.at(secs(4), settings_ack(1, 1));
    assert_eq!(b.core.next_deadline(), Some(b.t0 + secs(3) + TIMEOUT));
    b.at(secs(5), play_ack(2, 1));
    // Then only the media player waits, to go idle once "Hi" is said.
    assert_eq!(b.deadline(), Some(secs(5) + speaking_time("Hi")));
    b.at(secs(5) + speaking_time("Hi"), Input::Tick);
    assert_eq!(b.core.next_deadline(), None);
}

// --- Coalescing ------------------------------------------------------------

#[test]
fn a_dragged_volume_slider_sends_the_first_value_then_only_the_newest() {
    let mut b = Bridge::up(config());
    let mut sent = Vec::new();

    let out = b.at(ms(0), command("volume", "10"));
    sent.extend(out.to_toy());
    assert_eq!(sent.len(), 1);

    for (t, v) in [(ms(100), "20"), (ms(200), "30")] {
        let out = b.at(t, command("volume", v));
        assert!(out.to_folotoy().is_empty(), "{v} must wait for the toy's answer to 10");
        assert!(out.warned().is_empty(), "{:?}", out.warned());
        sent.extend(out.to_toy());
    }
    assert_eq!(b.core.in_flight(), 1);

    let out = b.at(secs(1), settings_ack(1, 1));
    assert_eq!(out.state("volume").as_deref(), Some("10"));
    let next = out.to_toy();
    assert_eq!(next, vec![json!({"msgId": 2, "identifier": "updatecommonconfig", "inputParams": {"volume": 30}})]);
    assert_eq!(out.last_command().unwrap()["value"], "30", "the newest value is now the one waiting");
    assert_eq!(out.last_command().unwrap()["outcome"], "pending");
    assert_eq!(b.deadline(), Some(secs(1) + TIMEOUT));
    sent.extend(next);

    let out = b.at(secs(2), settings_ack(2, 1));
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    assert!(out.to_folotoy().is_empty());
    assert_eq!(b.core.next_deadline(), None);

    let volumes: Vec<&Json> = sent.iter().map(|s| &s["inputParams"]["volume"]).collect();
    assert_eq!(volumes, [&json!(10), &json!(30)], "20 is never sent");
}

#[test]
fn a_value_waiting_behind_a_silent_toy_is_sent_when_the_first_times_out() {
    let mut b = Bridge::up(config());
    b.at(secs(0), command("volume", "10"));
    b.at(secs(1), command("volume", "20"));

    let out = b.at(TIMEOUT, Input::Tick);
    assert_eq!(out.state("volume").as_deref(), Some("None"));
    assert_eq!(
        out.to_toy(),
        vec![json!({"msgId": 2, "identifier": "updatecommonconfig", "inputParams": {"volume": 20}})]
    );
    assert_eq!(b.deadline(), Some(TIMEOUT + TIMEOUT));
}

#[test]
fn different_settings_are_not_held_back_by_each_other() {
    let mut b = Bridge::up(config());
    assert_eq!(b.at(secs(0), command("volume", "10")).to_toy().len(), 1);
    let out = b.at(secs(0), command("recording_mode", "Hold to talk"));
    assert_eq!(
        out.to_toy(),
        vec![json!({"msgId": 2, "identifier": "updatecommonconfig", "inputParams": {"record_type": 2}})]
    );
    assert_eq!(b.core.in_flight(), 2);
}

#[test]
fn two_say_commands_are_both_spoken() {
    let mut b = Bridge::up(config());
    let first = b.at(secs(0), command("say", "One")).to_toy();
    let second = b.at(secs(0), command("say", "Two")).to_toy();
    assert_eq!(first[0]["inputParams"]["text"], "One");
    assert_eq!(second[0]["inputParams"]["text"], "Two");
    assert_eq!((msg_id(&first[0]), msg_id(&second[0])), (1, 2));
    assert_eq!(b.core.in_flight(), 2);

    // Answers may come in any order; each ends its own command.
    let out = b.at(secs(1), play_ack(2, 1));
    assert_eq!(text(&out, "say").as_deref(), Some("Two"));
    let out = b.at(secs(1), play_ack(1, 1));
    assert!(out.warned().is_empty(), "{:?}", out.warned());
    assert_eq!(b.core.in_flight(), 0);
}

// --- Speaking role ---------------------------------------------------------

#[test]
fn choosing_a_speaking_role_asks_nothing_of_the_toy_and_say_then_uses_it() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), command("speaking_role", "Role 3"));
    assert!(out.to_folotoy().is_empty(), "FoloToy has no setting for it");
    assert_eq!(out.state("speaking_role").as_deref(), Some("Role 3"));
    assert!(out.save);
    assert_eq!(b.core.next_deadline(), None);

    let sent = b.at(secs(1), command("say", "I am role three")).to_toy();
    assert_eq!(sent[0]["inputParams"], json!({"role": 3, "text": "I am role three"}));

    // An automation may name the role by its number.
    let out = b.at(secs(2), command("speaking_role", "7"));
    assert_eq!(out.state("speaking_role").as_deref(), Some("Role 7"));
    let sent = b.at(secs(3), command("say", "Seven")).to_toy();
    assert_eq!(sent[0]["inputParams"]["role"], 7);
}

// --- Refused before sending ------------------------------------------------

#[test]
fn out_of_range_values_are_refused_before_reaching_the_toy() {
    let too_long = "a".repeat(256);
    let cases = [
        ("volume", "120"),
        ("volume", "-1"),
        ("volume", "50.5"),
        ("volume", "loud"),
        ("volume", ""),
        ("sleep_after", "10"),
        ("low_battery_alarm", "5"),
        ("recording_mode", "Shout"),
        ("volume_control", "3"),
        ("power_on_sound", "on"),
        ("say", "   "),
        ("say", too_long.as_str()),
        ("play_audio", "file:///etc/passwd"),
        ("speaking_role", "8"),
        ("speaking_role", "Role 9"),
        ("last_command", "x"),
    ];
    let mut b = Bridge::up(config());
    for (key, payload) in cases {
        let out = b.at(secs(0), command(key, payload));
        assert!(out.to_folotoy().is_empty(), "{key} {payload:?} reached the toy");
        let warned = out.warned();
        assert_eq!(warned.len(), 1, "{key} {payload:?}: {warned:?}");
        assert_eq!(warned[0].0, format!("folotoy/{SN}/{key}/set"), "the warning names the command topic");
        assert!(warned[0].1.contains("refused before sending"), "{warned:?}");
        let last = out.last_command().unwrap();
        assert_eq!(last["outcome"], "invalid", "{key} {payload:?}");
        assert_eq!(last["entity"], key);
        assert!(last.get("msg_id").is_none(), "nothing was sent: {last}");
        assert!(last["summary"].as_str().unwrap().chars().count() <= 255);
        assert!(out.save, "the Last command is saved state");
        // Home Assistant may be showing the refused value: put the real one
        // back (Say and Play audio have none until something was said).
        if !matches!(key, "say" | "play_audio" | "last_command") {
            assert!(out.state(key).is_some(), "{key} state not re-published");
        }
        assert_eq!(b.core.next_deadline(), None);
    }
    assert_eq!(b.core.in_flight(), 0);
}

#[test]
fn a_refused_value_leaves_the_confirmed_one_shown() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");
    let out = b.at(secs(1), command("volume", "120"));
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    assert!(out.to_folotoy().is_empty());
}

#[test]
fn commands_for_unknown_toys_unknown_entities_or_bad_serial_numbers_are_ignored() {
    for cfg in [config(), open_config()] {
        let mut b = Bridge::up(cfg);
        for (sn, key, why) in [
            (BEAR, "volume", "unknown toy"),
            (SN, "bass", "unknown entity"),
            (SN, "Volume", "unknown entity"),
            ("bad+sn12", "volume", "command ignored"),
            ("short", "volume", "command ignored"),
        ] {
            let out = b.at(secs(0), command_to(sn, key, "30"));
            assert!(out.publish.is_empty(), "{sn}/{key}: {:?}", out.publish);
            let warned = out.warned();
            assert_eq!(warned.len(), 1, "{sn}/{key}: {warned:?}");
            assert_eq!(warned[0].0, format!("folotoy/{sn}/{key}/set"));
            assert!(warned[0].1.contains(why), "{sn}/{key}: {warned:?}");
            assert!(!out.save);
        }
        assert_eq!(b.core.toys().collect::<Vec<_>>(), [&sn(SN)], "a command never adds a toy");
        assert_eq!(b.core.in_flight(), 0);
    }
}

// --- Acks ------------------------------------------------------------------

#[test]
fn acks_that_match_no_sent_command_change_nothing_but_last_activity() {
    let mut b = Bridge::up(config_with(&[(SN, Some("Bunny")), (BEAR, Some("Bear"))], false, 8));
    b.at(secs(0), command("volume", "30"));

    for (input, topic, why) in [
        (settings_ack(99, 1), CALL_ACK, "not waiting"),
        (ack(BEAR, "updatecommonconfig", 1, 1), "/sys/folotoy/08d1f9c6a310/thing/command/callAck", "does not match"),
        (ack(SN, "iwantplay", 1, 1), CALL_ACK, "does not match"),
    ] {
        let out = b.at(secs(1), input);
        // The toy answered something: it is alive, whatever it answered.
        let changed: Vec<_> = out.publish.iter().filter(|p| !p.topic.ends_with("/last_activity")).collect();
        assert!(changed.is_empty(), "{changed:?}");
        let warned = out.warned();
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert_eq!(warned[0].0, topic);
        assert!(warned[0].1.contains(why), "{warned:?}");
        assert!(!out.save);
        assert_eq!(b.core.in_flight(), 1);
        assert_eq!(b.deadline(), Some(TIMEOUT));
    }

    let out = b.at(secs(2), settings_ack(1, 1));
    assert_eq!(out.state("volume").as_deref(), Some("30"), "the real answer still counts");
}

// --- Unknown toys ----------------------------------------------------------

#[test]
fn an_unknown_toy_that_speaks_is_added_when_unknown_toys_are_allowed() {
    let mut b = Bridge::up(open_config());
    let out = b.at(secs(0), voice_from(BEAR));
    assert!(out.save);
    assert!(out.warned().is_empty(), "{:?}", out.warned());
    let configs = out.configs();
    assert_eq!(configs.keys().cloned().collect::<BTreeSet<_>>(), toy_config_topics(BEAR));
    let volume = &configs[&discovery_topic("number", "folotoy_08d1f9c6a310", "volume")];
    assert_eq!(volume["device"]["name"], "FoloToy 08d1f9c6a310");
    assert_eq!(volume["device"]["via_device"], "folotoy_bridge");
    assert_eq!(out.retained("folotoy/08d1f9c6a310/volume").as_deref(), Some("None"));
    assert_eq!(b.core.toys().count(), 2);
    assert!(listed(&b.core.snapshot()).is_superset(&toy_config_topics(BEAR)));

    // Once known, it takes commands and speaks again without more noise.
    let out = b.at(secs(1), command_to(BEAR, "volume", "40"));
    assert_eq!(out.to_folotoy()[0].0, "/sys/folotoy/08d1f9c6a310/thing/command/call");
    let out = b.at(secs(2), voice_from(BEAR));
    assert!(out.configs().is_empty() && out.logs.is_empty(), "{out:?}");
}

#[test]
fn an_unknown_toy_met_before_home_assistant_is_up_appears_when_it_connects() {
    let mut b = Bridge::start(open_config());
    let out = b.at(secs(0), voice_from(BEAR));
    assert!(out.save);
    assert!(out.publish.is_empty(), "Home Assistant is not connected: {:?}", out.publish);

    let out = b.at(secs(1), Input::HaUp);
    assert!(out.configs().keys().cloned().collect::<BTreeSet<_>>().is_superset(&toy_config_topics(BEAR)));
}

#[test]
fn an_unknown_toy_is_refused_with_one_warning_when_unknown_toys_are_not_allowed() {
    let mut b = Bridge::up(config());
    let bear_call = "/sys/folotoy/08d1f9c6a310/thing/command/call".to_owned();
    let inputs =
        [voice_from(BEAR), ack(BEAR, "iwantplay", 1, 1), folotoy(bear_call, json!({"msgId": 1})), voice_from(BEAR)];
    let mut warnings = Vec::new();
    for input in inputs {
        let out = b.at(secs(0), input);
        assert!(out.publish.is_empty(), "{:?}", out.publish);
        assert!(!out.save);
        warnings.extend(out.warned().into_iter().map(|(t, m)| (t.to_owned(), m.to_owned())));
    }
    assert_eq!(warnings.len(), 1, "one warning per toy, not per message: {warnings:?}");
    assert!(warnings[0].0.contains(BEAR));
    assert!(warnings[0].1.contains("allow_unknown_toys"), "{warnings:?}");

    // Another stranger gets its own warning.
    let out = b.at(secs(1), voice_from("F234103026"));
    assert_eq!(out.warned().len(), 1);
    assert_eq!(b.core.toys().collect::<Vec<_>>(), [&sn(SN)]);
}

#[test]
fn no_more_toys_than_max_toys_are_added() {
    let mut b = Bridge::up(config_with(&[(SN, Some("Bunny"))], true, 2));
    assert!(b.at(secs(0), voice_from(BEAR)).save);

    let out = b.at(secs(1), voice_from("F234103026"));
    assert!(out.publish.is_empty() && !out.save, "{out:?}");
    let warned = out.warned();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].1.contains("max_toys"), "{warned:?}");
    assert!(b.at(secs(2), voice_from("F234103026")).warned().is_empty(), "warned once");
    assert_eq!(b.core.toys().count(), 2);
    assert_eq!(b.core.snapshot().toys.len(), 2);
}

#[test]
fn a_serial_number_differing_only_in_case_is_refused() {
    let mut b = Bridge::up(open_config());
    let out = b.at(secs(0), voice_from("FCB467DAD0C0"));
    assert!(out.publish.is_empty() && !out.save, "{out:?}");
    let warned = out.warned();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].1.contains("only in case"), "{warned:?}");
    assert_eq!(b.core.toys().collect::<Vec<_>>(), [&sn(SN)]);
}

#[test]
fn an_event_this_bridge_does_not_know_is_logged_and_ignored() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), event_from(SN, "battery_low"));
    // The toy was still heard from.
    let topics: Vec<&str> = out.publish.iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(topics, ["folotoy/fcb467dad0c0/last_activity"]);
    let warned = out.warned();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].0, "/sys/folotoy/fcb467dad0c0/thing/event/post");
    assert!(warned[0].1.contains("battery_low"));
}

// --- Device-based discovery -----------------------------------------------

#[test]
fn entities_of_an_older_release_move_to_one_device_config_the_way_home_assistant_documents() {
    // What the release before device-based discovery saved: a config per entity.
    let old: BTreeSet<String> = toy_config_topics(SN)
        .into_iter()
        .chain(bridge_config_topics())
        .filter(|t| t != INTEGRATION_CONFIG) // newer than that release
        .collect();
    let saved =
        Snapshot { discovery_topics: Arc::new(serde_json::from_value(json!(old)).unwrap()), ..Default::default() };
    let saved = through_disk(saved);
    let mut b = Bridge::restore(config(), saved);
    let out = b.at(secs(0), Input::HaUp);

    let at = |topic: &str, payload: &[u8]| {
        out.publish.iter().position(|p| p.topic == topic && p.payload == payload).unwrap_or_else(|| panic!("{topic}"))
    };
    let migrate = br#"{"migrate_discovery": true}"#;
    let player = discovery_topic("folotoy", &format!("folotoy_{SN}"), "media_player");
    for topic in old.iter().filter(|t| **t != player) {
        let node = topic.split('/').nth(2).unwrap();
        let device = out.publish.iter().position(|p| p.topic == format!("homeassistant/device/{node}/config")).unwrap();
        // Migrate, then empty, both before the device's config takes the entity over.
        assert!(at(topic, migrate) < at(topic, b"") && at(topic, b"") < device, "{topic}");
        assert!(!out.publish[at(topic, migrate)].retain, "an instruction, not a config");
    }
    assert!(!out.cleared().contains(&player), "the media player's config stays where it is");
    // The same ids: Home Assistant keeps entity ids, names and history by them.
    let now: BTreeSet<String> = old.iter().cloned().chain([INTEGRATION_CONFIG.to_owned()]).collect();
    assert_eq!(out.configs().keys().cloned().collect::<BTreeSet<_>>(), now);
    assert!(out.logs.iter().any(|l| l.message.contains("one device-based discovery config")), "{:?}", out.logs);
    assert!(out.save);

    // Moved once: the next connection has nothing to move or clear.
    let out = b.at(secs(1), Input::HaUp);
    assert!(out.publish.iter().all(|p| p.payload != migrate), "{:?}", out.publish);
    assert!(out.cleared().is_empty(), "{:?}", out.cleared());
}

#[test]
fn an_entity_a_toy_no_longer_has_is_removed_through_its_device_config() {
    let before = Bridge::up(config());
    let saved = through_disk(before.core.snapshot());
    // No history kept any more: no day-at-a-glance sensors.
    let mut after = Bridge::restore(CoreConfig { glance: None, ..config() }, saved);
    let out = after.at(secs(0), Input::HaUp);
    let device = format!("homeassistant/device/folotoy_{SN}/config");
    let config: Json = serde_json::from_str(&out.retained(&device).unwrap()).unwrap();
    assert_eq!(config["components"]["talk_time_today"], json!({"platform": "sensor"}));
    assert_eq!(config["components"]["exchanges_today"], json!({"platform": "sensor"}));
    assert!(out.configs().keys().all(|t| !t.contains("_today/")));
    assert!(out.cleared().is_empty(), "emptying a component's old topic would do nothing: {:?}", out.cleared());

    // Said once: the next config leaves them out.
    let out = after.at(secs(1), Input::HaUp);
    let config: Json = serde_json::from_str(&out.retained(&device).unwrap()).unwrap();
    assert!(config["components"].get("talk_time_today").is_none(), "{config}");
}

#[test]
fn every_platform_the_bridge_publishes_on_is_one_it_looks_for_when_moving_entities() {
    let mut b = Bridge::start(config());
    for topic in b.at(secs(0), Input::HaUp).configs().keys() {
        let platform = topic.split('/').nth(1).unwrap();
        assert!(platform == "folotoy" || PLATFORMS.contains(&platform), "{topic}");
    }
}

// --- Home Assistant restarts -----------------------------------------------

#[test]
fn home_assistant_restart_republishes_everything_after_a_short_delay() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");

    let out = b.at(secs(10), birth());
    assert!(out.publish.is_empty(), "Home Assistant is still subscribing: {:?}", out.publish);
    assert!(out.warned().is_empty());
    assert_eq!(b.core.next_deadline(), Some(b.t0 + secs(10) + REPUBLISH_DELAY));

    let out = b.at(secs(10) + REPUBLISH_DELAY - ms(1), Input::Tick);
    assert!(out.publish.is_empty(), "too early");

    let out = b.at(secs(10) + REPUBLISH_DELAY, Input::Tick);
    let expected: BTreeSet<String> = bridge_config_topics().into_iter().chain(toy_config_topics(SN)).collect();
    assert_eq!(out.configs().keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(out.retained("folotoy/bridge/state").as_deref(), Some("online"));
    assert_eq!(out.retained("folotoy/bridge/folotoy").as_deref(), Some("online"));
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    for e in TOY.iter().filter(|e| retains_state(e)) {
        assert!(out.state(e.key.as_str()).is_some(), "{} not re-published", e.key);
    }
    assert!(out.cleared().is_empty());
    assert_eq!(b.core.next_deadline(), None);
}

#[test]
fn several_home_assistant_births_in_a_row_give_one_republish() {
    let mut b = Bridge::up(config());
    for t in [secs(10), secs(10) + ms(500), secs(11)] {
        assert!(b.at(t, birth()).publish.is_empty());
    }
    assert_eq!(b.deadline(), Some(secs(10) + REPUBLISH_DELAY));

    let out = b.at(secs(13), Input::Tick);
    assert_eq!(out.configs().len(), toy_config_topics(SN).len() + bridge_config_topics().len());
    assert_eq!(b.core.next_deadline(), None);
    assert!(b.at(secs(14), Input::Tick).publish.is_empty(), "published once");
}

#[test]
fn home_assistant_going_offline_publishes_nothing() {
    let mut b = Bridge::up(config());
    let topic = "homeassistant/status".to_owned();
    let msg = ha::inbound::parse(&topics(), &topic, b"offline", false).unwrap();
    let out = b.at(secs(1), Input::Ha { topic, msg, at: wall_clock() });
    assert!(out.publish.is_empty() && out.warned().is_empty());
    assert_eq!(b.core.next_deadline(), None);
}

// --- Bridge restarts -------------------------------------------------------

#[test]
fn settings_and_speaking_role_survive_a_restart() {
    let mut before = Bridge::up(config());
    before.confirm(secs(0), "volume", "30");
    before.confirm(secs(1), "recording_mode", "Hold to talk");
    before.confirm(secs(2), "low_battery_alarm", "3.65");
    before.confirm(secs(3), "say", "Good night");
    before.at(secs(4), command("speaking_role", "Role 4"));
    let saved = through_disk(before.core.snapshot());

    let mut after = Bridge::restore(config(), saved);
    let out = after.at(secs(0), Input::HaUp);
    after.at(secs(0), Input::FoloToyUp);
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    assert_eq!(out.state("recording_mode").as_deref(), Some("Hold to talk"));
    assert_eq!(out.state("low_battery_alarm").as_deref(), Some("3.65"));
    assert_eq!(out.state("power_on_sound").as_deref(), Some("None"), "never confirmed");
    assert_eq!(out.state("speaking_role").as_deref(), Some("Role 4"));
    assert_eq!(text(&out, "say").as_deref(), Some("Good night"));
    assert_eq!(out.last_command().unwrap()["summary"], "Say Good night: done");
    assert!(out.cleared().is_empty(), "{:?}", out.cleared());
    assert!(!out.save, "the same discovery topics as before");

    // Say speaks with the saved role, and msgIds go on where they were.
    let sent = after.at(secs(1), command("say", "Morning")).to_toy();
    assert_eq!(sent[0]["inputParams"]["role"], 4);
    assert_eq!(sent[0]["msgId"], 5);
}

/// A state file as the bridge before the concerns kept their own parts wrote
/// it: every field of a toy set (Bunny mid-announcement, quiet, with a
/// conversation; a toy that appeared by itself), a roles reload, a deleted toy
/// and a watch word added on the page.
const STATE_FILE: &str = "tests/fixtures/state-file.json";

#[test]
fn a_state_file_written_by_the_release_before_loads_and_is_saved_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let written = fs::read(STATE_FILE).unwrap();
    fs::write(&path, &written).unwrap();
    let crate::store::Found::Saved(saved) = crate::store::load(&path).unwrap() else { panic!("not loaded") };
    let b = Bridge::restore(open_config(), saved.clone());
    assert_eq!(b.core.snapshot(), saved, "nothing lost, nothing changed");
    crate::store::save(&path, &b.core.snapshot()).unwrap();
    assert_eq!(String::from_utf8(fs::read(&path).unwrap()).unwrap(), String::from_utf8(written).unwrap());
}

#[test]
fn a_sent_command_asks_to_save_so_a_restart_never_reuses_its_msg_id() {
    let mut before = Bridge::up(config());
    let out = before.at(secs(0), command("volume", "30"));
    assert!(out.save, "a msgId was used up");
    let saved = through_disk(before.core.snapshot());

    let mut after = Bridge::restore(config(), saved);
    after.at(secs(0), Input::HaUp);
    after.at(secs(0), Input::FoloToyUp);
    let sent = after.at(secs(1), command("volume", "40")).to_toy();
    assert_eq!(sent[0]["msgId"], 2);
    // A late answer to the first bridge's command is not taken for this one.
    let out = after.at(secs(2), settings_ack(1, 1));
    assert_eq!(out.state("volume"), None);
    assert_eq!(out.warned().len(), 1);
}

#[test]
fn a_command_waiting_for_its_answer_at_shutdown_shows_no_answer_after_restart() {
    let mut before = Bridge::up(config());
    before.confirm(secs(0), "volume", "30");
    before.at(secs(1), command("volume", "80"));
    let saved = through_disk(before.core.snapshot());
    assert_eq!(saved.toys[&sn(SN)].last_command.as_ref().unwrap().outcome, Outcome::Pending);

    let mut after = Bridge::restore(config(), saved);
    assert_eq!(after.core.next_deadline(), None, "nothing is in flight after a restart");
    let out = after.at(secs(0), Input::HaUp);
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    let last = out.last_command().unwrap();
    assert_eq!(last["outcome"], "no_answer");
    assert_eq!(last["value"], "80");
    assert!(last["reason"].as_str().unwrap().contains("restarted"), "{last}");
}

#[test]
fn a_toy_no_longer_configured_has_its_entities_removed_from_home_assistant() {
    let two = || config_with(&[(SN, Some("Bunny")), (BEAR, Some("Bear"))], false, 8);
    let mut before = Bridge::up(two());
    before.confirm(secs(0), "volume", "30");
    let saved = through_disk(before.core.snapshot());
    assert!(listed(&saved).is_superset(&toy_config_topics(BEAR)));

    let mut after = Bridge::restore(config(), saved);
    assert_eq!(after.core.toys().collect::<Vec<_>>(), [&sn(SN)]);
    let out = after.at(secs(0), Input::HaUp);
    assert_eq!(out.cleared(), toy_retained_topics(BEAR));
    // The media player's first: Home Assistant removes the device with its last entity.
    let emptied: Vec<&str> = out
        .publish
        .iter()
        .filter(|p| p.payload.is_empty() && p.topic.contains(BEAR))
        .map(|p| p.topic.as_str())
        .collect();
    assert!(
        emptied[0].ends_with("/media_player/config") && emptied[1].starts_with("homeassistant/device/"),
        "{emptied:?}"
    );
    assert!(out.configs().keys().all(|t| !t.contains(BEAR)), "Bear must not be published again");
    assert_eq!(out.state("volume").as_deref(), Some("30"), "Bunny is untouched");
    assert!(out.logs.iter().any(|l| l.topic.contains(BEAR) && l.message.contains("clearing")));
    assert!(out.save);
    let snapshot = after.core.snapshot();
    assert!(listed(&snapshot).is_disjoint(&toy_config_topics(BEAR)));
    assert!(!snapshot.toys.contains_key(&sn(BEAR)));

    // Cleared once: the next connection has nothing left to clear.
    let out = after.at(secs(1), Input::HaUp);
    assert!(out.cleared().is_empty());
    assert!(!out.save);
}

#[test]
fn a_discovered_toy_stays_after_a_restart_when_unknown_toys_are_allowed() {
    let mut before = Bridge::up(open_config());
    before.at(secs(0), voice_from(BEAR));
    let saved = through_disk(before.core.snapshot());

    let mut after = Bridge::restore(open_config(), saved);
    let out = after.at(secs(0), Input::HaUp);
    assert!(out.cleared().is_empty());
    assert!(out.configs().keys().cloned().collect::<BTreeSet<_>>().is_superset(&toy_config_topics(BEAR)));
}

/// Home Assistant emptying `sn`'s watched discovery config, as deleting its
/// device there does.
fn deleted_in_ha(sn: &str) -> Input {
    let topic = format!("homeassistant/device/folotoy_{}/config", sn.to_lowercase());
    let msg = ha::inbound::parse(&topics(), &topic, b"", true).expect("a watched discovery topic");
    Input::Ha { topic, msg, at: wall_clock() }
}

#[test]
fn a_toy_deleted_in_home_assistant_that_appeared_by_itself_is_forgotten_and_kept_out() {
    let mut b = Bridge::up(open_config());
    b.at(secs(0), voice_from(BEAR));
    let out = b.at(secs(1), deleted_in_ha(BEAR));
    // Home Assistant emptied the device's config (emptied twice, it warns).
    let player = discovery_topic("folotoy", &format!("folotoy_{BEAR}"), "media_player");
    assert_eq!(out.cleared(), BTreeSet::from([player]), "every config of it is emptied");
    assert!(out.configs().is_empty());
    assert_eq!(b.core.toys().collect::<Vec<_>>(), [&sn(SN)]);
    assert!(out.save);
    assert!(out.warned().is_empty(), "{:?}", out.warned());

    // It talks again: kept out, said once.
    let out = b.at(secs(2), voice_from(BEAR));
    assert!(out.publish.is_empty(), "{:?}", out.publish);
    assert!(out.warned()[0].1.contains("deleted in Home Assistant"), "{:?}", out.warned());
    assert!(b.at(secs(3), voice_from(BEAR)).warned().is_empty(), "warned once");

    // Over a restart too, and Home Assistant coming back does not bring it back.
    let saved = through_disk(b.core.snapshot());
    let mut again = Bridge::restore(open_config(), saved.clone());
    let out = again.at(secs(0), Input::HaUp);
    assert!(out.configs().keys().all(|t| !t.contains(&BEAR.to_lowercase())));
    assert!(again.at(secs(1), voice_from(BEAR)).publish.is_empty());

    // Listing it brings it back.
    let listed = config_with(&[(SN, Some("Bunny")), (BEAR, Some("Bear"))], true, 8);
    let mut listed = Bridge::restore(listed, saved);
    let out = listed.at(secs(0), Input::HaUp);
    assert!(out.configs().keys().any(|t| t.contains(&BEAR.to_lowercase())));
}

#[test]
fn a_listed_toy_deleted_in_home_assistant_stays_with_a_warning_saying_how_to_remove_it() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(1), deleted_in_ha(SN));
    assert!(out.cleared().is_empty());
    assert!(out.warned()[0].1.contains("listed in folotoy.toys"), "{:?}", out.warned());
    assert_eq!(b.core.toys().collect::<Vec<_>>(), [&sn(SN)]);
}

/// The toys the page lists as kept out, with when they were deleted.
fn kept_out(b: &Bridge) -> Vec<(String, Option<u64>)> {
    b.core.view().kept_out.into_iter().map(|k| (k.sn, k.deleted_ms)).collect()
}

#[test]
fn a_toy_deleted_in_home_assistant_is_listed_as_kept_out_with_when_over_a_restart() {
    let mut b = Bridge::up(open_config());
    b.at(secs(0), voice_from(BEAR));
    assert!(kept_out(&b).is_empty());
    b.at(secs(1), deleted_in_ha(BEAR));
    let when = Some(crate::dates::unix_ms(wall_clock()));
    assert_eq!(kept_out(&b), [(BEAR.to_owned(), when)]);
    // It talks: kept out, and listed once, not again among the toys refused for another reason.
    b.at(secs(2), voice_from(BEAR));
    assert!(b.core.view().refused.is_empty(), "{:?}", b.core.view().refused);
    let again = Bridge::restore(open_config(), through_disk(b.core.snapshot()));
    assert_eq!(kept_out(&again), [(BEAR.to_owned(), when)]);
    assert_eq!(again.core.kept_out().collect::<Vec<_>>(), [(&sn(BEAR), when)]);
}

#[test]
fn a_toy_let_back_in_is_back_in_home_assistant_at_once_and_stays_over_a_restart() {
    let mut b = Bridge::up(open_config());
    b.at(secs(0), voice_from(BEAR));
    b.at(secs(1), deleted_in_ha(BEAR));
    b.at(secs(2), voice_from(BEAR)); // refused, and warned about

    let out = b.core.let_back_in(&sn(BEAR), b.t0 + secs(3)).expect("let back in");
    assert!(kept_out(&b).is_empty());
    assert_eq!(b.core.toys().collect::<Vec<_>>(), [&sn(BEAR), &sn(SN)]);
    let published: BTreeSet<String> = out.configs().keys().cloned().collect();
    assert!(published.is_superset(&toy_config_topics(BEAR)), "its entities are back: {published:?}");
    assert!(out.save);
    assert!(out.logs.iter().any(|l| l.message.contains("let back in")), "{:?}", out.logs);
    // It talks: heard, not refused.
    let out = b.at(secs(4), voice_from(BEAR));
    assert!(out.warned().is_empty(), "{:?}", out.warned());
    assert!(out.retained(&format!("folotoy/{BEAR}/last_activity")).is_some());

    let saved = through_disk(b.core.snapshot());
    assert!(saved.deleted_toys.is_empty() && saved.deleted_toys_at.is_empty());
    let mut again = Bridge::restore(open_config(), saved);
    assert!(kept_out(&again).is_empty());
    let out = again.at(secs(0), Input::HaUp);
    assert!(out.configs().keys().any(|t| t.contains(BEAR)));

    // Deleted again later, it is kept out again, and said so again when it talks.
    b.at(secs(5), deleted_in_ha(BEAR));
    let warned = b.at(secs(6), voice_from(BEAR));
    assert!(warned.warned().first().is_some_and(|w| w.1.contains("deleted in Home Assistant")), "{:?}", warned.logs);
}

#[test]
fn letting_back_in_a_toy_not_kept_out_or_one_another_rule_keeps_out_changes_nothing() {
    // Room for two toys: Bunny and Bear; Bear is deleted, and Cat takes its place.
    let cat = "0c0a0b0d0e0f";
    let mut b = Bridge::up(config_with(&[(SN, Some("Bunny"))], true, 2));
    b.at(secs(0), voice_from(BEAR));
    b.at(secs(1), deleted_in_ha(BEAR));
    b.at(secs(2), voice_from(cat));
    let refused = b.core.let_back_in(&sn(BEAR), b.t0 + secs(3)).unwrap_err();
    assert!(refused.contains("folotoy.max_toys (2) is reached"), "{refused}");
    assert_eq!(kept_out(&b).len(), 1, "still kept out");
    assert!(!b.core.toys().any(|s| *s == sn(BEAR)));

    let refused = b.core.let_back_in(&sn(cat), b.t0 + secs(3)).unwrap_err();
    assert!(refused.contains("is not kept out"), "{refused}");
    let refused = b.core.let_back_in(&sn("1a2b3c4d5e6f"), b.t0 + secs(3)).unwrap_err();
    assert!(refused.contains("is not kept out"), "{refused}");

    // Unknown toys no longer allowed (a saved deletion from before): it would only be refused.
    let saved = through_disk(b.core.snapshot());
    let (mut closed, _) = Bridge::restore_with_logs(config_with(&[(SN, Some("Bunny"))], false, 8), saved);
    let refused = closed.core.let_back_in(&sn(BEAR), closed.t0).unwrap_err();
    assert!(refused.contains("allow_unknown_toys is false"), "{refused}");
    assert_eq!(kept_out(&closed).len(), 1);
}

#[test]
fn a_deletion_saved_by_an_older_bridge_without_when_still_keeps_the_toy_out() {
    let saved: Snapshot = serde_json::from_value(json!({"version": 1, "deleted_toys": [BEAR]})).unwrap();
    let mut b = Bridge::restore(open_config(), saved);
    assert_eq!(kept_out(&b), [(BEAR.to_owned(), None)]);
    b.at(secs(0), Input::HaUp);
    b.at(secs(0), Input::FoloToyUp);
    assert!(b.at(secs(1), voice_from(BEAR)).publish.is_empty());
    // Saved again, as an older bridge still reads it: the list, and no time made up.
    let saved = b.core.snapshot();
    assert_eq!(saved.deleted_toys, BTreeSet::from([sn(BEAR)]));
    assert!(saved.deleted_toys_at.is_empty());
}

#[test]
fn the_bridges_own_configs_coming_back_change_nothing() {
    let mut b = Bridge::up(open_config());
    let topic = format!("homeassistant/device/folotoy_{SN}/config");
    let msg = ha::inbound::parse(&topics(), &topic, b"{\"device\": {}}", true).unwrap();
    assert!(b.at(secs(1), Input::Ha { topic, msg, at: wall_clock() }).publish.is_empty());
    // An emptied config the bridge does not hold (it emptied it itself).
    assert!(b.at(secs(1), deleted_in_ha("0a0b0c0d0e0f")).publish.is_empty());
}

#[test]
fn a_toy_taken_off_the_list_that_was_never_heard_from_is_removed_from_home_assistant() {
    // Bunny and a mistyped Bear were listed; Bear never talked. Both are
    // taken off the list; unknown toys are allowed.
    let typo = "08d1f9c6a31";
    let listed = config_with(&[(SN, Some("Bunny")), (typo, Some("Bear"))], true, 8);
    let mut before = Bridge::up(listed);
    before.at(secs(0), heard(1, "hello"));
    let saved = through_disk(before.core.snapshot());

    let (mut after, logs) = Bridge::restore_with_logs(config_with(&[], true, 8), saved);
    assert_eq!(after.core.toys().collect::<Vec<_>>(), [&sn(SN)], "Bunny talked: it stays as a discovered toy");
    assert!(logs.iter().any(|l| l.message.contains(typo) && l.message.contains("never heard from")), "{logs:?}");
    let mut out = after.at(secs(0), Input::HaUp);
    while out.more {
        let more = after.at(secs(0), Input::Continue);
        out.publish.extend(more.publish);
        out.more = more.more;
    }
    assert_eq!(out.cleared(), toy_retained_topics(typo), "the mistyped toy's entities are removed");
}

#[test]
fn out_of_range_saved_values_are_dropped_with_a_warning() {
    let mut toy = ToyState::default();
    toy.settings.set(Setting::Volume, Value::Int(400));
    toy.settings.set(Setting::RecordType, Value::Int(2));
    toy.role = 9;
    let mut saved = Snapshot::default();
    saved.toys.insert(sn(SN), toy);

    let (mut b, logs) = Bridge::restore_with_logs(config(), through_disk(saved));
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].level, Level::Warn);
    assert_eq!(logs[0].topic, "folotoy/fcb467dad0c0/#");
    assert!(logs[0].message.contains("volume") && logs[0].message.contains("400"), "{logs:?}");

    let out = b.at(secs(0), Input::HaUp);
    assert_eq!(out.state("volume").as_deref(), Some("None"));
    assert_eq!(out.state("recording_mode").as_deref(), Some("Hold to talk"));
    assert_eq!(out.state("speaking_role").as_deref(), Some("Role 1"), "role 9 does not exist");
}

#[test]
fn a_saved_toy_differing_only_in_case_from_a_configured_one_is_left_out() {
    let mut saved = Snapshot::default();
    let heard_from = ToyState { last_activity_ms: Some(1), ..ToyState::default() };
    saved.toys.insert(sn("FCB467DAD0C0"), heard_from);
    let (b, logs) = Bridge::restore_with_logs(open_config(), saved);
    assert_eq!(b.core.toys().collect::<Vec<_>>(), [&sn(SN)]);
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].message.contains("only in case"), "{logs:?}");
}

// --- The FoloToy connection ------------------------------------------------

#[test]
fn folotoy_connection_is_shown_only_once_home_assistant_is_up() {
    let mut b = Bridge::start(config());
    let out = b.at(secs(0), Input::FoloToyUp);
    assert!(out.publish.is_empty(), "Home Assistant's broker is not connected: {:?}", out.publish);

    let out = b.at(secs(1), Input::HaUp);
    assert_eq!(out.retained("folotoy/bridge/folotoy").as_deref(), Some("online"));

    let out = b.at(secs(2), Input::FoloToyDown);
    assert_eq!(out.publish.len(), 1);
    assert_eq!(out.retained("folotoy/bridge/folotoy").as_deref(), Some("offline"));

    let out = b.at(secs(3), Input::FoloToyUp);
    assert_eq!(out.publish.len(), 1);
    assert_eq!(out.retained("folotoy/bridge/folotoy").as_deref(), Some("online"));
}

// --- Conversations -----------------------------------------------------------

/// Bunny heard the child say `text` (under `recordingText`).
fn heard(recording_id: i64, text: &str) -> Input {
    folotoy(
        format!("/sys/folotoy/{SN}/thing/event/post"),
        json!({"msgId": 1, "identifier": "recording_transcribed",
               "inputParams": {"recordingId": recording_id, "recordingText": text}}),
    )
}

/// One sentence of Bunny's answer to recording `recording_id`.
fn said(recording_id: i64, order: i64, text: &str) -> Input {
    folotoy(
        format!("/sys/folotoy/{SN}/thing/event/post"),
        json!({"msgId": 2, "identifier": "voice_generated",
               "inputParams": {"recordingId": recording_id, "order": order, "voiceText": text,
                               "voiceUrl": format!("http://h/{recording_id}-{order}.mp3"), "role": 3}}),
    )
}

/// The events fired on Bunny's Conversation entity, as JSON; never retained.
fn conversation_events(out: &Output) -> Vec<Json> {
    out.publish
        .iter()
        .filter(|p| p.topic == format!("folotoy/{SN}/conversation"))
        .map(|p| {
            assert!(!p.retain, "an event must not fire again when Home Assistant reconnects");
            serde_json::from_slice(&p.payload).expect("events are JSON")
        })
        .collect()
}

fn sensor(out: &Output, key: &str) -> Json {
    serde_json::from_str(&out.state(key).unwrap_or_else(|| panic!("no {key} state"))).expect("JSON state")
}

#[test]
fn what_the_child_said_shows_in_heard_and_fires_a_heard_event() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), heard(7, "I want a bath"));
    let h = sensor(&out, "heard");
    assert_eq!(h["summary"], "I want a bath");
    assert_eq!(h["text"], "I want a bath");
    assert_eq!(h["recording_id"], 7);
    assert_eq!(conversation_events(&out), [json!({"event_type": "heard", "text": "I want a bath", "recording_id": 7})]);
    assert_eq!(out.state("last_activity").as_deref(), Some("2026-11-25T12:00:00.000+00:00"));
    assert!(out.save_soon, "what the toy reported survives a restart");
    assert!(out.warned().is_empty());

    // `text` instead of `recordingText`, and fields nobody documented, are fine.
    let out = b.at(
        secs(1),
        folotoy(
            format!("/sys/folotoy/{SN}/thing/event/post"),
            json!({"identifier": "recording_transcribed", "inputParams": {"recordingId": 8, "text": "bath", "lang": "en"}}),
        ),
    );
    assert_eq!(sensor(&out, "heard")["summary"], "bath");
}

#[test]
fn events_go_out_at_most_once_and_states_and_commands_at_least_once() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), heard(7, "I want a bath"));
    let (events, states): (Vec<_>, Vec<_>) = out.publish.iter().partition(|p| p.at_most_once);
    assert_eq!(events.iter().map(|p| p.topic.as_str()).collect::<Vec<_>>(), [format!("folotoy/{SN}/conversation")]);
    assert!(!states.is_empty() && states.iter().all(|p| p.retain), "{states:?}");
    let out = b.at(secs(1), command("volume", "30"));
    assert!(out.publish.iter().all(|p| !p.at_most_once), "a command to a toy waits for its ack: {:?}", out.publish);
}

#[test]
fn a_long_sentence_is_cut_to_255_characters_in_the_state_and_kept_whole_in_attributes() {
    let mut b = Bridge::up(config());
    let long = "兔".repeat(1000);
    let out = b.at(secs(0), heard(1, &long));
    let h = sensor(&out, "heard");
    assert_eq!(h["summary"].as_str().unwrap().chars().count(), 255);
    assert_eq!(h["text"], long.as_str());
    assert_eq!(conversation_events(&out)[0]["text"], long.as_str());
}

#[test]
fn an_answer_in_several_sentences_is_shown_joined_in_order_whatever_order_they_arrive() {
    let mut b = Bridge::up(config());
    b.at(secs(0), heard(31, "Tell me a story"));
    let out = b.at(secs(1), said(31, 2, " a bunny lived in a hole."));
    assert_eq!(sensor(&out, "said")["summary"], "a bunny lived in a hole.", "FoloToy's leading spaces are trimmed");
    let out = b.at(secs(2), said(31, 1, "Once upon a time,"));
    let s = sensor(&out, "said");
    assert_eq!(s["summary"], "Once upon a time, a bunny lived in a hole.");
    assert_eq!(s["recording_id"], 31);
    assert_eq!(s["role"], 3);
    assert_eq!(s["voice_urls"], json!(["http://h/31-1.mp3", "http://h/31-2.mp3"]));
    let events = conversation_events(&out);
    assert_eq!(events[0]["event_type"], "said");
    assert_eq!(events[0]["text"], "Once upon a time,");
    assert_eq!(events[0].get("answer"), None, "the whole answer is the Said sensor's");
    assert_eq!(events[0]["order"], 1);

    // A sentence sent twice is shown once.
    let out = b.at(secs(3), said(31, 2, " a bunny lived in a hole."));
    assert_eq!(sensor(&out, "said")["summary"], "Once upon a time, a bunny lived in a hole.");
    let out = b.at(secs(4), said(31, 3, " The end."));
    assert_eq!(sensor(&out, "said")["summary"], "Once upon a time, a bunny lived in a hole. The end.");
    assert_eq!(sensor(&out, "said")["order"], 3);

    // The next answer starts afresh.
    let out = b.at(secs(5), said(32, 1, "Good night!"));
    let s = sensor(&out, "said");
    assert_eq!(s["summary"], "Good night!");
    assert_eq!(s["recording_id"], 32);
    assert_eq!(s["voice_urls"], json!(["http://h/32-1.mp3"]));
}

#[test]
fn a_story_told_quickly_fires_every_sentence_but_changes_the_said_sensor_at_most_once_a_second() {
    let mut b = Bridge::up(config());
    let sentences = ["Once upon a time,", " a bunny", " lived", " in a hole."];
    let (mut states, mut playing) = (Vec::new(), Vec::new());
    for (i, text) in sentences.iter().enumerate() {
        let out = b.at(ms(200 * i as u64), said(40, i as i64 + 1, text));
        assert_eq!(conversation_events(&out).len(), 1, "sentence {i} fires its event at once");
        states.extend(out.state("said"));
        playing.extend(out.state("player_state"));
    }
    assert_eq!(states.len(), 1, "only the first sentence changes the sensor at once");
    assert_eq!(playing, ["playing"], "the player state changes once, at the first sentence");
    assert_eq!(b.deadline(), Some(secs(1)), "the rest waits for the end of the second");
    let out = b.at(secs(1), Input::Tick);
    assert_eq!(sensor(&out, "said")["summary"], "Once upon a time, a bunny lived in a hole.");
    assert_eq!(out.state("player_title").as_deref(), Some("Once upon a time, a bunny lived in a hole."));
    assert!(conversation_events(&out).is_empty(), "no event fires twice");
    // Quiet since: the next sentence shows at once.
    let out = b.at(secs(3), said(41, 1, "The end."));
    assert_eq!(sensor(&out, "said")["summary"], "The end.");
}

#[test]
fn a_sentence_held_back_while_home_assistants_broker_is_away_is_shown_when_it_returns() {
    let mut b = Bridge::up(config());
    b.at(ms(0), heard(1, "one"));
    b.at(ms(300), heard(2, "two"));
    b.at(ms(500), Input::HaDown);
    assert!(b.at(secs(1), Input::Tick).publish.is_empty(), "nothing goes to a broker that is away");
    let mut out = b.at(secs(5), Input::HaUp);
    while out.more {
        let more = b.at(secs(5), Input::Continue);
        out.publish.extend(more.publish);
        out.more = more.more;
    }
    assert_eq!(sensor(&out, "heard")["summary"], "two");
    assert_eq!(b.deadline(), Some(secs(12 * 3600)), "nothing left waiting but the day's end (noon UTC now)");
}

#[test]
fn an_endless_answer_stops_growing_with_a_warning() {
    let mut b = Bridge::up(config());
    for order in 1..=MAX_ANSWER_PARTS as i64 {
        b.at(secs(0), said(5, order, "la"));
    }
    let out = b.at(secs(1), said(5, MAX_ANSWER_PARTS as i64 + 1, "la"));
    assert!(conversation_events(&out).is_empty());
    let warned = out.warned();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].1.contains("sentences"), "{warned:?}");
    // A sentence already held may still be corrected.
    let out = b.at(secs(1), said(5, 1, "lo"));
    assert!(out.warned().is_empty());
}

#[test]
fn conversations_survive_a_restart_of_the_bridge() {
    let mut b = Bridge::up(config());
    b.at(secs(0), heard(9, "bath"));
    b.at(secs(0), said(9, 1, "Splash!"));
    let mut again = Bridge::restore(config(), through_disk(b.core.snapshot()));
    let out = again.at(secs(0), Input::HaUp);
    assert_eq!(sensor(&out, "heard")["summary"], "bath");
    assert_eq!(sensor(&out, "said")["summary"], "Splash!");
    assert_eq!(out.state("last_activity").as_deref(), Some("2026-11-25T12:00:00.000+00:00"));
    assert!(conversation_events(&out).is_empty(), "old events must not fire again");
}

// --- Watch words -----------------------------------------------------------------

/// Bunny, with "knife" watched on both sides, "刀" in the child's words and
/// "stupid" in the toy's.
fn watching() -> CoreConfig {
    let watch_words = vec![
        WatchWord::new("knife", Sides::Both),
        WatchWord::new("刀", Sides::Child),
        WatchWord::new("stupid", Sides::Toy),
    ];
    CoreConfig { watch_words, ..config() }
}

/// The events fired on Bunny's Alert entity, as JSON: like the Conversation
/// events, never retained and sent at most once.
fn alerts(out: &Output) -> Vec<Json> {
    out.publish
        .iter()
        .filter(|p| p.topic == format!("folotoy/{SN}/alert"))
        .map(|p| {
            assert!(!p.retain && p.at_most_once, "an alert goes as the Conversation events do: {p:?}");
            serde_json::from_slice(&p.payload).expect("events are JSON")
        })
        .collect()
}

#[test]
fn the_alert_entity_is_an_event_entity_with_child_said_toy_said_and_limit_reached_at_qos_0() {
    let mut b = Bridge::start(config());
    let configs = b.at(secs(0), Input::HaUp).configs();
    let alert = &configs[&discovery_topic("event", "folotoy_fcb467dad0c0", "alert")];
    assert_eq!(alert["name"], "Alert");
    assert_eq!(alert["default_entity_id"], "event.folotoy_fcb467dad0c0_alert");
    assert_eq!(alert["state_topic"], "folotoy/fcb467dad0c0/alert");
    assert_eq!(alert["event_types"], json!(["child_said", "toy_said", "limit_reached"]));
    assert_eq!(alert["qos"], 0, "as the events are sent");
    let conversation = &configs[&discovery_topic("event", "folotoy_fcb467dad0c0", "conversation")];
    assert_eq!(conversation["event_types"], json!(["heard", "said"]));
    assert_eq!(conversation["qos"], 0);
}

#[test]
fn a_watch_word_the_child_says_fires_a_child_said_alert_beside_the_conversation_event() {
    let mut b = Bridge::up(watching());
    let out = b.at(secs(0), heard(7, "这把刀很锋利"));
    assert_eq!(
        alerts(&out),
        [json!({"event_type": "child_said", "phrase": "刀", "category": "own", "phrases": ["刀"],
                "categories": ["own"], "sentence": "这把刀很锋利", "recording_id": 7})]
    );
    assert_eq!(conversation_events(&out).len(), 1, "the Conversation event fires as ever");
    let out = b.at(secs(1), heard(8, "I have a KNIFE!"));
    let alert = &alerts(&out)[0];
    assert_eq!((&alert["phrase"], &alert["sentence"]), (&json!("knife"), &json!("I have a KNIFE!")));
    assert!(out.warned().is_empty());
}

#[test]
fn a_sentence_without_a_watch_word_fires_no_alert() {
    let mut b = Bridge::up(watching());
    for (i, text) in ["I have skills", "a penknife", "knives", "Tell me a story"].into_iter().enumerate() {
        let out = b.at(secs(i as u64), heard(i as i64, text));
        assert!(alerts(&out).is_empty(), "{text}: {:?}", alerts(&out));
        assert_eq!(conversation_events(&out).len(), 1);
    }
    assert!(alerts(&b.at(secs(5), said(3, 1, "Once upon a time,"))).is_empty());
    // Nothing watched, nothing looked at.
    let mut plain = Bridge::up(config());
    assert!(alerts(&plain.at(secs(0), heard(1, "knife"))).is_empty());
}

#[test]
fn each_sentence_of_the_toy_is_checked_as_it_arrives_with_its_order_and_role() {
    let mut b = Bridge::up(watching());
    b.at(secs(0), heard(31, "Tell me a story"));
    assert!(alerts(&b.at(ms(100), said(31, 1, "Once upon a time,"))).is_empty());
    // Within the second the Said sensor holds back: the alert does not wait.
    let out = b.at(ms(200), said(31, 2, " a stupid knife"));
    assert_eq!(out.state("said"), None, "the sensor waits for the end of the second");
    assert_eq!(
        alerts(&out),
        [json!({"event_type": "toy_said", "phrase": "knife", "category": "own", "phrases": ["knife", "stupid"],
                "categories": ["own"], "sentence": "a stupid knife", "recording_id": 31, "order": 2, "role": 3})]
    );
    // The same sentence sent again is not a second alert; a corrected one is looked at anew.
    assert!(alerts(&b.at(ms(300), said(31, 2, " a stupid knife"))).is_empty());
    assert_eq!(alerts(&b.at(ms(400), said(31, 2, " a knife")))[0]["phrases"], json!(["knife"]));
    assert!(alerts(&b.at(secs(1), Input::Tick)).is_empty(), "no alert fires twice");
}

#[test]
fn each_watch_word_is_watched_in_its_own_sides_words() {
    let mut b = Bridge::up(watching());
    assert!(alerts(&b.at(secs(0), heard(1, "you are stupid"))).is_empty(), "stupid: the toy's words only");
    assert!(alerts(&b.at(secs(1), said(1, 1, "这把刀很锋利"))).is_empty(), "刀: the child's words only");
    let kinds =
        |out: Output| alerts(&out).iter().map(|a| a["event_type"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(kinds(b.at(secs(2), said(1, 2, "A knife is sharp."))), ["toy_said"], "knife: both");
    assert_eq!(kinds(b.at(secs(3), heard(2, "knife"))), ["child_said"]);
    assert_eq!(kinds(b.at(secs(4), said(2, 1, "That was stupid."))), ["toy_said"]);
}

#[test]
fn an_alert_carries_the_sentence_cut_as_the_conversation_event_text_is() {
    let mut b = Bridge::up(watching());
    let long = format!("刀{}", "兔".repeat(2000));
    let out = b.at(secs(0), heard(1, &long));
    let sentence = alerts(&out)[0]["sentence"].as_str().unwrap().to_owned();
    assert!(sentence.len() <= ha::states::MAX_ATTRIBUTE_BYTES && sentence.ends_with('…'), "{} bytes", sentence.len());
    assert!(sentence.starts_with("刀兔"));
}

#[test]
fn no_alert_is_kept_for_later_while_home_assistants_broker_is_away() {
    let mut b = Bridge::up(watching());
    b.at(secs(0), Input::HaDown);
    assert!(alerts(&b.at(secs(1), heard(1, "knife"))).is_empty());
    let mut out = b.at(secs(2), Input::HaUp);
    while out.more {
        let more = b.at(secs(2), Input::Continue);
        out.publish.extend(more.publish);
        out.more = more.more;
    }
    assert!(alerts(&out).is_empty(), "an event fired late would be news of the past");
    assert_eq!(sensor(&out, "heard")["summary"], "knife", "the Heard sensor shows it");
}

#[test]
fn before_anything_was_said_heard_said_and_last_activity_are_unknown() {
    let mut b = Bridge::start(config());
    let out = b.at(secs(0), Input::HaUp);
    assert_eq!(sensor(&out, "heard")["summary"], Json::Null);
    assert_eq!(sensor(&out, "said")["summary"], Json::Null);
    assert_eq!(out.state("last_activity").as_deref(), Some("None"));
}

#[test]
fn conversations_of_a_toy_that_is_not_allowed_are_ignored_with_one_warning() {
    let mut b = Bridge::up(config());
    let bear_heard = folotoy(
        format!("/sys/folotoy/{BEAR}/thing/event/post"),
        json!({"identifier": "recording_transcribed", "inputParams": {"recordingId": 1, "recordingText": "hi"}}),
    );
    let out = b.at(secs(0), bear_heard.clone());
    assert!(out.publish.is_empty(), "{:?}", out.publish);
    assert_eq!(out.warned().len(), 1);
    let out = b.at(secs(1), bear_heard);
    assert!(out.publish.is_empty() && out.warned().is_empty(), "one warning per toy: {out:?}");
}

// --- Announcements -----------------------------------------------------------

#[test]
fn an_announcement_is_spoken_with_the_speaking_role_and_leaves_say_alone() {
    let mut b = Bridge::up(config());
    b.at(secs(0), command("speaking_role", "Role 4"));
    let out = b.at(secs(1), command("announce", "Dinner is ready"));
    let sent = out.to_toy();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["identifier"], "iwantplay");
    assert_eq!(sent[0]["inputParams"], json!({"role": 4, "text": "Dinner is ready"}));
    assert!(out.state("announce").is_none(), "notify has no state");
    let out = b.at(secs(1), play_ack(msg_id(&sent[0]), 1));
    assert_eq!(out.last_command().unwrap()["entity"], "announce");
    assert_eq!(out.last_command().unwrap()["outcome"], "ok");
    assert!(out.state("say").is_none(), "the Say text entity shows only what was typed there");
}

#[test]
fn an_announcement_longer_than_the_toy_should_read_is_refused_before_sending() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), command("announce", &"a".repeat(2001)));
    assert!(out.to_folotoy().is_empty());
    let warned = out.warned();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].0, "folotoy/fcb467dad0c0/announce/set");
    assert!(warned[0].1.contains("2000"), "{warned:?}");
    // 2000 characters of Chinese are fine: the limit counts characters, not bytes.
    let out = b.at(secs(1), command("announce", &"好".repeat(2000)));
    assert_eq!(out.to_toy().len(), 1);
}

// --- Media player ------------------------------------------------------------

fn media_player_config(out: &Output) -> Json {
    out.configs()
        .remove("homeassistant/folotoy/folotoy_fcb467dad0c0/media_player/config")
        .expect("a media player config")
}

#[test]
fn the_media_player_is_announced_for_the_folotoy_integration_on_the_toys_device() {
    let mut b = Bridge::start(config());
    let out = b.at(secs(0), Input::HaUp);
    let c = media_player_config(&out);
    assert_eq!(c["name"], "Bunny");
    assert_eq!(c["unique_id"], "folotoy_fcb467dad0c0_media_player");
    assert_eq!(c["default_entity_id"], "media_player.folotoy_fcb467dad0c0");
    assert_eq!(c["device"]["identifiers"], json!(["folotoy_fcb467dad0c0"]), "joins the toy's device");
    assert_eq!(c["availability"], json!(["folotoy/bridge/state", "folotoy/bridge/folotoy"]), "as the toy's entities");
    assert_eq!(c["state_topic"], "folotoy/fcb467dad0c0/player_state");
    assert_eq!(c["title_topic"], "folotoy/fcb467dad0c0/player_title");
    assert_eq!(c["volume_topic"], "folotoy/fcb467dad0c0/player_volume");
    assert_eq!(c["volume_command_topic"], "folotoy/fcb467dad0c0/player_volume/set");
    assert_eq!(c["play_media_command_topic"], "folotoy/fcb467dad0c0/player_media/set");
    assert_eq!(c["conversation_request_topic"], "folotoy/bridge/conversation/get", "folotoy.get_conversation");
    assert_eq!(c["conversation_response_topic"], "folotoy/bridge/conversation/response");
    assert_eq!(c["origin"]["name"], "folotoy-ha-bridge", "how the integration tells the bridge's configs apart");
    assert_eq!(out.state("player_state").as_deref(), Some("idle"));
    assert_eq!(out.state("player_title"), None, "nothing played yet");
    assert_eq!(out.state("player_volume"), None, "volume unknown until the toy confirms one");
}

#[test]
fn a_url_on_the_media_player_plays_and_shows_playing_then_idle() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), command("player_media", r#"{"url": "http://ha.local:8123/media/dinner.mp3"}"#));
    let sent = out.to_toy();
    assert_eq!(sent[0]["identifier"], "iwantplay");
    assert_eq!(sent[0]["inputParams"], json!({"url": "http://ha.local:8123/media/dinner.mp3"}));
    assert!(out.state("player_state").is_none(), "not playing before the toy confirms");

    let out = b.at(secs(1), play_ack(msg_id(&sent[0]), 1));
    assert_eq!(out.state("player_state").as_deref(), Some("playing"));
    assert_eq!(out.state("player_title").as_deref(), Some("dinner.mp3"));
    assert!(out.state("play_audio").is_none(), "the Play audio text entity shows only what was typed there");

    assert_eq!(b.deadline(), Some(secs(1) + PLAY_GUESS));
    let out = b.at(secs(1) + PLAY_GUESS, Input::Tick);
    assert_eq!(out.state("player_state").as_deref(), Some("idle"));
    assert_eq!(b.core.next_deadline(), None);
}

#[test]
fn tts_on_the_media_player_shows_what_it_says_for_as_long_as_it_takes_to_say() {
    let mut b = Bridge::up(config());
    let tts = r#"{"url": "http://ha.local:8123/api/tts_proxy/x.mp3", "text": "Dinner is ready!", "announce": true}"#;
    let sent = b.at(secs(0), command("player_media", tts)).to_toy();
    assert_eq!(sent[0]["inputParams"], json!({"url": "http://ha.local:8123/api/tts_proxy/x.mp3"}));
    let out = b.at(secs(0), play_ack(msg_id(&sent[0]), 1));
    assert_eq!(out.state("player_title").as_deref(), Some("Dinner is ready!"));
    assert_eq!(out.last_command().unwrap()["value"], "Dinner is ready!", "what was said, not the JSON");
    assert_eq!(b.deadline(), Some(speaking_time("Dinner is ready!")));
}

/// Bunny at a confirmed volume of 30, then an announcement at 0.6 played:
/// returns the output of the play's ack.
fn announced_at_60(b: &mut Bridge) -> Output {
    b.confirm(secs(0), "volume", "30");
    let out = b.at(secs(1), command("player_media", r#"{"url": "http://h/a.mp3", "volume": 0.6, "announce": true}"#));
    let sent = out.to_toy();
    assert_eq!(sent.len(), 1, "only the volume first: {sent:?}");
    assert_eq!(sent[0]["inputParams"], json!({"volume": 60}));
    let out = b.at(secs(1), settings_ack(msg_id(&sent[0]), 1));
    assert_eq!(out.state("volume").as_deref(), Some("60"), "the toy is at 60 while it announces");
    let sent = out.to_toy();
    assert_eq!(sent.len(), 1, "then the media, once the toy took the volume: {sent:?}");
    assert_eq!(sent[0]["inputParams"], json!({"url": "http://h/a.mp3"}));
    b.at(secs(2), play_ack(msg_id(&sent[0]), 1))
}

#[test]
fn an_announcement_with_a_volume_plays_at_it_then_puts_the_earlier_volume_back() {
    let mut b = Bridge::up(config());
    let out = announced_at_60(&mut b);
    assert_eq!(out.state("player_state").as_deref(), Some("playing"));
    assert!(out.to_toy().is_empty(), "the volume stays while it plays");
    assert_eq!(b.deadline(), Some(secs(2) + PLAY_GUESS));

    let out = b.at(secs(2) + PLAY_GUESS, Input::Tick);
    let sent = out.to_toy();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["inputParams"], json!({"volume": 30}), "the volume from before the announcement");
    let out = b.at(secs(33), settings_ack(msg_id(&sent[0]), 1));
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    assert_eq!(out.state("player_volume").as_deref(), Some("0.3"));
    assert_eq!(b.core.next_deadline(), None, "nothing more to do");
}

#[test]
fn a_volume_set_during_an_announcement_is_kept_afterwards() {
    let mut b = Bridge::up(config());
    announced_at_60(&mut b);
    b.confirm(secs(3), "player_volume", "0.45");
    let out = b.at(secs(2) + PLAY_GUESS, Input::Tick);
    assert!(out.to_toy().is_empty(), "the user's 45 stands: {:?}", out.to_toy());
}

#[test]
fn a_second_announcement_puts_back_the_volume_from_before_the_first() {
    let mut b = Bridge::up(config());
    announced_at_60(&mut b);
    let out = b.at(secs(3), command("player_media", r#"{"url": "http://h/b.mp3", "volume": 0.8}"#));
    let sent = out.to_toy();
    assert_eq!(sent[0]["inputParams"], json!({"volume": 80}));
    let sent = b.at(secs(3), settings_ack(msg_id(&sent[0]), 1)).to_toy();
    b.at(secs(4), play_ack(msg_id(&sent[0]), 1));
    assert!(b.at(secs(2) + PLAY_GUESS, Input::Tick).to_toy().is_empty(), "the second still plays");
    let sent = b.at(secs(4) + PLAY_GUESS, Input::Tick).to_toy();
    assert_eq!(sent[0]["inputParams"], json!({"volume": 30}), "not 60");
}

#[test]
fn an_announcement_without_a_confirmed_volume_plays_at_the_toys_own_volume() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), command("player_media", r#"{"url": "http://h/a.mp3", "volume": 0.6}"#));
    let sent = out.to_toy();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["identifier"], "iwantplay", "no volume it could not put back");
    assert!(out.logs.iter().any(|l| l.message.contains("not confirmed a volume")), "{:?}", out.logs);
}

#[test]
fn an_announcement_the_toy_refuses_to_play_puts_the_volume_back_at_once() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");
    let sent = b.at(secs(1), command("player_media", r#"{"url": "http://h/a.mp3", "volume": 0.6}"#)).to_toy();
    let sent = b.at(secs(1), settings_ack(msg_id(&sent[0]), 1)).to_toy();
    let sent = b.at(secs(2), play_ack(msg_id(&sent[0]), 0)).to_toy();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["inputParams"], json!({"volume": 30}));
}

#[test]
fn an_announcement_whose_volume_is_refused_still_plays() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");
    let sent = b.at(secs(1), command("player_media", r#"{"url": "http://h/a.mp3", "volume": 0.6}"#)).to_toy();
    let out = b.at(secs(1), settings_ack(msg_id(&sent[0]), 0));
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    let sent = out.to_toy();
    assert_eq!(sent[0]["identifier"], "iwantplay", "dinner is still announced");
}

#[test]
fn a_bridge_restarted_mid_announcement_puts_the_volume_back_when_it_reaches_folotoy() {
    let mut b = Bridge::up(config());
    announced_at_60(&mut b);
    let saved = through_disk(b.core.snapshot());
    let mut b = Bridge::restore(config(), saved);
    b.at(secs(0), Input::HaUp);
    let sent = b.at(secs(0), Input::FoloToyUp).to_toy();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["inputParams"], json!({"volume": 30}));
    let out = b.at(secs(0), settings_ack(msg_id(&sent[0]), 1));
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    let saved = through_disk(b.core.snapshot());
    let mut b = Bridge::restore(config(), saved);
    b.at(secs(0), Input::HaUp);
    assert!(b.at(secs(0), Input::FoloToyUp).to_toy().is_empty(), "put back once");
}

#[test]
fn the_toy_answering_shows_as_playing_its_answer() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), said(3, 1, " Hello there!"));
    assert_eq!(out.state("player_state").as_deref(), Some("playing"));
    assert_eq!(out.state("player_title").as_deref(), Some("Hello there!"));
    let out = b.at(secs(0) + speaking_time("Hello there!"), Input::Tick);
    assert_eq!(out.state("player_state").as_deref(), Some("idle"));
    // The title stays: it is what was said last.
    assert!(out.state("player_title").is_none());
}

#[test]
fn media_player_volume_is_the_toys_volume_from_0_to_1() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), command("player_volume", "0.35"));
    let sent = out.to_toy();
    assert_eq!(sent[0]["inputParams"], json!({"volume": 35}));
    let out = b.at(secs(0), settings_ack(msg_id(&sent[0]), 1));
    assert_eq!(out.state("player_volume").as_deref(), Some("0.35"));
    assert_eq!(out.state("volume").as_deref(), Some("35"), "the Volume number follows too");

    // And the other way round.
    let out = b.confirm(secs(1), "volume", "80");
    assert_eq!(out.state("player_volume").as_deref(), Some("0.8"));

    // A slider dragged on both is still one setting: one command in flight.
    b.at(secs(2), command("volume", "10"));
    let out = b.at(secs(2), command("player_volume", "0.2"));
    assert!(out.to_toy().is_empty(), "waits behind the Volume command");
}

#[test]
fn a_media_url_the_toy_cannot_fetch_is_refused_with_the_fix_in_the_warning() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), command("player_media", r#"{"url": "/api/tts_proxy/x.mp3"}"#));
    assert!(out.to_folotoy().is_empty());
    let warned = out.warned();
    assert_eq!(warned[0].0, "folotoy/fcb467dad0c0/player_media/set");
    assert!(warned[0].1.contains("internal URL"), "{warned:?}");
    assert_eq!(out.last_command().unwrap()["outcome"], "invalid");
}

#[test]
fn with_the_media_player_off_none_is_announced_and_its_commands_are_refused() {
    let mut cfg = config();
    cfg.media_player = false;
    let mut b = Bridge::start(cfg.clone());
    let out = b.at(secs(0), Input::HaUp);
    assert!(!out.configs().keys().any(|t| t.contains("media_player")));
    assert!(out.state("player_state").is_none());
    let out = b.at(secs(0), command("player_volume", "0.5"));
    assert!(out.to_folotoy().is_empty());
    assert!(out.warned()[0].1.contains("homeassistant.media_player is off"));

    // Switching it off later removes the player a previous run announced.
    let mut on = Bridge::start(config());
    on.at(secs(0), Input::HaUp);
    let mut off = Bridge::restore(cfg, through_disk(on.core.snapshot()));
    let out = off.at(secs(0), Input::HaUp);
    assert!(out.cleared().contains("homeassistant/folotoy/folotoy_fcb467dad0c0/media_player/config"));
}

// --- Reload roles ------------------------------------------------------------

const CONFIG_ACK: &str = "/sys/configAck";

fn config_ack(payload: Json) -> Input {
    folotoy(CONFIG_ACK.to_owned(), payload)
}

fn roles_reload(out: &Output) -> Json {
    serde_json::from_str(&out.retained("folotoy/server/roles_reload").expect("a Roles reload state")).unwrap()
}

fn press_reload() -> Input {
    let topic = "folotoy/server/reload_roles/set".to_owned();
    let msg = ha::inbound::parse(&topics(), &topic, b"PRESS", false).expect("a command topic");
    Input::Ha { topic, msg, at: wall_clock() }
}

#[test]
fn reload_roles_asks_the_server_and_shows_its_answer() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), press_reload());
    let sent = out.to_folotoy();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "/sys/config");
    assert_eq!(sent[0].1, json!({"msgId": 1, "identifier": "load_roles_config"}));
    assert_eq!(roles_reload(&out)["outcome"], "pending");

    // Pressed again while waiting: nothing more is sent.
    let out = b.at(secs(1), press_reload());
    assert!(out.to_folotoy().is_empty());

    let out = b.at(secs(2), config_ack(json!({"msgId": 1, "identifier": "load_roles_config", "result": 1})));
    let shown = roles_reload(&out);
    assert_eq!(shown["outcome"], "ok");
    assert_eq!(shown["summary"], "Reload roles roles.json: done");
    assert!(out.save);
    assert_eq!(b.core.next_deadline(), None);

    // The result survives a restart.
    let mut again = Bridge::restore(config(), through_disk(b.core.snapshot()));
    assert_eq!(roles_reload(&again.at(secs(0), Input::HaUp))["outcome"], "ok");
}

#[test]
fn reload_roles_shows_a_refusal_and_silence() {
    let mut b = Bridge::up(config());
    b.at(secs(0), press_reload());
    let out = b.at(secs(1), config_ack(json!({"identifier": "load_roles_config", "result": 0})));
    assert_eq!(roles_reload(&out)["outcome"], "refused", "an ack without msgId answers the one waiting");
    assert_eq!(out.warned().len(), 1);

    b.at(secs(2), press_reload());
    assert_eq!(b.deadline(), Some(secs(2) + TIMEOUT));
    let out = b.at(secs(2) + TIMEOUT, Input::Tick);
    assert_eq!(roles_reload(&out)["outcome"], "no_answer");
    assert!(out.warned()[0].1.contains("load_roles_config"), "{:?}", out.warned());
}

#[test]
fn config_acks_nobody_waits_for_are_ignored_with_a_warning() {
    let mut b = Bridge::up(config());
    for (ack, why) in [
        (json!({"msgId": 5, "identifier": "load_roles_config", "result": 1}), "no roles reload waits"),
        (json!({"msgId": 5, "identifier": "load_tools_config", "result": 1}), "never sends"),
    ] {
        let out = b.at(secs(0), config_ack(ack));
        assert!(out.publish.is_empty(), "{:?}", out.publish);
        let warned = out.warned();
        assert_eq!(warned.len(), 1);
        assert_eq!(warned[0].0, CONFIG_ACK);
        assert!(warned[0].1.contains(why), "{warned:?}");
    }
    b.at(secs(1), press_reload());
    let out = b.at(secs(1), config_ack(json!({"msgId": 77, "identifier": "load_roles_config", "result": 1})));
    assert!(out.warned()[0].1.contains("while msgId 1 waits"), "{:?}", out.warned());
    assert_eq!(b.deadline(), Some(secs(1) + TIMEOUT), "still waiting for its own answer");
}

// --- Outages -------------------------------------------------------------------

#[test]
fn a_command_while_folotoy_is_unreachable_is_refused_at_once_and_the_old_value_shown() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");
    b.at(secs(1), Input::FoloToyDown);
    let out = b.at(secs(2), command("volume", "80"));
    assert!(out.to_folotoy().is_empty(), "nothing is queued to reach the toy later");
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    let last = out.last_command().unwrap();
    assert_eq!(last["outcome"], "invalid");
    assert!(last["summary"].as_str().unwrap().contains("not connected"), "{last}");
    assert_eq!(out.warned()[0].0, "folotoy/fcb467dad0c0/volume/set");
    assert!(b.at(secs(2), press_reload()).to_folotoy().is_empty());

    // Back: commands flow again.
    b.at(secs(3), Input::FoloToyUp);
    assert_eq!(b.at(secs(4), command("volume", "80")).to_toy().len(), 1);
}

#[test]
fn a_command_in_flight_when_folotoy_goes_away_ends_as_no_answer() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");
    b.at(secs(1), command("volume", "80"));
    b.at(secs(2), Input::FoloToyDown);
    let out = b.at(secs(1) + TIMEOUT, Input::Tick);
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    assert_eq!(out.last_command().unwrap()["outcome"], "no_answer");
}

#[test]
fn last_activity_changes_at_most_once_a_second() {
    let mut b = Bridge::up(config());
    let at = |ms: u64| std::time::UNIX_EPOCH + Duration::from_millis(1_795_608_000_000 + ms);
    let event = |ms: u64| {
        let topic = format!("/sys/folotoy/{SN}/thing/event/post");
        let payload = json!({"identifier": "recording_transcribed", "inputParams": {"recordingText": "hi"}});
        let msg = folotoy::messages::parse(&topic, payload.to_string().as_bytes()).unwrap();
        Input::FoloToy { topic, msg, at: at(ms) }
    };
    assert_eq!(b.at(secs(0), event(0)).state("last_activity").as_deref(), Some("2026-11-25T12:00:00.000+00:00"));
    assert_eq!(b.at(secs(0), event(400)).state("last_activity"), None, "same second");
    assert_eq!(b.at(secs(1), event(1200)).state("last_activity").as_deref(), Some("2026-11-25T12:00:01.200+00:00"));
}

#[test]
fn many_toys_are_published_in_parts_with_online_last() {
    let sns: Vec<String> = (0..CHUNK + 5).map(|i| format!("many{i:08}")).collect();
    let toys: Vec<(&str, Option<&str>)> = sns.iter().map(|s| (s.as_str(), None)).collect();
    let mut b = Bridge::start(config_with(&toys, false, 64));
    let first = b.at(secs(0), Input::HaUp);
    assert!(first.more, "more to come");
    let volumes = |out: &Output| out.configs().keys().filter(|t| t.ends_with("/volume/config")).count();
    assert_eq!(volumes(&first), CHUNK);
    assert_eq!(first.retained("folotoy/bridge/state"), None, "online only once everything is there");
    let rest = b.at(secs(0), Input::Continue);
    assert!(!rest.more);
    assert_eq!(volumes(&rest), 5);
    assert_eq!(rest.retained("folotoy/bridge/state").as_deref(), Some("online"));
    assert!(rest.cleared().is_empty());
    assert!(b.at(secs(0), Input::Continue).publish.is_empty(), "nothing left");
}

#[test]
fn while_home_assistants_broker_is_away_nothing_piles_up_and_its_return_brings_the_newest() {
    let mut b = Bridge::up(config());
    b.at(secs(0), Input::HaDown);
    let out = b.at(secs(1), heard(4, "Are you there?"));
    assert!(out.publish.is_empty(), "nothing to send while away: {:?}", out.publish);
    assert!(out.save_soon, "what the toy said is still kept");
    let out = b.at(secs(2), Input::HaUp);
    assert_eq!(sensor(&out, "heard")["summary"], "Are you there?");
    assert_eq!(out.retained("folotoy/bridge/state").as_deref(), Some("online"));
}

#[test]
fn a_toy_that_appeared_by_itself_keeps_what_the_user_set_over_a_restart_even_if_it_never_spoke() {
    let mut b = Bridge::up(open_config());
    // Bear shows up in a command from the FoloToy console; it never spoke.
    b.at(secs(0), folotoy(format!("/sys/folotoy/{BEAR}/thing/command/call"), json!({"identifier": "x"})));
    assert!(b.core.toys().any(|s| *s == sn(BEAR)), "Bear admitted");
    assert!(b.at(secs(1), command_to(BEAR, "speaking_role", "Role 3")).save);
    let saved = through_disk(b.core.snapshot());
    let after = Bridge::restore(open_config(), saved);
    assert!(after.core.toys().any(|s| *s == sn(BEAR)), "Bear and its role kept");
    assert_eq!(after.core.snapshot().toys[&sn(BEAR)].role, 3);
}

#[test]
fn the_bridges_own_emptied_config_coming_back_never_deletes_a_toy_that_returned_meanwhile() {
    // Bear was listed, never spoke, then taken off the list: the bridge
    // empties its configs. Bear speaks before the broker echoes that back.
    let listed = config_with(&[(SN, Some("Bunny")), (BEAR, Some("Bear"))], true, 8);
    let saved = through_disk(Bridge::up(listed).core.snapshot());
    let (mut b, _) = Bridge::restore_with_logs(open_config(), saved);
    let out = b.at(secs(0), Input::HaUp);
    assert!(out.cleared().contains(&format!("homeassistant/device/folotoy_{BEAR}/config")));
    b.at(secs(0), Input::FoloToyUp);
    b.at(secs(0), voice_from(BEAR));
    b.at(secs(0), deleted_in_ha(BEAR)); // the echo
    assert!(b.core.toys().any(|s| *s == sn(BEAR)), "Bear stays");
    assert!(b.core.snapshot().deleted_toys.is_empty());
    // A real deletion afterwards still counts.
    b.at(secs(1), deleted_in_ha(BEAR));
    assert!(!b.core.toys().any(|s| *s == sn(BEAR)));
}

#[test]
fn a_toy_deleted_in_home_assistant_while_the_bridge_republishes_stays_deleted() {
    let mut b = Bridge::start(config_with(&[(SN, Some("Bunny"))], true, 100));
    b.at(secs(0), Input::HaUp);
    b.at(secs(0), Input::FoloToyUp);
    let many: Vec<String> = (0..40).map(|i| format!("aa00000000{i:02}")).collect();
    for s in &many {
        b.at(secs(0), voice_from(s));
    }
    let out = b.at(secs(5), Input::HaUp);
    assert!(out.more, "the republish comes in parts");
    let last = many.last().unwrap();
    b.at(secs(5), deleted_in_ha(last));
    let mut configs = BTreeMap::new();
    let mut more = true;
    while more {
        let out = b.at(secs(5), Input::Continue);
        configs.extend(out.configs());
        more = out.more;
    }
    assert!(!b.core.toys().any(|s| s.as_str() == last));
    assert!(configs.keys().all(|t| !t.contains(last.as_str())), "not published again");
}

// --- Announcement volume -----------------------------------------------------

#[test]
fn the_announcement_volume_is_kept_by_the_bridge_and_asks_nothing_of_the_toy() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), command("announcement_volume", "70"));
    assert!(out.to_folotoy().is_empty());
    assert_eq!(out.state("announcement_volume").as_deref(), Some("70"));
    assert!(out.save);
    let mut b = Bridge::restore(config(), through_disk(b.core.snapshot()));
    let out = b.at(secs(0), Input::HaUp);
    assert_eq!(out.state("announcement_volume").as_deref(), Some("70"), "kept over a restart");
}

#[test]
fn the_announce_entity_speaks_at_the_announcement_volume_then_puts_the_volume_back() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");
    b.at(secs(0), command("announcement_volume", "70"));
    let sent = b.at(secs(1), command("announce", "Dinner is ready")).to_toy();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["inputParams"], json!({"volume": 70}));
    let sent = b.at(secs(1), settings_ack(msg_id(&sent[0]), 1)).to_toy();
    assert_eq!(sent[0]["inputParams"], json!({"role": 1, "text": "Dinner is ready"}));
    b.at(secs(2), play_ack(msg_id(&sent[0]), 1));
    let sent = b.at(secs(2) + speaking_time("Dinner is ready"), Input::Tick).to_toy();
    assert_eq!(sent[0]["inputParams"], json!({"volume": 30}));
}

#[test]
fn tts_announcements_use_the_announcement_volume_and_other_media_does_not() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");
    b.at(secs(0), command("announcement_volume", "70"));
    let song = b.at(secs(1), command("player_media", r#"{"url": "http://h/song.mp3"}"#)).to_toy();
    assert_eq!(song[0]["identifier"], "iwantplay", "music plays at the toy's volume");
    b.at(secs(1), play_ack(msg_id(&song[0]), 1));
    let tts = r#"{"url": "http://h/tts.mp3", "text": "Bath time", "announce": true}"#;
    let sent = b.at(secs(2), command("player_media", tts)).to_toy();
    assert_eq!(sent[0]["inputParams"], json!({"volume": 70}));
    // A volume that comes with the announcement wins over the Announcement volume.
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");
    b.at(secs(0), command("announcement_volume", "70"));
    let given = r#"{"url": "http://h/tts.mp3", "announce": true, "volume": 0.5}"#;
    let sent = b.at(secs(1), command("player_media", given)).to_toy();
    assert_eq!(sent[0]["inputParams"], json!({"volume": 50}));
}

#[test]
fn an_announcement_volume_of_zero_plays_at_the_toys_own_volume() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");
    let sent = b.at(secs(1), command("announce", "Hello")).to_toy();
    assert_eq!(sent[0]["identifier"], "iwantplay");
}

// --- Answers without a recordingId -------------------------------------------

fn said_without_id(order: Option<i64>, text: &str) -> Input {
    let mut params = json!({"voiceText": text});
    if let Some(order) = order {
        params["order"] = json!(order);
    }
    folotoy(
        format!("/sys/folotoy/{SN}/thing/event/post"),
        json!({"identifier": "voice_generated", "inputParams": params}),
    )
}

fn said_text(out: &Output) -> Option<String> {
    out.state("said").map(|s| serde_json::from_str::<Json>(&s).unwrap()["text"].as_str().unwrap().to_owned())
}

#[test]
fn answers_without_a_recording_id_are_never_run_together() {
    let mut b = Bridge::up(config());
    b.at(secs(0), said_without_id(Some(1), "Cats purr."));
    let out = b.at(secs(2), said_without_id(Some(2), " They also sleep."));
    assert_eq!(said_text(&out).as_deref(), Some("Cats purr. They also sleep."), "a later sentence continues it");
    // A new first sentence is a new answer, not a third part of the old one.
    let out = b.at(secs(4), said_without_id(Some(1), "Dogs bark."));
    assert_eq!(said_text(&out).as_deref(), Some("Dogs bark."));
    // Nothing at all to tie it to the answer before: it stands alone.
    let out = b.at(secs(6), said_without_id(None, "Hello!"));
    assert_eq!(said_text(&out).as_deref(), Some("Hello!"));
    // An answer with a recordingId is never joined by one without.
    b.at(secs(8), said(5, 1, "Birds sing."));
    let out = b.at(secs(10), said_without_id(Some(2), "Fish swim."));
    assert_eq!(said_text(&out).as_deref(), Some("Fish swim."));
}

// --- Quiet -------------------------------------------------------------------

#[test]
fn while_quiet_nothing_that_speaks_or_plays_is_sent_and_each_request_says_so() {
    let mut b = Bridge::up(config());
    let out = b.at(secs(0), command("quiet", "ON"));
    assert_eq!(out.state("quiet").as_deref(), Some("ON"));
    assert!(out.to_folotoy().is_empty(), "quiet is the bridge's own");
    for (key, payload) in [
        ("say", "Wake up!"),
        ("announce", "Dinner is ready"),
        ("play_audio", "http://h/a.mp3"),
        ("player_media", r#"{"url": "http://h/tts.mp3", "text": "Hello", "announce": true, "volume": 0.9}"#),
    ] {
        let out = b.at(secs(1), command(key, payload));
        assert!(out.to_folotoy().is_empty(), "{key} reached the toy");
        let last = out.last_command().unwrap();
        assert_eq!(last["outcome"], "quiet", "{key}");
        assert!(last["summary"].as_str().unwrap().ends_with("not sent: quiet"), "{last}");
    }
    // Settings still go through.
    let out = b.at(secs(2), command("volume", "20"));
    assert_eq!(out.to_toy()[0]["inputParams"], json!({"volume": 20}));
}

#[test]
fn turning_quiet_off_sends_nothing_that_was_asked_during_quiet() {
    let mut b = Bridge::up(config());
    b.at(secs(0), command("quiet", "ON"));
    b.at(secs(1), command("say", "In the night"));
    let out = b.at(secs(2), command("quiet", "OFF"));
    assert_eq!(out.state("quiet").as_deref(), Some("OFF"));
    assert!(out.to_folotoy().is_empty(), "dropped, not queued");
    let sent = b.at(secs(3), command("say", "Good morning")).to_toy();
    assert_eq!(sent[0]["inputParams"]["text"], "Good morning");
}

#[test]
fn quiet_is_kept_over_a_restart() {
    let mut b = Bridge::up(config());
    b.at(secs(0), command("quiet", "ON"));
    let mut b = Bridge::restore(config(), through_disk(b.core.snapshot()));
    let out = b.at(secs(0), Input::HaUp);
    assert_eq!(out.state("quiet").as_deref(), Some("ON"));
    b.at(secs(0), Input::FoloToyUp);
    assert!(b.at(secs(1), command("say", "Hi")).to_folotoy().is_empty());
}

#[test]
fn quiet_coming_on_while_an_announcements_volume_is_set_plays_nothing_and_puts_the_volume_back() {
    let mut b = Bridge::up(config());
    b.confirm(secs(0), "volume", "30");
    let sent = b.at(secs(1), command("player_media", r#"{"url": "http://h/a.mp3", "volume": 0.6}"#)).to_toy();
    b.at(secs(1), command("quiet", "ON"));
    let sent = b.at(secs(1), settings_ack(msg_id(&sent[0]), 1)).to_toy();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["inputParams"], json!({"volume": 30}), "no iwantplay, the volume back");
}

#[test]
fn a_volume_put_back_that_the_toy_did_not_take_is_sent_again_when_the_toy_is_heard_from() {
    let mut b = Bridge::up(config());
    announced_at_60(&mut b);
    let sent = b.at(secs(2) + PLAY_GUESS, Input::Tick).to_toy();
    assert_eq!(sent[0]["inputParams"], json!({"volume": 30}));
    // The toy was switched off: no answer.
    let out = b.at(secs(2) + PLAY_GUESS + TIMEOUT, Input::Tick);
    assert_eq!(out.state("volume").as_deref(), Some("60"), "still at the announcement's volume");
    assert!(out.to_toy().is_empty(), "not retried while nothing says the toy is on");
    // It is switched on and the child talks: the volume goes back now.
    let sent = b.at(secs(60), heard(9, "hello")).to_toy();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["inputParams"], json!({"volume": 30}));
    let out = b.at(secs(60), settings_ack(msg_id(&sent[0]), 1));
    assert_eq!(out.state("volume").as_deref(), Some("30"));
    assert!(b.at(secs(61), heard(10, "again")).to_toy().is_empty(), "put back once");
}

// --- The day at a glance ------------------------------------------------------------

/// 2026-12-01T22:50:00Z: 23:50 in Berlin, ten minutes before its midnight.
const BERLIN_LATE: u64 = 1_796_165_400_000;
const MINUTE: u64 = 60_000;

/// Bunny in a family that lives in Berlin.
fn in_berlin() -> CoreConfig {
    CoreConfig { glance: Zone::named("Europe/Berlin"), ..config() }
}

/// `input` as it arrived at wall time `ms`.
fn arrived(input: Input, ms: u64) -> Input {
    match input {
        Input::FoloToy { topic, msg, .. } => {
            Input::FoloToy { topic, msg, at: std::time::UNIX_EPOCH + Duration::from_millis(ms) }
        }
        other => other,
    }
}

/// Bunny's (Exchanges today, Talk time today), where `out` published them.
fn glance(out: &Output) -> (Option<String>, Option<String>) {
    (out.state("exchanges_today"), out.state("talk_time_today"))
}

fn counted(exchanges: &str, minutes: &str) -> (Option<String>, Option<String>) {
    (Some(exchanges.into()), Some(minutes.into()))
}

#[test]
fn talk_time_and_exchanges_today_are_sensors_that_count_up_through_the_day() {
    let mut b = Bridge::start(in_berlin());
    let configs = b.at(secs(0), Input::HaUp).configs();
    let talk = &configs[&discovery_topic("sensor", "folotoy_fcb467dad0c0", "talk_time_today")];
    assert_eq!(talk["name"], "Talk time today");
    assert_eq!((&talk["unit_of_measurement"], &talk["device_class"]), (&json!("min"), &json!("duration")));
    assert_eq!(talk["state_class"], "total_increasing", "statistics take the drop at midnight for a new day");
    let exchanges = &configs[&discovery_topic("sensor", "folotoy_fcb467dad0c0", "exchanges_today")];
    assert_eq!(exchanges["default_entity_id"], "sensor.folotoy_fcb467dad0c0_exchanges_today");
    assert_eq!(exchanges["state_class"], "total_increasing");

    let start = BERLIN_LATE - 60 * MINUTE;
    assert_eq!(glance(&b.at(secs(0), arrived(heard(1, "Hi"), start))), (Some("1".into()), None));
    assert_eq!(glance(&b.at(secs(3), arrived(said(1, 1, "Hello!"), start + 3_000))), (None, Some("1".into())));
    b.at(secs(240), arrived(heard(2, "A story?"), start + 4 * MINUTE));
    let out = b.at(secs(540), arrived(said(2, 1, "Once upon a time"), start + 9 * MINUTE));
    assert_eq!(glance(&out), (None, Some("9".into())), "gaps under five minutes are talk");
    let out = b.at(secs(3600), arrived(heard(3, "Me again"), start + 60 * MINUTE));
    assert_eq!(glance(&out), (Some("3".into()), None), "an hour of silence is no talk");
    assert!(out.warned().is_empty());
}

#[test]
fn a_chatty_toy_moves_its_day_counters_at_most_once_a_second_and_the_newest_count_arrives() {
    let mut b = Bridge::up(in_berlin());
    let start = BERLIN_LATE - 60 * MINUTE;
    assert_eq!(glance(&b.at(secs(0), arrived(heard(1, "One"), start))).0.as_deref(), Some("1"));
    // Two more within the second: held back, not published.
    for (i, at) in [(2, 300), (3, 600)] {
        let out = b.at(ms(at), arrived(heard(i, "More"), start + at));
        assert_eq!(glance(&out).0, None, "sentence {i}");
    }
    assert_eq!(b.deadline(), Some(secs(1)));
    assert_eq!(glance(&b.at(secs(1), Input::Tick)).0.as_deref(), Some("3"), "the newest count, once");
}

#[test]
fn the_day_at_a_glance_goes_back_to_0_at_the_familys_midnight_with_no_sentence_after_it() {
    let mut b = Bridge::up(in_berlin());
    b.at(secs(0), arrived(heard(1, "Good night"), BERLIN_LATE));
    b.at(secs(2), arrived(said(1, 1, "Sleep well"), BERLIN_LATE + 2_000));
    assert!(glance(&b.at(secs(599), Input::Tick)).0.is_none(), "not yet");
    assert_eq!(b.deadline(), Some(secs(600)), "midnight in Berlin, ten minutes on");
    let out = b.at(secs(600), Input::Tick);
    assert_eq!(glance(&out), counted("0", "0"));
    // The next midnight is a day on, and a sentence now counts in the new day.
    assert_eq!(b.deadline(), Some(secs(600 + 86_400)));
    let out = b.at(secs(700), arrived(heard(2, "Can't sleep"), BERLIN_LATE + 700_000));
    assert_eq!(glance(&out), (Some("1".into()), None));
}

#[test]
fn a_sentence_past_midnight_starts_the_new_day_even_before_the_tick() {
    let mut b = Bridge::up(in_berlin());
    b.at(secs(0), arrived(heard(1, "Good night"), BERLIN_LATE));
    b.at(secs(1), arrived(heard(2, "Really"), BERLIN_LATE + 1_000));
    // The bridge's clock and the wall clock can drift apart: the wall clock decides.
    let out = b.at(secs(2), arrived(heard(3, "Morning!"), BERLIN_LATE + 11 * MINUTE));
    assert_eq!(glance(&out), counted("1", "0"));
}

#[test]
fn after_a_restart_today_is_counted_from_the_history_and_yesterday_is_not() {
    let (mut b, _) = Bridge::restore_with_logs(in_berlin(), Snapshot::default());
    let wall = std::time::UNIX_EPOCH + Duration::from_millis(BERLIN_LATE);
    let kept = vec![
        (SN.to_owned(), BERLIN_LATE - 24 * 60 * MINUTE, crate::history::LineKind::Heard), // 2026-11-30 in Berlin
        (SN.to_owned(), BERLIN_LATE - 30 * MINUTE, crate::history::LineKind::Heard),
        (SN.to_owned(), BERLIN_LATE - 28 * MINUTE, crate::history::LineKind::Said),
        ("0a1b2c3d4e5f".to_owned(), BERLIN_LATE - 30 * MINUTE, crate::history::LineKind::Heard), // not known here
    ];
    b.core.begin_day(kept, wall, b.t0);
    let out = b.at(secs(0), Input::HaUp);
    assert_eq!(glance(&out), counted("1", "2"));
    assert_eq!(b.deadline(), Some(secs(600)), "and it still ends at midnight");
}

#[test]
fn without_a_history_toys_have_no_day_at_a_glance() {
    let mut b = Bridge::start(CoreConfig { glance: None, ..config() });
    let configs = b.at(secs(0), Input::HaUp).configs();
    assert!(!configs.keys().any(|t| t.contains("today")), "{:?}", configs.keys());
    let out = b.at(secs(1), heard(1, "Hi"));
    assert_eq!(glance(&out), (None, None));
    assert_eq!(b.deadline(), None, "no midnight to wait for");
}

// --- Watch words added on the page ---------------------------------------------------

#[test]
fn a_watch_word_added_on_the_page_alerts_at_once_and_is_kept_over_a_restart() {
    let mut b = Bridge::up(watching());
    assert!(alerts(&b.at(secs(0), heard(1, "Let's play with matches"))).is_empty());
    let out = b.core.set_page_watch_words(vec![WatchWord::new(" matches ", Sides::Child)]).expect("taken");
    assert!(out.save, "kept with the bridge's state");
    assert_eq!(out.logs[0].message, "watch words added on the page are now: matches (child)");
    let alert = &alerts(&b.at(secs(1), heard(2, "Where are the MATCHES?")))[0];
    assert_eq!(alert["phrase"], "matches");
    assert!(alerts(&b.at(secs(2), said(2, 1, "Matches are not toys."))).is_empty(), "the child's side only");

    let saved = through_disk(b.core.snapshot());
    let mut again = Bridge::restore(watching(), saved);
    again.at(secs(0), Input::HaUp);
    assert_eq!(alerts(&again.at(secs(1), heard(3, "matches!"))).len(), 1);
    let (configured, page) = again.core.watch_words();
    assert_eq!((configured.len(), page), (3, &[WatchWord::new("matches", Sides::Child)][..]));
}

#[test]
fn a_page_watch_word_that_is_blank_too_long_or_already_watched_is_refused_and_nothing_changes() {
    let mut b = Bridge::up(watching());
    b.core.set_page_watch_words(vec![WatchWord::new("matches", Sides::Both)]).unwrap();
    for (words, why) in [
        (vec!["  "], "\"\" is empty; write the word or phrase to watch for"),
        (vec!["KNIFE"], "\"KNIFE\" is already watched: it is in the configuration (the add-on's options)"),
        (
            vec!["lighter", "Lighter"],
            "\"Lighter\" is listed twice; list it once, with side both to watch the child and the toy",
        ),
    ] {
        let words = words.into_iter().map(|w| WatchWord::new(w, Sides::Both)).collect();
        assert_eq!(b.core.set_page_watch_words(words).unwrap_err(), why);
    }
    let long = WatchWord::new("x".repeat(101), Sides::Both);
    assert!(b.core.set_page_watch_words(vec![long]).unwrap_err().ends_with("is over 100 characters"));
    assert_eq!(b.core.watch_words().1, [WatchWord::new("matches", Sides::Both)], "unchanged");
    assert_eq!(alerts(&b.at(secs(1), heard(1, "matches"))).len(), 1);
}

#[test]
fn a_saved_page_watch_word_now_in_the_configuration_is_left_out_with_a_note() {
    let saved = Snapshot {
        page_watch_words: vec![WatchWord::new("Knife", Sides::Toy), WatchWord::new("matches", Sides::Both)],
        ..Snapshot::default()
    };
    let (b, logs) = Bridge::restore_with_logs(watching(), saved);
    assert_eq!(b.core.watch_words().1, [WatchWord::new("matches", Sides::Both)]);
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].message.contains("\"Knife\" is already watched"), "{logs:?}");
}

// --- Ready watch lists -----------------------------------------------------------------

fn lists(entries: &[(&str, bool, &[&str], &[&str])]) -> crate::watch_lists::Choices {
    entries
        .iter()
        .map(|(key, all, toys, off)| {
            let choice = crate::watch_lists::Choice {
                all: *all,
                toys: toys.iter().map(|t| sn(t)).collect(),
                off: off.iter().map(|p| p.to_string()).collect(),
            };
            (key.to_string(), choice)
        })
        .collect()
}

#[test]
fn a_ready_list_turned_on_alerts_with_its_category_for_its_toys_and_is_kept_over_a_restart() {
    let mut b = Bridge::up(watching());
    assert!(alerts(&b.at(secs(0), heard(1, "Where are the matches?"))).is_empty(), "off until turned on");
    let chosen =
        lists(&[("danger", true, &[], &["pills"]), ("distress", false, &[SN], &[]), ("adult", false, &[BEAR], &[])]);
    let out = b.core.set_watch_lists(chosen.clone()).expect("taken");
    assert!(out.save, "kept with the bridge's state");
    assert_eq!(
        out.logs[0].message,
        format!("ready watch lists on: adult ({BEAR}); danger (every toy, 1 phrases off); distress ({SN})")
    );
    let alert = &alerts(&b.at(secs(1), heard(2, "Where are the matches? I have a knife")))[0];
    assert_eq!(
        (&alert["phrase"], &alert["category"], &alert["phrases"], &alert["categories"]),
        (&json!("knife"), &json!("own"), &json!(["knife", "matches"]), &json!(["own", "danger"]))
    );
    let alert = &alerts(&b.at(secs(2), heard(3, "我不想活了")))[0];
    assert_eq!((&alert["phrase"], &alert["category"]), (&json!("不想活了"), &json!("distress")));
    // Switched off, on for another toy, or the toy's words for a child's-side list: no alert.
    for (i, text) in ["I want pills", "we were naked", "我们去游泳"].into_iter().enumerate() {
        assert!(alerts(&b.at(secs(3 + i as u64), heard(4 + i as i64, text))).is_empty(), "{text}");
    }
    assert!(alerts(&b.at(secs(7), said(6, 1, "Do you feel nobody loves you?"))).is_empty());

    let saved = through_disk(b.core.snapshot());
    assert_eq!(saved.watch_lists, chosen);
    let mut again = Bridge::restore(watching(), saved);
    again.at(secs(0), Input::HaUp);
    assert_eq!(alerts(&again.at(secs(1), heard(7, "nobody loves me")))[0]["category"], "distress");
    assert!(alerts(&again.at(secs(2), heard(8, "pills"))).is_empty(), "still switched off");
}

#[test]
fn a_choice_of_a_list_or_phrase_not_known_is_refused_and_nothing_changes() {
    let mut b = Bridge::up(watching());
    b.core.set_watch_lists(lists(&[("danger", true, &[], &[])])).unwrap();
    let why = b.core.set_watch_lists(lists(&[("weapons", true, &[], &[])])).unwrap_err();
    assert!(why.starts_with("there is no ready watch list \"weapons\""), "{why}");
    let why = b.core.set_watch_lists(lists(&[("danger", true, &[], &["spoon"])])).unwrap_err();
    assert_eq!(why, "\"spoon\" is not a phrase of the list \"danger\"");
    assert_eq!(alerts(&b.at(secs(1), heard(1, "matches")))[0]["category"], "danger", "unchanged");
    // A saved choice this release does not know is left out with a note.
    let saved = Snapshot {
        watch_lists: lists(&[("weapons", true, &[], &[]), ("adult", true, &[], &[])]),
        ..Snapshot::default()
    };
    let (b, logs) = Bridge::restore_with_logs(watching(), saved);
    assert_eq!(b.core.watch_lists().keys().collect::<Vec<_>>(), ["adult"]);
    assert!(logs[0].message.starts_with("a saved choice of ready watch lists is left out: "), "{logs:?}");
}

// --- Answers screened before the toy says them -----------------------------------------

fn screen(id: &str, sn: Option<&str>, text: &str) -> Input {
    Input::Ha {
        topic: "folotoy/bridge/screen/check".into(),
        msg: HaInbound::Screen { id: id.into(), sn: sn.map(str::to_owned), text: text.into() },
        at: wall_clock(),
    }
}

/// The verdict published for request `id`: the phrases it names.
fn verdict(out: &Output, id: &str) -> Json {
    let p = out.publish.iter().find(|p| p.topic == format!("folotoy/bridge/screen/verdict/{id}")).expect("a verdict");
    assert!(!p.retain && p.at_most_once, "a verdict is for the one request, at QoS 0 as it is asked");
    serde_json::from_slice(&p.payload).unwrap()
}

#[test]
fn an_answer_with_a_watch_word_of_the_toys_side_is_held_back_and_alerts_as_a_sentence_said_would() {
    let mut b = Bridge::up(watching());
    let out = b.at(secs(0), screen("a1", Some(SN), "You are so STUPID, take the knife"));
    assert_eq!(verdict(&out, "a1"), json!({"phrases": ["knife", "stupid"], "quiet": false}));
    let alert = &alerts(&out)[0];
    assert_eq!(alert["event_type"], "toy_said");
    assert_eq!((&alert["held_back"], &alert["sentence"]), (&json!(true), &json!("You are so STUPID, take the knife")));
    assert!(out.logs.iter().any(|l| l.message == "an answer for toy fcb467dad0c0 is held back: it holds \"knife\""));

    let out = b.at(secs(1), screen("a2", Some(SN), "刀 is a word the child's side watches"));
    assert_eq!(verdict(&out, "a2"), json!({"phrases": [], "quiet": false}), "the toy's side only");
    assert!(alerts(&out).is_empty());
    let out = b.at(secs(2), screen("a3", None, "a knife"));
    assert_eq!(
        verdict(&out, "a3"),
        json!({"phrases": ["knife"], "quiet": false}),
        "a toy not known: held back all the same"
    );
    assert!(alerts(&out).is_empty(), "no toy to alert on");
}

#[test]
fn the_integration_finds_where_to_ask_the_bridge_in_a_config_of_its_own_with_media_players_off() {
    let mut cfg = config();
    cfg.media_player = false;
    let mut b = Bridge::start(cfg);
    let out = b.at(secs(0), Input::HaUp);
    let configs = out.configs();
    assert!(!configs.keys().any(|t| t.ends_with("/media_player/config")), "no player: {:?}", configs.keys());
    let bridge = &configs[INTEGRATION_CONFIG];
    assert_eq!(bridge["origin"]["name"], "folotoy-ha-bridge");
    assert_eq!(bridge["device"]["identifiers"], json!(["folotoy_bridge"]));
    assert_eq!(bridge["availability"], json!(["folotoy/bridge/state"]));
    assert_eq!(bridge["conversation_request_topic"], "folotoy/bridge/conversation/get");
    assert_eq!(bridge["screen_request_topic"], json!(topics().screen_requests()));
    // Each toy's Conversation events and device, from its serial number.
    assert_eq!(bridge["conversation_topic"], "folotoy/{sn}/conversation");
    assert_eq!(bridge["toy_node"], "folotoy_{sn_lower}");
    assert_eq!(topics().state(&sn(SN), "conversation"), "folotoy/fcb467dad0c0/conversation");
}
