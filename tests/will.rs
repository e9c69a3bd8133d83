//! Will messages: published on every close but a normal DISCONNECT.

mod common;

use common::{Connect, Raw, start};

fn watcher(addr: std::net::SocketAddr) -> Raw {
    let mut w = Raw::connect(addr, "watcher", true);
    w.subscribe("will/#", 1);
    w
}

#[test]
fn will_on_socket_close() {
    let broker = start();
    let mut w = watcher(broker.addr);
    let c = Raw::connect_with(
        broker.addr,
        &Connect::v311("dies").will("will/dies", b"gone", 1, false),
    );
    drop(c);
    let p = w.recv_publish();
    assert_eq!(
        (p.topic.as_str(), p.payload.as_slice(), p.qos),
        ("will/dies", &b"gone"[..], 1)
    );
}

#[test]
fn no_will_on_disconnect() {
    let broker = start();
    let mut w = watcher(broker.addr);
    let c = Raw::connect_with(
        broker.addr,
        &Connect::v311("polite").will("will/polite", b"x", 0, false),
    );
    c.disconnect();
    w.expect_silence(400);
}

#[test]
fn will_on_keepalive_timeout() {
    let broker = start();
    let mut w = watcher(broker.addr);
    let _c = Raw::connect_with(
        broker.addr,
        &Connect::v311("silent")
            .keep_alive(1)
            .will("will/silent", b"timeout", 0, false),
    );
    let p = w.recv_publish();
    assert_eq!(p.payload, b"timeout");
}

#[test]
fn will_on_protocol_error() {
    let broker = start();
    let mut w = watcher(broker.addr);
    let mut c = Raw::connect_with(
        broker.addr,
        &Connect::v311("rude").will("will/rude", b"bad", 0, false),
    );
    c.send(&[0x30, 0x01, 0x00]); // PUBLISH with a truncated topic length
    c.expect_closed();
    assert_eq!(w.recv_publish().payload, b"bad");
}

#[test]
fn will_on_takeover() {
    let broker = start();
    let mut w = watcher(broker.addr);
    let _old = Raw::connect_with(
        broker.addr,
        &Connect::v311("twin").will("will/twin", b"old", 0, false),
    );
    let _new = Raw::connect(broker.addr, "twin", true);
    assert_eq!(w.recv_publish().payload, b"old");
}

#[test]
fn retained_will() {
    let broker = start();
    let c = Raw::connect_with(
        broker.addr,
        &Connect::v311("ret").will("will/ret", b"last", 0, true),
    );
    drop(c);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut late = Raw::connect(broker.addr, "late", true);
    late.subscribe("will/ret", 0);
    let p = late.recv_publish();
    assert_eq!((p.payload.as_slice(), p.retain), (&b"last"[..], true));
}

#[test]
fn will_when_last_data_and_close_arrive_together() {
    let broker = start();
    let mut w = watcher(broker.addr);
    let mut c = Raw::connect_with(
        broker.addr,
        &Connect::v311("abrupt")
            .keep_alive(60)
            .will("will/abrupt", b"eof", 0, false),
    );
    // A PINGREQ and the FIN in one go: the broker must still notice the close at once,
    // not at the keepalive timeout a minute later.
    c.send(&[0xc0, 0x00]);
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(w.recv_publish().payload, b"eof");
}
