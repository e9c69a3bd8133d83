//! The binary's signal handling: SIGTERM/SIGINT publish wills, close sockets, exit 0.

mod common;
#[path = "common/auth.rs"]
mod support;

use common::{Connect, Raw};
use support::{Pipit, Scratch, free_port, local};

/// The built broker binary on a free loopback port, logging into `dir`.
fn spawn_binary(dir: &Scratch) -> (Pipit, std::net::SocketAddr) {
    let port = free_port();
    let addr = local(port);
    let mut pipit = Pipit::spawn(&["--port", &port.to_string()], &dir.path("pipit.log"));
    pipit.wait_listening(addr);
    (pipit, addr)
}

#[test]
fn sigterm_publishes_wills_and_exits_zero() {
    let dir = Scratch::new("sigterm");
    let (mut broker, addr) = spawn_binary(&dir);
    let mut watcher = Raw::connect(addr, "watcher", true);
    watcher.subscribe("bye/#", 0);
    let _client = Raw::connect_with(
        addr,
        &Connect::v311("leaving").will("bye/leaving", b"shutdown", 0, false),
    );
    broker.signal("-TERM");
    let will = watcher.recv_publish();
    assert_eq!(
        (will.topic.as_str(), will.payload.as_slice()),
        ("bye/leaving", &b"shutdown"[..])
    );
    watcher.expect_closed();
    let status = broker.wait_exit();
    assert!(status.success(), "exit status {status}");
    let log = broker.log();
    assert!(log.contains("shutting down"), "log: {log}");
}

#[test]
fn sigint_exits_zero() {
    let dir = Scratch::new("sigint");
    let (mut broker, addr) = spawn_binary(&dir);
    let _client = Raw::connect(addr, "c", true);
    broker.signal("-INT");
    assert!(broker.wait_exit().success());
}
