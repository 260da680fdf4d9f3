//! The page's side of the runtime: the conversation history written off the
//! bridge's loop, new sentences handed to the pages open now, the state the
//! page asks for, and what each broker connection did last.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::link::Role;
use super::writer::write_history;
use super::RuntimeError;
use crate::bridge::Core;
use crate::config::{Config, ConfigError};
use crate::folotoy::Sn;
use crate::glance::Zone;
use crate::history::{History, Limits, Line, SetAside};
use crate::watch::WatchWords;
use crate::web::{
    self, Changes, Connection, Forgot, Hosts, LetIn, Notice, PageState, Status, StatusRequest, WatchEdit, WatchList,
};

fn watch_list(core: &Core) -> WatchList {
    let (configured, page) = core.watch_words();
    let lists = crate::watch_lists::shown(core.watch_lists());
    WatchList { configured: configured.to_vec(), page: page.to_vec(), lists }
}

/// Batches of sentences waiting for the history writer (a batch is often one
/// sentence). Toys speak a few sentences a second, and a flood of 30,000 a
/// second fills a quarter of this while one commit is written; a writer this
/// far behind means a disk that does not keep up, and sentences are then left
/// out of the history (with a warning) rather than held in memory without bound.
pub(super) const WAITING_BATCHES: usize = 8192;

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
    /// Deletions done (on the page, or asked by Home Assistant), for the bridge's loop to
    /// follow...
    pub forgotten: mpsc::Receiver<Forgot>,
    /// ...and where they are told.
    pub forgetting: mpsc::Sender<Forgot>,
    /// The watch words in force, which mark messages on the page.
    watching: watch::Sender<WatchWords>,
}

pub(super) fn now_ms() -> u64 {
    crate::dates::unix_ms(SystemTime::now())
}

/// What the page says of the history beside the conversations, each told in the
/// log once as well. Kept until the bridge restarts, however many.
#[derive(Debug, Clone, Default)]
pub(super) struct Notices(Arc<Mutex<Vec<Notice>>>);

impl Notices {
    const KEPT: usize = 16;

    pub(super) fn tell(&self, text: String) {
        warn!("{text}");
        let mut all = self.0.lock().expect("not poisoned");
        if all.len() == Self::KEPT {
            all.remove(0);
        }
        all.push(Notice { t: now_ms(), text });
    }

    pub(super) fn set_aside(&self, aside: &SetAside) {
        self.tell(format!(
            "The conversation history could not be read: {}. It was set aside as {}, where what it held may \
             still be read, and a new one was started: conversations from now on are kept.",
            aside.why,
            aside.path.display()
        ));
    }

    pub(super) fn all(&self) -> Vec<Notice> {
        self.0.lock().expect("not poisoned").clone()
    }
}

/// The history, when one is kept: a broken one set aside (said in `notices`), and none
/// when not even a new one can be started, rather than no bridge.
fn open_history(config: &Config, notices: &Notices) -> Option<Arc<Mutex<History>>> {
    if !config.history.enabled {
        return None;
    }
    let limits = Limits { days: config.history.days, max_bytes: u64::from(config.history.max_mb) * 1024 * 1024 };
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
}

async fn listen(web: &crate::config::WebConfig) -> Result<TcpListener, ConfigError> {
    let listener = TcpListener::bind((web.bind.as_str(), web.port)).await.map_err(|e| ConfigError::Invalid {
        key: "web.port".into(),
        problem: format!("cannot listen on {}:{}: {e}", web.bind, web.port),
    })?;
    info!("the page is at http://{}:{}/", web.bind, web.port);
    Ok(listener)
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
        let history = open_history(config, &notices);
        let live = watch::Sender::new(Changes::default());
        let watching = watch::Sender::new(watch_words);
        let (edits, watch_edits) = mpsc::channel(4);
        let (let_in, let_ins) = mpsc::channel(4);
        let (forgetting, forgotten) = mpsc::channel(4);
        let (status, requests) = mpsc::channel(16);
        let listener = listen(&config.web).await?;
        let web = &config.web;
        let loopback = web.bind.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback());
        // The token keeps a site elsewhere out by itself beyond loopback (the browser keeps
        // its cookie for the page's own name); behind ingress the proxy passes on whatever
        // name Home Assistant is opened by, and only it may ask.
        let hosts = (!web.ingress && (loopback || web.token.is_none())).then(|| Arc::new(Hosts::new(&web.hosts)));
        let reader = history.as_ref().map(|h| h.lock().expect("not poisoned").reader());
        let shared = PageState {
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
            forgotten: forgetting.clone(),
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
            forgotten,
            forgetting,
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

    /// The page's watch words or ready lists changed (the core took them).
    pub fn watching(&self, core: &Core) -> WatchList {
        self.watching.send_replace(core.watching().clone());
        watch_list(core)
    }
}
