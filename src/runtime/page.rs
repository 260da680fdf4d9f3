//! The page's side of the runtime: the conversation history written off the
//! bridge's loop, new sentences handed to the pages open now, the state the
//! page asks for, and what each broker connection did last.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::link::Role;
use super::RuntimeError;
use crate::bridge::Core;
use crate::config::{Config, ConfigError};
use crate::folotoy::Sn;
use crate::glance::Zone;
use crate::history::{History, Limits, Line};
use crate::watch::WatchWords;
use crate::web::{self, Changes, Connection, Hosts, LetIn, Shared, Status, StatusRequest, WatchEdit, WatchList};

fn watch_list(core: &Core) -> WatchList {
    let (configured, page) = core.watch_words();
    WatchList { configured: configured.to_vec(), page: page.to_vec() }
}

/// Batches of sentences waiting for the history writer (a batch is often one
/// sentence). Toys speak a few sentences a second, and a flood of 30,000 a
/// second fills a quarter of this while one commit is written; a writer this
/// far behind means a disk that does not keep up, and sentences are then left
/// out of the history (with a warning) rather than held in memory without bound.
const WAITING_BATCHES: usize = 8192;

pub struct Page {
    lines: Option<mpsc::Sender<Vec<(Sn, Line)>>>,
    writer: tokio::task::JoinHandle<()>,
    /// Sentences left out since the last warning.
    dropped: std::sync::atomic::AtomicUsize,
    pub requests: mpsc::Receiver<StatusRequest>,
    connections: Vec<(Role, Connection)>,
    /// Reads the history beside the writer (the page, `folotoy.get_conversation`); None
    /// when no conversations are kept.
    pub reader: Option<crate::history::Reader>,
    /// The page's edits of its watch words, for the bridge's loop.
    pub watch_edits: mpsc::Receiver<WatchEdit>,
    /// Toys a parent lets back in on the page, for the bridge's loop.
    pub let_ins: mpsc::Receiver<LetIn>,
    /// The watch words in force, which mark messages on the page.
    watching: watch::Sender<WatchWords>,
}

fn now_ms() -> u64 {
    crate::dates::unix_ms(SystemTime::now())
}

impl Page {
    /// Opens the history and starts serving the page, if `web.enabled`.
    pub async fn start(
        config: &Config,
        roles: &[Role],
        zone: Option<Zone>,
        watch_words: WatchWords,
    ) -> Result<Option<Page>, RuntimeError> {
        if !config.web.enabled {
            return Ok(None);
        }
        let history = if config.history.enabled {
            let limits =
                Limits { days: config.history.days, max_bytes: u64::from(config.history.max_mb) * 1024 * 1024 };
            let dir = config.history_dir();
            let h = History::open(dir.clone(), limits, now_ms())
                .map_err(|e| ConfigError::Invalid { key: "history".into(), problem: e.to_string() })?;
            Some(Arc::new(Mutex::new(h)))
        } else {
            None
        };
        let live = watch::Sender::new(Changes::default());
        let watching = watch::Sender::new(watch_words);
        let (edits, watch_edits) = mpsc::channel(4);
        let (let_in, let_ins) = mpsc::channel(4);
        let (status, requests) = mpsc::channel(16);
        let address = (config.web.bind.as_str(), config.web.port);
        let listener = TcpListener::bind(address).await.map_err(|e| ConfigError::Invalid {
            key: "web.port".into(),
            problem: format!("cannot listen on {}:{}: {e}", config.web.bind, config.web.port),
        })?;
        info!("the page is at http://{}:{}/", config.web.bind, config.web.port);
        let web = &config.web;
        let loopback = web.bind.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback());
        // The token keeps a site elsewhere out by itself beyond loopback (the browser keeps
        // its cookie for the page's own name); behind ingress the proxy passes on whatever
        // name Home Assistant is opened by, and only it may ask.
        let hosts = (!web.ingress && (loopback || web.token.is_none())).then(|| Arc::new(Hosts::new(&web.hosts)));
        let reader = history.as_ref().map(|h| h.lock().expect("not poisoned").reader());
        let shared = Shared {
            history: reader.clone(),
            live: live.clone(),
            status,
            allow_from: config.web.allow_from.clone(),
            hosts,
            token: config.web.token.clone(),
            zone: zone.unwrap_or_else(Zone::utc),
            watch_words: watching.subscribe(),
            watch_edits: edits,
            let_ins: let_in,
        };
        tokio::spawn(web::serve(listener, shared));
        let (tx, rx) = mpsc::channel(WAITING_BATCHES);
        let writer = tokio::spawn(write_history(history.clone(), live, rx));
        let connections = roles
            .iter()
            .map(|r| (*r, Connection { name: r.title(), up: false, since_ms: None, last_error: None }))
            .collect();
        Ok(Some(Page {
            lines: Some(tx),
            writer,
            dropped: Default::default(),
            requests,
            connections,
            reader,
            watch_edits,
            let_ins,
            watching,
        }))
    }

    /// Sentences the core reported, for the history and the open pages.
    pub fn record(&self, lines: Vec<(Sn, Line)>) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(tx) = self.lines.as_ref().filter(|_| !lines.is_empty()) else { return };
        let n = lines.len();
        match tx.try_send(lines) {
            Ok(()) => {
                let dropped = self.dropped.swap(0, Relaxed);
                if dropped > 0 {
                    warn!("{dropped} sentences were left out of the conversation history: its disk fell behind");
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(n, Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => warn!("the conversation history's writer stopped"),
        }
    }

    /// At a clean stop: the sentences handed over are written and made durable.
    pub async fn finish(mut self) {
        self.lines = None;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.writer).await;
    }

    pub fn link(&mut self, role: Role, up: bool) {
        if let Some((_, c)) = self.connections.iter_mut().find(|(r, _)| *r == role) {
            if c.up != up || c.since_ms.is_none() {
                c.since_ms = Some(now_ms());
            }
            c.up = up;
        }
    }

    pub fn failed(&mut self, role: Role, error: String) {
        if let Some((_, c)) = self.connections.iter_mut().find(|(r, _)| *r == role) {
            c.last_error = Some(error);
        }
    }

    pub fn answer(&self, reply: StatusRequest, core: &Core) {
        let _ = reply.send(Status {
            view: core.view(),
            connections: self.connections.iter().map(|(_, c)| c.clone()).collect(),
            history: self.reader.is_some(),
            watch_words: watch_list(core),
        });
    }

    /// The page's watch words changed (the core took them).
    pub fn watching(&self, core: &Core) -> WatchList {
        self.watching.send_replace(core.watching().clone());
        watch_list(core)
    }
}

