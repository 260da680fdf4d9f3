//! Toys coming and going: admitted when they talk, refused, deleted in Home
//! Assistant (its emptied configs).

use super::*;

/// The toys the bridge knows, and those it keeps out.
#[derive(Debug)]
pub(super) struct Toys {
    known: BTreeMap<Sn, Toy>,
    /// Toys refused, each with why (warned about once).
    refused: BTreeMap<Sn, String>,
    /// Toys deleted in Home Assistant (see `on_deleted_in_ha`).
    deleted: BTreeSet<Sn>,
}

#[derive(Debug)]
pub(super) struct Toy {
    /// The name the user configured; discovered toys have none.
    pub(super) name: Option<String>,
    pub(super) state: ToyState,
}

impl Toys {
    pub(super) fn new(known: BTreeMap<Sn, Toy>, deleted: BTreeSet<Sn>) -> Toys {
        Toys { known, refused: BTreeMap::new(), deleted }
    }

    pub(super) fn has(&self, sn: &Sn) -> bool {
        self.known.contains_key(sn)
    }

    /// A known toy's state; the caller checked that it is known.
    pub(super) fn state(&self, sn: &Sn) -> &ToyState {
        &self.known[sn].state
    }

    pub(super) fn state_mut(&mut self, sn: &Sn) -> Option<&mut ToyState> {
        self.known.get_mut(sn).map(|t| &mut t.state)
    }

    /// The name the user gave a known toy, if any.
    pub(super) fn name(&self, sn: &Sn) -> Option<&str> {
        self.known[sn].name.as_deref()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&Sn, &Toy)> {
        self.known.iter()
    }

    pub(super) fn sns(&self) -> impl Iterator<Item = &Sn> {
        self.known.keys()
    }

    /// The known toy whose device is `node`.
    fn by_node(&self, node: &str) -> Option<Sn> {
        self.known.keys().find(|sn| toy_node(sn) == node).cloned()
    }

    /// Why an unknown toy may not be added, if it may not.
    fn refusal(&self, sn: &Sn, cfg: &CoreConfig) -> Option<String> {
        if !cfg.allow_unknown_toys {
            Some("it is not in folotoy.toys and folotoy.allow_unknown_toys is false".to_owned())
        } else if self.deleted.contains(sn) {
            Some("it was deleted in Home Assistant; list it in folotoy.toys to bring it back".to_owned())
        } else if self.known.len() >= cfg.max_toys {
            Some(format!("folotoy.max_toys ({}) is reached", cfg.max_toys))
        } else {
            self.known
                .keys()
                .find(|k| k.ha_id() == sn.ha_id())
                .map(|other| format!("toy {other} differs from it only in case, and Home Assistant ids are lower case"))
        }
    }

    /// Remembers a refusal: true the first time (so it is warned about once),
    /// and never past [`REFUSED_MEMORY`] toys.
    fn refuse(&mut self, sn: &Sn, why: &str) -> bool {
        if self.refused.len() >= REFUSED_MEMORY || self.refused.contains_key(sn) {
            return false;
        }
        self.refused.insert(sn.clone(), why.to_owned());
        true
    }

    pub(super) fn refused(&self) -> impl Iterator<Item = (&Sn, &String)> {
        self.refused.iter()
    }

    /// A toy heard from for the first time.
    fn add(&mut self, sn: &Sn) {
        self.known.insert(sn.clone(), Toy { name: None, state: ToyState::default() });
    }

    /// Forgets a toy and keeps it out until it is listed.
    fn delete(&mut self, sn: &Sn) {
        self.known.remove(sn);
        self.deleted.insert(sn.clone());
    }

    pub(super) fn deleted(&self) -> &BTreeSet<Sn> {
        &self.deleted
    }
}

impl Core {
    /// A watched discovery config came back empty: the bridge's own clearing
    /// (its echo), or the user deleting the toy's device in Home Assistant.
    pub(super) fn on_config_emptied(&mut self, topic: &str, node: &str, out: &mut Output) {
        if self.republishing.emptied_by_home_assistant(topic) {
            self.on_deleted_in_ha(topic, node, out);
        }
    }

    /// The user deleted a toy's device in Home Assistant, which emptied its
    /// configs. A toy that appeared by itself is forgotten and kept out, or
    /// it would come back with the next republish or sentence; a listed toy
    /// stays (the configuration says so), with a warning saying how.
    pub(super) fn on_deleted_in_ha(&mut self, topic: &str, node: &str, out: &mut Output) {
        let Some(sn) = self.toys.by_node(node) else { return };
        if self.cfg.lists(&sn) {
            out.log(
                Level::Warn,
                topic,
                format!(
                    "toy {sn} was deleted in Home Assistant but is listed in folotoy.toys: it comes back when Home \
                     Assistant or the bridge restarts; take it off the list to keep it away"
                ),
            );
            return;
        }
        out.log(
            Level::Info,
            topic,
            format!("toy {sn} was deleted in Home Assistant: forgotten, and kept out until listed in folotoy.toys"),
        );
        self.toys.delete(&sn);
        self.pending.forget(&sn);
        self.playing.forget(&sn);
        self.announcements.forget(&sn);
        // Home Assistant emptied the device's config, which removed its
        // components: emptying it again would only earn a warning there. The
        // media player's config, and any of an older release, go.
        let gone = self.republishing.forget_node(&self.cfg.topics, node);
        for t in gone.into_iter().filter(|t| t != topic) {
            self.empty_config(t, out);
        }
        out.save = true;
    }

    /// Empties a discovery config of ours. The broker sends a watched one
    /// back to the bridge: that echo is remembered here so it is never taken
    /// for the user deleting the toy (which could by then be back).
    pub(super) fn empty_config(&mut self, topic: String, out: &mut Output) {
        if self.cfg.topics.parse_deletion(&topic).is_some() {
            self.republishing.emptying(&topic);
        }
        out.ha(topic, Vec::new(), true);
    }

    /// Makes sure a toy that spoke is known; false if it may not be.
    pub(super) fn admit(&mut self, sn: &Sn, topic: &str, out: &mut Output) -> bool {
        if self.toys.has(sn) {
            return true;
        }
        if let Some(why) = self.toys.refusal(sn, &self.cfg) {
            if self.toys.refuse(sn, &why) {
                out.log(Level::Warn, topic, format!("toy {sn} ignored: {why}"));
            }
            return false;
        }
        out.log(Level::Info, topic, format!("new toy {sn}: adding it to Home Assistant"));
        self.toys.add(sn);
        out.save = true;
        if self.ha_up {
            self.publish_toy(sn, None, out);
        }
        true
    }
}
