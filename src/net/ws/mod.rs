//! MQTT over WebSockets (`protocol websockets`): `WsStream` wraps a plain or TLS `Stream`
//! and is itself read and written as the MQTT byte stream, so nothing above `net` knows.
//!
//! A connection starts with the HTTP/1.1 request head (`handshake`), read and answered in
//! `request`, into a buffer of at most `websockets_headers_size` bytes that is dropped once
//! the head is answered. An upgrade is answered `101` and the connection is open: reading
//! decodes the client's frames in the caller's own buffer (`frame`), so an open connection
//! holds no buffer of its own; writing sends whatever the broker has for the client as one
//! unmasked binary frame per write, its header and payload in one vectored write (the
//! broker writes a connection's whole output once per turn, so that is one frame per turn).
//! A plain HTTP request gets a file from `http_dir` or a 4xx (`http`), and then the
//! connection closes.
//!
//! mio's contract is kept as by TLS: `read` returns `WouldBlock` only when the socket did,
//! and a short read means the socket is drained (except while an HTTP answer is sent: the
//! socket's writable events drive it then, and input is only read to see the client
//! close). Our own frames (pongs, close replies) and HTTP responses wait in `out` until the
//! socket takes them, never inside a data frame; `flush_pending` sends them on a writable
//! event. The reason a connection ends on the WebSocket side travels up as an `io::Error`
//! carrying a `WsClose`.

pub(crate) mod frame;
pub(crate) mod handshake;
pub(crate) mod http;
mod request;

use std::io::{self, IoSlice, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use log::info;
use mio::net::TcpStream;

use super::Stream;
use crate::config::{Config, ListenerConfig};
use frame::{FrameError, FrameReader};

/// `websockets_headers_size` when unset or 0: what Mosquitto 2.0.11 (libwebsockets) takes
/// then, measured (its manual says 1024).
pub const DEFAULT_HEADERS_SIZE: usize = 4096;
/// Bytes of a file read per write while answering an HTTP request.
const FILE_CHUNK: usize = 16 * 1024;

/// libwebsockets' log level bits, which `websockets_log_level` is a mask of; pipit's
/// WebSocket layer logs these classes of its own events.
pub mod log_bits {
    /// Refused handshakes and frames that close a connection.
    pub const ERR: u32 = 1;
    /// Each upgrade and each HTTP request answered; a client's close frame.
    pub const INFO: u32 = 8;
    /// Every header line of each request.
    pub const HEADER: u32 = 64;
}

/// One WebSocket listener's settings, shared by its connections.
#[derive(Debug)]
pub struct WsConfig {
    /// The canonical `http_dir`, if files are served.
    pub http_dir: Option<PathBuf>,
    /// Largest request head accepted (`websockets_headers_size`).
    pub headers_size: usize,
    /// Largest data frame payload accepted (`max_packet_size`).
    pub max_frame: u64,
    /// `websockets_log_level`: which `log_bits` are logged.
    pub log_level: u32,
}

/// Why the WebSocket layer ends a connection; carried by the `io::Error` a read or flush
/// returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsClose {
    /// A frame broke RFC 6455 or the bound; a close frame with its code is sent.
    Frame(FrameError),
    /// The request head was refused with a status, which has been sent; why.
    Refused(&'static str),
    /// A plain HTTP request was answered.
    Answered,
}

impl WsClose {
    /// What happened, for the connection's close line in the log.
    pub fn reason(self) -> &'static str {
        match self {
            WsClose::Frame(e) => e.reason(),
            WsClose::Refused(why) => why,
            WsClose::Answered => "HTTP request answered",
        }
    }
}

impl std::fmt::Display for WsClose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for WsClose {}

/// A WebSocket listener's settings: `http_dir` made canonical (the error names it),
/// `websockets_headers_size` (0 is the default), frames bounded by `max_packet_size`.
pub fn config(config: &Config, listener: &ListenerConfig) -> io::Result<WsConfig> {
    let http_dir = match &listener.http_dir {
        None => None,
        Some(dir) => Some(dir.canonicalize().map_err(|e| {
            let message = format!(
                "listener {}: http_dir {}: {e}",
                listener.addr,
                dir.display()
            );
            io::Error::new(e.kind(), message)
        })?),
    };
    let headers_size = match config.websockets_headers_size {
        0 => DEFAULT_HEADERS_SIZE,
        n => usize::from(n),
    };
    Ok(WsConfig {
        http_dir,
        headers_size,
        max_frame: u64::from(config.max_packet_size),
        log_level: config.websockets_log_level,
    })
}

/// Where the connection is.
#[derive(Debug)]
enum State {
    /// Reading the request head: the bytes so far.
    Handshake(Vec<u8>),
    /// Upgraded: bytes that came after the head, decoded before the socket is read again.
    Open(Vec<u8>),
    /// Answering an HTTP request with a file; the connection closes after it.
    Body(Box<http::Body>),
    /// An HTTP answer is in `out`; the connection closes once it is sent.
    Answered,
}

