//! Helpers for tests that run Debian's Mosquitto programs beside pipit: the real broker
//! (`/usr/sbin/mosquitto`) as a guarded child on a free loopback port, `mosquitto_sub` as a
//! child whose messages are read line by line, and `mosquitto_pub` run to completion; and
//! the same scenario against both brokers, started from one configuration text (pipit reads
//! Mosquitto's format). Without `/usr/sbin/mosquitto` a scenario runs against pipit alone,
//! with a printed notice.
//! Included with `#[path = "common/mosquitto.rs"]` beside `mod common;` and
//! `#[path = "common/auth.rs"] mod support;`, whose `Scratch` and `free_port` it uses.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::support::{Pipit, Scratch, free_port, local};

/// Where Debian installs the broker.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// How long the broker may take to listen, and `mosquitto_sub` to be subscribed.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// Whether the real Mosquitto broker is installed; prints a skip notice naming `what` if not.
pub fn mosquitto_installed(what: &str) -> bool {
    let there = Path::new(MOSQUITTO).is_file();
    if !there {
        eprintln!("skipped against Mosquitto ({what}): {MOSQUITTO} is not installed");
    }
    there
}

/// Whether `mosquitto_pub` and `mosquitto_sub` are on PATH (Debian `mosquitto-clients`);
/// prints a skip notice naming `what` if not.
pub fn clients_installed(what: &str) -> bool {
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|dir| dir.join(name).is_file()))
    };
    let there = on_path("mosquitto_pub") && on_path("mosquitto_sub") && on_path("stdbuf");
    if !there {
        eprintln!("skipped ({what}): mosquitto_pub, mosquitto_sub or stdbuf is not installed");
    }
    there
}

/// The real Mosquitto listening on 127.0.0.1 only; killed on drop.
pub struct Mosquitto {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    dir: Scratch,
}

impl Mosquitto {
    /// Starts Mosquitto on a free port with anonymous access and the config lines `extra`,
    /// and waits until it accepts TCP connections.
    pub fn start(extra: &str) -> Mosquitto {
        Mosquitto::with_config(&format!("allow_anonymous true\nlog_dest stderr\n{extra}\n"))
    }

    /// Starts Mosquitto reading `listener PORT 127.0.0.1` (a free port) followed by `body`,
    /// and waits until it accepts TCP connections.
    pub fn with_config(body: &str) -> Mosquitto {
        let dir = Scratch::new("mosquitto");
        let port = free_port();
        let conf = dir.write(
            "mosquitto.conf",
            &format!("listener {port} 127.0.0.1\n{body}"),
        );
        let log = File::create(dir.path("mosquitto.log")).expect("create mosquitto log");
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mosquitto");
        let mut m = Mosquitto {
            addr: local(port),
            child,
            dir,
        };
        m.wait_listening(m.addr);
        m
    }

    /// Waits until `addr` accepts a TCP connection. Mosquitto opens its listeners one after
    /// another, so the first accepting says nothing of the others.
    pub fn wait_listening(&mut self, addr: SocketAddr) {
        let log_path = self.dir.path("mosquitto.log");
        let log = move || std::fs::read_to_string(&log_path).unwrap_or_default();
        crate::support::wait_listening(&mut self.child, "mosquitto", addr, &log);
    }

    /// Everything Mosquitto has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("mosquitto.log")).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM once Mosquitto answers a CONNECT (its signal handlers are set just
    /// before its loop starts, after the listeners open), and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // Any CONNACK, accepted or refused, will do.
        crate::common::connack_code(self.addr, &crate::common::Connect::v311("terminate"));
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        self.child.wait().expect("wait for mosquitto")
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        // Best effort: it may already have exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message as `mosquitto_sub` printed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubMessage {
    /// The QoS it was delivered at.
    pub qos: u8,
    /// The RETAIN flag.
    pub retain: bool,
    /// The topic name.
    pub topic: String,
    /// The payload, as text.
    pub payload: String,
}

/// The `-F` format: a marker, so message lines differ from `-d`'s debug lines.
const FORMAT: &str = "M %q %r %t %p";

/// A running `mosquitto_sub`, its output lines read on a thread; killed on drop.
pub struct MosquittoSub {
    child: Child,
    lines: Receiver<String>,
}

