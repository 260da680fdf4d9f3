//! `cargo bench --bench bench`: the bridge (release build, its own process)
//! against the limit set by the broker itself, measured in the same run.
//!
//! - command latency: Home Assistant publishes a command, the toy receives
//!   the FoloToy command; beside it one direct hop through the same broker.
//! - event throughput: 100 toys' events turned into Home Assistant events;
//!   beside it the broker's own one-hop throughput, and two hops through a
//!   forwarder that does nothing else (the ceiling of any bridge).
//! - startup: start to all discovery published, for 1, 100 and 1,000 toys.
//! - memory and idle CPU of the bridge process, from /proc.
//! - search over the history a busy toy makes (a week of stories, and a flood:
//!   `BENCH_ONLY=stories`, p50 and p99),
//! - search over a 45 MB history, and how soon a live sentence reaches the
//!   page while pages search it without pause, on a tuned broker and on one
//!   set up as Home Assistant's Mosquitto add-on.
//!
//! Each measurement alternates or repeats the same work for the bridge and
//! for the direct hop, so both see the same machine at the same moment.

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};

#[path = "../tests/common/chunked.rs"]
mod chunked;
mod stories;
use tokio::sync::mpsc;

const COMMANDS: usize = 10_000;
const EVENTS: usize = 20_000;
const EVENT_TOYS: usize = 100;
const ROUNDS: usize = 7;
const WAIT: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A Mosquitto of the benchmark's own. Queues are unbounded so that a
/// slow reader shows up as time, never as messages silently dropped.
struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// How the benchmark's Mosquitto is set up.
#[derive(Clone, Copy)]
enum Tuning {
    /// Unbounded queues and no Nagle delay: the broker's own best.
    Tuned,
    /// As Home Assistant's Mosquitto add-on runs it, which is what users have:
    /// persistence on, at most 8,192 queued messages, Nagle's algorithm on.
    AddOn,
}

impl Tuning {
    fn name(self) -> &'static str {
        match self {
            Tuning::Tuned => "tuned broker",
            Tuning::AddOn => "the add-on's broker",
        }
    }
}

impl Broker {
    fn start() -> Broker {
        Broker::tuned(Tuning::Tuned)
    }

    fn tuned(tuning: Tuning) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let options = match tuning {
            Tuning::Tuned => "max_queued_messages 0\nmax_inflight_messages 100\nset_tcp_nodelay true\n".to_owned(),
            Tuning::AddOn => {
                format!("persistence true\npersistence_location {}/\nmax_queued_messages 8192\n", dir.path().display())
            }
        };
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\n{options}log_dest stderr\n"))
            .unwrap();
        let bin = if Path::new("/usr/sbin/mosquitto").exists() { "/usr/sbin/mosquitto" } else { "mosquitto" };
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            // Mosquitto drops root for its own user, which cannot write here:
            // its log goes to stderr, into a file the benchmark opened.
            .stderr(std::fs::File::create(dir.path().join("mosquitto.log")).unwrap())
            .spawn()
            .expect("mosquitto (apt-get install mosquitto)");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { child, port, _dir: dir }
    }

    /// The end of the broker's log, to see why a client was dropped.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self._dir.path().join("mosquitto.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bridge binary, configured for `toys`, with its state in a temp dir.
struct Bridge {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Bridge {
    fn start(broker: &Broker, toys: &[String]) -> Bridge {
        Bridge::start_in(tempfile::tempdir().unwrap(), broker, toys).0
    }

