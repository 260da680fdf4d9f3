//! Hostile ground: what any client of either broker can publish where the
//! bridge reads must not take it off that broker or stop it bridging the toys.

mod common;

use common::*;
use folotoy_ha_bridge::sim::{AckMode, SimConfig, Simulator};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

/// Publishes `payload` at QoS 1 as any client of `broker` may, whatever its
/// size, and returns once the broker has it.
async fn publish_big(broker: &Mosquitto, topic: &str, payload: Vec<u8>, retain: bool) {
    let mut opts = MqttOptions::new(format!("big-{}", free_port()), "127.0.0.1", broker.port);
    opts.set_max_packet_size(64 << 20, 64 << 20);
    let (client, mut ev) = AsyncClient::new(opts, 8);
    client.publish(topic, QoS::AtLeastOnce, retain, payload).await.unwrap();
    let acked = async {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => break,
                Ok(_) => {}
                Err(e) => panic!("publishing {topic}: {e}"),
            }
        }
        client.disconnect().await.unwrap();
        while !matches!(ev.poll().await, Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_)) {}
    };
    tokio::time::timeout(WAIT, acked).await.expect("the broker took the message");
}

fn count(bridge: &Bridge, parts: &[&str]) -> usize {
    bridge.log_of_this_run().iter().filter(|l| parts.iter().all(|p| l.contains(p))).count()
}

#[tokio::test]
async fn an_oversized_message_on_either_broker_is_refused_once_and_the_bridge_stays_on_both() {
    let ha_broker = Mosquitto::start();
    let folotoy_broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(&folotoy_broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap();
    // Left on both brokers before the bridge ever starts, as a hostile or broken client would:
    // 1.2 MB where the bridge reads (over the parsers' 64 KiB, under what it takes from a
    // broker), and 6 MB (over that: the broker must drop it for the bridge).
    let event = "/sys/folotoy/0badc0ffee00/thing/event/post";
    let command = set("volume");
    let big = vec![b'x'; 1_200_000];
    publish_big(&folotoy_broker, event, big.clone(), true).await;
    publish_big(&ha_broker, &command, big.clone(), true).await;
    publish_big(&folotoy_broker, "/sys/folotoy/0badc0ffee01/thing/event/post", vec![b'y'; 6 << 20], true).await;
    publish_big(&ha_broker, "homeassistant/status", vec![b'z'; 6 << 20], true).await;

    let yaml = format!(
        "{}  mqtt:\n    host: 127.0.0.1\n    port: {}\n    client_id: bridge-folotoy-side\n",
        bunny_yaml(),
        folotoy_broker.port
    );
    let mut ha = Client::connect(&ha_broker, &["folotoy/#"]).await;
    let mut bridge = Bridge::start(&ha_broker, dir.path(), &yaml);
    ha.wait_value("folotoy/bridge/state", "online").await;
    ha.wait_value("folotoy/bridge/folotoy", "online").await;
    // FoloToy's link was `offline` until it connected: what counts is after both are up.
    ha.forget();
    bridge.wait_log(&["WARN", event, "1200000 bytes is over the 65536-byte limit"]).await;
    bridge.wait_log(&["WARN", &command, "1200000 bytes is over the 65536-byte limit"]).await;

    for round in 0..3 {
        // The same again, live: told once, not per copy.
        publish_big(&folotoy_broker, event, big.clone(), false).await;
        publish_big(&ha_broker, &command, big.clone(), false).await;
        // After them, the toy's words still reach Home Assistant, and a command the toy.
        sim.heard(&sn(BUNNY), round, &format!("still here {round}")).await.unwrap();
        ha.wait_for(&state("heard"), |p| p.contains(&format!("still here {round}"))).await;
        ha.publish(&command, &format!("{}", 40 + round)).await;
        ha.wait_value(&state("volume"), &format!("{}", 40 + round)).await;
    }
    assert_eq!(count(&bridge, &["WARN", event, "over the"]), 1, "{:#?}", bridge.log_of_this_run());
    assert_eq!(count(&bridge, &["WARN", &command, "over the"]), 1, "{:#?}", bridge.log_of_this_run());
    let offline: Vec<&Msg> =
        ha.seen.iter().filter(|m| m.topic.starts_with("folotoy/bridge/") && m.payload == "offline").collect();
    assert!(offline.is_empty(), "the bridge went offline: {offline:?}");
    assert_eq!(count(&bridge, &["lost "]), 0, "{:#?}", bridge.log_of_this_run());

    // A restart meets the same retained messages, and holds as well.
    bridge.kill();
    ha.forget();
    bridge.spawn(&[]);
    ha.wait_value("folotoy/bridge/state", "online").await;
    bridge.wait_log(&["WARN", event, "over the"]).await;
    sim.heard(&sn(BUNNY), 9, "after the restart").await.unwrap();
    ha.wait_for(&state("heard"), |p| p.contains("after the restart")).await;
    assert_eq!(count(&bridge, &["lost "]), 0, "{:#?}", bridge.log_of_this_run());
}
