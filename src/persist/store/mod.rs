//! The storage engine under persistence: a crash-safe log of opaque records
//! `(kind: u8, body: bytes)` in one directory. It knows nothing of MQTT.
//!
//! - The loop [`append`](Store::append)s records to the open batch (in memory, no syscall)
//!   and [`commit`](Store::commit)s it once per turn: one `write(2)` to the current log
//!   segment. Batches are numbered from 1. A segment is written in order from its start,
//!   and sealed with an end record when the store moves on from it or closes.
//! - Two log threads (`sync.rs`) make batches durable with one fdatasync per round, each
//!   round covering every batch committed before it began (group commit; the second thread
//!   starts a round while the first runs), and wake the loop;
//!   [`poll`](Store::poll) then advances [`durable`](Store::durable). A failed write or sync
//!   fails the store for good.
//! - A snapshot (`snapshot.rs`) rewrites the live state into one file; once it is synced and
//!   renamed into place, the segments it covers are retired, so disk use follows live state.
//!   That is done by a snapshot thread of its own, so the log's syncs, which acknowledgements
//!   wait for, never wait behind a large snapshot's. Up to `SPARES` (two) retired segments
//!   are kept as spares and written over as later segments (`file.rs` says why and how); the
//!   rest are deleted.
//! - [`Store::open`] recovers (`recover.rs`): torn tails are truncated, damaged files are
//!   kept aside and replaced by their valid records, and [`Recovery`] says what happened.
//!
//! Every file-system call goes through the seam in `fs.rs`; the tests put a file system
//! that crashes at every boundary under it (`testfs.rs`, `tests.rs`). The file layout is in
//! `file.rs`, the record framing in `frame.rs`.

mod error;
mod file;
mod format;
mod frame;
mod fs;
mod recover;
mod report;
mod snapshot;
mod sync;
#[cfg(test)]
mod testfs;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use log::warn;

pub use error::{OpenError, StoreFailed};
pub use fs::free_space;
pub use report::{Recovery, Torn};
pub use snapshot::SnapshotWriter;

use file::Kind;
use fs::{Fs, FsFile, RealFs};
use sync::{Shared, SnapshotJob};

/// A batch buffer grown past this by one huge batch is shrunk back after it.
const KEEP_CAPACITY: usize = 4 << 20;
/// Retired segments kept to be written over: one is enough for a log that retires a
/// segment per snapshot; the second covers a snapshot that retires two. Each costs up to a
/// segment of disk (`segment_bytes`, and what one batch may add past it).
const SPARES: usize = 2;

pub use super::SyncPolicy;

/// How a store behaves.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// When appended records reach the disk.
    pub sync: SyncPolicy,
    /// A commit starts a new segment once the current one holds this many bytes.
    pub segment_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            sync: SyncPolicy::Fsync,
            segment_bytes: 64 << 20,
        }
    }
}

