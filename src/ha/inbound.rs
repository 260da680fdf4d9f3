//! Messages from Home Assistant's broker, checked at the edge.

use super::topics::{CloudPart, Topics};
use crate::folotoy::messages::{self, MAX_PAYLOAD};
use crate::folotoy::ToyEvent;

#[derive(Debug, Clone, PartialEq)]
pub enum HaInbound {
    /// A command for one toy entity; the core checks the sn and the key.
    Command { sn: String, key: String, payload: String },
    /// Home Assistant's birth (`online`) or will (`offline`) message.
    Status { online: bool },
    /// A toy's watched discovery config ([`Topics::deletion_watch`]): our
    /// own, or emptied when the user deleted the device in Home Assistant.
    Discovery { node: String, emptied: bool },
    /// Whether an answer may be said to a toy ([`Topics::screen_requests`]):
    /// `id` names the verdict's topic; `sn` is the toy, when known.
    Screen { id: String, sn: Option<String>, text: String },
    /// What the integration relays of a FoloToy cloud toy; the core checks the sn.
    Cloud { sn: String, msg: CloudInbound },
}

/// A message of a cloud toy's relay ([`Topics::cloud`]).
#[derive(Debug, Clone, PartialEq)]
pub enum CloudInbound {
    /// The integration has the toy, with this name; `None` (an empty
    /// payload): it no longer has it.
    Hello(Option<String>),
    /// What the toy heard or said.
    Event(ToyEvent),
    /// How the bridge's notify `id` went: `Err` says why it failed.
    Notified { id: String, result: Result<(), String> },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HaParseError {
    #[error("retained command ignored: a command is only obeyed when it is sent, never replayed")]
    Retained,
    #[error("payload of {0} bytes is over the {MAX_PAYLOAD}-byte limit")]
    TooLarge(usize),
    #[error("payload is not UTF-8 text")]
    NotText,
    #[error("status payload {0:?} is neither online nor offline")]
    BadStatus(String),
    #[error("topic is not a command topic of this bridge")]
    UnknownTopic,
    #[error("retained request ignored: a request is answered only when it is sent")]
    RetainedRequest,
    #[error("request ignored: {0}")]
    BadRequest(String),
    #[error("retained {0} ignored: it is only taken when it is sent, never replayed")]
    RetainedCloud(&'static str),
    #[error("{part} ignored: {why}")]
    BadCloud { part: &'static str, why: String },
}

/// The longest name a cloud toy's device takes (the integration's title for it).
const MAX_NAME: usize = 255;

/// A cloud toy's hello as the integration sends it.
#[derive(serde::Deserialize)]
struct Hello {
    name: String,
}

/// How a notify went, as the integration sends it.
#[derive(serde::Deserialize)]
struct Notified {
    id: String,
    ok: bool,
    #[serde(default)]
    why: Option<String>,
}

/// A screening request as the integration sends it.
#[derive(serde::Deserialize)]
struct ScreenRequest {
    id: String,
    #[serde(default)]
    sn: Option<String>,
    text: String,
}

pub fn parse(topics: &Topics, topic: &str, payload: &[u8], retained: bool) -> Result<HaInbound, HaParseError> {
    // Only whether it is empty counts: a toy's config is never read back.
    if let Some(node) = topics.parse_deletion(topic) {
        return Ok(HaInbound::Discovery { node: node.to_owned(), emptied: payload.is_empty() });
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(HaParseError::TooLarge(payload.len()));
    }
    let text = std::str::from_utf8(payload).map_err(|_| HaParseError::NotText)?;
    if topic == topics.status {
        // The birth message is not retained by Home Assistant, but a user's
        // broker may keep one; a retained `online` is still true, so use it.
        return match text {
            "online" => Ok(HaInbound::Status { online: true }),
            "offline" => Ok(HaInbound::Status { online: false }),
            other => Err(HaParseError::BadStatus(other.chars().take(40).collect())),
        };
    }
    if topic == topics.screen_requests() {
        if retained {
            return Err(HaParseError::RetainedRequest);
        }
        let r: ScreenRequest = serde_json::from_str(text).map_err(|e| HaParseError::BadRequest(e.to_string()))?;
        // The id becomes a topic level: nothing but what an id needs.
        let id_ok = (1..=64).contains(&r.id.len()) && r.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !id_ok {
            return Err(HaParseError::BadRequest("id must be 1 to 64 letters, digits or -".into()));
        }
        return Ok(HaInbound::Screen { id: r.id, sn: r.sn, text: r.text });
    }
    if let Some((sn, part)) = topics.parse_cloud(topic) {
        let msg = cloud(part, text, retained)?;
        return Ok(HaInbound::Cloud { sn: sn.to_owned(), msg });
    }
    let (sn, key) = topics.parse_command(topic).ok_or(HaParseError::UnknownTopic)?;
    if retained {
        return Err(HaParseError::Retained);
    }
    Ok(HaInbound::Command { sn: sn.to_owned(), key: key.to_owned(), payload: text.to_owned() })
}

/// A cloud relay's message: a hello may be retained (it says what the
/// integration has), an event or a notified may not (it happened once).
fn cloud(part: CloudPart, text: &str, retained: bool) -> Result<CloudInbound, HaParseError> {
    let name = part.as_str();
    let bad = |why: String| HaParseError::BadCloud { part: name, why };
    if retained && part != CloudPart::Hello {
        return Err(HaParseError::RetainedCloud(name));
    }
    match part {
        CloudPart::Hello if text.is_empty() => Ok(CloudInbound::Hello(None)),
        CloudPart::Hello => {
            let hello: Hello = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
            let name = hello.name.trim();
            if name.is_empty() || name.chars().count() > MAX_NAME {
                return Err(bad(format!("the name must be 1 to {MAX_NAME} characters")));
            }
            Ok(CloudInbound::Hello(Some(name.to_owned())))
        }
        CloudPart::Event => {
            messages::parse_event(text.as_bytes()).map(CloudInbound::Event).map_err(|e| bad(e.to_string()))
        }
        CloudPart::Notified => {
            let n: Notified = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
            let result = if n.ok { Ok(()) } else { Err(n.why.unwrap_or_else(|| "no reason given".into())) };
            Ok(CloudInbound::Notified { id: n.id, result })
        }
        CloudPart::Notify => Err(HaParseError::UnknownTopic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics {
            base: "folotoy".into(),
            discovery_prefix: "homeassistant".into(),
            status: "homeassistant/status".into(),
        }
    }

    #[test]
    fn a_screening_request_that_is_retained_malformed_or_has_an_odd_id_is_refused_with_why() {
        let t = "folotoy/bridge/screen/check";
        let ok = br#"{"id": "3f2a-9", "sn": "fcb467dad0c0", "text": "hello"}"#;
        assert_eq!(
            parse(&topics(), t, ok, false),
            Ok(HaInbound::Screen { id: "3f2a-9".into(), sn: Some("fcb467dad0c0".into()), text: "hello".into() })
        );
        assert_eq!(parse(&topics(), t, ok, true), Err(HaParseError::RetainedRequest));
        for (bad, why) in [
            (&br#"{"id": "a/b", "text": "x"}"#[..], "id must be 1 to 64 letters, digits or -"),
            (br#"{"id": "+", "text": "x"}"#, "id must be"),
            (br#"{"id": "", "text": "x"}"#, "id must be"),
            (br#"{"id": "a"}"#, "missing field `text`"),
            (b"not json", "expected ident"),
        ] {
            let err = parse(&topics(), t, bad, false).unwrap_err().to_string();
            assert!(err.starts_with("request ignored: ") && err.contains(why), "{err}");
        }
    }

    #[test]
    fn a_cloud_toys_relay_is_read_and_a_retained_event_or_notified_refused() {
        let t = |part: &str| format!("folotoy/fcb467dad0c0/cloud/{part}");
        let cloud = |msg| Ok(HaInbound::Cloud { sn: "fcb467dad0c0".into(), msg });
        assert_eq!(
            parse(&topics(), &t("hello"), br#"{"name": " Bunny "}"#, true),
            cloud(CloudInbound::Hello(Some("Bunny".into())))
        );
        assert_eq!(parse(&topics(), &t("hello"), b"", true), cloud(CloudInbound::Hello(None)));
        let heard =
            br#"{"msgId": 1, "identifier": "recording_transcribed", "inputParams": {"recordingId": 4, "text": "Hi"}}"#;
        let event = ToyEvent::RecordingTranscribed { recording_id: Some(4), text: "Hi".into() };
        assert_eq!(parse(&topics(), &t("event"), heard, false), cloud(CloudInbound::Event(event)));
        assert_eq!(parse(&topics(), &t("event"), heard, true), Err(HaParseError::RetainedCloud("event")));
        let failed = br#"{"id": "7", "ok": false, "why": "the toy's channel is not connected"}"#;
        let result = Err("the toy's channel is not connected".to_owned());
        assert_eq!(
            parse(&topics(), &t("notified"), failed, false),
            cloud(CloudInbound::Notified { id: "7".into(), result })
        );
        assert_eq!(parse(&topics(), &t("notified"), failed, true), Err(HaParseError::RetainedCloud("notified")));
        let long = serde_json::json!({ "name": "a".repeat(256) }).to_string();
        let bad_ones = [
            ("hello", &br#"{"name": " "}"#[..]),
            ("hello", long.as_bytes()),
            ("hello", b"Bunny"),
            ("event", b"{}"),
            ("notified", b"{}"),
        ];
        for (part, bad) in bad_ones {
            let err = parse(&topics(), &t(part), bad, false).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{part} ignored: ")), "{err}");
        }
        assert_eq!(parse(&topics(), &t("notify"), b"{}", false), Err(HaParseError::UnknownTopic), "the bridge's own");
    }

    #[test]
    fn retained_commands_are_refused() {
        assert_eq!(parse(&topics(), "folotoy/fcb467dad0c0/volume/set", b"30", true), Err(HaParseError::Retained));
    }

    #[test]
    fn birth_and_will_are_recognised() {
        assert_eq!(parse(&topics(), "homeassistant/status", b"online", false), Ok(HaInbound::Status { online: true }));
        assert_eq!(parse(&topics(), "homeassistant/status", b"offline", true), Ok(HaInbound::Status { online: false }));
        assert!(matches!(parse(&topics(), "homeassistant/status", b"up", false), Err(HaParseError::BadStatus(_))));
    }

    #[test]
    fn an_emptied_toy_config_is_told_from_the_bridges_own() {
        let t = "homeassistant/device/folotoy_fcb467dad0c0/config";
        let node = "folotoy_fcb467dad0c0".to_owned();
        assert_eq!(parse(&topics(), t, b"", true), Ok(HaInbound::Discovery { node: node.clone(), emptied: true }));
        assert_eq!(parse(&topics(), t, b"{}", true), Ok(HaInbound::Discovery { node: node.clone(), emptied: false }));
        // The bridge's own config coming back is never too large to tell.
        let big = vec![b'x'; MAX_PAYLOAD + 1];
        assert_eq!(parse(&topics(), t, &big, true), Ok(HaInbound::Discovery { node, emptied: false }));
        let other = "homeassistant/device/zigbee_lamp/config";
        assert_eq!(parse(&topics(), other, b"", false), Err(HaParseError::UnknownTopic));
    }

    #[test]
    fn binary_and_huge_payloads_are_refused() {
        let t = "folotoy/fcb467dad0c0/say/set";
        assert_eq!(parse(&topics(), t, &[0xff, 0xfe], false), Err(HaParseError::NotText));
        assert_eq!(
            parse(&topics(), t, &vec![b'a'; MAX_PAYLOAD + 1], false),
            Err(HaParseError::TooLarge(MAX_PAYLOAD + 1))
        );
    }
}
