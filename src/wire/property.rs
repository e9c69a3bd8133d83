//! MQTT 5 properties (v5 section 2.2.2). One table, [`TABLE`], says for every property
//! identifier its value type, the rule its value obeys and which packets may carry it;
//! decoding, encoding and length all walk that table. Decoded properties borrow from the
//! packet; user properties stay as the encoded block they arrived in.

use super::Error;
use super::reader::Reader;
pub use super::user_properties::UserProperties;
use super::writer;

/// The Topic Alias property's name, which is also its decode error's field: a Topic Alias
/// of 0 gets its own reason code (`reason::for_error`), found by this name.
pub(crate) const TOPIC_ALIAS_NAME: &str = "topic alias";
/// Which property block is being decoded: selects the table's "allowed in" column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// CONNECT variable header.
    Connect,
    /// CONNACK.
    Connack,
    /// PUBLISH.
    Publish,
    /// The will properties in CONNECT's payload.
    Will,
    /// PUBACK, PUBREC, PUBREL and PUBCOMP (the standard allows the same set on all four).
    Ack,
    /// SUBSCRIBE.
    Subscribe,
    /// SUBACK.
    Suback,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// UNSUBACK.
    Unsuback,
    /// DISCONNECT.
    Disconnect,
    /// AUTH.
    Auth,
}

impl Kind {
    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

const CONNECT: u16 = Kind::Connect.bit();
const CONNACK: u16 = Kind::Connack.bit();
const PUBLISH: u16 = Kind::Publish.bit();
const WILL: u16 = Kind::Will.bit();
const ACK: u16 = Kind::Ack.bit();
const SUBSCRIBE: u16 = Kind::Subscribe.bit();
const SUBACK: u16 = Kind::Suback.bit();
const UNSUBSCRIBE: u16 = Kind::Unsubscribe.bit();
const UNSUBACK: u16 = Kind::Unsuback.bit();
const DISCONNECT: u16 = Kind::Disconnect.bit();
const AUTH: u16 = Kind::Auth.bit();
#[rustfmt::skip]
const ALL: u16 = CONNECT | CONNACK | PUBLISH | WILL | ACK | SUBSCRIBE | SUBACK | UNSUBSCRIBE
    | UNSUBACK | DISCONNECT | AUTH;

/// Subscription Identifier: may repeat on PUBLISH, and is written from a separate list there.
const SUBSCRIPTION_IDENTIFIER: u8 = 0x0b;
/// User Property: may repeat anywhere; kept as an encoded block.
pub(super) const USER_PROPERTY: u8 = 0x26;

/// The value types of v5 section 1.5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Byte,
    TwoByte,
    FourByte,
    Varint,
    Utf8,
    Binary,
    Pair,
}

/// The rule a value obeys beyond its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Any value of the type.
    Any,
    /// 0 or 1; anything else is a protocol error.
    Bool,
    /// Not 0; 0 is a protocol error.
    NonZero,
}

/// One row of the property table.
pub(super) struct Def {
    id: u8,
    name: &'static str,
    ty: Type,
    rule: Rule,
    allowed: u16,
}

const fn def(id: u8, name: &'static str, ty: Type, rule: Rule, allowed: u16) -> Def {
    Def {
        id,
        name,
        ty,
        rule,
        allowed,
    }
}

