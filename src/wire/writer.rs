//! Append-only field writers for encoding: every function pushes one field onto a
//! `Vec<u8>`. Lengths are computed up front by the packet modules (`encoded_len`), so an
//! encoder writes exactly the bytes it promised.

/// Largest value a variable byte integer can carry (four bytes).
const VARINT_MAX: usize = 268_435_455;

/// Bytes needed to encode `n` as a variable byte integer.
pub(crate) fn varint_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends `n` as a variable byte integer; callers keep `n` within four bytes.
pub(crate) fn varint(out: &mut Vec<u8>, n: usize) {
    debug_assert!(
        n <= VARINT_MAX,
        "variable byte integer {n} exceeds four bytes"
    );
    let mut n = n;
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends a two-byte big-endian integer.
pub(crate) fn u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a four-byte big-endian integer.
pub(crate) fn u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends binary data with its two-byte length; callers keep it within 65,535 bytes
/// (everything decoded already is).
pub(crate) fn bin(out: &mut Vec<u8>, b: &[u8]) {
    debug_assert!(
        b.len() <= usize::from(u16::MAX),
        "binary field exceeds 65,535 bytes"
    );
    u16(out, b.len() as u16);
    out.extend_from_slice(b);
}

/// Appends a UTF-8 string with its two-byte length.
pub(crate) fn str(out: &mut Vec<u8>, s: &str) {
    bin(out, s.as_bytes());
}

/// Appends a fixed header: the first byte and the remaining length.
pub(crate) fn header(out: &mut Vec<u8>, byte1: u8, body_len: usize) {
    out.push(byte1);
    varint(out, body_len);
}

/// Length of a whole frame whose body is `body_len` bytes.
pub(crate) fn frame_len(body_len: usize) -> usize {
    1 + varint_len(body_len) + body_len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::reader::Reader;

    #[test]
    fn varint_round_trips_at_every_width() {
        for n in [
            0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, VARINT_MAX,
        ] {
            let mut out = Vec::new();
            varint(&mut out, n);
            assert_eq!(out.len(), varint_len(n), "{n}");
            assert_eq!(Reader::new(&out).varint("v"), Ok(n as u32));
        }
    }

    #[test]
    fn strings_carry_their_length() {
        let mut out = Vec::new();
        str(&mut out, "ab");
        bin(&mut out, &[]);
        assert_eq!(out, [0, 2, b'a', b'b', 0, 0]);
        assert_eq!(frame_len(2), 4);
    }
}
