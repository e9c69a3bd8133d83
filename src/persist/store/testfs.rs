//! A file system in memory that can crash, for the crash tests.
//!
//! Per file it keeps what was synced and the writes since (appends; a truncation syncs); per
//! directory, the names as last synced and the operations since (creates, renames, links,
//! removes). Every mutating call counts as one step; at the chosen step the file system
//! "crashes": that call and every later one fails. [`CrashFs::after_crash`] then builds the
//! file system a restart would find: synced data plus a random prefix of the operations
//! since, the last kept write possibly torn at a random byte or its blocks zeroed (pages
//! written back out of order), and a random prefix or a random subset of the unsynced
//! directory operations.

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
    /// Writes (appends) since the last sync.
    pending: Vec<Vec<u8>>,
    /// `synced` with `pending` appended.
    current: Vec<u8>,
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
    let synced_len = data.len();
    match rng.below(4) {
        // The OS wrote everything back.
        0 => ops.iter().for_each(|op| data.extend_from_slice(op)),
        // A prefix of the operations, the next write torn at a random byte.
        1 | 2 => {
            let kept = rng.below(ops.len() as u64 + 1) as usize;
            ops[..kept].iter().for_each(|op| data.extend_from_slice(op));
            if let Some(bytes) = ops.get(kept) {
                let torn = rng.below(bytes.len() as u64 + 1) as usize;
                data.extend_from_slice(&bytes[..torn]);
            }
        }
        // Everything, but a run of the unsynced bytes never reached the disk (zeros).
        _ => {
            ops.iter().for_each(|op| data.extend_from_slice(op));
            if data.len() > synced_len {
                let start = synced_len + rng.below((data.len() - synced_len) as u64) as usize;
                let end = start + rng.below((data.len() - start) as u64 + 1) as usize;
                data[start..end].fill(0);
            }
        }
    }
    data
}

/// A file of a [`CrashFs`].
struct CrashFile {
    fs: CrashFs,
    inode: usize,
}

impl FsFile for CrashFile {
    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        let mut inner = self.fs.inner();
        inner.step()?;
        let inode = &mut inner.inodes[self.inode];
        inode.current.extend_from_slice(buf);
        inode.pending.push(buf.to_vec());
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
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
        Ok(Arc::new(CrashFile {
            fs: self.clone(),
            inode,
        }))
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
