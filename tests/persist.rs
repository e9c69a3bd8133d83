//! Persistence, judged from outside: the `pipit` binary with `persistence true` is stopped and
//! started again on the same store, and clients check what came back.
//!
//! The restart scenarios run three ways (the `restart_scenarios!` table): pipit stopped with
//! `kill -9` (the durability contract of `persistence_sync fsync`: what a PUBACK, PUBREC,
//! SUBACK or PUBCOMP acknowledged survives), pipit stopped with SIGTERM, and Debian's
//! Mosquitto 2.0 with `persistence true` stopped with SIGTERM, which is when it writes its
//! file. Each asserts the same outcome for all three, so every scenario is known to pass
//! against a broker that persists, and Mosquitto's run shows its claims are Mosquitto's
//! behaviour. `kill -9` is pipit-only: Mosquitto loses what it has not saved, by design.
//!
//! The store's own contract (its layout, the lock, refusing a directory that is not ours or
//! is newer, the free-space margin) is pipit-only and below the table.
#![cfg(feature = "persistence")]

#[path = "common/client.rs"]
mod client;
mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/process.rs"]
mod process;
#[path = "common/auth.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use client::{Client, Msg, VERSIONS, Version};
use common::{Props, ack};
use mosquitto::{Kind, mosquitto_installed};
use process::{Server, Stop};
use support::{Pipit, Scratch, free_port, local, run_pipit};

/// A receiver that has heard nothing for this long has everything the broker will send.
const IDLE: Duration = Duration::from_millis(500);
/// v5 subscription option: No Local [MQTT-3.8.3-3].
const NO_LOCAL: u8 = 0x04;
/// v5 subscription option: Retain As Published [MQTT-3.8.3-4].
const RETAIN_AS_PUBLISHED: u8 = 0x08;

/// Which broker a scenario runs against and how it is stopped before the restart.
#[derive(Clone, Copy, Debug)]
struct Target {
    kind: Kind,
    stop: Stop,
}

impl Target {
    /// The broker with persistence on (and the configuration lines `extra`).
    fn start(self, extra: &str) -> Server {
        Server::start(self.kind, extra)
    }

    /// Whether this target can run here; prints a notice when it cannot.
    fn available(self) -> bool {
        self.kind == Kind::Pipit || mosquitto_installed("a persistence scenario")
    }
}

/// Each scenario as three tests: `pipit_kill::NAME`, `pipit_term::NAME`, `mosquitto_term::NAME`.
macro_rules! restart_scenarios {
    ($($scenario:ident),* $(,)?) => {
        /// pipit, stopped with kill -9.
        mod pipit_kill {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::Target { kind: super::Kind::Pipit, stop: super::Stop::Kill });
            })*
        }
        /// pipit, stopped with SIGTERM.
        mod pipit_term {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::Target { kind: super::Kind::Pipit, stop: super::Stop::Term });
            })*
        }
        /// Mosquitto with `persistence true`, stopped with SIGTERM (when it saves).
        mod mosquitto_term {
            $(#[test]
            fn $scenario() {
                let t = super::Target { kind: super::Kind::Mosquitto, stop: super::Stop::Term };
                if t.available() {
                    super::$scenario(t);
                }
            })*
        }
    };
}

restart_scenarios!(
    retained_messages_come_back_with_their_properties,
    message_expiry_counts_down_across_a_restart,
    a_persistent_session_gets_what_was_queued_while_offline,
    a_subscription_is_kept_from_its_suback_on,
    an_unsubscribe_is_kept_from_its_unsuback_on,
    subscription_options_and_identifiers_survive,
    in_flight_messages_are_resent_with_dup_and_the_same_packet_id,
    inbound_qos2_is_routed_exactly_once_across_restarts,
    every_acknowledged_message_of_a_burst_is_delivered,
    clean_sessions_and_queued_qos0_are_not_restored,
    the_store_is_where_the_configuration_says,
    persistence_false_writes_nothing,
);

/// (topic, payload, QoS, RETAIN) of each message, in order: what most cases compare.
fn summary(got: &[Msg]) -> Vec<(String, String, u8, bool)> {
    got.iter()
        .map(|m| (m.topic.clone(), m.text(), m.qos, m.retain))
        .collect()
}

/// A summary row.
fn row(topic: &str, payload: &str, qos: u8, retain: bool) -> (String, String, u8, bool) {
    (topic.to_string(), payload.to_string(), qos, retain)
}

