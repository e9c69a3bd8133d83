//! The loop's side of persistence: open and restore the store at start, commit each turn's
//! records once at the end of the turn (group commit), release what waited for them when
//! the sync thread says they are durable, check free space and compact on the one-second
//! sweep, and sync everything at shutdown.

use std::path::Path;

use log::{error, info, warn};

use super::*;
use crate::persist::journal::Journal;
use crate::persist::restore::Restore;
use crate::persist::snapshot;
pub(super) use crate::persist::snapshot::Snapshot;
use crate::persist::store::{self, Store, StoreOptions};

/// Segment size of the log.
const SEGMENT_BYTES: u64 = 64 << 20;
/// Without `fsync`, how long a delivery to an online client may go unrecorded: one
/// acknowledged within it is never written (see `lifecycle::enqueue`).
const DEFER_FOR: Duration = Duration::from_millis(100);

/// Opens the store in `dir` and replays it into `state`; the journal is then live.
pub(super) fn open(state: &mut State, dir: &Path, waker: &Arc<Waker>) -> io::Result<()> {
    let options = StoreOptions {
        sync: state.config.persistence_sync,
        segment_bytes: SEGMENT_BYTES,
    };
    let started = Instant::now();
    let mut restore = Restore::default();
    let (store, recovery) = Store::open(dir, options, Some(Arc::clone(waker)), |kind, body| {
        restore.apply(state, kind, body)
    })
    .map_err(|e| io::Error::other(format!("persistence in {}: {e}", dir.display())))?;
    info!("store {}: {recovery}", dir.display());
    for problem in recovery.problems() {
        warn!("store {}: {problem}", dir.display());
    }
    state.journal = Journal::new(Some(store), options.sync, state.now);
    check_free_space(state, dir);
    restore.finish(state);
    info!("store opened in {:?}", started.elapsed());
    Ok(())
}

/// Sets `journal.low_space` from the free space of the store's file system, saying so when it
/// changes.
fn check_free_space(state: &mut State, dir: &Path) {
    let min = state.config.persistence_min_free_space;
    let low = match store::free_space(dir) {
        Ok(free) => free < min,
        Err(e) => {
            warn!("free space of {}: {e}", dir.display());
            false
        }
    };
    if low != state.journal.low_space {
        if low {
            error!(
                "less than {min} bytes free for the store in {}: refusing QoS 1/2 messages",
                dir.display()
            );
        } else {
            info!("free space for the store is back: accepting QoS 1/2 messages");
        }
        state.journal.low_space = low;
    }
}

impl Broker {
    /// Ends the turn's batch of records and releases whatever became durable.
    pub(super) fn commit_journal(&mut self) {
        if !self.state.journal.enabled() {
            return;
        }
        if self.state.journal.defers() && self.state.now >= self.deferred_until {
            lifecycle::log_deferred(&mut self.state);
            self.deferred_until = self.state.now + DEFER_FOR;
        }
        let committed = self.state.journal.commit();
        let synced = self.state.journal.poll();
        if committed || synced {
            self.release_durable();
        }
    }

    /// The sync thread woke the loop: take in its report.
    pub(super) fn on_durable(&mut self) {
        if self.state.journal.poll() {
            self.release_durable();
        }
    }

    /// Sends what waited for records that are now durable: held acknowledgements and QoS 2
    /// deliveries (retained walks see it for themselves, `retain_walk::room`). Only called when durability moved, so what still waits is
    /// not woken again for nothing.
    fn release_durable(&mut self) {
        let durable = self.state.journal.durable_batch();
        let State {
            held_acks,
            conns,
            pool,
            ..
        } = &mut self.state;
        let waiters = &mut self.durable_waiters;
        if !held_acks.is_empty() {
            held_acks.release(durable, conns, pool, |id| waiters.push(id));
        }
        for id in std::mem::take(&mut self.durable_waiters) {
            self.state.mark_dirty(id);
        }
    }

    /// The one-second checks: free space, and a snapshot when one is due.
    pub(super) fn persist_sweep(&mut self) {
        let Some(dir) = &self.store_dir else {
            return;
        };
        check_free_space(&mut self.state, dir);
        if self.snapshot.is_none() && snapshot::due(&self.state, self.last_snapshot) {
            // The snapshot lists what is held; all of it must be in the log before it.
            lifecycle::log_deferred(&mut self.state);
            self.snapshot = Snapshot::begin(&mut self.state);
            self.last_snapshot = self.state.now;
        }
    }

    /// Writes the next slice of a snapshot under way, and hands it to the store when done.
    pub(super) fn snapshot_step(&mut self) {
        let Some(snapshot) = &mut self.snapshot else {
            return;
        };
        if snapshot.step(&self.state.journal)
            && let Some(done) = self.snapshot.take()
        {
            done.finish(&mut self.state.journal);
        }
    }

    /// Commits and syncs what is left, and closes the store (shutdown).
    pub(super) fn close_store(&mut self) {
        // A snapshot not finished is left as a temporary file, which the next start removes.
        self.snapshot = None;
        lifecycle::log_deferred(&mut self.state);
        let _ = self.state.journal.commit();
        if let Some(store) = self.state.journal.take_store()
            && let Err(e) = store.close()
        {
            error!("closing the store: {e}");
        }
    }
}
