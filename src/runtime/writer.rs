//! The conversation history's writer, off the bridge's loop.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use super::page::{now_ms, Notices};
use crate::folotoy::Sn;
use crate::history::{History, HistoryError, Line};
use crate::repeats::{self, Repeats};
use crate::web::Changes;

/// Writes sentences to the history off the bridge's loop, makes them
/// durable at most a second later (a checkpoint for every batch would cost
/// more than the bridge's own work under a chatty toy), then tells the pages
/// open now. The writer is this task's alone: the page reads on connections
/// of its own. A database that breaks meanwhile (see [`renew`]) is set aside
/// and the sentences go on into a new one.
pub(super) async fn write_history(
    history: Option<Arc<Mutex<History>>>,
    live: watch::Sender<Changes>,
    rx: mpsc::Receiver<Vec<(Sn, Line)>>,
    notices: Notices,
) {
    let now = Instant::now();
    let writer = Writer {
        history,
        live,
        notices,
        synced: now,
        committed: now,
        unsynced: false,
        failures: Repeats::new(repeats::EVERY),
    };
    writer.run(rx).await;
}

struct Writer {
    history: Option<Arc<Mutex<History>>>,
    /// The pages waiting for new sentences.
    live: watch::Sender<Changes>,
    notices: Notices,
    synced: Instant,
    committed: Instant,
    /// Whether something written is not yet durable (kept here, so that the async
    /// thread never takes the writer's lock).
    unsynced: bool,
    /// Writes that failed (a full disk), told once and then every few minutes.
    failures: Repeats<()>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Vec<(Sn, Line)>>) {
        let trouble = self.history.as_ref().map(|h| h.lock().expect("not poisoned").trouble());
        loop {
            let next = tokio::select! {
                next = next_batch(&mut rx, self.unsynced.then_some(self.synced + SYNC_EVERY)) => next,
                // A reader found the database broken: the writer looks for itself.
                () = reader_trouble(trouble.as_deref()) => {
                    if let Some(history) = self.history.clone() {
                        renew(history, &self.notices).await;
                    }
                    continue;
                }
            };
            let Some(lines) = next else { break };
            let lines = self.gather(lines, &mut rx).await;
            let lines = self.commit(lines).await;
            self.tell_pages(&lines);
        }
        // The bridge is stopping: what was written reaches the disk.
        if let Some(history) = self.history {
            let _ = tokio::task::spawn_blocking(move || history.lock().expect("not poisoned").sync()).await;
        }
    }

    /// A lone sentence is written at once. Under a flood (more already waits),
    /// what comes within COMMIT_GAP of the last commit joins one commit: each
    /// commit writes the table's, the index's and the search index's pages. A
    /// sync alone (no sentence) makes nothing wait.
    async fn gather(&self, mut lines: Vec<(Sn, Line)>, rx: &mut mpsc::Receiver<Vec<(Sn, Line)>>) -> Vec<(Sn, Line)> {
        let mut gathering = !lines.is_empty() && rx.try_recv().map(|more| lines.extend(more)).is_ok();
        while gathering {
            match tokio::time::timeout_at(self.committed + COMMIT_GAP, rx.recv()).await {
                Ok(Some(more)) => lines.extend(more),
                Ok(None) | Err(_) => gathering = false,
            }
        }
        lines
    }

    /// Writes `lines` (and makes what was written durable when it is time); a
    /// database found broken is set aside and they go into the new one.
    async fn commit(&mut self, lines: Vec<(Sn, Line)>) -> Vec<(Sn, Line)> {
        let Some(history) = self.history.clone() else { return lines };
        let sync = self.synced.elapsed() >= SYNC_EVERY;
        let (mut done, mut lines) = write(history.clone(), lines, sync).await;
        if let Err(e) = &done {
            if e.is_broken() && renew(history.clone(), &self.notices).await {
                (done, lines) = write(history, lines, sync).await;
            }
        }
        let now = Instant::now();
        match done {
            Ok(()) => {
                self.failures.over(&());
                if sync {
                    self.synced = now;
                }
                if !lines.is_empty() {
                    self.committed = now;
                }
                self.unsynced = !sync;
            }
            // A full disk: what cannot be written is lost.
            Err(e) => {
                let tell = self.failures.happened((), std::time::Instant::now());
                if !tell.is_quiet() {
                    warn!("sentences left out of the conversation history: {e}{}", tell.suffix());
                }
            }
        }
        lines
    }

    fn tell_pages(&self, lines: &[(Sn, Line)]) {
        if lines.is_empty() {
            return;
        }
        self.live.send_modify(|changes| {
            for (sn, _) in lines {
                changes.push(sn.to_string());
            }
        });
    }
}

