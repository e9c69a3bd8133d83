//! MQTT 3.1.1 and 5.0 clients on one broker, both directions, QoS 0/1/2 and retained.

mod common;

use common::{Props, Raw, ack, ack_v5, publish, publish_v5, start};

/// Completes the subscriber side of a received QoS 1/2 PUBLISH.
fn finish(c: &mut Raw, qos: u8, packet_id: u16, v5: bool) {
    let make = |h: u8| {
        if v5 {
            ack_v5(h, packet_id)
        } else {
            ack(h, packet_id)
        }
    };
    match qos {
        1 => c.send(&make(0x40)),
        2 => {
            c.send(&make(0x50));
            c.recv_kind(6);
            c.send(&make(0x70));
        }
        _ => {}
    }
}

#[test]
fn v311_publisher_to_v5_subscriber() {
    let broker = start();
    let mut p = Raw::connect(broker.addr, "mx-pub3", true);
    p.publish_acked("mx/r", b"retained", true, 100);
    let mut sub = Raw::v5(broker.addr, "mx-sub5", Props::new());
    sub.subscribe_v5(Props::new(), &[("mx/#", 2)]);
    let r = sub.recv_publish5();
    assert!(r.retain && r.payload == b"retained" && r.props.is_empty());
    finish(&mut sub, r.qos, r.packet_id, true);
    for qos in 0..=2u8 {
        p.send(&publish("mx/t", &[qos], qos, false, u16::from(qos) + 1));
        if qos == 2 {
            p.recv_kind(5);
            p.send(&ack(0x62, 3));
            p.recv_kind(7);
        } else if qos == 1 {
            p.recv_kind(4);
        }
        let m = sub.recv_publish5();
        assert_eq!(
            (m.topic.as_str(), m.payload.as_slice(), m.qos),
            ("mx/t", &[qos][..], qos)
        );
        assert!(m.props.is_empty(), "nothing added: {:?}", m.props);
        finish(&mut sub, m.qos, m.packet_id, true);
    }
}

#[test]
fn v5_publisher_to_v311_subscriber() {
    let broker = start();
    let mut p = Raw::v5(broker.addr, "mx-pub5", Props::new());
    let props = || Props::new().user("k", "v").bin(0x03, b"text/plain");
    p.send(&publish_v5("mx5/r", b"retained", 2, true, 50, props()));
    p.recv_kind(5);
    p.send(&ack_v5(0x62, 50));
    p.recv_kind(7);
    let mut sub = Raw::connect(broker.addr, "mx-sub3", true);
    assert_eq!(sub.subscribe("mx5/#", 2), 2);
    let r = sub.recv_publish();
    assert_eq!(
        (r.payload.as_slice(), r.retain, r.qos),
        (&b"retained"[..], true, 2)
    );
    finish(&mut sub, r.qos, r.packet_id, false);
    for qos in 0..=2u8 {
        p.send(&publish_v5(
            "mx5/t",
            &[qos],
            qos,
            false,
            u16::from(qos) + 1,
            props(),
        ));
        let m = sub.recv_publish();
        // Parsed as 3.1.1: no property block, so the payload is exactly what was sent.
        assert_eq!(
            (m.topic.as_str(), m.payload.as_slice(), m.qos),
            ("mx5/t", &[qos][..], qos)
        );
        finish(&mut sub, m.qos, m.packet_id, false);
    }
}
