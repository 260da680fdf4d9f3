//! Toys coming and going: admitted when they talk, refused, deleted in Home
//! Assistant (its emptied configs), let back in from the page; and what the
//! bridge keeps about each, one part per concern.

use super::*;

/// The toys the bridge knows, and those it keeps out.
#[derive(Debug)]
pub(super) struct Toys {
    known: BTreeMap<Sn, Toy>,
    /// Toys refused, each with why (warned about once).
    refused: BTreeMap<Sn, String>,
    /// Toys deleted in Home Assistant (see [`deleted_in_ha`]), with when (ms
    /// since the Unix epoch; unknown for those an older bridge deleted).
    deleted: BTreeMap<Sn, Option<u64>>,
    /// The names of cloud toys among `deleted` (their relay's hello, which
    /// comes again on every connect): one let back in is a cloud toy again.
    deleted_cloud: BTreeMap<Sn, String>,
}

/// What the bridge keeps about a toy, one part per concern: a part's fields
/// are private to its concern's file, the only one that changes them; the
/// others read it, and Home Assistant's states are rendered from all of
/// them ([`Toy::state_view`]). Its membership is this file's. A toy first
/// heard from (or let back in) is the default: nothing known of it yet.
#[derive(Debug, Default)]
pub(super) struct Toy {
    /// The name the user configured, or a cloud toy's relay gave it;
    /// discovered self-hosted toys have none.
    name: Option<String>,
    /// Where it talks: a cloud toy came from the integration's relay (see
    /// [`hello`]) and has only the entities its channel allows.
    kind: ToyKind,
    /// Whether it was in `folotoy.toys` at start (see [`ToyState::listed`]).
    listed: bool,
    /// When it last published anything, in ms since the Unix epoch.
    last_activity_ms: Option<u64>,
    /// Its confirmed settings and last command (`commands.rs`).
    pub(super) confirmed: commands::Confirmed,
    /// The settings the bridge keeps for it (`own_settings.rs`).
    pub(super) own: own_settings::OwnSettings,
    /// The volume owed to it after an announcement (`announcements.rs`).
    pub(super) owed: announcements::OwedVolume,
    /// What it heard and said last (`talk.rs`).
    pub(super) talk: talk::ToyTalk,
    /// How much it talked today (`glance.rs`).
    pub(super) today: glance::DayTally,
    /// What its media player shows (`player.rs`).
    pub(super) player: player::Player,
    /// Its daily limit and bedtime (`limits.rs`).
    pub(super) limits: limits::ToyLimits,
}

impl Toy {
    /// A toy as the state file has it, each part to its concern (which checks
    /// it against this configuration; `warn` says what it dropped).
    fn from_saved(name: Option<String>, saved: ToyState, cfg: &CoreConfig, warn: &mut dyn FnMut(String)) -> Toy {
        let ToyState {
            settings,
            role,
            say_text,
            play_url,
            last_command,
            heard,
            answer,
            last_activity_ms,
            player_title,
            quiet,
            announcement_volume,
            volume_to_restore,
            listed,
            kind,
            name: cloud_name,
            limits,
        } = saved;
        // The relay names a cloud toy (the integration's title for it).
        let name = if kind == ToyKind::Cloud { cloud_name.or(name) } else { name };
        Toy {
            name,
            kind,
            listed,
            last_activity_ms,
            confirmed: commands::Confirmed::from_saved(settings, say_text, play_url, last_command, warn),
            own: own_settings::OwnSettings::from_saved(role, announcement_volume, quiet, cfg.roles.len()),
            owed: announcements::OwedVolume::from_saved(volume_to_restore),
            talk: talk::ToyTalk::from_saved(heard, answer),
            today: Default::default(),
            player: player::Player::from_saved(player_title),
            limits: limits::ToyLimits::from_saved(limits),
        }
    }

