//! Properties over arbitrary input: whatever arrives from either broker, the
//! bridge never panics, never sends a value outside the toy's documented ranges,
//! shows a setting only once the toy confirmed it, and always saves a state it
//! can load again. The traffic includes the toy answering what was really sent,
//! so the confirmed and the waiting-value paths run.

use std::collections::HashSet;
use std::time::{Duration, Instant, UNIX_EPOCH};

#[path = "common/ranges.rs"]
mod ranges;
use ranges::in_documented_range;

use folotoy_ha_bridge::bridge::core::Level;
use folotoy_ha_bridge::bridge::{Core, CoreConfig, Input, Side};
use folotoy_ha_bridge::catalog::Catalog;
use folotoy_ha_bridge::config::WatchWord;
use folotoy_ha_bridge::folotoy::{messages, Sn};
use folotoy_ha_bridge::ha::commands::{self, HaCommand, ToyCommand};
use folotoy_ha_bridge::ha::entities::{ToyKind, TOY};
use folotoy_ha_bridge::ha::{inbound, Topics};
use folotoy_ha_bridge::saved::Snapshot;
use folotoy_ha_bridge::watch::Sides;
use proptest::prelude::*;

const SN: &str = "fcb467dad0c0";
/// A toy nobody listed: it appears when it talks and can be deleted in
/// Home Assistant.
const VISITOR: &str = "0a1b2c3d4e5f";

fn topics() -> Topics {
    Topics { base: "folotoy".into(), discovery_prefix: "homeassistant".into(), status: "homeassistant/status".into() }
}

fn config() -> CoreConfig {
    let catalog = Catalog::load("en").unwrap();
    CoreConfig {
        topics: topics(),
        roles: catalog.roles.clone(),
        catalog,
        toys: vec![(Sn::parse(SN).unwrap(), Some("Bunny".into()))],
        allow_unknown_toys: true,
        max_toys: 4,
        command_timeout: Duration::from_secs(10),
        media_player: true,
        // Short ones, so that arbitrary text often holds one.
        watch_words: vec![
            WatchWord::new("a", Sides::Both),
            WatchWord::new("刀", Sides::Child),
            WatchWord::new("*e*", Sides::Toy),
        ],
        // A family far from UTC, as in real use.
        glance: folotoy_ha_bridge::glance::Zone::named("Asia/Shanghai"),
    }
}

/// Text that is sometimes JSON the bridge knows, sometimes almost, sometimes noise.
fn payload() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just(String::new()),
        "[0-9.eE+-]{0,12}",
        (0u32..20, 0u8..3, "[a-z_]{0,20}").prop_map(|(id, result, identifier)| format!(
            r#"{{"msgId":{id},"identifier":"{identifier}","result":{result}}}"#
        )),
        (0i64..5, 0i64..5, any::<String>()).prop_map(|(rid, order, text)| serde_json::json!({
            "identifier": "voice_generated",
            "inputParams": {"recordingId": rid, "order": order, "voiceText": text}
        })
        .to_string()),
        any::<String>().prop_map(|t| serde_json::json!({
            "identifier": "recording_transcribed", "inputParams": {"recordingText": t}
        })
        .to_string()),
    ]
}

fn folotoy_topic() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(format!("/sys/folotoy/{SN}/thing/event/post")),
        Just(format!("/sys/folotoy/{SN}/thing/command/callAck")),
        Just("/sys/configAck".to_owned()),
        Just(format!("/sys/folotoy/{VISITOR}/thing/event/post")),
        Just(format!("/sys/folotoy/{VISITOR}/thing/command/callAck")),
        "[a-zA-Z0-9]{0,40}".prop_map(|sn| format!("/sys/folotoy/{sn}/thing/event/post")),
        any::<String>(),
    ]
}

fn ha_topic() -> impl Strategy<Value = String> {
    let keys: Vec<&'static str> = TOY.iter().map(|e| e.key.as_str()).chain(["reload_roles", "nope"]).collect();
    prop_oneof![
        4 => proptest::sample::select(keys.clone()).prop_map(|k| format!("folotoy/{SN}/{k}/set")),
        1 => proptest::sample::select(keys).prop_map(|k| format!("folotoy/{VISITOR}/{k}/set")),
        // Deleting a toy's device in Home Assistant empties this.
        1 => proptest::sample::select(vec![SN, VISITOR])
            .prop_map(|sn| format!("homeassistant/device/folotoy_{sn}/config")),
        1 => Just("folotoy/server/reload_roles/set".to_owned()),
        // The integration's relay of a cloud toy: a hello may turn a toy cloud, or forget it.
        1 => (proptest::sample::select(vec![SN, VISITOR]), proptest::sample::select(vec!["hello", "event", "notified"]))
            .prop_map(|(sn, part)| format!("folotoy/{sn}/cloud/{part}")),
        1 => any::<String>(),
    ]
}

