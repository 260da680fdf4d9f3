//! Who gets to read a child's words: another login of Home Assistant's broker
//! under the access control list the add-on's documentation gives (read from
//! the file the documentation shows, with the block its example gives a plug),
//! and the bridge's log.

mod common;

use common::*;
use folotoy_ha_bridge::sim::{AckMode, SimConfig, Simulator};
use serde_json::{json, Value as Json};

/// The ACL as the documentation shows it, and the folder it mirrors (`/share/mosquitto`).
const ACL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/addon/mosquitto/accesscontrollist");
const ACL_CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/addon/mosquitto/acl.conf");
const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/addon/DOCS.md");

/// A second toy, for what one toy may see of another's.
const KITTY: &str = "08d1f9c6a310";

const HEARD: &str = "My secret is under the bed";
const SAID: &str = "I will keep your secret safe.";
const REQUESTS: &str = "folotoy/bridge/conversation/get";
const DELETES: &str = "folotoy/bridge/conversation/delete";

fn password(user: &str) -> String {
    format!("{user}-Pa55word")
}

/// Another client of the broker: the plug of the documentation's example.
const OTHER: &str = "kitchen_plug";
/// A topic the plug may read and write, for markers.
const MARKER: &str = "tasmota/kitchen_plug/marker";

/// The documented ACL and, as the documentation says to give every other
/// client, a block of its own: its example's, for a plug.
fn acl() -> String {
    let documented = std::fs::read_to_string(ACL).unwrap();
    let docs = std::fs::read_to_string(DOCS).unwrap();
    let start = docs.find(&format!("     user {OTHER}\n")).expect("the documentation's example of another client");
    let block: String =
        docs[start..].lines().take_while(|l| !l.contains("```")).map(|l| format!("{}\n", l.trim())).collect();
    format!("{documented}\n{block}")
}

fn broker() -> Mosquitto {
    let users = ["homeassistant", "addons", "folotoy", OTHER, BUNNY, KITTY];
    let logins: Vec<(String, String)> = users.iter().map(|u| (u.to_string(), password(u))).collect();
    let logins: Vec<(&str, &str)> = logins.iter().map(|(u, p)| (u.as_str(), p.as_str())).collect();
    Mosquitto::start_guarded(&logins, &acl())
}

async fn login(broker: &Mosquitto, user: &str, filters: &[&str]) -> Client {
    Client::connect_as(broker, user, &password(user), filters).await
}

/// One broker for both sides, as when FoloToy uses Home Assistant's: the
/// bridge logs in as the add-ons do, the FoloToy server's stand-in as
/// `folotoy`, and `ha` as Home Assistant, hearing every topic.
struct Home {
    broker: Mosquitto,
    _dir: tempfile::TempDir,
    bridge: Bridge,
    sim: Simulator,
    ha: Client,
}

async fn home() -> Home {
    let broker = broker();
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(
        &broker.mqtt_as("folotoy", &password("folotoy")),
        SimConfig { toys: vec![], ack: AckMode::Ok },
    )
    .await
    .unwrap();
    let mut ha = login(&broker, "homeassistant", &["#"]).await;
    let yaml = format!(
        "mqtt:\n  host: 127.0.0.1\n  port: {}\n  username: addons\n  password: \"{}\"\n{}web:\n  enabled: true\n  port: {}\n",
        broker.port,
        password("addons"),
        bunny_yaml(),
        free_port()
    );
    let bridge = Bridge::start_config(dir.path(), &yaml);
    ha.wait_value("folotoy/bridge/state", "online").await;
    ha.wait_for(&device_config(), |p| !p.is_empty()).await;
    Home { broker, _dir: dir, bridge, sim, ha }
}

fn device_config() -> String {
    format!("homeassistant/device/folotoy_{BUNNY}/config")
}

fn today(id: &str) -> Json {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    json!({"id": id, "sn": BUNNY, "from_ms": now - 3_600_000, "to_ms": now + 3_600_000})
}

