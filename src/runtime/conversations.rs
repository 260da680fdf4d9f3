//! Home Assistant's `folotoy.get_conversation`: a toy's exchanges in a time
//! window, read from the conversation history and answered over MQTT, so the
//! integration gets them wherever the bridge runs.
//!
//! A request on `<base>/bridge/conversation/get`:
//! `{"id": "<1..64 of A-Z a-z 0-9 _ ->", "sn": "<serial>", "from_ms": <ms>, "to_ms": <ms>}`
//! (the window is the caller's: Home Assistant knows its time zone, the bridge
//! does not). The answer, on `<base>/bridge/conversation/response/<id>`, not
//! retained: `{"id", "sn", "messages": [{"t", "kind", "text", "role"}], "truncated",
//! "days": [{"day", "exchanges", "talk_minutes", "alerts": {"<category>": n}}]}` (messages
//! oldest first; the newest [`MAX_MESSAGES`] messages and at most [`MAX_BYTES`] of them;
//! `days` counts every sentence of the window, left out or not, by the day at a glance's
//! rule, and the sentences that hold a phrase watched now, by its category (`own` for the
//! parent's words); oldest day first, days without a sentence left out) or `{"id", "error"}`. A request without a usable id is only
//! warned about: there is nowhere to answer it.
//!
//! Nothing here is the core's to decide (no toy's state changes), so the
//! runtime handles it beside the core, which only says which toys it knows;
//! the history is read on a blocking thread, never on the bridge's loop.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::link::{AsyncClient, QoS};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tracing::warn;

use crate::folotoy::Sn;
use crate::glance::{self, DaySummary, Zone};
use crate::ha::states::OWN_WORDS;
use crate::ha::Topics;
use crate::history::{Line, LineKind, Message, Reader};
use crate::watch::{Speaker, WatchWords};

/// The most messages in one answer (the newest of the window).
pub const MAX_MESSAGES: usize = 500;
/// The most bytes of messages in one answer (their JSON), under Home Assistant's
/// and most brokers' limits, and far under the bridge's own 1 MiB.
pub const MAX_BYTES: usize = 256 * 1024;
/// The longest window: a week in any time zone, across a change of clocks, fits
/// (a weekly report asks for seven days).
pub const MAX_WINDOW_MS: u64 = 8 * 86_400_000;
/// The longest request id (a topic level of the answer's topic).
pub const MAX_ID: usize = 64;
/// The largest request accepted.
pub(super) const MAX_REQUEST: usize = 4096;
/// Requests read at once; more are answered "busy".
const AT_ONCE: usize = 4;

/// A request as it arrives.
#[derive(Debug, Deserialize)]
struct Raw {
    id: Option<serde_json::Value>,
    sn: Option<serde_json::Value>,
    from_ms: Option<serde_json::Value>,
    to_ms: Option<serde_json::Value>,
}

/// A request that reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: String,
    pub sn: String,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// A request refused, and why; with an id, the refusal is answered too.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub id: Option<String>,
    pub reason: String,
}

