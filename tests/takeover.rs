//! Session takeover (issue 11): a new connection with the client id of a connected client
//! closes the old connection [MQTT-3.1.4-3]. What then happens to the old connection's will
//! and to its session is one table, each row checked against pipit and against Mosquitto
//! 2.0.11 (`common/mosquitto.rs`), with the rows where Mosquitto differs marked.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Connect, Props, Raw};
use mosquitto::{Kind, pipit_and_mosquitto};
use support::Scratch;

/// The Will Delay Interval of the rows with a delay, in seconds: long enough that a will
/// published "at once" cannot be one whose delay ran out.
const DELAY: u32 = 4;
/// How soon a will published at the takeover must arrive.
const AT_ONCE: Duration = Duration::from_secs(2);

/// One takeover: the old connection, the new one, and what must follow.
struct Row {
    /// Protocol level of both connections: 4 (3.1.1) or 5.
    level: u8,
    /// The old connection's Will Delay Interval (v5 only; 3.1.1 has none).
    will_delay: u32,
    /// Whether the old connection's session outlives it: v5 Session Expiry Interval 60
    /// rather than 0; 3.1.1 Clean Session 0 rather than 1.
    old_session_lasts: bool,
    /// The new connection's Clean Start (Clean Session) flag.
    new_clean: bool,
    /// Whether the old will is published at the takeover (if not, it is never published).
    will: bool,
    /// Whether the old session is resumed: CONNACK Session Present, and its subscription
    /// still delivers to the new connection.
    resumed: bool,
    /// Whether Mosquitto 2.0.11 publishes the will, where it differs from the standard: it
    /// publishes none at a takeover by a client that resumes the session, and never a
    /// delayed one (it puts it on its delay list and takes it off again in the same step).
    mosquitto_will: Option<bool>,
    /// The rule that decides the row.
    rule: &'static str,
}

/// Every combination of Will Delay (0 / > 0), the new connection's Clean Start (0 / 1) and
/// the old session's expiry (0 / > 0), in MQTT 5 and (without a delay) in 3.1.1.
///
/// The standard's wording: the will is published when the network connection closes without
/// DISCONNECT [MQTT-3.1.2-8], a takeover being such a close (3.1.4: "If the existing Client
/// has a Will Message, that Will Message is published as described in section 3.1.2.5"); a
/// Will Delay Interval postpones it until the delay passes or the session ends, whichever is
/// first, and a new connection to the session before then means it is never sent
/// [MQTT-3.1.3-9]. The non-normative note of 3.1.3.2.2 sums it up: the old will "is sent
/// unless the new connection specifies Clean Start of 0 and the Will Delay is greater than
/// zero. If the Will Delay is 0 the Will Message is sent at the close of the existing
/// Network Connection, and if Clean Start is 1 the Will Message is sent because the Session
/// ends." A session with expiry 0 ends with its connection (v5 3.1.2.11.2; a 3.1.1 clean
/// session "lasts as long as the Network Connection", 3.1.1 [MQTT-3.1.2-6]), so a takeover
/// ends it too: it is not resumed and its will, delayed or not, goes out with it.
///
/// Columns: level, Will Delay, old session lasts, new Clean Start => will published at the
/// takeover, session resumed; Mosquitto's will where it differs; the rule.
#[rustfmt::skip]
const TABLE: &[Row] = &[
    // Will Delay 0: the will goes with the closed connection, whatever follows.
    row(5, 0,     true,  false, true,  true,  Some(false),
        "delay 0: sent at the close [MQTT-3.1.2-8]; clean start 0 resumes [MQTT-3.1.2-5]"),
    row(5, 0,     false, false, true,  false, None,
        "delay 0: sent at the close; expiry 0 ended the session with it (3.1.2.11.2)"),
    row(5, 0,     true,  true,  true,  false, None,
        "delay 0: sent at the close; clean start 1 discards the session [MQTT-3.1.2-4]"),
    row(5, 0,     false, true,  true,  false, None,
        "delay 0: sent at the close; the session ended and is discarded"),
    // Will Delay > 0: cancelled only by a new connection to the same session.
    row(5, DELAY, true,  false, false, true,  None,
        "delay > 0: a new connection to the session cancels it [MQTT-3.1.3-9]"),
    row(5, DELAY, false, false, true,  false, Some(false),
        "delay > 0: expiry 0, the session ends with its connection, so the will goes now"),
    row(5, DELAY, true,  true,  true,  false, Some(false),
        "delay > 0: clean start 1 ends the session, so the will goes now (3.1.3.2.2)"),
    row(5, DELAY, false, true,  true,  false, Some(false),
        "delay > 0: the session ends, so the will goes now"),
    // 3.1.1 has no Will Delay: every takeover publishes the will.
    row(4, 0,     true,  false, true,  true,  Some(false),
        "3.1.1: sent at the close [MQTT-3.1.2-8]; clean session 0 resumes [MQTT-3.1.2-4]"),
    row(4, 0,     false, false, true,  false, None,
        "3.1.1: a clean session lasts as long as its connection [MQTT-3.1.2-6]"),
    row(4, 0,     true,  true,  true,  false, None,
        "3.1.1: clean session 1 discards the old session [MQTT-3.1.2-6]"),
    row(4, 0,     false, true,  true,  false, None,
        "3.1.1: both clean"),
];

