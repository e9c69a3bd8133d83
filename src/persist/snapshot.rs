//! Compaction: writing the live state as records, so the log segments before it can go.
//!
//! The snapshot is the records a replay needs to rebuild what is live now, nothing of
//! history: each retained message, and each stored session with its subscriptions, its
//! messages in flight (queued, then sent under their packet id, PUBREC noted) and queued, and
//! its inbound QoS 2 ids. Every message is written once however many queues hold it. It is
//! written in one loop turn (the state must not change under it), through the store's
//! buffered writer; the sync, the rename and the retiring of old segments happen on the
//! store's thread.
//!
//! When: once the log since the last snapshot is larger than the snapshot itself was (and at
//! least `MIN_LOG_BYTES`), so the disk holds at most about three times the live state and an
//! SD card is rewritten in proportion to what changed, not on every save; or, as Mosquitto's
//! `autosave_interval` asks, after that many seconds (or, with `autosave_on_changes`, that
//! many changes) if anything changed.

use std::collections::HashSet;
use std::time::Instant;

use log::{error, info};

use super::journal::{Journal, stored_message};
use super::record::{self, StoredSession, StoredWill};
use super::store::SnapshotWriter;
use crate::core::message::Message;
use crate::core::state::State;

/// Log bytes below which no snapshot is worth writing.
pub const MIN_LOG_BYTES: u64 = 8 << 20;

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

/// Writes a snapshot of `state` and hands it to the store.
pub fn write(state: &mut State) {
    let started = Instant::now();
    // A run still being coalesced belongs to the log before the snapshot.
    state.journal.flush_run();
    let Some(store) = state.journal.store_mut() else {
        return;
    };
    let mut w = match store.begin_snapshot() {
        Ok(w) => w,
        Err(e) => {
            error!("snapshot not started: {e}");
            return;
        }
    };
    let mut written = HashSet::new();
    let journal = &state.journal;
    let mut retained = 0;
    for m in state.retained.iter() {
        if put_message(&mut w, journal, &mut written, m) {
            let id = m.store_id.get();
            w.append(record::RETAIN, |out| record::put_retain(out, &m.topic, id));
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
        let will = session
            .conn()
            .and_then(|c| state.conns.get(c))
            .and_then(|c| c.will.as_deref())
            .or_else(|| {
                let sid = crate::ids::SessionId(sid as u32);
                state.pending_wills.get(&sid).map(|p| &p.will)
            });
        let stored = StoredSession {
            key,
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
        };
        w.append(record::SESSION, |out| record::put_session(out, &stored));
        for (filter, options, id) in session.subscriptions() {
            w.append(record::SUBSCRIBE, |out| {
                record::put_subscribe(out, key, filter, options, id)
            });
        }
        for e in session.stored_entries() {
            if !put_message(&mut w, journal, &mut written, e.message) {
                continue;
            }
            let id = e.message.store_id.get();
            w.append(record::ENQUEUE, |out| {
                record::put_enqueue(out, key, id, e.qos, e.retain, e.subscription_ids, None)
            });
            if e.packet_id != 0 {
                w.append(record::SENT, |out| {
                    record::put_run(out, key, Some(id), e.packet_id, 1)
                });
            }
            if e.released {
                w.append(record::PUBREC, |out| {
                    record::put_run(out, key, None, e.packet_id, 1)
                });
            }
        }
        for &packet_id in session.inbound_qos2() {
            w.append(record::QOS2_IN, |out| {
                record::put_key_packet(out, key, packet_id)
            });
        }
    }
    let Some(store) = state.journal.store_mut() else {
        return;
    };
    if let Err(e) = store.finish_snapshot(w) {
        error!("snapshot not finished: {e}");
        return;
    }
    state.journal.snapshot_written();
    info!(
        "snapshot of {sessions} sessions, {retained} retained and {} other messages written in {:?}",
        written.len().saturating_sub(retained),
        started.elapsed()
    );
}

/// Writes `message`'s MESSAGE record unless this snapshot already has it; false for a
/// message that was never stored (nothing refers to it on disk).
fn put_message(
    w: &mut SnapshotWriter,
    journal: &Journal,
    written: &mut HashSet<u64>,
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
