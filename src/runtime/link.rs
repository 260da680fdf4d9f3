//! One MQTT connection: options from the configuration, and a task that
//! polls it, reconnects with backoff and reports what happens.
//!
//! rumqttc reconnects on the next `poll()` with no delay at all, so a broker
//! that is down would be hammered; the pause between attempts is ours.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, Publish};
pub use rumqttc::v5::mqttbytes::QoS;
pub use rumqttc::v5::AsyncClient;
use rumqttc::v5::{Event, EventLoop, MqttOptions};
use rumqttc::{NetworkOptions, TlsConfiguration, Transport};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::bridge::Side;
use crate::config::{ConfigError, MqttConfig};

/// The largest packet the bridge takes, told to the broker in CONNECT (MQTT 5's
/// Maximum Packet Size): the broker drops a larger message for this client
/// instead of sending it. Under MQTT 3.1.1 a message over the client's limit
/// could only end the connection, and a retained one ended every reconnection
/// too, so any client of the broker could take the bridge off it for good.
/// Between the parsers' limit (64 KiB, [`crate::folotoy::messages::MAX_PAYLOAD`])
/// and this, a message arrives and is refused with a warning naming its topic;
/// over this, only the broker sees it. It bounds what one message costs in memory.
pub const MAX_INCOMING: u32 = 4 * 1024 * 1024;
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Which broker a link is: Home Assistant's, FoloToy's, or one for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ha,
    FoloToy,
    Both,
}

impl Role {
    pub fn serves(self, side: Side) -> bool {
        matches!((self, side), (Role::Both, _) | (Role::Ha, Side::Ha) | (Role::FoloToy, Side::FoloToy))
    }

    /// Where its broker is in the configuration.
    fn key(self) -> &'static str {
        match self {
            Role::FoloToy => "folotoy.mqtt",
            Role::Ha | Role::Both => "mqtt",
        }
    }

    /// How the page titles this connection.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Role::Ha => "Home Assistant's MQTT broker",
            Role::FoloToy => "FoloToy's MQTT broker",
            Role::Both => "MQTT broker (Home Assistant and FoloToy)",
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Ha => "Home Assistant's broker",
            Role::FoloToy => "FoloToy's broker",
            Role::Both => "the broker",
        }
    }
}

/// What a link reports to the bridge task.
#[derive(Debug)]
pub enum LinkEvent {
    Up(Role),
    Down(Role),
    /// Connecting failed, or the connection was lost, and why.
    Failed(Role, String),
    Message {
        role: Role,
        topic: String,
        payload: bytes::Bytes,
        retain: bool,
    },
}

/// The connection options for `cfg`, found at `key` in the configuration.
pub fn options(cfg: &MqttConfig, key: &str, will: Option<LastWill>) -> Result<MqttOptions, ConfigError> {
    let mut o = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(Some(MAX_INCOMING));
    o.set_request_channel_capacity(4096);
    // The broker's Receive Maximum (CONNACK) bounds this further: Mosquitto's 20 by default.
    o.set_outgoing_inflight_upper_limit(1000);
    if let Some((user, pass)) = credentials(cfg) {
        o.set_credentials(user, pass);
    }
    if let Some(will) = will {
        o.set_last_will(will);
    }
    if let Some(tls) = transport(cfg, key)? {
        o.set_transport(tls);
    }
    Ok(o)
}

fn credentials(cfg: &MqttConfig) -> Option<(&str, &str)> {
    let user = cfg.username.as_deref()?;
    Some((user, cfg.password.as_ref().map_or("", |p| p.expose())))
}

fn transport(cfg: &MqttConfig, key: &str) -> Result<Option<Transport>, ConfigError> {
    let tls = crate::tls::client_config(cfg, key)?;
    Ok(tls.map(|tls| Transport::tls_with_config(TlsConfiguration::Rustls(tls))))
}

/// An MQTT 3.1.1 client, as the toys and Home Assistant speak: the simulator's and the demo's.
#[cfg(feature = "demo")]
pub fn peer_client(cfg: &MqttConfig, key: &str) -> Result<(rumqttc::AsyncClient, rumqttc::EventLoop), ConfigError> {
    let mut o = rumqttc::MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(1024 * 1024, 1024 * 1024);
    o.set_inflight(1000);
    if let Some((user, pass)) = credentials(cfg) {
        o.set_credentials(user, pass);
    }
    if let Some(tls) = transport(cfg, key)? {
        o.set_transport(tls);
    }
    Ok(rumqttc::AsyncClient::new(o, 4096))
}

