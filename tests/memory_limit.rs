//! `memory_limit` and the bounds on what offline sessions hold, over TCP.
//!
//! This test program installs the counting allocator (`pipit::heap::Counting`), so the broker
//! on its thread measures the whole process, these tests included: each test sets a budget a
//! fixed headroom above the heap in use at its start, then holds "ballast" (an untouched
//! allocation: counted, costing no memory) to put the process at a chosen share of it. The
//! stages (`core::budget`): from 85 % new connections are refused, from 90 % QoS 0 to slow
//! subscribers is dropped, from 95 % QoS 1/2 PUBLISHes are refused, from 100 % retained
//! messages are not stored; each ends 10 points below where it began. The tests share the
//! heap, so they run one at a time.
// Each test reads the budget's figures from the metrics endpoint.
#![cfg(feature = "metrics")]

#[path = "common/client.rs"]
mod client;
mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;
#[path = "common/ws.rs"]
mod ws;

use std::alloc::System;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use client::{Client, Version};
use common::{Connack5, Connect, Props, Raw, TestBroker, publish, start_with};
use pipit::Config;
use pipit::heap::{Counting, counted};

#[global_allocator]
static ALLOCATOR: Counting<System> = Counting::new(System);

/// One test at a time: they share the process heap.
static HEAP: Mutex<()> = Mutex::new(());

/// The budget above the heap in use when a test starts: wide, so that what the clients and
/// the broker allocate along the way moves the share by well under a stage's width (5 %).
const HEADROOM: u64 = 256 << 20;

/// A broker with a budget, its metrics endpoint, and the ballast that presses on it.
struct Budgeted {
    broker: TestBroker,
    metrics: SocketAddr,
    limit: u64,
    ballast: Vec<u8>,
    _serial: MutexGuard<'static, ()>,
}

impl Budgeted {
    /// Starts a broker with `memory_limit` at `HEADROOM` above the heap in use, after
    /// `adjust` edits the rest of its configuration.
    fn start(adjust: impl FnOnce(&mut Config)) -> Budgeted {
        let serial = HEAP.lock().unwrap_or_else(|e| e.into_inner());
        let limit = counted().expect("the counting allocator is installed") + HEADROOM;
        let broker = start_with(|c| {
            c.memory_limit = Some(limit);
            c.metrics_listener = Some("127.0.0.1:0".parse().unwrap());
            adjust(c);
        });
        let metrics = broker.metrics.expect("the metrics listener is bound");
        Budgeted {
            broker,
            metrics,
            limit,
            ballast: Vec::new(),
            _serial: serial,
        }
    }

    /// Holds ballast until the process uses `percent` of the budget (none if it already
    /// does). The broker measures at its next loop turn: the next packet it is sent.
    fn press(&mut self, percent: u64) {
        self.ballast = Vec::new();
        let target = self.limit / 100 * percent;
        let now = counted().expect("the counting allocator is installed");
        self.ballast = Vec::with_capacity(target.saturating_sub(now) as usize);
    }

    /// The broker's address.
    fn addr(&self) -> SocketAddr {
        self.broker.addr
    }

    /// The Prometheus sample named exactly `sample`.
    fn metric(&self, sample: &str) -> u64 {
        let text = ws::http(self.metrics, b"GET /metrics HTTP/1.0\r\n\r\n");
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {sample} in\n{text}"))
    }

    /// How many things the `memory_limit` stage `stage` has shed.
    fn shed(&self, stage: &str) -> u64 {
        self.metric(&format!("pipit_memory_shed_total{{stage=\"{stage}\"}}"))
    }
}

/// The CONNACK code for a new clean connection of `version` as `client_id`.
fn connack(addr: SocketAddr, version: Version, client_id: &str) -> u8 {
    let connect = match version {
        Version::V3 => Connect::v311(client_id),
        Version::V5 => Connect::v5(client_id, Props::new()),
    };
    let mut raw = Raw::open(addr);
    raw.send(&connect.bytes());
    let f = raw.recv().expect("no CONNACK");
    let code = match version {
        Version::V3 => f.body[1],
        Version::V5 => Connack5::parse(&f).code,
    };
    if code != 0 {
        raw.expect_closed();
    }
    code
}

