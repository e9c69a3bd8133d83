//! Security regressions (issue 10): a will cannot bypass the ACL; a client id does not hand
//! one user's session to another; SIGHUP disconnects users whose credentials were revoked
//! and re-checks wills and queued messages; options that would restrict access and are not
//! implemented stop start-up; clients cannot publish to `$SYS`. Where pipit behaves as
//! Mosquitto, the scenario also runs against Mosquitto 2.0.11 (`common/mosquitto.rs`).

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::{
    Connect, Props, Raw, ack, connack_code, disconnect_v5, publish, publish_v5, start_with,
};
use mosquitto::{Kind, Peer, pipit_and_mosquitto};
use support::{BAD_USERNAME_OR_PASSWORD, Scratch, alice_password_file, passwd, run_pipit};

/// v5 reason code: not authorized.
const NOT_AUTHORIZED_V5: u8 = 0x87;

/// A password file with alice/secret, bob/b0b and carol/c4rol.
fn password_file(dir: &Scratch) -> PathBuf {
    let pw = alice_password_file(dir);
    let path = pw.to_str().expect("utf-8 scratch path");
    passwd(&["-b", path, "bob", "b0b"]);
    passwd(&["-b", path, "carol", "c4rol"]);
    // Mosquitto started as root reads it after dropping to its own user.
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod password file");
    pw
}

/// `path` as the `&str` command lines take.
fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 scratch path")
}

/// The password each test user has in `password_file`.
fn password(user: &str) -> &'static [u8] {
    match user {
        "alice" => b"secret",
        "bob" => b"b0b",
        _ => b"c4rol",
    }
}

/// A CONNECT at protocol `level` (4 or 5) as `user` (`None`: anonymous); MQTT 5 sessions
/// are kept for an hour after the connection, like a 3.1.1 persistent session.
fn connect(level: u8, client_id: &str, user: Option<&str>) -> Connect {
    let mut connect = match level {
        5 => Connect::v5(client_id, Props::new().u32(0x11, 3600)),
        _ => Connect::v311(client_id),
    };
    if let Some(user) = user {
        connect = connect.login(user, password(user));
    }
    connect
}

/// Connects and returns the connection, whether a session was present, and the CONNACK
/// code (3.1.1 return code or MQTT 5 reason code: both are the second byte).
fn try_connect(addr: SocketAddr, connect: &Connect) -> (Raw, bool, u8) {
    let mut c = Raw::open(addr);
    c.send(&connect.bytes());
    let ack = c.recv().expect("no CONNACK");
    assert_eq!(ack.kind(), 2, "expected CONNACK, got {ack:?}");
    (c, ack.body[0] & 1 == 1, ack.body[1])
}

/// Connects, expects success, and returns the connection and the session present flag.
fn connected(addr: SocketAddr, connect: &Connect) -> (Raw, bool) {
    let (c, present, code) = try_connect(addr, connect);
    assert_eq!(code, 0, "CONNACK refused with {code:#04x}");
    (c, present)
}

/// A SUBSCRIBE at QoS 1 in the connection's protocol level; waits for the SUBACK.
fn subscribe(c: &mut Raw, level: u8, filter: &str) {
    match level {
        5 => assert_eq!(c.subscribe_v5(Props::new(), &[(filter, 1)]), [1]),
        _ => assert_eq!(c.subscribe(filter, 1), 1),
    }
}

/// The payload of the next PUBLISH, parsed for the connection's protocol level.
fn recv_payload(c: &mut Raw, level: u8) -> Vec<u8> {
    match level {
        5 => c.recv_publish5().payload,
        _ => c.recv_publish().payload,
    }
}

/// A normal DISCONNECT in the connection's protocol level.
fn disconnect(mut c: Raw, level: u8) {
    match level {
        5 => c.send(&disconnect_v5(0, Props::new())),
        _ => c.send(&[0xe0, 0x00]),
    }
    c.expect_closed();
}

/// A password file, and an ACL: anonymous clients may only read `public/#`; alice and bob
/// each own a subtree and share `shared/#`.
fn acl_setup(dir: &Scratch) -> String {
    let acl = dir.write(
        "acl",
        "topic read public/#\n\
         user alice\ntopic readwrite alice/#\ntopic readwrite shared/#\n\
         user bob\ntopic readwrite bob/#\ntopic readwrite shared/#\n",
    );
    format!(
        "allow_anonymous true\npassword_file {}\nacl_file {}\n",
        password_file(dir).display(),
        acl.display()
    )
}

// --- Configuration --------------------------------------------------------------------

/// Options that would restrict who may connect, what they may do, or how the connection is
/// protected, and that pipit does not implement, stop start-up with the file, the line and
/// what to do instead.
#[test]
fn unimplemented_security_options_refuse_to_start() {
    let dir = Scratch::new("refuse");
    let cases = [
        ("psk_hint pipit", "certfile"),
        ("psk_file /etc/mosquitto/psk", "certfile"),
        (
            "plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
            "password_file",
        ),
        (
            "global_plugin /usr/lib/mosquitto_dynamic_security.so",
            "acl_file",
        ),
        ("auth_plugin /usr/lib/auth.so", "password_file"),
        ("crlfile /etc/ca/crl.pem", "revoked"),
        ("bind_interface eth0", "listener PORT ADDRESS"),
        ("mount_point tenant/", "acl_file"),
        ("use_subject_as_username true", "use_identity_as_username"),
        ("use_username_as_clientid true", "%u"),
        ("ciphers ECDHE-ECDSA-AES256-GCM-SHA384", "remove"),
        ("ciphers_tls1.3 TLS_AES_256_GCM_SHA384", "remove"),
        ("check_retain_source true", "false"),
    ];
    for (n, (line, hint)) in cases.into_iter().enumerate() {
        let conf = dir.write(
            &format!("{n}.conf"),
            &format!("listener {} 127.0.0.1\n{line}\n", support::free_port()),
        );
        let (status, log) = run_pipit(&["-c", path_str(&conf)], &dir.path(&format!("{n}.log")));
        assert_eq!(status.code(), Some(2), "{line}: {log}");
        let at = format!("{}:2: ", conf.display());
        assert!(log.contains(&at) && log.contains(hint), "{line}: {log}");
    }
    // What pipit already does is accepted.
    let port = support::free_port();
    let quiet = dir.write(
        "quiet.conf",
        &format!(
            "listener {port} 127.0.0.1\nuse_subject_as_username false\n\
             use_username_as_clientid false\ncheck_retain_source false\n"
        ),
    );
    drop(support::Pipit::with_config(
        &quiet,
        support::local(port),
        &dir.path("quiet.log"),
    ));
}