    /// The toy as the state file has it, from every concern's part.
    pub(super) fn saved(&self) -> ToyState {
        let (confirmed, own, talk) = (&self.confirmed, &self.own, &self.talk);
        ToyState {
            settings: confirmed.settings().clone(),
            role: own.role(),
            say_text: confirmed.say_text().map(str::to_owned),
            play_url: confirmed.play_url().map(str::to_owned),
            last_command: confirmed.last_command().cloned(),
            heard: talk.heard().cloned(),
            answer: talk.answer().cloned(),
            last_activity_ms: self.last_activity_ms,
            player_title: self.player.title().map(str::to_owned),
            quiet: own.quiet(),
            announcement_volume: own.announcement_volume(),
            volume_to_restore: self.owed.volume(),
            listed: self.listed,
            kind: self.kind,
            name: self.name.clone().filter(|_| self.kind == ToyKind::Cloud),
            limits: self.limits.saved().clone(),
        }
    }

    /// What its entities show, read from every concern's part.
    pub(super) fn state_view(&self) -> ha::states::StateView<'_> {
        let (confirmed, own, talk) = (&self.confirmed, &self.own, &self.talk);
        ha::states::StateView {
            settings: confirmed.settings(),
            say_text: confirmed.say_text(),
            play_url: confirmed.play_url(),
            last_command: confirmed.last_command(),
            role: own.role(),
            announcement_volume: own.announcement_volume(),
            quiet: own.quiet(),
            heard: talk.heard(),
            answer: talk.answer(),
            today: self.today.tally(),
            last_activity_ms: self.last_activity_ms,
            playing: self.player.playing(),
            player_title: self.player.title(),
            limits: self.limits.view(self.talk.heard().is_some_and(|h| crate::text::east_asian(&h.text))),
        }
    }

    /// The name the user gave it, if any.
    pub(super) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub(super) fn last_activity_ms(&self) -> Option<u64> {
        self.last_activity_ms
    }

    pub(super) fn kind(&self) -> ToyKind {
        self.kind
    }
}

impl Toys {
    /// The toys listed and, when unknown toys are allowed, those saved; the
    /// saved state checked against what this configuration allows.
    pub(super) fn from_saved(
        cfg: &CoreConfig,
        mut saved: BTreeMap<Sn, ToyState>,
        mut deleted: BTreeMap<Sn, Option<u64>>,
        logs: &mut Vec<Log>,
    ) -> Toys {
        let mut log = |level, sn: &Sn, message: String| {
            logs.push(Log { level, topic: cfg.topics.state(sn, "#"), message });
        };
        // Listing a deleted toy brings it back.
        deleted.retain(|sn, _| !cfg.lists(sn));
        let mut kept = BTreeMap::new();
        for (sn, name) in &cfg.toys {
            let state = ToyState { listed: true, ..saved.remove(sn).unwrap_or_default() };
            kept.insert(sn.clone(), (name.clone(), state));
        }
        // A cloud toy is the integration's (its relay's hello): not a toy
        // that showed up on FoloToy's broker, which `allow_unknown_toys` is about.
        if !cfg.allow_unknown_toys {
            saved.retain(|_, state| state.kind == ToyKind::Cloud);
        }
        for (sn, mut state) in saved {
            // Listed once, taken off the list, and never heard from: a
            // mistyped serial number, not a toy that would come back.
            if std::mem::take(&mut state.listed) && state.last_activity_ms.is_none() {
                let why = format!("saved toy {sn} left out: no longer in folotoy.toys and never heard from");
                log(Level::Info, &sn, why);
                continue;
            }
            if kept.len() >= cfg.max_toys {
                log(Level::Warn, &sn, format!("saved toy {sn} left out: folotoy.max_toys ({}) reached", cfg.max_toys));
                continue;
            }
            // Ids in Home Assistant are lower case: a case twin of a toy
            // already here would take over its entities.
            if let Some(twin) = kept.keys().find(|k| k.ha_id() == sn.ha_id()) {
                log(Level::Warn, &sn, format!("saved toy {sn} left out: toy {twin} differs from it only in case"));
                continue;
            }
            kept.insert(sn, (None, state));
        }
        let known = kept
            .into_iter()
            .map(|(sn, (name, state))| {
                let toy = Toy::from_saved(name, state, cfg, &mut |message| log(Level::Warn, &sn, message));
                (sn, toy)
            })
            .collect();
        Toys { known, refused: BTreeMap::new(), deleted, deleted_cloud: BTreeMap::new() }
    }

