//! Recycled I/O buffers, so that an idle connection holds none.
//!
//! A connection takes a buffer when bytes arrive or must be sent and gives it back as soon
//! as it is empty again. The pool keeps at most `max_free` buffers; more are freed, and a
//! buffer that grew past `keep_capacity` (one large packet) is freed rather than kept.
//! Receive buffers come back at full length (`give_rx`) so reusing one costs no zeroing;
//! send buffers come back empty (`give`). After a burst (a connection storm), `trim` frees
//! what the burst left: the buffers nobody took since the previous `trim`.
//!
//! Receive buffers grown for large packets ([`LARGE_RX`]) are kept apart, in `large`, with
//! those that messages still hold (`core::payload`: a large payload is not copied out of
//! the buffer it arrived in). A buffer in `large` is reused once no message holds it, and
//! at most [`MAX_RETIRED`] are kept, which bounds what messages can pin: while `large` is
//! full of buffers messages hold, payloads are copied instead (`may_share`).

use std::collections::VecDeque;
use std::rc::Rc;

use crate::core::payload::RxBytes;

/// The size a receive buffer grows to when a frame larger than it is arriving: room for
/// several large frames per `read`, where doubling stopped at the first size one frame fits
/// in (32 KiB for 16 KiB payloads, so each read took about two frames, and the partial one
/// behind them was moved to the front before the next). Measured on fan-in QoS 1 16 -> 1
/// with 16 KiB payloads, msg per broker CPU-second against doubling, medians of five
/// interleaved rounds: 64 KiB 1.09 and 1.09 (two sets), 128 KiB 1.07-1.09, 256 KiB 0.99.
/// Connections that send small packets never grow their buffer, so they are not affected.
/// What a peer can make the broker hold: a buffer grows only once it is full of a frame not
/// yet complete, so a peer that sends the first 8 KiB of a frame and stops pins 64 KiB (it
/// was 16 KiB: the first doubling), and beyond that never more than twice what it actually
/// sent, up to its maximum packet size; the memory budget (`memory_limit`) counts it like
/// any other allocation.
pub const LARGE_RX: usize = 64 * 1024;

/// Most `LARGE_RX` buffers kept in `large`, free or held by messages (4 MiB); beyond it,
/// payloads are copied. A buffer is shared while it is still a connection's and counted when
/// it comes back, so each connection reading large packets can pass the bound by the one
/// it was reading into when the bound was reached (and holds that much anyway).
pub const MAX_RETIRED: usize = 64;

/// Buffers of `large` looked at for a free one before a new one is allocated: messages are
/// mostly let go in the order they came, so the free ones gather at the front.
const LOOK_AHEAD: usize = 4;

/// Free lists of byte buffers: receive buffers (kept at full, initialised length) and send
/// buffers (kept empty), so neither kind pays to be reshaped when reused.
#[derive(Debug)]
pub struct Pool {
    rx_free: Vec<RxBytes>,
    /// `LARGE_RX` buffers no connection is reading into: free, or held by messages.
    large: VecDeque<RxBytes>,
    /// Whether a `LARGE_RX` buffer was taken since the last `trim`.
    large_taken: bool,
    tx_free: Vec<Vec<u8>>,
    max_free: usize,
    buffer_size: usize,
    keep_capacity: usize,
    /// The fewest receive buffers free at any moment since the last `trim`: that many went
    /// unused all along.
    rx_idle: usize,
    /// The same for send buffers.
    tx_idle: usize,
}

impl Pool {
    /// A pool handing out buffers of `buffer_size` bytes and keeping at most `max_free` of
    /// each kind.
    pub fn new(buffer_size: usize, max_free: usize) -> Pool {
        Pool {
            rx_free: Vec::new(),
            large: VecDeque::new(),
            large_taken: false,
            tx_free: Vec::new(),
            max_free,
            buffer_size,
            keep_capacity: buffer_size * 4,
            rx_idle: 0,
            tx_idle: 0,
        }
    }

