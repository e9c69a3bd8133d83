//! Bounds that refuse by reason code rather than by closing a well-behaved client: a SUBSCRIBE
//! or UNSUBSCRIBE of thousands of filters, `max_subscriptions_per_client` per filter, topics
//! deeper than the level bound (compared with the real Mosquitto), topics of 30,000 levels
//! routed when the bound is raised, and outbound topic alias tables bounded in bytes.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{
    Connect, Props, Raw, frame, prop_int, publish, publish_v5, split_props, start, start_with,
    string, subscribe, subscribe_v5, varint,
};
use mosquitto::{Mosquitto, mosquitto_installed};
use support::{Pipit, Scratch, free_port, local};

/// The protocol version a case runs in.
#[derive(Clone, Copy, Debug, PartialEq)]
enum V {
    V311,
    V5,
}

const VERSIONS: [V; 2] = [V::V311, V::V5];

/// Connects a clean session in `v`.
fn connect(addr: SocketAddr, client_id: &str, v: V) -> Raw {
    match v {
        V::V311 => Raw::connect(addr, client_id, true),
        V::V5 => Raw::v5(addr, client_id, Props::new()),
    }
}

/// Sends one SUBSCRIBE (packet id 9) of `filters` at QoS 1; returns the SUBACK codes.
fn suback(c: &mut Raw, v: V, filters: &[String]) -> Vec<u8> {
    let pairs: Vec<(&str, u8)> = filters.iter().map(|f| (f.as_str(), 1)).collect();
    c.send(&match v {
        V::V311 => subscribe(9, &pairs),
        V::V5 => subscribe_v5(9, Props::new(), &pairs),
    });
    let ack = c.recv_kind(9);
    assert_eq!(&ack.body[..2], &[0, 9], "SUBACK packet id");
    match v {
        V::V311 => ack.body[2..].to_vec(),
        V::V5 => split_props(&ack.body[2..]).1.to_vec(),
    }
}

/// Sends one UNSUBSCRIBE (packet id 10) of `filters`; returns the UNSUBACK codes (none in
/// 3.1.1).
fn unsuback(c: &mut Raw, v: V, filters: &[String]) -> Vec<u8> {
    let mut body = 10u16.to_be_bytes().to_vec();
    if v == V::V5 {
        varint(0, &mut body);
    }
    for f in filters {
        string(f.as_bytes(), &mut body);
    }
    c.send(&frame(0xa2, &body));
    let ack = c.recv_kind(11);
    assert_eq!(&ack.body[..2], &[0, 10], "UNSUBACK packet id");
    match v {
        V::V311 => ack.body[2..].to_vec(),
        V::V5 => split_props(&ack.body[2..]).1.to_vec(),
    }
}

/// A QoS 1 PUBLISH in `v` (no properties).
fn publish_qos1(v: V, topic: &str, packet_id: u16) -> Vec<u8> {
    match v {
        V::V311 => publish(topic, b"x", 1, false, packet_id),
        V::V5 => publish_v5(topic, b"x", 1, false, packet_id, Props::new()),
    }
}

/// The topic of the next PUBLISH, in `v`.
fn next_topic(c: &mut Raw, v: V) -> String {
    match v {
        V::V311 => c.recv_publish().topic,
        V::V5 => c.recv_publish5().topic,
    }
}

/// `a/a/.../a` with `levels` levels.
fn deep(levels: usize) -> String {
    vec!["a"; levels].join("/")
}

#[test]
fn a_subscribe_of_thousands_of_filters_gets_one_code_per_filter() {
    // (max_subscriptions_per_client, filters in one SUBSCRIBE). Up to 1,024 used to be the
    // most a packet could carry: more closed the connection, and MQTT.js reconnected and
    // sent the same SUBSCRIBE again, forever.
    for (max, n) in [(10_000, 1_500), (10_000, 20_000), (1_000, 1_500)] {
        let broker = start_with(|c| c.max_subscriptions_per_client = max);
        let mut publisher = Raw::connect(broker.addr, "many-pub", true);
        for v in VERSIONS {
            let case = format!("{v:?}, {n} filters, at most {max}");
            let mut c = connect(broker.addr, &format!("many-{v:?}"), v);
            let filters: Vec<String> = (0..n).map(|i| format!("many/{i}")).collect();
            let codes = suback(&mut c, v, &filters);
            let granted = n.min(max);
            let quota_exceeded = if v == V::V5 { 0x97 } else { 0x80 };
            assert_eq!(codes.len(), n, "{case}: one code per filter");
            assert!(codes[..granted].iter().all(|&c| c == 1), "{case}");
            assert!(
                codes[granted..].iter().all(|&c| c == quota_exceeded),
                "{case}: refused one by one"
            );
            // The connection stays up and the granted subscriptions deliver.
            let last = format!("many/{}", granted - 1);
            publisher.publish_acked(&last, b"x", false, 1);
            assert_eq!(next_topic(&mut c, v), last, "{case}");
            if granted < n {
                publisher.publish_acked(&format!("many/{granted}"), b"x", false, 2);
                c.expect_silence(100);
            }
            let codes = unsuback(&mut c, v, &filters);
            if v == V::V5 {
                assert_eq!(codes.len(), n, "{case}: one UNSUBACK code per filter");
                assert!(codes[..granted].iter().all(|&c| c == 0x00), "{case}");
                assert!(codes[granted..].iter().all(|&c| c == 0x11), "{case}");
            }
            publisher.publish_acked(&last, b"x", false, 3);
            c.ping();
        }
    }
}

