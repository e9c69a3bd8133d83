//! CONNECT and CONNACK (v3.1.1 sections 3.1-3.2, v5 sections 3.1-3.2). CONNECT carries its
//! own protocol version; CONNACK is read and written in the connection's version. The
//! codec checks grammar and flag consistency; client identifier rules are the broker's.

use super::property::{Kind, Properties, UserProperties};
use super::reader::{Reader, varint_prefix};
use super::{Error, QoS, Version, writer};

/// The protocol version a CONNECT frame at the start of `buf` asks for, read from its
/// protocol name and level alone, so a CONNECT that fails to decode further can still be
/// answered in its own version. `None` if `buf` does not start that way.
pub fn connect_version(buf: &[u8]) -> Option<Version> {
    let (&byte1, rest) = buf.split_first()?;
    if byte1 >> 4 != 1 {
        return None;
    }
    let (_, varint_len) = varint_prefix(rest, "remaining length").ok()??;
    let mut r = Reader::new(rest.get(varint_len..)?);
    match (
        r.bin("protocol name").ok()?,
        r.u8("protocol level").ok()? & 0x7f,
    ) {
        (b"MQIsdp", 3) => Some(Version::V31),
        (b"MQTT", 4) => Some(Version::V311),
        (b"MQTT", 5) => Some(Version::V5),
        _ => None,
    }
}

/// A CONNECT packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Connect<'a> {
    /// The protocol version named by the protocol name and level.
    pub version: Version,
    /// The protocol level's top bit (0x83, 0x84): Mosquitto's `try_private`, a bridge
    /// announcing itself so the server treats its subscriptions as no-local.
    pub bridge: bool,
    /// Clean Session (v3) / Clean Start (v5).
    pub clean_start: bool,
    /// Keep alive in seconds; 0 turns it off.
    pub keep_alive: u16,
    /// CONNECT properties (v5; empty otherwise).
    pub properties: Properties<'a>,
    /// The client identifier, possibly empty.
    pub client_id: &'a str,
    /// The will message, if the will flag is set.
    pub will: Option<Will<'a>>,
    /// The user name, if its flag is set.
    pub username: Option<&'a str>,
    /// The password, if its flag is set.
    pub password: Option<&'a [u8]>,
}

/// The will message a CONNECT asks the server to publish if the connection ends badly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Will<'a> {
    /// Topic to publish the will on.
    pub topic: &'a str,
    /// Will payload.
    pub payload: &'a [u8],
    /// QoS to publish the will with.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// Will properties (v5; empty otherwise).
    pub properties: Properties<'a>,
}

/// A CONNACK packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Connack<'a> {
    /// Whether the server resumed a session.
    pub session_present: bool,
    /// v5 reason code, or the v3 return code.
    pub reason_code: u8,
    /// CONNACK properties (v5; empty otherwise).
    pub properties: Properties<'a>,
}

const FLAG_RESERVED: u8 = 0x01;
const FLAG_CLEAN_START: u8 = 0x02;
const FLAG_WILL: u8 = 0x04;
const FLAG_WILL_QOS_SHIFT: u8 = 3;
const FLAG_WILL_RETAIN: u8 = 0x20;
const FLAG_PASSWORD: u8 = 0x40;
const FLAG_USERNAME: u8 = 0x80;

/// The protocol name written for `version`.
fn protocol_name(version: Version) -> &'static [u8] {
    match version {
        Version::V31 => b"MQIsdp",
        Version::V311 | Version::V5 => b"MQTT",
    }
}