/// Writes sentences to the history off the bridge's loop, makes them
/// durable at most a second later (a checkpoint for every batch would cost
/// more than the bridge's own work under a chatty toy), then tells the pages
/// open now. The writer is this task's alone: the page reads on connections
/// of its own.
async fn write_history(
    history: Option<Arc<Mutex<History>>>,
    live: watch::Sender<Changes>,
    mut rx: mpsc::Receiver<Vec<(Sn, Line)>>,
) {
    let mut synced = tokio::time::Instant::now();
    let mut committed = synced;
    // Whether something written is not yet durable (kept here, so that the async thread
    // never takes the writer's lock).
    let mut unsynced = false;
    loop {
        let next = if unsynced {
            match tokio::time::timeout_at(synced + SYNC_EVERY, rx.recv()).await {
                Ok(next) => next,
                Err(_) => Some(Vec::new()), // time to sync
            }
        } else {
            rx.recv().await
        };
        let Some(mut lines) = next else { break };
        // A lone sentence is written at once. Under a flood (more already
        // waits), what comes within COMMIT_GAP of the last commit joins one
        // commit: each commit writes the table's, the index's and the search
        // index's pages. A sync alone (no sentence) makes nothing wait.
        let mut gathering = !lines.is_empty() && rx.try_recv().map(|more| lines.extend(more)).is_ok();
        while gathering {
            match tokio::time::timeout_at(committed + COMMIT_GAP, rx.recv()).await {
                Ok(Some(more)) => lines.extend(more),
                Ok(None) | Err(_) => gathering = false,
            }
        }
        if let Some(history) = history.clone() {
            let sync = synced.elapsed() >= SYNC_EVERY;
            let written = tokio::task::spawn_blocking(move || {
                let mut h = history.lock().expect("not poisoned");
                let done = h.append_all(&lines).and_then(|()| if sync { h.sync() } else { Ok(()) });
                (done, lines)
            })
            .await;
            let now = tokio::time::Instant::now();
            lines = match written {
                Ok((Err(e), lines)) => {
                    warn!("{e}");
                    lines
                }
                Ok((Ok(()), lines)) => {
                    if sync {
                        synced = now;
                    }
                    if !lines.is_empty() {
                        committed = now;
                    }
                    unsynced = !sync;
                    lines
                }
                Err(e) => {
                    warn!("writing the conversation history failed: {e}");
                    Vec::new()
                }
            };
        }
        live.send_modify(|changes| {
            for (sn, _) in &lines {
                changes.push(sn.to_string());
            }
        });
    }
    // The bridge is stopping: what was written reaches the disk.
    if let Some(history) = history {
        let _ = tokio::task::spawn_blocking(move || history.lock().expect("not poisoned").sync()).await;
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
    use crate::history::{Kind, Limits};

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
        let (tx, rx) = mpsc::channel(WAITING_BATCHES);
        for n in 0..SENTENCES {
            let line = Line {
                t: now + n,
                kind: Kind::Heard,
                recording_id: Some(n as i64),
                order: None,
                role: None,
                text: format!("sentence {n}"),
            };
            tx.try_send(vec![(sn.clone(), line)]).expect("room in the queue");
        }
        drop(tx);
        let (live, _pages) = watch::channel(Changes::default());
        write_history(Some(Arc::new(Mutex::new(history))), live, rx).await;
        let kept = reader.messages(&sn, u64::MAX, SENTENCES as usize + 1, now).unwrap();
        let texts: Vec<&str> = kept.iter().map(|m| m.text.as_str()).collect();
        let expected: Vec<String> = (0..SENTENCES).map(|n| format!("sentence {n}")).collect();
        let missing: Vec<&String> = expected.iter().filter(|e| !texts.contains(&e.as_str())).take(3).collect();
        assert!(missing.is_empty(), "{} of {SENTENCES} kept; missing {missing:?}...", texts.len());
        assert!(texts == expected, "every sentence kept, but not in order");
    }
}