#[test]
fn a_subscribe_of_1500_filters_is_answered_as_mosquitto_answers_it() {
    if !mosquitto_installed("1,500 filters") {
        return;
    }
    let mosquitto = Mosquitto::start("");
    let pipit = start();
    let filters: Vec<String> = (0..1_500).map(|i| format!("js/{i}")).collect();
    for v in VERSIONS {
        let answers: Vec<Vec<u8>> = [mosquitto.addr, pipit.addr]
            .into_iter()
            .map(|addr| {
                let mut c = connect(addr, &format!("js-{v:?}"), v);
                let codes = suback(&mut c, v, &filters);
                c.ping();
                codes
            })
            .collect();
        assert_eq!(answers[0], vec![1; 1_500], "Mosquitto grants all ({v:?})");
        assert_eq!(answers[1], answers[0], "pipit answers as Mosquitto ({v:?})");
    }
}

#[test]
fn the_topic_level_bound_is_mosquittos_but_answered_without_a_close() {
    // Mosquitto 2.0 accepts 201 levels (200 `/`) and closes the connection beyond; pipit
    // keeps the same bound and answers beyond it with a reason code.
    let mosquitto = mosquitto_installed("topic levels").then(|| Mosquitto::start(""));
    let pipit = start();
    let brokers = [mosquitto.as_ref().map(|m| m.addr), Some(pipit.addr)];
    for (addr, is_pipit) in brokers.into_iter().zip([false, true]) {
        let Some(addr) = addr else { continue };
        let mut c = connect(addr, "levels-sub", V::V311);
        assert_eq!(suback(&mut c, V::V311, &[deep(201)]), [1], "201 levels");
        let mut p = connect(addr, "levels-pub", V::V311);
        p.publish_acked(&deep(201), b"x", false, 1);
        assert_eq!(c.recv_publish().topic, deep(201));
        c.send(&subscribe(2, &[(&deep(202), 1)]));
        if is_pipit {
            assert_eq!(c.recv_kind(9).body, [0, 2, 0x80], "202 levels refused");
            c.ping();
        } else {
            c.expect_closed();
        }
    }
}

#[test]
fn topics_deeper_than_the_bound_get_a_reason_code_not_a_close() {
    let broker = start();
    for levels in [202, 1_000, 30_000] {
        for v in VERSIONS {
            let case = format!("{v:?}, {levels} levels");
            let mut c = connect(broker.addr, &format!("deep-{v:?}"), v);
            let filter_invalid = if v == V::V5 { 0x8f } else { 0x80 };
            assert_eq!(
                suback(&mut c, v, &[deep(levels)]),
                [filter_invalid],
                "{case}"
            );
            c.send(&publish_qos1(v, &deep(levels), 3));
            let ack = c.recv_kind(4);
            assert_eq!(&ack.body[..2], &[0, 3], "{case}");
            // v5: Topic Name invalid; 3.1.1 cannot refuse, so it is acknowledged and dropped.
            let expected: &[u8] = if v == V::V5 { &[0x90] } else { &[] };
            assert_eq!(&ack.body[2..ack.body.len().min(3)], expected, "{case}");
            c.send(&match v {
                V::V311 => publish(&deep(levels), b"x", 0, false, 0),
                V::V5 => publish_v5(&deep(levels), b"x", 0, false, 0, Props::new()),
            });
            c.ping();
        }
    }
    // A will topic beyond the bound: refused with a CONNACK code (3.1.1 has only 0x03).
    let will = deep(1_000);
    let (_, ack) = Raw::connect_v5(
        broker.addr,
        &Connect::v5("deep-will", Props::new()).will(&will, b"x", 0, false),
    );
    assert_eq!(ack.code, 0x90);
    let (code, _) = Raw::try_connect(
        broker.addr,
        &Connect::v311("deep-will").will(&will, b"x", 0, false),
    );
    assert_eq!(code, 0x03);
}

