//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (v3.1.1 sections 3.8-3.11, v5 sections
//! 3.8-3.11). Topic filter lists are validated once while parsing and then kept as the
//! borrowed bytes they arrived in; iterating them cannot fail. Filter syntax (wildcards,
//! `$share/`) is the broker's to judge.

use super::property::{Kind, Properties};
use super::reader::Reader;
use super::{Error, QoS, Version, writer};

/// v5 Retain Handling subscription option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    SendAtSubscribe,
    /// 1: send them only if the subscription does not already exist.
    SendIfNew,
    /// 2: do not send them.
    DontSend,
}

/// The options byte that follows each topic filter in SUBSCRIBE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// Maximum QoS granted to this subscription.
    pub qos: QoS,
    /// v5: do not forward this client's own publications to it.
    pub no_local: bool,
    /// v5: keep the RETAIN flag as published when forwarding.
    pub retain_as_published: bool,
    /// v5: when to send retained messages.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Decodes an options byte in `version`.
    pub fn parse(byte: u8, version: Version) -> Result<Self, Error> {
        // [MQTT-3.8.3-4] (v5 [MQTT-3.8.3-5]): reserved bits must be 0; v3 uses only the
        // QoS bits, v5 bits 0-5.
        let reserved = match version {
            Version::V5 => 0xc0,
            Version::V31 | Version::V311 => 0xfc,
        };
        if byte & reserved != 0 {
            return Err(Error::Malformed("subscription options"));
        }
        let qos = QoS::from_bits(byte & 0x03).ok_or(Error::Malformed("subscription qos"))?;
        let retain_handling = match (byte >> 4) & 0x03 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DontSend,
            // v5 3.8.3.1: Retain Handling 3 is a protocol error.
            _ => return Err(Error::Protocol("retain handling")),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: byte & 0x04 != 0,
            retain_as_published: byte & 0x08 != 0,
            retain_handling,
        })
    }

    /// The options byte in `version` (v3 carries only the QoS).
    pub fn to_byte(self, version: Version) -> u8 {
        let qos = self.qos as u8;
        match version {
            Version::V31 | Version::V311 => qos,
            Version::V5 => {
                let rh = match self.retain_handling {
                    RetainHandling::SendAtSubscribe => 0,
                    RetainHandling::SendIfNew => 1,
                    RetainHandling::DontSend => 2,
                };
                qos | (u8::from(self.no_local) << 2)
                    | (u8::from(self.retain_as_published) << 3)
                    | (rh << 4)
            }
        }
    }
}

/// A SUBSCRIBE packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Subscribe<'a> {
    /// Packet identifier, echoed by SUBACK.
    pub packet_id: u16,
    /// SUBSCRIBE properties (v5; empty otherwise).
    pub properties: Properties<'a>,
    /// The topic filters and their options, at least one.
    pub filters: SubscribeFilters<'a>,
}

/// The validated (topic filter, options) list of a SUBSCRIBE, borrowed as received.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SubscribeFilters<'a> {
    raw: &'a [u8],
    version: Version,
    len: usize,
}

impl<'a> SubscribeFilters<'a> {
    /// Validates a SUBSCRIBE payload: at least one filter [MQTT-3.8.3-3], each a UTF-8
    /// string followed by a valid options byte.
    fn parse(raw: &'a [u8], version: Version) -> Result<Self, Error> {
        let mut r = Reader::new(raw);
        let mut len = 0;
        while !r.is_empty() {
            r.str("topic filter")?;
            SubscriptionOptions::parse(r.u8("subscription options")?, version)?;
            len += 1;
        }
        if len == 0 {
            return Err(Error::Protocol("no topic filters"));
        }
        Ok(SubscribeFilters { raw, version, len })
    }

