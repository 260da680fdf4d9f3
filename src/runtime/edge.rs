//! Where the links' events become the core's inputs: parsed at the edge, so bad
//! messages stop here with a warning naming the topic and the reason.

use tracing::warn;

use super::link::{LinkEvent, Role};
use super::links::{subscribe, Links};
use crate::bridge::{Input, Side};
use crate::folotoy;
use crate::ha;
use crate::repeats::Repeats;

/// Turns a link event into core inputs, parsing at the edge: bad messages
/// stop here with a warning naming the topic and the reason, told once per
/// topic and reason and a while (`refused`), not for every copy.
pub(super) async fn inputs(
    topics: &ha::Topics,
    links: &Links,
    refused: &mut Repeats<(String, String)>,
    ev: LinkEvent,
) -> Vec<Input> {
    match ev {
        LinkEvent::Up(role) => {
            subscribe(topics, links, role).await;
            let mut v = Vec::new();
            if role.serves(Side::FoloToy) {
                v.push(Input::FoloToyUp);
            }
            if role.serves(Side::Ha) {
                v.push(Input::HaUp);
            }
            v
        }
        // Home Assistant's broker gone: nothing is published to it until it
        // is back, when everything is published anew (its last will already
        // told Home Assistant the bridge is offline).
        LinkEvent::Down(Role::FoloToy) => vec![Input::FoloToyDown],
        LinkEvent::Down(Role::Ha) => vec![Input::HaDown],
        LinkEvent::Down(Role::Both) => vec![Input::HaDown, Input::FoloToyDown],
        LinkEvent::Failed(..) => vec![],
        LinkEvent::Message { role, topic, payload, retain } => {
            let folotoy_topic = topic.starts_with("/sys/");
            let parsed = if role.serves(Side::FoloToy) && folotoy_topic {
                folotoy::messages::parse(&topic, &payload)
                    .map(|msg| Input::FoloToy { topic: topic.clone(), msg, at: std::time::SystemTime::now() })
                    .map_err(|e| e.to_string())
            } else if role.serves(Side::Ha) {
                ha::inbound::parse(topics, &topic, &payload, retain)
                    .map(|msg| Input::Ha { topic: topic.clone(), msg, at: std::time::SystemTime::now() })
                    .map_err(|e| e.to_string())
            } else {
                Err("not a topic this bridge subscribed to".to_owned())
            };
            match parsed {
                Ok(input) => vec![input],
                Err(reason) => {
                    let tell = refused.happened((topic.clone(), reason.clone()), std::time::Instant::now());
                    if !tell.is_quiet() {
                        warn!(topic = %topic, "{reason}{}", tell.suffix());
                    }
                    vec![]
                }
            }
        }
    }
}
