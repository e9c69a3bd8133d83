//! `log_dest topic`: log lines published on `$SYS/broker/log/E`, `W` or `N` (Mosquitto's
//! names for error, warning and notice; debug lines are never published, as in Mosquitto).
//!
//! Lines are logged on any thread (the loop, the fsync and snapshot threads), so the logger
//! only queues them here and wakes the loop, which publishes them through the normal routing
//! at the end of a turn (`publish`): QoS 2, not retained, expiring after 20 seconds, as
//! Mosquitto publishes them. The queue holds at most
//! `CAPACITY` lines; a line logged while it is full is dropped and counted, and the count is
//! logged (not published) when the loop next empties it. Lines logged while the loop
//! publishes log lines are not queued again, so publishing cannot feed itself.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::Waker;

use super::Kind;
use crate::core::message::Message;
use crate::core::route;
use crate::core::state::State;
use crate::wire::QoS;

/// How long a published line may wait in a session's queue (Mosquitto's 20 s).
const LINE_EXPIRY: Duration = Duration::from_secs(20);

/// Most lines waiting for the loop; more are dropped (counted).
pub const CAPACITY: usize = 1024;

thread_local! {
    /// Set on the loop's thread while it publishes queued lines.
    static PUBLISHING: Cell<bool> = const { Cell::new(false) };
}

/// Lines waiting to be published, and the loop's waker.
#[derive(Debug, Default)]
pub struct TopicQueue {
    lines: Mutex<VecDeque<(&'static str, String)>>,
    /// Whether `lines` may be non-empty: the loop's per-turn check without the lock.
    pending: AtomicBool,
    dropped: AtomicU64,
    waker: Mutex<Option<Arc<Waker>>>,
}

impl TopicQueue {
    /// An empty queue with no loop to wake yet.
    pub fn new() -> TopicQueue {
        TopicQueue::default()
    }

    /// Makes queued lines wake the loop that owns `waker`.
    pub(crate) fn attach(&self, waker: Arc<Waker>) {
        *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(waker);
        self.wake();
    }

    /// Queues `line` of `kind` (the logger's side).
    pub(super) fn push(&self, kind: Kind, line: &str) {
        let topic = match kind {
            Kind::Error => "$SYS/broker/log/E",
            Kind::Warning => "$SYS/broker/log/W",
            Kind::Notice => "$SYS/broker/log/N",
            Kind::Debug => return,
        };
        if PUBLISHING.with(Cell::get) {
            return;
        }
        {
            let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
            if lines.len() >= CAPACITY {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            lines.push_back((topic, line.to_string()));
        }
        if !self.pending.swap(true, Ordering::AcqRel) {
            self.wake();
        }
    }

    fn wake(&self) {
        let waker = self.waker.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(waker) = waker.as_ref() {
            // Nowhere to report a failed wake: the lines go out on the next turn anyway.
            let _ = waker.wake();
        }
    }

    /// Takes every queued line (the loop's side).
    fn take(&self) -> VecDeque<(&'static str, String)> {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return VecDeque::new();
        }
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Publishes the queued lines to their subscribers (called by the loop at the end of a turn).
pub(crate) fn publish(queue: &TopicQueue, state: &mut State) {
    let lines = queue.take();
    if lines.is_empty() {
        return;
    }
    PUBLISHING.with(|p| p.set(true));
    for (topic, line) in lines {
        let mut message = Message::shared(topic, line.as_bytes(), QoS::ExactlyOnce, false);
        if let Some(m) = Rc::get_mut(&mut message) {
            // Queued for an offline session, a log line is stale after a while.
            m.expires_at = Some(state.now + LINE_EXPIRY);
        }
        route::publish(state, &message, None);
    }
    let dropped = queue.dropped.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        log::warn!("{dropped} log lines were not published on $SYS/broker/log: queue full");
    }
    PUBLISHING.with(|p| p.set(false));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_bounded_and_skips_debug() {
        let queue = TopicQueue::new();
        queue.push(Kind::Debug, "never");
        assert!(queue.take().is_empty());
        for n in 0..CAPACITY + 5 {
            queue.push(Kind::Notice, &n.to_string());
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 5);
        let lines = queue.take();
        assert_eq!(lines.len(), CAPACITY);
        assert_eq!(lines[0], ("$SYS/broker/log/N", String::from("0")));
        assert!(queue.take().is_empty());
    }

    #[test]
    fn lines_logged_while_publishing_are_not_queued() {
        let queue = TopicQueue::new();
        PUBLISHING.with(|p| p.set(true));
        queue.push(Kind::Error, "from routing");
        PUBLISHING.with(|p| p.set(false));
        queue.push(Kind::Warning, "later");
        let lines = queue.take();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, "$SYS/broker/log/W");
    }
}
