//! Per-connection byte buffers: `RxBuf` for bytes read, `TxBuf` for frames to write.
//!
//! Both hold no memory while empty: they take a buffer from the `Pool` when needed and give
//! it back once drained. `RxBuf` keeps the unparsed bytes contiguous (compacting when the
//! front has been consumed) so the codec always sees one slice; it grows only up to the
//! connection's maximum packet size, and when it is full nothing more is read: TCP
//! back-pressure on that peer rather than memory growth. Its buffer is reference counted:
//! messages keep large payloads in it rather than copies (`core::payload`), and a buffer they
//! hold is not written again (the unparsed tail moves to another before the next read).
//! `TxBuf` accumulates every frame for one connection during a loop turn and writes them
//! with as few `write` calls as the socket allows. A large PUBLISH payload need not be
//! copied into it: `Spliced` keeps the shared message instead, and the write gathers the
//! frame bytes and the payloads with one vectored write (`writev`).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::rc::Rc;

use crate::core::message::Message;
use crate::core::payload::RxBytes;
use crate::net::pool::{LARGE_RX, Pool};

/// Payloads at least this large are written from the shared message (a vectored write)
/// rather than copied into each subscriber's output. Measured with pipit-load, broker
/// messages per CPU-second, copying every payload / splicing every payload, two rounds each
/// (fan-in QoS 1 16->1; fan-out QoS 0 1->20): at 1 KiB splicing loses (fan-out 1.43 M / 1.11 M,
/// 1.28 M / 1.08 M); at 4 KiB it is level or behind (fan-in 114 k / 107 k, 116 k / 108 k;
/// fan-out 505 k / 505 k, 517 k / 411 k); from 8 KiB it wins (fan-out 241 k / 272 k,
/// 230 k / 275 k; fan-in 71 k / 74 k, 63 k / 66 k), more so at 16 KiB (fan-out 117 k / 159 k)
/// and 64 KiB (29 k / 42 k). Below that a `memcpy` into the buffer costs less than the
/// slice bookkeeping, the `Rc` kept per frame and the kernel walking more iovec entries.
pub const SPLICE_MIN: usize = 8192;

/// Most slices handed to one `writev`: payloads and the frame bytes between them.
const MAX_SLICES: usize = 64;

/// What one `RxBuf::read_from` call saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes were appended. `drained` when the read returned less than the free space: the
    /// socket had nothing more, and with edge-triggered readiness any later data raises a
    /// new event, so the caller need not spend a syscall to see `WouldBlock`.
    Data {
        /// How many bytes.
        bytes: usize,
        /// Whether the read came back short of the free space.
        drained: bool,
    },
    /// The peer closed its side.
    Eof,
    /// Nothing to read now.
    WouldBlock,
    /// The buffer is at its limit with no complete frame; the caller stops reading.
    Full,
}

/// Received bytes not yet parsed. Invariant: `start <= end <= buf.len()`, and `buf` is never
/// longer than the maximum packet size plus a header (`u32` offsets keep a connection small).
/// Messages may hold the buffer (large payloads are shared, `core::payload`): it is then
/// never written again, and the unparsed tail moves to another before the next read.
#[derive(Debug, Default)]
pub struct RxBuf {
    /// `None` while empty: an idle connection holds no buffer.
    buf: Option<RxBytes>,
    start: u32,
    end: u32,
}

impl RxBuf {
    /// The unparsed bytes.
    pub fn front(&self) -> &[u8] {
        self.buf
            .as_deref()
            .map_or(&[], |b| &b[self.start as usize..self.end as usize])
    }

    /// Whether no unparsed byte is held.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops `n` parsed bytes from the front.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start as usize)
            .saturating_add(n)
            .min(self.end as usize) as u32;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// The buffer, for messages to share their payloads with (`core::payload`): only a
    /// `LARGE_RX` one, the size the pool keeps track of while messages hold it.
    pub fn shareable(&self) -> Option<&RxBytes> {
        self.buf.as_ref().filter(|b| b.len() == LARGE_RX)
    }

