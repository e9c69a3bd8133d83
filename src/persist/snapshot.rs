//! Compaction: writing the live state as records, so the log segments before it can go.
//!
//! The snapshot is the records a replay needs to rebuild what is live now, nothing of
//! history: each retained message, and each stored session with its subscriptions, its
//! messages in flight (queued, then sent under their packet id, PUBREC noted) and queued, and
//! its inbound QoS 2 ids. Every message is written once however many queues hold it.
//!
//! It is taken from a frozen copy, so the loop is never stopped for long: `begin` rotates the
//! log (what happens from then on goes to the segments the snapshot does not cover) and, in
//! the same turn writes each stored session's own few records (SESSION, SUBSCRIBE, QOS2_IN)
//! and copies the messages live now into a list: they are shared (`Rc`), so the copy costs a
//! few words per queued message. `step` then writes a bounded slice of
//! that list each loop turn, through the store's buffered writer; the sync, the rename and the
//! retiring of old segments happen on the store's snapshot thread.
//!
//! When: once the log since the last snapshot is larger than the snapshot itself was (and at
//! least `MIN_LOG_BYTES`), so the disk holds at most about three times the live state and an
//! SD card is rewritten in proportion to what changed, not on every save; or, as Mosquitto's
//! `autosave_interval` asks, after that many seconds (or, with `autosave_on_changes`, that
//! many changes) if anything changed.

use std::collections::HashSet;
use std::rc::Rc;
use std::time::Instant;

use log::{error, info};

use super::journal::{Journal, stored_message, stored_session};
use super::record;
use super::store::SnapshotWriter;
use crate::core::hash::BuildLevelHasher;
use crate::core::message::Message;
use crate::core::state::State;
use crate::wire::QoS;

/// Log bytes below which no snapshot is worth writing.
pub const MIN_LOG_BYTES: u64 = 8 << 20;
/// Items `step` writes per loop turn (about 5 ms).
const ITEMS_PER_TURN: usize = 8192;

/// Whether a snapshot is due: see the module documentation.
pub fn due(state: &State, last: Instant) -> bool {
    let journal = &state.journal;
    let Some((log, snapshot)) = journal.sizes() else {
        return false;
    };
    if log >= MIN_LOG_BYTES && log >= snapshot {
        return true;
    }
    let interval = state.config.autosave_interval.as_secs();
    if interval == 0 || journal.records_since_snapshot() == 0 {
        return false;
    }
    if state.config.autosave_on_changes {
        journal.records_since_snapshot() >= interval
    } else {
        state.now.duration_since(last).as_secs() >= interval
    }
}

/// One piece of the frozen state, written as one or a few records.
#[derive(Debug)]
enum Item {
    Retained(Rc<Message>),
    /// A message session `key` holds: queued (packet id 0) or in flight.
    Entry {
        key: u64,
        message: Rc<Message>,
        qos: QoS,
        retain: bool,
        subscription_ids: Box<[u32]>,
        packet_id: u16,
        released: bool,
    },
}

/// A snapshot being written.
pub struct Snapshot {
    writer: SnapshotWriter,
    items: std::vec::IntoIter<Item>,
    written: HashSet<u64, BuildLevelHasher>,
    started: Instant,
    sessions: usize,
    retained: usize,
}

