//! Publishing everything again: discovery, availability and every state, on
//! each connect and after Home Assistant's birth, a chunk of toys at a time.

use super::*;

impl Core {
    pub(super) fn publish_link(&self, out: &mut Output) {
        if self.ha_up {
            let link = if self.folotoy_up { "online" } else { "offline" };
            out.ha(self.cfg.topics.folotoy_link(), link, true);
        }
    }

    pub(super) fn discovery(&self) -> Discovery<'_> {
        Discovery {
            topics: &self.cfg.topics,
            catalog: &self.cfg.catalog,
            roles: &self.cfg.roles,
            media_player: self.cfg.media_player,
            glance: self.cfg.glance.is_some(),
        }
    }

    pub(super) fn publish_toy(&mut self, sn: &Sn, out: &mut Output) {
        let name = self.toys[sn].name.as_deref();
        for c in self.discovery().toy(sn, name) {
            Arc::make_mut(&mut self.published).insert(c.topic.clone());
            out.ha(c.topic, c.payload, true);
        }
        for e in TOY {
            self.publish_state(sn, e, out);
        }
    }

    /// Availability, discovery and every state; clears configs of toys that
    /// are gone. Runs on every connect and after Home Assistant's birth.
    ///
    /// Toys come [`CHUNK`] at a time (`Output::more` asks for the next with
    /// [`Input::Continue`]): a thousand toys' configs at once would be tens
    /// of megabytes held at the same moment.
    pub(super) fn publish_all(&mut self, out: &mut Output) {
        // Every state goes out now, the held ones with them.
        self.hold.clear();
        let before = std::mem::take(&mut self.published);
        for c in self.discovery().bridge() {
            Arc::make_mut(&mut self.published).insert(c.topic.clone());
            out.ha(c.topic, c.payload, true);
        }
        self.to_publish = Some((self.toys.keys().cloned().collect(), before));
        self.publish_more(out);
    }

    pub(super) fn publish_more(&mut self, out: &mut Output) {
        let Some((mut sns, before)) = self.to_publish.take() else { return };
        for _ in 0..CHUNK {
            let Some(sn) = sns.pop_front() else { break };
            // A toy removed meanwhile has nothing to publish.
            if self.toys.contains_key(&sn) {
                self.publish_toy(&sn, out);
            }
        }
        if !sns.is_empty() {
            self.to_publish = Some((sns, before));
            out.more = true;
            return;
        }
        for stale in before.difference(&self.published).cloned().collect::<Vec<_>>() {
            out.log(Level::Info, &stale, "clearing the discovery config of an entity that is gone");
            self.empty_config(stale, out);
        }
        if before != self.published {
            out.save = true;
        }
        self.publish_server(out);
        out.ha(self.cfg.topics.bridge_state(), "online", true);
        self.publish_link(out);
    }
}

/// Toys published per part of a republish.
pub const CHUNK: usize = 32;
