//! Home Assistant's `folotoy.get_conversation`: a toy's exchanges in a time
//! window, read from the conversation history and answered over MQTT, so the
//! integration gets them wherever the bridge runs.
//!
//! A request on `<base>/bridge/conversation/get`:
//! `{"id": "<1..64 of A-Z a-z 0-9 _ ->", "sn": "<serial>", "from_ms": <ms>, "to_ms": <ms>}`
//! (the window is the caller's: Home Assistant knows its time zone, the bridge
//! does not). The answer, on `<base>/bridge/conversation/response/<id>`, not
//! retained: `{"id", "sn", "messages": [{"t", "kind", "text", "role"}], "truncated"}`
//! (oldest first; the newest [`MAX_MESSAGES`] messages and at most [`MAX_BYTES`]
//! of them) or `{"id", "error"}`. A request without a usable id is only
//! warned about: there is nowhere to answer it.
//!
//! Nothing here is the core's to decide (no toy's state changes), so the
//! runtime handles it beside the core, which only says which toys it knows;
//! the history is read on a blocking thread, never on the bridge's loop.

use std::sync::Arc;

use super::link::{AsyncClient, QoS};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};
use tracing::{info, warn};

use crate::folotoy::Sn;
use crate::glance::Zone;
use crate::ha::Topics;
use crate::history::{Forget, Forgotten, HistoryError, LineKind, Message, Reader};
use crate::web::{Forgetting, Forgot};

/// The most messages in one answer (the newest of the window).
pub const MAX_MESSAGES: usize = 500;
/// The most bytes of messages in one answer (their JSON), under Home Assistant's
/// and most brokers' limits, and far under the bridge's own 1 MiB.
pub const MAX_BYTES: usize = 256 * 1024;
/// The longest window: a day in any time zone, across a change of clocks, fits.
pub const MAX_WINDOW_MS: u64 = 2 * 86_400_000;
/// The longest request id (a topic level of the answer's topic).
pub const MAX_ID: usize = 64;
/// The largest request accepted.
const MAX_REQUEST: usize = 4096;
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

fn refused(id: Option<&str>, reason: impl Into<String>) -> Refused {
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
            format!("the window of {} h is longer than 48 h", (to_ms - from_ms) / 3_600_000),
        ));
    }
    Ok(Request { id, sn, from_ms, to_ms })
}

fn request_id(id: Option<serde_json::Value>) -> Result<String, Refused> {
    match id {
        Some(serde_json::Value::String(id)) if valid_id(&id) => Ok(id),
        Some(_) => Err(refused(None, format!("request id is not 1 to {MAX_ID} of the letters, digits, - and _"))),
        None => Err(refused(None, "request has no id, so its answer has no topic")),
    }
}

fn serial_number(sn: Option<serde_json::Value>, answer_to: Option<&str>) -> Result<String, Refused> {
    let sn = match sn {
        Some(serde_json::Value::String(sn)) => sn,
        _ => return Err(refused(answer_to, "sn is missing or not text")),
    };
    Sn::parse(&sn).map_err(|e| refused(answer_to, format!("sn {:?} is not a serial number: {e}", cut(&sn))))?;
    Ok(sn)
}

/// The longest window an exchange is named by: Home Assistant names it to the second.
pub const MAX_EXCHANGE_WINDOW_MS: u64 = 60_000;

/// A request to delete, as it arrives (see [`parse_delete`]).
#[derive(Debug, Deserialize)]
struct RawDelete {
    id: Option<serde_json::Value>,
    scope: Option<serde_json::Value>,
    sn: Option<serde_json::Value>,
    from_ms: Option<serde_json::Value>,
    to_ms: Option<serde_json::Value>,
}

/// What a request asks to delete, its toy not yet looked up.
#[derive(Debug, Clone, PartialEq)]
pub enum Deletion {
    /// The exchange the child began in `[from_ms, to_ms)` (at most [`MAX_EXCHANGE_WINDOW_MS`]).
    Exchange {
        sn: String,
        from_ms: u64,
        to_ms: u64,
    },
    /// A toy's sentences in `[from_ms, to_ms)` (at most [`MAX_WINDOW_MS`]): a day.
    Day {
        sn: String,
        from_ms: u64,
        to_ms: u64,
    },
    Toy {
        sn: String,
    },
    Everything,
}

