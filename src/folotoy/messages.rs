//! Payloads of the integration API, parsed at the edge.
//!
//! Parsing is lenient where FoloToy is vague (unknown fields, `text` or
//! `recordingText`, numbers sent as strings are not accepted though) and
//! strict where a mistake would reach a toy (serial numbers, msgIds).

use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::settings::Settings;
use super::sn::{Sn, SnError};
use super::topics::{self, ToyTopic};

/// Payloads larger than this are refused before any parsing: no documented
/// message comes near it, and parsing a huge one costs memory for nothing.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// A message from the FoloToy side, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Event {
        sn: Sn,
        event: ToyEvent,
    },
    CallAck {
        sn: Sn,
        ack: Ack,
    },
    ConfigAck(ConfigAck),
    /// A message about a toy that carries nothing for the bridge (for
    /// example another integration's command); it still proves the toy exists.
    Seen {
        sn: Sn,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToyEvent {
    /// One sentence of the toy's answer; an answer comes as several, `order` 1..n.
    VoiceGenerated {
        recording_id: Option<i64>,
        order: Option<i64>,
        text: String,
        voice_url: Option<String>,
        role: Option<i64>,
    },
    /// What the child said. Not documented: the text has been seen under
    /// `recordingText`; `text` is accepted too.
    RecordingTranscribed { recording_id: Option<i64>, text: String },
    /// An identifier this bridge does not know yet; kept so it can be logged.
    Other { identifier: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub identifier: String,
    pub msg_id: u32,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigAck {
    pub identifier: String,
    /// FoloToy echoes the msgId only when one was sent.
    pub msg_id: Option<u32>,
    pub ok: bool,
}

/// Why a FoloToy message was refused. The topic is added by the caller's log.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("payload of {0} bytes is over the {MAX_PAYLOAD}-byte limit")]
    TooLarge(usize),
    #[error("payload is not JSON: {0}")]
    NotJson(String),
    #[error("payload is not a JSON object")]
    NotObject,
    #[error("field {0} is missing")]
    Missing(&'static str),
    #[error("field {field} should be {expected}")]
    WrongType { field: &'static str, expected: &'static str },
    #[error("{0}")]
    BadSn(#[from] SnError),
    #[error("topic is not part of FoloToy's integration API")]
    UnknownTopic,
}

/// Parses one message received on the FoloToy broker.
pub fn parse(topic: &str, payload: &[u8]) -> Result<Inbound, ParseError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(ParseError::TooLarge(payload.len()));
    }
    if topic == topics::CONFIG_ACK {
        let obj = object(payload)?;
        return Ok(Inbound::ConfigAck(ConfigAck {
            identifier: string(&obj, "identifier")?,
            msg_id: opt_msg_id(&obj)?,
            ok: result(&obj)?,
        }));
    }
    let kind = topics::classify(topic).ok_or(ParseError::UnknownTopic)?;
    match kind {
        ToyTopic::Event(sn) => {
            let sn = Sn::parse(sn)?;
            let obj = object(payload)?;
            Ok(Inbound::Event { sn, event: event(&obj)? })
        }
        ToyTopic::CallAck(sn) => {
            let sn = Sn::parse(sn)?;
            let obj = object(payload)?;
            let msg_id = opt_msg_id(&obj)?.ok_or(ParseError::Missing("msgId"))?;
            let ack = Ack { identifier: string(&obj, "identifier")?, msg_id, ok: result(&obj)? };
            Ok(Inbound::CallAck { sn, ack })
        }
        ToyTopic::Call(sn) | ToyTopic::Other(sn) => Ok(Inbound::Seen { sn: Sn::parse(sn)? }),
    }
}

/// A `thing/event/post` payload alone: what the integration relays of a
/// FoloToy cloud toy is parsed as a self-hosted toy's event is.
pub fn parse_event(payload: &[u8]) -> Result<ToyEvent, ParseError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(ParseError::TooLarge(payload.len()));
    }
    event(&object(payload)?)
}

