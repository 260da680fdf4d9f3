//! The I/O around the core: MQTT links, the clock, the state file.
//!
//! One task owns the [`Core`]; links feed it [`LinkEvent`]s through a
//! channel, and it sleeps until the next input or the core's next deadline,
//! so an idle bridge uses no CPU.

mod conversations;
pub mod link;
mod page;
pub mod repeats;
mod saver;

use std::future::Future;
use std::time::Duration;

use link::{AsyncClient, QoS};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::bridge::core::Level;
use crate::bridge::{Core, Input, Output, Side};
use crate::config::{Config, ConfigError, MqttConfig};
use crate::folotoy;
use crate::ha;
use crate::store::{self, StoreError};
use conversations::Conversations;
use link::{LinkEvent, Role};
use page::Page;
use repeats::Repeats;
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

struct Links {
    ha: AsyncClient,
    /// FoloToy's own broker; `None` when one broker serves both.
    folotoy: Option<AsyncClient>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Links {
    fn client(&self, side: Side) -> &AsyncClient {
        match (side, &self.folotoy) {
            (Side::FoloToy, Some(c)) => c,
            _ => &self.ha,
        }
    }
}

/// Runs the bridge until `shutdown` completes, then says `offline` and saves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RuntimeError> {
    let core_cfg = config.core()?;
    let topics = core_cfg.topics.clone();
    let state_file = config.state_file.clone();
    let loaded = store::open(&state_file)?;
    if let Some((aside, why)) = &loaded.set_aside {
        warn!("state file {} moved to {}: {why}; starting with no saved state", state_file.display(), aside.display());
    }
    let zone = core_cfg.glance.clone();
    let (mut core, logs) = Core::new(core_cfg, loaded.snapshot);
    emit_logs(&logs);
    info!("{}; state file {}", toys_known(&core), state_file.display());
    if let Some(kept_out) = toys_kept_out(&core) {
        info!("{kept_out}");
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let links = connect(&config, &topics, tx)?;
    let roles: &[Role] = if links.folotoy.is_some() { &[Role::Ha, Role::FoloToy] } else { &[Role::Both] };
    let mut page = Page::start(&config, roles, zone.clone(), core.watching().clone()).await?;
    if let (Some(zone), Some(reader)) = (&zone, page.as_ref().and_then(|p| p.reader.as_ref())) {
        let at = std::time::SystemTime::now();
        let now_ms = crate::dates::unix_ms(at);
        let today = zone.start_of(zone.day(now_ms));
        let sentences = reader.sentence_times(None, today, now_ms).unwrap_or_else(|e| {
            warn!("today's talk cannot be counted from the history ({e}): the day at a glance starts from 0");
            Vec::new()
        });
        core.begin_day(sentences, at, std::time::Instant::now());
    }
    let conversations = Conversations::new(match &page {
        Some(p) => p.reader.clone().ok_or("history.enabled is false"),
        None => Err("the page is off (web.enabled is false), and the history with it"),
    });
    let conversation_requests = topics.conversation_requests();

    let mut saver = Saver::start(state_file.clone());
    let mut refused = Repeats::new(repeats::EVERY);
    tokio::pin!(shutdown);
    loop {
        let deadline = [core.next_deadline(), saver.due].into_iter().flatten().min().map(Instant::from_std);
        let input = tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => ev,
                None => break,
            },
            Some(ask) = page_ask(&mut page) => {
                match ask {
                    Ask::Status(reply) => {
                        if let Some(p) = &page {
                            p.answer(reply, &core);
                        }
                    }
                    Ask::WatchWords((words, reply)) => match core.set_page_watch_words(words) {
                        Ok(out) => {
                            apply(&mut core, &links, &mut saver, page.as_ref(), out).await;
                            if let Some(p) = &page {
                                let _ = reply.send(Ok(p.watching(&core)));
                            }
                        }
                        Err(why) => {
                            warn!(topic = crate::bridge::core::PAGE_WATCH_WORDS, "watch words not changed: {why}");
                            let _ = reply.send(Err(why));
                        }
                    },
                    Ask::LetIn((sn, reply)) => match core.let_back_in(&sn, std::time::Instant::now()) {
                        Ok(out) => {
                            apply(&mut core, &links, &mut saver, page.as_ref(), out).await;
                            let _ = reply.send(Ok(()));
                        }
                        Err(why) => {
                            warn!(topic = crate::bridge::core::LET_BACK_IN, "{why}");
                            let _ = reply.send(Err(why));
                        }
                    },
                }
                continue;
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                let now = std::time::Instant::now();
                if core.next_deadline().is_some_and(|d| d <= now) {
                    let out = core.handle(Input::Tick, now);
                    apply(&mut core, &links, &mut saver, page.as_ref(), out).await;
                }
                saver.when_due(|| core.snapshot(), now);
                continue;
            }
            _ = &mut shutdown => break,
        };
        let mut out = Output::default();
        for ev in with_waiting(input, &mut rx, BATCH) {
            if let Some(p) = page.as_mut() {
                match &ev {
                    LinkEvent::Up(role) => p.link(*role, true),
                    LinkEvent::Down(role) => p.link(*role, false),
                    LinkEvent::Failed(role, error) => p.failed(*role, error.clone()),
                    LinkEvent::Message { .. } => {}
                }
            }
            if let LinkEvent::Message { role, topic, payload, retain } = &ev {
                if role.serves(Side::Ha) && *topic == conversation_requests {
                    conversations.handle(&topics, &links.ha, core.toys(), topic, payload, *retain);
                    continue;
                }
            }
            for input in inputs(&topics, &links, &mut refused, ev).await {
                merge(&mut out, core.handle(input, std::time::Instant::now()));
            }
        }
        apply(&mut core, &links, &mut saver, page.as_ref(), out).await;
    }

    info!("stopping: telling Home Assistant the bridge is offline");
    let _ = links.ha.publish(topics.bridge_state(), QoS::AtLeastOnce, true, "offline").await;
    for c in std::iter::once(&links.ha).chain(links.folotoy.as_ref()) {
        let _ = c.disconnect().await;
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, futures_join(links.tasks)).await;
    saver.finish(core.snapshot()).await;
    if let Some(p) = page {
        p.finish().await;
    }
    Ok(())
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

