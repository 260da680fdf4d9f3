//! Publishing everything again: discovery, availability and every state, on
//! each connect and after Home Assistant's birth, a chunk of toys at a time.

use super::*;
use crate::ha::discovered::PLATFORMS;
use crate::ha::discovery::{DeviceDiscovery, ToyDiscovery, PLAYER_COMPONENT};
use crate::ha::payloads::{OFFLINE, ONLINE};

/// What Home Assistant has of the discovery, and a republish under way.
#[derive(Debug)]
pub(super) struct Republishing {
    /// What Home Assistant has of the discovery (saved with the state).
    published: Arc<Discovered>,
    /// Toys still to publish in this round, and what Home Assistant had
    /// before it (what the round does not publish again is cleared at its end).
    round: Option<(std::collections::VecDeque<Sn>, Arc<Discovered>)>,
    /// When to publish everything again (after Home Assistant's birth).
    at: Option<Instant>,
    /// Watched configs the bridge emptied itself, until their echo arrives.
    self_emptied: HashSet<String>,
}

impl Republishing {
    pub(super) fn new(published: Arc<Discovered>) -> Republishing {
        Republishing { published, round: None, at: None, self_emptied: HashSet::new() }
    }

    /// What Home Assistant has, to save (shared, not copied).
    pub(super) fn published(&self) -> Arc<Discovered> {
        Arc::clone(&self.published)
    }

    /// Everything again at `at`, unless a republish is already due earlier.
    pub(super) fn schedule(&mut self, at: Instant) {
        self.at.get_or_insert(at);
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.at
    }

    /// Whether the scheduled republish is due; it is then no longer scheduled.
    pub(super) fn due(&mut self, now: Instant) -> bool {
        let due = self.at.is_some_and(|t| t <= now);
        if due {
            self.at = None;
        }
        due
    }

    /// Home Assistant's broker is gone: the round stops (its connection starts a new one).
    pub(super) fn stop(&mut self) {
        self.round = None;
    }

    /// Whether an emptied watched config was Home Assistant's doing: one
    /// of ours it had (before this round too), not the echo of our own emptying.
    pub(super) fn emptied_by_home_assistant(&mut self, topic: &str) -> bool {
        if self.self_emptied.remove(topic) {
            return false;
        }
        self.published.contains(topic) || self.round.as_ref().is_some_and(|(_, before)| before.contains(topic))
    }

    /// Forgets every config of a device's node, also in the round's
    /// "before"; returns their topics.
    fn forget_node(&mut self, topics: &Topics, node: &str) -> Vec<String> {
        let of_node = |d: &Discovered| -> Vec<String> {
            d.devices().chain(d.others()).filter(|t| topics.node_of(t) == Some(node)).map(str::to_owned).collect()
        };
        let mut gone = of_node(&self.published);
        if let Some((_, before)) = self.round.as_mut() {
            let before_gone = of_node(before);
            for t in &before_gone {
                Arc::make_mut(before).remove(t);
            }
            gone.extend(before_gone);
        }
        gone.sort();
        gone.dedup();
        for t in &gone {
            Arc::make_mut(&mut self.published).remove(t);
        }
        gone
    }

    /// The bridge empties a watched config: its echo is not Home Assistant's doing.
    fn emptying(&mut self, topic: &str) {
        self.self_emptied.insert(topic.to_owned());
    }

    /// Whether FoloToy's broker is connected, for the toys' availability.
    pub(super) fn publish_link(&self, cx: &mut Cx) {
        if cx.connected.ha {
            let link = if cx.connected.folotoy { ONLINE } else { OFFLINE };
            cx.out.ha(cx.cfg.topics.folotoy_link(), link, true);
        }
    }

    /// A toy's discovery and every state it has.
    /// `before`: what Home Assistant had before this republish (`None`: what
    /// it has now).
    pub(super) fn publish_toy(&mut self, cx: &mut Cx, sn: &Sn, before: Option<&Discovered>) {
        if !cx.connected.ha {
            return; // Home Assistant's connection publishes every toy
        }
        let toy = cx.toys.toy(sn);
        let ToyDiscovery { device, player } = cx.discovery().toy(sn, toy.name(), toy.kind());
        let node = device.node.clone();
        self.publish_device(cx, device, before);
        match player {
            Some(c) => {
                Arc::make_mut(&mut self.published).insert(c.topic.clone());
                cx.out.ha(c.topic, c.payload, true);
            }
            // Media players are off: one Home Assistant still has goes now
            // (a republish clears it at its end otherwise).
            None => {
                let had = cx.cfg.topics.discovery(PLAYER_COMPONENT, &node, "media_player");
                if self.published.contains(&had) {
                    Arc::make_mut(&mut self.published).remove(&had);
                    self.empty_config(cx, had);
                }
            }
        }
        for e in TOY {
            cx.publish_entity(sn, e);
        }
    }

