//! `Payload`: a message's application bytes, either its own or a range of the receive buffer
//! the PUBLISH arrived in.
//!
//! A large payload (at least [`SHARE_MIN`]) that arrived whole in a receive buffer is not
//! copied out of it: the message keeps the buffer ([`RxBytes`], reference counted) and the
//! range, the buffer is not read into again while a message holds it (the connection moves
//! its unparsed tail to another), and the pool reuses it once the last such message is gone
//! (`net::pool`). Fan-in QoS 1 16 -> 1 with 16 KiB payloads gained 4-29% from it (glibc
//! build) and 9-13% (static), less than the copy's share of the profile: the kernel's copy
//! into the subscriber's socket now reads the payload from the receive buffer, no longer in
//! the cache by the end of the turn (README, "Shared receive buffers").
//!
//! What a shared buffer can pin is bounded: a payload is shared only while the pool holds
//! fewer than `net::pool::MAX_RETIRED` (64) buffers, free or held by messages, and it keeps
//! counting a held one until its last message lets it go; so about 64 receive buffers
//! (4 MiB) at most are kept alive by messages beyond their own bytes. The retained store
//! keeps a copy of its own (`Message::unshared`), since it keeps messages indefinitely.

use std::fmt;
use std::ops::Deref;
use std::rc::Rc;

/// A receive buffer that messages may share: the bytes of a connection's `RxBuf`.
pub type RxBytes = Rc<Box<[u8]>>;

/// Payloads from this size up are shared with their receive buffer rather than copied: the
/// size from which they are also written with `writev` straight from the message, so a
/// shared payload is never copied by the broker at all.
pub const SHARE_MIN: usize = crate::net::buffer::SPLICE_MIN;

/// A message's payload bytes.
#[derive(Clone)]
pub enum Payload {
    /// Bytes of its own.
    Owned(Box<[u8]>),
    /// `len` bytes from `start` of a receive buffer.
    Shared {
        /// The buffer.
        bytes: RxBytes,
        /// Where the payload starts in it.
        start: u32,
        /// How long it is.
        len: u32,
    },
}

impl Payload {
    /// The payload `range` of `bytes`, shared; `None` if the range is not within it.
    pub fn shared(bytes: &RxBytes, start: usize, len: usize) -> Option<Payload> {
        let end = start.checked_add(len)?;
        let (start, len) = (u32::try_from(start).ok()?, u32::try_from(len).ok()?);
        (end <= bytes.len()).then(|| Payload::Shared {
            bytes: Rc::clone(bytes),
            start,
            len,
        })
    }

    /// Its length in bytes, without forming the slice (asked on every delivery).
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Payload::Owned(bytes) => bytes.len(),
            Payload::Shared { len, .. } => *len as usize,
        }
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the bytes are a range of a receive buffer.
    pub fn is_shared(&self) -> bool {
        matches!(self, Payload::Shared { .. })
    }
}

impl Deref for Payload {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Payload::Owned(bytes) => bytes,
            // Within the buffer by construction (`shared`); `get` keeps a panic path out of
            // every caller.
            Payload::Shared { bytes, start, len } => bytes
                .get(*start as usize..*start as usize + *len as usize)
                .unwrap_or_default(),
        }
    }
}

impl Default for Payload {
    fn default() -> Payload {
        Payload::Owned(Box::default())
    }
}

impl From<&[u8]> for Payload {
    fn from(bytes: &[u8]) -> Payload {
        Payload::Owned(bytes.into())
    }
}

impl From<Box<[u8]>> for Payload {
    fn from(bytes: Box<[u8]>) -> Payload {
        Payload::Owned(bytes)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Payload {
        Payload::Owned(bytes.into_boxed_slice())
    }
}

impl PartialEq for Payload {
    /// Equal bytes, wherever they are kept.
    fn eq(&self, other: &Payload) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_payload_is_its_range_of_the_buffer() {
        let bytes: RxBytes = Rc::new(b"headerPAYLOADtail".to_vec().into_boxed_slice());
        let shared = Payload::shared(&bytes, 6, 7).expect("within the buffer");
        assert_eq!(&*shared, b"PAYLOAD");
        assert!(shared.is_shared());
        assert_eq!(
            shared,
            Payload::from(&b"PAYLOAD"[..]),
            "equal to the same bytes owned"
        );
        assert_eq!(Rc::strong_count(&bytes), 2, "the message holds the buffer");
        drop(shared);
        assert_eq!(Rc::strong_count(&bytes), 1, "and lets it go");
        assert!(Payload::shared(&bytes, 10, 8).is_none(), "past the end");
        assert!(Payload::shared(&bytes, usize::MAX, 2).is_none(), "overflow");
    }
}