    /// The (topic filter, options) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, SubscriptionOptions)> + 'a {
        let mut r = Reader::new(self.raw);
        let version = self.version;
        // Validated by `parse`: a failure here cannot happen and just ends the iteration.
        std::iter::from_fn(move || {
            let filter = r.str("topic filter").ok()?;
            let options = SubscriptionOptions::parse(r.u8("subscription options").ok()?, version);
            Some((filter, options.ok()?))
        })
    }

    /// Number of topic filters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false for a parsed SUBSCRIBE (it has at least one filter).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn parse_packet_id(r: &mut Reader<'_>) -> Result<u16, Error> {
    // [MQTT-2.3.1-1] (v5 [MQTT-2.2.1-3]): packet identifiers are non-zero.
    match r.u16("packet id")? {
        0 => Err(Error::Protocol("packet id")),
        id => Ok(id),
    }
}

fn parse_properties<'a>(
    r: &mut Reader<'a>,
    version: Version,
    kind: Kind,
) -> Result<Properties<'a>, Error> {
    match version {
        Version::V5 => Properties::decode(r, kind),
        Version::V31 | Version::V311 => Ok(Properties::default()),
    }
}

fn properties_len(properties: &Properties<'_>, version: Version) -> usize {
    match version {
        Version::V5 => properties.prefixed_len(),
        Version::V31 | Version::V311 => 0,
    }
}

fn expect_flags(flags: u8, expected: u8) -> Result<(), Error> {
    if flags == expected {
        Ok(())
    } else {
        Err(Error::Malformed("fixed header flags"))
    }
}

/// Appends the start of a SUBSCRIBE or UNSUBSCRIBE frame: header, packet id and v5
/// properties; the caller then appends exactly `payload_len` bytes of filters.
fn encode_request(
    byte1: u8,
    packet_id: u16,
    properties: &Properties<'_>,
    version: Version,
    payload_len: usize,
    out: &mut Vec<u8>,
) {
    writer::header(
        out,
        byte1,
        2 + properties_len(properties, version) + payload_len,
    );
    writer::u16(out, packet_id);
    if version == Version::V5 {
        properties.encode(out);
    }
}

/// Appends a SUBSCRIBE frame for `filters` in `version`.
pub fn encode_subscribe(
    packet_id: u16,
    properties: &Properties<'_>,
    filters: &[(&str, SubscriptionOptions)],
    version: Version,
    out: &mut Vec<u8>,
) {
    let payload_len = filters.iter().map(|(f, _)| 3 + f.len()).sum();
    encode_request(0x82, packet_id, properties, version, payload_len, out);
    for (filter, options) in filters {
        writer::str(out, filter);
        out.push(options.to_byte(version));
    }
}

/// Appends an UNSUBSCRIBE frame for `filters` in `version`.
pub fn encode_unsubscribe(
    packet_id: u16,
    properties: &Properties<'_>,
    filters: &[&str],
    version: Version,
    out: &mut Vec<u8>,
) {
    let payload_len = filters.iter().map(|f| 2 + f.len()).sum();
    encode_request(0xa2, packet_id, properties, version, payload_len, out);
    for filter in filters {
        writer::str(out, filter);
    }
}

impl<'a> Subscribe<'a> {
    /// Parses a SUBSCRIBE body.
    pub(crate) fn parse(flags: u8, body: &'a [u8], version: Version) -> Result<Self, Error> {
        // [MQTT-3.8.1-1]
        expect_flags(flags, 0x02)?;
        let mut r = Reader::new(body);
        let packet_id = parse_packet_id(&mut r)?;
        let properties = parse_properties(&mut r, version, Kind::Subscribe)?;
        let filters = SubscribeFilters::parse(r.rest(), version)?;
        Ok(Subscribe {
            packet_id,
            properties,
            filters,
        })
    }

    fn payload_len(&self) -> usize {
        self.filters.iter().map(|(f, _)| 3 + f.len()).sum()
    }

    /// Bytes of the whole encoded frame in `version`.
    pub fn encoded_len(&self, version: Version) -> usize {
        writer::frame_len(2 + properties_len(&self.properties, version) + self.payload_len())
    }