impl Deletion {
    fn sn(&self) -> Option<&str> {
        match self {
            Deletion::Exchange { sn, .. } | Deletion::Day { sn, .. } | Deletion::Toy { sn } => Some(sn),
            Deletion::Everything => None,
        }
    }

    fn scope(&self) -> &'static str {
        match self {
            Deletion::Exchange { .. } => "exchange",
            Deletion::Day { .. } => "day",
            Deletion::Toy { .. } => "toy",
            Deletion::Everything => "everything",
        }
    }

    fn with_toy(&self, sn: Sn) -> Forget {
        match self {
            Deletion::Exchange { from_ms, to_ms, .. } => {
                Forget::Exchange { sn, from_ms: *from_ms, to_ms: *to_ms, recording_id: None }
            }
            Deletion::Day { from_ms, to_ms, .. } => Forget::Between { sn, from_ms: *from_ms, to_ms: *to_ms },
            Deletion::Toy { .. } => Forget::Toy(sn),
            Deletion::Everything => Forget::Everything,
        }
    }
}

/// Reads a request to delete, on `<base>/bridge/conversation/delete`:
/// `{"id", "scope": "exchange" | "day", "sn", "from_ms", "to_ms"}`, `{"id", "scope": "toy",
/// "sn"}` or `{"id", "scope": "everything"}`. Answered on the response topic with
/// `{"id", "deleted": {"scope", "exchanges", "sentences", "toys", "from_ms", "to_ms"}}` or
/// `{"id", "error"}`.
pub fn parse_delete(payload: &[u8], retained: bool) -> Result<(String, Deletion), Refused> {
    if retained {
        return Err(refused(None, "retained request ignored: a deletion is made only when it is asked"));
    }
    if payload.len() > MAX_REQUEST {
        return Err(refused(None, format!("request of {} bytes is over the {MAX_REQUEST}-byte limit", payload.len())));
    }
    let raw: RawDelete = serde_json::from_slice(payload)
        .map_err(|e| refused(None, format!("request is not a JSON object with id and scope: {e}")))?;
    let id = request_id(raw.id)?;
    let answer_to = Some(id.as_str());
    let scope = raw.scope.as_ref().and_then(|s| s.as_str()).unwrap_or_default().to_owned();
    let window = |longest: u64| {
        let ms = |v: Option<serde_json::Value>, key: &str| {
            v.and_then(|v| v.as_u64())
                .ok_or_else(|| refused(answer_to, format!("{key} is missing or not a time in ms")))
        };
        let (from_ms, to_ms) = (ms(raw.from_ms.clone(), "from_ms")?, ms(raw.to_ms.clone(), "to_ms")?);
        if to_ms <= from_ms {
            return Err(refused(answer_to, format!("to_ms {to_ms} is not after from_ms {from_ms}")));
        }
        if to_ms - from_ms > longest {
            return Err(refused(
                answer_to,
                format!("the window of {} s is longer than {} s", (to_ms - from_ms) / 1000, longest / 1000),
            ));
        }
        Ok((from_ms, to_ms))
    };
    let deletion = match scope.as_str() {
        "everything" => {
            if raw.sn.is_some() {
                return Err(refused(answer_to, "everything is every toy's: name no toy (sn) with it"));
            }
            Deletion::Everything
        }
        "toy" => Deletion::Toy { sn: serial_number(raw.sn.clone(), answer_to)? },
        "day" => {
            let sn = serial_number(raw.sn.clone(), answer_to)?;
            let (from_ms, to_ms) = window(MAX_WINDOW_MS)?;
            Deletion::Day { sn, from_ms, to_ms }
        }
        "exchange" => {
            let sn = serial_number(raw.sn.clone(), answer_to)?;
            let (from_ms, to_ms) = window(MAX_EXCHANGE_WINDOW_MS)?;
            Deletion::Exchange { sn, from_ms, to_ms }
        }
        _ => return Err(refused(answer_to, "scope is missing or not one of exchange, day, toy, everything")),
    };
    Ok((id, deletion))
}

