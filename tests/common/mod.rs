//! Shared helpers for integration tests: an in-process broker on an ephemeral port and a
//! raw-bytes MQTT client. Packets are built by hand here, independent of the broker's codec.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use pipit::{Broker, Config, Handle};

/// A broker running on its own thread; shut down and joined on drop.
pub struct TestBroker {
    /// Where it listens (its first listener).
    pub addr: SocketAddr,
    /// Where each of its listeners listens, in configuration order.
    pub addrs: Vec<SocketAddr>,
    /// Where its metrics endpoint listens, if configured.
    pub metrics: Option<SocketAddr>,
    handle: Handle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            t.join()
                .expect("broker thread panicked")
                .expect("broker run failed");
        }
    }
}

/// Starts a broker with the default configuration on 127.0.0.1:0.
pub fn start() -> TestBroker {
    start_with(|_| {})
}

/// Starts a broker on 127.0.0.1:0 after `adjust` edits the default configuration.
pub fn start_with(adjust: impl FnOnce(&mut Config)) -> TestBroker {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut config = Config::default();
    config.listeners[0].addr = "127.0.0.1:0".parse().unwrap();
    adjust(&mut config);
    let running = Broker::spawn(config).expect("bind");
    TestBroker {
        addr: running.addrs[0],
        addrs: running.addrs.clone(),
        metrics: running.metrics_addr,
        handle: running.handle,
        thread: Some(running.thread),
    }
}

/// One received packet: the first header byte and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The fixed header's first byte: packet type and flags.
    pub header: u8,
    /// Everything after the remaining length.
    pub body: Vec<u8>,
}

impl Frame {
    /// The packet type (high nibble).
    pub fn kind(&self) -> u8 {
        self.header >> 4
    }
}

/// A raw MQTT client over TCP.
pub struct Raw {
    /// The connection, with a 5 s read timeout.
    pub stream: TcpStream,
}

