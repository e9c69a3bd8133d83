//! A raw-bytes MQTT client written once for 3.1.1 and 5.0 (a `Version` parameter), for tests
//! whose scenario is the same in both: connect with or without a persistent session and read
//! the session present flag, subscribe with options and a subscription identifier, publish
//! through the whole QoS 1/2 flow, and receive as a well-behaved receiver would (PUBACK,
//! PUBREC, PUBCOMP on PUBREL). Packets read while waiting for another (a PUBLISH that arrives
//! before a PUBACK) are kept in order for the next read, never dropped.
//! Included with `#[path = "common/client.rs"]` beside `mod common;`, whose `Raw` and packet
//! builders it uses.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{
    Connack5, Connect, Frame, Prop, Props, Publish, Publish5, Raw, ack, prop, prop_int, publish,
    publish_v5, subscribe, subscribe_v5, unsubscribe, unsubscribe_v5,
};

/// The protocol version a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1.
    V3,
    /// MQTT 5.0.
    V5,
}

/// Both versions, for a table of cases.
pub const VERSIONS: [Version; 2] = [Version::V3, Version::V5];

/// The session expiry a persistent v5 session asks for, in seconds.
pub const SESSION_EXPIRY: u32 = 3600;

/// A received PUBLISH of either version: the v5 form, with no properties in 3.1.1.
pub type Msg = Publish5;

/// What the persistence tests read of a PUBLISH beyond `Publish5`'s own accessors.
impl Msg {
    /// The integer property `id`, if present.
    pub fn prop_int(&self, id: u8) -> Option<u32> {
        prop_int(&self.props, id)
    }

    /// The string or binary property `id`, if present.
    pub fn prop_bytes(&self, id: u8) -> Option<Vec<u8>> {
        match prop(&self.props, id)? {
            Prop::Bytes(b) => Some(b),
            other => panic!("property {id:#04x} is not bytes: {other:?}"),
        }
    }

    /// The payload as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// A connected client of either version.
pub struct Client {
    /// The connection.
    pub raw: Raw,
    /// The version it speaks.
    pub version: Version,
    next_packet_id: u16,
    inbox: VecDeque<Frame>,
}

impl Client {
    /// Connects as `client_id`: `persistent` asks for a session that outlives the connection
    /// (3.1.1 clean session 0; 5.0 clean start 0 with a session expiry), otherwise a clean
    /// one. Expects the connection accepted; returns the client and the session present flag.
    pub fn connect(
        addr: SocketAddr,
        version: Version,
        client_id: &str,
        persistent: bool,
    ) -> (Client, bool) {
        let connect = match version {
            Version::V3 => Connect::v311(client_id),
            Version::V5 if persistent => {
                Connect::v5(client_id, Props::new().u32(0x11, SESSION_EXPIRY))
            }
            Version::V5 => Connect::v5(client_id, Props::new()),
        }
        .clean(!persistent);
        let mut raw = Raw::open(addr);
        raw.send(&connect.bytes());
        let f = raw.recv().expect("no CONNACK");
        let (code, present) = match version {
            Version::V3 => {
                assert_eq!(f.kind(), 2, "expected CONNACK, got {f:?}");
                (f.body[1], f.body[0] & 1 == 1)
            }
            Version::V5 => {
                let ack = Connack5::parse(&f);
                (ack.code, ack.session_present)
            }
        };
        assert_eq!(code, 0, "{client_id}: CONNACK refused with {code:#04x}");
        let client = Client {
            raw,
            version,
            next_packet_id: 0,
            inbox: VecDeque::new(),
        };
        (client, present)
    }

    /// A new packet identifier, never 0.
    pub fn packet_id(&mut self) -> u16 {
        self.next_packet_id = self.next_packet_id.wrapping_add(1).max(1);
        self.next_packet_id
    }

    /// Subscribes to `filter` with the options byte `options` (in 3.1.1 only its QoS bits
    /// are sent) and, in 5.0, the subscription identifier `sub_id`; returns the granted code.
    pub fn subscribe(&mut self, filter: &str, options: u8, sub_id: Option<u32>) -> u8 {
        let packet_id = self.packet_id();
        let packet = match self.version {
            Version::V3 => subscribe(packet_id, &[(filter, options & 3)]),
            Version::V5 => {
                let props = match sub_id {
                    Some(id) => Props::new().varint(0x0b, id as usize),
                    None => Props::new(),
                };
                subscribe_v5(packet_id, props, &[(filter, options)])
            }
        };
        self.raw.send(&packet);
        let ack = self.wait_for(9);
        assert_eq!(ack.body[..2], packet_id.to_be_bytes(), "SUBACK packet id");
        // v5: the property length is 0 from both brokers; the code follows it.
        *ack.body.last().expect("SUBACK with a code")
    }

    /// Unsubscribes from `filter` and waits for the UNSUBACK.
    pub fn unsubscribe(&mut self, filter: &str) {
        let packet_id = self.packet_id();
        let packet = match self.version {
            Version::V3 => unsubscribe(packet_id, &[filter]),
            Version::V5 => unsubscribe_v5(packet_id, Props::new(), &[filter]),
        };
        self.raw.send(&packet);
        let ack = self.wait_for(11);
        assert_eq!(ack.body[..2], packet_id.to_be_bytes(), "UNSUBACK packet id");
    }

