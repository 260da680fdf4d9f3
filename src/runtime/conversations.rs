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
use tokio::sync::Semaphore;
use tracing::warn;

use crate::folotoy::Sn;
use crate::ha::Topics;
use crate::history::{LineKind, Message, Reader};

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
            format!("the window of {} h is longer than 48 h", (to_ms - from_ms) / 3_600_000),
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
}

impl Conversations {
    pub fn new(reader: Result<Reader, &'static str>) -> Conversations {
        Conversations { reader, at_once: Arc::new(Semaphore::new(AT_ONCE)) }
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

pub(super) fn publish(client: AsyncClient, topic: String, payload: Vec<u8>) {
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
}
