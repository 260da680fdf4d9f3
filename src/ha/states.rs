//! Entity states as Home Assistant reads them from the state topics.

use super::entities::{Entity, Kind, MAX_TEXT};
use crate::bridge::state::{LastCommand, ToyState};
use crate::catalog::Catalog;

/// What Home Assistant's MQTT number, select and switch take as "unknown".
pub const UNKNOWN: &str = "None";

/// The state payload of `entity`. Settings the toy never confirmed are
/// `None` (unknown), so Home Assistant never shows a guess.
pub fn render(entity: &Entity, toy: &ToyState, catalog: &Catalog, roles: &[String]) -> String {
    match entity.kind {
        Kind::Number { setting, .. } => toy.settings.get(setting).map(|v| v.to_string()),
        Kind::Select { setting, options } => toy.settings.get(setting).and_then(|v| {
            let code = v.as_f64() as i64;
            options.iter().find(|(_, c)| *c == code).map(|(k, _)| catalog.option(entity.key, k).to_owned())
        }),
        Kind::Switch { setting, on, .. } => {
            toy.settings.get(setting).map(|v| if v.as_f64() as i64 == on { "ON" } else { "OFF" }.to_owned())
        }
        Kind::SpeakingRole => roles.get(usize::from(toy.role).saturating_sub(1)).cloned(),
        // A text entity has no "unknown": empty is its honest blank.
        Kind::Say => Some(toy.said.clone().unwrap_or_default()),
        Kind::PlayAudio => Some(toy.played.clone().unwrap_or_default()),
        Kind::LastCommand => Some(last_command(toy.last_command.as_ref(), catalog)),
    }
    .unwrap_or_else(|| UNKNOWN.to_owned())
}

/// The Last command sensor's JSON: `summary` is its state (kept under Home
/// Assistant's 255-character limit), the rest are attributes.
pub fn last_command(cmd: Option<&LastCommand>, catalog: &Catalog) -> String {
    let Some(cmd) = cmd else {
        return serde_json::json!({ "summary": "" }).to_string();
    };
    let name = catalog.entity(&cmd.entity);
    let mut summary = format!("{name} {}: {}", cmd.value, catalog.outcome(cmd.outcome.key()));
    if let Some(reason) = &cmd.reason {
        summary.push_str(&format!(" ({reason})"));
    }
    let mut json = serde_json::to_value(cmd).expect("plain struct");
    json["summary"] = truncate(&summary, MAX_TEXT).into();
    json.to_string()
}

/// Cuts `s` to at most `max` characters, marking the cut with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::state::Outcome;
    use crate::folotoy::{Setting, Value};

    #[test]
    fn unconfirmed_settings_are_unknown_and_confirmed_ones_are_labelled() {
        let cat = Catalog::load("en").unwrap();
        let mut toy = ToyState::default();
        let show = |toy: &ToyState, key| render(Entity::find(key).unwrap(), toy, &cat, &cat.roles);
        assert_eq!(show(&toy, "volume"), "None");
        assert_eq!(show(&toy, "recording_mode"), "None");
        toy.settings.set(Setting::Volume, Value::Int(30));
        toy.settings.set(Setting::RecordType, Value::Int(3));
        toy.settings.set(Setting::OpenTipType, Value::Int(0));
        toy.settings.set(Setting::VoltageAlarm, Value::Float(3.6));
        assert_eq!(show(&toy, "volume"), "30");
        assert_eq!(show(&toy, "recording_mode"), "Continuous conversation");
        assert_eq!(show(&toy, "power_on_sound"), "OFF");
        assert_eq!(show(&toy, "low_battery_alarm"), "3.6");
        assert_eq!(show(&toy, "speaking_role"), "Role 1");
        assert_eq!(show(&toy, "say"), "");
    }

    #[test]
    fn last_command_summary_stays_under_255_characters() {
        let cat = Catalog::load("en").unwrap();
        let cmd = LastCommand {
            entity: "say".into(),
            value: "x".repeat(255),
            outcome: Outcome::Refused,
            msg_id: Some(4),
            reason: None,
        };
        let json: serde_json::Value = serde_json::from_str(&last_command(Some(&cmd), &cat)).unwrap();
        assert_eq!(json["summary"].as_str().unwrap().chars().count(), 255);
        assert_eq!(json["outcome"], "refused");
        assert_eq!(json["msg_id"], 4);
    }
}