#[test]
fn new_connections_are_refused_first_and_accepted_again_below_the_hysteresis() {
    let mut b = Budgeted::start(|_| {});
    // Already connected before the pressure: it keeps publishing at QoS 1.
    let (mut publisher, _) = Client::connect(b.addr(), Version::V5, "pub", false);
    b.press(87);
    // v5 0x97 Quota exceeded; 3.1.1 has only 0x03 Server unavailable.
    assert_eq!(connack(b.addr(), Version::V5, "new5"), 0x97);
    assert_eq!(connack(b.addr(), Version::V3, "new3"), 0x03);
    assert_eq!(
        publisher.try_publish("t", b"1", 1, false, &Props::new()),
        0x10
    );
    // 80 % is below where refusing began but not 10 points below: still refused.
    b.press(80);
    assert_eq!(connack(b.addr(), Version::V5, "again"), 0x97);
    b.press(70);
    assert_eq!(connack(b.addr(), Version::V5, "later"), 0);
    assert_eq!(b.shed("connections"), 3);
    assert_eq!(b.metric("pipit_memory_limit_bytes"), b.limit);
}

#[test]
fn qos_0_to_a_slow_subscriber_is_dropped_while_a_reading_one_gets_it_all() {
    // 6.4 MB: more than the kernel buffers of a connection that is not read hold.
    const MESSAGES: usize = 400;
    let mut b = Budgeted::start(|_| {});
    let (mut fast, _) = Client::connect(b.addr(), Version::V3, "fast", false);
    fast.subscribe("t/#", 0, None);
    let mut slow = Raw::connect(b.addr(), "slow", true);
    slow.subscribe("t/#", 0);
    let mut publisher = Raw::connect(b.addr(), "pub", true);
    let reader = thread::spawn(move || fast.drain(Duration::from_millis(1500)).len());
    b.press(92);
    let payload = vec![b'x'; 16 * 1024];
    for _ in 0..MESSAGES {
        publisher.send(&publish("t/x", &payload, 0, false, 0));
        thread::sleep(Duration::from_micros(500));
    }
    publisher.ping();
    assert_eq!(
        reader.join().unwrap(),
        MESSAGES,
        "the reading subscriber got every one"
    );
    let slow_got = slow.drain(500).len();
    let shed = b.shed("qos0");
    assert!(shed > 0, "the one not reading fell behind and was shed");
    assert_eq!(
        slow_got + shed as usize,
        MESSAGES,
        "each delivered or counted"
    );
    let dropped = b.metric("pipit_messages_dropped_total{reason=\"memory_limit\"}");
    assert_eq!(dropped, shed);
}

