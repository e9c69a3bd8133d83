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

// --- Wills ----------------------------------------------------------------------------

/// A will on a topic the client may not write is dropped and the CONNECT accepted, as
/// Mosquitto 2.0.11 does; a will the ACL allows is still published.
#[test]
fn a_will_on_a_denied_topic_is_dropped() {
    let dir = Scratch::new("will-acl");
    let body = acl_setup(&dir);
    for peer in pipit_and_mosquitto(&dir, &body) {
        let addr = peer.addr;
        let (mut watcher, _) = connected(addr, &connect(4, "watcher", Some("alice")));
        subscribe(&mut watcher, 4, "alice/#");
        subscribe(&mut watcher, 4, "shared/#");
        // (protocol level, user, will topic, retain): none of them may write the topic.
        let denied = [
            (4, None, "alice/anonymous", true),
            (5, None, "alice/anonymous-5", true),
            (4, Some("bob"), "alice/bob", false),
            (5, Some("bob"), "alice/bob-5", true),
        ];
        for (n, (level, user, topic, retain)) in denied.into_iter().enumerate() {
            let will = connect(level, &format!("willer-{n}"), user).will(topic, b"w", 1, retain);
            let (c, present, code) = try_connect(addr, &will);
            assert_eq!((present, code), (false, 0), "{:?}: {topic}", peer.kind);
            drop(c); // closed without DISCONNECT: the will is due
        }
        let allowed = connect(4, "willer-ok", Some("bob")).will("shared/bob", b"ok", 1, false);
        drop(connected(addr, &allowed));
        let got = watcher.recv_publish();
        assert_eq!(
            (got.topic.as_str(), got.payload.as_slice()),
            ("shared/bob", &b"ok"[..]),
            "{:?}: only the allowed will is published",
            peer.kind
        );
        watcher.expect_silence(300);
        // Nothing was retained either.
        let (mut late, _) = connected(addr, &connect(4, "late", Some("alice")));
        subscribe(&mut late, 4, "alice/#");
        late.expect_silence(300);
    }
}

// --- $SYS ------------------------------------------------------------------------------

/// Clients cannot publish to `$SYS` (nor any topic starting `$SYS`), whatever the ACL grants:
/// the message is dropped, v5 says 0x87, as Mosquitto does. Mosquitto's one exception, a
/// bridge's `$SYS/broker/connection/NAME/state`, is allowed.
#[test]
fn clients_cannot_publish_to_sys() {
    let dir = Scratch::new("sys");
    let grants = "topic readwrite #\ntopic readwrite $SYS/#\ntopic readwrite $SYSTEM/#\n";
    let acl = dir.write("acl", grants);
    let body = format!(
        "allow_anonymous true\nacl_file {}\nsys_interval 0\n",
        acl.display()
    );
    for peer in pipit_and_mosquitto(&dir, &body) {
        let addr = peer.addr;
        let kind = peer.kind;
        let (mut watcher, _) = connected(addr, &connect(4, "watcher", None));
        for filter in ["$SYS/planted/#", "$SYSTEM/#", "$SYS/broker/connection/#"] {
            subscribe(&mut watcher, 4, filter);
        }
        let (mut v3, _) = connected(addr, &connect(4, "planter-3", None));
        v3.send(&publish("$SYS/planted/0", b"x", 0, false, 0));
        v3.publish_acked("$SYS/broker/version", b"planted", true, 1);
        v3.send(&publish("$SYS/planted/2", b"x", 2, true, 2));
        assert_eq!(v3.recv_kind(5).body, [0, 2], "{kind:?}: PUBREC");
        v3.send(&ack(0x62, 2));
        assert_eq!(v3.recv_kind(7).body, [0, 2], "{kind:?}: PUBCOMP");
        let (mut v5, _) = connected(addr, &connect(5, "planter-5", None));
        // (topic, QoS, reason code in the PUBACK or PUBREC)
        let cases = [
            ("$SYS/planted/1", 1, NOT_AUTHORIZED_V5),
            ("$SYS/planted/2", 2, NOT_AUTHORIZED_V5),
            ("$SYSTEM/x", 1, NOT_AUTHORIZED_V5),
            ("$SYS/broker/connection/bridge-1/state", 1, 0),
        ];
        for (n, (topic, qos, code)) in cases.into_iter().enumerate() {
            let packet_id = n as u16 + 1;
            v5.send(&publish_v5(topic, b"1", qos, true, packet_id, Props::new()));
            let reply = v5.recv_kind(if qos == 1 { 4 } else { 5 });
            assert_eq!(
                &reply.body[..2],
                packet_id.to_be_bytes(),
                "{kind:?}: {topic}"
            );
            let got = reply.body.get(2).copied().unwrap_or(0);
            assert_eq!(got, code, "{kind:?}: reason code for {topic}");
        }
        let got = watcher.recv_publish();
        assert_eq!(
            got.topic, "$SYS/broker/connection/bridge-1/state",
            "{kind:?}"
        );
        watcher.expect_silence(300);
        // The planted retained version was not stored.
        let (mut reader, _) = connected(addr, &connect(4, "reader", None));
        subscribe(&mut reader, 4, "$SYS/broker/version");
        // Mosquitto retains its own version; pipit with `sys_interval 0` publishes none.
        let short = Some(std::time::Duration::from_millis(300));
        reader.stream.set_read_timeout(short).expect("read timeout");
        if let Some(f) = reader.recv().filter(|f| f.kind() == 3) {
            let p = common::Publish::parse(&f);
            assert_ne!(p.payload, b"planted", "{kind:?}: planted version retained");
        }
    }
}

