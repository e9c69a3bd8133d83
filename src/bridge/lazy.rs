//! When a bridge's link should be up, beyond `automatic`: a lazy bridge starts once
//! `threshold` messages wait for the remote and stops after `idle_timeout` with nothing to
//! send (`start_type once` needs nothing here: its link is never rescheduled, `on_closed`);
//! and the messages no link can carry, whose remapped topic is empty.

use super::{Bridge, Link};
use crate::config::StartType;
use crate::core::state::State;

/// Counts a message on `topic` dropped because its remapped topic is empty (a topic that is
/// exactly the prefix taken off, with no prefix to put on), and says so: a warning the first
/// time for the bridge, then at debug level.
pub fn unmappable(b: &mut Bridge, topic: &str, direction: &str) {
    b.stats.unmappable += 1;
    let level = match b.stats.unmappable {
        1 => log::Level::Warn,
        _ => log::Level::Debug,
    };
    log::log!(
        level,
        "bridge {}: {topic:?} ({direction}) remaps to an empty topic; message dropped \
         ({} so far)",
        b.config.name,
        b.stats.unmappable
    );
}

/// Whether bridge `i`'s link, down, may start at `now`: its backoff is over, and for a lazy
/// bridge at least `threshold` messages wait for the remote (Mosquitto's lazy start).
pub fn due(state: &State, i: usize) -> bool {
    let Some(b) = state.bridges.get(i) else {
        return false;
    };
    let Link::Idle(Some(at)) = b.link else {
        return false;
    };
    at <= state.now
        && (b.config.start_type != StartType::Lazy || waiting(state, b) >= b.config.threshold)
}

/// Whether lazy bridge `i`'s link, up, has been idle for its `idle_timeout`: nothing handed
/// to it for that long and nothing queued or unacknowledged.
pub fn idle(state: &State, i: usize) -> bool {
    state.bridges.get(i).is_some_and(|b| {
        b.config.start_type == StartType::Lazy
            && b.connected()
            && waiting(state, b) == 0
            && state.now.saturating_duration_since(b.last_out) >= b.config.idle_timeout
    })
}

/// The messages bridge `b`'s session holds for the remote: queued and in flight.
fn waiting(state: &State, b: &Bridge) -> usize {
    state
        .sessions
        .get(b.session.0 as usize)
        .map_or(0, |s| s.queued() + s.inflight_len())
}
