//! Without the `persistence` feature: the loop's persistence steps, with no store to step
//! (`config` refuses `persistence true` in this build, and `Broker` a `Config` made in code
//! that asks for a store).

use std::path::Path;

use super::*;
use crate::config::features::not_built;

/// A snapshot being written: none can exist in this build.
#[derive(Debug)]
pub(super) enum Snapshot {}

/// Opens the store in `dir`: refused, this build has no store.
pub(super) fn open(_: &mut State, dir: &Path, _: &Arc<Waker>) -> io::Result<()> {
    let message = format!(
        "persistence in {}: {}",
        dir.display(),
        not_built("persistence")
    );
    Err(io::Error::new(io::ErrorKind::Unsupported, message))
}

impl Broker {
    /// Ends the turn's batch of records: there is no store.
    pub(super) fn commit_journal(&mut self) {}

    /// The sync thread woke the loop: there is none.
    pub(super) fn on_durable(&mut self) {}

    /// The one-second store checks: there is no store.
    pub(super) fn persist_sweep(&mut self) {}

    /// Writes the next slice of a snapshot: there is none.
    pub(super) fn snapshot_step(&mut self) {}

    /// Closes the store at shutdown: there is none.
    pub(super) fn close_store(&mut self) {}
}
