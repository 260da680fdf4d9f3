//! Topic names of the integration API. Note the leading `/`: FoloToy's first
//! topic level is empty, and wildcards must keep it.

use super::Sn;

/// Everything a toy, or the server about a toy, publishes for integrations.
/// Subscribing to the whole subtree is what lets a toy that nobody configured
/// appear as soon as it says anything.
pub const TOYS_FILTER: &str = "/sys/folotoy/#";
pub const CONFIG: &str = "/sys/config";
pub const CONFIG_ACK: &str = "/sys/configAck";

pub fn command(sn: &Sn) -> String {
    format!("/sys/folotoy/{sn}/thing/command/call")
}

/// What a topic under `/sys/folotoy/<sn>/` is about. The sn is returned raw:
/// checking it is the parser's job, so that a bad sn gets its own warning.
#[derive(Debug, PartialEq, Eq)]
pub enum ToyTopic<'a> {
    Event(&'a str),
    CallAck(&'a str),
    /// A command to the toy, ours or another integration's.
    Call(&'a str),
    /// Anything else under the toy's subtree.
    Other(&'a str),
}

pub fn classify(topic: &str) -> Option<ToyTopic<'_>> {
    let rest = topic.strip_prefix("/sys/folotoy/")?;
    let (sn, tail) = rest.split_once('/').unwrap_or((rest, ""));
    Some(match tail {
        "thing/event/post" => ToyTopic::Event(sn),
        "thing/command/callAck" => ToyTopic::CallAck(sn),
        "thing/command/call" => ToyTopic::Call(sn),
        _ => ToyTopic::Other(sn),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_documented_topics() {
        assert_eq!(classify("/sys/folotoy/fcb467dad0c0/thing/event/post"), Some(ToyTopic::Event("fcb467dad0c0")));
        assert_eq!(
            classify("/sys/folotoy/fcb467dad0c0/thing/command/callAck"),
            Some(ToyTopic::CallAck("fcb467dad0c0"))
        );
        assert_eq!(classify("/sys/configAck"), None);
        assert_eq!(classify("/sys/folotoy/x"), Some(ToyTopic::Other("x")));
    }
}
