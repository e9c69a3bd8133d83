//! `$SYS` topics: broker statistics published as retained messages every `sys_interval`
//! seconds, under the names Mosquitto uses, so existing dashboards keep working.

use std::time::Instant;

use crate::core::drops::DropReason;
use crate::core::message::Message;
use crate::core::route;
use crate::core::state::State;
use crate::wire::QoS;

/// When the broker started, for `$SYS/broker/uptime`.
#[derive(Clone, Copy, Debug)]
pub struct SysClock {
    started: Instant,
    next: Option<Instant>,
}

impl SysClock {
    /// A clock for a broker started at `now`; the first update goes out at once.
    pub fn new(now: Instant) -> SysClock {
        SysClock {
            started: now,
            next: Some(now),
        }
    }

    /// Publishes the `$SYS` topics if `sys_interval` has passed since the last update.
    pub fn tick(&mut self, state: &mut State) {
        let interval = state.config.sys_interval;
        let now = state.now;
        if interval == 0 || self.next.is_some_and(|next| now < next) {
            return;
        }
        self.next = Some(now + std::time::Duration::from_secs(u64::from(interval)));
        let uptime = now.saturating_duration_since(self.started).as_secs();
        let connected = state.sessions.iter().filter(|(_, s)| s.is_online()).count();
        let total = state.sessions.len();
        let stats = state.stats;
        let values: [(&str, String); 11] = [
            (
                "$SYS/broker/version",
                format!("pipit {}", env!("CARGO_PKG_VERSION")),
            ),
            ("$SYS/broker/uptime", format!("{uptime} seconds")),
            ("$SYS/broker/clients/connected", connected.to_string()),
            (
                "$SYS/broker/clients/disconnected",
                (total - connected).to_string(),
            ),
            ("$SYS/broker/clients/total", total.to_string()),
            (
                "$SYS/broker/messages/received",
                stats.messages_received.to_string(),
            ),
            ("$SYS/broker/messages/sent", stats.messages_sent.to_string()),
            (
                "$SYS/broker/messages/dropped",
                stats.dropped.total().to_string(),
            ),
            (
                "$SYS/broker/subscriptions/count",
                state.tree.len().to_string(),
            ),
            (
                "$SYS/broker/retained messages/count",
                state.retained.len().to_string(),
            ),
            (
                "$SYS/broker/connections/accepted",
                stats.connections_accepted.to_string(),
            ),
        ];
        for (topic, value) in values {
            let message = Message::shared(topic, value.as_bytes(), QoS::AtMostOnce, true);
            route::publish(state, &message, None);
        }
        if state.journal.enabled() {
            // What the store has written to disk since start, for bytes per message.
            let value = state.journal.bytes_written().to_string();
            let topic = "$SYS/broker/store/bytes written";
            let message = Message::shared(topic, value.as_bytes(), QoS::AtMostOnce, true);
            route::publish(state, &message, None);
        }
        for reason in DropReason::ALL {
            let topic = format!("$SYS/broker/messages/dropped/{}", reason.name());
            let value = stats.dropped.get(reason).to_string();
            let message = Message::shared(topic, value.as_bytes(), QoS::AtMostOnce, true);
            route::publish(state, &message, None);
        }
    }
}
