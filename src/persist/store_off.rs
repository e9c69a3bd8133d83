//! Without the `persistence` feature: no store. `config` refuses `persistence true` at its
//! line (and `Broker` a `Config` made in code that asks for a store), so the `Journal` never
//! has one and every call `core/` makes on it is the no-op it is with `persistence false`.
//! `Store` and `StoreFailed` cannot be made; their methods are empty matches.

use std::fmt;
use std::io;

pub use super::SyncPolicy;

/// An open store: none can exist in this build.
#[derive(Debug)]
pub struct Store(Never);

/// Why an open store failed: no store, no failure.
#[derive(Clone, Debug)]
pub struct StoreFailed(Never);

/// No value.
#[derive(Clone, Debug)]
enum Never {}

impl Store {
    /// Adds a record to the open batch.
    pub fn append(&mut self, _: u8, _: impl FnOnce(&mut Vec<u8>)) {
        match self.0 {}
    }

    /// The open batch's number.
    pub fn batch(&self) -> u64 {
        match self.0 {}
    }

    /// Whether the open batch has no records.
    pub fn batch_is_empty(&self) -> bool {
        match self.0 {}
    }

    /// Writes the open batch.
    pub fn commit(&mut self) -> Result<(), StoreFailed> {
        match self.0 {}
    }

    /// The last batch known durable.
    pub fn durable(&self) -> u64 {
        match self.0 {}
    }

    /// Takes in what the sync thread reported.
    pub fn poll(&mut self) -> Result<(), StoreFailed> {
        match self.0 {}
    }

    /// Bytes in the log's segments.
    pub fn log_bytes(&self) -> u64 {
        match self.0 {}
    }

    /// Bytes of the last snapshot.
    pub fn snapshot_bytes(&self) -> u64 {
        match self.0 {}
    }

    /// Every byte written.
    pub fn bytes_written(&self) -> u64 {
        match self.0 {}
    }
}

impl StoreFailed {
    /// The kind of the underlying I/O error.
    pub fn kind(&self) -> io::ErrorKind {
        match self.0 {}
    }
}

impl fmt::Display for StoreFailed {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {}
    }
}
