//! PUBLISH (v3.1.1 section 3.3, v5 section 3.3), both directions. Topic and payload borrow
//! from the frame. Topic name syntax (wildcards, empty topic with an alias) is the broker's
//! to judge; the codec checks the flags, the UTF-8 and the packet identifier.

use super::property::{Kind, Properties};
use super::reader::{Reader, varint_prefix};
use super::{Error, QoS, Version, writer};

/// A PUBLISH packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Publish<'a> {
    /// Re-delivery of an earlier attempt.
    pub dup: bool,
    /// Delivery QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic name (may be empty in v5 when a topic alias is used).
    pub topic: &'a str,
    /// Packet identifier; 0 for QoS 0.
    pub packet_id: u16,
    /// PUBLISH properties (v5; empty otherwise).
    pub properties: Properties<'a>,
    /// Application message: the rest of the body, possibly empty.
    pub payload: &'a [u8],
}

const FLAG_DUP: u8 = 0x08;
const FLAG_RETAIN: u8 = 0x01;

impl<'a> Publish<'a> {
    /// Parses a PUBLISH body; `flags` carry DUP, QoS and RETAIN.
    pub(crate) fn parse(flags: u8, body: &'a [u8], version: Version) -> Result<Self, Error> {
        // [MQTT-3.3.1-4]: QoS bits 11 are malformed.
        let qos = QoS::from_bits((flags >> 1) & 0x03).ok_or(Error::Malformed("qos"))?;
        let dup = flags & FLAG_DUP != 0;
        // [MQTT-3.3.1-2]: DUP must be 0 for QoS 0.
        if qos == QoS::AtMostOnce && dup {
            return Err(Error::Malformed("dup"));
        }
        let mut r = Reader::new(body);
        // [MQTT-3.3.2-1]: the topic name is a UTF-8 string.
        let topic = r.str("topic")?;
        let packet_id = if qos == QoS::AtMostOnce {
            0
        } else {
            // [MQTT-2.3.1-1] (v5 [MQTT-2.2.1-3]): non-zero packet identifier for QoS > 0.
            match r.u16("packet id")? {
                0 => return Err(Error::Protocol("packet id")),
                id => id,
            }
        };
        let properties = match version {
            Version::V5 => Properties::decode(&mut r, Kind::Publish)?,
            Version::V31 | Version::V311 => Properties::default(),
        };
        Ok(Publish {
            dup,
            qos,
            retain: flags & FLAG_RETAIN != 0,
            topic,
            packet_id,
            properties,
            payload: r.rest(),
        })
    }

    fn body_len(&self, version: Version, subscription_ids: &[u32]) -> usize {
        let mut len = 2 + self.topic.len() + self.payload.len();
        if self.qos != QoS::AtMostOnce {
            len += 2;
        }
        if version == Version::V5 {
            len += self.properties.publish_prefixed_len(subscription_ids);
        }
        len
    }

    /// Bytes of the whole encoded frame.
    pub fn encoded_len(&self, version: Version, subscription_ids: &[u32]) -> usize {
        writer::frame_len(self.body_len(version, subscription_ids))
    }

    /// Appends the frame; in v5 `subscription_ids` are written as Subscription Identifier
    /// properties after `properties` (`properties.subscription_identifier` is ignored when
    /// encoding a PUBLISH). The packet identifier is written only for QoS > 0.
    pub fn encode(&self, version: Version, subscription_ids: &[u32], out: &mut Vec<u8>) {
        let mut byte1 = 0x30 | ((self.qos as u8) << 1);
        if self.dup {
            byte1 |= FLAG_DUP;
        }
        if self.retain {
            byte1 |= FLAG_RETAIN;
        }
        writer::header(out, byte1, self.body_len(version, subscription_ids));
        writer::str(out, self.topic);
        if self.qos != QoS::AtMostOnce {
            writer::u16(out, self.packet_id);
        }
        if version == Version::V5 {
            self.properties.encode_publish(subscription_ids, out);
        }
        out.extend_from_slice(self.payload);
    }
}

/// Offset of the packet identifier within an encoded PUBLISH frame with QoS > 0 (so a broker
/// can encode once and patch the id per subscriber); None if the frame is not such a PUBLISH
/// or is truncated.
pub fn publish_packet_id_offset(frame: &[u8]) -> Option<usize> {
    let (&byte1, rest) = frame.split_first()?;
    let qos_bits = (byte1 >> 1) & 0x03;
    if byte1 >> 4 != 3 || qos_bits == 0 || qos_bits == 3 {
        return None;
    }
    let (_, varint_len) = varint_prefix(rest, "remaining length").ok()??;
    let header_len = 1 + varint_len;
    let mut r = Reader::new(frame.get(header_len..)?);
    let topic_len = r.bin("topic").ok()?.len();
    r.u16("packet id").ok()?;
    Some(header_len + 2 + topic_len)
}