    /// Started in `dir` (which may hold a history already); also the page's port.
    fn start_in(dir: tempfile::TempDir, broker: &Broker, toys: &[String]) -> (Bridge, u16) {
        let page = free_port();
        // With the page on and conversations kept, as the add-on runs.
        let mut yaml = format!(
            "mqtt:\n  host: 127.0.0.1\n  port: {}\nstate_file: {}\nlog_level: warn\nweb:\n  enabled: true\n  port: {}\nfolotoy:\n  max_toys: 2000\n  toys:\n",
            broker.port,
            dir.path().join("state.json").display(),
            page
        );
        for sn in toys {
            yaml += &format!("    - sn: {sn}\n");
        }
        let file = dir.path().join("bridge.yaml");
        std::fs::File::create(&file).unwrap().write_all(yaml.as_bytes()).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_folotoy-ha-bridge"))
            .arg("--config")
            .arg(&file)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        (Bridge { child, _dir: dir }, page)
    }

    /// (current RSS, peak RSS) in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.child.id())
    }
}

/// CPU time a process used so far (user + system), in clock ticks of 10 ms.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn toys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("bench{i:07}")).collect()
}

/// A client whose received messages arrive on a channel with the moment
/// they came off the socket; it subscribes to `filters` at QoS 1.
async fn client(
    broker: &Broker,
    name: &str,
    filters: &[&str],
) -> (AsyncClient, mpsc::UnboundedReceiver<(Instant, String, bytes::Bytes)>) {
    let filters: Vec<(&str, QoS)> = filters.iter().map(|f| (*f, QoS::AtLeastOnce)).collect();
    client_qos(broker, name, &filters).await
}

