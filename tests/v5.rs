//! MQTT 5 publish/subscribe: flow control, packet size, topic aliases, message expiry,
//! forwarded properties, subscription identifiers and options, shared subscriptions, acks.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::time::Duration;

use common::{
    Connect, Prop, Props, Raw, ack_v5, disconnect_v5, prop, prop_int, publish, publish_v5, start,
    start_with, subscribe_v5, unsubscribe_v5,
};
use mosquitto::{Kind, pipit_and_mosquitto};
use support::Scratch;

/// SUBSCRIBE options byte: QoS, No Local, Retain As Published, Retain Handling.
fn opts(qos: u8, no_local: bool, rap: bool, rh: u8) -> u8 {
    qos | (u8::from(no_local) << 2) | (u8::from(rap) << 3) | (rh << 4)
}

#[test]
fn receive_maximum_limits_inflight_to_the_client() {
    let broker = start();
    let mut sub = Raw::v5(broker.addr, "rm-sub", Props::new().u16(0x21, 2));
    sub.subscribe_v5(Props::new(), &[("rm/t", 1)]);
    let mut p = Raw::connect(broker.addr, "rm-pub", true);
    for i in 1..=4u16 {
        p.send(&publish("rm/t", &[i as u8], 1, false, i));
    }
    let a = sub.recv_publish5();
    let b = sub.recv_publish5();
    assert_eq!((a.payload.clone(), b.payload), (vec![1], vec![2]));
    sub.expect_silence(400);
    sub.send(&ack_v5(0x40, a.packet_id));
    assert_eq!(sub.recv_publish5().payload, [3]);
    sub.expect_silence(300);
}

#[test]
fn receive_maximum_exceeded_by_client_is_0x93() {
    let broker = start_with(|c| c.max_inflight_messages = 2);
    let mut c = Raw::v5(broker.addr, "rm-over", Props::new());
    for id in 1..=3u16 {
        c.send(&publish_v5("t", b"x", 2, false, id, Props::new()));
    }
    let frames = c.expect_closed();
    let rec: Vec<_> = frames.iter().filter(|f| f.kind() == 5).collect();
    assert_eq!(rec.len(), 2, "two PUBRECs before the close");
    let d = frames.iter().find(|f| f.kind() == 14).expect("DISCONNECT");
    assert_eq!(d.body[0], 0x93);
}

#[test]
fn receive_maximum_is_not_bypassed_by_the_dup_flag() {
    // A resend of an id the broker holds is allowed; a new id flagged DUP is not.
    let broker = start_with(|c| c.max_inflight_messages = 2);
    let mut c = Raw::v5(broker.addr, "rm-dup", Props::new());
    for id in 1..=2u16 {
        c.send(&publish_v5("t", b"x", 2, false, id, Props::new()));
    }
    let mut resend = publish_v5("t", b"x", 2, false, 2, Props::new());
    resend[0] |= 0x08;
    c.send(&resend);
    let mut new_id = publish_v5("t", b"x", 2, false, 3, Props::new());
    new_id[0] |= 0x08;
    c.send(&new_id);
    let frames = c.expect_closed();
    let rec: Vec<_> = frames.iter().filter(|f| f.kind() == 5).collect();
    assert_eq!(rec.len(), 3, "PUBRECs for ids 1, 2 and the resend of 2");
    let d = frames.iter().find(|f| f.kind() == 14).expect("DISCONNECT");
    assert_eq!(d.body[0], 0x93);
}

#[test]
fn maximum_packet_size_drops_larger_messages_for_that_client() {
    let broker = start();
    let mut small = Raw::v5(broker.addr, "mps", Props::new().u32(0x27, 100));
    small.subscribe_v5(Props::new(), &[("mps/#", 0)]);
    let mut p = Raw::connect(broker.addr, "mps-pub", true);
    p.send(&publish("mps/a", &[b'x'; 200], 0, false, 0));
    p.send(&publish("mps/a", b"small", 0, false, 0));
    let got = small.recv_publish5();
    assert_eq!(got.payload, b"small", "the 200-byte message was dropped");
    small.expect_silence(300);
}