pub fn will(topic: String) -> LastWill {
    LastWill::new(topic, crate::ha::payloads::OFFLINE, QoS::AtLeastOnce, true, None)
}

/// Polls `eventloop` until the bridge task goes away.
/// Never waits on the bridge: the bridge publishes through this same event
/// loop, so an event loop waiting for the bridge to take a message while the
/// bridge waits for it to take a publish would stop both (and the broker
/// drops a connection whose pings stop). Incoming messages queue instead.
///
/// `configs`: Home Assistant's topics, on its link. A toy's device config
/// coming back counts only by whether it is empty (see `ha::inbound`), so
/// the bridge's own thousand configs (8 MB) are not queued whole.
pub async fn drive(
    role: Role,
    where_: String,
    mut eventloop: EventLoop,
    tx: mpsc::UnboundedSender<LinkEvent>,
    configs: Option<crate::ha::Topics>,
) {
    let mut link =
        Driver { role, where_, tx, configs, backoff: BACKOFF_START, up: false, last_error: String::new(), failed: 0 };
    loop {
        let going_on = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => link.connected(),
            Ok(Event::Incoming(Packet::Publish(p))) => link.message(p),
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => false,
            Ok(_) => true,
            Err(e) => link.failed(e.to_string()).await,
        };
        if !going_on {
            return;
        }
    }
}

/// One link's state between polls. Its methods say whether to go on: not once
/// the bridge task is gone.
struct Driver {
    role: Role,
    where_: String,
    tx: mpsc::UnboundedSender<LinkEvent>,
    configs: Option<crate::ha::Topics>,
    backoff: Duration,
    up: bool,
    last_error: String,
    /// Failed attempts since the last connection: the warning is only repeated
    /// when the error changes, this counts every one (at debug level).
    failed: u32,
}

impl Driver {
    fn connected(&mut self) -> bool {
        info!("connected to {} at {}", self.role.name(), self.where_);
        self.up = true;
        self.backoff = BACKOFF_START;
        self.last_error.clear();
        self.failed = 0;
        self.tx.send(LinkEvent::Up(self.role)).is_ok()
    }

    fn message(&self, p: Publish) -> bool {
        // MQTT says topics are UTF-8; one that is not is refused by the
        // parsers like any unknown topic, named as best it can be.
        let topic = String::from_utf8_lossy(&p.topic).into_owned();
        let ours = self.configs.as_ref().is_some_and(|t| t.parse_deletion(&topic).is_some());
        let payload = if ours && !p.payload.is_empty() { bytes::Bytes::from_static(b"{}") } else { p.payload };
        self.tx.send(LinkEvent::Message { role: self.role, topic, payload, retain: p.retain }).is_ok()
    }

    /// Says what failed (once per error while it repeats), then waits before
    /// the next attempt: rumqttc would retry at once.
    async fn failed(&mut self, error: String) -> bool {
        let (role, where_) = (self.role, &self.where_);
        let _ = self.tx.send(LinkEvent::Failed(role, error.clone()));
        if self.up {
            warn!("lost {} at {where_}: {error}{}; reconnecting", role.name(), hint(&error, role));
            self.up = false;
            if self.tx.send(LinkEvent::Down(role)).is_err() {
                return false;
            }
        } else if error != self.last_error {
            warn!("cannot connect to {} at {where_}: {error}{}; retrying", role.name(), hint(&error, role));
        }
        self.last_error = error;
        self.failed += 1;
        let delay = jitter(self.backoff);
        debug!("{} at {where_}: attempt {} failed, next in {} ms", role.name(), self.failed, delay.as_millis());
        tokio::time::sleep(delay).await;
        self.backoff = (self.backoff * 2).min(BACKOFF_CAP);
        true
    }
}

/// A broker of MQTT 3.1.1 only refuses MQTT 5's CONNECT with a code MQTT 5
/// lacks, which reads as a connection closed.
const NO_MQTT_5: &str =
    "the broker does not speak MQTT 5, which the bridge needs so that a broker drops a message too \
                         large for it instead of the message ending the connection: Mosquitto 1.6 or newer, EMQX 3 or \
                         newer and Home Assistant's Mosquitto add-on do";

