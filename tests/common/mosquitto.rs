//! The real Mosquitto (`/usr/sbin/mosquitto`, Debian's 2.0) as a guarded child process on a
//! loopback port, for tests that check a behaviour claimed "as Mosquitto" against it.
//! Included with `#[path = "common/mosquitto.rs"]` beside `mod common;`.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/sbin/mosquitto";

/// A running Mosquitto; killed, and its configuration file removed, on drop.
pub struct Mosquitto {
    /// Where it listens (127.0.0.1 only).
    pub addr: SocketAddr,
    child: Child,
    config: PathBuf,
}

impl Mosquitto {
    /// Starts Mosquitto with anonymous access and `extra` configuration lines on a free
    /// loopback port; `None` (with a printed notice) when the binary is not installed.
    pub fn start(extra: &str) -> Option<Mosquitto> {
        if !Path::new(BINARY).exists() {
            eprintln!("skipped: {BINARY} is not installed");
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral port")
            .port();
        let config = std::env::temp_dir().join(format!(
            "pipit-test-mosquitto-{}-{n}.conf",
            std::process::id()
        ));
        let text = format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}\n");
        std::fs::write(&config, text).expect("write mosquitto.conf");
        let child = Command::new(BINARY)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        let mut m = Mosquitto {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            config,
        };
        m.wait_listening();
        Some(m)
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("mosquitto exited with {status} before listening");
            }
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        // Best effort: the child may already have exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}
