//! The cases of the malformed-packet table, grouped by packet type. Each names the rule it
//! breaks (the 3.1.1 tag for v3.1 and v3.1.1, the 5.0 tag for v5; a section where the rule
//! has no tag), the bytes (a good CONNECT first when the case is about a later packet), and
//! the outcome the standard calls for. In 3.1.1 a malformed packet or protocol violation
//! closes the connection without a packet [MQTT-4.8.0-1]; in 5.0 the Server sends DISCONNECT
//! with Malformed Packet (0x81) or Protocol Error (0x82) first where it is past CONNECT
//! (§4.13.1: SHOULD), and may send a CONNACK with the reason for a bad CONNECT.

use crate::common::{Connect, Props, frame, string, varint};

/// A protocol version the table speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ver {
    /// MQTT 3.1 (`MQIsdp`, level 3).
    V31,
    /// MQTT 3.1.1.
    V311,
    /// MQTT 5.0.
    V5,
}

use Ver::{V5, V31, V311};

/// All three versions.
const ALL: [Ver; 3] = [V31, V311, V5];

/// The 3.x versions.
const V3: [Ver; 2] = [V31, V311];

/// What a broker does with a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A CONNACK with this return code (v3) or reason code (v5), then the close.
    Connack(u8),
    /// A v5 DISCONNECT with this reason code, then the close.
    Disconnect(u8),
    /// A SUBACK or UNSUBACK whose first code is this; the connection stays up.
    Ack(u8),
    /// The close, without a packet.
    Close,
    /// A CONNECT accepted with CONNACK 0, the connection left open.
    Accepted,
    /// Still open after the deadline, having sent these packets (`header:first body bytes`,
    /// as `summary` in the runner writes them; empty for none).
    Open(String),
    /// Observed only: anything else.
    Other(String),
}

use Outcome::{Accepted, Ack, Close, Connack, Disconnect, Open, Other};

/// One row of the table.
pub struct Case {
    /// Unique name: group, what is wrong, version.
    pub name: String,
    /// The rule broken: `[MQTT-x.y.z-n]`, or `§x.y` where the rule has no tag.
    pub rule: &'static str,
    /// The version of the CONNECT (or of the packet, for a first packet).
    pub version: Ver,
    /// Everything sent.
    pub bytes: Vec<u8>,
    /// Whether `bytes` start with a good CONNECT whose CONNACK 0 precedes the outcome.
    pub after_connect: bool,
    /// The outcome the standard calls for, and pipit's.
    pub expect: Outcome,
    /// Mosquitto 2.0.11's outcome where it differs from `expect`.
    pub mosquitto: Option<Outcome>,
}

/// The table under construction.
#[derive(Default)]
struct Table(Vec<Case>);

impl Table {
    /// A case whose bytes are the first thing on the connection.
    fn first(
        &mut self,
        name: &str,
        rule: &'static str,
        v: Ver,
        bytes: Vec<u8>,
        expect: Outcome,
    ) -> &mut Case {
        self.push(name, rule, v, bytes, false, expect)
    }

    /// A case whose `packet` follows a good CONNECT of version `v`.
    fn after(
        &mut self,
        name: &str,
        rule: &'static str,
        v: Ver,
        packet: Vec<u8>,
        expect: Outcome,
    ) -> &mut Case {
        let mut bytes = connect(v).bytes();
        bytes.extend(packet);
        self.push(name, rule, v, bytes, true, expect)
    }

    fn push(
        &mut self,
        name: &str,
        rule: &'static str,
        v: Ver,
        bytes: Vec<u8>,
        after_connect: bool,
        expect: Outcome,
    ) -> &mut Case {
        let label = match v {
            V31 => "v3.1",
            V311 => "v3.1.1",
            V5 => "v5",
        };
        self.0.push(Case {
            name: format!("{name} {label}"),
            rule,
            version: v,
            bytes,
            after_connect,
            expect,
            mosquitto: None,
        });
        self.0.last_mut().expect("just pushed")
    }
}

impl Table {
    /// Records Mosquitto 2.0.11's outcome for the case named `name`.
    fn mosquitto(&mut self, name: &str, o: Outcome) {
        let case = self.0.iter_mut().find(|c| c.name == name);
        case.unwrap_or_else(|| panic!("no case {name}")).mosquitto = Some(o);
    }
}

/// Left open, having answered nothing.
fn open() -> Outcome {
    Open(String::new())
}

/// A good CONNECT of version `v` for client `bad`, clean, without properties.
fn connect(v: Ver) -> Connect {
    match v {
        V31 => Connect::v31("bad"),
        V311 => Connect::v311("bad"),
        V5 => Connect::v5("bad", Props::new()),
    }
}

/// The 3.1.1 tag for v3.1 and v3.1.1, the 5.0 tag for v5.
fn tag(v: Ver, v3: &'static str, v5: &'static str) -> &'static str {
    if v == V5 { v5 } else { v3 }
}

/// A malformed packet after CONNECT: a plain close in v3, DISCONNECT 0x81 in v5.
fn malformed(v: Ver) -> Outcome {
    if v == V5 { Disconnect(0x81) } else { Close }
}

/// A protocol error after CONNECT: a plain close in v3, DISCONNECT 0x82 in v5.
fn protocol(v: Ver) -> Outcome {
    if v == V5 { Disconnect(0x82) } else { Close }
}

/// A malformed CONNECT: a plain close in v3, CONNACK 0x81 in v5.
fn bad_connect(v: Ver) -> Outcome {
    if v == V5 { Connack(0x81) } else { Close }
}

/// The property block of a v5 packet (length and entries); nothing in v3.
fn props(v: Ver, p: &Props) -> Vec<u8> {
    let mut out = Vec::new();
    if v == V5 {
        varint(p.0.len(), &mut out);
        out.extend_from_slice(&p.0);
    }
    out
}