/// What to check, from rumqttc's and rustls's words, naming the keys to fix.
fn hint(error: &str, role: Role) -> String {
    let key = role.key();
    if error.contains("UnsupportedProtocolVersion") {
        format!(" ({NO_MQTT_5})")
    } else if error.contains("NotAuthorized") || error.contains("BadUserNamePassword") {
        format!(" (check {key}.username and {key}.password)")
    } else if error.contains("os error 111") {
        format!(" (is a broker listening there? check {key}.host and {key}.port)")
    } else if error.contains("closed by peer") {
        format!(
            " (the broker dropped the connection: another client with the same client id ({key}.client_id), such as \
             a second bridge, takes it over, the broker refused the login, or {NO_MQTT_5})"
        )
    } else if error.contains("invalid peer certificate") {
        format!(
            " (check that {key}.ca_file is the CA that signed the broker's certificate, or that the system trusts \
             it when ca_file is unset, and that the certificate names this host)"
        )
    } else if error.contains("CertificateRequired") || (error.contains("HandshakeFailure") && error.contains("alert")) {
        format!(" (the broker may want a client certificate: set {key}.client_cert_file and {key}.client_key_file)")
    } else {
        String::new()
    }
}

/// ±20 %, so many bridges restarted together do not retry in lockstep.
fn jitter(d: Duration) -> Duration {
    let r = RandomState::new().build_hasher().finish() % 401; // 0..=400
    d * (800 + r as u32) / 1000
}

pub fn client(cfg: &MqttConfig, key: &str, will: Option<LastWill>) -> Result<(AsyncClient, EventLoop), ConfigError> {
    let mut options = options(cfg, key, will)?;
    // Commands are small and someone waits for each: without this, Nagle's
    // algorithm and delayed ACKs hold a lone publish back by up to 40 ms.
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    options.set_network_options(net);
    Ok(AsyncClient::new(options, 4096))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_tls_handshakes_say_which_keys_to_check() {
        let unknown = hint("TLS: I/O: invalid peer certificate: UnknownIssuer", Role::FoloToy);
        assert!(unknown.contains("folotoy.mqtt.ca_file"), "{unknown}");
        let no_cert = hint("I/O: received fatal alert: CertificateRequired", Role::Both);
        assert!(no_cert.contains("mqtt.client_cert_file") && no_cert.contains("mqtt.client_key_file"), "{no_cert}");
        assert_eq!(hint("I/O: timed out", Role::Ha), "");
    }

    #[test]
    fn refused_logins_missing_brokers_and_taken_client_ids_say_which_keys_to_check() {
        let login = hint("Connection refused, return code: `NotAuthorized`", Role::FoloToy);
        assert!(login.contains("folotoy.mqtt.username and folotoy.mqtt.password"), "{login}");
        let nobody = hint("I/O: Connection refused (os error 111)", Role::Ha);
        assert!(nobody.contains("mqtt.host and mqtt.port"), "{nobody}");
        let taken = hint("Connection closed by peer abruptly", Role::Both);
        assert!(taken.contains("mqtt.client_id"), "{taken}");
    }

    /// What a broker of MQTT 3.1.1 only answers to the bridge's CONNECT.
    #[tokio::test]
    async fn a_broker_without_mqtt_5_is_named_as_such() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = socket.read(&mut [0; 256]).await;
            // CONNACK, return code 1: "unacceptable protocol version" (MQTT 3.1.1, 3.2.2.3).
            socket.write_all(&[0x20, 0x02, 0x00, 0x01]).await.unwrap();
        });
        let cfg = MqttConfig { host: "127.0.0.1".into(), port, ..MqttConfig::default() };
        let (_client, mut eventloop) = client(&cfg, "mqtt", None).unwrap();
        let error = eventloop.poll().await.expect_err("refused").to_string();
        assert!(hint(&error, Role::Ha).contains("does not speak MQTT 5"), "{error}: {}", hint(&error, Role::Ha));
    }

    #[test]
    fn backoff_jitter_stays_within_20_percent() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(10));
            assert!(j >= Duration::from_secs(8) && j <= Duration::from_secs(12), "{j:?}");
        }
    }
}
