//! Forgetting on a parent's word: one exchange, a toy's day, a toy's whole
//! history, or everything, deleted for good (see [`Reader::forget`]).

use std::collections::BTreeSet;

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OpenFlags};
use serde::Serialize;

use super::{continues, sql, HistoryError, LineKind, Reader};
use crate::folotoy::Sn;

/// What a parent deletes.
#[derive(Debug, Clone, PartialEq)]
pub enum Forget {
    /// One exchange of a toy: what the child said first in `[from_ms, to_ms)` (the page
    /// names its time to the ms; Home Assistant to the second) and the toy's answer to
    /// it (as the page joins them); with nothing the child said there, the first answer
    /// there alone. With `recording_id`, only one with that recordingId (the page's
    /// messages have theirs: sentences handled together share a ms).
    Exchange { sn: Sn, from_ms: u64, to_ms: u64, recording_id: Option<i64> },
    /// A toy's sentences in `[from_ms, to_ms)`: a day where the family lives.
    Between { sn: Sn, from_ms: u64, to_ms: u64 },
    /// Everything kept of a toy.
    Toy(Sn),
    /// Everything kept, of every toy.
    Everything,
}

impl Forget {
    /// The one toy it is about; None for everything.
    pub fn toy(&self) -> Option<&Sn> {
        match self {
            Forget::Exchange { sn, .. } | Forget::Between { sn, .. } | Forget::Toy(sn) => Some(sn),
            Forget::Everything => None,
        }
    }
}

/// What a deletion took (or, asked beforehand, would take).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Forgotten {
    /// What the child said, each an exchange (as the day counters count them).
    pub exchanges: u64,
    /// Sentences, the child's and the toy's.
    pub sentences: u64,
    /// The toys it was of (serial numbers as kept).
    pub toys: Vec<String>,
    /// When what went was said: the first and the last sentence (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<u64>,
    /// Of an exchange or a day, each sentence (toy, kind, recording, text): whether the
    /// Heard and Said sensors show one of them. Not of a whole toy or everything.
    #[serde(skip)]
    pub lines: Vec<(String, LineKind, Option<i64>, String)>,
}

/// When each of today's sentences was said, by which toy, and by whom (see
/// [`Reader::sentence_times`]).
pub type Today = Vec<(String, u64, LineKind)>;

/// The lines chosen: a condition on `lines` and its parameters.
struct Chosen {
    condition: String,
    params: Vec<Value>,
    /// Whether the sentences themselves are read (see [`Forgotten::lines`]).
    with_lines: bool,
}

impl Reader {
    /// What [`Reader::forget`] would delete, deleting nothing: the page's confirmation
    /// says it.
    pub fn forgettable(&self, what: &Forget) -> Result<Forgotten, HistoryError> {
        self.watched(self.read_only().and_then(|conn| {
            let chosen = self.choose(&conn, what)?;
            self.tally(&conn, &chosen)
        }))
    }

    /// Deletes `what` for good, and says what went: SQLite otherwise leaves deleted text
    /// in the file's free pages, in the search index until its segments merge, and in
    /// older copies of the pages in the write-ahead log, where anyone with the files or
    /// a backup of them could read it.
    pub fn forget(&self, what: &Forget) -> Result<Forgotten, HistoryError> {
        self.watched(self.erase_for_good(what))
    }

    /// [`Reader::forget`], and when what went was said today (from `today_ms`, where
    /// the family's day begins), what the history keeps of today of the toys it was of,
    /// for the day counters to count anew.
    pub fn forget_counting_today(
        &self,
        what: &Forget,
        today_ms: u64,
        now_ms: u64,
    ) -> Result<(Forgotten, Option<Today>), HistoryError> {
        let gone = self.forget(what)?;
        if gone.to_ms.is_none_or(|last| last < today_ms) {
            return Ok((gone, None));
        }
        let today = self.sentence_times(what.toy(), today_ms, now_ms)?;
        Ok((gone, Some(today)))
    }