    /// The bytes of a PUBLISH in this client's version (`props` are left out in 3.1.1).
    pub fn publish_packet(
        &self,
        topic: &str,
        payload: &[u8],
        qos: u8,
        retain: bool,
        packet_id: u16,
        props: &Props,
    ) -> Vec<u8> {
        match self.version {
            Version::V3 => publish(topic, payload, qos, retain, packet_id),
            Version::V5 => publish_v5(topic, payload, qos, retain, packet_id, props.clone()),
        }
    }

    /// Publishes and completes the QoS flow (QoS 1: PUBACK; QoS 2: PUBREC, PUBREL, PUBCOMP);
    /// panics if the broker refuses it (a reason code of 0x80 or more).
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: u8, retain: bool) {
        self.publish_props(topic, payload, qos, retain, &Props::new());
    }

    /// [`Client::publish`] with v5 properties.
    pub fn publish_props(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: u8,
        retain: bool,
        props: &Props,
    ) {
        let code = self.try_publish(topic, payload, qos, retain, props);
        // 0x10 No matching subscribers is a success [MQTT-3.4.2.1].
        assert!(code < 0x80, "{topic}: refused with {code:#04x}");
    }

    /// Publishes: QoS 1 waits for PUBACK; QoS 2 for PUBREC, then (unless it refused) sends
    /// PUBREL and waits for PUBCOMP. Returns the PUBACK or PUBREC reason code (0 in 3.1.1,
    /// and at QoS 0).
    pub fn try_publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: u8,
        retain: bool,
        props: &Props,
    ) -> u8 {
        let packet_id = if qos > 0 { self.packet_id() } else { 0 };
        let packet = self.publish_packet(topic, payload, qos, retain, packet_id, props);
        self.raw.send(&packet);
        match qos {
            0 => 0,
            1 => self.wait_ack(4, packet_id),
            _ => {
                let code = self.wait_ack(5, packet_id);
                if code < 0x80 {
                    self.release(packet_id);
                }
                code
            }
        }
    }

    /// Sends PUBREL for `packet_id` and waits for its PUBCOMP.
    pub fn release(&mut self, packet_id: u16) {
        self.raw.send(&ack(0x62, packet_id));
        self.wait_ack(7, packet_id);
    }

    /// Waits for an acknowledgement of `kind` (4 PUBACK, 5 PUBREC, 7 PUBCOMP) for
    /// `packet_id`; returns its reason code (0 when absent, and always in 3.1.1).
    pub fn wait_ack(&mut self, kind: u8, packet_id: u16) -> u8 {
        let f = self.wait_for(kind);
        assert_eq!(f.body[..2], packet_id.to_be_bytes(), "ack {kind} packet id");
        f.body.get(2).copied().unwrap_or(0)
    }

    /// Reads until a packet of `kind` arrives; others are kept for later reads.
    pub fn wait_for(&mut self, kind: u8) -> Frame {
        if let Some(at) = self.inbox.iter().position(|f| f.kind() == kind) {
            return self.inbox.remove(at).expect("a position in the inbox");
        }
        loop {
            let f = self
                .raw
                .recv()
                .unwrap_or_else(|| panic!("no packet of type {kind}; kept {:?}", self.inbox));
            if f.kind() == kind {
                return f;
            }
            self.inbox.push_back(f);
        }
    }

    /// The next packet (kept ones first) within `timeout`; `None` on timeout or close.
    pub fn next_frame(&mut self, timeout: Duration) -> Option<Frame> {
        if let Some(f) = self.inbox.pop_front() {
            return Some(f);
        }
        self.raw.stream.set_read_timeout(Some(timeout)).unwrap();
        let f = self.raw.recv();
        self.raw
            .stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        f
    }

    /// Parses a PUBLISH frame in this client's version.
    pub fn parse(&self, f: &Frame) -> Msg {
        assert_eq!(f.kind(), 3, "expected PUBLISH, got {f:?}");
        match self.version {
            Version::V3 => {
                let p = Publish::parse(f);
                Msg {
                    topic: p.topic,
                    payload: p.payload,
                    qos: p.qos,
                    retain: p.retain,
                    dup: p.dup,
                    packet_id: p.packet_id,
                    props: Vec::new(),
                }
            }
            Version::V5 => Publish5::parse(f),
        }
    }

    /// Receives until nothing arrives for `idle`, acknowledging as a receiver does (PUBACK;
    /// PUBREC, and PUBCOMP on PUBREL); returns the PUBLISHes in order, resends included.
    pub fn drain(&mut self, idle: Duration) -> Vec<Msg> {
        let mut got = Vec::new();
        while let Some(f) = self.next_frame(idle) {
            match f.kind() {
                3 => {
                    let m = self.parse(&f);
                    match m.qos {
                        1 => self.raw.send(&ack(0x40, m.packet_id)),
                        2 => self.raw.send(&ack(0x50, m.packet_id)),
                        _ => {}
                    }
                    got.push(m);
                }
                6 => {
                    let packet_id = u16::from_be_bytes([f.body[0], f.body[1]]);
                    self.raw.send(&ack(0x70, packet_id));
                }
                _ => panic!("unexpected packet while receiving: {f:?}"),
            }
        }
        got
    }

    /// Sends DISCONNECT (reason 0 in 5.0: the session is kept) and waits for the close.
    pub fn disconnect(mut self) {
        self.raw.send(&[0xe0, 0x00]);
        self.raw.expect_closed();
    }
}
