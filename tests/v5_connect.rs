//! MQTT 5 connection life: CONNACK properties, assigned client id, session expiry, server
//! keep alive, server DISCONNECT reason codes, will delay, enhanced authentication.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::time::{Duration, Instant};

use common::{
    Connect, Props, Raw, disconnect_v5, prop, prop_int, publish, publish_v5, start, start_with,
    subscribe_v5,
};
use mosquitto::pipit_and_mosquitto;
use support::Scratch;

#[test]
fn connack_advertises_what_the_broker_supports() {
    let broker = start_with(|c| {
        c.max_packet_size = 4096;
        c.max_inflight_messages = 7;
        c.listeners[0].max_topic_alias = 5;
    });
    let (_c, ack) = Raw::connect_v5(broker.addr, &Connect::v5("props", Props::new()));
    assert_eq!((ack.code, ack.session_present), (0, false));
    assert_eq!(prop_int(&ack.props, 0x21), Some(7), "receive maximum");
    assert_eq!(
        prop_int(&ack.props, 0x27),
        Some(4096),
        "maximum packet size"
    );
    assert_eq!(prop_int(&ack.props, 0x22), Some(5), "topic alias maximum");
    // What the client assumes when a property is absent is not repeated (v5 3.2.2.3).
    assert_eq!(prop(&ack.props, 0x25), None, "retain available: 1");
    assert_eq!(prop(&ack.props, 0x28), None, "wildcards available: 1");
    assert_eq!(
        prop(&ack.props, 0x29),
        None,
        "subscription ids available: 1"
    );
    assert_eq!(
        prop(&ack.props, 0x2a),
        None,
        "shared subscriptions available: 1"
    );
    assert_eq!(prop(&ack.props, 0x24), None, "maximum QoS omitted: 2");
    assert_eq!(prop(&ack.props, 0x12), None, "client id was given");
    assert_eq!(ack.props.len(), 3, "nothing else: {:?}", ack.props);

    // Defaults that do not hold are said; limits at the protocol's own are not.
    let broker = start_with(|c| {
        c.retain_available = false;
        c.max_packet_size = 268_435_460;
        c.max_inflight_messages = u16::MAX;
        c.listeners[0].max_topic_alias = 0;
    });
    let (_c, ack) = Raw::connect_v5(broker.addr, &Connect::v5("props", Props::new()));
    assert_eq!(
        ack.props,
        [(0x25, common::Prop::Int(0))],
        "retain unavailable only"
    );
}

/// A CONNACK never exceeds the client's Maximum Packet Size [MQTT-3.1.2-24]: it leaves out
/// what only repeats a default, and a client it still cannot fit (here: one whose assigned
/// client identifier does not fit in 20 bytes) is closed without one, as Mosquitto 2.0.11.
#[test]
fn connack_fits_the_clients_maximum_packet_size() {
    let dir = Scratch::new("connack-size");
    for peer in pipit_and_mosquitto(&dir, "allow_anonymous true\n") {
        let tight = Props::new().u32(0x27, 20);
        let mut c = Raw::open(peer.addr);
        c.send(&Connect::v5("tight", tight.clone()).bytes());
        let ack = c.recv().expect("CONNACK");
        let len = 2 + ack.body.len();
        assert!(len <= 20, "{:?}: a {len}-byte CONNACK: {ack:?}", peer.kind);
        assert_eq!(ack.body[1], 0, "{:?}: accepted", peer.kind);

        let mut c = Raw::open(peer.addr);
        c.send(&Connect::v5("", tight).bytes());
        assert_eq!(c.expect_closed(), [], "{:?}: no CONNACK", peer.kind);
    }
}

#[test]
fn empty_client_id_is_assigned() {
    let broker = start();
    let (_c, ack) = Raw::connect_v5(broker.addr, &Connect::v5("", Props::new()));
    assert_eq!(ack.code, 0);
    match prop(&ack.props, 0x12) {
        Some(common::Prop::Bytes(id)) => assert!(!id.is_empty()),
        other => panic!("no assigned client identifier: {other:?}"),
    }
}

