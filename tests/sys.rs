//! `$SYS` statistics topics: the whole set Mosquitto 2.0.11 publishes, with its value formats,
//! and pipit's own; counters that move with traffic; only changed values published again;
//! and the topic list compared with the real Mosquitto's.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Raw, start_with};
use mosquitto::{Kind, pipit_and_mosquitto};
use support::Scratch;

/// What a `$SYS` value looks like.
#[derive(Clone, Copy, Debug)]
enum Format {
    Integer,
    /// `%.2f`, as Mosquitto's load averages.
    TwoDecimals,
    /// `N seconds`.
    Seconds,
    /// `pipit version X`.
    Version,
}

/// Every topic Mosquitto 2.0.11 publishes (a Debian build, with memory tracking: the heap
/// topics), then pipit's own, each with the format of its value.
fn expected_topics() -> Vec<(String, Format)> {
    let mut topics: Vec<(String, Format)> = [
        ("version", Format::Version),
        ("uptime", Format::Seconds),
        ("clients/total", Format::Integer),
        ("clients/maximum", Format::Integer),
        ("clients/inactive", Format::Integer),
        ("clients/disconnected", Format::Integer),
        ("clients/active", Format::Integer),
        ("clients/connected", Format::Integer),
        ("clients/expired", Format::Integer),
        ("messages/stored", Format::Integer),
        ("store/messages/count", Format::Integer),
        ("store/messages/bytes", Format::Integer),
        ("subscriptions/count", Format::Integer),
        ("shared_subscriptions/count", Format::Integer),
        ("retained messages/count", Format::Integer),
        ("heap/current", Format::Integer),
        ("heap/maximum", Format::Integer),
        ("messages/received", Format::Integer),
        ("messages/sent", Format::Integer),
        ("publish/messages/dropped", Format::Integer),
        ("publish/messages/received", Format::Integer),
        ("publish/messages/sent", Format::Integer),
        ("bytes/received", Format::Integer),
        ("bytes/sent", Format::Integer),
        ("publish/bytes/received", Format::Integer),
        ("publish/bytes/sent", Format::Integer),
        // pipit's own.
        ("messages/queued", Format::Integer),
        ("messages/dropped", Format::Integer),
        ("messages/dropped/queue_full", Format::Integer),
        ("messages/dropped/output_cap", Format::Integer),
        ("messages/dropped/expired", Format::Integer),
        ("messages/dropped/too_large", Format::Integer),
        ("messages/dropped/acl", Format::Integer),
        ("connections/accepted", Format::Integer),
        ("connections/refused", Format::Integer),
    ]
    .into_iter()
    .map(|(t, f)| (format!("$SYS/broker/{t}"), f))
    .collect();
    let rates = [
        "messages/received",
        "messages/sent",
        "publish/dropped",
        "publish/received",
        "publish/sent",
        "bytes/received",
        "bytes/sent",
        "sockets",
        "connections",
    ];
    for rate in rates {
        for window in ["1min", "5min", "15min"] {
            let topic = format!("$SYS/broker/load/{rate}/{window}");
            topics.push((topic, Format::TwoDecimals));
        }
    }
    topics
}

fn well_formed(value: &str, format: Format) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match format {
        Format::Integer => digits(value),
        Format::TwoDecimals => value
            .split_once('.')
            .is_some_and(|(whole, frac)| digits(whole) && frac.len() == 2 && digits(frac)),
        Format::Seconds => value.strip_suffix(" seconds").is_some_and(digits),
        Format::Version => value == format!("pipit version {}", env!("CARGO_PKG_VERSION")),
    }
}

/// Every PUBLISH that arrives on `c` for `span`: (topic, payload) in arrival order.
fn collect(c: &mut Raw, span: Duration) -> Vec<(String, String)> {
    let end = Instant::now() + span;
    let mut got = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        c.stream.set_read_timeout(Some(left)).unwrap();
        match c.read_frame() {
            Ok(Some(f)) if f.kind() == 3 => {
                let p = common::Publish::parse(&f);
                got.push((p.topic, String::from_utf8_lossy(&p.payload).into_owned()));
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the broker closed the connection"),
            Err(_) => break,
        }
    }
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    got
}