/// What Home Assistant sends to an entity: the values its UI sends (numbers in and out
/// of range, ON/OFF, option labels, role names, media JSON), and noise.
fn ha_payload() -> impl Strategy<Value = String> {
    let labels = vec![
        "ON",
        "OFF",
        "on",
        "Click to talk",
        "Hold to talk",
        "Continuous conversation",
        "Knob",
        "Home Assistant",
        "click",
        "Role 1",
        "Role 7",
        "Role 8",
        "PRESS",
        "http://h/a.mp3",
        "/api/tts_proxy/a.mp3",
    ];
    // Each range's edges, on both sides.
    let edges = vec![
        "-1", "0", "1", "2", "3", "4", "29", "30", "100", "101", "86400", "86401", "2.99", "3", "4.2", "4.21", "0.3",
        "1.01", "NaN", "inf",
    ];
    prop_oneof![
        3 => proptest::sample::select(edges).prop_map(str::to_owned),
        3 => (-20i32..220).prop_map(|n| n.to_string()),
        2 => (-0.5f64..5.0).prop_map(|x| format!("{x:.2}")),
        2 => proptest::sample::select(labels).prop_map(str::to_owned),
        1 => (0.0f64..1.2, any::<bool>()).prop_map(|(v, announce)| serde_json::json!({
            "url": "http://h/tts.mp3", "text": "Dinner", "volume": (v * 100.0).round() / 100.0, "announce": announce
        }).to_string()),
        1 => payload(),
        1 => prop_oneof![
            Just(String::new()),
            any::<String>().prop_map(|name| serde_json::json!({"name": name}).to_string()),
            (0u32..20, any::<bool>()).prop_map(|(id, ok)| serde_json::json!({"id": id.to_string(), "ok": ok}).to_string()),
        ],
    ]
}

#[derive(Debug, Clone)]
enum Step {
    FoloToy(String, String),
    Ha(String, String, bool),
    /// The toy answers a command the bridge really sent (which one, and 1 or 0).
    Answer(usize, bool),
    Tick(u64),
    Link(Side, bool),
    /// Home Assistant's birth (`online`) or last will (`offline`).
    Birth(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (folotoy_topic(), payload()).prop_map(|(t, p)| Step::FoloToy(t, p)),
        4 => (ha_topic(), ha_payload(), proptest::bool::weighted(0.1)).prop_map(|(t, p, r)| Step::Ha(t, p, r)),
        4 => (any::<usize>(), proptest::bool::weighted(0.8)).prop_map(|(i, ok)| Step::Answer(i, ok)),
        2 => (0u64..15_000).prop_map(Step::Tick),
        1 => (proptest::sample::select(vec![Side::Ha, Side::FoloToy]), any::<bool>()).prop_map(|(s, up)| Step::Link(s, up)),
        1 => any::<bool>().prop_map(Step::Birth),
    ]
}

/// A command the bridge sent to a toy, as the toy read it.
struct Sent {
    topic: String,
    msg_id: u64,
    identifier: String,
    params: serde_json::Value,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_folotoy_message_makes_the_parser_panic(topic in folotoy_topic(), bytes in proptest::collection::vec(any::<u8>(), 0..512), text in payload()) {
        let _ = messages::parse(&topic, &bytes);
        let _ = messages::parse(&topic, text.as_bytes());
    }

    #[test]
    fn no_home_assistant_command_makes_the_parser_panic_or_leave_the_documented_range(text in ha_payload()) {
        let catalog = Catalog::load("en").unwrap();
        for entity in TOY {
            let parsed = commands::parse(entity, &text, &catalog, &catalog.roles);
            if let Ok(HaCommand::Toy(ToyCommand::Set(setting, value))) = parsed {
                prop_assert!(in_documented_range(setting.field(), value.as_f64()), "{setting:?} {value:?} from {text:?}");
            }
            let _ = inbound::parse(&topics(), &format!("folotoy/{SN}/{}/set", entity.key), text.as_bytes(), false);
        }
    }