#[test]
fn inbound_topic_alias_sets_and_uses() {
    let broker = start();
    let mut sub = Raw::v5(broker.addr, "alias-sub", Props::new());
    sub.subscribe_v5(Props::new(), &[("alias/#", 0)]);
    let mut p = Raw::v5(broker.addr, "alias-pub", Props::new());
    p.send(&publish_v5(
        "alias/t",
        b"1",
        0,
        false,
        0,
        Props::new().u16(0x23, 3),
    ));
    p.send(&publish_v5(
        "",
        b"2",
        0,
        false,
        0,
        Props::new().u16(0x23, 3),
    ));
    for want in [&b"1"[..], b"2"] {
        let m = sub.recv_publish5();
        assert_eq!((m.topic.as_str(), m.payload.as_slice()), ("alias/t", want));
    }
}

#[test]
fn inbound_topic_alias_errors() {
    let broker = start_with(|c| c.listeners[0].max_topic_alias = 2);
    let mut c = Raw::v5(broker.addr, "alias-big", Props::new());
    c.send(&publish_v5(
        "t",
        b"x",
        0,
        false,
        0,
        Props::new().u16(0x23, 3),
    ));
    assert_eq!(c.expect_disconnect(), 0x94, "alias above our maximum");
    let mut c = Raw::v5(broker.addr, "alias-zero", Props::new());
    c.send(&publish_v5(
        "t",
        b"x",
        0,
        false,
        0,
        Props::new().u16(0x23, 0),
    ));
    assert_eq!(c.expect_disconnect(), 0x94, "alias 0");
    let mut c = Raw::v5(broker.addr, "alias-unknown", Props::new());
    c.send(&publish_v5(
        "",
        b"x",
        0,
        false,
        0,
        Props::new().u16(0x23, 1),
    ));
    assert_eq!(c.expect_disconnect(), 0x82, "empty topic, unknown alias");
}

#[test]
fn outbound_topic_aliases_when_the_client_allows_them() {
    let broker = start();
    let mut sub = Raw::v5(broker.addr, "oa-sub", Props::new().u16(0x22, 1));
    sub.subscribe_v5(Props::new(), &[("oa/#", 0)]);
    let mut p = Raw::connect(broker.addr, "oa-pub", true);
    for (topic, payload) in [("oa/a", b"1"), ("oa/a", b"2"), ("oa/b", b"3")] {
        p.send(&publish(topic, payload, 0, false, 0));
    }
    let first = sub.recv_publish5();
    assert_eq!(
        (first.topic.as_str(), prop_int(&first.props, 0x23)),
        ("oa/a", Some(1))
    );
    let second = sub.recv_publish5();
    assert_eq!(
        (second.topic.as_str(), prop_int(&second.props, 0x23)),
        ("", Some(1))
    );
    assert_eq!(second.payload, b"2");
    let third = sub.recv_publish5();
    assert_eq!(
        (third.topic.as_str(), prop_int(&third.props, 0x23)),
        ("oa/b", None),
        "map full"
    );
    // A client that allows none gets none.
    let mut plain = Raw::v5(broker.addr, "oa-plain", Props::new());
    plain.subscribe_v5(Props::new(), &[("oa/#", 0)]);
    p.send(&publish("oa/a", b"4", 0, false, 0));
    let m = plain.recv_publish5();
    assert_eq!((m.topic.as_str(), prop(&m.props, 0x23)), ("oa/a", None));
}

