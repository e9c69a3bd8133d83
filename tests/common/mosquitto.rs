//! The same scenario against pipit and the real Mosquitto: both brokers are started from one
//! configuration text (pipit reads Mosquitto's format), each on a free loopback port. Without
//! `/usr/sbin/mosquitto` the scenario runs against pipit alone, with a printed notice.
//! Included with `#[path = "common/mosquitto.rs"]` beside `common/auth.rs` as `support`.

#![allow(dead_code)]

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Pipit, Scratch, free_port, local};

/// Debian's Mosquitto 2.0.11.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// Which broker a `Peer` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The `pipit` binary under test.
    Pipit,
    /// `/usr/sbin/mosquitto`.
    Mosquitto,
}

/// A running broker; killed on drop.
pub struct Peer {
    /// Which broker it is.
    pub kind: Kind,
    /// Where it listens.
    pub addr: SocketAddr,
    process: Process,
}

enum Process {
    Pipit(Pipit),
    Mosquitto(MosquittoChild),
}

/// A Mosquitto we started, killed (by its own pid) on drop.
struct MosquittoChild(Child);

impl Drop for MosquittoChild {
    fn drop(&mut self) {
        // Best effort: it may already have exited.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Peer {
    /// The pipit process, for a signal or its log (`None` for Mosquitto).
    pub fn pipit(&self) -> Option<&Pipit> {
        match &self.process {
            Process::Pipit(p) => Some(p),
            Process::Mosquitto(_) => None,
        }
    }
}

/// Starts pipit, and Mosquitto if installed, each reading `listener PORT 127.0.0.1` followed
/// by `body` from a file in `dir`.
pub fn pipit_and_mosquitto(dir: &Scratch, body: &str) -> Vec<Peer> {
    let mut peers = vec![start(dir, Kind::Pipit, body)];
    if Path::new(MOSQUITTO).exists() {
        peers.push(start(dir, Kind::Mosquitto, body));
    } else {
        eprintln!("skipped the Mosquitto comparison: {MOSQUITTO} is not installed");
    }
    peers
}

/// Starts one broker of `kind` with `body` after a loopback listener line.
pub fn start(dir: &Scratch, kind: Kind, body: &str) -> Peer {
    let port = free_port();
    let addr = local(port);
    let name = format!("{kind:?}").to_lowercase();
    let conf = dir.write(
        &format!("{name}.conf"),
        &format!("listener {port} 127.0.0.1\n{body}"),
    );
    let log = dir.path(&format!("{name}.log"));
    let process = match kind {
        Kind::Pipit => Process::Pipit(Pipit::with_config(&conf, addr, &log)),
        Kind::Mosquitto => {
            let child = Command::new(MOSQUITTO)
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).expect("create mosquitto log"))
                .spawn()
                .expect("spawn mosquitto");
            let mut child = MosquittoChild(child);
            wait_listening(&mut child, addr, &log);
            Process::Mosquitto(child)
        }
    };
    Peer {
        kind,
        addr,
        process,
    }
}

/// Waits until Mosquitto accepts TCP connections on `addr`.
fn wait_listening(child: &mut MosquittoChild, addr: SocketAddr, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        let exited = child.0.try_wait().expect("try_wait");
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "mosquitto did not listen on {addr} ({exited:?}):\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}
