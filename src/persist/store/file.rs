//! The files of a store directory: their names, and the header every segment and snapshot
//! starts with.
//!
//! ```text
//! FORMAT                        "pipit-store 2\n"
//! lock                          the holder's pid
//! log-<16 hex>                  a log segment (numbered from 1)
//! spare-<16 hex>                a retired segment kept to be written over as a later one
//! snapshot-<16 hex>             the live state as of the start of segment <n>
//! snapshot-<16 hex>.tmp         a snapshot being written (removed at open)
//! <name>.salvage                a damaged file's valid records being copied (removed at open)
//! <name>.corrupt-<k>            a damaged file kept aside (never deleted)
//! ```
//!
//! Header (32 bytes): magic `PIPITSTO`, format version u32 LE, file kind (`L` log, `S`
//! snapshot), three zero bytes, the file's number u64 LE, salt u32 LE, CRC-32C of bytes
//! 0..28 u32 LE. Version 1 headers (28 bytes) have no salt: their CRC follows the number.
//!
//! Version 2 reuses retired segments: a spare is renamed to the next segment's name and
//! written over from its start, so blocks already allocated and initialised are rewritten
//! and an `fdatasync` of them commits no file-system metadata (measured on ext4 here: 1.36x
//! the persistent fan-in rate). What lies past the new contents is an earlier life's
//! records. So each life of a segment draws a random salt, and every frame's header CRC is
//! seeded with it (`frame::stamp`): an earlier life's records never check in a later one.
//! A file becomes a spare only once a spare header (number 0) over its old one is durable,
//! so if the new life's header is lost in a crash, what is found is the spare header
//! (`Header::Stale`, the file is dropped), never an earlier life's header and records.
//! Version 1 files (unseeded, never reused) are still read.

use std::io::{self, Read};

/// The format version this build writes; it reads every version from 1 up to it.
pub(super) const VERSION: u32 = 2;
/// Bytes of a file header (version 2 on).
pub(super) const HEADER: usize = 32;
/// Bytes of a version 1 file header.
const HEADER_V1: usize = 28;
const MAGIC: &[u8; 8] = b"PIPITSTO";

/// Which of the two numbered file kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A log segment: batches appended in order.
    Log,
    /// A snapshot: the live state, ending with an end record.
    Snapshot,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Log => "log-",
            Kind::Snapshot => "snapshot-",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Kind::Log => b'L',
            Kind::Snapshot => b'S',
        }
    }
}

/// The file name of segment or snapshot `number`.
pub(super) fn name(kind: Kind, number: u64) -> String {
    format!("{}{number:016x}", kind.prefix())
}

/// What a directory entry is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Entry {
    /// `log-<n>` or `snapshot-<n>`.
    Numbered(Kind, u64),
    /// A snapshot or salvage copy a crash interrupted: removed at open.
    Temporary,
    /// A damaged file kept aside by an earlier start.
    Quarantined,
    /// `spare-<n>`: a retired segment kept for reuse.
    Spare,
    /// `FORMAT` or `lock`.
    Control,
    /// Anything else: left alone.
    Unknown,
}

/// Classifies a directory entry by its name.
pub(super) fn entry(name: &str) -> Entry {
    if name == "FORMAT" || name == "FORMAT.tmp" || name == "lock" {
        return Entry::Control;
    }
    if name.contains(".corrupt-") {
        return Entry::Quarantined;
    }
    if name
        .strip_prefix("spare-")
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Entry::Spare;
    }
    for kind in [Kind::Log, Kind::Snapshot] {
        let Some(rest) = name.strip_prefix(kind.prefix()) else {
            continue;
        };
        let (hex, suffix) = rest.split_at(rest.len().min(16));
        if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Entry::Unknown;
        }
        let Ok(number) = u64::from_str_radix(hex, 16) else {
            return Entry::Unknown;
        };
        return match suffix {
            "" => Entry::Numbered(kind, number),
            ".tmp" | ".salvage" => Entry::Temporary,
            _ => Entry::Unknown,
        };
    }
    Entry::Unknown
}

/// The header of file `number` of `kind` whose frames are seeded with `salt` (0: none,
/// as in snapshots).
pub(super) fn header(kind: Kind, number: u64, salt: u32) -> [u8; HEADER] {
    let mut h = [0; HEADER];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12] = kind.tag();
    h[16..24].copy_from_slice(&number.to_le_bytes());
    h[24..28].copy_from_slice(&salt.to_le_bytes());
    let crc = crc32c::crc32c(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The header a spare is given before it may be reused: number 0, which no segment has.
pub(super) fn spare_header() -> [u8; HEADER] {
    header(Kind::Log, 0, 0)
}

/// A fresh salt for a segment's life: random, never 0 (the seed of unseeded files).
pub(super) fn new_salt() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState's keys are random per process and advance per call.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() as u32).max(1)
}

/// Reads a file's header from `src`: the version 1 length, and the salt and CRC after it
/// if the version says there are (fewer bytes if the file is shorter).
pub(super) fn read_header(src: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut header = Vec::with_capacity(HEADER);
    src.take(HEADER_V1 as u64).read_to_end(&mut header)?;
    if header.len() == HEADER_V1 && header[8..12] != 1u32.to_le_bytes() {
        src.take((HEADER - HEADER_V1) as u64)
            .read_to_end(&mut header)?;
    }
    Ok(header)
}

