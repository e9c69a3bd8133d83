//! PUBLISH and SUBSCRIBE over raw TCP: QoS 0/1/2 both ways, acknowledgements that do not
//! fit their flow, wildcards, overlap, order.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use common::{Connect, Props, Raw, ack, publish, start, subscribe, unsubscribe};
use mosquitto::{Kind, pipit_and_mosquitto};

#[test]
fn qos0_round_trip() {
    let broker = start();
    let mut sub = Raw::connect(broker.addr, "sub", true);
    assert_eq!(sub.subscribe("a/b", 0), 0);
    let mut publ = Raw::connect(broker.addr, "pub", true);
    publ.send(&publish("a/b", b"hello", 0, false, 0));
    let p = sub.recv_publish();
    assert_eq!(
        (p.topic.as_str(), p.payload.as_slice(), p.qos, p.retain),
        ("a/b", &b"hello"[..], 0, false)
    );
}

#[test]
fn qos1_flow_both_ways() {
    let broker = start();
    let mut sub = Raw::connect(broker.addr, "sub1", true);
    assert_eq!(sub.subscribe("q1", 1), 1);
    let mut publ = Raw::connect(broker.addr, "pub1", true);
    publ.send(&publish("q1", b"m", 1, false, 42));
    assert_eq!(
        publ.recv_kind(4).body,
        [0, 42],
        "PUBACK for the publisher's id"
    );
    let p = sub.recv_publish();
    assert_eq!(p.qos, 1);
    assert_ne!(p.packet_id, 0);
    sub.send(&ack(0x40, p.packet_id));
    sub.expect_silence(200);
}

#[test]
fn qos2_flow_both_ways_exactly_once() {
    let broker = start();
    let mut sub = Raw::connect(broker.addr, "sub2", true);
    assert_eq!(sub.subscribe("q2", 2), 2);
    let mut publ = Raw::connect(broker.addr, "pub2", true);
    // The same packet id twice before PUBREL: a re-send, routed once [MQTT-4.3.3-9].
    publ.send(&publish("q2", b"once", 2, false, 7));
    assert_eq!(publ.recv_kind(5).body, [0, 7], "PUBREC");
    publ.send(&publish("q2", b"once", 2, false, 7));
    assert_eq!(publ.recv_kind(5).body, [0, 7], "PUBREC again");
    publ.send(&ack(0x62, 7));
    assert_eq!(publ.recv_kind(7).body, [0, 7], "PUBCOMP");

    let p = sub.recv_publish();
    assert_eq!((p.qos, p.payload.as_slice()), (2, &b"once"[..]));
    sub.send(&ack(0x50, p.packet_id));
    let rel = sub.recv().unwrap();
    assert_eq!(rel.header, 0x62, "PUBREL");
    assert_eq!(rel.body, p.packet_id.to_be_bytes());
    sub.send(&ack(0x70, p.packet_id));
    sub.expect_silence(300);
}

#[test]
fn qos_is_downgraded_to_the_granted_qos() {
    let broker = start();
    let mut sub = Raw::connect(broker.addr, "low", true);
    sub.subscribe("d", 0);
    let mut publ = Raw::connect(broker.addr, "high", true);
    publ.send(&publish("d", b"x", 2, false, 1));
    assert_eq!(sub.recv_publish().qos, 0);
}

#[test]
fn wildcards_and_dollar_topics() {
    let broker = start();
    let mut sub = Raw::connect(broker.addr, "wild", true);
    sub.send(&subscribe(3, &[("#", 0), ("s/+/t", 0)]));
    let suback = sub.recv_kind(9);
    assert_eq!(suback.body, [0, 3, 0, 0]);
    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.send(&publish("$SYS/fake", b"no", 0, false, 0));
    publ.send(&publish("s/x/t", b"yes", 0, false, 0));
    // Overlapping subscriptions deliver once [MQTT-3.3.5-1].
    let p = sub.recv_publish();
    assert_eq!(p.payload, b"yes");
    sub.expect_silence(300);
}

