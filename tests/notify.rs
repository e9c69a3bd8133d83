//! The `pipit` binary under systemd's notification protocol, with a test socket standing in
//! for the service manager (no systemd in CI): `READY=1` with a `STATUS=` once it listens,
//! a status that follows the connections, `WATCHDOG=1` from the loop at half of
//! `WATCHDOG_USEC`, `RELOADING=1` then `READY=1` around SIGHUP, and `STOPPING=1` on SIGTERM.

mod common;
#[path = "common/auth.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::Raw;
use support::{Pipit, Scratch, free_port, local};

const DEADLINE: Duration = Duration::from_secs(10);

/// The next datagram that starts with `prefix`, skipping others (watchdog pings, statuses).
fn wait_for(socket: &UnixDatagram, prefix: &str, pipit: &Pipit) -> String {
    let deadline = Instant::now() + DEADLINE;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {prefix:?} datagram:\n{}", pipit.log());
        socket.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with(prefix) {
                return text;
            }
        }
    }
}

#[test]
fn the_loop_reports_ready_status_watchdog_reload_and_stopping() {
    let dir = Scratch::new("notify");
    let path = dir.path("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    // Run as root, pipit switches to `mosquitto` or `nobody` before the loop starts; the
    // service manager's socket is writable by every user, as systemd's is.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let port = free_port();
    let addr = local(port);
    let conf = dir.write(
        "pipit.conf",
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    );
    let args = ["-c", conf.to_str().unwrap()];
    let env = [
        ("NOTIFY_SOCKET", path.to_str().unwrap()),
        ("WATCHDOG_USEC", "200000"),
    ];
    let mut pipit = Pipit::spawn_with_env(&args, &dir.path("log"), &env);

    let ready = wait_for(&socket, "READY=1", &pipit);
    assert_eq!(
        ready, "READY=1\nSTATUS=0 clients connected, 0 messages received, 0 sent",
        "sent once the listener is bound"
    );
    pipit.wait_listening(addr);

    // Every 100 ms from the loop: five within a second, with a margin for a loaded machine.
    let start = Instant::now();
    for _ in 0..5 {
        wait_for(&socket, "WATCHDOG=1", &pipit);
    }
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    let _client = Raw::connect(addr, "counted", true);
    let status = wait_for(&socket, "STATUS=1 clients", &pipit);
    assert!(
        status.starts_with("STATUS=1 clients connected, "),
        "{status}"
    );

    pipit.signal("-HUP");
    let reloading = wait_for(&socket, "RELOADING=1", &pipit);
    let usec = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("{reloading:?}"));
    assert!(usec.parse::<u64>().is_ok_and(|u| u > 0), "{reloading:?}");
    assert_eq!(wait_for(&socket, "READY=1", &pipit), "READY=1");

    pipit.signal("-TERM");
    let stopping = wait_for(&socket, "STOPPING=1", &pipit);
    assert_eq!(stopping, "STOPPING=1\nSTATUS=shutting down");
    assert!(pipit.wait_exit().success(), "{}", pipit.log());
}

#[test]
fn a_gone_service_manager_is_logged_once_and_does_not_stop_the_broker() {
    let dir = Scratch::new("notify-gone");
    let path = dir.path("gone.sock");
    let port = free_port();
    let addr = local(port);
    let conf = dir.write(
        "pipit.conf",
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    );
    let args = ["-c", conf.to_str().unwrap()];
    // A socket path nobody listens on: sends fail, are logged once, and the broker serves.
    let env = [("NOTIFY_SOCKET", path.to_str().unwrap())];
    let mut pipit = Pipit::spawn_with_env(&args, &dir.path("log"), &env);
    pipit.wait_listening(addr);
    Raw::connect(addr, "still-served", true).disconnect();
    pipit.wait_log("cannot notify the service manager");
    pipit.signal("-TERM");
    assert!(pipit.wait_exit().success(), "{}", pipit.log());
    let log = pipit.log();
    assert_eq!(
        log.matches("cannot notify").count(),
        1,
        "logged once:\n{log}"
    );
}
