//! `Session`: what the broker remembers about one client id, across its connections.
//!
//! A session owns the client's subscriptions (as a map from filter to options, so they can
//! be removed when the session ends; the tree holds the routing index), its outbound inflight window of unacknowledged
//! QoS 1/2 messages, a bounded queue of messages not yet sent, the packet ids of inbound
//! QoS 2 messages awaiting PUBREL, and the next outbound packet id. It outlives its
//! connection when the client asked for a persistent session.
//!
//! The message flow (queue, inflight window, packet ids) is in `flow`.
//!
//! MQTT 5 adds limits that belong to the current connection (the client's Receive Maximum,
//! Maximum Packet Size and Topic Alias Maximum, and the topic alias maps): they live in a
//! [`Link`] that each CONNECT replaces, so they never outlive the connection they came with.

mod flow;
mod stored;
mod write;

use std::collections::BTreeMap;
use std::time::Instant;

pub use flow::{AckOutcome, Enqueued};
use flow::{AckState, Flow};
pub use stored::StoredEntry;
pub use write::SendDrops;

use crate::core::alias::{InboundAliases, OutboundAliases};
use crate::ids::ConnId;
use crate::wire::{QoS, SubscriptionOptions, Version};

/// Session Expiry Interval meaning "never expires" (v5 3.1.2.11.2).
pub const NEVER_EXPIRES: u32 = u32::MAX;

/// What a session is attached to while its client is online. The queue, the inflight
/// window and routing work the same whatever it is; only the loop's I/O differs. A
/// connection is the only kind today: an in-process client (`embed::LocalClient`) is a
/// connection too, over an in-memory pipe (`net/local.rs`) instead of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// A client over TCP or TLS: the connection.
    Network(ConnId),
}

/// What the current connection of an MQTT 5 client asked for in CONNECT, and its topic
/// alias maps. Replaced by every CONNECT; `None` for MQTT 3 clients (no limits, no aliases).
#[derive(Debug)]
pub struct Link {
    /// The client's Receive Maximum: most unacknowledged QoS 1/2 PUBLISHes sent to it.
    pub receive_maximum: u16,
    /// The client's Maximum Packet Size; larger PUBLISHes are dropped for it [MQTT-3.1.2-25].
    pub maximum_packet_size: u32,
    /// The client's Topic Alias Maximum: how many aliases the broker may assign.
    pub topic_alias_maximum: u16,
    /// Whether reason strings and user properties may be sent on acks [MQTT-3.1.2-29].
    pub problem_information: bool,
    /// Aliases the client set, bounded by our Topic Alias Maximum.
    pub inbound_aliases: InboundAliases,
    /// Aliases the broker assigned, bounded by the client's Topic Alias Maximum.
    pub outbound_aliases: OutboundAliases,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            receive_maximum: u16::MAX,
            maximum_packet_size: u32::MAX,
            topic_alias_maximum: 0,
            problem_information: true,
            inbound_aliases: InboundAliases::default(),
            outbound_aliases: OutboundAliases::default(),
        }
    }
}

/// Bounds a session applies to its queue and window, from `Config`.
#[derive(Clone, Copy, Debug)]
pub struct QueueLimits {
    /// Most unacknowledged outbound QoS 1/2 messages.
    pub max_inflight: u16,
    /// Most queued messages; 0 is unlimited.
    pub max_queued: usize,
    /// Most queued payload bytes; 0 is unlimited.
    pub max_queued_bytes: usize,
    /// Whether QoS 0 messages are queued while the session is offline.
    pub queue_qos0_offline: bool,
}

