//! MQTT discovery configs, built from the entity table.
//!
//! One device-based config per device (Home Assistant 2024.11+, older than
//! any version we support): each toy is one retained message however many
//! entities it has. The media player is the one exception, read by the
//! project's own integration.

use std::collections::BTreeMap;

use super::commands::MAX_DAILY_LIMIT;
use super::discovered::Components;
use super::entities::{
    Category, Entity, Key, Kind, LimitsPart, NumberMode, PlayerPart, Today, ToyKind, MAX_TEXT, TOY, TRIGGERS,
};
use super::payloads::{
    to_text, Availability, BridgeConfig, BridgeDevice, Component, Device, DeviceConfig, EntityConfig, Num, Origin,
    PlayerConfig, TriggerConfig, OFFLINE, ONLINE,
};
use super::topics::{toy_node, toy_node_template, Topics};
use crate::catalog::Catalog;
use crate::folotoy::settings::Domain;
use crate::folotoy::Sn;

/// A retained discovery config to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigMessage {
    pub topic: String,
    pub payload: String,
}

/// One device's config, before it is sent: the core may still have Home
/// Assistant remove components it had before.
#[derive(Debug, Clone)]
pub struct DeviceDiscovery {
    pub topic: String,
    pub node: String,
    config: DeviceConfig,
}

impl DeviceDiscovery {
    fn new(topics: &Topics, node: &str, device: Device, availability: Vec<Availability>) -> DeviceDiscovery {
        let availability_mode = (!availability.is_empty()).then_some("all");
        DeviceDiscovery {
            topic: topics.device_discovery(node),
            node: node.to_owned(),
            config: DeviceConfig {
                device,
                origin: Origin::BRIDGE,
                availability,
                availability_mode,
                components: BTreeMap::new(),
            },
        }
    }

    fn add(&mut self, id: &str, component: Component) {
        self.config.components.insert(id.to_owned(), component);
    }

    /// Its components, as the bridge remembers what Home Assistant has.
    pub fn components(&self) -> Components {
        self.config.components.iter().map(|(id, c)| (c.platform().into(), id.as_str().into())).collect()
    }

    /// Has Home Assistant remove a component the device had and no longer has.
    pub fn remove(&mut self, platform: &str, id: &str) {
        self.add(id, Component::Removed { platform: platform.to_owned() });
    }

    pub fn into_config(self) -> ConfigMessage {
        ConfigMessage { topic: self.topic, payload: to_text(&self.config) }
    }
}

/// What a toy's discovery is: its device, and its media player for the
/// project's integration when that is on.
pub struct ToyDiscovery {
    pub device: DeviceDiscovery,
    pub player: Option<ConfigMessage>,
}

/// What every config needs besides the entity itself.
pub struct Discovery<'a> {
    pub topics: &'a Topics,
    pub catalog: &'a Catalog,
    pub roles: &'a [String],
    /// Whether to publish media players for the `folotoy` integration.
    pub media_player: bool,
    /// Whether the day-at-a-glance sensors are offered (a history is kept).
    pub glance: bool,
}