impl<'a> Connect<'a> {
    /// Parses a CONNECT body; `flags` is the fixed header's low nibble.
    pub(crate) fn parse(flags: u8, body: &'a [u8]) -> Result<Self, Error> {
        // [MQTT-2.2.2-2]: reserved flags must be 0.
        if flags != 0 {
            return Err(Error::Malformed("fixed header flags"));
        }
        let mut r = Reader::new(body);
        let name = r.bin("protocol name")?;
        let level = r.u8("protocol level")?;
        // Mosquitto's bridge bit, taken with the 3.x levels only, as Mosquitto takes it.
        let bridge = matches!(level, 0x83 | 0x84);
        let level = if bridge { level & 0x7f } else { level };
        // [MQTT-3.1.2-1], [MQTT-3.1.2-2]
        let version = match (name, level) {
            (b"MQIsdp", 3) => Version::V31,
            (b"MQTT", 4) => Version::V311,
            (b"MQTT", 5) => Version::V5,
            (b"MQIsdp" | b"MQTT", _) => return Err(Error::UnsupportedProtocolVersion),
            _ => return Err(Error::BadProtocolName),
        };
        let connect_flags = r.u8("connect flags")?;
        // [MQTT-3.1.2-3]: the reserved flag must be 0.
        if connect_flags & FLAG_RESERVED != 0 {
            return Err(Error::Malformed("connect flags"));
        }
        let will_flag = connect_flags & FLAG_WILL != 0;
        let will_qos_bits = (connect_flags >> FLAG_WILL_QOS_SHIFT) & 0x03;
        let will_retain = connect_flags & FLAG_WILL_RETAIN != 0;
        // [MQTT-3.1.2-14]: will QoS 3 is not a QoS.
        let will_qos = QoS::from_bits(will_qos_bits).ok_or(Error::Malformed("will qos"))?;
        // [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]: without a will, will QoS and
        // will retain must be 0.
        if !will_flag && (will_qos_bits != 0 || will_retain) {
            return Err(Error::Malformed("will flags"));
        }
        let has_username = connect_flags & FLAG_USERNAME != 0;
        let has_password = connect_flags & FLAG_PASSWORD != 0;
        // [MQTT-3.1.2-22]: v3 needs a user name for a password (v5 allows it alone).
        if version != Version::V5 && has_password && !has_username {
            return Err(Error::Malformed("password flag"));
        }
        let keep_alive = r.u16("keep alive")?;
        let properties = match version {
            Version::V5 => Properties::decode(&mut r, Kind::Connect)?,
            Version::V31 | Version::V311 => Properties::default(),
        };
        // [MQTT-3.1.3-1]: client id, will properties, will topic, will payload, user name,
        // password, in that order.
        let client_id = r.str("client id")?;
        let will = if will_flag {
            let properties = match version {
                Version::V5 => Properties::decode(&mut r, Kind::Will)?,
                Version::V31 | Version::V311 => Properties::default(),
            };
            Some(Will {
                topic: r.str("will topic")?,
                payload: r.bin("will payload")?,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.str("username")?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.bin("password")?)
        } else {
            None
        };
        r.finish("remaining length")?;
        Ok(Connect {
            version,
            bridge,
            clean_start: connect_flags & FLAG_CLEAN_START != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }

    fn body_len(&self) -> usize {
        let v5 = self.version == Version::V5;
        let mut len = 2 + protocol_name(self.version).len() + 1 + 1 + 2;
        if v5 {
            len += self.properties.prefixed_len();
        }
        len += 2 + self.client_id.len();
        if let Some(will) = &self.will {
            if v5 {
                len += will.properties.prefixed_len();
            }
            len += 2 + will.topic.len() + 2 + will.payload.len();
        }
        len += self.username.map_or(0, |u| 2 + u.len());
        len += self.password.map_or(0, |p| 2 + p.len());
        len
    }

    /// Bytes of the whole encoded frame.
    pub fn encoded_len(&self) -> usize {
        writer::frame_len(self.body_len())
    }

    /// Appends the CONNECT frame in `self.version`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::header(out, 0x10, self.body_len());
        writer::bin(out, protocol_name(self.version));
        let bridge_bit = if self.bridge && self.version != Version::V5 {
            0x80
        } else {
            0
        };
        out.push(self.version.level() | bridge_bit);
        let mut flags = 0;
        if self.clean_start {
            flags |= FLAG_CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= FLAG_WILL | ((will.qos as u8) << FLAG_WILL_QOS_SHIFT);
            if will.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= FLAG_USERNAME;
        }
        if self.password.is_some() {
            flags |= FLAG_PASSWORD;
        }
        out.push(flags);
        writer::u16(out, self.keep_alive);
        let v5 = self.version == Version::V5;
        if v5 {
            self.properties.encode(out);
        }
        writer::str(out, self.client_id);
        if let Some(will) = &self.will {
            if v5 {
                will.properties.encode(out);
            }
            writer::str(out, will.topic);
            writer::bin(out, will.payload);
        }
        if let Some(username) = self.username {
            writer::str(out, username);
        }
        if let Some(password) = self.password {
            writer::bin(out, password);
        }
    }
}

impl<'a> Connack<'a> {
    /// Parses a CONNACK body in the connection's `version`.
    pub(crate) fn parse(flags: u8, body: &'a [u8], version: Version) -> Result<Self, Error> {
        // [MQTT-2.2.2-2]
        if flags != 0 {
            return Err(Error::Malformed("fixed header flags"));
        }
        let mut r = Reader::new(body);
        let ack_flags = r.u8("connect acknowledge flags")?;
        // [MQTT-3.2.2-1] (v5 3.2.2.1): bits 7-1 are reserved and must be 0.
        if ack_flags & !0x01 != 0 {
            return Err(Error::Malformed("connect acknowledge flags"));
        }
        let reason_code = r.u8("reason code")?;
        let properties = match version {
            // A v5 CONNACK always has a property length; a peer that omits it is tolerated.
            Version::V5 if !r.is_empty() => Properties::decode(&mut r, Kind::Connack)?,
            _ => Properties::default(),
        };
        r.finish("remaining length")?;
        Ok(Connack {
            // MQTT 3.1 has no Session Present flag: the byte is reserved, as `encode` sends it.
            session_present: version != Version::V31 && ack_flags & 0x01 != 0,
            reason_code,
            properties,
        })
    }

    fn body_len(&self, version: Version) -> usize {
        match version {
            Version::V5 => 2 + self.properties.prefixed_len(),
            Version::V31 | Version::V311 => 2,
        }
    }

    /// Bytes of the whole encoded frame in `version`.
    pub fn encoded_len(&self, version: Version) -> usize {
        writer::frame_len(self.body_len(version))
    }

    /// Leaves out the Reason String and User Properties if the frame would exceed the client's
    /// Maximum Packet Size `max` [MQTT-3.2.2-19] [MQTT-3.2.2-20]; returns whether it fits
    /// then [MQTT-3.1.2-24].
    pub fn fit(&mut self, version: Version, max: u32) -> bool {
        let fits = |c: &Connack<'_>| u32::try_from(c.encoded_len(version)).is_ok_and(|n| n <= max);
        if !fits(self) {
            self.properties.reason_string = None;
            self.properties.user_properties = UserProperties::default();
        }
        fits(self)
    }

    /// Appends the CONNACK frame in `version` (v3: two bytes of body, no properties). MQTT
    /// 3.1 has no Session Present flag: its first byte is reserved and sent as 0 (3.1, 3.2).
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) {
        writer::header(out, 0x20, self.body_len(version));
        out.push(u8::from(self.session_present && version != Version::V31));
        out.push(self.reason_code);
        if version == Version::V5 {
            self.properties.encode(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_version_reads_name_and_level_only() {
        // v5 CONNECT header with a truncated, broken rest.
        let v5 = [0x10, 0x0a, 0, 4, b'M', b'Q', b'T', b'T', 5, 0xff];
        assert_eq!(connect_version(&v5), Some(Version::V5));
        assert_eq!(connect_version(&v5[..8]), None);
        let v311 = [0x10, 0x0a, 0, 4, b'M', b'Q', b'T', b'T', 4];
        assert_eq!(connect_version(&v311), Some(Version::V311));
        assert_eq!(connect_version(&[0x30, 0x00]), None);
    }
    use crate::wire::fixture::{check, error, frame};
    use crate::wire::{Packet, decode};

    const USER_KV: [u8; 7] = [0x26, 0, 1, b'k', 0, 1, b'v'];

    fn connect_v311(connect_flags: u8, rest: &[u8]) -> Vec<u8> {
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, connect_flags, 0, 60];
        body.extend_from_slice(rest);
        frame(0x10, &body)
    }

    #[test]
    fn connect_v311_with_will_username_password() {
        #[rustfmt::skip]
        let bytes = [
            0x10, 0x1d,
            0, 4, b'M', b'Q', b'T', b'T', 4, 0xee, 0, 60,
            0, 3, b'c', b'i', b'd',
            0, 1, b'w',
            0, 2, b'h', b'i',
            0, 1, b'u',
            0, 2, b'p', b'w',
        ];
        let expected = Connect {
            version: Version::V311,
            bridge: false,
            clean_start: true,
            keep_alive: 60,
            properties: Properties::default(),
            client_id: "cid",
            will: Some(Will {
                topic: "w",
                payload: b"hi",
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: Properties::default(),
            }),
            username: Some("u"),
            password: Some(b"pw"),
        };
        check(&bytes, Version::V311, &Packet::Connect(Box::new(expected)));
    }

    #[test]
    fn connect_v31_minimal() {
        #[rustfmt::skip]
        let bytes = [
            0x10, 0x0f,
            0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 60,
            0, 1, b'a',
        ];
        let expected = Connect {
            version: Version::V31,
            bridge: false,
            clean_start: true,
            keep_alive: 60,
            properties: Properties::default(),
            client_id: "a",
            will: None,
            username: None,
            password: None,
        };
        // The connection's version does not matter: CONNECT carries its own.
        check(&bytes, Version::V311, &Packet::Connect(Box::new(expected)));
    }

    #[test]
    fn connect_v5_with_properties_will_properties_and_lone_password() {
        #[rustfmt::skip]
        let bytes = [
            0x10, 0x2c,
            0, 4, b'M', b'Q', b'T', b'T', 5, 0x46, 0, 60,
            0x0f, 0x11, 0, 0, 0, 10, 0x21, 0, 20, 0x26, 0, 1, b'k', 0, 1, b'v',
            0, 0,
            0x07, 0x01, 1, 0x18, 0, 0, 0, 5,
            0, 1, b't',
            0, 0,
            0, 1, b'x',
        ];
        let expected = Connect {
            version: Version::V5,
            bridge: false,
            clean_start: true,
            keep_alive: 60,
            properties: Properties {
                session_expiry_interval: Some(10),
                receive_maximum: Some(20),
                user_properties: UserProperties::new(&USER_KV),
                ..Properties::default()
            },
            client_id: "",
            will: Some(Will {
                topic: "t",
                payload: b"",
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Properties {
                    payload_format_indicator: Some(1),
                    will_delay_interval: Some(5),
                    ..Properties::default()
                },
            }),
            username: None,
            password: Some(b"x"),
        };
        check(&bytes, Version::V5, &Packet::Connect(Box::new(expected)));
    }

    #[test]
    fn connack_v311() {
        let expected = Connack {
            session_present: true,
            reason_code: 0,
            properties: Properties::default(),
        };
        check(
            &[0x20, 0x02, 0x01, 0x00],
            Version::V311,
            &Packet::Connack(expected),
        );
    }

    #[test]
    fn connack_v5_with_properties() {
        #[rustfmt::skip]
        let bytes = [
            0x20, 0x0e, 0x00, 0x00,
            0x0b, 0x12, 0, 3, b'a', b'b', b'c', 0x22, 0, 10, 0x24, 1,
        ];
        let expected = Connack {
            session_present: false,
            reason_code: 0,
            properties: Properties {
                assigned_client_identifier: Some("abc"),
                topic_alias_maximum: Some(10),
                maximum_qos: Some(1),
                ..Properties::default()
            },
        };
        check(&bytes, Version::V5, &Packet::Connack(expected));
    }

    #[test]
    fn connack_v31_reserves_the_session_present_byte() {
        let mut out = Vec::new();
        Connack {
            session_present: true,
            reason_code: 0,
            properties: Properties::default(),
        }
        .encode(Version::V31, &mut out);
        assert_eq!(out, [0x20, 0x02, 0x00, 0x00]);
    }

    /// Found by the codec fuzz target: a 3.1 CONNACK with the first byte 1 decoded as
    /// session present, which `encode` never sends in 3.1, so the round trip failed.
    #[test]
    fn connack_v31_reads_no_session_present() {
        let expected = Connack {
            session_present: false,
            reason_code: 0,
            properties: Properties::default(),
        };
        assert_eq!(
            decode(&[0x20, 0x02, 0x01, 0x00], Version::V31, u32::MAX),
            Ok(Some((Packet::Connack(expected), 4)))
        );
    }

    #[test]
    fn connack_fit_drops_reason_string_and_user_properties_first() {
        let mut connack = Connack {
            session_present: false,
            reason_code: 0,
            properties: Properties {
                receive_maximum: Some(10),
                reason_string: Some("why"),
                user_properties: UserProperties::new(&USER_KV),
                ..Properties::default()
            },
        };
        // 5 bytes of header, flags, code and property length; 3 of Receive Maximum.
        assert_eq!(connack.encoded_len(Version::V5), 5 + 3 + 6 + 7);
        assert!(connack.clone().fit(Version::V5, 21), "fits as it is");
        assert!(connack.fit(Version::V5, 8));
        assert_eq!(connack.encoded_len(Version::V5), 8);
        assert_eq!(connack.properties.receive_maximum, Some(10), "kept");
        assert!(!connack.fit(Version::V5, 7), "the rest does not fit");
    }

    #[test]
    fn connack_reserved_ack_flags_are_malformed() {
        assert_eq!(
            error(&[0x20, 0x02, 0x02, 0x00], Version::V311),
            Error::Malformed("connect acknowledge flags")
        );
    }

    #[test]
    fn connect_fixed_header_flags_are_malformed() {
        let mut bytes = connect_v311(0x02, &[0, 0]);
        bytes[0] = 0x11;
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("fixed header flags")
        );
    }

    #[test]
    fn reserved_connect_flag_is_malformed() {
        let bytes = connect_v311(0x03, &[0, 0]);
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("connect flags")
        );
    }

    #[test]
    fn will_qos_3_is_malformed() {
        let bytes = connect_v311(0x1c, &[0, 0, 0, 1, b't', 0, 0]);
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("will qos"));
    }

