//! The small packets: the four publish acknowledgments (PUBACK, PUBREC, PUBREL, PUBCOMP),
//! DISCONNECT, AUTH (v5 only), PINGREQ and PINGRESP. v5 lets the acknowledgments and
//! DISCONNECT drop a trailing success reason code and empty properties; encoding uses the
//! shortest form the standard allows.

use super::header::PacketType;
use super::property::{Kind, Properties};
use super::reader::Reader;
use super::{Error, Version, writer};

/// PUBACK, PUBREC, PUBREL or PUBCOMP (the packet type travels beside it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ack<'a> {
    /// Packet identifier being acknowledged.
    pub packet_id: u16,
    /// v5 reason code (0 on v3).
    pub reason_code: u8,
    /// Properties (v5; empty otherwise).
    pub properties: Properties<'a>,
}

/// A DISCONNECT packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Disconnect<'a> {
    /// v5 reason code (0, normal disconnection, on v3).
    pub reason_code: u8,
    /// Properties (v5; empty otherwise).
    pub properties: Properties<'a>,
}

/// An AUTH packet (v5 only).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Auth<'a> {
    /// v5 reason code: success, continue authentication or re-authenticate.
    pub reason_code: u8,
    /// Properties: authentication method and data, reason string, user properties.
    pub properties: Properties<'a>,
}

/// Reads the optional v5 tail of an acknowledgment or DISCONNECT: nothing means reason 0 and
/// no properties; one byte is a reason code alone; more is a reason code then properties.
fn reason_and_properties<'a>(
    r: &mut Reader<'a>,
    kind: Kind,
) -> Result<(u8, Properties<'a>), Error> {
    if r.is_empty() {
        return Ok((0, Properties::default()));
    }
    let reason_code = r.u8("reason code")?;
    let properties = if r.is_empty() {
        Properties::default()
    } else {
        Properties::decode(r, kind)?
    };
    r.finish("remaining length")?;
    Ok((reason_code, properties))
}

/// Bytes of the v5 tail in its shortest form (see `reason_and_properties`).
fn tail_len(reason_code: u8, properties: &Properties<'_>) -> usize {
    match (reason_code, properties.encoded_len()) {
        (0, 0) => 0,
        (_, 0) => 1,
        (_, n) => 1 + writer::varint_len(n) + n,
    }
}

/// Appends the v5 tail in its shortest form.
fn encode_tail(reason_code: u8, properties: &Properties<'_>, out: &mut Vec<u8>) {
    match (reason_code, properties.encoded_len()) {
        (0, 0) => {}
        (_, 0) => out.push(reason_code),
        _ => {
            out.push(reason_code);
            properties.encode(out);
        }
    }
}

fn expect_flags(flags: u8, expected: u8) -> Result<(), Error> {
    if flags == expected {
        Ok(())
    } else {
        Err(Error::Malformed("fixed header flags"))
    }
}

/// The fixed header flags a packet of `packet_type` must carry: 0b0010 for PUBREL
/// [MQTT-3.6.1-1], 0 for the others [MQTT-2.2.2-2].
fn required_flags(packet_type: PacketType) -> u8 {
    if packet_type == PacketType::Pubrel {
        0x02
    } else {
        0
    }
}

impl<'a> Ack<'a> {
    /// Parses a PUBACK/PUBREC/PUBREL/PUBCOMP body.
    pub(crate) fn parse(
        packet_type: PacketType,
        flags: u8,
        body: &'a [u8],
        version: Version,
    ) -> Result<Self, Error> {
        expect_flags(flags, required_flags(packet_type))?;
        let mut r = Reader::new(body);
        // [MQTT-2.3.1-1] (v5 [MQTT-2.2.1-3]): packet identifiers are non-zero.
        let packet_id = match r.u16("packet id")? {
            0 => return Err(Error::Protocol("packet id")),
            id => id,
        };
        let (reason_code, properties) = match version {
            Version::V5 => reason_and_properties(&mut r, Kind::Ack)?,
            Version::V31 | Version::V311 => {
                r.finish("remaining length")?;
                (0, Properties::default())
            }
        };
        Ok(Ack {
            packet_id,
            reason_code,
            properties,
        })
    }

    fn body_len(&self, version: Version) -> usize {
        match version {
            Version::V5 => 2 + tail_len(self.reason_code, &self.properties),
            Version::V31 | Version::V311 => 2,
        }
    }

    /// Bytes of the whole encoded frame.
    pub fn encoded_len(&self, version: Version) -> usize {
        writer::frame_len(self.body_len(version))
    }

    /// Appends the frame as `packet_type` (one of the four acknowledgments); v5 uses the
    /// short two-byte form for reason 0 without properties.
    pub fn encode(&self, packet_type: PacketType, version: Version, out: &mut Vec<u8>) {
        let byte1 = (packet_type.nibble() << 4) | required_flags(packet_type);
        writer::header(out, byte1, self.body_len(version));
        writer::u16(out, self.packet_id);
        if version == Version::V5 {
            encode_tail(self.reason_code, &self.properties, out);
        }
    }
}

