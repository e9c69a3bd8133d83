//! Record framing: how one `(kind, body)` record sits in a log segment or a snapshot, and
//! the reader that walks a file of frames at start-up.
//!
//! ```text
//! 0..4    len       u32 LE, body length (at most MAX_BODY)
//! 4       kind      u8 (0 is the store's own: a snapshot's end record)
//! 5..9    crc       u32 LE, CRC-32C of kind and body
//! 9..13   head_crc  u32 LE, CRC-32C of bytes 0..9, XOR the file's seed
//! 13..    body
//! ```
//!
//! The seed is 0 in snapshots and in version 1 segments, and the salt of its header in a
//! version 2 log segment: a reused segment's earlier records, still on disk past the new
//! ones, then never check (see `file.rs`).
//!
//! The header carries its own CRC so that a damaged length is recognised before it is
//! trusted: a record whose header checks but whose body does not is skipped whole (its
//! length is intact), while a damaged header makes the reader scan forward byte by byte for
//! the next frame whose header and body both check. An all-zero region (unwritten blocks
//! after a power cut) never checks, because the CRC-32C of a zero header is not zero.

use std::io::{self, Read};

/// Bytes of a frame header.
pub(super) const HEADER: usize = 13;
/// The largest body a frame may carry (far above any MQTT message pipit accepts).
pub(super) const MAX_BODY: usize = 1 << 30;
/// The kind of a snapshot's end record; callers' kinds are 1..=255.
pub(super) const END: u8 = 0;
/// The reader's buffer starts at this size (small files are common: a segment a start
/// opened, a small snapshot) and doubles each time it fills, up to `READ_CHUNK`.
const FIRST_CHUNK: usize = 64 << 10;
/// The reader's largest buffer: large reads keep start-up at disk speed.
const READ_CHUNK: usize = 1 << 20;

/// Appends one frame to `buf`: reserves the header, lets `body` write the body, then
/// patches length and CRCs in. Allocates only when `buf` must grow.
pub(super) fn push(buf: &mut Vec<u8>, kind: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER]);
    body(buf);
    let len = buf.len() - start - HEADER;
    assert!(
        len <= MAX_BODY,
        "record body of {len} bytes: callers bound records far below 1 GiB"
    );
    let crc = crc32c::crc32c_append(KIND_CRC[usize::from(kind)], &buf[start + HEADER..]);
    let head = &mut buf[start..start + HEADER];
    head[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    head[4] = kind;
    head[5..9].copy_from_slice(&crc.to_le_bytes());
    let head_crc = crc32c::crc32c(&head[..9]);
    head[9..13].copy_from_slice(&head_crc.to_le_bytes());
}

/// Seeds the header CRC of every frame in `frames` (whole frames, as `push` wrote them)
/// with `seed`: done when a batch is written, once its segment is known.
pub(super) fn stamp(frames: &mut [u8], seed: u32) {
    let mut at = 0;
    while at + HEADER <= frames.len() {
        let len = u32::from_le_bytes([frames[at], frames[at + 1], frames[at + 2], frames[at + 3]]);
        let crc = &mut frames[at + 9..at + 13];
        let seeded = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) ^ seed;
        crc.copy_from_slice(&seeded.to_le_bytes());
        at += HEADER + len as usize;
    }
}

/// The body length of the frame whose header is `head`, if the header checks under `seed`.
fn header_len(head: &[u8], seed: u32) -> Option<usize> {
    let word = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    // The length first: it rules out most bytes a scan passes over without a CRC.
    let len = word(0) as usize;
    (len <= MAX_BODY && crc32c::crc32c(&head[..9]) ^ seed == word(9)).then_some(len)
}

/// Bytes of a snapshot's end record: a frame of kind [`END`] whose body is the snapshot's
/// number, so a complete snapshot is told from a torn one by reading only its last bytes.
pub(super) const END_FRAME: usize = HEADER + 8;

/// The end record of snapshot `number`, or the seal of log segment `number` (the last
/// record written to it: what follows is an earlier life's).
pub(super) fn push_end(buf: &mut Vec<u8>, number: u64) {
    push(buf, END, |b| b.extend_from_slice(&number.to_le_bytes()));
}

/// Whether `frame` is exactly the end record of snapshot `number`.
pub(super) fn is_end(frame: &[u8], number: u64) -> bool {
    frame.len() == END_FRAME
        && header_len(&frame[..HEADER], 0) == Some(8)
        && frame[4] == END
        && body_checks(frame)
        && frame[HEADER..] == number.to_le_bytes()
}

/// Whether the whole frame `frame` (header and body) checks.
fn body_checks(frame: &[u8]) -> bool {
    let crc = u32::from_le_bytes([frame[5], frame[6], frame[7], frame[8]]);
    crc32c::crc32c_append(KIND_CRC[usize::from(frame[4])], &frame[HEADER..]) == crc
}