pub(super) fn refused(id: Option<&str>, reason: impl Into<String>) -> Refused {
    Refused { id: id.map(str::to_owned), reason: reason.into() }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads a request; the window's checks need no history.
pub fn parse(payload: &[u8], retained: bool) -> Result<Request, Refused> {
    if retained {
        // Kept by the broker from an earlier call: whoever asked is gone.
        return Err(refused(None, "retained request ignored: a request is answered only when it is sent"));
    }
    if payload.len() > MAX_REQUEST {
        return Err(refused(None, format!("request of {} bytes is over the {MAX_REQUEST}-byte limit", payload.len())));
    }
    let raw: Raw = serde_json::from_slice(payload)
        .map_err(|e| refused(None, format!("request is not a JSON object with id, sn, from_ms and to_ms: {e}")))?;
    let id = request_id(raw.id)?;
    let answer_to = Some(id.as_str());
    let sn = serial_number(raw.sn, answer_to)?;
    let ms = |v: Option<serde_json::Value>, key: &str| {
        v.and_then(|v| v.as_u64()).ok_or_else(|| refused(answer_to, format!("{key} is missing or not a time in ms")))
    };
    let (from_ms, to_ms) = (ms(raw.from_ms, "from_ms")?, ms(raw.to_ms, "to_ms")?);
    if to_ms <= from_ms {
        return Err(refused(answer_to, format!("to_ms {to_ms} is not after from_ms {from_ms}")));
    }
    if to_ms - from_ms > MAX_WINDOW_MS {
        return Err(refused(
            answer_to,
            format!("the window of {} h is longer than {} h", (to_ms - from_ms) / 3_600_000, MAX_WINDOW_MS / 3_600_000),
        ));
    }
    Ok(Request { id, sn, from_ms, to_ms })
}

pub(super) fn request_id(id: Option<serde_json::Value>) -> Result<String, Refused> {
    match id {
        Some(serde_json::Value::String(id)) if valid_id(&id) => Ok(id),
        Some(_) => Err(refused(None, format!("request id is not 1 to {MAX_ID} of the letters, digits, - and _"))),
        None => Err(refused(None, "request has no id, so its answer has no topic")),
    }
}

pub(super) fn serial_number(sn: Option<serde_json::Value>, answer_to: Option<&str>) -> Result<String, Refused> {
    let sn = match sn {
        Some(serde_json::Value::String(sn)) => sn,
        _ => return Err(refused(answer_to, "sn is missing or not text")),
    };
    Sn::parse(&sn).map_err(|e| refused(answer_to, format!("sn {:?} is not a serial number: {e}", cut(&sn))))?;
    Ok(sn)
}

pub(super) fn cut(s: &str) -> String {
    s.chars().take(40).collect()
}

/// One message of an answer.
#[derive(Debug, Serialize)]
struct Out<'a> {
    t: u64,
    kind: LineKind,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<i64>,
}

#[derive(Debug, Serialize)]
struct DayReply<'a> {
    id: &'a str,
    sn: &'a str,
    messages: Vec<Out<'a>>,
    truncated: bool,
    days: &'a [WindowDay],
}

/// A day of the window: how much the toy talked, and the sentences that held a
/// watched phrase, by category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowDay {
    #[serde(flatten)]
    talk: DaySummary,
    alerts: BTreeMap<String, u32>,
}

#[derive(Debug, Serialize)]
struct Refusal<'a> {
    id: &'a str,
    error: &'a str,
}

pub fn error(id: &str, reason: &str) -> Vec<u8> {
    serde_json::to_vec(&Refusal { id, error: reason }).expect("serializes")
}

/// The answer: of `messages` (oldest first, the window's and perhaps one more
/// than [`MAX_MESSAGES`]), those in `[from_ms, to_ms)`, the newest first kept
/// within the limits; and the window's `days`.
pub fn answer(request: &Request, sn: &str, messages: &[Message], days: &[WindowDay]) -> Vec<u8> {
    let within: Vec<&Message> = messages.iter().filter(|m| m.t >= request.from_ms && m.t < request.to_ms).collect();
    let mut kept = Vec::new();
    let mut bytes = 0;
    for m in within.iter().rev() {
        let out = Out { t: m.t, kind: m.kind, text: &m.text, role: m.role.filter(|_| m.kind == LineKind::Said) };
        bytes += serde_json::to_vec(&out).map_or(0, |v| v.len() + 1);
        if kept.len() == MAX_MESSAGES || bytes > MAX_BYTES {
            break;
        }
        kept.push(out);
    }
    let truncated = kept.len() < within.len();
    kept.reverse();
    serde_json::to_vec(&DayReply { id: &request.id, sn, messages: kept, truncated, days }).expect("serializes")
}