impl Discovery<'_> {
    /// The bridge's own device (whether it is connected to each broker) and
    /// the FoloToy server's.
    pub fn bridge(&self) -> [DeviceDiscovery; 2] {
        let id = self.topics.bridge_id();
        let device = Device {
            identifiers: [id.clone()],
            name: self.catalog.bridge_device.clone(),
            manufacturer: "folotoy-ha-bridge",
            model: "FoloToy to Home Assistant bridge".into(),
            serial_number: None,
            sw_version: Some(env!("CARGO_PKG_VERSION")),
            via_device: None,
        };
        let mut bridge = DeviceDiscovery::new(self.topics, &id, device, Vec::new());
        for (key, state_topic, availability) in [
            // The last will turns this off when the bridge dies, so it must
            // not depend on the bridge's own availability.
            ("connection", self.topics.bridge_state(), None),
            ("folotoy_connection", self.topics.folotoy_link(), Some(self.topics.bridge_state())),
        ] {
            let mut c = EntityConfig::new(&id, key, "binary_sensor", self.catalog.entity(key));
            c.state_topic = Some(state_topic);
            c.payload_on = Some(ONLINE);
            c.payload_off = Some(OFFLINE);
            c.device_class = Some("connectivity");
            c.entity_category = Some("diagnostic");
            c.availability = availability.into_iter().map(Availability::of).collect();
            bridge.add(key, Component::Entity(Box::new(c)));
        }
        [bridge, self.server()]
    }

    /// What the project's integration reads of the bridge itself (see [`BridgeConfig`]),
    /// published whether toys have media players or not.
    pub fn bridge_config(&self) -> ConfigMessage {
        let id = self.topics.bridge_id();
        let payload = BridgeConfig {
            device: BridgeDevice { identifiers: [id.clone()] },
            availability: [self.topics.bridge_state()],
            conversation_request_topic: self.topics.conversation_requests(),
            conversation_response_topic: self.topics.conversation_responses(),
            conversation_delete_topic: self.topics.conversation_deletes(),
            screen_request_topic: self.topics.screen_requests(),
            screen_response_topic: self.topics.screen_responses(),
            conversation_topic: self.topics.state_template(Key::Conversation.as_str()),
            toy_node: toy_node_template(),
            cloud_topic: self.topics.cloud_template(),
            origin: Origin::BRIDGE,
        };
        ConfigMessage { topic: self.topics.discovery(PLAYER_COMPONENT, &id, "bridge"), payload: to_text(&payload) }
    }

    /// The FoloToy server: reloading its roles.json, and how that went.
    fn server(&self) -> DeviceDiscovery {
        let id = self.topics.server_id();
        let device = Device {
            identifiers: [id.clone()],
            name: self.catalog.server_device.clone(),
            manufacturer: "FoloToy",
            model: "FoloToy server".into(),
            serial_number: None,
            sw_version: None,
            via_device: Some(self.topics.bridge_id()),
        };
        let mut server = DeviceDiscovery::new(self.topics, &id, device, self.availability(ToyKind::SelfHosted));
        let mut button = EntityConfig::new(&id, "reload_roles", "button", self.catalog.entity("reload_roles"));
        button.command_topic = Some(self.topics.server_command("reload_roles"));
        button.payload_press = Some("PRESS");
        button.retain = Some(false);
        button.entity_category = Some("config");
        button.icon = Some("mdi:account-sync");
        let mut sensor = EntityConfig::new(&id, "roles_reload", "sensor", self.catalog.entity("roles_reload"));
        sensor.state_topic = Some(self.topics.server_state("roles_reload"));
        sensor.value_template = Some("{{ value_json.summary }}");
        sensor.json_attributes_topic = Some(self.topics.server_state("roles_reload"));
        sensor.entity_category = Some("diagnostic");
        sensor.icon = Some("mdi:account-check-outline");
        server.add("reload_roles", Component::Entity(Box::new(button)));
        server.add("roles_reload", Component::Entity(Box::new(sensor)));
        server
    }

    /// The topics that must all say online for a toy of `kind` (or the
    /// server, as a self-hosted toy) to be usable: the bridge's, and for a
    /// self-hosted toy its link to FoloToy's broker; a cloud toy comes
    /// through the integration's relay instead, while the bridge runs.
    fn availability_topics(&self, kind: ToyKind) -> Vec<String> {
        match kind {
            ToyKind::SelfHosted => vec![self.topics.bridge_state(), self.topics.folotoy_link()],
            ToyKind::Cloud => vec![self.topics.bridge_state()],
        }
    }

    fn availability(&self, kind: ToyKind) -> Vec<Availability> {
        self.availability_topics(kind).into_iter().map(Availability::of).collect()
    }

    /// Every entity of one toy that a toy of its `kind` has. `name` is the
    /// device name the user chose.
    pub fn toy(&self, sn: &Sn, name: Option<&str>, kind: ToyKind) -> ToyDiscovery {
        let node = toy_node(sn);
        let device = Device {
            identifiers: [node.clone()],
            name: name.map_or_else(|| self.catalog.toy_device(sn.as_str()), str::to_owned),
            manufacturer: "FoloToy",
            model: self.catalog.toy_model.clone(),
            serial_number: Some(sn.as_str().to_owned()),
            sw_version: None,
            via_device: Some(self.topics.bridge_id()),
        };
        let player = self.media_player.then(|| self.media_player(sn, &node, &device, kind));
        let mut toy = DeviceDiscovery::new(self.topics, &node, device, self.availability(kind));
        for e in TOY.iter().filter(|e| self.offers(e) && kind.has(e.key) && !matches!(e.kind, Kind::Player(_))) {
            toy.add(e.key.as_str(), Component::Entity(Box::new(self.entity(e, sn, &node))));
        }
        // Device triggers make "when the child says bath" a plain automation;
        // they read the Conversation entity's events.
        for (kind, subtype, event_type) in TRIGGERS {
            let trigger = TriggerConfig {
                platform: "device_automation",
                automation_type: "trigger",
                topic: self.topics.state(sn, "conversation"),
                kind,
                subtype,
                value_template: "{{ value_json.event_type }}",
                payload: event_type,
                // As the events are published (see `Publish::at_most_once`).
                qos: 0,
            };
            toy.add(&format!("{subtype}_{kind}"), Component::Trigger(trigger));
        }
        ToyDiscovery { device: toy, player }
    }

    /// The toy's media player, for the project's own Home Assistant
    /// integration (`custom_components/folotoy`): Home Assistant's MQTT
    /// integration has no media player. It sits under the component
    /// `folotoy`, which the MQTT integration never subscribes to, and names
    /// every topic it needs, so the integration follows the base topic.
    ///
    /// A cloud toy's player says it is one (`kind`) and speaks text only: it
    /// sends what it is asked to say to the toy's Announce entity, which the
    /// bridge sends on as the relay's notify; it has no volume and plays no
    /// URL, which the toy's channel cannot carry.
    fn media_player(&self, sn: &Sn, node: &str, device: &Device, kind: ToyKind) -> ConfigMessage {
        let topic = |part: PlayerPart| {
            let e = TOY.iter().find(|e| e.kind == Kind::Player(part)).expect("a row per part");
            (self.topics.state(sn, e.key.as_str()), self.topics.command(sn, e.key.as_str()))
        };
        let self_hosted = kind == ToyKind::SelfHosted;
        let payload = PlayerConfig {
            name: device.name.clone(),
            unique_id: format!("{node}_media_player"),
            default_entity_id: format!("media_player.{node}"),
            device: device.clone(),
            kind: (!self_hosted).then_some("cloud"),
            availability: self.availability_topics(kind),
            state_topic: topic(PlayerPart::State).0,
            title_topic: topic(PlayerPart::Title).0,
            volume_topic: self_hosted.then(|| topic(PlayerPart::Volume).0),
            volume_command_topic: self_hosted.then(|| topic(PlayerPart::Volume).1),
            play_media_command_topic: self_hosted.then(|| topic(PlayerPart::Media).1),
            announce_command_topic: (!self_hosted).then(|| self.topics.command(sn, Key::Announce.as_str())),
            conversation_request_topic: self.topics.conversation_requests(),
            conversation_response_topic: self.topics.conversation_responses(),
            conversation_topic: self.topics.state(sn, Key::Conversation.as_str()),
            screen_request_topic: self.topics.screen_requests(),
            screen_response_topic: self.topics.screen_responses(),
            origin: Origin::BRIDGE,
        };
        ConfigMessage {
            topic: self.topics.discovery(PLAYER_COMPONENT, node, "media_player"),
            payload: to_text(&payload),
        }
    }

    fn entity(&self, e: &Entity, sn: &Sn, node: &str) -> EntityConfig {
        let key = e.key.as_str();
        let mut c = EntityConfig::new(node, key, e.component(), self.catalog.entity(key));
        c.icon = Some(e.icon);
        if e.has_state() {
            c.state_topic = Some(self.topics.state(sn, key));
        }
        if e.has_command() {
            c.command_topic = Some(self.topics.command(sn, key));
            c.retain = Some(false);
        }
        c.device_class = e.device_class;
        c.entity_category = e.category.map(|cat| match cat {
            Category::Config => "config",
            Category::Diagnostic => "diagnostic",
        });
        self.by_kind(&mut c, e, sn);
        c
    }

    /// What an entity's kind adds to its configuration.
    fn by_kind(&self, c: &mut EntityConfig, e: &Entity, sn: &Sn) {
        let key = e.key.as_str();
        match e.kind {
            Kind::Number { setting, step, mode, unit } => {
                let (min, max) = slider(setting.domain());
                c.min = Some(Num::Float(min));
                c.max = Some(Num::Float(max));
                c.step = Some(step);
                c.mode = Some(if mode == NumberMode::Slider { "slider" } else { "box" });
                c.unit_of_measurement = unit;
            }
            Kind::AnnouncementVolume => {
                c.min = Some(Num::Int(0));
                c.max = Some(Num::Int(100));
                c.step = Some(1.0);
                c.mode = Some("slider");
                c.unit_of_measurement = Some("%");
            }
            Kind::Select { options, .. } => {
                c.options = Some(options.iter().map(|(k, _)| self.catalog.option(key, k).to_owned()).collect());
            }
            Kind::SpeakingRole => c.options = Some(self.roles.to_vec()),
            Kind::Switch { .. } | Kind::Quiet => {}
            Kind::Say => {
                c.max = Some(Num::Int(MAX_TEXT as i64));
                c.value_template = Some("{{ value_json.text }}");
            }
            Kind::PlayAudio => {
                c.max = Some(Num::Int(MAX_TEXT as i64));
                c.value_template = Some("{{ value_json.text }}");
                // Empty (nothing played yet) or a URL: Home Assistant checks its state against this too.
                c.pattern = Some("(https?://.+)?");
            }
            // These publish JSON: `summary` is the state (under Home
            // Assistant's 255-character limit), the rest are attributes.
            Kind::LastCommand | Kind::Heard | Kind::Said => {
                c.value_template = Some("{{ value_json.summary }}");
                c.json_attributes_topic = Some(self.topics.state(sn, key));
            }
            Kind::Event(event_types) => {
                c.event_types = Some(event_types);
                // As the events are published (see `Publish::at_most_once`).
                c.qos = 0;
            }
            Kind::Today(today) => {
                // Back to 0 at midnight: Home Assistant's statistics take a drop for a new cycle.
                c.state_class = Some("total_increasing");
                c.unit_of_measurement = match today {
                    Today::TalkTime => Some("min"),
                    Today::Exchanges => None,
                };
            }
            Kind::Limits(part) => limits(c, part),
            Kind::LastActivity | Kind::Announce | Kind::Player(_) => {}
        }
    }

    /// Whether toys have this entity with this configuration.
    pub fn offers(&self, e: &Entity) -> bool {
        match e.kind {
            Kind::Player(_) => self.media_player,
            Kind::Today(_) | Kind::Limits(_) => self.glance,
            _ => true,
        }
    }
}

