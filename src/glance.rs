//! The day at a glance: how much a toy talked today, by one rule shared by
//! the Talk time today and Exchanges today sensors (counted live by the core)
//! and the page's days (counted from the history), so the two always agree.
//!
//! The rule, as the README states it: every sentence the child says is an
//! exchange. Sentences (the child's and the toy's) less than
//! [`SESSION_GAP_MS`] apart belong to one conversation; talk time is the time
//! from each conversation's first sentence to its last, summed, rounded up to
//! the minute. A day is a calendar day where the family lives (the time zone
//! Home Assistant gives the add-on, else the system's): a conversation across
//! midnight counts in each day from that day's first sentence.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;

use crate::history::LineKind;

/// Sentences further apart than this are two conversations: a child who
/// comes back after five minutes of silence did something else meanwhile.
pub const SESSION_GAP_MS: u64 = 5 * 60 * 1000;

/// Where the family's days begin and end.
#[derive(Debug, Clone)]
pub struct Zone(TimeZone);

impl Zone {
    /// The time zone `TZ` names (what the Supervisor gives an add-on: an IANA
    /// name; a POSIX rule such as `CET-1CEST,M3.5.0,M10.5.0/3` works too), else
    /// the system's; UTC, with a warning, when neither can be read.
    pub fn from_env() -> Zone {
        match TimeZone::try_system() {
            Ok(tz) => Zone(tz),
            Err(e) => {
                let tz = std::env::var("TZ").unwrap_or_default();
                tracing::warn!("the time zone (TZ={tz:?}) cannot be read ({e}): days end at midnight UTC");
                Zone(TimeZone::UTC)
            }
        }
    }

    /// A zone by its IANA name, for tests and the benchmark.
    pub fn named(name: &str) -> Option<Zone> {
        TimeZone::get(name).ok().map(Zone)
    }

    pub fn utc() -> Zone {
        Zone(TimeZone::UTC)
    }

    /// The family's calendar day at `ms` (ms since the Unix epoch).
    pub fn day(&self, ms: u64) -> Date {
        Timestamp::from_millisecond(ms as i64).unwrap_or(Timestamp::UNIX_EPOCH).to_zoned_datetime(self.0.clone()).date()
    }

    /// When `day` begins, in ms since the Unix epoch (its first instant,
    /// which is not 00:00 where a clock change skips midnight).
    pub fn start_of(&self, day: Date) -> u64 {
        day.to_zoned_datetime(self.0.clone())
            .ok()
            .and_then(|z| z.start_of_day().ok())
            .map_or(0, |z| z.timestamp().as_millisecond().max(0) as u64)
    }

    /// When `day` reads `time` on the family's clocks, in ms since the Unix
    /// epoch; a time a clock change skips is taken as the hour after.
    pub fn at(&self, day: Date, time: TimeOfDay) -> u64 {
        let (h, m) = (time.0 / 60, time.0 % 60);
        day.at(h as i8, m as i8, 0, 0)
            .to_zoned_datetime(self.0.clone())
            .map_or(0, |z| z.timestamp().as_millisecond().max(0) as u64)
    }

    /// The time of day on the family's clocks at `ms`.
    pub fn time_of_day(&self, ms: u64) -> TimeOfDay {
        let z = Timestamp::from_millisecond(ms as i64).unwrap_or(Timestamp::UNIX_EPOCH);
        let z = z.to_zoned_datetime(self.0.clone());
        TimeOfDay(z.hour() as u16 * 60 + z.minute() as u16)
    }

    /// The next midnight after `ms`.
    pub fn next_midnight(&self, ms: u64) -> u64 {
        match self.day(ms).tomorrow() {
            Ok(tomorrow) => self.start_of(tomorrow),
            Err(_) => u64::MAX,
        }
    }
}

/// A time of day on the family's clocks, to the minute: `21:30` in the
/// state file and in Home Assistant (`21:30:00`, as a time entity sends it,
/// is read too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// `h`:`m`, if a time of day.
    pub const fn hm(h: u16, m: u16) -> Option<TimeOfDay> {
        if h < 24 && m < 60 {
            Some(TimeOfDay(h * 60 + m))
        } else {
            None
        }
    }

    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }
}

