//! FoloToy cloud toys, relayed by the `folotoy` integration on Home
//! Assistant's broker, against a real Mosquitto and the bridge binary: this
//! test's client plays the integration's relay (`<base>/<sn>/cloud/...`) and
//! Home Assistant.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use folotoy_ha_bridge::sim::{AckMode, SimConfig, Simulator};
use rumqttc::QoS;
use serde_json::{json, Value as Json};

/// A toy of FoloToy's cloud, in no configuration: the integration has it.
const OWL: &str = "aabbccddeeff";
const OWL_CONFIG: &str = "homeassistant/device/folotoy_aabbccddeeff/config";
const OWL_PLAYER: &str = "homeassistant/folotoy/folotoy_aabbccddeeff/media_player/config";

fn cloud(part: &str) -> String {
    format!("folotoy/{OWL}/cloud/{part}")
}

fn owl(key: &str) -> String {
    format!("folotoy/{OWL}/{key}")
}

fn json(s: &str) -> Json {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

struct Setup {
    broker: Mosquitto,
    dir: tempfile::TempDir,
    bridge: Bridge,
    _sim: Simulator,
    ha: Client,
}

/// The bridge with Bunny (self-hosted) and the page (so a history is kept),
/// and the owl's retained hello from the integration.
async fn setup() -> Setup {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(&broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/#", "homeassistant/#"]).await;
    let yaml = format!("{}web:\n  enabled: true\n  port: {}\n", bunny_yaml(), free_port());
    let bridge = Bridge::start(&broker, dir.path(), &yaml);
    ha.wait_value("folotoy/bridge/state", "online").await;
    ha.publish_retained(&cloud("hello"), br#"{"name": "Owl"}"#).await;
    ha.wait_for(OWL_CONFIG, |p| p.contains(r#""name":"Owl""#)).await;
    Setup { broker, dir, bridge, _sim: sim, ha }
}

/// Asks the bridge for today's conversation of the owl, as `folotoy.get_conversation` does.
async fn conversation(ha: &mut Client, id: &str) -> Json {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let request = json!({"id": id, "sn": OWL, "from_ms": now - 3_600_000, "to_ms": now + 3_600_000});
    ha.publish("folotoy/bridge/conversation/get", &request.to_string()).await;
    json(&ha.wait_for_next(&format!("folotoy/bridge/conversation/response/{id}"), |_| true).await.payload)
}

#[tokio::test]
async fn a_cloud_toy_appears_with_only_the_entities_its_channel_allows_and_goes_when_the_integration_lets_it_go() {
    let mut s = setup().await;
    let bridge = s.ha.wait_for("homeassistant/folotoy/folotoy_bridge/bridge/config", |_| true).await;
    assert_eq!(json(&bridge.payload)["cloud_topic"], "folotoy/{sn}/cloud");
    let config = json(&s.ha.wait_for(OWL_CONFIG, |p| !p.is_empty()).await.payload);
    let ids: BTreeSet<&str> = config["components"].as_object().unwrap().keys().map(String::as_str).collect();
    let expected = BTreeSet::from([
        "heard",
        "said",
        "conversation",
        "alert",
        "last_activity",
        "last_command",
        "say",
        "announce",
        "quiet",
        "talk_time_today",
        "exchanges_today",
        "child_said",
        "toy_said",
        // Its daily limit and bedtime: Home Assistant's brain says their lines (see limits.rs).
        "daily_limit",
        "goodbye_line",
        "allow_more_talk",
        "bedtime",
        "bedtime_from",
        "bedtime_until",
        "bedtime_line",
    ]);
    assert_eq!(ids, expected);
    assert_eq!(config["device"]["name"], "Owl");
    let by_bridge =
        json!({"topic": "folotoy/bridge/state", "payload_available": "online", "payload_not_available": "offline"});
    assert_eq!(config["availability"], json!([by_bridge]), "not FoloToy's broker");

    // The integration removed the toy: its hello emptied.
    s.ha.publish_retained(&cloud("hello"), b"").await;
    s.ha.wait_value(OWL_CONFIG, "").await;
    s.ha.wait_value(OWL_PLAYER, "").await;
    s.bridge.wait_log(&["INFO", &cloud("hello"), "removed from the integration: forgotten"]).await;
}

#[tokio::test]
async fn what_a_cloud_toy_hears_and_says_reaches_home_assistant_and_its_history() {
    let mut s = setup().await;
    let heard = json!({"msgId": 1, "identifier": "recording_transcribed",
        "inputParams": {"recordingId": 9, "text": "Why do owls hoot?"}});
    s.ha.publish(&cloud("event"), &heard.to_string()).await;
    let said = json!({"msgId": 2, "identifier": "voice_generated",
        "inputParams": {"recordingId": 9, "order": 1, "voiceText": "To say hello in the dark."}});
    s.ha.publish(&cloud("event"), &said.to_string()).await;

    s.ha.wait_for(&owl("heard"), |p| json(p)["summary"] == "Why do owls hoot?").await;
    s.ha.wait_for(&owl("said"), |p| json(p)["summary"] == "To say hello in the dark.").await;
    let event = s.ha.wait_for(&owl("conversation"), |p| json(p)["event_type"] == "heard").await;
    assert_eq!(json(&event.payload)["text"], "Why do owls hoot?");
    s.ha.wait_for(&owl("conversation"), |p| json(p)["event_type"] == "said").await;

    // Written to the history within moments: asked until the whole exchange is there.
    let start = std::time::Instant::now();
    for n in 0.. {
        let answer = conversation(&mut s.ha, &format!("c{n}")).await;
        let texts: Vec<&str> =
            answer["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
        if texts == ["Why do owls hoot?", "To say hello in the dark."] {
            break;
        }
        assert!(start.elapsed() < WAIT, "the history never had the exchange: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn say_to_a_cloud_toy_is_relayed_as_a_notify_and_confirmed_only_by_its_notified() {
    let mut s = setup().await;
    s.ha.publish(&format!("folotoy/{OWL}/say/set"), "Good night").await;
    let notify = s.ha.wait_for(&cloud("notify"), |_| true).await;
    assert_eq!((notify.qos, notify.retain), (QoS::AtLeastOnce, false), "a command, at QoS 1");
    let sent = json(&notify.payload);
    assert_eq!(sent["text"], "Good night");
    let id = sent["id"].as_str().expect("an id as text").to_owned();
    s.ha.wait_for(&owl("last_command"), |p| json(p)["outcome"] == "pending").await;

    s.ha.publish(&cloud("notified"), &json!({"id": id, "ok": true}).to_string()).await;
    s.ha.wait_for(&owl("say"), |p| p == r#"{"text":"Good night"}"#).await;
    s.ha.wait_for(&owl("last_command"), |p| json(p)["outcome"] == "ok").await;
}

#[tokio::test]
async fn a_cloud_toys_media_player_speaks_text_through_its_announce_and_has_no_volume_nor_media() {
    let mut s = setup().await;
    let player = json(&s.ha.wait_for(OWL_PLAYER, |p| !p.is_empty()).await.payload);
    assert_eq!(player["kind"], "cloud");
    assert_eq!(player["name"], "Owl");
    assert_eq!(player["device"]["identifiers"], json!(["folotoy_aabbccddeeff"]), "on the toy's device");
    assert_eq!(player["availability"], json!(["folotoy/bridge/state"]), "not FoloToy's broker");
    assert_eq!(player["state_topic"], owl("player_state"));
    assert_eq!(player["title_topic"], owl("player_title"));
    assert_eq!(player["announce_command_topic"], owl("announce/set"), "its Announce entity's");
    for part in ["volume_topic", "volume_command_topic", "play_media_command_topic"] {
        assert!(player.get(part).is_none(), "a cloud toy's player has no {part}: {player}");
    }
    s.ha.wait_value(&owl("player_state"), "idle").await;

    // What the integration's player sends, as text: the Announce's notify, confirmed by notified.
    s.ha.publish(&owl("announce/set"), "Bath time").await;
    let sent = json(&s.ha.wait_for(&cloud("notify"), |_| true).await.payload);
    assert_eq!(sent["text"], "Bath time");
    s.ha.publish(&cloud("notified"), &json!({"id": sent["id"], "ok": true}).to_string()).await;
    s.ha.wait_value(&owl("player_state"), "playing").await;
    s.ha.wait_value(&owl("player_title"), "Bath time").await;

    // What the channel cannot carry is refused, the player's own media and volume included.
    s.ha.publish(&owl("player_media/set"), r#"{"url": "http://h/a.mp3"}"#).await;
    s.bridge.wait_log(&["WARN", "is a cloud toy, whose channel has no player_media"]).await;
    s.ha.publish(&owl("player_volume/set"), "0.5").await;
    s.bridge.wait_log(&["WARN", "is a cloud toy, whose channel has no player_volume"]).await;
    assert!(!s.ha.seen.iter().any(|m| m.topic == owl("player_volume")), "no volume shown");
}

#[tokio::test]
async fn a_retained_event_is_refused_with_a_warning_naming_its_topic() {
    let mut s = setup().await;
    // Left retained on the broker while the bridge is away, it is replayed when the bridge subscribes.
    s.bridge.kill();
    let replayed = json!({"identifier": "recording_transcribed", "inputParams": {"text": "an old question"}});
    s.ha.publish_retained(&cloud("event"), replayed.to_string().as_bytes()).await;
    s.ha.wait_for(&cloud("event"), |p| p.contains("an old question")).await;
    s.bridge.spawn(&[]);
    s.bridge.wait_log(&["WARN", &cloud("event"), "retained event ignored"]).await;
    // Taken in order after it: once this is heard, the retained one would have been before.
    let marker = json!({"identifier": "recording_transcribed", "inputParams": {"text": "marker"}});
    s.ha.publish(&cloud("event"), &marker.to_string()).await;
    s.ha.wait_for(&owl("heard"), |p| json(p)["summary"] == "marker").await;
    let heard_old = s.ha.seen.iter().any(|m| m.topic == owl("heard") && m.payload.contains("an old question"));
    assert!(!heard_old, "a retained event was taken");
}

#[tokio::test]
async fn the_screening_verdict_says_whether_the_toy_is_quiet() {
    let mut s = setup().await;
    s.ha.publish(&format!("folotoy/{OWL}/quiet/set"), "ON").await;
    s.ha.wait_value(&owl("quiet"), "ON").await;
    let request = json!({"id": "v1", "sn": OWL, "text": "Sleep well"});
    s.ha.publish("folotoy/bridge/screen/check", &request.to_string()).await;
    let verdict = s.ha.wait_for("folotoy/bridge/screen/verdict/v1", |_| true).await;
    assert_eq!(json(&verdict.payload), json!({"phrases": [], "quiet": true}));
}

#[tokio::test]
async fn a_cloud_toy_survives_a_restart_of_the_bridge_and_a_broker_that_forgot_its_hello() {
    let mut s = setup().await;
    let file = s.dir.path().join("state.json");
    let start = std::time::Instant::now();
    loop {
        let saved = std::fs::read_to_string(&file).ok().and_then(|t| serde_json::from_str::<Json>(&t).ok());
        if saved.as_ref().is_some_and(|s| s["toys"][OWL]["kind"] == "cloud" && s["toys"][OWL]["name"] == "Owl") {
            break;
        }
        assert!(start.elapsed() < WAIT, "the state file never had the owl: {saved:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.bridge.kill();
    // Without persistence the broker forgets every retained message, the hello too.
    s.broker.restart();
    let mut ha = Client::connect(&s.broker, &["folotoy/#", "homeassistant/#"]).await;
    s.bridge.spawn(&[]);
    let config = json(&ha.wait_for(OWL_CONFIG, |p| !p.is_empty()).await.payload);
    assert_eq!(config["device"]["name"], "Owl");
    assert!(config["components"].get("volume").is_none(), "still a cloud toy");
}