/// The data frame being written: its header, how much of the header is written, and
/// payload bytes left. Idle between frames.
#[derive(Debug, Default)]
struct OutFrame {
    head: [u8; 10],
    head_len: u8,
    head_pos: u8,
    left: usize,
}

impl OutFrame {
    fn idle(&self) -> bool {
        self.left == 0 && self.head_pos == self.head_len
    }

    fn pending_head(&self) -> &[u8] {
        &self.head[usize::from(self.head_pos)..usize::from(self.head_len)]
    }
}

/// One WebSocket connection over TCP or TLS.
#[derive(Debug)]
pub struct WsStream {
    inner: Stream,
    config: Arc<WsConfig>,
    state: State,
    reader: FrameReader,
    /// A control frame's payload, while it arrives.
    control: Vec<u8>,
    /// Our own bytes for the client, sent between data frames: the handshake response,
    /// pongs, close frames, the next piece of a file.
    out: Vec<u8>,
    frame: OutFrame,
    /// A close frame is queued or sent: no data frame may follow it.
    close_sent: bool,
    /// Why the WebSocket layer is ending the connection.
    failure: Option<WsClose>,
}

impl WsStream {
    /// A connection whose request head is yet to come over `inner`.
    pub fn new(inner: Stream, config: Arc<WsConfig>) -> WsStream {
        let reader = FrameReader::new(config.max_frame);
        WsStream {
            inner,
            config,
            state: State::Handshake(Vec::new()),
            reader,
            control: Vec::new(),
            out: Vec::new(),
            frame: OutFrame::default(),
            close_sent: false,
            failure: None,
        }
    }

    /// The transport underneath.
    pub fn inner(&self) -> &Stream {
        &self.inner
    }

    /// The transport underneath, for registering with mio.
    pub fn inner_mut(&mut self) -> &mut Stream {
        &mut self.inner
    }

