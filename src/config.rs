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
use crate::glance::Zone;
use crate::ha::Topics;
use crate::watch::Sides;

pub const ENV_PREFIX: &str = "FOLOTOY_HA_";
/// Where brokers listen for MQTT over TLS by convention.
pub const MQTTS_PORT: u16 = 8883;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Home Assistant's broker (and FoloToy's too, unless `folotoy.mqtt` is set).
    pub mqtt: MqttConfig,
    pub folotoy: FoloToyConfig,
    pub homeassistant: HaConfig,
    pub web: WebConfig,
    pub history: HistoryConfig,
    /// Phrases that fire a toy's Alert event when the child or the toy says
    /// them (see [`crate::watch`]).
    pub watch_words: Vec<WatchWord>,
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
            web: WebConfig::default(),
            history: HistoryConfig::default(),
            watch_words: Vec::new(),
            state_file: PathBuf::from("folotoy-ha-bridge-state.json"),
            language: "en".into(),
            log_level: "info".into(),
            supervisor_url: "http://supervisor".into(),
            mqtt_given: false,
        }
    }
}

/// The page for parents and for setup (conversations, toys, connections).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Off by default standalone; on in the add-on (its sidebar page).
    pub enabled: bool,
    pub bind: String,
    pub port: u16,
    /// Addresses allowed to ask; empty: any. The add-on allows only the
    /// Supervisor's ingress proxy, as add-ons are expected to. With a `bind`
    /// other than loopback, this or `token` is required.
    pub allow_from: Vec<std::net::IpAddr>,
    /// A secret every request must carry (`Authorization: Bearer`, or the
    /// cookie set by opening the page once with `?token=`). With `allow_from`
    /// too, both must hold.
    pub token: Option<Secret>,
    /// Host names the page is known by besides IP addresses and `localhost`
    /// (`nas.local`): a page that answers any name can be read by a web site
    /// that points a name of its own at it (DNS rebinding). Checked unless
    /// `token` keeps that site out anyway, and never behind ingress.
    pub hosts: Vec<String>,
    /// Served through the Supervisor's ingress (the add-on): the proxy passes
    /// on whatever name Home Assistant is opened by, and only it may ask.
    #[serde(skip)]
    pub ingress: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: false,
            bind: "127.0.0.1".into(),
            port: 8099,
            allow_from: Vec::new(),
            token: None,
            hosts: Vec::new(),
            ingress: false,
        }
    }
}

/// The conversations the page shows, kept on disk beside the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// `false` keeps no conversation at all.
    pub enabled: bool,
    /// Days kept, counting today.
    pub days: u32,
    /// Megabytes kept over all toys; the oldest days go first.
    pub max_mb: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig { enabled: true, days: 7, max_mb: 50 }
    }
}

/// A watch word: `knife` (both sides), or `{phrase: 刀, side: child}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchWord {
    pub phrase: String,
    /// Whose words it is watched in: `child`, `toy` or `both` (the default).
    pub side: Sides,
}

impl WatchWord {
    pub fn new(phrase: impl Into<String>, side: Sides) -> WatchWord {
        WatchWord { phrase: phrase.into(), side }
    }
}

impl<'de> Deserialize<'de> for WatchWord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            #[serde(deserialize_with = "text")]
            phrase: String,
            #[serde(default)]
            side: Sides,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = WatchWord;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a phrase, or {phrase: ..., side: child, toy or both}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WatchWord, E> {
                Ok(WatchWord::new(v, Sides::Both))
            }
            // A number typed without quotes is still a phrase.
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<WatchWord, E> {
                Ok(WatchWord::new(v.to_string(), Sides::Both))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<WatchWord, E> {
                Ok(WatchWord::new(v.to_string(), Sides::Both))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<WatchWord, E> {
                Ok(WatchWord::new(v.to_string(), Sides::Both))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<WatchWord, E> {
                Ok(WatchWord::new(v.to_string(), Sides::Both))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<WatchWord, A::Error> {
                let e = Entry::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(WatchWord::new(e.phrase, e.side))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The Supervisor's ingress proxy: the only one that may ask an add-on's page.
pub const INGRESS_PROXY: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(172, 30, 32, 2));

impl Config {
    /// Where the conversation history is kept: beside the state file.
    pub fn history_dir(&self) -> PathBuf {
        self.state_file.parent().unwrap_or(std::path::Path::new(".")).join("history")
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

impl Config {
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
            watch_words: self.watch_words.clone(),
            // The history lives with the page.
            glance: (self.web.enabled && self.history.enabled).then(Zone::from_env),
        })
    }

    /// FoloToy's broker: its own, or Home Assistant's.
    pub fn folotoy_mqtt(&self) -> &MqttConfig {
        self.folotoy.mqtt.as_ref().unwrap_or(&self.mqtt)
    }
}

impl MqttConfig {
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

mod addon;
mod layers;
mod validate;

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
