//! Malformed and hostile input: each closes only the offending connection, with no panic.

mod common;

use common::{Raw, frame, publish, start, start_with, string};

/// Sends `bytes` after a good CONNECT and expects the broker to close the connection.
fn closes_after_connect(bytes: &[u8]) {
    let broker = start();
    let mut bystander = Raw::connect(broker.addr, "bystander", true);
    bystander.subscribe("ok", 0);
    let mut c = Raw::connect(broker.addr, "bad", true);
    c.send(bytes);
    assert!(
        c.expect_closed().is_empty(),
        "closed without reply for {bytes:02x?}"
    );
    // Other clients are unaffected.
    let mut p = Raw::connect(broker.addr, "p", true);
    p.send(&publish("ok", b"still", 0, false, 0));
    assert_eq!(bystander.recv_publish().payload, b"still");
}

#[test]
fn remaining_length_over_four_bytes() {
    closes_after_connect(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]);
}

#[test]
fn truncated_topic() {
    closes_after_connect(&[0x30, 0x02, 0x00, 0x05]);
}

#[test]
fn invalid_utf8_topic() {
    closes_after_connect(&frame(0x30, &[0x00, 0x02, 0xc3, 0x28, b'x']));
}

#[test]
fn nul_in_topic() {
    closes_after_connect(&frame(0x30, &[0x00, 0x02, b'a', 0x00]));
}

#[test]
fn wildcard_in_topic_name() {
    closes_after_connect(&publish("a/+", b"x", 0, false, 0));
}

#[test]
fn wildcard_in_topic_name_after_valid_publishes() {
    // The broker reuses a publisher's last validated topic; a new, invalid one is still caught.
    let mut bytes = publish("a/b", b"x", 0, false, 0);
    bytes.extend(publish("a/b", b"y", 0, false, 0));
    bytes.extend(publish("a/#", b"z", 0, false, 0));
    closes_after_connect(&bytes);
}

#[test]
fn publish_qos3() {
    closes_after_connect(&frame(0x36, &[0x00, 0x01, b'a', 0x00, 0x01]));
}

#[test]
fn publish_qos0_with_dup() {
    closes_after_connect(&frame(0x38, &[0x00, 0x01, b'a']));
}

#[test]
fn publish_packet_id_zero() {
    closes_after_connect(&frame(0x32, &[0x00, 0x01, b'a', 0x00, 0x00]));
}

#[test]
fn subscribe_wrong_flags() {
    let mut body = vec![0, 1];
    string(b"a", &mut body);
    body.push(0);
    closes_after_connect(&frame(0x80, &body));
}

#[test]
fn subscribe_reserved_option_bits() {
    let mut body = vec![0, 1];
    string(b"a", &mut body);
    body.push(0x04);
    closes_after_connect(&frame(0x82, &body));
}

#[test]
fn subscribe_packet_id_zero() {
    let mut body = vec![0, 0];
    string(b"a", &mut body);
    body.push(0);
    closes_after_connect(&frame(0x82, &body));
}

#[test]
fn subscribe_without_filters() {
    closes_after_connect(&frame(0x82, &[0, 1]));
}

#[test]
fn unsubscribe_wrong_flags() {
    let mut body = vec![0, 1];
    string(b"a", &mut body);
    closes_after_connect(&frame(0xa0, &body));
}

#[test]
fn pubrel_wrong_flags() {
    closes_after_connect(&frame(0x60, &[0, 1]));
}

#[test]
fn pingreq_with_flags() {
    closes_after_connect(&[0xc1, 0x00]);
}

#[test]
fn puback_with_extra_bytes() {
    closes_after_connect(&frame(0x40, &[0, 1, 2]));
}

#[test]
fn reserved_packet_type_zero() {
    closes_after_connect(&[0x00, 0x00]);
}

#[test]
fn server_only_packet_from_client() {
    closes_after_connect(&[0x20, 0x02, 0x00, 0x00]);
}

#[test]
fn oversize_packet_closed_before_body() {
    let broker = start_with(|c| c.max_packet_size = 1024);
    let mut c = Raw::connect(broker.addr, "big", true);
    // Announce 1 MiB and send only the header: the broker must not wait for the body.
    c.send(&[0x30, 0x80, 0x80, 0x40]);
    assert!(c.expect_closed().is_empty());
}

#[test]
fn invalid_utf8_client_id() {
    let broker = start();
    let mut c = Raw::open(broker.addr);
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.extend_from_slice(&[4, 0x02, 0, 60]);
    string(&[0xff, 0xfe], &mut body);
    c.send(&frame(0x10, &body));
    assert!(c.expect_closed().is_empty());
}

#[test]
fn will_flags_without_will() {
    let broker = start();
    let mut c = Raw::open(broker.addr);
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.extend_from_slice(&[4, 0x02 | 0x20, 0, 60]); // will retain without will flag
    string(b"x", &mut body);
    c.send(&frame(0x10, &body));
    assert!(c.expect_closed().is_empty());
}

#[test]
fn password_without_username() {
    let broker = start();
    let mut c = Raw::open(broker.addr);
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.extend_from_slice(&[4, 0x02 | 0x40, 0, 60]);
    string(b"x", &mut body);
    string(b"secret", &mut body);
    c.send(&frame(0x10, &body));
    assert!(c.expect_closed().is_empty());
}

#[test]
fn truncated_connect() {
    let broker = start();
    let mut c = Raw::open(broker.addr);
    c.send(&[0x10, 0x04, 0x00, 0x04, b'M', b'Q']);
    assert!(c.expect_closed().is_empty());
}

#[test]
fn garbage_does_not_disturb_others() {
    let broker = start();
    let mut good = Raw::connect(broker.addr, "good", true);
    good.subscribe("g", 0);
    for seed in 0..50u32 {
        let mut c = Raw::open(broker.addr);
        let junk: Vec<u8> = (0..64u32)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed * 97) >> 7) as u8)
            .collect();
        c.send(&junk);
    }
    let mut p = Raw::connect(broker.addr, "p", true);
    p.send(&publish("g", b"alive", 0, false, 0));
    assert_eq!(good.recv_publish().payload, b"alive");
}