    /// Publishes a device's config; what Home Assistant had of the device
    /// decides how. Components it no longer has are removed in the same
    /// message. Entities still on their single-component topics (a state
    /// saved before device-based discovery) move the way Home Assistant
    /// documents, keeping entity ids, the names users gave them and their
    /// history: `{"migrate_discovery": true}` to each old topic, which is then
    /// emptied, all before the device config, which Home Assistant would
    /// otherwise refuse as a conflict with entities it already has.
    fn publish_device(&mut self, cx: &mut Cx, mut device: DeviceDiscovery, before: Option<&Discovered>) {
        let cfg = cx.cfg;
        let topics = &cfg.topics;
        let now = device.components();
        let mut migrated = Vec::new();
        let before = before.unwrap_or(&self.published);
        match before.device(&device.topic) {
            Some(had) => {
                for (platform, id) in had.difference(&now) {
                    device.remove(platform, id);
                }
            }
            None => {
                for topic in single_component_configs(before, topics, &device.node) {
                    let (platform, _, id) = topics.parse_discovery(&topic).expect("a component topic");
                    migrated.push((now.contains(&(platform.into(), id.into())), topic));
                }
            }
        }
        if !migrated.is_empty() {
            cx.log(Level::Info, &device.topic, "moving this device's entities to one device-based discovery config");
        }
        for (kept, topic) in migrated {
            if kept {
                cx.out.ha(topic.clone(), MIGRATE, false);
            }
            self.empty_config(cx, topic);
        }
        Arc::make_mut(&mut self.published).insert_device(device.topic.clone(), now);
        let c = device.into_config();
        cx.out.ha(c.topic, c.payload, true);
    }

    /// Availability, discovery and every state; clears configs of toys that
    /// are gone. Runs on every connect and after Home Assistant's birth.
    ///
    /// Toys come [`CHUNK`] at a time (`Output::more` asks for the next with
    /// [`Input::Continue`]): a thousand toys' configs at once would be tens
    /// of megabytes held at the same moment. The server's state goes out at
    /// the end.
    pub(super) fn publish_all(&mut self, cx: &mut Cx, server: &server::Server) {
        // Every state goes out now, the held ones with them.
        cx.release_held();
        let before = std::mem::take(&mut self.published);
        for device in cx.discovery().bridge() {
            self.publish_device(cx, device, Some(&before));
        }
        let c = cx.discovery().bridge_config();
        Arc::make_mut(&mut self.published).insert(c.topic.clone());
        cx.out.ha(c.topic, c.payload, true);
        self.round = Some((cx.toys.sns().cloned().collect(), before));
        self.publish_more(cx, server);
    }

    /// The next part of the republish under way.
    pub(super) fn publish_more(&mut self, cx: &mut Cx, server: &server::Server) {
        let Some((mut sns, before)) = self.round.take() else { return };
        for _ in 0..CHUNK {
            let Some(sn) = sns.pop_front() else { break };
            // A toy removed meanwhile has nothing to publish.
            if cx.toys.has(&sn) {
                self.publish_toy(cx, &sn, Some(&before));
            }
        }
        if !sns.is_empty() {
            self.round = Some((sns, before));
            cx.out.more = true;
            return;
        }
        let cfg = cx.cfg;
        let topics = &cfg.topics;
        let published = &self.published;
        // Devices gone; other configs gone, but for single-component configs
        // of a device that now has its config (moved when it was published).
        let mut stale: Vec<String> = before.devices().filter(|d| !published.contains(d)).map(str::to_owned).collect();
        stale.extend(
            before
                .others()
                .filter(|t| !published.contains(t))
                .filter(|t| {
                    let moved = topics.node_of(t).is_some_and(|n| published.contains(&topics.device_discovery(n)));
                    !(is_component(topics, t) && moved)
                })
                .map(str::to_owned),
        );
        // A media player's first: Home Assistant's MQTT removes a device only
        // when its last entity goes, which the player must not be.
        stale.sort_by_key(|topic| !is_player(topics, topic));
        for topic in stale {
            cx.log(Level::Info, &topic, "clearing the discovery config of what is gone");
            self.empty_config(cx, topic);
        }
        if *before != *self.published {
            cx.out.save = true;
        }
        server.publish(cx);
        cx.out.ha(cx.cfg.topics.bridge_state(), ONLINE, true);
        self.publish_link(cx);
    }

    /// Empties a discovery config of ours. The broker sends a watched one
    /// back to the bridge: that echo is remembered here so it is never taken
    /// for the user deleting the toy (which could by then be back).
    fn empty_config(&mut self, cx: &mut Cx, topic: String) {
        if cx.cfg.topics.parse_deletion(&topic).is_some() {
            self.emptying(&topic);
        }
        cx.out.ha(topic, Vec::new(), true);
    }

    /// A toy deleted in Home Assistant: its configs are forgotten. Home
    /// Assistant emptied the device's config (`topic`), which removed its
    /// components: emptying it again would only earn a warning there. The
    /// media player's config, and any of an older release, go.
    pub(super) fn forget_toy(&mut self, cx: &mut Cx, topic: &str, node: &str) {
        let gone = self.forget_node(&cx.cfg.topics, node);
        for t in gone.into_iter().filter(|t| t != topic) {
            self.empty_config(cx, t);
        }
    }
}

