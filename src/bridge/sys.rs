//! Each bridge's figures under `$SYS/broker/bridges/NAME/`, retained, every `sys_interval`
//! (beside the broker's own, `metrics`): whether the link is up, the address in use, the
//! messages and bytes queued for the remote, messages forwarded each way,
//! messages dropped for an empty remapped topic, and reconnects.

use std::time::Duration;

use crate::core::message::Message;
use crate::core::route;
use crate::core::state::State;
use crate::wire::QoS;

/// A bridge's counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct BridgeStats {
    /// Local messages handed to the bridge for the remote.
    pub out: u64,
    /// Messages from the remote published locally.
    pub into: u64,
    /// Connections made (the first one and every reconnection).
    pub connects: u64,
    /// Messages dropped because their remapped topic was empty (either way).
    pub unmappable: u64,
}

impl BridgeStats {
    /// Connections made after the first.
    pub fn reconnects(&self) -> u64 {
        self.connects.saturating_sub(1)
    }
}

/// Publishes every bridge's figures if `sys_interval` (not 0) has passed since the last.
pub fn publish(state: &mut State) {
    let interval = state.config.sys_interval;
    let now = state.now;
    if interval == 0 {
        return;
    }
    for i in 0..state.bridges.len() {
        let b = &mut state.bridges[i];
        if b.next_sys.is_some_and(|next| now < next) {
            continue;
        }
        b.next_sys = Some(now + Duration::from_secs(u64::from(interval)));
        let prefix = format!("$SYS/broker/bridges/{}", b.config.name);
        let (host, port) = &b.config.addresses[b.address];
        let address = format!("{host}:{port}");
        let connected = if b.connected() { "1" } else { "0" };
        let stats = b.stats;
        let (queued, bytes) = state
            .sessions
            .get(b.session.0 as usize)
            .map_or((0, 0), |s| (s.queued() + s.inflight_len(), s.backlog()));
        let values = [
            ("connected", connected.to_string()),
            ("address", address),
            ("queued/messages", queued.to_string()),
            ("queued/bytes", bytes.to_string()),
            ("messages/out", stats.out.to_string()),
            ("messages/in", stats.into.to_string()),
            ("messages/unmappable", stats.unmappable.to_string()),
            ("reconnects", stats.reconnects().to_string()),
        ];
        for (name, value) in values {
            let topic = format!("{prefix}/{name}");
            let message = Message::shared(topic, value.as_bytes(), QoS::AtMostOnce, true);
            route::publish(state, &message, None);
        }
    }
}