/// What the page asks of the bridge's loop.
enum Ask {
    /// The bridge's state now.
    Status(crate::web::StatusRequest),
    /// To take the page's own watch words.
    WatchWords(crate::web::WatchEdit),
    /// To let a toy deleted in Home Assistant back in.
    LetIn(crate::web::LetIn),
}

/// The page's next request; never, without a page.
async fn page_ask(page: &mut Option<Page>) -> Option<Ask> {
    match page {
        Some(p) => tokio::select! {
            Some(reply) = p.requests.recv() => Some(Ask::Status(reply)),
            Some(edit) = p.watch_edits.recv() => Some(Ask::WatchWords(edit)),
            Some(let_in) = p.let_ins.recv() => Some(Ask::LetIn(let_in)),
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

fn connect(config: &Config, topics: &ha::Topics, tx: mpsc::UnboundedSender<LinkEvent>) -> Result<Links, ConfigError> {
    let will = link::will(topics.bridge_state());
    let mut tasks = Vec::new();
    let where_ = |m: &MqttConfig, key: &str| {
        if m.tls_insecure {
            warn!(
                "{key}.tls_insecure is true: the certificate of the broker at {}:{} is not checked, so anyone between \
                 the bridge and the broker can pose as it and read everything, passwords included",
                m.host, m.port
            );
        }
        format!("{}:{}{}", m.host, m.port, if m.tls_enabled() { " (TLS)" } else { "" })
    };
    let ha_role = if config.folotoy.mqtt.is_some() { Role::Ha } else { Role::Both };
    let (ha, ev) = link::client(&config.mqtt, "mqtt", Some(will))?;
    tasks.push(tokio::spawn(link::drive(ha_role, where_(&config.mqtt, "mqtt"), ev, tx.clone(), Some(topics.clone()))));
    let folotoy = match &config.folotoy.mqtt {
        Some(m) => {
            let (c, ev) = link::client(m, "folotoy.mqtt", None)?;
            tasks.push(tokio::spawn(link::drive(Role::FoloToy, where_(m, "folotoy.mqtt"), ev, tx, None)));
            Some(c)
        }
        None => None,
    };
    Ok(Links { ha, folotoy, tasks })
}

/// Turns a link event into core inputs, parsing at the edge: bad messages
/// stop here with a warning naming the topic and the reason, told once per
/// topic and reason and a while (`refused`), not for every copy.
async fn inputs(
    topics: &ha::Topics,
    links: &Links,
    refused: &mut Repeats<(String, String)>,
    ev: LinkEvent,
) -> Vec<Input> {
    match ev {
        LinkEvent::Up(role) => {
            subscribe(topics, links, role).await;
            let mut v = Vec::new();
            if role.serves(Side::FoloToy) {
                v.push(Input::FoloToyUp);
            }
            if role.serves(Side::Ha) {
                v.push(Input::HaUp);
            }
            v
        }
        // Home Assistant's broker gone: nothing is published to it until it
        // is back, when everything is published anew (its last will already
        // told Home Assistant the bridge is offline).
        LinkEvent::Down(Role::FoloToy) => vec![Input::FoloToyDown],
        LinkEvent::Down(Role::Ha) => vec![Input::HaDown],
        LinkEvent::Down(Role::Both) => vec![Input::HaDown, Input::FoloToyDown],
        LinkEvent::Failed(..) => vec![],
        LinkEvent::Message { role, topic, payload, retain } => {
            let folotoy_topic = topic.starts_with("/sys/");
            let parsed = if role.serves(Side::FoloToy) && folotoy_topic {
                folotoy::messages::parse(&topic, &payload)
                    .map(|msg| Input::FoloToy { topic: topic.clone(), msg, at: std::time::SystemTime::now() })
                    .map_err(|e| e.to_string())
            } else if role.serves(Side::Ha) {
                ha::inbound::parse(topics, &topic, &payload, retain)
                    .map(|msg| Input::Ha { topic: topic.clone(), msg, at: std::time::SystemTime::now() })
                    .map_err(|e| e.to_string())
            } else {
                Err("not a topic this bridge subscribed to".to_owned())
            };
            match parsed {
                Ok(input) => vec![input],
                Err(reason) => {
                    let tell = refused.happened((topic.clone(), reason.clone()), std::time::Instant::now());
                    if !tell.is_quiet() {
                        warn!(topic = %topic, "{reason}{}", tell.suffix());
                    }
                    vec![]
                }
            }
        }
    }
}

async fn subscribe(topics: &ha::Topics, links: &Links, role: Role) {
    let client = links.client(if role == Role::FoloToy { Side::FoloToy } else { Side::Ha });
    let mut filters = Vec::new();
    if role.serves(Side::Ha) {
        filters.push(topics.status.clone());
        filters.push(topics.command_filter());
        filters.push(topics.deletion_watch());
        filters.push(topics.conversation_requests());
        filters.push(topics.screen_requests());
    }
    if role.serves(Side::FoloToy) {
        filters.push(folotoy::topics::TOYS_FILTER.to_owned());
        filters.push(folotoy::topics::CONFIG_ACK.to_owned());
    }
    // QoS 0, for the reason events go out at QoS 0 (`Publish::at_most_once`):
    // the broker forgets a clean session, so QoS 1 would only add a PUBACK
    // per message. Mosquitto 2.0 (its `db__ready_for_flight`) drops QoS 0
    // for a connected client only when `max_queued_messages` (1,000) wait
    // unwritten to its socket, as it drops QoS 1 beyond 20 in flight and
    // 1,000 queued; EMQX forwards QoS 0 at once and queues (and drops) only
    // QoS 1 and 2 beyond its in-flight window (its docs; not tried here).
    for f in filters {
        if let Err(e) = client.subscribe(f.clone(), QoS::AtMostOnce).await {
            warn!("cannot subscribe to {f}: {e}");
        }
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

/// Publishes `out`; while a republish has more parts, asks for and
/// publishes each in turn, so only one part is in memory at a time.
async fn apply(core: &mut Core, links: &Links, saver: &mut Saver, page: Option<&Page>, mut out: Output) {
    loop {
        let more = out.more;
        if let Some(p) = page {
            p.record(std::mem::take(&mut out.history));
        }
        apply_one(core, links, saver, out).await;
        if !more {
            return;
        }
        out = core.handle(Input::Continue, std::time::Instant::now());
    }
}

async fn apply_one(core: &Core, links: &Links, saver: &mut Saver, out: Output) {
    emit_logs(&out.logs);
    for p in newest_states(out.publish) {
        debug!(topic = %p.topic, retain = p.retain, "publish {}", String::from_utf8_lossy(&p.payload));
        let qos = if p.at_most_once { QoS::AtMostOnce } else { QoS::AtLeastOnce };
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
        Publish { side, topic: topic.into(), payload: payload.into(), retain: true, at_most_once: false }
    }

    fn event(topic: &str, payload: &str) -> Publish {
        Publish { side: Side::Ha, topic: topic.into(), payload: payload.into(), retain: false, at_most_once: true }
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