/// A per-version topic or client id: `PREFIX-V3` / `PREFIX-V5`.
fn named(prefix: &str, v: Version) -> String {
    format!("{prefix}-{v:?}")
}

/// Every v5 property a retained message keeps: payload format, expiry, content type,
/// response topic, correlation data and user properties (in order, a key repeated).
fn rich_properties() -> Props {
    Props::new()
        .byte(0x01, 1)
        .u32(0x02, 3600)
        .bin(0x03, b"text/plain")
        .bin(0x08, b"reply/here")
        .bin(0x09, b"\x00corr\xff")
        .user("k", "v1")
        .user("k", "v2")
        .user("other", "x")
}

fn retained_messages_come_back_with_their_properties(t: Target) {
    let mut s = t.start("");
    let (mut v3, _) = Client::connect(s.addr, Version::V3, "ret-pub-v3", false);
    v3.publish("ret/v3", b"three", 1, true);
    let (mut v5, _) = Client::connect(s.addr, Version::V5, "ret-pub-v5", false);
    v5.publish_props("ret/v5", b"five", 2, true, &rich_properties());
    s.restart(t.stop);
    for v in VERSIONS {
        let (mut c, _) = Client::connect(s.addr, v, &named("ret-reader", v), false);
        c.subscribe("ret/#", 2, None);
        let mut got = c.drain(IDLE);
        got.sort_by(|a, b| a.topic.cmp(&b.topic));
        assert_eq!(
            summary(&got),
            [
                row("ret/v3", "three", 1, true),
                row("ret/v5", "five", 2, true)
            ],
            "{t:?} {v:?}:\n{}",
            s.log()
        );
        if v == Version::V5 {
            let m = &got[1];
            assert_eq!(m.prop_int(0x01), Some(1), "payload format");
            let left = m.prop_int(0x02).expect("message expiry interval");
            assert!((3500..=3600).contains(&left), "expiry {left}");
            assert_eq!(m.prop_bytes(0x03).as_deref(), Some(&b"text/plain"[..]));
            assert_eq!(m.prop_bytes(0x08).as_deref(), Some(&b"reply/here"[..]));
            assert_eq!(m.prop_bytes(0x09).as_deref(), Some(&b"\x00corr\xff"[..]));
            let pairs = [("k", "v1"), ("k", "v2"), ("other", "x")]
                .map(|(k, v)| (k.to_string(), v.to_string()));
            assert_eq!(m.user_properties(), pairs, "user properties in order");
        }
    }
}

fn message_expiry_counts_down_across_a_restart(t: Target) {
    let mut s = t.start("");
    let (mut c, _) = Client::connect(s.addr, Version::V5, "exp-pub", false);
    let expiry = |secs| Props::new().u32(0x02, secs);
    c.publish_props("exp/kept", b"k", 1, true, &expiry(4));
    c.publish_props("exp/gone", b"g", 1, true, &expiry(1));
    // Measured from after the PUBACKs: the broker started counting a little earlier.
    let published = Instant::now();
    s.stop(t.stop);
    std::thread::sleep(Duration::from_millis(2100).saturating_sub(published.elapsed()));
    s.spawn();
    let (mut r, _) = Client::connect(s.addr, Version::V5, "exp-reader", false);
    let elapsed = published.elapsed().as_secs() as u32;
    r.subscribe("exp/#", 1, None);
    let got = r.drain(IDLE);
    assert_eq!(
        summary(&got),
        [row("exp/kept", "k", 1, true)],
        "{t:?}: the 1 s message expired while the broker was down:\n{}",
        s.log()
    );
    let left = got[0].prop_int(0x02).expect("message expiry interval");
    // [MQTT-3.3.2-6]: the interval sent is what is left of the 4 s.
    assert!(
        (1..=4 - elapsed).contains(&left),
        "{t:?}: {left} s left after {elapsed} s"
    );
}

