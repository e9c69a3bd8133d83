//! Recycled I/O buffers, so that an idle connection holds none.
//!
//! A connection takes a buffer when bytes arrive or must be sent and gives it back as soon
//! as it is empty again. The pool keeps at most `max_free` buffers; more are freed, and a
//! buffer that grew past `keep_capacity` (one large packet) is freed rather than kept.

/// A free list of byte buffers.
#[derive(Debug)]
pub struct Pool {
    free: Vec<Vec<u8>>,
    max_free: usize,
    buffer_size: usize,
    keep_capacity: usize,
}

impl Pool {
    /// A pool handing out buffers of `buffer_size` bytes and keeping at most `max_free`.
    pub fn new(buffer_size: usize, max_free: usize) -> Pool {
        Pool {
            free: Vec::new(),
            max_free,
            buffer_size,
            keep_capacity: buffer_size * 4,
        }
    }

    /// The size of a fresh buffer.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// An empty buffer with at least `buffer_size` bytes of capacity.
    pub fn take(&mut self) -> Vec<u8> {
        self.free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.buffer_size))
    }

    /// Returns a buffer; its contents are discarded.
    pub fn give(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() >= self.buffer_size
            && buf.capacity() <= self.keep_capacity
            && self.free.len() < self.max_free
        {
            buf.clear();
            self.free.push(buf);
        }
    }

    /// Buffers currently waiting for reuse.
    #[cfg(test)]
    pub fn free_count(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_and_bounds() {
        let mut pool = Pool::new(16, 1);
        let a = pool.take();
        let b = pool.take();
        assert!(a.capacity() >= 16);
        pool.give(a);
        pool.give(b);
        assert_eq!(pool.free_count(), 1, "at most max_free kept");
        pool.give(Vec::with_capacity(1024));
        assert_eq!(pool.free_count(), 1);
        let again = pool.take();
        assert!(again.is_empty());
        assert_eq!(pool.free_count(), 0);
    }
}
