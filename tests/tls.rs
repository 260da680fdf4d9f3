//! TLS to the brokers: the bridge binary against a real Mosquitto with a TLS
//! listener and certificates made for the test. The test's own clients (Home
//! Assistant, the FoloToy simulator) use the broker's plain listener, so
//! only the bridge's TLS is under test.

mod common;

use std::path::Path;

use common::*;
use folotoy_ha_bridge::sim::{AckMode, SimConfig, Simulator};

/// A broker section: host, port and the given TLS keys (`key: value` lines).
fn broker_yaml(indent: &str, port: u16, tls: &[(&str, &Path)]) -> String {
    let mut s = format!("{indent}host: 127.0.0.1\n{indent}port: {port}\n");
    for (k, v) in tls {
        s += &format!("{indent}{k}: {}\n", v.display());
    }
    s
}

fn toys_yaml() -> String {
    format!("  command_timeout_s: 1\n  toys:\n    - sn: {BUNNY}\n      name: Bunny\n")
}

/// Home Assistant's broker over TLS with `tls` keys; FoloToy on the same broker.
fn one_broker(broker: &Mosquitto, tls: &[(&str, &Path)]) -> String {
    one_broker_and(broker, tls, "")
}

/// The same, with more `mqtt` lines.
fn one_broker_and(broker: &Mosquitto, tls: &[(&str, &Path)], more: &str) -> String {
    format!("mqtt:\n{}{more}folotoy:\n{}", broker_yaml("  ", broker.tls_port.unwrap(), tls), toys_yaml())
}

/// A volume change from Home Assistant reaches the toy and comes back confirmed.
async fn command_round_trips(ha: &mut Client, sim: &Simulator) {
    ha.publish(&set("volume"), "40").await;
    let cmd = sim.next_command(WAIT).await.expect("the command reached the toy");
    assert_eq!(cmd.payload["inputParams"]["volume"], 40);
    ha.wait_value(&state("volume"), "40").await;
}

/// Every connection attempt in the log, for [`never_online`].
const LINK_DEBUG: &[(&str, &str)] = &[("RUST_LOG", "info,folotoy_ha_bridge::runtime::link=debug")];

/// The bridge tried twice and failed both times, and never said it is online. Attempts
/// follow each other, so two failed ones leave no moment it was connected; a message
/// the test sends itself after them proves the broker relayed no `online` before.
async fn never_online(ha: &mut Client, bridge: &mut Bridge) {
    bridge.wait_log(&["DEBUG", "attempt 2 failed"]).await;
    ha.publish("folotoy/test/marker", "after").await;
    ha.wait_for_next("folotoy/test/marker", |p| p == "after").await;
    assert!(
        !ha.seen.iter().any(|m| m.topic == "folotoy/bridge/state" && m.payload == "online"),
        "the bridge must not get through; log:\n{}",
        bridge.log().join("\n")
    );
    assert!(bridge.running(), "the bridge keeps retrying instead of stopping");
}

#[tokio::test]
async fn the_bridge_works_over_tls_with_a_broker_whose_certificate_the_configured_ca_signed() {
    let pki = Pki::new();
    let broker = Mosquitto::start_tls(pki.listener(false));
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(&broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/#", "homeassistant/#"]).await;
    let bridge = Bridge::start_config(dir.path(), &one_broker(&broker, &[("ca_file", &pki.path("ca.pem"))]));
    ha.wait_value("folotoy/bridge/state", "online").await;
    ha.wait_for("homeassistant/device/folotoy_fcb467dad0c0/config", |p| p.contains("Bunny")).await;
    command_round_trips(&mut ha, &sim).await;
    let port = broker.tls_port.unwrap();
    bridge.wait_log(&["INFO", "connected to the broker", &format!("127.0.0.1:{port} (TLS)")]).await;
}

#[tokio::test]
async fn tls_to_folotoys_broker_with_a_client_certificate_while_home_assistants_stays_plain() {
    let pki = Pki::new();
    let ha_broker = Mosquitto::start();
    let folotoy_broker = Mosquitto::start_tls(pki.listener(true));
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(&folotoy_broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap();
    let mut ha = Client::connect(&ha_broker, &["folotoy/#"]).await;
    let folotoy = broker_yaml(
        "    ",
        folotoy_broker.tls_port.unwrap(),
        &[
            ("ca_file", &pki.path("ca.pem")),
            ("client_cert_file", &pki.path("client.pem")),
            ("client_key_file", &pki.path("client.key")),
        ],
    );
    let yaml = format!("mqtt:\n{}folotoy:\n  mqtt:\n{folotoy}{}", broker_yaml("  ", ha_broker.port, &[]), toys_yaml());
    let bridge = Bridge::start_config_env(dir.path(), &yaml, &[("RUST_LOG", "trace")]);
    ha.wait_value("folotoy/bridge/state", "online").await;
    bridge.wait_log(&["connected to FoloToy's broker", "(TLS)"]).await;
    command_round_trips(&mut ha, &sim).await;
    let plain = bridge.wait_log(&["connected to Home Assistant's broker"]).await;
    assert!(!plain.contains("TLS"), "{plain}");
    // Not even at trace level does any line of the key reach the log.
    let key = std::fs::read_to_string(pki.path("client.key")).unwrap();
    let log = bridge.log().join("\n");
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!log.contains(line), "a line of the client key is in the log");
    }
}

