//! `State`: everything the broker knows, owned by the event loop and lent to handlers as
//! `&mut State`. No globals, no interior mutability: one owner, one thread.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use slab::Slab;

use crate::auth::{Access, Auth, Dynsec, broker_only};
use crate::config::Config;
use crate::core::budget::Budget;
use crate::core::clients::ClientIndex;
pub use crate::core::close::Close;
use crate::core::drops::DropReason;
use crate::core::frame_cache::FrameCache;
use crate::core::payload::RxBytes;
use crate::core::retain::RetainedStore;
use crate::core::retain_walk::Walks;
use crate::core::route::RouteScratch;
use crate::core::session::{QueueLimits, Session};
use crate::core::topic::TopicLimits;
use crate::core::tree::SubscriptionTree;
use crate::core::will::PendingWill;
use crate::ids::SessionId;
use crate::ids::{ConnId, Millis};
use crate::net::conn::Conns;
use crate::net::pool::Pool;
use crate::persist::held::HeldAcks;
use crate::persist::journal::Journal;

/// Counters for `$SYS`, the Prometheus endpoint and logs. Each is one integer add where the
/// event happens (bytes: once per read or write call, not per packet); the gauges (clients,
/// subscriptions, stored messages) are worked out from `State` when they are reported.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// MQTT packets received from clients, of every type (Mosquitto's `messages/received`).
    pub packets_received: u64,
    /// MQTT packets put in clients' output, of every type (Mosquitto's `messages/sent`).
    pub packets_sent: u64,
    /// PUBLISH packets received from clients.
    pub publish_received: u64,
    /// PUBLISH packets put in clients' output (first sends and re-sends).
    pub publish_sent: u64,
    /// Payload bytes of the PUBLISH packets received.
    pub publish_bytes_received: u64,
    /// Payload bytes of the PUBLISH packets sent.
    pub publish_bytes_sent: u64,
    /// MQTT bytes read from client connections (after TLS decryption).
    pub bytes_received: u64,
    /// MQTT bytes written to client connections (before TLS encryption).
    pub bytes_sent: u64,
    /// Messages not delivered, by reason.
    pub dropped: crate::core::drops::Drops,
    /// Connections accepted over the broker's life.
    pub connections_accepted: u64,
    /// Connections refused at accept because of `max_connections`.
    pub connections_refused: u64,
    /// CONNECTs accepted (CONNACK with success).
    pub connects: u64,
    /// Offline sessions discarded because their expiry interval ran out.
    pub clients_expired: u64,
}

impl Stats {
    /// Counts what one `write_pending` or `resend_inflight` put in a client's output.
    pub fn count_sends(&mut self, sends: &crate::core::session::SendDrops) {
        self.publish_sent += sends.publishes;
        self.publish_bytes_sent += sends.payload_bytes;
        self.packets_sent += sends.publishes + sends.pubrels;
    }
}

/// Connection and session slots reserved (as address space, not memory) at start.
const RESERVED_SLOTS: usize = 65536;

