//! The day at a glance: each toy's Talk time today and Exchanges today,
//! counted as sentences arrive and back to 0 at the family's midnight.

use super::*;
use crate::dates::unix_ms;
use crate::glance::Tally;
use crate::history::{Line, LineKind};
use jiff::civil::Date;

/// How much a toy talked today: not saved, counted from the history at
/// start (see [`Days::begin_day`]). Changed only here.
#[derive(Debug, Default)]
pub(super) struct DayTally(Tally);

impl DayTally {
    pub(super) fn tally(&self) -> Tally {
        self.0
    }
}

/// The day the toys' tallies count; none before the first sentence, or
/// without a history (`CoreConfig::glance`).
#[derive(Debug, Default)]
pub(super) struct Days {
    today: Option<CountedDay>,
}

/// The day the tallies count, and when it ends.
#[derive(Debug)]
struct CountedDay {
    day: Date,
    /// Its end by the wall clock, in ms since the Unix epoch.
    ends_ms: u64,
    /// Its end by the core's clock, for the deadline: the wall clock is
    /// not an input the core gets with a tick.
    ends: Instant,
}

impl Days {
    /// Midnight: the tallies go back to 0 then.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.today.as_ref().map(|t| t.ends)
    }

    /// Counts a sentence in its toy's tallies, beginning a new day first
    /// when it is past midnight.
    pub(super) fn count(&mut self, cx: &mut Cx, sn: &Sn, line: &Line) {
        let cfg = cx.cfg;
        let Some(zone) = &cfg.glance else { return };
        // A sentence stamped before the day began (it waited in a queue) counts today.
        // Compared with the day's end, not by its date: no time zone lookup per sentence.
        if self.today.as_ref().is_none_or(|t| line.t >= t.ends_ms) {
            self.begin(cx, zone, line.t);
        }
        let tally = &mut cx.toys.toy_mut(sn).today.0;
        let before = (tally.exchanges(), tally.talk_minutes());
        tally.add(line.kind, line.t);
        let after = (tally.exchanges(), tally.talk_minutes());
        // At most once a second, as the conversation sensors: a chatty toy's
        // every sentence would be a retained message more for the broker.
        if after.0 != before.0 {
            cx.publish_held(sn, Key::ExchangesToday);
        }
        if after.1 != before.1 {
            cx.publish_held(sn, Key::TalkTimeToday);
        }
    }

    /// At start: today's sentences so far, from the history (what the bridge
    /// counted before it stopped), at wall time `at`.
    pub(super) fn begin_day(&mut self, cx: &mut Cx, sentences: Vec<(String, u64, LineKind)>, at: SystemTime) {
        let cfg = cx.cfg;
        let Some(zone) = &cfg.glance else { return };
        self.begin(cx, zone, unix_ms(at));
        let today = self.today.as_ref().map(|t| t.day);
        for (sn, t, kind) in sentences {
            if Some(zone.day(t)) != today {
                continue;
            }
            if let Some(toy) = Sn::parse(&sn).ok().and_then(|sn| cx.toys.find_mut(&sn)) {
                toy.today.0.add(kind, t);
            }
        }
    }

    /// After a parent deleted sentences of `toys`: their tallies counted anew from
    /// `sentences` (what the history keeps of today), and published where they changed.
    pub(super) fn recount(
        &mut self,
        cx: &mut Cx,
        toys: &[Sn],
        sentences: Vec<(String, u64, LineKind)>,
        at: SystemTime,
    ) {
        let cfg = cx.cfg;
        let Some(zone) = &cfg.glance else { return };
        let today = zone.day(unix_ms(at));
        let mut fresh: BTreeMap<&Sn, Tally> = toys.iter().map(|sn| (sn, Tally::default())).collect();
        for (sn, t, kind) in sentences {
            if zone.day(t) != today {
                continue;
            }
            if let Some(tally) = fresh.iter_mut().find(|(of, _)| of.as_str() == sn).map(|(_, tally)| tally) {
                tally.add(kind, t);
            }
        }
        for (sn, tally) in fresh {
            let Some(toy) = cx.toys.find_mut(sn) else { continue };
            let before = std::mem::replace(&mut toy.today.0, tally);
            if before.exchanges() != tally.exchanges() {
                cx.publish(sn, Key::ExchangesToday);
            }
            if before.talk_minutes() != tally.talk_minutes() {
                cx.publish(sn, Key::TalkTimeToday);
            }
        }
    }

    /// Midnight passed with no sentence since: every tally goes back to 0.
    pub(super) fn on_tick(&mut self, cx: &mut Cx) {
        let cfg = cx.cfg;
        let (Some(zone), Some(today)) = (&cfg.glance, self.today.as_ref()) else { return };
        if today.ends > cx.now {
            return;
        }
        let late = cx.now.saturating_duration_since(today.ends).as_millis() as u64;
        let ms = today.ends_ms + late;
        self.begin(cx, zone, ms);
    }

    /// Starts counting the day of `ms` (wall time, when it is `cx.now`).
    fn begin(&mut self, cx: &mut Cx, zone: &Zone, ms: u64) {
        let ends_ms = zone.next_midnight(ms);
        let left = Duration::from_millis(ends_ms.saturating_sub(ms));
        self.today = Some(CountedDay { day: zone.day(ms), ends_ms, ends: cx.now + left });
        let counted: Vec<Sn> =
            cx.toys.iter().filter(|(_, t)| t.today.0 != Tally::default()).map(|(sn, _)| sn.clone()).collect();
        for sn in counted {
            cx.toys.toy_mut(&sn).today.0 = Tally::default();
            cx.publish(&sn, Key::ExchangesToday);
            cx.publish(&sn, Key::TalkTimeToday);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    /// 2026-11-25 12:00 UTC, in ms since the Unix epoch.
    const NOON: u64 = 1_795_608_000_000;
    const HOUR: u64 = 3_600_000;

    fn heard_at(t: u64) -> Line {
        Line { t, kind: LineKind::Heard, recording_id: None, order: None, role: None, text: "Hi".into() }
    }

    fn exchanges(b: &Bench) -> u32 {
        b.toy(&bunny()).today.tally().exchanges()
    }

    #[test]
    fn a_sentence_after_midnight_counts_in_a_new_day() {
        let mut b = Bench::new(config());
        let mut days = Days::default();
        days.count(&mut b.cx(), &bunny(), &heard_at(NOON));
        days.count(&mut b.cx(), &bunny(), &heard_at(NOON + HOUR));
        assert_eq!(exchanges(&b), 2);
        let out = b.take();
        assert_eq!(out.state_of(&bunny(), Key::ExchangesToday).as_deref(), Some("1"), "the second one is held");
        days.count(&mut b.cx(), &bunny(), &heard_at(NOON + 12 * HOUR));
        assert_eq!(exchanges(&b), 1, "counted from 0 on the 26th");
        assert_eq!(b.take().state_of(&bunny(), Key::ExchangesToday).as_deref(), Some("0"), "back to 0 at once");
    }

    #[test]
    fn midnight_with_no_sentence_sets_every_tally_back_to_0() {
        let mut b = Bench::new(config());
        let mut days = Days::default();
        days.count(&mut b.cx(), &bunny(), &heard_at(NOON));
        assert_eq!(days.next_deadline(), Some(b.t0 + Duration::from_millis(12 * HOUR)));
        days.on_tick(&mut b.at(Duration::from_millis(12 * HOUR - 1)).cx());
        assert_eq!(exchanges(&b), 1);
        b.take();
        days.on_tick(&mut b.at(Duration::from_millis(12 * HOUR)).cx());
        assert_eq!(exchanges(&b), 0);
        assert_eq!(b.take().state_of(&bunny(), Key::ExchangesToday).as_deref(), Some("0"));
        assert_eq!(days.next_deadline(), Some(b.t0 + Duration::from_millis(36 * HOUR)), "the next midnight");
    }

    #[test]
    fn at_start_only_todays_sentences_of_known_toys_count() {
        let mut b = Bench::new(config());
        let mut days = Days::default();
        let sentences = vec![
            (BUNNY.to_owned(), NOON - 13 * HOUR, LineKind::Heard),
            (BUNNY.to_owned(), NOON - HOUR, LineKind::Heard),
            (BUNNY.to_owned(), NOON - HOUR + 1000, LineKind::Said),
            ("08d1f9c6a310".to_owned(), NOON - HOUR, LineKind::Heard),
            ("not a toy".to_owned(), NOON - HOUR, LineKind::Heard),
        ];
        days.begin_day(&mut b.cx(), sentences, std::time::UNIX_EPOCH + Duration::from_millis(NOON));
        assert_eq!(exchanges(&b), 1, "yesterday's left out");
        assert_eq!(b.toy(&bunny()).today.tally().talk_minutes(), 1);
    }

    #[test]
    fn without_a_history_nothing_is_counted() {
        let mut b = Bench::new(CoreConfig { glance: None, ..config() });
        let mut days = Days::default();
        days.count(&mut b.cx(), &bunny(), &heard_at(NOON));
        assert_eq!(exchanges(&b), 0);
        assert_eq!(days.next_deadline(), None);
    }

    #[test]
    fn deleting_one_of_todays_exchanges_counts_the_day_anew_from_what_is_left() {
        let mut b = Bench::new(config());
        let mut days = Days::default();
        for t in [NOON, NOON + 60_000, NOON + 120_000] {
            days.count(&mut b.cx(), &bunny(), &heard_at(t));
        }
        assert_eq!(exchanges(&b), 3);
        b.take();
        let left = vec![(BUNNY.to_owned(), NOON, LineKind::Heard), (BUNNY.to_owned(), NOON + 120_000, LineKind::Heard)];
        let at = std::time::UNIX_EPOCH + Duration::from_millis(NOON + 180_000);
        days.recount(&mut b.cx(), &[bunny()], left, at);
        assert_eq!(exchanges(&b), 2);
        assert_eq!(b.take().state_of(&bunny(), Key::ExchangesToday).as_deref(), Some("2"), "published at once");
        days.recount(&mut b.cx(), &[bunny()], vec![(BUNNY.to_owned(), NOON - 13 * HOUR, LineKind::Heard)], at);
        assert_eq!(exchanges(&b), 0, "yesterday's are not today's");
    }
}
