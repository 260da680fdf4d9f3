//! A stand-in for the FoloToy server and its toys, for the demo, the tests
//! and the benchmark: it answers commands on the integration topics the way
//! the server does (ok, refused, silent or late) and can publish events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet, QoS};
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::config::MqttConfig;
use crate::folotoy::{topics, Sn};

/// How the simulated toys answer commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// `result: 1`.
    Ok,
    /// `result: 0`, as a toy that failed the command.
    Refuse,
    /// No answer at all, as a toy that is off.
    Silent,
    /// `result: 1`, late.
    Delay(Duration),
}

impl std::str::FromStr for AckMode {
    type Err = String;
    /// `ok`, `refuse`, `silent` or `delay:<ms>`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ok" => Ok(AckMode::Ok),
            "refuse" => Ok(AckMode::Refuse),
            "silent" => Ok(AckMode::Silent),
            _ => s
                .strip_prefix("delay:")
                .and_then(|ms| ms.parse().ok())
                .map(|ms| AckMode::Delay(Duration::from_millis(ms)))
                .ok_or_else(|| format!("{s:?}: expected ok, refuse, silent or delay:<ms>")),
        }
    }
}

/// A command that reached a simulated toy (or `/sys/config`).
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub topic: String,
    /// `None` for `/sys/config`.
    pub sn: Option<Sn>,
    pub payload: Json,
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The toys this server has; commands to others get no answer. Empty:
    /// answer for any toy.
    pub toys: Vec<Sn>,
    pub ack: AckMode,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Client(#[from] rumqttc::ClientError),
}

pub struct Simulator {
    client: AsyncClient,
    mode: Arc<Mutex<AckMode>>,
    received: tokio::sync::Mutex<mpsc::UnboundedReceiver<Received>>,
    task: JoinHandle<()>,
}

impl Simulator {
    /// Connects and returns once the subscriptions are in place, so no
    /// command sent afterwards can be missed.
    /// `mqtt` has been validated, so its TLS files were fine a moment ago.
    pub async fn start(mqtt: &MqttConfig, cfg: SimConfig) -> Result<Simulator, SimError> {
        let mut m = mqtt.clone();
        m.client_id = format!("folotoy-sim-{}", std::process::id());
        let (client, mut eventloop) = crate::runtime::link::peer_client(&m, "folotoy.mqtt")?;
        client.subscribe("/sys/folotoy/+/thing/command/call", QoS::AtLeastOnce).await?;
        client.subscribe(topics::CONFIG, QoS::AtLeastOnce).await?;
        let mode = Arc::new(Mutex::new(cfg.ack));
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let answer = Answerer { client: client.clone(), mode: mode.clone(), toys: cfg.toys, received: tx };
        let resubscribe = client.clone();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut subacks = 0;
            let mut connections = 0;
            loop {
                match eventloop.poll().await {
                    // A broker that restarted forgot the subscriptions; a
                    // FoloToy server subscribes again, and so does this.
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connections += 1;
                        if connections > 1 {
                            let _ = resubscribe.try_subscribe("/sys/folotoy/+/thing/command/call", QoS::AtLeastOnce);
                            let _ = resubscribe.try_subscribe(topics::CONFIG, QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subacks += 1;
                        if subacks == 2 {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        answer.on_message(&p.topic, &p.payload, p.retain);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        debug!("simulator link: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        let _ = ready_rx.await;
        Ok(Simulator { client, mode, received: tokio::sync::Mutex::new(rx), task })
    }

    pub fn set_ack(&self, mode: AckMode) {
        *self.mode.lock().expect("not poisoned") = mode;
    }

    /// The next command received, or `None` after `timeout`.
    pub async fn next_command(&self, timeout: Duration) -> Option<Received> {
        let mut rx = self.received.lock().await;
        tokio::time::timeout(timeout, rx.recv()).await.ok().flatten()
    }

    /// Publishes what the child said, as `recording_transcribed`.
    pub async fn heard(&self, sn: &Sn, recording_id: i64, text: &str) -> Result<(), rumqttc::ClientError> {
        let p = json!({"msgId": recording_id, "identifier": "recording_transcribed",
            "inputParams": {"recordingId": recording_id, "recordingText": text}});
        self.publish(&event_topic(sn), p.to_string()).await
    }

    /// Publishes one sentence of the toy's answer, as `voice_generated`.
    pub async fn said(&self, sn: &Sn, recording_id: i64, order: i64, text: &str) -> Result<(), rumqttc::ClientError> {
        let p = json!({"msgId": recording_id * 100 + order, "identifier": "voice_generated",
            "inputParams": {"recordingId": recording_id, "order": order, "voiceText": text,
                "voiceUrl": format!("http://folotoy.invalid/voice-{recording_id}-{order}.mp3"), "role": 1, "resultCode": 1}});
        self.publish(&event_topic(sn), p.to_string()).await
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) -> Result<(), rumqttc::ClientError> {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload.into()).await
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn event_topic(sn: &Sn) -> String {
    format!("/sys/folotoy/{sn}/thing/event/post")
}

struct Answerer {
    client: AsyncClient,
    mode: Arc<Mutex<AckMode>>,
    toys: Vec<Sn>,
    received: mpsc::UnboundedSender<Received>,
}

impl Answerer {
    fn on_message(&self, topic: &str, payload: &[u8], retain: bool) {
        if retain {
            warn!(topic, "simulator: retained command ignored, as a toy would");
            return;
        }
        let Ok(payload) = serde_json::from_slice::<Json>(payload) else {
            warn!(topic, "simulator: command is not JSON");
            return;
        };
        let (sn, ack_topic) = if topic == topics::CONFIG {
            (None, topics::CONFIG_ACK.to_owned())
        } else {
            let Some(topics::ToyTopic::Call(sn)) = topics::classify(topic) else { return };
            let Ok(sn) = Sn::parse(sn) else { return };
            if !self.toys.is_empty() && !self.toys.contains(&sn) {
                return;
            }
            let ack = format!("/sys/folotoy/{sn}/thing/command/callAck");
            (Some(sn), ack)
        };
        let mut ack = json!({"identifier": payload["identifier"].clone(), "result": 1});
        if let Some(id) = payload.get("msgId") {
            ack["msgId"] = id.clone();
        }
        let _ = self.received.send(Received { topic: topic.to_owned(), sn, payload });
        let mode = *self.mode.lock().expect("not poisoned");
        let delay = match mode {
            AckMode::Silent => return,
            AckMode::Refuse => {
                ack["result"] = 0.into();
                Duration::ZERO
            }
            AckMode::Ok => Duration::ZERO,
            AckMode::Delay(d) => d,
        };
        let client = self.client.clone();
        let body = ack.to_string();
        if delay.is_zero() {
            let _ = client.try_publish(ack_topic, QoS::AtLeastOnce, false, body);
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = client.publish(ack_topic, QoS::AtLeastOnce, false, body).await;
            });
        }
    }
}
