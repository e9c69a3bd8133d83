//! Authentication and ACLs over TCP: password files written by `pipit passwd` and by
//! `mosquitto_passwd`, CONNACK refusal codes, ACL grants and denials at SUBSCRIBE, PUBLISH and
//! delivery, and SIGHUP reloading of both files in the built binary.

mod common;
#[path = "common/auth.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;

use common::{Connect, Raw, TestBroker, connack_code, publish, start_with};
use support::{
    ACCEPTED, BAD_USERNAME_OR_PASSWORD, NOT_AUTHORIZED, Pipit, SUBACK_FAILURE, Scratch,
    alice_password_file, free_port, local, passwd, suback_codes,
};

/// Lines written by `mosquitto_passwd` 2.0.11: `mosquitto_passwd -c -b FILE bob pw` (`$7$`,
/// PBKDF2-SHA512) and `mosquitto_passwd -H sha512 -b FILE carol 'c4rol pw'` (`$6$`).
const MOSQUITTO_PASSWD_7: &str = "bob:$7$101$+lX2iETlfVmskBo/$QMictieMzRzqGFHc4SmyV+Fn7NE9Aa48bvyFmEKBqihxbn5NLIKIVhfCvvH1MZbQguU2RZKhKmxrcvAy0C5v0g==";
const MOSQUITTO_PASSWD_6: &str = "carol:$6$l8wXq/Na72mrSY5z$daW+X9JJukF88YU78tZqZj+rBY52VAc6TvXWpY9RDs1MkstefyiqmbfOC2SxzdUyoaf76p+2OiJGr4w4bxmgrQ==";

/// `pipit passwd ARGS` through the built binary; it must succeed.
fn passwd_binary(args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipit"))
        .arg("passwd")
        .args(args)
        .output()
        .expect("run pipit passwd");
    assert!(
        out.status.success(),
        "pipit passwd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 scratch path")
}

/// An in-process broker with these security settings.
fn secured(password_file: Option<&Path>, acl_file: Option<&Path>, anonymous: bool) -> TestBroker {
    start_with(|config| {
        config.allow_anonymous = anonymous;
        config.password_file = password_file.map(Path::to_path_buf);
        config.acl_file = acl_file.map(Path::to_path_buf);
    })
}

fn login(client_id: &str, user: &str, password: &str) -> Connect {
    Connect::v311(client_id).login(user, password.as_bytes())
}

/// Connects and expects CONNACK 0.
fn connect_as(addr: SocketAddr, client_id: &str, user: Option<(&str, &str)>) -> Raw {
    let connect = match user {
        Some((user, password)) => login(client_id, user, password),
        None => Connect::v311(client_id),
    };
    Raw::connect_with(addr, &connect)
}

/// Expects the next PUBLISH on `c` to be `topic`/`payload`.
fn expect_message(c: &mut Raw, topic: &str, payload: &[u8]) {
    let got = c.recv_publish();
    assert_eq!(
        (got.topic.as_str(), got.payload.as_slice()),
        (topic, payload),
        "unexpected delivery"
    );
}

// --- Authentication ----------------------------------------------------------------------

#[test]
fn password_file_from_pipit_passwd_authenticates() {
    let dir = Scratch::new("auth-pipit-passwd");
    let pw = alice_password_file(&dir);
    passwd_binary(&["-b", path_str(&pw), "dave", "d4ve pass"]);
    let broker = secured(Some(&pw), None, false);
    let addr = broker.addr;

    assert_eq!(connack_code(addr, &login("a", "alice", "secret")), ACCEPTED);
    assert_eq!(
        connack_code(addr, &login("d", "dave", "d4ve pass")),
        ACCEPTED
    );
    let wrong = login("a", "alice", "Secret");
    assert_eq!(connack_code(addr, &wrong), BAD_USERNAME_OR_PASSWORD);
    let unknown = login("m", "mallory", "secret");
    assert_eq!(connack_code(addr, &unknown), BAD_USERNAME_OR_PASSWORD);
    let no_password = Connect {
        password: None,
        ..login("a", "alice", "")
    };
    assert_eq!(connack_code(addr, &no_password), BAD_USERNAME_OR_PASSWORD);
    let anonymous = Connect::v311("anon");
    assert_eq!(connack_code(addr, &anonymous), NOT_AUTHORIZED);
}

