//! One client socket: non-blocking connect, a read buffer parsed in place, and a write buffer
//! that collects many frames for one `write()`.
//!
//! Invariants: `rx[start..end]` holds unparsed bytes; `tx[tx_pos..]` holds unwritten bytes.
//! Reads and writes go until `WouldBlock` (mio is edge-triggered) and retry `Interrupted`.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;
use socket2::{Domain, Protocol, Socket, Type};

/// `EINPROGRESS` on Linux: a non-blocking `connect` has started.
const EINPROGRESS: i32 = 115;

/// Read buffer size for connections that carry messages.
pub const RX_DATA: usize = 64 * 1024;
/// Read buffer size for idle connections (CONNACK and PINGRESP only).
pub const RX_IDLE: usize = 64;

/// A client connection's socket and buffers.
pub struct Conn {
    /// The socket, registered once with the poll for both directions.
    pub stream: TcpStream,
    rx: Vec<u8>,
    start: usize,
    end: usize,
    /// Frames waiting to be written.
    pub tx: Vec<u8>,
    tx_pos: usize,
}

/// What one `read_some` call found.
pub enum ReadOutcome {
    /// New bytes are buffered (or none were available).
    Open,
    /// The broker closed the connection.
    Eof,
}

impl Conn {
    /// Starts a non-blocking connect with TCP_NODELAY and an optional receive buffer size.
    pub fn connect(addr: SocketAddr, rcvbuf: Option<usize>, rx_size: usize) -> io::Result<Conn> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nodelay(true)?;
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size)?;
        }
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let stream = TcpStream::from_std(socket.into());
        Ok(Conn {
            stream,
            rx: vec![0; rx_size],
            start: 0,
            end: 0,
            tx: Vec::new(),
            tx_pos: 0,
        })
    }

    /// After a writable event on a connecting socket: `Ok(true)` once connected, `Ok(false)`
    /// if still in progress, `Err` if the connect failed.
    pub fn check_connected(&self) -> io::Result<bool> {
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads once into free buffer space; `Ok(None)` at `WouldBlock`. Call after parsing
    /// every complete frame: a buffer still full then holds one partial frame larger than the
    /// buffer, so it doubles (bounded by `mqtt::MAX_REMAINING`, checked by the decoder).
    pub fn read_some(&mut self) -> io::Result<Option<ReadOutcome>> {
        if self.start > 0 && self.end == self.rx.len() {
            self.rx.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.rx.len() {
            self.rx.resize(self.rx.len() * 2, 0);
        }
        loop {
            match self.stream.read(&mut self.rx[self.end..]) {
                Ok(0) => return Ok(Some(ReadOutcome::Eof)),
                Ok(n) => {
                    self.end += n;
                    return Ok(Some(ReadOutcome::Open));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// The unparsed bytes and the write buffer, borrowed together so replies can be queued
    /// while parsing.
    pub fn parts(&mut self) -> (&[u8], &mut Vec<u8>) {
        (&self.rx[self.start..self.end], &mut self.tx)
    }

    /// Marks `n` parsed bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Bytes queued but not yet written.
    pub fn pending(&self) -> usize {
        self.tx.len() - self.tx_pos
    }

    /// Writes queued bytes until done or `WouldBlock`; `NotConnected` counts as `WouldBlock`.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.tx_pos < self.tx.len() {
            match self.stream.write(&self.tx[self.tx_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.tx_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => break,
                Err(e) => return Err(e),
            }
        }
        if self.tx_pos == self.tx.len() {
            self.tx.clear();
            self.tx_pos = 0;
        } else if self.tx_pos > self.tx.len() / 2 {
            self.tx.drain(..self.tx_pos);
            self.tx_pos = 0;
        }
        Ok(())
    }
}