impl Snapshot {
    /// Starts a snapshot of `state` as it is now; `None` if the store is off or failed.
    pub fn begin(state: &mut State) -> Option<Snapshot> {
        let started = Instant::now();
        // A run still being coalesced belongs to the log before the snapshot.
        state.journal.flush_run();
        let mut writer = match state.journal.store_mut()?.begin_snapshot() {
            Ok(w) => w,
            Err(e) => {
                error!("snapshot not started: {e}");
                return None;
            }
        };
        state.journal.snapshot_written();
        let stored: usize = (state.sessions.iter())
            .filter(|(_, s)| s.store_key != 0)
            .map(|(_, s)| s.stored_len())
            .sum();
        let mut items = Vec::with_capacity(state.retained.len() + stored);
        let mut retained = 0;
        for m in state.retained.iter() {
            if m.store_id.get() != 0 {
                items.push(Item::Retained(Rc::clone(m)));
                retained += 1;
            }
        }
        let mut sessions = 0;
        for (sid, session) in state.sessions.iter() {
            let key = session.store_key;
            if key == 0 {
                continue;
            }
            sessions += 1;
            // A session's own records are few: written now, before the messages it holds.
            let will = session
                .conn()
                .and_then(|c| state.conns.get(c))
                .and_then(|c| c.will.as_deref())
                .or_else(|| {
                    let sid = crate::ids::SessionId(sid as u32);
                    state.pending_wills.get(&sid).map(|p| &p.will)
                });
            let stored = stored_session(session, will, &state.journal);
            writer.append(record::SESSION, |out| record::put_session(out, &stored));
            if let Some(b) = (session.bridge).and_then(|i| state.bridges.get(usize::from(i))) {
                let name = &b.config.name;
                writer.append(record::BRIDGE, |out| record::put_key_str(out, key, name));
            }
            for (filter, options, id) in session.subscriptions() {
                writer.append(record::SUBSCRIBE, |out| {
                    record::put_subscribe(out, key, filter, options, id)
                });
            }
            for &packet_id in session.inbound_qos2() {
                writer.append(record::QOS2_IN, |out| {
                    record::put_key_packet(out, key, packet_id)
                });
            }
            items.extend(session.stored_entries().map(|e| Item::Entry {
                key,
                message: Rc::clone(e.message),
                qos: e.qos,
                retain: e.retain,
                subscription_ids: e.subscription_ids.into(),
                packet_id: e.packet_id,
                released: e.released,
            }));
        }
        info!(
            "snapshot begun: {sessions} sessions, {retained} retained messages, {} items, frozen in {:?}",
            items.len(),
            started.elapsed()
        );
        Some(Snapshot {
            writer,
            items: items.into_iter(),
            written: HashSet::default(),
            started,
            sessions,
            retained,
        })
    }

    /// Writes the next slice; returns whether everything is written.
    pub fn step(&mut self, journal: &Journal) -> bool {
        for item in self.items.by_ref().take(ITEMS_PER_TURN) {
            write_item(&mut self.writer, journal, &mut self.written, &item);
        }
        self.items.len() == 0
    }

    /// Hands the written snapshot to the store.
    pub fn finish(self, journal: &mut Journal) {
        let Some(store) = journal.store_mut() else {
            return;
        };
        if let Err(e) = store.finish_snapshot(self.writer) {
            error!("snapshot not finished: {e}");
            return;
        }
        info!(
            "snapshot of {} sessions, {} retained and {} other messages written in {:?}",
            self.sessions,
            self.retained,
            self.written.len().saturating_sub(self.retained),
            self.started.elapsed()
        );
    }
}

/// Writes one item's records.
fn write_item(
    w: &mut SnapshotWriter,
    journal: &Journal,
    written: &mut HashSet<u64, BuildLevelHasher>,
    item: &Item,
) {
    match item {
        Item::Retained(m) => {
            put_message(w, journal, written, m);
            let id = m.store_id.get();
            w.append(record::RETAIN, |out| record::put_retain(out, &m.topic, id));
        }
        Item::Entry {
            key,
            message,
            qos,
            retain,
            subscription_ids,
            packet_id,
            released,
        } => {
            if !put_message(w, journal, written, message) {
                return;
            }
            let (key, id) = (*key, message.store_id.get());
            w.append(record::ENQUEUE, |out| {
                record::put_enqueue(out, key, id, *qos, *retain, subscription_ids, None)
            });
            if *packet_id != 0 {
                w.append(record::SENT, |out| {
                    record::put_run(out, key, Some(id), *packet_id, 1)
                });
            }
            if *released {
                w.append(record::PUBREC, |out| {
                    record::put_run(out, key, None, *packet_id, 1)
                });
            }
        }
    }
}

/// Writes `message`'s MESSAGE record unless this snapshot already has it; false for a
/// message that was never stored (nothing refers to it on disk).
fn put_message(
    w: &mut SnapshotWriter,
    journal: &Journal,
    written: &mut HashSet<u64, BuildLevelHasher>,
    message: &Message,
) -> bool {
    let id = message.store_id.get();
    if id == 0 {
        return false;
    }
    if written.insert(id) {
        let stored = stored_message(message, id, journal);
        w.append(record::MESSAGE, |out| record::put_message(out, &stored));
    }
    true
}