#[test]
fn accepted_login_is_served() {
    let dir = Scratch::new("auth-served");
    let pw = alice_password_file(&dir);
    let broker = secured(Some(&pw), None, false);
    let mut alice = connect_as(broker.addr, "a", Some(("alice", "secret")));
    alice.subscribe("t/#", 0);
    alice.send(&publish("t/1", b"hi", 0, false, 0));
    expect_message(&mut alice, "t/1", b"hi");
}

#[test]
fn anonymous_clients_follow_allow_anonymous_beside_a_password_file() {
    let dir = Scratch::new("auth-anon");
    let pw = alice_password_file(&dir);
    let broker = secured(Some(&pw), None, true);
    assert_eq!(connack_code(broker.addr, &Connect::v311("anon")), ACCEPTED);
    // A username is still checked when anonymous access is allowed.
    let wrong = login("a", "alice", "nope");
    assert_eq!(connack_code(broker.addr, &wrong), BAD_USERNAME_OR_PASSWORD);
}

#[test]
fn no_password_file_and_no_anonymous_refuses_everyone() {
    let broker = secured(None, None, false);
    assert_eq!(
        connack_code(broker.addr, &Connect::v311("anon")),
        NOT_AUTHORIZED
    );
    let named = login("a", "alice", "secret");
    assert_eq!(connack_code(broker.addr, &named), NOT_AUTHORIZED);
}

#[test]
fn mosquitto_passwd_fixtures_authenticate() {
    let dir = Scratch::new("auth-mosquitto-fixture");
    let pw = dir.write(
        "passwd",
        &format!("# made by mosquitto_passwd\n{MOSQUITTO_PASSWD_7}\n{MOSQUITTO_PASSWD_6}\n"),
    );
    let broker = secured(Some(&pw), None, false);
    let addr = broker.addr;
    assert_eq!(connack_code(addr, &login("b", "bob", "pw")), ACCEPTED);
    assert_eq!(
        connack_code(addr, &login("c", "carol", "c4rol pw")),
        ACCEPTED
    );
    let wrong = login("b", "bob", "pw ");
    assert_eq!(connack_code(addr, &wrong), BAD_USERNAME_OR_PASSWORD);
    let wrong = login("c", "carol", "c4rol");
    assert_eq!(connack_code(addr, &wrong), BAD_USERNAME_OR_PASSWORD);
}

/// Live interoperability when `mosquitto_passwd` is installed (the fixtures above cover the
/// same formats when it is not): its file authenticates, `pipit passwd` can add to it, and
/// the result still authenticates both users.
#[test]
fn live_mosquitto_passwd_file_authenticates() {
    let tool = Path::new("/usr/bin/mosquitto_passwd");
    if !tool.exists() {
        eprintln!("skipped: /usr/bin/mosquitto_passwd is not installed");
        return;
    }
    let dir = Scratch::new("auth-mosquitto-live");
    let pw = dir.path("passwd");
    let made = std::process::Command::new(tool)
        .args(["-c", "-b", path_str(&pw), "bob", "pw"])
        .status()
        .expect("run mosquitto_passwd");
    assert!(made.success());
    passwd_binary(&["-b", path_str(&pw), "alice", "secret"]);
    let broker = secured(Some(&pw), None, false);
    assert_eq!(
        connack_code(broker.addr, &login("b", "bob", "pw")),
        ACCEPTED
    );
    let alice = login("a", "alice", "secret");
    assert_eq!(connack_code(broker.addr, &alice), ACCEPTED);
}

#[test]
fn passwd_delete_refuses_the_user() {
    let dir = Scratch::new("auth-delete");
    let pw = dir.path("passwd");
    passwd_binary(&["-c", "-b", path_str(&pw), "alice", "secret"]);
    passwd_binary(&["-b", path_str(&pw), "bob", "builder"]);
    passwd_binary(&["-D", path_str(&pw), "bob"]);
    let broker = secured(Some(&pw), None, false);
    let bob = login("b", "bob", "builder");
    assert_eq!(connack_code(broker.addr, &bob), BAD_USERNAME_OR_PASSWORD);
    let alice = login("a", "alice", "secret");
    assert_eq!(connack_code(broker.addr, &alice), ACCEPTED);
}

