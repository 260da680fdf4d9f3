//! Home Assistant's `folotoy.delete_conversation`: forgetting on a parent's word, asked
//! over MQTT beside `folotoy.get_conversation` (see [`parse_delete`] for the request and
//! its answer). The history deletes on a blocking thread, never on the bridge's loop; the
//! loop then follows (the Heard and Said sensors, the day counters) before the answer goes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};
use tracing::{info, warn};

use super::conversations::{
    cut, error, publish, refuse, refused, request_id, send, serial_number, Refused, MAX_REQUEST,
};
use super::link::AsyncClient;
use crate::folotoy::Sn;
use crate::glance::Zone;
use crate::ha::Topics;
use crate::history::{Forget, Forgotten, HistoryError, Reader};
use crate::web::{Forgetting, Forgot};

/// The longest window an exchange is named by: Home Assistant names it to the second.
pub const MAX_EXCHANGE_WINDOW_MS: u64 = 60_000;
/// The longest day: a day in any time zone, across a change of clocks, fits.
pub const MAX_DAY_MS: u64 = 2 * 86_400_000;

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
    /// A toy's sentences in `[from_ms, to_ms)` (at most [`MAX_DAY_MS`]): a day.
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
            let (from_ms, to_ms) = window(MAX_DAY_MS)?;
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

/// Carries out deletions beside the bridge's loop, one at a time (each writes the history).
pub struct Deletions {
    /// The history, or why there is none.
    reader: Result<Reader, &'static str>,
    one_at_a_time: Arc<Semaphore>,
    /// Where deletions are told, for the bridge's loop to follow (the Heard and Said
    /// sensors, the day counters).
    forgetting: Option<mpsc::Sender<Forgot>>,
    /// Where the family's day begins, for the day counters.
    zone: Zone,
}

impl Deletions {
    pub fn new(
        reader: Result<Reader, &'static str>,
        forgetting: Option<mpsc::Sender<Forgot>>,
        zone: Zone,
    ) -> Deletions {
        Deletions { reader, one_at_a_time: Arc::new(Semaphore::new(1)), forgetting, zone }
    }

    /// A message on the delete topic: refused with a warning (and answered, with an id),
    /// or carried out on a task of its own, answered once the bridge's loop followed it.
    pub fn handle<'a>(
        &self,
        topics: &Topics,
        client: &AsyncClient,
        toys: impl Iterator<Item = &'a Sn>,
        topic: &str,
        payload: &[u8],
        retained: bool,
    ) {
        let accepted = match self.accept(toys, payload, retained) {
            Ok(ok) => ok,
            Err(Refused { id, reason }) => {
                return refuse(topics, client, topic, "conversation deletion", id, &reason);
            }
        };
        let to = topics.conversation_response(&accepted.id);
        let Ok(permit) = self.one_at_a_time.clone().try_acquire_owned() else {
            warn!(topic = %topic, "conversation deletion refused: another is being made");
            publish(client.clone(), to, error(&accepted.id, "busy: another deletion is being made; try again"));
            return;
        };
        let (client, topic, zone) = (client.clone(), topic.to_owned(), self.zone.clone());
        tokio::spawn(async move {
            let payload = accepted.carry_out(&topic, &zone, permit).await;
            send(&client, to, payload).await;
        });
    }

    /// The request, its toy known here and a history to delete from; else why not.
    fn accept<'a>(
        &self,
        mut toys: impl Iterator<Item = &'a Sn>,
        payload: &[u8],
        retained: bool,
    ) -> Result<Accepted, Refused> {
        let (id, deletion) = parse_delete(payload, retained)?;
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
            (Ok(reader), Some(forgetting)) => {
                Ok(Accepted { id, deletion, what, reader: reader.clone(), forgetting: forgetting.clone() })
            }
            (Err(why), _) => Err(refused(Some(&id), format!("the bridge keeps no conversation history: {why}"))),
            (_, None) => Err(refused(Some(&id), "the bridge keeps no conversation history")),
        }
    }
}

/// A deletion to carry out.
struct Accepted {
    id: String,
    deletion: Deletion,
    what: Forget,
    reader: Reader,
    forgetting: mpsc::Sender<Forgot>,
}

impl Accepted {
    /// Deletes (on a blocking thread), has the bridge's loop follow, and says what went.
    async fn carry_out(self, topic: &str, zone: &Zone, permit: tokio::sync::OwnedSemaphorePermit) -> Vec<u8> {
        let Accepted { id, deletion, what, reader, forgetting } = self;
        let at = std::time::SystemTime::now();
        let now = crate::dates::unix_ms(at);
        let today_ms = zone.start_of(zone.day(now));
        let done = {
            let what = what.clone();
            tokio::task::spawn_blocking(move || reader.forget_counting_today(&what, today_ms, now)).await
        };
        drop(permit);
        match done {
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