    /// A receive buffer that no message holds: at least `buffer_size` initialised bytes
    /// (stale contents).
    pub fn take_rx(&mut self) -> RxBytes {
        let buf = self.rx_free.pop();
        self.rx_idle = self.rx_idle.min(self.rx_free.len());
        buf.unwrap_or_else(|| Rc::new(vec![0; self.buffer_size].into_boxed_slice()))
    }

    /// A receive buffer of `size` initialised bytes that no message holds: for `LARGE_RX`,
    /// one of `large` that messages have let go (stale contents) if there is one; otherwise
    /// a new one.
    pub fn take_rx_of(&mut self, size: usize) -> RxBytes {
        if size == LARGE_RX {
            self.take_rx_large()
        } else {
            Rc::new(vec![0; size].into_boxed_slice())
        }
    }

    /// A `LARGE_RX` buffer no message holds: one of `large`, or a new one.
    fn take_rx_large(&mut self) -> RxBytes {
        self.large_taken = true;
        for _ in 0..LOOK_AHEAD.min(self.large.len()) {
            match self.large.pop_front() {
                Some(buf) if Rc::strong_count(&buf) == 1 => return buf,
                Some(held) => self.large.push_back(held),
                None => break,
            }
        }
        Rc::new(vec![0; LARGE_RX].into_boxed_slice())
    }

    /// Whether a message may hold on to a `LARGE_RX` buffer: `large` has room for it, once
    /// a free buffer at its front is let go if it is full.
    pub fn may_share(&mut self) -> bool {
        if self.large.len() >= MAX_RETIRED
            && self.large.front().is_some_and(|b| Rc::strong_count(b) == 1)
        {
            self.large.pop_front();
        }
        self.large.len() < MAX_RETIRED
    }

    /// An empty send buffer with at least `buffer_size` bytes of capacity.
    pub fn take_tx(&mut self) -> Vec<u8> {
        let buf = self.tx_free.pop();
        self.tx_idle = self.tx_idle.min(self.tx_free.len());
        buf.unwrap_or_else(|| Vec::with_capacity(self.buffer_size))
    }

    /// Frees the buffers that went unused since the last call (the oldest ones); returns
    /// the bytes freed. Called once a second, it shrinks the pool to what the traffic uses.
    pub fn trim(&mut self) -> usize {
        let (rx, tx) = (self.rx_idle, self.tx_idle);
        self.rx_free.drain(..rx);
        self.tx_free.drain(..tx);
        self.rx_idle = self.rx_free.len();
        self.tx_idle = self.tx_free.len();
        // Free large buffers go once a whole interval took none; those messages still hold
        // stay counted against MAX_RETIRED until their last message lets them go.
        let large = self.large.len();
        if !std::mem::take(&mut self.large_taken) {
            self.large.retain(|b| Rc::strong_count(b) > 1);
        }
        (rx + tx) * self.buffer_size + (large - self.large.len()) * LARGE_RX
    }

    /// Returns a receive buffer at its full length: a `LARGE_RX` one to `large` (messages
    /// may still hold it), another kept for reuse if no message holds it and it is of a
    /// size worth keeping.
    pub fn give_rx(&mut self, buf: RxBytes) {
        if buf.len() == LARGE_RX {
            // One messages hold is always counted (it was shared while there was room; a
            // turn can share a few before they come back), a free one if there is room.
            if Rc::strong_count(&buf) > 1 || self.may_share() {
                self.large.push_back(buf);
            }
        } else if Rc::strong_count(&buf) == 1
            && self.keeps(buf.len())
            && self.rx_free.len() < self.max_free
        {
            self.rx_free.push(buf);
        }
    }

    /// Returns a send buffer; its contents are discarded.
    pub fn give_tx(&mut self, mut buf: Vec<u8>) {
        if self.keeps(buf.capacity()) && self.tx_free.len() < self.max_free {
            buf.clear();
            self.tx_free.push(buf);
        }
    }