#[test]
fn qos_1_and_2_publishes_are_refused_unacknowledged_and_nothing_acknowledged_is_lost() {
    let mut b = Budgeted::start(|_| {});
    // A persistent subscriber, offline, holds a QoS 1 message acknowledged before the
    // pressure: it must still get it afterwards.
    let (mut keeper, _) = Client::connect(b.addr(), Version::V5, "keeper", true);
    keeper.subscribe("t/#", 1, None);
    keeper.disconnect();
    let (mut p5, _) = Client::connect(b.addr(), Version::V5, "p5", false);
    let mut p3 = Raw::connect(b.addr(), "p3", true);
    p3.publish_acked("t/before", b"kept", false, 1);
    b.press(97);
    // v5: PUBACK / PUBREC 0x97 Quota exceeded, and no QoS 2 state is left behind.
    assert_eq!(p5.try_publish("t/a", b"1", 1, false, &Props::new()), 0x97);
    assert_eq!(p5.try_publish("t/a", b"2", 2, false, &Props::new()), 0x97);
    // QoS 0 still flows at this stage.
    assert_eq!(p5.try_publish("t/a", b"0", 0, false, &Props::new()), 0);
    // 3.1.1 cannot refuse: no PUBACK at all, so the client keeps it and sends it again.
    p3.send(&publish("t/b", b"3", 1, false, 7));
    p3.expect_silence(300);
    assert_eq!(b.shed("publishes"), 3);
    b.press(0);
    // The resend (DUP) is taken once the pressure is off.
    let mut resend = publish("t/b", b"3", 1, false, 7);
    resend[0] |= 0x08;
    p3.send(&resend);
    let ack = p3.recv_kind(4);
    assert_eq!(ack.body, 7u16.to_be_bytes());
    let (mut keeper, present) = Client::connect(b.addr(), Version::V5, "keeper", true);
    assert!(present);
    let got: Vec<(String, String)> = (keeper.drain(Duration::from_millis(300)).iter())
        .map(|m| (m.topic.clone(), m.text()))
        .collect();
    assert_eq!(
        got,
        [
            ("t/before".into(), "kept".into()),
            ("t/b".into(), "3".into())
        ],
        "the acknowledged message and the accepted resend; nothing refused got through"
    );
}

#[test]
fn retained_messages_are_delivered_but_not_stored_at_the_budget() {
    let mut b = Budgeted::start(|c| c.sys_interval = 1);
    let mut publisher = Raw::connect(b.addr(), "pub", true);
    publisher.publish_acked("r/old", b"stale", true, 1);
    let (mut watcher, _) = Client::connect(b.addr(), Version::V3, "watch", false);
    watcher.subscribe("r/#", 0, None);
    let _ = watcher.drain(Duration::from_millis(200));
    b.press(103);
    publisher.send(&publish("r/old", b"new", 0, true, 0));
    publisher.send(&publish("r/new", b"x", 0, true, 0));
    publisher.ping();
    let live: Vec<String> = (watcher.drain(Duration::from_millis(300)).iter())
        .map(|m| m.text())
        .collect();
    assert_eq!(
        live,
        ["new", "x"],
        "still delivered to a subscriber keeping up"
    );
    assert_eq!(b.shed("retained"), 2);
    assert_eq!(b.metric("pipit_memory_shedding_stages"), 4);
    b.press(0);
    // Neither stored; the one replaced is cleared rather than left stale.
    let mut late = Raw::connect(b.addr(), "late", true);
    late.subscribe("r/#", 0);
    late.expect_silence(300);
    // `$SYS` shows the budget and the stages (retained: published every second).
    late.subscribe("$SYS/broker/memory/#", 0);
    let sys: Vec<String> = (late.drain(1500).iter())
        .map(|f| common::Publish::parse(f).topic)
        .collect();
    for topic in ["limit", "shedding", "shed/connections", "shed/retained"] {
        let topic = format!("$SYS/broker/memory/{topic}");
        assert!(sys.contains(&topic), "{topic} in {sys:?}");
    }
}

#[test]
fn past_max_sessions_the_offline_session_expiring_soonest_is_expired() {
    let _serial = HEAP.lock().unwrap_or_else(|e| e.into_inner());
    let broker = start_with(|c| c.max_sessions = 2);
    // Session Expiry Intervals: "short" would expire first of the three.
    for (client_id, expiry) in [("long1", 3600), ("short", 60), ("long2", 3600)] {
        let (raw, present) = resume_v5(broker.addr, client_id, expiry);
        assert!(!present);
        raw.disconnect();
    }
    // Each stays connected: one going offline again would count against the bound.
    let mut online = Vec::new();
    for (client_id, present) in [("long1", true), ("short", false), ("long2", true)] {
        let (raw, resumed) = resume_v5(broker.addr, client_id, 3600);
        assert_eq!(resumed, present, "{client_id}");
        online.push(raw);
    }
}

