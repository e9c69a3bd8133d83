//! The binary's signal handling: SIGTERM/SIGINT publish wills, close sockets, exit 0.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Connect, Raw};

/// The built broker binary on a free port; killed on drop if still running.
struct Binary {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_binary() -> Binary {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_pipit"))
        .args(["--port", &port.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pipit");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "broker did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Binary { child, addr }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "broker did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_publishes_wills_and_exits_zero() {
    let mut broker = spawn_binary();
    let mut watcher = Raw::connect(broker.addr, "watcher", true);
    watcher.subscribe("bye/#", 0);
    let _client = Raw::connect_with(
        broker.addr,
        &Connect::v311("leaving").will("bye/leaving", b"shutdown", 0, false),
    );
    signal(&broker.child, "-TERM");
    let will = watcher.recv_publish();
    assert_eq!(
        (will.topic.as_str(), will.payload.as_slice()),
        ("bye/leaving", &b"shutdown"[..])
    );
    watcher.expect_closed();
    let status = wait_exit(&mut broker.child);
    assert!(status.success(), "exit status {status}");
    let mut log = String::new();
    use std::io::Read;
    broker
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("shutting down"), "log: {log}");
}

#[test]
fn sigint_exits_zero() {
    let mut broker = spawn_binary();
    let _client = Raw::connect(broker.addr, "c", true);
    signal(&broker.child, "-INT");
    assert!(wait_exit(&mut broker.child).success());
}
