//! The files of a store directory: their names, and the header every segment and snapshot
//! starts with.
//!
//! ```text
//! FORMAT                        "pipit-store 1\n"
//! lock                          the holder's pid
//! log-<16 hex>                  a log segment (numbered from 1)
//! snapshot-<16 hex>             the live state as of the start of segment <n>
//! snapshot-<16 hex>.tmp         a snapshot being written (removed at open)
//! <name>.salvage                a damaged file's valid records being copied (removed at open)
//! <name>.corrupt-<k>            a damaged file kept aside (never deleted)
//! ```
//!
//! Header (28 bytes): magic `PIPITSTO`, format version u32 LE, file kind (`L` log, `S`
//! snapshot), three zero bytes, the file's number u64 LE, CRC-32C of bytes 0..24 u32 LE.

/// The format version this build writes and reads.
pub(super) const VERSION: u32 = 1;
/// Bytes of a file header.
pub(super) const HEADER: usize = 28;
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
    /// `FORMAT` or `lock`.
    Control,
    /// Anything else: left alone.
    Unknown,
}

/// Classifies a directory entry by its name.
pub(super) fn entry(name: &str) -> Entry {
    if name == "FORMAT" || name == "lock" {
        return Entry::Control;
    }
    if name.contains(".corrupt-") {
        return Entry::Quarantined;
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

/// The header of file `number` of `kind`.
pub(super) fn header(kind: Kind, number: u64) -> [u8; HEADER] {
    let mut h = [0; HEADER];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12] = kind.tag();
    h[16..24].copy_from_slice(&number.to_le_bytes());
    let crc = crc32c::crc32c(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Whether `bytes` are exactly the header file `number` of `kind` must start with.
pub(super) fn header_ok(bytes: &[u8], kind: Kind, number: u64) -> bool {
    bytes == header(kind, number)
}

#[cfg(test)]
mod tests {
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
    }

    #[test]
    fn header_names_its_file() {
        let h = header(Kind::Log, 3);
        assert_eq!(&h[..8], b"PIPITSTO");
        assert!(header_ok(&h, Kind::Log, 3));
        assert!(!header_ok(&h, Kind::Log, 4));
        assert!(!header_ok(&h, Kind::Snapshot, 3));
        assert!(!header_ok(&h[..20], Kind::Log, 3));
    }
}