#[test]
fn overlapping_subscriptions_deliver_once_at_highest_qos() {
    let broker = start();
    let mut sub = Raw::connect(broker.addr, "overlap", true);
    sub.send(&subscribe(1, &[("o/+", 0), ("o/#", 2), ("o/x", 1)]));
    assert_eq!(sub.recv_kind(9).body, [0, 1, 0, 2, 1]);
    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.send(&publish("o/x", b"m", 2, false, 9));
    let p = sub.recv_publish();
    assert_eq!(p.qos, 2);
    sub.send(&ack(0x50, p.packet_id));
    assert_eq!(sub.recv().unwrap().header, 0x62);
    sub.send(&ack(0x70, p.packet_id));
    sub.expect_silence(300);
}

#[test]
fn invalid_filters_get_0x80() {
    let broker = start();
    let mut sub = Raw::connect(broker.addr, "bad", true);
    sub.send(&subscribe(5, &[("a/#/b", 0), ("ok", 1), ("a+", 2)]));
    assert_eq!(sub.recv_kind(9).body, [0, 5, 0x80, 1, 0x80]);
}

#[test]
fn unsubscribe_stops_delivery() {
    let broker = start();
    let mut sub = Raw::connect(broker.addr, "unsub", true);
    sub.subscribe("u", 0);
    sub.send(&unsubscribe(2, &["u", "never-subscribed"]));
    assert_eq!(sub.recv_kind(11).body, [0, 2]);
    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.send(&publish("u", b"x", 0, false, 0));
    sub.expect_silence(300);
}

#[test]
fn order_is_preserved_per_publisher() {
    let broker = start();
    let mut sub = Raw::connect(broker.addr, "order", true);
    sub.subscribe("seq/#", 1);
    let mut publ = Raw::connect(broker.addr, "p", true);
    let mut batch = Vec::new();
    for i in 0..500u16 {
        let qos = (i % 2) as u8;
        batch.extend(publish("seq/a", &i.to_be_bytes(), qos, false, i + 1));
    }
    publ.send(&batch);
    for i in 0..500u16 {
        let p = sub.recv_publish();
        assert_eq!(p.payload, i.to_be_bytes(), "message {i} out of order");
        if p.qos == 1 {
            sub.send(&ack(0x40, p.packet_id));
        }
    }
}

#[test]
fn resubscribe_replaces_and_keeps_one_subscription() {
    let broker = start();
    let mut sub = Raw::connect(broker.addr, "re", true);
    assert_eq!(sub.subscribe("r", 0), 0);
    sub.send(&subscribe(2, &[("r", 1)]));
    assert_eq!(sub.recv_kind(9).body, [0, 2, 1]);
    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.send(&publish("r", b"x", 1, false, 1));
    let p = sub.recv_publish();
    assert_eq!(p.qos, 1, "the replacing subscription's QoS");
    sub.send(&ack(0x40, p.packet_id));
    sub.expect_silence(300);
}

#[test]
fn large_payload_fan_out() {
    let broker = start();
    let mut subs: Vec<Raw> = (0..5)
        .map(|i| {
            let mut s = Raw::connect(broker.addr, &format!("big{i}"), true);
            s.subscribe("big", 0);
            s
        })
        .collect();
    let payload: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.send(&publish("big", &payload, 0, false, 0));
    for s in &mut subs {
        assert_eq!(s.recv_publish().payload, payload);
    }
}

#[test]
fn subscriptions_per_client_are_bounded() {
    let broker = common::start_with(|c| c.max_subscriptions_per_client = 2);
    let mut sub = Raw::connect(broker.addr, "greedy", true);
    sub.send(&subscribe(1, &[("a", 0), ("b", 1), ("c", 1)]));
    assert_eq!(
        sub.recv_kind(9).body,
        [0, 1, 0, 1, 0x80],
        "the third is refused"
    );
    // Replacing an existing subscription is still allowed at the bound.
    sub.send(&subscribe(2, &[("a", 1)]));
    assert_eq!(sub.recv_kind(9).body, [0, 2, 1]);
}