fn event(obj: &Map<String, Json>) -> Result<ToyEvent, ParseError> {
    let identifier = string(obj, "identifier")?;
    let empty = Map::new();
    let params = match obj.get("inputParams") {
        Some(Json::Object(p)) => p,
        None | Some(Json::Null) => &empty,
        Some(_) => return Err(wrong("inputParams", "an object")),
    };
    Ok(match identifier.as_str() {
        "voice_generated" => ToyEvent::VoiceGenerated {
            recording_id: opt_int(params, "recordingId")?,
            order: opt_int(params, "order")?,
            text: opt_string(params, "voiceText")?.unwrap_or_default(),
            voice_url: opt_string(params, "voiceUrl")?,
            role: opt_int(params, "role")?,
        },
        "recording_transcribed" => {
            let text = match opt_string(params, "recordingText")? {
                Some(t) => t,
                None => opt_string(params, "text")?.ok_or(ParseError::Missing("recordingText"))?,
            };
            ToyEvent::RecordingTranscribed { recording_id: opt_int(params, "recordingId")?, text }
        }
        _ => ToyEvent::Other { identifier },
    })
}

fn object(payload: &[u8]) -> Result<Map<String, Json>, ParseError> {
    match serde_json::from_slice::<Json>(payload) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(_) => Err(ParseError::NotObject),
        Err(e) => Err(ParseError::NotJson(e.to_string())),
    }
}

fn wrong(field: &'static str, expected: &'static str) -> ParseError {
    ParseError::WrongType { field, expected }
}

fn string(obj: &Map<String, Json>, field: &'static str) -> Result<String, ParseError> {
    opt_string(obj, field)?.ok_or(ParseError::Missing(field))
}

fn opt_string(obj: &Map<String, Json>, field: &'static str) -> Result<Option<String>, ParseError> {
    match obj.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrong(field, "a string")),
    }
}

fn opt_int(obj: &Map<String, Json>, field: &'static str) -> Result<Option<i64>, ParseError> {
    match obj.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or(wrong(field, "a whole number")),
    }
}

fn opt_msg_id(obj: &Map<String, Json>) -> Result<Option<u32>, ParseError> {
    match opt_int(obj, "msgId")? {
        None => Ok(None),
        Some(i) => u32::try_from(i).map(Some).map_err(|_| wrong("msgId", "a number from 0 to 4294967295")),
    }
}

fn result(obj: &Map<String, Json>) -> Result<bool, ParseError> {
    match obj.get("result").map(Json::as_i64) {
        None => Err(ParseError::Missing("result")),
        Some(Some(1)) => Ok(true),
        Some(Some(0)) => Ok(false),
        Some(_) => Err(wrong("result", "1 (ok) or 0 (failed)")),
    }
}

/// A command the bridge sends to a toy.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Play(Play),
    /// Only the fields in the patch are sent: see the README, "Changing one setting".
    UpdateCommonConfig(Settings),
}

/// `iwantplay`: the toy speaks `text` in a role's voice, or plays `url`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Play {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Command {
    pub fn identifier(&self) -> &'static str {
        match self {
            Command::Play(_) => "iwantplay",
            Command::UpdateCommonConfig(_) => "updatecommonconfig",
        }
    }

    pub fn payload(&self, msg_id: u32) -> Vec<u8> {
        #[derive(Serialize)]
        struct Call<'a, P> {
            #[serde(rename = "msgId")]
            msg_id: u32,
            identifier: &'a str,
            #[serde(rename = "inputParams")]
            input_params: P,
        }
        let identifier = self.identifier();
        let bytes = match self {
            Command::Play(p) => serde_json::to_vec(&Call { msg_id, identifier, input_params: p }),
            Command::UpdateCommonConfig(s) => serde_json::to_vec(&Call { msg_id, identifier, input_params: s }),
        };
        bytes.expect("plain structs always serialize")
    }
}

