//! The `FORMAT` file: what makes a directory a pipit store, and of which version.
//!
//! It is checked before anything in the directory is touched (the lock file included), so a
//! directory that is not ours, or is of a newer version, is refused exactly as it was found.
//! An older version is read, and upgraded once the lock is held ([`upgrade`]), so that a
//! build that cannot read what this one writes refuses the directory.

use std::io::Read;
use std::path::Path;

use super::error::OpenError;
use super::file::VERSION;
use super::fs::Fs;

const NAME: &str = "FORMAT";
const TEMPORARY: &str = "FORMAT.tmp";
const MAGIC: &str = "pipit-store ";

/// Checks that `dir` (whose entries are `names`) is a store this build reads, or makes it
/// one if it is empty. Returns the version it is of (`VERSION` if it was created) and
/// whether it was created.
pub(super) fn check_or_create(
    fs: &dyn Fs,
    dir: &Path,
    names: &[String],
) -> Result<(u32, bool), OpenError> {
    if names.iter().any(|n| n == NAME) {
        let path = dir.join(NAME);
        let mut text = String::new();
        fs.open_read(&path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| OpenError::io(&path, e))?;
        let not_ours = || OpenError::NotOurs {
            path: dir.to_path_buf(),
        };
        let found: u32 = text
            .strip_prefix(MAGIC)
            .and_then(|v| v.trim_end().parse().ok())
            .ok_or_else(not_ours)?;
        return match found {
            1..=VERSION => Ok((found, false)),
            _ if found > VERSION => Err(OpenError::NewerVersion {
                path: dir.to_path_buf(),
                found,
            }),
            _ => Err(not_ours()),
        };
    }
    // A FORMAT.tmp alone is a creation a crash interrupted: the directory is still empty.
    if names.iter().any(|n| n != TEMPORARY) {
        return Err(OpenError::NotOurs {
            path: dir.to_path_buf(),
        });
    }
    write(fs, dir)?;
    Ok((VERSION, true))
}

/// Marks the store in `dir` as of this build's version (call with its lock held, before
/// anything of the new version is written).
pub(super) fn upgrade(fs: &dyn Fs, dir: &Path) -> Result<(), OpenError> {
    write(fs, dir)
}

/// Writes `FORMAT` for this version, atomically (a temporary file, synced and renamed).
fn write(fs: &dyn Fs, dir: &Path) -> Result<(), OpenError> {
    let io = |e| OpenError::io(dir, e);
    let temporary = dir.join(TEMPORARY);
    let file = fs.create(&temporary).map_err(io)?;
    file.write_all(format!("{MAGIC}{VERSION}\n").as_bytes())
        .map_err(io)?;
    file.sync_data().map_err(io)?;
    fs.rename(&temporary, &dir.join(NAME)).map_err(io)?;
    fs.sync_dir(dir).map_err(io)
}
