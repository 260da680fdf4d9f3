//! The bridge binary against a real Mosquitto and the FoloToy simulator:
//! what a user sees in Home Assistant when toys answer, refuse or stay silent.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use folotoy_ha_bridge::sim::{AckMode, SimConfig, Simulator};
use serde_json::Value as Json;

struct Setup {
    broker: Mosquitto,
    dir: tempfile::TempDir,
    bridge: Bridge,
    sim: Simulator,
    ha: Client,
}

impl Setup {
    /// Proves absence on Home Assistant's side: the bridge publishes the speaking role at
    /// once, and it publishes in the order it handles input on one connection, so once
    /// the marker is here everything caused by input handled before it is in `ha.seen`.
    async fn ha_marker(&mut self) {
        self.ha.publish(&set("speaking_role"), "Role 7").await;
        self.ha.wait_for_next(&state("speaking_role"), |p| p == "Role 7").await;
    }

    /// Proves absence on the toy's side: a Say sent now must be the next command the toy
    /// gets, so nothing was sent to it before.
    async fn toy_marker(&mut self) {
        self.ha.publish(&set("say"), "marker").await;
        let next = self.sim.next_command(WAIT).await.expect("the marker reaches the toy");
        assert_eq!(next.payload["inputParams"]["text"], "marker", "the toy got something else first: {next:?}");
    }
}

