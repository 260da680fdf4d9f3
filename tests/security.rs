//! Brokers that want a user name and password: the bridge logs in, and the
//! password never appears in its log, even at the most verbose level.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

mod common;
use common::{free_port, spawn_logged, wait_logged, Lines, WAIT};

const PASSWORD: &str = "Tr0ub4dor&3-folotoy";

/// Mosquitto with one listener that wants a password (for the bridge) and
/// one that does not (for the test to watch).
struct AuthBroker {
    child: Child,
    secure: u16,
    open: u16,
    _dir: tempfile::TempDir,
}

impl AuthBroker {
    fn start() -> AuthBroker {
        let dir = tempfile::tempdir().unwrap();
        let passwords = dir.path().join("passwords");
        let ok = Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(&passwords)
            .args(["bridge", PASSWORD])
            .status()
            .expect("mosquitto_passwd comes with mosquitto");
        assert!(ok.success());
        let (secure, open) = (free_port(), free_port());
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "per_listener_settings true\nlistener {secure} 127.0.0.1\nallow_anonymous false\npassword_file {}\nlistener {open} 127.0.0.1\nallow_anonymous true\n",
                passwords.display()
            ),
        )
        .unwrap();
        let bin = if Path::new("/usr/sbin/mosquitto").exists() { "/usr/sbin/mosquitto" } else { "mosquitto" };
        let child = Command::new(bin).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", open)).is_err() {
            assert!(start.elapsed() < WAIT, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        AuthBroker { child, secure, open, _dir: dir }
    }
}

impl Drop for AuthBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bridge at trace level, logging in with `password`.
fn bridge(broker: &AuthBroker, dir: &Path, password: &str) -> (Child, Lines) {
    let config = dir.join("bridge.yaml");
    std::fs::write(
        &config,
        format!(
            "mqtt:\n  host: 127.0.0.1\n  port: {}\n  username: bridge\n  password: \"{password}\"\nstate_file: {}\nfolotoy:\n  toys:\n    - sn: fcb467dad0c0\n",
            broker.secure,
            dir.join("state.json").display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_folotoy-ha-bridge"));
    cmd.arg("--config").arg(&config).env("RUST_LOG", "trace").stdout(Stdio::null());
    let lines = Lines::default();
    (spawn_logged(&mut cmd, &lines), lines)
}

async fn wait_log(lines: &Lines, part: &str) {
    let start = Instant::now();
    while !lines.lock().unwrap().iter().any(|l| l.contains(part)) {
        assert!(start.elapsed() < WAIT, "no log line with {part:?}:\n{}", lines.lock().unwrap().join("\n"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the bridge's availability on the open listener says `online`.
async fn wait_online(port: u16) {
    let (client, mut ev) = AsyncClient::new(MqttOptions::new("watcher", "127.0.0.1", port), 16);
    client.subscribe("folotoy/bridge/state", QoS::AtLeastOnce).await.unwrap();
    let found = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Event::Incoming(Packet::Publish(p))) = ev.poll().await {
                if &p.payload[..] == b"online" {
                    return;
                }
            }
        }
    })
    .await;
    assert!(found.is_ok(), "the bridge never came online");
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    wait_logged(child);
}

#[tokio::test]
async fn the_bridge_logs_in_with_a_password_that_never_appears_in_its_log() {
    let broker = AuthBroker::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = bridge(&broker, dir.path(), PASSWORD);
    wait_online(broker.open).await;
    wait_log(&lines, "publish").await;
    stop(&mut child);
    let log = lines.lock().unwrap().join("\n");
    assert!(log.contains("connected to the broker"), "{log}");
    assert!(log.contains("Publish. Topic = "), "rumqttc's own records (`log` crate) are in it too:\n{log}");
    assert!(!log.contains(PASSWORD), "the password is in the log:\n{log}");
    assert!(!log.contains("Tr0ub4dor"), "part of the password is in the log");
}

#[tokio::test]
async fn a_wrong_password_is_reported_without_showing_it() {
    let broker = AuthBroker::start();
    let dir = tempfile::tempdir().unwrap();
    let wrong = "not-the-Password-42";
    let (mut child, lines) = bridge(&broker, dir.path(), wrong);
    wait_log(&lines, "cannot connect to the broker").await;
    stop(&mut child);
    let log = lines.lock().unwrap().join("\n");
    let lower = log.to_lowercase();
    assert!(lower.contains("notauthorized") || lower.contains("not authorized"), "{log}");
    assert!(log.contains("check mqtt.username and mqtt.password"), "the log says what to fix:\n{log}");
    assert!(!log.contains(wrong), "the password is in the log:\n{log}");
}