#[derive(Debug, Serialize)]
struct Deleted<'a> {
    id: &'a str,
    deleted: DeletedWhat<'a>,
}

#[derive(Debug, Serialize)]
struct DeletedWhat<'a> {
    scope: &'static str,
    #[serde(flatten)]
    gone: &'a Forgotten,
}

fn cut(s: &str) -> String {
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
/// within the limits.
pub fn answer(request: &Request, sn: &str, messages: &[Message]) -> Vec<u8> {
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
    serde_json::to_vec(&DayReply { id: &request.id, sn, messages: kept, truncated }).expect("serializes")
}

/// Answers requests beside the bridge's loop.
pub struct Conversations {
    /// The history, or why there is none.
    reader: Result<Reader, &'static str>,
    at_once: Arc<Semaphore>,
    /// Where deletions are told, for the bridge's loop to follow (the Heard and Said
    /// sensors, the day counters).
    forgetting: Option<mpsc::Sender<Forgot>>,
    /// Where the family's day begins, for the day counters.
    zone: Zone,
}

impl Conversations {
    pub fn new(
        reader: Result<Reader, &'static str>,
        forgetting: Option<mpsc::Sender<Forgot>>,
        zone: Zone,
    ) -> Conversations {
        Conversations { reader, at_once: Arc::new(Semaphore::new(AT_ONCE)), forgetting, zone }
    }

    /// A message on the delete topic: refused with a warning (and answered, with an id),
    /// or carried out on a task of its own, answered once the bridge's loop followed it.
    pub fn delete<'a>(
        &self,
        topics: &Topics,
        client: &AsyncClient,
        mut toys: impl Iterator<Item = &'a Sn>,
        topic: &str,
        payload: &[u8],
        retained: bool,
    ) {
        let request = parse_delete(payload, retained).and_then(|(id, deletion)| {
            let what = match deletion.sn() {
                None => Forget::Everything,
                Some(wanted) => {
                    let wanted = wanted.to_ascii_lowercase();
                    let Some(sn) = toys.find(|s| s.ha_id() == wanted).cloned() else {
                        return Err(refused(Some(&id), format!("no toy {} is known to the bridge", cut(&wanted))));
                    };
                    deletion.with_toy(sn)
                }
            };
            match (&self.reader, &self.forgetting) {
                (Ok(reader), Some(forgetting)) => Ok((id, deletion, what, reader.clone(), forgetting.clone())),
                (Err(why), _) => Err(refused(Some(&id), format!("the bridge keeps no conversation history: {why}"))),
                (_, None) => Err(refused(Some(&id), "the bridge keeps no conversation history")),
            }
        });
        let (id, deletion, what, reader, forgetting) = match request {
            Ok(ok) => ok,
            Err(Refused { id, reason }) => {
                warn!(topic = %topic, "conversation deletion refused: {reason}");
                if let Some(id) = id {
                    publish(client.clone(), topics.conversation_response(&id), error(&id, &reason));
                }
                return;
            }
        };
        let to = topics.conversation_response(&id);
        let Ok(permit) = self.at_once.clone().try_acquire_owned() else {
            warn!(topic = %topic, "conversation deletion refused: {AT_ONCE} requests are being read already");
            publish(client.clone(), to, error(&id, "busy: too many requests at once; try again"));
            return;
        };
        let (client, topic, zone) = (client.clone(), topic.to_owned(), self.zone.clone());
        tokio::spawn(async move {
            let at = std::time::SystemTime::now();
            let now = crate::dates::unix_ms(at);
            let today_ms = zone.start_of(zone.day(now));
            let done = {
                let what = what.clone();
                tokio::task::spawn_blocking(move || reader.forget_counting_today(&what, today_ms, now)).await
            };
            drop(permit);
            let payload = match done {
                Ok(Ok((gone, _))) if gone.sentences == 0 && deletion.scope() == "exchange" => {
                    error(&id, "no exchange of that toy begins then: nothing deleted")
                }
                Ok(Ok((gone, today))) => {
                    info!(
                        topic = %topic,
                        "deleted at Home Assistant's request ({}): {} exchanges, {} sentences",
                        deletion.scope(),
                        gone.exchanges,
                        gone.sentences
                    );
                    let (reply, followed) = tokio::sync::oneshot::channel();
                    let forgetting_done = Forgetting { what, gone: gone.clone(), today, at };
                    if forgetting.send((forgetting_done, reply)).await.is_ok() {
                        let _ = followed.await;
                    }
                    let deleted = DeletedWhat { scope: deletion.scope(), gone: &gone };
                    serde_json::to_vec(&Deleted { id: &id, deleted }).expect("serializes")
                }
                Ok(Err(e @ HistoryError::Ambiguous(_))) => {
                    warn!(topic = %topic, "conversation deletion {id} refused: {e}");
                    error(&id, &e.to_string())
                }
                Ok(Err(e)) => {
                    warn!(topic = %topic, "conversation deletion {id}: {e}");
                    error(&id, &format!("deleting from the conversation history failed: {e}"))
                }
                Err(e) => error(&id, &format!("deleting from the conversation history failed: {e}")),
            };
            if let Err(e) = client.publish(to.clone(), QoS::AtLeastOnce, false, payload).await {
                warn!(topic = %to, "cannot publish: {e}");
            }
        });
    }

    /// A message on the request topic: refused with a warning, or read and
    /// answered on a task of its own.
    pub fn handle<'a>(
        &self,
        topics: &Topics,
        client: &AsyncClient,
        mut toys: impl Iterator<Item = &'a Sn>,
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
                warn!(topic = %topic, "conversation request refused: {reason}");
                if let Some(id) = id {
                    publish(client.clone(), topics.conversation_response(&id), error(&id, &reason));
                }
                return;
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
        tokio::spawn(async move {
            let now = crate::dates::unix_ms(std::time::SystemTime::now());
            let read = {
                let sn = sn.clone();
                let before = request.to_ms;
                tokio::task::spawn_blocking(move || reader.messages(&sn, before, MAX_MESSAGES + 1, now)).await
            };
            drop(permit);
            let payload = match read {
                Ok(Ok(messages)) => answer(&request, &sn.ha_id(), &messages),
                Ok(Err(e)) => {
                    warn!(topic = %topic, "conversation request {}: {e}", request.id);
                    error(&request.id, &format!("reading the conversation history failed: {e}"))
                }
                Err(e) => error(&request.id, &format!("reading the conversation history failed: {e}")),
            };
            if let Err(e) = client.publish(to.clone(), QoS::AtLeastOnce, false, payload).await {
                warn!(topic = %to, "cannot publish: {e}");
            }
        });
    }
}

