//! The media player's guess of what each toy plays: FoloToy says when a
//! toy starts, never when it stops, so playing ends after the length the
//! bridge guessed.

use super::*;

/// Until when each playing toy is guessed to play.
#[derive(Debug, Default)]
pub(super) struct Playing {
    until: BTreeMap<Sn, Instant>,
}

impl Playing {
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.until.values().min().copied()
    }

    pub(super) fn forget(&mut self, sn: &Sn) {
        self.until.remove(sn);
    }

    /// Toys guessed done by `now`, forgotten.
    fn done(&mut self, now: Instant) -> Vec<Sn> {
        let done: Vec<Sn> = self.until.iter().filter(|(_, t)| **t <= now).map(|(sn, _)| sn.clone()).collect();
        for sn in &done {
            self.until.remove(sn);
        }
        done
    }
}

impl Core {
    /// Shows the toy as playing `title` for about `length`.
    pub(super) fn playing(&mut self, sn: &Sn, title: String, length: Duration, now: Instant, out: &mut Output) {
        let toy = self.toy_mut(sn);
        let was_playing = std::mem::replace(&mut toy.playing, true);
        toy.player_title = Some(title);
        self.playing.until.insert(sn.clone(), now + length);
        if !was_playing {
            self.publish_key(sn, Key::PlayerState, out);
        }
        self.publish_held(sn, Key::PlayerTitle, now, out);
    }

    /// Toys whose playing is over show idle.
    pub(super) fn stop_playing(&mut self, now: Instant, out: &mut Output) {
        for sn in self.playing.done(now) {
            if let Some(toy) = self.toys.state_mut(&sn) {
                toy.playing = false;
                self.publish_key(&sn, Key::PlayerState, out);
            }
        }
    }
}
