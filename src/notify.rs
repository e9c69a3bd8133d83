//! The systemd notification protocol (`sd_notify(3)`), written by hand: a datagram of
//! `KEY=VALUE` lines to the Unix socket named by `NOTIFY_SOCKET`, no libsystemd.
//!
//! With `Type=notify` the service manager counts pipit started at `READY=1` (sent once the
//! listeners are bound), shows `STATUS=`, and with `WatchdogSec=` restarts it when no
//! `WATCHDOG=1` arrives in time. The loop sends those itself (`Broker::set_notifier`), so a
//! stuck loop, not merely a live process, is what the watchdog sees. `RELOADING=1` and
//! `READY=1` bracket a SIGHUP reload; `STOPPING=1` starts a clean shutdown.
//!
//! Sending never blocks the loop (the socket is non-blocking) and a failed send is logged
//! once and otherwise ignored: the broker does not stop because its supervisor went away.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use log::{debug, warn};

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// How often `WATCHDOG=1` is due (half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
    /// advises), if the watchdog is on for this process.
    watchdog: Option<Duration>,
    /// When the next `WATCHDOG=1` is due.
    next_watchdog: Option<Instant>,
    /// Whether a failed send was already logged.
    warned: bool,
}

impl Notifier {
    /// The notifier systemd asked for through the environment (`NOTIFY_SOCKET`, and
    /// `WATCHDOG_USEC` with `WATCHDOG_PID` if set), or `None` when not started by it.
    pub fn from_env() -> io::Result<Option<Notifier>> {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Notifier::new(path.to_string_lossy().as_ref(), watchdog).map(Some)
    }

    /// A notifier for socket `path` (a leading `@` names an abstract socket, as systemd
    /// writes it) sending `WATCHDOG=1` every `watchdog` if given.
    pub fn new(path: &str, watchdog: Option<Duration>) -> io::Result<Notifier> {
        let addr = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
            None => SocketAddr::from_pathname(path)?,
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Notifier {
            socket,
            addr,
            watchdog,
            next_watchdog: watchdog.map(|every| Instant::now() + every),
            warned: false,
        })
    }

    /// Sends `state` (newline-separated `KEY=VALUE` assignments).
    pub fn send(&mut self, state: &str) {
        debug!("sd_notify: {}", state.replace('\n', " "));
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.addr)
            && !self.warned
        {
            warn!("cannot notify the service manager ({state:?}): {e}");
            self.warned = true;
        }
    }

    /// Sends `WATCHDOG=1` if it is due at `now`; returns when the next one is due.
    pub fn watchdog(&mut self, now: Instant) -> Option<Instant> {
        let (every, due) = (self.watchdog?, self.next_watchdog?);
        if now >= due {
            self.send("WATCHDOG=1");
            self.next_watchdog = Some(now + every);
        }
        self.next_watchdog
    }
}

/// Half the watchdog timeout in `usec` (microseconds), if the watchdog is meant for
/// process `pid`: `WATCHDOG_PID`, when set, names the process it is meant for.
fn watchdog_interval(usec: Option<&str>, for_pid: Option<&str>, pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(for_pid) = for_pid
        && for_pid.trim().parse::<u32>().ok() != Some(pid)
    {
        return None;
    }
    Some(Duration::from_micros(usec) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_is_half_the_timeout_for_this_process_only() {
        let half = Some(Duration::from_millis(500));
        assert_eq!(watchdog_interval(Some("1000000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("1000000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval(Some("1000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);
    }

    #[test]
    fn datagrams_reach_path_and_abstract_sockets() {
        let dir = std::env::temp_dir().join(format!("pipit-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let mut notifier = Notifier::new(path.to_str().unwrap(), None).unwrap();
        notifier.send("READY=1\nSTATUS=up");
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");
        std::fs::remove_dir_all(&dir).unwrap();

        let name = format!("pipit-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let mut notifier = Notifier::new(&format!("@{name}"), None).unwrap();
        notifier.send("STOPPING=1");
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn watchdog_is_sent_when_due_and_rescheduled() {
        let name = format!("pipit-watchdog-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        server.set_nonblocking(true).unwrap();
        let every = Duration::from_secs(10);
        let mut notifier = Notifier::new(&format!("@{name}"), Some(every)).unwrap();
        let start = Instant::now();
        let due = notifier.watchdog(start).unwrap();
        let mut buf = [0u8; 64];
        assert!(server.recv(&mut buf).is_err(), "not due yet");
        let next = notifier.watchdog(due).unwrap();
        assert_eq!(next, due + every);
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }
}
