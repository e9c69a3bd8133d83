//! Messages the broker did not deliver, counted by why: every drop anywhere goes through
//! [`Drops::count`], which counts it for `$SYS` and logs it at debug level with the client
//! id, so no message is ever lost silently.

use log::debug;

/// Why a message was not delivered to a client (or not accepted from one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The session's queue was at `max_queued_messages` / `max_queued_bytes` (offline, or
    /// beyond a full inflight window), or QoS 0 for an offline session.
    QueueFull,
    /// QoS 0 to a subscriber that stopped draining its output for `slow_subscriber_timeout`
    /// while its output was over `max_output_buffer`.
    OutputCap,
    /// The message's Message Expiry Interval ran out before it could be sent [MQTT-3.3.2-5].
    Expired,
    /// Larger than the receiving client's Maximum Packet Size [MQTT-3.1.2-25], a PUBLISH
    /// over `message_size_limit`, or to a topic over the length or level bound.
    TooLarge,
    /// The ACL denied the publisher writing or the subscriber reading the topic.
    Acl,
    /// Shed under `memory_limit` (`core::budget`): QoS 0 to a slow subscriber, or a QoS 1/2
    /// PUBLISH refused.
    MemoryLimit,
}

impl DropReason {
    /// Every reason, in `$SYS` order.
    pub const ALL: [DropReason; 6] = [
        DropReason::QueueFull,
        DropReason::OutputCap,
        DropReason::Expired,
        DropReason::TooLarge,
        DropReason::Acl,
        DropReason::MemoryLimit,
    ];

    /// The reason's name in `$SYS/broker/messages/dropped/<name>` and in the log.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::OutputCap => "output_cap",
            DropReason::Expired => "expired",
            DropReason::TooLarge => "too_large",
            DropReason::Acl => "acl",
            DropReason::MemoryLimit => "memory_limit",
        }
    }
}

/// Dropped messages per reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    counts: [u64; DropReason::ALL.len()],
}

impl Drops {
    /// Counts `n` messages dropped for `reason` on their way to or from `client_id`.
    pub fn count(&mut self, reason: DropReason, n: u64, client_id: &str) {
        if n == 0 {
            return;
        }
        self.counts[reason as usize] += n;
        debug!(
            "dropped {n} message(s) for client {client_id}: {}",
            reason.name()
        );
    }

    /// Messages dropped for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason as usize]
    }

    /// Messages dropped for any reason.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_in_total() {
        let mut d = Drops::default();
        d.count(DropReason::OutputCap, 3, "c");
        d.count(DropReason::Acl, 1, "c");
        d.count(DropReason::Expired, 0, "c");
        assert_eq!(d.get(DropReason::OutputCap), 3);
        assert_eq!(d.get(DropReason::Acl), 1);
        assert_eq!(d.get(DropReason::QueueFull), 0);
        assert_eq!(d.total(), 4);
        let names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(
            names,
            [
                "queue_full",
                "output_cap",
                "expired",
                "too_large",
                "acl",
                "memory_limit"
            ]
        );
    }
}