/// The name a retired segment `number` is kept under until it is reused.
pub(super) fn spare_name(number: u64) -> String {
    format!("spare-{number:016x}")
}

/// What the first bytes of file `number` of `kind` say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Header {
    /// The right header; `salt` seeds its frames' header CRCs (0 in version 1).
    Ok { version: u32, salt: u32 },
    /// A whole header of the right kind but another number: a spare renamed to this
    /// segment's name whose new header never reached the disk. Nothing of this life is in
    /// the file (the header goes first, and one sync covers it and what follows).
    Stale,
    /// Not a header of ours: short, damaged, or of another kind or version.
    Bad,
}

/// Checks `bytes` (as `read_header` read them) as the header of file `number` of `kind`.
pub(super) fn check_header(bytes: &[u8], kind: Kind, number: u64) -> Header {
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if bytes.len() < HEADER_V1 {
        return Header::Bad;
    }
    let version = word(8);
    let (body, salt) = match (version, bytes.len()) {
        (1, HEADER_V1) => (HEADER_V1 - 4, 0),
        (2.., HEADER) if version <= VERSION => (HEADER - 4, word(24)),
        _ => return Header::Bad,
    };
    if &bytes[..8] != MAGIC
        || bytes[12] != kind.tag()
        || bytes[13..16] != [0; 3]
        || crc32c::crc32c(&bytes[..body]) != word(body)
    {
        return Header::Bad;
    }
    let found = u64::from_le_bytes([
        bytes[16], bytes[17], bytes[18], bytes[19], bytes[20], bytes[21], bytes[22], bytes[23],
    ]);
    if found != number {
        Header::Stale
    } else {
        Header::Ok { version, salt }
    }
}

/// The salt a damaged header of this version would hold, the best guess for reading the
/// frames after it (0 if it is not even that long).
pub(super) fn salt_guess(bytes: &[u8]) -> u32 {
    bytes
        .get(24..28)
        .filter(|_| bytes.len() == HEADER)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(name(Kind::Log, 26), "log-000000000000001a");
        assert_eq!(
            entry("log-000000000000001a"),
            Entry::Numbered(Kind::Log, 26)
        );
        assert_eq!(
            entry("snapshot-00000000000000ff"),
            Entry::Numbered(Kind::Snapshot, 255)
        );
        assert_eq!(entry("snapshot-00000000000000ff.tmp"), Entry::Temporary);
        assert_eq!(entry("log-0000000000000001.salvage"), Entry::Temporary);
        assert_eq!(entry("log-0000000000000001.corrupt-2"), Entry::Quarantined);
        assert_eq!(entry("log-1"), Entry::Unknown);
        assert_eq!(entry("log-000000000000001g"), Entry::Unknown);
        assert_eq!(entry("notes.txt"), Entry::Unknown);
        assert_eq!(entry("lock"), Entry::Control);
        assert_eq!(entry(&spare_name(26)), Entry::Spare);
        assert_eq!(entry("spare-1"), Entry::Unknown);
    }

    /// Version 1's header of file `number` of `kind`.
    pub(crate) fn header_v1(kind: Kind, number: u64) -> [u8; HEADER_V1] {
        let mut h = [0; HEADER_V1];
        h[..24].copy_from_slice(&header(kind, number, 0)[..24]);
        h[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c(&h[..24]);
        h[24..28].copy_from_slice(&crc.to_le_bytes());
        h
    }

    fn read(bytes: &[u8]) -> Vec<u8> {
        read_header(&mut &bytes[..]).unwrap()
    }

    #[test]
    fn header_names_its_file() {
        let h = header(Kind::Log, 3, 77);
        assert_eq!(&h[..8], b"PIPITSTO");
        let ok = Header::Ok {
            version: VERSION,
            salt: 77,
        };
        assert_eq!(check_header(&read(&h), Kind::Log, 3), ok);
        assert_eq!(check_header(&h, Kind::Log, 4), Header::Stale);
        assert_eq!(check_header(&spare_header(), Kind::Log, 4), Header::Stale);
        assert_eq!(check_header(&h, Kind::Snapshot, 3), Header::Bad);
        assert_eq!(check_header(&h[..20], Kind::Log, 3), Header::Bad);
        assert_eq!(check_header(&h[..28], Kind::Log, 3), Header::Bad);
        // Version 1: 28 bytes, and read as 28 even when frames follow.
        let mut v1 = header_v1(Kind::Log, 3).to_vec();
        v1.extend_from_slice(b"frames");
        let v1 = read(&v1);
        assert_eq!(v1.len(), HEADER_V1);
        let ok = Header::Ok {
            version: 1,
            salt: 0,
        };
        assert_eq!(check_header(&v1, Kind::Log, 3), ok);
        let mut v3 = h;
        v3[8..12].copy_from_slice(&3u32.to_le_bytes());
        let crc = crc32c::crc32c(&v3[..28]);
        v3[28..32].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(check_header(&v3, Kind::Log, 3), Header::Bad);
        let mut damaged = h;
        damaged[20] ^= 1;
        assert_eq!(check_header(&damaged, Kind::Log, 3), Header::Bad);
        assert_eq!(salt_guess(&damaged), 77);
    }
}
