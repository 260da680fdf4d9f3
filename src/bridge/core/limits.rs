//! A toy's daily limit and bedtime: the toy quiet by itself once it talked
//! its minutes today (until midnight, or a parent lets it talk on) and
//! within bedtime (a parent's own change of Quiet wins until the next
//! boundary).
//!
//! Quiet made by a rule is the Quiet switch itself, so a parent sees one
//! switch and what it says holds for what the bridge sends. For the child
//! it holds too: Home Assistant's brain is told the line to answer with
//! (see `Watching::screen`), and a toy answered by FoloToy's own AI says the
//! line once and is turned down to volume 0 until the rule ends, when its
//! volume goes back as after an announcement.
//!
//! The core has no wall clock: the runtime tells it the time once at start
//! ([`Limits::begin`]); midnight and bedtime's boundaries are deadlines
//! counted from there.

use super::commands::{Commands, Ended};
use super::*;
use crate::dates::unix_ms;
use crate::ha::commands::LimitSetting;
use crate::saved::{LimitsState, QuietBy, Reached};
use jiff::civil::Date;

/// The default lines, in English and in Chinese (said when the child's last
/// words were Chinese, as the integration's `speech.language` decides).
const GOODBYE: [&str; 2] = ["That's all our talking for today. See you tomorrow!", "今天就聊到这里吧，明天见！"];
const GOOD_NIGHT: [&str; 2] = ["Time to sleep. Good night!", "该睡觉了，晚安！"];

/// A toy's daily limit and bedtime, as saved: changed only here.
#[derive(Debug, Default)]
pub(super) struct ToyLimits {
    saved: LimitsState,
    /// Since the child last spoke, the bridge checked an answer for the toy
    /// (Home Assistant's brain answers it).
    screened: bool,
}

impl ToyLimits {
    pub(super) fn from_saved(saved: LimitsState) -> ToyLimits {
        ToyLimits { saved, screened: false }
    }

    pub(super) fn saved(&self) -> &LimitsState {
        &self.saved
    }

    /// What its entities show; the default lines in the toy's language.
    pub(super) fn view(&self, chinese: bool) -> ha::states::LimitsView<'_> {
        let s = &self.saved;
        ha::states::LimitsView {
            daily_limit: s.daily_limit,
            goodbye_line: self.line(QuietBy::Limit, chinese),
            bedtime: s.bedtime,
            from: s.bedtime_from,
            until: s.bedtime_until,
            bedtime_line: self.line(QuietBy::Bedtime, chinese),
        }
    }

    fn line(&self, by: QuietBy, chinese: bool) -> &str {
        let (own, default) = match by {
            QuietBy::Limit => (&self.saved.goodbye_line, GOODBYE),
            QuietBy::Bedtime => (&self.saved.bedtime_line, GOOD_NIGHT),
        };
        own.as_deref().unwrap_or(default[usize::from(chinese)])
    }

    /// The line Home Assistant's brain answers with while the limit or
    /// bedtime keeps the toy quiet (not while a parent does).
    pub(super) fn quiet_line(&self, quiet: bool, chinese: bool) -> Option<&str> {
        self.saved.quiet_by.filter(|_| quiet).map(|by| self.line(by, chinese))
    }

    /// Whether today's limit keeps the toy quiet: reached `today`, not lifted.
    fn holds(&self, today: &str) -> bool {
        self.saved.reached.as_ref().is_some_and(|r| r.day == today && !r.lifted)
    }
}

/// Whether the toy's last words were Chinese: its lines are said in Chinese then.
pub(super) fn chinese(toy: &toys::Toy) -> bool {
    toy.talk.heard().is_some_and(|h| crate::text::east_asian(&h.text))
}

/// The wall clock, the lines being said before a toy is turned down, and
/// when to look again.
#[derive(Debug, Default)]
pub(super) struct Limits {
    /// At this instant the wall clock read this (ms since the Unix epoch).
    clock: Option<(Instant, u64)>,
    /// Toys saying their line: its msgId, then until when it is guessed to play.
    saying: BTreeMap<Sn, Saying>,
    /// The next midnight, boundary or line's end.
    due: Option<Instant>,
}

#[derive(Debug)]
enum Saying {
    Sent(u32),
    Until(Instant),
}

/// A bedtime boundary: bedtime begins, or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    Begins,
    Ends,
}