/// One client's session state.
#[derive(Debug)]
pub struct Session {
    /// The client identifier, as the client sent it or as the broker assigned it (the
    /// client-id index looks it up here rather than keeping a copy).
    pub client_id: Box<str>,
    /// What the session is attached to while its client is online.
    pub attach: Option<Attach>,
    /// The username its client authenticated with, for ACL checks.
    pub username: Option<Box<str>>,
    /// The listener its client connected through, whose security settings apply.
    pub listener: u16,
    /// The protocol version of its last connection (kept in the store with the session).
    pub version: Version,
    /// Session Expiry Interval in seconds: 0 ends the session with its connection (3.1.1
    /// clean session = 1), [`NEVER_EXPIRES`] keeps it (subject to
    /// `persistent_client_expiration`).
    pub expiry_interval: u32,
    /// The current connection's MQTT 5 limits and alias maps.
    pub link: Option<Box<Link>>,
    /// When an offline session is discarded; `None` while online or when it never expires.
    pub expires_at: Option<Instant>,
    /// When its client last went offline; `None` while online, or for a session restored
    /// from the store (offline since before the broker started).
    pub detached_at: Option<Instant>,
    /// The session's subscriptions: each filter as subscribed (`$share/{group}/` prefix
    /// included) with its granted QoS and options, in filter order. A map, so adding or
    /// removing one is O(log n) however many a SUBSCRIBE carries; empty, it allocates nothing.
    subscriptions: BTreeMap<Box<str>, (SubscriptionOptions, u32)>,
    /// Message flow state, allocated on first use so an idle session stays small.
    flow: Option<Box<Flow>>,
    /// Its key in the persistent store, 0 while not stored (persistence off, or a session
    /// that ends with its connection).
    pub store_key: u64,
    /// Routing scratch: the publish sequence number this session was last collected for.
    pub route_stamp: u64,
    /// Routing scratch: where in the scratch list this session's delivery sits.
    pub route_slot: u32,
    /// The bridge (index in `State::bridges`) whose local side this session is, if any:
    /// its messages are remapped on the way out, and it is not held to the ACL.
    pub bridge: Option<u16>,
}

impl Session {
    /// A new, empty session for `client_id` with a Session Expiry Interval in seconds.
    pub fn new(client_id: Box<str>, expiry_interval: u32) -> Session {
        Session {
            client_id,
            attach: None,
            username: None,
            listener: 0,
            version: Version::V311,
            expiry_interval,
            link: None,
            expires_at: None,
            detached_at: None,
            subscriptions: BTreeMap::new(),
            flow: None,
            store_key: 0,
            route_stamp: 0,
            route_slot: 0,
            bridge: None,
        }
    }

    /// The network connection the session is attached to, if any.
    pub fn conn(&self) -> Option<ConnId> {
        self.attach.map(|Attach::Network(id)| id)
    }

    /// A packet id for a request of the session's own (a bridge's SUBSCRIBE), not in use by
    /// any message in flight.
    pub fn allocate_packet_id(&mut self) -> u16 {
        self.flow_mut().allocate_packet_id()
    }

    /// Whether the session's client is online.
    pub fn is_online(&self) -> bool {
        self.attach.is_some()
    }

    /// Whether the session ends when its connection does (Session Expiry Interval 0).
    pub fn ends_with_connection(&self) -> bool {
        self.expiry_interval == 0
    }

    /// When this session, just gone offline at `now`, is to be discarded; `None` never.
    /// `persistent` (`persistent_client_expiration`) bounds every session: one that never
    /// expires, and a long MQTT 5 Session Expiry Interval (0xFFFFFFFE is 136 years), so the
    /// offline sessions, and the delayed wills they hold, cannot outlive it.
    pub fn expiry_deadline(
        &self,
        now: Instant,
        persistent: Option<std::time::Duration>,
    ) -> Option<Instant> {
        let asked = (self.expiry_interval != NEVER_EXPIRES)
            .then(|| std::time::Duration::from_secs(u64::from(self.expiry_interval)));
        let keep = [asked, persistent].into_iter().flatten().min()?;
        Some(now + keep)
    }

    /// The largest packet the current connection's client accepts: its MQTT 5 Maximum Packet
    /// Size, or no limit for an MQTT 3 client [MQTT-3.1.2-24].
    pub fn maximum_packet_size(&self) -> u32 {
        self.link
            .as_deref()
            .map_or(u32::MAX, |link| link.maximum_packet_size)
    }

    /// The session's subscriptions in filter order: each filter as subscribed (`$share/`
    /// prefix included) with its options and subscription identifier (0 for none).
    pub fn subscriptions(&self) -> impl Iterator<Item = (&str, SubscriptionOptions, u32)> {
        self.subscriptions.iter().map(|(f, &(o, id))| (&**f, o, id))
    }

    /// How many subscriptions the session holds.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }

