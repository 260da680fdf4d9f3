//! Topic layout on Home Assistant's broker.
//!
//! `<base>/bridge/state` is the bridge's availability (and its last will),
//! `<base>/bridge/folotoy` whether it reaches FoloToy's broker, and each toy
//! entity has `<base>/<sn>/<key>` for state and `<base>/<sn>/<key>/set` for
//! commands. Serial numbers have at least 8 characters, so no sn can collide
//! with `bridge`.

use crate::folotoy::Sn;

/// The topic level that stands where a toy's sn would for the server device.
pub const SERVER: &str = "server";

/// The topic level below a toy's sn where its cloud relay sits.
const CLOUD: &str = "cloud";

/// A topic of a cloud toy's relay (see the README, "What crosses Home
/// Assistant's broker").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudPart {
    /// The integration has the toy (retained `{"name"}`), or no longer (empty).
    Hello,
    /// What the toy heard and said, as a self-hosted toy's `thing/event/post`.
    Event,
    /// The bridge asks the toy to speak.
    Notify,
    /// How a notify went.
    Notified,
}

impl CloudPart {
    pub const fn as_str(self) -> &'static str {
        match self {
            CloudPart::Hello => "hello",
            CloudPart::Event => "event",
            CloudPart::Notify => "notify",
            CloudPart::Notified => "notified",
        }
    }
}

/// The discovery component of device-based configs.
const DEVICE: &str = "device";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub base: String,
    pub discovery_prefix: String,
    pub status: String,
}

impl Topics {
    pub fn bridge_state(&self) -> String {
        format!("{}/bridge/state", self.base)
    }

    pub fn folotoy_link(&self) -> String {
        format!("{}/bridge/folotoy", self.base)
    }

    /// Where Home Assistant asks for a toy's conversation (see `runtime::conversations`).
    pub fn conversation_requests(&self) -> String {
        format!("{}/bridge/conversation/get", self.base)
    }

    /// Where answers go: one more level, the request's id.
    pub fn conversation_responses(&self) -> String {
        format!("{}/bridge/conversation/response", self.base)
    }

    /// Where Home Assistant asks to delete conversations (`folotoy.delete_conversation`);
    /// the answers go where [`Topics::conversation_responses`] says.
    pub fn conversation_deletes(&self) -> String {
        format!("{}/bridge/conversation/delete", self.base)
    }

    pub fn conversation_response(&self, id: &str) -> String {
        format!("{}/{id}", self.conversation_responses())
    }

    /// Where the project's integration asks whether an answer for a toy may be
    /// said (its watch words; see `Core::screen`).
    pub fn screen_requests(&self) -> String {
        format!("{}/bridge/screen/check", self.base)
    }

    /// Where verdicts go: one more level, the request's id.
    pub fn screen_responses(&self) -> String {
        format!("{}/bridge/screen/verdict", self.base)
    }

    pub fn screen_response(&self, id: &str) -> String {
        format!("{}/{id}", self.screen_responses())
    }

    pub fn state(&self, sn: &Sn, key: &str) -> String {
        format!("{}/{sn}/{key}", self.base)
    }

    /// [`Topics::state`] of any toy, `{sn}` standing for its serial number.
    pub fn state_template(&self, key: &str) -> String {
        format!("{}/{{sn}}/{key}", self.base)
    }

    /// Where the integration relays a FoloToy cloud toy: `<base>/<sn>/cloud`,
    /// with [`CloudPart`]s below it (`cloud` is no entity key, so no state
    /// topic collides with it).
    pub fn cloud(&self, sn: &Sn, part: CloudPart) -> String {
        format!("{}/{sn}/{CLOUD}/{}", self.base, part.as_str())
    }

    /// [`Topics::cloud`] of any toy, without the part, `{sn}` standing for its serial number.
    pub fn cloud_template(&self) -> String {
        format!("{}/{{sn}}/{CLOUD}", self.base)
    }

    /// What the bridge subscribes to of every cloud toy: all but its own `notify`.
    pub fn cloud_filters(&self) -> [String; 3] {
        [CloudPart::Hello, CloudPart::Event, CloudPart::Notified]
            .map(|part| format!("{}/+/{CLOUD}/{}", self.base, part.as_str()))
    }