impl Limits {
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.due
    }

    /// The wall clock now, once the runtime told it.
    fn wall(&self, now: Instant) -> Option<u64> {
        self.clock.map(|(at, ms)| ms + now.saturating_duration_since(at).as_millis() as u64)
    }

    /// The instant the wall clock reads `ms`.
    fn instant(&self, ms: u64) -> Option<Instant> {
        self.clock.map(|(at, then)| at + Duration::from_millis(ms.saturating_sub(then)))
    }

    /// At start, wall time `at`: what passed while the bridge was stopped
    /// (midnight, a bedtime boundary) is taken now.
    pub(super) fn begin(&mut self, cx: &mut Cx, commands: &mut Commands, at: SystemTime) {
        if cx.cfg.glance.is_none() {
            return;
        }
        self.clock = Some((cx.now, unix_ms(at)));
        self.due = Some(cx.now);
        self.on_tick(cx, commands);
    }

    /// Midnight, bedtime's boundaries and lines said by now (other concerns'
    /// ticks cost nothing here).
    pub(super) fn on_tick(&mut self, cx: &mut Cx, commands: &mut Commands) {
        if self.due.is_none_or(|due| due > cx.now) {
            return;
        }
        let (Some(zone), Some(now)) = (cx.cfg.glance.clone(), self.wall(cx.now)) else { return };
        let said = take_due(&mut self.saying, |s| matches!(s, Saying::Until(t) if *t <= cx.now));
        for sn in said {
            turn_down(cx, commands, &sn);
        }
        let today = zone.day(now).to_string();
        let sns: Vec<Sn> = cx.toys.sns().cloned().collect();
        for sn in &sns {
            let limits = &cx.toys.toy(sn).limits.saved;
            if limits.reached.as_ref().is_some_and(|r| r.day != today) {
                cx.toys.toy_mut(sn).limits.saved.reached = None;
                cx.out.save = true;
                self.end(cx, commands, sn, QuietBy::Limit, "a new day, the daily limit starts again");
            }
            self.bedtime(cx, commands, sn, &zone, now, false);
        }
        self.plan(cx);
    }

    /// When to look again: the next line's end, midnight, or bedtime boundary.
    fn plan(&mut self, cx: &Cx) {
        let (Some(zone), Some(now)) = (&cx.cfg.glance, self.wall(cx.now)) else { return };
        let lines = self.saying.values().filter_map(|s| match s {
            Saying::Until(t) => Some(*t),
            Saying::Sent(_) => None,
        });
        let limited = cx.toys.iter().any(|(_, t)| t.limits.saved.reached.is_some());
        let midnight = limited.then(|| zone.next_midnight(now));
        let boundaries = cx.toys.iter().filter_map(|(_, t)| next_boundary(zone, &t.limits.saved, now));
        let walls: Vec<u64> = midnight.into_iter().chain(boundaries).collect();
        let walls = walls.into_iter().filter_map(|ms| self.instant(ms));
        self.due = lines.chain(walls).min();
    }

    /// The toy talked (`said`: the toy, else the child): its limit is
    /// looked at, and who answers it learnt.
    pub(super) fn talked(&mut self, cx: &mut Cx, commands: &mut Commands, sn: &Sn, said: bool) {
        let limits = &mut cx.toys.toy_mut(sn).limits;
        if !said {
            limits.screened = false;
        } else if limits.saved.brain != limits.screened {
            limits.saved.brain = limits.screened;
            cx.out.save = true;
        }
        if said && cx.toys.toy(sn).limits.saved.quiet_by.is_some() && !self.saying.contains_key(sn) {
            // Quiet by a rule, and answered by FoloToy's own AI after all.
            turn_down(cx, commands, sn);
        }
        self.check(cx, commands, sn);
    }

    /// Whether the limit is reached now, or no longer (a new limit). A toy
    /// with no limit costs one comparison per sentence: no time zone lookup.
    fn check(&mut self, cx: &mut Cx, commands: &mut Commands, sn: &Sn) {
        let toy = cx.toys.toy(sn);
        let (limit, talked) = (toy.limits.saved.daily_limit, toy.today.tally().talk_minutes());
        if limit == 0 && toy.limits.saved.reached.is_none() {
            return;
        }
        let (Some(zone), Some(now)) = (&cx.cfg.glance, self.wall(cx.now)) else { return };
        let today = zone.day(now).to_string();
        let toy = cx.toys.toy(sn);
        let over = limit > 0 && talked >= u64::from(limit);
        let reached_today = toy.limits.saved.reached.as_ref().is_some_and(|r| r.day == today);
        if over && !reached_today {
            self.reach(cx, commands, sn, today, talked);
        } else if !over && reached_today {
            cx.toys.toy_mut(sn).limits.saved.reached = None;
            cx.out.save = true;
            self.end(cx, commands, sn, QuietBy::Limit, "the daily limit is no longer reached");
        }
    }

    /// The limit is reached: the Alert event, the toy quiet, its goodbye.
    fn reach(&mut self, cx: &mut Cx, commands: &mut Commands, sn: &Sn, day: String, talked: u64) {
        let limit = cx.toys.toy(sn).limits.saved.daily_limit;
        let topic = cx.cfg.topics.state(sn, Key::Alert.as_str());
        cx.log(Level::Info, &topic, format!("toy {sn} talked {talked} min today: its daily limit ({limit} min)"));
        if cx.connected.ha {
            cx.out.event(topic, ha::states::limit_event(talked, limit));
        }
        let limits = &mut cx.toys.toy_mut(sn).limits.saved;
        limits.reached = Some(Reached { day, lifted: false });
        cx.out.save = true;
        self.rest(cx, commands, sn, QuietBy::Limit, "its daily limit is reached");
        self.plan(cx);
    }

    /// The toy quiet by `by`, and its line said. One quiet by a rule already
    /// says nothing more (bedtime takes over from the limit, which it ends
    /// with if the limit still holds then); one a parent made quiet says no
    /// line either.
    fn rest(&mut self, cx: &mut Cx, commands: &mut Commands, sn: &Sn, by: QuietBy, why: &str) {
        let toy = cx.toys.toy(sn);
        let was_quiet = toy.own.quiet();
        if was_quiet && toy.limits.saved.quiet_by.is_some() {
            if by == QuietBy::Bedtime {
                cx.toys.toy_mut(sn).limits.saved.quiet_by = Some(by);
                cx.out.save = true;
            }
            return;
        }
        own_settings::set_quiet_by_rule(cx, sn, true, why);
        cx.toys.toy_mut(sn).limits.saved.quiet_by = Some(by);
        cx.out.save = true;
        let toy = cx.toys.toy(sn);
        // Home Assistant's brain says the line itself, when next asked (see `Watching::screen`).
        if toy.limits.saved.brain || toy.kind() == ToyKind::Cloud || !cx.connected.folotoy {
            return;
        }
        if was_quiet {
            return turn_down(cx, commands, sn);
        }
        let line = toy.limits.line(by, chinese(toy)).to_owned();
        let key = if by == QuietBy::Bedtime { Key::BedtimeLine } else { Key::GoodbyeLine };
        let msg_id = commands.send(cx, sn, Waiting::asked(key, ToyCommand::Say(line.clone()), line));
        self.saying.insert(sn.clone(), Saying::Sent(msg_id));
    }

    /// `by` no longer keeps the toy quiet: Quiet off (unless today's limit
    /// still holds), its volume back.
    fn end(&mut self, cx: &mut Cx, commands: &mut Commands, sn: &Sn, by: QuietBy, why: &str) {
        if cx.toys.toy(sn).limits.saved.quiet_by != Some(by) {
            return;
        }
        let today = self.wall(cx.now).zip(cx.cfg.glance.as_ref()).map(|(ms, z)| z.day(ms).to_string());
        if by == QuietBy::Bedtime && today.is_some_and(|d| cx.toys.toy(sn).limits.holds(&d)) {
            cx.toys.toy_mut(sn).limits.saved.quiet_by = Some(QuietBy::Limit);
            return;
        }
        cx.toys.toy_mut(sn).limits.saved.quiet_by = None;
        own_settings::set_quiet_by_rule(cx, sn, false, why);
        self.turn_up(cx, commands, sn);
    }

    /// The volume from before the toy was turned down goes back.
    fn turn_up(&mut self, cx: &mut Cx, commands: &mut Commands, sn: &Sn) {
        self.saying.remove(sn);
        if let Some(volume) = cx.toys.toy_mut(sn).limits.saved.turned_down.take() {
            announcements::put_back(cx, commands, sn, volume);
        }
    }

    /// Bedtime's boundary for the toy, if one passed since the last taken
    /// (`anew`: the settings changed, so where `now` falls is taken as is).
    fn bedtime(&mut self, cx: &mut Cx, commands: &mut Commands, sn: &Sn, zone: &Zone, now: u64, anew: bool) {
        let saved = &cx.toys.toy(sn).limits.saved;
        let Some((at, edge)) = last_boundary(zone, saved, now).filter(|_| saved.bedtime) else {
            return self.end(cx, commands, sn, QuietBy::Bedtime, "bedtime is off");
        };
        let taken = saved.boundary_ms;
        if !anew && taken.is_some_and(|t| t >= at) {
            return;
        }
        cx.toys.toy_mut(sn).limits.saved.boundary_ms = Some(at);
        cx.out.save = true;
        let quiet_by = cx.toys.toy(sn).limits.saved.quiet_by;
        match edge {
            Edge::Begins if quiet_by != Some(QuietBy::Bedtime) => {
                self.rest(cx, commands, sn, QuietBy::Bedtime, "bedtime")
            }
            // Bedtime turned on outside it, or first seen outside it: a parent's Quiet stays.
            Edge::Ends if anew || taken.is_none() => self.end(cx, commands, sn, QuietBy::Bedtime, "outside bedtime"),
            Edge::Ends => {
                cx.toys.toy_mut(sn).limits.saved.quiet_by.get_or_insert(QuietBy::Bedtime);
                self.end(cx, commands, sn, QuietBy::Bedtime, "bedtime is over");
            }
            Edge::Begins => {}
        }
    }

    /// A parent changed a part of the daily limit or bedtime.
    pub(super) fn set(&mut self, cx: &mut Cx, commands: &mut Commands, sn: &Sn, setting: LimitSetting) {
        let limits = &mut cx.toys.toy_mut(sn).limits.saved;
        let key = match setting {
            LimitSetting::DailyLimit(minutes) => {
                limits.daily_limit = minutes;
                Key::DailyLimit
            }
            LimitSetting::GoodbyeLine(line) => {
                limits.goodbye_line = line;
                Key::GoodbyeLine
            }
            LimitSetting::BedtimeLine(line) => {
                limits.bedtime_line = line;
                Key::BedtimeLine
            }
            LimitSetting::AllowMore => return self.allow_more(cx, commands, sn),
            LimitSetting::Bedtime(on) => {
                limits.bedtime = on;
                Key::Bedtime
            }
            LimitSetting::BedtimeFrom(t) => {
                limits.bedtime_from = t;
                Key::BedtimeFrom
            }
            LimitSetting::BedtimeUntil(t) => {
                limits.bedtime_until = t;
                Key::BedtimeUntil
            }
        };
        cx.publish(sn, key);
        cx.out.save = true;
        if key == Key::DailyLimit {
            self.check(cx, commands, sn);
        } else if let (Some(zone), Some(now)) = (cx.cfg.glance.clone(), self.wall(cx.now)) {
            if matches!(key, Key::Bedtime | Key::BedtimeFrom | Key::BedtimeUntil) {
                self.bedtime(cx, commands, sn, &zone, now, true);
            }
        }
        self.plan(cx);
    }

    /// "Allow more talk today": today's limit no longer holds.
    fn allow_more(&mut self, cx: &mut Cx, commands: &mut Commands, sn: &Sn) {
        let topic = cx.cfg.topics.command(sn, Key::AllowMoreTalk.as_str());
        let Some(reached) = cx.toys.toy_mut(sn).limits.saved.reached.as_mut().filter(|r| !r.lifted) else {
            return cx.log(Level::Info, &topic, format!("toy {sn} has not reached its daily limit: nothing to lift"));
        };
        reached.lifted = true;
        cx.out.save = true;
        cx.log(Level::Info, &topic, format!("toy {sn} may talk on today: its daily limit is lifted until midnight"));
        self.end(cx, commands, sn, QuietBy::Limit, "a parent allowed more talk today");
    }

    /// A parent switched Quiet: off wins until the next boundary, and lifts
    /// today's limit (on changes nothing of a rule's quiet, which still ends it).
    pub(super) fn parent_quiet(&mut self, cx: &mut Cx, commands: &mut Commands, sn: &Sn, on: bool) {
        if on {
            return;
        }
        let limits = &mut cx.toys.toy_mut(sn).limits.saved;
        limits.quiet_by = None;
        if let Some(r) = limits.reached.as_mut() {
            r.lifted = true;
        }
        cx.out.save = true;
        self.turn_up(cx, commands, sn);
    }

    /// The bridge checked an answer for the toy: Home Assistant's brain answers it.
    pub(super) fn screened(&mut self, cx: &mut Cx, sn: &Sn) {
        let limits = &mut cx.toys.toy_mut(sn).limits;
        limits.screened = true;
        if !limits.saved.brain {
            limits.saved.brain = true;
            cx.out.save = true;
        }
    }

    /// A command ended: a line said is guessed to play for its length, then the toy is turned down.
    pub(super) fn answered(&mut self, cx: &mut Cx, ended: &Ended) {
        let Some(Saying::Sent(msg_id)) = self.saying.get(&ended.sn) else { return };
        if *msg_id != ended.msg_id {
            return;
        }
        let ToyCommand::Say(line) = &ended.command.request else { return };
        let until = cx.now + speaking_time(line);
        self.saying.insert(ended.sn.clone(), Saying::Until(until));
        self.plan(cx);
    }

    /// A parent set the toy's volume: it wins over the one from before.
    pub(super) fn volume_set(&mut self, cx: &mut Cx, sn: &Sn) {
        if cx.toys.toy_mut(sn).limits.saved.turned_down.take().is_some() {
            cx.out.save = true;
        }
    }

    /// FoloToy's broker is back: toys quiet by a rule are turned down now.
    pub(super) fn folotoy_up(&mut self, cx: &mut Cx, commands: &mut Commands) {
        let resting: Vec<Sn> = cx
            .toys
            .iter()
            .filter(|(sn, t)| t.limits.saved.quiet_by.is_some() && !self.saying.contains_key(*sn))
            .map(|(sn, _)| sn.clone())
            .collect();
        for sn in resting {
            turn_down(cx, commands, &sn);
        }
    }

    pub(super) fn forget(&mut self, sn: &Sn) {
        self.saying.remove(sn);
    }
}

