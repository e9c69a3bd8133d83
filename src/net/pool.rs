//! Recycled I/O buffers, so that an idle connection holds none.
//!
//! A connection takes a buffer when bytes arrive or must be sent and gives it back as soon
//! as it is empty again. The pool keeps at most `max_free` buffers; more are freed, and a
//! buffer that grew past `keep_capacity` (one large packet) is freed rather than kept.
//! Receive buffers come back at full length (`give_rx`) so reusing one costs no zeroing;
//! send buffers come back empty (`give`). After a burst (a connection storm), `trim` frees
//! what the burst left: the buffers nobody took since the previous `trim`.

/// Free lists of byte buffers: receive buffers (kept at full, initialised length) and send
/// buffers (kept empty), so neither kind pays to be reshaped when reused.
#[derive(Debug)]
pub struct Pool {
    rx_free: Vec<Box<[u8]>>,
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
            tx_free: Vec::new(),
            max_free,
            buffer_size,
            keep_capacity: buffer_size * 4,
            rx_idle: 0,
            tx_idle: 0,
        }
    }

    /// A receive buffer: at least `buffer_size` initialised bytes (stale contents).
    pub fn take_rx(&mut self) -> Box<[u8]> {
        let buf = self.rx_free.pop();
        self.rx_idle = self.rx_idle.min(self.rx_free.len());
        buf.unwrap_or_else(|| vec![0; self.buffer_size].into_boxed_slice())
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
        (rx + tx) * self.buffer_size
    }

    /// Returns a receive buffer at its full length.
    pub fn give_rx(&mut self, buf: Box<[u8]>) {
        if self.keeps(buf.len()) && self.rx_free.len() < self.max_free {
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
        self.rx_free.len() + self.tx_free.len()
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
    fn receive_buffers_keep_their_length() {
        let mut pool = Pool::new(16, 4);
        let fresh = pool.take_rx();
        assert_eq!(fresh.len(), 16);
        pool.give_rx(vec![7; 32].into_boxed_slice());
        assert_eq!(&*pool.take_rx(), &[7; 32][..], "no zeroing on reuse");
    }
}