#[test]
fn passwd_update_replaces_the_password() {
    let dir = Scratch::new("auth-update");
    let pw = dir.path("passwd");
    passwd(&["-c", "-b", path_str(&pw), "alice", "old"]);
    passwd(&["-b", path_str(&pw), "alice", "new"]);
    let broker = secured(Some(&pw), None, false);
    let old = login("a", "alice", "old");
    assert_eq!(connack_code(broker.addr, &old), BAD_USERNAME_OR_PASSWORD);
    assert_eq!(
        connack_code(broker.addr, &login("a", "alice", "new")),
        ACCEPTED
    );
}

// --- ACLs --------------------------------------------------------------------------------

/// The ACL every ACL test runs against.
const ACL: &str = "\
# Anonymous clients: read public/#, write only public/anon.
topic read public/#
topic write public/anon

user alice
topic readwrite alice/#
topic deny alice/secret
topic write outbox/alice
topic read users/+/inbox/ignored

user bob
topic read outbox/#
topic read public/#
topic write users/+/inbox

user carol
topic read #
topic deny private/#

user erin
topic write private/x
topic write public/x

pattern readwrite devices/%c/#
pattern read users/%u/inbox
";

/// A broker with `ACL` and users alice, bob, carol, erin (password = name), anonymous allowed.
fn acl_broker(dir: &Scratch) -> TestBroker {
    let pw = dir.path("passwd");
    passwd(&["-c", "-b", path_str(&pw), "alice", "alice"]);
    for user in ["bob", "carol", "erin"] {
        passwd(&["-b", path_str(&pw), user, user]);
    }
    let acl = dir.write("acl", ACL);
    secured(Some(&pw), Some(&acl), true)
}

fn user(addr: SocketAddr, name: &str) -> Raw {
    connect_as(addr, name, Some((name, name)))
}

#[test]
fn topic_read_grants_subscribe_but_not_publish() {
    let dir = Scratch::new("acl-read");
    let broker = acl_broker(&dir);
    let mut reader = connect_as(broker.addr, "reader", None);
    assert_eq!(reader.subscribe("public/#", 0), 0);
    let mut writer = connect_as(broker.addr, "writer", None);
    // Read-only topic: the PUBLISH is acknowledged (3.1.1 cannot refuse it) and dropped.
    writer.publish_acked("public/news", b"denied", false, 1);
    // Writable topic: delivered, and it is the first thing the reader gets.
    writer.publish_acked("public/anon", b"allowed", false, 2);
    expect_message(&mut reader, "public/anon", b"allowed");
}

#[test]
fn topic_write_grants_publish_but_not_subscribe() {
    let dir = Scratch::new("acl-write");
    let broker = acl_broker(&dir);
    let mut alice = user(broker.addr, "alice");
    assert_eq!(alice.subscribe("outbox/alice", 0), SUBACK_FAILURE);
    let mut bob = user(broker.addr, "bob");
    assert_eq!(bob.subscribe("outbox/#", 0), 0);
    alice.publish_acked("outbox/alice", b"mail", false, 1);
    expect_message(&mut bob, "outbox/alice", b"mail");
}

#[test]
fn topic_readwrite_grants_both() {
    let dir = Scratch::new("acl-readwrite");
    let broker = acl_broker(&dir);
    let mut alice = user(broker.addr, "alice");
    assert_eq!(alice.subscribe("alice/#", 1), 1);
    alice.send(&publish("alice/notes", b"mine", 0, false, 0));
    expect_message(&mut alice, "alice/notes", b"mine");
}

#[test]
fn deny_wins_over_a_wider_grant() {
    let dir = Scratch::new("acl-deny");
    let broker = acl_broker(&dir);
    let mut alice = user(broker.addr, "alice");
    assert_eq!(
        suback_codes(&mut alice, &[("alice/secret", 0)]),
        [SUBACK_FAILURE]
    );
    assert_eq!(alice.subscribe("alice/#", 0), 0);
    // Writing the denied topic is dropped; the next message through is the allowed one.
    alice.send(&publish("alice/secret", b"hidden", 0, false, 0));
    alice.send(&publish("alice/open", b"seen", 0, false, 0));
    expect_message(&mut alice, "alice/open", b"seen");
}

