//! The embedded broker behind `demo`, driven by real MQTT clients.

use std::time::Duration;

use bytes::BytesMut;
use folotoy_ha_bridge::broker::{self, BrokerHandle};
use rumqttc::{AsyncClient, Connect, Event, LastWill, MqttOptions, Packet, Publish, QoS, Subscribe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const PATIENCE: Duration = Duration::from_secs(5);

async fn start_broker() -> BrokerHandle {
    broker::start("127.0.0.1:0".parse().unwrap()).await.expect("broker starts")
}

fn options(broker: &BrokerHandle, client_id: &str) -> MqttOptions {
    let addr = broker.local_addr();
    let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    options
}

/// A client whose event loop runs in its own task; incoming packets, then
/// the error that stopped it (if any), arrive on `events`.
struct Client {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Packet, String>>,
    event_loop: JoinHandle<()>,
}

impl Client {
    async fn connect(options: MqttOptions) -> Client {
        let (client, mut event_loop) = AsyncClient::new(options, 100);
        let (tx, events) = mpsc::unbounded_channel();
        let event_loop = tokio::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(packet)) => {
                        let _ = tx.send(Ok(packet));
                    }
                    Ok(Event::Outgoing(_)) => {}
                    // Stop instead of reconnecting, so tests see the drop.
                    Err(err) => {
                        let _ = tx.send(Err(err.to_string()));
                        return;
                    }
                }
            }
        });
        let mut client = Client { client, events, event_loop };
        client.expect(|p| matches!(p, Packet::ConnAck(_))).await;
        client
    }

    /// Waits for the first incoming packet `wanted` accepts, skipping others.
    async fn expect(&mut self, wanted: impl Fn(&Packet) -> bool) -> Packet {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Some(Ok(packet)) if wanted(&packet) => return packet,
                    Some(Ok(_)) => {}
                    Some(Err(err)) => panic!("client connection failed: {err}"),
                    None => panic!("client event loop ended"),
                }
            }
        };
        timeout(PATIENCE, wait).await.expect("expected packet in time")
    }

    async fn next_publish(&mut self) -> Publish {
        match self.expect(|p| matches!(p, Packet::Publish(_))).await {
            Packet::Publish(publish) => publish,
            _ => unreachable!(),
        }
    }

    async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.client.subscribe(filter, qos).await.unwrap();
        self.expect(|p| matches!(p, Packet::SubAck(_))).await;
    }

    /// Publishes at QoS 1 and waits for the broker's PUBACK, so the message
    /// is known to be routed (and retained) before the test goes on.
    async fn publish_acked(&mut self, topic: &str, retain: bool, payload: &[u8]) {
        self.client.publish(topic, QoS::AtLeastOnce, retain, payload.to_vec()).await.unwrap();
        self.expect(|p| matches!(p, Packet::PubAck(_))).await;
    }

    /// Waits until the broker closes this client's connection.
    async fn expect_disconnected(&mut self) {
        let wait = async {
            while let Some(event) = self.events.recv().await {
                if event.is_err() {
                    return;
                }
            }
        };
        timeout(PATIENCE, wait).await.expect("broker closes the connection in time");
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.event_loop.abort();
    }
}

fn encode(packet: Packet) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet.write(&mut buf, usize::MAX).unwrap();
    buf.to_vec()
}

/// A bare TCP client that has completed CONNECT/CONNACK, for sending what
/// well-behaved libraries never would.
async fn raw_connect(broker: &BrokerHandle, connect: Connect) -> TcpStream {
    let mut stream = TcpStream::connect(broker.local_addr()).await.unwrap();
    stream.write_all(&encode(Packet::Connect(connect))).await.unwrap();
    let mut connack = [0u8; 4];
    timeout(PATIENCE, stream.read_exact(&mut connack)).await.expect("CONNACK in time").unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "accepted CONNACK");
    stream
}

/// Reads (and discards) until the broker closes the socket.
async fn expect_closed_by_broker(stream: &mut TcpStream) {
    let mut sink = vec![0u8; 64 * 1024];
    let drain = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    timeout(Duration::from_secs(20), drain).await.expect("broker closes the connection in time");
}

