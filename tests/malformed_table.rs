//! The malformed-packet table (issue 17): every case in `malformed_table/cases.rs` is sent on
//! a fresh connection to one pipit and one Mosquitto 2.0.11, and each broker's answer is
//! checked against the outcome the standard calls for: a CONNACK code (v3) or reason code
//! (v5), a v5 DISCONNECT reason code, a SUBACK code (a refused filter), or a plain close
//! without a packet. Where Mosquitto
//! answers otherwise the case says so in its `mosquitto` field; a difference not written
//! down fails the test. Through every case a well-behaved subscriber keeps receiving: after
//! each case a third client publishes at QoS 1 and the subscriber must get the message.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

#[path = "malformed_table/cases.rs"]
mod cases;

use std::io::{ErrorKind, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use cases::{Case, Outcome, Ver as Version};
use common::{Frame, Raw, ack, split_props, start};
use mosquitto::{Mosquitto, mosquitto_installed};

/// How long a broker may take to answer and close; a case still open after it is a hang.
const CLOSE_DEADLINE: Duration = Duration::from_secs(3);

/// How long a connection whose outcome on record is to stay open is watched: a close after
/// it would go unseen, so this only bounds the time such a case costs.
const OPEN_WAIT: Duration = Duration::from_millis(200);

/// The topic the well-behaved subscriber listens on.
const CANARY: &str = "table/canary";

/// What a broker did with one case's bytes. `expected` is the outcome on record for this
/// broker: where that is a connection left open, the wait for a close is short.
fn observe(addr: SocketAddr, case: &Case, expected: &Outcome) -> Outcome {
    let mut c = Raw::open(addr);
    let deadline = match expected {
        Outcome::Open(_) | Outcome::Accepted => OPEN_WAIT,
        _ => CLOSE_DEADLINE,
    };
    c.stream.set_read_timeout(Some(deadline)).unwrap();
    // The broker may close before it has read everything: a failed write is part of the
    // outcome, not an error of the test.
    let _ = c.stream.write_all(&case.bytes);
    let mut frames: Vec<Frame> = Vec::new();
    let mut open = false;
    loop {
        match c.read_frame() {
            Ok(Some(f)) => {
                // A SUBACK or UNSUBACK leaves the connection up: end it as a client would.
                if f.kind() == 9 || f.kind() == 11 {
                    let _ = c.stream.write_all(&[0xe0, 0x00]);
                }
                frames.push(f);
            }
            Ok(None) => break,
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(_) => {
                let _ = c.stream.shutdown(Shutdown::Both);
                open = true;
                break;
            }
        }
    }
    if case.after_connect {
        match frames.first() {
            Some(f) if f.kind() == 2 && f.body.get(1) == Some(&0) => {
                frames.remove(0);
            }
            _ => return Outcome::Other(format!("no CONNACK 0 first: {}", summary(&frames))),
        }
    }
    if open {
        return match frames.as_slice() {
            [f] if !case.after_connect && f.kind() == 2 && f.body.get(1) == Some(&0) => {
                Outcome::Accepted
            }
            _ => Outcome::Open(summary(&frames)),
        };
    }
    match frames.as_slice() {
        [] => Outcome::Close,
        [f] if f.kind() == 2 && f.body.len() >= 2 => Outcome::Connack(f.body[1]),
        [f] if f.kind() == 9 || f.kind() == 11 => {
            let codes = if case.version == Version::V5 {
                split_props(&f.body[2..]).1
            } else {
                &f.body[2..]
            };
            codes
                .first()
                .map_or(Outcome::Other(summary(&frames)), |c| Outcome::Ack(*c))
        }
        [f] if f.kind() == 14 => Outcome::Disconnect(f.body.first().copied().unwrap_or(0)),
        _ => Outcome::Other(summary(&frames)),
    }
}

/// The received packets as `header:first body bytes`, space-separated.
fn summary(frames: &[Frame]) -> String {
    frames
        .iter()
        .map(|f| format!("{:#04x}:{:02x?}", f.header, &f.body[..f.body.len().min(4)]))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The well-behaved pair: a subscriber connected before the table runs, and a publisher.
struct Canary {
    subscriber: Raw,
    publisher: Raw,
    next_id: u16,
}

impl Canary {
    fn new(addr: SocketAddr) -> Canary {
        let mut subscriber = Raw::connect(addr, "table-subscriber", true);
        assert_eq!(subscriber.subscribe(CANARY, 1), 1);
        let publisher = Raw::connect(addr, "table-publisher", true);
        Canary {
            subscriber,
            publisher,
            next_id: 0,
        }
    }

    /// A QoS 1 message from the publisher reaches the subscriber, which acknowledges it.
    fn check(&mut self, after: &str) {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let payload = format!("after {after}");
        self.publisher
            .publish_acked(CANARY, payload.as_bytes(), false, self.next_id);
        let got = self.subscriber.recv_publish();
        assert_eq!(got.payload, payload.as_bytes(), "canary after {after}");
        self.subscriber.send(&ack(0x40, got.packet_id));
    }
}

/// Runs the table against the broker at `addr`; returns one line per case whose outcome is
/// not `want(case)`.
fn run(addr: SocketAddr, table: &[Case], want: impl Fn(&Case) -> Outcome) -> Vec<String> {
    let mut canary = Canary::new(addr);
    let mut wrong = Vec::new();
    for case in table {
        let expected = want(case);
        let got = observe(addr, case, &expected);
        if got != expected {
            wrong.push(format!(
                "{} ({}, {:?}): expected {expected:?}, got {got:?}",
                case.name, case.rule, case.version
            ));
        }
        canary.check(&case.name);
    }
    wrong
}

/// Every name is unique, every rule is cited, and the table is as large as issue 17 asks.
#[test]
fn table_is_well_formed() {
    let table = cases::table();
    eprintln!("the malformed-packet table has {} cases", table.len());
    assert!(table.len() >= 150, "only {} cases", table.len());
    let mut names: Vec<&str> = table.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate case names");
    for c in &table {
        assert!(
            c.rule.starts_with("[MQTT-") || c.rule.starts_with("§"),
            "{}: rule {:?} is neither a tag nor a section",
            c.name,
            c.rule
        );
    }
}

#[test]
fn pipit_answers_every_case_as_the_standard_says() {
    let table = cases::table();
    let broker = start();
    let wrong = run(broker.addr, &table, |c| c.expect.clone());
    assert!(wrong.is_empty(), "pipit:\n{}", wrong.join("\n"));
}

#[test]
fn mosquitto_answers_every_case_as_recorded() {
    if !mosquitto_installed("the malformed-packet table") {
        return;
    }
    let table = cases::table();
    let broker = Mosquitto::start("user root");
    let wrong = run(broker.addr, &table, |c| {
        c.mosquitto.clone().unwrap_or_else(|| c.expect.clone())
    });
    assert!(wrong.is_empty(), "mosquitto:\n{}", wrong.join("\n"));
}
