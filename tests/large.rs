//! Issue 16, large payloads: many publishers of large messages into one subscriber, and what
//! in-flight traffic may pin in the broker. Raw MQTT 3.1.1 over TCP against an in-process
//! broker with a small `max_output_buffer`, so a few messages reach the bound.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, publish, start_with};

/// `max_output_buffer` in these tests: four 4 KiB messages.
const CAP: usize = 16 * 1024;

/// Reads PUBLISHes on `c` (acknowledging QoS 1) until `want` arrived or none came for
/// `idle`; returns them as (topic, first payload byte) in arrival order.
fn collect(c: &mut Raw, want: usize, idle: Duration) -> Vec<(String, u8)> {
    c.stream.set_read_timeout(Some(idle)).expect("set timeout");
    let mut got = Vec::with_capacity(want);
    while got.len() < want {
        let Ok(Some(f)) = c.read_frame() else { break };
        if f.kind() == 3 {
            let p = common::Publish::parse(&f);
            if p.qos == 1 {
                c.send(&common::ack(0x40, p.packet_id));
            }
            got.push((p.topic, p.payload[0]));
        }
    }
    got
}

/// Regression: a subscriber that reads everything lost QoS 0 when more than
/// `max_output_buffer` was queued for it in one turn. The pass stopped at the bound, the
/// kernel took the lot, and with no writable edge to come and every publisher held for the
/// subscriber, the rest sat until `slow_subscriber_timeout` declared the (reading) subscriber
/// slow and dropped what followed (200 publishers of 16 KiB into one subscriber lost 99%).
#[test]
fn a_reading_subscriber_gets_every_qos0_message_from_many_publishers_over_the_bound() {
    const PUBLISHERS: usize = 20;
    const EACH: usize = 20;
    let broker = start_with(|c| {
        c.max_output_buffer = CAP;
        c.slow_subscriber_timeout = Duration::from_secs(1);
    });
    let mut sub = Raw::connect(broker.addr, "sub", true);
    sub.subscribe("many/#", 0);
    let mut pubs: Vec<Raw> = (0..PUBLISHERS)
        .map(|p| Raw::connect(broker.addr, &format!("pub{p}"), true))
        .collect();
    // Every publisher's whole burst is on the wire before the subscriber reads: one turn
    // routes a message from each (20 x 4 KiB, five times the bound) and holds them all.
    for (p, c) in pubs.iter_mut().enumerate() {
        let mut burst = Vec::new();
        for i in 0..EACH {
            burst.extend(publish(&format!("many/{p}"), &[i as u8; 4096], 0, false, 0));
        }
        c.send(&burst);
    }
    let started = Instant::now();
    let got = collect(&mut sub, PUBLISHERS * EACH, Duration::from_secs(3));
    assert_eq!(
        got.len(),
        PUBLISHERS * EACH,
        "the reading subscriber lost QoS 0 (after {:?})",
        started.elapsed()
    );
    for p in 0..PUBLISHERS {
        let topic = format!("many/{p}");
        let seq: Vec<u8> = got.iter().filter(|m| m.0 == topic).map(|m| m.1).collect();
        assert!(
            seq.iter().copied().eq(0..EACH as u8),
            "{topic} order: {seq:?}"
        );
    }
}

/// QoS 1 past the bound is back-pressure on the publisher, not memory in the broker: a
/// subscriber that stops reading (and acknowledging) holds the publisher of its topic, whose
/// PUBLISHes then wait in its own socket, while a publisher to another topic is read,
/// acknowledged and delivered as before.
#[test]
fn a_stalled_qos1_subscriber_holds_its_publisher_and_not_others() {
    const STALLED_SENT: usize = 2000;
    const FREE_SENT: usize = 200;
    let broker = start_with(|c| {
        c.max_output_buffer = CAP;
        c.slow_subscriber_timeout = Duration::from_secs(60);
    });
    let mut stalled = Raw::connect(broker.addr, "stalled", true);
    stalled.subscribe("stall/#", 1);
    let mut healthy = Raw::connect(broker.addr, "healthy", true);
    healthy.subscribe("free/#", 1);
    let healthy =
        std::thread::spawn(move || collect(&mut healthy, FREE_SENT, Duration::from_secs(3)));

    // 8 MiB of QoS 1 to the stalled subscriber's topic, from a thread: the write blocks once
    // the broker stops reading it (the socket closes when the broker stops at the end).
    let mut blocked = Raw::connect(broker.addr, "blocked", true);
    let mut burst = Vec::new();
    for i in 0..STALLED_SENT {
        burst.extend(publish("stall/x", &[7; 4096], 1, false, i as u16 + 1));
    }
    let mut writer = blocked.stream.try_clone().expect("clone");
    std::thread::spawn(move || std::io::Write::write_all(&mut writer, &burst));
    std::thread::sleep(Duration::from_millis(300));

    let mut free = Raw::connect(broker.addr, "free", true);
    let mut burst = Vec::new();
    for i in 0..FREE_SENT {
        burst.extend(publish("free/y", &[i as u8; 4096], 1, false, i as u16 + 1));
    }
    free.send(&burst);
    let acks = free.drain(1000).iter().filter(|f| f.kind() == 4).count();
    assert_eq!(acks, FREE_SENT, "the other topic's publisher was held");
    let got = healthy.join().expect("healthy subscriber");
    assert!(
        got.iter().map(|m| m.1).eq(0..FREE_SENT as u8),
        "the other topic's subscriber got {} of {FREE_SENT}",
        got.len()
    );

    let held_acks = blocked.drain(500).iter().filter(|f| f.kind() == 4).count();
    assert!(
        held_acks > 0 && held_acks < STALLED_SENT / 4,
        "the stalled subscriber's publisher was not held: {held_acks} of {STALLED_SENT} acknowledged"
    );
}