async fn client_qos(
    broker: &Broker,
    name: &str,
    filters: &[(&str, QoS)],
) -> (AsyncClient, mpsc::UnboundedReceiver<(Instant, String, bytes::Bytes)>) {
    let mut opts = MqttOptions::new(format!("bench-{name}-{}", std::process::id()), "127.0.0.1", broker.port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    opts.set_inflight(100);
    let (c, mut ev) = AsyncClient::new(opts, 100_000);
    // As the bridge does: no Nagle delay on small messages.
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    ev.set_network_options(net);
    for (f, qos) in filters {
        c.subscribe(*f, *qos).await.unwrap();
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(pump(ev, filters.len(), tx, ready_tx));
    tokio::time::timeout(WAIT, ready_rx).await.expect("subscribed").unwrap();
    (c, rx)
}

async fn pump(
    mut ev: EventLoop,
    want: usize,
    tx: mpsc::UnboundedSender<(Instant, String, bytes::Bytes)>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut subacks = 0;
    if want == 0 {
        let _ = ready.take().unwrap().send(());
    }
    loop {
        match ev.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) if want == 0 => {}
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                subacks += 1;
                if subacks == want {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if tx.send((Instant::now(), p.topic, p.payload)).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            // The broker of a finished measurement is gone; a lost
            // connection during one shows as messages that never arrive.
            Err(_) => return,
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

struct Latency {
    bridge: (Duration, Duration),
    direct: (Duration, Duration),
}

/// Home Assistant's `say` on one toy, the toy receiving `iwantplay`, one
/// after the other; direct publishes interleaved with them.
async fn command_latency(broker: &Broker) -> Latency {
    let sn = toys(1).remove(0);
    let _bridge = Bridge::start(broker, std::slice::from_ref(&sn));
    let (ha, mut ha_rx) = client(broker, "ha", &["folotoy/bridge/state"]).await;
    // The toy: answers every command at once, as a FoloToy server would.
    let (toy, mut toy_rx) = client(broker, "toy", &["/sys/folotoy/+/thing/command/call", "bench/direct"]).await;
    loop {
        let (_, _, p) = tokio::time::timeout(WAIT, ha_rx.recv()).await.expect("bridge online").unwrap();
        if &p[..] == b"online" {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ack_topic = format!("/sys/folotoy/{sn}/thing/command/callAck");
    let say = format!("folotoy/{sn}/say/set");
    let (mut bridge, mut direct) = (Vec::with_capacity(COMMANDS), Vec::with_capacity(COMMANDS));
    for i in 0..COMMANDS * 2 {
        let via_bridge = i % 2 == 1;
        let t0 = Instant::now();
        if via_bridge {
            ha.publish(&say, QoS::AtLeastOnce, false, format!("hello {i}")).await.unwrap();
        } else {
            ha.publish("bench/direct", QoS::AtLeastOnce, false, format!("hello {i}")).await.unwrap();
        }
        let (at, topic, payload) =
            tokio::time::timeout(WAIT, toy_rx.recv()).await.expect("command reached the toy").unwrap();
        if via_bridge {
            bridge.push(at - t0);
            let cmd: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            let ack = serde_json::json!({"msgId": cmd["msgId"], "identifier": "iwantplay", "result": 1});
            toy.publish(&ack_topic, QoS::AtLeastOnce, false, ack.to_string()).await.unwrap();
        } else {
            assert_eq!(topic, "bench/direct");
            direct.push(at - t0);
        }
    }
    bridge.sort();
    direct.sort();
    Latency {
        bridge: (percentile(&bridge, 0.5), percentile(&bridge, 0.99)),
        direct: (percentile(&direct, 0.5), percentile(&direct, 0.99)),
    }
}

/// Sends `EVENTS` messages from `publisher` as fast as it can; returns the
/// seconds from the first send to the last of them received on `rx`, which
/// must receive every one (`key` names each received message uniquely).
async fn blast(
    broker: &Broker,
    publisher: &AsyncClient,
    messages: Vec<(String, String)>,
    rx: &mut mpsc::UnboundedReceiver<(Instant, String, bytes::Bytes)>,
    key: impl Fn(&str, &[u8]) -> Option<String>,
) -> f64 {
    let n = messages.len();
    let t0 = Instant::now();
    let sender = publisher.clone();
    let send = tokio::spawn(async move {
        for (topic, payload) in messages {
            sender.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
        }
    });
    let mut seen = HashSet::with_capacity(n);
    let mut last = t0;
    while seen.len() < n {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some((at, topic, payload))) => {
                if let Some(k) = key(&topic, &payload) {
                    if seen.insert(k) {
                        last = at;
                    }
                }
            }
            _ => panic!("lost {} of {n} messages; the broker's log ends:\n{}", n - seen.len(), broker.log_tail()),
        }
    }
    send.await.unwrap();
    (last - t0).as_secs_f64()
}

/// Events per second through the bridge and, as the broker's own limit, one
/// hop delivered at QoS 1 (as the toy's events are) and at QoS 0 (as the
/// bridge delivers its Conversation events).
struct Throughput {
    bridge: f64,
    one_hop: f64,
    one_hop_qos0: f64,
    /// Two hops with nothing done between them: see [`bare_forwarder`].
    bare: f64,
}

/// The least any bridge does: takes each message off its subscription and
/// publishes it again, at QoS 0 both ways as the bridge does, with the same
/// MQTT client, on a thread and runtime of its own (the bridge is a process of
/// its own). Its throughput is the ceiling of any bridge on this machine and
/// broker: every event crosses the broker twice.
fn bare_forwarder(port: u16) -> std::sync::mpsc::Receiver<()> {
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let mut opts = MqttOptions::new(format!("bench-forwarder-{}", std::process::id()), "127.0.0.1", port);
            opts.set_max_packet_size(1 << 20, 1 << 20);
            let (c, mut ev) = AsyncClient::new(opts, 100_000);
            let mut net = rumqttc::NetworkOptions::new();
            net.set_tcp_nodelay(true);
            ev.set_network_options(net);
            c.subscribe("bench/forward/+", QoS::AtMostOnce).await.unwrap();
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = p.topic.replacen("bench/forward/", "bench/forwarded/", 1);
                        let _ = c.try_publish(topic, QoS::AtMostOnce, false, p.payload);
                    }
                    Ok(_) => {}
                    // The broker of a finished measurement is gone.
                    Err(_) => return,
                }
            }
        });
    });
    ready
}

