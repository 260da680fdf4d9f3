//! A small in-process MQTT broker (3.1.1, and 5 as 3.1.1) so that `demo` runs on a machine
//! without Mosquitto. The real tests keep using Mosquitto; this only has to
//! be correct for what the demo needs, and must never take the process down.
//!
//! Supported: CONNECT (any credentials, clean sessions only), PUBLISH at
//! QoS 0/1/2 from clients, delivery at `min(publish QoS, granted QoS)`,
//! retained messages, `+`/`#` wildcards, UNSUBSCRIBE, PINGREQ, DISCONNECT,
//! last wills, keep-alive timeouts and client id takeover.
//!
//! Left out on purpose: persistent sessions (`clean_session = false` is
//! served as a clean session), re-delivery of unacknowledged QoS 1 messages
//! (only needed across reconnects of persistent sessions), outgoing QoS 2
//! (subscriptions asking for QoS 2 are granted QoS 1; incoming QoS 2 gets
//! the full PUBREC/PUBREL/PUBCOMP handshake), authentication, TLS, MQTT 5's
//! properties (MQTT 5 clients are served as 3.1.1 ones, see `v5`).

mod connection;
mod topic;
mod v5;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rumqttc::mqttbytes::v4::{Packet, Publish};
use rumqttc::mqttbytes::QoS;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use connection::CloseReason;

/// Bigger packets close the connection that sent them, so one bad client
/// cannot make the broker buffer without bound.
pub const MAX_PACKET_SIZE: usize = 1024 * 1024;

/// Batches of packets (usually one packet each) waiting for one client. A
/// client this far behind is dropped rather than letting publishers wait.
pub const CLIENT_QUEUE_CAPACITY: usize = 256;

/// Starts a broker on `addr` (port 0 picks a free port) and returns once it
/// accepts connections, so callers can connect straight away.
pub async fn start(addr: SocketAddr) -> std::io::Result<BrokerHandle> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let task = tokio::spawn(accept_loop(listener, Arc::default()));
    tracing::info!(%local_addr, "embedded MQTT broker listening");
    Ok(BrokerHandle { local_addr, task })
}

/// Keeps the broker alive: dropping it stops the listener and closes every
/// connection.
#[derive(Debug)]
pub struct BrokerHandle {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl BrokerHandle {
    /// The address actually bound, which matters when port 0 was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Like dropping the handle, but returns only once the listener is
    /// closed, so the port can be bound again straight away.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for BrokerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Registry>) {
    // Owning the connection tasks here means aborting this task (dropping
    // the set) aborts them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection::serve(shared.clone(), stream, peer));
                }
                Err(err) => {
                    // Usually out of file descriptors; back off instead of spinning.
                    tracing::warn!(%err, "embedded MQTT broker failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = connections.join_next() => {
                if let Err(err) = done {
                    tracing::error!(%err, "embedded MQTT broker connection task failed");
                }
            }
        }
    }
}

/// State shared by all connections. A plain mutex is enough: it is never
/// held across an `.await`, and routing only does non-blocking sends.
#[derive(Default)]
struct Registry {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    clients: HashMap<String, Client>,
    retained: BTreeMap<String, Publish>,
    next_connection: u64,
}

struct Client {
    /// Tells a stale session's cleanup apart from the live one's after a takeover.
    connection: u64,
    /// Batches keep a SUBACK and its retained replay in one slot, however
    /// many retained messages match.
    queue: mpsc::Sender<Vec<Packet>>,
    kick: oneshot::Sender<CloseReason>,
    subscriptions: HashMap<String, QoS>,
    /// Published by whoever removes the entry, unless the client said
    /// DISCONNECT.
    will: Option<Publish>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The maps stay consistent even if a holder panicked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a connection under `client_id`. Whoever had the id is
    /// kicked and, as Mosquitto does, its will is published right here:
    /// before the new connection's CONNACK, so a stale "offline" can never
    /// land after the new connection's "online".
    fn register(
        &self,
        client_id: &str,
        queue: mpsc::Sender<Vec<Packet>>,
        kick: oneshot::Sender<CloseReason>,
        will: Option<Publish>,
    ) -> u64 {
        let mut state = self.lock();
        state.next_connection += 1;
        let connection = state.next_connection;
        let client = Client { connection, queue, kick, subscriptions: HashMap::new(), will };
        if let Some(old) = state.clients.insert(client_id.to_owned(), client) {
            let _ = old.kick.send(CloseReason::TakenOver);
            if let Some(will) = old.will {
                state.route(will);
            }
        }
        connection
    }

