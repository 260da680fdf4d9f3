//! Announcements at their own volume: the volume set, the announcement
//! played, the toy's volume put back afterwards.

use super::commands::{self, Commands, Ended};
use super::*;

/// The volume a toy is owed: the one it had before an announcement played
/// at its own, put back once that is over (saved, so a restart
/// mid-announcement still puts it back). Changed only here.
#[derive(Debug, Default)]
pub(super) struct OwedVolume(Option<Value>);

impl OwedVolume {
    pub(super) fn from_saved(volume: Option<Value>) -> OwedVolume {
        OwedVolume(volume)
    }

    pub(super) fn volume(&self) -> Option<Value> {
        self.0
    }
}

/// Where each toy's announcement at its own volume stands.
#[derive(Debug, Default)]
pub(super) struct Announcements {
    by_toy: BTreeMap<Sn, Announcing>,
}

/// Where an announcement at its own volume stands.
#[derive(Debug)]
enum Announcing {
    /// Its volume is sent (this msgId); the announcement follows the answer.
    Volume { msg_id: u32, then: Waiting },
    /// The announcement is sent (this msgId).
    Media { msg_id: u32 },
    /// The toy is guessed to play it until then; the volume goes back after.
    Until(Instant),
}

/// What an answer to one of its commands means for a toy's announcement.
enum Step {
    /// Its volume is set: play this.
    Play(Waiting),
    /// It was not played: put the volume back now.
    Restore,
    /// Nothing to do (yet).
    Wait,
}

impl Announcements {
    /// Whether the toy has an announcement under way, its volume not yet back.
    pub(super) fn has(&self, sn: &Sn) -> bool {
        self.by_toy.contains_key(sn)
    }

    /// Whether the toy is owed the volume it had before an announcement
    /// that is over (one under way puts it back itself).
    fn owes(&self, sn: &Sn, owed: &OwedVolume) -> bool {
        owed.0.is_some() && !self.has(sn)
    }

    /// Whether the toy's volume or announcement is being sent.
    fn sending(&self, sn: &Sn) -> bool {
        matches!(self.by_toy.get(sn), Some(Announcing::Volume { .. } | Announcing::Media { .. }))
    }

    /// Its volume was sent as `msg_id`; `then` is played once the toy answers.
    fn volume_sent(&mut self, sn: &Sn, msg_id: u32, then: Waiting) {
        self.by_toy.insert(sn.clone(), Announcing::Volume { msg_id, then });
    }

    /// The announcement was sent as `msg_id`.
    fn media_sent(&mut self, sn: &Sn, msg_id: u32) {
        self.by_toy.insert(sn.clone(), Announcing::Media { msg_id });
    }

    /// The toy answered `msg_id` with `outcome`; what it plays lasts about `length`.
    fn step(&mut self, sn: &Sn, msg_id: u32, ok: bool, length: Duration, now: Instant) -> Step {
        match self.by_toy.get(sn) {
            Some(Announcing::Volume { msg_id: m, .. }) if *m == msg_id => {
                let Some(Announcing::Volume { then, .. }) = self.by_toy.remove(sn) else { unreachable!() };
                Step::Play(then)
            }
            Some(Announcing::Media { msg_id: m }) if *m == msg_id => {
                if ok {
                    self.by_toy.insert(sn.clone(), Announcing::Until(now + length));
                    Step::Wait
                } else {
                    self.by_toy.remove(sn);
                    Step::Restore
                }
            }
            // Something else played meanwhile: the volume goes back after it.
            Some(Announcing::Until(t)) if ok => {
                let t = (*t).max(now + length);
                self.by_toy.insert(sn.clone(), Announcing::Until(t));
                Step::Wait
            }
            _ => Step::Wait,
        }
    }

    pub(super) fn forget(&mut self, sn: &Sn) {
        self.by_toy.remove(sn);
    }

