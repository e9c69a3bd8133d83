//! `log_dest syslog`: each line as one RFC 3164 datagram to the local syslog socket,
//! `<PRI>Mmm dd hh:mm:ss pipit[PID]: LINE`, the form glibc's `syslog(3)` sends for Mosquitto
//! (the daemon adds the host name). PRI is the facility (`daemon`, or `local0`..`local7` from
//! `log_facility`) times 8 plus the severity of the line's Mosquitto type.
//!
//! The socket is connected on first use and again after a failed send (syslogd restarted).
//! If it cannot be reached at all, that is said once on stderr and the lines are dropped.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Kind;

/// The local syslog socket.
pub const DEV_LOG: &str = "/dev/log";

/// syslog's `daemon` facility, Mosquitto's default.
const LOG_DAEMON: u8 = 3;
/// syslog's `local0`; `localN` is this plus N.
const LOG_LOCAL0: u8 = 16;

/// The syslog destination.
pub(super) struct Syslog {
    path: PathBuf,
    facility: u8,
    socket: Mutex<Option<UnixDatagram>>,
    /// Whether the "cannot reach syslog" notice was printed.
    warned: AtomicBool,
}

impl Syslog {
    /// A destination sending to the socket at `path`, with `log_facility` (`None`: daemon).
    pub(super) fn new(path: &Path, local: Option<u8>) -> Syslog {
        Syslog {
            path: path.to_path_buf(),
            facility: local.map_or(LOG_DAEMON, |n| LOG_LOCAL0 + n),
            socket: Mutex::new(None),
            warned: AtomicBool::new(false),
        }
    }

    /// Sends `line` as a message of `kind`.
    pub(super) fn send(&self, kind: Kind, line: &str) {
        let datagram = self.datagram(kind, line, std::time::SystemTime::now());
        let mut socket = self.socket.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..2 {
            if socket.is_none() {
                match self.connect() {
                    Ok(connected) => *socket = Some(connected),
                    Err(e) => return self.warn_once(&e),
                }
            }
            if let Some(s) = socket.as_ref() {
                match s.send(datagram.as_bytes()) {
                    Ok(_) => return,
                    // The daemon is behind: the line is dropped rather than the loop stalled.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                    // Reconnect once: the daemon may have restarted.
                    Err(_) => *socket = None,
                }
            }
        }
    }

    fn connect(&self) -> std::io::Result<UnixDatagram> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(&self.path)?;
        // Log calls come from the event loop: a slow or stopped daemon must not block it.
        socket.set_nonblocking(true)?;
        Ok(socket)
    }

    fn warn_once(&self, e: &std::io::Error) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "pipit: log_dest syslog: cannot send to {} ({e}); syslog lines are dropped",
                self.path.display()
            );
        }
    }

    /// The datagram for `line` of `kind` sent at `now`.
    fn datagram(&self, kind: Kind, line: &str, now: std::time::SystemTime) -> String {
        let severity = match kind {
            Kind::Error => 3,
            Kind::Warning => 4,
            Kind::Notice => 5,
            Kind::Debug => 7,
        };
        let pri = u32::from(self.facility) * 8 + severity;
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // RFC 3164's TIMESTAMP: "Mmm dd hh:mm:ss", the day padded with a space.
        let stamp = super::timestamp::local(c"%b %e %H:%M:%S", secs)
            .unwrap_or_else(|| String::from("Jan  1 00:00:00"));
        format!("<{pri}>{stamp} pipit[{}]: {line}", std::process::id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pipit-syslog-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("log")
    }

    #[test]
    fn a_line_is_one_rfc3164_datagram_with_facility_and_severity() {
        let path = socket_path("format");
        let daemon = UnixDatagram::bind(&path).unwrap();
        let syslog = Syslog::new(&path, Some(5));
        syslog.send(Kind::Warning, "1700000000: Warning: disk is slow");
        let mut buf = [0u8; 512];
        let n = daemon.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        // local5 (21) * 8 + warning (4).
        assert!(got.starts_with("<172>"), "{got}");
        let (stamp, rest) = got[5..].split_at(15);
        assert_eq!(stamp.as_bytes()[3], b' ', "Mmm dd hh:mm:ss: {stamp}");
        assert_eq!(&stamp[9..10], ":");
        let tail = format!(
            " pipit[{}]: 1700000000: Warning: disk is slow",
            std::process::id()
        );
        assert_eq!(rest, tail);
        let daemon_pri = Syslog::new(&path, None).datagram(Kind::Error, "x", std::time::UNIX_EPOCH);
        assert!(
            daemon_pri.starts_with("<27>"),
            "daemon (3) * 8 + err (3): {daemon_pri}"
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_missing_socket_drops_lines_and_goes_on() {
        let path = socket_path("missing");
        let syslog = Syslog::new(&path, None);
        syslog.send(Kind::Notice, "one");
        syslog.send(Kind::Notice, "two");
        assert!(syslog.warned.load(Ordering::Relaxed));
        let daemon = UnixDatagram::bind(&path).unwrap();
        syslog.send(Kind::Notice, "three");
        let mut buf = [0u8; 512];
        let n = daemon.recv(&mut buf).unwrap();
        assert!(std::str::from_utf8(&buf[..n]).unwrap().ends_with(": three"));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