/// Large payloads go out with vectored writes straight from the shared message: every
/// subscriber gets each one byte for byte, in order, through partial writes (a subscriber
/// that reads slowly, another that reads only after it), beside payloads that are copied.
#[test]
fn large_payloads_arrive_whole_and_in_order_at_every_subscriber() {
    const SENT: usize = 60;
    let broker = start_with(|c| c.max_output_buffer = CAP);
    let payload = |i: usize| -> Vec<u8> {
        // Sizes on both sides of the splice threshold, each byte naming its message.
        let len = [10, 8191, 8192, 70_000][i % 4];
        (0..len).map(|j| (i * 7 + j) as u8).collect()
    };
    let mut subs: Vec<Raw> = (0..2)
        .map(|s| {
            let mut c = Raw::connect(broker.addr, &format!("sub{s}"), true);
            c.subscribe("big/#", 1);
            c
        })
        .collect();
    let mut publisher = Raw::connect(broker.addr, "pub", true);
    let sender = std::thread::spawn(move || {
        for i in 0..SENT {
            publisher.send(&publish(
                "big/t",
                &payload(i),
                (i % 2) as u8,
                false,
                i as u16 + 1,
            ));
        }
        publisher
    });
    for (s, c) in subs.iter_mut().enumerate() {
        c.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set timeout");
        for i in 0..SENT {
            let f = c
                .recv()
                .unwrap_or_else(|| panic!("sub{s}: message {i} missing"));
            let p = common::Publish::parse(&f);
            if p.qos == 1 {
                c.send(&common::ack(0x40, p.packet_id));
            }
            assert!(p.payload == payload(i), "sub{s}: message {i} differs");
            if s == 0 && i % 10 == 0 {
                // The first subscriber reads slowly: its output backs up and is written
                // in pieces.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    sender.join().expect("publisher");
}

/// After a turn that read 256 KiB or more, a publisher's PUBACKs wait one turn, to go out
/// with the next turn's (`broker::write`). Burst after burst, every one of them must still
/// go out, with nothing else to wake the connection, and the subscriber, whose messages
/// never wait, gets every message.
#[test]
fn every_puback_arrives_after_busy_turns() {
    const PUBLISHERS: usize = 8;
    const BURSTS: usize = 3;
    // 24 messages of 16 KiB: 384 KiB per publisher per burst, written at once.
    const BURST: usize = 24;
    let broker = start_with(|_| {});
    let addr = broker.addr;
    let mut sub = Raw::connect(addr, "busy-sub", true);
    sub.subscribe("busy/#", 0);
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = Raw::connect(addr, &format!("busy-pub{p}"), true);
                for burst in 0..BURSTS {
                    let ids = (burst * BURST + 1..=(burst + 1) * BURST).map(|id| id as u16);
                    let bytes: Vec<u8> = ids
                        .clone()
                        .flat_map(|id| publish("busy/t", &[p as u8; 16384], 1, false, id))
                        .collect();
                    c.send(&bytes);
                    for id in ids {
                        let ack = c.recv_kind(4);
                        assert_eq!(ack.body, id.to_be_bytes(), "pub{p}: PUBACK {id}");
                    }
                }
            })
        })
        .collect();
    let got = collect(
        &mut sub,
        PUBLISHERS * BURSTS * BURST,
        Duration::from_secs(5),
    );
    for p in publishers {
        p.join().expect("every PUBACK arrived");
    }
    assert_eq!(got.len(), PUBLISHERS * BURSTS * BURST);
    for p in 0..PUBLISHERS as u8 {
        let from = got.iter().filter(|(_, first)| *first == p).count();
        assert_eq!(from, BURSTS * BURST, "messages from pub{p}");
    }
}