async fn event_throughput(broker: &Broker) -> Throughput {
    let sns = toys(EVENT_TOYS);
    let bridge = Bridge::start(broker, &sns);
    // The same sender and receiver for all: one hop direct, two through the bridge.
    let (server, _) = client(broker, "folotoy-server", &[]).await;
    let filters = [
        ("folotoy/+/conversation", QoS::AtLeastOnce),
        ("folotoy/bridge/state", QoS::AtLeastOnce),
        ("bench/direct/+", QoS::AtLeastOnce),
        ("bench/direct0/+", QoS::AtMostOnce),
        ("bench/forwarded/+", QoS::AtMostOnce),
    ];
    bare_forwarder(broker.port).recv_timeout(WAIT).expect("the bare forwarder subscribed");
    let (_ha, mut ha_rx) = client_qos(broker, "ha-events", &filters).await;
    loop {
        let (_, topic, p) = tokio::time::timeout(WAIT, ha_rx.recv()).await.expect("bridge online").unwrap();
        if topic == "folotoy/bridge/state" && &p[..] == b"online" {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The same payloads every way: what a toy sends, so the one hop carries
    // the same bytes as the first hop of the bridge's path.
    let event = |i: usize| {
        serde_json::json!({"msgId": i, "identifier": "recording_transcribed",
            "inputParams": {"recordingId": i, "recordingText": format!("sentence {i}")}})
        .to_string()
    };
    // Rounds alternate the paths, and the medians are compared: on a small
    // machine one run of any of them can be off by a fifth.
    let paths = [
        ("one hop, QoS 1", "bench/direct/", "bench/direct/"),
        ("one hop, QoS 0", "bench/direct0/", "bench/direct0/"),
        ("two hops, a bare forwarder", "bench/forward/", "bench/forwarded/"),
        ("through the bridge", "/sys/folotoy/", "/conversation"),
    ];
    let mut secs: [Vec<f64>; 4] = Default::default();
    for round in 0..ROUNDS {
        println!("  round {round}:");
        for (n, (name, prefix, received)) in paths.iter().enumerate() {
            let ids = round * EVENTS..(round + 1) * EVENTS;
            let messages: Vec<(String, String)> = if prefix.starts_with("/sys/") {
                ids.map(|i| (format!("/sys/folotoy/{}/thing/event/post", sns[i % EVENT_TOYS]), event(i))).collect()
            } else {
                ids.map(|i| (format!("{prefix}{}", i % EVENT_TOYS), event(i))).collect()
            };
            let cpu = Cpu::now(&bridge, broker);
            // Each event names its recording: the payload alone tells them
            // apart, and taking it as it is costs the receiver the same on
            // every path.
            let took = blast(broker, &server, messages, &mut ha_rx, |topic, p| {
                (topic.starts_with(received) || topic.ends_with(received))
                    .then(|| String::from_utf8_lossy(p).into_owned())
            })
            .await;
            println!("    {name}: {:.0}/s ({})", EVENTS as f64 / took, cpu.since(&bridge, broker, took));
            secs[n].push(took);
        }
    }
    let [one_hop, one_hop_qos0, bare, via_bridge] = secs.map(|s| EVENTS as f64 / median(s));
    Throughput { bridge: via_bridge, one_hop, one_hop_qos0, bare }
}

/// CPU used so far by the bridge, the broker and this process (the
/// benchmark's own clients), to see which of them a measurement was short of.
struct Cpu {
    ticks: [u64; 3],
}

impl Cpu {
    fn now(bridge: &Bridge, broker: &Broker) -> Cpu {
        Cpu { ticks: [bridge.cpu_ticks(), cpu_ticks(broker.child.id()), cpu_ticks(std::process::id())] }
    }

    fn since(&self, bridge: &Bridge, broker: &Broker, secs: f64) -> String {
        let now = Cpu::now(bridge, broker).ticks;
        // Ticks of 10 ms over `secs`, as a share of one CPU.
        let share = |i: usize| (now[i] - self.ticks[i]) as f64 / secs;
        format!("CPU: bridge {:.0} %, broker {:.0} %, benchmark's clients {:.0} %", share(0), share(1), share(2))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The reviewed discovery payloads of one toy: its device's config and its media player's.
fn toy_configs() -> Vec<String> {
    let snapshot: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(include_str!("../tests/snapshots/discovery-fcb467dad0c0.json")).unwrap();
    snapshot.values().map(|v| v.to_string()).collect()
}

/// Seconds from starting the bridge to the last discovery config of `n`
/// toys reaching a QoS 0 reader (as Home Assistant subscribes to
/// discovery), and the bridge, still running, for the memory figures.
async fn startup(broker: &Broker, n: usize) -> (f64, Bridge) {
    // And the bridge's and the server's devices.
    let expected = n * toy_configs().len() + 2;
    let (_watch, mut rx) = client_qos(broker, &format!("startup-{n}"), &[("homeassistant/#", QoS::AtMostOnce)]).await;
    // Configs retained by an earlier run on this broker would count too early.
    let t0 = Instant::now();
    let bridge = Bridge::start(broker, &toys(n));
    let mut seen = HashSet::new();
    let mut last = t0;
    while seen.len() < expected {
        let (at, topic, payload) = tokio::time::timeout(WAIT, rx.recv()).await.expect("all discovery").unwrap();
        if !payload.is_empty() && at >= t0 && seen.insert(topic) {
            last = at;
        }
    }
    ((last - t0).as_secs_f64(), bridge)
}

/// The same configs published by one client straight to the same reader
/// (retained, QoS 1, as the bridge publishes them): what the broker alone
/// takes, the floor under [`startup`].
async fn discovery_one_hop(broker: &Broker, n: usize) -> f64 {
    let configs = toy_configs();
    let (_watch, mut rx) = client_qos(broker, &format!("hop-{n}"), &[("bench/hop/#", QoS::AtMostOnce)]).await;
    let (publisher, _) = client_qos(broker, &format!("hop-pub-{n}"), &[]).await;
    let t0 = Instant::now();
    for i in 0..n {
        for (j, payload) in configs.iter().enumerate() {
            publisher.publish(format!("bench/hop/{i}/{j}"), QoS::AtLeastOnce, true, payload.clone()).await.unwrap();
        }
    }
    let mut last = t0;
    for _ in 0..n * configs.len() {
        let (at, _, _) = tokio::time::timeout(WAIT, rx.recv()).await.expect("every config").unwrap();
        last = at;
    }
    (last - t0).as_secs_f64()
}

/// Idle figures of a running bridge: (RSS MiB, peak RSS MiB, CPU % over 5 s).
async fn idle(bridge: &Bridge) -> (f64, f64, f64) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = bridge.cpu_ticks();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cpu = (bridge.cpu_ticks() - before) as f64 / 5.0; // ticks of 10 ms per s = %
    let (rss, peak) = bridge.memory_kib();
    (rss as f64 / 1024.0, peak as f64 / 1024.0, cpu)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        println!("folotoy-ha-bridge benchmark (release build, Mosquitto on loopback, {} CPUs)", num_cpus());
        let binary = std::fs::metadata(env!("CARGO_BIN_EXE_folotoy-ha-bridge")).map_or(0, |m| m.len());
        println!("binary: {:.2} MiB (this build, with the demo; the add-on's leaves it out)", binary as f64 / 1048576.0);
        // BENCH_ONLY=events (or latency, startup) runs one part, to look into it.
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        if only == "events" {
            let t = event_throughput(&Broker::start()).await;
            println!(
                "events/s: bridge {:.0}, one hop {:.0} (QoS 0: {:.0}), bare forwarder {:.0}",
                t.bridge, t.one_hop, t.one_hop_qos0, t.bare
            );
            return;
        }
        if only == "latency" {
            let l = command_latency(&Broker::start()).await;
            println!("p50/p99: bridge {:?}/{:?}, direct {:?}/{:?}", l.bridge.0, l.bridge.1, l.direct.0, l.direct.1);
            return;
        }
        if only == "search" {
            let s = search_times();
            println!("{s}");
            return;
        }
        if only == "stories" {
            let runs = std::env::var("BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(200);
            println!("| query | p50 | p99 | runs |");
            println!("|---|---|---|---|");
            for row in stories::rows(runs) {
                println!("{row}");
            }
            return;
        }
        if only == "live" {
            println!("{}", live_row(Tuning::Tuned.name(), live_while_searching(Tuning::Tuned).await));
            println!("{}", live_row(Tuning::AddOn.name(), live_while_searching(Tuning::AddOn).await));
            return;
        }
        if only == "startup" {
            for tuning in [Tuning::Tuned, Tuning::AddOn] {
                let broker = Broker::tuned(tuning);
                let (secs, bridge) = startup(&broker, 1000).await;
                let hop = discovery_one_hop(&broker, 1000).await;
                let (rss, peak, cpu) = idle(&bridge).await;
                println!(
                    "1000 toys ({}): {:.0} ms (one hop {:.0} ms), RSS {rss:.1} MiB, peak {peak:.1} MiB, CPU {cpu:.1} %",
                    tuning.name(),
                    secs * 1000.0,
                    hop * 1000.0
                );
            }
            return;
        }
        let searched = search_times();
        let story_rows = stories::rows(100);
        let live = [
            live_row(Tuning::Tuned.name(), live_while_searching(Tuning::Tuned).await),
            live_row(Tuning::AddOn.name(), live_while_searching(Tuning::AddOn).await),
        ];
        let lat = command_latency(&Broker::start()).await;
        let events = event_throughput(&Broker::start()).await;
        let mut starts = Vec::new();
        let mut memory = Vec::new();
        for (n, tuning) in [(1, Tuning::Tuned), (100, Tuning::Tuned), (1000, Tuning::Tuned), (1000, Tuning::AddOn)] {
            let broker = Broker::tuned(tuning);
            let (secs, bridge) = startup(&broker, n).await;
            let hop = discovery_one_hop(&broker, n).await;
            starts.push((n, tuning, secs, hop));
            if let Tuning::Tuned = tuning {
                memory.push((n, idle(&bridge).await));
            }
        }

        println!();
        println!("| measurement | bridge | broker alone (same run) | ratio | target |");
        println!("|---|---|---|---|---|");
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!(
            "| command latency p50 ({COMMANDS} commands) | {} | {} (direct hop) | {:.2}x | |",
            us(lat.bridge.0),
            us(lat.direct.0),
            ratio(lat.bridge.0, lat.direct.0)
        );
        println!(
            "| command latency p99 | {} | {} (direct hop) | {:.2}x | ≤ 2.5x |",
            us(lat.bridge.1),
            us(lat.direct.1),
            ratio(lat.bridge.1, lat.direct.1)
        );
        // Against both one-hop figures: the toy's events arrive at QoS 1, the
        // bridge's leave at QoS 0, which costs the broker less. And against the
        // two hops of a forwarder doing nothing: what any bridge can reach here.
        println!(
            "| event throughput, {EVENT_TOYS} toys, {EVENTS} events, 0 lost (median of {ROUNDS}) | {:.0} events/s | \
             {:.0} msgs/s (one hop, QoS 1) / {:.0} msgs/s (one hop, QoS 0) / {:.0} msgs/s (two hops, a bare \
             forwarder) | {:.0} % / {:.0} % / {:.0} % | ≥ 70 % of QoS 0 (the bare forwarder: {:.0} %) |",
            events.bridge,
            events.one_hop,
            events.one_hop_qos0,
            events.bare,
            100.0 * events.bridge / events.one_hop,
            100.0 * events.bridge / events.one_hop_qos0,
            100.0 * events.bridge / events.bare,
            100.0 * events.bare / events.one_hop_qos0
        );
        println!("{searched}");
        for row in &story_rows {
            println!("{row}");
        }
        for row in &live {
            println!("{row}");
        }
        for (n, tuning, secs, hop) in &starts {
            let target = if *n == 1000 { "< 1 s" } else { "" };
            let toys = if *n == 1 { "toy" } else { "toys" };
            println!(
                "| startup to all discovery seen at QoS 0, {n} {toys}, {} | {:.0} ms | {:.0} ms (one hop, the same configs) | \
                 {:.1}x | {target} |",
                tuning.name(),
                secs * 1000.0,
                hop * 1000.0,
                secs / hop
            );
        }
        for (n, (rss, peak, cpu)) in &memory {
            let target = if *n == 1000 { "< 16 MB, no idle CPU" } else { "" };
            let toys = if *n == 1 { "toy" } else { "toys" };
            println!(
                "| idle with {n} {toys}: RSS / peak RSS / CPU | {rss:.1} MiB / {peak:.1} MiB / {cpu:.1} % | | | {target} |"
            );
        }
    });
}

/// The conversation store at its default cap (50 MB of database, a toy's month of chatter
/// and more): searches through the page's own code, each the median of 5.
fn search_times() -> String {
    let dir = tempfile::tempdir().unwrap();
    let (h, n, filled) = filled_history(dir.path());
    let now = folotoy_ha_bridge::dates::unix_ms(std::time::SystemTime::now());
    let time = |query: &str| {
        let mut runs: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                h.search(query, 100, now).unwrap();
                t.elapsed()
            })
            .collect();
        runs.sort();
        runs[2]
    };
    let none = time("unicorn");
    let common = time("dragon number 4242");
    let chinese = time("兔子");
    // Under three characters the index cannot help: a word found nowhere reads every sentence.
    let short_none = time("刀子");
    format!(
        "| search over {:.0} MB of conversations ({n} sentences, filled in {:.1} s): no match / a phrase / a \
         two-character Chinese word / two characters found nowhere | {} / {} / {} / {} | 0.62 s for no match \
         over 50 MB (the JSON-lines store before) | | the page stops a search at 3 s |",
        h.bytes() as f64 / 1048576.0,
        filled.as_secs_f64(),
        us(none),
        us(common),
        us(chinese),
        us(short_none)
    )
}