/// Answers requests beside the bridge's loop.
pub struct Conversations {
    /// The history, or why there is none.
    reader: Result<Reader, &'static str>,
    /// Where the family's days begin, for the window's `days`; none when the
    /// day at a glance is off.
    zone: Option<Zone>,
    at_once: Arc<Semaphore>,
}

impl Conversations {
    pub fn new(reader: Result<Reader, &'static str>, zone: Option<Zone>) -> Conversations {
        Conversations { reader, zone, at_once: Arc::new(Semaphore::new(AT_ONCE)) }
    }

    /// A message on the request topic: refused with a warning, or read and
    /// answered on a task of its own.
    #[allow(clippy::too_many_arguments)]
    pub fn handle<'a>(
        &self,
        topics: &Topics,
        client: &AsyncClient,
        mut toys: impl Iterator<Item = &'a Sn>,
        watching: &WatchWords,
        topic: &str,
        payload: &[u8],
        retained: bool,
    ) {
        let request = parse(payload, retained).and_then(|r| {
            let wanted = r.sn.to_ascii_lowercase();
            let Some(sn) = toys.find(|s| s.ha_id() == wanted).cloned() else {
                return Err(refused(Some(&r.id), format!("no toy {} is known to the bridge", cut(&r.sn))));
            };
            match &self.reader {
                Ok(reader) => Ok((r, sn, reader.clone())),
                Err(why) => Err(refused(Some(&r.id), format!("the bridge keeps no conversation history: {why}"))),
            }
        });
        let (request, sn, reader) = match request {
            Ok(ok) => ok,
            Err(Refused { id, reason }) => {
                return refuse(topics, client, topic, "conversation request", id, &reason);
            }
        };
        let to = topics.conversation_response(&request.id);
        let Ok(permit) = self.at_once.clone().try_acquire_owned() else {
            warn!(topic = %topic, "conversation request refused: {AT_ONCE} are being read already");
            publish(client.clone(), to, error(&request.id, "busy: too many requests at once; try again"));
            return;
        };
        let client = client.clone();
        let topic = topic.to_owned();
        let zone = self.zone.clone();
        let watching = watching.clone();
        tokio::spawn(async move {
            let read = {
                let now = crate::dates::unix_ms(std::time::SystemTime::now());
                let within = Window { sn: sn.clone(), request: request.clone(), now };
                tokio::task::spawn_blocking(move || read(&reader, &within, zone.as_ref(), &watching)).await
            };
            drop(permit);
            let payload = match read {
                Ok(Ok((messages, days))) => answer(&request, &sn.ha_id(), &messages, &days),
                Ok(Err(e)) => {
                    warn!(topic = %topic, "conversation request {}: {e}", request.id);
                    error(&request.id, &format!("reading the conversation history failed: {e}"))
                }
                Err(e) => error(&request.id, &format!("reading the conversation history failed: {e}")),
            };
            send(&client, to, payload).await;
        });
    }
}

/// What a request reads: a toy's window, at a moment.
struct Window {
    sn: Sn,
    request: Request,
    now: u64,
}

/// The window's newest messages (one more than an answer holds, so it can say
/// it left some out), and its days counted from every sentence in it.
fn read(
    reader: &Reader,
    w: &Window,
    zone: Option<&Zone>,
    watching: &WatchWords,
) -> Result<(Vec<Message>, Vec<WindowDay>), crate::history::HistoryError> {
    let messages = reader.messages(&w.sn, w.request.to_ms, MAX_MESSAGES + 1, w.now)?;
    let Some(zone) = zone else { return Ok((messages, Vec::new())) };
    let lines = reader.lines(&w.sn, w.request.from_ms, w.request.to_ms, w.now)?;
    Ok((messages, window_days(zone, watching, &w.sn, &lines)))
}

