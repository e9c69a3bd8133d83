//! The built binary with `-c FILE`: every supported option starts a working broker, errors
//! exit non-zero naming `FILE:LINE` and the option, known-but-unsupported options warn,
//! `include_dir`, anonymous access on non-loopback and per-listener settings; and the
//! command-line flags `--help`, `--version`, `--bind`, `--port`.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;

use common::{Connect, Raw, connack_code, publish};
use mosquitto::{Kind, mosquitto_installed};
use support::{
    ACCEPTED, BAD_USERNAME_OR_PASSWORD, NOT_AUTHORIZED, Pipit, SUBACK_FAILURE, Scratch,
    alice_password_file, free_port, local, pipit_stdout, run_pipit,
};

fn alice(client_id: &str) -> Connect {
    Connect::v311(client_id).login("alice", b"secret")
}

/// Runs `pipit -c CONFIG`, which must fail: its stderr.
fn failing_config(dir: &Scratch, config: &Path) -> String {
    let args = ["-c", config.to_str().unwrap()];
    let (status, log) = run_pipit(&args, &dir.path("pipit.log"));
    assert!(!status.success(), "pipit accepted a bad config:\n{log}");
    log
}

/// Starts `pipit -c CONFIG` and waits for `addr`.
fn serving(dir: &Scratch, config: &Path, addr: SocketAddr) -> Pipit {
    Pipit::with_config(config, addr, &dir.path("pipit.log"))
}

/// Every option the parser implements, except the TLS ones (`certfile`, `keyfile`, `cafile`,
/// `capath`, `require_certificate`, `use_identity_as_username`, `tls_version`), which need
/// PEM files and are covered by the TLS tests.
#[test]
fn every_supported_option_starts_a_working_broker() {
    let dir = Scratch::new("conf-all");
    let pw = alice_password_file(&dir);
    let acl = dir.write(
        "acl",
        "topic readwrite pipit/#\nuser alice\ntopic readwrite pipit/#\n",
    );
    let (main_port, second_port) = (free_port(), free_port());
    let text = format!(
        "\
# Every supported option.
per_listener_settings false
allow_anonymous true
password_file {pw}
acl_file {acl}
max_connections 100
max_inflight_messages 5
max_queued_messages 200
max_queued_bytes 1048576
queue_qos0_messages true
message_size_limit 1024
max_packet_size 131072
max_keepalive 120
persistent_client_expiration 2d
retain_available false
sys_interval 0
allow_zero_length_clientid false
clientid_prefixes pipit-
connection_messages true
persistence false
persistence_location {dir}/
persistence_file pipit.db
autosave_interval 60
log_type warning
log_type information
log_dest stderr

# The default listener.
bind_address 127.0.0.1
port {main_port}
protocol mqtt
max_topic_alias 3

listener {second_port} 127.0.0.1
protocol mqtt
max_connections 5
max_topic_alias 5
",
        pw = pw.display(),
        acl = acl.display(),
        dir = dir.dir.display(),
    );
    let config = dir.write("pipit.conf", &text);
    let mut pipit = serving(&dir, &config, local(main_port));
    let (main, second) = (local(main_port), local(second_port));
    pipit.wait_listening(second);

    // Warnings about the file are logged before the listeners open: only the options
    // parsed but not acted on yet are warned about, each with its line.
    let log = pipit.log();
    let warned: Vec<&str> = log.lines().filter(|l| l.contains("Warning: ")).collect();
    let file = config.display();
    assert!(warned.is_empty(), "{file}: unexpected warnings: {log}");

    // Both listeners serve MQTT and share one broker.
    let mut sub = Raw::connect(second, "pipit-sub", true);
    assert_eq!(sub.subscribe("pipit/#", 0), 0);
    // The ACL is loaded: other topics are refused.
    assert_eq!(sub.subscribe("other/#", 0), SUBACK_FAILURE);
    let mut publisher = Raw::connect_with(main, &alice("pipit-pub"));
    // message_size_limit 1024: a larger payload is dropped, a smaller one delivered.
    publisher.send(&publish("pipit/big", &[0; 2000], 0, false, 0));
    publisher.send(&publish("pipit/small", b"ok", 0, false, 0));
    let got = sub.recv_publish();
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("pipit/small", &b"ok"[..])
    );
    // The password file is loaded.
    let wrong = Connect::v311("pipit-x").login("alice", b"wrong");
    assert_eq!(connack_code(main, &wrong), BAD_USERNAME_OR_PASSWORD);
}