fn a_persistent_session_gets_what_was_queued_while_offline(t: Target) {
    let mut s = t.start("");
    for v in VERSIONS {
        let (mut sub, present) = Client::connect(s.addr, v, &named("off-sub", v), true);
        assert!(!present, "a new session");
        assert_eq!(sub.subscribe(&format!("off/{v:?}/#"), 2, None), 2);
        sub.disconnect();
        let (mut publ, _) = Client::connect(s.addr, v, &named("off-pub", v), false);
        publ.publish(&format!("off/{v:?}/1"), b"qos1", 1, false);
        publ.publish(&format!("off/{v:?}/2"), b"qos2", 2, false);
    }
    s.restart(t.stop);
    for v in VERSIONS {
        let (mut sub, present) = Client::connect(s.addr, v, &named("off-sub", v), true);
        assert!(present, "{t:?} {v:?}: session present:\n{}", s.log());
        let expected = [
            row(&format!("off/{v:?}/1"), "qos1", 1, false),
            row(&format!("off/{v:?}/2"), "qos2", 2, false),
        ];
        assert_eq!(summary(&sub.drain(IDLE)), expected, "{t:?} {v:?}");
        // The subscription itself is back.
        let (mut publ, _) = Client::connect(s.addr, v, &named("off-pub", v), false);
        publ.publish(&format!("off/{v:?}/3"), b"after", 1, false);
        let after = [row(&format!("off/{v:?}/3"), "after", 1, false)];
        assert_eq!(summary(&sub.drain(IDLE)), after, "{t:?} {v:?}");
    }
}

fn a_subscription_is_kept_from_its_suback_on(t: Target) {
    let mut s = t.start("");
    let mut subs = Vec::new();
    for v in VERSIONS {
        let (mut sub, _) = Client::connect(s.addr, v, &named("suback", v), true);
        assert_eq!(sub.subscribe(&format!("suback/{v:?}"), 1, None), 1);
        subs.push(sub);
    }
    // At once, the subscribers still connected: the SUBACK is the promise under test.
    s.restart(t.stop);
    drop(subs);
    for v in VERSIONS {
        let (mut sub, present) = Client::connect(s.addr, v, &named("suback", v), true);
        assert!(present, "{t:?} {v:?}: session present:\n{}", s.log());
        let (mut publ, _) = Client::connect(s.addr, v, &named("suback-pub", v), false);
        publ.publish(&format!("suback/{v:?}"), b"m", 1, false);
        let expected = [row(&format!("suback/{v:?}"), "m", 1, false)];
        assert_eq!(summary(&sub.drain(IDLE)), expected, "{t:?} {v:?}");
    }
}

fn an_unsubscribe_is_kept_from_its_unsuback_on(t: Target) {
    let mut s = t.start("");
    for v in VERSIONS {
        let (mut sub, _) = Client::connect(s.addr, v, &named("unsuback", v), true);
        assert_eq!(sub.subscribe(&format!("unsuback/{v:?}/a"), 1, None), 1);
        assert_eq!(sub.subscribe(&format!("unsuback/{v:?}/b"), 1, None), 1);
        sub.disconnect();
        let (mut sub, _) = Client::connect(s.addr, v, &named("unsuback", v), true);
        sub.unsubscribe(&format!("unsuback/{v:?}/a"));
        // At once: the UNSUBACK is the promise under test.
        s.restart(t.stop);
        let (mut sub, present) = Client::connect(s.addr, v, &named("unsuback", v), true);
        assert!(present, "{t:?} {v:?}: session present:\n{}", s.log());
        let (mut publ, _) = Client::connect(s.addr, v, &named("unsuback-pub", v), false);
        publ.publish(&format!("unsuback/{v:?}/a"), b"gone", 1, false);
        publ.publish(&format!("unsuback/{v:?}/b"), b"kept", 1, false);
        let expected = [row(&format!("unsuback/{v:?}/b"), "kept", 1, false)];
        assert_eq!(summary(&sub.drain(IDLE)), expected, "{t:?} {v:?}");
    }
}

fn subscription_options_and_identifiers_survive(t: Target) {
    let mut s = t.start("");
    let options = 1 | NO_LOCAL | RETAIN_AS_PUBLISHED;
    let (mut sub, _) = Client::connect(s.addr, Version::V5, "opt-sub", true);
    assert_eq!(sub.subscribe("opt/#", options, Some(7)), 1);
    sub.disconnect();
    let (mut publ, _) = Client::connect(s.addr, Version::V5, "opt-pub", false);
    publ.publish("opt/queued", b"q", 1, true);
    s.restart(t.stop);
    let (mut sub, present) = Client::connect(s.addr, Version::V5, "opt-sub", true);
    assert!(present, "{t:?}: session present:\n{}", s.log());
    let got = sub.drain(IDLE);
    // Retain As Published: the RETAIN flag as it was published [MQTT-3.3.1-13].
    assert_eq!(summary(&got), [row("opt/queued", "q", 1, true)], "{t:?}");
    assert_eq!(
        got[0].prop_int(0x0b),
        Some(7),
        "{t:?}: subscription identifier"
    );
    // No Local: its own message does not come back [MQTT-3.8.3-3].
    sub.publish("opt/own", b"own", 1, false);
    let (mut publ, _) = Client::connect(s.addr, Version::V5, "opt-pub", false);
    publ.publish("opt/other", b"other", 1, true);
    let got = sub.drain(IDLE);
    assert_eq!(summary(&got), [row("opt/other", "other", 1, true)], "{t:?}");
    assert_eq!(
        got[0].prop_int(0x0b),
        Some(7),
        "{t:?}: subscription identifier"
    );
}

