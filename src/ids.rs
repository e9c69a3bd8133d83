//! The keys everything else refers to: connections, sessions, and the loop's clock. A leaf
//! module, so the rest can depend on it without depending on each other.

use std::time::Duration;

/// A connection: its slot in `net::conn::Conns` (also its mio token) and the generation that slot had
/// when it was accepted, so an id kept after its connection closed (a close request, a held
/// publisher) cannot reach a new connection that reuses the slot. Stored as two `u32`s
/// (connections are bounded by file descriptors) to keep sessions small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// The id of slot `index` in `generation`.
    pub fn new(index: usize, generation: u32) -> ConnId {
        ConnId {
            index: index as u32,
            generation,
        }
    }

    /// The slot, which is also the connection's mio token.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// Index of a session in the broker's session slab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u32);

/// Milliseconds since the broker started, wrapping every 49 days: enough to measure
/// timeouts of at most 1.5 × 65535 s, at a quarter of an `Instant`'s size per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Millis(pub u32);

impl Millis {
    /// The time from `earlier` to `self` (correct across a wrap, for spans under 49 days).
    pub fn since(self, earlier: Millis) -> Duration {
        Duration::from_millis(u64::from(self.0.wrapping_sub(earlier.0)))
    }
}
