//! Topic remapping between a bridge's two brokers (Mosquitto's `bridge_topic.c`): the first
//! `topic` line, in file order, whose filter matches the topic decides; its prefix on one
//! side is taken off and its prefix on the other side put on.

use crate::config::{BridgeTopic, Direction};
use crate::core::topic::matches;

/// The remote topic for a local message on `topic`: `None` if no outbound `topic` line
/// matches; `Some(false)` if the line leaves it as it is (no prefix change), `Some(true)`
/// with the remote topic written into `out` (cleared first, so its buffer is reused).
pub fn outbound(topics: &[BridgeTopic], topic: &str, out: &mut String) -> Option<bool> {
    let t = topics
        .iter()
        .find(|t| t.direction.outbound() && matches(&t.local_filter, topic))?;
    let from = t.local_prefix.as_deref().unwrap_or("");
    let to = t.remote_prefix.as_deref().unwrap_or("");
    let bare = topic.strip_prefix(from).unwrap_or(topic);
    // `bare` ends `topic`: the two are equal when `to` is exactly what precedes it.
    if to.len() + bare.len() == topic.len() && topic.starts_with(to) {
        return Some(false);
    }
    out.clear();
    out.push_str(to);
    out.push_str(bare);
    Some(true)
}

/// The local topic for a message the remote sent on `topic`: remapped by the first inbound
/// `topic` line that matches, unchanged if none does (as Mosquitto).
pub fn inbound(topics: &[BridgeTopic], topic: &str) -> String {
    let found = topics.iter().find(|t| {
        matches!(t.direction, Direction::In | Direction::Both) && matches(&t.remote_filter, topic)
    });
    match found {
        Some(t) => swap(topic, t.remote_prefix.as_deref(), t.local_prefix.as_deref()),
        None => topic.to_string(),
    }
}

/// `topic` with `from` taken off its front (if there) and `to` put on.
fn swap(topic: &str, from: Option<&str>, to: Option<&str>) -> String {
    let bare = from
        .and_then(|prefix| topic.strip_prefix(prefix))
        .unwrap_or(topic);
    format!("{}{bare}", to.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::bridge_topic;
    use crate::wire::QoS;

    /// The remote topic `outbound` gives, as an owned string.
    fn out(topics: &[BridgeTopic], topic: &str) -> Option<String> {
        let mut buf = String::from("left over");
        let changed = outbound(topics, topic, &mut buf)?;
        Some(if changed { buf } else { topic.to_string() })
    }

    fn t(p: Option<&str>, d: Direction, l: Option<&str>, r: Option<&str>) -> BridgeTopic {
        bridge_topic(p, d, QoS::AtLeastOnce, l, r).unwrap()
    }

    #[test]
    fn prefixes_are_swapped_both_ways() {
        let topics = [
            t(
                Some("sensors/#"),
                Direction::Out,
                Some("local/"),
                Some("site1/"),
            ),
            t(Some("cmd/#"), Direction::In, Some("in/"), Some("cloud/")),
            t(Some("x/#"), Direction::Both, None, None),
        ];
        assert_eq!(
            out(&topics, "local/sensors/t").as_deref(),
            Some("site1/sensors/t")
        );
        assert_eq!(out(&topics, "sensors/t"), None, "needs the local prefix");
        assert_eq!(out(&topics, "in/cmd/a"), None, "an `in` line sends nothing");
        assert_eq!(out(&topics, "x/y").as_deref(), Some("x/y"));
        let mut buf = String::new();
        assert_eq!(
            outbound(&topics, "x/y", &mut buf),
            Some(false),
            "no prefix change: nothing is built"
        );
        assert!(buf.is_empty());
        assert_eq!(inbound(&topics, "cloud/cmd/a"), "in/cmd/a");
        assert_eq!(inbound(&topics, "x/1"), "x/1");
        assert_eq!(inbound(&topics, "other"), "other", "unmatched: unchanged");
    }

    #[test]
    fn an_empty_pattern_maps_one_topic_to_another() {
        let topics = [t(None, Direction::Both, Some("here/t"), Some("there/u"))];
        assert_eq!(out(&topics, "here/t").as_deref(), Some("there/u"));
        assert_eq!(inbound(&topics, "there/u"), "here/t");
    }

    /// Mosquitto's table of valid and invalid `topic` lines (`bridge__add_topic`).
    #[test]
    fn mosquittos_pattern_and_prefix_rules() {
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, bool);
        let cases: [Case; 9] = [
            (Some("#"), None, None, true),
            (Some("a/#"), Some("l/"), Some("r/"), true),
            (None, Some("l/t"), Some("r/t"), true),
            (None, Some("l/t"), None, false),
            (None, None, Some("r/t"), false),
            (None, None, None, false),
            (Some("#"), Some("l/+/"), None, false),
            (Some("#"), None, Some("r/#"), false),
            (Some("a/#"), Some("l"), None, true),
        ];
        for (pattern, local, remote, valid) in cases {
            let made = bridge_topic(pattern, Direction::Both, QoS::AtMostOnce, local, remote);
            assert_eq!(made.is_ok(), valid, "{pattern:?} {local:?} {remote:?}");
        }
        let glued = bridge_topic(Some("#"), Direction::Out, QoS::AtMostOnce, Some("a"), None);
        assert!(glued.is_err(), "\"a#\" is not a filter");
    }
}
