//! A bridge's spool and its link's limits, judged from outside.
//!
//! The spool: a gateway (the `pipit` binary, persistence on, `persistence_sync fsync`)
//! bridged `out` to a remote that is down takes QoS 1 messages (each PUBACKed), is killed
//! with `kill -9` and started again on the same store; once the remote is up, a subscriber
//! there gets every message, in order, once. The same with `local_clientid` changed
//! before the restart (the spool is the connection name's), and with `local_cleansession
//! true` (nothing on disk: the messages are gone). And the remote killed (`kill -9`, its
//! own store keeping what it acknowledged) and restarted in the middle of a stream: no
//! message the gateway acknowledged is lost, and the order holds.
//!
//! The link: a fake MQTT 5 remote whose CONNACK sets Receive Maximum, Maximum Packet Size,
//! Retain Available 0 and Maximum QoS 1 gets no more than that; the CONNECT carries
//! `bridge_receive_maximum`, `bridge_session_expiry_interval` and `bridge_max_packet_size`;
//! a remote that sends a packet over `bridge_max_packet_size` (MQTT 3.1.1) or more QoS 2
//! than `bridge_receive_maximum` (MQTT 5) loses the link.
#![cfg(all(feature = "bridge", feature = "persistence"))]

#[path = "common/bridge.rs"]
mod bridging;
mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/process.rs"]
mod process;
#[path = "common/auth.rs"]
mod support;

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bridging::{STATE, bridged, next_message, subscriber, wait_up};
use common::{Frame, Publish, Raw, frame, publish, start_with};
use mosquitto::Kind;
use process::{Server, Stop};
use support::{free_port, local};

/// Messages each spool scenario queues.
const N: u16 = 100;

/// The gateway's bridge block, to a remote on `port`, followed by `extra` lines.
fn uplink(port: u16, extra: &str) -> String {
    format!(
        "persistence_sync fsync\nconnection gw\naddress 127.0.0.1:{port}\nclientid gw\n\
         restart_timeout 1\nnotification_topic {STATE}\ntopic q/# out 1\n{extra}"
    )
}

/// `N` numbered payloads.
fn numbered() -> Vec<String> {
    (0..N).map(|i| i.to_string()).collect()
}

/// The gateway (its bridge block followed by `extra`) takes `sent` as QoS 1 messages on
/// `q/n`, each acknowledged, while its remote is down; it is killed with `kill -9` and
/// started again with `change` added to the block; the remote then gets `expected`, in
/// order, and nothing more.
fn spool_scenario(extra: &str, change: &str, sent: &[String], expected: &[String]) {
    let port = free_port();
    let mut gateway = Server::start(Kind::Pipit, &uplink(port, extra));
    let mut publisher = Raw::connect(gateway.addr, "pub", true);
    for (i, payload) in sent.iter().enumerate() {
        let id = u16::try_from(i + 1).unwrap();
        publisher.publish_acked("q/n", payload.as_bytes(), false, id);
    }
    gateway.stop(Stop::Kill);
    let conf = gateway.conf();
    let text = std::fs::read_to_string(&conf).expect("read the configuration");
    std::fs::write(&conf, format!("{text}{change}")).expect("write the configuration");
    gateway.spawn();
    let remote = start_with(|c| c.listeners[0].addr = local(port));
    let mut sub = subscriber(remote.addr, "s", "q/#", 1);
    if expected.is_empty() {
        wait_up(remote.addr);
    }
    let got: Vec<String> = (0..expected.len())
        .map(|_| String::from_utf8(next_message(&mut sub).payload).unwrap())
        .collect();
    assert_eq!(got, expected, "{}", gateway.log());
    sub.expect_silence(1000);
}

#[test]
fn the_spool_survives_a_kill_9_of_the_gateway() {
    spool_scenario("", "", &numbered(), &numbered());
}

/// The spool is the connection name's: a new `local_clientid` takes it over.
#[test]
fn a_changed_local_clientid_keeps_the_spool() {
    let extra = "local_clientid first\n";
    spool_scenario(extra, "local_clientid second\n", &numbered(), &numbered());
}

/// `local_cleansession true` keeps the local session off the disk: a restart loses it.
#[test]
fn local_cleansession_true_keeps_no_spool() {
    spool_scenario("local_cleansession true\n", "", &numbered(), &[]);
}

/// At `bridge_max_queued_bytes` with `drop_oldest`, a larger message evicts as many queued
/// ones as it needs (not one, after which it was refused), and what is evicted stays gone
/// after a restart.
#[test]
fn a_full_spool_evicts_as_many_as_a_message_needs_and_they_stay_gone() {
    let extra = "bridge_max_queued_bytes 10\nbridge_queue_policy drop_oldest\n";
    let sent: Vec<String> = ["11", "22", "33", "44", "55", "12345678"]
        .map(String::from)
        .to_vec();
    spool_scenario(extra, "", &sent, &sent[4..]);
}