#[test]
fn a_typo_exits_naming_file_line_and_option() {
    let dir = Scratch::new("conf-typo");
    let config = dir.write(
        "pipit.conf",
        "# pipit\n\nallow_anonymous true\n    # indented comment\nmax_conections 10\n",
    );
    let log = failing_config(&dir, &config);
    let at = format!("{}:5:", config.display());
    assert!(log.contains(&at), "expected {at}:\n{log}");
    assert!(log.contains("max_conections"), "{log}");
}

#[test]
fn a_bad_value_exits_naming_file_line_option_and_value() {
    let dir = Scratch::new("conf-bad-value");
    let config = dir.write(
        "pipit.conf",
        "listener 1883 127.0.0.1\n\nmax_inflight_messages lots\n",
    );
    let log = failing_config(&dir, &config);
    let at = format!("{}:3:", config.display());
    assert!(log.contains(&at), "expected {at}:\n{log}");
    assert!(log.contains("max_inflight_messages"), "{log}");
    assert!(log.contains("lots"), "{log}");
}

#[test]
fn a_missing_config_file_exits_naming_it() {
    let dir = Scratch::new("conf-missing");
    let config = dir.path("absent.conf");
    let log = failing_config(&dir, &config);
    assert!(log.contains(&config.display().to_string()), "{log}");
}

#[test]
fn a_bad_acl_file_exits_naming_its_line() {
    let dir = Scratch::new("conf-bad-acl");
    let acl = dir.write("acl", "topic read ok/#\n# comment\ntopic read a/#/b\n");
    let port = free_port();
    let config = dir.write(
        "pipit.conf",
        &format!("listener {port} 127.0.0.1\nacl_file {}\n", acl.display()),
    );
    let log = failing_config(&dir, &config);
    let at = format!("{}:3:", acl.display());
    assert!(log.contains(&at), "expected {at}:\n{log}");
}

#[test]
fn a_bad_password_file_exits_naming_its_line() {
    let dir = Scratch::new("conf-bad-pw");
    let pw = dir.write("passwd", "# users\nalice:plaintext\n");
    let port = free_port();
    let config = dir.write(
        "pipit.conf",
        &format!(
            "listener {port} 127.0.0.1\npassword_file {}\n",
            pw.display()
        ),
    );
    let log = failing_config(&dir, &config);
    let at = format!("{}:2:", pw.display());
    assert!(log.contains(&at), "expected {at}:\n{log}");
}

#[test]
// Its file has a `connection` block.
#[cfg(feature = "bridge")]
fn unsupported_options_warn_and_the_broker_starts() {
    let dir = Scratch::new("conf-unsupported");
    let port = free_port();
    let nobody = free_port();
    let text = format!(
        "\
listener {port} 127.0.0.1
set_tcp_nodelay true
allow_anonymous true

connection bridge1
address 127.0.0.1:{nobody}
topic sensors/# out 1
"
    );
    let config = dir.write("pipit.conf", &text);
    let pipit = serving(&dir, &config, local(port));
    assert_eq!(connack_code(local(port), &Connect::v311("c")), ACCEPTED);
    let log = pipit.log();
    let file = config.display();
    assert!(log.contains(&format!("{file}:2: set_tcp_nodelay")), "{log}");
    // A bridge is built now (tests/bridge.rs): no warning, and it tries its address.
    assert!(!log.contains(&format!("{file}:5:")), "{log}");
    let connecting = format!("bridge bridge1: connecting to 127.0.0.1:{nobody}");
    assert!(log.contains(&connecting), "{log}");
}