/// `load_roles_config` on `/sys/config`: the server re-reads roles.json.
pub fn load_roles_payload(msg_id: u32) -> Vec<u8> {
    serde_json::json!({"msgId": msg_id, "identifier": "load_roles_config"}).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folotoy::{Setting, Value};

    fn sn() -> Sn {
        Sn::parse("fcb467dad0c0").unwrap()
    }

    #[test]
    fn every_known_message_shape_parses() {
        let fixtures = include_str!("../../tests/fixtures/folotoy-messages.jsonl");
        for line in fixtures.lines().filter(|l| !l.trim().is_empty()) {
            let v: Json = serde_json::from_str(line).unwrap();
            let topic = v["topic"].as_str().unwrap();
            let payload = serde_json::to_vec(&v["payload"]).unwrap();
            if topic.starts_with("/user/") || topic == topics::CONFIG {
                assert_eq!(parse(topic, &payload), Err(ParseError::UnknownTopic), "{line}");
            } else {
                assert!(parse(topic, &payload).is_ok(), "{line}: {:?}", parse(topic, &payload));
            }
        }
    }

    #[test]
    fn voice_generated_keeps_text_url_order_and_role() {
        let p = br#"{"msgId":174,"identifier":"voice_generated","inputParams":{"recordingId":31,"order":4,"voiceText":" What's your first question?","voiceUrl":"http://h/v.mp3","role":7,"resultCode":1}}"#;
        let got = parse("/sys/folotoy/fcb467dad0c0/thing/event/post", p).unwrap();
        assert_eq!(
            got,
            Inbound::Event {
                sn: sn(),
                event: ToyEvent::VoiceGenerated {
                    recording_id: Some(31),
                    order: Some(4),
                    text: " What's your first question?".into(),
                    voice_url: Some("http://h/v.mp3".into()),
                    role: Some(7),
                }
            }
        );
    }

    #[test]
    fn transcription_text_is_read_from_recording_text_or_text() {
        for p in [
            &br#"{"identifier":"recording_transcribed","inputParams":{"recordingId":2,"recordingText":"bath"}}"#[..],
            br#"{"identifier":"recording_transcribed","inputParams":{"recordingId":2,"text":"bath","extra":[1]}}"#,
        ] {
            let got = parse("/sys/folotoy/fcb467dad0c0/thing/event/post", p).unwrap();
            let Inbound::Event { event: ToyEvent::RecordingTranscribed { text, recording_id }, .. } = got else {
                panic!("{got:?}")
            };
            assert_eq!((text.as_str(), recording_id), ("bath", Some(2)));
        }
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        let t = "/sys/folotoy/fcb467dad0c0/thing/command/callAck";
        assert!(matches!(parse(t, b"{\"msgId\":1,"), Err(ParseError::NotJson(_))));
        assert_eq!(parse(t, b"[1]"), Err(ParseError::NotObject));
        assert_eq!(parse(t, br#"{"identifier":"iwantplay","result":1}"#), Err(ParseError::Missing("msgId")));
        assert_eq!(
            parse(t, br#"{"identifier":"iwantplay","msgId":"1","result":1}"#),
            Err(ParseError::WrongType { field: "msgId", expected: "a whole number" })
        );
        assert!(matches!(
            parse(t, br#"{"identifier":"iwantplay","msgId":1,"result":7}"#),
            Err(ParseError::WrongType { field: "result", .. })
        ));
        assert_eq!(parse(t, &vec![b' '; MAX_PAYLOAD + 1]), Err(ParseError::TooLarge(MAX_PAYLOAD + 1)));
    }

    #[test]
    fn hostile_serial_numbers_in_topics_are_refused() {
        let p = br#"{"identifier":"iwantplay","msgId":1,"result":1}"#;
        assert!(matches!(parse("/sys/folotoy/ab/thing/command/callAck", p), Err(ParseError::BadSn(_))));
        assert!(matches!(parse("/sys/folotoy/abcdéfghi/thing/event/post", p), Err(ParseError::BadSn(_))));
    }

    #[test]
    fn commands_serialize_as_documented() {
        let play = Command::Play(Play { role: Some(1), text: Some("hi".into()), url: None });
        assert_eq!(
            String::from_utf8(play.payload(100)).unwrap(),
            r#"{"msgId":100,"identifier":"iwantplay","inputParams":{"role":1,"text":"hi"}}"#
        );
        let mut s = Settings::default();
        s.set(Setting::Volume, Value::Int(30));
        assert_eq!(
            String::from_utf8(Command::UpdateCommonConfig(s).payload(7)).unwrap(),
            r#"{"msgId":7,"identifier":"updatecommonconfig","inputParams":{"volume":30}}"#
        );
    }
}