    #[test]
    fn will_retain_without_will_flag_is_malformed() {
        let bytes = connect_v311(0x22, &[0, 0]);
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("will flags"));
    }

    #[test]
    fn will_qos_without_will_flag_is_malformed() {
        let bytes = connect_v311(0x0a, &[0, 0]);
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("will flags"));
    }

    #[test]
    fn password_without_username_is_malformed_in_v311() {
        let bytes = connect_v311(0x42, &[0, 0, 0, 1, b'p']);
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("password flag")
        );
    }

    #[test]
    fn bad_protocol_name() {
        let body = [0, 4, b'M', b'Q', b'T', b'X', 4, 0x02, 0, 60, 0, 0];
        assert_eq!(
            error(&frame(0x10, &body), Version::V311),
            Error::BadProtocolName
        );
    }

    #[test]
    fn unsupported_protocol_level() {
        let body = [0, 4, b'M', b'Q', b'T', b'T', 6, 0x02, 0, 60, 0, 0];
        assert_eq!(
            error(&frame(0x10, &body), Version::V311),
            Error::UnsupportedProtocolVersion
        );
        let body = [
            0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 4, 0x02, 0, 60, 0, 0,
        ];
        assert_eq!(
            error(&frame(0x10, &body), Version::V311),
            Error::UnsupportedProtocolVersion
        );
    }

    #[test]
    fn invalid_utf8_client_id_is_malformed() {
        let bytes = connect_v311(0x02, &[0, 2, 0xc3, 0x28]);
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("client id"));
    }

    #[test]
    fn null_in_client_id_is_malformed() {
        let bytes = connect_v311(0x02, &[0, 2, b'a', 0]);
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("client id"));
    }

    #[test]
    fn invalid_utf8_username_is_malformed() {
        let bytes = connect_v311(0x82, &[0, 1, b'c', 0, 1, 0xff]);
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("username"));
    }

    #[test]
    fn truncated_connect_is_malformed() {
        // The remaining length ends before the client identifier.
        let bytes = connect_v311(0x02, &[]);
        assert_eq!(error(&bytes, Version::V311), Error::Malformed("client id"));
        // ... and before the will payload.
        let bytes = connect_v311(0x06, &[0, 0, 0, 1, b't', 0, 5, b'a']);
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("will payload")
        );
    }

    #[test]
    fn trailing_bytes_after_connect_payload_are_malformed() {
        let bytes = connect_v311(0x02, &[0, 0, 0xff]);
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("remaining length")
        );
    }

    #[test]
    fn connect_property_not_allowed_in_will_properties() {
        // Session Expiry Interval (0x11) is a CONNECT property, not a will property.
        #[rustfmt::skip]
        let body = [
            0, 4, b'M', b'Q', b'T', b'T', 5, 0x06, 0, 60,
            0, 0, 0,
            5, 0x11, 0, 0, 0, 1,
            0, 1, b't', 0, 0,
        ];
        assert_eq!(
            error(&frame(0x10, &body), Version::V5),
            Error::Malformed("property not allowed")
        );
    }

    /// Mosquitto's `try_private`: levels 0x83 and 0x84 are 3.1 and 3.1.1 from a bridge, and
    /// the bit survives a round trip; 0x85 is not a level.
    #[test]
    fn bridge_bit_on_the_protocol_level() {
        #[rustfmt::skip]
        let bytes = [
            0x10, 0x0d,
            0, 4, b'M', b'Q', b'T', b'T', 0x84, 0x02, 0, 60,
            0, 1, b'a',
        ];
        let expected = Connect {
            version: Version::V311,
            bridge: true,
            clean_start: true,
            keep_alive: 60,
            properties: Properties::default(),
            client_id: "a",
            will: None,
            username: None,
            password: None,
        };
        check(&bytes, Version::V311, &Packet::Connect(Box::new(expected)));
        let mut out = Vec::new();
        expected.encode(&mut out);
        assert_eq!(out, bytes);
        assert_eq!(connect_version(&bytes), Some(Version::V311));
        let mut v5 = bytes;
        v5[8] = 0x85;
        assert_eq!(error(&v5, Version::V5), Error::UnsupportedProtocolVersion);
    }
}