    pub(super) fn has(&self, sn: &Sn) -> bool {
        self.known.contains_key(sn)
    }

    /// A known toy; the caller checked that it is known.
    pub(super) fn toy(&self, sn: &Sn) -> &Toy {
        &self.known[sn]
    }

    /// A known toy, to change a concern's part of it; the caller checked that it is known.
    pub(super) fn toy_mut(&mut self, sn: &Sn) -> &mut Toy {
        self.known.get_mut(sn).expect("checked by the caller")
    }

    pub(super) fn find_mut(&mut self, sn: &Sn) -> Option<&mut Toy> {
        self.known.get_mut(sn)
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
        if self.deleted.contains_key(sn) {
            Some(
                "it was deleted in Home Assistant; let it back in on the page (Toys), or list it in folotoy.toys"
                    .to_owned(),
            )
        } else {
            self.refusal_but_deleted(sn, cfg)
        }
    }

    /// Why an unknown toy may not be added, its deletion in Home Assistant aside.
    fn refusal_but_deleted(&self, sn: &Sn, cfg: &CoreConfig) -> Option<String> {
        if !cfg.allow_unknown_toys {
            Some("it is not in folotoy.toys and folotoy.allow_unknown_toys is false".to_owned())
        } else {
            self.refusal_of_any(sn, cfg)
        }
    }

