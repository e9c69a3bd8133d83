//! Mosquitto 2.0's dynamic security plugin, built into pipit: the same JSON file and the same
//! `mosquitto.conf` lines give the same decisions on pipit and on Mosquitto 2.0.11 (with
//! Debian's `mosquitto_dynamic_security.so`). Each scenario runs against pipit and, if installed, the real Mosquitto, and the
//! outcomes are compared; pipit's are also checked against what the file says.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::{Connect, Props, Raw, publish_v5, split_props, unsubscribe_v5};
use mosquitto::pipit_and_mosquitto;
use support::Scratch;

/// Where Debian installs the plugin; pipit accepts the same line.
const PLUGIN: &str = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so";
/// The control API's topic.
const CONTROL: &str = "$CONTROL/dynamic-security/v1";

/// The configuration lines that load the plugin with `file` (`user root`: Mosquitto started
/// as root keeps reading the file; pipit warns that it ignores the option).
fn body(file: &Path) -> String {
    format!(
        "user root\nallow_anonymous true\nplugin {PLUGIN}\nplugin_opt_config_file {}\n",
        file.display()
    )
}

/// A client entry's password fields, as the plugin writes them.
fn password_fields(password: &str) -> String {
    // `$7$ITERATIONS$SALT$HASH`: the plugin's hash (PBKDF2-SHA512, 12-byte salt).
    let entry = pipit::auth::password::hash_pbkdf2(password.as_bytes(), b"0123456789ab", 101);
    let fields: Vec<&str> = entry.split('$').collect();
    format!(
        r#""password": "{}", "salt": "{}", "iterations": 101"#,
        fields[4], fields[3]
    )
}

/// A file exercising every rule the decisions follow: client roles before group roles,
/// groups by priority, entries by priority, literal subscribe entries before patterns, a
/// client id restriction, a disabled client, a client without a password, the anonymous
/// group and the default access (which never opens `$CONTROL`).
fn decisions_file(dir: &Scratch) -> PathBuf {
    let text = format!(
        r##"{{
  "defaultACLAccess": {{"publishClientSend": true, "publishClientReceive": false,
                        "subscribe": false, "unsubscribe": true}},
  "clients": [
    {{"username": "alice", {alice}, "roles": [{{"rolename": "rw"}}]}},
    {{"username": "bob", "clientid": "bob-only", {bob}}},
    {{"username": "carol", "disabled": true, {carol}}},
    {{"username": "dave"}}
  ],
  "groups": [
    {{"groupname": "readers", "roles": [{{"rolename": "ro"}}],
      "clients": [{{"username": "bob", "priority": 1}}]}},
    {{"groupname": "blocked", "roles": [{{"rolename": "no-x"}}],
      "clients": [{{"username": "bob", "priority": 5}}, {{"username": "alice"}}]}},
    {{"groupname": "anon", "roles": [{{"rolename": "public"}}]}}
  ],
  "roles": [
    {{"rolename": "rw", "acls": [
      {{"acltype": "publishClientSend", "topic": "data/#", "allow": true}},
      {{"acltype": "publishClientSend", "topic": "data/secret", "priority": 5, "allow": false}},
      {{"acltype": "subscribePattern", "topic": "data/#", "allow": true}},
      {{"acltype": "publishClientReceive", "topic": "data/#", "allow": true}},
      {{"acltype": "publishClientReceive", "topic": "data/hidden", "priority": 1, "allow": false}}]}},
    {{"rolename": "ro", "acls": [
      {{"acltype": "subscribePattern", "topic": "data/+", "allow": true}},
      {{"acltype": "subscribeLiteral", "topic": "data/#", "allow": false}},
      {{"acltype": "publishClientReceive", "topic": "data/+", "allow": true}}]}},
    {{"rolename": "no-x", "acls": [
      {{"acltype": "publishClientReceive", "topic": "data/x", "allow": false}}]}},
    {{"rolename": "public", "acls": [
      {{"acltype": "publishClientSend", "topic": "public/#", "allow": true}},
      {{"acltype": "subscribePattern", "topic": "public/#", "allow": true}},
      {{"acltype": "publishClientReceive", "topic": "public/#", "allow": true}},
      {{"acltype": "unsubscribeLiteral", "topic": "public/locked", "allow": false}}]}}
  ],
  "anonymousGroup": "anon"
}}"##,
        alice = password_fields("apw"),
        bob = password_fields("bpw"),
        carol = password_fields("cpw"),
    );
    dir.write("dynsec.json", &text)
}

/// An MQTT 5 CONNECT as `id`, with `user` and password if given.
fn connect(id: &str, user: Option<(&str, &str)>) -> Connect {
    let c = Connect::v5(id, Props::new());
    match user {
        Some((u, p)) => c.login(u, p.as_bytes()),
        None => c,
    }
}

/// Whether `connect` is accepted, and the connection.
fn try_connect(addr: SocketAddr, connect: &Connect) -> (bool, Raw) {
    let (c, ack) = Raw::connect_v5(addr, connect);
    (ack.code == 0, c)
}

/// Whether a QoS 1 PUBLISH is accepted (PUBACK below 0x80); the topics of messages that
/// arrive meanwhile are added to `seen`.
fn publish(c: &mut Raw, topic: &str, packet_id: u16, seen: &mut Vec<String>) -> bool {
    c.send(&publish_v5(topic, b"m", 1, false, packet_id, Props::new()));
    loop {
        let f = c.recv().expect("no PUBACK");
        match f.kind() {
            4 => return f.body.get(2).is_none_or(|&code| code < 0x80),
            3 => seen.push(common::Publish5::parse(&f).topic),
            _ => {}
        }
    }
}