/// One `read`, repeated while a signal interrupts it. A socket with a read timeout returns
/// `Interrupted` whatever the handler's `SA_RESTART` says, and a child process of the test
/// exiting (SIGCHLD) was seen to interrupt it on this kernel; `read_exact` already repeats.
pub fn read_once(stream: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

impl Raw {
    /// Opens a TCP connection (no MQTT yet).
    pub fn open(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Raw { stream }
    }

    /// Opens a connection and completes a 3.1.1 CONNECT with `client_id`, `clean`.
    pub fn connect(addr: SocketAddr, client_id: &str, clean: bool) -> Raw {
        Raw::connect_with(addr, &Connect::v311(client_id).clean(clean))
    }

    /// Opens a connection, sends `connect` and expects CONNACK accepted.
    pub fn connect_with(addr: SocketAddr, connect: &Connect) -> Raw {
        let (code, c) = Raw::try_connect(addr, connect);
        assert_eq!(code, 0, "CONNACK refused with {code:#04x}");
        c
    }

    /// Sends 3.1.1 `connect` on a new connection and returns the CONNACK return code and
    /// the connection (still open when the code is 0).
    pub fn try_connect(addr: SocketAddr, connect: &Connect) -> (u8, Raw) {
        let mut c = Raw::open(addr);
        c.send(&connect.bytes());
        let ack = match c.read_frame() {
            Ok(Some(ack)) => ack,
            Ok(None) => panic!("no CONNACK from {addr}: the connection was closed"),
            Err(e) => panic!("no CONNACK from {addr}: {e}"),
        };
        assert_eq!(ack.kind(), 2, "expected CONNACK, got {ack:?}");
        assert_eq!(ack.body.len(), 2, "3.1.1 CONNACK is 2 bytes: {ack:?}");
        (ack.body[1], c)
    }

    /// Writes bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads one packet; `None` on timeout or when the broker closed the connection.
    pub fn recv(&mut self) -> Option<Frame> {
        self.read_frame().ok().flatten()
    }

    /// Reads one packet: `Ok(None)` when the broker closed the connection, `Err` on timeout.
    pub fn read_frame(&mut self) -> std::io::Result<Option<Frame>> {
        let mut first = [0u8; 1];
        match read_once(&mut self.stream, &mut first) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let mut b = [0u8; 1];
            self.stream.read_exact(&mut b)?;
            len |= ((b[0] & 0x7f) as usize) << shift;
            if b[0] & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body)?;
        Ok(Some(Frame {
            header: first[0],
            body,
        }))
    }

    /// Reads packets until one of type `kind` arrives (others are returned too).
    pub fn recv_kind(&mut self, kind: u8) -> Frame {
        loop {
            let f = self
                .recv()
                .unwrap_or_else(|| panic!("no packet of type {kind}"));
            if f.kind() == kind {
                return f;
            }
        }
    }

    /// Expects the next PUBLISH and returns it parsed.
    pub fn recv_publish(&mut self) -> Publish {
        let f = self.recv().expect("expected a PUBLISH, got nothing");
        assert_eq!(f.kind(), 3, "expected PUBLISH, got {f:?}");
        Publish::parse(&f)
    }

    /// Asserts nothing arrives within `ms` milliseconds.
    pub fn expect_silence(&mut self, ms: u64) {
        self.stream
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .unwrap();
        let mut b = [0u8; 1];
        match read_once(&mut self.stream, &mut b) {
            Ok(0) => panic!("connection closed, expected silence"),
            Ok(_) => panic!("unexpected byte {:#04x}", b[0]),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "unexpected error {e}"
            ),
        }
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
    }

    /// Reads packets until none arrives for `ms` milliseconds (or the broker closes).
    pub fn drain(&mut self, ms: u64) -> Vec<Frame> {
        self.stream
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .unwrap();
        let mut got = Vec::new();
        while let Ok(Some(f)) = self.read_frame() {
            got.push(f);
        }
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        got
    }

    /// Asserts the broker closes the connection; returns the packets it sent first.
    pub fn expect_closed(&mut self) -> Vec<Frame> {
        let mut got = Vec::new();
        loop {
            match self.read_frame() {
                Ok(Some(f)) => got.push(f),
                Ok(None) => return got,
                Err(e) => panic!("connection not closed ({e}); got {got:?}"),
            }
        }
    }

    /// Subscribes to one filter at `qos` and returns the granted code.
    pub fn subscribe(&mut self, filter: &str, qos: u8) -> u8 {
        self.send(&subscribe(1, &[(filter, qos)]));
        let ack = self.recv_kind(9);
        assert_eq!(&ack.body[..2], &[0, 1]);
        ack.body[2]
    }

    /// Publishes at QoS 1 and waits for its PUBACK: the broker has routed (or dropped) the
    /// message, so later messages from any client are routed after it.
    pub fn publish_acked(&mut self, topic: &str, payload: &[u8], retain: bool, packet_id: u16) {
        self.send(&publish(topic, payload, 1, retain, packet_id));
        let ack = self.recv_kind(4);
        assert_eq!(ack.body, packet_id.to_be_bytes(), "PUBACK for {topic}");
    }

    /// Sends PINGREQ and expects PINGRESP next: a barrier after everything sent before it.
    pub fn ping(&mut self) {
        self.send(&[0xc0, 0x00]);
        let f = self.recv().expect("expected PINGRESP, got nothing");
        assert_eq!(
            (f.header, f.body.len()),
            (0xd0, 0),
            "expected PINGRESP, got {f:?}"
        );
    }

    /// Sends DISCONNECT and waits for the close.
    pub fn disconnect(mut self) {
        self.send(&[0xe0, 0x00]);
        self.expect_closed();
    }
}

/// The 3.1.1 CONNACK return code for `connect`; a refused connection must then be closed.
pub fn connack_code(addr: SocketAddr, connect: &Connect) -> u8 {
    let (code, mut c) = Raw::try_connect(addr, connect);
    if code != 0 {
        c.expect_closed();
    }
    code
}

/// A received PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The topic name.
    pub topic: String,
    /// The application message.
    pub payload: Vec<u8>,
    /// The QoS level from the header.
    pub qos: u8,
    /// The RETAIN flag.
    pub retain: bool,
    /// The DUP flag.
    pub dup: bool,
    /// The packet identifier; 0 at QoS 0.
    pub packet_id: u16,
}

