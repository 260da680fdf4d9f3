//! The page's side of the runtime: the conversation history written off the
//! bridge's loop, new sentences handed to the pages open now, the state the
//! page asks for, and what each broker connection did last.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::link::Role;
use super::repeats::{self, Repeats};
use super::RuntimeError;
use crate::bridge::Core;
use crate::config::{Config, ConfigError};
use crate::folotoy::Sn;
use crate::glance::Zone;
use crate::history::{History, HistoryError, Limits, Line, SetAside};
use crate::watch::WatchWords;
use crate::web::{
    self, Changes, Connection, Hosts, LetIn, Notice, Shared, Status, StatusRequest, WatchEdit, WatchList,
};

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
    /// What went wrong with the history, for the page to say.
    notices: Notices,
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

/// What the page says of the history beside the conversations, each told in the
/// log once as well. Kept until the bridge restarts, however many.
#[derive(Debug, Clone, Default)]
struct Notices(Arc<Mutex<Vec<Notice>>>);

impl Notices {
    const KEPT: usize = 16;

    fn tell(&self, text: String) {
        warn!("{text}");
        let mut all = self.0.lock().expect("not poisoned");
        if all.len() == Self::KEPT {
            all.remove(0);
        }
        all.push(Notice { t: now_ms(), text });
    }

    fn set_aside(&self, aside: &SetAside) {
        self.tell(format!(
            "The conversation history could not be read: {}. It was set aside as {}, where what it held may \
             still be read, and a new one was started: conversations from now on are kept.",
            aside.why,
            aside.path.display()
        ));
    }

    fn all(&self) -> Vec<Notice> {
        self.0.lock().expect("not poisoned").clone()
    }
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
        let notices = Notices::default();
        let history = if config.history.enabled {
            let limits =
                Limits { days: config.history.days, max_bytes: u64::from(config.history.max_mb) * 1024 * 1024 };
            match History::open_or_renew(config.history_dir(), limits, now_ms()) {
                Ok((h, aside)) => {
                    if let Some(aside) = aside {
                        notices.set_aside(&aside);
                    }
                    Some(Arc::new(Mutex::new(h)))
                }
                Err(e) => {
                    notices.tell(format!("No conversations are kept until the bridge restarts: {e}."));
                    None
                }
            }
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
        let writer = tokio::spawn(write_history(history.clone(), live, rx, notices.clone()));
        let connections = roles
            .iter()
            .map(|r| (*r, Connection { name: r.title(), up: false, since_ms: None, last_error: None }))
            .collect();
        Ok(Some(Page {
            notices,
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

    /// What a link did, for the Connections tab.
    pub fn saw(&mut self, ev: &super::LinkEvent) {
        match ev {
            super::LinkEvent::Up(role) => self.link(*role, true),
            super::LinkEvent::Down(role) => self.link(*role, false),
            super::LinkEvent::Failed(role, error) => self.failed(*role, error.clone()),
            super::LinkEvent::Message { .. } => {}
        }
    }

    fn link(&mut self, role: Role, up: bool) {
        if let Some((_, c)) = self.connections.iter_mut().find(|(r, _)| *r == role) {
            if c.up != up || c.since_ms.is_none() {
                c.since_ms = Some(now_ms());
            }
            c.up = up;
        }
    }

    fn failed(&mut self, role: Role, error: String) {
        if let Some((_, c)) = self.connections.iter_mut().find(|(r, _)| *r == role) {
            c.last_error = Some(error);
        }
    }

    pub fn answer(&self, reply: StatusRequest, core: &Core) {
        let _ = reply.send(Status {
            view: core.view(),
            connections: self.connections.iter().map(|(_, c)| c.clone()).collect(),
            history: self.reader.is_some(),
            notices: self.notices.all(),
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
/// of its own. A database that breaks meanwhile (see [`renew`]) is set aside
/// and the sentences go on into a new one.
async fn write_history(
    history: Option<Arc<Mutex<History>>>,
    live: watch::Sender<Changes>,
    mut rx: mpsc::Receiver<Vec<(Sn, Line)>>,
    notices: Notices,
) {
    let mut synced = tokio::time::Instant::now();
    let mut committed = synced;
    // Whether something written is not yet durable (kept here, so that the async thread
    // never takes the writer's lock).
    let mut unsynced = false;
    let trouble = history.as_ref().map(|h| h.lock().expect("not poisoned").trouble());
    let mut failures = Repeats::new(repeats::EVERY);
    loop {
        let next = tokio::select! {
            next = next_batch(&mut rx, unsynced.then_some(synced + SYNC_EVERY)) => next,
            // A reader found the database broken: the writer looks for itself.
            () = reader_trouble(trouble.as_deref()) => {
                if let Some(history) = history.clone() {
                    renew(history, &notices).await;
                }
                continue;
            }
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
            let (mut done, kept) = write(history.clone(), lines, sync).await;
            lines = kept;
            if let Err(e) = &done {
                if e.is_broken() && renew(history.clone(), &notices).await {
                    // What failed goes into the new one.
                    (done, lines) = write(history, lines, sync).await;
                }
            }
            let now = tokio::time::Instant::now();
            match done {
                Ok(()) => {
                    failures.over(&());
                    if sync {
                        synced = now;
                    }
                    if !lines.is_empty() {
                        committed = now;
                    }
                    unsynced = !sync;
                }
                // A full disk: what cannot be written is lost, told once and then every few minutes.
                Err(e) => {
                    let tell = failures.happened((), std::time::Instant::now());
                    if !tell.is_quiet() {
                        warn!("sentences left out of the conversation history: {e}{}", tell.suffix());
                    }
                }
            }
        }
        if !lines.is_empty() {
            live.send_modify(|changes| {
                for (sn, _) in &lines {
                    changes.push(sn.to_string());
                }
            });
        }
    }
    // The bridge is stopping: what was written reaches the disk.
    if let Some(history) = history {
        let _ = tokio::task::spawn_blocking(move || history.lock().expect("not poisoned").sync()).await;
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
        write_history(Some(Arc::new(Mutex::new(history))), live, rx, Notices::default()).await;
        let kept = reader.messages(&sn, u64::MAX, SENTENCES as usize + 1, now).unwrap();
        let texts: Vec<&str> = kept.iter().map(|m| m.text.as_str()).collect();
        let expected: Vec<String> = (0..SENTENCES).map(|n| format!("sentence {n}")).collect();
        let missing: Vec<&String> = expected.iter().filter(|e| !texts.contains(&e.as_str())).take(3).collect();
        assert!(missing.is_empty(), "{} of {SENTENCES} kept; missing {missing:?}...", texts.len());
        assert!(texts == expected, "every sentence kept, but not in order");
    }

    fn heard(now: u64, n: u64) -> (Sn, Line) {
        let line =
            Line { t: now + n, kind: Kind::Heard, recording_id: None, order: None, role: None, text: format!("s{n}") };
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
