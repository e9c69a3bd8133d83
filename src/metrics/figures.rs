//! `Figures`: everything `$SYS` and the Prometheus endpoint report, read from `State` at
//! one moment: the counters as they stand, and the gauges worked out from the slabs and
//! stores (a walk over sessions and held messages, done only when reported).

use std::collections::HashSet;
use std::rc::Rc;
use std::time::Instant;

use super::heap;
use crate::core::budget::Budget;
use crate::core::message::Message;
use crate::core::state::{State, Stats};

/// The broker's figures at one moment.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Seconds since the broker started.
    pub uptime: u64,
    /// Sessions, online or not (Mosquitto's `clients/total`).
    pub clients_total: usize,
    /// Sessions with a network connection.
    pub clients_connected: usize,
    /// The largest `clients_total` seen when figures were taken.
    pub clients_maximum: usize,
    /// Subscriptions, shared ones included.
    pub subscriptions: usize,
    /// Shared subscriptions (members of `$share` groups).
    pub shared_subscriptions: usize,
    /// Retained messages.
    pub retained: usize,
    /// Messages waiting in sessions' queues, not yet sent (counted once per session).
    pub queued: usize,
    /// Distinct messages held in memory: retained, queued, in flight or pending as a
    /// delayed will, each counted once however many sessions hold it.
    pub stored_messages: usize,
    /// Payload bytes of `stored_messages`.
    pub stored_bytes: u64,
    /// Heap bytes in use and the most seen when figures were taken, if the allocator says.
    pub heap: Option<(u64, u64)>,
    /// Bytes the persistent store has written since start, with persistence on.
    pub store_bytes_written: Option<u64>,
    /// The `memory_limit` budget, its stages in force and what each has shed.
    pub budget: Budget,
    /// The counters.
    pub stats: Stats,
}

impl Figures {
    /// Sessions without a network connection.
    pub fn clients_disconnected(&self) -> usize {
        self.clients_total - self.clients_connected
    }
}

/// What is remembered between takes: the maxima.
#[derive(Debug)]
pub struct Taker {
    started: Instant,
    clients_maximum: usize,
    heap_maximum: u64,
}

impl Taker {
    /// A taker for a broker started at `started`.
    pub fn new(started: Instant) -> Taker {
        Taker {
            started,
            clients_maximum: 0,
            heap_maximum: 0,
        }
    }

    /// The figures of `state` now.
    pub fn take(&mut self, state: &State) -> Figures {
        let clients_total = state.sessions.len();
        self.clients_maximum = self.clients_maximum.max(clients_total);
        let heap = heap::allocated().map(|current| {
            self.heap_maximum = self.heap_maximum.max(current);
            (current, self.heap_maximum)
        });
        // Each message once, by address: a message queued for a thousand sessions is
        // stored once (`Rc`), as Mosquitto's store counts it once. The set is dropped after
        // the walk: kept, it would hold the peak's memory between reports.
        let mut seen = HashSet::new();
        let mut stored_bytes = 0;
        let mut count = |message: &Rc<Message>| {
            if seen.insert(Rc::as_ptr(message)) {
                stored_bytes += message.payload.len() as u64;
            }
        };
        state.retained.iter().for_each(&mut count);
        state
            .pending_wills
            .values()
            .for_each(|p| count(&p.will.message));
        // One walk over the sessions for all three figures: with many idle clients the walk
        // is the cost of a report, paid in one loop turn.
        let (mut clients_connected, mut queued) = (0, 0);
        for (_, session) in &state.sessions {
            clients_connected += usize::from(session.is_online());
            queued += session.queued();
            session.held_messages().for_each(&mut count);
        }
        let stored_messages = seen.len();
        Figures {
            uptime: state.now.saturating_duration_since(self.started).as_secs(),
            clients_total,
            clients_connected,
            clients_maximum: self.clients_maximum,
            subscriptions: state.tree.len(),
            shared_subscriptions: state.tree.shared_len(),
            retained: state.retained.len(),
            queued,
            stored_messages,
            stored_bytes,
            heap,
            store_bytes_written: state
                .journal
                .enabled()
                .then(|| state.journal.bytes_written()),
            budget: state.budget,
            stats: state.stats,
        }
    }
}
