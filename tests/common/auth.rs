//! Helpers for the tests that run the built binary (`tests/auth.rs`, `tests/config_file.rs`,
//! `tests/shutdown.rs`): scratch directories, the built `pipit` binary as a guarded child
//! process, password files made by `pipit passwd`, and a SUBACK probe spoken in raw bytes.
//! Included with `#[path = "common/auth.rs"]` beside `mod common;`, whose `Raw` it uses.

#![allow(dead_code)]

use std::fs::File;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{Raw, subscribe};

/// How long a spawned broker may take to listen, or to exit when it should.
const PROCESS_DEADLINE: Duration = Duration::from_secs(15);

/// A fresh directory under the system temp directory, removed on drop.
pub struct Scratch {
    /// The directory's path.
    pub dir: PathBuf,
}

impl Scratch {
    /// A new empty directory whose name includes `name`, this process and a counter.
    pub fn new(name: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("pipit-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }

    /// The path of `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `text` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write scratch file");
        path
    }

    /// Replaces `name` atomically (write beside, rename), as an admin's editor or
    /// `pipit passwd` would, so a concurrent reader never sees half a file.
    pub fn replace(&self, name: &str, text: &str) -> PathBuf {
        let temp = self.write(&format!(".{name}.new"), text);
        let path = self.path(name);
        std::fs::rename(temp, &path).expect("rename scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a leftover temp dir must not fail a test.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP port that was free on every address a moment ago.
pub fn free_port() -> u16 {
    // Below the kernel's ephemeral range (32768 and up on Linux), so a port handed out here
    // cannot be taken by a broker another test binds to port 0 before pipit binds it; each
    // process starts at its own offset and walks on, skipping ports in use.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (offset.wrapping_add(n) % 12_000) as u16;
        // Free on 127.0.0.1 is not enough for a listener without an address: the port may be
        // held on another loopback address or on IPv6 only, so the wildcards are tried too
        // (a machine without IPv6 fails that bind otherwise than "in use").
        let unused = |ip: IpAddr| match TcpListener::bind((ip, port)) {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::AddrInUse,
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && unused(IpAddr::from([0, 0, 0, 0]))
            && unused(IpAddr::from([0u16; 8]))
        {
            return port;
        }
    }
}

/// Waits until `addr` accepts a TCP connection, for a broker `name` running as `child`;
/// panics with `log()` if it exits first or does not listen within the deadline.
pub fn wait_listening(child: &mut Child, name: &str, addr: SocketAddr, log: &dyn Fn() -> String) {
    let deadline = Instant::now() + PROCESS_DEADLINE;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("{name} exited with {status} before listening:\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not listen on {addr}:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The `pipit` binary running as a child, its stderr going to a file; killed on drop.
pub struct Pipit {
    /// The running process.
    pub child: Child,
    stderr: PathBuf,
}

impl Pipit {
    /// Starts `pipit ARGS`, logging to `log` (a file path).
    pub fn spawn(args: &[&str], log: &Path) -> Pipit {
        Pipit::spawn_with_env(args, log, &[])
    }

    /// Starts `pipit ARGS` with environment variables `env` added, logging to `log`.
    pub fn spawn_with_env(args: &[&str], log: &Path, env: &[(&str, &str)]) -> Pipit {
        let stderr = File::create(log).expect("create log file");
        let child = Command::new(env!("CARGO_BIN_EXE_pipit"))
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn pipit");
        Pipit {
            child,
            stderr: log.to_path_buf(),
        }
    }

    /// Starts `pipit -c CONFIG` and waits until it accepts TCP connections on `addr`.
    pub fn with_config(config: &Path, addr: SocketAddr, log: &Path) -> Pipit {
        let mut pipit = Pipit::spawn(&["-c", config.to_str().expect("utf-8 path")], log);
        pipit.wait_listening(addr);
        pipit
    }

    /// Waits until `addr` accepts a TCP connection; panics with the log if pipit exits.
    pub fn wait_listening(&mut self, addr: SocketAddr) {
        let stderr = self.stderr.clone();
        let log = move || std::fs::read_to_string(&stderr).unwrap_or_default();
        wait_listening(&mut self.child, "pipit", addr, &log);
    }

    /// Everything pipit has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends a signal: `name` as `kill` takes it (`-HUP`, `-TERM`, `-INT`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([name, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {name} failed");
    }

    /// Waits for pipit to exit on its own; panics (and kills it on drop) if it does not.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "pipit did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Polls the log until it contains `text`; panics with the log after the deadline.
    pub fn wait_log(&self, text: &str) -> String {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            let log = self.log();
            if log.contains(text) {
                return log;
            }
            assert!(Instant::now() < deadline, "log lacks {text:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Pipit {
    fn drop(&mut self) {
        // Best effort: the child may already have exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `pipit ARGS` expecting it to exit by itself: its status and stderr.
pub fn run_pipit(args: &[&str], log: &Path) -> (ExitStatus, String) {
    let mut pipit = Pipit::spawn(args, log);
    let status = pipit.wait_exit();
    (status, pipit.log())
}

/// Runs `pipit ARGS` capturing stdout; it must exit within the deadline.
pub fn pipit_stdout(args: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipit"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pipit");
    let deadline = Instant::now() + PROCESS_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pipit {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    (status, out)
}

/// Runs `pipit passwd ARGS` through the library entry point the binary uses.
pub fn passwd(args: &[&str]) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    pipit::auth::passwd::run(&args).expect("pipit passwd");
}

/// Writes a password file `passwd` with alice/secret into `dir` and returns its path.
pub fn alice_password_file(dir: &Scratch) -> PathBuf {
    let pw = dir.path("passwd");
    let path = pw.to_str().expect("utf-8 scratch path");
    passwd(&["-c", "-b", path, "alice", "secret"]);
    pw
}

/// 3.1.1 CONNACK return code: connection accepted [MQTT-3.2.2.3].
pub const ACCEPTED: u8 = 0x00;
/// 3.1.1 CONNACK return code: bad user name or password.
pub const BAD_USERNAME_OR_PASSWORD: u8 = 0x04;
/// 3.1.1 CONNACK return code: not authorized.
pub const NOT_AUTHORIZED: u8 = 0x05;
/// 3.1.1 SUBACK failure return code.
pub const SUBACK_FAILURE: u8 = 0x80;

/// Sends one SUBSCRIBE with `filters` (packet id 7) and returns the SUBACK return codes.
pub fn suback_codes(c: &mut Raw, filters: &[(&str, u8)]) -> Vec<u8> {
    c.send(&subscribe(7, filters));
    let ack = c.recv_kind(9);
    assert_eq!(&ack.body[..2], &[0, 7], "SUBACK packet id: {ack:?}");
    ack.body[2..].to_vec()
}