/// Toys published per part of a republish.
pub const CHUNK: usize = 32;

/// What Home Assistant is sent on an entity's single-component topic to
/// move it to a device config.
const MIGRATE: &str = r#"{"migrate_discovery": true}"#;

/// Whether a discovery topic names a component of a device config (or, in
/// a state saved before those, a single-component config), not the media
/// player's config.
pub(super) fn is_component(topics: &Topics, topic: &str) -> bool {
    topics.parse_discovery(topic).is_some_and(|(component, _, _)| component != PLAYER_COMPONENT)
}

/// Whether a discovery topic is a media player's config.
pub(super) fn is_player(topics: &Topics, topic: &str) -> bool {
    topics.parse_discovery(topic).is_some_and(|(component, _, _)| component == PLAYER_COMPONENT)
}

/// The single-component configs of one device an older release published,
/// found by range per platform (every toy scanning them all would be
/// quadratic in the toys).
fn single_component_configs(discovered: &Discovered, topics: &Topics, node: &str) -> Vec<String> {
    PLATFORMS
        .iter()
        .flat_map(|platform| {
            let from = format!("{}/{platform}/{node}/", topics.discovery_prefix);
            let to = format!("{from}\u{10ffff}");
            discovered.others_in(from, to).map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    const BEAR_DEVICE: &str = "homeassistant/device/folotoy_08d1f9c6a310/config";
    const BEAR_PLAYER: &str = "homeassistant/folotoy/folotoy_08d1f9c6a310/media_player/config";

    /// What Home Assistant has: Bear's device and media player.
    fn bear_published() -> Republishing {
        let mut had = Discovered::default();
        had.insert_device(BEAR_DEVICE.into(), [("sensor".into(), "heard".into())].into());
        had.insert(BEAR_PLAYER.into());
        Republishing::new(Arc::new(had))
    }

    #[test]
    fn the_echo_of_the_bridges_own_emptying_is_not_home_assistant_deleting_a_toy() {
        let mut r = bear_published();
        assert!(r.emptied_by_home_assistant(BEAR_DEVICE));
        r.emptying(BEAR_DEVICE);
        assert!(!r.emptied_by_home_assistant(BEAR_DEVICE), "our own echo");
        assert!(r.emptied_by_home_assistant(BEAR_DEVICE), "the echo comes once");
        assert!(!r.emptied_by_home_assistant("homeassistant/device/folotoy_aabbccddeeff/config"), "never ours");
    }

    #[test]
    fn a_second_birth_does_not_put_off_the_republish_the_first_asked_for() {
        let (mut r, t0) = (bear_published(), Instant::now());
        r.schedule(t0 + REPUBLISH_DELAY);
        r.schedule(t0 + REPUBLISH_DELAY * 2);
        assert_eq!(r.next_deadline(), Some(t0 + REPUBLISH_DELAY));
        assert!(!r.due(t0));
        assert!(r.due(t0 + REPUBLISH_DELAY));
        assert_eq!(r.next_deadline(), None, "done once");
    }

    #[test]
    fn a_republish_clears_the_configs_of_a_toy_gone_its_media_player_first_and_ends_with_online() {
        let mut b = Bench::new(config());
        let mut r = bear_published();
        r.publish_all(&mut b.cx(), &server::Server::new(ServerState::default()));
        let out = b.take();
        assert!(!out.more, "one toy is one part");
        let emptied: Vec<&str> =
            out.publish.iter().filter(|p| p.payload.is_empty()).map(|p| p.topic.as_str()).collect();
        assert_eq!(emptied, [BEAR_PLAYER, BEAR_DEVICE]);
        let last = out.publish.iter().rposition(|p| p.topic == "folotoy/bridge/state").unwrap();
        assert_eq!(out.publish[last].payload, b"online");
        assert_eq!(out.publish.len() - last, 2, "then only FoloToy's link");
        assert!(out.save);
        assert!(r.published().contains("homeassistant/device/folotoy_fcb467dad0c0/config"));
        assert!(!r.published().contains(BEAR_DEVICE));
    }

    #[test]
    fn toys_are_published_a_chunk_at_a_time() {
        let cfg = config();
        let many = (0..CHUNK + 1).map(|i| (sn(&format!("{i:012x}")), None));
        let mut b = Bench::new(CoreConfig { toys: many.collect(), max_toys: CHUNK + 1, ..cfg });
        let mut r = Republishing::new(Arc::default());
        let server = server::Server::new(ServerState::default());
        r.publish_all(&mut b.cx(), &server);
        let devices = |out: &Output| out.publish.iter().filter(|p| p.topic.contains("/device/folotoy_0")).count();
        let out = b.take();
        assert!(out.more);
        assert_eq!(devices(&out), CHUNK);
        r.publish_more(&mut b.cx(), &server);
        let out = b.take();
        assert!(!out.more);
        assert_eq!(devices(&out), 1);
    }
}
