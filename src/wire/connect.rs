//! CONNECT and CONNACK (v3.1.1 sections 3.1-3.2, v5 sections 3.1-3.2). CONNECT carries its
//! own protocol version; CONNACK is read and written in the connection's version. The
//! codec checks grammar and flag consistency; client identifier rules are the broker's.

use super::property::{Kind, Properties};
use super::reader::Reader;
use super::{Error, QoS, Version, writer};

/// A CONNECT packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Connect<'a> {
    /// The protocol version named by the protocol name and level.
    pub version: Version,
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
        out.push(self.version.level());
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
            session_present: ack_flags & 0x01 != 0,
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

    /// Appends the CONNACK frame in `version` (v3: two bytes of body, no properties).
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) {
        writer::header(out, 0x20, self.body_len(version));
        out.push(u8::from(self.session_present));
        out.push(self.reason_code);
        if version == Version::V5 {
            self.properties.encode(out);
        }
    }
}
