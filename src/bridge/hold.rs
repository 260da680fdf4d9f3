//! States a talking toy changes with every sentence (what was heard and
//! said, the media player's title), held back so each changes at most once
//! per period.
//!
//! A toy reading a story sends a sentence every few hundred milliseconds;
//! the Conversation event carries every one of them, so the sensors only
//! need the newest. The first change after a quiet period goes out at once;
//! changes within the period wait for its end and go out as one, the newest.
//! This keeps the broker's retained store from being rewritten for each
//! sentence, which was most of the broker's work for a chatty toy.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::folotoy::Sn;
use crate::ha::entities::Key;

type Held = (Sn, Key);

#[derive(Debug)]
pub struct Hold {
    period: Duration,
    /// Until when each recently published state is held back.
    quiet_until: HashMap<Held, Instant>,
    /// States changed while held back, and when they may go out.
    waiting: BTreeMap<Held, Instant>,
}

impl Hold {
    pub fn new(period: Duration) -> Hold {
        Hold { period, quiet_until: HashMap::new(), waiting: BTreeMap::new() }
    }

    /// Whether `key` of `sn` may be published now; if not, it is published
    /// when [`Hold::due`] says so.
    pub fn pass(&mut self, sn: &Sn, key: Key, now: Instant) -> bool {
        let k = (sn.clone(), key);
        match self.quiet_until.get(&k) {
            Some(until) if *until > now => {
                self.waiting.insert(k, *until);
                false
            }
            _ => {
                // A change held earlier whose time came but whose tick has
                // not run yet goes out now, once.
                self.waiting.remove(&k);
                self.quiet_until.insert(k, now + self.period);
                true
            }
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.values().min().copied()
    }

    /// The held states whose time has come, to publish now; each is then
    /// held back for another period.
    pub fn due(&mut self, now: Instant) -> Vec<Held> {
        let due: Vec<Held> = self.waiting.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
        for k in &due {
            self.waiting.remove(k);
            self.quiet_until.insert(k.clone(), now + self.period);
        }
        // Quiet periods that ended with nothing waiting are forgotten, so
        // toys that went silent cost no memory.
        self.quiet_until.retain(|k, until| *until > now || self.waiting.contains_key(k));
        due
    }

    /// Everything is being published anew: nothing needs to wait any more.
    pub fn clear(&mut self) {
        self.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sn() -> Sn {
        Sn::parse("fcb467dad0c0").unwrap()
    }

    #[test]
    fn the_first_change_goes_out_at_once_and_a_burst_goes_out_once_at_the_end_of_the_period() {
        let mut h = Hold::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(h.pass(&sn(), Key::Said, t0));
        assert!(!h.pass(&sn(), Key::Said, t0 + Duration::from_millis(300)));
        assert!(!h.pass(&sn(), Key::Said, t0 + Duration::from_millis(600)));
        assert_eq!(h.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert!(h.due(t0 + Duration::from_millis(999)).is_empty());
        assert_eq!(h.due(t0 + Duration::from_secs(1)), [(sn(), Key::Said)]);
        assert_eq!(h.next_deadline(), None, "nothing left waiting");
        // Right after the held one went out, the next change waits again.
        assert!(!h.pass(&sn(), Key::Said, t0 + Duration::from_millis(1100)));
        assert_eq!(h.due(t0 + Duration::from_secs(2)), [(sn(), Key::Said)]);
    }

    #[test]
    fn a_change_after_its_period_ended_but_before_the_tick_goes_out_once() {
        let mut h = Hold::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(h.pass(&sn(), Key::Said, t0));
        assert!(!h.pass(&sn(), Key::Said, t0 + Duration::from_millis(500)));
        // The period ended; the next change comes before the tick.
        assert!(h.pass(&sn(), Key::Said, t0 + Duration::from_millis(1001)));
        assert!(h.due(t0 + Duration::from_millis(1002)).is_empty(), "already published with the change");
    }

    #[test]
    fn each_state_and_each_toy_is_held_on_its_own() {
        let mut h = Hold::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let other = Sn::parse("aabbccddeeff").unwrap();
        assert!(h.pass(&sn(), Key::Said, t0));
        assert!(h.pass(&sn(), Key::Heard, t0));
        assert!(h.pass(&other, Key::Said, t0));
    }

    #[test]
    fn a_toy_gone_quiet_is_forgotten() {
        let mut h = Hold::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(h.pass(&sn(), Key::Said, t0));
        assert!(h.due(t0 + Duration::from_secs(5)).is_empty());
        assert!(h.quiet_until.is_empty());
        assert!(h.pass(&sn(), Key::Said, t0 + Duration::from_secs(5)));
    }
}
