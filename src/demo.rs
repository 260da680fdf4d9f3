//! `folotoy-ha-bridge demo`: the whole translation at work with no setup.
//!
//! An embedded broker, two simulated toys and the real bridge run in one
//! process; a scripted "Home Assistant" changes settings and speaks, and every
//! message that crosses the broker is printed in plain words. Afterwards it
//! keeps running so Home Assistant or `mosquitto_sub` can be pointed at it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet, QoS};
use serde_json::Value as Json;
use tokio::sync::oneshot;

use crate::broker;
use crate::config::{Config, MqttConfig, ToyConfig};
use crate::folotoy::Sn;
use crate::runtime;
use crate::sim::{AckMode, SimConfig, Simulator};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Port of the embedded broker; when 1883 is taken and none is given, a free one.
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on; 0.0.0.0 lets a Home Assistant on another machine connect.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Stop after the scripted tour instead of running until Ctrl-C.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the embedded broker on {0}: {1}")]
    Broker(SocketAddr, std::io::Error),
    #[error("cannot connect the demo's clients: {0}")]
    Client(#[from] rumqttc::ClientError),
    #[error(transparent)]
    Bridge(#[from] runtime::RuntimeError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("simulator: {0}")]
    Sim(#[from] crate::sim::SimError),
}

const BUNNY: &str = "fcb467dad0c0";
const BEAR: &str = "08d1f9c6a310";

pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    let broker = start_broker(&args).await?;
    let addr = broker.local_addr();
    println!("== folotoy-ha-bridge demo ==");
    println!("MQTT broker (embedded) listening on {addr}");

    let state_dir = std::env::temp_dir().join(format!("folotoy-ha-bridge-demo-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&state_dir);
    let mut config = demo_config(addr, state_dir.join("state.json"));
    // The page too, on 8099 when it is free (any free port when the broker's was asked to be any).
    let wanted = if args.port == Some(0) { 0 } else { 8099 };
    let page_port = std::net::TcpListener::bind((args.bind, wanted))
        .or_else(|_| std::net::TcpListener::bind((args.bind, 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(8099);
    config.web =
        crate::config::WebConfig { enabled: true, bind: args.bind.to_string(), port: page_port, ..Default::default() };
    let page_host = if args.bind.is_unspecified() { "127.0.0.1".to_owned() } else { args.bind.to_string() };
    println!("The page (conversations, toys, connections): http://{page_host}:{page_port}/");

    let watcher = Watcher::start(&config.mqtt).await?;
    let toys: Vec<Sn> = [BUNNY, BEAR].iter().map(|s| Sn::parse(s).expect("valid")).collect();
    let sim = Simulator::start(&config.mqtt, SimConfig { toys: toys.clone(), ack: AckMode::Ok }).await?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let bridge = tokio::spawn(runtime::run(config.clone(), async {
        let _ = stop_rx.await;
    }));

    let ha = Ha::connect(&config.mqtt).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    tour(&ha, &sim, &toys[0]).await;

    if !args.once {
        println!();
        println!("The bridge keeps running. Open http://{page_host}:{page_port}/ to see the conversation,");
        println!("point Home Assistant's MQTT integration at {addr}, or try:");
        println!("  mosquitto_sub -h {} -p {} -t 'folotoy/#' -v", addr.ip(), addr.port());
        println!("  mosquitto_pub -h {} -p {} -t folotoy/{BUNNY}/volume/set -m 55", addr.ip(), addr.port());
        println!("Ctrl-C stops it.");
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = stop_tx.send(());
    let result = bridge.await.unwrap_or(Ok(()));
    watcher.stop();
    broker.shutdown().await;
    let _ = std::fs::remove_dir_all(&state_dir);
    result.map_err(DemoError::from)
}

async fn start_broker(args: &DemoArgs) -> Result<broker::BrokerHandle, DemoError> {
    let wanted = SocketAddr::new(args.bind, args.port.unwrap_or(1883));
    match broker::start(wanted).await {
        Ok(b) => Ok(b),
        Err(_) if args.port.is_none() => {
            let any = SocketAddr::new(args.bind, 0);
            broker::start(any).await.map_err(|e| DemoError::Broker(any, e))
        }
        Err(e) => Err(DemoError::Broker(wanted, e)),
    }
}

fn demo_config(addr: SocketAddr, state_file: std::path::PathBuf) -> Config {
    // Listening on every address still means connecting to loopback here.
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
    let folotoy = crate::config::FoloToyConfig {
        toys: vec![
            ToyConfig { sn: BUNNY.into(), name: Some("Bunny".into()) },
            ToyConfig { sn: BEAR.into(), name: Some("Bear".into()) },
        ],
        command_timeout_s: 2.0,
        ..Default::default()
    };
    Config {
        mqtt: MqttConfig { host, port: addr.port(), ..MqttConfig::default() },
        folotoy,
        state_file,
        ..Config::default()
    }
}

/// The scripted part: what a user would do from Home Assistant.
async fn tour(ha: &Ha, sim: &Simulator, bunny: &Sn) {
    let step = |title: &str| println!("\n-- {title}");
    step("Home Assistant sets the bunny's volume to 30; the toy confirms");
    ha.set(bunny, "volume", "30").await;
    step("Bedtime: sleep after 10 minutes");
    ha.set(bunny, "sleep_after", "600").await;
    step("Announce dinner through the bunny");
    ha.set(bunny, "say", "Dinner is ready!").await;
    step("The toy refuses a command: the volume goes back to the confirmed 30");
    sim.set_ack(AckMode::Refuse);
    ha.set(bunny, "volume", "80").await;
    sim.set_ack(AckMode::Ok);
    step("An impossible value is refused before it reaches the toy");
    ha.set(bunny, "sleep_after", "10").await;
    step("The toy is switched off: no answer, the bridge says so");
    sim.set_ack(AckMode::Silent);
    ha.set_and_wait(bunny, "recording_mode", "Continuous conversation", Duration::from_millis(2600)).await;
    sim.set_ack(AckMode::Ok);
    step("The child talks to the toy");
    let _ = sim.heard(bunny, 7, "Can we take a bath?").await;
    let _ = sim.said(bunny, 7, 1, "Of course!").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Plays Home Assistant's part: publishes to command topics.
struct Ha {
    client: AsyncClient,
    _task: tokio::task::JoinHandle<()>,
}

impl Ha {
    async fn connect(mqtt: &MqttConfig) -> Result<Ha, DemoError> {
        let mut m = mqtt.clone();
        m.client_id = "demo-home-assistant".into();
        let (client, mut ev) = runtime::link::peer_client(&m, "mqtt")?;
        let task = tokio::spawn(async move { while ev.poll().await.is_ok() {} });
        Ok(Ha { client, _task: task })
    }

    async fn set(&self, sn: &Sn, key: &str, value: &str) {
        self.set_and_wait(sn, key, value, Duration::from_millis(700)).await
    }

    async fn set_and_wait(&self, sn: &Sn, key: &str, value: &str, wait: Duration) {
        let topic = format!("folotoy/{sn}/{key}/set");
        let _ = self.client.publish(topic, QoS::AtLeastOnce, false, value.to_owned()).await;
        tokio::time::sleep(wait).await;
    }
}

/// Prints every message on the broker in plain words.
struct Watcher(tokio::task::JoinHandle<()>);

impl Watcher {
    async fn start(mqtt: &MqttConfig) -> Result<Watcher, DemoError> {
        let mut m = mqtt.clone();
        m.client_id = "demo-watcher".into();
        let (client, mut ev) = runtime::link::peer_client(&m, "mqtt")?;
        client.subscribe("#", QoS::AtLeastOnce).await?;
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut ready = Some(ready_tx);
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        for line in describe(&p.topic, &p.payload).iter().flat_map(|l| l.lines()) {
                            println!("   {line}");
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        let _ = ready_rx.await;
        Ok(Watcher(task))
    }

    fn stop(self) {
        self.0.abort();
    }
}

/// One message in plain words, or `None` for noise the reader need not see.
pub fn describe(topic: &str, payload: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(payload);
    if let Some(rest) = topic.strip_prefix("homeassistant/") {
        if payload.is_empty() {
            return Some(format!("bridge -> HA    discovery removed: {rest}"));
        }
        let cfg: Json = serde_json::from_str(&text).ok()?;
        let line = |c: &Json| {
            let id = c["default_entity_id"].as_str().unwrap_or(rest);
            format!("bridge -> HA    discovery: {id} \"{}\"", c["name"].as_str().unwrap_or(""))
        };
        // A device config: its device, then a line per entity (triggers have none).
        let Some(components) = cfg["components"].as_object() else { return Some(line(&cfg)) };
        let device = format!("bridge -> HA    discovery: device \"{}\"", cfg["device"]["name"].as_str().unwrap_or(""));
        let entities = components.values().filter(|c| c.get("default_entity_id").is_some()).map(line);
        return Some(std::iter::once(device).chain(entities).collect::<Vec<_>>().join("\n"));
    }
    if topic.starts_with("/sys/") {
        let json: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        let sn = topic.split('/').nth(3).unwrap_or("?");
        if topic.ends_with("/command/call") {
            return Some(format!(
                "bridge -> toy   {sn} {} msgId {} {}",
                json["identifier"].as_str().unwrap_or("?"),
                json["msgId"],
                json["inputParams"]
            ));
        }
        if topic.ends_with("/callAck") {
            let result = if json["result"] == 1 { "ok" } else { "FAILED" };
            return Some(format!("toy -> bridge   {sn} answers msgId {}: {result}", json["msgId"]));
        }
        if topic.ends_with("/event/post") {
            let p = &json["inputParams"];
            let said = p["recordingText"].as_str().or(p["voiceText"].as_str()).unwrap_or("");
            return Some(format!("toy -> bridge   {sn} {}: \"{said}\"", json["identifier"].as_str().unwrap_or("?")));
        }
        return Some(format!("FoloToy         {topic} {text}"));
    }
    if topic.ends_with("/set") {
        return Some(format!("HA -> bridge    {topic} = {text}"));
    }
    Some(format!("bridge -> HA    {topic} = {text}"))
}