#[test]
fn message_expiry_drops_or_decrements_queued_messages() {
    let broker = start();
    let connect = Connect::v5("me-sub", Props::new().u32(0x11, 60)).clean(false);
    let (mut sub, _) = Raw::connect_v5(broker.addr, &connect);
    sub.subscribe_v5(Props::new(), &[("me/#", 1)]);
    sub.send(&disconnect_v5(0, Props::new()));
    sub.expect_closed();
    let mut p = Raw::v5(broker.addr, "me-pub", Props::new());
    p.send(&publish_v5(
        "me/short",
        b"gone",
        1,
        false,
        1,
        Props::new().u32(0x02, 1),
    ));
    p.send(&publish_v5(
        "me/long",
        b"kept",
        1,
        false,
        2,
        Props::new().u32(0x02, 30),
    ));
    p.recv_kind(4);
    p.recv_kind(4);
    std::thread::sleep(Duration::from_millis(1600));
    let (mut sub, ack) = Raw::connect_v5(broker.addr, &connect);
    assert!(ack.session_present);
    let m = sub.recv_publish5();
    assert_eq!(m.payload, b"kept", "the expired message was not delivered");
    let left = prop_int(&m.props, 0x02).expect("remaining expiry interval");
    assert!((28..=29).contains(&left), "remaining interval {left}");
    sub.expect_silence(300);
}

#[test]
fn payload_format_invalid_is_0x99() {
    let broker = start();
    let mut c = Raw::v5(broker.addr, "pfi", Props::new());
    let utf8 = Props::new().byte(0x01, 1);
    c.send(&publish_v5("t", &[0xff, 0xfe], 1, false, 5, utf8.clone()));
    let ack = c.recv_kind(4);
    assert_eq!((&ack.body[..2], ack.body[2]), (&[0, 5][..], 0x99));
    c.send(&publish_v5("t", &[0xff, 0xfe], 0, false, 0, utf8));
    assert_eq!(c.expect_disconnect(), 0x99);
}

#[test]
fn properties_are_forwarded_unchanged() {
    let broker = start();
    let mut sub = Raw::v5(broker.addr, "fw-sub", Props::new());
    sub.subscribe_v5(Props::new(), &[("fw/req", 1)]);
    let mut p = Raw::v5(broker.addr, "fw-pub", Props::new());
    let props = Props::new()
        .byte(0x01, 1)
        .bin(0x03, b"application/json")
        .bin(0x08, b"fw/resp")
        .bin(0x09, &[0, 1, 2, 255])
        .user("a", "1")
        .user("b", "2")
        .user("a", "3");
    p.send(&publish_v5("fw/req", b"{}", 1, false, 1, props));
    let m = sub.recv_publish5();
    assert_eq!(prop_int(&m.props, 0x01), Some(1));
    assert_eq!(
        prop(&m.props, 0x03),
        Some(Prop::Bytes(b"application/json".to_vec()))
    );
    assert_eq!(prop(&m.props, 0x08), Some(Prop::Bytes(b"fw/resp".to_vec())));
    assert_eq!(prop(&m.props, 0x09), Some(Prop::Bytes(vec![0, 1, 2, 255])));
    let pairs: Vec<(&str, &str)> = vec![("a", "1"), ("b", "2"), ("a", "3")];
    let got = m.user_properties();
    let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(got, pairs, "user properties in order");
    // A v3 subscriber gets the message without properties.
    let mut v3 = Raw::connect(broker.addr, "fw-v3", true);
    v3.subscribe("fw/req", 0);
    p.send(&publish_v5(
        "fw/req",
        b"plain",
        0,
        false,
        0,
        Props::new().user("x", "y"),
    ));
    assert_eq!(v3.recv_publish().payload, b"plain");
}

#[test]
fn request_response_round_trip() {
    let broker = start();
    let mut responder = Raw::v5(broker.addr, "responder", Props::new());
    responder.subscribe_v5(Props::new(), &[("svc/req", 1)]);
    let mut requester = Raw::v5(broker.addr, "requester", Props::new());
    requester.subscribe_v5(Props::new(), &[("svc/resp/requester", 1)]);
    let req = Props::new()
        .bin(0x08, b"svc/resp/requester")
        .bin(0x09, b"id-42");
    requester.send(&publish_v5("svc/req", b"ping", 1, false, 1, req));
    let got = responder.recv_publish5();
    let Some(Prop::Bytes(topic)) = prop(&got.props, 0x08) else {
        panic!("no response topic")
    };
    let Some(Prop::Bytes(corr)) = prop(&got.props, 0x09) else {
        panic!("no correlation data")
    };
    let topic = String::from_utf8(topic).unwrap();
    responder.send(&publish_v5(
        &topic,
        b"pong",
        1,
        false,
        1,
        Props::new().bin(0x09, &corr),
    ));
    let resp = common::Publish5::parse(&requester.recv_kind(3));
    assert_eq!(resp.payload, b"pong");
    assert_eq!(
        prop(&resp.props, 0x09),
        Some(Prop::Bytes(b"id-42".to_vec()))
    );
}

