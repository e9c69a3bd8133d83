//! The codec target: every packet type, v3 and v5, decoded from arbitrary bytes; whatever
//! decodes is encoded again, and that must decode to an equal packet, in exactly
//! `encoded_len` bytes.
//!
//! Input: one byte choosing the connection's version (CONNECT carries its own), then frames,
//! decoded one after another until one is incomplete or an error. Every packet type has an
//! encoder (the broker's own replies, and the client side the bridges and tests use), so
//! every decoded packet is compared whole. PUBLISH's Subscription Identifier is encoded from
//! the list the broker passes, so the decoded one is passed back that way.

use super::{ALLOCATION_SLACK, alloc, check_largest_allocation};
use crate::wire::{self, Packet, PacketType, Version};

/// The maximum packet size the codec target decodes with.
pub const CODEC_MAX_PACKET_SIZE: u32 = 64 * 1024;

/// Runs the codec target on `data`; panics on a finding.
pub fn codec(data: &[u8]) {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let version = match selector % 3 {
        0 => Version::V31,
        1 => Version::V311,
        _ => Version::V5,
    };
    alloc::reset();
    while let Ok(Some((packet, len))) = wire::decode(rest, version, CODEC_MAX_PACKET_SIZE) {
        round_trip(&packet, version);
        rest = &rest[len..];
    }
    // Decoding borrows; only a CONNECT is boxed, and a re-encoded frame is no longer than
    // the one it came from.
    check_largest_allocation("codec", data.len() + ALLOCATION_SLACK);
}

/// Encodes `packet` as a peer of `version` would receive it and decodes it again.
fn round_trip(packet: &Packet<'_>, version: Version) {
    let mut out = Vec::new();
    let (expected_len, version) = encode(packet, version, &mut out);
    assert_eq!(out.len(), expected_len, "encoded_len of {packet:?}");
    let again = wire::decode(&out, version, CODEC_MAX_PACKET_SIZE);
    match again {
        Ok(Some((decoded, len))) => {
            assert_eq!(len, out.len(), "one whole frame for {packet:?}");
            assert_eq!(&decoded, packet, "round trip of {out:02x?}");
        }
        other => panic!("{packet:?} encoded as {out:02x?} decodes as {other:?}"),
    }
}

/// Appends `packet`'s frame; returns its `encoded_len` and the version to decode it with.
fn encode(packet: &Packet<'_>, version: Version, out: &mut Vec<u8>) -> (usize, Version) {
    let len = match packet {
        Packet::Connect(connect) => {
            connect.encode(out);
            return (connect.encoded_len(), connect.version);
        }
        Packet::Connack(connack) => {
            connack.encode(version, out);
            connack.encoded_len(version)
        }
        Packet::Publish(publish) => {
            let ids: Vec<u32> = publish
                .properties
                .subscription_identifier
                .into_iter()
                .collect();
            publish.encode(version, &ids, out);
            publish.encoded_len(version, &ids)
        }
        Packet::Puback(ack) => encode_ack(ack, PacketType::Puback, version, out),
        Packet::Pubrec(ack) => encode_ack(ack, PacketType::Pubrec, version, out),
        Packet::Pubrel(ack) => encode_ack(ack, PacketType::Pubrel, version, out),
        Packet::Pubcomp(ack) => encode_ack(ack, PacketType::Pubcomp, version, out),
        Packet::Subscribe(subscribe) => {
            subscribe.encode(version, out);
            subscribe.encoded_len(version)
        }
        Packet::Suback(suback) => {
            suback.encode(version, out);
            suback.encoded_len(version)
        }
        Packet::Unsubscribe(unsubscribe) => {
            unsubscribe.encode(version, out);
            unsubscribe.encoded_len(version)
        }
        Packet::Unsuback(unsuback) => {
            unsuback.encode(version, out);
            unsuback.encoded_len(version)
        }
        Packet::Pingreq => {
            wire::encode_pingreq(out);
            2
        }
        Packet::Pingresp => {
            wire::encode_pingresp(out);
            2
        }
        Packet::Disconnect(disconnect) => {
            disconnect.encode(version, out);
            disconnect.encoded_len(version)
        }
        Packet::Auth(auth) => {
            auth.encode(out);
            auth.encoded_len()
        }
    };
    (len, version)
}

fn encode_ack(ack: &wire::Ack<'_>, kind: PacketType, version: Version, out: &mut Vec<u8>) -> usize {
    ack.encode(kind, version, out);
    ack.encoded_len(version)
}