#[test]
fn anonymous_section_applies_only_to_anonymous_clients() {
    let dir = Scratch::new("acl-anon");
    let broker = acl_broker(&dir);
    let mut anon = connect_as(broker.addr, "anon", None);
    assert_eq!(anon.subscribe("public/#", 0), 0);
    assert_eq!(anon.subscribe("alice/#", 0), SUBACK_FAILURE);
    // alice's section has no public/ rule, and the anonymous rules are not hers.
    let mut alice = user(broker.addr, "alice");
    assert_eq!(alice.subscribe("public/#", 0), SUBACK_FAILURE);
}

#[test]
fn user_sections_apply_to_their_user_only() {
    let dir = Scratch::new("acl-users");
    let broker = acl_broker(&dir);
    let mut bob = user(broker.addr, "bob");
    assert_eq!(
        suback_codes(
            &mut bob,
            &[("public/#", 1), ("alice/#", 1), ("outbox/+", 0)]
        ),
        [1, SUBACK_FAILURE, 0],
        "one code per filter, in order"
    );
    // bob may not write alice's topics: his PUBLISH is dropped, alice's own goes through.
    let mut alice = user(broker.addr, "alice");
    assert_eq!(alice.subscribe("alice/#", 0), 0);
    bob.publish_acked("alice/notes", b"forged", false, 1);
    alice.publish_acked("alice/notes", b"real", false, 2);
    expect_message(&mut alice, "alice/notes", b"real");
}

#[test]
fn pattern_client_id_confines_each_device_to_its_subtree() {
    let dir = Scratch::new("acl-pattern-c");
    let broker = acl_broker(&dir);
    let mut dev1 = connect_as(broker.addr, "dev1", None);
    let mut dev2 = connect_as(broker.addr, "dev2", None);
    assert_eq!(dev1.subscribe("devices/dev1/#", 0), 0);
    assert_eq!(dev2.subscribe("devices/dev2/#", 0), 0);
    assert_eq!(dev1.subscribe("devices/dev2/#", 0), SUBACK_FAILURE);
    assert_eq!(dev1.subscribe("devices/+/x", 0), SUBACK_FAILURE);
    // dev1 writes its own subtree, not dev2's.
    dev1.send(&publish("devices/dev1/x", b"own", 0, false, 0));
    expect_message(&mut dev1, "devices/dev1/x", b"own");
    dev1.publish_acked("devices/dev2/x", b"forged", false, 1);
    dev2.publish_acked("devices/dev2/x", b"real", false, 2);
    expect_message(&mut dev2, "devices/dev2/x", b"real");
    // A username does not change what %c means.
    let mut alice_dev = connect_as(broker.addr, "dev3", Some(("alice", "alice")));
    assert_eq!(alice_dev.subscribe("devices/dev3/#", 0), 0);
}

#[test]
fn pattern_username_gives_each_user_an_inbox() {
    let dir = Scratch::new("acl-pattern-u");
    let broker = acl_broker(&dir);
    let mut alice = user(broker.addr, "alice");
    assert_eq!(alice.subscribe("users/alice/inbox", 0), 0);
    assert_eq!(alice.subscribe("users/bob/inbox", 0), SUBACK_FAILURE);
    // %u never matches an anonymous client.
    let mut anon = connect_as(broker.addr, "anon", None);
    assert_eq!(anon.subscribe("users/anon/inbox", 0), SUBACK_FAILURE);
    let mut bob = user(broker.addr, "bob");
    bob.publish_acked("users/alice/inbox", b"hello alice", false, 1);
    expect_message(&mut alice, "users/alice/inbox", b"hello alice");
}