    /// Whether a buffer of this capacity is worth keeping: not one grown for a large packet.
    fn keeps(&self, capacity: usize) -> bool {
        capacity >= self.buffer_size && capacity <= self.keep_capacity
    }

    /// Buffers currently waiting for reuse.
    #[cfg(test)]
    pub fn free_count(&self) -> usize {
        self.rx_free.len() + self.large.len() + self.tx_free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_frees_what_went_unused_since_the_last_trim() {
        let mut pool = Pool::new(16, 8);
        let bufs: Vec<_> = (0..6).map(|_| pool.take_rx()).collect();
        for buf in bufs {
            pool.give_rx(buf);
        }
        // Six came back after the last trim: none has been idle a whole interval yet.
        assert_eq!((pool.trim(), pool.free_count()), (0, 6));
        // Two are taken and given back in this interval: four stayed idle throughout.
        let (a, b) = (pool.take_rx(), pool.take_rx());
        pool.give_rx(a);
        pool.give_rx(b);
        assert_eq!((pool.trim(), pool.free_count()), (4 * 16, 2));
        assert_eq!((pool.trim(), pool.free_count()), (2 * 16, 0));
    }

    #[test]
    fn reuses_and_bounds() {
        let mut pool = Pool::new(16, 1);
        let a = pool.take_tx();
        let b = pool.take_tx();
        assert!(a.capacity() >= 16);
        pool.give_tx(a);
        pool.give_tx(b);
        assert_eq!(pool.free_count(), 1, "at most max_free kept");
        pool.give_tx(Vec::with_capacity(1024));
        assert_eq!(pool.free_count(), 1, "an overgrown buffer is freed");
        let mut again = pool.take_tx();
        assert!(again.is_empty(), "send buffers come back empty");
        again.extend_from_slice(b"x");
        pool.give_tx(again);
        assert!(pool.take_tx().is_empty());
    }

    #[test]
    fn large_buffers_are_reused_once_no_message_holds_them() {
        let mut pool = Pool::new(16, 4);
        let mut first = pool.take_rx_large();
        assert_eq!(first.len(), LARGE_RX);
        Rc::make_mut(&mut first)[0] = 7;
        let held = Rc::clone(&first);
        pool.give_rx(first);
        assert_eq!(
            pool.take_rx_large()[0],
            0,
            "a new one while a message holds the first"
        );
        drop(held);
        assert_eq!(
            pool.take_rx_large()[0],
            7,
            "the first, not zeroed, once let go"
        );
    }

    #[test]
    fn messages_hold_at_most_max_retired_large_buffers() {
        let mut pool = Pool::new(16, 4);
        let held: Vec<_> = (0..MAX_RETIRED)
            .map(|_| {
                let buf = pool.take_rx_large();
                let message = Rc::clone(&buf);
                pool.give_rx(buf);
                message
            })
            .collect();
        assert!(!pool.may_share(), "full of buffers messages hold");
        assert_eq!(pool.trim(), 0, "taken in this interval");
        assert_eq!(pool.trim(), 0, "held ones stay counted even when idle");
        assert!(!pool.may_share());
        drop(held);
        assert!(pool.may_share(), "room once they are let go");
        assert_eq!(
            pool.trim(),
            (MAX_RETIRED - 1) * LARGE_RX,
            "then freed when idle"
        );
        assert_eq!(pool.free_count(), 0);
    }

    #[test]
    fn receive_buffers_keep_their_length() {
        let mut pool = Pool::new(16, 4);
        let fresh = pool.take_rx();
        assert_eq!(fresh.len(), 16);
        pool.give_rx(Rc::new(vec![7; 32].into_boxed_slice()));
        assert_eq!(&pool.take_rx()[..], &[7; 32][..], "no zeroing on reuse");
    }
}
