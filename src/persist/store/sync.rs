//! The sync threads: make committed batches durable off the event loop, and put finished
//! snapshots in place.
//!
//! They own nothing of the broker's state: only handles of the files they sync, shared with
//! the loop through [`Shared`] (a mutex the loop takes once per commit and per poll) and
//! woken back through the `mio::Waker`. The log threads and the snapshot thread wait on
//! condition variables of their own, so a commit wakes only the log threads. Group commit
//! falls out of the protocol: each round syncs every batch written before it started, so
//! the batches committed while a round runs are all covered by the next, which a second
//! log thread starts at once (`LOG_THREADS`). A round that ends makes its batches durable
//! whatever the other is doing: its fdatasync covered all that was written before it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::warn;

use super::SPARES;
use super::error::StoreFailed;
use super::file::{self, Kind};
use super::fs::{Fs, FsFile};

/// Threads syncing the log. With one, a batch committed while a round runs waits for that
/// round to end and then for its own; with two, its round can start alongside (the device
/// overlaps them) once `OVERLAP_AFTER` has passed. Measured on persistent fan-in with
/// `fsync` and a disk whose `fdatasync` took about 0.5 ms: 1.28 times the rate of one
/// thread; a third thread measured 0.90 times two.
pub(super) const LOG_THREADS: usize = 2;

/// A round starts alongside one under way only once that one has run this long. Each round
/// costs CPU on the broker's core as well as time on the disk (about 0.1 ms of CPU per
/// `fdatasync` in the kernel's block and virtio paths here, the loop's core): on a disk
/// that syncs in 0.1-0.2 ms, starting a second round at once made more rounds than it saved
/// waiting, and one thread did 1.14 times two. Persistent fan-in, median of interleaved
/// rounds (2026-12-01): with this wait, 0.98 times one thread on that fast disk and 1.04
/// times two ungated with each sync made 0.4 ms slower (two ungated did 1.30 times one
/// there). A slow disk or SD card, whose syncs take milliseconds, overlaps almost at once.
pub(super) const OVERLAP_AFTER: Duration = Duration::from_micros(300);

/// A round starts alongside one under way only once this many bytes more have been written
/// since that one started: with less, both rounds would write back the same pages, which an
/// SD card pays for. A 10,000 msg/s stream, whose batches are a few messages, otherwise
/// wrote 1.44 times the bytes; under heavy load a batch is many pages, and the rounds
/// overlap as before.
const OVERLAP_BYTES: u64 = 4096;

/// What the loop and the sync threads share.
pub(super) struct Shared {
    state: Mutex<SyncState>,
    /// The log threads and `wait_until` wait on this.
    changed: Condvar,
    /// The snapshot thread waits on this.
    snapshot_work: Condvar,
    waker: Option<Arc<mio::Waker>>,
}

/// The protocol between loop and thread; every field is read and written under the mutex.
#[derive(Default)]
pub(super) struct SyncState {
    /// Segment files that may hold bytes not yet synced, oldest first; the last is the one
    /// the loop writes to.
    pub files: Vec<(Arc<dyn FsFile>, PathBuf)>,
    /// A segment was created since the directory was last synced.
    pub dir_dirty: bool,
    /// The highest batch written to the files.
    pub committed: u64,
    /// The highest batch the loop wants synced now.
    pub requested: u64,
    /// The highest batch synced.
    pub durable: u64,
    /// The highest batch a round under way (or done) syncs: a thread starts a round only
    /// for batches above it.
    pub started: u64,
    /// Bytes the loop has written to the log, all told.
    pub written: u64,
    /// `written` when the newest round started.
    pub started_written: u64,
    /// When the newest round started.
    pub started_at: Option<Instant>,
    /// Rounds under way.
    pub rounds: u32,
    /// Rounds under way that sync the directory. While one is, a round that starts syncs it
    /// too: it may end first, and its batches may be in a segment that round's sync names.
    pub dir_rounds: u32,
    /// Finished snapshots to put in place, in order.
    pub snapshots: VecDeque<SnapshotJob>,
    /// Snapshots handed over and not yet in place (or failed).
    pub snapshots_pending: usize,
    /// Snapshots put in place since the loop last looked: (number, bytes).
    pub snapshots_done: Vec<(u64, u64)>,
    /// Segment files synced for good, for the snapshot thread to close. Closing the last
    /// handle of a segment a snapshot has retired frees its blocks, which takes
    /// milliseconds that acknowledgements must not wait for.
    pub closing: Vec<Arc<dyn FsFile>>,
    /// Retired segments to write over as later ones: the snapshot thread adds (up to
    /// `SPARES`), the loop takes.
    pub spares: Vec<PathBuf>,
    /// The first failure; nothing is synced after it.
    pub failed: Option<StoreFailed>,
    /// The loop is closing: finish what was asked, then exit.
    pub stop: bool,
}