#[test]
fn with_the_bound_raised_a_topic_of_30000_levels_routes_without_crash_or_stall() {
    // Matching used to recurse once per level: a topic this deep overflowed the broker's
    // stack. 30,000 one-letter levels are 59,999 bytes, within the 65,535-byte topic bound.
    let broker = start_with(|c| c.max_topic_levels = 40_000);
    let topic = deep(30_000);
    let all_plus = vec!["+"; 30_000].join("/");
    let started = Instant::now();
    let mut c = connect(broker.addr, "deep-sub", V::V5);
    let filters = [topic.clone(), all_plus, "a/#".to_owned()];
    assert_eq!(suback(&mut c, V::V5, &filters), [1, 1, 1]);
    let mut p = connect(broker.addr, "deep-pub", V::V311);
    p.publish_acked(&topic, b"x", false, 1);
    assert_eq!(next_topic(&mut c, V::V5), topic, "delivered once");
    c.expect_silence(100);
    assert_eq!(unsuback(&mut c, V::V5, &filters), [0, 0, 0]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn outbound_aliases_are_assigned_until_the_byte_budget_then_topics_go_in_full() {
    // Room for exactly two entries of these 12-byte topics (see `alias::entry_bytes`).
    let entry = 12 + 2 * size_of::<usize>() + size_of::<(std::rc::Rc<str>, u16)>() + 1;
    let broker = start_with(|c| c.max_outbound_alias_bytes = 2 * entry);
    let mut sub = Raw::v5(broker.addr, "ab-sub", Props::new().u16(0x22, u16::MAX));
    sub.subscribe_v5(Props::new(), &[("ab/#", 0)]);
    let mut p = Raw::connect(broker.addr, "ab-pub", true);
    let sent = [
        "ab/topic-001",
        "ab/topic-002",
        "ab/topic-003",
        "ab/topic-001",
    ];
    for topic in sent {
        p.send(&publish(topic, b"x", 0, false, 0));
    }
    let got: Vec<(String, Option<u32>)> = (0..sent.len())
        .map(|_| {
            let m = sub.recv_publish5();
            (m.topic, prop_int(&m.props, 0x23))
        })
        .collect();
    assert_eq!(
        got,
        [
            ("ab/topic-001".to_owned(), Some(1)),
            ("ab/topic-002".to_owned(), Some(2)),
            ("ab/topic-003".to_owned(), None),
            (String::new(), Some(1)),
        ],
        "two aliases fit the budget, the third topic goes in full, the first stays known"
    );
}

/// The broker process's resident set, in KiB, from `/proc/PID/status`.
fn rss_kib(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

#[test]
fn outbound_alias_tables_keep_broker_memory_bounded() {
    // Twenty MQTT 5 subscribers announcing Topic Alias Maximum 65,535 and 4 MB of long
    // distinct topics: each table used to keep its own copy of every topic (80 MB here; 592
    // MB for 30 MB of topics in the report).
    const SUBSCRIBERS: usize = 20;
    const TOPICS: usize = 2_000;
    const TOPIC_BYTES: usize = 2_000;
    const BATCH: usize = 50;
    let dir = Scratch::new("alias-memory");
    let port = free_port();
    let addr = local(port);
    let config = dir.write(
        "pipit.conf",
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    );
    let pipit = Pipit::with_config(&config, addr, &dir.path("pipit.log"));
    let received: Arc<Vec<AtomicUsize>> =
        Arc::new((0..SUBSCRIBERS).map(|_| AtomicUsize::new(0)).collect());
    let subscribed = Arc::new(Barrier::new(SUBSCRIBERS + 1));
    let readers: Vec<_> = (0..SUBSCRIBERS)
        .map(|i| {
            let (received, subscribed) = (Arc::clone(&received), Arc::clone(&subscribed));
            std::thread::spawn(move || {
                let mut c = Raw::v5(addr, &format!("mem-{i}"), Props::new().u16(0x22, u16::MAX));
                c.subscribe_v5(Props::new(), &[("mem/#", 0)]);
                subscribed.wait();
                for n in 1..=TOPICS {
                    c.recv_publish5();
                    received[i].store(n, Ordering::Release);
                }
            })
        })
        .collect();
    subscribed.wait();
    let before = rss_kib(pipit.child.id());
    let mut publisher = Raw::connect(addr, "mem-pub", true);
    let deadline = Instant::now() + Duration::from_secs(60);
    for start in (0..TOPICS).step_by(BATCH) {
        let mut batch = Vec::new();
        for i in start..start + BATCH {
            let topic = format!("mem/{i:0>width$}", width = TOPIC_BYTES - 4);
            batch.extend(publish(&topic, b"x", 0, false, 0));
        }
        publisher.send(&batch);
        // Every subscriber reads each batch before the next: nothing waits in the broker.
        while received
            .iter()
            .any(|r| r.load(Ordering::Acquire) < start + BATCH)
        {
            assert!(Instant::now() < deadline, "subscribers stalled");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let after = rss_kib(pipit.child.id());
    for r in readers {
        r.join().expect("reader thread");
    }
    let growth = after.saturating_sub(before);
    eprintln!("broker RSS {before} KiB -> {after} KiB");
    assert!(
        growth < 24 * 1024,
        "broker RSS grew by {growth} KiB ({before} -> {after}) for 4 MB of distinct topics"
    );
}
