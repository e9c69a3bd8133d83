//! An in-memory stream for driving the broker without sockets (the fuzz harness,
//! `broker/drive.rs`): the peer's bytes wait in a queue the broker reads from, and what the
//! broker writes is counted and dropped, up to a window the peer opens by "reading".
//!
//! It keeps the socket's contract that the loop relies on: `read` returns `WouldBlock` when
//! nothing is queued and the peer has not closed, `Ok(0)` once it has; `write` takes at most
//! the open window and returns `WouldBlock` when it is shut, like a full socket buffer.
//! The peer's side is bounded too: `send` queues at most [`RECEIVE_BUFFER`] unread bytes, as
//! a kernel's receive buffer would, so a broker that stops reading (back-pressure) does not
//! make the harness itself allocate without bound.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;

/// Unread bytes a connection holds for the broker, like a (small) kernel receive buffer:
/// what a peer sends beyond it waits, as a non-blocking write would.
pub const RECEIVE_BUFFER: usize = 8 * 1024;

/// The broker's end of an in-memory connection.
#[derive(Debug)]
pub struct MemStream {
    pipe: Rc<RefCell<Pipe>>,
}

/// The peer's end of an in-memory connection: what the harness sends and drains.
#[derive(Debug)]
pub struct MemPeer {
    pipe: Rc<RefCell<Pipe>>,
}

/// What both ends share.
#[derive(Debug, Default)]
struct Pipe {
    /// Bytes sent by the peer, not yet read by the broker.
    input: VecDeque<u8>,
    /// The peer has closed its side: reads return EOF once `input` is empty.
    eof: bool,
    /// Bytes the broker may still write before a write would block.
    window: usize,
    /// Bytes the broker has written in all.
    written: u64,
}

/// A connected pair: the broker's end, and the peer's with `window` bytes of room for the
/// broker's output.
pub fn pair(window: usize) -> (MemStream, MemPeer) {
    let pipe = Rc::new(RefCell::new(Pipe {
        window,
        ..Pipe::default()
    }));
    let peer = MemPeer {
        pipe: Rc::clone(&pipe),
    };
    (MemStream { pipe }, peer)
}

impl MemPeer {
    /// Queues as much of `bytes` as the receive buffer has room for, for the broker to read;
    /// returns how many bytes that was.
    pub fn send(&self, bytes: &[u8]) -> usize {
        let mut pipe = self.pipe.borrow_mut();
        let taken = bytes.len().min(RECEIVE_BUFFER - pipe.input.len());
        pipe.input.extend(&bytes[..taken]);
        taken
    }

    /// Closes the peer's side: the broker reads EOF after what is queued.
    pub fn close(&self) {
        self.pipe.borrow_mut().eof = true;
    }

    /// Consumes what the broker wrote, opening the window to `window` bytes again.
    pub fn drain(&self, window: usize) {
        self.pipe.borrow_mut().window = window;
    }

    /// Bytes the broker has written to this peer in all.
    pub fn written(&self) -> u64 {
        self.pipe.borrow().written
    }
}

impl Read for MemStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut pipe = self.pipe.borrow_mut();
        if pipe.input.is_empty() {
            return if pipe.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = out.len().min(pipe.input.len());
        for (slot, byte) in out.iter_mut().zip(pipe.input.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for MemStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut pipe = self.pipe.borrow_mut();
        if pipe.window == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = data.len().min(pipe.window);
        pipe.window -= n;
        pipe.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_block_until_data_or_close() {
        let (mut stream, peer) = pair(0);
        let mut buf = [0; 4];
        let e = stream.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        peer.send(b"abcdef");
        assert_eq!(stream.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"abcd");
        peer.close();
        assert_eq!(stream.read(&mut buf).unwrap(), 2);
        assert_eq!(
            stream.read(&mut buf).unwrap(),
            0,
            "EOF after the queued bytes"
        );
    }

    #[test]
    fn writes_take_the_window_then_block() {
        let (mut stream, peer) = pair(3);
        assert_eq!(stream.write(b"hello").unwrap(), 3);
        let e = stream.write(b"lo").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        peer.drain(10);
        assert_eq!(stream.write(b"lo").unwrap(), 2);
        assert_eq!(peer.written(), 5);
    }

    #[test]
    fn sends_stop_at_the_receive_buffer() {
        let (mut stream, peer) = pair(0);
        let big = vec![7; RECEIVE_BUFFER + 100];
        assert_eq!(
            peer.send(&big),
            RECEIVE_BUFFER,
            "a full buffer takes no more"
        );
        assert_eq!(peer.send(b"x"), 0);
        let mut buf = [0; 100];
        assert_eq!(stream.read(&mut buf).unwrap(), 100);
        assert_eq!(peer.send(&big), 100, "reading makes room again");
    }
}
