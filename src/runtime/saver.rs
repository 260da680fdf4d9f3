//! Writing the state file without holding up the bridge.
//!
//! A write is an fsync, which can take milliseconds; done in the loop that
//! turns commands into FoloToy commands, every command would wait for the
//! disk. So snapshots go to a writer task, which always writes the newest
//! one (older ones waiting are skipped: the newest holds all they hold) and
//! keeps none once written: with a thousand toys a snapshot is megabytes.
//! What the user set or a toy confirmed is handed over at once; what the
//! toys merely report (a chatty toy changes it with every sentence) at most
//! once per [`SAVE_EVERY`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::bridge::Core;
use crate::store::{self, Snapshot};

pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The snapshot waiting to be written, shared with the writer task.
#[derive(Default)]
struct Mailbox {
    latest: Mutex<Option<Snapshot>>,
    wake: Notify,
    closed: AtomicBool,
}

pub struct Saver {
    path: PathBuf,
    mailbox: Arc<Mailbox>,
    writer: JoinHandle<()>,
    last: Option<Instant>,
    /// When a batched change must be handed over.
    pub due: Option<Instant>,
}

impl Saver {
    pub fn start(path: PathBuf) -> Saver {
        let mailbox = Arc::new(Mailbox::default());
        let inbox = mailbox.clone();
        let file = path.clone();
        let writer = tokio::spawn(async move {
            loop {
                let taken = inbox.latest.lock().expect("not poisoned").take();
                let Some(snapshot) = taken else {
                    if inbox.closed.load(Ordering::Acquire) {
                        return;
                    }
                    inbox.wake.notified().await;
                    continue;
                };
                let file = file.clone();
                let written = tokio::task::spawn_blocking(move || store::save(&file, &snapshot)).await;
                match written {
                    Ok(Err(e)) => warn!("{e}"),
                    Err(e) => warn!("writing the state file failed: {e}"),
                    Ok(Ok(())) => {}
                }
            }
        });
        Saver { path, mailbox, writer, last: None, due: None }
    }

    /// What the user set or a toy confirmed changed: write it now.
    pub fn now(&mut self, core: &Core, now: Instant) {
        *self.mailbox.latest.lock().expect("not poisoned") = Some(core.snapshot());
        self.mailbox.wake.notify_one();
        self.last = Some(now);
        self.due = None;
    }

    /// Only what the toys report changed: write it within [`SAVE_EVERY`].
    pub fn soon(&mut self, core: &Core, now: Instant) {
        match self.last {
            Some(last) if now < last + SAVE_EVERY => {
                self.due.get_or_insert(last + SAVE_EVERY);
            }
            _ => self.now(core, now),
        }
    }

    pub fn when_due(&mut self, core: &Core, now: Instant) {
        if self.due.is_some_and(|d| d <= now) {
            self.now(core, now);
        }
    }

    /// At a clean stop: lets the writer finish, then writes the final state
    /// itself, so nothing is left only in memory.
    pub async fn finish(self, core: &Core) {
        self.mailbox.closed.store(true, Ordering::Release);
        self.mailbox.wake.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.writer).await;
        if let Err(e) = store::save(&self.path, &core.snapshot()) {
            warn!("{e}");
        }
    }
}
