//! `Journal`: what `core/` calls to record a durable change, and what the loop asks about
//! durability. It wraps the store (absent with `persistence false`, when every call is a
//! cheap no-op), hands out message ids and session keys, and turns `Instant`s into Unix
//! milliseconds so an expiry counts on across a restart.
//!
//! Durability is tracked per batch (one per loop turn, see `Store::commit`). An
//! acknowledgement is held while anything appended so far is not durable ([`Journal::hold`]):
//! conservative (an ack may wait for a record it does not depend on) but simple, and never
//! early. A QoS 2 PUBLISH to a subscriber is held until its message's record is durable, so a
//! crash cannot make the publisher's retransmission a second delivery ([`Journal::durable`]).

use std::cell::Cell;
use std::collections::VecDeque;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use log::error;

use super::record::{self, StoredMessage, StoredProperties, StoredSession, StoredWill};
use super::store::{Store, StoreFailed, SyncPolicy};
use crate::core::message::Message;
use crate::core::session::Session;
use crate::core::will::Will;
use crate::ids::SessionId;
use crate::wire::{QoS, SubscriptionOptions};

/// A message's id in the store: 0 until its MESSAGE record is appended. A `Cell`, because
/// the message is shared (`Rc`); only the loop's thread touches it.
#[derive(Debug, Default)]
pub struct StoreId(Cell<u64>);

impl StoreId {
    /// The id, 0 if not stored.
    pub fn get(&self) -> u64 {
        self.0.get()
    }

    /// Records the id (restore, or first append).
    pub fn set(&self, id: u64) {
        self.0.set(id);
    }
}

impl PartialEq for StoreId {
    /// Bookkeeping, not part of what a message is: always equal.
    fn eq(&self, _: &StoreId) -> bool {
        true
    }
}

/// What becomes of an acknowledgement (see [`Journal::hold`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Sent now: nothing it confirms can still be lost.
    No,
    /// Held until this batch is durable.
    Until(u64),
    /// Never sent: the store failed, so nothing more is confirmed.
    Never,
}

/// The broker's handle on its store.
#[derive(Debug)]
pub struct Journal {
    store: Option<Store>,
    /// Whether acknowledgements wait for durability (`persistence_sync fsync`).
    holds: bool,
    /// Next message id and session key to hand out (both start at 1: 0 means "not stored").
    next_message: u64,
    next_key: u64,
    /// `(batch, last message id appended in it)` for batches not yet known durable.
    pending: VecDeque<(u64, u64)>,
    /// Every message id up to this one is durable.
    durable_message: u64,
    /// The last batch committed (0: none).
    committed: u64,
    /// An `Instant` and the Unix milliseconds it was, to convert expiry deadlines.
    origin: (Instant, u64),
    /// The store failed: nothing more is acknowledged.
    failed: bool,
    /// Free space is under `persistence_min_free_space`: QoS 1/2 PUBLISHes are refused.
    pub low_space: bool,
    /// Records appended since the last snapshot.
    changes: u64,
    /// The run of SENT, ACKED or PUBREC records being coalesced.
    run: Option<Run>,
    /// Whether deliveries to online clients are recorded late (`lifecycle::enqueue`):
    /// without `fsync`, nothing waits for the disk, so a delivery acknowledged before the
    /// next `log_deferred` need never be written.
    defers: bool,
    /// Sessions holding messages not yet recorded.
    deferred: Vec<SessionId>,
}

/// Consecutive SENT, ACKED or PUBREC records of one session (consecutive packet ids, and for
/// SENT consecutive message ids), appended as one record (`record::SENT`).
#[derive(Clone, Copy, Debug)]
struct Run {
    kind: u8,
    key: u64,
    message: u64,
    packet_id: u16,
    count: u16,
    last_message: u64,
    last_packet_id: u16,
}

impl Run {
    /// Whether a record of `kind` for (`key`, `message`, `packet_id`) continues this run.
    fn extends(&self, kind: u8, key: u64, message: u64, packet_id: u16) -> bool {
        self.kind == kind
            && self.key == key
            && self.count < u16::MAX
            && packet_id != 0
            && packet_id == record::next_packet_id(self.last_packet_id)
            && (kind != record::SENT || message == self.last_message + 1)
    }
}

