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

use crate::saved::Snapshot;
use crate::store;

pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// How long a clean stop waits for the last write. The Supervisor and
/// Docker kill a container 10 s after SIGTERM.
const FINISH_WITHIN: Duration = Duration::from_secs(5);

/// The snapshot waiting to be written, shared with the writer task.
#[derive(Default)]
struct Mailbox {
    latest: Mutex<Option<Snapshot>>,
    wake: Notify,
    closed: AtomicBool,
}

/// Hands snapshots to the one task that writes the state file. Only that
/// task ever writes it, so two writes never meet in its temporary file.
pub struct Saver {
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
                let file = path.clone();
                let written = tokio::task::spawn_blocking(move || store::save(&file, &snapshot)).await;
                match written {
                    Ok(Err(e)) => warn!("{e}"),
                    Err(e) => warn!("writing the state file failed: {e}"),
                    Ok(Ok(())) => {}
                }
            }
        });
        Saver { mailbox, writer, last: None, due: None }
    }

    /// What the user set or a toy confirmed changed: write it now.
    pub fn now(&mut self, snapshot: impl FnOnce() -> Snapshot, now: Instant) {
        self.hand_over(snapshot());
        self.last = Some(now);
        self.due = None;
    }

    fn hand_over(&self, snapshot: Snapshot) {
        *self.mailbox.latest.lock().expect("not poisoned") = Some(snapshot);
        self.mailbox.wake.notify_one();
    }

    /// Only what the toys report changed: write it within [`SAVE_EVERY`]. The
    /// snapshot is only taken when it is written.
    pub fn soon(&mut self, snapshot: impl FnOnce() -> Snapshot, now: Instant) {
        match self.last {
            Some(last) if now < last + SAVE_EVERY => {
                self.due.get_or_insert(last + SAVE_EVERY);
            }
            _ => self.now(snapshot, now),
        }
    }

    pub fn when_due(&mut self, snapshot: impl FnOnce() -> Snapshot, now: Instant) {
        if self.due.is_some_and(|d| d <= now) {
            self.now(snapshot, now);
        }
    }

    /// At a clean stop: hands the final state to the writer and waits until
    /// it is written, so nothing is left only in memory. A disk that does not
    /// answer in time gets a warning, never a second writer.
    pub async fn finish(self, last: Snapshot) {
        self.hand_over(last);
        self.mailbox.closed.store(true, Ordering::Release);
        self.mailbox.wake.notify_one();
        if tokio::time::timeout(FINISH_WITHIN, self.writer).await.is_err() {
            warn!("the state file was not written within {} s of stopping", FINISH_WITHIN.as_secs());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folotoy::Sn;
    use crate::saved::ToyState;

    /// A snapshot told apart by its msgId counter.
    fn snapshot(n: u32) -> Snapshot {
        Snapshot { next_msg_id: n, ..Snapshot::default() }
    }

    /// What is on disk now; reading it never writes (a poll must not race the writer).
    fn saved(path: &std::path::Path) -> Option<u32> {
        match store::load(path) {
            Ok(store::Found::Saved(s)) => Some(s.next_msg_id),
            _ => None,
        }
    }

    async fn wait_saved(path: &std::path::Path, n: u32) {
        let start = Instant::now();
        while saved(path) != Some(n) {
            assert!(start.elapsed() < Duration::from_secs(5), "never saved {n}; on disk: {:?}", saved(path));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_confirmed_change_is_written_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut saver = Saver::start(path.clone());
        saver.now(|| snapshot(7), Instant::now());
        wait_saved(&path, 7).await;
        assert_eq!(saver.due, None);
    }

    #[test]
    fn what_toys_report_is_batched_to_one_write_a_second() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut saver = Saver::start(dir.path().join("state.json"));
            let t0 = Instant::now();
            let mut taken = 0;
            saver.soon(
                || {
                    taken += 1;
                    snapshot(1)
                },
                t0,
            );
            assert_eq!(taken, 1, "the first is written at once");
            for ms in [10, 200, 900] {
                saver.soon(
                    || {
                        taken += 1;
                        snapshot(2)
                    },
                    t0 + Duration::from_millis(ms),
                );
            }
            assert_eq!(taken, 1, "later ones within the second wait, and take no snapshot");
            assert_eq!(saver.due, Some(t0 + SAVE_EVERY));
            saver.when_due(
                || {
                    taken += 1;
                    snapshot(2)
                },
                t0 + Duration::from_millis(999),
            );
            assert_eq!(taken, 1, "not due yet");
            saver.when_due(
                || {
                    taken += 1;
                    snapshot(2)
                },
                t0 + SAVE_EVERY,
            );
            assert_eq!(taken, 2, "one write at the end of the second");
            assert_eq!(saver.due, None);
        });
    }

    #[tokio::test]
    async fn the_state_at_a_clean_stop_is_on_disk_even_while_a_write_is_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut saver = Saver::start(path.clone());
        // A big snapshot keeps the writer busy while the next ones arrive.
        let mut big = snapshot(1);
        for i in 0..2000 {
            let sn = Sn::parse(&format!("toy{i:09}")).unwrap();
            big.toys.insert(sn, ToyState { say_text: Some("x".repeat(200)), ..ToyState::default() });
        }
        saver.now(|| big, Instant::now());
        for n in 2..50 {
            saver.now(|| snapshot(n), Instant::now());
        }
        // Stopping while the writer may still be writing: the final state is what stays,
        // whole (a second writer in the same temporary file would garble it).
        saver.finish(snapshot(99)).await;
        assert_eq!(saved(&path), Some(99));
    }
}