/// Turns a quiet toy answered by FoloToy's own AI down to volume 0, keeping
/// the volume to put back; not one whose volume is not known (it could not
/// be put back), nor a cloud toy (its channel has no volume).
fn turn_down(cx: &mut Cx, commands: &mut Commands, sn: &Sn) {
    let toy = cx.toys.toy(sn);
    let limits = &toy.limits.saved;
    if limits.quiet_by.is_none() || limits.brain || limits.turned_down.is_some() || toy.kind() == ToyKind::Cloud {
        return;
    }
    if !cx.connected.folotoy || commands.busy(sn, Slot::Setting(Setting::Volume)).is_some() {
        return;
    }
    let topic = folotoy::topics::command(sn);
    let Some(volume) = toy.confirmed.settings().get(Setting::Volume) else {
        let why = "its volume is not known (set it once in Home Assistant), so none could be put back";
        return cx.log(Level::Info, &topic, format!("toy {sn} is not turned down: {why}"));
    };
    if volume.as_f64() == 0.0 {
        return;
    }
    cx.toys.toy_mut(sn).limits.saved.turned_down = Some(volume);
    cx.out.save = true;
    let down = Value::Int(0);
    let raw = format!("{down} (quiet until the limit or bedtime ends)");
    commands.send(
        cx,
        sn,
        Waiting { entity: Key::PlayerVolume, request: ToyCommand::Set(Setting::Volume, down), raw, restore: false },
    );
}