/// A PUBLISH with header byte `header`, raw topic bytes, an optional packet id and properties.
fn publish(v: Ver, header: u8, topic: &[u8], id: Option<u16>, p: Props) -> Vec<u8> {
    let mut body = Vec::new();
    string(topic, &mut body);
    if let Some(id) = id {
        body.extend_from_slice(&id.to_be_bytes());
    }
    body.extend(props(v, &p));
    body.extend_from_slice(b"payload");
    frame(header, &body)
}

/// A SUBSCRIBE with header byte `header`, packet id, properties and (raw filter, options).
fn subscribe(v: Ver, header: u8, id: u16, p: Props, entries: &[(&[u8], u8)]) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    body.extend(props(v, &p));
    for (f, o) in entries {
        string(f, &mut body);
        body.push(*o);
    }
    frame(header, &body)
}

/// An UNSUBSCRIBE with header byte `header`, packet id, properties and raw filters.
fn unsubscribe(v: Ver, header: u8, id: u16, p: Props, filters: &[&[u8]]) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    body.extend(props(v, &p));
    for f in filters {
        string(f, &mut body);
    }
    frame(header, &body)
}

/// Ill-formed UTF-8 in a string, by kind [MQTT-1.5.3-1] / [MQTT-1.5.4-1].
const BAD_UTF8: [(&str, &[u8]); 7] = [
    ("lone continuation byte", b"a\x80b"),
    ("overlong NUL", b"a\xc0\x80"),
    ("overlong slash", b"a\xe0\x80\xafb"),
    ("UTF-16 surrogate", b"a\xed\xa0\x80"),
    ("byte 0xff", b"\xffa"),
    ("truncated sequence", b"ab\xe2\x82"),
    ("code point over U+10FFFF", b"\xf4\x90\x80\x80"),
];

/// Every case.
pub fn table() -> Vec<Case> {
    let mut t = Table::default();
    connect_cases(&mut t);
    connect_v5_properties(&mut t);
    server_only(&mut t);
    publish_cases(&mut t);
    acks(&mut t);
    subscribe_cases(&mut t);
    unsubscribe_cases(&mut t);
    ping_disconnect_auth(&mut t);
    reserved_and_lengths(&mut t);
    utf8_and_topics(&mut t);
    mosquitto_differences(&mut t);
    t.0
}

/// CONNECT: the first packet, its flags, its payload and the protocol level.
fn connect_cases(t: &mut Table) {
    for v in ALL {
        let mut b = connect(v).bytes();
        b[flags_at(v)] |= 0x01;
        t.first(
            "CONNECT reserved flag",
            "[MQTT-3.1.2-3]",
            v,
            b,
            bad_connect(v),
        );

        let mut b = connect(v).will("w", b"x", 0, false).bytes();
        b[flags_at(v)] |= 0x18;
        let r = tag(v, "[MQTT-3.1.2-14]", "[MQTT-3.1.2-12]");
        t.first("CONNECT will QoS 3", r, v, b, bad_connect(v));

        let mut b = connect(v).bytes();
        b[flags_at(v)] |= 0x08;
        let r = tag(v, "[MQTT-3.1.2-13]", "[MQTT-3.1.2-11]");
        t.first("CONNECT will QoS without will", r, v, b, bad_connect(v));

        let mut b = connect(v).bytes();
        b[flags_at(v)] |= 0x20;
        let r = tag(v, "[MQTT-3.1.2-15]", "[MQTT-3.1.2-13]");
        t.first("CONNECT will retain without will", r, v, b, bad_connect(v));

        let mut c = connect(v);
        c.client_id = b"a\xc3\x28".to_vec();
        let r = tag(v, "[MQTT-1.5.3-1]", "[MQTT-1.5.4-1]");
        t.first(
            "CONNECT client id ill-formed UTF-8",
            r,
            v,
            c.bytes(),
            bad_connect(v),
        );

        let mut c = connect(v);
        c.client_id = b"a\x00b".to_vec();
        let r = tag(v, "[MQTT-1.5.3-2]", "[MQTT-1.5.4-2]");
        t.first(
            "CONNECT client id with U+0000",
            r,
            v,
            c.bytes(),
            bad_connect(v),
        );

        let mut b = connect(v).login("u\u{1}", b"p").bytes();
        // The payload ends with user "u\u{1}" (4 bytes) and password "p" (3 bytes).
        let at = b.len() - 4;
        b[at] = 0xff;
        let r = tag(v, "[MQTT-1.5.3-1]", "[MQTT-1.5.4-1]");
        t.first("CONNECT username ill-formed UTF-8", r, v, b, bad_connect(v));

        let mut c = connect(v).will("w", b"x", 0, false);
        c.will = Some(("a\u{0}".into(), b"x".to_vec(), 0, false));
        let r = tag(v, "[MQTT-1.5.3-2]", "[MQTT-1.5.4-2]");
        t.first(
            "CONNECT will topic with U+0000",
            r,
            v,
            c.bytes(),
            bad_connect(v),
        );

        // A will topic breaking a topic name rule closes without CONNACK in v5 too (v5
        // §3.2.2.2: the CONNACK is a MAY).
        let c = connect(v).will("a/+", b"x", 0, false);
        t.first(
            "CONNECT will topic with wildcard",
            "[MQTT-3.3.2-2]",
            v,
            c.bytes(),
            Close,
        );

        let c = connect(v).will("", b"x", 0, false);
        t.first(
            "CONNECT will topic empty",
            "[MQTT-4.7.3-1]",
            v,
            c.bytes(),
            Close,
        );

        // The client id's length runs past the packet's end.
        let mut b = connect(v).bytes();
        let len = b.len();
        b[len - 4] = 0;
        b[len - 3] = 40;
        let r = "[MQTT-3.1.4-1]";
        t.first("CONNECT client id overruns packet", r, v, b, bad_connect(v));

        // The username flag is set and the payload ends after the client id.
        let mut b = connect(v).bytes();
        b[flags_at(v)] |= 0x80;
        let r = tag(v, "[MQTT-3.1.2-19]", "[MQTT-3.1.2-17]");
        t.first(
            "CONNECT username flag without username",
            r,
            v,
            b,
            bad_connect(v),
        );

        let mut b = connect(v).bytes();
        b[1] += 2;
        b.extend_from_slice(&[0, 0]);
        t.first(
            "CONNECT bytes after payload",
            "§3.1.3",
            v,
            b,
            bad_connect(v),
        );

        let r = tag(v, "[MQTT-3.1.0-2]", "[MQTT-3.1.0-2]");
        t.after("CONNECT twice", r, v, connect(v).bytes(), protocol(v));
    }
    for v in V3 {
        let mut b = connect(v).bytes();
        b[flags_at(v)] |= 0x40;
        t.first(
            "CONNECT password without username",
            "[MQTT-3.1.2-22]",
            v,
            b,
            Close,
        );
    }
    let mut c = Connect::v31("");
    c.clean = true;
    t.first(
        "CONNECT empty client id",
        "§3.1 (MQTT 3.1: 1 to 23 characters)",
        V31,
        c.bytes(),
        Connack(0x02),
    );
    let c = Connect::v311("").clean(false);
    t.first(
        "CONNECT empty client id without clean session",
        "[MQTT-3.1.3-8]",
        V311,
        c.bytes(),
        Connack(0x02),
    );
    for (what, protocol, level, expect) in [
        ("name MQTX", &b"MQTX"[..], 4, Close),
        ("name mqtt", b"mqtt", 4, Close),
        ("name empty", b"", 4, Close),
        ("level 0", b"MQTT", 0, Connack(0x01)),
        ("level 2", b"MQTT", 2, Connack(0x01)),
        ("level 6", b"MQTT", 6, Connack(0x01)),
        ("level 255", b"MQTT", 255, Connack(0x01)),
        ("MQIsdp at level 4", b"MQIsdp", 4, Connack(0x01)),
        ("MQTT at level 3", b"MQTT", 3, Connack(0x01)),
    ] {
        let mut b = Vec::new();
        string(protocol, &mut b);
        b.extend_from_slice(&[level, 0x02, 0, 60]);
        string(b"bad", &mut b);
        let rule = if level == 4 && protocol != b"MQIsdp" {
            "[MQTT-3.1.2-1]"
        } else {
            "[MQTT-3.1.2-2]"
        };
        t.first(
            &format!("CONNECT {what}"),
            rule,
            V311,
            frame(0x10, &b),
            expect,
        );
    }
    for (what, bytes) in [
        (
            "PUBLISH first",
            crate::common::publish("a", b"x", 0, false, 0),
        ),
        ("SUBSCRIBE first", crate::common::subscribe(1, &[("a", 0)])),
        ("PINGREQ first", vec![0xc0, 0x00]),
        ("PUBREL first", vec![0x62, 0x02, 0x00, 0x01]),
        ("DISCONNECT first", vec![0xe0, 0x00]),
    ] {
        t.first(what, "[MQTT-3.1.0-1]", V311, bytes, Close);
    }
}