impl Publish {
    /// Parses a 3.1.1 PUBLISH frame.
    pub fn parse(f: &Frame) -> Publish {
        let qos = (f.header >> 1) & 3;
        let tlen = u16::from_be_bytes([f.body[0], f.body[1]]) as usize;
        let topic = String::from_utf8(f.body[2..2 + tlen].to_vec()).unwrap();
        let mut at = 2 + tlen;
        let mut packet_id = 0;
        if qos > 0 {
            packet_id = u16::from_be_bytes([f.body[at], f.body[at + 1]]);
            at += 2;
        }
        Publish {
            topic,
            payload: f.body[at..].to_vec(),
            qos,
            retain: f.header & 1 == 1,
            dup: f.header & 8 == 8,
            packet_id,
        }
    }
}

/// Encodes a remaining length.
pub fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

/// Builds a frame from a header byte and body.
pub fn frame(header: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![header];
    varint(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// Appends a length-prefixed string.
pub fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// A CONNECT packet under construction.
#[derive(Clone, Debug)]
pub struct Connect {
    /// The protocol name (`MQTT` or `MQIsdp`).
    pub protocol: &'static [u8],
    /// The protocol level (3, 4 or 5).
    pub level: u8,
    /// The client identifier, as raw bytes.
    pub client_id: Vec<u8>,
    /// The clean session (clean start) flag.
    pub clean: bool,
    /// The keepalive in seconds.
    pub keep_alive: u16,
    /// The will: topic, payload, QoS and retain.
    pub will: Option<(String, Vec<u8>, u8, bool)>,
    /// The user name, if any.
    pub username: Option<String>,
    /// The password, if any.
    pub password: Option<Vec<u8>>,
    /// v5 CONNECT properties (encoded entries, without the length).
    pub properties: Vec<u8>,
    /// v5 will properties (encoded entries, without the length).
    pub will_properties: Vec<u8>,
}

impl Connect {
    /// A 3.1.1 CONNECT with clean session and keepalive 60.
    pub fn v311(client_id: &str) -> Connect {
        Connect {
            protocol: b"MQTT",
            level: 4,
            client_id: client_id.as_bytes().to_vec(),
            clean: true,
            keep_alive: 60,
            will: None,
            username: None,
            password: None,
            properties: Vec::new(),
            will_properties: Vec::new(),
        }
    }

    /// A 5.0 CONNECT with clean start, keepalive 60 and `properties`.
    pub fn v5(client_id: &str, properties: Props) -> Connect {
        Connect {
            level: 5,
            properties: properties.0,
            ..Connect::v311(client_id)
        }
    }

    /// Sets v5 will properties.
    pub fn will_props(mut self, properties: Props) -> Connect {
        self.will_properties = properties.0;
        self
    }

    /// A 3.1 CONNECT (`MQIsdp`, level 3).
    pub fn v31(client_id: &str) -> Connect {
        Connect {
            protocol: b"MQIsdp",
            level: 3,
            ..Connect::v311(client_id)
        }
    }

    /// Sets clean session.
    pub fn clean(mut self, clean: bool) -> Connect {
        self.clean = clean;
        self
    }

    /// Sets the keepalive in seconds.
    pub fn keep_alive(mut self, secs: u16) -> Connect {
        self.keep_alive = secs;
        self
    }

    /// Sets a will.
    pub fn will(mut self, topic: &str, payload: &[u8], qos: u8, retain: bool) -> Connect {
        self.will = Some((topic.into(), payload.into(), qos, retain));
        self
    }

    /// Sets a username and password.
    pub fn login(mut self, user: &str, password: &[u8]) -> Connect {
        self.username = Some(user.into());
        self.password = Some(password.into());
        self
    }

    /// The encoded packet.
    pub fn bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        string(self.protocol, &mut body);
        body.push(self.level);
        let mut flags = 0u8;
        if self.clean {
            flags |= 0x02;
        }
        if let Some((_, _, qos, retain)) = &self.will {
            flags |= 0x04 | (qos << 3);
            if *retain {
                flags |= 0x20;
            }
        }
        if self.password.is_some() {
            flags |= 0x40;
        }
        if self.username.is_some() {
            flags |= 0x80;
        }
        body.push(flags);
        body.extend_from_slice(&self.keep_alive.to_be_bytes());
        if self.level == 5 {
            varint(self.properties.len(), &mut body);
            body.extend_from_slice(&self.properties);
        }
        string(&self.client_id, &mut body);
        if let Some((topic, payload, _, _)) = &self.will {
            if self.level == 5 {
                varint(self.will_properties.len(), &mut body);
                body.extend_from_slice(&self.will_properties);
            }
            string(topic.as_bytes(), &mut body);
            string(payload, &mut body);
        }
        if let Some(u) = &self.username {
            string(u.as_bytes(), &mut body);
        }
        if let Some(p) = &self.password {
            string(p, &mut body);
        }
        frame(0x10, &body)
    }
}

/// A PUBLISH packet.
pub fn publish(topic: &str, payload: &[u8], qos: u8, retain: bool, packet_id: u16) -> Vec<u8> {
    let mut body = Vec::new();
    string(topic.as_bytes(), &mut body);
    if qos > 0 {
        body.extend_from_slice(&packet_id.to_be_bytes());
    }
    body.extend_from_slice(payload);
    frame(0x30 | (qos << 1) | u8::from(retain), &body)
}

/// A SUBSCRIBE packet.
pub fn subscribe(packet_id: u16, filters: &[(&str, u8)]) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    for (f, q) in filters {
        string(f.as_bytes(), &mut body);
        body.push(*q);
    }
    frame(0x82, &body)
}