#[test]
fn invalid_response_topic_is_a_protocol_error() {
    let broker = start();
    let mut c = Raw::v5(broker.addr, "bad-rt", Props::new());
    c.send(&publish_v5(
        "t",
        b"x",
        0,
        false,
        0,
        Props::new().bin(0x08, b"a/#"),
    ));
    assert_eq!(c.expect_disconnect(), 0x82);
}

#[test]
fn overlapping_subscriptions_deliver_once_with_every_identifier() {
    let broker = start();
    let mut sub = Raw::v5(broker.addr, "ids", Props::new());
    sub.subscribe_v5(Props::new().varint(0x0b, 1), &[("ids/#", 0)]);
    sub.subscribe_v5(Props::new().varint(0x0b, 2), &[("ids/+/x", 1)]);
    sub.subscribe_v5(Props::new(), &[("ids/a/+", 0)]);
    let mut p = Raw::connect(broker.addr, "ids-pub", true);
    p.send(&publish("ids/a/x", b"m", 1, false, 1));
    let m = sub.recv_publish5();
    assert_eq!(m.qos, 1, "highest granted QoS");
    let mut ids = m.subscription_ids();
    ids.sort();
    assert_eq!(ids, [1, 2]);
    sub.expect_silence(300);
}

#[test]
fn no_local_skips_own_messages() {
    let broker = start();
    let mut c = Raw::v5(broker.addr, "nl", Props::new());
    c.subscribe_v5(Props::new(), &[("nl/t", opts(0, true, false, 0))]);
    let mut other = Raw::v5(broker.addr, "nl-other", Props::new());
    other.subscribe_v5(Props::new(), &[("nl/t", 0)]);
    c.send(&publish_v5("nl/t", b"mine", 0, false, 0, Props::new()));
    assert_eq!(other.recv_publish5().payload, b"mine");
    c.expect_silence(300);
    other.send(&publish_v5("nl/t", b"theirs", 0, false, 0, Props::new()));
    assert_eq!(c.recv_publish5().payload, b"theirs");
}

#[test]
fn retain_as_published_keeps_the_flag_on_live_delivery() {
    let broker = start();
    let mut rap = Raw::v5(broker.addr, "rap", Props::new());
    rap.subscribe_v5(Props::new(), &[("rap/t", opts(0, false, true, 0))]);
    let mut plain = Raw::v5(broker.addr, "rap-plain", Props::new());
    plain.subscribe_v5(Props::new(), &[("rap/t", 0)]);
    let mut p = Raw::connect(broker.addr, "rap-pub", true);
    p.send(&publish("rap/t", b"r", 0, true, 0));
    assert!(rap.recv_publish5().retain);
    assert!(!plain.recv_publish5().retain);
}

