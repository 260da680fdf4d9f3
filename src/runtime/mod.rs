//! The I/O around the core: MQTT links, the clock, the state file, the page.
//!
//! One task owns the [`Core`] ([`Running`]); links feed it [`LinkEvent`]s
//! through a channel, parsed at the edge (`edge`), and it sleeps until the
//! next input, a page's request or the core's next deadline, so an idle
//! bridge uses no CPU. `links` holds the connections, `link` drives one,
//! `page` the page and the history's writer, `saver` the state file's.

mod conversations;
mod deletions;
mod edge;
pub mod link;
mod links;
mod page;
mod saver;
mod writer;

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::bridge::core::Level;
use crate::bridge::{Core, Input, Output, Side};
use crate::config::{Config, ConfigError};
use crate::ha;
use crate::repeats::{self, Repeats};
use crate::store::{self, StoreError};
use conversations::Conversations;
use deletions::Deletions;
use edge::inputs;
use link::{LinkEvent, QoS, Role};
use links::{connect, futures_join, Links};
use page::Page;
use saver::Saver;

/// How long shutdown waits for `offline` to reach the broker.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs the bridge until `shutdown` completes, then says `offline` and saves.
/// One loop over named steps: what a link brought, what the page asks, the
/// core's or the saver's deadline.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RuntimeError> {
    let (mut running, mut events) = Running::start(&config).await?;
    tokio::pin!(shutdown);
    loop {
        let deadline = running.deadline();
        tokio::select! {
            ev = events.recv() => match ev {
                Some(first) => running.on_links(with_waiting(first, &mut events, BATCH)).await,
                None => break,
            },
            Some(ask) = page_ask(&mut running.page) => running.on_page(ask).await,
            _ = sleep_until(deadline), if deadline.is_some() => running.on_tick().await,
            _ = &mut shutdown => break,
        }
    }
    running.stop().await;
    Ok(())
}

/// The running bridge: the core and the I/O it decides for.
struct Running {
    core: Core,
    links: Links,
    page: Option<Page>,
    saver: Saver,
    conversations: Conversations,
    deletions: Deletions,
    topics: ha::Topics,
    /// Bad messages told lately, so that copies are not (see [`inputs`]).
    refused: Repeats<(String, String)>,
}