/// A `$SYS/#` subscriber that remembers the latest value of each topic (a value is
/// published again only when it changes, so one read for another topic must not lose it).
struct Watcher {
    c: Raw,
    latest: BTreeMap<String, String>,
}

impl Watcher {
    fn new(addr: SocketAddr, filter: &str) -> Watcher {
        let mut c = Raw::connect(addr, "watcher", true);
        c.subscribe(filter, 0);
        Watcher {
            c,
            latest: BTreeMap::new(),
        }
    }

    /// Waits until `topic`'s latest value is one `accept` takes; panics after 10 s with
    /// the last value seen.
    fn wait_for(&mut self, topic: &str, accept: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(value) = self.latest.get(topic).filter(|v| accept(v)) {
                return value.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{topic} never had the value wanted; last {:?}",
                self.latest.get(topic)
            );
            self.latest
                .extend(collect(&mut self.c, Duration::from_millis(200)));
        }
    }
}

#[test]
fn every_topic_is_published_after_one_interval_in_its_format() {
    let broker = start_with(|c| c.sys_interval = 1);
    let mut watcher = Raw::connect(broker.addr, "watcher", true);
    watcher.subscribe("$SYS/#", 0);
    // The retained copies, then at least one update after we subscribed.
    let seen: BTreeMap<String, String> = collect(&mut watcher, Duration::from_millis(2500))
        .into_iter()
        .collect();
    for (topic, format) in expected_topics() {
        let value = seen
            .get(&topic)
            .unwrap_or_else(|| panic!("{topic} missing; got {seen:?}"));
        assert!(well_formed(value, format), "{topic}: {value:?}");
    }
    // Without persistence the store's bytes are not reported.
    assert!(!seen.contains_key("$SYS/broker/store/bytes written"));
}

#[test]
fn counters_move_as_traffic_flows() {
    let broker = start_with(|c| c.sys_interval = 1);
    let mut watcher = Watcher::new(broker.addr, "$SYS/#");
    // The first update takes the counters as the load averages' baseline: traffic after it.
    watcher.wait_for("$SYS/broker/uptime", |_| true);
    let mut subscriber = Raw::connect(broker.addr, "subscriber", true);
    subscriber.subscribe("t/+", 1);
    subscriber.subscribe("$share/g/s", 0);
    let mut publisher = Raw::connect(broker.addr, "publisher", true);
    let payload = [7u8; 100];
    for i in 1..=20u16 {
        publisher.publish_acked("t/x", &payload, false, i);
    }
    for _ in 0..20 {
        let p = subscriber.recv_publish();
        subscriber.send(&common::frame(0x40, &p.packet_id.to_be_bytes()));
    }
    // Exact, for what only the publisher sends.
    let sys = |t: &str| format!("$SYS/broker/{t}");
    watcher.wait_for(&sys("publish/messages/received"), |v| v == "20");
    watcher.wait_for(&sys("publish/bytes/received"), |v| v == "2000");
    watcher.wait_for(&sys("clients/connected"), |v| v == "3");
    watcher.wait_for(&sys("clients/maximum"), |v| v == "3");
    watcher.wait_for(&sys("subscriptions/count"), |v| v == "3");
    watcher.wait_for(&sys("shared_subscriptions/count"), |v| v == "1");
    watcher.wait_for(&sys("connections/accepted"), |v| v == "3");
    // At least, for what the watcher's own $SYS traffic adds to.
    let at_least = |n: u64| move |v: &str| v.parse::<u64>().is_ok_and(|v| v >= n);
    // 3 CONNECTs, 3 SUBSCRIBEs, 20 PUBLISHes and 20 PUBACKs.
    watcher.wait_for(&sys("messages/received"), at_least(46));
    // 3 CONNACKs, 3 SUBACKs, 20 PUBACKs and 20 PUBLISHes to the subscriber.
    watcher.wait_for(&sys("messages/sent"), at_least(46));
    watcher.wait_for(&sys("publish/messages/sent"), at_least(20));
    watcher.wait_for(&sys("publish/bytes/sent"), at_least(2000));
    watcher.wait_for(&sys("bytes/received"), at_least(20 * 109));
    watcher.wait_for(&sys("bytes/sent"), at_least(20 * 109));
    let moving = |v: &str| v.parse::<f64>().is_ok_and(|v| v > 0.0);
    watcher.wait_for(&sys("load/publish/received/1min"), moving);
    watcher.wait_for(&sys("load/connections/15min"), moving);
    // A client going away moves the connected count back.
    publisher.disconnect();
    watcher.wait_for(&sys("clients/connected"), |v| v == "2");
    watcher.wait_for(&sys("clients/maximum"), |v| v == "3");
}