/// Where the connect flags byte sits in a CONNECT built by `connect(v)`: header, one-byte
/// remaining length, protocol name string, level.
fn flags_at(v: Ver) -> usize {
    match v {
        V31 => 2 + 2 + 6 + 1,
        V311 | V5 => 2 + 2 + 4 + 1,
    }
}

/// v5 CONNECT properties and will properties.
fn connect_v5_properties(t: &mut Table) {
    let refused: [(&str, &'static str, Props, Outcome); 13] = [
        (
            "receive maximum 0",
            "§3.1.2.11.3",
            Props::new().u16(0x21, 0),
            Connack(0x82),
        ),
        (
            "maximum packet size 0",
            "§3.1.2.11.4",
            Props::new().u32(0x27, 0),
            Connack(0x82),
        ),
        (
            "request problem information 2",
            "§3.1.2.11.7",
            Props::new().byte(0x17, 2),
            Connack(0x82),
        ),
        (
            "request response information 2",
            "§3.1.2.11.6",
            Props::new().byte(0x19, 2),
            Connack(0x82),
        ),
        (
            "session expiry twice",
            "§3.1.2.11.2",
            Props::new().u32(0x11, 1).u32(0x11, 2),
            Connack(0x82),
        ),
        (
            "topic alias maximum twice",
            "§3.1.2.11.5",
            Props::new().u16(0x22, 1).u16(0x22, 1),
            Connack(0x82),
        ),
        (
            "authentication data without method",
            "§3.1.2.11.10",
            Props::new().bin(0x16, b"x"),
            Connack(0x82),
        ),
        (
            "unknown property 0x7f",
            "§2.2.2.2",
            Props(vec![0x7f, 0]),
            Connack(0x81),
        ),
        (
            "subscription identifier",
            "§2.2.2.2",
            Props::new().varint(0x0b, 1),
            Connack(0x81),
        ),
        (
            "topic alias",
            "§2.2.2.2",
            Props::new().u16(0x23, 1),
            Connack(0x81),
        ),
        (
            "user property key ill-formed UTF-8",
            "[MQTT-1.5.4-1]",
            Props(vec![0x26, 0, 1, 0xff, 0, 1, b'v']),
            Connack(0x81),
        ),
        (
            "property runs past block",
            "§2.2.2.1",
            Props(vec![0x11, 0, 0]),
            Connack(0x81),
        ),
        (
            "unsupported authentication method",
            "[MQTT-4.12.0-1]",
            Props::new().bin(0x15, b"no-such-method"),
            Connack(0x8c),
        ),
    ];
    for (what, rule, p, expect) in refused {
        let c = Connect::v5("bad", p);
        t.first(
            &format!("CONNECT property {what}"),
            rule,
            V5,
            c.bytes(),
            expect,
        );
    }
    let will: [(&str, &'static str, Props, Outcome); 5] = [
        (
            "will delay twice",
            "§3.1.3.2.2",
            Props::new().u32(0x18, 1).u32(0x18, 1),
            Connack(0x82),
        ),
        (
            "payload format indicator 2",
            "§3.1.3.2.3",
            Props::new().byte(0x01, 2),
            Connack(0x82),
        ),
        (
            "topic alias in will",
            "§2.2.2.2",
            Props::new().u16(0x23, 1),
            Connack(0x81),
        ),
        (
            "response topic with wildcard",
            "[MQTT-3.3.2-14]",
            Props::new().bin(0x08, b"r/#"),
            Close,
        ),
        (
            "content type ill-formed UTF-8",
            "[MQTT-1.5.4-1]",
            Props::new().bin(0x03, b"\xc3"),
            Connack(0x81),
        ),
    ];
    for (what, rule, p, expect) in will {
        let c = Connect::v5("bad", Props::new())
            .will("w", b"x", 0, false)
            .will_props(p);
        t.first(
            &format!("CONNECT will property {what}"),
            rule,
            V5,
            c.bytes(),
            expect,
        );
    }
    // A will property length running past the packet.
    let mut c = Connect::v5("bad", Props::new()).will("w", b"x", 0, false);
    c.will_properties = vec![0x18, 0, 0];
    t.first(
        "CONNECT will property runs past block",
        "§2.2.2.1",
        V5,
        c.bytes(),
        Connack(0x81),
    );
}

/// Packets only a Server sends: CONNACK, SUBACK, UNSUBACK, PINGRESP (§2.1.2 / 3.1.1 §2.2.1).
fn server_only(t: &mut Table) {
    for v in ALL {
        let p = props(v, &Props::new());
        let mut connack = vec![0, 0];
        connack.extend(&p);
        let mut suback = vec![0, 1];
        suback.extend(&p);
        suback.push(0);
        let mut unsuback = vec![0, 1];
        unsuback.extend(&p);
        if v == V5 {
            unsuback.push(0);
        }
        let rule = tag(v, "[MQTT-4.8.0-1]", "§2.1.2");
        t.after(
            "CONNACK from client",
            rule,
            v,
            frame(0x20, &connack),
            protocol(v),
        );
        t.after(
            "SUBACK from client",
            rule,
            v,
            frame(0x90, &suback),
            protocol(v),
        );
        t.after(
            "UNSUBACK from client",
            rule,
            v,
            frame(0xb0, &unsuback),
            protocol(v),
        );
        t.after(
            "PINGRESP from client",
            rule,
            v,
            vec![0xd0, 0x00],
            protocol(v),
        );
    }
}

/// PUBLISH: header flags, packet identifier, topic name, v5 properties.
fn publish_cases(t: &mut Table) {
    for v in ALL {
        let none = Props::new;
        let r = tag(v, "[MQTT-3.3.1-4]", "[MQTT-3.3.1-4]");
        t.after(
            "PUBLISH QoS 3",
            r,
            v,
            publish(v, 0x36, b"a", Some(1), none()),
            malformed(v),
        );
        let r = tag(v, "[MQTT-3.3.1-2]", "[MQTT-3.3.1-2]");
        t.after(
            "PUBLISH DUP at QoS 0",
            r,
            v,
            publish(v, 0x38, b"a", None, none()),
            malformed(v),
        );
        // A packet that parses but breaks a rule is a Protocol Error in v5 (§4.13).
        let r = tag(v, "[MQTT-2.3.1-1]", "[MQTT-2.2.1-3]");
        t.after(
            "PUBLISH QoS 1 packet id 0",
            r,
            v,
            publish(v, 0x32, b"a", Some(0), none()),
            protocol(v),
        );
        t.after(
            "PUBLISH QoS 2 packet id 0",
            r,
            v,
            publish(v, 0x34, b"a", Some(0), none()),
            protocol(v),
        );
        // Remaining length 3: topic "a" and no room for the packet identifier.
        t.after(
            "PUBLISH QoS 1 without packet id",
            "§3.3.2",
            v,
            vec![0x32, 0x03, 0, 1, b'a'],
            malformed(v),
        );
        t.after(
            "PUBLISH topic length overruns",
            "§3.3.2",
            v,
            vec![0x30, 0x03, 0, 9, b'a'],
            malformed(v),
        );
        t.after(
            "PUBLISH remaining length 0",
            "§3.3.2",
            v,
            vec![0x30, 0x00],
            malformed(v),
        );
        t.after(
            "PUBLISH remaining length 1",
            "§3.3.2",
            v,
            vec![0x30, 0x01, 0x00],
            malformed(v),
        );
    }
    let none = Props::new;
    let v5: [(&str, &'static str, Vec<u8>, Outcome); 12] = [
        (
            "topic alias 0",
            "[MQTT-3.3.2-8]",
            publish(V5, 0x30, b"a", None, none().u16(0x23, 0)),
            Disconnect(0x94),
        ),
        (
            "topic alias over maximum",
            "[MQTT-3.3.2-9]",
            publish(V5, 0x30, b"a", None, none().u16(0x23, 65535)),
            Disconnect(0x94),
        ),
        (
            "empty topic without alias",
            "§3.3.2.3.4",
            publish(V5, 0x30, b"", None, none()),
            Disconnect(0x82),
        ),
        (
            "empty topic with unknown alias",
            "§3.3.2.3.4",
            publish(V5, 0x30, b"", None, none().u16(0x23, 1)),
            Disconnect(0x82),
        ),
        (
            "subscription identifier",
            "[MQTT-3.3.4-6]",
            publish(V5, 0x30, b"a", None, none().varint(0x0b, 1)),
            Disconnect(0x82),
        ),
        (
            "payload format twice",
            "§3.3.2.3.2",
            publish(V5, 0x30, b"a", None, none().byte(0x01, 0).byte(0x01, 0)),
            Disconnect(0x82),
        ),
        (
            "topic alias twice",
            "§3.3.2.3.4",
            publish(V5, 0x30, b"a", None, none().u16(0x23, 1).u16(0x23, 1)),
            Disconnect(0x82),
        ),
        (
            "session expiry property",
            "§2.2.2.2",
            publish(V5, 0x30, b"a", None, none().u32(0x11, 1)),
            Disconnect(0x81),
        ),
        (
            "content type ill-formed UTF-8",
            "[MQTT-1.5.4-1]",
            publish(V5, 0x30, b"a", None, none().bin(0x03, b"\xff")),
            Disconnect(0x81),
        ),
        (
            "user property value with U+0000",
            "[MQTT-1.5.4-2]",
            publish(V5, 0x30, b"a", None, Props(vec![0x26, 0, 1, b'k', 0, 1, 0])),
            Disconnect(0x81),
        ),
        (
            "response topic with wildcard",
            "[MQTT-3.3.2-14]",
            publish(V5, 0x30, b"a", None, none().bin(0x08, b"r/+")),
            Disconnect(0x82),
        ),
        (
            "property runs past block",
            "§2.2.2.1",
            {
                // Property length 5 but only 3 bytes of properties and no payload follow.
                let mut b = Vec::new();
                string(b"a", &mut b);
                b.extend_from_slice(&[5, 0x02, 0, 0]);
                frame(0x30, &b)
            },
            Disconnect(0x81),
        ),
    ];
    for (what, rule, bytes, expect) in v5 {
        t.after(&format!("PUBLISH {what}"), rule, V5, bytes, expect);
    }
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP: flags, lengths, packet identifier, v5 properties.
fn acks(t: &mut Table) {
    for (name, good, bad_flags) in [
        ("PUBACK", 0x40u8, 0x41u8),
        ("PUBREC", 0x50, 0x58),
        ("PUBREL", 0x62, 0x60),
        ("PUBCOMP", 0x70, 0x72),
    ] {
        for v in ALL {
            let r = tag(v, "[MQTT-2.2.2-2]", "[MQTT-2.1.3-1]");
            let flags = format!("{name} reserved flags");
            t.after(
                &flags,
                r,
                v,
                vec![bad_flags, 0x02, 0x00, 0x01],
                malformed(v),
            );
            let short = format!("{name} remaining length 1");
            t.after(&short, "§3.4.2", v, vec![good, 0x01, 0x00], malformed(v));
            let short = format!("{name} remaining length 0");
            t.after(&short, "§3.4.2", v, vec![good, 0x00], malformed(v));
            let zero = format!("{name} packet id 0");
            let r = tag(v, "[MQTT-2.3.1-1]", "[MQTT-2.2.1-3]");
            t.after(&zero, r, v, vec![good, 0x02, 0x00, 0x00], protocol(v));
        }
        for v in V3 {
            let long = format!("{name} remaining length 3");
            t.after(
                &long,
                "§3.4.1",
                v,
                vec![good, 0x03, 0x00, 0x01, 0x00],
                malformed(v),
            );
        }
        let long = format!("{name} property runs past block");
        t.after(
            &long,
            "§2.2.2.1",
            V5,
            vec![good, 0x05, 0x00, 0x01, 0x00, 0x05, 0x1f],
            Disconnect(0x81),
        );
        let wrong = format!("{name} topic alias property");
        t.after(
            &wrong,
            "§2.2.2.2",
            V5,
            vec![good, 0x07, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01],
            Disconnect(0x81),
        );
    }
}

/// SUBSCRIBE: flags, packet identifier, payload, options, filters, v5 properties.
fn subscribe_cases(t: &mut Table) {
    for v in ALL {
        let none = Props::new;
        let r = tag(v, "[MQTT-3.8.1-1]", "[MQTT-2.1.3-1]");
        for header in [0x80u8, 0x83, 0x8a] {
            let name = format!("SUBSCRIBE flags {header:#04x}");
            t.after(
                &name,
                r,
                v,
                subscribe(v, header, 1, none(), &[(b"a", 0)]),
                malformed(v),
            );
        }
        let r = tag(v, "[MQTT-2.3.1-1]", "[MQTT-2.2.1-3]");
        t.after(
            "SUBSCRIBE packet id 0",
            r,
            v,
            subscribe(v, 0x82, 0, none(), &[(b"a", 0)]),
            protocol(v),
        );
        let r = tag(v, "[MQTT-3.8.3-3]", "[MQTT-3.8.3-2]");
        t.after(
            "SUBSCRIBE without filters",
            r,
            v,
            subscribe(v, 0x82, 1, none(), &[]),
            protocol(v),
        );
        let r = tag(v, "[MQTT-3.8.3-4]", "§3.8.3.1");
        t.after(
            "SUBSCRIBE QoS 3",
            r,
            v,
            subscribe(v, 0x82, 1, none(), &[(b"a", 3)]),
            malformed(v),
        );
        let r = tag(v, "[MQTT-3.8.3-4]", "[MQTT-3.8.3-5]");
        let reserved = if v == V5 { 0x40 } else { 0x04 };
        t.after(
            "SUBSCRIBE reserved option bit",
            r,
            v,
            subscribe(v, 0x82, 1, none(), &[(b"a", reserved)]),
            malformed(v),
        );
        t.after(
            "SUBSCRIBE reserved bit in second entry",
            r,
            v,
            subscribe(v, 0x82, 1, none(), &[(b"a", 0), (b"b", 0x80)]),
            malformed(v),
        );
        // The options byte is missing: the payload ends after the filter.
        let mut b = vec![0, 1];
        b.extend(props(v, &none()));
        string(b"a", &mut b);
        t.after(
            "SUBSCRIBE without options byte",
            "§3.8.3",
            v,
            frame(0x82, &b),
            malformed(v),
        );
        let mut b = vec![0, 1];
        b.extend(props(v, &none()));
        b.extend_from_slice(&[0, 9, b'a', 0]);
        t.after(
            "SUBSCRIBE filter overruns",
            "§3.8.3",
            v,
            frame(0x82, &b),
            malformed(v),
        );
        t.after(
            "SUBSCRIBE remaining length 1",
            "§3.8.2",
            v,
            vec![0x82, 0x01, 0x00],
            malformed(v),
        );
    }
    let none = Props::new;
    let v5: [(&str, &'static str, Vec<u8>, Outcome); 8] = [
        (
            "retain handling 3",
            "§3.8.3.1",
            subscribe(V5, 0x82, 1, none(), &[(b"a", 0x30)]),
            Disconnect(0x82),
        ),
        (
            "no local on shared subscription",
            "[MQTT-3.8.3-4]",
            subscribe(V5, 0x82, 1, none(), &[(b"$share/g/a", 0x04)]),
            Disconnect(0x82),
        ),
        (
            "subscription identifier 0",
            "§3.8.2.1.2",
            subscribe(V5, 0x82, 1, none().varint(0x0b, 0), &[(b"a", 0)]),
            Disconnect(0x82),
        ),
        (
            "subscription identifier twice",
            "§3.8.2.1.2",
            subscribe(
                V5,
                0x82,
                1,
                none().varint(0x0b, 1).varint(0x0b, 2),
                &[(b"a", 0)],
            ),
            Disconnect(0x82),
        ),
        (
            "topic alias property",
            "§2.2.2.2",
            subscribe(V5, 0x82, 1, none().u16(0x23, 1), &[(b"a", 0)]),
            Disconnect(0x81),
        ),
        (
            "shared subscription without filter",
            "[MQTT-4.8.2-1]",
            subscribe(V5, 0x82, 1, none(), &[(b"$share/g", 0)]),
            Ack(0x8f),
        ),
        (
            "shared subscription empty share name",
            "[MQTT-4.8.2-1]",
            subscribe(V5, 0x82, 1, none(), &[(b"$share//a", 0)]),
            Ack(0x8f),
        ),
        (
            "shared subscription wildcard in share name",
            "[MQTT-4.8.2-2]",
            subscribe(V5, 0x82, 1, none(), &[(b"$share/g+/a", 0)]),
            Ack(0x8f),
        ),
    ];
    for (what, rule, bytes, expect) in v5 {
        t.after(&format!("SUBSCRIBE {what}"), rule, V5, bytes, expect);
    }
}

/// UNSUBSCRIBE: flags, packet identifier, payload, v5 properties.
fn unsubscribe_cases(t: &mut Table) {
    for v in ALL {
        let none = Props::new;
        let r = tag(v, "[MQTT-3.10.1-1]", "[MQTT-2.1.3-1]");
        for header in [0xa0u8, 0xa3] {
            let name = format!("UNSUBSCRIBE flags {header:#04x}");
            t.after(
                &name,
                r,
                v,
                unsubscribe(v, header, 1, none(), &[b"a"]),
                malformed(v),
            );
        }
        let r = tag(v, "[MQTT-2.3.1-1]", "[MQTT-2.2.1-3]");
        t.after(
            "UNSUBSCRIBE packet id 0",
            r,
            v,
            unsubscribe(v, 0xa2, 0, none(), &[b"a"]),
            protocol(v),
        );
        let r = tag(v, "[MQTT-3.10.3-2]", "[MQTT-3.10.3-2]");
        t.after(
            "UNSUBSCRIBE without filters",
            r,
            v,
            unsubscribe(v, 0xa2, 1, none(), &[]),
            protocol(v),
        );
        let r = tag(v, "[MQTT-1.5.3-1]", "[MQTT-1.5.4-1]");
        t.after(
            "UNSUBSCRIBE filter ill-formed UTF-8",
            r,
            v,
            unsubscribe(v, 0xa2, 1, none(), &[b"a\xc3"]),
            malformed(v),
        );
        let r = tag(v, "[MQTT-1.5.3-2]", "[MQTT-1.5.4-2]");
        t.after(
            "UNSUBSCRIBE filter with U+0000",
            r,
            v,
            unsubscribe(v, 0xa2, 1, none(), &[b"a\x00"]),
            malformed(v),
        );
        let mut b = vec![0, 1];
        b.extend(props(v, &none()));
        b.extend_from_slice(&[0, 9, b'a']);
        t.after(
            "UNSUBSCRIBE filter overruns",
            "§3.10.3",
            v,
            frame(0xa2, &b),
            malformed(v),
        );
    }
    t.after(
        "UNSUBSCRIBE topic alias property",
        "§2.2.2.2",
        V5,
        unsubscribe(V5, 0xa2, 1, Props::new().u16(0x23, 1), &[b"a"]),
        Disconnect(0x81),
    );
}

/// PINGREQ, DISCONNECT and AUTH.
fn ping_disconnect_auth(t: &mut Table) {
    for v in ALL {
        let r = tag(v, "[MQTT-2.2.2-2]", "[MQTT-2.1.3-1]");
        t.after("PINGREQ flags 0x01", r, v, vec![0xc1, 0x00], malformed(v));
        t.after("PINGREQ flags 0x08", r, v, vec![0xc8, 0x00], malformed(v));
        t.after(
            "PINGREQ remaining length 1",
            "§3.12",
            v,
            vec![0xc0, 0x01, 0x00],
            malformed(v),
        );
        let r = tag(v, "[MQTT-3.14.1-1]", "[MQTT-2.1.3-1]");
        t.after(
            "DISCONNECT flags 0x01",
            r,
            v,
            vec![0xe1, 0x00],
            malformed(v),
        );
        t.after(
            "DISCONNECT flags 0x04",
            r,
            v,
            vec![0xe4, 0x00],
            malformed(v),
        );
    }
    for v in V3 {
        t.after(
            "DISCONNECT remaining length 1",
            "§3.14",
            v,
            vec![0xe0, 0x01, 0x00],
            Close,
        );
        t.after(
            "AUTH in 3.x",
            "§2.2.1 (type 15 reserved)",
            v,
            vec![0xf0, 0x00],
            Close,
        );
    }
    t.after(
        "DISCONNECT session expiry after 0",
        "§3.14.2.2.2",
        V5,
        vec![0xe0, 0x07, 0x00, 0x05, 0x11, 0, 0, 0, 10],
        Disconnect(0x82),
    );
    t.after(
        "DISCONNECT topic alias property",
        "§2.2.2.2",
        V5,
        vec![0xe0, 0x05, 0x00, 0x03, 0x23, 0, 1],
        Disconnect(0x81),
    );
    t.after(
        "DISCONNECT property runs past block",
        "§2.2.2.1",
        V5,
        vec![0xe0, 0x03, 0x00, 0x05, 0x11],
        Disconnect(0x81),
    );
    t.after(
        "AUTH without authentication method in CONNECT",
        "§4.12",
        V5,
        vec![0xf0, 0x02, 0x18, 0x00],
        Disconnect(0x82),
    );
    t.after(
        "AUTH flags 0x01",
        "[MQTT-2.1.3-1]",
        V5,
        vec![0xf1, 0x02, 0x18, 0x00],
        Disconnect(0x81),
    );
    t.first(
        "AUTH first",
        "[MQTT-3.1.0-1]",
        V5,
        vec![0xf0, 0x02, 0x18, 0x00],
        Close,
    );
}

/// Reserved packet types 0 and 15, the remaining length and the property length encoding.
fn reserved_and_lengths(t: &mut Table) {
    for v in ALL {
        let r = tag(v, "§2.2.1 (type 0 reserved)", "§2.1.2 (type 0 reserved)");
        t.after("type 0", r, v, vec![0x00, 0x00], malformed(v));
        t.after(
            "type 0 with body",
            r,
            v,
            vec![0x00, 0x02, 0x00, 0x01],
            malformed(v),
        );
        let r = tag(v, "§2.2.3", "§1.5.5");
        t.after(
            "remaining length five bytes",
            r,
            v,
            vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
            malformed(v),
        );
    }
    t.first(
        "type 0 first",
        "[MQTT-3.1.0-1]",
        V311,
        vec![0x00, 0x00],
        Close,
    );
    t.first(
        "type 15 first",
        "[MQTT-3.1.0-1]",
        V311,
        vec![0xf0, 0x00],
        Close,
    );
    t.first(
        "remaining length five bytes first",
        "§2.2.3",
        V311,
        vec![0x10, 0x80, 0x80, 0x80, 0x80, 0x01],
        Close,
    );
    // A property length of five bytes, in PUBLISH and in CONNECT.
    let mut b = Vec::new();
    string(b"a", &mut b);
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x01]);
    t.after(
        "PUBLISH property length five bytes",
        "§1.5.5",
        V5,
        frame(0x30, &b),
        Disconnect(0x81),
    );
    let mut b = Vec::new();
    string(b"a", &mut b);
    b.extend_from_slice(&[0x02, 0x0b, 0x80]);
    t.after(
        "PUBLISH subscription identifier truncated varint",
        "§1.5.5",
        V5,
        frame(0x30, &b),
        Disconnect(0x81),
    );
    let mut b = Vec::new();
    string(b"MQTT", &mut b);
    b.extend_from_slice(&[5, 0x02, 0, 60, 0x80, 0x80, 0x80, 0x80, 0x01]);
    string(b"bad", &mut b);
    t.first(
        "CONNECT property length five bytes",
        "§1.5.5",
        V5,
        frame(0x10, &b),
        Connack(0x81),
    );
}

/// Ill-formed UTF-8 in topic names and filters, and topic name and filter rules.
fn utf8_and_topics(t: &mut Table) {
    for v in ALL {
        let r = tag(v, "[MQTT-1.5.3-1]", "[MQTT-1.5.4-1]");
        for (what, bytes) in BAD_UTF8 {
            let name = format!("UTF-8 topic name {what}");
            t.after(
                &name,
                r,
                v,
                publish(v, 0x30, bytes, None, Props::new()),
                malformed(v),
            );
        }
        let name = "UTF-8 topic filter lone continuation byte";
        let sub = subscribe(v, 0x82, 1, Props::new(), &[(b"a\x80", 0)]);
        t.after(name, r, v, sub, malformed(v));
        let sub = subscribe(v, 0x82, 1, Props::new(), &[(b"\xed\xbf\xbf", 0)]);
        t.after("UTF-8 topic filter surrogate", r, v, sub, malformed(v));
        let r = tag(v, "[MQTT-1.5.3-2]", "[MQTT-1.5.4-2]");
        let p = publish(v, 0x30, b"a\x00b", None, Props::new());
        t.after("UTF-8 topic name with U+0000", r, v, p, malformed(v));
        let sub = subscribe(v, 0x82, 1, Props::new(), &[(b"a\x00", 0)]);
        t.after("UTF-8 topic filter with U+0000", r, v, sub, malformed(v));

        let r = "[MQTT-3.3.2-2]";
        for (what, topic) in [
            ("+", &b"+"[..]),
            ("#", b"#"),
            ("a/+/b", b"a/+/b"),
            ("a/#", b"a/#"),
        ] {
            let name = format!("topic name with wildcard {what}");
            t.after(
                &name,
                r,
                v,
                publish(v, 0x30, topic, None, Props::new()),
                protocol(v),
            );
        }
        if v != V5 {
            let p = publish(v, 0x30, b"", None, Props::new());
            t.after("topic name empty", "[MQTT-4.7.3-1]", v, p, malformed(v));
        }
        // A filter breaking a wildcard rule is refused in its own SUBACK code, the connection
        // up (3.1.1 0x80 Failure; v5 0x8F Topic Filter invalid).
        let refused = if v == V5 { Ack(0x8f) } else { Ack(0x80) };
        for (what, filter, rule) in [
            ("# not last", &b"a/#/b"[..], "[MQTT-4.7.1-2]"),
            ("# inside a level", b"a/b#", "[MQTT-4.7.1-2]"),
            ("+ inside a level", b"a/b+/c", "[MQTT-4.7.1-3]"),
            ("empty", b"", "[MQTT-4.7.3-1]"),
        ] {
            let name = format!("topic filter {what}");
            let sub = subscribe(v, 0x82, 1, Props::new(), &[(filter, 0)]);
            t.after(&name, rule, v, sub, refused.clone());
        }
    }
}

/// Where Mosquitto 2.0.11 answers otherwise than the standard (and pipit): pipit keeps its
/// outcome in each. Mosquitto checks little of 3.1 (a CONNECT with reserved or will flags
/// wrong is accepted), ignores packets it does not expect (reserved header flags, a server's
/// packets from a client), closes a bad v5 CONNECT without a CONNACK and many bad v5 packets
/// without a DISCONNECT, and closes on a topic filter it rejects where pipit answers a SUBACK
/// failure code.
fn mosquitto_differences(t: &mut Table) {
    let mut m = |name: &str, o: Outcome| t.mosquitto(name, o);
    for what in [
        "reserved flag",
        "will QoS without will",
        "will retain without will",
        "username ill-formed UTF-8",
        "username flag without username",
    ] {
        m(&format!("CONNECT {what} v3.1"), Accepted);
    }
    m("CONNECT client id overruns packet v3.1", Connack(0x02));
    for what in [
        "reserved flag",
        "will QoS 3",
        "will QoS without will",
        "will retain without will",
        "client id ill-formed UTF-8",
        "client id with U+0000",
        "username ill-formed UTF-8",
        "will topic with U+0000",
        "client id overruns packet",
        "username flag without username",
        "bytes after payload",
        "property receive maximum 0",
        "property maximum packet size 0",
        "property request problem information 2",
        "property request response information 2",
        "property session expiry twice",
        "property topic alias maximum twice",
        "property unknown property 0x7f",
        "property subscription identifier",
        "property topic alias",
        "property user property key ill-formed UTF-8",
        "property property runs past block",
        "will property will delay twice",
        "will property topic alias in will",
        "will property content type ill-formed UTF-8",
        "will property runs past block",
        "property length five bytes",
    ] {
        m(&format!("CONNECT {what} v5"), Close);
    }
    m("CONNECT twice v5", Close);
    for what in [
        "property authentication data without method",
        "will property payload format indicator 2",
        "will property response topic with wildcard",
    ] {
        m(&format!("CONNECT {what} v5"), Accepted);
    }
    for v in ["v3.1", "v3.1.1", "v5"] {
        for what in ["SUBACK", "UNSUBACK", "PINGRESP"] {
            m(&format!("{what} from client {v}"), open());
        }
        m(&format!("PUBLISH DUP at QoS 0 {v}"), open());
        for what in ["flags 0x01", "flags 0x08", "remaining length 1"] {
            m(&format!("PINGREQ {what} {v}"), Open("0xd0:[]".into()));
        }
    }
    m("CONNACK from client v5", Close);
    m("PUBLISH topic alias 0 v5", Disconnect(0x81));
    for what in ["subscription identifier", "response topic with wildcard"] {
        m(&format!("PUBLISH {what} v5"), open());
    }
    for what in [
        "payload format twice",
        "topic alias twice",
        "content type ill-formed UTF-8",
        "user property value with U+0000",
    ] {
        m(&format!("PUBLISH {what} v5"), Close);
    }
    for (ack, answer) in [
        ("PUBACK", ""),
        ("PUBREC", "0x62:[00, 01]"),
        ("PUBREL", "0x70:[00, 01]"),
        ("PUBCOMP", ""),
    ] {
        for v in ["v3.1", "v3.1.1"] {
            m(
                &format!("{ack} remaining length 3 {v}"),
                Open(answer.into()),
            );
            if ack != "PUBREL" || v == "v3.1" {
                m(&format!("{ack} reserved flags {v}"), Open(answer.into()));
            }
        }
        let flags_v5 = if ack == "PUBREL" {
            Close
        } else {
            Open(answer.into())
        };
        m(&format!("{ack} reserved flags v5"), flags_v5);
        for what in [
            "remaining length 1",
            "remaining length 0",
            "packet id 0",
            "property runs past block",
            "topic alias property",
        ] {
            m(&format!("{ack} {what} v5"), Close);
        }
    }
    for flags in ["0x80", "0x83", "0x8a"] {
        m(&format!("SUBSCRIBE flags {flags} v3.1"), Ack(0));
    }
    m(
        "SUBSCRIBE without filters v3.1",
        Other("0x90:[00, 01]".into()),
    );
    for what in [
        "SUBSCRIBE packet id 0",
        "SUBSCRIBE without filters",
        "SUBSCRIBE retain handling 3",
        "SUBSCRIBE subscription identifier 0",
        "SUBSCRIBE shared subscription wildcard in share name",
        "UNSUBSCRIBE packet id 0",
        "UNSUBSCRIBE without filters",
    ] {
        m(&format!("{what} v5"), Disconnect(0x81));
    }
    m("SUBSCRIBE subscription identifier twice v5", Close);
    for what in [
        "no local on shared subscription",
        "shared subscription without filter",
        "shared subscription empty share name",
    ] {
        m(&format!("SUBSCRIBE {what} v5"), Ack(0));
    }
    for what in [
        "# not last",
        "# inside a level",
        "+ inside a level",
        "empty",
    ] {
        for v in ["v3.1", "v3.1.1"] {
            m(&format!("topic filter {what} {v}"), Close);
        }
        m(&format!("topic filter {what} v5"), Disconnect(0x81));
    }
    for what in ["flags 0xa0", "flags 0xa3", "without filters"] {
        m(
            &format!("UNSUBSCRIBE {what} v3.1"),
            Other("0xb0:[00, 01]".into()),
        );
    }
    for what in [
        "DISCONNECT flags 0x01",
        "DISCONNECT flags 0x04",
        "DISCONNECT topic alias property",
        "DISCONNECT property runs past block",
        "AUTH without authentication method in CONNECT",
        "AUTH flags 0x01",
        "remaining length five bytes",
    ] {
        m(&format!("{what} v5"), Close);
    }
    m("type 0 v5", Disconnect(0x82));
    m("type 0 with body v5", Disconnect(0x82));
}