impl Running {
    /// Loads the state file, connects, opens the page and the history; the
    /// links' events arrive on the receiver.
    async fn start(config: &Config) -> Result<(Running, mpsc::UnboundedReceiver<LinkEvent>), RuntimeError> {
        let core_cfg = config.core()?;
        let topics = core_cfg.topics.clone();
        let state_file = config.state_file.clone();
        let loaded = store::open(&state_file)?;
        if let Some((aside, why)) = &loaded.set_aside {
            warn!(
                "state file {} moved to {}: {why}; starting with no saved state",
                state_file.display(),
                aside.display()
            );
        }
        let zone = core_cfg.glance.clone();
        let (mut core, logs) = Core::new(core_cfg, loaded.snapshot);
        emit_logs(&logs);
        info!("{}; state file {}", toys_known(&core), state_file.display());
        if let Some(kept_out) = toys_kept_out(&core) {
            info!("{kept_out}");
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let links = connect(config, &topics, tx)?;
        let roles: &[Role] = if links.folotoy.is_some() { &[Role::Ha, Role::FoloToy] } else { &[Role::Both] };
        let page = Page::start(config, roles, zone.clone(), core.watching().clone()).await?;
        let reader = page.as_ref().and_then(|p| p.reader.as_ref());
        if let Some(zone) = &zone {
            begin_day(&mut core, zone, reader);
        }
        let reader = match &page {
            Some(p) => p.reader.clone().ok_or("history.enabled is false"),
            None => Err("the page is off (web.enabled is false), and the history with it"),
        };
        let conversations = Conversations::new(reader.clone(), zone.clone());
        let forgetting = page.as_ref().map(|p| p.forgetting.clone());
        let deletions = Deletions::new(reader, forgetting, zone.clone().unwrap_or_else(crate::glance::Zone::utc));
        let saver = Saver::start(state_file);
        let refused = Repeats::new(repeats::EVERY);
        Ok((Running { core, links, page, saver, conversations, deletions, topics, refused }, rx))
    }

    /// The core's next deadline or the saver's, whichever is first.
    fn deadline(&self) -> Option<Instant> {
        [self.core.next_deadline(), self.saver.due].into_iter().flatten().min().map(Instant::from_std)
    }

    /// What the links brought, handled in one go (see [`with_waiting`]).
    async fn on_links(&mut self, batch: Vec<LinkEvent>) {
        let mut out = Output::default();
        let conversation_requests = self.topics.conversation_requests();
        let conversation_deletes = self.topics.conversation_deletes();
        for ev in batch {
            if let Some(p) = self.page.as_mut() {
                p.saw(&ev);
            }
            if let LinkEvent::Message { role, topic, payload, retain } = &ev {
                if role.serves(Side::Ha) && *topic == conversation_requests {
                    let (toys, watching) = (self.core.toys(), self.core.watching());
                    self.conversations.handle(&self.topics, &self.links.ha, toys, watching, topic, payload, *retain);
                    continue;
                }
                if role.serves(Side::Ha) && *topic == conversation_deletes {
                    let toys = self.core.toys();
                    self.deletions.handle(&self.topics, &self.links.ha, toys, topic, payload, *retain);
                    continue;
                }
            }
            for input in inputs(&self.topics, &self.links, &mut self.refused, ev).await {
                merge(&mut out, self.core.handle(input, std::time::Instant::now()));
            }
        }
        self.apply(out).await;
    }

    async fn on_page(&mut self, ask: Ask) {
        match ask {
            Ask::Status(reply) => {
                if let Some(p) = &self.page {
                    p.answer(reply, &self.core);
                }
            }
            Ask::WatchWords((change, reply)) => {
                let (taken, what) = match change {
                    crate::web::WatchChange::Words(words) => (self.core.set_page_watch_words(words), "watch words"),
                    crate::web::WatchChange::Lists(lists) => (self.core.set_watch_lists(lists), "ready watch lists"),
                };
                match taken {
                    Ok(out) => {
                        self.apply(out).await;
                        if let Some(p) = &self.page {
                            let _ = reply.send(Ok(p.watching(&self.core)));
                        }
                    }
                    Err(why) => {
                        warn!(topic = crate::bridge::core::PAGE_WATCH_WORDS, "{what} not changed: {why}");
                        let _ = reply.send(Err(why));
                    }
                }
            }
            Ask::Forgot((f, reply)) => {
                let out = self.core.forgotten(&f.what, &f.gone, f.today, f.at, std::time::Instant::now());
                self.apply(out).await;
                let _ = reply.send(());
            }
            Ask::LetIn((sn, reply)) => match self.core.let_back_in(&sn, std::time::Instant::now()) {
                Ok(out) => {
                    self.apply(out).await;
                    let _ = reply.send(Ok(()));
                }
                Err(why) => {
                    warn!(topic = crate::bridge::core::LET_BACK_IN, "{why}");
                    let _ = reply.send(Err(why));
                }
            },
        }
    }

    async fn on_tick(&mut self) {
        let now = std::time::Instant::now();
        if self.core.next_deadline().is_some_and(|d| d <= now) {
            let out = self.core.handle(Input::Tick, now);
            self.apply(out).await;
        }
        let core = &self.core;
        self.saver.when_due(|| core.snapshot(), now);
    }

    /// Publishes `out`; while a republish has more parts, asks for and
    /// publishes each in turn, so only one part is in memory at a time.
    async fn apply(&mut self, mut out: Output) {
        loop {
            let more = out.more;
            if let Some(p) = &self.page {
                p.record(std::mem::take(&mut out.history));
            }
            apply_one(&self.core, &self.links, &mut self.saver, out).await;
            if !more {
                return;
            }
            out = self.core.handle(Input::Continue, std::time::Instant::now());
        }
    }

    /// Says `offline`, disconnects, saves, and lets the history finish writing.
    async fn stop(self) {
        info!("stopping: telling Home Assistant the bridge is offline");
        let links = self.links;
        let _ =
            links.ha.publish(self.topics.bridge_state(), QoS::AtLeastOnce, true, crate::ha::payloads::OFFLINE).await;
        for c in std::iter::once(&links.ha).chain(links.folotoy.as_ref()) {
            let _ = c.disconnect().await;
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, futures_join(links.tasks)).await;
        self.saver.finish(self.core.snapshot()).await;
        if let Some(p) = self.page {
            p.finish().await;
        }
    }
}

/// The day at a glance counts today's talk from the history the bridge kept
/// before this start (none if it could not be opened), and the daily limits
/// and bedtimes learn the time.
fn begin_day(core: &mut Core, zone: &crate::glance::Zone, reader: Option<&crate::history::Reader>) {
    let at = std::time::SystemTime::now();
    let now_ms = crate::dates::unix_ms(at);
    let today = zone.start_of(zone.day(now_ms));
    let sentences = reader.map_or_else(|| Ok(Vec::new()), |r| r.sentence_times(None, today, now_ms));
    let sentences = sentences.unwrap_or_else(|e| {
        warn!("today's talk cannot be counted from the history ({e}): the day at a glance starts from 0");
        Vec::new()
    });
    emit_logs(&core.begin_day(sentences, at, std::time::Instant::now()));
}

/// What the page asks of the bridge's loop.
enum Ask {
    /// The bridge's state now.
    Status(crate::web::StatusRequest),
    /// To take the page's own watch words, or its choice of ready lists.
    WatchWords(crate::web::WatchEdit),
    /// To let a toy deleted in Home Assistant back in.
    LetIn(crate::web::LetIn),
    /// To follow a deletion (on the page, or asked by Home Assistant).
    Forgot(crate::web::Forgot),
}

/// The page's next request; never, without a page.
async fn page_ask(page: &mut Option<Page>) -> Option<Ask> {
    match page {
        Some(p) => tokio::select! {
            Some(reply) = p.requests.recv() => Some(Ask::Status(reply)),
            Some(edit) = p.watch_edits.recv() => Some(Ask::WatchWords(edit)),
            Some(let_in) = p.let_ins.recv() => Some(Ask::LetIn(let_in)),
            Some(forgot) = p.forgotten.recv() => Some(Ask::Forgot(forgot)),
            else => None,
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// How many waiting messages are taken at once.
const BATCH: usize = 4096;

/// `first` and whatever else already waits, up to `max` in all, in order:
/// handled in the same go, a state that changed several times in a burst is
/// published once (see [`newest_states`]).
fn with_waiting<T>(first: T, rx: &mut mpsc::UnboundedReceiver<T>, max: usize) -> Vec<T> {
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(ev) => batch.push(ev),
            Err(_) => break,
        }
    }
    batch
}

fn merge(into: &mut Output, out: Output) {
    into.publish.extend(out.publish);
    into.logs.extend(out.logs);
    into.save |= out.save;
    into.save_soon |= out.save_soon;
    into.more |= out.more;
    into.history.extend(out.history);
}

/// Keeps only the last retained publish to each topic: the broker keeps
/// only the last one anyway, and a subscriber needs only the newest state.
/// Not-retained messages (events, commands) are all kept, in order.
fn newest_states(publish: Vec<crate::bridge::Publish>) -> Vec<crate::bridge::Publish> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<_> =
        publish.into_iter().rev().filter(|p| !p.retain || seen.insert((p.side, p.topic.clone()))).collect();
    kept.reverse();
    kept
}

/// Publishes to Home Assistant at QoS 0, commands to toys at QoS 1 (a cloud toy's too, on Home
/// Assistant's broker). With a clean session
/// QoS 1 brings nothing back that a dropped link lost, and under MQTT 5 a broker's Receive
/// Maximum (Mosquitto's 20) holds QoS 1 publishes back: on a broker that delays its
/// acknowledgements (the Mosquitto add-on: no `set_tcp_nodelay`), 1,000 toys' discovery and
/// states took 35 s at QoS 1, against well under a second at QoS 0. All of Home Assistant's at
/// one QoS, so they reach the broker in the order sent (a migration's instruction, then the
/// emptied config: a QoS 1 one waiting for the window came after a QoS 0 one). A toy's command
/// stays at QoS 1: its broker then retries it to a toy on a weak WiFi.
async fn apply_one(core: &Core, links: &Links, saver: &mut Saver, out: Output) {
    emit_logs(&out.logs);
    for p in newest_states(out.publish) {
        debug!(topic = %p.topic, retain = p.retain, "publish {}", String::from_utf8_lossy(&p.payload));
        let qos = if p.at_most_once || !p.command { QoS::AtMostOnce } else { QoS::AtLeastOnce };
        if let Err(e) = links.client(p.side).publish(p.topic.clone(), qos, p.retain, p.payload).await {
            warn!(topic = %p.topic, "cannot publish: {e}");
        }
    }
    if out.save {
        saver.now(|| core.snapshot(), std::time::Instant::now());
    } else if out.save_soon {
        saver.soon(|| core.snapshot(), std::time::Instant::now());
    }
}

/// "2 toys known: fcb467dad0c0 (Bunny), 08d1f9c6a310", so a mistyped
/// serial number shows at start; a long list is cut.
fn toys_known(core: &Core) -> String {
    const SHOWN: usize = 20;
    let count = core.toys().count();
    let shown: Vec<String> = core
        .named_toys()
        .take(SHOWN)
        .map(|(sn, name)| name.map_or_else(|| sn.to_string(), |n| format!("{sn} ({n})")))
        .collect();
    let mut list = shown.join(", ");
    if count > SHOWN {
        list.push_str(&format!(" and {} more", count - SHOWN));
    }
    match count {
        0 => "no toys known yet".to_owned(),
        1 => format!("1 toy known: {list}"),
        n => format!("{n} toys known: {list}"),
    }
}

/// "1 toy deleted in Home Assistant is kept out: 08d1f9c6a310 (deleted
/// 2026-11-30T10:00:00Z); ...", so that a toy that never comes back shows
/// why at every start; a long list is cut. None when no toy is kept out.
fn toys_kept_out(core: &Core) -> Option<String> {
    const SHOWN: usize = 20;
    let count = core.kept_out().count();
    let when = |at: Option<u64>| match at.and_then(|ms| jiff::Timestamp::from_second((ms / 1000) as i64).ok()) {
        Some(t) => format!("deleted {t}"),
        None => "deleted before its time was kept".to_owned(),
    };
    let shown: Vec<String> = core.kept_out().take(SHOWN).map(|(sn, at)| format!("{sn} ({})", when(at))).collect();
    let mut list = shown.join(", ");
    if count > SHOWN {
        list.push_str(&format!(" and {} more", count - SHOWN));
    }
    let toys = match count {
        0 => return None,
        1 => "1 toy deleted in Home Assistant is kept out".to_owned(),
        n => format!("{n} toys deleted in Home Assistant are kept out"),
    };
    Some(format!("{toys}: {list}; let one back in on the page (Toys), or list it in folotoy.toys"))
}

fn emit_logs(logs: &[crate::bridge::Log]) {
    for l in logs {
        match l.level {
            Level::Info => info!(topic = %l.topic, "{}", l.message),
            Level::Warn => warn!(topic = %l.topic, "{}", l.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::Publish;

    fn state(side: Side, topic: &str, payload: &str) -> Publish {
        Publish {
            side,
            topic: topic.into(),
            payload: payload.into(),
            retain: true,
            at_most_once: false,
            command: false,
        }
    }

    fn event(topic: &str, payload: &str) -> Publish {
        Publish {
            side: Side::Ha,
            topic: topic.into(),
            payload: payload.into(),
            retain: false,
            at_most_once: true,
            command: false,
        }
    }

    fn shown(publish: &[Publish]) -> Vec<String> {
        publish.iter().map(|p| format!("{}={}", p.topic, String::from_utf8_lossy(&p.payload))).collect()
    }

    #[test]
    fn a_state_changed_several_times_in_a_batch_is_published_once_with_its_newest_value() {
        let out = newest_states(vec![
            state(Side::Ha, "t/volume", "10"),
            event("t/conversation", "e1"),
            state(Side::Ha, "t/heard", "a"),
            state(Side::Ha, "t/volume", "20"),
            event("t/conversation", "e2"),
            state(Side::Ha, "t/volume", "30"),
        ]);
        assert_eq!(shown(&out), ["t/conversation=e1", "t/heard=a", "t/conversation=e2", "t/volume=30"]);
    }

    #[test]
    fn events_and_commands_are_all_kept_in_order() {
        let out = newest_states(vec![event("t/c", "1"), event("t/c", "2"), event("t/c", "1")]);
        assert_eq!(shown(&out), ["t/c=1", "t/c=2", "t/c=1"]);
    }

    #[test]
    fn the_same_topic_on_the_two_brokers_is_two_states() {
        let out = newest_states(vec![state(Side::Ha, "t", "ha"), state(Side::FoloToy, "t", "folotoy")]);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn a_config_emptied_after_it_was_published_stays_emptied() {
        let out = newest_states(vec![state(Side::Ha, "cfg", "{}"), state(Side::Ha, "cfg", "")]);
        assert_eq!(shown(&out), ["cfg="]);
    }

    #[tokio::test]
    async fn a_batch_takes_what_waits_in_order_and_no_more_than_its_size() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 1..=5 {
            tx.send(i).unwrap();
        }
        assert_eq!(with_waiting(0, &mut rx, 4), [0, 1, 2, 3]);
        assert_eq!(with_waiting(10, &mut rx, 4), [10, 4, 5], "the rest, then nothing waits");
        assert_eq!(with_waiting(20, &mut rx, 4), [20]);
    }
}