/// The broker's whole state.
#[derive(Debug)]
pub struct State {
    /// Configuration, fixed at start.
    pub config: Config,
    /// Open connections, keyed by `ConnId` (their mio token).
    pub conns: Conns,
    /// Sessions, online or not, keyed by `SessionId`.
    pub sessions: Slab<Session>,
    /// Client id to session.
    pub client_ids: ClientIndex,
    /// Every subscription.
    pub tree: SubscriptionTree,
    /// Retained messages.
    pub retained: RetainedStore,
    /// Recycled I/O buffers.
    pub pool: Pool,
    /// The receive buffer whose packets are being handled, if messages may share it
    /// (`payload_of`).
    pub receiving: Option<RxBytes>,
    /// Connections with output to produce at the end of this loop turn.
    pub dirty: Vec<ConnId>,
    /// Connections a handler decided to close (e.g. a session takeover); closed by the loop.
    pub to_close: Vec<(ConnId, Close)>,
    /// Reused scratch space for routing one message.
    pub route: RouteScratch,
    /// Counters.
    pub stats: Stats,
    /// The time of this loop turn (set with `set_now`, which also updates `millis()`).
    pub now: Instant,
    /// When the broker started, the origin of `Millis` stamps.
    started: Instant,
    /// `now` as a `Millis` stamp, worked out once per turn (routing reads it per message).
    now_millis: Millis,
    /// Sequence for broker-assigned client ids.
    pub assigned_ids: u64,
    /// Security settings per listener (all alike without `per_listener_settings`).
    pub auth: Vec<Auth>,
    /// Whether any listener has an ACL file or dynamic security (if none, no per-message
    /// checks are made).
    pub acl_active: bool,
    /// The dynamic security data, if a listener uses the plugin.
    pub dynsec: Option<Dynsec>,
    /// Wills waiting for their Will Delay Interval; at most one per session.
    pub pending_wills: HashMap<SessionId, PendingWill>,
    /// Offline sessions' expiry times, soonest first (`lifecycle::arm_expiry`): the sweep
    /// looks at the due ones only. An entry whose session came back, ended, or was given a
    /// later time since is skipped when it comes up.
    pub session_expiry: BinaryHeap<Reverse<(Instant, SessionId)>>,
    /// Publishers not read from, each with the client whose output is over
    /// `max_output_buffer` with their messages (see `route::deliver`).
    pub held: Vec<(ConnId, ConnId)>,
    /// SUBSCRIBEs whose retained messages are still being delivered.
    pub walks: Walks,
    /// PUBLISH frames encoded this output pass, for copying to other subscribers.
    pub frames: FrameCache,
    /// The persistent store's journal (a no-op with `persistence false`).
    pub journal: Journal,
    /// Acknowledgements waiting for the journal to be durable.
    pub held_acks: HeldAcks,
    /// Bridges to other brokers, in configuration order.
    pub bridges: Vec<crate::bridge::Bridge>,
    /// The `memory_limit` budget, measured by the loop once per turn.
    pub budget: Budget,
    /// The estimate `max_queued_bytes_total` is checked against (`route::deliver`).
    pub queued_total: QueuedTotal,
    /// An embedding program's hooks (`auth/hooks.rs`); none by default.
    pub hooks: crate::auth::hooks::Hooks,
    /// Where hooks' deferred decisions come back through (`auth/defer.rs`).
    pub(crate) deferrals: crate::auth::defer::Deferrals,
    /// The authorize hook's answers for the packet being handled, asked before it was
    /// (`handle::authorize`): topic, access, verdict.
    pub(crate) granted: Vec<(Box<str>, Access, bool)>,
}

/// Payload bytes queued across all sessions, as `max_queued_bytes_total` counts them: an
/// estimate that is never below the truth (each message queued is added; what leaves a queue
/// is not subtracted), made exact by a walk over the sessions only when it reaches the cap,
/// at most once per loop turn.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueuedTotal {
    /// Bytes as of the last walk plus everything queued since.
    pub bytes: usize,
    /// The turn of the last walk.
    pub walked: Option<Millis>,
}

/// The connection and session slots reserved up front for `config`.
fn reserved_slots(config: &Config) -> usize {
    config
        .max_connections
        .unwrap_or(RESERVED_SLOTS)
        .min(RESERVED_SLOTS)
}

impl State {
    /// The connection and session slots reserved up front (which trimming keeps).
    pub fn reserved_slots(&self) -> usize {
        reserved_slots(&self.config)
    }

    /// An empty state for `config`, with `auth` loaded for each listener.
    pub fn new(config: Config, auth: Vec<Auth>, now: Instant) -> State {
        // Reserve the slabs' address space up front: pages are only backed once used, and a
        // slab that never reallocates leaves no freed-but-resident copies behind as it grows.
        let reserved = reserved_slots(&config);
        let config_memory_limit = config.memory_limit;
        let connect_timeout = config.connect_timeout;
        State {
            acl_active: auth.iter().any(Auth::has_acl),
            auth,
            dynsec: None,
            retained: RetainedStore::new(config.max_retained_messages),
            pool: Pool::new(8 * 1024, 256),
            receiving: None,
            config,
            conns: Conns::with_capacity(reserved).with_connect_timeout(connect_timeout),
            sessions: Slab::with_capacity(reserved),
            client_ids: ClientIndex::default(),
            tree: SubscriptionTree::default(),
            dirty: Vec::new(),
            to_close: Vec::new(),
            route: RouteScratch::default(),
            stats: Stats::default(),
            now,
            started: now,
            now_millis: Millis(0),
            assigned_ids: 0,
            pending_wills: HashMap::new(),
            session_expiry: BinaryHeap::new(),
            held: Vec::new(),
            walks: Walks::default(),
            frames: FrameCache::default(),
            journal: Journal::default(),
            held_acks: HeldAcks::default(),
            bridges: Vec::new(),
            budget: Budget::new(config_memory_limit),
            queued_total: QueuedTotal::default(),
            hooks: crate::auth::hooks::Hooks::default(),
            deferrals: crate::auth::defer::Deferrals::new().0,
            granted: Vec::new(),
        }
    }

    /// Milliseconds from the broker's start to this loop turn (`millis()` unwrapped).
    pub fn uptime_millis(&self) -> u64 {
        self.now.saturating_duration_since(self.started).as_millis() as u64
    }

    /// This loop turn's time as a compact `Millis` stamp.
    pub fn millis(&self) -> Millis {
        self.now_millis
    }