fn in_flight_messages_are_resent_with_dup_and_the_same_packet_id(t: Target) {
    let mut s = t.start("");
    let mut ids = Vec::new();
    for v in VERSIONS {
        let (mut sub, _) = Client::connect(s.addr, v, &named("fl-sub", v), true);
        assert_eq!(sub.subscribe(&format!("fl/{v:?}/#"), 2, None), 2);
        let (mut publ, _) = Client::connect(s.addr, v, &named("fl-pub", v), false);
        for (n, qos) in [(1, 1), (2, 2), (3, 2)] {
            publ.publish(&format!("fl/{v:?}/{n}"), b"m", qos, false);
        }
        let got: Vec<Msg> = (0..3)
            .map(|_| {
                let f = sub.next_frame(Duration::from_secs(5)).expect("a PUBLISH");
                sub.parse(&f)
            })
            .collect();
        // 1 unacknowledged; 2 received (PUBREC sent, PUBREL read, no PUBCOMP); 3 unacknowledged.
        sub.raw.send(&ack(0x50, got[1].packet_id));
        let rel = sub.wait_for(6);
        assert_eq!(rel.body[..2], got[1].packet_id.to_be_bytes(), "PUBREL");
        ids.push((v, sub, got));
    }
    // The PUBREC has no acknowledgement of its own: give it time to be stored.
    std::thread::sleep(Duration::from_millis(300));
    s.restart(t.stop);
    for (v, old, before) in ids {
        drop(old);
        let (mut sub, present) = Client::connect(s.addr, v, &named("fl-sub", v), true);
        assert!(present, "{t:?} {v:?}: session present:\n{}", s.log());
        let mut resent = Vec::new();
        let mut released = Vec::new();
        while let Some(f) = sub.next_frame(IDLE) {
            match f.kind() {
                3 => resent.push(sub.parse(&f)),
                6 => released.push(u16::from_be_bytes([f.body[0], f.body[1]])),
                _ => panic!("{t:?} {v:?}: unexpected {f:?}"),
            }
        }
        // [MQTT-4.4.0-1]: PUBLISH re-sent with DUP and the packet id, in order; PUBREL re-sent.
        let expected: Vec<(String, u8, bool, u16)> = [&before[0], &before[2]]
            .iter()
            .map(|m| (m.topic.clone(), m.qos, true, m.packet_id))
            .collect();
        let got: Vec<_> = resent
            .iter()
            .map(|m| (m.topic.clone(), m.qos, m.dup, m.packet_id))
            .collect();
        assert_eq!(got, expected, "{t:?} {v:?}: re-sent PUBLISHes");
        assert_eq!(
            released,
            [before[1].packet_id],
            "{t:?} {v:?}: re-sent PUBREL"
        );
        // Finishing the flows delivers nothing more.
        sub.raw.send(&ack(0x40, before[0].packet_id));
        sub.raw.send(&ack(0x70, before[1].packet_id));
        sub.raw.send(&ack(0x50, before[2].packet_id));
        let rel = sub.wait_for(6);
        assert_eq!(rel.body[..2], before[2].packet_id.to_be_bytes(), "PUBREL");
        sub.raw.send(&ack(0x70, before[2].packet_id));
        assert_eq!(summary(&sub.drain(IDLE)), [], "{t:?} {v:?}");
    }
}

