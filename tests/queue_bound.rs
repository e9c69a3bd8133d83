//! `max_queued_messages` means what it means in Mosquitto: how many QoS 1/2 messages wait
//! for an offline session (and beyond a full inflight window); the rest are dropped. The
//! same scenario runs against pipit and Mosquitto 2.0.11 (`common/mosquitto.rs`) and the
//! number of messages the session gets on reconnecting must be the same.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Connect, Raw, ack};
use mosquitto::{Kind, pipit_and_mosquitto};
use support::Scratch;

/// Messages a persistent subscriber gets on reconnecting after `sent` QoS 1 messages were
/// published while it was offline (each acknowledged as it arrives), in order.
fn queued_for_offline(addr: SocketAddr, sent: u16) -> Vec<u16> {
    let mut sub = Raw::connect_with(addr, &Connect::v311("offline-sub").clean(false));
    assert_eq!(sub.subscribe("q", 1), 1);
    sub.disconnect();
    let mut publ = Raw::connect(addr, "q-pub", true);
    for i in 1..=sent {
        publ.publish_acked("q", &i.to_be_bytes(), false, i);
    }
    let mut sub = Raw::connect_with(addr, &Connect::v311("offline-sub").clean(false));
    sub.stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = Vec::new();
    while let Ok(Some(f)) = sub.read_frame() {
        if f.kind() == 3 {
            let p = common::Publish::parse(&f);
            got.push(u16::from_be_bytes([p.payload[0], p.payload[1]]));
            sub.send(&ack(0x40, p.packet_id));
        }
    }
    got
}

#[test]
fn an_offline_session_keeps_max_queued_messages_as_mosquitto_does() {
    let dir = Scratch::new("queue-bound");
    let body = "allow_anonymous true\nmax_queued_messages 5\nmax_inflight_messages 2\n";
    let mut counts = Vec::new();
    for peer in pipit_and_mosquitto(&dir, body) {
        let got = queued_for_offline(peer.addr, 20);
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "{:?}: in order: {got:?}",
            peer.kind
        );
        counts.push((peer.kind, got));
    }
    let pipit = &counts[0].1;
    assert_eq!(pipit, &(1..=5).collect::<Vec<u16>>(), "the first 5 kept");
    if let Some((Kind::Mosquitto, mosquitto)) = counts.get(1) {
        assert_eq!(pipit, mosquitto, "pipit keeps what Mosquitto keeps");
    }
}