#[test]
fn a_publisher_switching_topics_delivers_each_under_its_own_topic() {
    // The broker shares a publisher's repeated topic between its messages; switching topics
    // (and coming back) must not deliver a message under the previous one.
    let broker = start();
    let mut sub = Raw::connect(broker.addr, "switch-sub", true);
    sub.subscribe("t/#", 0);
    let mut publ = Raw::connect(broker.addr, "switch-pub", true);
    let topics = ["t/a", "t/a", "t/b", "t/a", "t/bb", "t/b"];
    let mut batch = Vec::new();
    for (i, topic) in topics.iter().enumerate() {
        batch.extend(publish(topic, &[i as u8], 0, false, 0));
    }
    publ.send(&batch);
    for (i, topic) in topics.iter().enumerate() {
        let p = sub.recv_publish();
        assert_eq!(
            (p.topic.as_str(), p.payload.as_slice()),
            (*topic, &[i as u8][..])
        );
    }
}

#[test]
fn subscriptions_made_between_a_publishers_messages_take_effect_at_once() {
    // The broker remembers what a publisher's repeated topic matched; every subscribe and
    // unsubscribe must invalidate that.
    let broker = start();
    let mut publ = Raw::connect(broker.addr, "repeat-pub", true);
    publ.publish_acked("r/t", b"nobody", false, 1);
    let mut first = Raw::connect(broker.addr, "first", true);
    first.subscribe("r/+", 0);
    publ.publish_acked("r/t", b"one", false, 2);
    assert_eq!(first.recv_publish().payload, b"one");
    let mut second = Raw::connect(broker.addr, "second", true);
    second.subscribe("r/t", 0);
    publ.publish_acked("r/t", b"two", false, 3);
    assert_eq!(first.recv_publish().payload, b"two");
    assert_eq!(second.recv_publish().payload, b"two");
    first.send(&unsubscribe(2, &["r/+"]));
    first.recv_kind(11);
    publ.publish_acked("r/t", b"three", false, 4);
    assert_eq!(second.recv_publish().payload, b"three");
    first.expect_silence(200);
    // The second subscriber's session ends with its connection (disconnect waits for the
    // broker to close it); a new client, which reuses its session slot, subscribed to
    // nothing must not inherit its deliveries.
    second.disconnect();
    let mut third = Raw::connect(broker.addr, "third", true);
    publ.publish_acked("r/t", b"four", false, 5);
    third.expect_silence(200);
    first.expect_silence(50);
}

#[test]
fn qos0_to_a_subscriber_that_keeps_reading_slowly_is_not_dropped() {
    // A 4 KiB output bound, a subscriber reading in small sips with pauses, and a publisher
    // sending 2 MB in one go: the publisher is held back, nothing is dropped.
    let broker = common::start_with(|c| {
        c.max_output_buffer = 4096;
        c.slow_subscriber_timeout = std::time::Duration::from_secs(5);
    });
    let mut sub = Raw::connect(broker.addr, "slow-reader", true);
    sub.subscribe("flood", 0);
    let mut publ = Raw::connect(broker.addr, "flooder", true);
    let count = 20_000u32;
    let payload = [b'.'; 96];
    let mut batch = Vec::new();
    for i in 0..count {
        let mut body = i.to_be_bytes().to_vec();
        body.extend_from_slice(&payload);
        batch.extend(publish("flood", &body, 0, false, 0));
    }
    let writer = std::thread::spawn(move || {
        publ.send(&batch);
        publ.ping();
    });
    for i in 0..count {
        if i % 2000 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let p = sub.recv_publish();
        assert_eq!(p.payload[..4], i.to_be_bytes(), "message {i} in order");
    }
    writer.join().unwrap();
    sub.expect_silence(200);
}

/// What the broker does with an acknowledgement from a subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckAnswer {
    /// A protocol error: the connection is closed (v5: pipit sends DISCONNECT 0x82 first).
    Closed,
    /// Nothing: the connection goes on.
    Ignored,
    /// PUBREL for the same packet id.
    Pubrel,
}

