//! One client connection. After the CONNECT handshake a reader and a writer
//! run side by side until either fails, the client says DISCONNECT, or the
//! broker kicks it; whatever ends first ends the connection.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{ConnAck, Connect, ConnectReturnCode, Packet, PubAck, PubComp, PubRec, Publish, UnsubAck};
use rumqttc::mqttbytes::{Protocol, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

use super::v5::{self, ReadError, Wire};
use super::{topic, Registry, CLIENT_QUEUE_CAPACITY, MAX_PACKET_SIZE};

/// A socket that never says CONNECT would otherwise be held forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Queued packets are coalesced into one write up to about this many bytes.
const WRITE_BATCH: usize = 64 * 1024;

/// Why the broker ended a connection; only ever logged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CloseReason {
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed without DISCONNECT")]
    Closed,
    #[error("malformed packet: {0}")]
    Malformed(String),
    #[error("packet of {0} bytes is over the {MAX_PACKET_SIZE}-byte limit")]
    TooLarge(usize),
    #[error("nothing received within 1.5 x keep-alive ({0:?})")]
    KeepAliveExpired(Duration),
    #[error("no CONNECT within {CONNECT_TIMEOUT:?}")]
    NoConnect,
    #[error("CONNECT refused: {0:?}")]
    Refused(ConnectReturnCode),
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("it reads too slowly: its queue of {CLIENT_QUEUE_CAPACITY} outgoing batches is full")]
    TooSlow,
    #[error("another connection took over its client id")]
    TakenOver,
}

impl CloseReason {
    /// The client misbehaved, as opposed to just going away.
    fn is_warning(&self) -> bool {
        matches!(
            self,
            Self::Malformed(_)
                | Self::TooLarge(_)
                | Self::NoConnect
                | Self::Refused(_)
                | Self::Protocol(_)
                | Self::TooSlow
        )
    }
}

pub(super) async fn serve(shared: Arc<Registry>, stream: TcpStream, peer: SocketAddr) {
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = BytesMut::with_capacity(4096);
    let (wire, connect) = match handshake(&mut reader, &mut writer, &mut buf).await {
        Ok(hello) => hello,
        Err(reason) => return log_close("(before CONNECT)", peer, &reason),
    };
    let client_id = match connect.client_id.as_str() {
        // Unique among live connections, which is all a clean session needs.
        "" => format!("auto-{peer}"),
        id => id.to_owned(),
    };

    let will = connect.last_will.map(|will| {
        let mut message = Publish::from_bytes(will.topic, will.qos, will.message);
        message.retain = will.retain;
        message
    });
    let (queue, outbox) = mpsc::channel(CLIENT_QUEUE_CAPACITY);
    let (kick, kicked) = oneshot::channel();
    let connection = shared.register(&client_id, queue.clone(), kick, will);
    // A fresh queue has room, and no subscription can have queued anything yet.
    let _ = queue.try_send(vec![Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false))]);
    tracing::debug!(client = client_id, %peer, "client connected");

    let mut session =
        Session { shared, client_id, connection, queue, awaiting_release: HashSet::new(), disconnected: false };
    let keep_alive = (connect.keep_alive > 0).then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500));
    let outcome = tokio::select! {
        // First, so a kicked session reports the kick rather than its symptoms.
        biased;
        reason = kicked => Err(reason.unwrap_or(CloseReason::TakenOver)),
        result = session.read_loop(wire, &mut reader, &mut buf, keep_alive) => result,
        reason = write_loop(wire, writer, outbox) => Err(reason),
    };
    match &outcome {
        Ok(()) => tracing::debug!(client = session.client_id, %peer, "client disconnected"),
        Err(reason) => log_close(&session.client_id, peer, reason),
    }
    session.disconnected = outcome.is_ok();
}

fn log_close(client: &str, peer: SocketAddr, reason: &CloseReason) {
    if reason.is_warning() {
        tracing::warn!(client, %peer, "embedded MQTT broker dropped a client: {reason}");
    } else {
        tracing::info!(client, %peer, "embedded MQTT broker lost a client: {reason}");
    }
}

/// Reads CONNECT and refuses what this broker cannot serve, answering with
/// the matching CONNACK code so the client gets a reason.
async fn handshake(
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    buf: &mut BytesMut,
) -> Result<(Wire, Connect), CloseReason> {
    let hello = async {
        while Wire::of_connect(buf).is_none() {
            fill(reader, buf).await?;
        }
        let wire = Wire::of_connect(buf).unwrap_or(Wire::V4);
        Ok::<_, CloseReason>((wire, read_packet(wire, reader, buf).await?))
    };
    let (wire, packet) = timeout(CONNECT_TIMEOUT, hello).await.map_err(|_| CloseReason::NoConnect)??;
    let Packet::Connect(connect) = packet else {
        return Err(CloseReason::Protocol("first packet is not CONNECT"));
    };
    let refusal = if connect.protocol != Protocol::V4 {
        Some(ConnectReturnCode::RefusedProtocolVersion)
    } else if connect.client_id.is_empty() && !connect.clean_session {
        // [MQTT-3.1.3-8]: a session without a name cannot be resumed.
        Some(ConnectReturnCode::BadClientId)
    } else {
        None
    };
    if let Some(code) = refusal {
        let mut out = BytesMut::new();
        if v5::write(wire, Packet::ConnAck(ConnAck::new(code, false)), &mut out).is_ok() {
            writer.write_all(&out).await?;
        }
        return Err(CloseReason::Refused(code));
    }
    if let Some(will) = &connect.last_will {
        if !topic::valid_topic(&will.topic) {
            return Err(CloseReason::Protocol("last will topic is not a valid topic name"));
        }
    }
    Ok((wire, connect))
}