/// The toys whose month of chatter [`filled_history`] writes.
fn chatty_toys() -> Vec<String> {
    (0..10).map(|i| format!("fcb467dad0c{i}")).collect()
}

/// A history in `dir` at about 45 MB (the default cap is 50): a month of ten toys'
/// chatter in English and Chinese. With the sentences written and how long it took.
fn filled_history(dir: &Path) -> (folotoy_ha_bridge::history::History, u64, Duration) {
    use folotoy_ha_bridge::folotoy::Sn;
    use folotoy_ha_bridge::history::{History, Limits, Line, LineKind};
    let now = folotoy_ha_bridge::dates::unix_ms(std::time::SystemTime::now());
    let limits = Limits { days: 30, max_bytes: 50 << 20 };
    let mut h = History::open(dir.to_owned(), limits, now).unwrap();
    let toys: Vec<Sn> = chatty_toys().iter().map(|sn| Sn::parse(sn).unwrap()).collect();
    let start = Instant::now();
    let mut n = 0u64;
    while h.bytes() < (45 << 20) {
        let batch: Vec<(Sn, Line)> = (0..5_000)
            .map(|i| {
                n += 1;
                let t = now - 29 * 86_400_000 + n * 9_000;
                let text = if i % 2 == 0 {
                    format!("Tell me a story about the dragon number {n} who learned to fly over the sea")
                } else {
                    format!("从前有一只小兔子{n}，它住在森林里，每天和朋友们一起玩耍。")
                };
                let kind = if i % 3 == 0 { LineKind::Heard } else { LineKind::Said };
                let line = Line {
                    t,
                    kind,
                    recording_id: Some((n / 3) as i64),
                    order: Some((n % 3) as i64 + 1),
                    role: Some(1),
                    text,
                };
                (toys[(n % 10) as usize].clone(), line)
            })
            .collect();
        h.append_all(&batch).unwrap();
    }
    h.sync().unwrap();
    (h, n, start.elapsed())
}