/// The remote (a pipit with `fsync`, whose persistent subscriber keeps what it
/// acknowledged) killed with `kill -9` in the middle of a stream and started again: every
/// message the gateway acknowledged reaches the subscriber, first copies in order (a QoS 1
/// resend may repeat one).
#[test]
fn the_uplink_killed_mid_stream_loses_no_acknowledged_message() {
    const STREAM: u16 = 300;
    let mut remote = Server::start(Kind::Pipit, "persistence_sync fsync\n");
    let mut sub = Raw::connect(remote.addr, "s", false);
    assert_eq!(sub.subscribe("q/#", 1), 1);
    let gateway = bridged(&format!("address {}\ntopic q/# out 1\n", remote.addr));
    wait_up(remote.addr);
    let (done_tx, done_rx) = mpsc::channel();
    let at = gateway.addr;
    let publisher = std::thread::spawn(move || {
        let mut c = Raw::connect(at, "pub", true);
        for i in 0..STREAM {
            c.publish_acked("q/n", i.to_string().as_bytes(), false, i + 1);
            std::thread::sleep(Duration::from_millis(2));
        }
        done_tx.send(()).unwrap();
    });
    let mut got: Vec<u16> = Vec::new();
    while got.len() < 50 {
        got.push(number(&next_message(&mut sub)));
    }
    remote.restart(Stop::Kill);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sub = Raw::connect(remote.addr, "s", false);
    loop {
        let mut seen: Vec<u16> = got.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() == usize::from(STREAM) {
            break;
        }
        assert!(Instant::now() < deadline, "got {got:?}\n{}", remote.log());
        match sub.recv() {
            Some(f) if f.kind() == 3 => {
                let p = Publish::parse(&f);
                let id = p.packet_id.to_be_bytes();
                sub.send(&[0x40, 2, id[0], id[1]]);
                got.push(number(&p));
            }
            Some(_) => {}
            None => sub = Raw::connect(remote.addr, "s", false),
        }
    }
    done_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    publisher.join().unwrap();
    let mut first: Vec<u16> = Vec::new();
    for n in got {
        if !first.contains(&n) {
            first.push(n);
        }
    }
    let expected: Vec<u16> = (0..STREAM).collect();
    assert_eq!(first, expected, "first copies in order");
}

/// The number a `q/n` message carries.
fn number(p: &Publish) -> u16 {
    String::from_utf8_lossy(&p.payload)
        .parse()
        .expect("a number")
}

/// Accepts the bridge's connection on `listener` and reads its CONNECT.
fn accept_bridge(listener: &TcpListener) -> (Raw, Frame) {
    let (stream, _) = listener.accept().expect("the bridge connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut remote = Raw { stream };
    let connect = remote.recv().expect("CONNECT");
    assert_eq!(connect.kind(), 1, "{connect:?}");
    (remote, connect)
}

/// The property bytes of an MQTT 5 CONNECT (after the variable header's first 10 bytes).
fn connect_properties(connect: &Frame) -> &[u8] {
    assert_eq!(connect.body[6], 5, "an MQTT 5 CONNECT");
    let len = usize::from(connect.body[10]);
    assert!(len < 128, "one length byte");
    &connect.body[11..11 + len]
}

/// Whether `haystack` holds `needle`.
fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A fake MQTT 5 remote's CONNACK sets its limits; messages queued before it (QoS 2,
/// retained, one of 300 bytes) go out within them: two in flight at most, QoS 1, no RETAIN,
/// the large one dropped. The CONNECT carries the bridge's own bounds.
#[test]
fn the_connack_of_an_mqtt5_remote_limits_what_is_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let gateway = bridged(&format!(
        "address {}\nbridge_protocol_version mqttv50\nnotifications_local_only true\n\
         bridge_attempt_unsubscribe false\nbridge_receive_maximum 7\n\
         bridge_session_expiry_interval 99\nbridge_max_packet_size 1000\ntopic q/# out 2\n",
        listener.local_addr().unwrap()
    ));
    let (mut remote, connect) = accept_bridge(&listener);
    let props = connect_properties(&connect);
    assert!(holds(props, &[0x21, 0, 7]), "Receive Maximum: {props:?}");
    assert!(
        holds(props, &[0x11, 0, 0, 0, 99]),
        "Session Expiry: {props:?}"
    );
    assert!(
        holds(props, &[0x27, 0, 0, 3, 0xe8]),
        "Maximum Packet: {props:?}"
    );
    // Queued while the link waits for CONNACK.
    let mut c = Raw::connect(gateway.addr, "pub", true);
    let big = vec![b'x'; 300];
    let messages: [(&str, &[u8]); 5] = [
        ("q/1", b"1"),
        ("q/2", b"2"),
        ("q/big", &big),
        ("q/3", b"3"),
        ("q/4", b"4"),
    ];
    for (i, (topic, payload)) in messages.iter().enumerate() {
        let id = i as u16 + 1;
        c.send(&publish(topic, payload, 2, true, id));
        c.recv_kind(5);
        c.send(&[0x62, 2, 0, id as u8]);
        c.recv_kind(7);
    }
    // Receive Maximum 2, Maximum Packet Size 200, Retain Available 0, Maximum QoS 1, and
    // an assigned client id.
    let mut body = vec![0, 0];
    let mut p = vec![0x21, 0, 2, 0x27, 0, 0, 0, 200, 0x25, 0, 0x24, 1, 0x12, 0, 2];
    p.extend_from_slice(b"as");
    body.push(p.len() as u8);
    body.extend_from_slice(&p);
    remote.send(&frame(0x20, &body));
    let mut got = Vec::new();
    for _ in 0..2 {
        let p = Publish::parse(&remote.recv_kind(3));
        assert_eq!((p.qos, p.retain), (1, false), "{}", p.topic);
        got.push(p);
    }
    remote.expect_silence(500);
    for _ in 0..2 {
        let p = got.remove(0);
        let id = p.packet_id.to_be_bytes();
        remote.send(&[0x40, 2, id[0], id[1]]);
        let next = Publish::parse(&remote.recv_kind(3));
        assert_eq!((next.qos, next.retain), (1, false), "{}", next.topic);
        got.push(next);
    }
    let topics: Vec<&str> = got.iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(topics, ["q/3", "q/4"], "q/big is over 200 bytes: dropped");
    for p in got {
        let id = p.packet_id.to_be_bytes();
        remote.send(&[0x40, 2, id[0], id[1]]);
    }
    remote.expect_silence(500);
}