    /// When the next announcement is guessed to be over.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.by_toy
            .values()
            .filter_map(|a| match a {
                Announcing::Until(t) => Some(*t),
                _ => None,
            })
            .min()
    }

    /// Toys whose announcement is over by `now`: their volume goes back.
    fn over(&mut self, now: Instant) -> Vec<Sn> {
        take_due(&mut self.by_toy, |a| matches!(a, Announcing::Until(t) if *t <= now))
    }

    /// Plays an announcement (the Announce entity, or what the media player
    /// was asked to play) at its volume: the one it came with, else the
    /// Announcement volume for announcements; and puts the toy's volume back
    /// once it is over.
    ///
    /// The volume is handled here and not in the Home Assistant integration:
    /// only the bridge knows which volume the toy confirmed, when it answered
    /// and how long it is guessed to play, and it keeps the volume to put back
    /// over a restart of Home Assistant or of itself. An announcement never
    /// leaves the toy louder or quieter than before, so one whose volume
    /// could not be put back plays at the toy's own volume.
    pub(super) fn announce(&mut self, cx: &mut Cx, commands: &mut Commands, sn: &Sn, topic: &str, mut cmd: Waiting) {
        let toy = cx.toys.toy(sn);
        let announcement_volume = toy.own.announcement_volume();
        let own = (announcement_volume > 0).then_some(Value::Int(announcement_volume.into()));
        let (request, volume) = match cmd.request {
            ToyCommand::PlayMedia(m) => {
                let volume = m.volume.or(if m.announce { own } else { None });
                (ToyCommand::PlayMedia(Media { volume: None, ..m }), volume)
            }
            other => (other, own),
        };
        cmd.request = request;
        let Some(volume) = volume else {
            commands.send(cx, sn, cmd);
            return;
        };
        let confirmed = toy.confirmed.settings().get(Setting::Volume);
        let before = toy.owed.0.or(confirmed);
        let changing = commands.busy(sn, Slot::Setting(Setting::Volume)).is_some() || self.sending(sn);
        let why_not = if before.is_none() {
            Some("the toy has not confirmed a volume yet, so none could be put back")
        } else if changing {
            Some("the toy's volume is being changed")
        } else {
            None
        };
        if let Some(why) = why_not {
            cx.log(Level::Info, topic, format!("playing at the toy's own volume, not {volume}: {why}"));
        }
        if why_not.is_some() || confirmed == Some(volume) {
            commands.send(cx, sn, cmd);
            return;
        }
        cx.toys.toy_mut(sn).owed.0 = before;
        let shown = format!("{volume} (announcement)");
        let set = Waiting::asked(Key::PlayerVolume, ToyCommand::Set(Setting::Volume, volume), shown);
        let msg_id = commands.send(cx, sn, set);
        self.volume_sent(sn, msg_id, cmd);
    }

    /// The user set the toy's volume: it wins over the one an announcement
    /// would put back.
    pub(super) fn volume_set(&self, cx: &mut Cx, sn: &Sn, topic: &str) {
        if cx.toys.toy_mut(sn).owed.0.take().is_some() {
            let why = "a new volume was set: the volume from before the announcement is not put back";
            cx.log(Level::Info, topic, why);
        }
    }

    /// A command of the toy ended (what it played lasts about `length`): a
    /// volume put back that did not take is owed again, and an announcement
    /// takes its next step.
    pub(super) fn answered(&mut self, cx: &mut Cx, commands: &mut Commands, ended: &Ended, length: Duration) {
        let sn = &ended.sn;
        owe_again(cx, ended);
        match self.step(sn, ended.msg_id, ended.outcome == Outcome::Ok, length, cx.now) {
            Step::Play(then) => {
                if !cx.connected.folotoy {
                    // Its volume goes back when FoloToy's broker is back.
                    let topic = folotoy::topics::command(sn);
                    return cx.log(Level::Warn, &topic, "announcement not played: FoloToy's broker is not connected");
                }
                if cx.toys.toy(sn).own.quiet() {
                    // Quiet came on while the volume was being set: nothing is played.
                    commands::set_last(cx, sn, commands::last_command(then.entity, &then.raw, Outcome::Quiet));
                    return restore_volume(cx, commands, sn, "after the announcement");
                }
                // Refused or not answered, it is still played: at whatever volume the toy has.
                let msg_id = commands.send(cx, sn, then);
                self.media_sent(sn, msg_id);
            }
            Step::Restore => restore_volume(cx, commands, sn, "after the announcement"),
            Step::Wait => {}
        }
    }

    /// Announcements over by now: their toys' volumes go back.
    pub(super) fn on_tick(&mut self, cx: &mut Cx, commands: &mut Commands) {
        for sn in self.over(cx.now) {
            restore_volume(cx, commands, &sn, "after the announcement");
        }
    }

    /// The toy spoke up: a volume an announcement could not put back (the
    /// toy was off) goes back now that it is on again.
    pub(super) fn heard_from(&self, cx: &mut Cx, commands: &mut Commands, sn: &Sn) {
        if self.owes(sn, &cx.toys.toy(sn).owed) {
            restore_volume(cx, commands, sn, "after the announcement");
        }
    }

    /// FoloToy's broker is back: the volumes owed go back.
    pub(super) fn restore_owed(&self, cx: &mut Cx, commands: &mut Commands) {
        let owed: Vec<Sn> = cx.toys.iter().filter(|(sn, t)| self.owes(sn, &t.owed)).map(|(sn, _)| sn.clone()).collect();
        for sn in owed {
            restore_volume(cx, commands, &sn, "after the announcement");
        }
    }
}

/// The volume the toy had before the daily limit or bedtime turned it down
/// goes back as an announcement's does: now, or once the toy or FoloToy's
/// broker is back (a volume already owed, from before, wins).
pub(super) fn put_back(cx: &mut Cx, commands: &mut Commands, sn: &Sn, volume: Value) {
    cx.toys.toy_mut(sn).owed.0.get_or_insert(volume);
    cx.out.save = true;
    restore_volume(cx, commands, sn, "after the limit or bedtime");
}

/// A volume put back that did not take (refused, or the toy was off) is
/// owed again: sent when the toy is next heard from or FoloToy is back. A
/// newer volume sent in its place, the user's, wins.
fn owe_again(cx: &mut Cx, ended: &Ended) {
    let ToyCommand::Set(Setting::Volume, volume) = ended.command.request else { return };
    if ended.outcome != Outcome::Ok && ended.command.restore && !ended.superseded && cx.toys.has(&ended.sn) {
        cx.toys.toy_mut(&ended.sn).owed.0.get_or_insert(volume);
    }
}