impl Default for Journal {
    fn default() -> Self {
        Journal::new(None, SyncPolicy::Never, Instant::now())
    }
}

impl Journal {
    /// A journal writing to `store` (none: persistence off) under `sync`.
    pub fn new(store: Option<Store>, sync: SyncPolicy, now: Instant) -> Journal {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Journal {
            holds: store.is_some() && sync == SyncPolicy::Fsync,
            defers: store.is_some() && sync != SyncPolicy::Fsync,
            store,
            next_message: 1,
            next_key: 1,
            pending: VecDeque::new(),
            durable_message: 0,
            committed: 0,
            origin: (now, unix),
            failed: false,
            low_space: false,
            changes: 0,
            run: None,
            deferred: Vec::new(),
        }
    }

    /// Whether anything is persisted.
    pub fn enabled(&self) -> bool {
        self.store.is_some()
    }

    /// The store, for the loop (commit, poll, snapshot, close).
    pub fn store_mut(&mut self) -> Option<&mut Store> {
        self.store.as_mut()
    }

    /// Takes the store out (shutdown).
    pub fn take_store(&mut self) -> Option<Store> {
        self.store.take()
    }

    /// Continues the id sequences after a restore that saw ids up to these.
    pub fn resume_ids(&mut self, last_message: u64, last_key: u64) {
        self.next_message = self.next_message.max(last_message + 1);
        self.next_key = self.next_key.max(last_key + 1);
        self.durable_message = self.next_message - 1;
    }

