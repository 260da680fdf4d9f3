//! Faults injected for real: the broker killed (SIGKILL) and started again
//! with and without persistence while commands and events flow, either of
//! two brokers down alone. Home Assistant's side must end with every entity
//! and the right state, and nothing the toys confirmed may be lost.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use folotoy_ha_bridge::sim::{AckMode, SimConfig, Simulator};
use serde_json::Value as Json;

fn json(s: &str) -> Json {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// How many discovery configs the bridge publishes for one toy: the toy's
/// (its device's and its media player's, the reviewed snapshot), the
/// bridge's and server's devices, and the bridge's for the integration.
fn configs() -> usize {
    let snapshot = include_str!("snapshots/discovery-fcb467dad0c0.json");
    json(snapshot).as_object().unwrap().len() + 3
}

/// Events keep coming from the toy until the returned flag is set.
fn chatter(sim: Arc<Simulator>) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        let mut i = 0;
        while !flag.load(Ordering::Relaxed) {
            let _ = sim.heard(&sn(BUNNY), i, &format!("chatter {i}")).await;
            i += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    stop
}

/// What Home Assistant connecting now finds: every config, online, and the
/// confirmed volume.
async fn home_assistant_finds_everything(broker: &Mosquitto, volume: &str) -> Client {
    let mut ha = Client::connect(broker, &["homeassistant/#", "folotoy/#"]).await;
    ha.wait_value("folotoy/bridge/state", "online").await;
    ha.wait_value("folotoy/bridge/folotoy", "online").await;
    ha.wait_value(&state("volume"), volume).await;
    ha.wait_for(&state("heard"), |p| json(p)["summary"].as_str().is_some_and(|s| s.starts_with("chatter"))).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let configs: std::collections::BTreeSet<String> = ha
            .seen
            .iter()
            .filter(|m| m.topic.starts_with("homeassistant/") && !m.payload.is_empty())
            .map(|m| m.topic.clone())
            .collect();
        if configs.len() == self::configs() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {} configs: {configs:?}", configs.len());
        ha.collect(Duration::from_millis(100)).await;
    }
    ha
}

async fn broker_crash_while_traffic_flows(persistence: bool) {
    let mut broker = Mosquitto::start_with(persistence);
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(Simulator::start(&broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap());
    let mut ha = Client::connect(&broker, &["folotoy/#"]).await;
    let bridge = Bridge::start(&broker, dir.path(), &bunny_yaml());
    ha.wait_value("folotoy/bridge/state", "online").await;
    ha.publish(&set("volume"), "35").await;
    ha.wait_value(&state("volume"), "35").await;

    let stop = chatter(sim.clone());
    for _ in 0..5 {
        ha.publish(&set("volume"), "36").await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    broker.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    broker.restart();
    drop(ha);

    let mut ha = home_assistant_finds_everything(&broker, "36").await;
    stop.store(true, Ordering::Relaxed);
    bridge.wait_log(&["connected to the broker"]).await;

    // Commands reach the toy again and are confirmed (the FoloToy server,
    // here the simulator, takes a moment to subscribe again: a command in
    // that moment is reported unanswered, and the user tries again).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        ha.publish(&set("volume"), "44").await;
        let msgs = ha.collect(Duration::from_secs(2)).await;
        if msgs.iter().any(|m| m.topic == state("volume") && m.payload == "44") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "volume 44 never confirmed:\n{}", bridge.log().join("\n"));
    }
}

#[tokio::test]
async fn a_broker_that_crashes_and_forgets_everything_gets_every_entity_and_state_back() {
    broker_crash_while_traffic_flows(false).await;
}

#[tokio::test]
async fn a_broker_that_crashes_with_persistence_ends_with_every_entity_and_the_newest_state() {
    broker_crash_while_traffic_flows(true).await;
}

/// Home Assistant's broker and FoloToy's broker apart.
struct TwoBrokers {
    ha_broker: Mosquitto,
    folotoy_broker: Mosquitto,
    _dir: tempfile::TempDir,
    bridge: Bridge,
    sim: Arc<Simulator>,
}

