//! Stand-in for the store engine (replaced by the `store12` branch): one log file, frames of
//! length, kind and body, synced inline.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// When appended records reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fdatasync every batch before it counts as durable.
    Fsync,
    /// Sync on a cadence.
    Interval(Duration),
    /// Leave it to the OS.
    Never,
}

/// Store options.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// Sync policy.
    pub sync: SyncPolicy,
    /// Segment size.
    pub segment_bytes: u64,
}

/// What recovery found.
#[derive(Debug, Default)]
pub struct Recovery {
    records: u64,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} records recovered", self.records)
    }
}

impl Recovery {
    /// Problems found.
    pub fn problems(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Why a store could not open.
#[derive(Debug)]
pub enum OpenError {
    /// I/O.
    Io(io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// A failed store.
#[derive(Debug)]
pub struct StoreFailed(pub String);

impl std::fmt::Display for StoreFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The store.
#[derive(Debug)]
pub struct Store {
    file: File,
    buf: Vec<u8>,
    batch: u64,
    durable: u64,
    written: u64,
}

/// Snapshot writer.
#[derive(Debug)]
pub struct SnapshotWriter;

impl SnapshotWriter {
    /// Appends one record.
    pub fn append(&mut self, _kind: u8, body: impl FnOnce(&mut Vec<u8>)) {
        body(&mut Vec::new());
    }
}

impl Store {
    /// Opens the store.
    pub fn open(
        dir: &Path,
        _options: StoreOptions,
        _waker: Option<Arc<mio::Waker>>,
        mut each: impl FnMut(u8, &[u8]),
    ) -> Result<(Store, Recovery), OpenError> {
        std::fs::create_dir_all(dir).map_err(OpenError::Io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(dir.join("log"))
            .map_err(OpenError::Io)?;
        let mut all = Vec::new();
        file.read_to_end(&mut all).map_err(OpenError::Io)?;
        let mut at = 0;
        let mut records = 0;
        while at + 5 <= all.len() {
            let len = u32::from_le_bytes(all[at..at + 4].try_into().unwrap_or_default()) as usize;
            if at + 5 + len > all.len() {
                break;
            }
            each(all[at + 4], &all[at + 5..at + 5 + len]);
            records += 1;
            at += 5 + len;
        }
        Ok((
            Store {
                file,
                buf: Vec::new(),
                batch: 1,
                durable: 0,
                written: 0,
            },
            Recovery { records },
        ))
    }

    /// Appends a record.
    pub fn append(&mut self, kind: u8, body: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0, 0, 0, kind]);
        body(&mut self.buf);
        let len = (self.buf.len() - start - 5) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// The open batch.
    pub fn batch(&self) -> u64 {
        self.batch
    }

    /// Whether the open batch is empty.
    pub fn batch_is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Ends the batch.
    pub fn commit(&mut self) -> Result<(), StoreFailed> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| StoreFailed(e.to_string()))?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        self.durable = self.batch;
        self.batch += 1;
        Ok(())
    }

    /// Highest durable batch.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Takes in sync reports.
    pub fn poll(&mut self) -> Result<(), StoreFailed> {
        Ok(())
    }

    /// Log bytes since the snapshot.
    pub fn log_bytes(&self) -> u64 {
        self.written
    }

    /// Snapshot size.
    pub fn snapshot_bytes(&self) -> u64 {
        0
    }

    /// Bytes written.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Starts a snapshot.
    pub fn begin_snapshot(&mut self) -> Result<SnapshotWriter, StoreFailed> {
        Ok(SnapshotWriter)
    }

    /// Finishes a snapshot.
    pub fn finish_snapshot(&mut self, _w: SnapshotWriter) -> Result<(), StoreFailed> {
        Ok(())
    }

    /// Closes.
    pub fn close(mut self) -> Result<(), StoreFailed> {
        self.commit()
    }

    /// Waits.
    pub fn wait_durable(&mut self) -> Result<(), StoreFailed> {
        Ok(())
    }
}

/// Free space.
pub fn free_space(_dir: &Path) -> io::Result<u64> {
    Ok(u64::MAX)
}
