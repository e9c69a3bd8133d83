//! A broker process that the persistence tests stop and start again on the same port, the
//! same configuration and the same store: the `pipit` binary or Debian's Mosquitto, started
//! from one configuration text (pipit reads Mosquitto's format). It is stopped either with
//! `kill -9` (`Child::kill`: nothing of the broker runs after it) or with SIGTERM (a clean
//! shutdown, when Mosquitto 2.0 writes its `persistence` file). Each start logs to a file of
//! its own, so a failure shows what every run of the broker said.
//! Included with `#[path = "common/process.rs"]` beside `mod common;`,
//! `#[path = "common/auth.rs"] mod support;` and `#[path = "common/mosquitto.rs"] mod
//! mosquitto;`, whose `Scratch`, `free_port` and `Kind` it uses.

#![allow(dead_code)]

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::mosquitto::{Kind, MOSQUITTO};
use crate::support::{Scratch, free_port, local};

/// How long a broker may take to listen, or to exit after SIGTERM.
const DEADLINE: Duration = Duration::from_secs(15);

/// How a broker is stopped before it is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGKILL: the process ends at once; only what it made durable survives.
    Kill,
    /// SIGTERM: a clean shutdown; the broker saves what it keeps.
    Term,
}

/// A broker on a fixed loopback port with its store under its own scratch directory;
/// killed on drop.
pub struct Server {
    /// Which broker it is.
    pub kind: Kind,
    /// Where it listens, across restarts.
    pub addr: SocketAddr,
    /// Holds the configuration, the logs and `store/`.
    pub dir: Scratch,
    conf: PathBuf,
    child: Option<Child>,
    starts: usize,
}

impl Server {
    /// Starts `kind` with `persistence true` and `persistence_location` set to
    /// [`Server::store`], followed by the configuration lines `extra` (a later line wins, so
    /// `extra` may turn persistence off again), and waits until it listens.
    pub fn start(kind: Kind, extra: &str) -> Server {
        let dir = Scratch::new("persist");
        let port = free_port();
        let store = dir.path("store");
        std::fs::create_dir_all(&store).expect("create store directory");
        // Run as root, both switch to the `mosquitto` user unless told not to, and could
        // then not write into a directory root made.
        let own = "user root\nlog_dest stderr\n";
        let text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\n{own}persistence true\n\
             persistence_location {}/\n{extra}",
            store.display()
        );
        let conf = dir.write("broker.conf", &text);
        let mut server = Server {
            kind,
            addr: local(port),
            dir,
            conf,
            child: None,
            starts: 0,
        };
        server.spawn();
        server
    }

    /// The running broker's process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .expect("pid: the broker is not running")
            .id()
    }

    /// The directory named by `persistence_location`.
    pub fn store(&self) -> PathBuf {
        self.dir.path("store")
    }

    /// The configuration file both runs read.
    pub fn conf(&self) -> PathBuf {
        self.conf.clone()
    }

    /// Stops the broker `how`, and waits until the process is gone.
    pub fn stop(&mut self, how: Stop) {
        let mut child = self.child.take().expect("stop: the broker is not running");
        match how {
            Stop::Kill => child.kill().expect("kill -9 the broker"),
            Stop::Term => {
                let status = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()
                    .expect("run kill");
                assert!(status.success(), "kill -TERM failed");
            }
        }
        let status = wait_exit(&mut child, &|| self.log());
        if how == Stop::Term {
            assert!(
                status.success(),
                "exit after SIGTERM: {status}\n{}",
                self.log()
            );
        }
    }

    /// Stops the broker `how` and starts it again on the same port and store.
    pub fn restart(&mut self, how: Stop) {
        self.stop(how);
        self.spawn();
    }

    /// Starts the broker again after [`Server::stop`].
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "spawn: the broker is already running");
        self.starts += 1;
        let log = File::create(self.dir.path(&format!("broker-{}.log", self.starts)))
            .expect("create broker log");
        let program = match self.kind {
            Kind::Pipit => env!("CARGO_BIN_EXE_pipit"),
            Kind::Mosquitto => MOSQUITTO,
        };
        let child = Command::new(program)
            .arg("-c")
            .arg(&self.conf)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn the broker");
        self.child = Some(child);
        self.wait_listening();
    }

    /// Waits until the port accepts TCP connections; panics with the logs if the broker exits.
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            let child = self.child.as_mut().expect("a running broker");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                panic!(
                    "{:?} exited with {status} before listening:\n{}",
                    self.kind,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not listen on {}:\n{}",
                self.kind,
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every run's log, oldest first, each under a heading.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                let text = std::fs::read_to_string(self.dir.path(&format!("broker-{n}.log")))
                    .unwrap_or_default();
                format!("--- {:?} run {n}\n{text}", self.kind)
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Best effort: it may already have exited.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for `child` to exit; panics with `log()` after the deadline (the caller's guard
/// kills it).
pub fn wait_exit(child: &mut Child, log: &dyn Fn() -> String) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the broker did not exit:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