/// What a part of the daily limit or bedtime adds to its configuration.
fn limits(c: &mut EntityConfig, part: LimitsPart) {
    match part {
        LimitsPart::DailyLimit => {
            c.min = Some(Num::Int(0));
            c.max = Some(Num::Int(MAX_DAILY_LIMIT.into()));
            c.step = Some(1.0);
            c.mode = Some("box");
            c.unit_of_measurement = Some("min");
        }
        LimitsPart::GoodbyeLine | LimitsPart::BedtimeLine => {
            c.max = Some(Num::Int(MAX_TEXT as i64));
            c.value_template = Some("{{ value_json.text }}");
        }
        // A text, not a time entity: Home Assistant 2025.10, the oldest
        // version supported, has no MQTT time entities.
        LimitsPart::From | LimitsPart::Until => {
            c.max = Some(Num::Int(5));
            c.value_template = Some("{{ value_json.text }}");
            c.pattern = Some("([01][0-9]|2[0-3]):[0-5][0-9]");
        }
        LimitsPart::AllowMore => c.payload_press = Some("PRESS"),
        LimitsPart::Bedtime => {}
    }
}

/// The discovery component the media player configs sit under.
pub const PLAYER_COMPONENT: &str = "folotoy";

/// The ends of a number entity's slider for a setting's values.
fn slider(domain: Domain) -> (f64, f64) {
    match domain {
        Domain::Int { min, max } => (min as f64, max as f64),
        // 0 means never; the range check refuses 1..29.
        Domain::OffOrAtLeast { max, .. } => (0.0, max as f64),
        Domain::Float { min, max } => (min, max),
        Domain::Codes(c) => (c[0] as f64, c[c.len() - 1] as f64),
    }
}