/// An UNSUBSCRIBE packet.
pub fn unsubscribe(packet_id: u16, filters: &[&str]) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    for f in filters {
        string(f.as_bytes(), &mut body);
    }
    frame(0xa2, &body)
}

/// A PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70) packet.
pub fn ack(header: u8, packet_id: u16) -> Vec<u8> {
    frame(header, &packet_id.to_be_bytes())
}

// ---- MQTT 5 helpers ----

/// Encoded MQTT 5 property entries, built by hand (ids and types from v5 table 2-4).
#[derive(Clone, Debug, Default)]
pub struct Props(pub Vec<u8>);

impl Props {
    /// No properties.
    pub fn new() -> Props {
        Props(Vec::new())
    }
    /// A one-byte property.
    pub fn byte(mut self, id: u8, v: u8) -> Props {
        self.0.extend_from_slice(&[id, v]);
        self
    }
    /// A two-byte integer property.
    pub fn u16(mut self, id: u8, v: u16) -> Props {
        self.0.push(id);
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A four-byte integer property.
    pub fn u32(mut self, id: u8, v: u32) -> Props {
        self.0.push(id);
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A variable byte integer property.
    pub fn varint(mut self, id: u8, v: usize) -> Props {
        self.0.push(id);
        varint(v, &mut self.0);
        self
    }
    /// A UTF-8 string or binary data property.
    pub fn bin(mut self, id: u8, v: &[u8]) -> Props {
        self.0.push(id);
        string(v, &mut self.0);
        self
    }
    /// A user property.
    pub fn user(mut self, k: &str, v: &str) -> Props {
        self.0.push(0x26);
        string(k.as_bytes(), &mut self.0);
        string(v.as_bytes(), &mut self.0);
        self
    }
}

/// A decoded property value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prop {
    /// Byte, two-byte, four-byte or variable byte integer.
    Int(u32),
    /// UTF-8 string or binary data.
    Bytes(Vec<u8>),
    /// User property.
    Pair(String, String),
}

/// Decodes a property block (without its length) into (id, value) pairs in order.
pub fn parse_props(mut b: &[u8]) -> Vec<(u8, Prop)> {
    let mut out = Vec::new();
    while let Some((&id, rest)) = b.split_first() {
        b = rest;
        let take_str = |b: &mut &[u8]| {
            let n = u16::from_be_bytes([b[0], b[1]]) as usize;
            let v = b[2..2 + n].to_vec();
            *b = &b[2 + n..];
            v
        };
        let v = match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2a => {
                let v = b[0] as u32;
                b = &b[1..];
                Prop::Int(v)
            }
            0x13 | 0x21 | 0x22 | 0x23 => {
                let v = u16::from_be_bytes([b[0], b[1]]) as u32;
                b = &b[2..];
                Prop::Int(v)
            }
            0x02 | 0x11 | 0x18 | 0x27 => {
                let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                b = &b[4..];
                Prop::Int(v)
            }
            0x0b => {
                let (v, n) = read_varint(b);
                b = &b[n..];
                Prop::Int(v as u32)
            }
            0x26 => {
                let k = take_str(&mut b);
                let v = take_str(&mut b);
                Prop::Pair(String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())
            }
            _ => Prop::Bytes(take_str(&mut b)),
        };
        out.push((id, v));
    }
    out
}

