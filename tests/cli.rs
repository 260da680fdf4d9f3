//! The binary as a user starts it: the demo, configuration errors, secrets.

mod common;

use std::process::Command;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_folotoy-ha-bridge");

#[test]
fn the_demo_runs_with_no_setup_and_shows_commands_confirmed_refused_and_unanswered() {
    let out = Command::new(BIN).args(["demo", "--once", "--port", "0"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "discovery: number.folotoy_fcb467dad0c0_volume \"Volume\"",
        "HA -> bridge    folotoy/fcb467dad0c0/volume/set = 30",
        "bridge -> toy   fcb467dad0c0 updatecommonconfig msgId 1 {\"volume\":30}",
        "toy -> bridge   fcb467dad0c0 answers msgId 1: ok",
        "bridge -> HA    folotoy/fcb467dad0c0/volume = 30",
        "iwantplay msgId 3 {\"role\":1,\"text\":\"Dinner is ready!\"}",
        "answers msgId 4: FAILED",
        "\"outcome\":\"no_answer\"",
        "recording_transcribed: \"Can we take a bath?\"",
        "The page (conversations, toys, connections): http://127.0.0.1:",
    ] {
        assert!(stdout.contains(expected), "demo output lacks {expected:?}:\n{stdout}");
    }
}

#[test]
fn invalid_configuration_stops_with_one_message_naming_the_key() {
    let out = Command::new(BIN).env("FOLOTOY_HA_FOLOTOY__MAX_TOYS", "0").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("folotoy.max_toys"), "{stderr}");
    let out = Command::new(BIN).env("FOLOTOY_HA_MQTT__PORT", "http").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mqtt.port"));
}

#[tokio::test]
async fn the_broker_password_never_appears_in_the_log_even_at_trace_level() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/#"]).await;
    let yaml = format!("{}log_level: trace\n", bunny_yaml());
    let mut bridge = Bridge::start(&broker, dir.path(), &yaml);
    ha.wait_value("folotoy/bridge/state", "online").await;
    bridge.kill();
    // The first run's last will: from here on, `online` can only be the second run's.
    ha.wait_value("folotoy/bridge/state", "offline").await;
    ha.forget();
    bridge.spawn(&[
        ("FOLOTOY_HA_MQTT__USERNAME", "homeassistant"),
        ("FOLOTOY_HA_MQTT__PASSWORD", "hunter2-very-secret"),
        ("RUST_LOG", "trace"),
    ]);
    ha.wait_value("folotoy/bridge/state", "online").await;
    ha.publish(&set("volume"), "30").await;
    // The command went through this run (no toy answers here, so it waits for one).
    ha.wait_for(&state("last_command"), |p| p.contains("pending") && p.contains("30")).await;
    bridge.terminate();
    let log = bridge.log_of_this_run().join("\n");
    assert!(log.lines().count() > 5, "trace log expected:\n{log}");
    // rumqttc logs through the `log` crate: its records are in the same log, so a
    // password it printed would be caught here too.
    assert!(log.contains("Publish. Topic = "), "rumqttc's own records are missing:\n{log}");
    assert!(!log.contains("hunter2-very-secret"), "password leaked:\n{log}");
}

#[test]
fn the_addon_backup_commands_copy_the_conversations_before_and_remove_the_copy_after() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("options.json"), "{}").unwrap();
    let history = data.path().join("history");
    let bunny = folotoy_ha_bridge::folotoy::Sn::parse("fcb467dad0c0").unwrap();
    let limits = folotoy_ha_bridge::history::Limits { days: 7, max_bytes: 1 << 20 };
    let now = folotoy_ha_bridge::dates::unix_ms(std::time::SystemTime::now());
    let mut h = folotoy_ha_bridge::history::History::open(history.clone(), limits, now).unwrap();
    let line = folotoy_ha_bridge::history::Line {
        t: now,
        kind: folotoy_ha_bridge::history::LineKind::Heard,
        recording_id: Some(1),
        order: None,
        role: None,
        text: "kept in the backup".into(),
    };
    h.append(&bunny, &line).unwrap();
    let copy = history.join("conversations.backup.sqlite3");
    // As the Supervisor runs backup_pre, with the bridge still running beside it.
    let out = Command::new(BIN).args(["--data", data.path().to_str().unwrap(), "backup-history"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(copy.exists());
    let restored = folotoy_ha_bridge::history::History::open(
        {
            let r = data.path().join("restored");
            std::fs::create_dir_all(&r).unwrap();
            std::fs::copy(&copy, r.join("conversations.backup.sqlite3")).unwrap();
            r
        },
        limits,
        now,
    )
    .unwrap();
    assert_eq!(restored.messages(&bunny, u64::MAX, 10, now).unwrap()[0].text, "kept in the backup");
    let out =
        Command::new(BIN).args(["--data", data.path().to_str().unwrap(), "backup-history", "--done"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!copy.exists(), "removed after the backup");
    drop(h);
}
