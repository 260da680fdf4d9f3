//! The bridge's MQTT connections as the loop uses them: one client per broker
//! (one broker may serve both sides), their tasks, and what each subscribes to.

use tokio::sync::mpsc;
use tracing::warn;

use super::link::{self, AsyncClient, LinkEvent, QoS, Role};
use crate::bridge::Side;
use crate::config::{Config, ConfigError, MqttConfig};
use crate::folotoy;
use crate::ha;

pub(super) struct Links {
    pub ha: AsyncClient,
    /// FoloToy's own broker; `None` when one broker serves both.
    pub folotoy: Option<AsyncClient>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Links {
    pub fn client(&self, side: Side) -> &AsyncClient {
        match (side, &self.folotoy) {
            (Side::FoloToy, Some(c)) => c,
            _ => &self.ha,
        }
    }
}

/// Connects to Home Assistant's broker, and to FoloToy's when it is another.
pub(super) fn connect(
    config: &Config,
    topics: &ha::Topics,
    tx: mpsc::UnboundedSender<LinkEvent>,
) -> Result<Links, ConfigError> {
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

/// Subscribes to what `role`'s broker brings the bridge, on every (re)connect.
pub(super) async fn subscribe(topics: &ha::Topics, links: &Links, role: Role) {
    let client = links.client(if role == Role::FoloToy { Side::FoloToy } else { Side::Ha });
    let mut filters = Vec::new();
    if role.serves(Side::Ha) {
        filters.push(topics.status.clone());
        filters.push(topics.command_filter());
        filters.push(topics.deletion_watch());
        filters.push(topics.conversation_requests());
        filters.push(topics.conversation_deletes());
        filters.push(topics.screen_requests());
        filters.extend(topics.cloud_filters());
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

pub(super) async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}
