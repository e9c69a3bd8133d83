//! Client ids the configuration constrains (issue 13): `clientid_prefixes` refuses every id
//! without the prefix, and `use_username_as_clientid` replaces the client's id with its
//! username (so a second connection of the same user takes the first one over, and ACL `%c`
//! is the username). Each scenario runs against pipit and Mosquitto 2.0.11 from the same
//! configuration text (`common/mosquitto.rs`) and expects the same bytes from both.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::net::SocketAddr;

use common::{Connack5, Connect, Prop, Props, Raw, prop};
use mosquitto::pipit_and_mosquitto;
use support::{ACCEPTED, NOT_AUTHORIZED, Scratch, alice_password_file, passwd};

/// MQTT 5 reason code: not authorized.
const NOT_AUTHORIZED_V5: u8 = 0x87;
/// MQTT 5 property: Assigned Client Identifier.
const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;

/// Sends `connect` on a new connection: the connection and the CONNACK's code (the second
/// byte in every version). A refused connection is then closed by the broker.
fn connack(addr: SocketAddr, connect: &Connect) -> (Raw, u8) {
    let mut c = Raw::open(addr);
    c.send(&connect.bytes());
    let ack = c.recv().expect("no CONNACK");
    assert_eq!(ack.kind(), 2, "expected CONNACK, got {ack:?}");
    (c, ack.body[1])
}

/// The CONNACK code for `connect`, checking that a refused connection is closed.
fn code(addr: SocketAddr, connect: &Connect) -> u8 {
    let (mut c, code) = connack(addr, connect);
    if code != ACCEPTED {
        c.expect_closed();
    }
    code
}

/// Issue 13: only client ids starting with the prefix connect; the others are refused with
/// "not authorised" in every protocol version, an id the broker assigns included (Mosquitto's
/// `auto-…`, pipit's `pipit-…`), and the match is case-sensitive.
#[test]
fn clientid_prefixes_refuse_other_ids_as_mosquitto() {
    let dir = Scratch::new("clientid-prefixes");
    let body = "allow_anonymous true\nclientid_prefixes gw-\n";
    for peer in pipit_and_mosquitto(&dir, body) {
        let addr = peer.addr;
        let kind = peer.kind;
        let cases = [
            (Connect::v31("sensor-1"), NOT_AUTHORIZED),
            (Connect::v311("sensor-1"), NOT_AUTHORIZED),
            (Connect::v311("GW-1"), NOT_AUTHORIZED),
            (Connect::v311("g"), NOT_AUTHORIZED),
            (Connect::v5("sensor-1", Props::new()), NOT_AUTHORIZED_V5),
            (Connect::v5("", Props::new()), NOT_AUTHORIZED_V5),
            (Connect::v311(""), NOT_AUTHORIZED),
            (Connect::v31("gw-1"), ACCEPTED),
            (Connect::v311("gw-2"), ACCEPTED),
            (Connect::v5("gw-3", Props::new()), ACCEPTED),
        ];
        for (connect, expected) in cases {
            let id = String::from_utf8_lossy(&connect.client_id).into_owned();
            let level = connect.level;
            assert_eq!(code(addr, &connect), expected, "{kind:?}: {id:?} v{level}");
        }
    }
}

/// A password file with alice/secret and bob/b0b, readable by Mosquitto after it drops
/// root; an ACL in which each client may use only `clients/<its client id>/#`; and
/// `use_username_as_clientid true` on the test listener; bob may also read all of
/// `clients/#`.
fn username_as_clientid_setup(dir: &Scratch) -> String {
    let pw = alice_password_file(dir);
    let path = pw.to_str().expect("utf-8 scratch path");
    passwd(&["-b", path, "bob", "b0b"]);
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod password file");
    let acl = dir.write(
        "acl",
        "pattern readwrite clients/%c/#\nuser bob\ntopic read clients/#\n",
    );
    format!(
        "use_username_as_clientid true\nallow_anonymous true\npassword_file {}\nacl_file {}\n",
        pw.display(),
        acl.display()
    )
}