/// Connects as v5 `client_id` with clean start 0 and Session Expiry Interval `expiry`;
/// returns the connection and the session present flag.
fn resume_v5(addr: SocketAddr, client_id: &str, expiry: u32) -> (Raw, bool) {
    let connect = Connect::v5(client_id, Props::new().u32(0x11, expiry)).clean(false);
    let mut raw = Raw::open(addr);
    raw.send(&connect.bytes());
    let ack = Connack5::parse(&raw.recv().expect("no CONNACK"));
    assert_eq!(ack.code, 0, "{client_id}");
    (raw, ack.session_present)
}

#[test]
fn max_queued_bytes_total_bounds_every_queue_together() {
    let _serial = HEAP.lock().unwrap_or_else(|e| e.into_inner());
    let broker = start_with(|c| c.max_queued_bytes_total = 100);
    for client_id in ["a", "b"] {
        let (mut c, _) = Client::connect(broker.addr, Version::V3, client_id, true);
        c.subscribe("q", 1, None);
        c.disconnect();
    }
    let mut publisher = Raw::connect(broker.addr, "pub", true);
    // 30 bytes for each of two sessions (60), then 30 more for "a" (90): "b" would be 120.
    publisher.publish_acked("q", &[b'1'; 30], false, 1);
    publisher.publish_acked("q", &[b'2'; 30], false, 2);
    for (client_id, expected) in [("a", 2), ("b", 1)] {
        let (mut c, present) = Client::connect(broker.addr, Version::V3, client_id, true);
        assert!(present);
        let got = c.drain(Duration::from_millis(300));
        assert_eq!(got.len(), expected, "{client_id}");
    }
}

#[test]
fn memory_limit_is_read_as_mosquitto_reads_it() {
    let dir = support::Scratch::new("memory-limit-parse");
    let port = support::free_port();
    // Negative: an error naming the line, in both. (Mosquitto's `atol` reads "64M" as 64
    // bytes and then cannot start for memory; pipit refuses the word.)
    let conf = dir.write(
        "neg.conf",
        &format!("listener {port} 127.0.0.1\nmemory_limit -1\n"),
    );
    let conf = conf.to_str().expect("a UTF-8 path");
    let (status, log) = support::run_pipit(&["-c", conf], &dir.path("pipit.log"));
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("neg.conf:2: memory_limit"), "{log}");
    if mosquitto::mosquitto_installed("memory_limit -1") {
        let out = Command::new(mosquitto::MOSQUITTO)
            .args(["-c", conf])
            .output()
            .expect("mosquitto runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("Invalid memory_limit value (-1)"),
            "{stderr}"
        );
    }
    // A byte count starts the pipit binary (its counting allocator installed) and shows in
    // `$SYS`; 0 is no budget, as in Mosquitto.
    for (value, limit) in [("268435456", Some("268435456")), ("0", None)] {
        let body = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmemory_limit {value}\nsys_interval 1\n"
        );
        let conf = dir.write("ok.conf", &body);
        let addr = support::local(port);
        let mut pipit = support::Pipit::with_config(&conf, addr, &dir.path("ok.log"));
        let mut c = Raw::connect(addr, "sys", true);
        // `heap/current` moves every second; once it is in, so are the retained rest.
        c.subscribe("$SYS/broker/heap/current", 0);
        assert!(!common::Publish::parse(&c.recv_kind(3)).payload.is_empty());
        c.subscribe("$SYS/broker/memory/#", 0);
        let topics: Vec<(String, String)> = (c.drain(500).iter())
            .map(common::Publish::parse)
            .filter(|p| p.topic.starts_with("$SYS/broker/memory/"))
            .map(|p| (p.topic, String::from_utf8_lossy(&p.payload).into_owned()))
            .collect();
        let published = topics.iter().find(|(t, _)| t == "$SYS/broker/memory/limit");
        assert_eq!(published.map(|(_, v)| v.as_str()), limit, "{topics:?}");
        pipit.signal("-TERM");
        pipit.wait_exit();
    }
}
