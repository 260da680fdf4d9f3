//! Discovery payloads as types: the keys Home Assistant's MQTT platforms (and
//! the project's integration) read, so a misspelt key does not compile. Keys
//! left `None` are not sent.

use serde::Serialize;

/// Where a user of Home Assistant's device page finds the project (the origin's `support_url`).
pub const SUPPORT_URL: &str = "https://github.com/folotoy-ha-bridge/folotoy-ha-bridge";

/// The device an entity belongs to. `identifiers` link the entities of one
/// device, also the integration's media player.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    pub identifiers: [String; 1],
    pub name: String,
    pub manufacturer: &'static str,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sw_version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_device: Option<String>,
}

/// Who published a config: Home Assistant names it in its log when a config
/// is wrong, so users know where to report it; the integration recognises the
/// bridge's configs by it.
#[derive(Debug, Clone, Serialize)]
pub struct Origin {
    pub name: &'static str,
    pub sw_version: &'static str,
    pub support_url: &'static str,
}

impl Origin {
    pub const BRIDGE: Origin =
        Origin { name: "folotoy-ha-bridge", sw_version: env!("CARGO_PKG_VERSION"), support_url: SUPPORT_URL };
}

/// What the bridge publishes on its availability topics (its own state, its
/// link to FoloToy's broker), and what its discovery says they mean.
pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";

/// A topic the entity is available by. The payloads are Home Assistant's
/// defaults, said anyway: Home Assistant 2025.10 now and then set up an
/// entity from a discovery config without them (a `KeyError` for
/// `payload_available` in its MQTT entity's init; the entity was missing
/// until its next start).
#[derive(Debug, Clone, Serialize)]
pub struct Availability {
    pub topic: String,
    pub payload_available: &'static str,
    pub payload_not_available: &'static str,
}

impl Availability {
    pub fn of(topic: String) -> Availability {
        Availability { topic, payload_available: ONLINE, payload_not_available: OFFLINE }
    }
}

/// A number as Home Assistant expects it: a text's `max` is whole, a number
/// entity's limits may not be.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum Num {
    Int(i64),
    Float(f64),
}

/// One device and all its components in one retained message (Home
/// Assistant's device-based discovery): a thousand toys are a thousand
/// messages, not twenty thousand.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceConfig {
    pub device: Device,
    pub origin: Origin,
    /// Shared by every component that names none of its own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub availability: Vec<Availability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_mode: Option<&'static str>,
    /// By component id, which Home Assistant joins to the device's id as the
    /// single-component topic's node and object id did: the same id is the
    /// same entity.
    pub components: std::collections::BTreeMap<String, Component>,
}

/// One component of a [`DeviceConfig`].
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Component {
    Entity(Box<EntityConfig>),
    Trigger(TriggerConfig),
    /// Only its platform: Home Assistant removes the component (leaving it
    /// out would keep it).
    Removed {
        platform: String,
    },
}

impl Component {
    pub fn platform(&self) -> &str {
        match self {
            Component::Entity(e) => e.platform,
            Component::Trigger(t) => t.platform,
            Component::Removed { platform } => platform,
        }
    }
}

/// One entity on one of Home Assistant's MQTT platforms.
#[derive(Debug, Clone, Serialize)]
pub struct EntityConfig {
    pub platform: &'static str,
    pub name: String,
    /// From the node and key only, so it never changes when a toy is renamed.
    pub unique_id: String,
    pub default_entity_id: String,
    pub qos: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub availability: Vec<Availability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_category: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_on: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_off: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_press: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Num>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Num>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_of_measurement: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_template: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_attributes_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<&'static [&'static str]>,
}