#[tokio::test]
async fn a_broker_certificate_the_configured_ca_did_not_sign_is_refused_and_retried() {
    let pki = Pki::new();
    let broker = Mosquitto::start_tls(pki.other_listener());
    let dir = tempfile::tempdir().unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/#"]).await;
    let mut bridge =
        Bridge::start_config_env(dir.path(), &one_broker(&broker, &[("ca_file", &pki.path("ca.pem"))]), LINK_DEBUG);
    let line = bridge.wait_log(&["WARN", "cannot connect to the broker", "(TLS)", "retrying"]).await;
    assert!(line.contains("certificate"), "says the certificate is the problem: {line}");
    assert!(line.contains("mqtt.ca_file"), "says what to check: {line}");
    never_online(&mut ha, &mut bridge).await;
}

#[tokio::test]
async fn with_tls_insecure_any_broker_certificate_is_accepted_and_a_warning_is_logged_at_start() {
    let pki = Pki::new();
    let broker = Mosquitto::start_tls(pki.other_listener());
    let dir = tempfile::tempdir().unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/#"]).await;
    let bridge = Bridge::start_config(dir.path(), &one_broker_and(&broker, &[], "  tls_insecure: true\n"));
    ha.wait_value("folotoy/bridge/state", "online").await;
    bridge.wait_log(&["WARN", "mqtt.tls_insecure is true", "not checked"]).await;
}

#[tokio::test]
async fn a_broker_requiring_a_client_certificate_accepts_the_bridge_with_one_and_refuses_it_without() {
    let pki = Pki::new();
    let broker = Mosquitto::start_tls(pki.listener(true));
    let mut ha = Client::connect(&broker, &["folotoy/#"]).await;

    let without = tempfile::tempdir().unwrap();
    let mut bridge =
        Bridge::start_config_env(without.path(), &one_broker(&broker, &[("ca_file", &pki.path("ca.pem"))]), LINK_DEBUG);
    bridge.wait_log(&["WARN", "cannot connect to the broker", "(TLS)"]).await;
    never_online(&mut ha, &mut bridge).await;
    bridge.kill();

    let with = tempfile::tempdir().unwrap();
    let tls = [
        ("ca_file", pki.path("ca.pem")),
        ("client_cert_file", pki.path("client.pem")),
        ("client_key_file", pki.path("client.key")),
    ];
    let tls: Vec<(&str, &Path)> = tls.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let _bridge = Bridge::start_config(with.path(), &one_broker(&broker, &tls));
    ha.wait_value("folotoy/bridge/state", "online").await;
}

#[tokio::test]
async fn unusable_tls_settings_stop_the_bridge_with_one_message_naming_the_key_and_the_file() {
    let pki = Pki::new();
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = pki.path("missing.pem");
    let (ca, cert, wrong_key) = (pki.path("ca.pem"), pki.path("client.pem"), pki.path("server.key"));
    let cases: Vec<(Vec<(&str, &Path)>, String)> = vec![
        (vec![("ca_file", &ca), ("client_cert_file", &cert)], "mqtt.client_key_file: is needed".into()),
        (vec![("ca_file", &missing)], format!("mqtt.ca_file: cannot read {}", missing.display())),
        (vec![("ca_file", &garbage)], format!("mqtt.ca_file: {} has no certificate", garbage.display())),
        (
            vec![("ca_file", &ca), ("client_cert_file", &cert), ("client_key_file", &garbage)],
            format!("mqtt.client_key_file: {} has no private key", garbage.display()),
        ),
        (
            vec![("ca_file", &ca), ("client_cert_file", &cert), ("client_key_file", &wrong_key)],
            "mqtt.client_key_file:".into(),
        ),
    ];
    for (tls, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!("mqtt:\n{}", broker_yaml("  ", free_port(), &tls));
        let mut bridge = Bridge::start_config(dir.path(), &yaml);
        let status = bridge.wait_exit();
        assert!(!status.success());
        let log = bridge.log();
        let errors: Vec<_> = log.iter().filter(|l| l.contains("configuration key")).collect();
        assert_eq!(errors.len(), 1, "one message: {log:?}");
        assert!(errors[0].contains(&says), "{tls:?}: expected {says:?} in {log:?}");
        assert!(!log.join("\n").contains("PRIVATE KEY"), "{log:?}");
    }
}
