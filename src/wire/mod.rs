//! The sans-IO MQTT codec: bytes in, typed borrowed packets out, and back.
//!
//! `decode` first checks that a whole frame is in the buffer (see `header.rs`) and only then
//! parses it into a [`Packet`] whose strings and payloads borrow from that buffer: nothing is
//! copied until the broker decides to keep it. "Need more bytes" is `Ok(None)`; every `Err`
//! means the connection must be closed (after a CONNACK/DISCONNECT chosen by `reason.rs`).
//!
//! Encoding appends exactly one frame to a `Vec<u8>`; `encoded_len` is exact, so callers can
//! check a frame against a peer's maximum packet size before writing it.
//!
//! Nothing outside this module indexes bytes a peer sent.

mod connect;
mod control;
#[cfg(test)]
mod fixture;
mod header;
#[cfg(test)]
mod hostile;
mod property;
mod publish;
mod reader;
pub mod reason;
mod subscribe;
mod user_properties;
mod writer;

pub use connect::{Connack, Connect, Will, connect_version};
pub use control::{Ack, Auth, Disconnect, encode_pingreq, encode_pingresp};
pub use header::{Frame, PacketType, check_frame};
pub use property::{Properties, UserProperties};
pub use publish::{Publish, publish_packet_id_offset};
pub use subscribe::{
    RetainHandling, Suback, Subscribe, SubscribeFilters, SubscriptionOptions, Unsuback,
    Unsubscribe, UnsubscribeFilters, encode_subscribe, encode_unsubscribe,
};

/// Largest MQTT packet: one header byte, four length bytes and the largest remaining length;
/// a peer that states no Maximum Packet Size accepts this much (v5 3.1.2.11.4).
pub const MAX_PACKET_SIZE: u32 = 268_435_460;

/// The MQTT protocol revision a connection speaks, fixed by its CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V31,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V311,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5,
}

impl Version {
    /// The protocol level byte carried in CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Version::V31 => 3,
            Version::V311 => 4,
            Version::V5 => 5,
        }
    }
}

