//! The file-system seam: every write, sync, create, rename and delete the store makes goes
//! through [`Fs`] and [`FsFile`], so that tests can put a file system that "crashes" under
//! it (`testfs.rs`). [`RealFs`] is the one the broker uses.
//!
//! A store directory is flat: paths are always `dir/<name>`.

use std::ffi::CString;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use super::error::OpenError;

/// A file opened for reading (recovery reads files once, front to back, and a snapshot's end).
pub(crate) trait ReadFile: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadFile for T {}

/// A file the store writes in order; shared with the sync thread, which only syncs it.
pub(crate) trait FsFile: Send + Sync {
    /// Writes all of `buf` after what was written through this handle so far (from the
    /// start of the file for a fresh handle).
    fn write_all(&self, buf: &[u8]) -> io::Result<()>;
    /// Makes what was written durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
}

/// The directory operations of a store.
pub(crate) trait Fs: Send + Sync {
    /// Creates `dir` (and its parents) with mode 0700 if it does not exist.
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    /// The names of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens `path` for reading.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadFile>>;
    /// Creates `path` empty (replacing any file of that name) for appending.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>>;
    /// Opens the existing file `path` to be written over from its start; what lies past
    /// what is written stays.
    fn reuse(&self, path: &Path) -> io::Result<Arc<dyn FsFile>>;
    /// Cuts `path` to `len` bytes and makes that durable.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Gives the file `from` the second name `to`.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` (creates, renames, removes) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes the lock file `path` for as long as the returned guard lives.
    fn lock(&self, path: &Path) -> Result<Box<dyn Send + Sync>, OpenError>;
}

/// The operating system's file system.
pub(crate) struct RealFs;

impl FsFile for File {
    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        Write::write_all(&mut &*self, buf)
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
}

impl Fs for RealFs {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        Ok(Box::new(File::open(path)?))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        Ok(Arc::new(file))
    }

    fn reuse(&self, path: &Path) -> io::Result<Arc<dyn FsFile>> {
        Ok(Arc::new(OpenOptions::new().write(true).open(path)?))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::hard_link(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn Send + Sync>, OpenError> {
        // Not truncated on open: while another process holds it, its pid must stay readable.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| OpenError::io(path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(OpenError::Locked {
                    path: path.to_path_buf(),
                    pid,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(OpenError::io(path, e)),
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.write_all(pid.as_bytes()))
            .map_err(|e| OpenError::io(path, e))?;
        Ok(Box::new(file))
    }
}

/// Free bytes for unprivileged users on the file system holding `dir` (statvfs `f_bavail *
/// f_frsize`).
pub fn free_space(dir: &Path) -> io::Result<u64> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a writable statvfs that
    // the call fills in; both outlive the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between libc targets
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}
