//! A bridge's life beyond connecting (issue 15): SIGHUP reloads `connection` blocks (an
//! unchanged one keeps its connection, a changed one disconnects and connects again with its
//! new settings and its queued messages, a removed one disconnects, a new one connects; a
//! file that no longer loads changes nothing); `start_type lazy` with `threshold` and
//! `idle_timeout` (the threshold compared with Mosquitto's); `start_type once`; `bridge_bind_address`; and a topic remap that yields
//! an empty topic, which drops that message instead of closing the link in a loop. The
//! remotes are fake brokers speaking raw bytes, so each test sees exactly what the bridge
//! sends.
#![cfg(feature = "bridge")]

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Frame, Publish, Raw, TestBroker, publish, start_with};
use mosquitto::{Mosquitto, mosquitto_installed};
use pipit::Config;
use support::{Pipit, Scratch, free_port, local};

/// A fake remote broker: a listener the bridge connects to.
struct Remote {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Remote {
    /// A remote listening on `ip`, any port.
    fn on(ip: &str) -> Remote {
        let listener = TcpListener::bind((ip, 0)).expect("bind the fake remote");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        Remote { listener, addr }
    }

    /// The next connection within `within`, if any: the stream (its CONNECT read and
    /// answered with CONNACK 0), the peer's address, and the client id it sent.
    fn accept_within(&self, within: Duration) -> Option<(Raw, SocketAddr, String)> {
        let deadline = Instant::now() + within;
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let mut raw = Raw { stream };
                    let connect = raw.recv().expect("CONNECT");
                    assert_eq!(connect.header, 0x10, "CONNECT first");
                    raw.send(&[0x20, 2, 0, 0]);
                    return Some((raw, peer, client_id(&connect)));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The next connection, which must come within 10 seconds.
    fn accept(&self) -> (Raw, SocketAddr, String) {
        self.accept_within(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no bridge connected to {}", self.addr))
    }
}

/// The client id of a 3.1.1 CONNECT: after "MQTT", level, flags and keepalive.
fn client_id(connect: &Frame) -> String {
    let len = usize::from(u16::from_be_bytes([connect.body[10], connect.body[11]]));
    String::from_utf8(connect.body[12..12 + len].to_vec()).unwrap()
}

/// Reads what the bridge sends on `c` for `ms` milliseconds (or until it closes),
/// acknowledging each QoS 1 PUBLISH as a broker would.
fn read_acking(c: &mut Raw, ms: u64) -> Vec<Frame> {
    c.stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_millis(ms);
    let mut frames = Vec::new();
    while Instant::now() < deadline {
        match c.read_frame() {
            Ok(Some(f)) => {
                if f.header & 0xf6 == 0x32 {
                    let p = Publish::parse(&f);
                    let id = p.packet_id.to_be_bytes();
                    c.send(&[0x40, 2, id[0], id[1]]);
                }
                frames.push(f);
            }
            Ok(None) => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    frames
}

/// The next PUBLISH on `topic` from the bridge on `c`, not acknowledged; other packets are
/// passed over (QoS 1 PUBLISHes, its state notice, acknowledged).
fn next_on(c: &mut Raw, topic: &str) -> Publish {
    loop {
        let f = c.recv().unwrap_or_else(|| panic!("no PUBLISH on {topic}"));
        if f.kind() != 3 {
            continue;
        }
        let p = Publish::parse(&f);
        if p.topic == topic {
            return p;
        }
        if p.qos == 1 {
            let id = p.packet_id.to_be_bytes();
            c.send(&[0x40, 2, id[0], id[1]]);
        }
    }
}

/// The topics and payloads of the PUBLISHes among `frames`.
fn published(frames: &[Frame]) -> Vec<(String, Vec<u8>)> {
    frames
        .iter()
        .filter(|f| f.kind() == 3)
        .map(|f| {
            let p = Publish::parse(f);
            (p.topic, p.payload)
        })
        .collect()
}

/// Publishes at QoS 1 from a fresh client at `addr`, waiting for PUBACK.
fn publish_qos1(addr: SocketAddr, topic: &str, payload: &[u8]) {
    let mut c = Raw::connect(addr, "pub", true);
    c.send(&publish(topic, payload, 1, false, 7));
    c.recv_kind(4);
}

/// An in-process pipit with the bridge `connection gw` (client id `gw`, one-second restart)
/// followed by `block`, and `sys_interval 1`.
fn bridged(block: &str) -> TestBroker {
    let text = format!("connection gw\nclientid gw\nrestart_timeout 1\n{block}");
    let (parsed, warnings) = Config::parse(&text, Path::new("bridge.conf")).expect("bridge block");
    assert!(warnings.is_empty(), "{warnings:?}");
    start_with(|c| {
        c.bridges = parsed.bridges;
        c.sys_interval = 1;
    })
}

// --- SIGHUP ---------------------------------------------------------------------------

/// The configuration file of the pipit binary: a listener on `port`, then `blocks`.
fn config_text(port: u16, blocks: &str) -> String {
    format!("user root\nallow_anonymous true\nlistener {port} 127.0.0.1\n{blocks}")
}

/// A `connection` block to `remote` with client id `id`, a one-second restart and `topics`.
fn block(name: &str, remote: &Remote, id: &str, topics: &str) -> String {
    format!(
        "connection {name}\naddress {}\nclientid {id}\nrestart_timeout 1\n{topics}",
        remote.addr
    )
}

/// Sends SIGHUP and waits until the bridges' reload (or its refusal: `text`) is logged
/// `count` times in all.
fn reload(pipit: &Pipit, text: &str, count: usize) {
    pipit.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pipit.log().matches(text).count() < count {
        assert!(Instant::now() < deadline, "no {text:?}:\n{}", pipit.log());
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// SIGHUP with one bridge unchanged, one changed, one removed and one added: the unchanged
/// one's connection carries on (no DISCONNECT, no new CONNECT); the changed one sends
/// DISCONNECT, connects again with its new client id and subscribes to its new topic, and
/// sends again the message its remote had not acknowledged; the removed one sends its `0`
/// state and DISCONNECT, and closes; the new one connects.
#[test]
fn sighup_keeps_unchanged_bridges_and_redoes_changed_removed_and_new_ones() {
    let dir = Scratch::new("bridge-reload");
    let (keep, change, gone, added) = (
        Remote::on("127.0.0.1"),
        Remote::on("127.0.0.1"),
        Remote::on("127.0.0.1"),
        Remote::on("127.0.0.1"),
    );
    let port = free_port();
    let keep_block = block("keep", &keep, "k", "topic k/# out 1\n");
    let before = [
        keep_block.clone(),
        block(
            "change",
            &change,
            "c1",
            "topic q/# out 1\ntopic c1/# in 1\n",
        ),
        block("gone", &gone, "g", "topic g/# out 1\n"),
    ]
    .concat();
    let config = dir.write("pipit.conf", &config_text(port, &before));
    let pipit = Pipit::with_config(&config, local(port), &dir.path("pipit.log"));
    let (mut k, _, _) = keep.accept();
    let (mut c, _, id) = change.accept();
    assert_eq!(id, "c1");
    let (mut g, _, _) = gone.accept();
    // The changed bridge's remote takes a message and never acknowledges it.
    publish_qos1(local(port), "q/1", b"unacked");
    next_on(&mut c, "q/1");
    for remote in [&mut k, &mut g] {
        read_acking(remote, 200);
    }

    let after = [
        keep_block,
        block(
            "change",
            &change,
            "c2",
            "topic q/# out 1\ntopic c2/# in 1\n",
        ),
        block("new", &added, "n", "topic n/# out 1\n"),
    ]
    .concat();
    dir.replace("pipit.conf", &config_text(port, &after));
    reload(&pipit, "SIGHUP: reloaded bridges", 1);
    assert!(pipit.log().contains("1 of 3 unchanged"), "{}", pipit.log());

    // Removed: its `0` on the remote, DISCONNECT, then the socket closes.
    let frames = read_acking(&mut g, 1500);
    let kinds: Vec<u8> = frames.iter().map(Frame::kind).collect();
    assert_eq!(kinds, [3, 14], "{frames:?}");
    assert_eq!(
        published(&frames),
        [("$SYS/broker/connection/g/state".to_string(), b"0".to_vec())]
    );
    assert!(!matches!(g.read_frame(), Ok(Some(_))), "closed");
    // Changed: DISCONNECT on the old link, then a new CONNECT with the new settings.
    let frames = read_acking(&mut c, 500);
    assert_eq!(frames.last().map(Frame::kind), Some(14), "{frames:?}");
    let (mut c, _, id) = change.accept();
    assert_eq!(id, "c2");
    let frames = read_acking(&mut c, 1500);
    let subscribe = frames.iter().find(|f| f.kind() == 8).expect("SUBSCRIBE");
    assert_eq!(&subscribe.body[2..], b"\x00\x04c2/#\x01");
    let resent: Vec<_> = published(&frames)
        .into_iter()
        .filter(|(topic, _)| topic == "q/1")
        .collect();
    assert_eq!(resent, [("q/1".to_string(), b"unacked".to_vec())]);
    // Added: it connects.
    let (_n, _, id) = added.accept();
    assert_eq!(id, "n");
    // Unchanged: nothing on its link, and no new connection.
    let frames = read_acking(&mut k, 1000);
    assert!(frames.is_empty(), "{frames:?}");
    assert!(keep.accept_within(Duration::from_millis(200)).is_none());
    publish_qos1(local(port), "k/1", b"still up");
    next_on(&mut k, "k/1");
}

/// A file that no longer loads: SIGHUP says why and leaves every bridge as it was.
#[test]
fn sighup_with_a_bad_file_keeps_the_bridges() {
    let dir = Scratch::new("bridge-reload-bad");
    let remote = Remote::on("127.0.0.1");
    let port = free_port();
    let good = block("keep", &remote, "k", "topic k/# out 1\n");
    let config = dir.write("pipit.conf", &config_text(port, &good));
    let pipit = Pipit::with_config(&config, local(port), &dir.path("pipit.log"));
    let (mut k, _, _) = remote.accept();
    read_acking(&mut k, 300);
    let bad = block("keep", &remote, "k2", "topic k/# sideways\n");
    dir.replace("pipit.conf", &config_text(port, &bad));
    reload(&pipit, "SIGHUP: keeping the bridges as they are", 1);
    assert!(
        pipit.log().contains("invalid bridge topic direction"),
        "{}",
        pipit.log()
    );
    let frames = read_acking(&mut k, 1000);
    assert!(frames.is_empty(), "{frames:?}");
    assert!(remote.accept_within(Duration::from_millis(200)).is_none());
    publish_qos1(local(port), "k/1", b"still up");
    next_on(&mut k, "k/1");
}

// --- start_type, bind address -----------------------------------------------------------

/// Publishes `t/1`, `t/2` at QoS 1 to the broker at `gateway` (whose lazy bridge to
/// `remote` has `threshold 3`) and sees no connection; then `t/3`, and the bridge connects.
fn lazy_start(gateway: SocketAddr, remote: &Remote, what: &str) -> Raw {
    publish_qos1(gateway, "t/1", b"1");
    publish_qos1(gateway, "t/2", b"2");
    assert!(
        remote.accept_within(Duration::from_millis(2500)).is_none(),
        "{what}: connected below the threshold"
    );
    publish_qos1(gateway, "t/3", b"3");
    remote.accept().0
}

/// The topics of the `t/` messages among `frames`.
fn queued_topics(frames: &[Frame]) -> Vec<String> {
    published(frames)
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| t.starts_with("t/"))
        .collect()
}

/// `start_type lazy`: no connection until `threshold` messages are queued; then it
/// connects and sends them; with nothing more to send for `idle_timeout` it says goodbye
/// (its `0` state, DISCONNECT); and it comes back when the threshold is queued again.
#[test]
fn a_lazy_bridge_starts_at_its_threshold_and_stops_when_idle() {
    let remote = Remote::on("127.0.0.1");
    let gateway = bridged(&format!(
        "address {}\nstart_type lazy\nthreshold 3\nidle_timeout 2\ntopic t/# out 1\n",
        remote.addr
    ));
    for round in 0..2 {
        let mut c = lazy_start(gateway.addr, &remote, &format!("round {round}"));
        let started = Instant::now();
        let frames = read_acking(&mut c, 6000);
        assert_eq!(
            queued_topics(&frames),
            ["t/1", "t/2", "t/3"],
            "round {round}: {frames:?}"
        );
        let state = "$SYS/broker/connection/gw/state".to_string();
        assert_eq!(
            published(&frames).last(),
            Some(&(state, b"0".to_vec())),
            "round {round}: the idle goodbye"
        );
        assert_eq!(frames.last().map(Frame::kind), Some(14), "DISCONNECT");
        let idle = started.elapsed();
        assert!(
            idle >= Duration::from_secs(2) && idle < Duration::from_secs(5),
            "{idle:?}"
        );
    }
}

/// The same lazy start against the real Mosquitto: it too waits for the threshold (its
/// Debian build does not connect a lazy bridge at start-up either), then sends the queue.
#[test]
fn a_lazy_bridge_starts_at_its_threshold_as_mosquitto() {
    if !mosquitto_installed("lazy bridge") {
        return;
    }
    let remote = Remote::on("127.0.0.1");
    let broker = Mosquitto::start(&format!(
        "connection gw\naddress {}\nstart_type lazy\nthreshold 3\ntopic t/# out 1\n",
        remote.addr
    ));
    let mut c = lazy_start(broker.addr, &remote, "Mosquitto");
    let frames = read_acking(&mut c, 1500);
    assert_eq!(queued_topics(&frames), ["t/1", "t/2", "t/3"], "{frames:?}");
}

/// `start_type once`: connected at start-up, never again after the link drops (an
/// `automatic` bridge would be back within its one-second restart).
#[test]
fn a_once_bridge_does_not_reconnect() {
    let remote = Remote::on("127.0.0.1");
    let _gateway = bridged(&format!(
        "address {}\nstart_type once\ntopic t/# out 1\n",
        remote.addr
    ));
    let (mut c, _, _) = remote.accept();
    // Up (its state notice arrived), then the remote goes away.
    assert!(!published(&read_acking(&mut c, 1000)).is_empty());
    drop(c);
    assert!(remote.accept_within(Duration::from_secs(4)).is_none());
}

/// `bridge_bind_address`: the remote sees the bridge come from that address.
#[test]
fn the_bridge_binds_its_socket_to_bridge_bind_address() {
    let remote = Remote::on("127.0.0.1");
    let _gateway = bridged(&format!(
        "address {}\nbridge_bind_address 127.0.0.2\ntopic t/# out 1\n",
        remote.addr
    ));
    let (_c, peer, _) = remote.accept();
    assert_eq!(peer.ip().to_string(), "127.0.0.2");
}

// --- topic remapping ----------------------------------------------------------------------

/// Regression: a remap that yields an empty topic closed the link (an empty topic is no
/// topic name), and the resend after reconnecting closed it again, for ever. Now that one
/// message is dropped, acknowledged when it came from the remote, and counted in the
/// bridge's `messages/unmappable`; the link stays up and the next message gets through.
#[test]
fn a_remap_to_an_empty_topic_drops_the_message_not_the_link() {
    let remote = Remote::on("127.0.0.1");
    let gateway = bridged(&format!(
        "address {}\ntopic # in 1 \"\" cloud/\ntopic # out 1 l/ \"\"\n",
        remote.addr
    ));
    let (mut c, _, _) = remote.accept();
    read_acking(&mut c, 500);
    let mut local = Raw::connect(gateway.addr, "sub", true);
    local.subscribe("x", 1);
    // In: exactly the remote prefix is acknowledged and dropped.
    c.send(&publish("cloud/", b"nowhere", 1, false, 1));
    let ack = c.recv_kind(4);
    assert_eq!(ack.body, [0, 1]);
    c.send(&publish("cloud/x", b"in", 1, false, 2));
    assert_eq!(c.recv_kind(4).body, [0, 2]);
    let p = local.recv_publish();
    assert_eq!((&*p.topic, &*p.payload), ("x", &b"in"[..]));
    // Out: exactly the local prefix is not sent.
    publish_qos1(gateway.addr, "l/", b"nowhere");
    publish_qos1(gateway.addr, "l/y", b"out");
    let frames = read_acking(&mut c, 800);
    assert_eq!(published(&frames), [("y".to_string(), b"out".to_vec())]);
    // Counted, and the link never dropped.
    let mut sys = Raw::connect(gateway.addr, "sys", true);
    sys.subscribe("$SYS/broker/bridges/gw/messages/unmappable", 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let p = sys.recv_publish();
        if p.payload == b"2" {
            break;
        }
        assert!(Instant::now() < deadline, "count {:?}", p.payload);
    }
    assert!(remote.accept_within(Duration::from_millis(300)).is_none());
}
