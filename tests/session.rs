//! Persistent sessions: offline queueing, session present, DUP re-delivery, clean discard.

mod common;

use common::{Connect, Raw, ack, publish, start, start_with};

fn connack_session_present(addr: std::net::SocketAddr, id: &str, clean: bool) -> (Raw, u8) {
    let mut c = Raw::open(addr);
    c.send(&Connect::v311(id).clean(clean).bytes());
    let f = c.recv().expect("CONNACK");
    assert_eq!(f.body[1], 0);
    (c, f.body[0])
}

#[test]
fn offline_qos1_is_queued_and_delivered_with_session_present() {
    let broker = start();
    let (mut s, present) = connack_session_present(broker.addr, "durable", false);
    assert_eq!(present, 0);
    s.subscribe("q/#", 1);
    s.disconnect();

    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.publish_acked("q/1", b"one", false, 1);
    publ.send(&publish("q/0", b"zero", 0, false, 0));
    publ.send(&publish("q/2", b"two", 2, false, 2));
    publ.recv_kind(5);

    let (mut s, present) = connack_session_present(broker.addr, "durable", false);
    assert_eq!(present, 1, "session present [MQTT-3.2.2-2]");
    let a = s.recv_publish();
    let b = s.recv_publish();
    assert_eq!((a.payload.as_slice(), a.qos), (&b"one"[..], 1));
    assert_eq!(
        (b.payload.as_slice(), b.qos),
        (&b"two"[..], 1),
        "downgraded to the granted QoS 1"
    );
    s.send(&ack(0x40, a.packet_id));
    s.send(&ack(0x40, b.packet_id));
    s.expect_silence(300); // QoS 0 is not queued for offline sessions
}

#[test]
fn clean_session_discards_state() {
    let broker = start();
    let (mut s, _) = connack_session_present(broker.addr, "temp", false);
    s.subscribe("t", 1);
    s.disconnect();
    let (mut s, present) = connack_session_present(broker.addr, "temp", true);
    assert_eq!(present, 0);
    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.publish_acked("t", b"x", false, 1);
    s.expect_silence(300);
    s.disconnect();
    let (_s, present) = connack_session_present(broker.addr, "temp", false);
    assert_eq!(present, 0, "a clean session is not kept after it ends");
}

#[test]
fn unacknowledged_messages_are_redelivered_with_dup() {
    let broker = start();
    let (mut s, _) = connack_session_present(broker.addr, "forgetful", false);
    s.subscribe("d", 2);
    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.send(&publish("d", b"q1", 1, false, 1));
    publ.send(&publish("d", b"q2", 2, false, 2));
    let first = s.recv_publish();
    let second = s.recv_publish();
    assert!(!first.dup);
    // Acknowledge PUBREC for the QoS 2 message, then vanish before PUBCOMP.
    s.send(&ack(0x50, second.packet_id));
    assert_eq!(s.recv().unwrap().header, 0x62);
    drop(s);
    std::thread::sleep(std::time::Duration::from_millis(100));

    let (mut s, present) = connack_session_present(broker.addr, "forgetful", false);
    assert_eq!(present, 1);
    let again = s.recv_publish();
    assert_eq!(
        (again.payload.as_slice(), again.dup, again.packet_id),
        (&b"q1"[..], true, first.packet_id)
    );
    let rel = s.recv().unwrap();
    assert_eq!(
        (rel.header, rel.body.clone()),
        (0x62, second.packet_id.to_be_bytes().to_vec()),
        "PUBREL re-sent"
    );
    s.send(&ack(0x40, again.packet_id));
    s.send(&ack(0x70, second.packet_id));
    s.expect_silence(300);
}

#[test]
fn offline_queue_is_bounded() {
    let broker = start_with(|c| c.max_queued_messages = 5);
    let (mut s, _) = connack_session_present(broker.addr, "bounded", false);
    s.subscribe("b", 1);
    s.disconnect();
    let mut publ = Raw::connect(broker.addr, "p", true);
    for i in 0..20u16 {
        publ.publish_acked("b", &i.to_be_bytes(), false, i + 1);
    }
    let (mut s, _) = connack_session_present(broker.addr, "bounded", false);
    for i in 0..5u16 {
        let p = s.recv_publish();
        assert_eq!(p.payload, i.to_be_bytes(), "the oldest are kept");
        s.send(&ack(0x40, p.packet_id));
    }
    s.expect_silence(300);
}

#[test]
fn inflight_window_limits_unacknowledged_messages() {
    let broker = start_with(|c| c.max_inflight_messages = 3);
    let mut s = Raw::connect(broker.addr, "window", true);
    s.subscribe("w", 1);
    let mut publ = Raw::connect(broker.addr, "p", true);
    for i in 0..6u16 {
        publ.send(&publish("w", &i.to_be_bytes(), 1, false, i + 1));
    }
    let first: Vec<_> = (0..3).map(|_| s.recv_publish()).collect();
    s.expect_silence(300);
    s.send(&ack(0x40, first[0].packet_id));
    assert_eq!(s.recv_publish().payload, 3u16.to_be_bytes());
}

/// MQTT 3.1 has no Session Present flag: the first CONNACK byte is reserved (3.1, 3.2), so a
/// resumed 3.1 session gets exactly `20 02 00 00`, and still gets what its session kept.
#[test]
fn mqtt31_connack_has_no_session_present_flag_but_the_session_is_resumed() {
    let broker = start();
    let persistent = Connect::v31("old-timer").clean(false);
    let mut s = Raw::open(broker.addr);
    s.send(&persistent.bytes());
    assert_eq!(s.recv().expect("CONNACK").body, [0, 0]);
    s.subscribe("kept", 1);
    s.disconnect();
    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.publish_acked("kept", b"while away", false, 1);

    let mut s = Raw::open(broker.addr);
    s.send(&persistent.bytes());
    let ack = s.recv().expect("CONNACK");
    assert_eq!(
        (ack.header, ack.body),
        (0x20, vec![0, 0]),
        "reserved byte 0"
    );
    assert_eq!(s.recv_publish().payload, b"while away");
}