/// Proves the broker still serves everybody: a fresh subscriber gets a
/// fresh publish.
async fn assert_broker_still_routes(broker: &BrokerHandle) {
    let mut subscriber = Client::connect(options(broker, "still-alive-sub")).await;
    subscriber.subscribe("alive/check", QoS::AtMostOnce).await;
    let mut publisher = Client::connect(options(broker, "still-alive-pub")).await;
    publisher.publish_acked("alive/check", false, b"yes").await;
    assert_eq!(&subscriber.next_publish().await.payload[..], b"yes");
}

#[tokio::test]
async fn late_subscriber_receives_the_retained_message_flagged_as_retained() {
    let broker = start_broker().await;
    let mut publisher = Client::connect(options(&broker, "publisher")).await;
    publisher.publish_acked("homeassistant/status", true, b"online").await;

    let mut subscriber = Client::connect(options(&broker, "late")).await;
    subscriber.subscribe("homeassistant/+", QoS::AtLeastOnce).await;
    let message = subscriber.next_publish().await;
    assert_eq!(message.topic, "homeassistant/status");
    assert_eq!(&message.payload[..], b"online");
    assert!(message.retain, "replayed retained messages carry the flag");
}

#[tokio::test]
async fn live_subscribers_get_retained_publishes_without_the_retain_flag() {
    let broker = start_broker().await;
    let mut subscriber = Client::connect(options(&broker, "early")).await;
    subscriber.subscribe("toys/#", QoS::AtMostOnce).await;
    let mut publisher = Client::connect(options(&broker, "publisher")).await;
    publisher.publish_acked("toys/a/state", true, b"on").await;

    let message = subscriber.next_publish().await;
    assert_eq!(&message.payload[..], b"on");
    assert!(!message.retain);
}

#[tokio::test]
async fn empty_retained_payload_forgets_the_retained_message() {
    let broker = start_broker().await;
    let mut publisher = Client::connect(options(&broker, "publisher")).await;
    publisher.publish_acked("toys/a/config", true, b"{}").await;
    publisher.publish_acked("toys/a/config", true, b"").await;

    let mut subscriber = Client::connect(options(&broker, "late")).await;
    subscriber.subscribe("toys/a/config", QoS::AtMostOnce).await;
    // Retained replays are queued right behind the SUBACK, so if one were
    // left it would arrive before this live message.
    publisher.publish_acked("toys/a/config", false, b"live").await;
    let message = subscriber.next_publish().await;
    assert_eq!(&message.payload[..], b"live");
    assert!(!message.retain);
}

#[tokio::test]
async fn wildcard_subscriptions_receive_toy_topics_that_start_with_a_slash() {
    let broker = start_broker().await;
    let mut subscriber = Client::connect(options(&broker, "bridge")).await;
    subscriber.subscribe("/sys/folotoy/+/thing/event/post", QoS::AtMostOnce).await;
    subscriber.subscribe("homeassistant/#", QoS::AtMostOnce).await;

    let mut toy = Client::connect(options(&broker, "abc12345")).await;
    // Not matched by either filter; the messages after it are.
    toy.publish_acked("/sys/folotoy/abc12345/thing/other", false, b"no").await;
    toy.publish_acked("/sys/folotoy/abc12345/thing/event/post", false, b"1").await;
    toy.publish_acked("homeassistant", false, b"2").await;
    toy.publish_acked("homeassistant/sensor/x/config", false, b"3").await;

    for (topic, payload) in [
        ("/sys/folotoy/abc12345/thing/event/post", "1"),
        ("homeassistant", "2"),
        ("homeassistant/sensor/x/config", "3"),
    ] {
        let message = subscriber.next_publish().await;
        assert_eq!((message.topic.as_str(), &message.payload[..]), (topic, payload.as_bytes()));
    }
}

#[tokio::test]
async fn qos1_publish_is_acknowledged_and_delivered_at_the_granted_qos() {
    let broker = start_broker().await;
    let mut at_least_once = Client::connect(options(&broker, "qos1-sub")).await;
    at_least_once.subscribe("cmd/#", QoS::AtLeastOnce).await;
    let mut at_most_once = Client::connect(options(&broker, "qos0-sub")).await;
    at_most_once.subscribe("cmd/#", QoS::AtMostOnce).await;

    let mut publisher = Client::connect(options(&broker, "publisher")).await;
    publisher.publish_acked("cmd/volume", false, b"50").await;

    let message = at_least_once.next_publish().await;
    assert_eq!(message.qos, QoS::AtLeastOnce);
    assert_ne!(message.pkid, 0);
    assert_eq!(&message.payload[..], b"50");
    assert_eq!(at_most_once.next_publish().await.qos, QoS::AtMostOnce);
}