impl MosquittoSub {
    /// Starts `mosquitto_sub -d ARGS` against `addr` (line-buffered through `stdbuf`, so each
    /// line arrives as printed) and returns once it has its SUBACK: what is published next
    /// reaches it.
    pub fn start(addr: SocketAddr, args: &[&str]) -> MosquittoSub {
        let port = addr.port().to_string();
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub", "-d", "-h", "127.0.0.1", "-p", &port])
            .args(["-F", FORMAT, "-W", "60"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto_sub");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let sub = MosquittoSub { child, lines };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match sub.lines.recv_timeout(left) {
                Ok(line) if line.contains("received SUBACK") => return sub,
                Ok(_) => {}
                Err(_) => panic!("mosquitto_sub {args:?} got no SUBACK"),
            }
        }
    }

    /// Collects messages until `n` arrived, or none arrived for `idle`, or `mosquitto_sub`
    /// exited (as `-C` makes it after its count).
    pub fn collect(&mut self, n: usize, idle: Duration) -> Vec<SubMessage> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            match self.lines.recv_timeout(idle) {
                Ok(line) => got.extend(parse_line(&line)),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        got
    }
}

impl Drop for MosquittoSub {
    fn drop(&mut self) {
        // Best effort: with `-C` it has exited by itself.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message line (`M qos retain topic payload`); `None` for `-d`'s debug lines.
fn parse_line(line: &str) -> Option<SubMessage> {
    let mut fields = line.strip_prefix("M ")?.splitn(4, ' ');
    let qos = fields.next()?.parse().ok()?;
    let retain = fields.next()? == "1";
    let topic = fields.next()?.to_string();
    let payload = fields.next().unwrap_or_default().to_string();
    Some(SubMessage {
        qos,
        retain,
        topic,
        payload,
    })
}

/// Runs `mosquitto_pub ARGS` against `addr` with `stdin` as its standard input (for `-l`),
/// and expects it to succeed.
pub fn mosquitto_pub(addr: SocketAddr, args: &[&str], stdin: &str) {
    let port = addr.port().to_string();
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mosquitto_pub");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("write mosquitto_pub's input");
    let out = child.wait_with_output().expect("wait for mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub {args:?}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Which broker a `Peer` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The `pipit` binary under test.
    Pipit,
    /// `/usr/sbin/mosquitto`.
    Mosquitto,
}

/// A running broker of either kind; killed on drop.
pub struct Peer {
    /// Which broker it is.
    pub kind: Kind,
    /// Where it listens.
    pub addr: SocketAddr,
    process: Process,
}

enum Process {
    Pipit(Pipit),
    Mosquitto(Mosquitto),
}

impl Peer {
    /// Waits until another of the broker's listeners, at `addr`, accepts TCP connections:
    /// the one `start` waited for may open before the rest.
    pub fn wait_listening(&mut self, addr: SocketAddr) {
        match &mut self.process {
            Process::Pipit(p) => p.wait_listening(addr),
            Process::Mosquitto(m) => m.wait_listening(addr),
        }
    }

    /// Everything the broker has logged so far.
    pub fn log(&self) -> String {
        match &self.process {
            Process::Pipit(p) => p.log(),
            Process::Mosquitto(m) => m.log(),
        }
    }

    /// The pipit process, for a signal or its log (`None` for Mosquitto).
    pub fn pipit(&self) -> Option<&Pipit> {
        match &self.process {
            Process::Pipit(p) => Some(p),
            Process::Mosquitto(_) => None,
        }
    }
}

/// Starts pipit, and Mosquitto if installed, each reading `listener PORT 127.0.0.1` followed
/// by `body`.
pub fn pipit_and_mosquitto(dir: &Scratch, body: &str) -> Vec<Peer> {
    let mut peers = vec![start(dir, Kind::Pipit, body)];
    if mosquitto_installed("the Mosquitto comparison") {
        peers.push(start(dir, Kind::Mosquitto, body));
    }
    peers
}

/// Starts one broker of `kind` with `body` after a loopback listener line (pipit's files go
/// to `dir`).
pub fn start(dir: &Scratch, kind: Kind, body: &str) -> Peer {
    match kind {
        Kind::Pipit => {
            let port = free_port();
            let addr = local(port);
            let conf = dir.write("pipit.conf", &format!("listener {port} 127.0.0.1\n{body}"));
            let log = dir.path("pipit.log");
            Peer {
                kind,
                addr,
                process: Process::Pipit(Pipit::with_config(&conf, addr, &log)),
            }
        }
        Kind::Mosquitto => {
            let m = Mosquitto::with_config(body);
            Peer {
                kind,
                addr: m.addr,
                process: Process::Mosquitto(m),
            }
        }
    }
}
