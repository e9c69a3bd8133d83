//! Test-only helpers for byte fixtures: a fixture must decode to the expected packet,
//! every strict prefix must need more bytes, and re-encoding must give the same bytes with
//! `encoded_len` equal to their length.

use super::{Error, Packet, PacketType, Version, decode};

/// Encodes `packet` in `version` and returns (bytes, the encoder's `encoded_len`).
fn encode(packet: &Packet<'_>, version: Version) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let len = match packet {
        Packet::Connect(p) => {
            p.encode(&mut out);
            p.encoded_len()
        }
        Packet::Connack(p) => {
            p.encode(version, &mut out);
            p.encoded_len(version)
        }
        Packet::Publish(p) => {
            let ids: Vec<u32> = p.properties.subscription_identifier.into_iter().collect();
            p.encode(version, &ids, &mut out);
            p.encoded_len(version, &ids)
        }
        Packet::Puback(p) => ack(p, PacketType::Puback, version, &mut out),
        Packet::Pubrec(p) => ack(p, PacketType::Pubrec, version, &mut out),
        Packet::Pubrel(p) => ack(p, PacketType::Pubrel, version, &mut out),
        Packet::Pubcomp(p) => ack(p, PacketType::Pubcomp, version, &mut out),
        Packet::Subscribe(p) => {
            p.encode(version, &mut out);
            p.encoded_len(version)
        }
        Packet::Suback(p) => {
            p.encode(version, &mut out);
            p.encoded_len(version)
        }
        Packet::Unsubscribe(p) => {
            p.encode(version, &mut out);
            p.encoded_len(version)
        }
        Packet::Unsuback(p) => {
            p.encode(version, &mut out);
            p.encoded_len(version)
        }
        Packet::Pingreq => {
            super::encode_pingreq(&mut out);
            2
        }
        Packet::Pingresp => {
            super::encode_pingresp(&mut out);
            2
        }
        Packet::Disconnect(p) => {
            p.encode(version, &mut out);
            p.encoded_len(version)
        }
        Packet::Auth(p) => {
            p.encode(&mut out);
            p.encoded_len()
        }
    };
    (out, len)
}

fn ack(p: &super::Ack<'_>, t: PacketType, version: Version, out: &mut Vec<u8>) -> usize {
    p.encode(t, version, out);
    p.encoded_len(version)
}

/// Asserts the three fixture properties for `bytes` in `version`.
pub(crate) fn check(bytes: &[u8], version: Version, expected: &Packet<'_>) {
    assert_eq!(
        decode(bytes, version, u32::MAX),
        Ok(Some((expected.clone(), bytes.len()))),
        "decode"
    );
    for n in 0..bytes.len() {
        assert_eq!(
            decode(&bytes[..n], version, u32::MAX),
            Ok(None),
            "prefix of {n} bytes"
        );
    }
    // A following frame's bytes are not consumed.
    let mut two = bytes.to_vec();
    two.extend_from_slice(&[0xc0, 0x00]);
    assert_eq!(
        decode(&two, version, u32::MAX).map(|d| d.map(|(_, n)| n)),
        Ok(Some(bytes.len()))
    );
    let (out, len) = encode(expected, version);
    assert_eq!(out, bytes, "re-encode");
    assert_eq!(len, bytes.len(), "encoded_len");
}

/// Decodes `bytes` as one whole frame in `version`, returning the error if any.
pub(crate) fn error(bytes: &[u8], version: Version) -> Error {
    match decode(bytes, version, u32::MAX) {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Encodes `packet` and decodes it again, asserting the round trip is the identity.
pub(crate) fn round_trip(packet: &Packet<'_>, version: Version) {
    let (bytes, len) = encode(packet, version);
    assert_eq!(len, bytes.len(), "encoded_len");
    check(&bytes, version, packet);
}

/// A frame with first byte `byte1` around `body` (remaining length computed).
pub(crate) fn frame(byte1: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    super::writer::header(&mut out, byte1, body.len());
    out.extend_from_slice(body);
    out
}