fn inbound_qos2_is_routed_exactly_once_across_restarts(t: Target) {
    const PACKET_ID: u16 = 5;
    let mut s = t.start("");
    let none = Props::new();
    for v in VERSIONS {
        let (mut sub, _) = Client::connect(s.addr, v, &named("in-sub", v), true);
        assert_eq!(sub.subscribe(&format!("in/{v:?}"), 2, None), 2);
        sub.disconnect();
        let (mut publ, _) = Client::connect(s.addr, v, &named("in-pub", v), true);
        let packet = publ.publish_packet(&format!("in/{v:?}"), b"one", 2, false, PACKET_ID, &none);
        publ.raw.send(&packet);
        assert!(publ.wait_ack(5, PACKET_ID) < 0x80, "PUBREC");
    }
    s.restart(t.stop);
    for v in VERSIONS {
        let (mut publ, present) = Client::connect(s.addr, v, &named("in-pub", v), true);
        assert!(
            present,
            "{t:?} {v:?}: publisher's session present:\n{}",
            s.log()
        );
        // As a client that never read the PUBREC would: the PUBLISH again, with DUP and the
        // same packet id [MQTT-4.4.0-1] [MQTT-3.3.1-1]. It must not be routed a second time.
        let mut packet =
            publ.publish_packet(&format!("in/{v:?}"), b"one", 2, false, PACKET_ID, &none);
        packet[0] |= 0x08;
        publ.raw.send(&packet);
        assert!(publ.wait_ack(5, PACKET_ID) < 0x80, "PUBREC for the DUP");
        publ.release(PACKET_ID);
    }
    // PUBCOMP released the packet id: after another restart it carries a new message.
    s.restart(t.stop);
    for v in VERSIONS {
        let (mut publ, _) = Client::connect(s.addr, v, &named("in-pub", v), true);
        let packet = publ.publish_packet(&format!("in/{v:?}"), b"two", 2, false, PACKET_ID, &none);
        publ.raw.send(&packet);
        assert!(publ.wait_ack(5, PACKET_ID) < 0x80, "PUBREC");
        publ.release(PACKET_ID);
        let (mut sub, present) = Client::connect(s.addr, v, &named("in-sub", v), true);
        assert!(present, "{t:?} {v:?}: subscriber's session present");
        let payloads: Vec<String> = sub.drain(IDLE).iter().map(Msg::text).collect();
        assert_eq!(payloads, ["one", "two"], "{t:?} {v:?}:\n{}", s.log());
    }
}

fn every_acknowledged_message_of_a_burst_is_delivered(t: Target) {
    const N: u16 = 200;
    let mut s = t.start("");
    let (mut sub, _) = Client::connect(s.addr, Version::V3, "burst-sub", true);
    assert_eq!(sub.subscribe("burst", 1, None), 1);
    sub.disconnect();
    let (mut publ, _) = Client::connect(s.addr, Version::V3, "burst-pub", false);
    let burst: Vec<u8> = (1..=N)
        .flat_map(|i| common::publish("burst", &i.to_be_bytes(), 1, false, i))
        .collect();
    publ.raw.send(&burst);
    for i in 1..=N {
        assert_eq!(publ.wait_ack(4, i), 0, "PUBACK {i}");
    }
    // At once: the last PUBACK is the promise under test.
    s.restart(t.stop);
    let (mut sub, present) = Client::connect(s.addr, Version::V3, "burst-sub", true);
    assert!(present, "{t:?}: session present:\n{}", s.log());
    let got = sub.drain(IDLE);
    let mut seen: Vec<u16> = got
        .iter()
        .map(|m| u16::from_be_bytes([m.payload[0], m.payload[1]]))
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen,
        (1..=N).collect::<Vec<_>>(),
        "{t:?}: at least once each"
    );
}