#[test]
fn session_expiry_keeps_then_discards_the_session() {
    let broker = start();
    let expiry = Props::new().u32(0x11, 1);
    let connect = Connect::v5("expiring", expiry.clone()).clean(false);
    let (mut c, ack) = Raw::connect_v5(broker.addr, &connect);
    assert!(!ack.session_present);
    c.subscribe_v5(Props::new(), &[("e/t", 1)]);
    c.send(&disconnect_v5(0, Props::new()));
    c.expect_closed();

    // Within the interval the session is there, with its subscription.
    let (mut c, ack) = Raw::connect_v5(broker.addr, &connect);
    assert!(ack.session_present, "resumed within the expiry interval");
    let mut p = Raw::connect(broker.addr, "pub-e", true);
    p.send(&publish("e/t", b"kept", 0, false, 0));
    assert_eq!(c.recv_publish5().payload, b"kept");
    c.send(&disconnect_v5(0, Props::new()));
    c.expect_closed();

    // After it (1 s, swept once per second) the session is gone.
    std::thread::sleep(Duration::from_millis(2500));
    let (_c, ack) = Raw::connect_v5(broker.addr, &connect);
    assert!(!ack.session_present, "discarded after the expiry interval");
}

#[test]
fn session_expiry_zero_ends_at_disconnect_and_cannot_be_raised() {
    let broker = start();
    let connect = Connect::v5("zero", Props::new()).clean(false);
    let (mut c, _) = Raw::connect_v5(broker.addr, &connect);
    c.send(&disconnect_v5(0, Props::new()));
    c.expect_closed();
    let (mut c, ack) = Raw::connect_v5(broker.addr, &connect);
    assert!(!ack.session_present);
    // [MQTT-3.14.2-2] from 0 to non-zero in DISCONNECT is a protocol error.
    c.send(&disconnect_v5(0, Props::new().u32(0x11, 60)));
    assert_eq!(c.expect_disconnect(), 0x82);
}

#[test]
fn disconnect_may_set_a_longer_expiry() {
    let broker = start();
    let connect = Connect::v5("longer", Props::new().u32(0x11, 1)).clean(false);
    let (mut c, _) = Raw::connect_v5(broker.addr, &connect);
    c.send(&disconnect_v5(0, Props::new().u32(0x11, 60)));
    c.expect_closed();
    std::thread::sleep(Duration::from_millis(2200));
    let (_c, ack) = Raw::connect_v5(broker.addr, &connect);
    assert!(ack.session_present, "DISCONNECT raised the expiry to 60 s");
}

#[test]
fn clean_start_discards_the_session() {
    let broker = start();
    let keep = Props::new().u32(0x11, 60);
    let (mut c, _) = Raw::connect_v5(broker.addr, &Connect::v5("cs", keep.clone()).clean(false));
    c.send(&disconnect_v5(0, Props::new()));
    c.expect_closed();
    let (_c, ack) = Raw::connect_v5(broker.addr, &Connect::v5("cs", keep));
    assert!(!ack.session_present, "clean start discards the old session");
}

#[test]
fn server_keep_alive_replaces_too_long_or_zero() {
    let broker = start_with(|c| c.max_keepalive = 30);
    let (_c, ack) = Raw::connect_v5(
        broker.addr,
        &Connect::v5("ka", Props::new()).keep_alive(100),
    );
    assert_eq!(prop_int(&ack.props, 0x13), Some(30));
    let (_c, ack) = Raw::connect_v5(broker.addr, &Connect::v5("ka0", Props::new()).keep_alive(0));
    assert_eq!(prop_int(&ack.props, 0x13), Some(30));
    let (_c, ack) = Raw::connect_v5(
        broker.addr,
        &Connect::v5("ka1", Props::new()).keep_alive(10),
    );
    assert_eq!(
        prop(&ack.props, 0x13),
        None,
        "within bounds: the client's value"
    );
}