    /// Whether the session subscribes to `raw_filter` (as written, `$share/` prefix included).
    pub fn has_subscription(&self, raw_filter: &str) -> bool {
        self.subscriptions.contains_key(raw_filter)
    }

    /// Adds a subscription, or replaces the options of an existing one.
    pub fn set_subscription(&mut self, raw_filter: &str, options: SubscriptionOptions, id: u32) {
        match self.subscriptions.get_mut(raw_filter) {
            Some(existing) => *existing = (options, id),
            None => {
                self.subscriptions.insert(raw_filter.into(), (options, id));
            }
        }
    }

    /// Forgets a subscription, if there is one.
    pub fn remove_subscription(&mut self, raw_filter: &str) {
        self.subscriptions.remove(raw_filter);
    }

    /// Holds what waits for a peer to its limits (a bridge's remote said them in its
    /// CONNACK): QoS at most `maximum_qos`, and no RETAIN flag unless `retain`. A QoS 2
    /// message in flight whose PUBREC has not come is resent as QoS 1 under a lower
    /// maximum (a remote that restarted with other limits, or a spool restored from disk);
    /// one past PUBREC, or not yet sent (`Unsent`), finishes the flow it began.
    pub fn cap_queued(&mut self, maximum_qos: QoS, retain: bool) {
        let Some(flow) = self.flow.as_deref_mut() else {
            return;
        };
        for q in &mut flow.queue {
            q.qos = q.qos.min(maximum_qos);
            q.retain &= retain;
        }
        for f in &mut flow.inflight {
            f.retain &= retain;
            if maximum_qos < QoS::ExactlyOnce && f.state == AckState::Pubrec {
                f.qos = QoS::AtLeastOnce;
                f.state = AckState::Puback;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_stay_sorted_and_unique() {
        let mut s = Session::new("c".into(), NEVER_EXPIRES);
        for f in ["b/#", "a", "$share/g/x", "b/#", "c/+"] {
            s.set_subscription(f, SubscriptionOptions::at(QoS::AtMostOnce), 0);
        }
        s.set_subscription("a", SubscriptionOptions::at(QoS::ExactlyOnce), 0);
        let filters: Vec<&str> = s.subscriptions().map(|(f, _, _)| f).collect();
        assert_eq!(filters, ["$share/g/x", "a", "b/#", "c/+"]);
        let qos: Vec<QoS> = s.subscriptions().map(|(_, o, _)| o.qos).collect();
        assert_eq!(qos[1], QoS::ExactlyOnce, "replaced in place");
        assert!(s.has_subscription("c/+"));
        s.remove_subscription("c/+");
        s.remove_subscription("never");
        assert!(!s.has_subscription("c/+"));
        assert_eq!(s.subscription_count(), 3);
    }

    /// Regression: the subscriptions were a sorted `Vec`, so each insert shifted the entries
    /// after it and 100k filters subscribed in reverse order (one 1 MiB SUBSCRIBE with
    /// `max_subscriptions_per_client 0`) took seconds of event-loop time. Each add and
    /// remove is now O(log n). The quadratic version takes tens of seconds here in a debug
    /// build, so the bound (10 s) catches it while leaving room for a loaded machine, where a
    /// 2 s bound failed the O(log n) one.
    #[test]
    fn a_hundred_thousand_reverse_sorted_filters_are_added_and_removed_fast() {
        const N: usize = 100_000;
        let filters: Vec<String> = (0..N).rev().map(|i| format!("f/{i:06}")).collect();
        let mut s = Session::new("c".into(), NEVER_EXPIRES);
        let start = Instant::now();
        for f in &filters {
            s.set_subscription(f, SubscriptionOptions::at(QoS::AtLeastOnce), 0);
        }
        assert_eq!(s.subscription_count(), N);
        assert_eq!(
            s.subscriptions().next().map(|(f, _, _)| f),
            Some("f/000000")
        );
        for f in filters.iter().rev() {
            s.remove_subscription(f);
        }
        let took = start.elapsed();
        assert_eq!(s.subscription_count(), 0);
        assert!(
            took < std::time::Duration::from_secs(10),
            "100k reverse-sorted subscribe + unsubscribe took {took:?}"
        );
    }
}
