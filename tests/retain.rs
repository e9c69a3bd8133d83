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
fn retained_on_subscribe_wait_for_the_queue_instead_of_dropping() {
    // Before: the retained set was cut at the queue bound (5 of 50).
    let broker = common::start_with(|c| {
        c.max_queued_messages = 5;
        c.max_inflight_messages = 2;
    });
    let mut publ = Raw::connect(broker.addr, "p", true);
    for i in 0..50 {
        publ.publish_acked(&format!("many/{i:02}"), b"x", true, i + 1);
    }
    let mut sub = Raw::connect(broker.addr, "s", true);
    sub.subscribe("many/#", 1);
    for i in 0..50 {
        let p = sub.recv_publish();
        assert_eq!(
            (p.topic.as_str(), p.retain, p.qos),
            (format!("many/{i:02}").as_str(), true, 1),
            "every one, in topic order"
        );
        sub.send(&ack(0x40, p.packet_id));
    }
    sub.expect_silence(300);
}

/// Publishes `count` retained QoS 0 messages `{prefix}/{i:05}` of `size` bytes and waits
/// until the broker has them.
fn retain_many(addr: std::net::SocketAddr, prefix: &str, count: usize, size: usize) {
    let mut publ = Raw::connect(addr, "filler", true);
    let mut batch = Vec::new();
    let payload = vec![b'x'; size];
    for i in 0..count {
        batch.extend(publish(&format!("{prefix}/{i:05}"), &payload, 0, true, 0));
    }
    publ.send(&batch);
    publ.ping();
}

/// Reads PUBLISH topics until `ms` of silence.
fn topics_until_silence(sub: &mut Raw, ms: u64) -> Vec<String> {
    sub.stream
        .set_read_timeout(Some(std::time::Duration::from_millis(ms)))
        .unwrap();
    let mut topics = Vec::new();
    while let Ok(Some(f)) = sub.read_frame() {
        if f.kind() == 3 {
            topics.push(common::Publish::parse(&f).topic);
        }
    }
    topics
}

#[test]
fn a_large_retained_set_arrives_whole_and_in_order_through_a_small_output_buffer() {
    let broker = common::start_with(|c| c.max_output_buffer = 4096);
    retain_many(broker.addr, "big", 20_000, 10);
    let mut sub = Raw::connect(broker.addr, "s", true);
    sub.subscribe("big/+", 0);
    let topics = topics_until_silence(&mut sub, 500);
    let expected: Vec<String> = (0..20_000).map(|i| format!("big/{i:05}")).collect();
    assert_eq!(topics.len(), expected.len());
    assert!(topics == expected, "in topic order");
}

#[test]
fn unsubscribe_cancels_and_resubscribe_restarts_the_retained_walk() {
    let broker = common::start_with(|c| c.max_output_buffer = 4096);
    // 20 MB: more than the kernel's socket buffers hold for a client that is not reading.
    retain_many(broker.addr, "w", 20_000, 1000);
    let mut sub = Raw::connect(broker.addr, "s", true);
    // Not reading: the walk stops once the socket buffers and about 4 KiB more are full.
    sub.send(&subscribe(1, &[("w/#", 0)]));
    std::thread::sleep(std::time::Duration::from_millis(200));
    sub.send(&common::unsubscribe(2, &["w/#"]));
    let topics = topics_until_silence(&mut sub, 500);
    assert!(
        !topics.is_empty() && topics.len() < 20_000,
        "cancelled part way: {} arrived",
        topics.len()
    );

    sub.stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    sub.send(&subscribe(3, &[("w/#", 0)]));
    std::thread::sleep(std::time::Duration::from_millis(200));
    // A second SUBSCRIBE of the same filter starts the walk again from the first topic.
    sub.send(&subscribe(4, &[("w/#", 0)]));
    let topics = topics_until_silence(&mut sub, 500);
    let first = topics.iter().filter(|t| *t == "w/00000").count();
    let last = topics.iter().filter(|t| *t == "w/19999").count();
    assert_eq!((first, last), (2, 1), "restarted once, finished once");
    assert!(topics.len() > 20_000 && topics.len() < 40_000);
}
