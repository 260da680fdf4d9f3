//! MQTT 5 clients of the embedded broker. The bridge speaks MQTT 5 (to tell a
//! broker the largest message it takes), the toys and Home Assistant 3.1.1, so
//! a connection's packets are translated to and from the 3.1.1 ones the broker
//! routes. Properties are read and dropped, and the broker sends none: a client
//! that asked for a Maximum Packet Size is never sent more than the broker's
//! own [`super::MAX_PACKET_SIZE`], which is below what the bridge asks.

use bytes::{Buf, BytesMut};
use rumqttc::mqttbytes::v4::{self, Packet};
use rumqttc::mqttbytes::{Protocol, QoS};
use rumqttc::v5::mqttbytes::v5 as five;
use rumqttc::v5::mqttbytes::{Error, QoS as Qos5};

/// Which MQTT a connection speaks, known from its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    V4,
    V5,
}

impl Wire {
    /// The protocol level in a CONNECT at the start of `buf`, once enough of
    /// it is there: the fixed header, its length, then "MQTT" and the level.
    pub(super) fn of_connect(buf: &[u8]) -> Option<Wire> {
        let length_bytes = buf.iter().skip(1).take(4).position(|b| b & 0x80 == 0)? + 1;
        let level = *buf.get(1 + length_bytes + 6)?;
        Some(if level == 5 { Wire::V5 } else { Wire::V4 })
    }
}

/// Why a packet could not be read.
pub(super) enum ReadError {
    Incomplete,
    TooLarge(usize),
    Malformed(String),
}

/// One whole packet of a connection speaking `wire`, as the broker routes it.
pub(super) fn read(wire: Wire, buf: &mut BytesMut, max: usize) -> Result<Packet, ReadError> {
    match wire {
        Wire::V4 => Packet::read(buf, max).map_err(|e| match e {
            rumqttc::mqttbytes::Error::InsufficientBytes(_) => ReadError::Incomplete,
            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(size) => ReadError::TooLarge(size),
            e => ReadError::Malformed(e.to_string()),
        }),
        // rumqttc writes a DISCONNECT without a reason as two bytes, as MQTT 5
        // allows, and its own reader refuses them.
        Wire::V5 if buf.starts_with(&[0xE0, 0x00]) => {
            buf.advance(2);
            Ok(Packet::Disconnect)
        }
        Wire::V5 => match five::Packet::read(buf, Some(max as u32)) {
            Ok(packet) => from_v5(packet).map_err(|why| ReadError::Malformed(why.to_owned())),
            Err(Error::InsufficientBytes(_)) => Err(ReadError::Incomplete),
            Err(Error::PayloadSizeLimitExceeded { pkt_size, .. }) => Err(ReadError::TooLarge(pkt_size)),
            Err(e) => Err(ReadError::Malformed(e.to_string())),
        },
    }
}

/// Appends `packet` to `buf` as a connection speaking `wire` reads it.
pub(super) fn write(wire: Wire, packet: Packet, buf: &mut BytesMut) -> Result<(), String> {
    match wire {
        Wire::V4 => packet.write(buf, usize::MAX).map(drop).map_err(|e| e.to_string()),
        Wire::V5 => to_v5(packet)?.write(buf, None).map(drop).map_err(|e| e.to_string()),
    }
}

fn qos_in(q: Qos5) -> QoS {
    match q {
        Qos5::AtMostOnce => QoS::AtMostOnce,
        Qos5::AtLeastOnce => QoS::AtLeastOnce,
        Qos5::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn qos_out(q: QoS) -> Qos5 {
    match q {
        QoS::AtMostOnce => Qos5::AtMostOnce,
        QoS::AtLeastOnce => Qos5::AtLeastOnce,
        QoS::ExactlyOnce => Qos5::ExactlyOnce,
    }
}

fn utf8(bytes: &[u8]) -> Result<String, &'static str> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a topic that is not UTF-8")
}

fn from_v5(packet: five::Packet) -> Result<Packet, &'static str> {
    Ok(match packet {
        five::Packet::Connect(c, will, login) => Packet::Connect(v4::Connect {
            protocol: Protocol::V4,
            keep_alive: c.keep_alive,
            client_id: c.client_id,
            clean_session: c.clean_start,
            last_will: match will {
                Some(w) => Some(v4::LastWill {
                    topic: utf8(&w.topic)?,
                    message: w.message,
                    qos: qos_in(w.qos),
                    retain: w.retain,
                }),
                None => None,
            },
            login: login.map(|l| v4::Login { username: l.username, password: l.password }),
        }),
        five::Packet::Publish(p) => Packet::Publish(v4::Publish {
            dup: p.dup,
            qos: qos_in(p.qos),
            retain: p.retain,
            topic: utf8(&p.topic)?,
            pkid: p.pkid,
            payload: p.payload,
        }),
        five::Packet::PubAck(a) => Packet::PubAck(v4::PubAck::new(a.pkid)),
        five::Packet::PubRec(a) => Packet::PubRec(v4::PubRec::new(a.pkid)),
        five::Packet::PubRel(a) => Packet::PubRel(v4::PubRel::new(a.pkid)),
        five::Packet::PubComp(a) => Packet::PubComp(v4::PubComp::new(a.pkid)),
        five::Packet::Subscribe(s) => Packet::Subscribe(v4::Subscribe {
            pkid: s.pkid,
            filters: s.filters.into_iter().map(|f| v4::SubscribeFilter::new(f.path, qos_in(f.qos))).collect(),
        }),
        five::Packet::Unsubscribe(u) => Packet::Unsubscribe(v4::Unsubscribe { pkid: u.pkid, topics: u.filters }),
        five::Packet::PingReq(_) => Packet::PingReq,
        five::Packet::Disconnect(_) => Packet::Disconnect,
        five::Packet::Auth(_) => return Err("AUTH (no enhanced authentication here)"),
        five::Packet::ConnAck(_) | five::Packet::SubAck(_) | five::Packet::UnsubAck(_) | five::Packet::PingResp(_) => {
            return Err("a server-only packet")
        }
    })
}