    /// Sends what waits in `out` and, once it is sent, the rest of a file being served
    /// and the transport's own output (TLS records). `true` once nothing is left; an
    /// answered HTTP request then ends the connection with its `WsClose`.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        loop {
            if !self.flush_out()? {
                return Ok(false);
            }
            match &mut self.state {
                State::Body(body) if body.left > 0 => {
                    let chunk = FILE_CHUNK.min(usize::try_from(body.left).unwrap_or(FILE_CHUNK));
                    self.out.resize(chunk, 0);
                    let n = body.file.read(&mut self.out)?;
                    self.out.truncate(n);
                    // A file that shrank while being sent ends early: the connection closes.
                    body.left = if n == 0 { 0 } else { body.left - n as u64 };
                }
                State::Body(_) => self.state = State::Answered,
                State::Answered => {
                    if !self.inner.flush_pending()? {
                        return Ok(false);
                    }
                    return Err(self.fail(self.failure.unwrap_or(WsClose::Answered)));
                }
                State::Handshake(_) | State::Open(_) => return self.inner.flush_pending(),
            }
        }
    }

    /// Sends a close frame (1000, or the code of the frame error that ends the connection)
    /// if the broker's output is all written (`output_left` false) and the socket takes it
    /// now; otherwise it goes out after that output from the lingering socket.
    pub fn close(&mut self, output_left: bool) {
        if matches!(self.state, State::Open(_))
            && !self.close_sent
            && !output_left
            && self.frame.idle()
        {
            frame::close_frame(self.close_code(), &mut self.out);
            self.close_sent = true;
            // Best effort: what the socket does not take now lingers.
            let _ = self.flush_out();
        }
        self.inner.close(output_left);
    }

    /// The TCP socket and the bytes still owed to the client, framed: the rest of the data
    /// frame being written, our own frames, the broker's `unwritten` output as one more
    /// frame, and the close frame. Over TLS nothing more can be sent.
    pub fn into_lingering(self, unwritten: Vec<u8>) -> Option<(TcpStream, Vec<u8>)> {
        let code = self.close_code();
        let socket = match self.inner {
            Stream::Tcp(socket) => socket,
            other => return other.into_lingering(Vec::new()),
        };
        let mut bytes = self.frame.pending_head().to_vec();
        let started = self.frame.left.min(unwritten.len());
        bytes.extend_from_slice(&unwritten[..started]);
        bytes.extend_from_slice(&self.out);
        let rest = &unwritten[started..];
        if matches!(self.state, State::Open(_)) && !self.close_sent {
            if !rest.is_empty() {
                let mut head = [0; 10];
                let n = frame::header(frame::BINARY, rest.len() as u64, &mut head);
                bytes.extend_from_slice(&head[..n]);
                bytes.extend_from_slice(rest);
            }
            frame::close_frame(code, &mut bytes);
        }
        Some((socket, bytes))
    }

    /// The close status for our close frame.
    fn close_code(&self) -> u16 {
        match self.failure {
            Some(WsClose::Frame(e)) => e.code(),
            _ => frame::NORMAL,
        }
    }

    /// Records why the connection ends and returns the error that says so.
    fn fail(&mut self, why: WsClose) -> io::Error {
        self.failure = Some(why);
        io::Error::other(why)
    }

    /// Writes `out` to the socket, unless a data frame is part-written; `true` once `out`
    /// is empty.
    fn flush_out(&mut self) -> io::Result<bool> {
        if !self.frame.idle() {
            return Ok(self.out.is_empty());
        }
        while !self.out.is_empty() {
            match self.inner.write(&self.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // An idle connection keeps no buffer.
        self.out = Vec::new();
        Ok(true)
    }

    /// Logs `message` at info level (target `websockets`, as Mosquitto's `log_type
    /// websockets`) if `websockets_log_level` has `bit`.
    fn log(&self, bit: u32, message: std::fmt::Arguments<'_>) {
        if self.config.log_level & bit != 0 {
            let peer = self.inner.peer_addr();
            let peer = peer.as_ref().map_or(&"?" as &dyn std::fmt::Display, |p| p);
            info!(target: "websockets", "{peer}: {message}");
        }
    }

    /// Reads and decodes frames into `buf` (see the module doc for the contract).
    fn read_frames(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        if let State::Open(early) = &mut self.state
            && !early.is_empty()
        {
            let n = early.len().min(buf.len());
            buf[..n].copy_from_slice(&early[..n]);
            early.drain(..n);
            if early.is_empty() {
                *early = Vec::new();
            }
            filled = self.decode(&mut buf[..n])?;
        }
        loop {
            if self.reader.closed() {
                // Nothing after the client's close frame is read: the close reply goes
                // out, and then the connection ends as if the socket had closed.
                let _ = self.flush_out();
                return Ok(filled);
            }
            if filled == buf.len() {
                return Ok(filled);
            }
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => return Ok(filled),
                Ok(n) => {
                    let full = filled + n == buf.len();
                    filled += self.decode(&mut buf[filled..filled + n])?;
                    if !self.out.is_empty() {
                        self.flush_out()?;
                    }
                    // A short read drained the socket; one that gave only framing is
                    // followed by another, which says WouldBlock or EOF.
                    if !full && filled > 0 {
                        return Ok(filled);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => {
                    return Ok(filled);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Decodes frames in `bytes` in place; the count of data bytes now at its front.
    fn decode(&mut self, bytes: &mut [u8]) -> io::Result<usize> {
        match self.reader.decode(bytes, &mut self.control, &mut self.out) {
            Ok(n) => {
                if self.reader.closed() {
                    self.close_sent = true;
                    self.log(log_bits::INFO, format_args!("close frame received"));
                }
                Ok(n)
            }
            Err(e) => {
                self.log(
                    log_bits::ERR,
                    format_args!("closing ({}): {}", e.code(), e.reason()),
                );
                Err(self.fail(WsClose::Frame(e)))
            }
        }
    }

    /// While an HTTP answer is sent: input is read and dropped, to see the client close.
    fn discard(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for WsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if matches!(self.state, State::Handshake(_)) && self.read_head()? {
            return Ok(0);
        }
        match self.state {
            State::Open(_) => self.read_frames(buf),
            State::Handshake(_) => Err(io::ErrorKind::WouldBlock.into()),
            State::Body(_) | State::Answered => self.discard(buf),
        }
    }
}

impl Write for WsStream {
    /// Sends `data` as (the rest of) one binary frame: the header and as much payload as the
    /// socket takes, in one vectored write; returns the payload bytes written.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !matches!(self.state, State::Open(_)) {
            return Err(io::ErrorKind::NotConnected.into());
        }
        if data.is_empty() {
            return Ok(0);
        }
        loop {
            if self.frame.idle() {
                // After a close frame nothing more may be sent [RFC 6455 5.5.1]: the
                // connection is ending, and what the broker still has is dropped.
                if self.close_sent {
                    return Ok(data.len());
                }
                if !self.flush_out()? {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let len = frame::header(frame::BINARY, data.len() as u64, &mut self.frame.head);
                self.frame.head_len = len as u8;
                self.frame.head_pos = 0;
                self.frame.left = data.len();
            }
            let take = self.frame.left.min(data.len());
            let head = self.frame.pending_head();
            let slices = [IoSlice::new(head), IoSlice::new(&data[..take])];
            let n = match self.inner.write_vectored(&slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let of_head = n.min(head.len());
            self.frame.head_pos += of_head as u8;
            let of_data = n - of_head;
            self.frame.left -= of_data;
            if of_data > 0 {
                return Ok(of_data);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.flush_pending()? {
            true => Ok(()),
            false => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_connection_stays_small() {
        // Measured per idle connection by scripts/ws_footprint.py; this keeps the struct
        // from growing unnoticed (the Box is one allocation of this size).
        let size = std::mem::size_of::<WsStream>();
        assert!(size <= 208, "WsStream is {size} bytes");
    }
}