/// Each day of `lines` (oldest first): the day at a glance's counts, and how
/// many sentences held a phrase of each category watched for the toy now.
fn window_days(zone: &Zone, watching: &WatchWords, sn: &Sn, lines: &[Line]) -> Vec<WindowDay> {
    let mut alerts: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for line in lines {
        let speaker = if line.kind == LineKind::Heard { Speaker::Child } else { Speaker::Toy };
        let mut categories: Vec<&str> = watching
            .found(Some(sn.as_str()), speaker, &line.text)
            .iter()
            .map(|h| h.category.unwrap_or(OWN_WORDS))
            .collect();
        categories.sort_unstable();
        categories.dedup();
        let day = alerts.entry(zone.day(line.t).to_string()).or_default();
        for c in categories {
            *day.entry(c.to_owned()).or_default() += 1;
        }
    }
    let mut days = glance::by_day(zone, lines.iter().map(|l| (l.t, l.kind)));
    days.reverse();
    days.into_iter().map(|talk| WindowDay { alerts: alerts.remove(&talk.day).unwrap_or_default(), talk }).collect()
}

/// A request refused: warned about, naming `what` and why, and answered when it has an id.
pub(super) fn refuse(topics: &Topics, client: &AsyncClient, topic: &str, what: &str, id: Option<String>, why: &str) {
    warn!(topic = %topic, "{what} refused: {why}");
    if let Some(id) = id {
        publish(client.clone(), topics.conversation_response(&id), error(&id, why));
    }
}

pub(super) fn publish(client: AsyncClient, topic: String, payload: Vec<u8>) {
    tokio::spawn(async move { send(&client, topic, payload).await });
}