/// Whether a SUBSCRIBE to `filter` is granted.
fn subscribe(c: &mut Raw, filter: &str) -> bool {
    c.subscribe_v5(Props::new(), &[(filter, 1)])[0] < 0x80
}

/// Whether an UNSUBSCRIBE of `filter` is allowed (UNSUBACK code below 0x80).
fn unsubscribe(c: &mut Raw, filter: &str) -> bool {
    c.send(&unsubscribe_v5(7, Props::new(), &[filter]));
    let ack = c.recv_kind(11);
    split_props(&ack.body[2..]).1[0] < 0x80
}

/// `seen` and the topics `c` receives until it is silent for a moment, sorted.
fn received(c: &mut Raw, mut seen: Vec<String>) -> Vec<String> {
    let frames = c.drain(300);
    let more = frames.iter().filter(|f| f.kind() == 3);
    seen.extend(more.map(|f| common::Publish5::parse(f).topic));
    seen.sort();
    seen
}

/// Runs the decision table against the broker at `addr`: (what, allowed) per step.
fn decisions(addr: SocketAddr) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut note = |what: &str, allowed: bool| out.push((what.to_string(), allowed));
    for (what, id, user) in [
        ("connect alice", "a-1", Some(("alice", "apw"))),
        (
            "connect alice, wrong password",
            "a-2",
            Some(("alice", "nope")),
        ),
        (
            "connect bob, bound client id",
            "bob-only",
            Some(("bob", "bpw")),
        ),
        ("connect bob, other client id", "b-2", Some(("bob", "bpw"))),
        ("connect carol, disabled", "c-1", Some(("carol", "cpw"))),
        (
            "connect dave, no password in the file",
            "d-1",
            Some(("dave", "dpw")),
        ),
        ("connect eve, unknown", "e-1", Some(("eve", "epw"))),
        ("connect anonymous", "anon-0", None),
    ] {
        note(what, try_connect(addr, &connect(id, user)).0);
    }
    // (name, connection, topics received): alice, bob and an anonymous client.
    let mut clients = [
        (
            "alice",
            try_connect(addr, &connect("alice", Some(("alice", "apw")))).1,
            vec![],
        ),
        (
            "bob",
            try_connect(addr, &connect("bob-only", Some(("bob", "bpw")))).1,
            vec![],
        ),
        (
            "anonymous",
            try_connect(addr, &connect("anon", None)).1,
            vec![],
        ),
    ];
    let (alice, bob, anon) = (0, 1, 2);
    for (who, filter) in [
        (alice, "data/#"),
        (alice, "other/#"),
        (bob, "data/+"),
        (bob, "data/#"),
        (anon, "public/#"),
        (anon, "public/locked"),
        (anon, "data/#"),
    ] {
        let (name, c, _) = &mut clients[who];
        note(&format!("{name} subscribes {filter}"), subscribe(c, filter));
    }
    for (n, (who, topic)) in [
        (alice, "data/x"),
        (alice, "data/secret"),
        (alice, "data/hidden"),
        (alice, "other/x"),
        (bob, "data/x"),
        (anon, "public/x"),
        (anon, CONTROL),
    ]
    .into_iter()
    .enumerate()
    {
        let (name, c, seen) = &mut clients[who];
        note(
            &format!("{name} publishes {topic}"),
            publish(c, topic, n as u16 + 1, seen),
        );
    }
    for (name, c, seen) in &mut clients {
        for topic in received(c, std::mem::take(seen)) {
            note(&format!("{name} receives {topic}"), true);
        }
    }
    let anon = &mut clients[anon].1;
    note(
        "anonymous unsubscribes public/locked",
        unsubscribe(anon, "public/locked"),
    );
    note(
        "anonymous unsubscribes public/#",
        unsubscribe(anon, "public/#"),
    );
    out
}

/// What the decision table's file says.
fn expected_decisions() -> Vec<(String, bool)> {
    [
        ("connect alice", true),
        ("connect alice, wrong password", false),
        ("connect bob, bound client id", true),
        ("connect bob, other client id", false),
        ("connect carol, disabled", false),
        ("connect dave, no password in the file", false),
        ("connect eve, unknown", false),
        ("connect anonymous", true),
        ("alice subscribes data/#", true),
        ("alice subscribes other/#", false),
        ("bob subscribes data/+", true),
        ("bob subscribes data/#", false),
        ("anonymous subscribes public/#", true),
        ("anonymous subscribes public/locked", true),
        ("anonymous subscribes data/#", false),
        ("alice publishes data/x", true),
        ("alice publishes data/secret", false),
        ("alice publishes data/hidden", true),
        ("alice publishes other/x", true),
        ("bob publishes data/x", true),
        ("anonymous publishes public/x", true),
        ("anonymous publishes $CONTROL/dynamic-security/v1", false),
        ("alice receives data/x", true),
        ("alice receives data/x", true),
        ("bob receives data/hidden", true),
        ("anonymous receives public/x", true),
        ("anonymous unsubscribes public/locked", false),
        ("anonymous unsubscribes public/#", true),
    ]
    .into_iter()
    .map(|(w, a)| (w.to_string(), a))
    .collect()
}

/// The same file gives the same connect, publish, subscribe, receive and unsubscribe
/// decisions on pipit and on Mosquitto.
#[test]
fn the_same_file_gives_the_same_decisions_as_mosquitto() {
    let dir = Scratch::new("dynsec-table");
    let file = decisions_file(&dir);
    for peer in pipit_and_mosquitto(&dir, &body(&file)) {
        assert_eq!(
            decisions(peer.addr),
            expected_decisions(),
            "{:?}",
            peer.kind
        );
    }
}