#[test]
fn server_keep_alive_is_the_timeout_used() {
    let broker = start_with(|c| c.max_keepalive = 1);
    let (mut c, ack) = Raw::connect_v5(
        broker.addr,
        &Connect::v5("ka-used", Props::new()).keep_alive(600),
    );
    assert_eq!(prop_int(&ack.props, 0x13), Some(1));
    let started = Instant::now();
    assert_eq!(c.expect_disconnect(), 0x8d, "keepalive timeout");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn takeover_sends_0x8e() {
    let broker = start();
    let mut old = Raw::v5(broker.addr, "twin", Props::new());
    let _new = Raw::v5(broker.addr, "twin", Props::new());
    assert_eq!(old.expect_disconnect(), 0x8e);
}

#[test]
fn server_disconnect_carries_a_reason_string_that_fits() {
    let broker = start();
    let mut old = Raw::v5(broker.addr, "explained", Props::new());
    let _new = Raw::v5(broker.addr, "explained", Props::new());
    let frames = old.expect_closed();
    let d = frames.iter().find(|f| f.kind() == 14).expect("DISCONNECT");
    assert_eq!(d.body[0], 0x8e);
    let (props, _) = common::split_props(&d.body[1..]);
    assert_eq!(
        prop(&props, 0x1f),
        Some(common::Prop::Bytes(b"session taken over".to_vec()))
    );
    // A client whose Maximum Packet Size has no room for it gets the code alone (16 bytes:
    // room for the CONNACK, not for "keepalive timeout").
    let (mut tight, _) = Raw::connect_v5(
        broker.addr,
        &Connect::v5("tight", Props::new().u32(0x27, 16)).keep_alive(1),
    );
    let frames = tight.expect_closed();
    let d = frames.iter().find(|f| f.kind() == 14).expect("DISCONNECT");
    assert_eq!(d.body, [0x8d], "keepalive timeout, reason code only");
}

#[test]
fn malformed_and_protocol_errors_are_reported() {
    let broker = start();
    // A PUBLISH whose property length runs past the packet: malformed.
    let mut c = Raw::v5(broker.addr, "malformed", Props::new());
    c.send(&[0x30, 0x05, 0x00, 0x01, b't', 0x09, 0x01]);
    assert_eq!(c.expect_disconnect(), 0x81);
    // A property not valid on PUBLISH (session expiry): malformed too (v5 2.2.2.2).
    let mut c = Raw::v5(broker.addr, "protocol", Props::new());
    c.send(&publish_v5(
        "t",
        b"x",
        0,
        false,
        0,
        Props::new().u32(0x11, 5),
    ));
    assert_eq!(c.expect_disconnect(), 0x81);
    // Subscription identifier 0: protocol error.
    let mut c = Raw::v5(broker.addr, "subid0", Props::new());
    c.send(&subscribe_v5(1, Props::new().varint(0x0b, 0), &[("t", 0)]));
    assert_eq!(c.expect_disconnect(), 0x82);
}

#[test]
fn bad_connect_properties_get_a_v5_connack() {
    let broker = start();
    // Receive Maximum 0 is a protocol error [MQTT-3.1.2-?]: CONNACK 0x82, not silence.
    let (mut c, ack) = Raw::connect_v5(broker.addr, &Connect::v5("rm0", Props::new().u16(0x21, 0)));
    assert_eq!(ack.code, 0x82);
    c.expect_closed();
    // An unknown property id is malformed: CONNACK 0x81.
    let (mut c, ack) =
        Raw::connect_v5(broker.addr, &Connect::v5("unk", Props::new().byte(0x7f, 1)));
    assert_eq!(ack.code, 0x81);
    c.expect_closed();
}

#[test]
fn packet_too_large_sends_0x95() {
    let broker = start_with(|c| c.max_packet_size = 100);
    let mut c = Raw::v5(broker.addr, "big", Props::new());
    c.send(&publish_v5("t", &[b'x'; 200], 0, false, 0, Props::new()));
    assert_eq!(c.expect_disconnect(), 0x95);
}

#[test]
fn authentication_method_gets_0x8c_and_auth_packet_0x82() {
    let broker = start();
    let (mut c, ack) = Raw::connect_v5(
        broker.addr,
        &Connect::v5("scram", Props::new().bin(0x15, b"SCRAM-SHA-1")),
    );
    assert_eq!(ack.code, 0x8c);
    c.expect_closed();
    let mut c = Raw::v5(broker.addr, "auth", Props::new());
    c.send(&[0xf0, 0x00]);
    assert_eq!(c.expect_disconnect(), 0x82);
}

fn watcher(addr: std::net::SocketAddr) -> Raw {
    let mut w = Raw::v5(addr, "will-watcher", Props::new());
    w.subscribe_v5(Props::new(), &[("will/#", 1)]);
    w
}

fn will_client(id: &str, session_expiry: u32, will_delay: u32) -> Connect {
    Connect::v5(id, Props::new().u32(0x11, session_expiry))
        .clean(false)
        .will(&format!("will/{id}"), b"bye", 1, false)
        .will_props(
            Props::new()
                .u32(0x18, will_delay)
                .u32(0x02, 1)
                .bin(0x03, b"text/plain")
                .user("k", "v"),
        )
}

#[test]
fn delayed_will_is_published_after_the_delay_with_its_properties() {
    let broker = start();
    let mut w = watcher(broker.addr);
    let (c, _) = Raw::connect_v5(broker.addr, &will_client("delayed", 60, 1));
    let dropped = Instant::now();
    drop(c);
    w.expect_silence(500);
    let p = w.recv_publish5();
    assert!(dropped.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        (p.topic.as_str(), p.payload.as_slice()),
        ("will/delayed", &b"bye"[..])
    );
    assert_eq!(
        prop(&p.props, 0x03),
        Some(common::Prop::Bytes(b"text/plain".to_vec()))
    );
    assert_eq!(p.user_properties(), [("k".to_string(), "v".to_string())]);
    // Its expiry counts from publication, not from CONNECT.
    assert_eq!(prop_int(&p.props, 0x02), Some(1));
}

#[test]
fn delayed_will_is_cancelled_by_reconnecting() {
    let broker = start();
    let mut w = watcher(broker.addr);
    let connect = will_client("comeback", 60, 2);
    let (c, _) = Raw::connect_v5(broker.addr, &connect);
    drop(c);
    std::thread::sleep(Duration::from_millis(300));
    let (_c, ack) = Raw::connect_v5(broker.addr, &connect);
    assert!(ack.session_present);
    w.expect_silence(3000);
}

#[test]
fn clean_start_ends_the_old_session_and_publishes_its_delayed_will() {
    let broker = start();
    let mut w = watcher(broker.addr);
    let (c, _) = Raw::connect_v5(broker.addr, &will_client("restart", 60, 30));
    drop(c);
    std::thread::sleep(Duration::from_millis(300));
    // A clean start is not a reconnection to the old session: that session ends now, and a
    // session's end publishes its will without waiting for the delay.
    let (_c, ack) = Raw::connect_v5(broker.addr, &will_client("restart", 60, 30).clean(true));
    assert!(!ack.session_present);
    assert_eq!(w.recv_publish5().topic, "will/restart");
}

#[test]
fn will_is_published_at_session_end_when_sooner_than_the_delay() {
    let broker = start();
    let mut w = watcher(broker.addr);
    // Session expiry 0: the session ends at the disconnect, so the will goes at once.
    let (c, _) = Raw::connect_v5(broker.addr, &will_client("shortlived", 0, 30));
    drop(c);
    let p = w.recv_publish5();
    assert_eq!(p.topic, "will/shortlived");
    // Session expiry 1 s < will delay 30 s: published when the session expires.
    let (c, _) = Raw::connect_v5(broker.addr, &will_client("expires", 1, 30));
    let dropped = Instant::now();
    drop(c);
    let p = w.recv_publish5();
    assert_eq!(p.topic, "will/expires");
    assert!(dropped.elapsed() < Duration::from_secs(5));
}

#[test]
fn disconnect_with_will_message_sends_the_will() {
    let broker = start();
    let mut w = watcher(broker.addr);
    let (mut c, _) = Raw::connect_v5(broker.addr, &will_client("polite-will", 0, 0));
    c.send(&disconnect_v5(0x04, Props::new()));
    c.expect_closed();
    assert_eq!(w.recv_publish5().topic, "will/polite-will");
    // A normal DISCONNECT discards it.
    let (mut c, _) = Raw::connect_v5(broker.addr, &will_client("quiet-will", 0, 0));
    c.send(&disconnect_v5(0, Props::new()));
    c.expect_closed();
    w.expect_silence(400);
}

#[test]
fn will_with_invalid_utf8_payload_is_refused() {
    let broker = start();
    let connect = Connect::v5("badwill", Props::new())
        .will("will/x", &[0xff, 0xfe], 0, false)
        .will_props(Props::new().byte(0x01, 1));
    let (_c, ack) = Raw::connect_v5(broker.addr, &connect);
    assert_eq!(ack.code, 0x99);
}
