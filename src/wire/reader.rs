//! The read cursor over a packet body: every field read either returns the field or
//! `Err(Error::Malformed(field))` naming what was truncated or ill-formed. Nothing here
//! panics or allocates; everything returned borrows from the buffer being decoded.

use super::Error;

/// A cursor over the unread part of a borrowed byte slice.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// True once every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread bytes; the cursor is left empty.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// `Err(Malformed(field))` if any byte is left unread: the remaining length claimed more
    /// than the packet's fields hold.
    pub(crate) fn finish(&self, field: &'static str) -> Result<(), Error> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::Malformed(field))
        }
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], Error> {
        if n > self.buf.len() {
            return Err(Error::Malformed(field));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], Error> {
        let (head, tail) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or(Error::Malformed(field))?;
        self.buf = tail;
        Ok(*head)
    }

    /// A one-byte integer.
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, Error> {
        let [byte] = self.array::<1>(field)?;
        Ok(byte)
    }

    /// A two-byte big-endian integer.
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// A four-byte big-endian integer.
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// A variable byte integer of at most four bytes.
    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u32, Error> {
        let (value, n) = varint_prefix(self.buf, field)?.ok_or(Error::Malformed(field))?;
        self.take(n, field)?;
        Ok(value)
    }

    /// Binary data: a two-byte length, then that many bytes.
    pub(crate) fn bin(&mut self, field: &'static str) -> Result<&'a [u8], Error> {
        let len = self.u16(field)?;
        self.take(usize::from(len), field)
    }

    /// A UTF-8 encoded string: a two-byte length, then well-formed UTF-8 without U+0000.
    pub(crate) fn str(&mut self, field: &'static str) -> Result<&'a str, Error> {
        let bytes = self.bin(field)?;
        // [MQTT-1.5.3-2] (v5 [MQTT-1.5.4-2]): no null character.
        if bytes.contains(&0) {
            return Err(Error::Malformed(field));
        }
        // [MQTT-1.5.3-1] (v5 [MQTT-1.5.4-1]): well-formed UTF-8, no surrogates.
        std::str::from_utf8(bytes).map_err(|_| Error::Malformed(field))
    }

    /// A UTF-8 string pair (user property key and value).
    pub(crate) fn str_pair(&mut self, field: &'static str) -> Result<(&'a str, &'a str), Error> {
        Ok((self.str(field)?, self.str(field)?))
    }
}

/// Decodes a variable byte integer at the start of `buf`: `Ok(Some((value, bytes_used)))`,
/// `Ok(None)` if `buf` ends before the last byte, `Err(Malformed(field))` if a fifth byte
/// would be needed.
pub(crate) fn varint_prefix(
    buf: &[u8],
    field: &'static str,
) -> Result<Option<(u32, usize)>, Error> {
    let mut value = 0u32;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        Err(Error::Malformed(field))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_boundaries() {
        assert_eq!(varint_prefix(&[0x00], "v"), Ok(Some((0, 1))));
        assert_eq!(varint_prefix(&[0x7f], "v"), Ok(Some((127, 1))));
        assert_eq!(varint_prefix(&[0x80, 0x01], "v"), Ok(Some((128, 2))));
        assert_eq!(varint_prefix(&[0xff, 0x7f], "v"), Ok(Some((16_383, 2))));
        assert_eq!(
            varint_prefix(&[0xff, 0xff, 0xff, 0x7f], "v"),
            Ok(Some((268_435_455, 4)))
        );
        assert_eq!(varint_prefix(&[0xff, 0xff, 0xff], "v"), Ok(None));
        assert_eq!(
            varint_prefix(&[0xff, 0xff, 0xff, 0xff], "v"),
            Err(Error::Malformed("v"))
        );
    }

    #[test]
    fn truncated_fields_are_malformed() {
        assert_eq!(Reader::new(&[0x01]).u16("id"), Err(Error::Malformed("id")));
        assert_eq!(Reader::new(&[0, 0, 1]).u32("n"), Err(Error::Malformed("n")));
        assert_eq!(
            Reader::new(&[0, 3, b'a']).str("s"),
            Err(Error::Malformed("s"))
        );
        assert_eq!(Reader::new(&[0x80]).varint("v"), Err(Error::Malformed("v")));
    }

    #[test]
    fn strings_reject_bad_utf8_and_null() {
        assert_eq!(
            Reader::new(&[0, 1, 0xff]).str("s"),
            Err(Error::Malformed("s"))
        );
        // An encoded surrogate (U+D800) is not well-formed UTF-8.
        assert_eq!(
            Reader::new(&[0, 3, 0xed, 0xa0, 0x80]).str("s"),
            Err(Error::Malformed("s"))
        );
        assert_eq!(
            Reader::new(&[0, 2, b'a', 0]).str("s"),
            Err(Error::Malformed("s"))
        );
        let mut r = Reader::new(&[0, 2, 0xc3, 0xa9, 0, 0]);
        assert_eq!(r.str("s"), Ok("é"));
        assert_eq!(r.str("s"), Ok(""));
        assert!(r.is_empty());
    }
}
