//! Anything on FoloToy's broker: the parser must answer, never panic.
#![no_main]

use folotoy_ha_bridge::folotoy::messages;
use libfuzzer_sys::fuzz_target;

const TOPICS: &[&str] = &[
    "/sys/folotoy/fcb467dad0c0/thing/event/post",
    "/sys/folotoy/fcb467dad0c0/thing/command/callAck",
    "/sys/folotoy/fcb467dad0c0/thing/command/call",
    "/sys/configAck",
];

fuzz_target!(|data: &[u8]| {
    // The first byte picks a topic, or the topic is read from the input.
    let Some((&pick, rest)) = data.split_first() else { return };
    match TOPICS.get(usize::from(pick) % (TOPICS.len() + 1)) {
        Some(topic) => {
            let _ = messages::parse(topic, rest);
        }
        None => {
            let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let topic = String::from_utf8_lossy(&rest[..split]);
            let _ = messages::parse(&topic, rest.get(split + 1..).unwrap_or_default());
        }
    }
});
