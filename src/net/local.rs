//! The in-process transport: an in-memory byte pipe between the loop and a
//! [`LocalClient`](crate::embed::LocalClient) on any thread.
//!
//! A local client speaks MQTT 5 bytes like a network client, so its CONNECT, PUBLISH and
//! SUBSCRIBE go through the same handlers, ACLs, sessions, queues and bounds; only the
//! transport differs. Each direction is a `std::sync::mpsc` channel of byte chunks (no lock
//! on the loop's side: sending and receiving are atomic operations on a linked list), and
//! the loop learns of input through its `mio::Waker` (`Broker::on_local`), since there is no
//! file descriptor to poll.
//!
//! Output is bounded like a socket's send buffer: once `cap` bytes wait unread in the
//! channel, `write` returns `WouldBlock` and sets `blocked`; the client, having read below
//! the bound, sees `blocked` and wakes the loop, which finds the stream writable again.
//! Dropping the client ends the input channel, which the loop reads as EOF (a network peer
//! gone: its will fires); dropping the stream ends the output channel, which the client
//! reads as the connection closed.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};

/// What both ends share: the output bytes not yet read and whether the loop waits for room.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Bytes sent to the client and not yet taken by it.
    pub unread: AtomicUsize,
    /// The loop's last write would have gone over the bound.
    pub blocked: AtomicBool,
}

/// Called on the loop's thread whenever output is handed to the client (the embedder's own
/// wake-up: it must not block).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// The loop's end of a local client's pipe.
pub struct LocalStream {
    /// Bytes from the client.
    input: Receiver<Vec<u8>>,
    /// The chunk being read, and how far.
    chunk: Vec<u8>,
    at: usize,
    /// The client sent everything it will (its end is gone).
    ended: bool,
    /// Bytes to the client.
    output: Sender<Vec<u8>>,
    shared: Arc<Shared>,
    /// Most output bytes left unread before `write` would block.
    cap: usize,
    notify: Option<Notify>,
}

impl std::fmt::Debug for LocalStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStream")
            .field("unread", &self.shared.unread.load(Ordering::Relaxed))
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

/// The client's end of the pipe.
pub(crate) struct ClientEnd {
    /// Bytes to the loop.
    pub input: Sender<Vec<u8>>,
    /// Bytes from the loop.
    pub output: Receiver<Vec<u8>>,
    pub shared: Arc<Shared>,
}

/// A new pipe whose output blocks at `cap` unread bytes.
pub(crate) fn pipe(cap: usize, notify: Option<Notify>) -> (LocalStream, ClientEnd) {
    let (to_loop, from_client) = std::sync::mpsc::channel();
    let (to_client, from_loop) = std::sync::mpsc::channel();
    let shared = Arc::new(Shared::default());
    let stream = LocalStream {
        input: from_client,
        chunk: Vec::new(),
        at: 0,
        ended: false,
        output: to_client,
        shared: Arc::clone(&shared),
        cap: cap.max(1),
        notify,
    };
    let end = ClientEnd {
        input: to_loop,
        output: from_loop,
        shared,
    };
    (stream, end)
}

impl LocalStream {
    /// Whether a read would return data or EOF now (the next chunk is taken off the channel).
    pub fn readable(&mut self) -> bool {
        if self.at < self.chunk.len() || self.ended {
            return true;
        }
        self.next_chunk()
    }

    /// Whether a write that blocked can go on now (the client read below the bound).
    pub fn writable_again(&self) -> bool {
        self.shared.blocked.load(Ordering::SeqCst)
            && self.shared.unread.load(Ordering::SeqCst) < self.cap
            && self.shared.blocked.swap(false, Ordering::SeqCst)
    }

    /// Takes the next chunk off the channel; `true` if there was one or the input ended.
    fn next_chunk(&mut self) -> bool {
        match self.input.try_recv() {
            Ok(chunk) => {
                self.chunk = chunk;
                self.at = 0;
                true
            }
            Err(TryRecvError::Empty) => false,
            Err(TryRecvError::Disconnected) => {
                self.ended = true;
                true
            }
        }
    }

    /// Whether the client has room for more output; if not, marks the stream blocked (the
    /// check after marking closes the race with a client that just read).
    fn has_room(&self) -> bool {
        if self.shared.unread.load(Ordering::SeqCst) < self.cap {
            return true;
        }
        self.shared.blocked.store(true, Ordering::SeqCst);
        self.shared.unread.load(Ordering::SeqCst) < self.cap
            && self.shared.blocked.swap(false, Ordering::SeqCst)
    }

    fn send(&mut self, chunk: Vec<u8>) -> io::Result<usize> {
        let len = chunk.len();
        self.shared.unread.fetch_add(len, Ordering::SeqCst);
        if self.output.send(chunk).is_err() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if let Some(notify) = &self.notify {
            notify();
        }
        Ok(len)
    }
}

impl Read for LocalStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            if !self.next_chunk() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for LocalStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if !self.has_room() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.send(data.to_vec())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if len == 0 {
            return Ok(0);
        }
        if !self.has_room() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut chunk = Vec::with_capacity(len);
        for buf in bufs {
            chunk.extend_from_slice(buf);
        }
        self.send(chunk)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_both_ways_and_a_dropped_client_reads_as_eof() {
        let (mut stream, end) = pipe(8, None);
        assert!(!stream.readable());
        end.input.send(b"abc".to_vec()).unwrap();
        assert!(stream.readable());
        let mut buf = [0u8; 2];
        assert_eq!(stream.read(&mut buf).unwrap(), 2);
        assert_eq!(stream.read(&mut buf).unwrap(), 1);
        assert_eq!(
            stream.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(stream.write(b"hello").unwrap(), 5);
        assert_eq!(end.output.try_recv().unwrap(), b"hello");
        drop(end);
        assert!(stream.readable());
        assert_eq!(stream.read(&mut buf).unwrap(), 0);
        assert_eq!(
            stream.write(b"x").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }

    #[test]
    fn output_blocks_at_the_bound_until_the_client_reads() {
        let (mut stream, end) = pipe(4, None);
        assert_eq!(stream.write(b"12345").unwrap(), 5);
        assert_eq!(
            stream.write(b"6").unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(!stream.writable_again());
        let chunk = end.output.try_recv().unwrap();
        end.shared.unread.fetch_sub(chunk.len(), Ordering::SeqCst);
        assert!(end.shared.blocked.load(Ordering::SeqCst));
        assert!(stream.writable_again());
        assert!(!stream.writable_again(), "reported once");
        assert_eq!(stream.write(b"6").unwrap(), 1);
    }
}
