//! Acknowledgements held until the records they confirm are durable (`persistence_sync
//! fsync`): PUBACK and PUBREC for a QoS 1/2 PUBLISH, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
//!
//! A handler that would append an acknowledgement to a connection's output appends it here
//! instead, under the batch it waits for (`Journal::hold`). Batches become durable in order,
//! so the held frames are a queue: once a batch is durable, every frame held for it or an
//! earlier one is copied to its connection's output, in the order it was held. Frames of one
//! batch share one buffer, and the buffers are reused: holding allocates nothing in steady
//! state. A connection that closes meanwhile simply never gets its frames.

use std::collections::VecDeque;
use std::ops::Range;

use crate::ids::ConnId;
use crate::net::conn::Conns;
use crate::net::pool::Pool;

/// Emptied batch buffers kept for reuse (usually one batch is held and one syncing).
const SPARE: usize = 4;

/// The first byte of a PUBACK frame: held PUBACKs are counted per connection
/// (`Conn::held_pubacks`), as QoS 1 PUBLISHes of the peer not yet acknowledged.
pub const PUBACK_HEADER: u8 = 0x40;

/// The frames held for one batch.
#[derive(Debug, Default)]
struct Held {
    batch: u64,
    bytes: Vec<u8>,
    frames: Vec<(ConnId, Range<u32>)>,
}

/// Every held acknowledgement, oldest batch first.
#[derive(Debug, Default)]
pub struct HeldAcks {
    queue: VecDeque<Held>,
    /// Emptied batches, kept for their buffers.
    spare: Vec<Held>,
    /// Where the frame being written for a connection starts (see `start`).
    open: Option<(ConnId, u32)>,
    /// Bytes held, over every batch.
    bytes: usize,
}

impl HeldAcks {
    /// The buffer to append one frame for connection `conn` to, held until `batch` is
    /// durable; call `end` after appending.
    pub fn start(&mut self, conn: ConnId, batch: u64) -> &mut Vec<u8> {
        if self.queue.back().is_none_or(|h| h.batch != batch) {
            let mut held = self.spare.pop().unwrap_or_default();
            held.batch = batch;
            self.queue.push_back(held);
        }
        let held = self.queue.back_mut().expect("a batch was just ensured");
        self.open = Some((conn, held.bytes.len() as u32));
        &mut held.bytes
    }

    /// Ends the frame begun with `start`.
    pub fn end(&mut self) {
        if let (Some((conn, from)), Some(held)) = (self.open.take(), self.queue.back_mut()) {
            let to = held.bytes.len() as u32;
            if to > from {
                held.frames.push((conn, from..to));
                self.bytes += (to - from) as usize;
            }
        }
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes of acknowledgements held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Moves every frame held for a batch up to `durable` into its connection's output, and
    /// calls `dirty` for each connection given something.
    pub fn release(
        &mut self,
        durable: u64,
        conns: &mut Conns,
        pool: &mut Pool,
        mut dirty: impl FnMut(ConnId),
    ) {
        while self.queue.front().is_some_and(|h| h.batch <= durable) {
            let mut held = self.queue.pop_front().expect("front was just seen");
            self.bytes -= held.bytes.len();
            for (conn, range) in held.frames.drain(..) {
                let Some(c) = conns.get_mut(conn) else {
                    continue;
                };
                let frame = &held.bytes[range.start as usize..range.end as usize];
                if frame.first() == Some(&PUBACK_HEADER) {
                    c.held_pubacks = c.held_pubacks.saturating_sub(1);
                }
                c.tx.frames(pool).extend_from_slice(frame);
                dirty(conn);
            }
            held.bytes.clear();
            if self.spare.len() < SPARE {
                self.spare.push(held);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_bytes_are_counted_until_their_batch_is_released() {
        let mut held = HeldAcks::default();
        let (a, b) = (ConnId::new(0, 0), ConnId::new(1, 1));
        held.start(a, 1).extend_from_slice(&[0x40, 2, 0, 1]);
        held.end();
        held.start(b, 2).extend_from_slice(&[0x40, 2, 0, 2]);
        held.end();
        assert_eq!(held.bytes(), 8);
        let (mut conns, mut pool) = (Conns::with_capacity(1), Pool::new(64, 1));
        let mut given = Vec::new();
        held.release(1, &mut conns, &mut pool, |id| given.push(id));
        assert_eq!(held.bytes(), 4, "batch 2 is not durable yet");
        held.release(2, &mut conns, &mut pool, |id| given.push(id));
        assert_eq!(held.bytes(), 0);
        assert!(held.is_empty());
        assert!(
            given.is_empty(),
            "the connections are gone: nothing is written"
        );
    }
}
