//! Configuration: built-in defaults < YAML file < environment
//! (`FOLOTOY_HA_` prefix, `__` between levels: `FOLOTOY_HA_MQTT__HOST`).
//!
//! Every problem is reported once, naming the key, before anything connects:
//! a bridge that starts with a half-valid configuration fails later in ways
//! that are much harder to read.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Env, Format, Json, Serialized, Yaml};
use figment::Figment;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bridge::CoreConfig;
use crate::catalog::{Catalog, CatalogError};
use crate::folotoy::Sn;
use crate::ha::Topics;

pub const ENV_PREFIX: &str = "FOLOTOY_HA_";
/// Where brokers listen for MQTT over TLS by convention.
pub const MQTTS_PORT: u16 = 8883;

/// Keys whose environment value is text even when it looks like a number.
const RAW_TEXT_KEYS: &[&str] = &[
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
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Home Assistant's broker (and FoloToy's too, unless `folotoy.mqtt` is set).
    pub mqtt: MqttConfig,
    pub folotoy: FoloToyConfig,
    pub homeassistant: HaConfig,
    /// Where confirmed settings and published discovery topics are kept.
    pub state_file: PathBuf,
    /// Language of entity names: a file in `translations/`.
    pub language: String,
    /// `error`, `warn`, `info`, `debug` or `trace`; `RUST_LOG` overrides it.
    pub log_level: String,
    /// Where the add-on asks for the MQTT broker when none is configured.
    pub supervisor_url: String,
    /// Whether any layer above the defaults named Home Assistant's broker;
    /// the add-on asks the Supervisor for it when not.
    #[serde(skip)]
    pub mqtt_given: bool,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    #[serde(deserialize_with = "opt_text")]
    pub username: Option<String>,
    pub password: Option<Secret>,
    #[serde(deserialize_with = "text")]
    pub client_id: String,
    /// TLS to this broker. Unset: on when any other TLS key below is set;
    /// `false` with one of them set is an error rather than a surprise.
    pub tls: Option<bool>,
    /// PEM file with the CA certificate(s) that signed the broker's
    /// certificate; unset: the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and its private key, for brokers that ask for
    /// one (`require_certificate true`); both or neither.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// Accept any certificate the broker shows: encrypted, but to whoever
    /// answers. Warned about at every start.
    pub tls_insecure: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FoloToyConfig {
    /// FoloToy's own broker, when it is not Home Assistant's.
    pub mqtt: Option<MqttConfig>,
    pub toys: Vec<ToyConfig>,
    /// Add toys that are not in `toys` as soon as they publish anything.
    pub allow_unknown_toys: bool,
    pub max_toys: usize,
    /// How long a toy has to answer a command before it counts as lost.
    pub command_timeout_s: f64,
    /// Names of the server's roles ("1".."7"), shown by Speaking role. A
    /// list names roles 1, 2, ... in order: the add-on's options UI has lists,
    /// not maps.
    #[serde(deserialize_with = "roles")]
    pub roles: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToyConfig {
    #[serde(deserialize_with = "sn_text")]
    pub sn: String,
    #[serde(default, deserialize_with = "opt_text")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HaConfig {
    pub discovery_prefix: String,
    pub status_topic: String,
    /// A media player per toy, for the `folotoy` Home Assistant integration.
    pub media_player: bool,
    pub base_topic: String,
}

/// A password or token: usable, but never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d).map(Secret)
    }
}

impl fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("client_id", &self.client_id)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .field("tls_insecure", &self.tls_insecure)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mqtt: MqttConfig::default(),
            folotoy: FoloToyConfig::default(),
            homeassistant: HaConfig::default(),
            state_file: PathBuf::from("folotoy-ha-bridge-state.json"),
            language: "en".into(),
            log_level: "info".into(),
            supervisor_url: "http://supervisor".into(),
            mqtt_given: false,
        }
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: "localhost".into(),
            port: 1883,
            username: None,
            password: None,
            client_id: "folotoy-ha-bridge".into(),
            tls: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            tls_insecure: false,
        }
    }
}

impl Default for FoloToyConfig {
    fn default() -> Self {
        FoloToyConfig {
            mqtt: None,
            toys: Vec::new(),
            allow_unknown_toys: true,
            max_toys: 64,
            command_timeout_s: 10.0,
            roles: BTreeMap::new(),
        }
    }
}