/// Sends the volume the toy had before an announcement, if one is owed.
fn restore_volume(cx: &mut Cx, commands: &mut Commands, sn: &Sn, after: &str) {
    if !cx.connected.folotoy {
        return; // owed until FoloToy's broker is back
    }
    let Some(volume) = cx.toys.toy_mut(sn).owed.0.take() else { return };
    cx.out.save = true;
    let restore = Waiting {
        entity: Key::PlayerVolume,
        request: ToyCommand::Set(Setting::Volume, volume),
        // What the Last command sensor shows.
        raw: format!("{volume} ({after})"),
        restore: true,
    };
    commands.send_or_queue(cx, sn, Slot::Setting(Setting::Volume), restore);
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn dinner() -> Waiting {
        Waiting::asked(Key::Announce, ToyCommand::Say("Dinner is ready".into()), "Dinner is ready".into())
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn an_announcement_plays_once_its_volume_is_answered_and_the_volume_goes_back_after_what_played_last() {
        let (mut a, sn, t0) = (Announcements::default(), bunny(), Instant::now());
        a.volume_sent(&sn, 1, dinner());
        assert!(a.sending(&sn));
        assert!(matches!(a.step(&sn, 1, false, Duration::ZERO, t0), Step::Play(w) if w == dinner()), "refused or not");
        a.media_sent(&sn, 2);
        assert!(matches!(a.step(&sn, 2, true, secs(5), t0), Step::Wait));
        assert!(!a.sending(&sn), "played");
        assert_eq!(a.next_deadline(), Some(t0 + secs(5)));
        // Something else played meanwhile: the volume goes back after the later end.
        assert!(matches!(a.step(&sn, 3, true, secs(10), t0 + secs(1)), Step::Wait));
        assert!(matches!(a.step(&sn, 4, true, secs(1), t0 + secs(2)), Step::Wait));
        assert_eq!(a.next_deadline(), Some(t0 + secs(11)));
        assert!(a.over(t0 + secs(10)).is_empty());
        assert_eq!(a.over(t0 + secs(11)), [sn]);
        assert_eq!(a.next_deadline(), None);
    }

    #[test]
    fn an_announcement_the_toy_refuses_to_play_puts_the_volume_back_at_once() {
        let (mut a, sn, t0) = (Announcements::default(), bunny(), Instant::now());
        a.media_sent(&sn, 2);
        assert!(matches!(a.step(&sn, 7, false, secs(5), t0), Step::Wait), "another command's answer");
        assert!(matches!(a.step(&sn, 2, false, secs(5), t0), Step::Restore));
        assert!(!a.has(&sn));
        assert_eq!(a.next_deadline(), None);
    }

    #[test]
    fn a_volume_owed_is_put_back_by_the_announcement_under_way_not_twice() {
        let (mut a, sn) = (Announcements::default(), bunny());
        let owed = OwedVolume(Some(Value::Int(30)));
        assert!(a.owes(&sn, &owed));
        assert!(!a.owes(&sn, &OwedVolume(None)));
        a.media_sent(&sn, 2);
        assert!(!a.owes(&sn, &owed), "the announcement under way puts it back");
        a.forget(&sn);
        assert!(a.owes(&sn, &owed));
    }

    #[test]
    fn an_announcement_at_its_own_volume_sets_it_first_and_owes_the_toy_the_one_before() {
        let mut saved = bunny_at_volume(30);
        saved.get_mut(&bunny()).unwrap().announcement_volume = 70;
        let mut b = Bench::saved(config(), saved, BTreeMap::new());
        let (mut a, mut commands) = (Announcements::default(), Commands::new(Pending::starting_at(1)));
        a.announce(&mut b.cx(), &mut commands, &bunny(), "t", dinner());
        let sent = b.take().folotoy_payloads();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0]["inputParams"], serde_json::json!({"volume": 70}));
        assert_eq!(b.toy(&bunny()).owed.volume(), Some(Value::Int(30)));
        assert!(a.sending(&bunny()));
    }

    #[test]
    fn an_announcement_without_a_confirmed_volume_plays_at_the_toys_own_saying_why() {
        let announcing = ToyState { announcement_volume: 70, ..ToyState::default() };
        let mut b = Bench::saved(config(), BTreeMap::from([(bunny(), announcing)]), BTreeMap::new());
        let (mut a, mut commands) = (Announcements::default(), Commands::new(Pending::starting_at(1)));
        a.announce(&mut b.cx(), &mut commands, &bunny(), "t", dinner());
        let out = b.take();
        let sent = out.folotoy_payloads();
        assert_eq!(sent[0]["inputParams"]["text"], "Dinner is ready", "{sent:?}");
        assert!(
            out.messages(Level::Info)[0].ends_with("the toy has not confirmed a volume yet, so none could be put back")
        );
        assert_eq!(b.toy(&bunny()).owed.volume(), None);
        assert!(!a.has(&bunny()));
    }
}
