//! A raw WebSocket client for the tests of `protocol websockets` listeners: the upgrade
//! request written by hand, masked client frames, the server's frames read back and checked
//! to be unmasked, and MQTT packets read out of binary frames. Independent of the broker's
//! own WebSocket code. Included with `#[path = "common/ws.rs"]` beside `mod common;`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::common::{Frame, read_once};

/// A fixed client key (any 16 bytes, base64) and the accept value RFC 6455 gives for it.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `Sec-WebSocket-Accept` for `KEY` [RFC 6455 1.3].
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// The masking key of every client frame.
const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

/// An upgrade request for `path` offering `protocols` (no header if `None`), with `extra`
/// header lines (each ending in CRLF).
pub fn upgrade_request(path: &str, protocols: Option<&str>, extra: &str) -> String {
    let protocols = protocols.map_or(String::new(), |p| {
        format!("Sec-WebSocket-Protocol: {p}\r\n")
    });
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{protocols}{extra}\r\n"
    )
}

/// A masked client frame with first byte `first` (FIN, opcode).
pub fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    out.extend(MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// A binary frame carrying `payload`.
pub fn binary(payload: &[u8]) -> Vec<u8> {
    masked(0x82, payload)
}

/// Sends `request` on a new connection and reads until the server closes (or 5 s pass):
/// the whole response as text, empty if the server closed without one.
pub fn http(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // The server may close before it has read all of a refused request.
    let _ = stream.write_all(request);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status line of an HTTP response, or "" if there was none.
pub fn status_line(response: &str) -> &str {
    response.split("\r\n").next().unwrap_or_default()
}

/// The value of header `name` in an HTTP response head.
pub fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// A WebSocket connection, raw.
pub struct Ws {
    /// The socket, with a 5 s read timeout.
    pub stream: TcpStream,
    /// Bytes read and not yet taken as frames.
    pending: Vec<u8>,
    /// Binary payload bytes not yet taken as MQTT packets.
    mqtt: Vec<u8>,
}

impl Ws {
    /// A TCP connection, nothing sent yet.
    pub fn connect(addr: SocketAddr) -> Ws {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Ws {
            stream,
            pending: Vec::new(),
            mqtt: Vec::new(),
        }
    }

    /// Sends `request` and reads the response head; the connection and the head.
    pub fn request(addr: SocketAddr, request: &[u8]) -> (Ws, String) {
        let mut ws = Ws::connect(addr);
        ws.send(request);
        let head = ws.read_head();
        (ws, head)
    }

    /// Reads the response head (through the blank line); what came if the server closed
    /// first.
    pub fn read_head(&mut self) -> String {
        loop {
            if let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.pending[..end + 4]).into_owned();
                self.pending.drain(..end + 4);
                return head;
            }
            if !self.fill() {
                return String::from_utf8_lossy(&self.pending).into_owned();
            }
        }
    }

    /// Upgrades on `path` offering `mqtt`, asserting `101` and the accept key.
    pub fn open(addr: SocketAddr) -> Ws {
        let request = upgrade_request("/mqtt", Some("mqtt"), "");
        let (ws, head) = Ws::request(addr, request.as_bytes());
        assert_eq!(
            status_line(&head),
            "HTTP/1.1 101 Switching Protocols",
            "{head}"
        );
        assert_eq!(
            header(&head, "sec-websocket-accept"),
            Some(ACCEPT),
            "{head}"
        );
        assert_eq!(
            header(&head, "sec-websocket-protocol"),
            Some("mqtt"),
            "{head}"
        );
        ws
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads more bytes; false at EOF, reset or timeout.
    fn fill(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        match read_once(&mut self.stream, &mut buf) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                true
            }
        }
    }

    /// The next frame from the server, `(first byte, payload)`; `None` once it closed.
    /// Server frames must not be masked [RFC 6455 5.1].
    pub fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((first, payload, len)) = parse_frame(&self.pending) {
                self.pending.drain(..len);
                return Some((first, payload));
            }
            if !self.fill() {
                assert!(
                    self.pending.is_empty(),
                    "partial frame {:02x?}",
                    self.pending
                );
                return None;
            }
        }
    }

    /// The next MQTT packet carried in binary frames; `None` once the server closed (control
    /// frames before it are passed over).
    pub fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some((header, body, len)) = parse_packet(&self.mqtt) {
                self.mqtt.drain(..len);
                return Some(Frame { header, body });
            }
            let (first, payload) = self.frame()?;
            assert!(matches!(first, 0x82 | 0x88 | 0x8a), "frame {first:#04x}");
            if first == 0x82 {
                self.mqtt.extend_from_slice(&payload);
            }
        }
    }

    /// Reads frames until the server closes; returns the close frame's status code, if one
    /// came (MQTT packets before it are dropped).
    pub fn close_code(&mut self) -> Option<u16> {
        let mut code = None;
        while let Some((first, payload)) = self.frame() {
            if first == 0x88 {
                code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
        }
        code
    }
}

/// One whole server frame at the front of `buf`: (first byte, payload, bytes used).
fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&first, rest) = buf.split_first()?;
    let (&second, rest) = rest.split_first()?;
    assert_eq!(second & 0x80, 0, "a server frame is masked");
    let (len, header) = match second & 0x7f {
        126 => (
            u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(rest.get(..8)?.try_into().ok()?) as usize,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let payload = buf.get(header..header + len)?;
    Some((first, payload.to_vec(), header + len))
}

/// One whole MQTT packet at the front of `buf`: (first byte, body, bytes used).
fn parse_packet(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&header, rest) = buf.split_first()?;
    let (mut len, mut used) = (0usize, 1);
    for (i, &b) in rest.iter().enumerate().take(4) {
        len |= usize::from(b & 0x7f) << (7 * i);
        used += 1;
        if b & 0x80 == 0 {
            let body = buf.get(used..used + len)?;
            return Some((header, body.to_vec(), used + len));
        }
    }
    None
}