impl Default for HaConfig {
    fn default() -> Self {
        HaConfig {
            discovery_prefix: "homeassistant".into(),
            status_topic: "homeassistant/status".into(),
            media_player: true,
            base_topic: "folotoy".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration key {key}: {problem} (in {source_name})")]
    Load { key: String, problem: String, source_name: String },
    #[error("configuration key {key}: {problem}")]
    Invalid { key: String, problem: String },
    #[error("configuration key language: {0}")]
    Language(#[from] CatalogError),
}

/// figment's own message names the profile (`default.`) and keeps the
/// environment's upper case; users wrote `mqtt.port`, so say that.
fn load_error(e: figment::Error) -> ConfigError {
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

/// Role names as a map `{"1": name}` or a list `[name1, name2, ...]`.
fn roles<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Roles {
        Map(BTreeMap<String, String>),
        List(Vec<String>),
    }
    Ok(match Roles::deserialize(d)? {
        Roles::Map(m) => m,
        Roles::List(l) => {
            l.into_iter().enumerate().filter(|(_, n)| !n.is_empty()).map(|(i, n)| ((i + 1).to_string(), n)).collect()
        }
    })
}

impl ConfigError {
    /// The same error, its key followed by the add-on option that holds it.
    fn naming_addon_option(self) -> ConfigError {
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
fn addon_option_name(key: &str) -> Option<String> {
    let within =
        |path: &str| key == path || key.starts_with(&format!("{path}.")) || key.starts_with(&format!("{path}["));
    let flat = ADDON_OPTIONS
        .iter()
        .find(|(_, section, k)| within(&format!("{section}.{k}")))
        .map(|(flat, _, _)| *flat)
        .or_else(|| ["mqtt", "language", "log_level"].into_iter().find(|top| within(top)))?;
    let names: serde_yaml::Value = serde_yaml::from_str(include_str!("../addon/translations/en.yaml")).ok()?;
    names["configuration"][flat]["name"].as_str().map(str::to_owned)
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), problem: problem.into() }
}

/// Where each layer comes from.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// The add-on's data folder (`/data`): its `options.json` is a layer
    /// above the YAML file, and the state file lives there by default.
    pub data_dir: Option<PathBuf>,
}

/// The add-on's options as a figment layer. The Supervisor writes every
/// option, set or not; unset ones (null, "", {}) must not hide the layers
/// below, nor make an empty `folotoy.mqtt` mean "a second broker".
fn options_layer(path: &std::path::Path) -> Result<Option<figment::providers::Data<Json>>, ConfigError> {
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
const ADDON_OPTIONS: &[(&str, &str, &str)] = &[
    ("toys", "folotoy", "toys"),
    ("allow_unknown_toys", "folotoy", "allow_unknown_toys"),
    ("max_toys", "folotoy", "max_toys"),
    ("command_timeout_s", "folotoy", "command_timeout_s"),
    ("roles", "folotoy", "roles"),
    ("folotoy_mqtt", "folotoy", "mqtt"),
    ("media_player", "homeassistant", "media_player"),
    ("discovery_prefix", "homeassistant", "discovery_prefix"),
    ("status_topic", "homeassistant", "status_topic"),
];

/// The add-on's options are flat (the Supervisor's options UI nests two
/// levels at most, and `folotoy.toys[].sn` is three); this puts each where
/// the configuration keeps it. Nested keys are taken as they are.
fn nest_addon_options(v: &mut serde_json::Value) {
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
fn prune(v: &mut serde_json::Value) -> bool {
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

    fn load_layers(sources: &Sources) -> Result<Config, ConfigError> {
        let mut defaults = Figment::from(Serialized::defaults(Config::default()));
        if let Some(dir) = &sources.data_dir {
            defaults = defaults.merge(Serialized::default("state_file", dir.join("state.json")));
        }
        // The layers a person wrote, kept apart to see what they set.
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
        let mqtt_given = fig.find_value("mqtt.host").is_ok();
        let port_given = |key: &str| fig.find_value(&format!("{key}.port")).is_ok();
        let (mqtt_port_given, folotoy_port_given) = (port_given("mqtt"), port_given("folotoy.mqtt"));
        let folotoy_id_given = fig.find_value("folotoy.mqtt.client_id").is_ok();
        let mut config: Config = defaults.merge(fig).extract().map_err(load_error)?;
        config.mqtt_given = mqtt_given;
        // MQTT over TLS is on port 8883 unless a port is given.
        if config.mqtt.tls_enabled() && !mqtt_port_given {
            config.mqtt.port = MQTTS_PORT;
        }
        if let Some(m) = config.folotoy.mqtt.as_mut() {
            if m.tls_enabled() && !folotoy_port_given {
                m.port = MQTTS_PORT;
            }
            // A broker keeps one connection per client id: with the same id
            // the two links would knock each other off, over and over, when
            // both brokers are one.
            if !folotoy_id_given {
                // Within the 64 characters allowed, whatever mqtt.client_id is.
                let base: String = config.mqtt.client_id.chars().take(56).collect();
                m.client_id = format!("{base}-folotoy");
            } else if m.client_id == config.mqtt.client_id && (m.host == config.mqtt.host && m.port == config.mqtt.port)
            {
                return Err(invalid(
                    "folotoy.mqtt.client_id",
                    "must differ from mqtt.client_id when both name the same broker: it keeps one connection per \
                     client id",
                ));
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.mqtt.validate("mqtt")?;
        if let Some(m) = &self.folotoy.mqtt {
            m.validate("folotoy.mqtt")?;
        }
        let f = &self.folotoy;
        if f.max_toys == 0 {
            return Err(invalid("folotoy.max_toys", "must be at least 1"));
        }
        if f.toys.len() > f.max_toys {
            return Err(invalid(
                "folotoy.toys",
                format!("lists {} toys but folotoy.max_toys is {}", f.toys.len(), f.max_toys),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, toy) in f.toys.iter().enumerate() {
            let sn = Sn::parse(&toy.sn).map_err(|e| invalid(format!("folotoy.toys[{i}].sn"), e.to_string()))?;
            if !seen.insert(sn.ha_id()) {
                return Err(invalid(format!("folotoy.toys[{i}].sn"), format!("{} is listed twice", toy.sn)));
            }
        }
        if !(f.command_timeout_s > 0.0 && f.command_timeout_s <= 3600.0) {
            return Err(invalid("folotoy.command_timeout_s", "must be more than 0 and at most 3600 seconds"));
        }
        // Names given are checked against each other and against the default
        // names of the roles left unnamed ("Role 2"), which the select shows too.
        let catalog = Catalog::load(&self.language)?;
        let mut names: std::collections::HashSet<&str> =
            (1..=7).filter(|n| !f.roles.contains_key(&n.to_string())).map(|n| catalog.roles[n - 1].as_str()).collect();
        for (key, name) in &f.roles {
            let at = || format!("folotoy.roles.{key}");
            if !matches!(key.as_str(), "1" | "2" | "3" | "4" | "5" | "6" | "7") {
                return Err(invalid(at(), "roles are numbered 1 to 7"));
            }
            // The Speaking role select shows these as its options: Home
            // Assistant ignores an empty or blank state, takes "None" (any
            // case) as unknown, trims what it sends back, and one of two
            // equal names could never be chosen.
            if name.trim().is_empty() || name.trim() != name || name.chars().count() > 255 {
                return Err(invalid(at(), "a role name must be 1 to 255 characters, without spaces around it"));
            }
            if name.eq_ignore_ascii_case("none") {
                return Err(invalid(at(), "\"None\" means unknown to Home Assistant; pick another name"));
            }
            if !names.insert(name.as_str()) {
                return Err(invalid(at(), format!("{name:?} names another role too")));
            }
        }
        let ha = &self.homeassistant;
        topic_prefix("homeassistant.discovery_prefix", &ha.discovery_prefix)?;
        topic_prefix("homeassistant.base_topic", &ha.base_topic)?;
        topic_prefix("homeassistant.status_topic", &ha.status_topic)?;
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log_level.as_str()) {
            return Err(invalid("log_level", "must be one of error, warn, info, debug, trace"));
        }
        Ok(())
    }

    pub fn topics(&self) -> Topics {
        Topics {
            base: self.homeassistant.base_topic.clone(),
            discovery_prefix: self.homeassistant.discovery_prefix.clone(),
            status: self.homeassistant.status_topic.clone(),
        }
    }

    /// The core's view of the configuration. Call after [`Config::validate`].
    pub fn core(&self) -> Result<CoreConfig, ConfigError> {
        let catalog = Catalog::load(&self.language)?;
        let roles = (1..=7)
            .map(|n| self.folotoy.roles.get(&n.to_string()).cloned().unwrap_or_else(|| catalog.roles[n - 1].clone()))
            .collect();
        let toys = self
            .folotoy
            .toys
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let sn = Sn::parse(&t.sn).map_err(|e| invalid(format!("folotoy.toys[{i}].sn"), e.to_string()))?;
                Ok((sn, t.name.clone()))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(CoreConfig {
            topics: self.topics(),
            catalog,
            roles,
            toys,
            allow_unknown_toys: self.folotoy.allow_unknown_toys,
            max_toys: self.folotoy.max_toys,
            command_timeout: Duration::from_secs_f64(self.folotoy.command_timeout_s),
            media_player: self.homeassistant.media_player,
        })
    }

    /// FoloToy's broker: its own, or Home Assistant's.
    pub fn folotoy_mqtt(&self) -> &MqttConfig {
        self.folotoy.mqtt.as_ref().unwrap_or(&self.mqtt)
    }
}

impl MqttConfig {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(invalid(format!("{key}.host"), "is empty"));
        }
        if self.port == 0 {
            return Err(invalid(format!("{key}.port"), "must be from 1 to 65535"));
        }
        if self.client_id.is_empty() || self.client_id.len() > 64 {
            return Err(invalid(format!("{key}.client_id"), "must have 1 to 64 characters"));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(invalid(format!("{key}.username"), "is needed when a password is set"));
        }
        if self.tls == Some(false) {
            if let Some(other) = self.tls_keys_set().first() {
                return Err(invalid(
                    format!("{key}.tls"),
                    format!("is false but {key}.{other} is set; remove {other} or set tls: true"),
                ));
            }
        }
        match (&self.client_cert_file, &self.client_key_file) {
            (Some(_), None) => {
                return Err(invalid(format!("{key}.client_key_file"), "is needed when client_cert_file is set"))
            }
            (None, Some(_)) => {
                return Err(invalid(format!("{key}.client_cert_file"), "is needed when client_key_file is set"))
            }
            _ => {}
        }
        if self.tls_insecure && self.ca_file.is_some() {
            return Err(invalid(
                format!("{key}.tls_insecure"),
                "skips checking the broker's certificate, so ca_file would never be used; set only one of them",
            ));
        }
        // Reads every file now, so that a wrong one stops the bridge here.
        crate::tls::client_config(self, key)?;
        Ok(())
    }

    /// Whether this broker is spoken to over TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls.unwrap_or_else(|| !self.tls_keys_set().is_empty())
    }

    /// The TLS keys other than `tls` that are set.
    fn tls_keys_set(&self) -> Vec<&'static str> {
        [
            ("ca_file", self.ca_file.is_some()),
            ("client_cert_file", self.client_cert_file.is_some()),
            ("client_key_file", self.client_key_file.is_some()),
            ("tls_insecure", self.tls_insecure),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }
}

/// A topic prefix the bridge publishes under: no wildcards, no empty level
/// at either end (which would make a different topic tree than intended).
fn topic_prefix(key: &str, t: &str) -> Result<(), ConfigError> {
    if t.is_empty() || t.starts_with('/') || t.ends_with('/') || t.contains("//") {
        return Err(invalid(key, format!("{t:?} must be a topic like \"homeassistant\", with no empty level")));
    }
    if t.contains(['+', '#', '\0']) {
        return Err(invalid(key, format!("{t:?} must not contain + # or NUL")));
    }
    Ok(())
}

/// A YAML or JSON scalar, for keys that hold text: a numeric password or
/// client id typed without quotes is still text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    S(String),
    I(i64),
    U(u64),
    F(f64),
    B(bool),
}

impl Scalar {
    fn into_text(self) -> String {
        match self {
            Scalar::S(s) => s,
            Scalar::I(i) => i.to_string(),
            Scalar::U(u) => u.to_string(),
            Scalar::F(f) => f.to_string(),
            Scalar::B(b) => b.to_string(),
        }
    }
}

/// Strings from the environment are parsed by figment as numbers or booleans
/// when they look like one (`FOLOTOY_HA_MQTT__PASSWORD=1234`); take them back.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Scalar::deserialize(d)?.into_text())
}

/// A serial number read as a number has already lost what it was (`0x12ab`
/// became 4779, `12e3` 12000), so it must come quoted.
fn sn_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Scalar::deserialize(d)? {
        Scalar::S(s) => Ok(s),
        other => Err(serde::de::Error::custom(format!(
            "was read as the number {}: put the serial number in quotes (YAML reads 0x… and …e… as \
             numbers)",
            other.into_text()
        ))),
    }
}

fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "text")] String);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
