//! Hostile input: every single-byte corruption of valid frames, and random byte strings,
//! must decode to a packet, "need more" or an error, and never panic or claim more bytes
//! than it was given. Decoded packets' lazy parts (filter lists, user properties) are walked
//! too, since they re-read bytes the first pass validated.

use super::*;

/// Valid frames of every kind the broker receives, in the versions they exist in.
fn valid_frames() -> Vec<(Version, Vec<u8>)> {
    let mut frames = Vec::new();
    let props = Properties {
        message_expiry_interval: Some(60),
        content_type: Some("text/plain"),
        response_topic: Some("reply/to"),
        correlation_data: Some(b"id-1"),
        topic_alias: Some(3),
        payload_format_indicator: Some(1),
        ..Properties::default()
    };
    for version in [Version::V31, Version::V311, Version::V5] {
        let v5 = version == Version::V5;
        let mut out = Vec::new();
        Connect {
            version,
            bridge: false,
            clean_start: false,
            keep_alive: 30,
            properties: Properties {
                session_expiry_interval: v5.then_some(10),
                receive_maximum: v5.then_some(5),
                ..Properties::default()
            },
            client_id: "device-1",
            will: Some(Will {
                topic: "will/t",
                payload: b"bye",
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: Properties {
                    will_delay_interval: v5.then_some(5),
                    ..Properties::default()
                },
            }),
            username: Some("user"),
            password: Some(b"pw"),
        }
        .encode(&mut out);
        frames.push((version, out));

        let mut out = Vec::new();
        Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: true,
            topic: "a/b/c",
            packet_id: 7,
            properties: if v5 { props } else { Properties::default() },
            payload: b"payload bytes",
        }
        .encode(version, &[], &mut out);
        frames.push((version, out));

        let options = SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            no_local: v5,
            retain_as_published: v5,
            retain_handling: RetainHandling::SendIfNew,
        };
        let mut out = Vec::new();
        let sub_props = Properties {
            subscription_identifier: v5.then_some(9),
            ..Properties::default()
        };
        encode_subscribe(
            5,
            &sub_props,
            &[("a/+", options), ("#", options)],
            version,
            &mut out,
        );
        frames.push((version, out));

        let mut out = Vec::new();
        encode_unsubscribe(6, &Properties::default(), &["a/+", "x"], version, &mut out);
        frames.push((version, out));

        for kind in [PacketType::Puback, PacketType::Pubrec, PacketType::Pubrel] {
            let mut out = Vec::new();
            Ack {
                packet_id: 7,
                reason_code: if v5 {
                    reason::NO_MATCHING_SUBSCRIBERS
                } else {
                    0
                },
                properties: Properties {
                    reason_string: v5.then_some("why"),
                    ..Properties::default()
                },
            }
            .encode(kind, version, &mut out);
            frames.push((version, out));
        }
    }
    frames
}

/// Decodes `buf` in every version, walking whatever comes out; panics only on a bad length.
fn decode_everywhere(buf: &[u8]) {
    for version in [Version::V31, Version::V311, Version::V5] {
        if let Ok(Some((packet, len))) = decode(buf, version, 1 << 20) {
            assert!(len <= buf.len(), "claimed {len} of {} bytes", buf.len());
            match packet {
                Packet::Subscribe(s) => assert_eq!(s.filters.iter().count(), s.filters.len()),
                Packet::Unsubscribe(u) => assert_eq!(u.filters.iter().count(), u.filters.len()),
                Packet::Publish(p) => {
                    let _ = p.properties.user_properties.iter().count();
                }
                Packet::Connect(c) => {
                    let _ = c.properties.user_properties.iter().count();
                }
                _ => {}
            }
        }
    }
}

#[test]
fn every_single_byte_corruption_is_handled() {
    for (_, frame) in valid_frames() {
        decode_everywhere(&frame);
        for at in 0..frame.len() {
            for value in [
                0x00,
                0x01,
                0x7f,
                0x80,
                0xff,
                frame[at] ^ 0x01,
                frame[at] ^ 0x80,
            ] {
                let mut bad = frame.clone();
                bad[at] = value;
                decode_everywhere(&bad);
                // Truncated after the corruption, too.
                decode_everywhere(&bad[..at + 1]);
            }
        }
    }
}

#[test]
fn random_bytes_are_handled() {
    // xorshift64*: deterministic, so a failure reproduces.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for _ in 0..50_000 {
        let len = (next() % 64) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Some(first) = buf.first_mut() {
            // Mostly plausible packet types with any flags; a short remaining length.
            *first = (*first & 0xf0).max(0x10);
        }
        if buf.len() > 1 {
            buf[1] = (buf.len() - 2).min(127) as u8;
        }
        decode_everywhere(&buf);
    }
}
