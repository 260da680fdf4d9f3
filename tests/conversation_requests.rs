//! `folotoy.get_conversation`'s requests over MQTT, answered by the real
//! bridge from its conversation history, against Mosquitto and the simulator.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use folotoy_ha_bridge::sim::{AckMode, SimConfig, Simulator};
use serde_json::{json, Value as Json};

const REQUESTS: &str = "folotoy/bridge/conversation/get";
const HOUR_MS: u64 = 3_600_000;

fn response(id: &str) -> String {
    format!("folotoy/bridge/conversation/response/{id}")
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

struct Setup {
    _broker: Mosquitto,
    _dir: tempfile::TempDir,
    bridge: Bridge,
    sim: Simulator,
    ha: Client,
}

/// The bridge with `yaml` besides Bunny; `ha` hears every answer.
async fn setup(yaml: &str) -> Setup {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(&broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/bridge/#"]).await;
    let bridge = Bridge::start(&broker, dir.path(), &format!("{}{yaml}", bunny_yaml()));
    ha.wait_value("folotoy/bridge/state", "online").await;
    Setup { _broker: broker, _dir: dir, bridge, sim, ha }
}

fn with_page() -> String {
    format!("web:\n  enabled: true\n  port: {}\n", free_port())
}

/// Asks, and waits for the answer to this request.
async fn ask(ha: &mut Client, id: &str, request: Json) -> Json {
    ha.publish(REQUESTS, &request.to_string()).await;
    let m = ha.wait_for_next(&response(id), |_| true).await;
    assert!(!m.retain, "an answer is not retained");
    serde_json::from_str(&m.payload).unwrap()
}

fn today(id: &str, sn: &str) -> Json {
    let now = now_ms();
    json!({"id": id, "sn": sn, "from_ms": now - HOUR_MS, "to_ms": now + HOUR_MS})
}

#[tokio::test]
async fn a_toys_exchanges_in_a_window_are_answered_on_the_requests_own_topic() {
    let mut s = setup(&with_page()).await;
    s.sim.heard(&sn(BUNNY), 7, "Why is the sky blue?").await.unwrap();
    s.sim.said(&sn(BUNNY), 7, 1, "Because of the air,").await.unwrap();
    s.sim.said(&sn(BUNNY), 7, 2, " which scatters blue light.").await.unwrap();
    // Written to the history within moments: asked until the whole answer is there.
    let start = std::time::Instant::now();
    let mut n = 0;
    let answer = loop {
        n += 1;
        let id = format!("r{n}");
        let a = ask(&mut s.ha, &id, today(&id, BUNNY)).await;
        if a["messages"].as_array().is_some_and(|m| m.len() == 2 && m[1]["text"].as_str().unwrap().ends_with("light."))
        {
            break a;
        }
        assert!(start.elapsed() < WAIT, "never answered with the exchange: {a}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let id = format!("r{n}");
    let messages = &answer["messages"];
    assert_eq!(answer["id"], id.as_str());
    assert_eq!(answer["sn"], BUNNY);
    assert_eq!(answer["truncated"], false);
    assert_eq!(messages[0]["kind"], "heard");
    assert_eq!(messages[0]["text"], "Why is the sky blue?");
    assert_eq!(messages[1]["kind"], "said");
    assert_eq!(messages[1]["text"], "Because of the air, which scatters blue light.");
    assert_eq!(messages[1]["role"], 1);
    assert!(messages[0]["t"].as_u64().unwrap() <= messages[1]["t"].as_u64().unwrap());
    assert!(messages[0].get("recording_id").is_none(), "only what a digest needs");

    // Upper case, as FoloToy may write a serial number: the same toy.
    let upper = ask(&mut s.ha, "upper", today("upper", &BUNNY.to_uppercase())).await;
    assert_eq!(upper["messages"], *messages);

    let now = now_ms();
    let yesterday = json!({"id": "y", "sn": BUNNY, "from_ms": now - 30 * HOUR_MS, "to_ms": now - 6 * HOUR_MS});
    let empty = ask(&mut s.ha, "y", yesterday).await;
    assert_eq!(empty, json!({"id": "y", "sn": BUNNY, "messages": [], "truncated": false, "days": []}));
    // A week, as the weekly report asks: today's talk in its days.
    let week = json!({"id": "w", "sn": BUNNY, "from_ms": now - 7 * 24 * HOUR_MS + HOUR_MS, "to_ms": now + HOUR_MS});
    let week = ask(&mut s.ha, "w", week).await;
    assert_eq!(week["messages"], *messages);
    let days = week["days"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{week}");
    // The answer's parts may be stamped in the question's millisecond: a minute or none.
    assert_eq!(days[0]["exchanges"], 1, "{week}");
    assert!(days[0]["talk_minutes"].as_u64().is_some_and(|m| m <= 1), "{week}");
    // What the bridge said about it all: nothing to warn about.
    assert!(!s.bridge.log_of_this_run().iter().any(|l| l.contains("conversation request")), "{:?}", s.bridge.log());
}

#[tokio::test]
async fn a_request_for_an_unknown_toy_or_a_window_too_long_is_answered_with_the_reason_and_warned_about() {
    let mut s = setup(&with_page()).await;
    let unknown = ask(&mut s.ha, "u1", today("u1", "08d1f9c6a310")).await;
    assert_eq!(unknown, json!({"id": "u1", "error": "no toy 08d1f9c6a310 is known to the bridge"}));
    s.bridge.wait_log(&["WARN", REQUESTS, "conversation request refused: no toy 08d1f9c6a310"]).await;

    let now = now_ms();
    let nine_days = json!({"id": "w1", "sn": BUNNY, "from_ms": now - 9 * 24 * HOUR_MS, "to_ms": now});
    let long = ask(&mut s.ha, "w1", nine_days).await;
    assert_eq!(long["error"], "the window of 216 h is longer than 192 h", "{long}");
    s.bridge.wait_log(&["WARN", REQUESTS, "longer than 192 h"]).await;

    let no_sn = ask(&mut s.ha, "s1", json!({"id": "s1", "from_ms": 1, "to_ms": 2})).await;
    assert_eq!(no_sn["error"], "sn is missing or not text");
}

#[tokio::test]
async fn requests_with_nowhere_to_answer_are_warned_about_and_the_bridge_goes_on() {
    let mut s = setup(&with_page()).await;
    s.ha.publish(REQUESTS, "not json").await;
    s.bridge.wait_log(&["WARN", REQUESTS, "conversation request refused: request is not a JSON object"]).await;
    s.ha.publish(REQUESTS, &json!({"sn": BUNNY, "from_ms": 1, "to_ms": 2}).to_string()).await;
    s.bridge.wait_log(&["WARN", REQUESTS, "request has no id"]).await;
    s.ha.publish(REQUESTS, &json!({"id": "a/b", "sn": BUNNY, "from_ms": 1, "to_ms": 2}).to_string()).await;
    s.bridge.wait_log(&["WARN", REQUESTS, "request id is not 1 to 64"]).await;
    // Kept by the broker, it reaches the bridge when it subscribes: a restart replays it.
    s.ha.client.publish(REQUESTS, rumqttc::QoS::AtLeastOnce, true, today("kept", BUNNY).to_string()).await.unwrap();
    // Received live it is not retained for this subscriber, and answered; a new
    // subscription gets it retained.
    s.ha.wait_for_next(&response("kept"), |_| true).await;
    s.bridge.kill();
    s.ha.forget();
    s.bridge.spawn(&[]);
    s.bridge.wait_log(&["WARN", REQUESTS, "retained request ignored"]).await;
    // The retained copy is not answered.
    let late = s.ha.collect(Duration::from_millis(500)).await;
    assert!(!late.iter().any(|m| m.topic == response("kept")), "{late:?}");
    s.ha.client.publish(REQUESTS, rumqttc::QoS::AtLeastOnce, true, Vec::new()).await.unwrap();
    let ok = ask(&mut s.ha, "after", today("after", BUNNY)).await;
    assert_eq!(ok["messages"], json!([]), "still answering: {ok}");
}

#[tokio::test]
async fn without_a_history_the_answer_says_which_option_keeps_one() {
    let mut s = setup("").await;
    let a = ask(&mut s.ha, "n1", today("n1", BUNNY)).await;
    assert_eq!(
        a["error"],
        "the bridge keeps no conversation history: the page is off (web.enabled is false), and the history with it"
    );
    drop(s);
    let mut s = setup(&format!("{}history:\n  enabled: false\n", with_page())).await;
    let a = ask(&mut s.ha, "n2", today("n2", BUNNY)).await;
    assert_eq!(a["error"], "the bridge keeps no conversation history: history.enabled is false");
}
