//! MQTT 5 User Properties (0x26) as a borrowed block: kept encoded, as they arrived, and
//! walked only when someone reads them, so forwarding them costs one copy of the block.

use super::property::{USER_PROPERTY, Value, lookup};
use super::reader::Reader;
use super::writer;

/// User properties borrowed as a block of encoded properties; only id 0x26 entries are
/// yielded. Two blocks are equal when they yield the same pairs in the same order.
#[derive(Clone, Copy, Default)]
pub struct UserProperties<'a> {
    raw: &'a [u8],
}

impl<'a> UserProperties<'a> {
    /// Wraps an already-validated encoded property block (e.g. one `encode_entries` wrote,
    /// or a decoded packet's whole property block). Entries other than 0x26 are skipped.
    pub fn new(block: &'a [u8]) -> Self {
        UserProperties { raw: block }
    }

    /// The (key, value) pairs in the order they were sent.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let mut r = Reader::new(self.raw);
        // The block was validated when decoded; should it not be, iteration just stops.
        std::iter::from_fn(move || {
            while !r.is_empty() {
                let def = lookup(r.varint("property id").ok()?)?;
                if let Value::Pair(key, value) = Value::read(&mut r, def).ok()? {
                    return Some((key, value));
                }
            }
            None
        })
    }

    /// True when there is no user property.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Bytes of the 0x26 entries only (id + key + value each).
    pub fn encoded_len(&self) -> usize {
        self.iter().map(|(k, v)| 5 + k.len() + v.len()).sum()
    }

    /// Appends only the 0x26 entries (so a broker can store them as one owned block and
    /// later wrap them with `new`).
    pub fn encode_entries(&self, out: &mut Vec<u8>) {
        for (key, value) in self.iter() {
            out.push(USER_PROPERTY);
            writer::str(out, key);
            writer::str(out, value);
        }
    }
}

impl PartialEq for UserProperties<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for UserProperties<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