/// The next batch of sentences, an empty one when it is time to make what was
/// written durable (`sync_at`), or `None` when the bridge stops.
async fn next_batch(
    rx: &mut mpsc::Receiver<Vec<(Sn, Line)>>,
    sync_at: Option<tokio::time::Instant>,
) -> Option<Vec<(Sn, Line)>> {
    match sync_at {
        Some(at) => tokio::time::timeout_at(at, rx.recv()).await.unwrap_or(Some(Vec::new())),
        None => rx.recv().await,
    }
}

async fn reader_trouble(trouble: Option<&tokio::sync::Notify>) {
    match trouble {
        Some(trouble) => trouble.notified().await,
        None => std::future::pending().await,
    }
}

/// Appends `lines` (and syncs), off the async threads; gives the lines back.
async fn write(
    history: Arc<Mutex<History>>,
    lines: Vec<(Sn, Line)>,
    sync: bool,
) -> (Result<(), HistoryError>, Vec<(Sn, Line)>) {
    let written = tokio::task::spawn_blocking(move || {
        let mut h = history.lock().expect("not poisoned");
        let done = h.append_all(&lines).and_then(|()| if sync { h.sync() } else { Ok(()) });
        (done, lines)
    })
    .await;
    written.unwrap_or_else(|e| (Err(HistoryError::Panicked(e.to_string())), Vec::new()))
}

/// Sets a broken database aside and starts a new one, once a write or a reader
/// found it broken and the writer's own look at the disk agrees (a database that
/// reads whole is kept: a new one for every failed write would pile up files).
/// Whether the history goes on in a new database.
async fn renew(history: Arc<Mutex<History>>, notices: &Notices) -> bool {
    let renewed = tokio::task::spawn_blocking(move || {
        let mut h = history.lock().expect("not poisoned");
        match h.check() {
            Ok(()) => Ok(None),
            Err(e) if e.is_broken() => h.renew(e.plainly(), now_ms()).map(Some),
            Err(e) => Err(e),
        }
    })
    .await
    .unwrap_or_else(|e| Err(HistoryError::Panicked(e.to_string())));
    match renewed {
        Ok(Some(aside)) => {
            notices.set_aside(&aside);
            true
        }
        Ok(None) => {
            info!("the conversation history reads whole on disk: it is kept as it is");
            false
        }
        Err(e) => {
            notices.tell(format!("The conversation history broke and no new one could be started: {e}."));
            false
        }
    }
}

/// The least time between two commits of the history while sentences keep
/// coming: at most 20 commits a second, however chatty the toys.
const COMMIT_GAP: std::time::Duration = std::time::Duration::from_millis(50);