/// Every property of v5 table 2-4, in identifier order (the order they are encoded in).
#[rustfmt::skip]
const TABLE: [Def; 27] = [
    // v5 3.3.2.3.2, 3.1.3.2.3: a Payload Format Indicator other than 0 or 1 is an error.
    def(0x01, "payload format indicator", Type::Byte, Rule::Bool, PUBLISH | WILL),
    def(0x02, "message expiry interval", Type::FourByte, Rule::Any, PUBLISH | WILL),
    def(0x03, "content type", Type::Utf8, Rule::Any, PUBLISH | WILL),
    def(0x08, "response topic", Type::Utf8, Rule::Any, PUBLISH | WILL),
    def(0x09, "correlation data", Type::Binary, Rule::Any, PUBLISH | WILL),
    // v5 3.8.2.1.2: a Subscription Identifier of 0 is a protocol error.
    def(0x0b, "subscription identifier", Type::Varint, Rule::NonZero, PUBLISH | SUBSCRIBE),
    def(0x11, "session expiry interval", Type::FourByte, Rule::Any, CONNECT | CONNACK | DISCONNECT),
    def(0x12, "assigned client identifier", Type::Utf8, Rule::Any, CONNACK),
    def(0x13, "server keep alive", Type::TwoByte, Rule::Any, CONNACK),
    def(0x15, "authentication method", Type::Utf8, Rule::Any, CONNECT | CONNACK | AUTH),
    def(0x16, "authentication data", Type::Binary, Rule::Any, CONNECT | CONNACK | AUTH),
    def(0x17, "request problem information", Type::Byte, Rule::Bool, CONNECT),
    def(0x18, "will delay interval", Type::FourByte, Rule::Any, WILL),
    def(0x19, "request response information", Type::Byte, Rule::Bool, CONNECT),
    def(0x1a, "response information", Type::Utf8, Rule::Any, CONNACK),
    def(0x1c, "server reference", Type::Utf8, Rule::Any, CONNACK | DISCONNECT),
    def(0x1f, "reason string", Type::Utf8, Rule::Any,
        CONNACK | ACK | SUBACK | UNSUBACK | DISCONNECT | AUTH),
    // v5 3.1.2.11.3: a Receive Maximum of 0 is a protocol error.
    def(0x21, "receive maximum", Type::TwoByte, Rule::NonZero, CONNECT | CONNACK),
    def(0x22, "topic alias maximum", Type::TwoByte, Rule::Any, CONNECT | CONNACK),
    // v5 3.3.2.3.4: a Topic Alias of 0 is a protocol error.
    def(0x23, TOPIC_ALIAS_NAME, Type::TwoByte, Rule::NonZero, PUBLISH),
    // v5 3.2.2.3.4: a Maximum QoS other than 0 or 1 is a protocol error.
    def(0x24, "maximum qos", Type::Byte, Rule::Bool, CONNACK),
    def(0x25, "retain available", Type::Byte, Rule::Bool, CONNACK),
    def(USER_PROPERTY, "user property", Type::Pair, Rule::Any, ALL),
    // v5 3.1.2.11.4: a Maximum Packet Size of 0 is a protocol error.
    def(0x27, "maximum packet size", Type::FourByte, Rule::NonZero, CONNECT | CONNACK),
    def(0x28, "wildcard subscription available", Type::Byte, Rule::Bool, CONNACK),
    def(0x29, "subscription identifier available", Type::Byte, Rule::Bool, CONNACK),
    def(0x2a, "shared subscription available", Type::Byte, Rule::Bool, CONNACK),
];

pub(super) fn lookup(id: u32) -> Option<&'static Def> {
    TABLE.iter().find(|d| u32::from(d.id) == id)
}

/// One decoded property value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Value<'a> {
    Byte(u8),
    TwoByte(u16),
    /// A four-byte integer or a variable byte integer (the table's type says which).
    Int(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a str, &'a str),
}

impl<'a> Value<'a> {
    pub(super) fn read(r: &mut Reader<'a>, def: &Def) -> Result<Value<'a>, Error> {
        Ok(match def.ty {
            Type::Byte => Value::Byte(r.u8(def.name)?),
            Type::TwoByte => Value::TwoByte(r.u16(def.name)?),
            Type::FourByte => Value::Int(r.u32(def.name)?),
            Type::Varint => Value::Int(r.varint(def.name)?),
            Type::Utf8 => Value::Str(r.str(def.name)?),
            Type::Binary => Value::Bin(r.bin(def.name)?),
            Type::Pair => {
                let (key, value) = r.str_pair(def.name)?;
                Value::Pair(key, value)
            }
        })
    }

    fn as_u32(self) -> Option<u32> {
        match self {
            Value::Byte(v) => Some(u32::from(v)),
            Value::TwoByte(v) => Some(u32::from(v)),
            Value::Int(v) => Some(v),
            Value::Str(_) | Value::Bin(_) | Value::Pair(..) => None,
        }
    }

    /// Bytes of the value as `ty` encodes it (without the identifier).
    fn len(self, ty: Type) -> usize {
        match (self, ty) {
            (Value::Int(v), Type::Varint) => writer::varint_len(v as usize),
            (Value::Byte(_), _) => 1,
            (Value::TwoByte(_), _) => 2,
            (Value::Int(_), _) => 4,
            (Value::Str(s), _) => 2 + s.len(),
            (Value::Bin(b), _) => 2 + b.len(),
            (Value::Pair(k, v), _) => 4 + k.len() + v.len(),
        }
    }

    fn write(self, ty: Type, out: &mut Vec<u8>) {
        match (self, ty) {
            (Value::Int(v), Type::Varint) => writer::varint(out, v as usize),
            (Value::Byte(v), _) => out.push(v),
            (Value::TwoByte(v), _) => writer::u16(out, v),
            (Value::Int(v), _) => writer::u32(out, v),
            (Value::Str(s), _) => writer::str(out, s),
            (Value::Bin(b), _) => writer::bin(out, b),
            (Value::Pair(k, v), _) => {
                writer::str(out, k);
                writer::str(out, v);
            }
        }
    }

    /// Checks `def.rule`; a violation is a protocol error naming the property.
    fn check(self, def: &Def) -> Result<(), Error> {
        let ok = match (def.rule, self.as_u32()) {
            (Rule::Bool, Some(v)) => v <= 1,
            (Rule::NonZero, Some(v)) => v != 0,
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Protocol(def.name))
        }
    }
}

