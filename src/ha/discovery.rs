//! MQTT discovery configs, built from the entity table.
//!
//! One config topic per entity (not device-based discovery): it works on
//! every Home Assistant version, and one entity Home Assistant cannot read
//! does not take the others down with it.

use serde_json::{json, Map, Value as Json};

use super::entities::{Category, Entity, Kind, NumberMode, PlayerPart, EVENT_TYPES, MAX_TEXT, TOY, TRIGGERS};
use super::topics::{toy_node, Topics};
use crate::catalog::Catalog;
use crate::folotoy::settings::Domain;
use crate::folotoy::Sn;

pub const SUPPORT_URL: &str = "https://github.com/folotoy-ha-bridge/folotoy-ha-bridge";

/// A retained discovery config to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub topic: String,
    pub payload: String,
}

/// What every config needs besides the entity itself.
pub struct Discovery<'a> {
    pub topics: &'a Topics,
    pub catalog: &'a Catalog,
    pub roles: &'a [String],
    /// Whether to publish media players for the `folotoy` integration.
    pub media_player: bool,
}

impl Discovery<'_> {
    /// The bridge's own device: whether it is connected to each broker.
    pub fn bridge(&self) -> Vec<Config> {
        let id = self.topics.bridge_id();
        let device = json!({
            "identifiers": [id],
            "name": self.catalog.bridge_device,
            "manufacturer": "folotoy-ha-bridge",
            "model": "FoloToy to Home Assistant bridge",
            "sw_version": env!("CARGO_PKG_VERSION"),
        });
        let mut out = Vec::new();
        for (key, state_topic, availability) in [
            // The last will turns this off when the bridge dies, so it must
            // not depend on the bridge's own availability.
            ("connection", self.topics.bridge_state(), None),
            ("folotoy_connection", self.topics.folotoy_link(), Some(self.topics.bridge_state())),
        ] {
            let mut c = base(&id, key, "binary_sensor", self.catalog.entity(key), &device);
            c.insert("state_topic".into(), state_topic.into());
            c.insert("payload_on".into(), "online".into());
            c.insert("payload_off".into(), "offline".into());
            c.insert("device_class".into(), "connectivity".into());
            c.insert("entity_category".into(), "diagnostic".into());
            if let Some(topic) = availability {
                c.insert("availability".into(), json!([{ "topic": topic }]));
            }
            out.push(Config {
                topic: self.topics.discovery("binary_sensor", &id, key),
                payload: Json::Object(c).to_string(),
            });
        }
        out.extend(self.server());
        out
    }

    /// The FoloToy server: reloading its roles.json, and how that went.
    fn server(&self) -> Vec<Config> {
        let id = self.topics.server_id();
        let device = json!({
            "identifiers": [id],
            "name": self.catalog.server_device,
            "manufacturer": "FoloToy",
            "model": "FoloToy server",
            "via_device": self.topics.bridge_id(),
        });
        let availability = json!([{ "topic": self.topics.bridge_state() }, { "topic": self.topics.folotoy_link() }]);
        let mut button = base(&id, "reload_roles", "button", self.catalog.entity("reload_roles"), &device);
        button.insert("command_topic".into(), self.topics.server_command("reload_roles").into());
        button.insert("payload_press".into(), "PRESS".into());
        button.insert("retain".into(), false.into());
        button.insert("entity_category".into(), "config".into());
        button.insert("icon".into(), "mdi:account-sync".into());
        let mut sensor = base(&id, "roles_reload", "sensor", self.catalog.entity("roles_reload"), &device);
        sensor.insert("state_topic".into(), self.topics.server_state("roles_reload").into());
        sensor.insert("value_template".into(), "{{ value_json.summary }}".into());
        sensor.insert("json_attributes_topic".into(), self.topics.server_state("roles_reload").into());
        sensor.insert("entity_category".into(), "diagnostic".into());
        sensor.insert("icon".into(), "mdi:account-check-outline".into());
        [("button", "reload_roles", button), ("sensor", "roles_reload", sensor)]
            .into_iter()
            .map(|(component, key, mut c)| {
                c.insert("availability".into(), availability.clone());
                c.insert("availability_mode".into(), "all".into());
                Config { topic: self.topics.discovery(component, &id, key), payload: Json::Object(c).to_string() }
            })
            .collect()
    }

    /// Every entity of one toy. `name` is the device name the user chose.
    pub fn toy(&self, sn: &Sn, name: Option<&str>) -> Vec<Config> {
        let node = toy_node(sn);
        let device = json!({
            "identifiers": [node],
            "name": name.map_or_else(|| self.catalog.toy_device(sn.as_str()), str::to_owned),
            "manufacturer": "FoloToy",
            "model": self.catalog.toy_model,
            "serial_number": sn.as_str(),
            "via_device": self.topics.bridge_id(),
        });
        let entities = TOY.iter().filter(|e| !matches!(e.kind, Kind::Player(_))).map(|e| Config {
            topic: self.topics.discovery(e.component(), &node, e.key.as_str()),
            payload: Json::Object(self.entity(e, sn, &node, &device)).to_string(),
        });
        // Device triggers make "when the child says bath" a plain automation;
        // they read the Conversation entity's events.
        let triggers = TRIGGERS.iter().map(|(kind, subtype, event_type)| Config {
            topic: self.topics.discovery("device_automation", &node, &format!("{subtype}_{kind}")),
            payload: json!({
                "automation_type": "trigger",
                "topic": self.topics.state(sn, "conversation"),
                "type": kind,
                "subtype": subtype,
                "value_template": "{{ value_json.event_type }}",
                "payload": event_type,
                // As the events are published (see `Publish::at_most_once`).
                "qos": 0,
                "device": device,
                "origin": origin(),
            })
            .to_string(),
        });
        let player = self.media_player.then(|| self.media_player(sn, &node, &device));
        entities.chain(triggers).chain(player).collect()
    }

    /// The toy's media player, for the project's own Home Assistant
    /// integration (`custom_components/folotoy`): Home Assistant's MQTT
    /// integration has no media player. It sits under the component
    /// `folotoy`, which the MQTT integration never subscribes to, and names
    /// every topic it needs, so the integration follows the base topic.
    fn media_player(&self, sn: &Sn, node: &str, device: &Json) -> Config {
        let topic = |part: PlayerPart| {
            let e = TOY.iter().find(|e| e.kind == Kind::Player(part)).expect("a row per part");
            (self.topics.state(sn, e.key.as_str()), self.topics.command(sn, e.key.as_str()))
        };
        let payload = PlayerConfig {
            name: device["name"].as_str().unwrap_or_default(),
            unique_id: format!("{node}_media_player"),
            default_entity_id: format!("media_player.{node}"),
            device,
            availability: [self.topics.bridge_state(), self.topics.folotoy_link()],
            state_topic: topic(PlayerPart::State).0,
            title_topic: topic(PlayerPart::Title).0,
            volume_topic: topic(PlayerPart::Volume).0,
            volume_command_topic: topic(PlayerPart::Volume).1,
            play_media_command_topic: topic(PlayerPart::Media).1,
            origin: origin(),
        };
        Config {
            topic: self.topics.discovery(PLAYER_COMPONENT, node, "media_player"),
            payload: serde_json::to_string(&payload).expect("serializable"),
        }
    }

    fn entity(&self, e: &Entity, sn: &Sn, node: &str, device: &Json) -> Map<String, Json> {
        let key = e.key.as_str();
        let mut c = base(node, key, e.component(), self.catalog.entity(key), device);
        c.insert("icon".into(), e.icon.into());
        if e.has_state() {
            c.insert("state_topic".into(), self.topics.state(sn, key).into());
        }
        if e.has_command() {
            c.insert("command_topic".into(), self.topics.command(sn, key).into());
            c.insert("retain".into(), false.into());
        }
        // Entities are usable only while the bridge is up and reaches FoloToy.
        c.insert(
            "availability".into(),
            json!([{ "topic": self.topics.bridge_state() }, { "topic": self.topics.folotoy_link() }]),
        );
        c.insert("availability_mode".into(), "all".into());
        if let Some(class) = e.device_class {
            c.insert("device_class".into(), class.into());
        }
        if let Some(cat) = e.category {
            let cat = match cat {
                Category::Config => "config",
                Category::Diagnostic => "diagnostic",
            };
            c.insert("entity_category".into(), cat.into());
        }
        match e.kind {
            Kind::Number { setting, step, mode, unit } => {
                let (min, max) = match setting.domain() {
                    Domain::Int { min, max } => (min as f64, max as f64),
                    // 0 means never; the range check refuses 1..29.
                    Domain::OffOrAtLeast { max, .. } => (0.0, max as f64),
                    Domain::Float { min, max } => (min, max),
                    Domain::Codes(c) => (c[0] as f64, c[c.len() - 1] as f64),
                };
                c.insert("min".into(), min.into());
                c.insert("max".into(), max.into());
                c.insert("step".into(), step.into());
                c.insert("mode".into(), if mode == NumberMode::Slider { "slider" } else { "box" }.into());
                if let Some(unit) = unit {
                    c.insert("unit_of_measurement".into(), unit.into());
                }
            }
            Kind::AnnouncementVolume => {
                c.insert("min".into(), 0.into());
                c.insert("max".into(), 100.into());
                c.insert("step".into(), 1.into());
                c.insert("mode".into(), "slider".into());
                c.insert("unit_of_measurement".into(), "%".into());
            }
            Kind::Select { options, .. } => {
                let labels: Vec<&str> = options.iter().map(|(k, _)| self.catalog.option(key, k)).collect();
                c.insert("options".into(), labels.into());
            }
            Kind::SpeakingRole => {
                c.insert("options".into(), self.roles.into());
            }
            Kind::Switch { .. } => {}
            Kind::Say => {
                c.insert("max".into(), MAX_TEXT.into());
            }
            Kind::PlayAudio => {
                c.insert("max".into(), MAX_TEXT.into());
                c.insert("pattern".into(), "https?://.+".into());
            }
            // These publish JSON: `summary` is the state (under Home
            // Assistant's 255-character limit), the rest are attributes.
            Kind::LastCommand | Kind::Heard | Kind::Said => {
                c.insert("value_template".into(), "{{ value_json.summary }}".into());
                c.insert("json_attributes_topic".into(), self.topics.state(sn, key).into());
            }
            Kind::Conversation => {
                c.insert("event_types".into(), EVENT_TYPES.into());
                c.insert("qos".into(), 0.into());
            }
            Kind::LastActivity | Kind::Announce | Kind::Player(_) => {}
        }
        c
    }
}