#[test]
fn retain_handling_0_1_2() {
    let broker = start();
    let mut p = Raw::connect(broker.addr, "rh-pub", true);
    // QoS 1: the PUBACK says the retained message is stored before anyone subscribes.
    p.publish_acked("rh/t", b"kept", true, 1);
    let mut c = Raw::v5(broker.addr, "rh", Props::new());
    c.subscribe_v5(Props::new(), &[("rh/t", opts(0, false, false, 0))]);
    let m = c.recv_publish5();
    assert!(m.retain && m.payload == b"kept", "0: sent at subscribe");
    c.subscribe_v5(Props::new(), &[("rh/t", opts(0, false, false, 0))]);
    assert_eq!(
        c.recv_publish5().payload,
        b"kept",
        "0: sent again on re-subscribe"
    );
    c.subscribe_v5(Props::new(), &[("rh/t", opts(0, false, false, 1))]);
    c.expect_silence(300);
    c.subscribe_v5(Props::new(), &[("rh/+", opts(0, false, false, 1))]);
    assert_eq!(
        c.recv_publish5().payload,
        b"kept",
        "1: sent for a new subscription"
    );
    c.subscribe_v5(Props::new(), &[("rh/#", opts(0, false, false, 2))]);
    c.expect_silence(300);
}

#[test]
fn shared_subscriptions_round_robin_and_get_no_retained() {
    let broker = start();
    let mut p = Raw::connect(broker.addr, "sh-pub", true);
    // QoS 1: the PUBACK says the retained message is stored before the groups subscribe.
    p.publish_acked("sh/t", b"retained", true, 1);
    let mut a = Raw::v5(broker.addr, "sh-a", Props::new());
    let mut b = Raw::v5(broker.addr, "sh-b", Props::new());
    a.subscribe_v5(Props::new(), &[("$share/g/sh/t", 0)]);
    b.subscribe_v5(Props::new(), &[("$share/g/sh/t", 0)]);
    a.expect_silence(200);
    b.expect_silence(200);
    for i in 0..4u8 {
        p.send(&publish("sh/t", &[i], 0, false, 0));
    }
    let mut got = Vec::new();
    for c in [&mut a, &mut b] {
        got.push(c.recv_publish5().payload[0]);
        got.push(c.recv_publish5().payload[0]);
        c.expect_silence(200);
    }
    got.sort();
    assert_eq!(got, [0, 1, 2, 3], "each message to one member, two each");
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    let broker = start();
    let mut c = Raw::v5(broker.addr, "sh-nl", Props::new());
    c.send(&common::subscribe_v5(
        1,
        Props::new(),
        &[("$share/g/t", opts(0, true, false, 0))],
    ));
    assert_eq!(c.expect_disconnect(), 0x82);
}

#[test]
fn suback_and_unsuback_reason_codes() {
    let broker = start();
    let mut c = Raw::v5(broker.addr, "codes", Props::new());
    c.send(&common::subscribe_v5(
        1,
        Props::new(),
        &[("ok/#", 2), ("bad/#/x", 1), ("q1", 1)],
    ));
    let suback = c.recv_kind(9);
    let (props, codes) = common::split_props(&suback.body[2..]);
    assert_eq!(codes, [2, 0x8f, 1]);
    // A refused filter is explained in a Reason String.
    assert!(matches!(
        common::prop(&props, 0x1f),
        Some(common::Prop::Bytes(_))
    ));
    // An all-granted SUBACK carries none.
    c.send(&common::subscribe_v5(1, Props::new(), &[("fine", 0)]));
    let suback = c.recv_kind(9);
    assert_eq!(&suback.body, &[0, 1, 0, 0], "no properties, granted QoS 0");
    let mut body = vec![0, 2, 0];
    for f in ["ok/#", "never"] {
        common::string(f.as_bytes(), &mut body);
    }
    c.send(&common::frame(0xa2, &body));
    let ack = c.recv_kind(11);
    assert_eq!(&ack.body, &[0, 2, 0, 0x00, 0x11]);
}

#[test]
fn puback_reports_no_matching_subscribers() {
    let broker = start();
    let mut c = Raw::v5(broker.addr, "nomatch", Props::new());
    c.send(&publish_v5("nobody/here", b"x", 1, false, 9, Props::new()));
    let ack = c.recv_kind(4);
    assert_eq!(ack.body[..3], [0, 9, 0x10]);
}