/// Reads a variable byte integer; returns (value, bytes used).
pub fn read_varint(b: &[u8]) -> (usize, usize) {
    let mut v = 0usize;
    for (i, byte) in b.iter().enumerate() {
        v |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    panic!("truncated varint")
}

/// Reads a length-prefixed property block at the start of `b`; returns it and the rest.
pub fn split_props(b: &[u8]) -> (Vec<(u8, Prop)>, &[u8]) {
    let (len, n) = read_varint(b);
    (parse_props(&b[n..n + len]), &b[n + len..])
}

/// The first value of property `id`, if present.
pub fn prop(props: &[(u8, Prop)], id: u8) -> Option<Prop> {
    props.iter().find(|(i, _)| *i == id).map(|(_, v)| v.clone())
}

/// The integer value of property `id`, if present.
pub fn prop_int(props: &[(u8, Prop)], id: u8) -> Option<u32> {
    match prop(props, id)? {
        Prop::Int(v) => Some(v),
        other => panic!("property {id:#04x} is not an integer: {other:?}"),
    }
}

/// A received v5 CONNACK.
#[derive(Debug, Clone)]
pub struct Connack5 {
    /// The session present flag.
    pub session_present: bool,
    /// The reason code.
    pub code: u8,
    /// The properties, in order.
    pub props: Vec<(u8, Prop)>,
}

impl Connack5 {
    /// Parses a v5 CONNACK frame.
    pub fn parse(f: &Frame) -> Connack5 {
        assert_eq!(f.kind(), 2, "expected CONNACK, got {f:?}");
        let (props, rest) = split_props(&f.body[2..]);
        assert!(rest.is_empty());
        Connack5 {
            session_present: f.body[0] & 1 == 1,
            code: f.body[1],
            props,
        }
    }
}

/// A received v5 PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish5 {
    /// The topic name.
    pub topic: String,
    /// The application message.
    pub payload: Vec<u8>,
    /// The QoS level from the header.
    pub qos: u8,
    /// The RETAIN flag.
    pub retain: bool,
    /// The DUP flag.
    pub dup: bool,
    /// The packet identifier; 0 at QoS 0.
    pub packet_id: u16,
    /// The properties, in order.
    pub props: Vec<(u8, Prop)>,
}

impl Publish5 {
    /// Parses a v5 PUBLISH frame.
    pub fn parse(f: &Frame) -> Publish5 {
        assert_eq!(f.kind(), 3, "expected PUBLISH, got {f:?}");
        // The 3.1.1 layout, with the properties in front of what 3.1.1 calls the payload.
        let p = Publish::parse(f);
        let (props, payload) = split_props(&p.payload);
        Publish5 {
            payload: payload.to_vec(),
            props,
            topic: p.topic,
            qos: p.qos,
            retain: p.retain,
            dup: p.dup,
            packet_id: p.packet_id,
        }
    }

    /// Every subscription identifier it carries, in order.
    pub fn subscription_ids(&self) -> Vec<u32> {
        self.props
            .iter()
            .filter(|(id, _)| *id == 0x0b)
            .map(|(_, v)| match v {
                Prop::Int(v) => *v,
                _ => unreachable!(),
            })
            .collect()
    }

