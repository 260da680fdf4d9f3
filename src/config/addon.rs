//! The add-on's options (`/data/options.json`): flat as its Configuration tab
//! shows them, put where the configuration keeps them, and named in errors.

use super::*;

impl ConfigError {
    /// The same error, its key followed by the add-on option that holds it.
    pub(super) fn naming_addon_option(self) -> ConfigError {
        let name =
            |key: &str| addon_option_name(key).map_or(key.to_owned(), |n| format!("{key} (add-on option \"{n}\")"));
        match self {
            ConfigError::Load { key, problem, source_name } => {
                ConfigError::Load { key: name(&key), problem, source_name }
            }
            ConfigError::Invalid { key, problem } => ConfigError::Invalid { key: name(&key), problem },
            other => other,
        }
    }
}

/// The name the add-on's Configuration tab shows for the option holding
/// `key`, from the add-on's own English translation.
pub(super) fn addon_option_name(key: &str) -> Option<String> {
    let within =
        |path: &str| key == path || key.starts_with(&format!("{path}.")) || key.starts_with(&format!("{path}["));
    let flat = ADDON_OPTIONS
        .iter()
        .find(|(_, section, k)| within(&format!("{section}.{k}")))
        .map(|(flat, _, _)| *flat)
        .or_else(|| ["mqtt", "language", "log_level", "watch_words"].into_iter().find(|top| within(top)))?;
    let names: serde_yaml::Value = serde_yaml::from_str(include_str!("../../addon/translations/en.yaml")).ok()?;
    names["configuration"][flat]["name"].as_str().map(str::to_owned)
}

/// The add-on's options as a figment layer. The Supervisor writes every
/// option, set or not; unset ones (null, "", {}) must not hide the layers
/// below, nor make an empty `folotoy.mqtt` mean "a second broker".
pub(super) fn options_layer(path: &std::path::Path) -> Result<Option<figment::providers::Data<Json>>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(invalid("(add-on options)", format!("cannot read {}: {e}", path.display()))),
    };
    let mut value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| invalid("(add-on options)", format!("{} is not JSON: {e}", path.display())))?;
    prune(&mut value);
    nest_addon_options(&mut value);
    Ok(Some(Json::string(&value.to_string())))
}

/// Each flat add-on option and where the configuration keeps it.
pub(super) const ADDON_OPTIONS: &[(&str, &str, &str)] = &[
    ("toys", "folotoy", "toys"),
    ("allow_unknown_toys", "folotoy", "allow_unknown_toys"),
    ("max_toys", "folotoy", "max_toys"),
    ("command_timeout_s", "folotoy", "command_timeout_s"),
    ("roles", "folotoy", "roles"),
    ("folotoy_mqtt", "folotoy", "mqtt"),
    ("media_player", "homeassistant", "media_player"),
    ("discovery_prefix", "homeassistant", "discovery_prefix"),
    ("status_topic", "homeassistant", "status_topic"),
    ("keep_conversations", "history", "enabled"),
    ("conversation_days", "history", "days"),
    ("conversation_mb", "history", "max_mb"),
];

/// The add-on's options are flat (the Supervisor's options UI nests two
/// levels at most, and `folotoy.toys[].sn` is three); this puts each where
/// the configuration keeps it. Nested keys are taken as they are.
pub(super) fn nest_addon_options(v: &mut serde_json::Value) {
    let Some(top) = v.as_object_mut() else { return };
    for (flat, section, key) in ADDON_OPTIONS {
        if let Some(value) = top.remove(*flat) {
            let section = top.entry(*section).or_insert_with(|| serde_json::json!({}));
            if let Some(section) = section.as_object_mut() {
                section.entry(*key).or_insert(value);
            }
        }
    }
}

/// Drops nulls, empty strings and objects left empty, recursively.
pub(super) fn prune(v: &mut serde_json::Value) -> bool {
    use serde_json::Value as V;
    match v {
        V::Null => false,
        V::String(s) => !s.is_empty(),
        V::Object(m) => {
            m.retain(|_, x| prune(x));
            !m.is_empty()
        }
        V::Array(a) => {
            a.iter_mut().for_each(|x| {
                prune(x);
            });
            true
        }
        _ => true,
    }
}