/// An open store: the lock on its directory, the open batch, the current segment and the
/// sync thread.
pub struct Store {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    options: StoreOptions,
    _lock: Box<dyn Send + Sync>,
    /// The open batch: frames appended since the last commit.
    buf: Vec<u8>,
    /// The open batch's number.
    batch: u64,
    durable: u64,
    /// The segment commits append to; `None` until the first commit after open.
    segment: Option<(Arc<dyn FsFile>, PathBuf)>,
    /// The current segment's salt, which seeds its frames' header CRCs.
    salt: u32,
    next_segment: u64,
    /// Segments from the newest snapshot in place on: (number, bytes).
    segments: Vec<(u64, u64)>,
    /// The snapshot in place and those handed to the sync thread, by number.
    snapshots: Vec<u64>,
    snapshot_bytes: u64,
    bytes_written: u64,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    failed: Option<StoreFailed>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("batch", &self.batch)
            .field("durable", &self.durable)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if absent, mode 0700) the store directory `dir`: takes the lock
    /// (refuses if another process holds it), checks the format, recovers, and hands every
    /// valid record to `each` in order (the newest complete snapshot's records first, then
    /// the log segments after it), never holding all of them in memory. `waker` is woken by
    /// the sync thread whenever durability advances or fails.
    pub fn open(
        dir: &Path,
        options: StoreOptions,
        waker: Option<Arc<mio::Waker>>,
        mut each: impl FnMut(u8, &[u8]),
    ) -> Result<(Store, Recovery), OpenError> {
        Store::open_with(Arc::new(RealFs), dir, options, waker, &mut each)
    }

    /// [`Store::open`] on the file system `fs`.
    fn open_with(
        fs: Arc<dyn Fs>,
        dir: &Path,
        options: StoreOptions,
        waker: Option<Arc<mio::Waker>>,
        each: &mut dyn FnMut(u8, &[u8]),
    ) -> Result<(Store, Recovery), OpenError> {
        let io = |e| OpenError::io(dir, e);
        fs.create_dir(dir).map_err(io)?;
        let names = fs.list(dir).map_err(io)?;
        let (version, created) = format::check_or_create(&*fs, dir, &names)?;
        let lock = fs.lock(&dir.join("lock"))?;
        if version < file::VERSION {
            format::upgrade(&*fs, dir)?;
        }
        // Listed again: until the lock was ours, another process could change the directory.
        let names = fs.list(dir).map_err(io)?;
        let mut found = recover::recover(&*fs, dir, &names, created, each)?;
        let shared = Arc::new(Shared::new(waker, 0));
        shared.lock().spares = std::mem::take(&mut found.spares);
        let interval = match options.sync {
            SyncPolicy::Interval(every) => Some(every),
            SyncPolicy::Fsync | SyncPolicy::Never => None,
        };
        let threads =
            sync::spawn(fs.clone(), dir.to_path_buf(), shared.clone(), interval).map_err(io)?;
        let store = Store {
            fs,
            dir: dir.to_path_buf(),
            options,
            _lock: lock,
            buf: Vec::new(),
            batch: 1,
            durable: 0,
            segment: None,
            salt: 0,
            next_segment: found.next_segment,
            segments: found.segments,
            snapshots: found.snapshot.iter().map(|s| s.0).collect(),
            snapshot_bytes: found.snapshot.map_or(0, |s| s.1),
            bytes_written: found.bytes_written,
            shared,
            threads,
            failed: None,
        };
        Ok((store, found.recovery))
    }

    /// Appends one record to the open batch; `body` writes the record body into the buffer
    /// it is given. `kind` is 1..=255 (0 is the store's own). Once the store has failed,
    /// records are dropped: they could never be made durable.
    pub fn append(&mut self, kind: u8, body: impl FnOnce(&mut Vec<u8>)) {
        debug_assert_ne!(kind, frame::END, "record kind 0 is reserved for the store");
        if self.failed.is_none() {
            frame::push(&mut self.buf, kind, body);
        }
    }

    /// The number of the batch `append` adds to now (batches are numbered from 1).
    pub fn batch(&self) -> u64 {
        self.batch
    }

    /// Whether the open batch holds any record.
    pub fn batch_is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Ends the open batch (once per loop turn): if it holds records, writes it to the
    /// current segment with one write (starting a new segment first when the current one
    /// is past `segment_bytes`), then by policy asks the sync thread to sync it (`Fsync`),
    /// leaves it to the thread's cadence (`Interval`), or counts it durable at once (`Never`).
    pub fn commit(&mut self) -> Result<(), StoreFailed> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone());
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let len = self.buf.len() as u64;
        let written = self.write_batch();
        self.buf.clear();
        self.buf.shrink_to(KEEP_CAPACITY);
        written.map_err(|e| self.fail(e))?;
        let batch = self.batch;
        self.batch += 1;
        let fsync = self.options.sync == SyncPolicy::Fsync;
        {
            let mut s = self.shared.lock();
            s.committed = batch;
            s.written += len;
            if fsync {
                s.requested = batch;
            }
        }
        if fsync {
            self.shared.notify();
        }
        if self.options.sync == SyncPolicy::Never {
            self.durable = batch;
        }
        Ok(())
    }

    /// Writes the open batch to the current segment.
    fn write_batch(&mut self) -> Result<(), StoreFailed> {
        let full = self
            .segments
            .last()
            .is_none_or(|s| s.1 >= self.options.segment_bytes);
        if self.segment.is_none() || full {
            self.open_segment()?;
        }
        let mut batch = std::mem::take(&mut self.buf);
        let written = self.write_current(&mut batch);
        self.buf = batch;
        written
    }

    /// Writes `frames` to the current segment, their header CRCs seeded with its salt
    /// (`frame::stamp`).
    fn write_current(&mut self, frames: &mut [u8]) -> Result<(), StoreFailed> {
        let (Some((file, path)), Some(last)) = (&self.segment, self.segments.last_mut()) else {
            unreachable!("open_segment leaves a current segment, last in the list");
        };
        frame::stamp(frames, self.salt);
        file.write_all(frames)
            .map_err(|e| StoreFailed::new("write", path, e))?;
        last.1 += frames.len() as u64;
        self.bytes_written += frames.len() as u64;
        Ok(())
    }

    /// Ends the current segment (if one is open) with its seal, the end record of its
    /// number: recovery reads no further, never into what an earlier life left past it.
    fn seal(&mut self) -> Result<(), StoreFailed> {
        let Some(&(number, _)) = self.segments.last().filter(|_| self.segment.is_some()) else {
            return Ok(());
        };
        let mut seal = Vec::with_capacity(frame::END_FRAME);
        frame::push_end(&mut seal, number);
        self.write_current(&mut seal)
    }

    /// Starts the next log segment and makes it the current one: a spare written over if
    /// there is one, else a new file. The one it replaces is sealed first.
    fn open_segment(&mut self) -> Result<(), StoreFailed> {
        self.seal()?;
        let number = self.next_segment;
        let path = self.dir.join(file::name(Kind::Log, number));
        let spare = self.shared.lock().spares.pop();
        let reused = spare.and_then(|spare| {
            let reused = self
                .fs
                .rename(&spare, &path)
                .and_then(|()| self.fs.reuse(&path));
            reused
                .inspect_err(|e| warn!("persistence: cannot reuse {}: {e}", spare.display()))
                .ok()
        });
        let file = match reused {
            Some(file) => file,
            None => self
                .fs
                .create(&path)
                .map_err(|e| StoreFailed::new("create", &path, e))?,
        };
        let salt = file::new_salt();
        file.write_all(&file::header(Kind::Log, number, salt))
            .map_err(|e| StoreFailed::new("write", &path, e))?;
        self.next_segment += 1;
        self.bytes_written += file::HEADER as u64;
        self.segments.push((number, file::HEADER as u64));
        {
            let mut s = self.shared.lock();
            if self.options.sync == SyncPolicy::Never {
                // Nothing syncs the old ones (close syncs only the current one).
                s.files.clear();
            }
            s.files.push((file.clone(), path.clone()));
            s.dir_dirty = true;
        }
        self.segment = Some((file, path));
        self.salt = salt;
        Ok(())
    }

    /// Records the store's failure (for good) and tells the sync thread to stop.
    fn fail(&mut self, failed: StoreFailed) -> StoreFailed {
        self.failed = Some(failed.clone());
        self.shared
            .lock()
            .failed
            .get_or_insert_with(|| failed.clone());
        self.shared.notify_all();
        failed
    }

    /// The highest batch known durable (updated by `poll`).
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Takes in what the sync thread reported (call on each waker event). Err once a write
    /// or sync failed: the store is then failed for good (no retry, `durable` never
    /// advances again), and the error says what happened.
    pub fn poll(&mut self) -> Result<(), StoreFailed> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone());
        }
        let (durable, done, failed) = {
            let mut s = self.shared.lock();
            (
                s.durable,
                std::mem::take(&mut s.snapshots_done),
                s.failed.clone(),
            )
        };
        self.durable = self.durable.max(durable);
        for (number, bytes) in done {
            self.snapshot_bytes = bytes;
            self.segments.retain(|s| s.0 >= number);
            self.snapshots.retain(|&s| s >= number);
        }
        match failed {
            Some(failed) => Err(self.fail(failed)),
            None => Ok(()),
        }
    }

    /// Bytes in the log since the newest snapshot in place (the compaction trigger).
    pub fn log_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.1).sum()
    }

    /// The size of the newest snapshot in place (0 if none).
    pub fn snapshot_bytes(&self) -> u64 {
        self.snapshot_bytes
    }

    /// Every byte this store has written to disk (log, snapshots, headers, salvage copies).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Starts a snapshot of the live state: commits the open batch, then starts a new
    /// segment N, so the snapshot covers exactly what segments below N hold. Append the
    /// live state's records to the writer (in the same loop turn) and hand it back with
    /// [`finish_snapshot`](Store::finish_snapshot). A writer dropped unfinished leaves a
    /// temporary file the next open removes.
    pub fn begin_snapshot(&mut self) -> Result<SnapshotWriter, StoreFailed> {
        self.commit()?;
        self.open_segment().map_err(|e| self.fail(e))?;
        let number = self.next_segment - 1;
        let temporary = self
            .dir
            .join(format!("{}.tmp", file::name(Kind::Snapshot, number)));
        let created = self.fs.create(&temporary).and_then(|f| {
            f.write_all(&file::header(Kind::Snapshot, number, 0))?;
            Ok(f)
        });
        let file = created.map_err(|e| self.fail(StoreFailed::new("write", &temporary, e)))?;
        Ok(SnapshotWriter::new(
            file,
            temporary,
            number,
            file::HEADER as u64,
        ))
    }

    /// Ends the snapshot and hands it to the snapshot thread, which fsyncs it, renames it into
    /// place, fsyncs the directory, and only then deletes the segments and snapshots it
    /// makes redundant. `poll` reports the outcome; a crash before the rename leaves a
    /// temporary file the next open removes.
    pub fn finish_snapshot(&mut self, mut w: SnapshotWriter) -> Result<(), StoreFailed> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone());
        }
        w.end();
        self.bytes_written += w.bytes;
        if let Some(e) = w.error.take() {
            return Err(self.fail(StoreFailed::new("write", &w.temporary, e)));
        }
        let number = w.number;
        let retire_logs = self
            .segments
            .iter()
            .filter(|s| s.0 < number)
            .map(|s| s.0)
            .collect();
        let retire = self
            .snapshots
            .iter()
            .map(|&n| self.dir.join(file::name(Kind::Snapshot, n)))
            .collect();
        self.snapshots.push(number);
        let job = SnapshotJob {
            file: w.file,
            temporary: w.temporary,
            path: self.dir.join(file::name(Kind::Snapshot, number)),
            number,
            bytes: w.bytes,
            retire_logs,
            retire,
        };
        {
            let mut s = self.shared.lock();
            s.snapshots.push_back(job);
            s.snapshots_pending += 1;
        }
        self.shared.notify_snapshots();
        Ok(())
    }

    /// Blocks until every committed batch is durable and every finished snapshot is in
    /// place (tests, shutdown).
    pub fn wait_durable(&mut self) -> Result<(), StoreFailed> {
        self.poll()?;
        let never = self.options.sync == SyncPolicy::Never;
        if !never {
            let mut s = self.shared.lock();
            s.requested = s.committed;
        }
        self.shared.notify();
        self.shared
            .wait_until(|s| (never || s.durable >= s.committed) && s.snapshots_pending == 0);
        self.poll()
    }

    /// Commits and syncs everything synchronously, whatever the policy, stops the sync
    /// thread, and seals the current segment (clean shutdown).
    pub fn close(mut self) -> Result<(), StoreFailed> {
        self.commit()?;
        {
            let mut s = self.shared.lock();
            s.requested = s.committed;
        }
        self.stop_thread();
        self.poll()?;
        self.seal().map_err(|e| self.fail(e))?;
        if let Some((file, path)) = &self.segment {
            let synced = file
                .sync_data()
                .map_err(|e| StoreFailed::new("fdatasync", path, e));
            synced.map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// Tells the sync and snapshot threads to finish what they were asked and waits for them.
    fn stop_thread(&mut self) {
        self.shared.lock().stop = true;
        self.shared.notify_all();
        for thread in std::mem::take(&mut self.threads) {
            if thread.join().is_err() {
                // The threads do not panic by design; if one did, nothing more is durable.
                self.fail(StoreFailed::new(
                    "sync thread",
                    &self.dir,
                    std::io::Error::other("panicked"),
                ));
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop_thread();
    }
}