    /// Its user properties, in order.
    pub fn user_properties(&self) -> Vec<(String, String)> {
        self.props
            .iter()
            .filter_map(|(_, v)| match v {
                Prop::Pair(k, v) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect()
    }
}

impl Raw {
    /// Opens a connection, sends a v5 `connect` and returns the CONNACK (any reason).
    pub fn connect_v5(addr: SocketAddr, connect: &Connect) -> (Raw, Connack5) {
        let mut c = Raw::open(addr);
        c.send(&connect.bytes());
        let f = c.recv().expect("CONNACK");
        let ack = Connack5::parse(&f);
        (c, ack)
    }

    /// Opens a v5 connection with `properties` and expects success.
    pub fn v5(addr: SocketAddr, client_id: &str, properties: Props) -> Raw {
        let (c, ack) = Raw::connect_v5(addr, &Connect::v5(client_id, properties));
        assert_eq!(ack.code, 0, "CONNACK refused: {ack:?}");
        c
    }

    /// v5 SUBSCRIBE with properties and (filter, options byte) pairs; returns SUBACK codes.
    pub fn subscribe_v5(&mut self, properties: Props, filters: &[(&str, u8)]) -> Vec<u8> {
        self.send(&subscribe_v5(1, properties, filters));
        let ack = self.recv_kind(9);
        assert_eq!(&ack.body[..2], &[0, 1]);
        let (_, codes) = split_props(&ack.body[2..]);
        codes.to_vec()
    }

    /// Expects the next PUBLISH and parses it as v5.
    pub fn recv_publish5(&mut self) -> Publish5 {
        let f = self.recv().expect("expected a PUBLISH, got nothing");
        Publish5::parse(&f)
    }

    /// Expects the broker to close with a v5 DISCONNECT; returns its reason code.
    pub fn expect_disconnect(&mut self) -> u8 {
        let frames = self.expect_closed();
        let d = frames
            .iter()
            .find(|f| f.kind() == 14)
            .unwrap_or_else(|| panic!("no DISCONNECT in {frames:?}"));
        d.body.first().copied().unwrap_or(0)
    }
}

/// A v5 PUBLISH packet.
pub fn publish_v5(
    topic: &str,
    payload: &[u8],
    qos: u8,
    retain: bool,
    packet_id: u16,
    properties: Props,
) -> Vec<u8> {
    let mut body = Vec::new();
    string(topic.as_bytes(), &mut body);
    if qos > 0 {
        body.extend_from_slice(&packet_id.to_be_bytes());
    }
    varint(properties.0.len(), &mut body);
    body.extend_from_slice(&properties.0);
    body.extend_from_slice(payload);
    frame(0x30 | (qos << 1) | u8::from(retain), &body)
}

/// A v5 SUBSCRIBE packet: (filter, options byte) pairs.
pub fn subscribe_v5(packet_id: u16, properties: Props, filters: &[(&str, u8)]) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    varint(properties.0.len(), &mut body);
    body.extend_from_slice(&properties.0);
    for (f, o) in filters {
        string(f.as_bytes(), &mut body);
        body.push(*o);
    }
    frame(0x82, &body)
}

/// A v5 UNSUBSCRIBE packet.
pub fn unsubscribe_v5(packet_id: u16, properties: Props, filters: &[&str]) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    varint(properties.0.len(), &mut body);
    body.extend_from_slice(&properties.0);
    for f in filters {
        string(f.as_bytes(), &mut body);
    }
    frame(0xa2, &body)
}

/// A v5 DISCONNECT with a reason code and properties.
pub fn disconnect_v5(code: u8, properties: Props) -> Vec<u8> {
    let mut body = vec![code];
    varint(properties.0.len(), &mut body);
    body.extend_from_slice(&properties.0);
    frame(0xe0, &body)
}

/// A v5 ack (PUBACK 0x40 etc.) with reason code 0 and no properties.
pub fn ack_v5(header: u8, packet_id: u16) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    body.push(0);
    frame(header, &body)
}