/// Issue 13: with `use_username_as_clientid true` a client without a username is refused
/// ("not authorised", even where anonymous clients are allowed), a wrong password is still
/// refused, and a client's id is its username whatever it sent: ACL `%c` is the username.
#[test]
fn use_username_as_clientid_replaces_the_client_id() {
    let dir = Scratch::new("username-as-clientid");
    let body = username_as_clientid_setup(&dir);
    for peer in pipit_and_mosquitto(&dir, &body) {
        let addr = peer.addr;
        let kind = peer.kind;
        assert_eq!(
            code(addr, &Connect::v311("anon")),
            NOT_AUTHORIZED,
            "{kind:?}"
        );
        let anonymous_v5 = Connect::v5("anon", Props::new());
        assert_eq!(code(addr, &anonymous_v5), NOT_AUTHORIZED_V5, "{kind:?}");
        let wrong = Connect::v311("phone").login("alice", b"wrong");
        assert_ne!(code(addr, &wrong), ACCEPTED, "{kind:?}: a wrong password");

        let (mut bob, code) = connack(addr, &Connect::v311("watcher").login("bob", b"b0b"));
        assert_eq!(code, ACCEPTED, "{kind:?}");
        assert_eq!(bob.subscribe("clients/#", 0), 0, "{kind:?}");
        let alice = Connect::v311("phone").login("alice", b"secret");
        let (mut c, code) = connack(addr, &alice);
        assert_eq!(code, ACCEPTED, "{kind:?}");
        // `%c` is "alice", not the "phone" the client sent: only the first is delivered.
        c.publish_acked("clients/phone/x", b"as phone", false, 1);
        c.publish_acked("clients/alice/x", b"as alice", false, 2);
        let got = bob.recv_publish();
        assert_eq!(got.topic, "clients/alice/x", "{kind:?}");
        bob.expect_silence(300);
        c.disconnect();
    }
}

/// Issue 13: a second connection with the same username takes the first one over, whatever
/// client ids the two sent, as a second connection with the same client id does; another
/// user's connection is left alone.
#[test]
fn use_username_as_clientid_takes_over_by_username() {
    let dir = Scratch::new("username-takeover");
    let body = username_as_clientid_setup(&dir);
    for peer in pipit_and_mosquitto(&dir, &body) {
        let addr = peer.addr;
        let kind = peer.kind;
        let (mut phone, code) = connack(addr, &Connect::v311("phone").login("alice", b"secret"));
        assert_eq!(code, ACCEPTED, "{kind:?}");
        let (mut bob, code) = connack(addr, &Connect::v311("phone").login("bob", b"b0b"));
        assert_eq!(
            code, ACCEPTED,
            "{kind:?}: bob's \"phone\" is another client"
        );
        phone.ping();
        let (mut laptop, code) = connack(addr, &Connect::v311("laptop").login("alice", b"secret"));
        assert_eq!(code, ACCEPTED, "{kind:?}");
        phone.expect_closed();
        laptop.ping();
        bob.ping();
    }
}

/// Issue 13: an MQTT 5 client that sent an empty client id is told the id it got, which is
/// its username.
#[test]
fn use_username_as_clientid_assigns_the_username_to_an_empty_id() {
    let dir = Scratch::new("username-assigned");
    let body = username_as_clientid_setup(&dir);
    for peer in pipit_and_mosquitto(&dir, &body) {
        let kind = peer.kind;
        let connect = Connect::v5("", Props::new()).login("alice", b"secret");
        let (_c, ack): (Raw, Connack5) = Raw::connect_v5(peer.addr, &connect);
        assert_eq!(ack.code, ACCEPTED, "{kind:?}");
        let assigned = prop(&ack.props, ASSIGNED_CLIENT_IDENTIFIER);
        assert_eq!(
            assigned,
            Some(Prop::Bytes(b"alice".to_vec())),
            "{kind:?}: {ack:?}"
        );
        let named = Connect::v5("phone", Props::new()).login("bob", b"b0b");
        let (_c, ack) = Raw::connect_v5(peer.addr, &named);
        assert_eq!(ack.code, ACCEPTED, "{kind:?}");
        let assigned = prop(&ack.props, ASSIGNED_CLIENT_IDENTIFIER);
        assert_eq!(assigned, None, "{kind:?}: the client did not ask for an id");
    }
}