impl EntityConfig {
    /// What every entity has; the rest is filled in per kind.
    pub fn new(node: &str, key: &str, platform: &'static str, name: &str) -> EntityConfig {
        let unique_id = format!("{node}_{key}");
        EntityConfig {
            platform,
            name: name.to_owned(),
            default_entity_id: format!("{platform}.{unique_id}"),
            unique_id,
            qos: 1,
            icon: None,
            state_topic: None,
            command_topic: None,
            retain: None,
            availability: Vec::new(),
            availability_mode: None,
            device_class: None,
            entity_category: None,
            payload_on: None,
            payload_off: None,
            payload_press: None,
            min: None,
            max: None,
            step: None,
            mode: None,
            unit_of_measurement: None,
            state_class: None,
            options: None,
            pattern: None,
            value_template: None,
            json_attributes_topic: None,
            event_types: None,
        }
    }
}

/// A device trigger ("child said") read from the Conversation entity's events.
#[derive(Debug, Clone, Serialize)]
pub struct TriggerConfig {
    /// Always `device_automation`.
    pub platform: &'static str,
    pub automation_type: &'static str,
    pub topic: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub subtype: &'static str,
    pub value_template: &'static str,
    pub payload: &'static str,
    pub qos: u8,
}

/// A media player's config, as `custom_components/folotoy` reads it.
#[derive(Debug, Clone, Serialize)]
pub struct PlayerConfig {
    pub name: String,
    pub unique_id: String,
    pub default_entity_id: String,
    pub device: Device,
    /// `cloud` for a FoloToy cloud toy's player, which speaks text only; left
    /// out for a self-hosted toy's (as before cloud toys, so older
    /// integrations read it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Topics that must all say `online`: the bridge's and its FoloToy
    /// link's; a cloud toy's only the bridge's (the integration relays it).
    pub availability: Vec<String>,
    /// `playing` or `idle`.
    pub state_topic: String,
    pub title_topic: String,
    /// 0..1. A self-hosted toy's only, as the two below.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_command_topic: Option<String>,
    /// `{"url", "text", "volume", "announce"}` (see `ha::commands`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub play_media_command_topic: Option<String>,
    /// A cloud toy's only: the text to say, as plain text, which is its
    /// Announce entity's command topic (so Quiet, the Last command and the
    /// relay's notify are the Announce's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announce_command_topic: Option<String>,
    /// `folotoy.get_conversation`'s requests (`{"id", "sn", "from_ms", "to_ms"}`)...
    pub conversation_request_topic: String,
    /// ...and its answers, one level more: the request's id.
    pub conversation_response_topic: String,
    /// The toy's Conversation events (`heard`, `said`): the integration's chat
    /// endpoint finds which toy asks by what it just heard.
    pub conversation_topic: String,
    /// Whether an answer may be said (`{"id", "sn", "text"}`)...
    pub screen_request_topic: String,
    /// ...and the verdict (`{"phrases": [...]}`, empty: say it), one level more: the id.
    pub screen_response_topic: String,
    pub origin: Origin,
}

/// What the integration needs of the bridge whatever its toys and whether they have
/// media players: where to ask for conversations and for verdicts on answers, and
/// where each toy's Conversation events are (so that the chat endpoint finds which toy
/// asks). Under the component `folotoy`, like the players' configs.
#[derive(Debug, Clone, Serialize)]
pub struct BridgeConfig {
    /// The bridge's device.
    pub device: BridgeDevice,
    /// `online` while the bridge runs.
    pub availability: [String; 1],
    pub conversation_request_topic: String,
    pub conversation_response_topic: String,
    /// `folotoy.delete_conversation`'s requests, answered on `conversation_response_topic`.
    pub conversation_delete_topic: String,
    pub screen_request_topic: String,
    pub screen_response_topic: String,
    /// Each toy's Conversation events, `{sn}` standing for its serial number...
    pub conversation_topic: String,
    /// ...and its device's identifier in Home Assistant's MQTT, `{sn_lower}` for the
    /// serial number in lower case.
    pub toy_node: String,
    /// Where the integration relays a FoloToy cloud toy (`hello`, `event`,
    /// `notified`) and the bridge asks it to speak (`notify`), `{sn}` as above.
    pub cloud_topic: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, Serialize)]
pub struct BridgeDevice {
    pub identifiers: [String; 1],
}

/// The JSON text of a payload.
pub fn to_text(payload: &impl Serialize) -> String {
    serde_json::to_string(payload).expect("discovery payloads serialize")
}