/// The CRC-32C of each one-byte kind, worked out at compile time: the body CRC starts from
/// it, which saves a call into the CRC crate per record (its per-call cost, not the bytes,
/// is what a small record pays for).
static KIND_CRC: [u32; 256] = kind_crcs();

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of every single byte.
const fn kind_crcs() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = !0u32 ^ byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[byte] = !crc;
        byte += 1;
    }
    table
}

/// What the reader found next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Event<'a> {
    /// A valid record, its body borrowed from the reader's buffer.
    Record { kind: u8, body: &'a [u8] },
    /// Bytes at `offset` that are not a valid record. `whole`: one frame whose header
    /// checked but whose body did not (its length was intact, so exactly it was skipped);
    /// otherwise bytes passed over while scanning for the next valid frame, or the
    /// incomplete frame the file ends with.
    Damaged {
        offset: u64,
        bytes: u64,
        whole: bool,
    },
    /// The end of the file.
    End,
}

/// Walks the frames of one file from a given offset with large buffered reads.
pub(super) struct Reader<R> {
    src: R,
    buf: Vec<u8>,
    /// `buf[pos..end]` holds bytes read but not yet consumed.
    pos: usize,
    end: usize,
    /// The file offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// The file's header CRC seed.
    seed: u32,
}

impl<R: Read> Reader<R> {
    /// A reader of `src`, whose next byte is at file offset `offset`, whose frames' header
    /// CRCs are seeded with `seed`.
    pub(super) fn new(src: R, offset: u64, seed: u32) -> Reader<R> {
        Reader {
            src,
            buf: vec![0; FIRST_CHUNK],
            pos: 0,
            end: 0,
            base: offset,
            eof: false,
            seed,
        }
    }

    /// The file offset of the next unconsumed byte.
    pub(super) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Makes at least `need` unconsumed bytes available; false if the file ends first.
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        while self.end - self.pos < need {
            if self.eof {
                return Ok(false);
            }
            if self.end == self.buf.len() || self.buf.len() - self.pos < need {
                // Move the unconsumed bytes to the front; grow (for a large file, or a
                // record larger than the buffer).
                self.buf.copy_within(self.pos..self.end, 0);
                self.base += self.pos as u64;
                self.end -= self.pos;
                self.pos = 0;
                let size = need.max((self.buf.len() * 2).min(READ_CHUNK));
                if self.buf.len() < size {
                    self.buf.resize(size, 0);
                }
            }
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The next record or damaged region.
    pub(super) fn next(&mut self) -> io::Result<Event<'_>> {
        if !self.fill(HEADER)? {
            return Ok(self.rest_damaged());
        }
        let offset = self.offset();
        let Some(len) = header_len(&self.buf[self.pos..self.pos + HEADER], self.seed) else {
            return self.scan();
        };
        if !self.fill(HEADER + len)? {
            return Ok(self.rest_damaged());
        }
        let frame = self.pos..self.pos + HEADER + len;
        self.pos = frame.end;
        let frame = &self.buf[frame];
        if body_checks(frame) {
            Ok(Event::Record {
                kind: frame[4],
                body: &frame[HEADER..],
            })
        } else {
            Ok(Event::Damaged {
                offset,
                bytes: frame.len() as u64,
                whole: true,
            })
        }
    }