/// Text that is not a time of day (shortened).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0:?} is not a time of day (HH:MM, 00:00 to 23:59)")]
pub struct NotATime(String);

impl std::str::FromStr for TimeOfDay {
    type Err = NotATime;

    fn from_str(s: &str) -> Result<TimeOfDay, NotATime> {
        let s = s.trim();
        let bad = || NotATime(s.chars().take(40).collect());
        let mut parts = s.split(':');
        let mut number = |n: usize| {
            parts.next().filter(|p| (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) && n > 0)
        };
        let (h, m) = (number(1).ok_or_else(bad)?, number(2).ok_or_else(bad)?);
        if number(3).is_some_and(|sec| sec.parse::<u16>().map_or(true, |sec| sec > 59)) || parts.next().is_some() {
            return Err(bad());
        }
        TimeOfDay::hm(h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?).ok_or_else(bad)
    }
}

impl TryFrom<String> for TimeOfDay {
    type Error = NotATime;

    fn try_from(s: String) -> Result<TimeOfDay, NotATime> {
        s.parse()
    }
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One toy's talk in one day, so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    exchanges: u32,
    /// Talk time of the conversations that ended.
    ended_ms: u64,
    /// The conversation going on.
    current: Option<Span>,
}

/// A conversation's first and last sentence, and whether there was more than
/// one: a question answered within the same millisecond is talk too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    first: u64,
    last: u64,
    more: bool,
}

impl Span {
    fn ms(self) -> u64 {
        if self.more {
            (self.last - self.first).max(1)
        } else {
            0
        }
    }
}

impl Tally {
    /// Counts a sentence said at `t` (ms since the Unix epoch). Sentences
    /// arrive in order but for a few ms; one from before the last counts
    /// within its conversation.
    pub fn add(&mut self, kind: LineKind, t: u64) {
        if kind == LineKind::Heard {
            self.exchanges = self.exchanges.saturating_add(1);
        }
        let alone = Span { first: t, last: t, more: false };
        self.current = Some(match self.current {
            Some(s) if t <= s.last.saturating_add(SESSION_GAP_MS) => {
                Span { first: s.first.min(t), last: s.last.max(t), more: true }
            }
            Some(s) => {
                self.ended_ms += s.ms();
                alone
            }
            None => alone,
        });
    }

    pub fn exchanges(&self) -> u32 {
        self.exchanges
    }

    /// Minutes of conversation, rounded up: a short "hello" and its answer
    /// is a minute, a lone sentence nothing.
    pub fn talk_minutes(&self) -> u64 {
        let going = self.current.map_or(0, Span::ms);
        (self.ended_ms + going).div_ceil(60_000)
    }
}

/// One day of a toy's talk, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaySummary {
    /// `2026-12-01`.
    pub day: String,
    pub exchanges: u32,
    pub talk_minutes: u64,
}