/// A row of [`TABLE`], its fields in column order.
#[allow(clippy::too_many_arguments)]
const fn row(
    level: u8,
    will_delay: u32,
    old_session_lasts: bool,
    new_clean: bool,
    will: bool,
    resumed: bool,
    mosquitto_will: Option<bool>,
    rule: &'static str,
) -> Row {
    Row {
        level,
        will_delay,
        old_session_lasts,
        new_clean,
        will,
        resumed,
        mosquitto_will,
        rule,
    }
}

/// Opens a connection with `connect` and returns it with CONNACK's Session Present flag;
/// the CONNACK must accept.
fn connect(addr: SocketAddr, connect: &Connect) -> (Raw, bool) {
    let mut c = Raw::open(addr);
    c.send(&connect.bytes());
    let ack = c.recv().expect("CONNACK");
    assert_eq!(
        (ack.kind(), ack.body[1]),
        (2, 0),
        "CONNACK accepted: {ack:?}"
    );
    (c, ack.body[0] & 1 == 1)
}

/// The CONNECT of row `n`'s client at `level`; in v5, `lasts` asks for a session that
/// outlives the connection (Session Expiry Interval 60, not 0).
fn client(n: usize, level: u8, clean: bool, lasts: bool) -> Connect {
    let id = format!("taken-{n}");
    match level {
        5 => Connect::v5(&id, Props::new().u32(0x11, if lasts { 60 } else { 0 })).clean(clean),
        _ => Connect::v311(&id).clean(clean),
    }
}

/// Runs row `n` against the broker at `addr`; returns a description of every mismatch with
/// what `kind` should do.
fn run(addr: SocketAddr, kind: Kind, n: usize, row: &Row) -> Vec<String> {
    let will_topic = format!("will/taken-{n}");
    let carry_topic = format!("carry/taken-{n}");
    let mut watcher = Raw::connect(addr, &format!("watch-{n}"), true);
    watcher.subscribe(&will_topic, 0);

    // The old connection: a fresh session (in 3.1.1 Clean Session alone says whether it
    // lasts), a will, and a subscription for the session to carry.
    let old_clean = row.level == 5 || !row.old_session_lasts;
    let old_connect =
        client(n, row.level, old_clean, row.old_session_lasts).will(&will_topic, b"old", 0, false);
    let old_connect = match row.level {
        5 => old_connect.will_props(Props::new().u32(0x18, row.will_delay)),
        _ => old_connect,
    };
    let (mut old, _) = connect(addr, &old_connect);
    match row.level {
        5 => old.send(&common::subscribe_v5(1, Props::new(), &[(&carry_topic, 1)])),
        _ => old.send(&common::subscribe(1, &[(&carry_topic, 1)])),
    }
    old.recv_kind(9);

    // The takeover.
    let taken_at = Instant::now();
    let (mut new, present) = connect(addr, &client(n, row.level, row.new_clean, true));
    old.expect_closed();

    let mut wrong = Vec::new();
    let expected_will = match kind {
        Kind::Mosquitto => row.mosquitto_will.unwrap_or(row.will),
        Kind::Pipit => row.will,
    };
    if present != row.resumed {
        wrong.push(format!("session present {present}"));
    }
    if expected_will {
        watcher
            .stream
            .set_read_timeout(Some(AT_ONCE))
            .expect("read timeout");
        match watcher.recv() {
            Some(f) if f.kind() == 3 => {}
            other => wrong.push(format!("no will within {AT_ONCE:?}: {other:?}")),
        }
    }
    // The old session's subscription delivers to the new connection only if it was resumed.
    let mut publisher = Raw::connect(addr, &format!("pub-{n}"), true);
    publisher.publish_acked(&carry_topic, b"carried", false, 1);
    new.send(&[0xc0, 0x00]);
    let carried = loop {
        match new.recv() {
            Some(f) if f.kind() == 3 => break true,
            Some(f) if f.kind() == 13 => break false,
            Some(_) => {}
            None => {
                wrong.push("new connection closed".into());
                break false;
            }
        }
    };
    if carried != row.resumed {
        wrong.push(format!("old subscription carried over: {carried}"));
    }
    if !expected_will {
        // Never: not at the takeover, nor when the delay would have run out.
        let quiet = Duration::from_secs(u64::from(DELAY) + 2).saturating_sub(taken_at.elapsed());
        watcher
            .stream
            .set_read_timeout(Some(quiet))
            .expect("read timeout");
        if let Some(f) = watcher.recv() {
            wrong.push(format!("will published: {f:?}"));
        }
    }
    wrong
}

#[test]
fn takeover_publishes_or_cancels_the_old_will_and_resumes_only_a_lasting_session() {
    let dir = Scratch::new("takeover");
    for peer in pipit_and_mosquitto(&dir, "allow_anonymous true\n") {
        let (addr, kind) = (peer.addr, peer.kind);
        // The rows are independent (their own client ids and topics): run them together.
        let failures: Vec<String> = std::thread::scope(|scope| {
            let runs: Vec<_> = TABLE
                .iter()
                .enumerate()
                .map(|(n, row)| scope.spawn(move || (n, run(addr, kind, n, row))))
                .collect();
            let mut failures = Vec::new();
            for r in runs {
                let (n, wrong) = r.join().expect("row thread");
                let rule = TABLE[n].rule;
                failures.extend(wrong.into_iter().map(|w| format!("row {n} ({rule}): {w}")));
            }
            failures
        });
        assert!(
            failures.is_empty(),
            "{:?}:\n{}",
            peer.kind,
            failures.join("\n")
        );
    }
}
