//! Helpers for bridge tests: a broker with one bridge, waiting for the bridge's state
//! notification, a raw subscriber, and reading the next application message with its
//! acknowledgements.
//! Included with `#[path = "common/bridge.rs"]` beside `mod common;`, whose `Raw` and
//! `Publish` it uses.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use pipit::Config;

use crate::common::{Publish, Raw, TestBroker, start_with};

/// The topic both brokers see a test bridge's state on (`$SYS` is not writable on pipit).
pub const STATE: &str = "bridge/gw/state";

/// A pipit broker on 127.0.0.1:0 with one bridge, `connection gw` with client id `gw`, a
/// one-second restart and `STATE` as notification topic, followed by `block`.
pub fn bridged(block: &str) -> TestBroker {
    let text = format!(
        "connection gw\nclientid gw\nrestart_timeout 1\nnotification_topic {STATE}\n{block}"
    );
    let (parsed, warnings) = Config::parse(&text, Path::new("bridge.conf")).expect("bridge block");
    assert!(warnings.is_empty(), "{warnings:?}");
    start_with(|c| c.bridges = parsed.bridges)
}

/// Waits until `STATE` reads `1` on the broker at `addr` (which may not listen yet: a
/// Mosquitto with two listeners opens the second a moment after the first). On the remote
/// that is after the bridge's subscriptions: it sends them before the notification.
pub fn wait_up(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            std::thread::sleep(Duration::from_millis(25));
            continue;
        }
        let mut watch = Raw::connect(addr, "watch", true);
        watch.subscribe(STATE, 0);
        while let Some(f) = watch.recv() {
            if f.kind() == 3 && Publish::parse(&f).payload == b"1" {
                return;
            }
        }
    }
    panic!("the bridge did not come up at {addr}");
}

/// A subscriber at `addr` to `filter` at `qos` (v3.1.1).
pub fn subscriber(addr: SocketAddr, id: &str, filter: &str, qos: u8) -> Raw {
    let mut c = Raw::connect(addr, id, true);
    assert_eq!(c.subscribe(filter, qos), qos, "granted");
    c
}

/// The next application message on `c`, acknowledged as its QoS asks (PUBACK, or
/// PUBREC/PUBREL/PUBCOMP). PINGRESPs and acks of our own are passed over.
pub fn next_message(c: &mut Raw) -> Publish {
    loop {
        let f = c.recv().expect("expected a PUBLISH, got nothing");
        if f.kind() != 3 {
            continue;
        }
        let p = Publish::parse(&f);
        let id = p.packet_id.to_be_bytes();
        match p.qos {
            1 => c.send(&[0x40, 2, id[0], id[1]]),
            2 => {
                c.send(&[0x50, 2, id[0], id[1]]);
                let rel = c.recv_kind(6);
                assert_eq!(rel.body, id, "PUBREL for {}", p.topic);
                c.send(&[0x70, 2, id[0], id[1]]);
            }
            _ => {}
        }
        return p;
    }
}