    /// Appends the SUBSCRIBE frame in `version`.
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) {
        let payload_len = self.payload_len();
        encode_request(
            0x82,
            self.packet_id,
            &self.properties,
            version,
            payload_len,
            out,
        );
        for (filter, options) in self.filters.iter() {
            writer::str(out, filter);
            out.push(options.to_byte(version));
        }
    }
}

/// A SUBACK packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Suback<'a> {
    /// Packet identifier of the SUBSCRIBE.
    pub packet_id: u16,
    /// SUBACK properties (v5; empty otherwise).
    pub properties: Properties<'a>,
    /// One reason (v3: return) code per topic filter, in order.
    pub reason_codes: &'a [u8],
}

impl<'a> Suback<'a> {
    /// Parses a SUBACK body.
    pub(crate) fn parse(flags: u8, body: &'a [u8], version: Version) -> Result<Self, Error> {
        // [MQTT-2.2.2-2]
        expect_flags(flags, 0)?;
        let mut r = Reader::new(body);
        let packet_id = parse_packet_id(&mut r)?;
        let properties = parse_properties(&mut r, version, Kind::Suback)?;
        let reason_codes = r.rest();
        // [MQTT-3.9.3-1]: one code per topic filter of the SUBSCRIBE, which has at least one.
        if reason_codes.is_empty() {
            return Err(Error::Protocol("no reason codes"));
        }
        Ok(Suback {
            packet_id,
            properties,
            reason_codes,
        })
    }

    fn body_len(&self, version: Version) -> usize {
        2 + properties_len(&self.properties, version) + self.reason_codes.len()
    }

    /// Bytes of the whole encoded frame in `version`.
    pub fn encoded_len(&self, version: Version) -> usize {
        writer::frame_len(self.body_len(version))
    }

    /// Appends the SUBACK frame in `version` (`reason_codes` as given: see
    /// `reason::suback_v3` for v3 return codes).
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) {
        writer::header(out, 0x90, self.body_len(version));
        writer::u16(out, self.packet_id);
        if version == Version::V5 {
            self.properties.encode(out);
        }
        out.extend_from_slice(self.reason_codes);
    }
}

impl SubscriptionOptions {
    /// Options asking for `qos` with No Local and Retain As Published off and retained
    /// messages sent at subscribe: MQTT 3's only options, and what most subscribers want.
    ///
    /// ```
    /// use pipit::wire::{QoS, SubscriptionOptions};
    /// let options = SubscriptionOptions::at(QoS::AtLeastOnce);
    /// assert!(!options.no_local);
    /// ```
    pub fn at(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }
}

/// An UNSUBSCRIBE packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unsubscribe<'a> {
    /// Packet identifier, echoed by UNSUBACK.
    pub packet_id: u16,
    /// UNSUBSCRIBE properties (v5; empty otherwise).
    pub properties: Properties<'a>,
    /// The topic filters, at least one.
    pub filters: UnsubscribeFilters<'a>,
}

/// The validated topic filter list of an UNSUBSCRIBE, borrowed as received.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnsubscribeFilters<'a> {
    raw: &'a [u8],
    len: usize,
}

impl<'a> UnsubscribeFilters<'a> {
    /// Validates an UNSUBSCRIBE payload: at least one UTF-8 filter [MQTT-3.10.3-2].
    fn parse(raw: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(raw);
        let mut len = 0;
        while !r.is_empty() {
            r.str("topic filter")?;
            len += 1;
        }
        if len == 0 {
            return Err(Error::Protocol("no topic filters"));
        }
        Ok(UnsubscribeFilters { raw, len })
    }