    /// A new session key.
    pub fn new_key(&mut self) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        key
    }

    /// `at` as Unix milliseconds.
    pub fn unix_millis(&self, at: Instant) -> u64 {
        let (origin, unix) = self.origin;
        match at.checked_duration_since(origin) {
            Some(after) => unix.saturating_add(after.as_millis() as u64),
            None => unix.saturating_sub(origin.duration_since(at).as_millis() as u64),
        }
    }

    /// Unix milliseconds `unix` as an `Instant` (`None`: already past at `now`).
    pub fn instant_of(&self, unix: u64, now: Instant) -> Option<Instant> {
        let now_unix = self.unix_millis(now);
        let left = unix.checked_sub(now_unix)?;
        (left > 0).then(|| now + std::time::Duration::from_millis(left))
    }

    /// Appends a record of `kind` if a store is open.
    pub fn append(&mut self, kind: u8, body: impl FnOnce(&mut Vec<u8>)) {
        self.flush_run();
        if let Some(store) = &mut self.store {
            store.append(kind, body);
            self.changes += 1;
        }
    }

    /// Log bytes since the last snapshot and that snapshot's size, if a store is open.
    pub fn sizes(&self) -> Option<(u64, u64)> {
        let store = self.store.as_ref()?;
        Some((store.log_bytes(), store.snapshot_bytes()))
    }

    /// Records appended since the last snapshot.
    pub fn records_since_snapshot(&self) -> u64 {
        self.changes
    }

    /// Notes that a snapshot was handed to the store.
    pub fn snapshot_written(&mut self) {
        self.changes = 0;
    }

    /// Every byte the store has written, for `$SYS`.
    pub fn bytes_written(&self) -> u64 {
        self.store.as_ref().map_or(0, Store::bytes_written)
    }

    /// The store id of `message`, appending its MESSAGE record the first time.
    pub fn message(&mut self, message: &Message) -> u64 {
        let id = message.store_id.get();
        if id != 0 || self.store.is_none() {
            return id;
        }
        let id = self.assign_id(message);
        let stored = stored_message(message, id, self);
        self.append(record::MESSAGE, |out| record::put_message(out, &stored));
        id
    }

    /// Gives `message`, not yet stored, the next store id.
    fn assign_id(&mut self, message: &Message) -> u64 {
        let id = self.next_message;
        self.next_message += 1;
        message.store_id.set(id);
        id
    }

    /// Records a message queued to session `key`.
    pub fn enqueue(
        &mut self,
        key: u64,
        message: &Message,
        qos: QoS,
        retain: bool,
        subscription_ids: &[u32],
    ) {
        if self.store.is_none() {
            return;
        }
        let id = message.store_id.get();
        if id != 0 {
            self.append(record::ENQUEUE, |out| {
                record::put_enqueue(out, key, id, qos, retain, subscription_ids, None)
            });
            return;
        }
        // The message's first record: it goes inline.
        let id = self.assign_id(message);
        let stored = stored_message(message, id, self);
        self.append(record::ENQUEUE, |out| {
            record::put_enqueue(out, key, id, qos, retain, subscription_ids, Some(&stored))
        });
    }

    /// Records a queued message sent under `packet_id` (0: QoS 0, gone).
    pub fn sent(&mut self, key: u64, message: u64, packet_id: u16) {
        self.coalesce(record::SENT, key, message, packet_id);
    }

    /// Records a queued message dropped unsent.
    pub fn dequeue(&mut self, key: u64, message: u64) {
        self.append(record::DEQUEUE, |out| {
            record::put_key_message(out, key, message)
        });
    }

    /// Records one of the records that are a session key and a packet id (ACKED and
    /// PUBREC are coalesced into runs).
    pub fn packet(&mut self, kind: u8, key: u64, packet_id: u16) {
        if kind == record::ACKED || kind == record::PUBREC {
            self.coalesce(kind, key, 0, packet_id);
        } else {
            self.append(kind, |out| record::put_key_packet(out, key, packet_id));
        }
    }

    /// Adds a SENT, ACKED or PUBREC to the run being built if it continues it, else
    /// appends that run and starts another.
    fn coalesce(&mut self, kind: u8, key: u64, message: u64, packet_id: u16) {
        if self.store.is_none() {
            return;
        }
        if let Some(run) = &mut self.run
            && run.extends(kind, key, message, packet_id)
        {
            run.count += 1;
            run.last_message = message;
            run.last_packet_id = packet_id;
            return;
        }
        self.flush_run();
        self.run = Some(Run {
            kind,
            key,
            message,
            packet_id,
            count: 1,
            last_message: message,
            last_packet_id: packet_id,
        });
    }

    /// Appends the run being built, if any.
    pub fn flush_run(&mut self) {
        if let (Some(run), Some(store)) = (self.run.take(), &mut self.store) {
            let message = (run.kind == record::SENT).then_some(run.message);
            store.append(run.kind, |out| {
                record::put_run(out, run.key, message, run.packet_id, run.count)
            });
            self.changes += 1;
        }
    }

    /// Records a subscription added or replaced.
    pub fn subscribe(
        &mut self,
        key: u64,
        filter: &str,
        options: SubscriptionOptions,
        subscription_id: u32,
    ) {
        self.append(record::SUBSCRIBE, |out| {
            record::put_subscribe(out, key, filter, options, subscription_id)
        });
    }

    /// Records a subscription removed.
    pub fn unsubscribe(&mut self, key: u64, filter: &str) {
        self.append(record::UNSUBSCRIBE, |out| {
            record::put_key_str(out, key, filter)
        });
    }

    /// Records the retained message of `topic` set (or cleared, `None`).
    pub fn retain(&mut self, topic: &str, message: Option<&Message>) {
        if self.store.is_none() {
            return;
        }
        let id = message.map_or(0, |m| self.message(m));
        self.append(record::RETAIN, |out| record::put_retain(out, topic, id));
    }

    /// Records a session ended, or its will gone (`kind` SESSION_END or WILL_GONE).
    pub fn key_only(&mut self, kind: u8, key: u64) {
        self.append(kind, |out| record::put_u64(out, key));
    }

    /// Ends the loop turn's batch: written, and synced as the policy says. A failure stops
    /// all acknowledgements for good, and says so once. Returns whether anything became
    /// durable.
    pub fn commit(&mut self) -> bool {
        self.flush_run();
        let Some(store) = &mut self.store else {
            return false;
        };
        if store.batch_is_empty() {
            return false;
        }
        let batch = store.batch();
        let result = store.commit();
        self.committed = batch;
        self.pending.push_back((batch, self.next_message - 1));
        if let Err(e) = result {
            self.fail(&e);
        }
        self.advance()
    }

    /// Takes in the sync thread's reports; returns whether anything became durable.
    pub fn poll(&mut self) -> bool {
        let Some(store) = &mut self.store else {
            return false;
        };
        if let Err(e) = store.poll() {
            self.fail(&e);
            return false;
        }
        self.advance()
    }

    fn advance(&mut self) -> bool {
        let Some(store) = &self.store else {
            return false;
        };
        if self.failed {
            return false;
        }
        let durable = store.durable();
        let mut moved = false;
        while let Some(&(batch, last)) = self.pending.front() {
            if batch > durable {
                break;
            }
            self.pending.pop_front();
            // Ids are handed out in batch order: every id up to this batch's last is durable.
            self.durable_message = last;
            moved = true;
        }
        moved
    }

    fn fail(&mut self, e: &StoreFailed) {
        if !self.failed {
            error!(
                "persistence failed, no longer acknowledging QoS 1/2 messages or subscriptions: {e}"
            );
        }
        self.failed = true;
    }

    /// What becomes of an acknowledgement sent now: it waits while anything appended is not
    /// durable, and after a failure it is never sent.
    pub fn hold(&self) -> Hold {
        let Some(store) = self.store.as_ref().filter(|_| self.holds) else {
            return Hold::No;
        };
        if self.failed {
            Hold::Never
        } else if !store.batch_is_empty() || self.run.is_some() {
            Hold::Until(store.batch())
        } else if store.durable() < self.committed {
            Hold::Until(self.committed)
        } else {
            Hold::No
        }
    }

    /// The batch a retained walk started now waits for (0: none).
    pub fn walk_after(&self) -> u64 {
        match self.hold() {
            Hold::No => 0,
            Hold::Until(batch) => batch,
            Hold::Never => u64::MAX,
        }
    }

    /// Whether deliveries to online clients are recorded late (see `lifecycle::enqueue`).
    pub fn defers(&self) -> bool {
        self.defers
    }

    /// Puts session `sid` on the list of those holding messages not yet recorded.
    pub fn defer(&mut self, sid: SessionId) {
        self.deferred.push(sid);
    }

    /// Whether any session holds messages not yet recorded.
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Takes the list of sessions holding messages not yet recorded.
    pub fn take_deferred(&mut self) -> Vec<SessionId> {
        std::mem::take(&mut self.deferred)
    }

    /// Whether acknowledgements wait for durability (`persistence_sync fsync`).
    pub fn holds(&self) -> bool {
        self.holds
    }

    /// The batch records appended now go into.
    pub fn open_batch(&self) -> u64 {
        self.store.as_ref().map_or(0, Store::batch)
    }

    /// The highest batch known durable.
    pub fn durable_batch(&self) -> u64 {
        match &self.store {
            Some(store) if self.holds && !self.failed => store.durable(),
            Some(_) if self.holds => 0,
            _ => u64::MAX,
        }
    }

    /// Whether message `id` (a store id, 0 for one never stored) is durable, so a QoS 2
    /// delivery of it may go out.
    pub fn durable(&self, id: u64) -> bool {
        !self.holds || id <= self.durable_message
    }
}

