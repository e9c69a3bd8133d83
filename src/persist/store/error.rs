//! The store's two errors: why a directory could not be opened, and why an open store
//! stopped working (for good: durability is never claimed after a failed write or sync).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why [`Store::open`](super::Store::open) refused a directory.
#[derive(Debug)]
pub enum OpenError {
    /// Another process (or another `Store` in this one) holds the directory's lock.
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, as it wrote it into the lock file.
        pid: Option<u32>,
    },
    /// The directory holds files but no `FORMAT` of ours (or an unreadable one): it was
    /// left untouched.
    NotOurs {
        /// The directory.
        path: PathBuf,
    },
    /// The directory was written by a newer pipit: it was left untouched.
    NewerVersion {
        /// The directory.
        path: PathBuf,
        /// The version its `FORMAT` names.
        found: u32,
    },
    /// A file-system operation failed.
    Io {
        /// The file or directory it failed on.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
}

impl OpenError {
    /// An `Io` error on `path`.
    pub(super) fn io(path: &Path, error: io::Error) -> OpenError {
        OpenError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Locked {
                path,
                pid: Some(pid),
            } => {
                write!(
                    f,
                    "persistence directory is in use: {} is held by process {pid}",
                    path.display()
                )
            }
            OpenError::Locked { path, pid: None } => {
                write!(
                    f,
                    "persistence directory is in use: {} is held by another process",
                    path.display()
                )
            }
            OpenError::NotOurs { path } => write!(
                f,
                "{} is not a pipit store (it holds files but no FORMAT of ours); left untouched",
                path.display()
            ),
            OpenError::NewerVersion { path, found } => write!(
                f,
                "{} holds store format version {found}, newer than this pipit reads ({}); left untouched",
                path.display(),
                super::file::VERSION
            ),
            OpenError::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for OpenError {}

/// Why an open store failed: a write or sync that did not succeed. Once failed, a store
/// stays failed (no retry: after a failed fsync the kernel may have dropped the data, so
/// claiming it durable later would be a lie).
#[derive(Clone, Debug)]
pub struct StoreFailed(Arc<Failure>);

#[derive(Debug)]
struct Failure {
    op: &'static str,
    path: PathBuf,
    error: io::Error,
}

impl StoreFailed {
    /// `op` (e.g. "fdatasync") on `path` failed with `error`.
    pub(super) fn new(op: &'static str, path: &Path, error: io::Error) -> StoreFailed {
        StoreFailed(Arc::new(Failure {
            op,
            path: path.to_path_buf(),
            error,
        }))
    }

    /// The kind of the underlying I/O error (e.g. `StorageFull`).
    pub fn kind(&self) -> io::ErrorKind {
        self.0.error.kind()
    }
}

impl fmt::Display for StoreFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Failure { op, path, error } = &*self.0;
        write!(
            f,
            "persistence failed: {op} of {} failed: {error}; nothing more will be made durable",
            path.display()
        )
    }
}

impl std::error::Error for StoreFailed {}