/// Reads one whole packet, refusing oversized ones from their header alone
/// so they are never buffered.
async fn read_packet(wire: Wire, reader: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<Packet, CloseReason> {
    loop {
        match v5::read(wire, buf, MAX_PACKET_SIZE) {
            Ok(packet) => return Ok(packet),
            Err(ReadError::Incomplete) => {}
            Err(ReadError::TooLarge(size)) => return Err(CloseReason::TooLarge(size)),
            Err(ReadError::Malformed(why)) => return Err(CloseReason::Malformed(why)),
        }
        fill(reader, buf).await?;
    }
}

async fn fill(reader: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<(), CloseReason> {
    buf.reserve(4096);
    match reader.read_buf(buf).await? {
        0 => Err(CloseReason::Closed),
        _ => Ok(()),
    }
}

/// Sends whatever is queued for the client. Outgoing QoS 1 messages get
/// their packet id here; nothing is kept for re-delivery (clean sessions
/// only, and TCP does not lose packets within a connection).
async fn write_loop(wire: Wire, mut writer: OwnedWriteHalf, mut outbox: mpsc::Receiver<Vec<Packet>>) -> CloseReason {
    let mut buf = BytesMut::with_capacity(4096);
    let mut last_pkid: u16 = 0;
    // The session holds a sender for as long as this runs, so `None` is moot.
    while let Some(first) = outbox.recv().await {
        let mut next = Some(first);
        while let Some(batch) = next {
            for mut packet in batch {
                if let Packet::Publish(publish) = &mut packet {
                    if publish.qos != QoS::AtMostOnce {
                        last_pkid = last_pkid % u16::MAX + 1; // 1..=65535, never 0
                        publish.pkid = last_pkid;
                    }
                }
                // Sizes were bounded on the way in, so this cannot fail in practice.
                if let Err(err) = v5::write(wire, packet, &mut buf) {
                    tracing::error!(%err, "embedded MQTT broker could not encode a packet");
                }
            }
            next = if buf.len() < WRITE_BATCH { outbox.try_recv().ok() } else { None };
        }
        if let Err(err) = writer.write_all(&buf).await {
            return err.into();
        }
        buf.clear();
    }
    CloseReason::Closed
}

/// A registered connection; dropping it takes the client out of the
/// registry (and sends its will) even if the task panics or is aborted.
struct Session {
    shared: Arc<Registry>,
    client_id: String,
    connection: u64,
    queue: mpsc::Sender<Vec<Packet>>,
    /// QoS 2 packet ids between PUBREC and PUBREL, so a re-sent PUBLISH is
    /// not routed twice.
    awaiting_release: HashSet<u16>,
    /// Set once the client said DISCONNECT, which cancels its will.
    disconnected: bool,
}

impl Session {
    /// Returns `Ok` on DISCONNECT, the only ending that skips the last will.
    async fn read_loop(
        &mut self,
        wire: Wire,
        reader: &mut OwnedReadHalf,
        buf: &mut BytesMut,
        keep_alive: Option<Duration>,
    ) -> Result<(), CloseReason> {
        loop {
            let packet = match keep_alive {
                Some(limit) => timeout(limit, read_packet(wire, reader, buf))
                    .await
                    .map_err(|_| CloseReason::KeepAliveExpired(limit))??,
                None => read_packet(wire, reader, buf).await?,
            };
            match packet {
                Packet::Publish(publish) => self.on_publish(publish)?,
                Packet::PubRel(release) => {
                    self.awaiting_release.remove(&release.pkid);
                    self.reply(Packet::PubComp(PubComp::new(release.pkid)))?;
                }
                Packet::Subscribe(subscribe) => {
                    let filters = subscribe.filters.into_iter();
                    let filters = filters.map(|f| (f.path, f.qos)).collect();
                    let (id, connection) = (&self.client_id, self.connection);
                    self.shared.subscribe(id, connection, subscribe.pkid, filters)?;
                }
                Packet::Unsubscribe(unsubscribe) => {
                    let (id, connection) = (&self.client_id, self.connection);
                    self.shared.unsubscribe(id, connection, &unsubscribe.topics)?;
                    self.reply(Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)))?;
                }
                Packet::PingReq => self.reply(Packet::PingResp)?,
                // Nothing is kept in flight towards clients, so acks need no bookkeeping.
                Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) => {}
                Packet::Disconnect => return Ok(()),
                Packet::Connect(_) => return Err(CloseReason::Protocol("second CONNECT")),
                Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                    return Err(CloseReason::Protocol("client sent a server-only packet"))
                }
            }
        }
    }

    fn on_publish(&mut self, publish: Publish) -> Result<(), CloseReason> {
        if !topic::valid_topic(&publish.topic) {
            return Err(CloseReason::Protocol("PUBLISH to an invalid topic name"));
        }
        let pkid = publish.pkid;
        match publish.qos {
            QoS::AtMostOnce => self.shared.publish(publish),
            QoS::AtLeastOnce => {
                self.shared.publish(publish);
                self.reply(Packet::PubAck(PubAck::new(pkid)))?;
            }
            QoS::ExactlyOnce => {
                if self.awaiting_release.insert(pkid) {
                    self.shared.publish(publish);
                }
                self.reply(Packet::PubRec(PubRec::new(pkid)))?;
            }
        }
        Ok(())
    }

    fn reply(&self, packet: Packet) -> Result<(), CloseReason> {
        // `Closed` cannot happen while the writer runs; `Full` means the
        // client stopped reading.
        self.queue.try_send(vec![packet]).map_err(|_| CloseReason::TooSlow)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let (id, connection) = (&self.client_id, self.connection);
        self.shared.unregister(id, connection, self.disconnected);
    }
}