/// Tallies sentences (in time order) by day, newest day first; days without
/// a sentence are left out.
pub fn by_day(zone: &Zone, sentences: impl IntoIterator<Item = (u64, LineKind)>) -> Vec<DaySummary> {
    let mut days: Vec<(Date, Tally)> = Vec::new();
    for (t, kind) in sentences {
        let day = zone.day(t);
        match days.last_mut() {
            Some((d, tally)) if *d == day => tally.add(kind, t),
            _ => {
                let mut tally = Tally::default();
                tally.add(kind, t);
                days.push((day, tally));
            }
        }
    }
    days.into_iter()
        .rev()
        .map(|(day, t)| DaySummary { day: day.to_string(), exchanges: t.exchanges(), talk_minutes: t.talk_minutes() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    /// 2026-12-01T00:00:00Z.
    const DEC_1: u64 = 1_796_083_200_000;

    #[test]
    fn an_exchange_is_what_the_child_says_and_talk_time_runs_from_first_to_last_sentence() {
        let mut t = Tally::default();
        t.add(LineKind::Heard, DEC_1);
        t.add(LineKind::Said, DEC_1 + 3_000);
        assert_eq!((t.exchanges(), t.talk_minutes()), (1, 1), "a short exchange is a minute");
        let mut quick = Tally::default();
        quick.add(LineKind::Heard, DEC_1);
        quick.add(LineKind::Said, DEC_1);
        assert_eq!(quick.talk_minutes(), 1, "an answer within the same millisecond too");
        t.add(LineKind::Heard, DEC_1 + 4 * MIN);
        t.add(LineKind::Said, DEC_1 + 9 * MIN);
        assert_eq!((t.exchanges(), t.talk_minutes()), (2, 9), "gaps under five minutes are talk");
    }

    #[test]
    fn silence_over_five_minutes_is_not_talk() {
        let mut t = Tally::default();
        t.add(LineKind::Heard, DEC_1);
        t.add(LineKind::Said, DEC_1 + 2 * MIN);
        t.add(LineKind::Heard, DEC_1 + 60 * MIN);
        t.add(LineKind::Said, DEC_1 + 61 * MIN + 30_000);
        assert_eq!(t.talk_minutes(), 4, "2 + 1.5 minutes, rounded up; the hour between is not counted");
        let mut lone = Tally::default();
        lone.add(LineKind::Said, DEC_1);
        assert_eq!((lone.exchanges(), lone.talk_minutes()), (0, 0), "an announcement alone is no conversation");
    }

    #[test]
    fn days_end_at_midnight_where_the_family_lives() {
        let berlin = Zone::named("Europe/Berlin").unwrap();
        // 23:30 UTC on 1 December is 00:30 on 2 December in Berlin.
        let late = DEC_1 + 23 * 60 * MIN + 30 * MIN;
        assert_eq!(berlin.day(late).to_string(), "2026-12-02");
        assert_eq!(Zone::utc().day(late).to_string(), "2026-12-01");
        assert_eq!(berlin.next_midnight(DEC_1), DEC_1 + 23 * 60 * MIN, "midnight in Berlin is 23:00 UTC in winter");
        let days = by_day(
            &berlin,
            [(late - 2 * 60 * MIN, LineKind::Heard), (late, LineKind::Heard), (late + MIN, LineKind::Said)],
        );
        assert_eq!(
            days,
            [
                DaySummary { day: "2026-12-02".into(), exchanges: 1, talk_minutes: 1 },
                DaySummary { day: "2026-12-01".into(), exchanges: 1, talk_minutes: 0 },
            ]
        );
    }

    #[test]
    fn a_time_of_day_is_hh_mm_and_nothing_else() {
        for (text, shown) in [("21:30", "21:30"), ("7:05", "07:05"), ("07:00:00", "07:00"), (" 00:00 ", "00:00")] {
            assert_eq!(text.parse::<TimeOfDay>().map(|t| t.to_string()).as_deref(), Ok(shown), "{text}");
        }
        for bad in ["24:00", "12:60", "12", "", "ab:cd", "12:00:61", "1:2:3:4", "-1:00", "123:00"] {
            assert!(bad.parse::<TimeOfDay>().is_err(), "{bad}");
        }
        let berlin = Zone::named("Europe/Berlin").unwrap();
        let day: Date = "2026-12-01".parse().unwrap();
        assert_eq!(berlin.at(day, TimeOfDay::hm(0, 0).unwrap()), DEC_1 - 60 * MIN);
        assert_eq!(berlin.time_of_day(DEC_1), TimeOfDay::hm(1, 0).unwrap());
    }

    #[test]
    fn a_day_that_skips_midnight_begins_at_its_first_instant() {
        // Santiago de Chile moved its clocks from 00:00 to 01:00 on 2026-09-06.
        let santiago = Zone::named("America/Santiago").unwrap();
        let day: Date = "2026-09-06".parse().unwrap();
        let start = santiago.start_of(day);
        assert_eq!(santiago.day(start), day);
        assert_eq!(santiago.day(start - 1).to_string(), "2026-09-05");
    }
}
