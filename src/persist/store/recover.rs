//! Recovery: reads a store directory back at open, hands every valid record to the caller
//! in order, and leaves the directory clean for the next start.
//!
//! Order: the newest complete snapshot (one that ends with its end record), then the log
//! segments from its number on. What is found on the way:
//! - interrupted snapshots and salvage copies (`.tmp`, `.salvage`): removed;
//! - older snapshots and segments below the chosen snapshot (a retirement a crash
//!   interrupted): removed;
//! - a named snapshot without its end record: renamed aside, ignored;
//! - a segment sealed (its last record written when the store moved on from it, or closed):
//!   read up to the seal only, since what follows is an earlier life's (`file.rs`);
//! - a segment whose header is another segment's: a spare whose reuse a crash interrupted
//!   before anything of its new life was durable: removed;
//! - spares (`spare-<n>`): kept for reuse;
//! - a torn tail (damage after the last valid record of the last segment): truncated;
//! - any other damage (a bad record followed by valid ones, damage in an earlier segment
//!   or a snapshot, a bad header): the damaged records are skipped, the file is kept aside
//!   as `<name>.corrupt-<k>` and replaced by a copy of its valid records, so the next start
//!   reads a clean store.

use std::collections::BTreeMap;
use std::io::{self, Read, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::error::OpenError;
use super::file::{self, Entry, Header, Kind};
use super::frame::{self, Event, Reader};
use super::fs::Fs;
use super::report::{Recovery, Torn};
use super::sync;

/// Flush salvage copies in writes of this size.
const COPY_CHUNK: usize = 1 << 20;

/// What the store needs from recovery to carry on.
pub(super) struct Recovered {
    pub recovery: Recovery,
    /// The number the next segment gets (above every file seen).
    pub next_segment: u64,
    /// The snapshot in use: (number, bytes).
    pub snapshot: Option<(u64, u64)>,
    /// Live segments after it: (number, bytes).
    pub segments: Vec<(u64, u64)>,
    /// Bytes written while recovering (salvage copies).
    pub bytes_written: u64,
    /// Retired segments kept for reuse.
    pub spares: Vec<PathBuf>,
}

/// Recovers the store `dir`, whose entries are `names`.
pub(super) fn recover(
    fs: &dyn Fs,
    dir: &Path,
    names: &[String],
    created: bool,
    each: &mut dyn FnMut(u8, &[u8]),
) -> Result<Recovered, OpenError> {
    let started = Instant::now();
    let mut r = Recovered {
        recovery: Recovery {
            dir: dir.to_path_buf(),
            created,
            ..Recovery::default()
        },
        next_segment: 1,
        snapshot: None,
        segments: Vec::new(),
        bytes_written: 0,
        spares: Vec::new(),
    };
    let mut logs = BTreeMap::new();
    let mut snapshots = BTreeMap::new();
    for name in names {
        match file::entry(name) {
            Entry::Numbered(kind, number) => {
                r.next_segment = r.next_segment.max(number.saturating_add(1));
                match kind {
                    Kind::Log => logs.insert(number, name.clone()),
                    Kind::Snapshot => snapshots.insert(number, name.clone()),
                };
            }
            Entry::Temporary => remove(fs, dir, name, &mut r.recovery)?,
            Entry::Quarantined => r.recovery.kept_aside += 1,
            Entry::Spare => {
                // Its header may be that of a life a crash cut short: made a spare again.
                let path = dir.join(name);
                sync::prepare_spare(fs, &path).map_err(|e| OpenError::io(&path, e))?;
                r.spares.push(path);
            }
            Entry::Control => {}
            Entry::Unknown => r
                .recovery
                .problems
                .push(format!("{name}: not a store file, left alone")),
        }
    }

    if let Some(number) = choose_snapshot(fs, dir, &snapshots, &mut r.recovery)? {
        for name in logs.range(..number).map(|(_, name)| name) {
            remove(fs, dir, name, &mut r.recovery)?;
        }
        logs.retain(|&n, _| n >= number);
        let found = read_file(fs, dir, Kind::Snapshot, number, each, &mut r)?;
        let mut len = found.len;
        if found.damaged() {
            len = salvage(fs, dir, Kind::Snapshot, number, &found, &mut r)?;
        }
        r.snapshot = Some((number, len));
        r.recovery.snapshot = Some(file::name(Kind::Snapshot, number));
    }
    let last = logs.keys().next_back().copied();
    let mut previous = None;
    for (&number, name) in &logs {
        if let Some(p) = previous
            && number != p + 1
        {
            let p = file::name(Kind::Log, p);
            r.recovery.problems.push(format!(
                "{name} follows {p}: the segments between are missing"
            ));
        }
        previous = Some(number);
        r.recovery.segments += 1;
        read_log(fs, dir, number, Some(number) == last, each, &mut r)?;
    }
    r.recovery.elapsed = started.elapsed();
    Ok(r)
}

/// The newest complete snapshot of `snapshots`; newer incomplete ones are set aside, older
/// ones removed (their retirement was interrupted).
fn choose_snapshot(
    fs: &dyn Fs,
    dir: &Path,
    snapshots: &BTreeMap<u64, String>,
    recovery: &mut Recovery,
) -> Result<Option<u64>, OpenError> {
    let mut chosen = None;
    for (&number, name) in snapshots.iter().rev() {
        let path = dir.join(name);
        if chosen.is_some() {
            remove(fs, dir, name, recovery)?;
        } else if complete(fs, &path, number).map_err(|e| OpenError::io(&path, e))? {
            chosen = Some(number);
        } else {
            let aside = set_aside(fs, dir, name)?;
            recovery.problems.push(format!(
                "{name} is incomplete (no end record): kept as {aside} and ignored"
            ));
            recovery.quarantined.push(name.clone());
        }
    }
    Ok(chosen)
}

/// Reads log segment `number` (the newest if `last`), then truncates a torn tail, removes
/// it if it holds no record, or replaces it by its valid records if damaged otherwise.
fn read_log(
    fs: &dyn Fs,
    dir: &Path,
    number: u64,
    last: bool,
    each: &mut dyn FnMut(u8, &[u8]),
    r: &mut Recovered,
) -> Result<(), OpenError> {
    let found = read_file(fs, dir, Kind::Log, number, each, r)?;
    let name = file::name(Kind::Log, number);
    let path = dir.join(&name);
    if found.header == Header::Stale {
        fs.remove(&path).map_err(|e| OpenError::io(&path, e))?;
        r.recovery.removed.push(name);
        return Ok(());
    }
    let torn = found.damaged() && found.tail_only() && last;
    if found.records == 0 && (!found.damaged() || torn) {
        // Nothing to keep: a segment a start opened and never wrote to, or a torn first write.
        if torn {
            let bytes = found.len;
            r.recovery.problems.push(format!(
                "{name}: torn write of {bytes} bytes, no record in it: removed"
            ));
            r.recovery.torn = Some(Torn {
                file: name,
                offset: 0,
                bytes,
            });
        }
        fs.remove(&path).map_err(|e| OpenError::io(&path, e))?;
    } else if torn {
        let (offset, bytes) = (found.valid_end, found.len - found.valid_end);
        fs.truncate(&path, offset)
            .map_err(|e| OpenError::io(&path, e))?;
        r.recovery.problems.push(format!(
            "{name}: torn tail of {bytes} bytes at offset {offset} truncated"
        ));
        r.recovery.torn = Some(Torn {
            file: name,
            offset,
            bytes,
        });
        r.segments.push((number, offset));
    } else if found.damaged() {
        let len = salvage(fs, dir, Kind::Log, number, &found, r)?;
        r.segments.push((number, len));
    } else {
        r.segments.push((number, found.len));
    }
    Ok(())
}

/// What reading one file found.
struct Found {
    header: Header,
    /// Bytes of the header (as long as its version's, or the file if shorter).
    header_len: u64,
    /// The header CRC seed its frames were read with.
    seed: u32,
    records: u64,
    /// The file's length.
    len: u64,
    /// The end of the last valid record (or of the header).
    valid_end: u64,
    /// Damage followed by a valid record.
    damage_inside: bool,
    /// Damage after the last valid record.
    damage_at_tail: bool,
    /// Records dropped whole (their length intact) and all damaged bytes.
    skipped_records: u64,
    skipped_bytes: u64,
}

impl Found {
    fn header_ok(&self) -> bool {
        matches!(self.header, Header::Ok { .. })
    }

    fn damaged(&self) -> bool {
        !self.header_ok() || self.damage_inside || self.damage_at_tail
    }

    /// The only damage is after the last valid record (or is a header cut short).
    fn tail_only(&self) -> bool {
        let header_torn = !self.header_ok() && self.len < file::HEADER as u64;
        (self.header_ok() || header_torn) && !self.damage_inside
    }
}

/// The seed of the header CRCs of the frames after `bytes`, a header found to be
/// `header`: its salt, or for a damaged one the best guess.
fn seed_of(bytes: &[u8], header: Header) -> u32 {
    match header {
        Header::Ok { salt, .. } => salt,
        Header::Stale | Header::Bad => file::salt_guess(bytes),
    }
}

/// Whether a record of `kind` and `body` in log segment `number` is its seal.
fn is_seal(kind: u8, body: &[u8], number: u64) -> bool {
    kind == frame::END && body == number.to_le_bytes()
}

/// Reads file `number` of `kind`, handing its valid records (a snapshot's end record
/// excepted) to `each`.
fn read_file(
    fs: &dyn Fs,
    dir: &Path,
    kind: Kind,
    number: u64,
    each: &mut dyn FnMut(u8, &[u8]),
    r: &mut Recovered,
) -> Result<Found, OpenError> {
    let path = dir.join(file::name(kind, number));
    let io = |e| OpenError::io(&path, e);
    let mut src = fs.open_read(&path).map_err(io)?;
    let header = file::read_header(&mut src).map_err(io)?;
    let checked = file::check_header(&header, kind, number);
    let mut found = Found {
        header: checked,
        header_len: header.len() as u64,
        seed: seed_of(&header, checked),
        records: 0,
        len: 0,
        valid_end: header.len() as u64,
        damage_inside: false,
        damage_at_tail: false,
        skipped_records: 0,
        skipped_bytes: 0,
    };
    if checked == Header::Stale && kind == Kind::Log {
        return Ok(found);
    }
    let mut reader = Reader::new(src, header.len() as u64, found.seed);
    loop {
        match reader.next().map_err(io)? {
            Event::Record {
                kind: record_kind,
                body,
            } => {
                if found.damage_at_tail {
                    found.damage_inside = true;
                    found.damage_at_tail = false;
                }
                if kind == Kind::Log && is_seal(record_kind, body, number) {
                    found.valid_end = reader.offset();
                    break;
                }
                found.records += 1;
                if record_kind != frame::END {
                    r.recovery.records += 1;
                    r.recovery.bytes += (frame::HEADER + body.len()) as u64;
                    each(record_kind, body);
                }
                found.valid_end = reader.offset();
            }
            Event::Damaged { bytes, whole, .. } => {
                found.damage_at_tail = true;
                found.skipped_bytes += bytes;
                found.skipped_records += u64::from(whole);
            }
            Event::End => break,
        }
    }
    found.len = reader.offset();
    Ok(found)
}

/// Whether snapshot `path` is whole: its header is right and it ends with its end record.
fn complete(fs: &dyn Fs, path: &Path, number: u64) -> io::Result<bool> {
    let mut src = fs.open_read(path)?;
    let header = file::read_header(&mut src)?;
    let len = src.seek(SeekFrom::End(0))?;
    if len < (header.len() + frame::END_FRAME) as u64 {
        return Ok(false);
    }
    let mut end = [0; frame::END_FRAME];
    src.seek(SeekFrom::Start(len - frame::END_FRAME as u64))?;
    src.read_exact(&mut end)?;
    Ok(matches!(
        file::check_header(&header, Kind::Snapshot, number),
        Header::Ok { .. }
    ) && frame::is_end(&end, number))
}

/// Replaces damaged file `number` of `kind` by a copy of its valid records, keeping the
/// original aside, and counts what it dropped. Returns the copy's length.
fn salvage(
    fs: &dyn Fs,
    dir: &Path,
    kind: Kind,
    number: u64,
    found: &Found,
    r: &mut Recovered,
) -> Result<u64, OpenError> {
    r.recovery.skipped_records += found.skipped_records;
    r.recovery.skipped_bytes += found.skipped_bytes;
    let name = file::name(kind, number);
    let path = dir.join(&name);
    let copy = dir.join(format!("{name}.salvage"));
    let out = fs.create(&copy).map_err(|e| OpenError::io(&copy, e))?;
    // The copy has this version's header, and a log's a salt of its own for its frames.
    let salt = if kind == Kind::Log {
        file::new_salt()
    } else {
        0
    };
    out.write_all(&file::header(kind, number, salt))
        .map_err(|e| OpenError::io(&copy, e))?;
    let mut buf = Vec::with_capacity(COPY_CHUNK);
    let mut len = file::HEADER as u64;
    let mut src = fs.open_read(&path).map_err(|e| OpenError::io(&path, e))?;
    let skip = found.header_len;
    io::copy(&mut (&mut src).take(skip), &mut io::sink()).map_err(|e| OpenError::io(&path, e))?;
    let mut reader = Reader::new(src, skip, found.seed);
    let write = |buf: &mut Vec<u8>, len: &mut u64| {
        frame::stamp(buf, salt);
        *len += buf.len() as u64;
        let written = out.write_all(buf);
        buf.clear();
        written.map_err(|e| OpenError::io(&copy, e))
    };
    loop {
        match reader.next().map_err(|e| OpenError::io(&path, e))? {
            Event::Record { kind: k, body } if kind == Kind::Log && is_seal(k, body, number) => {
                break;
            }
            Event::Record { kind, body } => {
                frame::push(&mut buf, kind, |b| b.extend_from_slice(body))
            }
            Event::Damaged { .. } => {}
            Event::End => break,
        }
        if buf.len() >= COPY_CHUNK {
            write(&mut buf, &mut len)?;
        }
    }
    write(&mut buf, &mut len)?;
    out.sync_data().map_err(|e| OpenError::io(&copy, e))?;
    let aside = aside_name(fs, dir, &name)?;
    fs.hard_link(&path, &dir.join(&aside))
        .map_err(|e| OpenError::io(&path, e))?;
    // The damaged original's second name must be durable before its first is replaced.
    fs.sync_dir(dir).map_err(|e| OpenError::io(dir, e))?;
    fs.rename(&copy, &path)
        .map_err(|e| OpenError::io(&copy, e))?;
    fs.sync_dir(dir).map_err(|e| OpenError::io(dir, e))?;
    r.bytes_written += len;
    r.recovery.quarantined.push(name.clone());
    r.recovery.problems.push(format!(
        "{name}: damaged ({} records kept); the original is kept as {aside}, a copy of its valid records replaces it",
        found.records
    ));
    Ok(len)
}

/// Renames `name` aside as damaged; returns the new name.
fn set_aside(fs: &dyn Fs, dir: &Path, name: &str) -> Result<String, OpenError> {
    let aside = aside_name(fs, dir, name)?;
    let path = dir.join(name);
    fs.rename(&path, &dir.join(&aside))
        .map_err(|e| OpenError::io(&path, e))?;
    fs.sync_dir(dir).map_err(|e| OpenError::io(dir, e))?;
    Ok(aside)
}

/// The first `<name>.corrupt-<k>` not in use.
fn aside_name(fs: &dyn Fs, dir: &Path, name: &str) -> Result<String, OpenError> {
    let names = fs.list(dir).map_err(|e| OpenError::io(dir, e))?;
    let taken = |k: &u32| names.iter().any(|n| *n == format!("{name}.corrupt-{k}"));
    let k = (1..).find(|k| !taken(k)).unwrap_or(0);
    Ok(format!("{name}.corrupt-{k}"))
}

/// Removes a file recovery has no use for.
fn remove(fs: &dyn Fs, dir: &Path, name: &str, recovery: &mut Recovery) -> Result<(), OpenError> {
    let path = dir.join(name);
    fs.remove(&path).map_err(|e| OpenError::io(&path, e))?;
    recovery.removed.push(name.to_string());
    Ok(())
}
