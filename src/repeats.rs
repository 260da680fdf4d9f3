//! Faults that repeat are told once, then at most every few minutes with how
//! many more there were. A client of the broker resending one bad message, a
//! retained one coming back at every reconnection, or a full disk must not fill
//! the log or hide everything else in it.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How often the same fault is told again while it goes on.
pub const EVERY: Duration = Duration::from_secs(5 * 60);

/// Distinct faults remembered; beyond, all new ones share one entry, so a
/// flood of different bad messages is told as one more fault, not each.
const KEPT: usize = 1024;

#[derive(Debug)]
pub struct Repeats<K> {
    seen: HashMap<K, Seen>,
    /// The faults beyond the [`KEPT`] remembered, as one.
    many: Option<Seen>,
    every: Duration,
}

#[derive(Debug)]
struct Seen {
    told: Instant,
    quiet: u64,
}

impl Seen {
    /// `None`: keep quiet; else how many went untold since it was last told.
    fn again(this: &mut Option<Seen>, now: Instant, every: Duration) -> Option<u64> {
        match this {
            Some(seen) if now.duration_since(seen.told) < every => {
                seen.quiet += 1;
                None
            }
            Some(seen) => Some(std::mem::replace(seen, Seen { told: now, quiet: 0 }).quiet),
            None => {
                *this = Some(Seen { told: now, quiet: 0 });
                Some(0)
            }
        }
    }
}

/// Whether to tell a fault now.
#[derive(Debug, PartialEq, Eq)]
pub enum Tell {
    /// Tell it, saying how many like it went untold since it was last told.
    Now { untold: u64 },
    /// Tell it as one of many different faults at once, with their count.
    AmongMany { untold: u64 },
    /// Keep quiet: it was told a moment ago.
    Quiet,
}

impl Tell {
    pub fn is_quiet(&self) -> bool {
        *self == Tell::Quiet
    }

    /// What to add to the fault's message when it is told.
    pub fn suffix(&self) -> String {
        match self {
            Tell::Now { untold: 0 } | Tell::Quiet => String::new(),
            Tell::Now { untold } => format!(" ({untold} more times since this was last told)"),
            Tell::AmongMany { untold } => format!(
                " (one of many different faults at once: {untold} more went untold; each is told at most every {} \
                 minutes)",
                EVERY.as_secs() / 60
            ),
        }
    }
}

impl<K: Hash + Eq> Repeats<K> {
    pub fn new(every: Duration) -> Self {
        Repeats { seen: HashMap::new(), many: None, every }
    }

    /// Fault `key` happened at `now`.
    pub fn happened(&mut self, key: K, now: Instant) -> Tell {
        let every = self.every;
        if self.seen.len() >= KEPT && !self.seen.contains_key(&key) {
            self.seen.retain(|_, s| now.duration_since(s.told) < every);
        }
        if self.seen.len() >= KEPT && !self.seen.contains_key(&key) {
            return match Seen::again(&mut self.many, now, every) {
                Some(untold) => Tell::AmongMany { untold },
                None => Tell::Quiet,
            };
        }
        let mut entry = self.seen.remove(&key);
        let tell = Seen::again(&mut entry, now, every);
        self.seen.insert(key, entry.expect("Seen::again leaves one"));
        match tell {
            Some(untold) => Tell::Now { untold },
            None => Tell::Quiet,
        }
    }

    /// Fault `key` is over: the next time it happens is told at once.
    pub fn over(&mut self, key: &K) {
        self.seen.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_fault_is_told_once_then_again_after_a_while_with_its_count() {
        let mut r = Repeats::new(EVERY);
        let t0 = Instant::now();
        assert_eq!(r.happened("a", t0), Tell::Now { untold: 0 });
        assert_eq!(r.happened("a", t0 + Duration::from_secs(1)), Tell::Quiet);
        assert_eq!(r.happened("a", t0 + Duration::from_secs(2)), Tell::Quiet);
        assert_eq!(r.happened("b", t0 + Duration::from_secs(2)), Tell::Now { untold: 0 }, "another fault is its own");
        let later = r.happened("a", t0 + EVERY);
        assert_eq!(later, Tell::Now { untold: 2 });
        assert!(later.suffix().contains("2 more times"), "{}", later.suffix());
        r.over(&"a");
        assert_eq!(r.happened("a", t0 + EVERY), Tell::Now { untold: 0 }, "once over, the next is told at once");
    }

    #[test]
    fn a_flood_of_different_faults_is_told_as_one_beyond_those_remembered() {
        let mut r = Repeats::new(EVERY);
        let t0 = Instant::now();
        for i in 0..KEPT {
            assert_eq!(r.happened(i, t0), Tell::Now { untold: 0 });
        }
        assert_eq!(r.happened(KEPT, t0), Tell::AmongMany { untold: 0 });
        for i in KEPT + 1..KEPT + 100 {
            assert_eq!(r.happened(i, t0), Tell::Quiet);
        }
        assert_eq!(r.happened(0, t0), Tell::Quiet, "the ones remembered stay remembered");
        // Once the remembered ones are old, new faults have room again.
        assert_eq!(r.happened(KEPT + 500, t0 + EVERY), Tell::Now { untold: 0 });
    }
}
