//! Persistence: retained messages and persistent sessions kept on disk, so a QoS 1/2 message
//! a client saw acknowledged survives `kill -9` and power loss.
//!
//! `store` is the crash-safe log underneath (opaque records, group commit, snapshots,
//! recovery); `record` gives records their meaning; `journal` is what `core/` calls as
//! durable state changes; `held` keeps acknowledgements until what they confirm is on disk;
//! `restore` rebuilds the state from the records at start; `snapshot` writes the live state
//! so old segments can be retired.

pub mod held;
pub mod journal;
pub mod record;
pub mod restore;
pub mod snapshot;
pub mod store;

#[cfg(test)]
mod round_trip;
