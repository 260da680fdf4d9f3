//! The layers, read in order: built-in defaults < YAML file < the add-on's
//! options < environment.

use super::addon::options_layer;
use super::*;

impl Config {
    /// Reads every layer and validates the result.
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let loaded = Self::load_layers(sources);
        // The add-on's user typed into its Configuration tab, not this file's keys.
        match (loaded, &sources.data_dir) {
            (Err(e), Some(_)) => Err(e.naming_addon_option()),
            (result, _) => result,
        }
    }

    pub(super) fn load_layers(sources: &Sources) -> Result<Config, ConfigError> {
        let defaults = defaults(sources);
        let fig = written(sources)?;
        let mqtt_given = fig.find_value("mqtt.host").is_ok();
        let port_given = |key: &str| fig.find_value(&format!("{key}.port")).is_ok();
        let (mqtt_port_given, folotoy_port_given) = (port_given("mqtt"), port_given("folotoy.mqtt"));
        let folotoy_id_given = fig.find_value("folotoy.mqtt.client_id").is_ok();
        let mut config: Config = defaults.merge(fig).extract().map_err(load_error)?;
        config.mqtt_given = mqtt_given;
        config.web.ingress = sources.data_dir.is_some();
        config.brokers_apart(mqtt_port_given, folotoy_port_given, folotoy_id_given)?;
        config.validate()?;
        Ok(config)
    }
}

/// What the bridge takes when nothing is written: in the add-on (`data_dir`), its
/// folder and its page in Home Assistant's sidebar through ingress.
fn defaults(sources: &Sources) -> Figment {
    let mut defaults = Figment::from(Serialized::defaults(Config::default()));
    if let Some(dir) = &sources.data_dir {
        defaults = defaults
            .merge(Serialized::default("state_file", dir.join("state.json")))
            .merge(Serialized::default("web.enabled", true))
            .merge(Serialized::default("web.bind", "0.0.0.0"))
            .merge(Serialized::default("web.allow_from", [INGRESS_PROXY]));
    }
    defaults
}

/// The layers a person wrote (the file, the add-on's options, the environment),
/// kept apart from the defaults to see what they set.
fn written(sources: &Sources) -> Result<Figment, ConfigError> {
    let mut fig = Figment::new();
    if let Some(file) = &sources.file {
        if !file.exists() {
            return Err(invalid("--config", format!("file {} does not exist", file.display())));
        }
        fig = fig.merge(Yaml::file(file));
    }
    if let Some(dir) = &sources.data_dir {
        if let Some(options) = options_layer(&dir.join("options.json"))? {
            fig = fig.merge(options);
        }
    }
    fig = fig.merge(Env::prefixed(ENV_PREFIX).split("__"));
    // figment reads `PASSWORD=007` as the number 7; text keys are taken
    // again as the exact text that was typed.
    for key in RAW_TEXT_KEYS {
        let var = format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase());
        if let Ok(raw) = std::env::var(&var) {
            fig = fig.merge(Serialized::default(key, raw));
        }
    }
    Ok(fig)
}

impl Config {
    /// MQTT over TLS is on port 8883 unless a port is given; the two links never
    /// share a client id on one broker.
    fn brokers_apart(
        &mut self,
        mqtt_port_given: bool,
        folotoy_port_given: bool,
        folotoy_id_given: bool,
    ) -> Result<(), ConfigError> {
        if self.mqtt.tls_enabled() && !mqtt_port_given {
            self.mqtt.port = MQTTS_PORT;
        }
        let Some(m) = self.folotoy.mqtt.as_mut() else { return Ok(()) };
        if m.tls_enabled() && !folotoy_port_given {
            m.port = MQTTS_PORT;
        }
        // A broker keeps one connection per client id: with the same id
        // the two links would knock each other off, over and over, when
        // both brokers are one.
        if !folotoy_id_given {
            // Within the 64 characters allowed, whatever mqtt.client_id is.
            let base: String = self.mqtt.client_id.chars().take(56).collect();
            m.client_id = format!("{base}-folotoy");
        } else if m.client_id == self.mqtt.client_id && (m.host == self.mqtt.host && m.port == self.mqtt.port) {
            return Err(invalid(
                "folotoy.mqtt.client_id",
                "must differ from mqtt.client_id when both name the same broker: it keeps one connection per client id",
            ));
        }
        Ok(())
    }
}

/// Keys whose environment value is text even when it looks like a number.
pub(super) const RAW_TEXT_KEYS: &[&str] = &[
    "mqtt.host",
    "mqtt.username",
    "mqtt.password",
    "mqtt.client_id",
    "folotoy.mqtt.host",
    "folotoy.mqtt.username",
    "folotoy.mqtt.password",
    "folotoy.mqtt.client_id",
    "mqtt.ca_file",
    "mqtt.client_cert_file",
    "mqtt.client_key_file",
    "folotoy.mqtt.ca_file",
    "folotoy.mqtt.client_cert_file",
    "folotoy.mqtt.client_key_file",
    "web.token",
];

/// figment's own message names the profile (`default.`) and keeps the
/// environment's upper case; users wrote `mqtt.port`, so say that.
pub(super) fn load_error(e: figment::Error) -> ConfigError {
    let key = e.path.iter().map(|p| p.to_lowercase()).collect::<Vec<_>>().join(".");
    let source_name = e.metadata.as_ref().map_or_else(
        || "defaults".to_owned(),
        |m| match &m.source {
            Some(figment::Source::File(path)) => format!("{} {}", m.name, path.display()),
            _ if m.name.starts_with("JSON") => "the add-on options (options.json)".to_owned(),
            _ => m.name.to_string(),
        },
    );
    ConfigError::Load {
        key: if key.is_empty() { "(top level)".into() } else { key },
        problem: e.kind.to_string(),
        source_name,
    }
}