    /// Starts a loop turn at `now` (the only way the loop moves time forward).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
        // Truncation is the intended wrap-around.
        self.now_millis = Millis(now.saturating_duration_since(self.started).as_millis() as u32);
    }

    /// Queue bounds from the configuration.
    pub fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            max_inflight: self.config.max_inflight_messages.max(1),
            max_queued: self.config.max_queued_messages,
            max_queued_bytes: self.config.max_queued_bytes,
            queue_qos0_offline: self.config.queue_qos0_messages,
        }
    }

    /// Topic bounds from the configuration.
    pub fn topic_limits(&self) -> TopicLimits {
        TopicLimits {
            max_length: self.config.max_topic_length,
            max_levels: self.config.max_topic_levels,
        }
    }

    /// Puts a connection on the list whose output is produced and written this turn.
    pub fn mark_dirty(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(id)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Whether session `sid` may have `access` to `topic`, as `allowed_as` decides for its
    /// client.
    pub fn allowed(&self, sid: SessionId, topic: &str, access: Access) -> bool {
        // A bridge is configured by the operator, not a client: no ACL applies (Mosquitto).
        // What the remote sends still may not write the broker's own topics: `$SYS`, or the
        // `$CONTROL` API, which would run as an administrator.
        if self
            .sessions
            .get(sid.0 as usize)
            .is_some_and(|s| s.bridge.is_some())
        {
            let broker_owned = broker_only(topic) || topic.starts_with("$CONTROL/");
            return !(access == Access::Write && broker_owned);
        }
        if !self.acl_active && self.hooks.authorize.is_none() {
            return !(access == Access::Write && broker_only(topic));
        }
        self.sessions.get(sid.0 as usize).is_some_and(|session| {
            self.allowed_as(
                session.listener,
                &session.client_id,
                session.username.as_deref(),
                topic,
                access,
            )
        })
    }

    /// Whether the client `client_id` with `username`, connected through `listener`, may
    /// have `access` to `topic`: never write to a topic only the broker publishes (`$SYS`),
    /// whatever the ACL grants, as Mosquitto; otherwise as the listener's ACL says.
    pub fn allowed_as(
        &self,
        listener: u16,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> bool {
        if access == Access::Write && broker_only(topic) {
            return false;
        }
        // An embedder's hook has the last word, told what the files decided: asked before
        // the packet was handled, if it could wait.
        if let Some(&(_, _, verdict)) =
            (self.granted.iter()).find(|(t, a, _)| **t == *topic && *a == access)
        {
            return verdict;
        }
        let files = self.allowed_by_files(listener, client_id, username, topic, access);
        match &self.hooks.authorize {
            Some(hook) => {
                let request = crate::auth::hooks::Authorization {
                    client_id,
                    username,
                    listener,
                    topic,
                    access,
                };
                hook.authorize(&request, files)
            }
            None => files,
        }
    }

    /// What the listener's ACL file or dynamic security alone says of `access` to `topic`
    /// (never a write to a topic only the broker publishes).
    pub fn allowed_by_files(
        &self,
        listener: u16,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> bool {
        if access == Access::Write && broker_only(topic) {
            return false;
        }
        let dynsec = self.dynsec.as_ref();
        self.auth
            .get(usize::from(listener))
            .is_some_and(|auth| auth.allowed(dynsec, client_id, username, topic, access))
    }

    /// Counts `n` messages not delivered to (or accepted from) session `sid`.
    pub fn count_drop(&mut self, sid: SessionId, reason: DropReason, n: u64) {
        let client_id = self
            .sessions
            .get(sid.0 as usize)
            .map_or("", |s| &s.client_id);
        self.stats.dropped.count(reason, n, client_id);
    }

    /// Bytes waiting for connection `id`: its output buffer and its session's queue.
    pub fn output_backlog(&self, id: ConnId) -> Option<usize> {
        let conn = self.conns.get(id)?;
        let queued = conn
            .session
            .and_then(|sid| self.sessions.get(sid.0 as usize))
            .map_or(0, |s| s.backlog());
        Some(conn.tx.len() + queued)
    }

    /// Stops reading from `publisher` until `subscriber` has drained its output (or is
    /// found slow, or gone): TCP back-pressure instead of dropping QoS 0.
    pub fn hold(&mut self, publisher: ConnId, subscriber: ConnId) {
        if let Some(conn) = self.conns.get_mut(publisher)
            && conn.held_by.is_none()
        {
            conn.held_by = Some(subscriber);
            self.held.push((publisher, subscriber));
        }
    }
}

#[cfg(test)]
impl State {
    /// A state with `config` and its security settings (which must name no files), at time
    /// `now`: what the core's unit tests run against.
    pub fn for_test(config: Config, now: Instant) -> State {
        let auth = Auth::load(&config.security_for(0)).expect("a test config names no files");
        State::new(config, vec![auth], now)
    }
}