/// Issue 13, rows 1 and 2: lines as real files write them, with trailing comments, and
/// options Mosquitto 2.0 still accepts (deprecated or gone) that pipit refused as unknown.
/// Both pipit and Mosquitto 2.0.11 start on the same file and serve a QoS 1 round trip
/// across both listeners, one of them opened by a `listener` line ending in a comment.
#[test]
fn trailing_comments_and_deprecated_options_start_pipit_and_mosquitto() {
    let dir = Scratch::new("conf-mosquitto-lines");
    for kind in [Kind::Pipit, Kind::Mosquitto] {
        if kind == Kind::Mosquitto && !mosquitto_installed("trailing comments") {
            continue;
        }
        let port = free_port();
        let body = format!(
            "\
allow_anonymous true # comment
max_inflight_messages 20  # x
max_queued_messages 100 # per client
persistent_client_expiration 1d # one day
allow_duplicate_messages false # deprecated in 2.0
retry_interval 20 # gone in 2.0
retained_persistence false # persistence's other name
sys_interval 10 # seconds
connection_messages true # log them
queue_qos0_messages 0 # a flag as a digit
retain_available 1
log_type error # errors only
listener {port} 127.0.0.1 # MQTT
protocol mqtt # plain TCP
max_connections 10 # this listener
"
        );
        let peer = mosquitto::start(&dir, kind, &body);
        if let Some(pipit) = peer.pipit() {
            let log = pipit.log();
            assert!(!log.contains("Warning: "), "unexpected warnings:\n{log}");
        }
        let mut sub = Raw::connect(local(port), "comments-sub", true);
        assert_eq!(sub.subscribe("comments/#", 1), 1, "{kind:?}");
        let mut publisher = Raw::connect(peer.addr, "comments-pub", true);
        publisher.send(&publish("comments/a", b"hello", 1, false, 1));
        let got = sub.recv_publish();
        assert_eq!(
            (got.topic.as_str(), &got.payload[..]),
            ("comments/a", &b"hello"[..]),
            "{kind:?}"
        );
    }
}

/// A path is the whole rest of its line, trailing comment included: a file named so does not
/// exist, and pipit, like Mosquitto 2.0.11, refuses to start.
#[test]
fn a_comment_after_a_path_is_part_of_the_path() {
    let dir = Scratch::new("conf-path-comment");
    let pw = alice_password_file(&dir);
    let body = |port: u16| {
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {} # users\nuser root\n",
            pw.display()
        )
    };
    let conf = dir.write("pipit.conf", &body(free_port()));
    let (status, log) = run_pipit(&["-c", conf.to_str().unwrap()], &dir.path("pipit.log"));
    assert!(!status.success(), "pipit refuses: {log}");
    assert!(log.contains("# users"), "the path names the comment: {log}");
    if mosquitto_installed("a comment after a path") {
        let conf = dir.write("mosquitto.conf", &body(free_port()));
        let mut child = std::process::Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(
            status.is_some_and(|s| !s.success()),
            "Mosquitto refuses too: {status:?}"
        );
    }
}

