//! The automation blueprints users copy from `blueprints/`: each must be a
//! blueprint Home Assistant can import, and must use what the bridge really
//! publishes. (The Home Assistant suite in tests/ha runs `act_on_phrase` for
//! real, across a bridge restart.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use folotoy_ha_bridge::ha::entities::{Entity, Key, Kind};
use folotoy_ha_bridge::ha::states::{alert_event, Alert, Spoken, OWN_WORDS};
use folotoy_ha_bridge::saved::Heard;
use folotoy_ha_bridge::watch::{Hit, Speaker};
use folotoy_ha_bridge::watch_lists::categories;
use serde_yaml::Value;

fn blueprints() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("blueprints/automation/folotoy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// Every `!input name` anywhere in `v`.
fn input_refs(v: &Value, found: &mut BTreeSet<String>) {
    match v {
        Value::Tagged(t) if t.tag == "!input" => {
            found.insert(t.value.as_str().expect("!input takes a name").to_owned());
        }
        Value::Tagged(t) => input_refs(&t.value, found),
        Value::Sequence(s) => s.iter().for_each(|x| input_refs(x, found)),
        Value::Mapping(m) => m.values().for_each(|x| input_refs(x, found)),
        _ => {}
    }
}

#[test]
fn there_are_blueprints_to_announce_act_on_a_phrase_set_bedtime_and_notify_on_watch_words() {
    let names: Vec<String> =
        blueprints().iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    for wanted in ["announce", "act_on_phrase", "bedtime", "notify_on_watch_word", "daily_digest", "weekly_report"] {
        assert!(names.iter().any(|n| n == wanted), "no {wanted}.yaml in {names:?}");
    }
}

#[test]
fn every_blueprint_is_an_automation_whose_inputs_are_all_declared_and_used() {
    for path in blueprints() {
        let bp = load(&path);
        let name = path.display();
        let meta = &bp["blueprint"];
        assert_eq!(meta["domain"], "automation", "{name}");
        assert!(meta["name"].as_str().is_some_and(|n| !n.is_empty()), "{name} has no name");
        assert!(meta["source_url"].as_str().is_some_and(|u| u.starts_with("https://")), "{name}");
        let declared: BTreeSet<String> = meta["input"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{name} has no inputs"))
            .iter()
            .map(|(k, v)| {
                assert!(v["selector"].is_mapping(), "{name}: input {k:?} has no selector");
                k.as_str().unwrap().to_owned()
            })
            .collect();
        let mut used = BTreeSet::new();
        for section in ["triggers", "conditions", "actions", "variables"] {
            input_refs(&bp[section], &mut used);
        }
        assert_eq!(used, declared, "{name}: inputs declared and inputs used differ");
        assert!(bp["triggers"].as_sequence().is_some_and(|t| !t.is_empty()), "{name} has no trigger");
        assert!(!bp["actions"].is_null(), "{name} has no actions");
    }
}

#[test]
fn blueprints_pick_only_entities_the_bridge_publishes() {
    // The platforms of the entities a toy has, from the entity table.
    let ours: BTreeSet<&str> = folotoy_ha_bridge::ha::entities::TOY.iter().map(|e| e.component()).collect();
    for path in blueprints() {
        let bp = load(&path);
        for (key, input) in bp["blueprint"]["input"].as_mapping().unwrap() {
            let Some(filters) = input["selector"]["entity"]["filter"].as_sequence() else { continue };
            for f in filters {
                // The daily digest's AI, not a toy's entity.
                if f["domain"] == "ai_task" && f["integration"].is_null() {
                    continue;
                }
                assert_eq!(f["integration"], "mqtt", "{}: {key:?}", path.display());
                let domain = f["domain"].as_str().unwrap();
                assert!(ours.contains(domain), "{}: {key:?} picks {domain}, which toys do not have", path.display());
            }
        }
    }
}

#[test]
fn the_phrase_blueprint_reads_attributes_the_heard_event_really_has() {
    let event: serde_json::Value = serde_json::from_str(&folotoy_ha_bridge::ha::states::heard_event(&Heard {
        text: "I want a bath".into(),
        recording_id: Some(1),
    }))
    .unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("blueprints/automation/folotoy/act_on_phrase.yaml"),
    )
    .unwrap();
    for attribute in ["event_type", "text"] {
        assert!(event.get(attribute).is_some(), "the heard event has no {attribute}");
        assert!(text.contains(&format!("attributes.{attribute}")), "the blueprint does not read {attribute}");
    }
    assert_eq!(event["event_type"], "heard");
}

#[test]
fn the_watch_word_blueprint_reads_what_the_alert_event_really_has() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("blueprints/automation/folotoy/notify_on_watch_word.yaml");
    let bp = load(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    let Kind::Event(alert_types) = Entity::of(Key::Alert).kind else { panic!("the Alert entity is an event entity") };
    // Its sides are the Alert entity's event types of a watch word (not the daily limit's),
    // all chosen by default.
    let event_types: Vec<&str> = [Speaker::Child, Speaker::Toy].map(Speaker::event_type).to_vec();
    assert!(event_types.iter().all(|t| alert_types.contains(t)), "{alert_types:?}");
    let sides = &bp["blueprint"]["input"]["sides"];
    let options: Vec<&str> = sides["selector"]["select"]["options"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap())
        .collect();
    assert_eq!(options, event_types);
    let defaults: Vec<&str> = sides["default"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(defaults, event_types);
    // The attributes it reads are in both kinds of alert.
    for speaker in [Speaker::Child, Speaker::Toy] {
        let spoken =
            Spoken { speaker, sentence: "I have a knife", recording_id: Some(1), order: Some(1), role: Some(1) };
        let alert = Alert { spoken, phrases: vec![Hit { phrase: "knife", category: None }], held_back: false };
        let event: serde_json::Value = serde_json::from_str(&alert_event(&alert)).unwrap();
        assert!(event_types.contains(&event["event_type"].as_str().unwrap()), "{event}");
        for attribute in ["event_type", "phrase", "category", "categories", "sentence"] {
            assert!(event.get(attribute).is_some(), "the {speaker:?} alert has no {attribute}: {event}");
            assert!(text.contains(&format!("attributes.{attribute}")), "the blueprint does not read {attribute}");
        }
    }
    assert!(text.contains("event_type == 'child_said'"), "the message tells the child's words from the toy's");
    // Urgent lists: each ready list and the parent's own words, distress by default; an urgent
    // alert carries the companion app's critical notification for iPhone and Android.
    let urgent = &bp["blueprint"]["input"]["urgent_lists"];
    let options: Vec<&str> = urgent["selector"]["select"]["options"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap())
        .collect();
    let mut lists: Vec<&str> = categories().iter().map(|c| c.key).collect();
    lists.push(OWN_WORDS);
    assert_eq!(options, lists);
    assert_eq!(urgent["default"], serde_yaml::from_str::<Value>("[distress]").unwrap());
    let data = bp["variables"]["notification_data"].as_str().unwrap();
    for part in ["'critical': 1", "'volume': 1.0", "'ttl': 0", "'priority': 'high'", "'channel': 'alarm_stream'"] {
        assert!(data.contains(part), "the critical notification has no {part}: {data}");
    }
    // It picks the toys' event entities, and the default action is one Home Assistant always has.
    assert_eq!(bp["blueprint"]["input"]["alert"]["selector"]["entity"]["filter"][0]["domain"], "event");
    assert_eq!(bp["blueprint"]["input"]["notify"]["default"][0]["action"], "persistent_notification.create");
}

#[test]
fn the_daily_digest_and_the_weekly_report_ask_the_integration_for_a_toys_days_and_read_what_it_answers() {
    // What custom_components/folotoy/conversation.py answers.
    let services = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("custom_components/folotoy/conversation.py"),
    )
    .unwrap();
    for (name, days, fields) in [
        ("daily_digest", None, &["toy", "date", "exchanges", "transcript", "truncated"][..]),
        ("weekly_report", Some(7), &["toy", "date", "first_date", "exchanges", "transcript", "truncated", "days"][..]),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("blueprints/automation/folotoy/{name}.yaml"));
        let bp = load(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        // The toy is a device of the bridge's: MQTT's, made by FoloToy (the toys' device's manufacturer).
        let toy = &bp["blueprint"]["input"]["toy"]["selector"]["device"]["filter"][0];
        assert_eq!(toy["integration"], "mqtt", "{name}");
        assert_eq!(toy["manufacturer"], "FoloToy", "{name}");
        let first = &bp["actions"][0];
        assert_eq!(first["action"], "folotoy.get_conversation", "{name}");
        assert!(matches!(&first["data"]["device_id"], Value::Tagged(t) if t.value == "toy"), "{first:?}");
        assert_eq!(first["data"]["days"].as_u64(), days, "{name}");
        let answer = first["response_variable"].as_str().unwrap();
        for field in fields {
            assert!(text.contains(&format!("{answer}.{field}")), "{name} does not read {field}");
            assert!(services.contains(&format!("\"{field}\"")), "the action does not answer {field}");
        }
        assert!(text.contains("action: ai_task.generate_data"), "{name} asks Home Assistant's AI");
        assert!(text.contains("task_name:") && text.contains("instructions:"), "ai_task.generate_data's fields");
    }
}