/// The properties of one MQTT 5 packet (or will); absent ones are `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Properties<'a> {
    /// 0x01: 0 unspecified bytes, 1 UTF-8 payload.
    pub payload_format_indicator: Option<u8>,
    /// 0x02: message lifetime in seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x03: MIME-like description of the payload.
    pub content_type: Option<&'a str>,
    /// 0x08: topic for a response message.
    pub response_topic: Option<&'a str>,
    /// 0x09: correlates a response with its request.
    pub correlation_data: Option<&'a [u8]>,
    /// 0x0B: subscription identifier (decoding keeps the first one found).
    pub subscription_identifier: Option<u32>,
    /// 0x11: session lifetime in seconds after the network connection closes.
    pub session_expiry_interval: Option<u32>,
    /// 0x12: client identifier the server assigned.
    pub assigned_client_identifier: Option<&'a str>,
    /// 0x13: keep alive the server imposes.
    pub server_keep_alive: Option<u16>,
    /// 0x15: name of the extended authentication method.
    pub authentication_method: Option<&'a str>,
    /// 0x16: data of the extended authentication exchange.
    pub authentication_data: Option<&'a [u8]>,
    /// 0x17: whether reason strings and user properties may be sent on failures.
    pub request_problem_information: Option<u8>,
    /// 0x18: seconds to wait before publishing the will.
    pub will_delay_interval: Option<u32>,
    /// 0x19: whether the client asks for response information in CONNACK.
    pub request_response_information: Option<u8>,
    /// 0x1A: basis for response topics.
    pub response_information: Option<&'a str>,
    /// 0x1C: another server the client may use.
    pub server_reference: Option<&'a str>,
    /// 0x1F: human-readable diagnostic.
    pub reason_string: Option<&'a str>,
    /// 0x21: how many QoS 1/2 publications may be in flight.
    pub receive_maximum: Option<u16>,
    /// 0x22: highest topic alias accepted.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23: topic alias of this PUBLISH.
    pub topic_alias: Option<u16>,
    /// 0x24: highest QoS the server supports (0 or 1; absent means 2).
    pub maximum_qos: Option<u8>,
    /// 0x25: whether retained messages are supported.
    pub retain_available: Option<u8>,
    /// 0x26: user properties, in order.
    pub user_properties: UserProperties<'a>,
    /// 0x27: largest packet the sender will accept.
    pub maximum_packet_size: Option<u32>,
    /// 0x28: whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29: whether subscription identifiers are supported.
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A: whether shared subscriptions are supported.
    pub shared_subscription_available: Option<u8>,
}