/// `pid_file`: the process id is written at start and the file removed at a clean exit; a
/// file that cannot be written stops start-up. Mosquitto 2.0.11 does the same. `user root`:
/// the scratch directory is root's, so only root may remove the file from it.
#[test]
fn pid_file_is_written_at_start_and_removed_at_exit() {
    let dir = Scratch::new("conf-pid-file");
    let pid_path = dir.path("broker.pid");
    let port = free_port();
    let conf = dir.write(
        "pipit.conf",
        &format!(
            "listener {port} 127.0.0.1\nuser root\npid_file {}\n",
            pid_path.display()
        ),
    );
    let mut pipit = Pipit::with_config(&conf, local(port), &dir.path("pipit.log"));
    // The listener accepts from the moment it is bound, just before the pid file is
    // written: wait for the file, boundedly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !pid_path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let written = std::fs::read_to_string(&pid_path).expect("the pid file is written");
    assert_eq!(written.trim(), pipit.child.id().to_string());
    pipit.signal("-TERM");
    assert!(pipit.wait_exit().success(), "{}", pipit.log());
    assert!(!pid_path.exists(), "removed at a clean exit");

    let bad = dir.write(
        "bad.conf",
        &format!(
            "listener {} 127.0.0.1\npid_file /nonexistent/dir/pipit.pid\n",
            free_port()
        ),
    );
    let (status, log) = run_pipit(&["-c", bad.to_str().unwrap()], &dir.path("bad.log"));
    assert!(!status.success(), "an unwritable pid file stops start-up");
    assert!(log.contains("pid file"), "{log}");

    if mosquitto_installed("pid_file") {
        let mosquitto_pid = dir.path("mosquitto.pid");
        let body = format!("pid_file {}\nuser root\n", mosquitto_pid.display());
        let mut m = mosquitto::Mosquitto::with_config(&body);
        let written = std::fs::read_to_string(&mosquitto_pid).expect("Mosquitto's pid file");
        assert_eq!(written.trim(), m.pid().to_string());
        assert!(m.terminate().success(), "{}", m.log());
        assert!(!mosquitto_pid.exists(), "Mosquitto removes it too");
        let bad = dir.write(
            "m-bad.conf",
            &format!(
                "listener {} 127.0.0.1\npid_file /nonexistent/dir/m.pid\nuser root\n",
                free_port()
            ),
        );
        let status = std::process::Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&bad)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run mosquitto");
        assert!(!status.success(), "Mosquitto refuses to start too");
    }
}

/// `listener PORT` without an address serves IPv4 and IPv6 clients both, in pipit as in
/// Mosquitto; with `127.0.0.1`, IPv4 alone.
#[test]
fn a_listener_without_an_address_serves_ipv4_and_ipv6() {
    let dir = Scratch::new("conf-dual-stack");
    for kind in [Kind::Pipit, Kind::Mosquitto] {
        if kind == Kind::Mosquitto && !mosquitto_installed("dual-stack listeners") {
            continue;
        }
        let port = free_port();
        let body = format!("allow_anonymous true\nlistener {port}\n");
        let mut peer = mosquitto::start(&dir, kind, &body);
        let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        peer.wait_listening(v6);
        let connect_v6 = std::panic::AssertUnwindSafe(|| Raw::connect(v6, "dual-sub", true));
        let mut sub = std::panic::catch_unwind(connect_v6)
            .unwrap_or_else(|_| panic!("{kind:?} over IPv6, the broker's log:\n{}", peer.log()));
        assert_eq!(sub.subscribe("dual/#", 1), 1, "{kind:?} over IPv6");
        let mut publisher = Raw::connect(local(port), "dual-pub", true);
        publisher.send(&publish("dual/a", b"both", 1, false, 1));
        let got = sub.recv_publish();
        assert_eq!(&got.payload[..], b"both", "{kind:?}");
        // The loopback listener every peer starts with is IPv4 only.
        let loopback_v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, peer.addr.port()));
        assert!(
            std::net::TcpStream::connect(loopback_v6).is_err(),
            "{kind:?}: 127.0.0.1 is not ::1"
        );
    }
}

#[test]
fn socket_domain_keeps_an_addressless_listener_to_one_family() {
    let dir = Scratch::new("conf-socket-domain");
    for kind in [Kind::Pipit, Kind::Mosquitto] {
        if kind == Kind::Mosquitto && !mosquitto_installed("socket_domain") {
            continue;
        }
        let (v4_port, v6_port) = (free_port(), free_port());
        let body = format!(
            "allow_anonymous true\nlistener {v4_port}\nsocket_domain ipv4 # v4 only\n\
             listener {v6_port}\nsocket_domain ipv6\n"
        );
        let mut peer = mosquitto::start(&dir, kind, &body);
        let v6 = |port| SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        peer.wait_listening(local(v4_port));
        peer.wait_listening(v6(v6_port));
        Raw::connect(local(v4_port), "domain-v4", true).disconnect();
        Raw::connect(v6(v6_port), "domain-v6", true).disconnect();
        assert!(
            std::net::TcpStream::connect(v6(v4_port)).is_err(),
            "{kind:?}: ipv4 listener took IPv6"
        );
        assert!(
            std::net::TcpStream::connect(local(v6_port)).is_err(),
            "{kind:?}: ipv6 listener took IPv4"
        );
    }
}

