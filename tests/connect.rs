//! CONNECT and CONNACK over raw TCP: versions, client ids, flags, ordering, takeover.

mod common;

use std::time::Duration;

use common::{Connect, Raw, connack_code, frame, start, start_with, string};

fn connack(c: &mut Raw) -> (u8, u8) {
    let f = c.recv().expect("CONNACK");
    assert_eq!(f.header, 0x20, "{f:?}");
    assert_eq!(f.body.len(), 2);
    (f.body[0], f.body[1])
}

#[test]
fn accepts_3_1_and_3_1_1() {
    let broker = start();
    for connect in [Connect::v31("old-client"), Connect::v311("new-client")] {
        let mut c = Raw::open(broker.addr);
        c.send(&connect.bytes());
        assert_eq!(connack(&mut c), (0, 0));
        c.ping();
        c.disconnect();
    }
}

#[test]
fn unsupported_level_gets_0x01() {
    let broker = start();
    let mut c = Raw::open(broker.addr);
    let mut connect = Connect::v311("x");
    connect.level = 9;
    c.send(&connect.bytes());
    let frames = c.expect_closed();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].body, [0, 1]);
}

#[test]
fn bad_protocol_name_closes_without_connack() {
    let broker = start();
    let mut c = Raw::open(broker.addr);
    let mut connect = Connect::v311("x");
    connect.protocol = b"MQTX";
    c.send(&connect.bytes());
    assert!(c.expect_closed().is_empty());
}

#[test]
fn reserved_flag_closes() {
    let broker = start();
    let mut c = Raw::open(broker.addr);
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.extend_from_slice(&[4, 0x03, 0, 60]);
    string(b"x", &mut body);
    c.send(&frame(0x10, &body));
    assert!(c.expect_closed().is_empty());
}

#[test]
fn client_id_rules() {
    let broker = start();
    // 3.1: at most 23 characters.
    let mut c = Raw::open(broker.addr);
    c.send(&Connect::v31("abcdefghijklmnopqrstuvwxyz").bytes());
    assert_eq!(c.expect_closed()[0].body, [0, 2]);
    // 3.1: empty is rejected.
    let mut c = Raw::open(broker.addr);
    c.send(&Connect::v31("").bytes());
    assert_eq!(c.expect_closed()[0].body, [0, 2]);
    // 3.1.1: empty without clean session is rejected [MQTT-3.1.3-8].
    let mut c = Raw::open(broker.addr);
    c.send(&Connect::v311("").clean(false).bytes());
    assert_eq!(c.expect_closed()[0].body, [0, 2]);
    // 3.1.1: empty with clean session gets an assigned id and works.
    let mut c = Raw::connect_with(broker.addr, &Connect::v311(""));
    assert_eq!(c.subscribe("t", 0), 0);
}

#[test]
fn first_packet_must_be_connect() {
    let broker = start();
    let mut c = Raw::open(broker.addr);
    c.send(&[0xc0, 0x00]);
    assert!(c.expect_closed().is_empty());
}

#[test]
fn second_connect_closes() {
    let broker = start();
    let mut c = Raw::connect(broker.addr, "twice", true);
    c.send(&Connect::v311("twice").bytes());
    assert!(c.expect_closed().is_empty());
}

#[test]
fn silent_client_is_closed_after_connect_timeout() {
    let broker = start_with(|c| c.connect_timeout = Duration::from_millis(500));
    let mut c = Raw::open(broker.addr);
    assert!(c.expect_closed().is_empty());
}

#[test]
fn takeover_closes_the_old_connection() {
    let broker = start();
    let mut old = Raw::connect(broker.addr, "same", false);
    let mut new = Raw::connect(broker.addr, "same", false);
    assert!(old.expect_closed().is_empty());
    new.ping();
}

#[test]
fn anonymous_refused_when_not_allowed() {
    let broker = start_with(|c| c.allow_anonymous = false);
    let mut c = Raw::open(broker.addr);
    c.send(&Connect::v311("anon").bytes());
    assert_eq!(c.expect_closed()[0].body, [0, 5]);
}

#[test]
fn max_connections_refuses_extra_sockets() {
    let broker = start_with(|c| c.max_connections = Some(1));
    let _first = Raw::connect(broker.addr, "first", true);
    let mut second = Raw::open(broker.addr);
    second.send(&Connect::v311("second").bytes());
    assert!(second.expect_closed().is_empty());
}

#[test]
fn keepalive_timeout_closes() {
    let broker = start();
    let mut c = Raw::connect_with(broker.addr, &Connect::v311("sleepy").keep_alive(1));
    let started = std::time::Instant::now();
    assert!(c.expect_closed().is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "closed too early"
    );
}

#[test]
fn pings_keep_a_client_alive() {
    let broker = start();
    let mut c = Raw::connect_with(broker.addr, &Connect::v311("pinger").keep_alive(1));
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(700));
        c.ping();
    }
}

#[test]
fn zero_length_client_id_refused_when_not_allowed() {
    let broker = start_with(|c| c.allow_zero_length_clientid = false);
    assert_eq!(connack_code(broker.addr, &Connect::v311("")), 2);
    let _named = Raw::connect(broker.addr, "named", true);
}

#[test]
fn client_id_prefixes_are_enforced() {
    let broker = start_with(|c| c.clientid_prefixes = Some("gw-".into()));
    assert_eq!(connack_code(broker.addr, &Connect::v311("sensor-1")), 5);
    let _ok = Raw::connect(broker.addr, "gw-1", true);
}

#[test]
fn keepalive_over_max_keepalive_is_refused_for_mqtt3() {
    let broker = start_with(|c| c.max_keepalive = 30);
    assert_eq!(
        connack_code(broker.addr, &Connect::v311("greedy").keep_alive(60)),
        2
    );
    let _modest = Raw::connect_with(broker.addr, &Connect::v311("modest").keep_alive(30));
}