/// The discovery component the media player configs sit under.
pub const PLAYER_COMPONENT: &str = "folotoy";

/// A media player's config, as `custom_components/folotoy` reads it.
#[derive(serde::Serialize)]
struct PlayerConfig<'a> {
    name: &'a str,
    unique_id: String,
    default_entity_id: String,
    device: &'a Json,
    /// Topics that must all say `online`: the bridge's and its FoloToy link's.
    availability: [String; 2],
    /// `playing` or `idle`.
    state_topic: String,
    title_topic: String,
    /// 0..1.
    volume_topic: String,
    volume_command_topic: String,
    /// `{"url", "text", "volume", "announce"}` (see `ha::commands`).
    play_media_command_topic: String,
    origin: Json,
}

/// Who published a config: Home Assistant names it in its log when a config
/// is wrong, so users know where to report it.
fn origin() -> Json {
    json!({ "name": "folotoy-ha-bridge", "sw_version": env!("CARGO_PKG_VERSION"), "support_url": SUPPORT_URL })
}

/// The keys every config shares. `unique_id` comes from the node and key
/// only, so it never changes when the user renames a toy.
fn base(node: &str, key: &str, component: &str, name: &str, device: &Json) -> Map<String, Json> {
    let id = format!("{node}_{key}");
    let mut c = Map::new();
    c.insert("name".into(), name.into());
    c.insert("unique_id".into(), id.clone().into());
    c.insert("default_entity_id".into(), format!("{component}.{id}").into());
    c.insert("device".into(), device.clone());
    c.insert("origin".into(), origin());
    c.insert("qos".into(), 1.into());
    c
}