#[test]
fn acl_denied_publish_is_0x87() {
    let dir = std::env::temp_dir().join(format!("pipit-v5-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let acl = dir.join("acl");
    std::fs::write(&acl, "topic readwrite open/#\n").unwrap();
    let broker = start_with(|c| c.acl_file = Some(acl.clone()));
    let mut c = Raw::v5(broker.addr, "denied", Props::new());
    c.send(&publish_v5("secret", b"x", 1, false, 3, Props::new()));
    let ack = c.recv_kind(4);
    assert_eq!(ack.body[..3], [0, 3, 0x87]);
    let (props, _) = common::split_props(&ack.body[3..]);
    assert!(prop(&props, 0x1f).is_some(), "a reason string by default");
    // With Request Problem Information 0, no reason string.
    let mut quiet = Raw::v5(broker.addr, "denied-quiet", Props::new().byte(0x17, 0));
    quiet.send(&publish_v5("secret", b"x", 1, false, 4, Props::new()));
    let ack = quiet.recv_kind(4);
    assert_eq!(ack.body[2], 0x87);
    assert!(
        ack.body.len() == 3 || ack.body[3] == 0,
        "no properties: {ack:?}"
    );
}

/// Every acknowledgement path carries a Reason String only with a failure code (0x80 and
/// up), only to a client that allows problem information [MQTT-3.1.2-29], and only when it
/// fits the client's Maximum Packet Size: a success-class code such as PUBACK 0x10 (No
/// matching subscribers) is the bare code, so a constrained link pays 5 bytes for a publish
/// nobody subscribes to, not one with a sentence in it.
#[test]
fn reason_strings_only_on_failures_the_client_accepts() {
    let broker = start();
    let mut sub = Raw::v5(broker.addr, "rs-sub", Props::new());
    sub.subscribe_v5(Props::new(), &[("rs/taken", 1)]);
    let clients = [
        ("rs-loud", Props::new()),
        ("rs-quiet", Props::new().byte(0x17, 0)),
        ("rs-small", Props::new().u32(0x27, 16)),
    ];
    for (n, (id, props)) in clients.into_iter().enumerate() {
        let loud = n == 0;
        let mut c = Raw::v5(broker.addr, id, props);
        // (what is sent, the reply's packet type, its body without properties, whether a
        // Reason String follows)
        let mut unsubscribe = vec![0, 4, 0];
        common::string(b"rs/none", &mut unsubscribe);
        #[rustfmt::skip]
        let rows: [(Vec<u8>, u8, Vec<u8>, bool); 7] = [
            // Success class: never.
            (publish_v5("rs/nobody", b"x", 1, false, 1, Props::new()), 4, vec![0, 1, 0x10], false),
            (publish_v5("rs/nobody", b"x", 2, false, 2, Props::new()), 5, vec![0, 2, 0x10], false),
            (publish_v5("rs/taken", b"x", 1, false, 3, Props::new()), 4, vec![0, 3], false),
            (common::subscribe_v5(4, Props::new(), &[("rs/ok", 1)]), 9, vec![0, 4, 0, 1], false),
            (common::frame(0xa2, &unsubscribe), 11, vec![0, 4, 0, 0x11], false),
            // Failures: only to the client that allows it and has room.
            (ack_v5(0x50, 0x4242), 6, vec![0x42, 0x42, 0x92], loud),
            (ack_v5(0x62, 0x4343), 7, vec![0x43, 0x43, 0x92], loud),
        ];
        for (packet, kind, body, reason_string) in rows {
            c.send(&packet);
            let reply = c.recv_kind(kind);
            let case = format!("{id}: reply {kind} to {packet:02x?}");
            // A v5 SUBACK/UNSUBACK always has a property length; an ack only with properties.
            let (head, props) = match kind {
                9 | 11 => (
                    [&reply.body[..2], &reply.body[reply.body.len() - 1..]].concat(),
                    common::split_props(&reply.body[2..]).0,
                ),
                _ if reply.body.len() > 3 => (
                    reply.body[..3].to_vec(),
                    common::split_props(&reply.body[3..]).0,
                ),
                _ => (reply.body.clone(), Vec::new()),
            };
            let expected_head = match kind {
                9 | 11 => [&body[..2], &body[3..]].concat(),
                _ => body,
            };
            assert_eq!(head, expected_head, "{case}");
            assert_eq!(
                prop(&props, 0x1f).is_some(),
                reason_string,
                "{case}: {props:?}"
            );
            if !reason_string {
                assert!(props.is_empty(), "{case}: {props:?}");
            }
            if kind == 5 {
                // The QoS 2 exchange ends: release it.
                c.send(&ack_v5(0x62, 2));
                c.recv_kind(7);
            }
        }
    }
}

/// A SUBACK or UNSUBACK larger than the client's Maximum Packet Size is never sent
/// [MQTT-3.1.2-24]: the broker closes with DISCONNECT 0x95 (Packet too large) instead, and
/// applies none of the packet's filters, since the client cannot learn what was applied.
/// Mosquitto 2.0.11 sends the oversized ack (checked here, so the difference is on record).
#[test]
fn acks_over_the_clients_maximum_packet_size_are_not_sent() {
    let dir = Scratch::new("ack-size");
    // 20 bytes: a v5 SUBACK or UNSUBACK of n codes is 5 + n bytes, so 15 codes fit, 16 not.
    let tight = |clean| {
        let props = Props::new().u32(0x27, 20).u32(0x11, 60);
        Connect::v5("tight", props).clean(clean)
    };
    let filters =
        |prefix: &str, n| -> Vec<String> { (0..n).map(|i| format!("{prefix}/{i}")).collect() };
    let sub = |id, filters: &[String]| {
        let pairs: Vec<(&str, u8)> = filters.iter().map(|f| (f.as_str(), 1)).collect();
        subscribe_v5(id, Props::new(), &pairs)
    };
    let unsub = |id, filters: &[String]| {
        let names: Vec<&str> = filters.iter().map(String::as_str).collect();
        unsubscribe_v5(id, Props::new(), &names)
    };
    let (fits, too_many) = (filters("u", 15), filters("s", 16));
    for peer in pipit_and_mosquitto(&dir, "allow_anonymous true\n") {
        let kind = peer.kind;
        let (mut c, _) = Raw::connect_v5(peer.addr, &tight(true));
        c.send(&sub(1, &fits));
        let ack = c.recv_kind(9);
        assert_eq!(2 + ack.body.len(), 20, "{kind:?}: a SUBACK that just fits");

        c.send(&sub(2, &too_many));
        if kind == Kind::Mosquitto {
            let ack = c.recv_kind(9);
            assert_eq!(
                2 + ack.body.len(),
                21,
                "Mosquitto sends the oversized SUBACK"
            );
            c.send(&unsub(3, &too_many));
            let ack = c.recv_kind(11);
            assert_eq!(
                2 + ack.body.len(),
                21,
                "Mosquitto sends the oversized UNSUBACK"
            );
            continue;
        }
        let bare_0x95 = |c: &mut Raw| {
            let frames = c.expect_closed();
            let frames: Vec<(u8, Vec<u8>)> =
                frames.into_iter().map(|f| (f.header, f.body)).collect();
            assert_eq!(
                frames,
                [(0xe0, vec![0x95])],
                "DISCONNECT 0x95, no Reason String"
            );
        };
        bare_0x95(&mut c);

        let (mut c, ack) = Raw::connect_v5(peer.addr, &tight(false));
        assert!(ack.session_present);
        let mut sixteen = fits.clone();
        sixteen.push("s/0".into());
        c.send(&unsub(4, &sixteen));
        bare_0x95(&mut c);

        // Neither was applied: "s/0" was never subscribed, every "u/" filter still is.
        let (mut c, _) = Raw::connect_v5(peer.addr, &tight(false));
        c.send(&unsub(5, &["s/0".to_string()]));
        assert_eq!(c.recv_kind(11).body, [0, 5, 0, 0x11]);
        c.send(&unsub(6, &fits));
        assert_eq!(c.recv_kind(11).body[3..], [0; 15]);
    }
}
