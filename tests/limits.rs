//! A toy's daily limit and bedtime, the bridge binary against a real Mosquitto and the
//! FoloToy simulator: the limit reached mid-conversation (the goodbye said once, the alert,
//! the toy turned down, kept over a restart, put back when lifted), and bedtime begun and
//! ended with a restart inside it. Bedtime's boundaries are brought near with a time zone
//! of the test's own (a POSIX `TZ` rule) whose clock reads a few seconds before them.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use folotoy_ha_bridge::sim::{AckMode, SimConfig, Simulator};
use serde_json::Value as Json;

const GOODBYE: &str = "That's all our talking for today. See you tomorrow!";
const GOOD_NIGHT: &str = "Time to sleep. Good night!";

/// Bunny, with a history kept (the day's talk time is counted from it).
fn yaml() -> String {
    format!("{}web:\n  enabled: true\n  port: {}\n", bunny_yaml(), free_port())
}

struct Setup {
    broker: Mosquitto,
    _dir: tempfile::TempDir,
    bridge: Bridge,
    sim: Simulator,
    ha: Client,
}

async fn setup(env: &[(&str, &str)]) -> Setup {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(&broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/#", "homeassistant/#"]).await;
    let yaml = format!("mqtt:\n  host: 127.0.0.1\n  port: {}\n{}", broker.port, yaml());
    let bridge = Bridge::start_config_env(dir.path(), &yaml, env);
    ha.wait_value("folotoy/bridge/state", "online").await;
    Setup { broker, _dir: dir, bridge, sim, ha }
}

impl Setup {
    /// The toy's next command, which must satisfy `is`.
    async fn next_command(&self, what: &str, is: impl Fn(&Json) -> bool) -> Json {
        let next = self.sim.next_command(Duration::from_secs(20)).await.unwrap_or_else(|| panic!("no {what}"));
        assert!(is(&next.payload), "expected {what}, got {:?}", next.payload);
        next.payload
    }

    /// Sets the volume and waits for the toy to confirm it.
    async fn volume(&mut self, volume: u32) {
        self.ha.publish(&set("volume"), &volume.to_string()).await;
        self.ha.wait_value(&state("volume"), &volume.to_string()).await;
        self.sim.next_command(WAIT).await.expect("the volume reached the toy");
    }

    /// Restarts the bridge (in the time zone `tz`, if given).
    async fn restart(&mut self, tz: Option<&str>) {
        self.bridge.terminate();
        self.ha.forget();
        let env: Vec<(&str, &str)> = tz.map(|tz| ("TZ", tz)).into_iter().collect();
        self.bridge.spawn(&env);
        self.ha.wait_value("folotoy/bridge/state", "online").await;
    }

    /// Proves absence on the toy's side: a setting sent now must be the toy's next command.
    async fn toy_marker(&mut self) {
        self.ha.publish(&set("power_on_sound"), "OFF").await;
        self.next_command("the marker", |p| p["inputParams"] == serde_json::json!({"open_tip_type": 0})).await;
    }
}

fn says(text: &'static str) -> impl Fn(&Json) -> bool {
    move |p| p["identifier"] == "iwantplay" && p["inputParams"]["text"] == text
}

fn volume_of(volume: u32) -> impl Fn(&Json) -> bool {
    move |p| p["inputParams"] == serde_json::json!({ "volume": volume })
}

#[tokio::test]
async fn a_limit_reached_mid_conversation_says_goodbye_once_turns_the_toy_down_and_restarts_keep_it() {
    let mut s = setup(&[]).await;
    s.volume(30).await;
    s.ha.publish(&set("daily_limit"), "1").await;
    s.ha.wait_value(&state("daily_limit"), "1").await;
    s.sim.heard(&sn(BUNNY), 1, "Tell me a story").await.unwrap();
    s.ha.wait_for(&state("conversation"), |p| p.contains("Tell me a story")).await;
    s.sim.said(&sn(BUNNY), 1, 1, "Once upon a time, a rabbit lived in a hole.").await.unwrap();
    let alert = s.ha.wait_for(&state("alert"), |p| p.contains("limit_reached")).await;
    assert_eq!(
        json(&alert.payload),
        serde_json::json!({"event_type": "limit_reached", "talk_minutes": 1, "daily_limit": 1})
    );
    s.ha.wait_value(&state("quiet"), "ON").await;
    s.next_command("the goodbye", says(GOODBYE)).await;
    s.next_command("volume 0, once the goodbye played", volume_of(0)).await;
    // FoloToy's AI goes on: no second goodbye, no second alert.
    s.sim.said(&sn(BUNNY), 1, 2, "It had a blue door.").await.unwrap();
    s.ha.wait_for(&state("said"), |p| p.contains("blue door")).await;
    s.toy_marker().await;
    let alerts = s.ha.seen.iter().filter(|m| m.topic == state("alert") && m.payload.contains("limit_reached")).count();
    assert_eq!(alerts, 1, "one alert");

    // The broker restarts without persistence (every retained state gone), then the bridge.
    s.broker.restart();
    s.ha = Client::connect(&s.broker, &["folotoy/#", "homeassistant/#"]).await;
    s.ha.wait_value(&state("quiet"), "ON").await;
    s.restart(None).await;
    s.ha.wait_value(&state("quiet"), "ON").await;
    let check = r#"{"id": "r1", "sn": "fcb467dad0c0", "text": "Hello!"}"#;
    s.ha.publish("folotoy/bridge/screen/check", check).await;
    let verdict = s.ha.wait_for("folotoy/bridge/screen/verdict/r1", |_| true).await;
    assert_eq!(json(&verdict.payload)["line"], GOODBYE, "the brain is told the goodbye after a restart too");
    s.ha.publish(&set("allow_more_talk"), "PRESS").await;
    s.next_command("the volume put back", volume_of(30)).await;
    s.ha.wait_value(&state("quiet"), "OFF").await;
}

/// A POSIX TZ whose clock reads `clock` seconds after midnight now.
fn zone_reading(clock: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut offset = (clock as i64 - (now % 86_400) as i64).rem_euclid(86_400); // east of UTC
    if offset > 43_200 {
        offset -= 86_400;
    }
    let sign = if offset >= 0 { "-" } else { "+" }; // POSIX counts west of UTC as positive
    let o = offset.abs();
    format!("TEST{sign}{:02}:{:02}:{:02}", o / 3600, o % 3600 / 60, o % 60)
}

/// The earliest a boundary `BEFORE_S` after a zone read now can come.
fn earliest() -> std::time::Instant {
    std::time::Instant::now() + Duration::from_secs(BEFORE_S - 1)
}

/// How long before a boundary the bridge starts.
const BEFORE_S: u64 = 6;

#[tokio::test]
async fn bedtime_makes_the_toy_quiet_at_its_start_and_lets_it_talk_at_its_end_with_a_restart_inside() {
    // The zone's clock is read in whole seconds: the boundary comes up to a second early.
    let (tz, begins) = (zone_reading(22 * 3600 - BEFORE_S), earliest());
    let mut s = setup(&[("TZ", &tz)]).await;
    s.volume(30).await;
    for (key, value) in [("bedtime_from", "22:00"), ("bedtime_until", "06:00")] {
        s.ha.publish(&set(key), value).await;
        s.ha.wait_for(&state(key), |p| p.contains(value)).await;
    }
    s.ha.publish(&set("bedtime"), "ON").await;
    s.ha.wait_value(&state("bedtime"), "ON").await;
    assert!(std::time::Instant::now() < begins, "set before bedtime begins, for this test to mean anything");
    s.ha.wait_value(&state("quiet"), "ON").await;
    assert!(std::time::Instant::now() >= begins, "quiet at 22:00, not before");
    s.next_command("the bedtime line", says(GOOD_NIGHT)).await;
    s.next_command("volume 0", volume_of(0)).await;

    // Restarted inside bedtime, a few seconds before its end.
    let (tz, ends) = (zone_reading(6 * 3600 - BEFORE_S), earliest());
    s.restart(Some(&tz)).await;
    s.ha.wait_value(&state("quiet"), "ON").await;
    s.next_command("the volume put back at 06:00", volume_of(30)).await;
    assert!(std::time::Instant::now() >= ends, "at bedtime's end, not at the restart");
    s.ha.wait_value(&state("quiet"), "OFF").await;
    s.bridge.wait_log(&["quiet off: bedtime is over"]).await;
}

fn json(s: &str) -> Json {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}