    fn erase_for_good(&self, what: &Forget) -> Result<Forgotten, HistoryError> {
        let path = &self.path;
        let mut conn = self.connect(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.pragma_update(None, "secure_delete", "ON").map_err(sql(path))?;
        let tx = conn.transaction().map_err(sql(path))?;
        let chosen = self.choose(&tx, what)?;
        let forgotten = self.tally(&tx, &chosen)?;
        if forgotten.sentences > 0 {
            // A few sentences are taken out of the search index's segments as they go
            // (FTS5's secure-delete, which costs per entry); more, and the whole index is
            // merged afterwards instead, which costs per index: otherwise it keeps deleted
            // sentences as markers until its segments merge.
            let few = forgotten.sentences <= FEW;
            if few {
                tx.execute("INSERT INTO lines_text (lines_text, rank) VALUES ('secure-delete', 1)", [])
                    .map_err(sql(path))?;
            }
            // The trigger takes each out of the search index.
            tx.execute(&format!("DELETE FROM lines WHERE {}", chosen.condition), params_from_iter(&chosen.params))
                .map_err(sql(path))?;
            let after = if few {
                "INSERT INTO lines_text (lines_text, rank) VALUES ('secure-delete', 0)"
            } else {
                "INSERT INTO lines_text (lines_text) VALUES ('optimize')"
            };
            tx.execute(after, []).map_err(sql(path))?;
        }
        tx.commit().map_err(sql(path))?;
        // Every page into the database and the log emptied. A search still reading an
        // older state keeps the log's pages until it ends; they are then overwritten as
        // the log is reused.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(sql(path))?;
        Ok(forgotten)
    }

    fn choose(&self, conn: &Connection, what: &Forget) -> Result<Chosen, HistoryError> {
        let ms = |t: u64| Value::Integer(t.min(i64::MAX as u64) as i64);
        let text = |sn: &Sn| Value::Text(sn.as_str().to_owned());
        Ok(match what {
            Forget::Exchange { sn, from_ms, to_ms, recording_id } => {
                let ids = exchange(conn, &self.path, sn, (*from_ms, *to_ms), *recording_id)?;
                let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                Chosen { condition: format!("id IN ({list})"), params: Vec::new(), with_lines: true }
            }
            Forget::Between { sn, from_ms, to_ms } => Chosen {
                condition: "sn = ?1 AND t >= ?2 AND t < ?3".into(),
                params: vec![text(sn), ms(*from_ms), ms(*to_ms)],
                with_lines: true,
            },
            Forget::Toy(sn) => Chosen { condition: "sn = ?1".into(), params: vec![text(sn)], with_lines: false },
            Forget::Everything => Chosen { condition: "1".into(), params: Vec::new(), with_lines: false },
        })
    }

    fn tally(&self, conn: &Connection, chosen: &Chosen) -> Result<Forgotten, HistoryError> {
        let path = &self.path;
        let params = || params_from_iter(&chosen.params);
        let mut f = Forgotten::default();
        let counts: Vec<(String, i64, i64, i64, i64)> = conn
            .prepare(&format!(
                "SELECT sn, kind, count(*), min(t), max(t) FROM lines WHERE {} GROUP BY sn, kind ORDER BY sn",
                chosen.condition
            ))
            .and_then(|mut q| {
                q.query_map(params(), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?.collect()
            })
            .map_err(sql(path))?;
        for (sn, kind, n, first, last) in counts {
            if LineKind::from_code(kind) == LineKind::Heard {
                f.exchanges += n as u64;
            }
            f.sentences += n as u64;
            f.from_ms = Some(f.from_ms.map_or(first as u64, |t| t.min(first as u64)));
            f.to_ms = Some(f.to_ms.map_or(last as u64, |t| t.max(last as u64)));
            if !f.toys.contains(&sn) {
                f.toys.push(sn);
            }
        }
        if chosen.with_lines {
            f.lines = conn
                .prepare(&format!("SELECT sn, kind, recording_id, text FROM lines WHERE {}", chosen.condition))
                .and_then(|mut q| {
                    q.query_map(params(), |r| Ok((r.get(0)?, LineKind::from_code(r.get(1)?), r.get(2)?, r.get(3)?)))?
                        .collect()
                })
                .map_err(sql(path))?;
        }
        Ok(f)
    }
}

/// Up to this many sentences are taken out of the search index one by one; more, and
/// the index is merged whole (see [`Reader::forget`]).
const FEW: u64 = 2_000;

/// The most sentences one exchange is looked for in: an answer of 256 parts (the most
/// the bridge keeps) and more.
const EXCHANGE_LINES: i64 = 1024;

/// The lines (ids) of toy `sn`'s exchange that begins in `[from_ms, to_ms)`: the sentence
/// of the child's there with the answer after it (joined as [`super::join`] joins an
/// answer), or else the first answer there alone. None when nothing begins there;
/// [`HistoryError::Ambiguous`] when the child said more than one thing there.
fn exchange(
    conn: &Connection,
    path: &std::path::Path,
    sn: &Sn,
    (from_ms, to_ms): (u64, u64),
    recording_id: Option<i64>,
) -> Result<Vec<i64>, HistoryError> {
    type Row = (i64, u64, LineKind, Option<i64>, Option<i64>);
    let rows: Vec<Row> = conn
        .prepare("SELECT id, t, kind, recording_id, ord FROM lines WHERE sn = ?1 AND t >= ?2 ORDER BY t, id LIMIT ?3")
        .and_then(|mut q| {
            let from = from_ms.min(i64::MAX as u64) as i64;
            q.query_map(rusqlite::params![sn.as_str(), from, EXCHANGE_LINES], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, LineKind::from_code(r.get(2)?), r.get(3)?, r.get(4)?))
            })?
            .collect()
        })
        .map_err(sql(path))?;
    let mut ids = Vec::new();
    // What the child said begins it, when said in the window: the end of the answer
    // before may have come in the same ms.
    let named = |(_, _, _, id, _): &&Row| recording_id.is_none_or(|r| *id == Some(r));
    let within: Vec<&Row> = rows.iter().take_while(|(_, t, ..)| *t < to_ms).collect();
    let heard = within.iter().filter(|r| named(r) && r.2 == LineKind::Heard).count();
    if heard > 1 {
        return Err(HistoryError::Ambiguous(heard));
    }
    let start = match within.iter().position(|r| named(r) && r.2 == LineKind::Heard) {
        Some(heard) => heard,
        None => match within.iter().position(named) {
            Some(answer) => answer,
            None => return Ok(ids),
        },
    };
    // The answer being followed: its recordingId and the orders it has.
    let mut answer: Option<(Option<i64>, BTreeSet<i64>)> = None;
    for (i, (id, _, kind, recording_id, order)) in rows.into_iter().skip(start).enumerate() {
        if kind == LineKind::Heard {
            if i > 0 {
                break;
            }
            ids.push(id);
            continue;
        }
        let joins = answer
            .as_ref()
            .is_none_or(|(answer_id, has)| continues(*answer_id, |o| has.contains(&o), recording_id, order));
        if !joins {
            break;
        }
        let (_, has) = answer.get_or_insert((recording_id, BTreeSet::new()));
        has.insert(order.unwrap_or_else(|| has.last().map_or(1, |o| o + 1)));
        ids.push(id);
    }
    Ok(ids)
}