/// A snapshot written to its temporary file, to be synced, renamed and then to retire the
/// files it makes redundant.
pub(super) struct SnapshotJob {
    pub file: Arc<dyn FsFile>,
    pub temporary: PathBuf,
    pub path: PathBuf,
    pub number: u64,
    pub bytes: u64,
    /// The numbers of the segments below `number`.
    pub retire_logs: Vec<u64>,
    /// Older snapshots.
    pub retire: Vec<PathBuf>,
}

impl Shared {
    /// Shared state for a store whose batches up to `durable` are on disk.
    pub(super) fn new(waker: Option<Arc<mio::Waker>>, durable: u64) -> Shared {
        let state = SyncState {
            committed: durable,
            requested: durable,
            durable,
            started: durable,
            ..SyncState::default()
        };
        Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
            snapshot_work: Condvar::new(),
            waker,
        }
    }

    /// Locks the shared state.
    pub(super) fn lock(&self) -> MutexGuard<'_, SyncState> {
        // Neither side panics while holding the lock; if one did, the state is still
        // consistent field by field, so carry on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the log threads (and a waiter) that the state changed.
    pub(super) fn notify(&self) {
        self.changed.notify_all();
    }

    /// Tells the snapshot thread it has work.
    pub(super) fn notify_snapshots(&self) {
        self.snapshot_work.notify_one();
    }

    /// Tells both threads and any waiter (a failure, or the store stopping).
    pub(super) fn notify_all(&self) {
        self.notify();
        self.notify_snapshots();
    }

    /// Blocks until `done` holds or the store failed.
    pub(super) fn wait_until(&self, done: impl Fn(&SyncState) -> bool) {
        let mut state = self.lock();
        while !done(&state) && state.failed.is_none() {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Starts the log threads (with `interval`, they also sync on that cadence by themselves)
/// and the snapshot thread. Snapshots are put in place on a thread of their own because syncing one
/// can take seconds on an SD card, and the log's syncs, which acknowledgements wait for,
/// must not wait behind it.
pub(super) fn spawn(
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    shared: Arc<Shared>,
    interval: Option<Duration>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let mut threads = Vec::with_capacity(LOG_THREADS + 1);
    for _ in 0..LOG_THREADS {
        let (fs, dir, shared) = (fs.clone(), dir.clone(), shared.clone());
        threads.push(
            std::thread::Builder::new()
                .name("pipit-fsync".into())
                .spawn(move || run(&*fs, &dir, &shared, interval))?,
        );
    }
    threads.push(
        std::thread::Builder::new()
            .name("pipit-snapshot".into())
            .spawn(move || run_snapshots(&*fs, &dir, &shared))?,
    );
    Ok(threads)
}

/// The snapshot thread: puts each finished snapshot in place, in order, and closes the
/// segment files the sync thread is done with.
fn run_snapshots(fs: &dyn Fs, dir: &Path, shared: &Shared) {
    loop {
        let (job, closing) = {
            let mut s = shared.lock();
            loop {
                if s.failed.is_some() {
                    return;
                }
                let closing = std::mem::take(&mut s.closing);
                let job = s.snapshots.pop_front();
                if job.is_some() || !closing.is_empty() {
                    break (job, closing);
                }
                if s.stop {
                    return;
                }
                s = shared
                    .snapshot_work
                    .wait(s)
                    .unwrap_or_else(|e| e.into_inner());
            }
        };
        drop(closing);
        let Some(job) = job else {
            continue;
        };
        let placed = place_snapshot(fs, dir, job, shared);
        {
            let mut s = shared.lock();
            match placed {
                Ok(done) => {
                    s.snapshots_done.push(done);
                    s.snapshots_pending -= 1;
                }
                Err(e) => s.failed = Some(e),
            }
        }
        shared.notify();
        if let Some(waker) = &shared.waker
            && let Err(e) = waker.wake()
        {
            warn!("persistence: cannot wake the event loop: {e}");
        }
    }
}

fn run(fs: &dyn Fs, dir: &Path, shared: &Shared, interval: Option<Duration>) {
    let mut tick = interval.map(|d| Instant::now() + d);
    loop {
        // Wait for work, then take it under the lock.
        let (files, dir_dirty, target) = {
            let mut s = shared.lock();
            loop {
                if s.failed.is_some() || (s.stop && s.requested <= s.durable) {
                    return;
                }
                if let (Some(at), Some(every)) = (tick, interval)
                    && Instant::now() >= at
                {
                    tick = Some(Instant::now() + every);
                    s.requested = s.requested.max(s.committed);
                }
                let deadline = match next(&s, Instant::now(), tick) {
                    Next::Round => break,
                    Next::Wait(deadline) => deadline,
                };
                s = match deadline {
                    Some(at) => {
                        let wait = at.saturating_duration_since(Instant::now());
                        shared
                            .changed
                            .wait_timeout(s, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                    None => shared.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
                };
            }
            let files = s.files.clone();
            let dir_dirty = std::mem::take(&mut s.dir_dirty) || s.dir_rounds > 0;
            if dir_dirty {
                s.dir_rounds += 1;
            }
            s.started = s.committed;
            s.started_written = s.written;
            s.started_at = Some(Instant::now());
            s.rounds += 1;
            (files, dir_dirty, s.committed)
        };
        // The slow part, without the lock.
        let synced = sync_log(fs, dir, &files, dir_dirty);
        // Files before the last one this round saw were complete when it started, so they
        // are now synced for good. Found by identity: another round may have ended first.
        let finished: Vec<Arc<dyn FsFile>> = files
            .iter()
            .take(files.len().saturating_sub(1))
            .map(|(file, _)| file.clone())
            .collect();
        let seen = files.len();
        // This round's handles go first, so the last handle of a finished segment is the
        // one handed to the snapshot thread below.
        drop(files);
        let handed = {
            let mut s = shared.lock();
            s.rounds -= 1;
            if dir_dirty {
                s.dir_rounds -= 1;
            }
            match synced {
                Err(e) => {
                    s.failed = Some(e);
                    true
                }
                Ok(()) if seen > 0 => {
                    s.durable = s.durable.max(target);
                    let mut done = Vec::new();
                    s.files.retain(|(file, _)| {
                        let keep = !finished.iter().any(|f| Arc::ptr_eq(f, file));
                        if !keep {
                            done.push(file.clone());
                        }
                        keep
                    });
                    drop(finished);
                    s.closing.extend(done);
                    !s.closing.is_empty()
                }
                Ok(()) => false,
            }
        };
        if handed {
            shared.notify_snapshots();
        }
        shared.notify();
        if let Some(waker) = &shared.waker
            && let Err(e) = waker.wake()
        {
            warn!("persistence: cannot wake the event loop: {e}");
        }
    }
}

/// What a log thread does next.
#[derive(Debug, PartialEq)]
enum Next {
    /// Start a round now.
    Round,
    /// Wait to be notified, or until this time at the latest.
    Wait(Option<Instant>),
}

/// Whether a log thread starts a round now, given the shared state, the time and the
/// interval's next `tick`. A round is wanted when batches above every round's are
/// requested; while one is under way, another starts alongside only once `OVERLAP_BYTES`
/// more have been written and that one has run `OVERLAP_AFTER`. Only the time has a
/// deadline: the commit that adds the bytes notifies, and a deadline already past would
/// make the wait return at once, over and over, until the round under way ended.
fn next(s: &SyncState, now: Instant, tick: Option<Instant>) -> Next {
    if s.requested <= s.durable.max(s.started) {
        return Next::Wait(tick);
    }
    let Some(started_at) = s.started_at.filter(|_| s.rounds > 0) else {
        return Next::Round;
    };
    if s.written - s.started_written < OVERLAP_BYTES {
        return Next::Wait(tick);
    }
    let overlap_at = started_at + OVERLAP_AFTER;
    if now >= overlap_at {
        return Next::Round;
    }
    Next::Wait(Some(tick.map_or(overlap_at, |t| t.min(overlap_at))))
}

/// Syncs every segment file in `files` and, if a segment was created, the directory.
fn sync_log(
    fs: &dyn Fs,
    dir: &Path,
    files: &[(Arc<dyn FsFile>, PathBuf)],
    dir_dirty: bool,
) -> Result<(), StoreFailed> {
    for (file, path) in files {
        file.sync_data()
            .map_err(|e| StoreFailed::new("fdatasync", path, e))?;
    }
    if dir_dirty {
        fs.sync_dir(dir)
            .map_err(|e| StoreFailed::new("fsync", dir, e))?;
    }
    Ok(())
}

/// Syncs a finished snapshot, renames it into place, syncs the directory, and only then
/// retires what it makes redundant: segments become spares while fewer than `SPARES` are
/// kept, and the rest is removed. Returns (number, bytes).
fn place_snapshot(
    fs: &dyn Fs,
    dir: &Path,
    job: SnapshotJob,
    shared: &Shared,
) -> Result<(u64, u64), StoreFailed> {
    job.file
        .sync_data()
        .map_err(|e| StoreFailed::new("fdatasync", &job.temporary, e))?;
    fs.rename(&job.temporary, &job.path)
        .map_err(|e| StoreFailed::new("rename", &job.temporary, e))?;
    fs.sync_dir(dir)
        .map_err(|e| StoreFailed::new("fsync", dir, e))?;
    let mut retire = job.retire;
    for number in job.retire_logs {
        let path = dir.join(file::name(Kind::Log, number));
        if shared.lock().spares.len() >= SPARES {
            retire.push(path);
            continue;
        }
        // The rename is not synced: one lost in a crash leaves a retired segment, which
        // the next open removes; the reuse that renames the spare again has the directory
        // synced before anything written to it counts as durable.
        let spare = dir.join(file::spare_name(number));
        let kept = match fs.rename(&path, &spare) {
            Ok(()) => prepare_spare(fs, &spare),
            Err(e) => Err(e),
        };
        match kept {
            Ok(()) => shared.lock().spares.push(spare),
            Err(e) => {
                warn!(
                    "persistence: cannot keep {} as a spare: {e}",
                    path.display()
                );
                retire.extend([path, spare]);
            }
        }
    }
    for path in &retire {
        // A file left behind costs only disk space, and the next open removes it.
        match fs.remove(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                warn!("persistence: cannot remove {}: {e}", path.display());
            }
            _ => {}
        }
    }
    Ok((job.number, job.bytes))
}

/// Makes the file `path` a spare: its header becomes the spare header, durably, so no
/// crash during its next life can bring back its last one (`file.rs`).
pub(super) fn prepare_spare(fs: &dyn Fs, path: &Path) -> std::io::Result<()> {
    let file = fs.reuse(path)?;
    file.write_all(&file::spare_header())?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state with batch 1 requested, `rounds` under way since `started_at`, and
    /// `written` bytes written since the newest began.
    fn state(rounds: u32, started_at: Instant, written: u64) -> SyncState {
        SyncState {
            committed: 1,
            requested: 1,
            rounds,
            started_at: Some(started_at),
            written,
            ..SyncState::default()
        }
    }

    #[test]
    fn a_round_starts_at_once_when_none_is_under_way() {
        let now = Instant::now();
        assert_eq!(next(&state(0, now, 0), now, None), Next::Round);
        let idle = SyncState::default();
        let tick = Some(now + Duration::from_secs(1));
        assert_eq!(next(&idle, now, tick), Next::Wait(tick));
    }

    #[test]
    fn a_second_round_waits_for_the_first_to_have_run_a_while() {
        let start = Instant::now();
        let s = state(1, start, OVERLAP_BYTES);
        let gate = start + OVERLAP_AFTER;
        assert_eq!(next(&s, start, None), Next::Wait(Some(gate)));
        let tick = start + OVERLAP_AFTER / 2;
        assert_eq!(next(&s, start, Some(tick)), Next::Wait(Some(tick)));
        assert_eq!(next(&s, gate, None), Next::Round);
    }

    #[test]
    fn too_few_bytes_wait_for_a_commit_not_a_time_already_past() {
        let start = Instant::now();
        let s = state(1, start, OVERLAP_BYTES - 1);
        let later = start + OVERLAP_AFTER * 4;
        assert_eq!(next(&s, later, None), Next::Wait(None));
    }
}