    /// The topic filters in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut r = Reader::new(self.raw);
        // Validated by `parse`: a failure here cannot happen and just ends the iteration.
        std::iter::from_fn(move || r.str("topic filter").ok())
    }

    /// Number of topic filters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false for a parsed UNSUBSCRIBE (it has at least one filter).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'a> Unsubscribe<'a> {
    /// Parses an UNSUBSCRIBE body.
    pub(crate) fn parse(flags: u8, body: &'a [u8], version: Version) -> Result<Self, Error> {
        // [MQTT-3.10.1-1]
        expect_flags(flags, 0x02)?;
        let mut r = Reader::new(body);
        let packet_id = parse_packet_id(&mut r)?;
        let properties = parse_properties(&mut r, version, Kind::Unsubscribe)?;
        let filters = UnsubscribeFilters::parse(r.rest())?;
        Ok(Unsubscribe {
            packet_id,
            properties,
            filters,
        })
    }

    fn payload_len(&self) -> usize {
        self.filters.iter().map(|f| 2 + f.len()).sum()
    }

    /// Bytes of the whole encoded frame in `version`.
    pub fn encoded_len(&self, version: Version) -> usize {
        writer::frame_len(2 + properties_len(&self.properties, version) + self.payload_len())
    }

    /// Appends the UNSUBSCRIBE frame in `version`.
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) {
        let payload_len = self.payload_len();
        encode_request(
            0xa2,
            self.packet_id,
            &self.properties,
            version,
            payload_len,
            out,
        );
        for filter in self.filters.iter() {
            writer::str(out, filter);
        }
    }
}

/// An UNSUBACK packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unsuback<'a> {
    /// Packet identifier of the UNSUBSCRIBE.
    pub packet_id: u16,
    /// UNSUBACK properties (v5; empty otherwise).
    pub properties: Properties<'a>,
    /// v5: one reason code per topic filter; v3: empty (only the packet id is sent).
    pub reason_codes: &'a [u8],
}

impl<'a> Unsuback<'a> {
    /// Parses an UNSUBACK body.
    pub(crate) fn parse(flags: u8, body: &'a [u8], version: Version) -> Result<Self, Error> {
        // [MQTT-2.2.2-2]
        expect_flags(flags, 0)?;
        let mut r = Reader::new(body);
        let packet_id = parse_packet_id(&mut r)?;
        let (properties, reason_codes) = match version {
            Version::V5 => {
                let properties = Properties::decode(&mut r, Kind::Unsuback)?;
                let reason_codes = r.rest();
                // [MQTT-3.11.3-1]: one code per topic filter, and there is at least one.
                if reason_codes.is_empty() {
                    return Err(Error::Protocol("no reason codes"));
                }
                (properties, reason_codes)
            }
            Version::V31 | Version::V311 => {
                r.finish("remaining length")?;
                (Properties::default(), &[][..])
            }
        };
        Ok(Unsuback {
            packet_id,
            properties,
            reason_codes,
        })
    }

    fn body_len(&self, version: Version) -> usize {
        match version {
            Version::V5 => 2 + self.properties.prefixed_len() + self.reason_codes.len(),
            Version::V31 | Version::V311 => 2,
        }
    }

    /// Bytes of the whole encoded frame in `version`.
    pub fn encoded_len(&self, version: Version) -> usize {
        writer::frame_len(self.body_len(version))
    }