    /// What the bridge promises under any traffic: commands only in the documented
    /// ranges, never retained; a setting shown only once the toy confirmed that value;
    /// no more than max_toys; a saved state that loads again with every toy it should.
    #[test]
    fn any_traffic_keeps_the_bridges_promises(steps in proptest::collection::vec(step(), 1..80)) {
        let (mut core, _) = Core::new(config(), Snapshot::default());
        let mut now = Instant::now();
        core.handle(Input::HaUp, now);
        core.handle(Input::FoloToyUp, now);
        let mut sent: Vec<Sent> = Vec::new();
        // (toy, field, value) the toy answered 1 to.
        let mut confirmed: HashSet<(String, String, String)> = HashSet::new();
        for s in steps {
            let input = match s {
                Step::FoloToy(topic, p) => match messages::parse(&topic, p.as_bytes()) {
                    Ok(msg) => Input::FoloToy { topic, msg, at: UNIX_EPOCH + Duration::from_secs(1_800_000_000) },
                    Err(_) => continue,
                },
                Step::Ha(topic, p, retained) => match inbound::parse(&topics(), &topic, p.as_bytes(), retained) {
                    Ok(msg) => Input::Ha { topic, msg, at: UNIX_EPOCH + Duration::from_secs(1_800_000_000) },
                    Err(_) => continue,
                },
                Step::Answer(_, _) if sent.is_empty() => continue,
                Step::Answer(i, ok) => {
                    let cmd = &sent[i % sent.len()];
                    let sn = cmd.topic.split('/').nth(3).unwrap().to_owned();
                    if ok && cmd.identifier == "updatecommonconfig" {
                        for (field, value) in cmd.params.as_object().unwrap() {
                            confirmed.insert((sn.clone(), field.clone(), value.to_string()));
                        }
                    }
                    let topic = cmd.topic.replace("/command/call", "/command/callAck");
                    let ack = serde_json::json!({"msgId": cmd.msg_id, "identifier": cmd.identifier, "result": u8::from(ok)});
                    match messages::parse(&topic, ack.to_string().as_bytes()) {
                        Ok(msg) => Input::FoloToy { topic, msg, at: UNIX_EPOCH + Duration::from_secs(1_800_000_000) },
                        Err(e) => panic!("an answer the bridge cannot read: {e}"),
                    }
                }
                Step::Tick(ms) => {
                    now += Duration::from_millis(ms);
                    Input::Tick
                }
                Step::Link(Side::Ha, up) => if up { Input::HaUp } else { Input::HaDown },
                Step::Link(Side::FoloToy, up) => if up { Input::FoloToyUp } else { Input::FoloToyDown },
                Step::Birth(online) => {
                    let topic = "homeassistant/status".to_owned();
                    let payload = if online { "online" } else { "offline" };
                    Input::Ha {
                        msg: inbound::parse(&topics(), &topic, payload.as_bytes(), false).unwrap(),
                        topic,
                        at: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                    }
                }
            };
            let mut out = core.handle(input, now);
            while out.more {
                let more = core.handle(Input::Continue, now);
                out.publish.extend(more.publish);
                out.more = more.more;
            }
            for p in &out.publish {
                match p.side {
                    Side::FoloToy => {
                        prop_assert!(!p.retain, "a command to a toy is never retained");
                        let cmd: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                        let identifier = cmd["identifier"].as_str().unwrap_or_default().to_owned();
                        if identifier == "updatecommonconfig" {
                            for (field, value) in cmd["inputParams"].as_object().unwrap() {
                                prop_assert!(in_documented_range(field, value.as_f64().unwrap()), "{field} = {value}");
                            }
                        }
                        // Commands to toys (not the server's roles reload) get answered.
                        let to_toy = p.topic.ends_with("/thing/command/call");
                        if let Some(msg_id) = cmd["msgId"].as_u64().filter(|_| to_toy) {
                            sent.push(Sent { topic: p.topic.clone(), msg_id, identifier, params: cmd["inputParams"].clone() });
                        }
                    }
                    Side::Ha => {
                        let text = String::from_utf8_lossy(&p.payload);
                        if let Some((sn, field, value)) = shown_setting(&p.topic, &text) {
                            prop_assert!(
                                confirmed.contains(&(sn.clone(), field.to_owned(), value.clone())),
                                "{} shows {text}, which the toy never confirmed", p.topic
                            );
                        }
                    }
                }
            }
        }
        prop_assert!(core.toys().count() <= 4, "never more than max_toys");
        let saved = core.snapshot();
        let disk: Snapshot = serde_json::from_slice(&serde_json::to_vec(&saved).unwrap()).unwrap();
        let (again, logs) = Core::new(config(), disk);
        let warnings: Vec<_> = logs.iter().filter(|l| l.level == Level::Warn).collect();
        prop_assert!(warnings.is_empty(), "{warnings:?}");
        // Every toy comes back but one nobody listed that never spoke up
        // (only seen in someone else's command); a cloud toy, the integration's, comes back.
        let kept = saved
            .toys
            .iter()
            .filter(|(sn, t)| sn.as_str() == SN || t.last_activity_ms.is_some() || t.kind == ToyKind::Cloud)
            .count();
        prop_assert_eq!(again.toys().count(), kept);
    }
}

/// A numeric setting's state as Home Assistant reads it: the toy, the FoloToy field and
/// the value as FoloToy wrote it; None for anything else or an unknown value.
fn shown_setting(topic: &str, payload: &str) -> Option<(String, &'static str, String)> {
    let mut parts = topic.split('/');
    let (Some("folotoy"), Some(sn), Some(key), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let value: f64 = payload.parse().ok()?;
    let (field, value) = match key {
        "volume" => ("volume", value),
        "player_volume" => ("volume", (value * 100.0).round()),
        "low_battery_alarm" => ("voltage_alarm", value),
        "sleep_after" => ("sleep_trigger_time", value),
        _ => return None,
    };
    // As serde_json writes the number the bridge sent.
    let json = if field == "voltage_alarm" { serde_json::json!(value) } else { serde_json::json!(value as i64) };
    Some((sn.to_owned(), field, json.to_string()))
}