    /// Why no toy, listed or not, may be added: too many, or a case twin.
    fn refusal_of_any(&self, sn: &Sn, cfg: &CoreConfig) -> Option<String> {
        if self.known.len() >= cfg.max_toys {
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
    pub(super) fn refuse(&mut self, sn: &Sn, why: &str) -> bool {
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
        self.known.insert(sn.clone(), Toy::default());
    }

    /// Forgets a toy and keeps it out until it is listed or let back in.
    fn delete(&mut self, sn: &Sn, at_ms: u64) {
        if let Some(Toy { kind: ToyKind::Cloud, name: Some(name), .. }) = self.known.remove(sn) {
            self.deleted_cloud.insert(sn.clone(), name);
        }
        self.deleted.insert(sn.clone(), Some(at_ms));
    }

    /// A toy kept out since its deletion, back as when it first talked; refused
    /// again later for another reason, it is warned about again.
    fn let_in(&mut self, sn: &Sn) {
        self.deleted.remove(sn);
        self.refused.remove(sn);
        match self.deleted_cloud.remove(sn) {
            Some(name) => {
                self.known.insert(sn.clone(), Toy { name: Some(name), kind: ToyKind::Cloud, ..Toy::default() });
            }
            None => self.add(sn),
        }
    }

    /// The toys deleted in Home Assistant, with when, if known.
    pub(super) fn deleted(&self) -> &BTreeMap<Sn, Option<u64>> {
        &self.deleted
    }
}

/// Whether a toy that spoke may be here (see [`admit`]).
pub(super) enum Admission {
    Known,
    /// Added now: its discovery is still to be published.
    New,
    Refused,
}

/// Makes sure a toy that spoke is known, if it may be.
pub(super) fn admit(cx: &mut Cx, sn: &Sn, topic: &str) -> Admission {
    if cx.toys.has(sn) {
        return Admission::Known;
    }
    if let Some(why) = cx.toys.refusal(sn, cx.cfg) {
        if cx.toys.refuse(sn, &why) {
            cx.log(Level::Warn, topic, format!("toy {sn} ignored: {why}"));
        }
        return Admission::Refused;
    }
    cx.log(Level::Info, topic, format!("new toy {sn}: adding it to Home Assistant"));
    cx.toys.add(sn);
    cx.out.save = true;
    Admission::New
}

/// What a cloud toy's hello changed (see [`hello`]).
pub(super) enum Hello {
    /// Nothing: it is known as this cloud toy already.
    Same,
    /// It is added, or its name or kind changed: its discovery is to be published.
    Changed,
    Refused,
}

/// The integration has a cloud toy named `name` (its relay's retained
/// hello): added, or renamed, or a self-hosted toy of that sn turned cloud
/// (the family paired it with FoloToy's cloud). Unlike a toy on FoloToy's
/// broker it needs no `allow_unknown_toys`: the integration's owner added
/// it. A toy deleted in Home Assistant stays out until let back in.
pub(super) fn hello(cx: &mut Cx, sn: &Sn, name: String, topic: &str) -> Hello {
    if let Some(toy) = cx.toys.known.get_mut(sn) {
        if toy.kind == ToyKind::Cloud && toy.name.as_deref() == Some(name.as_str()) {
            return Hello::Same;
        }
        let was = std::mem::replace(&mut toy.kind, ToyKind::Cloud);
        toy.name = Some(name);
        let what = if was == ToyKind::Cloud { "renamed" } else { "now a cloud toy: only its channel's entities stay" };
        cx.log(Level::Info, topic, format!("toy {sn} {what}"));
        cx.out.save = true;
        return Hello::Changed;
    }
    let deleted = cx.toys.deleted.contains_key(sn).then(|| {
        cx.toys.deleted_cloud.insert(sn.clone(), name.clone());
        "it was deleted in Home Assistant; let it back in on the page (Toys), or list it in folotoy.toys".to_owned()
    });
    if let Some(why) = deleted.or_else(|| cx.toys.refusal_of_any(sn, cx.cfg)) {
        if cx.toys.refuse(sn, &why) {
            cx.log(Level::Warn, topic, format!("cloud toy {sn} ignored: {why}"));
        }
        return Hello::Refused;
    }
    cx.log(Level::Info, topic, format!("new cloud toy {sn}: adding it to Home Assistant"));
    cx.toys.refused.remove(sn);
    let toy = Toy { name: Some(name), kind: ToyKind::Cloud, ..Toy::default() };
    cx.toys.known.insert(sn.clone(), toy);
    cx.out.save = true;
    Hello::Changed
}

/// What a cloud toy's empty hello (the integration no longer has it) did.
pub(super) enum Goodbye {
    /// Forgotten: what else waits for it is to forget it too. Not kept out:
    /// paired again, it comes back with its next hello.
    Forgotten,
    /// Listed in `folotoy.toys`, it stays, a self-hosted toy again.
    SelfHosted,
    /// Not a cloud toy here: nothing changes.
    NotCloud,
}

/// The integration no longer has the cloud toy `sn` (its hello emptied).
pub(super) fn goodbye(cx: &mut Cx, sn: &Sn, topic: &str) -> Goodbye {
    // Kept out, and let back in later, it is no cloud toy.
    cx.toys.deleted_cloud.remove(sn);
    let listed = cx.cfg.lists(sn);
    let Some(toy) = cx.toys.known.get_mut(sn).filter(|t| t.kind == ToyKind::Cloud) else {
        cx.log(Level::Info, topic, format!("toy {sn} is no cloud toy here: nothing to forget"));
        return Goodbye::NotCloud;
    };
    cx.out.save = true;
    if listed {
        toy.kind = ToyKind::SelfHosted;
        toy.name = cx.cfg.toys.iter().find(|(s, _)| s == sn).and_then(|(_, name)| name.clone());
        cx.log(
            Level::Info,
            topic,
            format!(
                "cloud toy {sn} removed from the integration: listed in folotoy.toys, it stays as a self-hosted toy"
            ),
        );
        return Goodbye::SelfHosted;
    }
    cx.log(Level::Info, topic, format!("cloud toy {sn} removed from the integration: forgotten"));
    cx.toys.known.remove(sn);
    Goodbye::Forgotten
}

/// Records that a toy was heard from, for the Last activity sensor.
/// Shown to the second: a toy reading a story sends a sentence every
/// few hundred milliseconds, and one update a second says as much.
pub(super) fn heard_from(cx: &mut Cx, sn: &Sn, at: SystemTime) {
    let ms = crate::dates::unix_ms(at);
    let before = cx.toys.toy_mut(sn).last_activity_ms.replace(ms);
    if before.map(|b| b / 1000) != Some(ms / 1000) {
        cx.publish(sn, Key::LastActivity);
        cx.out.save_soon = true;
    }
}

/// A parent let a toy deleted in Home Assistant back in (on the page): it is
/// added at once, as when it first talked, so that it is back in Home
/// Assistant without waiting for it to speak. `Err` says why not (it is not
/// kept out, or another rule keeps it out: `allow_unknown_toys`, `max_toys`),
/// and nothing changes.
pub(super) fn let_back_in(cx: &mut Cx, sn: &Sn) -> Result<(), String> {
    if !cx.toys.deleted().contains_key(sn) {
        return Err(format!("toy {sn} is not kept out"));
    }
    // A cloud toy is the integration's: `allow_unknown_toys` is not about it.
    let why = match cx.toys.deleted_cloud.contains_key(sn) {
        true => cx.toys.refusal_of_any(sn, cx.cfg),
        false => cx.toys.refusal_but_deleted(sn, cx.cfg),
    };
    if let Some(why) = why {
        return Err(format!("toy {sn} cannot come back: {why}"));
    }
    cx.log(Level::Info, LET_BACK_IN, format!("toy {sn} let back in on the page: adding it to Home Assistant"));
    cx.toys.let_in(sn);
    cx.out.save = true;
    Ok(())
}

/// Where letting a toy back in is logged.
pub const LET_BACK_IN: &str = "page: toys kept out";

/// The user deleted a toy's device in Home Assistant, which emptied its
/// configs. A toy that appeared by itself is forgotten and kept out, or
/// it would come back with the next republish or sentence: returned, for
/// what else waits for it to be forgotten too. A listed toy stays (the
/// configuration says so), with a warning saying how.
pub(super) fn deleted_in_ha(cx: &mut Cx, topic: &str, node: &str, at: SystemTime) -> Option<Sn> {
    let sn = cx.toys.by_node(node)?;
    if cx.cfg.lists(&sn) {
        cx.log(
            Level::Warn,
            topic,
            format!(
                "toy {sn} was deleted in Home Assistant but is listed in folotoy.toys: it comes back when Home \
                 Assistant or the bridge restarts; take it off the list to keep it away"
            ),
        );
        return None;
    }
    cx.log(
        Level::Info,
        topic,
        format!(
            "toy {sn} was deleted in Home Assistant: forgotten, and kept out until let back in on the page (Toys) or \
             listed in folotoy.toys"
        ),
    );
    cx.toys.delete(&sn, crate::dates::unix_ms(at));
    cx.out.save = true;
    Some(sn)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    const BEAR: &str = "08d1f9c6a310";

    fn open() -> CoreConfig {
        CoreConfig { allow_unknown_toys: true, ..config() }
    }

    #[test]
    fn a_toy_taken_off_the_list_and_never_heard_from_is_left_out_one_heard_from_stays() {
        let typo = ToyState { listed: true, ..ToyState::default() };
        let heard = ToyState { listed: true, last_activity_ms: Some(1), ..ToyState::default() };
        let saved = BTreeMap::from([(sn("aabbccddeeff"), typo), (sn(BEAR), heard)]);
        let mut logs = Vec::new();
        let toys = Toys::from_saved(&open(), saved, BTreeMap::new(), &mut logs);
        assert_eq!(toys.sns().collect::<Vec<_>>(), [&sn(BEAR), &bunny()]);
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert!(logs[0].message.ends_with("left out: no longer in folotoy.toys and never heard from"), "{logs:?}");
        assert!(!toys.toy(&sn(BEAR)).saved().listed, "no longer listed");
        assert!(toys.toy(&bunny()).saved().listed);
        assert_eq!(toys.toy(&bunny()).name(), Some("Bunny"));
    }

    #[test]
    fn saved_toys_past_max_toys_or_differing_only_in_case_are_left_out_with_a_warning() {
        let saved = BTreeMap::from([
            (sn("FCB467DAD0C0"), ToyState::default()),
            (sn(BEAR), ToyState::default()),
            (sn("aabbccddeeff"), ToyState::default()),
            (sn("bbbbbbbbbbbb"), ToyState::default()),
        ]);
        let mut logs = Vec::new();
        let toys = Toys::from_saved(&CoreConfig { max_toys: 3, ..open() }, saved, BTreeMap::new(), &mut logs);
        assert_eq!(toys.sns().collect::<Vec<_>>(), [&sn(BEAR), &sn("aabbccddeeff"), &bunny()]);
        let warned: Vec<&str> = logs.iter().filter(|l| l.level == Level::Warn).map(|l| l.message.as_str()).collect();
        assert_eq!(
            warned,
            [
                "saved toy FCB467DAD0C0 left out: toy fcb467dad0c0 differs from it only in case",
                "saved toy bbbbbbbbbbbb left out: folotoy.max_toys (3) reached",
            ]
        );
    }

    #[test]
    fn a_toy_nobody_configured_is_refused_saying_why_once() {
        let mut b = Bench::new(config());
        for _ in 0..2 {
            assert!(matches!(admit(&mut b.cx(), &sn(BEAR), "t"), Admission::Refused));
        }
        let warned = b.take().messages(Level::Warn).join("\n");
        let why = "it is not in folotoy.toys and folotoy.allow_unknown_toys is false";
        assert_eq!(warned, format!("toy {BEAR} ignored: {why}"));
        assert_eq!(b.toys().refused().collect::<Vec<_>>(), [(&sn(BEAR), &why.to_owned())]);
    }

    #[test]
    fn refusals_are_remembered_up_to_a_limit() {
        let mut toys = Toys::from_saved(&config(), BTreeMap::new(), BTreeMap::new(), &mut Vec::new());
        for i in 0..REFUSED_MEMORY {
            assert!(toys.refuse(&sn(&format!("{i:012x}")), "why"), "the first time");
        }
        assert!(!toys.refuse(&sn("000000000000"), "why"), "the second time");
        assert!(!toys.refuse(&sn("ffffffffffff"), "why"), "past the limit, not kept: warned about no more");
        assert_eq!(toys.refused().count(), REFUSED_MEMORY);
    }

    #[test]
    fn a_toy_admitted_when_unknown_toys_are_allowed_is_new_once() {
        let mut b = Bench::new(open());
        assert!(matches!(admit(&mut b.cx(), &sn(BEAR), "t"), Admission::New));
        assert!(matches!(admit(&mut b.cx(), &sn(BEAR), "t"), Admission::Known));
        let out = b.take();
        assert!(out.save);
        assert_eq!(out.messages(Level::Info), [format!("new toy {BEAR}: adding it to Home Assistant")]);
        assert_eq!(b.toy(&sn(BEAR)).name(), None);
    }

    #[test]
    fn last_activity_is_shown_when_its_second_changes() {
        let mut b = Bench::new(config());
        let at = |ms| std::time::UNIX_EPOCH + Duration::from_millis(ms);
        heard_from(&mut b.cx(), &bunny(), at(1_000));
        let out = b.take();
        assert_eq!(out.state_of(&bunny(), Key::LastActivity).as_deref(), Some("1970-01-01T00:00:01.000+00:00"));
        assert!(out.save_soon);
        heard_from(&mut b.cx(), &bunny(), at(1_900));
        let out = b.take();
        assert!(out.publish.is_empty() && !out.save_soon, "{:?}", out.publish);
        assert_eq!(b.toy(&bunny()).last_activity_ms(), Some(1_900), "kept all the same");
        heard_from(&mut b.cx(), &bunny(), at(2_000));
        assert!(b.take().state_of(&bunny(), Key::LastActivity).is_some());
    }

    #[test]
    fn a_toy_is_let_back_in_only_when_kept_out_and_no_other_rule_keeps_it_out() {
        let deleted = BTreeMap::from([(sn(BEAR), Some(1))]);
        let mut b = Bench::saved(config(), BTreeMap::new(), deleted.clone());
        let refused = let_back_in(&mut b.cx(), &sn(BEAR)).unwrap_err();
        assert!(refused.ends_with("folotoy.allow_unknown_toys is false"), "{refused}");
        assert_eq!(let_back_in(&mut b.cx(), &bunny()).unwrap_err(), format!("toy {BUNNY} is not kept out"));
        assert!(b.toys().deleted().contains_key(&sn(BEAR)), "nothing changed");

        let mut b = Bench::saved(open(), BTreeMap::new(), deleted);
        let_back_in(&mut b.cx(), &sn(BEAR)).unwrap();
        assert!(b.toys().has(&sn(BEAR)) && b.toys().deleted().is_empty());
        assert!(b.take().save);
    }
}