#[test]
fn wildcard_subscription_does_not_leak_unreadable_topics() {
    let dir = Scratch::new("acl-leak");
    let broker = acl_broker(&dir);
    // A client that may read only public/# cannot subscribe to everything at all...
    let mut anon = connect_as(broker.addr, "anon", None);
    assert_eq!(anon.subscribe("#", 0), SUBACK_FAILURE);
    assert_eq!(anon.subscribe("+/x", 0), SUBACK_FAILURE);
    assert_eq!(anon.subscribe("public/#", 0), 0);
    // ...and a client whose `#` is granted around a deny never receives the denied topics:
    // read access is checked again at delivery.
    let mut carol = user(broker.addr, "carol");
    assert_eq!(carol.subscribe("#", 0), 0);
    let mut erin = user(broker.addr, "erin");
    erin.publish_acked("private/x", b"secret", false, 1);
    erin.publish_acked("public/x", b"news", false, 2);
    expect_message(&mut carol, "public/x", b"news");
    expect_message(&mut anon, "public/x", b"news");
}

#[test]
fn retained_messages_are_read_checked_at_subscribe() {
    let dir = Scratch::new("acl-retained");
    let broker = acl_broker(&dir);
    let mut erin = user(broker.addr, "erin");
    erin.publish_acked("private/x", b"kept secret", true, 1);
    erin.publish_acked("public/x", b"kept news", true, 2);
    let mut carol = user(broker.addr, "carol");
    assert_eq!(carol.subscribe("#", 0), 0);
    let got = carol.recv_publish();
    assert_eq!((got.topic.as_str(), got.retain), ("public/x", true));
    carol.expect_silence(300);
}

// --- SIGHUP ------------------------------------------------------------------------------

/// Starts the binary with a password file and an ACL on a free port. `user root`: SIGHUP
/// re-reads the files, which are root's (the password file readable by root alone).
fn spawn_secured(dir: &Scratch, acl: &str) -> (Pipit, SocketAddr) {
    let port = free_port();
    let conf = dir.write(
        "pipit.conf",
        &format!(
            "listener {port} 127.0.0.1\nuser root\nallow_anonymous false\npassword_file {}\nacl_file {}\n",
            dir.path("passwd").display(),
            dir.write("acl", acl).display()
        ),
    );
    let addr = local(port);
    (
        Pipit::with_config(&conf, addr, &dir.path("pipit.log")),
        addr,
    )
}