/// An acknowledgement of the wrong kind for its packet id's flow (PUBREC or PUBCOMP for a
/// QoS 1 message, PUBACK for a QoS 2 one, PUBCOMP before PUBREC) is a protocol error that
/// closes the connection, as Mosquitto 2.0.11 does (which closes without a DISCONNECT); one
/// for a packet id with no message in flight is no error: PUBACK and PUBCOMP are ignored,
/// PUBREC is answered with PUBREL, as Mosquitto does too.
#[test]
fn an_acknowledgement_out_of_its_flow_is_a_protocol_error() {
    use AckAnswer::{Closed, Ignored, Pubrel};
    // (protocol level, QoS delivered (0: no message in flight), acks sent, answer)
    #[rustfmt::skip]
    let table: [(u8, u8, &[u8], AckAnswer); 11] = [
        (4, 1, &[0x50], Closed),         // PUBREC for QoS 1
        (4, 1, &[0x70], Closed),         // PUBCOMP for QoS 1
        (4, 2, &[0x40], Closed),         // PUBACK for QoS 2
        (4, 2, &[0x70], Closed),         // PUBCOMP before PUBREC
        (5, 1, &[0x50], Closed),
        (5, 2, &[0x40], Closed),
        (4, 0, &[0x40], Ignored),        // unknown packet ids
        (4, 0, &[0x70], Ignored),
        (4, 0, &[0x50], Pubrel),
        (5, 0, &[0x50], Pubrel),
        (4, 2, &[0x50, 0x50], Pubrel),   // PUBREC again: PUBREL again
    ];
    let dir = support::Scratch::new("ack-flow");
    for peer in pipit_and_mosquitto(&dir, "allow_anonymous true\n") {
        for (n, &(level, qos, acks, answer)) in table.iter().enumerate() {
            let case = format!("{:?} row {n}", peer.kind);
            let topic = format!("acks/{n}");
            let mut sub = Raw::open(peer.addr);
            let id = format!("acker-{n}");
            let v5 = level == 5;
            let connect = if v5 {
                Connect::v5(&id, Props::new())
            } else {
                Connect::v311(&id)
            };
            sub.send(&connect.bytes());
            assert_eq!(sub.recv().expect("CONNACK").body[1], 0, "{case}");
            if v5 {
                sub.send(&common::subscribe_v5(1, Props::new(), &[(&topic, 2)]));
            } else {
                sub.send(&subscribe(1, &[(&topic, 2)]));
            }
            sub.recv_kind(9);
            let packet_id = if qos == 0 {
                0x4242
            } else {
                let mut publ = Raw::connect(peer.addr, &format!("pub-{n}"), true);
                publ.send(&publish(&topic, b"m", qos, false, 1));
                if qos == 2 {
                    // Mosquitto passes a QoS 2 message on only once it is released.
                    publ.recv_kind(5);
                    publ.send(&ack(0x62, 1));
                    publ.recv_kind(7);
                }
                let p = sub.recv().unwrap_or_else(|| panic!("{case}: no PUBLISH"));
                assert_eq!((p.kind(), (p.header >> 1) & 3), (3, qos), "{case}");
                u16::from_be_bytes([p.body[2 + topic.len()], p.body[3 + topic.len()]])
            };
            for &header in acks {
                sub.send(&if v5 {
                    common::ack_v5(header, packet_id)
                } else {
                    ack(header, packet_id)
                });
                if answer == Pubrel {
                    let rel = sub.recv().expect("PUBREL");
                    assert_eq!(
                        (rel.header, &rel.body[..2]),
                        (0x62, &packet_id.to_be_bytes()[..]),
                        "{case}"
                    );
                }
            }
            match answer {
                Closed => {
                    let frames = sub.expect_closed();
                    if v5 && peer.kind == Kind::Pipit {
                        let d = frames.iter().find(|f| f.kind() == 14);
                        assert_eq!(d.map(|d| d.body[0]), Some(0x82), "{case}: {frames:?}");
                    }
                }
                Ignored | Pubrel => sub.ping(),
            }
        }
    }
}