// --- Client ids and sessions ----------------------------------------------------------

/// A persistent session of `owner` on `client_id` subscribed to `topic`, holding one
/// message sent but not acknowledged and one queued.
fn leave_session(addr: SocketAddr, level: u8, client_id: &str, owner: Option<&str>, topic: &str) {
    let (mut c, _) = connected(addr, &connect(level, client_id, owner).clean(false));
    subscribe(&mut c, level, topic);
    let (mut publisher, _) = connected(addr, &connect(4, &format!("pub-{client_id}"), owner));
    publisher.publish_acked(topic, b"inflight", false, 1);
    let f = c.recv_kind(3);
    assert_eq!(f.header & 0x06, 0x02, "QoS 1 delivery to the owner");
    // No PUBACK: it stays in flight. Once the broker has closed the connection, the next
    // message is queued (a sleep here instead left that to the scheduler).
    disconnect(c, level);
    publisher.publish_acked(topic, b"queued", false, 2);
    disconnect(publisher, 4);
}

/// Another user, or an anonymous client, connecting with a client id whose persistent
/// session belongs to someone else starts a new session: none of the owner's in-flight or
/// queued messages, none of its subscriptions. The same owner resumes it.
#[test]
fn a_client_id_does_not_hand_over_another_users_session() {
    let dir = Scratch::new("takeover");
    let pw = password_file(&dir);
    let broker = start_with(|config| {
        config.allow_anonymous = true;
        config.password_file = Some(pw.clone());
    });
    // (protocol level, owner, next client, resumed)
    let cases = [
        (4, Some("alice"), Some("bob"), false),
        (4, Some("alice"), None, false),
        (4, None, Some("alice"), false),
        (5, Some("alice"), Some("bob"), false),
        (5, Some("alice"), None, false),
        (4, Some("alice"), Some("alice"), true),
        (5, None, None, true),
    ];
    for (n, (level, owner, next, resumed)) in cases.into_iter().enumerate() {
        let case = format!("v{level} {owner:?} then {next:?}");
        let client_id = format!("device-{n}");
        let topic = format!("inbox/{n}");
        leave_session(broker.addr, level, &client_id, owner, &topic);
        let (mut c, present) =
            connected(broker.addr, &connect(level, &client_id, next).clean(false));
        assert_eq!(present, resumed, "{case}: session present");
        let mut got = Vec::new();
        if resumed {
            for _ in 0..2 {
                got.push(recv_payload(&mut c, level));
            }
        }
        c.expect_silence(300);
        assert_eq!(got.len(), if resumed { 2 } else { 0 }, "{case}: {got:?}");
        // The owner's subscription did not come along either.
        let (mut publisher, _) = connected(broker.addr, &connect(4, "late-pub", owner));
        publisher.publish_acked(&topic, b"later", false, 3);
        match resumed {
            true => assert_eq!(recv_payload(&mut c, level), b"later", "{case}"),
            false => c.expect_silence(300),
        }
        disconnect(publisher, 4);
        disconnect(c, level);
    }
}

/// The same with an ACL, against Mosquitto too: on both brokers the other user receives
/// none of the owner's messages. Mosquitto 2.0.11 resumes the session (session present 1,
/// the messages held back by its ACL check); pipit starts a new one.
#[test]
fn a_client_id_does_not_leak_another_users_messages_under_an_acl() {
    let dir = Scratch::new("takeover-acl");
    let body = acl_setup(&dir);
    for peer in pipit_and_mosquitto(&dir, &body) {
        let kind = peer.kind;
        for (n, (level, next)) in [(4, Some("bob")), (4, None), (5, Some("bob"))]
            .into_iter()
            .enumerate()
        {
            let client_id = format!("device-{n}");
            leave_session(peer.addr, level, &client_id, Some("alice"), "alice/inbox");
            let (mut c, present) =
                connected(peer.addr, &connect(level, &client_id, next).clean(false));
            assert_eq!(
                present,
                kind == Kind::Mosquitto,
                "{kind:?} v{level} {next:?}"
            );
            c.expect_silence(300);
            disconnect(c, level);
        }
    }
}

// --- SIGHUP ---------------------------------------------------------------------------