    /// Consumes whatever is left (fewer bytes than the frame they start): `End` if nothing.
    fn rest_damaged(&mut self) -> Event<'static> {
        let bytes = (self.end - self.pos) as u64;
        let offset = self.offset();
        self.pos = self.end;
        if bytes == 0 {
            Event::End
        } else {
            Event::Damaged {
                offset,
                bytes,
                whole: false,
            }
        }
    }

    /// Skips forward byte by byte from a damaged header to the next offset where a whole
    /// valid frame starts (or to the end of the file).
    fn scan(&mut self) -> io::Result<Event<'static>> {
        let offset = self.offset();
        loop {
            self.pos += 1;
            if !self.fill(HEADER)? {
                self.pos = self.end;
                break;
            }
            let Some(len) = header_len(&self.buf[self.pos..self.pos + HEADER], self.seed) else {
                continue;
            };
            // A header that checks is a frame start but for a 2^-32 chance; a body that
            // runs past the end of the file means it was not one after all.
            if self.fill(HEADER + len)? && body_checks(&self.buf[self.pos..self.pos + HEADER + len])
            {
                break;
            }
        }
        Ok(Event::Damaged {
            offset,
            bytes: self.offset() - offset,
            whole: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(records: &[(u8, &[u8])]) -> Vec<u8> {
        let mut buf = Vec::new();
        for (kind, body) in records {
            push(&mut buf, *kind, |b| b.extend_from_slice(body));
        }
        buf
    }

    fn events(bytes: &[u8]) -> Vec<String> {
        let mut reader = Reader::new(bytes, 0, 0);
        let mut out = Vec::new();
        loop {
            match reader.next().unwrap() {
                Event::Record { kind, body } => {
                    out.push(format!("{kind}:{}", String::from_utf8_lossy(body)))
                }
                Event::Damaged {
                    offset,
                    bytes,
                    whole,
                } => out.push(format!(
                    "bad@{offset}+{bytes}{}",
                    if whole { "w" } else { "" }
                )),
                Event::End => return out,
            }
        }
    }

    #[test]
    fn kind_crcs_are_the_crates() {
        for kind in 0..=255u8 {
            assert_eq!(
                KIND_CRC[usize::from(kind)],
                crc32c::crc32c(&[kind]),
                "{kind}"
            );
        }
    }

    #[test]
    fn frame_layout_is_fixed() {
        let buf = frames(&[(7, b"ab")]);
        assert_eq!(&buf[0..5], &[2, 0, 0, 0, 7]);
        assert_eq!(&buf[5..9], &crc32c::crc32c(&[7, b'a', b'b']).to_le_bytes());
        assert_eq!(&buf[9..13], &crc32c::crc32c(&buf[0..9]).to_le_bytes());
        assert_eq!(&buf[13..], b"ab");
    }

    #[test]
    fn reads_records_in_order() {
        let buf = frames(&[(1, b"one"), (2, b""), (3, b"three")]);
        assert_eq!(events(&buf), ["1:one", "2:", "3:three"]);
    }

    #[test]
    fn bad_body_is_skipped_whole() {
        let mut buf = frames(&[(1, b"one"), (2, b"two"), (3, b"three")]);
        buf[16 + HEADER] ^= 0x40;
        assert_eq!(events(&buf), ["1:one", "bad@16+16w", "3:three"]);
    }

    #[test]
    fn bad_length_scans_to_next_frame() {
        let mut buf = frames(&[(1, b"one"), (2, b"two"), (3, b"three")]);
        buf[16] ^= 0x40;
        assert_eq!(events(&buf), ["1:one", "bad@16+16", "3:three"]);
    }

    #[test]
    fn zeros_and_short_tail_are_damaged() {
        let mut buf = frames(&[(1, b"one")]);
        buf.extend_from_slice(&[0; 40]);
        buf.extend_from_slice(&frames(&[(2, b"two")]));
        buf.extend_from_slice(&frames(&[(3, b"three")])[..10]);
        assert_eq!(events(&buf), ["1:one", "bad@16+40", "2:two", "bad@72+10"]);
    }

    fn seeded_events(bytes: &[u8], seed: u32) -> Vec<String> {
        let mut reader = Reader::new(bytes, 0, seed);
        let mut out = Vec::new();
        loop {
            match reader.next().unwrap() {
                Event::Record { kind, .. } => out.push(format!("{kind}")),
                Event::Damaged { offset, bytes, .. } => out.push(format!("bad@{offset}+{bytes}")),
                Event::End => return out,
            }
        }
    }

    #[test]
    fn all_zero_region_checks_under_no_seed() {
        // A zero header may pass its CRC under one seed, but then its body CRC (that of
        // kind 0, empty) is not zero.
        assert_ne!(KIND_CRC[0], 0);
        let seed = crc32c::crc32c(&[0; 9]);
        let events = seeded_events(&[0; 40], seed);
        assert!(events.iter().all(|e| e.starts_with("bad@")), "{events:?}");
    }

    #[test]
    fn a_reused_segments_earlier_records_never_check() {
        // A life salted 7, written over from the start by a life salted 9 with shorter
        // records: the reader of the new life finds its own, then only damage to the end.
        let mut old = frames(&[(1, b"old one"), (2, b"old two"), (3, b"old three")]);
        stamp(&mut old, 7);
        assert_eq!(seeded_events(&old, 7), ["1", "2", "3"]);
        let mut new = frames(&[(4, b"new")]);
        stamp(&mut new, 9);
        let mut file = old.clone();
        file[..new.len()].copy_from_slice(&new);
        assert_eq!(seeded_events(&file, 9), ["4", "bad@16+46"]);
        // Nor does a version 1 (unseeded) file's record.
        let unseeded = frames(&[(5, b"v1")]);
        assert_eq!(seeded_events(&unseeded, 9), ["bad@0+15"]);
        assert_eq!(seeded_events(&unseeded, 0), ["5"]);
    }

    #[test]
    fn record_larger_than_the_buffer_is_read() {
        let big = vec![b'x'; READ_CHUNK * 2 + 5];
        let buf = frames(&[(1, b"a"), (9, &big), (2, b"b")]);
        let mut reader = Reader::new(&buf[..], 0, 0);
        assert_eq!(
            reader.next().unwrap(),
            Event::Record {
                kind: 1,
                body: b"a"
            }
        );
        assert_eq!(
            reader.next().unwrap(),
            Event::Record {
                kind: 9,
                body: &big[..]
            }
        );
        assert_eq!(
            reader.next().unwrap(),
            Event::Record {
                kind: 2,
                body: b"b"
            }
        );
        assert_eq!(reader.next().unwrap(), Event::End);
    }
}