/// Waits until `connect` is accepted: the broker has applied a reload.
fn wait_accepted(addr: SocketAddr, connect: &Connect, pipit: &Pipit) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while connack_code(addr, connect) != ACCEPTED {
        assert!(
            std::time::Instant::now() < deadline,
            "reload not applied:\n{}",
            pipit.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_passwords_and_acls() {
    let dir = Scratch::new("sighup");
    let pw = dir.path("passwd");
    passwd(&["-c", "-b", path_str(&pw), "alice", "one"]);
    passwd(&["-b", path_str(&pw), "bob", "two"]);
    let (pipit, addr) = spawn_secured(
        &dir,
        "user alice\ntopic readwrite feed/#\nuser bob\ntopic readwrite feed/#\n",
    );

    let mut alice = connect_as(addr, "alice-1", Some(("alice", "one")));
    assert_eq!(alice.subscribe("feed/#", 0), 0);
    let mut bob = connect_as(addr, "bob-1", Some(("bob", "two")));
    bob.publish_acked("feed/a", b"before", false, 1);
    expect_message(&mut alice, "feed/a", b"before");

    // New passwords: bob is removed, carol is added. New ACL: alice may only use other/#,
    // carol has feed/# and other/#.
    passwd(&["-D", path_str(&pw), "bob"]);
    passwd(&["-b", path_str(&pw), "carol", "three"]);
    dir.replace(
        "acl",
        "user alice\ntopic readwrite other/#\n\
         user carol\ntopic readwrite feed/#\ntopic readwrite other/#\n",
    );
    pipit.signal("-HUP");
    let carol_login = login("carol-1", "carol", "three");
    wait_accepted(addr, &carol_login, &pipit);

    // alice, whose password is unchanged, stays connected; bob, removed, is disconnected
    // (tests/security.rs has the details).
    alice.ping();
    bob.expect_closed();
    // New connections use the new credentials.
    let gone = login("bob-2", "bob", "two");
    assert_eq!(connack_code(addr, &gone), BAD_USERNAME_OR_PASSWORD);
    // alice's feed/# subscription is no longer allowed: it stops receiving, while her newly
    // allowed subscription works.
    assert_eq!(alice.subscribe("other/#", 0), 0);
    assert_eq!(alice.subscribe("feed/#", 0), SUBACK_FAILURE);
    let mut carol = Raw::connect_with(addr, &carol_login);
    carol.publish_acked("feed/b", b"after", false, 1);
    carol.publish_acked("other/c", b"allowed", false, 2);
    expect_message(&mut alice, "other/c", b"allowed");
    pipit.wait_log("no longer allowed");
}

#[test]
fn sighup_with_a_broken_file_keeps_the_previous_settings() {
    let dir = Scratch::new("sighup-broken");
    let pw = dir.path("passwd");
    passwd(&["-c", "-b", path_str(&pw), "alice", "one"]);
    let (pipit, addr) = spawn_secured(&dir, "user alice\ntopic readwrite feed/#\n");
    let mut alice = connect_as(addr, "alice-1", Some(("alice", "one")));
    assert_eq!(alice.subscribe("feed/#", 0), 0);

    dir.replace("passwd", "alice:plaintext\n");
    pipit.signal("-HUP");
    let log = pipit.wait_log("keeping the previous security settings");
    assert!(log.contains(":1:"), "the error names the line:\n{log}");

    alice.ping();
    assert_eq!(
        connack_code(addr, &login("alice-2", "alice", "one")),
        ACCEPTED
    );
    alice.send(&publish("feed/x", b"still", 0, false, 0));
    expect_message(&mut alice, "feed/x", b"still");
}

/// A subscription the ACL still allows survives a reload, with its messages.
#[test]
fn sighup_keeps_allowed_subscriptions() {
    let dir = Scratch::new("sighup-keep");
    let pw = dir.path("passwd");
    passwd(&["-c", "-b", path_str(&pw), "alice", "one"]);
    let (pipit, addr) = spawn_secured(&dir, "user alice\ntopic readwrite feed/#\n");
    let mut alice = connect_as(addr, "alice-1", Some(("alice", "one")));
    assert_eq!(alice.subscribe("feed/#", 0), 0);
    passwd(&["-b", path_str(&pw), "probe", "p"]);
    dir.replace(
        "acl",
        "user alice\ntopic readwrite feed/#\ntopic read extra/#\n",
    );
    pipit.signal("-HUP");
    wait_accepted(addr, &login("probe", "probe", "p"), &pipit);
    alice.send(&publish("feed/y", b"kept", 0, false, 0));
    expect_message(&mut alice, "feed/y", b"kept");
}

#[test]
fn retained_messages_on_subscribe_are_checked_for_reading() {
    let dir = Scratch::new("acl-retained");
    let broker = acl_broker(&dir);
    let mut erin = user(broker.addr, "erin");
    erin.publish_acked("private/x", b"secret", true, 1);
    erin.publish_acked("public/x", b"news", true, 2);
    // carol reads `#` but not `private/#`: the retained walk leaves that one out.
    let mut carol = user(broker.addr, "carol");
    assert_eq!(carol.subscribe("#", 0), 0);
    let p = carol.recv_publish();
    assert_eq!((p.topic.as_str(), p.retain), ("public/x", true));
    carol.expect_silence(300);
}

#[test]
fn a_refused_qos2_publish_leaves_no_state_behind() {
    // A QoS 2 PUBLISH the ACL refuses is acknowledged (3.1.1 cannot refuse it) but its
    // packet id is not kept awaiting PUBREL: reused at once for an allowed topic, the next
    // PUBLISH is a new message, not a duplicate to drop.
    let dir = Scratch::new("acl-qos2");
    let broker = acl_broker(&dir);
    let mut carol = user(broker.addr, "carol");
    assert_eq!(carol.subscribe("public/#", 2), 2);
    let mut erin = user(broker.addr, "erin");
    erin.send(&publish("denied/x", b"no", 2, false, 7));
    assert_eq!(
        erin.recv_kind(5).body[..2],
        [0, 7],
        "PUBREC for the refused one"
    );
    erin.send(&publish("public/x", b"yes", 2, false, 7));
    assert_eq!(erin.recv_kind(5).body[..2], [0, 7]);
    let got = carol.recv_publish();
    assert_eq!(
        (got.topic.as_str(), got.payload.as_slice()),
        ("public/x", &b"yes"[..])
    );
}