    /// Reads once from `io` into free space, taking a buffer from `pool` if none is held and
    /// growing up to `limit` bytes when a frame larger than the buffer is arriving.
    pub fn read_from(
        &mut self,
        io: &mut impl Read,
        pool: &mut Pool,
        limit: usize,
    ) -> io::Result<ReadOutcome> {
        let (start, end) = (self.start as usize, self.end as usize);
        let buf = self.buf.get_or_insert_with(|| pool.take_rx());
        let len = buf.len();
        if Rc::strong_count(buf) > 1 {
            // Messages hold it: the unparsed tail moves to a buffer of the same size.
            self.move_to(len, pool);
        } else if end == len {
            if start > 0 {
                Rc::make_mut(buf).copy_within(start..end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if len < limit {
                self.move_to((len * 2).max(LARGE_RX).min(limit), pool);
            } else {
                return Ok(ReadOutcome::Full);
            }
        }
        let end = self.end as usize;
        // Unique here: taken new, moved to, or not shared.
        let bytes = Rc::make_mut(self.buf.get_or_insert_with(|| pool.take_rx()));
        let space = bytes.len() - end;
        match io.read(&mut bytes[end..]) {
            Ok(0) => Ok(ReadOutcome::Eof),
            Ok(n) => {
                self.end += n as u32;
                Ok(ReadOutcome::Data {
                    bytes: n,
                    drained: n < space,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
            Err(e) => Err(e),
        }
    }

    /// Moves the unparsed bytes to the front of a buffer of `size` from `pool` (one no
    /// message holds), giving the current buffer back.
    fn move_to(&mut self, size: usize, pool: &mut Pool) {
        let mut fresh = pool.take_rx_of(size);
        if let Some(old) = self.buf.take() {
            let unparsed = &old[self.start as usize..self.end as usize];
            Rc::make_mut(&mut fresh)[..unparsed.len()].copy_from_slice(unparsed);
            pool.give_rx(old);
        }
        self.end -= self.start;
        self.start = 0;
        self.buf = Some(fresh);
    }

    /// Bytes the buffer holds room for.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.buf.as_ref().map_or(0, |b| b.len())
    }

    /// Gives the buffer back to `pool` if nothing unparsed is held.
    pub fn release_if_empty(&mut self, pool: &mut Pool) {
        if self.is_empty()
            && let Some(buf) = self.buf.take()
        {
            pool.give_rx(buf);
        }
    }
}

/// One payload written from its shared message: it goes after `buf[..at]`.
#[derive(Debug)]
struct Body {
    at: usize,
    message: Rc<Message>,
    /// Bytes of the payload already written.
    done: usize,
}

/// Large payloads waiting to be written straight from their messages, in output order. Holds
/// no memory until a payload is pushed, and gives it back once they are all written.
#[derive(Debug, Default)]
pub struct Spliced(Option<Box<Bodies>>);

#[derive(Debug, Default)]
struct Bodies {
    queue: VecDeque<Body>,
    /// Unwritten payload bytes.
    bytes: usize,
}

impl Spliced {
    /// Unwritten payload bytes.
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.bytes)
    }

    /// Adds `message`'s payload to the output after the first `at` bytes of the frames.
    pub fn push(&mut self, at: usize, message: Rc<Message>) {
        let bodies = self.0.get_or_insert_with(Box::default);
        bodies.bytes += message.payload.len();
        bodies.queue.push_back(Body {
            at,
            message,
            done: 0,
        });
    }

    fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

/// Frames waiting to be written. Invariant: `buf` holds only unwritten bytes, and every
/// spliced payload's `at` is within `buf`, in order.
#[derive(Debug, Default)]
pub struct TxBuf {
    buf: Vec<u8>,
    spliced: Spliced,
}

impl TxBuf {
    /// Bytes waiting to be written, spliced payloads included.
    pub fn len(&self) -> usize {
        self.buf.len() + self.spliced.bytes()
    }

    /// Whether nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.spliced.is_empty()
    }

    /// The frames buffer and the spliced payloads, to append PUBLISH frames whose large
    /// payloads stay in their messages (`frames_up_to` first takes the buffer).
    pub fn frames_and_spliced(&mut self) -> (&mut Vec<u8>, &mut Spliced) {
        (&mut self.buf, &mut self.spliced)
    }

    /// The buffer to append frames to, taking one from `pool` if none is held.
    pub fn frames(&mut self, pool: &mut Pool) -> &mut Vec<u8> {
        if self.buf.capacity() == 0 {
            self.buf = pool.take_tx();
        }
        &mut self.buf
    }

    /// The buffer to append frames to when up to `limit` bytes may wait. Once a backlog
    /// builds (the client is not keeping up), the buffer is grown to `limit` in one step
    /// rather than by doubling: each doubling frees the smaller buffer, and allocators keep
    /// freed memory mapped, so doubling to the limit would leave the broker's RSS about three
    /// times the limit higher for each backed-up client instead of once.
    pub fn frames_up_to(&mut self, limit: usize, pool: &mut Pool) -> &mut Vec<u8> {
        const BACKLOG: usize = 32 * 1024;
        let buf = self.frames(pool);
        if buf.len() >= BACKLOG && buf.capacity() < limit {
            // Room for the frame that crosses the limit too.
            buf.reserve_exact(limit - buf.len() + BACKLOG);
        }
        buf
    }

    /// Writes until everything is written (buffer returned to `pool`) or the socket would
    /// block, adding the bytes written to `sent` (once per call). Returns whether everything
    /// was written.
    pub fn write_to(
        &mut self,
        io: &mut impl Write,
        pool: &mut Pool,
        sent: &mut u64,
    ) -> io::Result<bool> {
        if !self.spliced.is_empty() {
            return self.write_spliced(io, pool, sent);
        }
        let mut written = 0;
        let result = loop {
            if written == self.buf.len() {
                break Ok(true);
            }
            match io.write(&self.buf[written..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        *sent += written as u64;
        self.buf.drain(..written);
        if self.buf.is_empty() && self.buf.capacity() != 0 {
            pool.give_tx(std::mem::take(&mut self.buf));
        }
        result
    }

    /// `write_to` with spliced payloads: one vectored write of the frame bytes and the
    /// payloads between them at a time, until everything is written or the socket would block.
    fn write_spliced(
        &mut self,
        io: &mut impl Write,
        pool: &mut Pool,
        sent: &mut u64,
    ) -> io::Result<bool> {
        let result = loop {
            let Some(bodies) = self.spliced.0.as_deref_mut() else {
                break self.write_to(io, pool, sent);
            };
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut n = 0;
            let mut pos = 0;
            let mut included = 0;
            for body in &bodies.queue {
                if n + 2 > MAX_SLICES {
                    break;
                }
                included += 1;
                if body.at > pos {
                    slices[n] = IoSlice::new(&self.buf[pos..body.at]);
                    n += 1;
                }
                slices[n] = IoSlice::new(&body.message.payload[body.done..]);
                n += 1;
                pos = body.at;
            }
            if n < MAX_SLICES && pos < self.buf.len() && included == bodies.queue.len() {
                slices[n] = IoSlice::new(&self.buf[pos..]);
                n += 1;
            }
            match io.write_vectored(&slices[..n]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    *sent += written as u64;
                    self.advance(written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if self.buf.is_empty() && self.buf.capacity() != 0 && self.spliced.is_empty() {
            pool.give_tx(std::mem::take(&mut self.buf));
        }
        result
    }

    /// Drops `written` bytes from the front of the output: frame bytes up to each spliced
    /// payload, then the payload, in order.
    fn advance(&mut self, mut written: usize) {
        let mut from_buf = 0;
        if let Some(bodies) = self.spliced.0.as_deref_mut() {
            while let Some(body) = bodies.queue.front_mut() {
                let gap = (body.at - from_buf).min(written);
                from_buf += gap;
                written -= gap;
                if written == 0 {
                    break;
                }
                let rest = (body.message.payload.len() - body.done).min(written);
                body.done += rest;
                bodies.bytes -= rest;
                written -= rest;
                if body.done < body.message.payload.len() {
                    break;
                }
                bodies.queue.pop_front();
            }
            for body in &mut bodies.queue {
                body.at -= from_buf;
            }
            if bodies.queue.is_empty() {
                self.spliced.0 = None;
            }
        }
        from_buf += written;
        self.buf.drain(..from_buf);
    }

    /// The bytes not yet written, taken out (the connection is closing and they go to a
    /// lingering socket); an empty buffer goes back to `pool`.
    pub fn take_unwritten(&mut self, pool: &mut Pool) -> Vec<u8> {
        if let Some(bodies) = self.spliced.0.take() {
            let mut whole = Vec::with_capacity(self.buf.len() + bodies.bytes);
            let mut pos = 0;
            for body in &bodies.queue {
                whole.extend_from_slice(&self.buf[pos..body.at]);
                whole.extend_from_slice(&body.message.payload[body.done..]);
                pos = body.at;
            }
            whole.extend_from_slice(&self.buf[pos..]);
            self.discard(pool);
            return whole;
        }
        if self.buf.is_empty() {
            self.discard(pool);
            return Vec::new();
        }
        std::mem::take(&mut self.buf)
    }

    /// Gives any buffer back to `pool`, discarding unwritten bytes (the connection is gone).
    pub fn discard(&mut self, pool: &mut Pool) {
        self.spliced.0 = None;
        if self.buf.capacity() != 0 {
            pool.give_tx(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader handing out fixed chunks, then WouldBlock.
    struct Chunks(Vec<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let Some(chunk) = self.0.first_mut() else {
                return Err(io::ErrorKind::WouldBlock.into());
            };
            let n = chunk.len().min(out.len());
            out[..n].copy_from_slice(&chunk[..n]);
            chunk.drain(..n);
            if chunk.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    /// A writer accepting at most `room` bytes, then WouldBlock.
    struct Limited {
        got: Vec<u8>,
        room: usize,
    }

    impl Write for Limited {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = data.len().min(self.room);
            self.got.extend_from_slice(&data[..n]);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rx_reads_compacts_grows_and_stops_at_limit() {
        let mut pool = Pool::new(4, 4);
        let mut rx = RxBuf::default();
        let mut io = Chunks(vec![b"abcdefghij".to_vec()]);
        assert_eq!(
            rx.read_from(&mut io, &mut pool, 8).unwrap(),
            ReadOutcome::Data {
                bytes: 4,
                drained: false
            }
        );
        rx.consume(2);
        // Full with a consumed front: compacts instead of growing.
        assert_eq!(
            rx.read_from(&mut io, &mut pool, 8).unwrap(),
            ReadOutcome::Data {
                bytes: 2,
                drained: false
            }
        );
        assert_eq!(rx.front(), b"cdef");
        assert_eq!(
            rx.read_from(&mut io, &mut pool, 8).unwrap(),
            ReadOutcome::Data {
                bytes: 4,
                drained: false
            }
        );
        assert_eq!(rx.front(), b"cdefghij");
        assert_eq!(
            rx.read_from(&mut io, &mut pool, 8).unwrap(),
            ReadOutcome::Full
        );
        // The outgrown buffer went back when it grew; the emptied one goes back now.
        assert_eq!(pool.free_count(), 1);
        rx.consume(8);
        rx.release_if_empty(&mut pool);
        assert_eq!(pool.free_count(), 2, "an emptied buffer goes back");
        assert_eq!(
            rx.read_from(&mut io, &mut pool, 8).unwrap(),
            ReadOutcome::WouldBlock
        );
        assert_eq!(pool.free_count(), 1);
        rx.release_if_empty(&mut pool);
        assert_eq!(pool.free_count(), 2);
    }

    #[test]
    fn rx_grows_for_a_large_frame_to_room_for_several() {
        let mut pool = Pool::new(8, 4);
        let mut rx = RxBuf::default();
        let mut io = Chunks(vec![vec![7; 20]]);
        let limit = 1 << 20;
        rx.read_from(&mut io, &mut pool, limit).unwrap();
        assert_eq!(rx.capacity(), 8);
        // Full and nothing parsed: a frame larger than the buffer is arriving.
        rx.read_from(&mut io, &mut pool, limit).unwrap();
        assert_eq!(rx.capacity(), LARGE_RX);
        assert_eq!(rx.front(), &[7; 20][..]);
        // Never past the connection's limit.
        let mut small = RxBuf::default();
        let mut io = Chunks(vec![vec![7; 20]]);
        small.read_from(&mut io, &mut pool, 12).unwrap();
        small.read_from(&mut io, &mut pool, 12).unwrap();
        assert_eq!(small.capacity(), 12);
    }

    #[test]
    fn a_buffer_messages_hold_is_not_written_again() {
        let mut pool = Pool::new(8, 4);
        let mut rx = RxBuf::default();
        // Grown to LARGE_RX for a large frame, then filled: one whole 40,000-byte "frame"
        // and the first bytes of the next.
        let mut io = Chunks(vec![vec![1; 8], vec![1; 39_992], vec![2; 100]]);
        while rx.front().len() < 40_100 {
            rx.read_from(&mut io, &mut pool, 1 << 20).unwrap();
        }
        let held = rx.shareable().cloned().expect("a LARGE_RX buffer");
        let payload = crate::core::payload::Payload::shared(&held, 0, 40_000).unwrap();
        drop(held);
        rx.consume(40_000);
        // More arrives: it goes after the tail in another buffer, not over the payload.
        let mut io = Chunks(vec![vec![3; LARGE_RX]]);
        rx.read_from(&mut io, &mut pool, 1 << 20).unwrap();
        assert!(
            payload.iter().all(|&b| b == 1),
            "the message's bytes are intact"
        );
        assert_eq!(
            &rx.front()[..100],
            &[2; 100][..],
            "the tail moved to the front"
        );
        assert!(rx.front()[100..].iter().all(|&b| b == 3));
        assert!(rx.front().len() > 100);
        // Released, the held buffer goes to the pool's large list; reused once let go.
        drop(payload);
        rx.consume(rx.front().len());
        rx.release_if_empty(&mut pool);
        assert_eq!(
            pool.free_count(),
            3,
            "both large buffers kept, and the outgrown one"
        );
    }

    #[test]
    fn tx_partial_writes_keep_the_rest() {
        let mut pool = Pool::new(8, 4);
        let mut tx = TxBuf::default();
        tx.frames(&mut pool).extend_from_slice(b"hello world");
        let mut io = Limited {
            got: Vec::new(),
            room: 5,
        };
        let mut sent = 0;
        assert!(!tx.write_to(&mut io, &mut pool, &mut sent).unwrap());
        assert_eq!(tx.len(), 6);
        io.room = 100;
        assert!(tx.write_to(&mut io, &mut pool, &mut sent).unwrap());
        assert_eq!(io.got, b"hello world");
        assert_eq!(sent, 11);
        assert!(tx.is_empty());
        assert_eq!(pool.free_count(), 1, "drained buffer goes back");
    }

    /// A writer taking at most `room` bytes per call, gathering like `writev`.
    struct Vectored {
        got: Vec<u8>,
        room: usize,
        calls: usize,
    }

    impl Write for Vectored {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(data)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls += 1;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.room - n);
                self.got.extend_from_slice(&b[..take]);
                n += take;
            }
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Frame bytes with payloads spliced in after `head-N` markers, and the same output as
    /// one copied byte string.
    fn spliced_output(pool: &mut Pool, bodies: usize) -> (TxBuf, Vec<u8>) {
        let mut tx = TxBuf::default();
        let mut whole = Vec::new();
        tx.frames(pool);
        for i in 0..bodies {
            let head = format!("head-{i}");
            let payload = vec![b'a' + (i % 26) as u8; 1000 + i];
            let (out, spliced) = tx.frames_and_spliced();
            out.extend_from_slice(head.as_bytes());
            spliced.push(
                out.len(),
                Message::shared("t", &payload, crate::wire::QoS::AtMostOnce, false),
            );
            whole.extend_from_slice(head.as_bytes());
            whole.extend_from_slice(&payload);
        }
        tx.frames(pool).extend_from_slice(b"tail");
        whole.extend_from_slice(b"tail");
        (tx, whole)
    }

    #[test]
    fn tx_spliced_payloads_are_written_in_order_across_partial_writes() {
        // Room that ends inside headers, inside payloads and on their boundaries; and more
        // payloads than one writev takes.
        for room in [1, 5, 6, 7, 999, 1006, 1007, 4096, 1 << 20] {
            let mut pool = Pool::new(1024, 4);
            let (mut tx, whole) = spliced_output(&mut pool, 100);
            assert_eq!(tx.len(), whole.len());
            let mut io = Vectored {
                got: Vec::new(),
                room,
                calls: 0,
            };
            let mut sent = 0;
            while !tx.write_to(&mut io, &mut pool, &mut sent).unwrap() {
                assert_eq!(tx.len(), whole.len() - io.got.len(), "room {room}");
                // A frame appended between writes goes after what waits.
                io.room = room;
            }
            assert!(io.got == whole, "room {room}: output differs");
            assert_eq!(sent, whole.len() as u64);
            assert!(tx.is_empty());
            assert_eq!(
                pool.free_count(),
                1,
                "room {room}: drained buffer goes back"
            );
            if room == 1 << 20 {
                assert_eq!(io.calls, 4, "64 slices per writev: 100 payloads in 4 calls");
            }
        }
    }

    #[test]
    fn tx_spliced_payloads_are_copied_out_for_a_lingering_close() {
        let mut pool = Pool::new(8, 4);
        let (mut tx, whole) = spliced_output(&mut pool, 3);
        let mut io = Vectored {
            got: Vec::new(),
            room: 1500,
            calls: 0,
        };
        assert!(!tx.write_to(&mut io, &mut pool, &mut 0).unwrap());
        let mut rest = io.got;
        rest.extend(tx.take_unwritten(&mut pool));
        assert!(rest == whole);
        assert!(tx.is_empty());
    }

    #[test]
    fn tx_backlog_grows_to_the_limit_in_one_step() {
        let mut pool = Pool::new(8, 4);
        let mut tx = TxBuf::default();
        let limit = 1024 * 1024;
        tx.frames_up_to(limit, &mut pool)
            .extend_from_slice(&[0; 1024]);
        assert!(
            tx.frames_up_to(limit, &mut pool).capacity() < limit,
            "no backlog, no reservation"
        );
        tx.frames(&mut pool).resize(40 * 1024, 0);
        let out = tx.frames_up_to(limit, &mut pool);
        let reserved = out.capacity();
        assert!(reserved >= limit, "reserved {reserved}");
        out.resize(limit, 0);
        assert_eq!(
            out.capacity(),
            reserved,
            "filling to the limit reallocates nothing"
        );
    }
}