/// Quality of service of a PUBLISH or a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// At most once.
    AtMostOnce = 0,
    /// At least once: PUBLISH, PUBACK.
    AtLeastOnce = 1,
    /// Exactly once: PUBLISH, PUBREC, PUBREL, PUBCOMP.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a two-bit field value; 3 is not a QoS.
    pub fn from_bits(bits: u8) -> Option<QoS> {
        match bits {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// One decoded MQTT control packet, borrowing from the receive buffer.
///
/// CONNECT, with two property lists, is twice the size of any other packet; it is boxed (one
/// allocation per connection) so that the packets decoded by the thousand, PUBLISH and the
/// acknowledgements, are not moved around at CONNECT's size.
#[derive(Clone, Debug, PartialEq)]
pub enum Packet<'a> {
    /// CONNECT (client to server).
    Connect(Box<Connect<'a>>),
    /// CONNACK (server to client).
    Connack(Connack<'a>),
    /// PUBLISH (both ways).
    Publish(Publish<'a>),
    /// PUBACK (both ways).
    Puback(Ack<'a>),
    /// PUBREC (both ways).
    Pubrec(Ack<'a>),
    /// PUBREL (both ways).
    Pubrel(Ack<'a>),
    /// PUBCOMP (both ways).
    Pubcomp(Ack<'a>),
    /// SUBSCRIBE (client to server).
    Subscribe(Subscribe<'a>),
    /// SUBACK (server to client).
    Suback(Suback<'a>),
    /// UNSUBSCRIBE (client to server).
    Unsubscribe(Unsubscribe<'a>),
    /// UNSUBACK (server to client).
    Unsuback(Unsuback<'a>),
    /// PINGREQ (client to server).
    Pingreq,
    /// PINGRESP (server to client).
    Pingresp,
    /// DISCONNECT (both ways; server-sent only in v5).
    Disconnect(Disconnect<'a>),
    /// AUTH (v5 only, both ways).
    Auth(Auth<'a>),
}

/// Why a frame could not be decoded. Every variant means "close the connection".
///
/// Variants name the field or rule that failed so the log line says what the peer got wrong;
/// `reason.rs` maps each to the CONNACK/DISCONNECT reason code to send first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The bytes break the packet's grammar: a truncated field, bad varint, bad UTF-8, wrong
    /// fixed-header flags, a remaining length that disagrees with the content, a property not
    /// valid on the packet (v5 2.2.2.2). Names the field.
    Malformed(&'static str),
    /// Well-formed bytes that a rule of the standard forbids (packet id 0, QoS 3, a property
    /// twice, will flags inconsistent). Names the rule.
    Protocol(&'static str),
    /// The remaining length exceeds the maximum packet size; refused before the body arrives.
    TooLarge,
    /// CONNECT's protocol name is not `MQTT`/`MQIsdp`: close without a CONNACK [MQTT-3.1.2-1].
    BadProtocolName,
    /// CONNECT's protocol level is not 3, 4 or 5: CONNACK 0x01 / 0x84 then close [MQTT-3.1.2-2].
    UnsupportedProtocolVersion,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Malformed(field) => write!(f, "malformed packet ({field})"),
            Error::Protocol(rule) => write!(f, "protocol error ({rule})"),
            Error::TooLarge => f.write_str("packet too large"),
            Error::BadProtocolName => f.write_str("bad protocol name"),
            Error::UnsupportedProtocolVersion => f.write_str("unsupported protocol version"),
        }
    }
}

/// Decodes the first packet in `buf`.
///
/// Returns `Ok(None)` until a whole frame is present, `Ok(Some((packet, frame_len)))` once it
/// is (the caller consumes `frame_len` bytes after handling the packet), or `Err` to close.
/// `version` is the connection's protocol version (ignored for CONNECT, which carries its own).
/// A remaining length above `max_packet_size` is `Err(TooLarge)` as soon as the header is read.
pub fn decode(
    buf: &[u8],
    version: Version,
    max_packet_size: u32,
) -> Result<Option<(Packet<'_>, usize)>, Error> {
    decode_with(buf, version, max_packet_size, Packet::clone)
}

/// Like [`decode`], but lends the packet to `handle` instead of returning it, and returns
/// what `handle` returned. The broker's receive path uses this: a packet is a few hundred
/// bytes (PUBLISH and the acks carry MQTT 5 properties), and handing it back through
/// `Result` and `Option` copied it at each step; here each packet type is built right where
/// it is lent.
pub fn decode_with<'a, R>(
    buf: &'a [u8],
    version: Version,
    max_packet_size: u32,
    handle: impl FnOnce(&Packet<'a>) -> R,
) -> Result<Option<(R, usize)>, Error> {
    let Some(frame) = check_frame(buf, max_packet_size)? else {
        return Ok(None);
    };
    let (kind, flags, v) = (frame.packet_type, frame.flags, version);
    let body = &buf[frame.header_len..frame.total_len];
    let handled = match kind {
        PacketType::Connect => handle(&Packet::Connect(Box::new(Connect::parse(flags, body)?))),
        PacketType::Connack => handle(&Packet::Connack(Connack::parse(flags, body, v)?)),
        PacketType::Publish => handle(&Packet::Publish(Publish::parse(flags, body, v)?)),
        PacketType::Puback => handle(&Packet::Puback(Ack::parse(kind, flags, body, v)?)),
        PacketType::Pubrec => handle(&Packet::Pubrec(Ack::parse(kind, flags, body, v)?)),
        PacketType::Pubrel => handle(&Packet::Pubrel(Ack::parse(kind, flags, body, v)?)),
        PacketType::Pubcomp => handle(&Packet::Pubcomp(Ack::parse(kind, flags, body, v)?)),
        PacketType::Subscribe => handle(&Packet::Subscribe(Subscribe::parse(flags, body, v)?)),
        PacketType::Suback => handle(&Packet::Suback(Suback::parse(flags, body, v)?)),
        PacketType::Unsubscribe => {
            handle(&Packet::Unsubscribe(Unsubscribe::parse(flags, body, v)?))
        }
        PacketType::Unsuback => handle(&Packet::Unsuback(Unsuback::parse(flags, body, v)?)),
        PacketType::Pingreq => {
            control::parse_empty(flags, body, "PINGREQ")?;
            handle(&Packet::Pingreq)
        }
        PacketType::Pingresp => {
            control::parse_empty(flags, body, "PINGRESP")?;
            handle(&Packet::Pingresp)
        }
        PacketType::Disconnect => handle(&Packet::Disconnect(Disconnect::parse(flags, body, v)?)),
        PacketType::Auth => handle(&Packet::Auth(Auth::parse(flags, body, v)?)),
    };
    Ok(Some((handled, frame.total_len)))
}