/// pipit from a configuration with a password file, `acl` as its ACL and no anonymous
/// access. `user root`: SIGHUP re-reads the files, which are root's (the rewritten password
/// file readable by root alone).
fn secured_pipit(dir: &Scratch, acl: &str) -> Peer {
    let body = format!(
        "user root\nallow_anonymous false\npassword_file {}\nacl_file {}\n",
        password_file(dir).display(),
        dir.write("acl", acl).display()
    );
    mosquitto::start(dir, Kind::Pipit, &body)
}

/// Sends SIGHUP and waits until the reload is logged `count` times in all.
fn reload(peer: &Peer, count: usize) {
    let pipit = peer.pipit().expect("pipit");
    pipit.signal("-HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pipit.log().matches("SIGHUP: reloaded").count() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload:\n{}",
            pipit.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// After SIGHUP, a client whose user was removed from the password file, or whose password
/// changed, is disconnected (MQTT 5: DISCONNECT 0x87) without its will; others stay.
#[test]
fn sighup_disconnects_clients_whose_credentials_were_revoked() {
    let dir = Scratch::new("sighup-revoke");
    let peer = secured_pipit(&dir, "pattern readwrite feed/#\n");
    let addr = peer.addr;
    let (mut alice, _) = connected(addr, &connect(5, "alice-1", Some("alice")));
    let bob_will = connect(4, "bob-1", Some("bob")).will("feed/bob", b"will", 0, false);
    let (mut bob, _) = connected(addr, &bob_will);
    let (mut carol, _) = connected(addr, &connect(4, "carol-1", Some("carol")));
    subscribe(&mut carol, 4, "feed/#");

    let pw = dir.path("passwd");
    passwd(&["-b", path_str(&pw), "alice", "changed"]);
    passwd(&["-D", path_str(&pw), "bob"]);
    reload(&peer, 1);

    assert_eq!(alice.expect_disconnect(), NOT_AUTHORIZED_V5);
    assert!(bob.expect_closed().is_empty(), "3.1.1: a plain close");
    carol.ping();
    carol.expect_silence(300); // bob's will is not published
    let old = connect(4, "alice-2", Some("alice"));
    assert_eq!(connack_code(addr, &old), BAD_USERNAME_OR_PASSWORD);
    let new = Connect::v311("alice-2").login("alice", b"changed");
    assert_eq!(connack_code(addr, &new), 0);
    peer.pipit()
        .expect("pipit")
        .wait_log("credentials no longer accepted");
}

/// After SIGHUP, a will and queued messages are checked against the new ACL: a will the
/// client may no longer publish is dropped, and messages queued for a session that may no
/// longer read them are not delivered.
#[test]
fn sighup_rechecks_wills_and_queued_messages() {
    let dir = Scratch::new("sighup-acl");
    let before = "user alice\ntopic readwrite feed/#\n\
                  user bob\ntopic read feed/#\n\
                  user carol\ntopic read feed/#\n";
    let peer = secured_pipit(&dir, before);
    let addr = peer.addr;
    let will = connect(4, "alice-1", Some("alice")).will("feed/will", b"w", 0, false);
    let (alice, _) = connected(addr, &will);
    let (mut bob, _) = connected(addr, &connect(4, "bob-1", Some("bob")).clean(false));
    subscribe(&mut bob, 4, "feed/#");
    disconnect(bob, 4);
    let (mut carol, _) = connected(addr, &connect(4, "carol-1", Some("carol")));
    subscribe(&mut carol, 4, "feed/#");
    let (mut publisher, _) = connected(addr, &connect(4, "alice-2", Some("alice")));
    publisher.publish_acked("feed/queued", b"q", false, 1);
    assert_eq!(carol.recv_publish().topic, "feed/queued");

    // alice may no longer write feed/#, bob no longer read it.
    dir.replace(
        "acl",
        "user alice\ntopic read feed/#\nuser bob\ntopic read other/#\n\
         user carol\ntopic read feed/#\n",
    );
    reload(&peer, 1);
    drop(alice);
    let (mut bob, present) = connected(addr, &connect(4, "bob-1", Some("bob")).clean(false));
    assert!(present);
    bob.expect_silence(300);
    carol.expect_silence(300);
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
        // Dynamic security is built in, but not without its file.
        (
            "plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
            "plugin_opt_config_file",
        ),
        (
            "global_plugin /usr/lib/mosquitto_dynamic_security.so",
            "plugin_opt_config_file",
        ),
        ("auth_plugin /usr/lib/auth.so", "password_file"),
        ("auth_opt_backends files", "dynamic security plugin"),
        ("auth_opt_files_password_path /etc/pw", "password_file"),
        ("crlfile /etc/ca/crl.pem", "revoked"),
        ("bind_interface eth0", "listener PORT ADDRESS"),
        ("mount_point tenant/", "acl_file"),
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
        // FILE:LINE: OPTION: ... names the option as written.
        let option = line.split_whitespace().next().unwrap_or_default();
        let at = format!("{}:2: {option}: ", conf.display());
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
