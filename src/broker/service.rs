//! The loop's side of the systemd notification protocol (`crate::notify`): `READY=1` when
//! the loop starts, `STATUS=` when the summary changes (checked once a sweep), `WATCHDOG=1`
//! from the loop itself, `RELOADING=1`/`READY=1` around SIGHUP, `STOPPING=1` at shutdown.

use std::time::Instant;

use super::Broker;
use crate::notify::Notifier;

impl Broker {
    /// Makes the loop report to the service manager through `notifier` (the binary does,
    /// when started by systemd with `NOTIFY_SOCKET` set).
    pub fn set_notifier(&mut self, notifier: Notifier) {
        self.notifier = Some(notifier);
    }

    /// `READY=1` with the first status: the listeners are bound and the loop is starting.
    pub(super) fn notify_ready(&mut self) {
        let status = self.status();
        if let Some(notifier) = self.notifier.as_mut() {
            notifier.send(&format!("READY=1\nSTATUS={status}"));
            self.last_status = status;
        }
    }

    /// `STATUS=` if the summary changed since the last one.
    pub(super) fn notify_status(&mut self) {
        if self.notifier.is_none() {
            return;
        }
        let status = self.status();
        if status != self.last_status
            && let Some(notifier) = self.notifier.as_mut()
        {
            notifier.send(&format!("STATUS={status}"));
            self.last_status = status;
        }
    }

    /// Sends `WATCHDOG=1` if due; when the next one is due, if the watchdog is on.
    pub(super) fn notify_watchdog(&mut self, now: Instant) -> Option<Instant> {
        self.notifier.as_mut()?.watchdog(now)
    }

    /// `RELOADING=1` before a SIGHUP reload (with the monotonic time systemd's
    /// `Type=notify-reload` asks for), or `READY=1` after it.
    pub(super) fn notify_reload(&mut self, done: bool) {
        let Some(notifier) = self.notifier.as_mut() else {
            return;
        };
        if done {
            notifier.send("READY=1");
        } else {
            notifier.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
        }
    }

    /// `STOPPING=1`: a clean shutdown has begun.
    pub(super) fn notify_stopping(&mut self) {
        if let Some(notifier) = self.notifier.as_mut() {
            notifier.send("STOPPING=1\nSTATUS=shutting down");
        }
    }

    /// The one-line summary `systemctl status` shows.
    fn status(&self) -> String {
        let stats = &self.state.stats;
        format!(
            "{} clients connected, {} messages received, {} sent",
            self.state.conns.len(),
            stats.publish_received,
            stats.publish_sent
        )
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` against.
fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `now`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    if rc != 0 {
        return 0;
    }
    (now.tv_sec as u64) * 1_000_000 + (now.tv_nsec as u64) / 1_000
}
