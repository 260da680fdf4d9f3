//! MQTT 3.1.1 topic rules (section 4.7), written out here because
//! `rumqttc::matches` refuses every `$` topic, even for filters that name
//! the `$` level explicitly.

/// A topic name a client may publish to: non-empty, no wildcards, no NUL.
pub(crate) fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// A filter a client may subscribe to: `+` fills a whole level, `#` fills
/// the whole last level.
pub(crate) fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let last = filter.split('/').count() - 1;
    filter.split('/').enumerate().all(|(i, level)| match level {
        "+" => true,
        "#" => i == last,
        other => !other.contains(['+', '#']),
    })
}

/// Whether the (valid) `filter` selects the (valid) `topic`.
///
/// Levels are compared one by one, so a leading `/` is simply an empty first
/// level that a `+` can fill.
pub(crate) fn matches(filter: &str, topic: &str) -> bool {
    // [MQTT-4.7.2-1]: `$SYS/...` and friends stay out of `#` and `+/...`.
    if topic.starts_with('$') && matches!(filter.split('/').next(), Some("+" | "#")) {
        return false;
    }
    let mut levels = topic.split('/');
    for wanted in filter.split('/') {
        match (wanted, levels.next()) {
            // Also reached when the topic has run out: `a/#` matches `a`.
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (wanted, Some(level)) if wanted == level => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_filters_match_only_the_same_topic() {
        assert!(matches("a/b/c", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b/d"));
    }

    #[test]
    fn plus_fills_exactly_one_level() {
        assert!(matches("a/+/c", "a/b/c"));
        assert!(matches("a/+", "a/"));
        assert!(!matches("a/+", "a"));
        assert!(!matches("a/+", "a/b/c"));
        assert!(matches("+/+", "/finance"));
        assert!(!matches("+", "/finance"));
    }

    #[test]
    fn hash_matches_the_parent_level_and_everything_below() {
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b"));
        assert!(matches("a/#", "a/b/c/d"));
        assert!(!matches("a/#", "ab"));
        assert!(matches("#", "a/b"));
        assert!(matches("#", "/a"));
    }

    #[test]
    fn toy_topics_with_a_leading_slash_match() {
        let topic = "/sys/folotoy/abc12345/thing/event/post";
        assert!(matches("/sys/folotoy/+/thing/event/post", topic));
        assert!(matches("/sys/folotoy/#", topic));
        assert!(matches("+/sys/#", topic));
        assert!(!matches("sys/folotoy/+/thing/event/post", topic));
        assert!(!matches("/sys/folotoy/+/thing/event/post", "/sys/folotoy/abc12345/thing/event"));
    }

    #[test]
    fn dollar_topics_are_hidden_from_leading_wildcards_only() {
        assert!(!matches("#", "$SYS/uptime"));
        assert!(!matches("+/uptime", "$SYS/uptime"));
        assert!(matches("$SYS/#", "$SYS/uptime"));
        assert!(matches("$SYS/+", "$SYS/uptime"));
        assert!(matches("#", "a/$b"));
    }

    #[test]
    fn malformed_filters_are_rejected() {
        for bad in ["", "a/#/b", "a#", "a/b#", "+a", "a/+b", "a/\0"] {
            assert!(!valid_filter(bad), "{bad:?} should be rejected");
        }
        for good in ["#", "+", "/", "a/#", "+/+", "/sys/folotoy/+/thing/event/post"] {
            assert!(valid_filter(good), "{good:?} should be accepted");
        }
    }

    #[test]
    fn wildcards_are_not_valid_publish_topics() {
        assert!(valid_topic("/sys/folotoy/abc/thing/event/post"));
        assert!(!valid_topic(""));
        assert!(!valid_topic("a/+"));
        assert!(!valid_topic("a/#"));
    }
}