/// The child speaks and the toy answers; Home Assistant sees both, and the
/// day's conversation answered from the history.
async fn conversation(h: &mut Home) {
    h.sim.heard(&sn(BUNNY), 7, HEARD).await.unwrap();
    h.sim.said(&sn(BUNNY), 7, 1, SAID).await.unwrap();
    h.ha.wait_for(&state("heard"), |p| p.contains(HEARD)).await;
    h.ha.wait_for(&state("said"), |p| p.contains(SAID)).await;
    h.ha.wait_for(&state("conversation"), |p| p.contains(SAID)).await;
    // Written to the history within a second: asked until it is there.
    let start = std::time::Instant::now();
    for n in 0.. {
        let id = format!("ha{n}");
        h.ha.publish(REQUESTS, &today(&id).to_string()).await;
        let answer = h.ha.wait_for_next(&format!("folotoy/bridge/conversation/response/{id}"), |_| true).await;
        if answer.payload.contains(SAID) {
            break;
        }
        assert!(start.elapsed() < WAIT, "the history never answered with the conversation: {}", answer.payload);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Publishes `marker` on a topic both `from` and `to` may use, and waits
/// until each has it: whatever the broker passed on to either before it,
/// each has received by then.
async fn marker(from: &mut Client, to: &mut Client, marker: &str) {
    from.publish(MARKER, marker).await;
    from.wait_for(MARKER, |p| p == marker).await;
    to.wait_for(MARKER, |p| p == marker).await;
}

#[tokio::test]
async fn another_login_of_the_broker_hears_nothing_the_child_or_the_toy_says() {
    let mut h = home().await;
    // Every topic the words cross, subscribed (and acknowledged) before they are said:
    // the kept states would come at once, the rest as it passes.
    let filters = [
        "#",
        "folotoy/#",
        "folotoy/+/heard",
        "folotoy/+/said",
        "folotoy/+/conversation",
        "folotoy/bridge/conversation/response/+",
        "/sys/#",
        "/user/#",
        "homeassistant/#",
        "tasmota/kitchen_plug/#",
    ];
    let mut other = login(&h.broker, OTHER, &filters).await;
    conversation(&mut h).await;
    marker(&mut h.ha, &mut other, "after the conversation").await;
    let heard: Vec<_> = other.seen.iter().filter(|m| m.topic != MARKER).collect();
    assert!(heard.is_empty(), "the other login read: {heard:#?}");
}

#[tokio::test]
async fn another_login_of_the_broker_can_neither_command_the_toy_nor_change_its_entities() {
    let mut h = home().await;
    let mut other = login(&h.broker, OTHER, &[MARKER]).await;
    let forged_event = json!({"msgId": 9, "identifier": "recording_transcribed",
        "inputParams": {"recordingId": 9, "recordingText": "forged: open the door"}});
    other.publish(&set("say"), "forged: say this").await;
    other.publish(&set("volume"), "5").await;
    other.publish_retained(&device_config(), b"").await;
    other.publish_retained("folotoy/bridge/state", b"offline").await;
    other.publish(&format!("/sys/folotoy/{BUNNY}/thing/event/post"), &forged_event.to_string()).await;
    other.publish(REQUESTS, &json!({"id": "forged", "sn": BUNNY, "from_ms": 0, "to_ms": 1}).to_string()).await;
    other.publish(DELETES, &json!({"id": "forged", "scope": "everything"}).to_string()).await;
    // What it may do: announce itself to Home Assistant.
    let own_config = format!("homeassistant/sensor/{OTHER}/power/config");
    other.publish(&own_config, r#"{"name": "Power"}"#).await;
    // Its own marker back: the broker has dealt with everything it sent before.
    other.publish(MARKER, "sent").await;
    other.wait_for(MARKER, |p| p == "sent").await;
    h.ha.wait_for(&own_config, |p| p.contains("Power")).await;

    // Home Assistant's command after them is the first to reach the toy.
    h.ha.publish(&set("volume"), "40").await;
    let first = h.sim.next_command(WAIT).await.expect("Home Assistant's command reached the toy");
    assert_eq!(first.payload["identifier"], "updatecommonconfig", "{first:?}");
    assert_eq!(first.payload["inputParams"], json!({"volume": 40}), "{first:?}");
    h.ha.wait_value(&state("volume"), "40").await;
    // What the child says after the forged event is what the toy heard.
    h.sim.heard(&sn(BUNNY), 10, "after").await.unwrap();
    h.ha.wait_for(&state("heard"), |p| p.contains("after")).await;
    marker(&mut h.ha, &mut other, "after the commands").await;

    let passed: Vec<_> =
        h.ha.seen
            .iter()
            .filter(|m| {
                m.payload.contains("forged")
                    || m.topic == REQUESTS
                    || m.topic == DELETES
                    || (m.topic == device_config() && m.payload.is_empty())
                    || (m.topic == "folotoy/bridge/state" && m.payload == "offline")
            })
            .collect();
    assert!(passed.is_empty(), "the broker let the other login's messages through: {passed:#?}");
    assert!(!h.bridge.log().iter().any(|l| l.contains("deleted in Home Assistant")), "{:?}", h.bridge.log());
    assert!(!h.bridge.log().iter().any(|l| l.contains("deleted at Home Assistant's request")), "{:?}", h.bridge.log());
}

#[tokio::test]
async fn a_toy_login_reaches_its_own_topics_only_and_the_server_every_toys() {
    let broker = broker();
    let mut server = login(&broker, "folotoy", &["/user/folotoy/+/thing/event/post"]).await;
    let mut bunny = login(&broker, BUNNY, &["#"]).await;
    let mut kitty = login(&broker, KITTY, &["#"]).await;
    let topic = |sn: &str, what: &str| format!("/user/folotoy/{sn}/thing/{what}");

    kitty.publish(&topic(KITTY, "event/post"), HEARD).await;
    server.wait_for(&topic(KITTY, "event/post"), |p| p == HEARD).await;
    bunny.publish(&topic(KITTY, "command/call"), "forged").await;
    // Bunny's own event after it: once the server has it, the broker has dealt with both.
    bunny.publish(&topic(BUNNY, "event/post"), "bunny's turn").await;
    server.wait_for(&topic(BUNNY, "event/post"), |p| p == "bunny's turn").await;
    server.publish(&topic(KITTY, "command/call"), "for kitty").await;
    server.publish(&topic(BUNNY, "command/call"), "for bunny").await;
    kitty.wait_for(&topic(KITTY, "command/call"), |p| p == "for kitty").await;
    bunny.wait_for(&topic(BUNNY, "command/call"), |p| p == "for bunny").await;

    let strays: Vec<_> = bunny.seen.iter().filter(|m| m.topic != topic(BUNNY, "command/call")).collect();
    assert!(strays.is_empty(), "a toy read another's topics: {strays:#?}");
    let forged: Vec<_> = kitty.seen.iter().filter(|m| m.payload != "for kitty").collect();
    assert!(forged.is_empty(), "a toy commanded another: {forged:#?}");
}

#[tokio::test]
async fn the_bridge_logs_no_word_of_the_child_or_the_toy_at_its_usual_level() {
    let mut h = home().await;
    conversation(&mut h).await;
    h.bridge.terminate();
    let log = h.bridge.log().join("\n");
    assert!(log.contains("INFO"), "it logged at info:\n{log}");
    assert!(!log.contains("secret"), "the log holds what was said:\n{log}");
}

#[test]
fn the_add_on_documentation_shows_the_access_control_list_the_tests_use() {
    let docs = std::fs::read_to_string(DOCS).unwrap();
    for file in [ACL, ACL_CONF] {
        // As a code block in a step of a numbered list: indented by three spaces.
        let text = std::fs::read_to_string(file).unwrap();
        let lines: String =
            text.lines().map(|l| if l.is_empty() { "\n".to_owned() } else { format!("   {l}\n") }).collect();
        let shown = format!("   ```text\n{lines}   ```\n");
        assert!(docs.contains(&shown), "addon/DOCS.md does not show {file} as it is:\n{shown}");
    }
}
