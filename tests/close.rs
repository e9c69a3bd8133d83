//! How the broker closes: the reason it sends must reach the client even when the client is
//! still writing (no reset destroys it), and the socket does not stay open for long after.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{Props, Raw, publish_v5, start_with};

/// One run of Paho's flow-control case: a client sends QoS 2 PUBLISHes past the broker's
/// Receive Maximum (10) without waiting, one write each, and only then reads; a write that
/// fails (the broker reset the connection) fails the run, as it fails Paho's client.
fn receive_maximum_exceeded_while_writing(addr: std::net::SocketAddr, run: usize) {
    let mut c = Raw::v5(addr, &format!("flood-{run}"), Props::new());
    for id in 1..=30u16 {
        let packet = publish_v5("t", &[0u8; 100], 2, false, id, Props::new());
        if let Err(e) = c.stream.write_all(&packet) {
            panic!("run {run}: write of PUBLISH {id} failed: {e}");
        }
        if id % 5 == 0 {
            // Let the broker read, exceed, and close in between.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let frames = c.expect_closed();
    let d = frames
        .iter()
        .find(|f| f.kind() == 14)
        .unwrap_or_else(|| panic!("run {run}: no DISCONNECT among {} frames", frames.len()));
    assert_eq!(d.body[0], 0x93, "run {run}");
}

#[test]
fn disconnect_0x93_reaches_a_client_that_keeps_writing_50_times_in_a_row() {
    let broker = start_with(|c| c.max_inflight_messages = 10);
    for run in 0..50 {
        receive_maximum_exceeded_while_writing(broker.addr, run);
    }
}

#[test]
fn a_lingering_close_ends_within_about_a_second() {
    // A client that neither reads nor closes: the broker shuts its side, waits at most about
    // a second for the client's FIN, then closes anyway.
    let broker = start_with(|c| c.max_inflight_messages = 1);
    let mut c = Raw::v5(broker.addr, "silent", Props::new());
    for id in 1..=2u16 {
        c.send(&publish_v5("t", b"x", 2, false, id, Props::new()));
    }
    let started = Instant::now();
    // The broker's FIN arrives at once (after the DISCONNECT)...
    let frames = c.expect_closed();
    assert!(frames.iter().any(|f| f.kind() == 14));
    assert!(started.elapsed() < Duration::from_millis(900));
    // ...and the socket is closed for good within the linger: writing then fails.
    std::thread::sleep(Duration::from_millis(1500));
    let mut failed = false;
    for _ in 0..20 {
        if c.stream.write_all(&[0xc0, 0x00]).is_err() {
            failed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(failed, "the socket is closed after the linger");
}