/// How soon written sentences are made durable.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Limits, LineKind};
    use std::time::SystemTime;

    /// A flood already queued when the writer runs: what it gathers into one
    /// commit is every sentence, in order.
    #[tokio::test]
    async fn a_flood_of_sentences_is_kept_whole_and_in_order() {
        const SENTENCES: u64 = 3_000;
        let dir = tempfile::tempdir().unwrap();
        let now = crate::dates::unix_ms(SystemTime::now());
        let history = History::open(dir.path().join("history"), Limits { days: 7, max_bytes: 1 << 30 }, now).unwrap();
        let reader = history.reader();
        let sn = Sn::parse("fcb467dad0c0").unwrap();
        let (tx, rx) = mpsc::channel(crate::runtime::page::WAITING_BATCHES);
        for n in 0..SENTENCES {
            let line = Line {
                t: now + n,
                kind: LineKind::Heard,
                recording_id: Some(n as i64),
                order: None,
                role: None,
                text: format!("sentence {n}"),
            };
            tx.try_send(vec![(sn.clone(), line)]).expect("room in the queue");
        }
        drop(tx);
        let (live, _pages) = watch::channel(Changes::default());
        write_history(Some(Arc::new(Mutex::new(history))), live, rx, Notices::default()).await;
        let kept = reader.messages(&sn, u64::MAX, SENTENCES as usize + 1, now).unwrap();
        let texts: Vec<&str> = kept.iter().map(|m| m.text.as_str()).collect();
        let expected: Vec<String> = (0..SENTENCES).map(|n| format!("sentence {n}")).collect();
        let missing: Vec<&String> = expected.iter().filter(|e| !texts.contains(&e.as_str())).take(3).collect();
        assert!(missing.is_empty(), "{} of {SENTENCES} kept; missing {missing:?}...", texts.len());
        assert!(texts == expected, "every sentence kept, but not in order");
    }

    fn heard(now: u64, n: u64) -> (Sn, Line) {
        let line = Line {
            t: now + n,
            kind: LineKind::Heard,
            recording_id: None,
            order: None,
            role: None,
            text: format!("s{n}"),
        };
        (Sn::parse("fcb467dad0c0").unwrap(), line)
    }

    /// The database breaks under the idle writer (a bad sector): a reader finds it,
    /// the writer sets it aside, says so, and what comes next is kept in a new one.
    #[tokio::test]
    async fn a_history_that_breaks_while_running_is_set_aside_and_what_comes_next_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("history");
        let now = crate::dates::unix_ms(SystemTime::now());
        let mut history = History::open(root.clone(), Limits { days: 7, max_bytes: 1 << 30 }, now).unwrap();
        history.append_all(&(0..400).map(|n| heard(now, n)).collect::<Vec<_>>()).unwrap();
        history.sync().unwrap();
        let reader = history.reader();
        // Everything in the file itself, nothing left to make durable: the writer is idle.
        let file = root.join("conversations.sqlite3");
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        drop(conn);
        let (tx, rx) = mpsc::channel(16);
        let (live, mut pages) = watch::channel(Changes::default());
        let notices = Notices::default();
        let writer = tokio::spawn(write_history(Some(Arc::new(Mutex::new(history))), live, rx, notices.clone()));
        let sn = Sn::parse("fcb467dad0c0").unwrap();
        // Then every page after the schema is overwritten.
        let len = std::fs::metadata(&file).unwrap().len();
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(4 * 4096)).unwrap();
        std::io::Write::write_all(&mut f, &vec![0xA5; (len - 4 * 4096) as usize]).unwrap();
        drop(f);
        let read = tokio::task::spawn_blocking({
            let (reader, sn) = (reader.clone(), sn.clone());
            move || reader.messages(&sn, u64::MAX, 10, now + 1_000)
        });
        assert!(read.await.unwrap().expect_err("broken").is_broken());
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while notices.all().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "the writer never set it aside");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let aside = root.join("conversations.sqlite3.corrupt-1");
        let told = &notices.all()[0].text;
        assert!(told.contains(&aside.display().to_string()) && told.contains("it is damaged"), "{told}");
        assert_eq!(std::fs::metadata(&aside).unwrap().len(), len, "what it held stays there");
        tx.send(vec![heard(now, 1_000)]).await.unwrap();
        pages.changed().await.unwrap();
        let kept = tokio::task::spawn_blocking(move || reader.messages(&sn, u64::MAX, 10, now + 2_000)).await.unwrap();
        assert_eq!(kept.unwrap().into_iter().map(|m| m.text).collect::<Vec<_>>(), ["s1000"]);
        drop(tx);
        writer.await.unwrap();
    }
}