fn publish(client: AsyncClient, topic: String, payload: Vec<u8>) {
    tokio::spawn(async move {
        if let Err(e) = client.publish(topic.clone(), QoS::AtLeastOnce, false, payload).await {
            warn!(topic = %topic, "cannot publish: {e}");
        }
    });
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
                "longer than 48 h",
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
        let a = read(&answer(&request, "fcb467dad0c0", &messages));
        assert_eq!(
            a,
            serde_json::json!({"id": "r", "sn": "fcb467dad0c0", "truncated": false, "messages": [
                {"t": 100, "kind": "heard", "text": "hello"},
                {"t": 150, "kind": "said", "text": "hi there", "role": 2},
            ]})
        );
        let none = read(&answer(&request, "fcb467dad0c0", &[]));
        assert_eq!(none["messages"], serde_json::json!([]));
        assert_eq!(none["truncated"], false);
    }

    #[test]
    fn a_long_day_keeps_its_newest_messages_within_the_limits_and_says_so() {
        let request = Request { id: "r".into(), sn: "x".into(), from_ms: 0, to_ms: 10_000 };
        let many: Vec<Message> = (0..=MAX_MESSAGES as u64).map(|t| message(t, LineKind::Heard, "hi")).collect();
        let a = read(&answer(&request, "x", &many));
        assert_eq!(a["truncated"], true);
        assert_eq!(a["messages"].as_array().unwrap().len(), MAX_MESSAGES);
        assert_eq!(a["messages"][0]["t"], 1, "the oldest left out");
        let exactly = read(&answer(&request, "x", &many[1..]));
        assert_eq!(exactly["truncated"], false);

        let long = "x".repeat(10_000);
        let big: Vec<Message> = (0..100).map(|t| message(t, LineKind::Heard, &long)).collect();
        let payload = answer(&request, "x", &big);
        let a = read(&payload);
        assert!(payload.len() <= MAX_BYTES + 200, "{}", payload.len());
        assert_eq!(a["truncated"], true);
        let kept = a["messages"].as_array().unwrap();
        assert_eq!(kept.len(), MAX_BYTES / 10_040);
        assert_eq!(kept.last().unwrap()["t"], 99, "the newest kept");
    }

    #[test]
    fn an_error_names_the_request() {
        assert_eq!(read(&error("r", "no toy x")), serde_json::json!({"id": "r", "error": "no toy x"}));
    }

    fn deletion(json: &str) -> Result<(String, Deletion), Refused> {
        parse_delete(json.as_bytes(), false)
    }

    #[test]
    fn a_deletion_names_its_scope_and_what_that_scope_needs() {
        let sn = "fcb467dad0c0".to_owned();
        assert_eq!(deletion(r#"{"id": "a", "scope": "everything"}"#).unwrap(), ("a".into(), Deletion::Everything));
        assert_eq!(
            deletion(r#"{"id": "a", "scope": "toy", "sn": "fcb467dad0c0"}"#).unwrap().1,
            Deletion::Toy { sn: sn.clone() }
        );
        assert_eq!(
            deletion(r#"{"id": "a", "scope": "day", "sn": "fcb467dad0c0", "from_ms": 0, "to_ms": 86400000}"#)
                .unwrap()
                .1,
            Deletion::Day { sn: sn.clone(), from_ms: 0, to_ms: 86_400_000 }
        );
        assert_eq!(
            deletion(r#"{"id": "a", "scope": "exchange", "sn": "fcb467dad0c0", "from_ms": 5000, "to_ms": 6000}"#)
                .unwrap()
                .1,
            Deletion::Exchange { sn, from_ms: 5000, to_ms: 6000 }
        );
    }

    #[test]
    fn a_deletion_asked_wrongly_is_answered_with_why() {
        for (json, why) in [
            (r#"{"id": "a"}"#, "scope is missing"),
            (r#"{"id": "a", "scope": "week", "sn": "fcb467dad0c0"}"#, "not one of exchange, day, toy, everything"),
            (r#"{"id": "a", "scope": "toy"}"#, "sn is missing"),
            (r#"{"id": "a", "scope": "everything", "sn": "fcb467dad0c0"}"#, "name no toy"),
            (r#"{"id": "a", "scope": "day", "sn": "fcb467dad0c0", "from_ms": 0}"#, "to_ms is missing"),
            (r#"{"id": "a", "scope": "day", "sn": "fcb467dad0c0", "from_ms": 0, "to_ms": 999999999}"#, "longer than"),
            (
                r#"{"id": "a", "scope": "exchange", "sn": "fcb467dad0c0", "from_ms": 0, "to_ms": 60001}"#,
                "longer than 60 s",
            ),
        ] {
            let r = deletion(json).expect_err(json);
            assert_eq!(r.id.as_deref(), Some("a"), "{json}");
            assert!(r.reason.contains(why), "{json}: {r:?}");
        }
        let r = parse_delete(br#"{"id": "a", "scope": "everything"}"#, true).unwrap_err();
        assert!(r.id.is_none() && r.reason.contains("retained"), "{r:?}");
    }
}