fn clean_sessions_and_queued_qos0_are_not_restored(t: Target) {
    let mut s = t.start("");
    let mut clean = Vec::new();
    for v in VERSIONS {
        let (mut c, _) = Client::connect(s.addr, v, &named("cl-clean", v), false);
        assert_eq!(c.subscribe(&format!("cl/{v:?}/#"), 1, None), 1);
        clean.push(c);
        let (mut keep, _) = Client::connect(s.addr, v, &named("cl-keep", v), true);
        assert_eq!(keep.subscribe(&format!("cl/{v:?}/#"), 1, None), 1);
        keep.disconnect();
        let (mut publ, _) = Client::connect(s.addr, v, &named("cl-pub", v), false);
        publ.publish(&format!("cl/{v:?}/q0"), b"zero", 0, false);
        publ.publish(&format!("cl/{v:?}/q1"), b"one", 1, false);
    }
    s.restart(t.stop);
    drop(clean);
    for v in VERSIONS {
        let (mut keep, present) = Client::connect(s.addr, v, &named("cl-keep", v), true);
        assert!(present, "{t:?} {v:?}: session present:\n{}", s.log());
        let only_qos1 = [row(&format!("cl/{v:?}/q1"), "one", 1, false)];
        assert_eq!(summary(&keep.drain(IDLE)), only_qos1, "{t:?} {v:?}");
        // The clean session is gone: asking to resume finds nothing, and no subscription.
        let (mut c, present) = Client::connect(s.addr, v, &named("cl-clean", v), true);
        assert!(!present, "{t:?} {v:?}: a clean session was restored");
        let (mut publ, _) = Client::connect(s.addr, v, &named("cl-pub", v), false);
        publ.publish(&format!("cl/{v:?}/late"), b"late", 1, false);
        assert_eq!(summary(&c.drain(IDLE)), [], "{t:?} {v:?}");
        let late = [row(&format!("cl/{v:?}/late"), "late", 1, false)];
        assert_eq!(summary(&keep.drain(IDLE)), late, "{t:?} {v:?}");
    }
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Asserts `dir` is a pipit store: FORMAT of version 2, a lock, at least one log segment.
fn assert_pipit_store(dir: &Path) {
    let format = std::fs::read_to_string(dir.join("FORMAT"))
        .unwrap_or_else(|e| panic!("{}/FORMAT: {e}", dir.display()));
    assert_eq!(format, "pipit-store 2\n");
    let names = listing(dir);
    assert!(names.iter().any(|n| n == "lock"), "a lock in {names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("log-")),
        "a log segment in {names:?}"
    );
}

fn the_store_is_where_the_configuration_says(t: Target) {
    let mut s = t.start("persistence_file custom.db\n");
    let (mut c, _) = Client::connect(s.addr, Version::V3, "where-pub", false);
    c.publish("where", b"here", 1, true);
    if t.kind == Kind::Pipit {
        assert_eq!(listing(&s.store()), ["custom.db.pipit"]);
        assert_pipit_store(&s.store().join("custom.db.pipit"));
    }
    s.restart(t.stop);
    let expected = match t.kind {
        Kind::Pipit => "custom.db.pipit",
        Kind::Mosquitto => "custom.db",
    };
    assert_eq!(listing(&s.store()), [expected], "{t:?}");
    let (mut r, _) = Client::connect(s.addr, Version::V3, "where-reader", false);
    r.subscribe("where", 1, None);
    assert_eq!(
        summary(&r.drain(IDLE)),
        [row("where", "here", 1, true)],
        "{t:?}"
    );
}

fn persistence_false_writes_nothing(t: Target) {
    let mut s = t.start("persistence false\n");
    let (mut sub, _) = Client::connect(s.addr, Version::V5, "off-sub", true);
    assert_eq!(sub.subscribe("nothing/#", 1, None), 1);
    sub.disconnect();
    let (mut c, _) = Client::connect(s.addr, Version::V5, "off-pub", false);
    c.publish("nothing/retained", b"r", 1, true);
    c.publish("nothing/queued", b"q", 2, false);
    s.restart(t.stop);
    assert_eq!(listing(&s.store()), Vec::<String>::new(), "{t:?}");
    let (_, present) = Client::connect(s.addr, Version::V5, "off-sub", true);
    assert!(!present, "{t:?}: a session came back without persistence");
}

// ---- pipit only: the store's own contract ----

/// A snapshot written while the broker runs (here after 5 changes, `autosave_on_changes`)
/// retires the log before it, and what was live then and what came after both survive a
/// kill -9.
#[test]
fn a_snapshot_retires_the_log_and_the_state_survives_it() {
    let mut s = Server::start(
        Kind::Pipit,
        "autosave_on_changes true\nautosave_interval 5\n",
    );
    let (mut sub, _) = Client::connect(s.addr, Version::V5, "snap-sub", true);
    assert_eq!(sub.subscribe("snap/#", 1, None), 1);
    sub.disconnect();
    let (mut publ, _) = Client::connect(s.addr, Version::V5, "snap-pub", false);
    publ.publish("snap/kept", b"r", 1, true);
    for i in 0..10 {
        publ.publish("snap/q", format!("before{i}").as_bytes(), 1, false);
    }
    // The one-second sweep begins the snapshot; it is written and put in place after.
    let dir = s.store().join("mosquitto.db.pipit");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listing(&dir).iter().any(|n| n.starts_with("snapshot-")) {
        assert!(Instant::now() < deadline, "no snapshot:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let names = listing(&dir);
    let logs: Vec<_> = names.iter().filter(|n| n.starts_with("log-")).collect();
    assert_eq!(
        logs.len(),
        1,
        "the segments before the snapshot are retired: {names:?}"
    );
    publ.publish("snap/q", b"after", 1, false);
    s.restart(Stop::Kill);
    let (mut sub, present) = Client::connect(s.addr, Version::V5, "snap-sub", true);
    assert!(present, "session present:\n{}", s.log());
    let got: Vec<String> = sub
        .drain(IDLE)
        .iter()
        .map(|m| format!("{}={}", m.topic, m.text()))
        .collect();
    let mut expected = vec!["snap/kept=r".to_string()];
    expected.extend((0..10).map(|i| format!("snap/q=before{i}")));
    expected.push("snap/q=after".to_string());
    assert_eq!(got, expected, "{}", s.log());
}

/// With `persistence_sync interval` and `none`, acknowledgements do not wait for the disk,
/// and `kill -9` alone (the machine still up) loses nothing queued for an offline client or
/// retained: that is written in the turn it happens, and is in the OS.
#[test]
fn interval_and_none_lose_nothing_queued_offline_to_a_kill_9() {
    for sync in ["interval 200", "none"] {
        let mut s = Server::start(Kind::Pipit, &format!("persistence_sync {sync}\n"));
        let (mut sub, _) = Client::connect(s.addr, Version::V5, "sync-sub", true);
        assert_eq!(sub.subscribe("sync/#", 2, None), 2);
        sub.disconnect();
        let (mut publ, _) = Client::connect(s.addr, Version::V5, "sync-pub", false);
        publ.publish("sync/kept", b"r", 1, true);
        for i in 0..20 {
            publ.publish("sync/q", i.to_string().as_bytes(), 1 + i % 2, false);
        }
        s.restart(Stop::Kill);
        let (mut sub, present) = Client::connect(s.addr, Version::V5, "sync-sub", true);
        assert!(present, "{sync}: session present:\n{}", s.log());
        let got = sub.drain(IDLE);
        let payloads: Vec<String> = (got.iter())
            .filter(|m| m.topic == "sync/q")
            .map(Msg::text)
            .collect();
        let expected: Vec<String> = (0..20).map(|i: u8| i.to_string()).collect();
        assert_eq!(payloads, expected, "{sync}:\n{}", s.log());
        assert!(
            got.iter().any(|m| m.topic == "sync/kept"),
            "{sync}: the queued retained one"
        );
    }
}

/// A store that a running pipit holds: a second pipit on it exits non-zero, naming the lock.
#[test]
fn a_second_pipit_on_a_held_store_is_refused() {
    let s = Server::start(Kind::Pipit, "");
    let (mut c, _) = Client::connect(s.addr, Version::V3, "lock-pub", false);
    c.publish("lock", b"kept", 1, true);
    // The same store, another port.
    let port = free_port();
    let text = std::fs::read_to_string(s.conf()).expect("read the configuration");
    let other = s.dir.write(
        "second.conf",
        &text.replacen(&format!("{}", s.addr.port()), &port.to_string(), 1),
    );
    let (status, log) = run_pipit(
        &["-c", other.to_str().expect("utf-8 path")],
        &s.dir.path("second.log"),
    );
    assert!(!status.success(), "a second pipit started: {log}");
    assert!(log.to_lowercase().contains("lock"), "names the lock: {log}");
    // The first is unharmed.
    let (mut r, _) = Client::connect(s.addr, Version::V3, "lock-reader", false);
    r.subscribe("lock", 1, None);
    assert_eq!(summary(&r.drain(IDLE)), [row("lock", "kept", 1, true)]);
}

/// Every file under `dir` with its bytes, for a byte-for-byte comparison.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for name in listing(dir) {
        let path = dir.join(&name);
        if path.is_dir() {
            for (inner, bytes) in contents(&path) {
                out.insert(format!("{name}/{inner}"), bytes);
            }
        } else {
            out.insert(name, std::fs::read(&path).expect("read a store file"));
        }
    }
    out
}

/// A file laid into a store directory before pipit starts: name and bytes.
type StoreFile = (&'static str, &'static [u8]);

/// A non-empty store directory without FORMAT, or with a newer one, is refused at start and
/// left byte for byte as it was.
#[test]
fn a_store_that_is_not_ours_or_newer_is_refused_untouched() {
    let cases: [(&str, &[StoreFile]); 3] = [
        (
            "not ours",
            &[("notes.txt", b"mine\n"), ("log-1", b"\x00\x01")],
        ),
        (
            "a newer version",
            &[
                ("FORMAT", b"pipit-store 3\n"),
                ("log-00000001", b"\x00future"),
            ],
        ),
        ("a FORMAT of something else", &[("FORMAT", b"sqlite 3\n")]),
    ];
    for (what, files) in cases {
        let dir = Scratch::new("refused");
        let store = dir.path("mosquitto.db.pipit");
        std::fs::create_dir_all(store.join("sub")).unwrap();
        std::fs::write(store.join("sub/keep"), b"deep").unwrap();
        for (name, bytes) in files {
            std::fs::write(store.join(name), bytes).unwrap();
        }
        let before = contents(&store);
        let conf = dir.write(
            "pipit.conf",
            &format!(
                "listener {} 127.0.0.1\npersistence true\npersistence_location {}/\n",
                free_port(),
                dir.dir.display()
            ),
        );
        let (status, log) = run_pipit(
            &["-c", conf.to_str().expect("utf-8 path")],
            &dir.path("pipit.log"),
        );
        assert!(!status.success(), "{what}: pipit started:\n{log}");
        assert!(!log.trim().is_empty(), "{what}: says why");
        assert_eq!(contents(&store), before, "{what}: left untouched");
    }
}

/// `--persistence-dir DIR` turns persistence on with the store in DIR itself.
#[test]
fn the_persistence_dir_flag_keeps_the_store_in_that_directory() {
    let dir = Scratch::new("persist-flag");
    let store = dir.path("store");
    let port = free_port();
    let addr = local(port);
    let args = [
        "--port",
        &port.to_string(),
        "--persistence-dir",
        store.to_str().expect("utf-8 path"),
    ];
    let mut pipit = Pipit::spawn(&args, &dir.path("pipit-1.log"));
    pipit.wait_listening(addr);
    let (mut c, _) = Client::connect(addr, Version::V5, "flag-pub", false);
    c.publish("flag", b"kept", 2, true);
    assert_pipit_store(&store);
    pipit.child.kill().expect("kill -9");
    pipit.child.wait().expect("wait");
    let mut pipit = Pipit::spawn(&args, &dir.path("pipit-2.log"));
    pipit.wait_listening(addr);
    let (mut r, _) = Client::connect(addr, Version::V5, "flag-reader", false);
    r.subscribe("flag", 2, None);
    assert_eq!(
        summary(&r.drain(IDLE)),
        [row("flag", "kept", 2, true)],
        "{}",
        pipit.log()
    );
}

/// Below `persistence_min_free_space`, QoS 1/2 PUBLISHes are refused (v5: 0x97 Quota
/// exceeded; 3.1.1: no acknowledgement) and not routed; QoS 0 still flows.
#[test]
fn qos1_and_qos2_are_refused_below_the_free_space_margin() {
    // More than any disk: every QoS 1/2 PUBLISH is refused.
    let s = Server::start(
        Kind::Pipit,
        "persistence_min_free_space 1000000000000000000\n",
    );
    let (mut sub, _) = Client::connect(s.addr, Version::V5, "space-sub", false);
    assert_eq!(sub.subscribe("space/#", 2, None), 2);
    for v in VERSIONS {
        for qos in [1, 2] {
            // A connection each: what 3.1.1 does after the refusal is not the question here.
            let id = format!("space-pub-{v:?}-{qos}");
            let (mut publ, _) = Client::connect(s.addr, v, &id, false);
            let topic = format!("space/{v:?}/{qos}");
            let packet_id = publ.packet_id();
            let packet =
                publ.publish_packet(&topic, b"refused", qos, false, packet_id, &Props::new());
            publ.raw.send(&packet);
            let ack_kind = if qos == 1 { 4 } else { 5 };
            match v {
                Version::V5 => {
                    let code = publ.wait_ack(ack_kind, packet_id);
                    assert_eq!(code, 0x97, "{topic}: Quota exceeded\n{}", s.log());
                }
                Version::V3 => {
                    let acked =
                        std::iter::from_fn(|| publ.next_frame(IDLE)).any(|f| f.kind() == ack_kind);
                    assert!(!acked, "{topic}: a 3.1.1 client gets no acknowledgement");
                }
            }
        }
        let (mut q0, _) = Client::connect(s.addr, v, &named("space-q0", v), false);
        q0.publish(&format!("space/{v:?}/0"), b"flows", 0, false);
        q0.raw.ping();
    }
    let got = sub.drain(IDLE);
    assert_eq!(
        summary(&got),
        [
            row("space/V3/0", "flows", 0, false),
            row("space/V5/0", "flows", 0, false)
        ],
        "{}",
        s.log()
    );
}