impl<'a> Properties<'a> {
    /// The field for `id` as a value (user properties are kept apart: `None`).
    fn get(&self, id: u8) -> Option<Value<'a>> {
        match id {
            0x01 => self.payload_format_indicator.map(Value::Byte),
            0x02 => self.message_expiry_interval.map(Value::Int),
            0x03 => self.content_type.map(Value::Str),
            0x08 => self.response_topic.map(Value::Str),
            0x09 => self.correlation_data.map(Value::Bin),
            0x0b => self.subscription_identifier.map(Value::Int),
            0x11 => self.session_expiry_interval.map(Value::Int),
            0x12 => self.assigned_client_identifier.map(Value::Str),
            0x13 => self.server_keep_alive.map(Value::TwoByte),
            0x15 => self.authentication_method.map(Value::Str),
            0x16 => self.authentication_data.map(Value::Bin),
            0x17 => self.request_problem_information.map(Value::Byte),
            0x18 => self.will_delay_interval.map(Value::Int),
            0x19 => self.request_response_information.map(Value::Byte),
            0x1a => self.response_information.map(Value::Str),
            0x1c => self.server_reference.map(Value::Str),
            0x1f => self.reason_string.map(Value::Str),
            0x21 => self.receive_maximum.map(Value::TwoByte),
            0x22 => self.topic_alias_maximum.map(Value::TwoByte),
            0x23 => self.topic_alias.map(Value::TwoByte),
            0x24 => self.maximum_qos.map(Value::Byte),
            0x25 => self.retain_available.map(Value::Byte),
            0x27 => self.maximum_packet_size.map(Value::Int),
            0x28 => self.wildcard_subscription_available.map(Value::Byte),
            0x29 => self.subscription_identifier_available.map(Value::Byte),
            0x2a => self.shared_subscription_available.map(Value::Byte),
            _ => None,
        }
    }

    /// Stores a value read for `id` (the table guarantees the value's type matches).
    fn set(&mut self, id: u8, value: Value<'a>) {
        match (id, value) {
            (0x01, Value::Byte(v)) => self.payload_format_indicator = Some(v),
            (0x02, Value::Int(v)) => self.message_expiry_interval = Some(v),
            (0x03, Value::Str(v)) => self.content_type = Some(v),
            (0x08, Value::Str(v)) => self.response_topic = Some(v),
            (0x09, Value::Bin(v)) => self.correlation_data = Some(v),
            (0x0b, Value::Int(v)) => self.subscription_identifier = Some(v),
            (0x11, Value::Int(v)) => self.session_expiry_interval = Some(v),
            (0x12, Value::Str(v)) => self.assigned_client_identifier = Some(v),
            (0x13, Value::TwoByte(v)) => self.server_keep_alive = Some(v),
            (0x15, Value::Str(v)) => self.authentication_method = Some(v),
            (0x16, Value::Bin(v)) => self.authentication_data = Some(v),
            (0x17, Value::Byte(v)) => self.request_problem_information = Some(v),
            (0x18, Value::Int(v)) => self.will_delay_interval = Some(v),
            (0x19, Value::Byte(v)) => self.request_response_information = Some(v),
            (0x1a, Value::Str(v)) => self.response_information = Some(v),
            (0x1c, Value::Str(v)) => self.server_reference = Some(v),
            (0x1f, Value::Str(v)) => self.reason_string = Some(v),
            (0x21, Value::TwoByte(v)) => self.receive_maximum = Some(v),
            (0x22, Value::TwoByte(v)) => self.topic_alias_maximum = Some(v),
            (0x23, Value::TwoByte(v)) => self.topic_alias = Some(v),
            (0x24, Value::Byte(v)) => self.maximum_qos = Some(v),
            (0x25, Value::Byte(v)) => self.retain_available = Some(v),
            (0x27, Value::Int(v)) => self.maximum_packet_size = Some(v),
            (0x28, Value::Byte(v)) => self.wildcard_subscription_available = Some(v),
            (0x29, Value::Byte(v)) => self.subscription_identifier_available = Some(v),
            (0x2a, Value::Byte(v)) => self.shared_subscription_available = Some(v),
            _ => {}
        }
    }

    /// Reads a property length and the property block it covers, enforcing the table for
    /// `kind`: an unknown identifier or one not valid on `kind` is malformed (v5 2.2.2.2); a
    /// duplicate or a value outside its rule is a protocol error.
    pub(crate) fn decode(r: &mut Reader<'a>, kind: Kind) -> Result<Properties<'a>, Error> {
        let len = r.varint("property length")?;
        let block = r.take(len as usize, "property length")?;
        let mut props = Properties::default();
        let mut seen = 0u64;
        let mut has_user_properties = false;
        let mut br = Reader::new(block);
        while !br.is_empty() {
            let def = lookup(br.varint("property id")?).ok_or(Error::Malformed("property id"))?;
            // v5 2.2.2.2: an identifier not valid for the packet type is a Malformed Packet.
            if def.allowed & kind.bit() == 0 {
                return Err(Error::Malformed("property not allowed"));
            }
            // v5 2.2.2.2: including a property more than once is a protocol error, except
            // User Property, and Subscription Identifier on PUBLISH [MQTT-3.3.4-4].
            let repeatable = def.id == USER_PROPERTY
                || (def.id == SUBSCRIPTION_IDENTIFIER && kind == Kind::Publish);
            let bit = 1u64 << def.id;
            if seen & bit != 0 && !repeatable {
                return Err(Error::Protocol("duplicate property"));
            }
            seen |= bit;
            let value = Value::read(&mut br, def)?;
            value.check(def)?;
            if def.id == USER_PROPERTY {
                has_user_properties = true;
            } else if props.get(def.id).is_none() {
                props.set(def.id, value);
            }
        }
        if has_user_properties {
            props.user_properties = UserProperties::new(block);
        }
        Ok(props)
    }

    /// Whether no property is set (the common case, checked before walking the table).
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }

    /// Bytes of the listed properties, with or without the subscription identifier field.
    fn entries_len(&self, with_subscription_identifier: bool) -> usize {
        if self.is_empty() {
            return 0;
        }
        let fields: usize = TABLE
            .iter()
            .filter(|d| with_subscription_identifier || d.id != SUBSCRIPTION_IDENTIFIER)
            .filter_map(|d| self.get(d.id).map(|v| 1 + v.len(d.ty)))
            .sum();
        fields + self.user_properties.encoded_len()
    }

    fn encode_entries(&self, with_subscription_identifier: bool, out: &mut Vec<u8>) {
        if self.is_empty() {
            return;
        }
        for d in &TABLE {
            if !with_subscription_identifier && d.id == SUBSCRIPTION_IDENTIFIER {
                continue;
            }
            if let Some(v) = self.get(d.id) {
                out.push(d.id);
                v.write(d.ty, out);
            }
        }
        self.user_properties.encode_entries(out);
    }

    /// Bytes of the property list itself, without its varint length prefix.
    pub fn encoded_len(&self) -> usize {
        self.entries_len(true)
    }

    /// Appends the varint length and the properties.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::varint(out, self.encoded_len());
        self.encode_entries(true, out);
    }

    /// Bytes of the length prefix plus the properties.
    pub(crate) fn prefixed_len(&self) -> usize {
        let n = self.encoded_len();
        writer::varint_len(n) + n
    }

    /// Bytes of a PUBLISH's property list with its length prefix, where `subscription_ids`
    /// replace `subscription_identifier`.
    pub(crate) fn publish_prefixed_len(&self, subscription_ids: &[u32]) -> usize {
        let n = self.publish_entries_len(subscription_ids);
        writer::varint_len(n) + n
    }

    fn publish_entries_len(&self, subscription_ids: &[u32]) -> usize {
        let ids: usize = subscription_ids
            .iter()
            .map(|&id| 1 + writer::varint_len(id as usize))
            .sum();
        self.entries_len(false) + ids
    }

    /// Appends a PUBLISH's property list: these properties (minus `subscription_identifier`)
    /// then one Subscription Identifier per entry of `subscription_ids` [MQTT-3.3.4-3].
    pub(crate) fn encode_publish(&self, subscription_ids: &[u32], out: &mut Vec<u8>) {
        writer::varint(out, self.publish_entries_len(subscription_ids));
        self.encode_entries(false, out);
        for &id in subscription_ids {
            out.push(SUBSCRIPTION_IDENTIFIER);
            writer::varint(out, id as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixture::{error, frame, round_trip};
    use crate::wire::{Auth, Connack, Disconnect, Packet, Version};

    const KINDS: [Kind; 11] = [
        Kind::Connect,
        Kind::Connack,
        Kind::Publish,
        Kind::Will,
        Kind::Ack,
        Kind::Subscribe,
        Kind::Suback,
        Kind::Unsubscribe,
        Kind::Unsuback,
        Kind::Disconnect,
        Kind::Auth,
    ];

    fn sample(ty: Type) -> Value<'static> {
        match ty {
            Type::Byte => Value::Byte(1),
            Type::TwoByte => Value::TwoByte(300),
            Type::FourByte => Value::Int(70_000),
            Type::Varint => Value::Int(268_435_455),
            Type::Utf8 => Value::Str("é/x"),
            Type::Binary => Value::Bin(&[0, 1, 2]),
            Type::Pair => Value::Pair("key", "value"),
        }
    }

    fn decode_block(block: &[u8], kind: Kind) -> Result<Properties<'_>, Error> {
        let mut r = Reader::new(block);
        let props = Properties::decode(&mut r, kind)?;
        r.finish("trailing")?;
        Ok(props)
    }

    #[test]
    fn every_property_round_trips_on_every_packet_allowing_it() {
        for def in &TABLE {
            let mut props = Properties::default();
            let mut user_block = Vec::new();
            match sample(def.ty) {
                Value::Pair(k, v) => {
                    user_block.extend_from_slice(&[USER_PROPERTY]);
                    writer::str(&mut user_block, k);
                    writer::str(&mut user_block, v);
                }
                value => {
                    props.set(def.id, value);
                    assert_eq!(props.get(def.id), Some(value), "{}: get/set", def.name);
                }
            }
            props.user_properties = UserProperties::new(&user_block);
            let mut out = Vec::new();
            props.encode(&mut out);
            assert_eq!(out.len(), props.prefixed_len(), "{}", def.name);
            assert_eq!(out.get(1), Some(&def.id), "{}", def.name);
            for kind in KINDS {
                let decoded = decode_block(&out, kind);
                if def.allowed & kind.bit() != 0 {
                    assert_eq!(decoded, Ok(props), "{} on {kind:?}", def.name);
                } else {
                    assert_eq!(
                        decoded,
                        Err(Error::Malformed("property not allowed")),
                        "{} on {kind:?}",
                        def.name
                    );
                }
            }
        }
    }

    #[test]
    fn table_is_in_identifier_order_without_repeats() {
        assert!(TABLE.windows(2).all(|w| w[0].id < w[1].id));
        assert!(
            TABLE.iter().all(|d| d.id < 64),
            "the duplicate mask is a u64"
        );
    }

    #[test]
    fn connack_properties_round_trip() {
        let user = [0x26, 0, 1, b'a', 0, 0, 0x26, 0, 1, b'a', 0, 1, b'b'];
        let connack = Connack {
            session_present: false,
            reason_code: 0x86,
            properties: Properties {
                session_expiry_interval: Some(u32::MAX),
                assigned_client_identifier: Some("auto-1"),
                server_keep_alive: Some(30),
                authentication_method: Some("SCRAM"),
                authentication_data: Some(b"\x00\xff"),
                response_information: Some("resp/"),
                server_reference: Some("other:1883"),
                reason_string: Some("bad credentials"),
                receive_maximum: Some(100),
                topic_alias_maximum: Some(0),
                maximum_qos: Some(0),
                retain_available: Some(0),
                user_properties: UserProperties::new(&user),
                maximum_packet_size: Some(1 << 20),
                wildcard_subscription_available: Some(1),
                subscription_identifier_available: Some(0),
                shared_subscription_available: Some(1),
                ..Properties::default()
            },
        };
        round_trip(&Packet::Connack(connack), Version::V5);
    }

    #[test]
    fn disconnect_and_auth_properties_round_trip() {
        let disconnect = Disconnect {
            reason_code: 0x9c,
            properties: Properties {
                session_expiry_interval: Some(0),
                server_reference: Some("b"),
                reason_string: Some("moved"),
                ..Properties::default()
            },
        };
        round_trip(&Packet::Disconnect(disconnect), Version::V5);
        let auth = Auth {
            reason_code: 0x18,
            properties: Properties {
                authentication_method: Some("m"),
                authentication_data: Some(b"d"),
                reason_string: Some("r"),
                ..Properties::default()
            },
        };
        round_trip(&Packet::Auth(auth), Version::V5);
    }

    #[test]
    fn unknown_property_id_is_malformed() {
        let bytes = frame(0x30, &[0, 1, b't', 2, 0x04, 0]);
        assert_eq!(error(&bytes, Version::V5), Error::Malformed("property id"));
    }

    #[test]
    fn duplicate_property_is_protocol_error() {
        let bytes = frame(0x30, &[0, 1, b't', 6, 0x23, 0, 1, 0x23, 0, 2]);
        assert_eq!(
            error(&bytes, Version::V5),
            Error::Protocol("duplicate property")
        );
    }

    #[test]
    fn repeatable_properties() {
        // User properties repeat anywhere; subscription identifiers only on PUBLISH.
        let users = [10, 0x26, 0, 0, 0, 0, 0x26, 0, 0, 0, 0];
        assert!(decode_block(&users[..], Kind::Ack).is_ok());
        let ids = [4, 0x0b, 1, 0x0b, 2];
        assert_eq!(
            decode_block(&ids, Kind::Publish).map(|p| p.subscription_identifier),
            Ok(Some(1))
        );
        assert_eq!(
            decode_block(&ids, Kind::Subscribe),
            Err(Error::Protocol("duplicate property"))
        );
    }

    #[test]
    fn property_not_allowed_on_packet_is_malformed() {
        // Session Expiry Interval on PUBLISH.
        let bytes = frame(0x30, &[0, 1, b't', 5, 0x11, 0, 0, 0, 1]);
        assert_eq!(
            error(&bytes, Version::V5),
            Error::Malformed("property not allowed")
        );
    }

    #[test]
    fn property_length_past_the_packet_is_malformed() {
        let bytes = frame(0x30, &[0, 1, b't', 10, 0x01, 1]);
        assert_eq!(
            error(&bytes, Version::V5),
            Error::Malformed("property length")
        );
    }

    #[test]
    fn property_value_past_its_block_is_malformed() {
        // The block is 2 bytes but Message Expiry Interval needs 4 after its id.
        assert_eq!(
            decode_block(&[2, 0x02, 0, 0, 0, 0], Kind::Publish),
            Err(Error::Malformed("message expiry interval"))
        );
    }

    #[test]
    fn boolean_properties_must_be_0_or_1() {
        for def in TABLE.iter().filter(|d| d.rule == Rule::Bool) {
            let kind = KINDS.into_iter().find(|k| def.allowed & k.bit() != 0);
            let kind = kind.unwrap_or(Kind::Connack);
            assert_eq!(
                decode_block(&[2, def.id, 2], kind),
                Err(Error::Protocol(def.name)),
                "{}",
                def.name
            );
            assert!(decode_block(&[2, def.id, 1], kind).is_ok(), "{}", def.name);
        }
    }

    #[test]
    fn zero_is_a_protocol_error_where_the_standard_says_so() {
        let cases: [(&[u8], Kind, &str); 4] = [
            (&[3, 0x21, 0, 0], Kind::Connect, "receive maximum"),
            (&[5, 0x27, 0, 0, 0, 0], Kind::Connect, "maximum packet size"),
            (&[2, 0x0b, 0], Kind::Subscribe, "subscription identifier"),
            (&[3, 0x23, 0, 0], Kind::Publish, "topic alias"),
        ];
        for (block, kind, name) in cases {
            assert_eq!(
                decode_block(block, kind),
                Err(Error::Protocol(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn user_properties_keep_order_and_skip_other_entries() {
        let block = [
            0x26, 0, 1, b'a', 0, 1, b'1', 0x01, 1, 0x26, 0, 1, b'b', 0, 0,
        ];
        let user = UserProperties::new(&block);
        assert!(!user.is_empty());
        assert_eq!(user.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "")]);
        assert_eq!(user.encoded_len(), 13);
        let mut owned = Vec::new();
        user.encode_entries(&mut owned);
        assert_eq!(owned.len(), user.encoded_len());
        assert_eq!(UserProperties::new(&owned), user);
        assert!(UserProperties::default().is_empty());
        assert!(UserProperties::new(&[0x01, 1]).is_empty());
    }

    #[test]
    fn decoded_user_properties_borrow_the_whole_block() {
        let block = [9, 0x26, 0, 1, b'k', 0, 0, 0x23, 0, 7];
        let props = decode_block(&block, Kind::Publish);
        let props = props.unwrap_or_default();
        assert_eq!(props.topic_alias, Some(7));
        assert_eq!(
            props.user_properties.iter().collect::<Vec<_>>(),
            [("k", "")]
        );
        // Re-encoding writes the table's fields first, then the user properties.
        let mut out = Vec::new();
        props.encode(&mut out);
        assert_eq!(out, [9, 0x23, 0, 7, 0x26, 0, 1, b'k', 0, 0]);
    }
}
