//! The `$SYS` topics: every topic Mosquitto 2.0 publishes, with its name and value format,
//! and pipit's own after them, published retained every `sys_interval` seconds. As in
//! Mosquitto, a topic is published only when its value (as written) differs from the last
//! one published, so a subscriber to `$SYS/#` sees the figures that moved; the retained
//! copies always hold the latest of each. The version goes out once, at the first update.
//!
//! Mosquitto publishes these at QoS 2 with a 60-second message expiry; pipit at QoS 0
//! without one: the next update supersedes a lost one, and an expiry would let an unchanged
//! figure's retained copy vanish (as it does in Mosquitto 2.0.11).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::figures::Figures;
use super::load::{LoadAverages, RATES, WINDOWS};
use crate::core::budget::Shed;
use crate::core::drops::DropReason;
use crate::core::message::Message;
use crate::core::route;
use crate::core::state::State;
use crate::wire::QoS;

/// One `$SYS` topic and its value as published.
pub type Row = (String, String);

/// Every `$SYS` row for `figures` and `load`, Mosquitto's first, then pipit's own.
pub fn rows(figures: &Figures, load: &LoadAverages) -> Vec<Row> {
    let f = figures;
    let s = &f.stats;
    let mut rows: Vec<Row> = Vec::with_capacity(80);
    let mut put = |topic: &str, value: String| rows.push((format!("$SYS/broker/{topic}"), value));
    put(
        "version",
        format!("pipit version {}", env!("CARGO_PKG_VERSION")),
    );
    put("uptime", format!("{} seconds", f.uptime));
    put("clients/total", f.clients_total.to_string());
    put("clients/maximum", f.clients_maximum.to_string());
    // Mosquitto's `inactive` and `active` are the same figures under older names.
    for name in ["clients/inactive", "clients/disconnected"] {
        put(name, f.clients_disconnected().to_string());
    }
    for name in ["clients/active", "clients/connected"] {
        put(name, f.clients_connected.to_string());
    }
    put("clients/expired", s.clients_expired.to_string());
    for (rate, window, value) in load.iter() {
        put(
            &format!("load/{}/{}", RATES[rate], WINDOWS[window].1),
            format!("{value:.2}"),
        );
    }
    for name in ["messages/stored", "store/messages/count"] {
        put(name, f.stored_messages.to_string());
    }
    put("store/messages/bytes", f.stored_bytes.to_string());
    put("subscriptions/count", f.subscriptions.to_string());
    put(
        "shared_subscriptions/count",
        f.shared_subscriptions.to_string(),
    );
    put("retained messages/count", f.retained.to_string());
    if let Some((current, maximum)) = f.heap {
        put("heap/current", current.to_string());
        put("heap/maximum", maximum.to_string());
    }
    put("messages/received", s.packets_received.to_string());
    put("messages/sent", s.packets_sent.to_string());
    put("publish/messages/dropped", s.dropped.total().to_string());
    put("publish/messages/received", s.publish_received.to_string());
    put("publish/messages/sent", s.publish_sent.to_string());
    put("bytes/received", s.bytes_received.to_string());
    put("bytes/sent", s.bytes_sent.to_string());
    put(
        "publish/bytes/received",
        s.publish_bytes_received.to_string(),
    );
    put("publish/bytes/sent", s.publish_bytes_sent.to_string());
    // pipit's own (bridge figures will join them here).
    put("messages/queued", f.queued.to_string());
    put("messages/dropped", s.dropped.total().to_string());
    for reason in DropReason::ALL {
        put(
            &format!("messages/dropped/{}", reason.name()),
            s.dropped.get(reason).to_string(),
        );
    }
    put("connections/accepted", s.connections_accepted.to_string());
    put("connections/refused", s.connections_refused.to_string());
    if let Some(written) = f.store_bytes_written {
        put("store/bytes written", written.to_string());
    }
    // With `memory_limit`: the budget, the stages in force (0-4, `core::budget`) and what
    // each has shed; the use is `heap/current`.
    if let Some(limit) = f.budget.limit() {
        put("memory/limit", limit.to_string());
        put("memory/shedding", f.budget.stages().to_string());
        for what in Shed::ALL {
            put(
                &format!("memory/shed/{}", what.name()),
                f.budget.shed(what).to_string(),
            );
        }
    }
    rows
}

/// When the next update is due, and the value last published on each topic.
#[derive(Debug, Default)]
pub struct SysTree {
    next: Option<Instant>,
    published: HashMap<String, String>,
}

impl SysTree {
    /// Whether an update is due at `now` for `interval` seconds (0: never); if so, the one
    /// after is scheduled.
    pub fn due(&mut self, now: Instant, interval: u32) -> bool {
        if interval == 0 || self.next.is_some_and(|next| now < next) {
            return false;
        }
        self.next = Some(now + Duration::from_secs(u64::from(interval)));
        true
    }

    /// Publishes, retained, each of `rows` whose value differs from the last published.
    pub fn publish(&mut self, state: &mut State, rows: Vec<Row>) {
        for (topic, value) in rows {
            if self.published.get(&topic) == Some(&value) {
                continue;
            }
            let message = Message::shared(topic.as_str(), value.as_bytes(), QoS::AtMostOnce, true);
            route::publish(state, &message, None);
            self.published.insert(topic, value);
        }
    }
}
