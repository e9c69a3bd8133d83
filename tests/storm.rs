//! A burst of connections must not leave the broker sized for its peak (issue 17, the
//! regression test of the storm fix). The built `pipit` binary accepts 3,000 connections at
//! once, which then all close (every third with a reset); its heap (`RssAnon` of
//! /proc/PID/status, which leaves out the binary's pages) must come back close to what it
//! was after a few ordinary connections. Before the fix it kept the connection and session
//! slots, the pooled buffers and glibc's free chunks of the peak: over 1 MiB more here.
//! `scripts/storm.sh` runs the full storm (10,000 CONNECTs a second) on the release build.
// Its broker (tests/common/process.rs) starts from a persistent configuration.
#![cfg(feature = "persistence")]

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/process.rs"]
mod process;
#[path = "common/auth.rs"]
mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Connect, Raw};
use mosquitto::Kind;
use process::Server;

/// Connections held open at once in the burst.
const BURST: usize = 3_000;

/// A `/proc/PID/status` figure in KiB.
fn status_kb(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    (text.lines())
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// The broker's heap (`RssAnon`) once it is at most `limit` KiB, or after 10 s (sweeps run
/// once a second: this allows several).
fn heap_within(pid: u32, limit: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut heap = status_kb(pid, "RssAnon:");
    while heap > limit && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        heap = status_kb(pid, "RssAnon:");
    }
    heap
}

/// Opens `n` connections, each with its CONNACK, and returns them open.
fn connect_many(addr: SocketAddr, n: usize, tag: &str) -> Vec<TcpStream> {
    (0..n)
        .map(|i| Raw::connect_with(addr, &Connect::v311(&format!("{tag}{i}"))).stream)
        .collect()
}

/// Closes every connection: a third with a reset (SO_LINGER 0), the rest with DISCONNECT.
fn close_all(conns: Vec<TcpStream>) {
    for (i, mut stream) in conns.into_iter().enumerate() {
        if i % 3 == 0 {
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .expect("SO_LINGER 0");
        } else {
            std::io::Write::write_all(&mut stream, &[0xe0, 0x00]).expect("DISCONNECT");
        }
    }
}

#[test]
fn a_burst_of_connections_gives_its_memory_back() {
    let server = Server::start(Kind::Pipit, "persistence false\n");
    let pid = server.pid();
    // A broker in service: the code and buffers of an ordinary connection are in place.
    close_all(connect_many(server.addr, 50, "warm"));
    std::thread::sleep(Duration::from_millis(2_500));
    let before = status_kb(pid, "RssAnon:");

    let burst = connect_many(server.addr, BURST, "burst");
    let peak = status_kb(pid, "RssAnon:");
    close_all(burst);

    // The sweep runs once a second; allow several. Most of what the burst took must come
    // back: it did all of it run alone and beside a CPU hog, but once in CI's parallel suite
    // 448 of 1,084 KiB stayed (glibc's heap keeps what it cannot return page by page), so
    // half of the growth may stay, never all of it (without the sweep's give-back, `after`
    // stays at `peak`).
    let limit = (before + before / 4 + 256).max(before + peak.saturating_sub(before) / 2);
    let after = heap_within(pid, limit);
    assert!(
        after <= limit,
        "heap {before} KiB before {BURST} connections, {peak} KiB with them, {after} KiB \
         after they closed (limit {limit} KiB)"
    );
}

/// Messages queued at once for a subscriber that is not reading.
const BACKLOG: usize = 400;

/// The `i`th message's 16 KiB payload: its number, then a byte that differs between
/// neighbours, so a payload overwritten by the next one's bytes shows.
fn large_payload(i: usize) -> Vec<u8> {
    let mut payload = vec![(i % 251) as u8; 16 * 1024];
    payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
    payload
}

/// Reads the next packet, a QoS 1 PUBLISH, acknowledges it and returns its payload.
fn acknowledge(subscriber: &mut Raw) -> Vec<u8> {
    let frame = subscriber.recv().expect("a PUBLISH");
    assert_eq!(frame.header, 0x32, "a QoS 1 PUBLISH: {frame:?}");
    let topic_len = usize::from(u16::from_be_bytes([frame.body[0], frame.body[1]]));
    let id = &frame.body[2 + topic_len..][..2];
    subscriber.send(&[0x40, 0x02, id[0], id[1]]);
    frame.body[2 + topic_len + 2..].to_vec()
}

#[test]
fn a_burst_of_large_messages_gives_its_memory_back() {
    let server = Server::start(Kind::Pipit, "persistence false\n");
    let pid = server.pid();
    let mut subscriber = Raw::connect(server.addr, "big-sub", false);
    assert_eq!(subscriber.subscribe("big/#", 1), 1);
    let mut publisher = Raw::connect(server.addr, "big-pub", true);
    // In service: a few large messages through, and start-up's pages given back.
    for i in 1..=4 {
        publisher.publish_acked("big/warm", &large_payload(i), false, i as u16);
        assert_eq!(acknowledge(&mut subscriber), large_payload(i));
    }
    std::thread::sleep(Duration::from_millis(2_500));
    let before = status_kb(pid, "RssAnon:");

    // The subscriber goes away: its session queues the burst until it is back.
    subscriber.send(&[0xe0, 0x00]);
    assert!(subscriber.recv().is_none(), "closed after DISCONNECT");
    // Sent without waiting for each acknowledgement, so the broker reads several per turn
    // (large payloads share the buffer they arrive in, `core::payload`).
    for i in 0..BACKLOG {
        publisher.send(&common::publish(
            "big/x",
            &large_payload(i),
            1,
            false,
            i as u16 + 10,
        ));
    }
    for i in 0..BACKLOG {
        let ack = publisher.recv().expect("PUBACK");
        assert_eq!(
            (ack.kind(), &ack.body[..]),
            (4, &(i as u16 + 10).to_be_bytes()[..])
        );
    }
    let peak = status_kb(pid, "RssAnon:");
    let mut subscriber = Raw::connect(server.addr, "big-sub", false);
    for i in 0..BACKLOG {
        assert!(
            acknowledge(&mut subscriber) == large_payload(i),
            "message {i} intact"
        );
    }

    // Traffic has stopped: the first quiet sweep trims the heap, which glibc lets keep up to
    // 4 MiB of freed blocks while traffic lasts (`heap::tune_allocator`).
    let limit = before + 1024;
    let after = heap_within(pid, limit);
    assert!(
        peak > before + 4096,
        "the burst was held: {before} KiB before, {peak} KiB with it"
    );
    assert!(
        after <= limit,
        "heap {before} KiB before {BACKLOG} messages of 16 KiB, {peak} KiB with them \
         queued, {after} KiB once they were delivered (limit {limit} KiB)"
    );
}