async fn two_brokers() -> TwoBrokers {
    let ha_broker = Mosquitto::start();
    let folotoy_broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let sim =
        Arc::new(Simulator::start(&folotoy_broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap());
    let yaml = format!(
        "{}  mqtt:\n    host: 127.0.0.1\n    port: {}\n    client_id: bridge-folotoy-side\n",
        bunny_yaml(),
        folotoy_broker.port
    );
    let bridge = Bridge::start(&ha_broker, dir.path(), &yaml);
    TwoBrokers { ha_broker, folotoy_broker, _dir: dir, bridge, sim }
}

#[tokio::test]
async fn folotoys_broker_down_alone_makes_toys_unavailable_refuses_commands_and_recovers() {
    let mut t = two_brokers().await;
    let mut ha = Client::connect(&t.ha_broker, &["folotoy/#"]).await;
    ha.wait_value("folotoy/bridge/folotoy", "online").await;
    ha.publish(&set("volume"), "20").await;
    ha.wait_value(&state("volume"), "20").await;

    t.folotoy_broker.kill();
    ha.wait_value("folotoy/bridge/folotoy", "offline").await;
    // The bridge itself stays online for Home Assistant.
    assert_eq!(retained(&t.ha_broker, "folotoy/bridge/state").await.as_deref(), Some("online"));
    ha.publish(&set("volume"), "90").await;
    ha.wait_for(&state("last_command"), |p| p.contains("not connected")).await;
    t.bridge.wait_log(&["WARN", "command not sent: FoloToy's broker is not connected"]).await;

    t.folotoy_broker.restart();
    ha.wait_for("folotoy/bridge/folotoy", |p| p == "online").await;
    let stop = chatter(t.sim.clone());
    ha.wait_for(&state("heard"), |p| p.contains("chatter")).await;
    stop.store(true, Ordering::Relaxed);
    ha.publish(&set("volume"), "25").await;
    ha.wait_value(&state("volume"), "25").await;
}

#[tokio::test]
async fn home_assistants_broker_down_alone_gets_everything_back_while_toys_kept_talking() {
    let mut t = two_brokers().await;
    let mut ha = Client::connect(&t.ha_broker, &["folotoy/#"]).await;
    ha.wait_value("folotoy/bridge/state", "online").await;
    ha.publish(&set("volume"), "61").await;
    ha.wait_value(&state("volume"), "61").await;
    drop(ha);

    t.ha_broker.kill();
    // The toy talks while Home Assistant's broker is away; what it said is kept.
    t.sim.heard(&sn(BUNNY), 7, "chatter while away").await.unwrap();
    t.bridge.wait_log(&["lost Home Assistant's broker"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.ha_broker.restart();

    let ha = home_assistant_finds_everything(&t.ha_broker, "61").await;
    let heard = ha.seen.iter().rev().find(|m| m.topic == state("heard")).unwrap();
    assert_eq!(json(&heard.payload)["summary"], "chatter while away");
}

#[tokio::test]
async fn a_bridge_killed_at_any_moment_leaves_a_state_file_that_loads() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(Simulator::start(&broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap());
    let ha = Client::connect(&broker, &[]).await;
    let file = dir.path().join("state.json");
    let mut bridge = Bridge::start(&broker, dir.path(), &bunny_yaml());
    bridge.wait_log(&["connected to the broker"]).await;
    let stop = chatter(sim.clone());
    // Saves happen all the time (every confirmed volume, the chatter once a
    // second); kill the bridge at moments spread over them.
    for (round, after_ms) in [37u64, 150, 5, 420, 90, 260, 15, 333].into_iter().enumerate() {
        let volume = 10 + round;
        for _ in 0..3 {
            ha.publish(&set("volume"), &volume.to_string()).await;
        }
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        bridge.kill();
        // The bridge writes the state file at start, before it connects (which each
        // round waits for), so it is always there to check.
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("round {round}: no state file: {e}"));
        let saved: Json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("round {round}: state file corrupt after SIGKILL: {e}\n{text}"));
        assert!(saved["toys"].is_object(), "round {round}: {text}");
        bridge.spawn(&[]);
        // This run's line (wait_log reads the current run only): the next kill lands
        // `after_ms` into a bridge that is up, as the round means to.
        bridge.wait_log(&["connected to the broker"]).await;
        assert!(!bridge.log().iter().any(|l| l.contains("moved to")), "a state file was set aside as corrupt");
    }
    stop.store(true, Ordering::Relaxed);
}