fn to_v5(packet: Packet) -> Result<five::Packet, String> {
    Ok(match packet {
        Packet::ConnAck(a) => five::Packet::ConnAck(five::ConnAck {
            session_present: a.session_present,
            code: match a.code {
                v4::ConnectReturnCode::Success => five::ConnectReturnCode::Success,
                v4::ConnectReturnCode::RefusedProtocolVersion => five::ConnectReturnCode::UnsupportedProtocolVersion,
                v4::ConnectReturnCode::BadClientId => five::ConnectReturnCode::ClientIdentifierNotValid,
                v4::ConnectReturnCode::ServiceUnavailable => five::ConnectReturnCode::ServerUnavailable,
                v4::ConnectReturnCode::BadUserNamePassword => five::ConnectReturnCode::BadUserNamePassword,
                v4::ConnectReturnCode::NotAuthorized => five::ConnectReturnCode::NotAuthorized,
            },
            properties: None,
        }),
        Packet::Publish(p) => {
            let mut out = five::Publish::new(p.topic, qos_out(p.qos), p.payload, None);
            (out.dup, out.retain, out.pkid) = (p.dup, p.retain, p.pkid);
            five::Packet::Publish(out)
        }
        Packet::PubAck(a) => five::Packet::PubAck(five::PubAck::new(a.pkid, None)),
        Packet::PubRec(a) => five::Packet::PubRec(five::PubRec::new(a.pkid, None)),
        Packet::PubRel(a) => five::Packet::PubRel(five::PubRel::new(a.pkid, None)),
        Packet::PubComp(a) => five::Packet::PubComp(five::PubComp::new(a.pkid, None)),
        Packet::SubAck(a) => five::Packet::SubAck(five::SubAck {
            pkid: a.pkid,
            return_codes: a
                .return_codes
                .into_iter()
                .map(|c| match c {
                    v4::SubscribeReasonCode::Success(q) => five::SubscribeReasonCode::Success(qos_out(q)),
                    v4::SubscribeReasonCode::Failure => five::SubscribeReasonCode::Failure,
                })
                .collect(),
            properties: None,
        }),
        // The broker answers every UNSUBSCRIBE whole; MQTT 5 wants a reason per
        // filter, and one is what rumqttc's clients send.
        Packet::UnsubAck(a) => five::Packet::UnsubAck(five::UnsubAck {
            pkid: a.pkid,
            reasons: vec![five::UnsubAckReason::Success],
            properties: None,
        }),
        Packet::PingResp => five::Packet::PingResp(five::PingResp),
        other => return Err(format!("no MQTT 5 form for {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_tells_its_protocol_level_once_its_header_is_there() {
        let mut v4 = BytesMut::new();
        Packet::Connect(v4::Connect::new("a")).write(&mut v4, usize::MAX).unwrap();
        let mut v5 = BytesMut::new();
        five::Packet::Connect(
            five::Connect { keep_alive: 30, client_id: "a".into(), clean_start: true, properties: None },
            None,
            None,
        )
        .write(&mut v5, None)
        .unwrap();
        assert_eq!(Wire::of_connect(&v4), Some(Wire::V4));
        assert_eq!(Wire::of_connect(&v5), Some(Wire::V5));
        assert_eq!(Wire::of_connect(&v5[..5]), None);
    }
}