impl<'a> Disconnect<'a> {
    /// Parses a DISCONNECT body: empty in v3; in v5 an empty body is reason 0.
    pub(crate) fn parse(flags: u8, body: &'a [u8], version: Version) -> Result<Self, Error> {
        // [MQTT-2.2.2-2]
        expect_flags(flags, 0)?;
        let mut r = Reader::new(body);
        let (reason_code, properties) = match version {
            Version::V5 => reason_and_properties(&mut r, Kind::Disconnect)?,
            Version::V31 | Version::V311 => {
                r.finish("remaining length")?;
                (0, Properties::default())
            }
        };
        Ok(Disconnect {
            reason_code,
            properties,
        })
    }

    fn body_len(&self, version: Version) -> usize {
        match version {
            Version::V5 => tail_len(self.reason_code, &self.properties),
            Version::V31 | Version::V311 => 0,
        }
    }

    /// Bytes of the whole encoded frame.
    pub fn encoded_len(&self, version: Version) -> usize {
        writer::frame_len(self.body_len(version))
    }

    /// Appends the frame; v3 (and v5 reason 0 without properties) is `e0 00`.
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) {
        writer::header(out, 0xe0, self.body_len(version));
        if version == Version::V5 {
            encode_tail(self.reason_code, &self.properties, out);
        }
    }
}

impl<'a> Auth<'a> {
    /// Parses an AUTH body; AUTH does not exist before v5.
    pub(crate) fn parse(flags: u8, body: &'a [u8], version: Version) -> Result<Self, Error> {
        if version != Version::V5 {
            return Err(Error::Malformed("packet type"));
        }
        // [MQTT-3.15.1-1]
        expect_flags(flags, 0)?;
        let (reason_code, properties) = reason_and_properties(&mut Reader::new(body), Kind::Auth)?;
        Ok(Auth {
            reason_code,
            properties,
        })
    }

    fn body_len(&self) -> usize {
        if self.reason_code == 0 && self.properties.encoded_len() == 0 {
            0
        } else {
            1 + self.properties.prefixed_len()
        }
    }

    /// Bytes of the whole encoded frame.
    pub fn encoded_len(&self) -> usize {
        writer::frame_len(self.body_len())
    }

    /// Appends the frame: `f0 00` for success without properties, otherwise the reason code
    /// and the property list (always with its length, as v5 3.15.2.2 describes).
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::header(out, 0xf0, self.body_len());
        if self.body_len() != 0 {
            out.push(self.reason_code);
            self.properties.encode(out);
        }
    }
}

/// Checks a PINGREQ/PINGRESP: flags 0 [MQTT-2.2.2-2] and an empty body (else
/// `Malformed(name)`).
pub(crate) fn parse_empty(flags: u8, body: &[u8], name: &'static str) -> Result<(), Error> {
    expect_flags(flags, 0)?;
    if body.is_empty() {
        Ok(())
    } else {
        Err(Error::Malformed(name))
    }
}

/// Appends a PINGREQ frame (`c0 00`).
pub fn encode_pingreq(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xc0, 0x00]);
}