#[tokio::test]
async fn last_will_is_published_and_retained_when_a_client_vanishes() {
    let broker = start_broker().await;
    let mut watcher = Client::connect(options(&broker, "watcher")).await;
    watcher.subscribe("bridge/availability", QoS::AtMostOnce).await;

    let mut toy_options = options(&broker, "bridge");
    toy_options.set_last_will(LastWill::new("bridge/availability", "offline", QoS::AtLeastOnce, true));
    let vanishing = Client::connect(toy_options).await;
    drop(vanishing); // aborts its event loop: the socket closes without DISCONNECT

    let will = watcher.next_publish().await;
    assert_eq!(&will.payload[..], b"offline");

    let mut late = Client::connect(options(&broker, "late")).await;
    late.subscribe("bridge/availability", QoS::AtMostOnce).await;
    let retained = late.next_publish().await;
    assert_eq!(&retained.payload[..], b"offline");
    assert!(retained.retain);
}

#[tokio::test]
async fn clean_disconnect_does_not_publish_the_last_will() {
    let broker = start_broker().await;
    let mut watcher = Client::connect(options(&broker, "watcher")).await;
    watcher.subscribe("bridge/availability", QoS::AtMostOnce).await;

    let mut polite_options = options(&broker, "bridge");
    polite_options.set_last_will(LastWill::new("bridge/availability", "offline", QoS::AtMostOnce, false));
    let mut polite = Client::connect(polite_options).await;
    polite.client.disconnect().await.unwrap();
    polite.expect_disconnected().await;

    let mut publisher = Client::connect(options(&broker, "publisher")).await;
    publisher.publish_acked("bridge/availability", false, b"marker").await;
    assert_eq!(&watcher.next_publish().await.payload[..], b"marker");
}

#[tokio::test]
async fn reusing_a_client_id_disconnects_the_older_connection() {
    let broker = start_broker().await;
    let mut with_will = options(&broker, "same-id");
    with_will.set_last_will(LastWill::new("same/status", "offline", QoS::AtMostOnce, true));
    let mut old = Client::connect(with_will.clone()).await;
    let mut new = Client::connect(with_will).await;
    old.expect_disconnected().await;

    new.subscribe("after/takeover", QoS::AtMostOnce).await;
    new.publish_acked("same/status", true, b"online").await;
    let mut publisher = Client::connect(options(&broker, "publisher")).await;
    publisher.publish_acked("after/takeover", false, b"hi").await;
    assert_eq!(&new.next_publish().await.payload[..], b"hi");

    // The old connection's will went out before the new one was accepted,
    // so it cannot overwrite what the new connection says.
    let mut late = Client::connect(options(&broker, "late")).await;
    late.subscribe("same/status", QoS::AtMostOnce).await;
    assert_eq!(&late.next_publish().await.payload[..], b"online");
}

#[tokio::test]
async fn shutting_the_broker_down_disconnects_clients_and_frees_the_port() {
    let broker = start_broker().await;
    let addr = broker.local_addr();
    let mut client = Client::connect(options(&broker, "client")).await;
    broker.shutdown().await;
    client.expect_disconnected().await;
    let again = broker::start(addr).await.expect("port is free again");
    assert_eq!(again.local_addr(), addr);
}