    /// Appends the UNSUBACK frame in `version` (v3: packet id only).
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) {
        writer::header(out, 0xb0, self.body_len(version));
        writer::u16(out, self.packet_id);
        if version == Version::V5 {
            self.properties.encode(out);
            out.extend_from_slice(self.reason_codes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Packet;
    use crate::wire::fixture::{check, error, frame};

    const QOS1: SubscriptionOptions = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        no_local: false,
        retain_as_published: false,
        retain_handling: RetainHandling::SendAtSubscribe,
    };

    #[test]
    fn subscribe_v311() {
        #[rustfmt::skip]
        let bytes = [
            0x82, 0x0c, 0, 10,
            0, 3, b'a', b'/', b'b', 0x01,
            0, 1, b'#', 0x02,
        ];
        let expected = Subscribe {
            packet_id: 10,
            properties: Properties::default(),
            filters: SubscribeFilters {
                raw: &bytes[4..],
                version: Version::V311,
                len: 2,
            },
        };
        check(&bytes, Version::V311, &Packet::Subscribe(expected));
        let qos2 = SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            ..QOS1
        };
        let filters: Vec<_> = expected.filters.iter().collect();
        assert_eq!(filters, [("a/b", QOS1), ("#", qos2)]);
        assert_eq!(expected.filters.len(), 2);
        assert!(!expected.filters.is_empty());
        let mut out = Vec::new();
        encode_subscribe(
            10,
            &Properties::default(),
            &filters,
            Version::V311,
            &mut out,
        );
        assert_eq!(out, bytes);
    }

    #[test]
    fn subscribe_v5_with_options_and_subscription_identifier() {
        #[rustfmt::skip]
        let bytes = [
            0x82, 0x09, 0, 1,
            2, 0x0b, 7,
            0, 1, b't', 0x2e,
        ];
        let expected = Subscribe {
            packet_id: 1,
            properties: Properties {
                subscription_identifier: Some(7),
                ..Properties::default()
            },
            filters: SubscribeFilters {
                raw: &bytes[7..],
                version: Version::V5,
                len: 1,
            },
        };
        check(&bytes, Version::V5, &Packet::Subscribe(expected));
        let options = SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::DontSend,
        };
        assert_eq!(
            expected.filters.iter().collect::<Vec<_>>(),
            [("t", options)]
        );
        let mut out = Vec::new();
        encode_subscribe(
            1,
            &expected.properties,
            &[("t", options)],
            Version::V5,
            &mut out,
        );
        assert_eq!(out, bytes);
    }

    #[test]
    fn suback_v311() {
        let bytes = [0x90, 0x04, 0, 10, 0x01, 0x80];
        let expected = Suback {
            packet_id: 10,
            properties: Properties::default(),
            reason_codes: &[0x01, 0x80],
        };
        check(&bytes, Version::V311, &Packet::Suback(expected));
    }

    #[test]
    fn suback_v5_with_reason_string() {
        let bytes = [0x90, 0x09, 0, 10, 3, 0x1f, 0, 0, 0x00, 0x01, 0xa1];
        let expected = Suback {
            packet_id: 10,
            properties: Properties {
                reason_string: Some(""),
                ..Properties::default()
            },
            reason_codes: &[0x00, 0x01, 0xa1],
        };
        check(&bytes, Version::V5, &Packet::Suback(expected));
    }

    #[test]
    fn unsubscribe_v311() {
        let bytes = [0xa2, 0x0a, 0, 11, 0, 3, b'a', b'/', b'b', 0, 1, b'#'];
        let expected = Unsubscribe {
            packet_id: 11,
            properties: Properties::default(),
            filters: UnsubscribeFilters {
                raw: &bytes[4..],
                len: 2,
            },
        };
        check(&bytes, Version::V311, &Packet::Unsubscribe(expected));
        let filters: Vec<_> = expected.filters.iter().collect();
        assert_eq!(filters, ["a/b", "#"]);
        assert_eq!(expected.filters.len(), 2);
        assert!(!expected.filters.is_empty());
        let mut out = Vec::new();
        encode_unsubscribe(
            11,
            &Properties::default(),
            &filters,
            Version::V311,
            &mut out,
        );
        assert_eq!(out, bytes);
    }

    #[test]
    fn unsubscribe_v5_with_user_property() {
        let bytes = [0xa2, 0x0b, 0, 11, 5, 0x26, 0, 0, 0, 0, 0, 1, b'x'];
        let expected = Unsubscribe {
            packet_id: 11,
            properties: Properties {
                user_properties: crate::wire::UserProperties::new(&bytes[5..10]),
                ..Properties::default()
            },
            filters: UnsubscribeFilters {
                raw: &bytes[10..],
                len: 1,
            },
        };
        check(&bytes, Version::V5, &Packet::Unsubscribe(expected));
    }

    #[test]
    fn unsuback_v311() {
        let expected = Unsuback {
            packet_id: 11,
            properties: Properties::default(),
            reason_codes: &[],
        };
        check(
            &[0xb0, 0x02, 0, 11],
            Version::V311,
            &Packet::Unsuback(expected),
        );
    }

    #[test]
    fn unsuback_v5() {
        let expected = Unsuback {
            packet_id: 11,
            properties: Properties::default(),
            reason_codes: &[0x11],
        };
        check(
            &[0xb0, 0x04, 0, 11, 0, 0x11],
            Version::V5,
            &Packet::Unsuback(expected),
        );
    }

    #[test]
    fn subscribe_without_flags_is_malformed() {
        let bytes = frame(0x80, &[0, 1, 0, 1, b't', 0]);
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("fixed header flags")
        );
    }

    #[test]
    fn subscribe_packet_id_0_is_protocol_error() {
        let bytes = frame(0x82, &[0, 0, 0, 1, b't', 0]);
        assert_eq!(error(&bytes, Version::V311), Error::Protocol("packet id"));
    }

    #[test]
    fn empty_subscribe_is_protocol_error() {
        assert_eq!(
            error(&frame(0x82, &[0, 1]), Version::V311),
            Error::Protocol("no topic filters")
        );
        assert_eq!(
            error(&frame(0x82, &[0, 1, 0]), Version::V5),
            Error::Protocol("no topic filters")
        );
    }

    #[test]
    fn subscribe_options_reserved_bits_are_malformed() {
        // v3: only the QoS bits may be set.
        let bytes = frame(0x82, &[0, 1, 0, 1, b't', 0x04]);
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("subscription options")
        );
        // v5: bits 6 and 7 are reserved.
        let bytes = frame(0x82, &[0, 1, 0, 0, 1, b't', 0x40]);
        assert_eq!(
            error(&bytes, Version::V5),
            Error::Malformed("subscription options")
        );
    }

    #[test]
    fn subscribe_qos_3_is_malformed() {
        let bytes = frame(0x82, &[0, 1, 0, 1, b't', 0x03]);
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("subscription qos")
        );
    }

    #[test]
    fn subscribe_retain_handling_3_is_protocol_error() {
        let bytes = frame(0x82, &[0, 1, 0, 0, 1, b't', 0x30]);
        assert_eq!(
            error(&bytes, Version::V5),
            Error::Protocol("retain handling")
        );
    }

    #[test]
    fn subscribe_invalid_utf8_filter_is_malformed() {
        let bytes = frame(0x82, &[0, 1, 0, 1, 0x80, 0]);
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("topic filter")
        );
    }

    #[test]
    fn subscribe_filter_without_options_is_malformed() {
        let bytes = frame(0x82, &[0, 1, 0, 1, b't']);
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("subscription options")
        );
    }

    #[test]
    fn unsubscribe_without_flags_is_malformed() {
        let bytes = frame(0xa0, &[0, 1, 0, 1, b't']);
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("fixed header flags")
        );
    }

    #[test]
    fn unsubscribe_packet_id_0_is_protocol_error() {
        let bytes = frame(0xa2, &[0, 0, 0, 1, b't']);
        assert_eq!(error(&bytes, Version::V311), Error::Protocol("packet id"));
    }

    #[test]
    fn empty_unsubscribe_is_protocol_error() {
        assert_eq!(
            error(&frame(0xa2, &[0, 1]), Version::V311),
            Error::Protocol("no topic filters")
        );
    }

    #[test]
    fn unsubscribe_null_in_filter_is_malformed() {
        let bytes = frame(0xa2, &[0, 1, 0, 2, b'a', 0]);
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("topic filter")
        );
    }

    #[test]
    fn subscribe_property_not_allowed() {
        // Topic Alias is a PUBLISH property.
        let bytes = frame(0x82, &[0, 1, 3, 0x23, 0, 1, 0, 1, b't', 0]);
        assert_eq!(
            error(&bytes, Version::V5),
            Error::Malformed("property not allowed")
        );
    }

    #[test]
    fn unsuback_v311_with_codes_is_malformed() {
        let bytes = [0xb0, 0x03, 0, 1, 0];
        assert_eq!(
            error(&bytes, Version::V311),
            Error::Malformed("remaining length")
        );
    }
}