#[test]
fn sys_topics_report_connected_clients() {
    let broker = start_with(|c| c.sys_interval = 1);
    let _other = Raw::connect(broker.addr, "other", true);
    let mut watcher = Watcher::new(broker.addr, "$SYS/broker/clients/connected");
    watcher.wait_for("$SYS/broker/clients/connected", |v| v == "2");
}

#[test]
fn hash_subscribers_do_not_get_sys_topics() {
    let broker = start_with(|c| c.sys_interval = 1);
    let mut all = Raw::connect(broker.addr, "all", true);
    all.subscribe("#", 0);
    all.expect_silence(1500);
}

#[test]
// A store on disk.
#[cfg(feature = "persistence")]
fn persistence_adds_the_bytes_the_store_wrote() {
    let dir = Scratch::new("sys-store");
    let path = dir.path("store");
    let broker = start_with(|c| {
        c.sys_interval = 1;
        c.persistence = true;
        c.persistence_dir = Some(path);
    });
    let mut watcher = Watcher::new(broker.addr, "$SYS/broker/store/bytes written");
    let value = watcher.wait_for("$SYS/broker/store/bytes written", |_| true);
    assert!(value.parse::<u64>().is_ok(), "{value}");
}

/// What a `$SYS/#` subscriber gets from `addr` over `span`: each topic with how many times
/// it arrived.
fn sys_counts(addr: SocketAddr, span: Duration) -> BTreeMap<String, usize> {
    let mut c = Raw::connect(addr, "sys-compare", true);
    c.subscribe("$SYS/#", 0);
    let mut counts = BTreeMap::new();
    for (topic, _) in collect(&mut c, span) {
        *counts.entry(topic).or_insert(0) += 1;
    }
    counts
}

/// Mosquitto's topics are all in pipit's, and both publish an unchanged value only once
/// (the version, with nothing else connected) while the uptime goes out every update.
/// (Mosquitto with `sys_interval 1` updates every 2 s: it waits for more than the
/// interval.)
#[test]
fn the_topic_list_contains_mosquittos_and_unchanged_values_are_not_repeated() {
    let dir = Scratch::new("sys-compare");
    let peers = pipit_and_mosquitto(&dir, "allow_anonymous true\nsys_interval 1\n");
    let mut lists = Vec::new();
    for peer in &peers {
        let counts = sys_counts(peer.addr, Duration::from_millis(5500));
        assert_eq!(
            counts.get("$SYS/broker/version"),
            Some(&1),
            "{:?}",
            peer.kind
        );
        let uptime = counts.get("$SYS/broker/uptime").copied().unwrap_or(0);
        assert!(uptime >= 2, "{:?}: uptime {uptime} times", peer.kind);
        lists.push((peer.kind, counts));
    }
    if let [(Kind::Pipit, pipit), (Kind::Mosquitto, mosquitto)] = &lists[..] {
        let missing: Vec<&String> = mosquitto
            .keys()
            .filter(|t| !pipit.contains_key(*t))
            .collect();
        assert!(missing.is_empty(), "pipit lacks Mosquitto's {missing:?}");
        assert!(mosquitto.len() >= 50, "Mosquitto published {mosquitto:?}");
    }
}
