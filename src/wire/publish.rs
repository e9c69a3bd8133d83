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
        self.encode_head(version, subscription_ids, out);
        out.extend_from_slice(self.payload);
    }

    /// Appends the frame without its payload (the remaining length counts it): what goes
    /// before a payload the caller writes from where it already is, with a vectored write.
    pub fn encode_head(&self, version: Version, subscription_ids: &[u32], out: &mut Vec<u8>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixture::{check, error, frame};
    use crate::wire::{Packet, UserProperties, decode};

    fn publish(
        qos: QoS,
        topic: &'static str,
        packet_id: u16,
        payload: &'static [u8],
    ) -> Publish<'static> {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic,
            packet_id,
            properties: Properties::default(),
            payload,
        }
    }

    #[test]
    fn publish_v311_qos0() {
        let bytes = [0x30, 0x07, 0, 3, b'a', b'/', b'b', b'h', b'i'];
        let expected = publish(QoS::AtMostOnce, "a/b", 0, b"hi");
        check(&bytes, Version::V311, &Packet::Publish(expected));
    }

    #[test]
    fn publish_v311_qos1_dup_retain() {
        let bytes = [0x3b, 0x06, 0, 1, b't', 0, 7, b'x'];
        let expected = Publish {
            dup: true,
            retain: true,
            ..publish(QoS::AtLeastOnce, "t", 7, b"x")
        };
        check(&bytes, Version::V311, &Packet::Publish(expected));
    }

    #[test]
    fn publish_v31_qos2_empty_payload() {
        let bytes = [0x34, 0x05, 0, 1, b't', 0x12, 0x34];
        let expected = publish(QoS::ExactlyOnce, "t", 0x1234, b"");
        check(&bytes, Version::V31, &Packet::Publish(expected));
    }

    #[test]
    fn publish_v5_qos1_with_properties() {
        #[rustfmt::skip]
        let bytes = [
            0x32, 0x2b,
            0, 1, b't', 0, 10,
            0x23,
            0x01, 1,
            0x02, 0, 0, 0, 60,
            0x03, 0, 4, b'j', b's', b'o', b'n',
            0x08, 0, 1, b'r',
            0x09, 0, 2, 1, 2,
            0x23, 0, 5,
            0x26, 0, 1, b'k', 0, 1, b'v',
            0x0b, 5,
            b'h', b'i',
        ];
        let expected = Publish {
            properties: Properties {
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(60),
                content_type: Some("json"),
                response_topic: Some("r"),
                correlation_data: Some(&[1, 2]),
                topic_alias: Some(5),
                user_properties: UserProperties::new(&[0x26, 0, 1, b'k', 0, 1, b'v']),
                subscription_identifier: Some(5),
                ..Properties::default()
            },
            ..publish(QoS::AtLeastOnce, "t", 10, b"hi")
        };
        check(&bytes, Version::V5, &Packet::Publish(expected));
    }

    #[test]
    fn publish_v5_empty_topic_and_no_properties() {
        let bytes = [0x30, 0x03, 0, 0, 0];
        check(
            &bytes,
            Version::V5,
            &Packet::Publish(publish(QoS::AtMostOnce, "", 0, b"")),
        );
    }

    #[test]
    fn publish_v5_several_subscription_identifiers() {
        let p = Publish {
            properties: Properties {
                // Ignored when encoding a PUBLISH: the list below is written instead.
                subscription_identifier: Some(99),
                ..Properties::default()
            },
            ..publish(QoS::AtMostOnce, "t", 0, b"")
        };
        let mut out = Vec::new();
        p.encode(Version::V5, &[1, 300], &mut out);
        assert_eq!(out, [0x30, 0x09, 0, 1, b't', 5, 0x0b, 1, 0x0b, 0xac, 0x02]);
        assert_eq!(p.encoded_len(Version::V5, &[1, 300]), out.len());
        let Ok(Some((Packet::Publish(decoded), _))) = decode(&out, Version::V5, 1024) else {
            panic!("decode");
        };
        // The first one is kept.
        assert_eq!(decoded.properties.subscription_identifier, Some(1));
        // v3 writes no properties at all.
        let mut out = Vec::new();
        p.encode(Version::V311, &[1, 300], &mut out);
        assert_eq!(out, [0x30, 0x03, 0, 1, b't']);
    }

    #[test]
    fn publish_qos_3_is_malformed() {
        let bytes = [0x36, 0x05, 0, 1, b't', 0, 1];
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("qos"));
    }

    #[test]
    fn publish_qos0_with_dup_is_malformed() {
        let bytes = [0x38, 0x03, 0, 1, b't'];
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("dup"));
    }

    #[test]
    fn publish_qos1_packet_id_0_is_protocol_error() {
        let bytes = [0x32, 0x05, 0, 1, b't', 0, 0];
        assert_eq!(error(&bytes, Version::V311), Error::Protocol("packet id"));
    }

    #[test]
    fn publish_invalid_utf8_topic_is_malformed() {
        let bytes = [0x30, 0x04, 0, 2, 0xe2, 0x82];
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("topic"));
    }

    #[test]
    fn publish_null_in_topic_is_malformed() {
        let bytes = [0x30, 0x04, 0, 2, b'a', 0];
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("topic"));
    }

    #[test]
    fn publish_truncated_topic_is_malformed() {
        // The remaining length says 3, the topic length says 5.
        let bytes = [0x30, 0x03, 0, 5, b'a'];
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("topic"));
        // The packet id is cut off.
        let bytes = [0x32, 0x04, 0, 1, b't', 0];
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("packet id"));
    }

    #[test]
    fn publish_v5_missing_property_length_is_malformed() {
        let bytes = [0x30, 0x03, 0, 1, b't'];
        assert_eq!(
            error(&bytes, Version::V5),
            Error::Malformed("property length")
        );
    }

    #[test]
    fn publish_packet_id_offset_finds_and_patches_the_id() {
        let p = publish(QoS::AtLeastOnce, "a/b", 1, b"payload");
        let mut out = Vec::new();
        p.encode(Version::V5, &[], &mut out);
        let offset = publish_packet_id_offset(&out);
        assert_eq!(offset, Some(2 + 2 + 3));
        let offset = offset.unwrap_or_default();
        out[offset..offset + 2].copy_from_slice(&0xbeefu16.to_be_bytes());
        let Ok(Some((Packet::Publish(patched), _))) = decode(&out, Version::V5, 1024) else {
            panic!("decode");
        };
        assert_eq!(patched.packet_id, 0xbeef);

        // A two-byte remaining length moves the id.
        let payload = [0u8; 200];
        let long = Publish {
            payload: &payload,
            ..publish(QoS::ExactlyOnce, "t", 9, b"")
        };
        let mut out = Vec::new();
        long.encode(Version::V311, &[], &mut out);
        assert_eq!(publish_packet_id_offset(&out), Some(3 + 2 + 1));
    }

    #[test]
    fn publish_packet_id_offset_refuses_other_frames() {
        assert_eq!(publish_packet_id_offset(&[0x30, 0x03, 0, 1, b't']), None);
        assert_eq!(publish_packet_id_offset(&[0x40, 0x02, 0, 1]), None);
        assert_eq!(
            publish_packet_id_offset(&[0x36, 0x05, 0, 1, b't', 0, 1]),
            None
        );
        assert_eq!(publish_packet_id_offset(&[0x32, 0x05, 0, 1, b't', 0]), None);
        assert_eq!(publish_packet_id_offset(&[0x32, 0x05, 0, 9, b't']), None);
        assert_eq!(publish_packet_id_offset(&[0x32]), None);
        assert_eq!(
            publish_packet_id_offset(&frame(0x32, &[0, 1, b't', 0, 1])),
            Some(5)
        );
    }
}
