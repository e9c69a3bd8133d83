//! Retained messages over raw TCP.

mod common;

use common::{Raw, ack, publish, start, subscribe};

#[test]
fn retained_is_delivered_on_subscribe_with_retain_flag() {
    let broker = start();
    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.publish_acked("r/a", b"first", true, 1);
    publ.publish_acked("r/a", b"second", true, 2);
    let mut sub = Raw::connect(broker.addr, "s", true);
    assert_eq!(sub.subscribe("r/+", 1), 1);
    let p = sub.recv_publish();
    assert_eq!(
        (p.payload.as_slice(), p.retain, p.qos),
        (&b"second"[..], true, 1),
        "replaced"
    );
    sub.send(&ack(0x40, p.packet_id));
    // Live messages carry retain = 0 even when published retained [MQTT-3.3.1-9].
    publ.send(&publish("r/a", b"live", 0, true, 0));
    let p = sub.recv_publish();
    assert_eq!((p.payload.as_slice(), p.retain), (&b"live"[..], false));
}

#[test]
fn empty_retained_clears() {
    let broker = start();
    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.send(&publish("c", b"x", 0, true, 0));
    publ.send(&publish("c", b"", 0, true, 0));
    publ.ping();
    let mut sub = Raw::connect(broker.addr, "s", true);
    sub.subscribe("c", 0);
    sub.expect_silence(300);
}

#[test]
fn retained_qos_is_downgraded_to_granted() {
    let broker = start();
    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.send(&publish("g", b"x", 2, true, 1));
    publ.recv_kind(5);
    publ.send(&ack(0x62, 1));
    publ.recv_kind(7);
    let mut sub = Raw::connect(broker.addr, "s", true);
    sub.subscribe("g", 1);
    let p = sub.recv_publish();
    assert_eq!((p.qos, p.retain), (1, true));
}

#[test]
fn resubscribe_resends_retained() {
    let broker = start();
    let mut publ = Raw::connect(broker.addr, "p", true);
    publ.send(&publish("again", b"x", 0, true, 0));
    publ.ping();
    let mut sub = Raw::connect(broker.addr, "s", true);
    sub.subscribe("again", 0);
    assert!(sub.recv_publish().retain);
    sub.send(&subscribe(2, &[("again", 0)]));
    sub.recv_kind(9);
    assert!(
        sub.recv_publish().retain,
        "replacing a subscription resends retained"
    );
}

#[test]
fn wildcard_subscription_gets_every_retained_topic_but_dollar() {
    let broker = start();
    let mut publ = Raw::connect(broker.addr, "p", true);
    for t in ["w/1", "w/2", "w/3/x", "$internal"] {
        publ.send(&publish(t, t.as_bytes(), 0, true, 0));
    }
    publ.ping();
    let mut sub = Raw::connect(broker.addr, "s", true);
    sub.subscribe("#", 0);
    let mut topics: Vec<String> = (0..3).map(|_| sub.recv_publish().topic).collect();
    topics.sort();
    assert_eq!(topics, ["w/1", "w/2", "w/3/x"]);
    sub.expect_silence(300);
}

#[test]
fn retained_store_is_bounded() {
    let broker = common::start_with(|c| c.max_retained_messages = 2);
    let mut publ = Raw::connect(broker.addr, "p", true);
    for t in ["r/1", "r/2", "r/3"] {
        publ.send(&publish(t, t.as_bytes(), 0, true, 0));
    }
    publ.ping();
    let mut sub = Raw::connect(broker.addr, "s", true);
    sub.subscribe("r/#", 0);
    let mut topics: Vec<String> = (0..2).map(|_| sub.recv_publish().topic).collect();
    topics.sort();
    assert_eq!(
        topics,
        ["r/1", "r/2"],
        "the third retained topic is not stored"
    );
    sub.expect_silence(300);
}

#[test]
fn retained_on_subscribe_stop_at_the_queue_bound() {
    let broker = common::start_with(|c| c.max_queued_messages = 5);
    let mut publ = Raw::connect(broker.addr, "p", true);
    for i in 0..50 {
        publ.send(&publish(&format!("many/{i}"), b"x", 0, true, 0));
    }
    publ.ping();
    let mut sub = Raw::connect(broker.addr, "s", true);
    sub.subscribe("many/#", 1);
    for _ in 0..5 {
        assert!(sub.recv_publish().retain);
    }
    sub.expect_silence(300);
}
