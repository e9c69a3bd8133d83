//! Reading the dynamic security file and replacing it atomically.
//!
//! A save writes `FILE.new` (the name Mosquitto's plugin uses), flushes it to the disk,
//! renames it over `FILE` and flushes the directory, so after a crash the file is either the
//! old one or the new one, never a mix. The file holds password hashes: a new one is
//! created readable by its owner only.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The file's text, or `None` if it does not exist.
pub fn read(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the file at `path` with `text`, atomically and durably.
pub fn write_atomic(path: &Path, text: &[u8]) -> io::Result<()> {
    let mut temp = PathBuf::from(path);
    temp.as_mut_os_string().push(".new");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(text)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, path)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("pipit-dynsec-file-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dynsec.json");
        assert_eq!(read(&path).unwrap(), None);
        write_atomic(&path, b"{}").unwrap();
        write_atomic(&path, b"{\"clients\": []}").unwrap();
        assert_eq!(read(&path).unwrap().as_deref(), Some("{\"clients\": []}"));
        assert!(!dir.join("dynsec.json.new").exists());
    }
}
