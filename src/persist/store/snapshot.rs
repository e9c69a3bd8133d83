//! [`SnapshotWriter`]: the live state written record by record to a temporary file, through
//! a bounded buffer, never the whole state in memory.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::frame;
use super::fs::FsFile;

/// Buffer this many bytes of records between writes.
const FLUSH_AT: usize = 256 << 10;

/// A snapshot being written; see [`Store::begin_snapshot`](super::Store::begin_snapshot).
pub struct SnapshotWriter {
    pub(super) file: Arc<dyn FsFile>,
    pub(super) temporary: PathBuf,
    pub(super) number: u64,
    buf: Vec<u8>,
    /// Bytes written to the file so far.
    pub(super) bytes: u64,
    /// The first write that failed; reported by `finish_snapshot`.
    pub(super) error: Option<io::Error>,
}

impl SnapshotWriter {
    /// A writer of snapshot `number` into `file` (at `temporary`), whose header is
    /// already written (`bytes` long).
    pub(super) fn new(
        file: Arc<dyn FsFile>,
        temporary: PathBuf,
        number: u64,
        bytes: u64,
    ) -> SnapshotWriter {
        SnapshotWriter {
            file,
            temporary,
            number,
            buf: Vec::with_capacity(FLUSH_AT * 2),
            bytes,
            error: None,
        }
    }

    /// Appends one record of the live state, as [`Store::append`](super::Store::append)
    /// (`kind` 1..=255: 0 is the store's own).
    pub fn append(&mut self, kind: u8, body: impl FnOnce(&mut Vec<u8>)) {
        debug_assert_ne!(kind, frame::END, "record kind 0 is reserved for the store");
        frame::push(&mut self.buf, kind, body);
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Appends the end record and writes out what is buffered.
    pub(super) fn end(&mut self) {
        frame::push_end(&mut self.buf, self.number);
        self.flush();
    }

    fn flush(&mut self) {
        if self.error.is_none() {
            match self.file.write_all(&self.buf) {
                Ok(()) => self.bytes += self.buf.len() as u64,
                Err(e) => self.error = Some(e),
            }
        }
        self.buf.clear();
    }
}