#[test]
fn include_dir_reads_its_conf_files() {
    let dir = Scratch::new("conf-include");
    let pw = alice_password_file(&dir);
    let conf_d = dir.path("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    let port = free_port();
    std::fs::write(
        conf_d.join("10-listener.conf"),
        format!("listener {port} 127.0.0.1\n"),
    )
    .unwrap();
    std::fs::write(
        conf_d.join("20-security.conf"),
        format!("allow_anonymous false\npassword_file {}\n", pw.display()),
    )
    .unwrap();
    std::fs::write(conf_d.join("README.txt"), "not a config file\n").unwrap();
    let config = dir.write(
        "pipit.conf",
        &format!("# main\ninclude_dir {}\n", conf_d.display()),
    );
    let _pipit = serving(&dir, &config, local(port));
    let addr = local(port);
    assert_eq!(connack_code(addr, &Connect::v311("anon")), NOT_AUTHORIZED);
    assert_eq!(connack_code(addr, &alice("a")), ACCEPTED);
}

#[test]
fn include_dir_errors_name_the_included_file() {
    let dir = Scratch::new("conf-include-bad");
    let conf_d = dir.path("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    let bad = conf_d.join("50-bad.conf");
    std::fs::write(&bad, "# included\nretain_available maybe\n").unwrap();
    let config = dir.write("pipit.conf", &format!("include_dir {}\n", conf_d.display()));
    let log = failing_config(&dir, &config);
    let at = format!("{}:2:", bad.display());
    assert!(
        log.contains(&at) && log.contains("retain_available"),
        "{log}"
    );
}

#[test]
fn non_loopback_listener_refuses_anonymous_by_default() {
    let dir = Scratch::new("conf-non-loopback");
    let port = free_port();
    let config = dir.write("pipit.conf", &format!("listener {port} 0.0.0.0\n"));
    let pipit = serving(&dir, &config, local(port));
    assert_eq!(
        connack_code(local(port), &Connect::v311("anon")),
        NOT_AUTHORIZED
    );
    drop(pipit);

    // Saying allow_anonymous true opens it again.
    let port = free_port();
    let config = dir.write(
        "open.conf",
        &format!("listener {port} 0.0.0.0\nallow_anonymous true\n"),
    );
    let _pipit = serving(&dir, &config, local(port));
    assert_eq!(connack_code(local(port), &Connect::v311("anon")), ACCEPTED);
}

#[test]
fn a_listener_of_the_files_own_refuses_anonymous_by_default_as_mosquitto() {
    // Mosquitto 2.0 allows anonymous clients by default only in its "local only" mode (a
    // file without listener, port or bind_address); a loopback listener is no exception.
    let dir = Scratch::new("conf-loopback");
    for kind in [Kind::Pipit, Kind::Mosquitto] {
        if kind == Kind::Mosquitto && !mosquitto_installed("anonymous default") {
            continue;
        }
        let peer = mosquitto::start(&dir, kind, "");
        let code = connack_code(peer.addr, &Connect::v311("anon"));
        assert_eq!(code, NOT_AUTHORIZED, "{kind:?}");
        let peer = mosquitto::start(&dir, kind, "allow_anonymous true\n");
        let code = connack_code(peer.addr, &Connect::v311("anon"));
        assert_eq!(code, ACCEPTED, "{kind:?}");
    }
}

#[test]
fn per_listener_settings_give_each_listener_its_own_security() {
    let dir = Scratch::new("conf-per-listener");
    let pw = alice_password_file(&dir);
    let acl = dir.write("acl", "user alice\ntopic read public/#\n");
    let (open_port, closed_port) = (free_port(), free_port());
    let text = format!(
        "\
per_listener_settings true

listener {open_port} 0.0.0.0
allow_anonymous true

listener {closed_port} 0.0.0.0
password_file {pw}
acl_file {acl}
",
        pw = pw.display(),
        acl = acl.display()
    );
    let config = dir.write("pipit.conf", &text);
    let mut pipit = serving(&dir, &config, local(open_port));
    let (open, closed) = (local(open_port), local(closed_port));
    pipit.wait_listening(closed);

    assert_eq!(connack_code(open, &Connect::v311("anon-1")), ACCEPTED);
    assert_eq!(
        connack_code(closed, &Connect::v311("anon-2")),
        NOT_AUTHORIZED
    );
    let wrong = Connect::v311("a").login("alice", b"wrong");
    assert_eq!(connack_code(closed, &wrong), BAD_USERNAME_OR_PASSWORD);

    // The ACL binds only the second listener's clients.
    let mut anon = Raw::connect(open, "anon-3", true);
    assert_eq!(anon.subscribe("#", 0), 0);
    let mut alice = Raw::connect_with(closed, &alice("alice-1"));
    assert_eq!(alice.subscribe("#", 0), SUBACK_FAILURE);
    assert_eq!(alice.subscribe("public/#", 0), 0);
    anon.send(&publish("public/news", b"hi", 0, false, 0));
    let got = alice.recv_publish();
    assert_eq!(got.topic, "public/news");
}

#[test]
fn help_lists_every_flag() {
    let (status, out) = pipit_stdout(&["--help"]);
    assert!(status.success());
    for flag in [
        "--port",
        "--bind",
        "--config",
        "--verbose",
        "--max-keepalive",
        "--version",
        "--help",
        "passwd",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}:\n{out}");
    }
}

#[test]
fn max_keepalive_flag_is_range_checked_like_the_option() {
    // 0 would turn keepalive checking off for every MQTT 5 client.
    for value in ["0", "9"] {
        let (status, _) = pipit_stdout(&["--port", "0", "--max-keepalive", value]);
        assert_eq!(status.code(), Some(2), "--max-keepalive {value}");
    }
}

#[test]
fn version_prints_the_crate_version() {
    let expected = format!("pipit {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        let (status, out) = pipit_stdout(&[flag]);
        assert!(status.success());
        assert_eq!(out, expected);
    }
}

#[test]
fn bind_ipv6_loopback() {
    let port = match TcpListener::bind("[::1]:0") {
        Ok(probe) => probe.local_addr().unwrap().port(),
        Err(e) => {
            eprintln!("skipped: no IPv6 loopback ({e})");
            return;
        }
    };
    let dir = Scratch::new("flags-ipv6");
    let addr: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    let args = ["--bind", "::1", "--port", &port.to_string()];
    let mut pipit = Pipit::spawn(&args, &dir.path("pipit.log"));
    pipit.wait_listening(addr);
    assert_eq!(connack_code(addr, &Connect::v311("v6")), ACCEPTED);
    assert!(
        pipit.log().contains(&format!("[::1]:{port}")),
        "{}",
        pipit.log()
    );
}

#[test]
fn config_file_with_port_flag_listens_on_the_flag() {
    let dir = Scratch::new("conf-and-port");
    let pw = alice_password_file(&dir);
    let config = dir.write(
        "pipit.conf",
        &format!(
            "listener 1 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            pw.display()
        ),
    );
    let port = free_port();
    let args = ["-c", config.to_str().unwrap(), "--port", &port.to_string()];
    let mut pipit = Pipit::spawn(&args, &dir.path("pipit.log"));
    pipit.wait_listening(local(port));
    // The file's security settings still apply on the flag's listener.
    assert_eq!(
        connack_code(local(port), &Connect::v311("anon")),
        NOT_AUTHORIZED
    );
    assert_eq!(connack_code(local(port), &alice("a")), ACCEPTED);
}

#[test]
fn max_keepalive_flag_bounds_client_keepalives() {
    let dir = Scratch::new("flags-keepalive");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let args = ["--port", &port.to_string(), "--max-keepalive", "30"];
    let mut pipit = Pipit::spawn(&args, &dir.path("pipit.log"));
    pipit.wait_listening(addr);
    assert_eq!(
        connack_code(addr, &Connect::v311("within").keep_alive(30)),
        ACCEPTED
    );
    assert_eq!(
        connack_code(addr, &Connect::v311("over").keep_alive(31)),
        0x02
    );
}
