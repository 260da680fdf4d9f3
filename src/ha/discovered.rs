//! What Home Assistant has of the bridge's discovery: which configs it was
//! sent, so those of toys that are gone are cleared and components a device
//! no longer has are removed.
//!
//! The state file lists them as topics, as releases before device-based
//! discovery saved them: every retained config's topic, and each component
//! of a device config as the single-component topic it had before (the
//! same discovery id in Home Assistant). In memory a device's components
//! are one set shared by every device that has the same, not twenty
//! strings per toy.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Every MQTT platform the bridge has published components on, the
/// bridge's and the server's too (see `Core::publish_device`).
pub const PLATFORMS: &[&str] = &[
    "binary_sensor",
    "button",
    "device_automation",
    "event",
    "notify",
    "number",
    "select",
    "sensor",
    "switch",
    "text",
];

/// A device config's components: (platform, component id).
pub type Components = BTreeSet<(Box<str>, Box<str>)>;

#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// Device configs by topic, with their components.
    devices: BTreeMap<String, Arc<Components>>,
    /// Every other config: media players', and single-component configs an
    /// older release published.
    topics: BTreeSet<String>,
    /// The distinct component sets, a handful (toys with and without the day
    /// at a glance, the bridge, the server).
    shared: Vec<Arc<Components>>,
}

/// The same configs; how component sets happen to be shared does not count.
impl PartialEq for Discovered {
    fn eq(&self, other: &Self) -> bool {
        self.topics == other.topics && self.devices == other.devices
    }
}

impl Discovered {
    /// Whether Home Assistant has this config (a device's or another).
    pub fn contains(&self, topic: &str) -> bool {
        self.devices.contains_key(topic) || self.topics.contains(topic)
    }

    /// The components of a device config Home Assistant has.
    pub fn device(&self, topic: &str) -> Option<&Components> {
        self.devices.get(topic).map(|c| &**c)
    }

    /// Records a device config sent; its components share the set of the
    /// device recorded before when they are the same.
    pub fn insert_device(&mut self, topic: String, components: Components) {
        let shared = match self.shared.iter().find(|c| ***c == components) {
            Some(same) => Arc::clone(same),
            None => {
                self.shared.retain(|c| Arc::strong_count(c) > 1);
                self.shared.push(Arc::new(components));
                Arc::clone(self.shared.last().expect("just pushed"))
            }
        };
        self.devices.insert(topic, shared);
    }

    pub fn insert(&mut self, topic: String) {
        self.topics.insert(topic);
    }

    /// Forgets a config: a device's (with its components) or another.
    pub fn remove(&mut self, topic: &str) {
        self.devices.remove(topic);
        self.topics.remove(topic);
    }

    /// Device configs' topics.
    pub fn devices(&self) -> impl Iterator<Item = &str> {
        self.devices.keys().map(String::as_str)
    }

    /// Every other config's topic.
    pub fn others(&self) -> impl Iterator<Item = &str> {
        self.topics.iter().map(String::as_str)
    }

    /// Other configs' topics in a range (see `Core::publish_device`).
    pub fn others_in(&self, from: String, to: String) -> impl Iterator<Item = &str> {
        self.topics.range(from..to).map(String::as_str)
    }

    /// Every topic as the state file lists it.
    pub fn all(&self) -> impl Iterator<Item = String> + '_ {
        let components = self.devices.iter().flat_map(|(topic, components)| {
            let (prefix, node) = split_device(topic).unwrap_or_default();
            let each = components.iter().map(move |(p, id)| format!("{prefix}/{p}/{node}/{id}/config"));
            std::iter::once(topic.clone()).chain(each)
        });
        components.chain(self.topics.iter().cloned())
    }
}

/// `<prefix>/device/<node>/config` as (prefix, node).
fn split_device(topic: &str) -> Option<(&str, &str)> {
    let rest = topic.strip_suffix("/config")?;
    let (rest, node) = rest.rsplit_once('/')?;
    let prefix = rest.strip_suffix("/device")?;
    Some((prefix, node)).filter(|(p, n)| !p.is_empty() && !n.is_empty())
}

impl Serialize for Discovered {
    /// Written one topic at a time: the expanded list is never held whole.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.all())
    }
}

impl<'de> Deserialize<'de> for Discovered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let listed = Vec::<String>::deserialize(d)?;
        let mut out = Discovered::default();
        let mut components: BTreeMap<(String, String), Components> = BTreeMap::new();
        for topic in &listed {
            if let Some((prefix, node)) = split_device(topic) {
                components.insert((prefix.to_owned(), node.to_owned()), Components::new());
            }
        }
        for topic in listed {
            if split_device(&topic).is_some() {
                continue;
            }
            // The media player's config is a config of its own, not a component.
            let component =
                super::topics::split_component(&topic).filter(|(_, platform, _, _)| PLATFORMS.contains(platform));
            let owner = component.and_then(|(prefix, platform, node, id)| {
                let set = components.get_mut(&(prefix.to_owned(), node.to_owned()))?;
                set.insert((platform.into(), id.into()));
                Some(())
            });
            if owner.is_none() {
                out.topics.insert(topic);
            }
        }
        for ((prefix, node), set) in components {
            out.insert_device(format!("{prefix}/device/{node}/config"), set);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_lists_a_device_and_its_components_as_topics_and_reads_them_back() {
        let mut d = Discovered::default();
        let components: Components = [("number".into(), "volume".into()), ("sensor".into(), "heard".into())].into();
        d.insert_device("home/assistant/device/folotoy_a/config".into(), components.clone());
        d.insert_device("home/assistant/device/folotoy_b/config".into(), components);
        d.insert("home/assistant/folotoy/folotoy_a/media_player/config".into());
        let listed: BTreeSet<String> = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert!(listed.contains("home/assistant/number/folotoy_a/volume/config"));
        assert!(listed.contains("home/assistant/sensor/folotoy_b/heard/config"));
        assert_eq!(listed.len(), 7);
        let back: Discovered = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        assert!(Arc::ptr_eq(
            &back.devices["home/assistant/device/folotoy_a/config"],
            &back.devices["home/assistant/device/folotoy_b/config"]
        ));
    }

    #[test]
    fn single_component_topics_of_an_older_release_stay_topics() {
        let old = r#"["homeassistant/number/folotoy_a/volume/config", "homeassistant/folotoy/folotoy_a/media_player/config"]"#;
        let d: Discovered = serde_json::from_str(old).unwrap();
        assert_eq!(d.devices().count(), 0);
        assert_eq!(d.others().count(), 2);
    }
}