/// The boundaries of the day `day`, if bedtime is a span at all.
fn boundaries(zone: &Zone, limits: &LimitsState, day: Date) -> Option<[(u64, Edge); 2]> {
    let (from, until) = (limits.bedtime_from, limits.bedtime_until);
    (from != until).then(|| [(zone.at(day, from), Edge::Begins), (zone.at(day, until), Edge::Ends)])
}

/// The last boundary at or before `now` (yesterday's, or today's).
fn last_boundary(zone: &Zone, limits: &LimitsState, now: u64) -> Option<(u64, Edge)> {
    let today = zone.day(now);
    let days = [today.yesterday().ok()?, today];
    let all = days.into_iter().filter_map(|d| boundaries(zone, limits, d)).flatten();
    all.filter(|(t, _)| *t <= now).max_by_key(|(t, _)| *t)
}

/// The next boundary after `now`, when bedtime is on.
fn next_boundary(zone: &Zone, limits: &LimitsState, now: u64) -> Option<u64> {
    if !limits.bedtime {
        return None;
    }
    let today = zone.day(now);
    let days = [today, today.tomorrow().ok()?];
    let all = days.into_iter().filter_map(|d| boundaries(zone, limits, d)).flatten();
    all.map(|(t, _)| t).filter(|t| *t > now).min()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::folotoy::messages::Ack;
    use crate::glance::TimeOfDay;

    /// 2026-11-25 12:00 UTC, in ms since the Unix epoch (the bench's zone is UTC).
    const NOON: u64 = 1_795_608_000_000;
    const MIN: u64 = 60_000;
    const HOUR: u64 = 60 * MIN;

    /// Every concern on the bench, the wall clock at NOON at `t0`.
    struct Toy {
        b: Bench,
        c: Concerns,
    }

    impl Toy {
        fn new(limits: LimitsState) -> Toy {
            let mut saved = bunny_at_volume(30);
            saved.get_mut(&bunny()).unwrap().limits = limits;
            Toy::restart(saved, Duration::ZERO)
        }

        /// The bridge starting `after` NOON with `saved`.
        fn restart(saved: BTreeMap<Sn, ToyState>, after: Duration) -> Toy {
            let mut b = Bench::saved(config(), saved, BTreeMap::new());
            b.t0 += after;
            b.now = b.t0;
            let mut c = concerns();
            let wall = std::time::UNIX_EPOCH + Duration::from_millis(NOON) + after;
            c.limits.begin(&mut b.cx(), &mut c.commands, wall);
            Toy { b, c }
        }

        /// `input` at `ms` after NOON.
        fn at(&mut self, ms: u64, input: impl FnOnce(SystemTime) -> Input) -> Output {
            let after = Duration::from_millis(ms);
            self.b.now = self.start() + after;
            let wall = std::time::UNIX_EPOCH + Duration::from_millis(NOON) + after;
            self.c.route(&mut self.b.cx(), input(wall));
            self.b.take()
        }

        /// The instant the wall clock read NOON.
        fn start(&self) -> Instant {
            self.c.limits.clock.map(|(at, ms)| at - Duration::from_millis(ms - NOON)).unwrap()
        }

        fn saved(&self) -> &LimitsState {
            self.b.toy(&bunny()).limits.saved()
        }

        fn quiet(&self) -> bool {
            self.b.toy(&bunny()).own.quiet()
        }
    }

    fn event(event: ToyEvent) -> impl FnOnce(SystemTime) -> Input {
        let topic = format!("/sys/folotoy/{BUNNY}/thing/event/post");
        move |at| Input::FoloToy { topic, msg: Inbound::Event { sn: bunny(), event }, at }
    }

    fn child(text: &str) -> impl FnOnce(SystemTime) -> Input {
        event(ToyEvent::RecordingTranscribed { recording_id: Some(1), text: text.into() })
    }

    fn toy_says(order: i64, text: &str) -> impl FnOnce(SystemTime) -> Input {
        let text = text.into();
        event(ToyEvent::VoiceGenerated { recording_id: Some(1), order: Some(order), text, voice_url: None, role: None })
    }

    fn command(key: &str, payload: &str) -> impl FnOnce(SystemTime) -> Input {
        let msg = HaInbound::Command { sn: BUNNY.into(), key: key.into(), payload: payload.into() };
        let topic = format!("folotoy/{BUNNY}/{key}/set");
        move |at| Input::Ha { topic, msg, at }
    }

    fn ack(identifier: &str, msg_id: u32) -> impl FnOnce(SystemTime) -> Input {
        let ack = Ack { identifier: identifier.into(), msg_id, ok: true };
        let topic = format!("/sys/folotoy/{BUNNY}/thing/command/callAck");
        move |at| Input::FoloToy { topic, msg: Inbound::CallAck { sn: bunny(), ack }, at }
    }

    fn screen(id: &str) -> impl FnOnce(SystemTime) -> Input {
        let msg = HaInbound::Screen { id: id.into(), sn: Some(BUNNY.into()), text: "Fish swim.".into() };
        move |at| Input::Ha { topic: "folotoy/bridge/screen/check".into(), msg, at }
    }

    fn tick(_: SystemTime) -> Input {
        Input::Tick
    }

    fn limit(minutes: u16) -> LimitsState {
        LimitsState { daily_limit: minutes, ..LimitsState::default() }
    }

    fn alerts(out: &Output) -> Vec<serde_json::Value> {
        let sent = out.publish.iter().filter(|p| p.topic == format!("folotoy/{BUNNY}/alert"));
        sent.map(|p| serde_json::from_slice(&p.payload).unwrap()).collect()
    }

    /// A child's question and the toy's answer 3 s later: a minute of talk.
    fn a_minute_of_talk(t: &mut Toy, at: u64) -> Output {
        assert!(alerts(&t.at(at, child("Tell me a story"))).is_empty());
        t.at(at + 3_000, toy_says(1, "Once upon a time..."))
    }

    #[test]
    fn the_limit_reached_fires_one_alert_says_the_goodbye_once_and_then_turns_the_toy_down() {
        let mut t = Toy::new(limit(1));
        let out = a_minute_of_talk(&mut t, 0);
        let alert = &alerts(&out)[0];
        assert_eq!(alert, &serde_json::json!({"event_type": "limit_reached", "talk_minutes": 1, "daily_limit": 1}));
        assert_eq!(out.state_of(&bunny(), Key::Quiet).as_deref(), Some("ON"));
        let sent = out.folotoy_payloads();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0]["identifier"], "iwantplay");
        assert_eq!(sent[0]["inputParams"]["text"], GOODBYE[0]);
        assert!(out.save);

        let out = t.at(4_000, toy_says(2, "there was a rabbit."));
        assert!(alerts(&out).is_empty() && out.folotoy_payloads().is_empty(), "once: {:?}", out.publish);
        assert!(t.at(5_000, ack("iwantplay", 1)).folotoy_payloads().is_empty(), "the line plays first");
        let played = 5_000 + speaking_time(GOODBYE[0]).as_millis() as u64;
        assert_eq!(t.c.limits.next_deadline(), Some(t.start() + Duration::from_millis(played)));
        let sent = t.at(played, tick).folotoy_payloads();
        assert_eq!(sent[0]["inputParams"], serde_json::json!({"volume": 0}), "{sent:?}");
        assert_eq!(t.saved().turned_down, Some(Value::Int(30)));
    }

    #[test]
    fn deleting_todays_history_recounts_talk_time_but_leaves_the_reached_limit_in_place() {
        let mut t = Toy::new(limit(1));
        a_minute_of_talk(&mut t, 0);
        assert!(t.quiet());
        let at = std::time::UNIX_EPOCH + Duration::from_millis(NOON + 10_000);
        let forget = crate::history::Forget::Toy(bunny());
        t.c.talk.forgotten(&mut t.b.cx(), &forget, &Default::default(), Some(Vec::new()), at);
        let out = t.b.take();
        assert_eq!(out.state_of(&bunny(), Key::TalkTimeToday).as_deref(), Some("0"), "recounted");
        assert!(t.quiet() && t.saved().reached.is_some(), "only Allow more talk today lifts it");
        assert!(t.saved().quiet_by == Some(QuietBy::Limit));
    }

    #[test]
    fn midnight_ends_the_limit_and_puts_the_volume_back_whatever_a_parent_switched_on_meanwhile() {
        let mut t = Toy::new(limit(1));
        a_minute_of_talk(&mut t, 0);
        t.at(5_000, ack("iwantplay", 1));
        t.at(10 * MIN, tick);
        t.at(10 * MIN + 1, ack("updatecommonconfig", 2));
        t.at(11 * HOUR, command("quiet", "ON")); // a parent's Quiet on changes nothing of the limit's
        let midnight = 12 * HOUR;
        assert_eq!(t.c.limits.next_deadline(), Some(t.start() + Duration::from_millis(midnight)));
        assert!(t.at(midnight - 1, tick).folotoy_payloads().is_empty());
        assert!(t.quiet());
        let out = t.at(midnight, tick);
        assert_eq!(out.state_of(&bunny(), Key::Quiet).as_deref(), Some("OFF"));
        assert_eq!(out.folotoy_payloads()[0]["inputParams"], serde_json::json!({"volume": 30}));
        assert_eq!(t.saved().reached, None);
        assert_eq!(t.saved().quiet_by, None);
    }

    #[test]
    fn allow_more_talk_lifts_the_limit_until_midnight_and_so_does_a_parents_quiet_off() {
        for (key, payload) in [("allow_more_talk", "PRESS"), ("quiet", "OFF")] {
            let mut t = Toy::new(limit(1));
            a_minute_of_talk(&mut t, 0);
            let out = t.at(MIN, command(key, payload));
            assert_eq!(out.state_of(&bunny(), Key::Quiet).as_deref(), Some("OFF"), "{key}");
            assert!(t.saved().reached.as_ref().unwrap().lifted, "{key}");
            let out = a_minute_of_talk(&mut t, 2 * MIN);
            assert!(alerts(&out).is_empty() && !t.quiet(), "{key}: lifted for the rest of the day");
        }
    }

    #[test]
    fn a_limit_reached_within_bedtime_keeps_the_toy_quiet_until_bedtime_ends_not_until_midnight() {
        let mut t = Toy::new(LimitsState { daily_limit: 1, ..bedtime((20, 0), (7, 0)) });
        t.at(8 * HOUR, tick);
        assert!(t.quiet());
        t.at(8 * HOUR + 1, ack("iwantplay", 1));
        let out = a_minute_of_talk(&mut t, 9 * HOUR);
        assert_eq!(alerts(&out).len(), 1, "the limit is reached all the same");
        assert!(out.folotoy_payloads().iter().all(|p| p["identifier"] != "iwantplay"), "no goodbye in the night");
        assert!(t.at(12 * HOUR, tick).state_of(&bunny(), Key::Quiet).is_none(), "midnight is within bedtime");
        assert!(t.quiet());
        let out = t.at(19 * HOUR, tick);
        assert_eq!(out.state_of(&bunny(), Key::Quiet).as_deref(), Some("OFF"), "07:00");
    }

    #[test]
    fn the_verdict_carries_the_line_in_the_childs_language_while_a_rule_keeps_the_toy_quiet() {
        let verdict = |out: &Output, id: &str| -> serde_json::Value {
            serde_json::from_str(&out.last_on(&format!("folotoy/bridge/screen/verdict/{id}")).unwrap()).unwrap()
        };
        let mut t = Toy::new(limit(1));
        assert_eq!(verdict(&t.at(0, screen("r0")), "r0").get("line"), None);
        t.at(1_000, child("给我讲个故事"));
        t.at(2_000, screen("r1"));
        let out = t.at(4_000, toy_says(1, "从前..."));
        assert!(out.folotoy_payloads().is_empty(), "answered by Home Assistant's brain: it says the line itself");
        let v = verdict(&t.at(5_000, screen("r2")), "r2");
        assert_eq!((v["quiet"].as_bool(), v["line"].as_str()), (Some(true), Some(GOODBYE[1])));
        t.at(6_000, command("goodbye_line", "Bye for today!"));
        assert_eq!(verdict(&t.at(7_000, screen("r3")), "r3")["line"], "Bye for today!");
        t.at(8_000, command("quiet", "ON"));
        assert_eq!(verdict(&t.at(8_500, screen("r4")), "r4")["line"], "Bye for today!", "still the limit's");
        t.at(9_000, command("quiet", "OFF"));
        t.at(9_500, command("quiet", "ON"));
        assert_eq!(verdict(&t.at(10_000, screen("r5")), "r5").get("line"), None, "a parent's quiet has no line");
    }

    #[test]
    fn a_cloud_toy_reaching_its_limit_is_sent_nothing_and_its_brain_is_told_the_line() {
        let owl = sn("aabbccddeeff");
        let cloud =
            ToyState { kind: ToyKind::Cloud, name: Some("Owl".into()), limits: limit(1), ..ToyState::default() };
        let mut b = Bench::saved(config(), BTreeMap::from([(owl.clone(), cloud)]), BTreeMap::new());
        let mut c = concerns();
        let noon = std::time::UNIX_EPOCH + Duration::from_millis(NOON);
        c.limits.begin(&mut b.cx(), &mut c.commands, noon);
        let topic = "folotoy/aabbccddeeff/cloud/event";
        let heard = ToyEvent::RecordingTranscribed { recording_id: Some(1), text: "Hi Owl".into() };
        c.on_event(&mut b.cx(), &owl, topic, heard, noon);
        let said = ToyEvent::VoiceGenerated {
            recording_id: Some(1),
            order: Some(1),
            text: "Hoo!".into(),
            voice_url: None,
            role: None,
        };
        c.on_event(&mut b.at(Duration::from_secs(3)).cx(), &owl, topic, said, noon + Duration::from_secs(3));
        let out = b.take();
        assert_eq!(out.state_of(&owl, Key::Quiet).as_deref(), Some("ON"));
        assert!(out.publish.iter().all(|p| !p.command), "no notify, no volume: {:?}", out.publish);
        let msg = HaInbound::Screen { id: "r1".into(), sn: Some(owl.to_string()), text: "Hoo.".into() };
        c.route(&mut b.cx(), Input::Ha { topic: "folotoy/bridge/screen/check".into(), msg, at: noon });
        let verdict = b.take().last_on("folotoy/bridge/screen/verdict/r1").unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&verdict).unwrap()["line"], GOODBYE[0]);
    }

    fn bedtime(from: (u16, u16), until: (u16, u16)) -> LimitsState {
        LimitsState {
            bedtime: true,
            bedtime_from: TimeOfDay::hm(from.0, from.1).unwrap(),
            bedtime_until: TimeOfDay::hm(until.0, until.1).unwrap(),
            boundary_ms: Some(NOON),
            ..LimitsState::default()
        }
    }

    #[test]
    fn bedtime_begins_and_ends_at_its_boundaries_and_a_parents_change_wins_until_the_next() {
        let mut t = Toy::new(bedtime((20, 0), (7, 0)));
        assert!(!t.quiet());
        assert_eq!(t.c.limits.next_deadline(), Some(t.start() + Duration::from_millis(8 * HOUR)));
        let out = t.at(8 * HOUR, tick);
        assert_eq!(out.state_of(&bunny(), Key::Quiet).as_deref(), Some("ON"));
        assert_eq!(out.folotoy_payloads()[0]["inputParams"]["text"], GOOD_NIGHT[0]);
        // A parent lets the toy talk tonight: it stays so until the morning's boundary.
        t.at(9 * HOUR, command("quiet", "OFF"));
        assert!(t.at(10 * HOUR, tick).state_of(&bunny(), Key::Quiet).is_none());
        t.at(18 * HOUR, command("quiet", "ON"));
        let out = t.at(19 * HOUR, tick);
        assert_eq!(out.state_of(&bunny(), Key::Quiet).as_deref(), Some("OFF"), "07:00, bedtime is over");
        assert_eq!(t.c.limits.next_deadline(), Some(t.start() + Duration::from_millis(32 * HOUR)), "20:00 again");
    }

    #[test]
    fn a_bedtime_boundary_passed_while_the_bridge_was_stopped_is_taken_at_its_start_and_one_inside_it_is_kept() {
        let mut t = Toy::new(bedtime((20, 0), (7, 0)));
        t.at(8 * HOUR, tick);
        t.at(8 * HOUR + 1, ack("iwantplay", 1));
        let played = 8 * HOUR + 1 + speaking_time(GOOD_NIGHT[0]).as_millis() as u64;
        t.at(played, tick);
        assert_eq!(t.saved().turned_down, Some(Value::Int(30)));
        let saved = BTreeMap::from([(bunny(), t.b.toy(&bunny()).saved())]);

        // Restarted at 23:00, inside bedtime: nothing more is said or changed.
        let mut inside = Toy::restart(saved.clone(), Duration::from_millis(11 * HOUR));
        let out = inside.b.take();
        assert!(inside.quiet() && out.folotoy_payloads().is_empty() && out.logs.is_empty(), "{:?}", out.logs);
        // Restarted at 08:00, after it: quiet off, the volume owed goes back once FoloToy is up.
        let mut after = Toy::restart(saved, Duration::from_millis(20 * HOUR));
        assert!(!after.quiet());
        let out = after.at(20 * HOUR, |_| Input::FoloToyUp);
        assert_eq!(out.folotoy_payloads()[0]["inputParams"], serde_json::json!({"volume": 30}));
    }
}
