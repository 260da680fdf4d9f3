//! Announcements at their own volume: the volume set, the announcement
//! played, the toy's volume put back afterwards.

use super::*;

impl Core {
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
    pub(super) fn announce(&mut self, sn: &Sn, topic: &str, mut cmd: Waiting, now: Instant, out: &mut Output) {
        let toy = &self.toys[sn].state;
        let own = (toy.announcement_volume > 0).then_some(Value::Int(toy.announcement_volume.into()));
        let (request, volume) = match cmd.request {
            Request::PlayMedia(m) => {
                let volume = m.volume.or(if m.announce { own } else { None });
                (Request::PlayMedia(Media { volume: None, ..m }), volume)
            }
            other => (other, own),
        };
        cmd.request = request;
        let Some(volume) = volume else {
            self.send(sn, cmd, now, out);
            return;
        };
        let confirmed = toy.settings.get(Setting::Volume);
        let before = toy.volume_to_restore.or(confirmed);
        let changing = self.pending.busy(sn, Slot::Setting(Setting::Volume)).is_some()
            || matches!(self.announcing.get(sn), Some(Announcing::Volume { .. } | Announcing::Media { .. }));
        let why_not = if before.is_none() {
            Some("the toy has not confirmed a volume yet, so none could be put back")
        } else if changing {
            Some("the toy's volume is being changed")
        } else {
            None
        };
        if let Some(why) = why_not {
            out.log(Level::Info, topic, format!("playing at the toy's own volume, not {volume}: {why}"));
        }
        if why_not.is_some() || confirmed == Some(volume) {
            self.send(sn, cmd, now, out);
            return;
        }
        self.toy_mut(sn).volume_to_restore = before;
        let shown = format!("{volume} (announcement)");
        let set = Waiting::asked(Key::PlayerVolume, Request::Set(Setting::Volume, volume), shown);
        let msg_id = self.send(sn, set, now, out);
        self.announcing.insert(sn.clone(), Announcing::Volume { msg_id, then: cmd });
    }

    /// The next step of an announcement once the toy answered `msg_id`.
    pub(super) fn announcement_step(
        &mut self,
        sn: &Sn,
        msg_id: u32,
        outcome: Outcome,
        length: Duration,
        now: Instant,
        out: &mut Output,
    ) {
        match self.announcing.get(sn) {
            Some(Announcing::Volume { msg_id: m, .. }) if *m == msg_id => {
                let Some(Announcing::Volume { then, .. }) = self.announcing.remove(sn) else { return };
                if !self.folotoy_up {
                    // Its volume goes back when FoloToy's broker is back.
                    let topic = folotoy::topics::command(sn);
                    return out.log(Level::Warn, &topic, "announcement not played: FoloToy's broker is not connected");
                }
                if self.toys[sn].state.quiet {
                    // Quiet came on while the volume was being set: nothing is played.
                    self.set_last(sn, commands::last_command(then.entity, &then.raw, Outcome::Quiet), out);
                    return self.restore_volume(sn, now, out);
                }
                // Refused or not answered, it is still played: at whatever volume the toy has.
                let msg_id = self.send(sn, then, now, out);
                self.announcing.insert(sn.clone(), Announcing::Media { msg_id });
            }
            Some(Announcing::Media { msg_id: m }) if *m == msg_id => {
                if outcome == Outcome::Ok {
                    self.announcing.insert(sn.clone(), Announcing::Until(now + length));
                } else {
                    self.announcing.remove(sn);
                    self.restore_volume(sn, now, out);
                }
            }
            // Something else played meanwhile: the volume goes back after it.
            Some(Announcing::Until(t)) if outcome == Outcome::Ok => {
                let t = (*t).max(now + length);
                self.announcing.insert(sn.clone(), Announcing::Until(t));
            }
            _ => {}
        }
    }

    /// Sends the volume the toy had before an announcement, if one is owed.
    /// A volume put back that did not take (refused, or the toy was off) is
    /// owed again: sent when the toy is next heard from or FoloToy is back.
    pub(super) fn restore_failed(&mut self, sent: &Sent, outcome: Outcome) {
        let Request::Set(Setting::Volume, volume) = sent.command.request else { return };
        // (A newer volume waiting behind it, the user's, wins: the caller checks.)
        if outcome != Outcome::Ok && sent.command.restore && self.toys.contains_key(&sent.sn) {
            let toy = self.toy_mut(&sent.sn);
            toy.volume_to_restore.get_or_insert(volume);
        }
    }

    pub(super) fn restore_volume(&mut self, sn: &Sn, now: Instant, out: &mut Output) {
        if !self.folotoy_up {
            return; // owed until FoloToy's broker is back
        }
        let Some(volume) = self.toy_mut(sn).volume_to_restore.take() else { return };
        out.save = true;
        let restore = Waiting {
            entity: Key::PlayerVolume,
            request: Request::Set(Setting::Volume, volume),
            // What the Last command sensor shows.
            raw: format!("{volume} (after the announcement)"),
            restore: true,
        };
        let slot = Slot::Setting(Setting::Volume);
        if self.pending.busy(sn, slot).is_some() {
            self.pending.wait(sn, slot, restore);
        } else {
            self.send(sn, restore, now, out);
        }
    }
}