/// Stored session `session` (its store key given) as a SESSION record, with `will`.
pub fn stored_session<'a>(
    session: &'a Session,
    will: Option<&'a Will>,
    journal: &Journal,
) -> StoredSession<'a> {
    StoredSession {
        key: session.store_key,
        client_id: &session.client_id,
        version: session.version,
        expiry_interval: session.expiry_interval,
        listener: session.listener,
        username: session.username.as_deref(),
        will: will.map(|w| StoredWill {
            message: stored_message(&w.message, 0, journal),
            delay: w.delay,
            message_expiry_interval: w.message_expiry_interval,
        }),
    }
}

/// `message` as a MESSAGE record with store id `id`.
pub fn stored_message<'a>(message: &'a Message, id: u64, journal: &Journal) -> StoredMessage<'a> {
    StoredMessage {
        id,
        qos: message.qos,
        retain: message.retain,
        expires_at: message.expires_at.map(|at| journal.unix_millis(at)),
        topic: &message.topic,
        properties: message.properties.as_deref().map(|p| StoredProperties {
            payload_format_indicator: p.payload_format_indicator,
            content_type: p.content_type.as_deref(),
            response_topic: p.response_topic.as_deref(),
            correlation_data: p.correlation_data.as_deref(),
            user_properties: &p.user_properties,
        }),
        payload: &message.payload,
    }
}