/// A remote that sends a packet over `bridge_max_packet_size` (MQTT 3.1.1, which cannot be
/// told the bound) loses the link.
#[test]
fn a_packet_over_bridge_max_packet_size_closes_the_link() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _gateway = bridged(&format!(
        "address {}\nnotifications false\ntry_private false\nbridge_max_packet_size 100\n\
         topic c/# in 0\n",
        listener.local_addr().unwrap()
    ));
    let (mut remote, _) = accept_bridge(&listener);
    remote.send(&[0x20, 2, 0, 0]);
    let sub = remote.recv_kind(8);
    remote.send(&[0x90, 3, sub.body[0], sub.body[1], 0]);
    remote.send(&publish("c/small", b"fits", 0, false, 0));
    remote.send(&publish("c/big", &[b'x'; 200], 0, false, 0));
    remote.expect_closed();
}

/// An MQTT 5 remote that sends more QoS 1 PUBLISHes than `bridge_receive_maximum` before
/// they are acknowledged (the gateway holds each PUBACK until its records are on disk,
/// `persistence_sync fsync`) loses the link.
#[test]
fn more_unacknowledged_qos1_than_bridge_receive_maximum_closes_the_link() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let gateway = Server::start(
        Kind::Pipit,
        &format!(
            "persistence_sync fsync\nconnection gw\naddress {}\nclientid gw\n\
             bridge_protocol_version mqttv50\nnotifications false\nbridge_receive_maximum 2\n\
             topic c/# in 1\n",
            listener.local_addr().unwrap()
        ),
    );
    // A stored subscriber: routing to it writes records, so the PUBACKs wait for the disk.
    let mut stored = Raw::connect(gateway.addr, "stored", false);
    assert_eq!(stored.subscribe("c/#", 1), 1);
    let (mut remote, _) = accept_bridge(&listener);
    remote.send(&[0x20, 3, 0, 0, 0]);
    remote.recv_kind(8);
    let mut burst = Vec::new();
    for id in 1..=3u8 {
        let mut body = Vec::new();
        common::string(b"c/t", &mut body);
        body.extend_from_slice(&[0, id, 0]);
        body.push(b'p');
        burst.extend_from_slice(&frame(0x32, &body));
    }
    remote.send(&burst);
    remote.expect_closed();
    assert!(
        gateway.log().contains("receive maximum"),
        "{}",
        gateway.log()
    );
}

/// An MQTT 5 remote that sends more unreleased QoS 2 PUBLISHes than
/// `bridge_receive_maximum` loses the link; those within it are PUBRECed.
#[test]
fn more_qos2_than_bridge_receive_maximum_closes_the_link() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _gateway = bridged(&format!(
        "address {}\nbridge_protocol_version mqttv50\nnotifications false\n\
         bridge_receive_maximum 2\ntopic c/# in 2\n",
        listener.local_addr().unwrap()
    ));
    let (mut remote, _) = accept_bridge(&listener);
    remote.send(&[0x20, 3, 0, 0, 0]);
    remote.recv_kind(8);
    for id in 1..=3u8 {
        // v5 PUBLISH: topic, packet id, no properties, payload.
        let mut body = Vec::new();
        common::string(b"c/t", &mut body);
        body.extend_from_slice(&[0, id, 0]);
        body.push(b'p');
        remote.send(&frame(0x34, &body));
    }
    let frames = remote.expect_closed();
    let pubrecs = frames.iter().filter(|f| f.kind() == 5).count();
    assert_eq!(pubrecs, 2, "{frames:?}");
}
