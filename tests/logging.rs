//! The `pipit` binary's logging and its switch away from root, each compared with Debian's
//! Mosquitto where pipit claims to do as it does: `log_dest file` (the line format with and
//! without `log_timestamp` and `log_timestamp_format`, and logrotate's rename then SIGHUP),
//! `log_dest syslog` (datagrams on `/dev/log`, root only, when the host has no syslog
//! daemon of its own there), `log_dest topic` (`$SYS/broker/log/N` carries the connect line),
//! `RUST_LOG` over `log_type`, and `user` (root only: `/proc/PID/status` shows the switch, an
//! unknown user and a store the user cannot write refuse to start).

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Raw;
use mosquitto::{Kind, mosquitto_installed};
use support::{Scratch, free_port, run_pipit};

/// How long a line may take to reach a file, socket or subscriber.
const DEADLINE: Duration = Duration::from_secs(10);

/// Whether the tests run as root; prints a skip notice naming `what` if not.
fn root(what: &str) -> bool {
    // `id -u` rather than libc: the tests use no unsafe code.
    let out = std::process::Command::new("id").arg("-u").output();
    let is_root = out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        eprintln!("skipped ({what}): needs root");
    }
    is_root
}

/// Polls `path` until it contains `text`; its content.
fn wait_for(path: &Path, text: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let content = std::fs::read_to_string(path).unwrap_or_default();
        if content.contains(text) {
            return content;
        }
        assert!(
            Instant::now() < deadline,
            "{} lacks {text:?}:\n{content}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The brokers to compare: pipit, and Mosquitto if installed.
fn kinds() -> Vec<Kind> {
    let mut kinds = vec![Kind::Pipit];
    if mosquitto_installed("logging") {
        kinds.push(Kind::Mosquitto);
    }
    kinds
}

/// Whether `stamp` has the shape `shape`, where `9` stands for any digit.
fn shaped(stamp: &str, shape: &str) -> bool {
    stamp.len() == shape.len()
        && stamp.chars().zip(shape.chars()).all(|(c, s)| match s {
            '9' => c.is_ascii_digit(),
            s => c == s,
        })
}

#[test]
fn log_file_lines_start_as_mosquittos_do() {
    // (extra lines, the shape of every line's timestamp; None: no timestamp).
    let cases: [(&str, Option<&str>); 3] = [
        ("", Some("9999999999")),
        (
            "log_timestamp_format %Y-%m-%dT%H:%M:%S\n",
            Some("9999-99-99T99:99:99"),
        ),
        ("log_timestamp false\n", None),
    ];
    for kind in kinds() {
        for (extra, shape) in cases {
            let dir = Scratch::new("log-file");
            let file = dir.path("broker.log");
            // Mosquitto opens its log file after switching users: keep root for it.
            let body = format!(
                "allow_anonymous true\nuser root\nlog_dest file {}\n{extra}",
                file.display()
            );
            let peer = mosquitto::start(&dir, kind, &body);
            let addr = peer.addr;
            Raw::connect(addr, "file-client", true).disconnect();
            let log = wait_for(&file, "file-client");
            for line in log.lines() {
                match shape {
                    Some(shape) => {
                        let (stamp, text) = line.split_at(shape.len().min(line.len()));
                        assert!(
                            shaped(stamp, shape) && text.starts_with(": "),
                            "{kind:?} {extra:?}: {line:?}"
                        );
                    }
                    None => assert!(
                        !line.starts_with(|c: char| c.is_ascii_digit()),
                        "{kind:?} {extra:?}: {line:?}"
                    ),
                }
            }
            let connect = log.lines().find(|l| l.contains("file-client")).unwrap();
            assert!(
                connect.contains("connected from 127.0.0.1:"),
                "{kind:?}: {connect}"
            );
        }
    }
}

#[test]
fn pipit_opens_its_log_file_before_switching_users() {
    if !root("log file in a root-owned directory") {
        return;
    }
    let dir = Scratch::new("log-root-dir");
    let file = dir.path("broker.log");
    let body = format!("allow_anonymous true\nlog_dest file {}\n", file.display());
    let peer = mosquitto::start(&dir, Kind::Pipit, &body);
    let addr = peer.addr;
    Raw::connect(addr, "after-switch", true).disconnect();
    wait_for(&file, "after-switch");
}

#[test]
fn sighup_reopens_the_log_file_after_a_rename_and_keeps_it_when_it_cannot() {
    let dir = Scratch::new("logrotate");
    let file = dir.path("broker.log");
    // The scratch directory is root's: new files in it need root (logrotate's `create`
    // would make them for the broker's user).
    let body = format!(
        "allow_anonymous true\nuser root\nlog_dest file {}\n",
        file.display()
    );
    let peer = mosquitto::start(&dir, Kind::Pipit, &body);
    let (addr, pipit) = (peer.addr, peer.pipit().expect("pipit"));
    wait_for(&file, "listening on");
    let rotated = dir.path("broker.log.1");
    std::fs::rename(&file, &rotated).unwrap();
    pipit.signal("-HUP");
    wait_for(&file, "SIGHUP: reopened log file");
    Raw::connect(addr, "after-rotate", true).disconnect();
    wait_for(&file, "after-rotate");
    assert!(
        !std::fs::read_to_string(&rotated)
            .unwrap()
            .contains("after-rotate")
    );

    // A directory where the file was: the reopen fails, and the old file goes on.
    let second = dir.path("broker.log.2");
    std::fs::rename(&file, &second).unwrap();
    std::fs::create_dir(&file).unwrap();
    pipit.signal("-HUP");
    wait_for(&second, "still writing to the old log file");
    Raw::connect(addr, "after-failure", true).disconnect();
    wait_for(&second, "after-failure");
}

#[test]
fn topic_subscribers_receive_the_connect_line_on_n() {
    for kind in kinds() {
        let dir = Scratch::new("log-topic");
        let body = "allow_anonymous true\nuser root\nlog_dest topic\nlog_dest stderr\n";
        let peer = mosquitto::start(&dir, kind, body);
        let addr = peer.addr;
        let mut sub = Raw::connect(addr, "log-reader", true);
        sub.subscribe("$SYS/broker/log/#", 1);
        Raw::connect(addr, "logged-in", true).disconnect();
        let deadline = Instant::now() + DEADLINE;
        let publish = loop {
            let p = sub.recv_publish();
            if String::from_utf8_lossy(&p.payload).contains("logged-in") {
                break p;
            }
            assert!(Instant::now() < deadline, "{kind:?}: no connect line");
        };
        let text = String::from_utf8_lossy(&publish.payload).into_owned();
        assert_eq!(publish.topic, "$SYS/broker/log/N", "{kind:?}: {text}");
        assert!(!publish.retain, "{kind:?}");
        assert!(
            text.contains("connected from 127.0.0.1:"),
            "{kind:?}: {text}"
        );
        let (stamp, _) = text.split_once(": ").unwrap();
        assert!(
            stamp.chars().all(|c| c.is_ascii_digit()),
            "{kind:?}: {text}"
        );
        // Both publish log lines at QoS 2: a QoS 1 subscription gets them at QoS 1.
        assert_eq!(publish.qos, 1, "{kind:?}");
    }
}

#[test]
fn rust_log_overrides_log_type() {
    let dir = Scratch::new("rust-log");
    let port = free_port();
    let conf = dir.write(
        "pipit.conf",
        &format!("listener {port} 127.0.0.1\nlog_type error\n"),
    );
    let stderr = std::fs::File::create(dir.path("stderr")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pipit"))
        .args(["-c", conf.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stderr(stderr)
        .spawn()
        .unwrap();
    let log = wait_for(&dir.path("stderr"), "listening on");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        log.contains(&format!("listening on 127.0.0.1:{port}")),
        "{log}"
    );
}

#[test]
fn syslog_datagrams_on_dev_log_as_mosquittos() {
    if !root("log_dest syslog") {
        return;
    }
    let dev_log = Path::new("/dev/log");
    if dev_log.exists() {
        eprintln!("skipped (log_dest syslog): /dev/log belongs to this host's syslog daemon");
        return;
    }
    let daemon = UnixDatagram::bind(dev_log).unwrap();
    // Removes the socket however the test ends, so the next run does not skip.
    struct Remove<'a>(&'a Path);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    let remove = Remove(dev_log);
    daemon.set_read_timeout(Some(DEADLINE)).unwrap();
    let body = "allow_anonymous true\nuser root\nlog_dest syslog\nlog_facility 3\n";
    let mut received = Vec::new();
    for kind in kinds() {
        let dir = Scratch::new("syslog");
        let peer = mosquitto::start(&dir, kind, body);
        let addr = peer.addr;
        let client_id = format!("syslog-{kind:?}");
        Raw::connect(addr, &client_id, true).disconnect();
        let mut buf = vec![0u8; 4096];
        let line = loop {
            let n = daemon.recv(&mut buf).expect("a datagram on /dev/log");
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            if line.contains(&client_id) && line.contains(" connected from") {
                break line;
            }
        };
        drop(peer);
        received.push((kind, line));
    }
    drop(remove);
    for (kind, line) in &received {
        // local3 (19) * 8 + notice (5).
        let rest = line
            .strip_prefix("<157>")
            .unwrap_or_else(|| panic!("{kind:?}: {line}"));
        let (stamp, rest) = rest.split_at(15);
        assert!(shaped(&stamp[3..], " 99 99:99:99") || shaped(&stamp[3..], "  9 99:99:99"));
        let name = if *kind == Kind::Pipit {
            " pipit["
        } else {
            " mosquitto["
        };
        assert!(rest.starts_with(name), "{kind:?}: {line}");
        let (_, message) = rest.split_once("]: ").unwrap();
        let (epoch, _) = message.split_once(": ").unwrap();
        assert!(shaped(epoch, "9999999999"), "{kind:?}: {line}");
    }

    // No /dev/log: said once on stderr, and the broker serves.
    let dir = Scratch::new("syslog-absent");
    let body = "allow_anonymous true\nlog_dest syslog\nlog_dest stderr\n";
    let peer = mosquitto::start(&dir, Kind::Pipit, body);
    let addr = peer.addr;
    Raw::connect(addr, "one", true).disconnect();
    Raw::connect(addr, "two", true).disconnect();
    let log = wait_for(&dir.path("pipit.log"), "two");
    assert_eq!(log.matches("cannot send to /dev/log").count(), 1, "{log}");
}

/// The uid line of `/proc/PID/status`: real, effective, saved and file-system uids.
fn uids(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line["Uid:".len()..]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn user_nobody_switches_and_still_serves() {
    if !root("user nobody") {
        return;
    }
    let dir = Scratch::new("user-nobody");
    let peer = mosquitto::start(&dir, Kind::Pipit, "allow_anonymous true\nuser nobody\n");
    let (addr, pipit) = (peer.addr, peer.pipit().expect("pipit"));
    let mut c = Raw::connect(addr, "as-nobody", true);
    c.ping();
    assert_eq!(uids(pipit.child.id()), "65534 65534 65534 65534");
    assert!(
        pipit.log().contains("running as user nobody"),
        "{}",
        pipit.log()
    );
}

#[test]
fn an_unknown_user_refuses_to_start() {
    if !root("unknown user") {
        return;
    }
    let dir = Scratch::new("user-unknown");
    let conf = dir.write(
        "pipit.conf",
        &format!(
            "listener {} 127.0.0.1\nuser pipit-no-such-user\n",
            free_port()
        ),
    );
    let (status, log) = run_pipit(&["-c", conf.to_str().unwrap()], &dir.path("stderr"));
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(
            "unable to drop privileges to 'pipit-no-such-user' because this user does not exist"
        ),
        "{log}"
    );
}

#[test]
// A store on disk.
#[cfg(feature = "persistence")]
fn a_store_the_user_cannot_write_refuses_to_start_and_a_new_one_is_theirs() {
    if !root("store ownership") {
        return;
    }
    let dir = Scratch::new("user-store");
    // A store directory root made beforehand (0700): nobody could not add segments.
    let store = dir.path("store");
    std::fs::create_dir(&store).unwrap();
    let conf = dir.write(
        "pipit.conf",
        &format!(
            "listener {} 127.0.0.1\nuser nobody\npersistence true\n",
            free_port()
        ),
    );
    let (status, log) = run_pipit(
        &[
            "-c",
            conf.to_str().unwrap(),
            "--persistence-dir",
            store.to_str().unwrap(),
        ],
        &dir.path("stderr"),
    );
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "the store directory {} is not writable by user nobody",
            store.display()
        )),
        "{log}"
    );

    // A store directory pipit makes itself is handed to the user it runs as.
    let fresh = dir.path("fresh");
    let port = free_port();
    let conf = dir.write(
        "fresh.conf",
        &format!("listener {port} 127.0.0.1\nuser nobody\nallow_anonymous true\n"),
    );
    let args = [
        "-c",
        conf.to_str().unwrap(),
        "--persistence-dir",
        fresh.to_str().unwrap(),
    ];
    let mut pipit = support::Pipit::spawn(&args, &dir.path("fresh.stderr"));
    pipit.wait_listening(support::local(port));
    let mut c = Raw::connect(support::local(port), "stored", false);
    c.ping();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&fresh).unwrap().uid(), 65534);
}