    /// The raw sn and the part of a cloud topic the bridge subscribes to.
    pub fn parse_cloud<'a>(&self, topic: &'a str) -> Option<(&'a str, CloudPart)> {
        let rest = topic.strip_prefix(self.base.as_str())?.strip_prefix('/')?;
        let mut parts = rest.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(sn), Some(CLOUD), Some(part), None) => {
                let part = [CloudPart::Hello, CloudPart::Event, CloudPart::Notified]
                    .into_iter()
                    .find(|p| p.as_str() == part)?;
                Some((sn, part))
            }
            _ => None,
        }
    }

    pub fn command(&self, sn: &Sn, key: &str) -> String {
        format!("{}/{sn}/{key}/set", self.base)
    }

    pub fn command_filter(&self) -> String {
        format!("{}/+/+/set", self.base)
    }

    /// `<prefix>/<component>/<node>/<key>/config`; node and key are already
    /// limited to `[a-z0-9_]`, which discovery requires. Besides the media
    /// player's, no config sits here any more: these name the components of
    /// a device config as the bridge remembers them, the topics the configs
    /// had before device-based discovery (so a saved state tells which toys
    /// still have their entities on the old topics).
    pub fn discovery(&self, component: &str, node: &str, key: &str) -> String {
        format!("{}/{component}/{node}/{key}/config", self.discovery_prefix)
    }

    /// `<prefix>/device/<node>/config`: one device and all its components.
    pub fn device_discovery(&self, node: &str) -> String {
        format!("{}/{DEVICE}/{node}/config", self.discovery_prefix)
    }

    /// The component, node and key of a [`Topics::discovery`] topic.
    pub fn parse_discovery<'a>(&self, topic: &'a str) -> Option<(&'a str, &'a str, &'a str)> {
        let (prefix, component, node, key) = split_component(topic)?;
        (prefix == self.discovery_prefix && component != DEVICE).then_some((component, node, key))
    }

    /// Every device config, watched for Home Assistant emptying a toy's:
    /// deleting a device there empties its config.
    pub fn deletion_watch(&self) -> String {
        self.device_discovery("+")
    }

    /// The device node (`folotoy_<sn>`) of a watched config topic.
    pub fn parse_deletion<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let rest = topic.strip_prefix(self.discovery_prefix.as_str())?.strip_prefix("/device/")?;
        rest.strip_suffix("/config").filter(|node| node.starts_with("folotoy_") && !node.contains('/'))
    }

    /// The device node a discovery topic of this bridge belongs to.
    pub fn node_of<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let rest = topic.strip_prefix(self.discovery_prefix.as_str())?.strip_prefix('/')?;
        rest.split('/').nth(1)
    }

    /// Splits a command topic into the raw sn and entity key.
    pub fn parse_command<'a>(&self, topic: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = topic.strip_prefix(self.base.as_str())?.strip_prefix('/')?;
        let mut parts = rest.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(sn), Some(key), Some("set"), None) => Some((sn, key)),
            _ => None,
        }
    }

    /// The FoloToy server device's topics: `server` is shorter than any sn,
    /// so it never collides with a toy's.
    pub fn server_state(&self, key: &str) -> String {
        format!("{}/{SERVER}/{key}", self.base)
    }

    pub fn server_command(&self, key: &str) -> String {
        format!("{}/{SERVER}/{key}/set", self.base)
    }

    /// The id of the FoloToy server's device, under the bridge.
    pub fn server_id(&self) -> String {
        format!("{}_server", self.bridge_id())
    }

    /// The id of the bridge's own device: distinct per base topic, so two
    /// bridges on one Home Assistant do not merge.
    pub fn bridge_id(&self) -> String {
        if self.base == "folotoy" {
            return "folotoy_bridge".into();
        }
        let clean: String =
            self.base.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        format!("folotoy_bridge_{clean}")
    }
}

/// The id a toy's device and entities are built from.
pub fn toy_node(sn: &Sn) -> String {
    format!("folotoy_{}", sn.ha_id())
}

/// [`toy_node`] of any toy, `{sn_lower}` standing for [`Sn::ha_id`].
pub fn toy_node_template() -> String {
    "folotoy_{sn_lower}".to_owned()
}

/// `<prefix>/<platform>/<node>/<id>/config` as (prefix, platform, node, id),
/// whatever the prefix: the saved discovery topics are read before any
/// `Topics` exists, and may be of another prefix than today's.
pub fn split_component(topic: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = topic.strip_suffix("/config")?;
    let (rest, id) = rest.rsplit_once('/')?;
    let (rest, node) = rest.rsplit_once('/')?;
    let (prefix, platform) = rest.rsplit_once('/')?;
    Some((prefix, platform, node, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(base: &str) -> Topics {
        Topics { base: base.into(), discovery_prefix: "homeassistant".into(), status: "homeassistant/status".into() }
    }

    #[test]
    fn command_topics_round_trip() {
        let t = topics("home/folotoy");
        let sn = Sn::parse("fcb467dad0c0").unwrap();
        let topic = t.command(&sn, "volume");
        assert_eq!(topic, "home/folotoy/fcb467dad0c0/volume/set");
        assert_eq!(t.parse_command(&topic), Some(("fcb467dad0c0", "volume")));
        assert_eq!(t.parse_command("home/folotoy/fcb467dad0c0/volume"), None);
        assert_eq!(t.parse_command("home/folotoyx/a/b/set"), None);
        assert_eq!(t.parse_command("home/folotoy/a/b/set/x"), None);
    }

    #[test]
    fn cloud_topics_round_trip_but_the_bridges_own_notify() {
        let t = topics("home/folotoy");
        let sn = Sn::parse("fcb467dad0c0").unwrap();
        let hello = t.cloud(&sn, CloudPart::Hello);
        assert_eq!(hello, "home/folotoy/fcb467dad0c0/cloud/hello");
        assert_eq!(t.parse_cloud(&hello), Some(("fcb467dad0c0", CloudPart::Hello)));
        assert_eq!(t.parse_cloud(&t.cloud(&sn, CloudPart::Notified)), Some(("fcb467dad0c0", CloudPart::Notified)));
        assert_eq!(t.parse_cloud(&t.cloud(&sn, CloudPart::Notify)), None);
        assert_eq!(t.parse_cloud("home/folotoy/fcb467dad0c0/cloud/event/x"), None);
        assert_eq!(t.cloud_template(), "home/folotoy/{sn}/cloud");
        assert_eq!(t.cloud_filters()[1], "home/folotoy/+/cloud/event");
    }

    #[test]
    fn bridge_ids_differ_per_base_topic() {
        assert_eq!(topics("folotoy").bridge_id(), "folotoy_bridge");
        assert_eq!(topics("Home/Toys").bridge_id(), "folotoy_bridge_home_toys");
    }
}