async fn setup_with(yaml: &str) -> Setup {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(&broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/#", "homeassistant/#"]).await;
    let bridge = Bridge::start(&broker, dir.path(), yaml);
    ha.wait_value("folotoy/bridge/state", "online").await;
    Setup { broker, dir, bridge, sim, ha }
}

async fn setup() -> Setup {
    setup_with(&bunny_yaml()).await
}

/// Waits until the state file satisfies `done`.
async fn wait_saved(file: &std::path::Path, done: impl Fn(&Json) -> bool) {
    let start = std::time::Instant::now();
    loop {
        let saved = std::fs::read_to_string(file).ok().and_then(|t| serde_json::from_str::<Json>(&t).ok());
        if saved.as_ref().is_some_and(&done) {
            return;
        }
        assert!(start.elapsed() < WAIT, "the state file never held it: {saved:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Bunny's device config: all its entities.
const BUNNY_CONFIG: &str = "homeassistant/device/folotoy_fcb467dad0c0/config";

fn json(s: &str) -> Json {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[tokio::test]
async fn the_log_names_every_toy_at_start_so_a_mistyped_serial_number_shows() {
    let s = setup().await;
    s.bridge.wait_log(&["INFO", "1 toy known: fcb467dad0c0 (Bunny)"]).await;
}

#[tokio::test]
async fn every_toy_entity_is_discovered_retained_with_the_bridge_online() {
    let s = setup().await;
    // A client that connects later, as Home Assistant after a restart, gets it all.
    let mut late = Client::connect(&s.broker, &["homeassistant/#", "folotoy/#"]).await;
    let msgs = late.collect(Duration::from_millis(500)).await;
    let configs: Vec<_> = msgs.iter().filter(|m| m.topic.starts_with("homeassistant/")).collect();
    // One config per device, and the media player's and the bridge's for the integration.
    let topics: BTreeSet<&str> = configs.iter().map(|m| m.topic.as_str()).collect();
    let expected = BTreeSet::from([
        "homeassistant/device/folotoy_fcb467dad0c0/config",
        "homeassistant/device/folotoy_bridge/config",
        "homeassistant/device/folotoy_bridge_server/config",
        "homeassistant/folotoy/folotoy_fcb467dad0c0/media_player/config",
        "homeassistant/folotoy/folotoy_bridge/bridge/config",
    ]);
    assert_eq!(topics, expected);
    assert!(configs.iter().all(|m| m.retain));
    let components = |node: &str| {
        let m = configs.iter().find(|m| m.topic == format!("homeassistant/device/{node}/config")).unwrap();
        let c = json(&m.payload);
        assert!(c["device"]["identifiers"].is_array());
        c
    };
    let toy = components("folotoy_fcb467dad0c0");
    let ids: BTreeSet<String> = toy["components"].as_object().unwrap().keys().cloned().collect();
    let entities = [
        "volume",
        "recording_mode",
        "volume_control",
        "power_on_sound",
        "low_battery_alarm",
        "sleep_after",
        "say",
        "speaking_role",
        "announcement_volume",
        "quiet",
        "play_audio",
        "last_command",
        "heard",
        "said",
        "last_activity",
        "conversation",
        "alert",
        "announce",
    ];
    let triggers = ["child_said", "toy_said"];
    assert_eq!(ids, entities.iter().chain(&triggers).map(|k| k.to_string()).collect());
    for key in entities {
        assert_eq!(toy["components"][key]["unique_id"], format!("folotoy_fcb467dad0c0_{key}").as_str());
    }
    assert_eq!(toy["device"]["name"], "Bunny");
    assert_eq!(toy["device"]["via_device"], "folotoy_bridge");
    assert_eq!(toy["components"]["volume"]["default_entity_id"], "number.folotoy_fcb467dad0c0_volume");
    let bridge = components("folotoy_bridge");
    assert_eq!(bridge["components"]["connection"]["platform"], "binary_sensor");
    assert_eq!(bridge["components"]["folotoy_connection"]["platform"], "binary_sensor");
    let server = components("folotoy_bridge_server");
    assert_eq!(server["components"]["reload_roles"]["platform"], "button");
    assert_eq!(server["components"]["roles_reload"]["platform"], "sensor");
    let online = msgs.iter().find(|m| m.topic == "folotoy/bridge/state").unwrap();
    assert_eq!((online.payload.as_str(), online.retain), ("online", true));
}

/// Each entity, the payload Home Assistant sends, and what the toy must get.
const COMMANDS: &[(&str, &str, &str, &str)] = &[
    ("volume", "30", "updatecommonconfig", r#"{"volume":30}"#),
    ("recording_mode", "Hold to talk", "updatecommonconfig", r#"{"record_type":2}"#),
    ("volume_control", "Home Assistant", "updatecommonconfig", r#"{"volume_control_type":2}"#),
    ("power_on_sound", "OFF", "updatecommonconfig", r#"{"open_tip_type":0}"#),
    ("low_battery_alarm", "3.6", "updatecommonconfig", r#"{"voltage_alarm":3.6}"#),
    ("sleep_after", "600", "updatecommonconfig", r#"{"sleep_trigger_time":600}"#),
    ("say", "Dinner is ready", "iwantplay", r#"{"role":1,"text":"Dinner is ready"}"#),
    ("play_audio", "http://nas.local/bell.mp3", "iwantplay", r#"{"url":"http://nas.local/bell.mp3"}"#),
];

#[tokio::test]
async fn each_entity_reaches_the_toy_as_the_documented_command_and_shows_the_confirmed_value() {
    let mut s = setup().await;
    let mut ids = Vec::new();
    for (key, value, identifier, params) in COMMANDS {
        s.ha.publish(&set(key), value).await;
        let cmd = s.sim.next_command(WAIT).await.unwrap_or_else(|| panic!("{key}: nothing reached the toy"));
        assert_eq!(cmd.topic, format!("/sys/folotoy/{BUNNY}/thing/command/call"));
        assert_eq!(cmd.payload["identifier"], *identifier, "{key}");
        assert_eq!(cmd.payload["inputParams"], json(params), "{key}");
        ids.push(cmd.payload["msgId"].as_u64().unwrap());
        // Text entities' states are `{"text": ...}` (an empty box until something is said).
        let shown = if identifier == &"iwantplay" {
            serde_json::json!({ "text": value }).to_string()
        } else {
            value.to_string()
        };
        s.ha.wait_value(&state(key), &shown).await;
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "every command has its own msgId: {ids:?}");
    s.ha.wait_for(&state("last_command"), |p| p.contains("play_audio") && p.contains("\"ok\"")).await;
    // States are retained: Home Assistant restarting later still gets them.
    assert_eq!(retained(&s.broker, &state("volume")).await.as_deref(), Some("30"));
    assert_eq!(retained(&s.broker, &state("say")).await.as_deref(), Some(r#"{"text":"Dinner is ready"}"#));
}

#[tokio::test]
async fn say_speaks_with_the_chosen_speaking_role() {
    let mut s = setup().await;
    s.ha.publish(&set("speaking_role"), "Role 4").await;
    s.ha.wait_value(&state("speaking_role"), "Role 4").await;
    s.ha.publish(&set("say"), "Bath time").await;
    let cmd = s.sim.next_command(WAIT).await.unwrap();
    assert_eq!(cmd.payload["inputParams"], json(r#"{"role":4,"text":"Bath time"}"#));
}

#[tokio::test]
async fn a_refused_command_puts_the_last_confirmed_value_back_and_says_why() {
    let mut s = setup().await;
    s.ha.publish(&set("volume"), "30").await;
    s.ha.wait_value(&state("volume"), "30").await;
    s.sim.set_ack(AckMode::Refuse);
    s.ha.seen.clear();
    s.ha.publish(&set("volume"), "80").await;
    let last = s.ha.wait_for(&state("last_command"), |p| p.contains("refused")).await;
    assert_eq!(json(&last.payload)["summary"], "Volume 80: refused by the toy");
    s.ha.wait_value(&state("volume"), "30").await;
    assert!(!s.ha.seen.iter().any(|m| m.topic == state("volume") && m.payload == "80"), "never shown as 80");
    s.bridge.wait_log(&["WARN", "refused volume 80", "/sys/folotoy/fcb467dad0c0/thing/command/call"]).await;
}

#[tokio::test]
async fn a_command_the_toy_never_answers_times_out_and_shows_the_old_value() {
    let mut s = setup().await;
    s.sim.set_ack(AckMode::Silent);
    s.ha.publish(&set("recording_mode"), "Continuous conversation").await;
    let last = s.ha.wait_for(&state("last_command"), |p| p.contains("no_answer")).await;
    let last = json(&last.payload);
    assert_eq!(last["summary"], "Recording mode Continuous conversation: no answer from the toy (waited 1 s)");
    s.ha.wait_value(&state("recording_mode"), "None").await;
    s.bridge.wait_log(&["WARN", "no answer from toy fcb467dad0c0"]).await;
}

#[tokio::test]
async fn a_late_answer_after_the_timeout_changes_nothing() {
    let mut s = setup().await;
    s.sim.set_ack(AckMode::Delay(Duration::from_millis(1500)));
    s.ha.publish(&set("volume"), "40").await;
    s.ha.wait_for(&state("last_command"), |p| p.contains("no_answer")).await;
    s.bridge.wait_log(&["WARN", "not waiting for an answer"]).await;
    // The late answer was handled before this marker, so whatever it published came before it.
    s.ha_marker().await;
    assert!(!s.ha.seen.iter().any(|m| m.topic == state("volume") && m.payload == "40"), "{:?}", s.ha.seen);
}

#[tokio::test]
async fn out_of_range_values_never_reach_the_toy() {
    let mut s = setup().await;
    for (key, value) in
        [("volume", "101"), ("sleep_after", "10"), ("low_battery_alarm", "9"), ("recording_mode", "Shout")]
    {
        s.ha.publish(&set(key), value).await;
        s.ha.wait_for(&state("last_command"), |p| p.contains("invalid") && p.contains(value)).await;
        s.bridge.wait_log(&["WARN", "refused before sending", &set(key)]).await;
    }
    s.toy_marker().await;
}

#[tokio::test]
async fn a_retained_command_is_not_replayed_when_the_bridge_connects() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(&broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/#"]).await;
    // Left behind by a misconfigured automation (`retain: true`).
    ha.publish_retained(&set("volume"), b"55").await;
    let bridge = Bridge::start(&broker, dir.path(), &bunny_yaml());
    ha.wait_value("folotoy/bridge/state", "online").await;
    bridge.wait_log(&["WARN", "retained command ignored", &set("volume")]).await;
    // A live command after it is the first the toy gets: the retained 55 never was.
    ha.publish(&set("volume"), "56").await;
    let first = sim.next_command(WAIT).await.expect("the live command reaches the toy");
    assert_eq!(first.payload["inputParams"], json(r#"{"volume":56}"#));
}

#[tokio::test]
async fn bad_input_from_either_side_is_refused_with_a_warning_naming_topic_and_reason() {
    let s = setup().await;
    let event = format!("/sys/folotoy/{BUNNY}/thing/event/post");
    let ack = format!("/sys/folotoy/{BUNNY}/thing/command/callAck");
    let huge = "x".repeat(70 * 1024);
    let cases: Vec<(String, String, &str)> = vec![
        (event.clone(), "{\"identifier\": \"voice_gen".into(), "not JSON"),
        (event.clone(), "[1,2]".into(), "not a JSON object"),
        (event.clone(), r#"{"identifier":"voice_generated","inputParams":{"voiceText":5}}"#.into(), "voiceText"),
        (event.clone(), r#"{"identifier":"dance"}"#.into(), "\"dance\""),
        (ack.clone(), r#"{"identifier":"iwantplay","result":1}"#.into(), "msgId is missing"),
        (ack.clone(), r#"{"identifier":"iwantplay","msgId":99999,"result":1}"#.into(), "msgId 99999"),
        (event.clone(), huge, "over the 65536-byte limit"),
        // `+` and `#` cannot be in a published topic at all (the broker refuses them).
        ("/sys/folotoy/toyé12345/thing/event/post".into(), "{}".into(), "only the letters"),
        (format!("/sys/folotoy/{}/thing/event/post", "a".repeat(200)), "{}".into(), "200 characters"),
        ("folotoy/nosuchtoy1/volume/set".into(), "3".into(), "unknown toy nosuchtoy1"),
        ("folotoy/兔子兔子兔子兔子/volume/set".into(), "3".into(), "only the letters"),
        (format!("folotoy/{}/volume/set", "b".repeat(200)), "3".into(), "200 characters"),
        ("folotoy/short/volume/set".into(), "3".into(), "command ignored"),
        (set("low_battery_alarm"), "9.9".into(), "refused before sending"),
        (set("sleep_after"), "-5".into(), "refused before sending"),
        (set("recording_mode"), "{\"record_type\": 1}".into(), "is not one of"),
        (set("player_media"), "{\"url\": 5}".into(), "play_media payload"),
        (set("colour"), "red".into(), "unknown entity \"colour\""),
        (set("volume"), "loud".into(), "not a number"),
        ("homeassistant/status".into(), "maybe".into(), "neither online nor offline"),
    ];
    for (topic, payload, reason) in &cases {
        s.ha.publish(topic, payload).await;
        s.bridge.wait_log(&["WARN", reason, topic]).await;
    }
    // Still working after all that.
    s.ha.publish(&set("volume"), "20").await;
    assert_eq!(s.sim.next_command(WAIT).await.unwrap().payload["inputParams"]["volume"], 20);
}

#[tokio::test]
async fn home_assistant_coming_online_gets_everything_published_again() {
    let mut s = setup().await;
    s.ha.publish(&set("volume"), "35").await;
    s.ha.wait_value(&state("volume"), "35").await;
    s.ha.seen.clear();
    s.ha.publish("homeassistant/status", "online").await;
    s.ha.wait_for(BUNNY_CONFIG, |_| true).await;
    s.ha.wait_value(&state("volume"), "35").await;
    s.ha.wait_value("folotoy/bridge/state", "online").await;
}

#[tokio::test]
async fn sigterm_says_offline_saves_and_exits_promptly() {
    let mut s = setup().await;
    s.ha.publish(&set("volume"), "45").await;
    s.ha.wait_value(&state("volume"), "45").await;
    s.ha.seen.clear();
    let (status, took) = s.bridge.terminate();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    s.ha.wait_value("folotoy/bridge/state", "offline").await;
    assert_eq!(retained(&s.broker, "folotoy/bridge/state").await.as_deref(), Some("offline"));
    let saved: Json = json(&std::fs::read_to_string(s.dir.path().join("state.json")).unwrap());
    assert_eq!(saved["toys"][BUNNY]["settings"]["volume"], 45);
}

#[tokio::test]
async fn confirmed_settings_survive_a_bridge_restart_and_a_broker_that_forgot_everything() {
    let mut s = setup().await;
    s.ha.publish(&set("volume"), "25").await;
    s.ha.wait_value(&state("volume"), "25").await;
    s.ha.publish(&set("speaking_role"), "Role 6").await;
    s.ha.wait_value(&state("speaking_role"), "Role 6").await;
    // The state file is written beside the bridge's work, milliseconds
    // later; a crash after that loses nothing.
    wait_saved(&s.dir.path().join("state.json"), |saved| {
        saved["toys"][BUNNY]["settings"]["volume"] == 25 && saved["toys"][BUNNY]["role"] == 6
    })
    .await;
    s.bridge.kill();
    // The broker restarts without persistence: every retained message is gone.
    s.broker.restart();
    let mut ha = Client::connect(&s.broker, &["folotoy/#", "homeassistant/#"]).await;
    s.bridge.spawn(&[]);
    ha.wait_value("folotoy/bridge/state", "online").await;
    ha.wait_value(&state("volume"), "25").await;
    ha.wait_value(&state("speaking_role"), "Role 6").await;
    ha.wait_for(BUNNY_CONFIG, |p| !p.is_empty()).await;
}

#[tokio::test]
async fn a_killed_bridge_is_shown_offline_by_its_last_will() {
    let mut s = setup().await;
    s.bridge.kill();
    s.ha.wait_value("folotoy/bridge/state", "offline").await;
    assert_eq!(retained(&s.broker, "folotoy/bridge/state").await.as_deref(), Some("offline"));
}

#[tokio::test]
async fn a_corrupt_state_file_is_set_aside_and_the_bridge_starts() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.json"), b"{\"toys\": ").unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/#"]).await;
    let bridge = Bridge::start(&broker, dir.path(), &bunny_yaml());
    ha.wait_value("folotoy/bridge/state", "online").await;
    bridge.wait_log(&["WARN", "moved to", "state.json.corrupt-1"]).await;
    assert_eq!(std::fs::read(dir.path().join("state.json.corrupt-1")).unwrap(), b"{\"toys\": ");
}

#[tokio::test]
async fn a_toy_nobody_configured_appears_when_it_speaks() {
    let mut s = setup().await;
    let stranger = "c82e18658f00";
    s.sim.heard(&sn(stranger), 1, "hello").await.unwrap();
    let topic = format!("homeassistant/device/folotoy_{stranger}/config");
    let c = json(&s.ha.wait_for(&topic, |p| !p.is_empty()).await.payload);
    assert_eq!(c["device"]["name"], format!("FoloToy {stranger}"));
    s.bridge.wait_log(&["new toy c82e18658f00"]).await;
}

#[tokio::test]
async fn with_unknown_toys_disallowed_only_configured_toys_appear() {
    let yaml = format!("{}  allow_unknown_toys: false\n", bunny_yaml());
    let mut s = setup_with(&yaml).await;
    let stranger = "c82e18658f00";
    s.sim.heard(&sn(stranger), 1, "hello").await.unwrap();
    s.sim.heard(&sn(stranger), 2, "hello again").await.unwrap();
    s.bridge.wait_log(&["WARN", "toy c82e18658f00 ignored", "allow_unknown_toys is false"]).await;
    s.ha_marker().await;
    assert!(!s.ha.seen.iter().any(|m| m.topic.contains(stranger)));
    let warned = s.bridge.log().iter().filter(|l| l.contains("toy c82e18658f00 ignored")).count();
    assert_eq!(warned, 1, "warned once per toy, not per message");
}

#[tokio::test]
async fn a_flood_of_new_serial_numbers_creates_no_more_than_max_toys() {
    let yaml = format!("{}  max_toys: 3\n", bunny_yaml());
    let mut s = setup_with(&yaml).await;
    for i in 0..20 {
        s.sim.heard(&sn(&format!("flood{i:06}")), 1, "hi").await.unwrap();
    }
    // Each refused toy is warned about once: the last one's warning means all were handled.
    s.bridge.wait_log(&["WARN", "toy flood000019 ignored", "folotoy.max_toys (3) is reached"]).await;
    s.ha_marker().await;
    let toy_config = |t: &str| t.starts_with("homeassistant/device/folotoy_") && !t.contains("folotoy_bridge");
    let mut toys: Vec<_> = s.ha.seen.iter().filter(|m| toy_config(&m.topic)).map(|m| m.topic.clone()).collect();
    toys.sort();
    toys.dedup();
    assert_eq!(toys.len(), 3, "{toys:?}");
}

#[tokio::test]
async fn a_toy_removed_from_the_configuration_has_its_entities_cleared() {
    let mut s = setup_with(&format!("{}  allow_unknown_toys: false\n", bunny_yaml())).await;
    s.ha.wait_for(BUNNY_CONFIG, |p| !p.is_empty()).await;
    s.bridge.terminate();
    let dir = s.dir.path().to_owned();
    let other = "folotoy:\n  allow_unknown_toys: false\n  toys:\n    - sn: 08d1f9c6a310\n";
    let _bridge = Bridge::start(&s.broker, &dir, other);
    s.ha.wait_for(BUNNY_CONFIG, |p| p.is_empty()).await;
    s.ha.wait_for("homeassistant/folotoy/folotoy_fcb467dad0c0/media_player/config", |p| p.is_empty()).await;
    s.ha.wait_for("homeassistant/device/folotoy_08d1f9c6a310/config", |p| !p.is_empty()).await;
}

#[tokio::test]
async fn a_dragged_slider_sends_only_the_newest_value_after_the_one_in_flight() {
    let mut s = setup().await;
    s.sim.set_ack(AckMode::Delay(Duration::from_millis(300)));
    for v in ["10", "20", "30", "40"] {
        s.ha.publish(&set("volume"), v).await;
    }
    let first = s.sim.next_command(WAIT).await.unwrap();
    assert_eq!(first.payload["inputParams"]["volume"], 10);
    let second = s.sim.next_command(WAIT).await.unwrap();
    assert_eq!(second.payload["inputParams"]["volume"], 40);
    s.ha.wait_value(&state("volume"), "40").await;
    s.toy_marker().await;
}

#[tokio::test]
async fn what_the_child_says_and_the_toy_answers_reach_home_assistant_as_sensors_and_events() {
    let mut s = setup().await;
    let bunny = sn(BUNNY);
    let long = "Once upon a time ".repeat(40);
    s.sim.heard(&bunny, 41, &long).await.unwrap();
    let event = s.ha.wait_for(&state("conversation"), |p| p.contains("heard")).await;
    assert!(!event.retain, "events must not fire again on reconnect");
    assert_eq!(json(&event.payload)["text"], long.as_str());
    let heard = json(&s.ha.wait_for(&state("heard"), |p| p.contains("\"recording_id\":41")).await.payload);
    assert_eq!(heard["summary"].as_str().unwrap().chars().count(), 255);
    assert_eq!(heard["text"], long.as_str());

    // Sentences out of order and one repeated: the answer reads in order, once.
    for (order, text) in [(2, " lived a bunny."), (1, "There"), (2, " lived a bunny."), (3, " The end.")] {
        s.sim.said(&bunny, 41, order, text).await.unwrap();
    }
    s.ha.wait_for(&state("said"), |p| json(p)["summary"] == "There lived a bunny. The end.").await;
    let said = json(&retained(&s.broker, &state("said")).await.unwrap());
    assert_eq!(said["voice_urls"].as_array().unwrap().len(), 3);
    assert!(retained(&s.broker, &state("last_activity")).await.unwrap().starts_with("20"));
    assert_eq!(retained(&s.broker, &state("conversation")).await, None);
}

#[tokio::test]
async fn a_burst_of_a_thousand_sentences_fires_every_event_and_the_heard_sensor_ends_on_the_last() {
    // Mosquitto's default limits, as in most homes: nothing may be dropped
    // on the way in (the bridge subscribes at QoS 0) or out.
    let mut s = setup().await;
    let bunny = sn(BUNNY);
    const N: i64 = 1000;
    for id in 1..=N {
        s.sim.heard(&bunny, id, &format!("sentence {id}")).await.unwrap();
    }
    let mut ids = std::collections::BTreeSet::new();
    while ids.len() < N as usize {
        let event =
            s.ha.wait_for(&state("conversation"), |p| !ids.contains(&json(p)["recording_id"].as_i64().unwrap())).await;
        ids.insert(json(&event.payload)["recording_id"].as_i64().unwrap());
    }
    s.ha.wait_for(&state("heard"), |p| json(p)["summary"] == format!("sentence {N}")).await;
}

#[tokio::test]
async fn a_toy_talking_nonstop_rewrites_its_heard_sensor_at_most_about_once_a_second() {
    let mut s = setup().await;
    let bunny = sn(BUNNY);
    s.ha.collect(Duration::from_millis(300)).await;
    let before = s.ha.seen.len();
    let start = std::time::Instant::now();
    // 100 sentences over two seconds or more, each its own event.
    for id in 1..=100 {
        s.sim.heard(&bunny, id, &format!("sentence {id}")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = start.elapsed().as_secs_f64().ceil() as usize;
    s.ha.wait_for(&state("heard"), |p| json(p)["summary"] == "sentence 100").await;
    let since: Vec<&Msg> = s.ha.seen[before..].iter().collect();
    let events: Vec<_> = since.iter().filter(|m| m.topic == state("conversation")).collect();
    assert_eq!(events.len(), 100, "every sentence fires its event");
    assert!(events.iter().all(|m| m.qos == rumqttc::QoS::AtMostOnce), "events are sent at QoS 0");
    let updates: Vec<_> = since.iter().filter(|m| m.topic == state("heard")).collect();
    assert!(updates.iter().all(|m| m.qos == rumqttc::QoS::AtMostOnce), "states are sent at QoS 0");
    // One at the first sentence, then one at the end of each second (and
    // one more if the last sentence came just after a second's end).
    assert!(
        updates.len() >= 2 && updates.len() <= 2 + seconds,
        "the retained sensor was rewritten {} times in {seconds} s",
        updates.len()
    );
}

#[tokio::test]
async fn an_announcement_makes_the_toy_speak_with_its_speaking_role() {
    let mut s = setup().await;
    s.ha.publish(&set("speaking_role"), "Role 2").await;
    s.ha.wait_value(&state("speaking_role"), "Role 2").await;
    s.ha.publish(&set("announce"), "Dinner is ready").await;
    let cmd = s.sim.next_command(WAIT).await.expect("the announcement reaches the toy");
    assert_eq!(cmd.payload["identifier"], "iwantplay");
    assert_eq!(cmd.payload["inputParams"], json(r#"{"role":2,"text":"Dinner is ready"}"#));
    s.ha.wait_for(&state("last_command"), |p| p.contains("announce") && p.contains("\"ok\"")).await;
}

#[tokio::test]
async fn tts_through_the_media_player_plays_on_the_toy_and_its_volume_is_the_toys() {
    let mut s = setup().await;
    let tts = r#"{"url": "http://ha.local:8123/api/tts_proxy/abc.mp3", "announce": true}"#;
    s.ha.publish(&set("player_media"), tts).await;
    let cmd = s.sim.next_command(WAIT).await.expect("the URL reaches the toy");
    assert_eq!(cmd.payload["inputParams"], json(r#"{"url":"http://ha.local:8123/api/tts_proxy/abc.mp3"}"#));
    s.ha.wait_value(&state("player_state"), "playing").await;
    s.ha.wait_value(&state("player_title"), "abc.mp3").await;

    s.ha.publish(&set("player_volume"), "0.42").await;
    let cmd = s.sim.next_command(WAIT).await.expect("the volume reaches the toy");
    assert_eq!(cmd.payload["inputParams"], json(r#"{"volume":42}"#));
    s.ha.wait_value(&state("player_volume"), "0.42").await;
    s.ha.wait_value(&state("volume"), "42").await;
}

#[tokio::test]
async fn reload_roles_asks_the_folotoy_server_and_shows_whether_it_answered() {
    let mut s = setup().await;
    s.ha.publish("folotoy/server/reload_roles/set", "PRESS").await;
    let cmd = s.sim.next_command(WAIT).await.expect("the server gets load_roles_config");
    assert_eq!(cmd.topic, "/sys/config");
    assert_eq!(cmd.payload["identifier"], "load_roles_config");
    s.ha.wait_for("folotoy/server/roles_reload", |p| json(p)["outcome"] == "ok").await;

    s.sim.set_ack(AckMode::Silent);
    s.ha.publish("folotoy/server/reload_roles/set", "PRESS").await;
    s.ha.wait_for("folotoy/server/roles_reload", |p| json(p)["outcome"] == "no_answer").await;
    s.bridge.wait_log(&["WARN", "no answer from the FoloToy server to load_roles_config"]).await;
}

#[tokio::test]
async fn what_the_toy_reported_is_on_disk_within_seconds_and_survives_a_crash() {
    let mut s = setup().await;
    // A chatty toy: the saves are batched, but the last one still lands.
    for i in 0..20 {
        s.sim.heard(&sn(BUNNY), i, &format!("sentence {i}")).await.unwrap();
    }
    let file = s.dir.path().join("state.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&file).unwrap_or_default().contains("sentence 19") {
        assert!(std::time::Instant::now() < deadline, "the last sentence never reached the state file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.bridge.kill();
    s.broker.restart();
    let mut ha = Client::connect(&s.broker, &["folotoy/#"]).await;
    s.bridge.spawn(&[]);
    ha.wait_for(&state("heard"), |p| json(p)["summary"] == "sentence 19").await;
}

#[tokio::test]
async fn a_quiet_toy_gets_no_say_and_still_gets_its_settings() {
    let mut s = setup().await;
    s.ha.publish(&set("quiet"), "ON").await;
    s.ha.wait_value(&state("quiet"), "ON").await;
    s.ha.publish(&set("say"), "Wake up!").await;
    s.ha.wait_for(&state("last_command"), |p| p.contains("\"quiet\"") && p.contains("not sent: quiet")).await;
    s.bridge.wait_log(&["say not sent", "is quiet"]).await;
    // A setting after it goes through, and is the first thing the toy gets.
    s.ha.publish(&set("volume"), "22").await;
    let first = s.sim.next_command(WAIT).await.expect("the setting reaches the toy");
    assert_eq!(first.payload["inputParams"], json(r#"{"volume":22}"#));
    s.ha.publish(&set("quiet"), "OFF").await;
    s.ha.wait_value(&state("quiet"), "OFF").await;
    s.toy_marker().await;
}