/// An answer sent (not retained), or a warning naming its topic.
pub(super) async fn send(client: &AsyncClient, topic: String, payload: Vec<u8>) {
    if let Err(e) = client.publish(topic.clone(), QoS::AtLeastOnce, false, payload).await {
        warn!(topic = %topic, "cannot publish: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(json: &str) -> Request {
        parse(json.as_bytes(), false).unwrap_or_else(|r| panic!("{json} refused: {r:?}"))
    }

    fn no(json: &str) -> Refused {
        parse(json.as_bytes(), false).expect_err(json)
    }

    const DAY: &str = r#""from_ms": 1000, "to_ms": 86401000"#;

    #[test]
    fn a_request_names_its_id_toy_and_window() {
        let r = ok(&format!(r#"{{"id": "a1-b_2", "sn": "fcb467dad0c0", {DAY}, "more": 1}}"#));
        assert_eq!(r, Request { id: "a1-b_2".into(), sn: "fcb467dad0c0".into(), from_ms: 1000, to_ms: 86_401_000 });
    }

    #[test]
    fn without_a_usable_id_there_is_nothing_to_answer() {
        for bad in [
            "not json".to_owned(),
            "[1]".to_owned(),
            format!(r#"{{"sn": "fcb467dad0c0", {DAY}}}"#),
            format!(r#"{{"id": "", "sn": "fcb467dad0c0", {DAY}}}"#),
            format!(r#"{{"id": "a/b", "sn": "fcb467dad0c0", {DAY}}}"#),
            format!(r#"{{"id": "+", "sn": "fcb467dad0c0", {DAY}}}"#),
            format!(r#"{{"id": 7, "sn": "fcb467dad0c0", {DAY}}}"#),
            format!(r#"{{"id": "{}", "sn": "fcb467dad0c0", {DAY}}}"#, "a".repeat(MAX_ID + 1)),
        ] {
            let r = no(&bad);
            assert_eq!(r.id, None, "{bad}: {r:?}");
        }
        assert!(no("not json").reason.contains("not a JSON object"), "{:?}", no("not json"));
        assert!(no(&format!(r#"{{"sn": "x", {DAY}}}"#)).reason.contains("no id"));
    }

    #[test]
    fn a_retained_or_huge_request_is_refused_unanswered() {
        let json = format!(r#"{{"id": "a", "sn": "fcb467dad0c0", {DAY}}}"#);
        let r = parse(json.as_bytes(), true).unwrap_err();
        assert_eq!(r.id, None);
        assert!(r.reason.contains("retained"), "{r:?}");
        let huge = format!(r#"{{"id": "a", "sn": "fcb467dad0c0", {DAY}, "x": "{}"}}"#, "x".repeat(MAX_REQUEST));
        assert!(no(&huge).reason.contains("over the 4096-byte limit"));
    }

    #[test]
    fn a_bad_toy_or_window_is_answered_with_the_reason() {
        for (json, why) in [
            (format!(r#"{{"id": "a", {DAY}}}"#), "sn is missing"),
            (format!(r#"{{"id": "a", "sn": "fcb/67", {DAY}}}"#), "not a serial number"),
            (r#"{"id": "a", "sn": "fcb467dad0c0", "to_ms": 5}"#.to_owned(), "from_ms is missing"),
            (r#"{"id": "a", "sn": "fcb467dad0c0", "from_ms": -1, "to_ms": 5}"#.to_owned(), "from_ms is missing"),
            (r#"{"id": "a", "sn": "fcb467dad0c0", "from_ms": 5, "to_ms": "6"}"#.to_owned(), "to_ms is missing"),
            (r#"{"id": "a", "sn": "fcb467dad0c0", "from_ms": 5, "to_ms": 5}"#.to_owned(), "not after"),
            (
                format!(r#"{{"id": "a", "sn": "fcb467dad0c0", "from_ms": 0, "to_ms": {}}}"#, MAX_WINDOW_MS + 1),
                "longer than 192 h",
            ),
        ] {
            let r = no(&json);
            assert_eq!(r.id.as_deref(), Some("a"), "{json}");
            assert!(r.reason.contains(why), "{json}: {r:?}");
        }
        let whole = format!(r#"{{"id": "a", "sn": "fcb467dad0c0", "from_ms": 0, "to_ms": {MAX_WINDOW_MS}}}"#);
        ok(&whole);
    }

    fn message(t: u64, kind: LineKind, text: &str) -> Message {
        Message { t, kind, text: text.into(), role: Some(2), recording_id: Some(9) }
    }

    fn read(payload: &[u8]) -> serde_json::Value {
        serde_json::from_slice(payload).unwrap()
    }

    #[test]
    fn an_answer_holds_the_windows_messages_oldest_first_without_recording_ids() {
        let request = Request { id: "r".into(), sn: "FCB467DAD0C0".into(), from_ms: 100, to_ms: 200 };
        let messages = [
            message(99, LineKind::Said, "yesterday"),
            message(100, LineKind::Heard, "hello"),
            message(150, LineKind::Said, "hi there"),
            message(200, LineKind::Heard, "tomorrow"),
        ];
        let a = read(&answer(&request, "fcb467dad0c0", &messages, &[]));
        assert_eq!(
            a,
            serde_json::json!({"id": "r", "sn": "fcb467dad0c0", "truncated": false, "days": [], "messages": [
                {"t": 100, "kind": "heard", "text": "hello"},
                {"t": 150, "kind": "said", "text": "hi there", "role": 2},
            ]})
        );
        let none = read(&answer(&request, "fcb467dad0c0", &[], &[]));
        assert_eq!(none["messages"], serde_json::json!([]));
        assert_eq!(none["truncated"], false);
    }

    #[test]
    fn a_long_day_keeps_its_newest_messages_within_the_limits_and_says_so() {
        let request = Request { id: "r".into(), sn: "x".into(), from_ms: 0, to_ms: 10_000 };
        let many: Vec<Message> = (0..=MAX_MESSAGES as u64).map(|t| message(t, LineKind::Heard, "hi")).collect();
        let a = read(&answer(&request, "x", &many, &[]));
        assert_eq!(a["truncated"], true);
        assert_eq!(a["messages"].as_array().unwrap().len(), MAX_MESSAGES);
        assert_eq!(a["messages"][0]["t"], 1, "the oldest left out");
        let exactly = read(&answer(&request, "x", &many[1..], &[]));
        assert_eq!(exactly["truncated"], false);

        let long = "x".repeat(10_000);
        let big: Vec<Message> = (0..100).map(|t| message(t, LineKind::Heard, &long)).collect();
        let payload = answer(&request, "x", &big, &[]);
        let a = read(&payload);
        assert!(payload.len() <= MAX_BYTES + 200, "{}", payload.len());
        assert_eq!(a["truncated"], true);
        let kept = a["messages"].as_array().unwrap();
        assert_eq!(kept.len(), MAX_BYTES / 10_040);
        assert_eq!(kept.last().unwrap()["t"], 99, "the newest kept");
    }

    #[test]
    fn a_weeks_days_count_every_sentence_in_the_window_oldest_day_first() {
        use crate::history::{History, Limits, Line};
        const DAY: u64 = 86_400_000;
        /// 2026-11-30 12:00 UTC.
        const NOON: u64 = 1_796_040_000_000;
        let line = |t: u64, kind: LineKind, text: &str| Line {
            t,
            kind,
            recording_id: Some((t / 1000) as i64),
            order: (kind == LineKind::Said).then_some(1),
            role: None,
            text: text.into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let now = NOON + 8 * DAY;
        let mut h = History::open(dir.path().join("history"), Limits { days: 30, max_bytes: 1 << 20 }, now).unwrap();
        let bunny = Sn::parse("fcb467dad0c0").unwrap();
        for (t, kind, text) in [
            (NOON - DAY, LineKind::Heard, "before the week"),
            (NOON, LineKind::Heard, "monday one"),
            (NOON + 90_000, LineKind::Said, "answer"),
            (NOON + 120_000, LineKind::Heard, "monday two"),
            (NOON + 3 * DAY, LineKind::Heard, "thursday"),
            (NOON + 7 * DAY, LineKind::Heard, "after the week"),
        ] {
            h.append(&bunny, &line(t, kind, text)).unwrap();
        }
        h.sync().unwrap();
        let request = Request { id: "w".into(), sn: bunny.to_string(), from_ms: NOON - DAY / 2, to_ms: NOON + 6 * DAY };
        let within = Window { sn: bunny.clone(), request: request.clone(), now };
        let watching = WatchWords::new([("monday", crate::watch::Sides::Child), ("answer", crate::watch::Sides::Toy)])
            .with_lists([("thursday", crate::watch::Sides::Both, "danger", None)]);
        let (messages, days) = super::read(&h.reader(), &within, Some(&Zone::utc()), &watching).unwrap();
        let shown = |d: &WindowDay| (d.talk.day.clone(), d.talk.exchanges, d.talk.talk_minutes, d.alerts.clone());
        let counts = |pairs: &[(&str, u32)]| pairs.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect();
        assert_eq!(
            days.iter().map(shown).collect::<Vec<_>>(),
            [("2026-11-30".into(), 2, 2, counts(&[("own", 3)])), ("2026-12-03".into(), 1, 0, counts(&[("danger", 1)]))],
            "oldest first; nothing from before or after the window; each sentence with a watched phrase by category"
        );
        let payload = read_json(&answer(&request, "fcb467dad0c0", &messages, &days));
        assert_eq!(
            payload["days"][0],
            serde_json::json!({"day": "2026-11-30", "exchanges": 2, "talk_minutes": 2, "alerts": {"own": 3}})
        );
        assert_eq!(payload["messages"].as_array().unwrap().len(), 4, "{payload}");
        let (_, none) = super::read(&h.reader(), &within, None, &watching).unwrap();
        assert!(none.is_empty(), "no days without the day at a glance's zone");
    }

    fn read_json(payload: &[u8]) -> serde_json::Value {
        serde_json::from_slice(payload).unwrap()
    }

    #[test]
    fn an_error_names_the_request() {
        assert_eq!(read(&error("r", "no toy x")), serde_json::json!({"id": "r", "error": "no toy x"}));
    }
}