#[tokio::test]
async fn garbage_bytes_close_only_that_connection() {
    let broker = start_broker().await;
    let mut bystander = Client::connect(options(&broker, "bystander")).await;
    bystander.subscribe("still/here", QoS::AtMostOnce).await;

    // A reserved packet type, a CONNECT with a bad protocol name, a PINGREQ
    // instead of CONNECT, then a reserved packet type after a good CONNECT.
    for garbage in [&[0x00, 0x00][..], &[0x10, 0x06, 0x00, 0x04, b'X', b'Y', b'Z', b'W'][..], &[0xC0, 0x00][..]] {
        let mut stream = TcpStream::connect(broker.local_addr()).await.unwrap();
        stream.write_all(garbage).await.unwrap();
        expect_closed_by_broker(&mut stream).await;
    }
    let mut stream = raw_connect(&broker, Connect::new("garbage")).await;
    stream.write_all(&[0xF0, 0x00]).await.unwrap();
    expect_closed_by_broker(&mut stream).await;

    let mut publisher = Client::connect(options(&broker, "publisher")).await;
    publisher.publish_acked("still/here", false, b"yes").await;
    assert_eq!(&bystander.next_publish().await.payload[..], b"yes");
}

#[tokio::test]
async fn oversized_packet_closes_only_that_connection() {
    let broker = start_broker().await;
    let mut stream = raw_connect(&broker, Connect::new("too-big")).await;
    // A PUBLISH header announcing 2 MiB is refused before any payload.
    let mut header = vec![0x30];
    let mut length = 2 * 1024 * 1024_u32;
    loop {
        let byte = (length % 128) as u8;
        length /= 128;
        if length == 0 {
            header.push(byte);
            break;
        }
        header.push(byte | 0x80);
    }
    stream.write_all(&header).await.unwrap();
    expect_closed_by_broker(&mut stream).await;

    assert_broker_still_routes(&broker).await;
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_dropped_instead_of_stalling_publishers() {
    let broker = start_broker().await;
    let mut watcher = Client::connect(options(&broker, "watcher")).await;
    watcher.subscribe("stalled/will", QoS::AtMostOnce).await;

    let mut stalled_connect = Connect::new("stalled");
    stalled_connect.last_will = Some(LastWill::new("stalled/will", "gone", QoS::AtMostOnce, false));
    let mut stalled = raw_connect(&broker, stalled_connect).await;
    let mut subscribe = Subscribe::new("flood/#", QoS::AtMostOnce);
    subscribe.pkid = 1;
    stalled.write_all(&encode(Packet::Subscribe(subscribe))).await.unwrap();
    // ...and never reads again.

    let mut flooder = raw_connect(&broker, Connect::new("flooder")).await;
    let message = encode(Packet::Publish(Publish::new("flood/data", QoS::AtMostOnce, vec![0u8; 64 * 1024])));
    let flood = async {
        loop {
            for _ in 0..16 {
                flooder.write_all(&message).await.unwrap();
            }
            match watcher.events.try_recv() {
                Ok(Ok(Packet::Publish(will))) => return will,
                Ok(_) | Err(mpsc::error::TryRecvError::Empty) => {}
                Err(err) => panic!("watcher failed: {err}"),
            }
        }
    };
    let will = timeout(Duration::from_secs(30), flood)
        .await
        .expect("the stalled subscriber is dropped while the publisher keeps going");
    assert_eq!(&will.payload[..], b"gone");

    // The flooder itself was never held up: it still gets answers.
    flooder.write_all(&encode(Packet::PingReq)).await.unwrap();
    let mut pingresp = [0u8; 2];
    timeout(PATIENCE, flooder.read_exact(&mut pingresp)).await.expect("PINGRESP in time").unwrap();
    assert_eq!(pingresp, [0xD0, 0x00]);
    expect_closed_by_broker(&mut stalled).await;
}

#[tokio::test]
async fn silent_client_is_dropped_after_one_and_a_half_keep_alive_periods() {
    let broker = start_broker().await;
    let mut silent_connect = Connect::new("silent");
    silent_connect.keep_alive = 1;
    silent_connect.last_will = Some(LastWill::new("silent/will", "timed out", QoS::AtMostOnce, false));
    let mut watcher = Client::connect(options(&broker, "watcher")).await;
    watcher.subscribe("silent/will", QoS::AtMostOnce).await;

    let started = std::time::Instant::now();
    let mut silent = raw_connect(&broker, silent_connect).await;
    expect_closed_by_broker(&mut silent).await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1400), "closed after only {waited:?}");
    assert!(waited < Duration::from_secs(3), "closed only after {waited:?}");
    assert_eq!(&watcher.next_publish().await.payload[..], b"timed out");
}