/// Appends a PINGRESP frame (`d0 00`).
pub fn encode_pingresp(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xd0, 0x00]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixture::{check, error};
    use crate::wire::{Packet, decode};

    fn ack(packet_id: u16, reason_code: u8) -> Ack<'static> {
        Ack {
            packet_id,
            reason_code,
            properties: Properties::default(),
        }
    }

    #[test]
    fn acks_v311() {
        let a = ack(5, 0);
        check(&[0x40, 0x02, 0, 5], Version::V311, &Packet::Puback(a));
        check(&[0x50, 0x02, 0, 5], Version::V311, &Packet::Pubrec(a));
        check(&[0x62, 0x02, 0, 5], Version::V311, &Packet::Pubrel(a));
        check(&[0x70, 0x02, 0, 5], Version::V31, &Packet::Pubcomp(a));
    }

    #[test]
    fn acks_v5_short_forms() {
        check(&[0x40, 0x02, 0, 5], Version::V5, &Packet::Puback(ack(5, 0)));
        check(
            &[0x50, 0x03, 0, 5, 0x10],
            Version::V5,
            &Packet::Pubrec(ack(5, 0x10)),
        );
        check(
            &[0x70, 0x03, 0, 5, 0x92],
            Version::V5,
            &Packet::Pubcomp(ack(5, 0x92)),
        );
        // A sender may spell out reason 0 and an empty property list.
        assert_eq!(
            decode(&[0x62, 0x04, 0, 5, 0, 0], Version::V5, 1024),
            Ok(Some((Packet::Pubrel(ack(5, 0)), 6)))
        );
    }

    #[test]
    fn ack_v5_with_properties() {
        let bytes = [0x40, 0x08, 0, 5, 0x87, 4, 0x1f, 0, 1, b'x'];
        let expected = Ack {
            properties: Properties {
                reason_string: Some("x"),
                ..Properties::default()
            },
            ..ack(5, 0x87)
        };
        check(&bytes, Version::V5, &Packet::Puback(expected));
    }

    #[test]
    fn disconnect_v311() {
        let expected = Disconnect {
            reason_code: 0,
            properties: Properties::default(),
        };
        check(&[0xe0, 0x00], Version::V311, &Packet::Disconnect(expected));
    }

    #[test]
    fn disconnect_v5_forms() {
        let normal = Disconnect {
            reason_code: 0,
            properties: Properties::default(),
        };
        check(&[0xe0, 0x00], Version::V5, &Packet::Disconnect(normal));
        let with_will = Disconnect {
            reason_code: 0x04,
            ..normal
        };
        check(
            &[0xe0, 0x01, 0x04],
            Version::V5,
            &Packet::Disconnect(with_will),
        );
        let expiry = Disconnect {
            reason_code: 0,
            properties: Properties {
                session_expiry_interval: Some(0),
                ..Properties::default()
            },
        };
        let bytes = [0xe0, 0x07, 0x00, 5, 0x11, 0, 0, 0, 0];
        check(&bytes, Version::V5, &Packet::Disconnect(expiry));
    }

    #[test]
    fn auth_v5() {
        let success = Auth {
            reason_code: 0,
            properties: Properties::default(),
        };
        check(&[0xf0, 0x00], Version::V5, &Packet::Auth(success));
        let cont = Auth {
            reason_code: 0x18,
            properties: Properties {
                authentication_method: Some("m"),
                ..Properties::default()
            },
        };
        let bytes = [0xf0, 0x06, 0x18, 4, 0x15, 0, 1, b'm'];
        check(&bytes, Version::V5, &Packet::Auth(cont));
    }

    #[test]
    fn pings() {
        check(&[0xc0, 0x00], Version::V311, &Packet::Pingreq);
        check(&[0xd0, 0x00], Version::V5, &Packet::Pingresp);
    }

    #[test]
    fn pubrel_without_flags_is_malformed() {
        assert_eq!(
            error(&[0x60, 0x02, 0, 1], Version::V311),
            Error::Malformed("fixed header flags")
        );
    }

    #[test]
    fn puback_with_flags_is_malformed() {
        assert_eq!(
            error(&[0x42, 0x02, 0, 1], Version::V311),
            Error::Malformed("fixed header flags")
        );
    }

    #[test]
    fn pingreq_with_flags_is_malformed() {
        assert_eq!(
            error(&[0xc1, 0x00], Version::V311),
            Error::Malformed("fixed header flags")
        );
    }

    #[test]
    fn pingreq_with_body_is_malformed() {
        assert_eq!(
            error(&[0xc0, 0x01, 0], Version::V311),
            Error::Malformed("PINGREQ")
        );
    }

    #[test]
    fn disconnect_with_flags_is_malformed() {
        assert_eq!(
            error(&[0xe2, 0x00], Version::V5),
            Error::Malformed("fixed header flags")
        );
    }

    #[test]
    fn puback_packet_id_0_is_protocol_error() {
        assert_eq!(
            error(&[0x40, 0x02, 0, 0], Version::V311),
            Error::Protocol("packet id")
        );
        assert_eq!(
            error(&[0x40, 0x02, 0, 0], Version::V5),
            Error::Protocol("packet id")
        );
    }

    #[test]
    fn truncated_puback_is_malformed() {
        assert_eq!(
            error(&[0x40, 0x01, 0], Version::V311),
            Error::Malformed("packet id")
        );
    }

    #[test]
    fn v311_ack_with_extra_bytes_is_malformed() {
        assert_eq!(
            error(&[0x40, 0x03, 0, 1, 0], Version::V311),
            Error::Malformed("remaining length")
        );
    }

    #[test]
    fn v311_disconnect_with_body_is_malformed() {
        assert_eq!(
            error(&[0xe0, 0x01, 0x00], Version::V311),
            Error::Malformed("remaining length")
        );
    }

    #[test]
    fn auth_on_v311_is_malformed() {
        assert_eq!(
            error(&[0xf0, 0x00], Version::V311),
            Error::Malformed("packet type")
        );
    }

    #[test]
    fn ack_property_not_allowed() {
        // Session Expiry Interval is not an acknowledgment property.
        let bytes = [0x40, 0x09, 0, 1, 0x80, 5, 0x11, 0, 0, 0, 1];
        assert_eq!(
            error(&bytes, Version::V5),
            Error::Malformed("property not allowed")
        );
    }
}
