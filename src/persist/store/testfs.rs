//! A file system in memory that can crash, for the crash tests.
//!
//! Per file it keeps what was synced and the writes since, each at its offset (appends, and
//! a reused segment written over from its start; a truncation syncs); per directory, the
//! names as last synced and the operations since (creates, renames, links, removes). Every
//! mutating call counts as one step; at the chosen step the file system "crashes": that call
//! and every later one fails. [`CrashFs::after_crash`] then builds the file system a restart
//! would find: synced data plus a random prefix of the writes since, the next one possibly
//! torn at a random byte, or all of them with a run of the bytes they covered never written
//! back (pages written back out of order: there the old bytes, zeros past the synced
//! length); and a random prefix or a random subset of the unsynced directory operations.

use std::collections::BTreeMap;
use std::io::{self, Cursor};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::error::OpenError;
use super::fs::{Fs, FsFile, ReadFile};

/// The xorshift64* generator the crash tests draw from (seeded, so a failure reproduces).
pub(super) struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

#[derive(Clone, Default)]
struct Inode {
    synced: Vec<u8>,
    /// Writes since the last sync: (offset, bytes).
    pending: Vec<(usize, Vec<u8>)>,
    /// `synced` with `pending` applied.
    current: Vec<u8>,
}

/// Writes `bytes` into `data` at `offset`, extending it (with zeros up to `offset`) as needed.
fn write_into(data: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset..end].copy_from_slice(bytes);
}

#[derive(Clone)]
enum DirOp {
    Link(String, usize),
    Rename(String, String),
    Unlink(String),
}

#[derive(Default)]
struct Inner {
    inodes: Vec<Inode>,
    names: BTreeMap<String, usize>,
    synced_names: BTreeMap<String, usize>,
    dir_ops: Vec<DirOp>,
    steps: u64,
    crash_at: Option<u64>,
    data_syncs: u64,
    /// Calls of `sync_data` begun, held ones included.
    syncs_begun: u64,
}

impl Inner {
    /// Counts one step; fails it (and every later one) from the crash step on.
    fn step(&mut self) -> io::Result<()> {
        self.steps += 1;
        match self.crash_at {
            Some(at) if self.steps >= at => Err(io::Error::other("crashed")),
            _ => Ok(()),
        }
    }

