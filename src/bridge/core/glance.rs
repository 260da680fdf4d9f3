//! The day at a glance: each toy's Talk time today and Exchanges today,
//! counted as sentences arrive and back to 0 at the family's midnight.

use super::*;
use crate::dates::unix_ms;
use crate::glance::Tally;
use crate::history::{Kind as LineKind, Line};
use jiff::civil::Date;

/// The day the tallies count, and when it ends.
#[derive(Debug)]
pub(super) struct Today {
    day: Date,
    /// Its end by the wall clock, in ms since the Unix epoch.
    ends_ms: u64,
    /// Its end by the core's clock, for the deadline: the wall clock is
    /// not an input the core gets with a tick.
    pub(super) ends: Instant,
}

impl Core {
    /// A sentence for the history, counted in its toy's tally.
    pub(super) fn keep(&mut self, sn: &Sn, line: Line, now: Instant, out: &mut Output) {
        if let Some(zone) = &self.cfg.glance {
            // A sentence stamped before the day began (it waited in a queue) counts today.
            // Compared with the day's end, not by its date: no time zone lookup per sentence.
            if self.today.as_ref().is_none_or(|t| line.t >= t.ends_ms) {
                let zone = zone.clone();
                self.begin(&zone, line.t, now, out);
            }
            let tally = &mut self.toy_mut(sn).today;
            let before = (tally.exchanges(), tally.talk_minutes());
            tally.add(line.kind, line.t);
            let after = (tally.exchanges(), tally.talk_minutes());
            // At most once a second, as the conversation sensors: a chatty toy's
            // every sentence would be a retained message more for the broker.
            if after.0 != before.0 {
                self.publish_held(sn, Key::ExchangesToday, now, out);
            }
            if after.1 != before.1 {
                self.publish_held(sn, Key::TalkTimeToday, now, out);
            }
        }
        out.history.push((sn.clone(), line));
    }

    /// At start: today's sentences so far, from the history (what the bridge
    /// counted before it stopped), at wall time `at`.
    pub fn begin_day(&mut self, sentences: Vec<(String, u64, LineKind)>, at: SystemTime, now: Instant) {
        let Some(zone) = self.cfg.glance.clone() else { return };
        let mut out = Output::default();
        self.begin(&zone, unix_ms(at), now, &mut out);
        let today = self.today.as_ref().map(|t| t.day);
        for (sn, t, kind) in sentences {
            if Some(zone.day(t)) != today {
                continue;
            }
            if let Some(toy) = Sn::parse(&sn).ok().and_then(|sn| self.toys.state_mut(&sn)) {
                toy.today.add(kind, t);
            }
        }
    }

    /// Midnight passed with no sentence since: every tally goes back to 0.
    pub(super) fn next_day(&mut self, now: Instant, out: &mut Output) {
        let (Some(zone), Some(today)) = (self.cfg.glance.clone(), self.today.as_ref()) else { return };
        let late = now.saturating_duration_since(today.ends).as_millis() as u64;
        self.begin(&zone, today.ends_ms + late, now, out);
    }

    /// Starts counting the day of `ms` (wall time, when it is `now`).
    fn begin(&mut self, zone: &Zone, ms: u64, now: Instant, out: &mut Output) {
        let ends_ms = zone.next_midnight(ms);
        let left = Duration::from_millis(ends_ms.saturating_sub(ms));
        self.today = Some(Today { day: zone.day(ms), ends_ms, ends: now + left });
        let counted: Vec<Sn> =
            self.toys.iter().filter(|(_, t)| t.state.today != Tally::default()).map(|(sn, _)| sn.clone()).collect();
        for sn in counted {
            self.toy_mut(&sn).today = Tally::default();
            self.publish_key(&sn, Key::ExchangesToday, out);
            self.publish_key(&sn, Key::TalkTimeToday, out);
        }
    }
}