    /// Removes this connection's entry unless someone else already did, and
    /// publishes its will if it ended without DISCONNECT.
    fn unregister(&self, client_id: &str, connection: u64, disconnected: bool) {
        let mut state = self.lock();
        if state.clients.get(client_id).map(|c| c.connection) != Some(connection) {
            return;
        }
        let will = state.clients.remove(client_id).and_then(|c| c.will);
        if let Some(will) = will.filter(|_| !disconnected) {
            state.route(will);
        }
    }

    fn publish(&self, message: Publish) {
        self.lock().route(message);
    }

    /// Records the subscriptions and answers with SUBACK followed by the
    /// matching retained messages, all under one lock so no publish can slip
    /// in between and be missed or duplicated.
    fn subscribe(
        &self,
        client_id: &str,
        connection: u64,
        pkid: u16,
        filters: Vec<(String, QoS)>,
    ) -> Result<(), CloseReason> {
        use rumqttc::mqttbytes::v4::{SubAck, SubscribeReasonCode};
        let mut state = self.lock();
        let State { clients, retained, .. } = &mut *state;
        let client = live_client(clients, client_id, connection)?;
        let mut codes = Vec::with_capacity(filters.len());
        let mut replay = Vec::new();
        for (filter, requested) in filters {
            if !topic::valid_filter(&filter) {
                tracing::warn!(client = client_id, filter, "refusing invalid subscription");
                codes.push(SubscribeReasonCode::Failure);
                continue;
            }
            let granted = min_qos(requested, QoS::AtLeastOnce);
            codes.push(SubscribeReasonCode::Success(granted));
            replay.extend(
                retained
                    .values()
                    .filter(|message| topic::matches(&filter, &message.topic))
                    .map(|message| outgoing(message, granted, true)),
            );
            client.subscriptions.insert(filter, granted);
        }
        let ack = Packet::SubAck(SubAck::new(pkid, codes));
        let batch = std::iter::once(ack).chain(replay).collect();
        client.queue.try_send(batch).map_err(|_| CloseReason::TooSlow)
    }

    fn unsubscribe(&self, client_id: &str, connection: u64, filters: &[String]) -> Result<(), CloseReason> {
        let mut state = self.lock();
        let client = live_client(&mut state.clients, client_id, connection)?;
        for filter in filters {
            client.subscriptions.remove(filter);
        }
        Ok(())
    }
}

impl State {
    /// Stores/clears the retained copy and queues the message for every
    /// matching subscriber without waiting on any of them. Subscribers too
    /// far behind are dropped, and their wills routed in turn.
    fn route(&mut self, message: Publish) {
        let mut pending = vec![message];
        while let Some(message) = pending.pop() {
            if message.retain {
                if message.payload.is_empty() {
                    self.retained.remove(&message.topic);
                } else {
                    self.retained.insert(message.topic.clone(), message.clone());
                }
            }
            let mut too_slow = Vec::new();
            for (client_id, client) in &self.clients {
                let granted = client
                    .subscriptions
                    .iter()
                    .filter(|(filter, _)| topic::matches(filter, &message.topic))
                    .map(|(_, qos)| *qos)
                    .max_by_key(|qos| *qos as u8);
                if let Some(granted) = granted {
                    // [MQTT-3.3.1-9]: live deliveries never carry the retain flag.
                    let delivery = vec![outgoing(&message, granted, false)];
                    if let Err(mpsc::error::TrySendError::Full(_)) = client.queue.try_send(delivery) {
                        too_slow.push(client_id.clone());
                    }
                }
            }
            for client_id in too_slow {
                if let Some(client) = self.clients.remove(&client_id) {
                    let _ = client.kick.send(CloseReason::TooSlow);
                    pending.extend(client.will);
                }
            }
        }
    }
}

/// The registry entry of this very connection, or the reason it has none:
/// another connection has taken the client id over (or kicked it as slow).
fn live_client<'a>(
    clients: &'a mut HashMap<String, Client>,
    client_id: &str,
    connection: u64,
) -> Result<&'a mut Client, CloseReason> {
    clients.get_mut(client_id).filter(|client| client.connection == connection).ok_or(CloseReason::TakenOver)
}

/// A copy of `message` for one subscriber; the packet id is filled in by
/// that subscriber's writer.
fn outgoing(message: &Publish, granted: QoS, retain: bool) -> Packet {
    let mut copy = Publish::from_bytes(message.topic.clone(), min_qos(message.qos, granted), message.payload.clone());
    copy.retain = retain;
    Packet::Publish(copy)
}

fn min_qos(a: QoS, b: QoS) -> QoS {
    if (a as u8) <= (b as u8) {
        a
    } else {
        b
    }
}
