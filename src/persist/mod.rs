//! Persistence: retained messages and persistent sessions kept on disk, so a QoS 1/2 message
//! a client saw acknowledged survives `kill -9` and power loss.
//!
//! `store` is the crash-safe log underneath (opaque records, group commit, snapshots,
//! recovery); `record` gives records their meaning; `journal` is what `core/` calls as
//! durable state changes; `held` keeps acknowledgements until what they confirm is on disk;
//! `restore` rebuilds the state from the records at start; `snapshot` writes the live state
//! so old segments can be retired.
//!
//! Without the `persistence` feature only what `core/` records through is built (`journal`,
//! `record`, `held`: with no store they are the no-ops of `persistence false`); `store` is
//! then `store_off.rs`, and `restore` and `snapshot` are left out.

use std::time::Duration;

pub mod held;
pub mod journal;
pub mod record;
#[cfg(feature = "persistence")]
pub mod restore;
#[cfg(feature = "persistence")]
pub mod snapshot;
#[cfg_attr(not(feature = "persistence"), path = "store_off.rs")]
pub mod store;

/// When appended records reach the disk (`persistence_sync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every committed batch is fdatasynced (grouped) before it counts as durable.
    Fsync,
    /// The sync thread syncs on this cadence; a crash can lose what was committed since.
    Interval(Duration),
    /// Never synced (the OS writes it back when it likes); batches count as durable at once.
    Never,
}

#[cfg(all(test, feature = "persistence"))]
mod round_trip;
