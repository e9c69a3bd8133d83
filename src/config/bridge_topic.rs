//! A bridge's `topic PATTERN [in|out|both] [QOS] [LOCAL_PREFIX REMOTE_PREFIX]` line, checked
//! as Mosquitto's `bridge__add_topic` checks it: `""` stands for an empty pattern or prefix; a
//! prefix holds no wildcard; prefix + pattern must be a valid filter; an empty pattern needs
//! both prefixes. After the pattern, a word starting with `#` ends the line.

use super::ConfigError;
use super::bridge::{BridgeTopic, Direction, PATTERN_LIMITS};
use super::line::Line;
use crate::core::topic;
use crate::wire::QoS;

/// A word of a `topic` line, `""` meaning none.
fn optional(word: &str) -> Option<&str> {
    (word != "\"\"").then_some(word)
}

/// `topic PATTERN [in|out|both] [QOS] [LOCAL_PREFIX REMOTE_PREFIX]`.
pub(super) fn topic_line(l: &Line) -> Result<BridgeTopic, ConfigError> {
    let mut words = l.text()?.split_whitespace();
    let pattern = optional(words.next().unwrap_or_default());
    // After the pattern, a word starting with `#` is a comment (Mosquitto reads it so
    // after the QoS and the local prefix; a direction of `#` is an error there too).
    let mut rest = words.take_while(|w| !w.starts_with('#'));
    let direction = match rest.next() {
        None => Direction::Out,
        Some(w) if w.eq_ignore_ascii_case("out") => Direction::Out,
        Some(w) if w.eq_ignore_ascii_case("in") => Direction::In,
        Some(w) if w.eq_ignore_ascii_case("both") => Direction::Both,
        Some(w) => return Err(l.error(format!("topic: invalid bridge topic direction \"{w}\""))),
    };
    let qos = match rest.next() {
        None => QoS::AtMostOnce,
        Some(w) => l
            .parse_int::<u8>(w, 0, 2)
            .ok()
            .and_then(QoS::from_bits)
            .ok_or_else(|| l.error(format!("topic: invalid bridge QoS level \"{w}\"")))?,
    };
    let local_prefix = rest.next().and_then(optional);
    let remote_prefix = rest.next().and_then(optional);
    bridge_topic(pattern, direction, qos, local_prefix, remote_prefix)
        .map_err(|e| l.error(format!("topic: {e}")))
}

/// Checks one topic mapping as Mosquitto's `bridge__add_topic` does and builds it.
pub fn bridge_topic(
    pattern: Option<&str>,
    direction: Direction,
    qos: QoS,
    local_prefix: Option<&str>,
    remote_prefix: Option<&str>,
) -> Result<BridgeTopic, String> {
    for (side, prefix) in [("local", local_prefix), ("remote", remote_prefix)] {
        if let Some(prefix) = prefix
            && topic::validate_name(prefix, PATTERN_LIMITS).is_err()
        {
            return Err(format!("invalid {side} prefix \"{prefix}\""));
        }
    }
    if pattern.is_none() && (local_prefix.is_none() || remote_prefix.is_none()) {
        return Err("an empty pattern needs both a local and a remote prefix".into());
    }
    let full = |prefix: Option<&str>| format!("{}{}", prefix.unwrap_or(""), pattern.unwrap_or(""));
    let (local_filter, remote_filter) = (full(local_prefix), full(remote_prefix));
    for filter in [&local_filter, &remote_filter] {
        if topic::validate_filter(filter, PATTERN_LIMITS).is_err() {
            return Err(format!(
                "invalid prefix and pattern combination \"{filter}\""
            ));
        }
    }
    Ok(BridgeTopic {
        direction,
        qos,
        local_prefix: local_prefix.map(str::to_string),
        remote_prefix: remote_prefix.map(str::to_string),
        local_filter,
        remote_filter,
    })
}