/// One HTTP/1.1 GET to the page; the body.
async fn page_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("the page listens");
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw)).await.expect("an answer").unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}\n{body}");
    if head.to_lowercase().contains("transfer-encoding: chunked") {
        chunked::unchunk(body)
    } else {
        body.to_owned()
    }
}

/// How soon a sentence reaches the page while searches run without pause:
/// the bridge with a 45 MB history, two pages searching it over and over
/// (a phrase, and two characters the index cannot help with, which read every
/// sentence), and a third page waiting for news as the page does
/// (`api/updates`, then `api/messages`), timed from the toy's publish.
/// (p50, p99, max, searches made meanwhile).
async fn live_while_searching(tuning: Tuning) -> (Duration, Duration, Duration, usize) {
    const SENTENCES: usize = 100;
    let broker = Broker::tuned(tuning);
    let dir = tempfile::tempdir().unwrap();
    drop(filled_history(&dir.path().join("history")));
    let toys = chatty_toys();
    let (_bridge, port) = Bridge::start_in(dir, &broker, &toys);
    let (_ha, mut ha_rx) = client(&broker, "live-ha", &["folotoy/bridge/state"]).await;
    loop {
        let (_, _, p) = tokio::time::timeout(WAIT, ha_rx.recv()).await.expect("bridge online").unwrap();
        if &p[..] == b"online" {
            break;
        }
    }
    let (toy, _) = client(&broker, "live-toy", &[]).await;
    let searches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut searchers = Vec::new();
    for query in ["dragon%20number%204242", "%E5%88%80%E5%AD%90"] {
        let (searches, stop) = (searches.clone(), stop.clone());
        searchers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                page_get(port, &format!("/api/search?q={query}")).await;
                searches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    let seq_of = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap()["seq"].as_u64().unwrap();
    let mut seq = seq_of(&page_get(port, "/api/updates").await);
    let topic = format!("/sys/folotoy/{}/thing/event/post", toys[0]);
    let messages = format!("/api/messages?sn={}&limit=5", toys[0]);
    let mut took = Vec::with_capacity(SENTENCES);
    for i in 0..SENTENCES {
        let text = format!("live sentence {i} while searching");
        let event = serde_json::json!({"msgId": i, "identifier": "recording_transcribed",
            "inputParams": {"recordingId": 1_000_000 + i, "recordingText": text}});
        let t0 = Instant::now();
        toy.publish(&topic, QoS::AtLeastOnce, false, event.to_string()).await.unwrap();
        loop {
            seq = seq_of(&page_get(port, &format!("/api/updates?after={seq}")).await);
            if page_get(port, &messages).await.contains(&text) {
                break;
            }
            assert!(t0.elapsed() < WAIT, "the sentence never reached the page");
        }
        took.push(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in searchers {
        let _ = s.await;
    }
    took.sort();
    let searched = searches.load(std::sync::atomic::Ordering::Relaxed);
    (percentile(&took, 0.5), percentile(&took, 0.99), took[SENTENCES - 1], searched)
}

fn live_row(name: &str, (p50, p99, max, searches): (Duration, Duration, Duration, usize)) -> String {
    format!(
        "| a live sentence reaching the page (toy's publish to `api/messages`), 100 sentences while 2 pages \
         search 45 MB without pause ({searches} searches), {name}: p50 / p99 / max | {} / {} / {} | | | < 1 s |",
        us(p50),
        us(p99),
        us(max)
    )
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