    fn inode(&self, path: &Path) -> io::Result<usize> {
        self.names
            .get(&name(path))
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn dir_op(&mut self, op: DirOp) {
        apply_dir(&mut self.names, &op);
        self.dir_ops.push(op);
    }
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn apply_dir(names: &mut BTreeMap<String, usize>, op: &DirOp) {
    match op {
        DirOp::Link(name, inode) => {
            names.insert(name.clone(), *inode);
        }
        DirOp::Rename(from, to) => {
            if let Some(inode) = names.remove(from) {
                names.insert(to.clone(), inode);
            }
        }
        DirOp::Unlink(name) => {
            names.remove(name);
        }
    }
}

/// The crashing file system; cheap to clone (clones share the files).
#[derive(Clone, Default)]
pub(super) struct CrashFs {
    inner: Arc<Mutex<Inner>>,
    /// While true, `sync_data` waits (to hold the sync thread busy in a test).
    hold: Arc<(Mutex<bool>, Condvar)>,
}

impl CrashFs {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `sync_data` wait (`true`) until released (`false`).
    pub(super) fn hold_syncs(&self, hold: bool) {
        *self.hold.0.lock().unwrap_or_else(|e| e.into_inner()) = hold;
        self.hold.1.notify_all();
    }

    /// Calls of `sync_data` so far.
    pub(super) fn data_syncs(&self) -> u64 {
        self.inner().data_syncs
    }

    /// Calls of `sync_data` begun so far, including ones waiting on `hold_syncs`.
    pub(super) fn syncs_begun(&self) -> u64 {
        self.inner().syncs_begun
    }

    /// Makes step `at` (counted from 1) and all later ones fail.
    pub(super) fn crash_at(&self, at: u64) {
        self.inner().crash_at = Some(at);
    }

    /// Steps taken so far.
    pub(super) fn steps(&self) -> u64 {
        self.inner().steps
    }

    /// The file system a restart finds after a crash now.
    pub(super) fn after_crash(&self, rng: &mut Rng) -> CrashFs {
        let inner = self.inner();
        let mut names = inner.synced_names.clone();
        // Journalled file systems keep a prefix of the directory operations; others may
        // keep any of them.
        let prefix = rng.below(inner.dir_ops.len() as u64 + 1) as usize;
        let any = rng.below(2) == 0;
        for (i, op) in inner.dir_ops.iter().enumerate() {
            let kept = if any { rng.below(2) == 0 } else { i < prefix };
            if kept {
                apply_dir(&mut names, op);
            }
        }
        let inodes = inner
            .inodes
            .iter()
            .map(|inode| crashed(inode, rng))
            .collect::<Vec<_>>();
        let out = Inner {
            inodes: inodes
                .into_iter()
                .map(|data| Inode {
                    synced: data.clone(),
                    pending: Vec::new(),
                    current: data,
                })
                .collect(),
            synced_names: names.clone(),
            names,
            ..Inner::default()
        };
        CrashFs {
            inner: Arc::new(Mutex::new(out)),
            hold: Arc::default(),
        }
    }
}

/// What is left of one file after a crash.
fn crashed(inode: &Inode, rng: &mut Rng) -> Vec<u8> {
    let mut data = inode.synced.clone();
    let ops = &inode.pending;
    match rng.below(4) {
        // The OS wrote everything back.
        0 => ops
            .iter()
            .for_each(|(at, op)| write_into(&mut data, *at, op)),
        // A prefix of the writes, the next one torn at a random byte.
        1 | 2 => {
            let kept = rng.below(ops.len() as u64 + 1) as usize;
            ops[..kept]
                .iter()
                .for_each(|(at, op)| write_into(&mut data, *at, op));
            if let Some((at, bytes)) = ops.get(kept) {
                let torn = rng.below(bytes.len() as u64 + 1) as usize;
                write_into(&mut data, *at, &bytes[..torn]);
            }
        }
        // Everything, but a run of the bytes written since the sync never reached the disk:
        // there the file holds what it held before (zeros past the synced length).
        _ => {
            ops.iter()
                .for_each(|(at, op)| write_into(&mut data, *at, op));
            let from = ops.iter().map(|(at, _)| *at).min().unwrap_or(0);
            let to = ops.iter().map(|(at, op)| at + op.len()).max().unwrap_or(0);
            if to > from {
                let start = from + rng.below((to - from) as u64) as usize;
                let end = start + rng.below((to - start) as u64 + 1) as usize;
                for (i, byte) in data[start..end].iter_mut().enumerate() {
                    *byte = inode.synced.get(start + i).copied().unwrap_or(0);
                }
            }
        }
    }
    data
}

/// A file of a [`CrashFs`].
struct CrashFile {
    fs: CrashFs,
    inode: usize,
    /// Where the next write goes (as a file descriptor's offset).
    at: Mutex<usize>,
}

impl CrashFile {
    fn open(fs: &CrashFs, inode: usize) -> Arc<dyn FsFile> {
        Arc::new(CrashFile {
            fs: fs.clone(),
            inode,
            at: Mutex::new(0),
        })
    }
}

impl FsFile for CrashFile {
    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        let mut inner = self.fs.inner();
        inner.step()?;
        let mut at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        let inode = &mut inner.inodes[self.inode];
        write_into(&mut inode.current, *at, buf);
        inode.pending.push((*at, buf.to_vec()));
        *at += buf.len();
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.fs.inner().syncs_begun += 1;
        let (held, released) = &*self.fs.hold;
        let mut hold = held.lock().unwrap_or_else(|e| e.into_inner());
        while *hold {
            hold = released.wait(hold).unwrap_or_else(|e| e.into_inner());
        }
        drop(hold);
        let mut inner = self.fs.inner();
        inner.step()?;
        inner.data_syncs += 1;
        let inode = &mut inner.inodes[self.inode];
        inode.synced = inode.current.clone();
        inode.pending.clear();
        Ok(())
    }
}

impl Fs for CrashFs {
    fn create_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, _dir: &Path) -> io::Result<Vec<String>> {
        Ok(self.inner().names.keys().cloned().collect())
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        let inner = self.inner();
        let inode = inner.inode(path)?;
        Ok(Box::new(Cursor::new(inner.inodes[inode].current.clone())))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        let mut inner = self.inner();
        inner.step()?;
        inner.inodes.push(Inode::default());
        let inode = inner.inodes.len() - 1;
        inner.dir_op(DirOp::Link(name(path), inode));
        Ok(CrashFile::open(self, inode))
    }

    fn reuse(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        let mut inner = self.inner();
        inner.step()?;
        let inode = inner.inode(path)?;
        Ok(CrashFile::open(self, inode))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut inner = self.inner();
        inner.step()?;
        let id = inner.inode(path)?;
        // As the real one, truncate syncs: it is durable at once.
        let inode = &mut inner.inodes[id];
        inode.current.truncate(len as usize);
        inode.synced = inode.current.clone();
        inode.pending.clear();
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut inner = self.inner();
        inner.step()?;
        inner.inode(from)?;
        inner.dir_op(DirOp::Rename(name(from), name(to)));
        Ok(())
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut inner = self.inner();
        inner.step()?;
        let inode = inner.inode(from)?;
        inner.dir_op(DirOp::Link(name(to), inode));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut inner = self.inner();
        inner.step()?;
        inner.inode(path)?;
        inner.dir_op(DirOp::Unlink(name(path)));
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        let mut inner = self.inner();
        inner.step()?;
        inner.synced_names = inner.names.clone();
        inner.dir_ops.clear();
        Ok(())
    }

    fn lock(&self, _path: &Path) -> Result<Box<dyn Send + Sync>, OpenError> {
        Ok(Box::new(()))
    }
}
