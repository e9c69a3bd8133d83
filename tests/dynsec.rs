//! Mosquitto 2.0's dynamic security plugin, built into pipit: the same JSON file and the same
//! `mosquitto.conf` lines give the same decisions on pipit and on Mosquitto 2.0.11 (with
//! Debian's `mosquitto_dynamic_security.so`), and `mosquitto_ctrl dynsec` manages both the
//! same way. Each scenario runs against pipit and, if installed, the real Mosquitto, and the
//! outcomes are compared; pipit's are also checked against what the file says.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Connect, Props, Raw, publish_v5, split_props, unsubscribe_v5};
use mosquitto::{Kind, Peer, mosquitto_installed, pipit_and_mosquitto, start};
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

/// Runs `mosquitto_ctrl ARGS` and returns whether it succeeded and what it printed.
fn ctrl(args: &[&str]) -> (bool, String) {
    let out = Command::new("mosquitto_ctrl")
        .args(args)
        .output()
        .expect("run mosquitto_ctrl");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Runs `mosquitto_ctrl` as the admin against `addr` with `dynsec ARGS`.
fn dynsec(addr: SocketAddr, args: &[&str]) -> String {
    let port = addr.port().to_string();
    let mut all = vec![
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-u",
        "admin",
        "-P",
        "adminpw",
    ];
    all.push("dynsec");
    all.extend_from_slice(args);
    let (ok, text) = ctrl(&all);
    assert!(ok, "mosquitto_ctrl dynsec {args:?}: {text}");
    text
}

/// The commands the admin runs: a client, a role with ACLs, the role given to the client.
const COMMANDS: [&[&str]; 6] = [
    &["createClient", "sensor", "-p", "spw"],
    &["createRole", "sensors"],
    &[
        "addRoleACL",
        "sensors",
        "publishClientSend",
        "sensors/#",
        "allow",
    ],
    &[
        "addRoleACL",
        "sensors",
        "subscribePattern",
        "sensors/#",
        "allow",
    ],
    &[
        "addRoleACL",
        "sensors",
        "publishClientSend",
        "sensors/private",
        "deny",
        "5",
    ],
    &["addClientRole", "sensor", "sensors"],
];

/// What the client `mosquitto_ctrl` made may do: (what, allowed) per step.
fn sensor_decisions(addr: SocketAddr) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let wrong = connect("s-0", Some(("sensor", "wrong")));
    out.push((
        "connect, wrong password".to_string(),
        try_connect(addr, &wrong).0,
    ));
    let (ok, mut c) = try_connect(addr, &connect("s-1", Some(("sensor", "spw"))));
    out.push(("connect".to_string(), ok));
    for filter in ["sensors/#", "other/#", "$CONTROL/dynamic-security/#"] {
        out.push((format!("subscribe {filter}"), subscribe(&mut c, filter)));
    }
    let mut seen = Vec::new();
    for (n, topic) in ["sensors/a", "sensors/private", "other/a", CONTROL]
        .iter()
        .enumerate()
    {
        let allowed = publish(&mut c, topic, n as u16 + 1, &mut seen);
        out.push((format!("publish {topic}"), allowed));
    }
    // `dynsec init` makes publishClientReceive allowed by default.
    for topic in received(&mut c, seen) {
        out.push((format!("receive {topic}"), true));
    }
    out
}

/// `mosquitto_ctrl dynsec` drives pipit as it drives Mosquitto: the same commands on a file
/// `dynsec init` made give the same answers and the same decisions.
#[test]
fn mosquitto_ctrl_manages_pipit_as_mosquitto() {
    if !Path::new("/usr/bin/mosquitto_ctrl").is_file() {
        eprintln!("skipped: /usr/bin/mosquitto_ctrl is not installed");
        return;
    }
    let mut kinds = vec![Kind::Pipit];
    if mosquitto_installed("mosquitto_ctrl against Mosquitto") {
        kinds.push(Kind::Mosquitto);
    }
    let mut results = Vec::new();
    for kind in kinds {
        let dir = Scratch::new(&format!("dynsec-ctrl-{kind:?}"));
        let file = dir.path("dynsec.json");
        let (ok, text) = ctrl(&["dynsec", "init", file.to_str().unwrap(), "admin", "adminpw"]);
        assert!(ok, "{text}");
        let peer = start(&dir, kind, &body(&file));
        for args in COMMANDS {
            dynsec(peer.addr, args);
        }
        let client = dynsec(peer.addr, &["getClient", "sensor"]);
        let decisions = sensor_decisions(peer.addr);
        results.push((kind, client, decisions));
    }
    let expected = [
        ("connect, wrong password", false),
        ("connect", true),
        ("subscribe sensors/#", true),
        ("subscribe other/#", false),
        ("subscribe $CONTROL/dynamic-security/#", false),
        ("publish sensors/a", true),
        ("publish sensors/private", false),
        ("publish other/a", false),
        ("publish $CONTROL/dynamic-security/v1", false),
        ("receive sensors/a", true),
    ];
    let expected: Vec<(String, bool)> = expected.iter().map(|(w, a)| (w.to_string(), *a)).collect();
    for (kind, client, decisions) in &results {
        assert_eq!(decisions, &expected, "{kind:?}");
        assert!(
            client.contains("sensor") && client.contains("sensors"),
            "{kind:?}: {client}"
        );
        assert_eq!(client, &results[0].1, "getClient on {kind:?} and pipit");
    }
}

/// Publishes `payload` on the control topic as `c` and returns the response's text.
fn command(c: &mut Raw, payload: &str) -> String {
    c.send(&publish_v5(
        CONTROL,
        payload.as_bytes(),
        0,
        false,
        0,
        Props::new(),
    ));
    let f = c.recv_kind(3);
    String::from_utf8(common::Publish5::parse(&f).payload).unwrap()
}

/// Adds to `file` the admin client and role `mosquitto_ctrl dynsec init` makes (user
/// `admin`, password `adminpw`); false, with a notice, without `mosquitto_ctrl`.
fn add_admin(dir: &Scratch, file: &Path) -> bool {
    let init = dir.path("init.json");
    let (ok, text) = ctrl(&["dynsec", "init", path(&init), "admin", "adminpw"]);
    if !ok {
        eprintln!("skipped: mosquitto_ctrl dynsec init failed: {text}");
        return false;
    }
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (init, mut merged) = (read(&init), read(file));
    for key in ["clients", "roles"] {
        let extra = init[key].as_array().unwrap().clone();
        merged[key].as_array_mut().unwrap().extend(extra);
    }
    std::fs::write(file, merged.to_string()).unwrap();
    true
}

/// A change disconnects the connected clients whose rights it changes, as Mosquitto's
/// plugin does (MQTT 5: DISCONNECT 0x98 Administrative action), and them only; the change
/// applies when they come back.
#[test]
fn a_change_disconnects_the_clients_it_concerns() {
    let dir = Scratch::new("dynsec-kick");
    let file = decisions_file(&dir);
    if !add_admin(&dir, &file) {
        return;
    }
    for peer in pipit_and_mosquitto(&dir, &body(&file)) {
        let kind = peer.kind;
        let (_, mut admin) = try_connect(peer.addr, &connect("admin", Some(("admin", "adminpw"))));
        assert!(subscribe(
            &mut admin,
            "$CONTROL/dynamic-security/v1/response"
        ));
        let (_, mut alice) = try_connect(peer.addr, &connect("alice", Some(("alice", "apw"))));
        let (_, mut bob) = try_connect(peer.addr, &connect("bob-only", Some(("bob", "bpw"))));
        let disable = r#"{"commands":[{"command":"disableClient","username":"alice"}]}"#;
        assert!(command(&mut admin, disable).contains(r#""command":"disableClient""#));
        assert_eq!(alice.expect_disconnect(), 0x98, "{kind:?}");
        bob.expect_silence(300);
        let again = connect("alice-2", Some(("alice", "apw")));
        assert!(!try_connect(peer.addr, &again).0, "{kind:?}: disabled");
        let enable = r#"{"commands":[{"command":"enableClient","username":"alice"}]}"#;
        command(&mut admin, enable);
        assert!(try_connect(peer.addr, &again).0, "{kind:?}: enabled again");
    }
}

/// A client without the admin role can neither send commands nor read the responses; a
/// malformed command gets Mosquitto's error response and the broker carries on.
#[test]
fn only_the_admin_role_uses_the_control_topic() {
    let dir = Scratch::new("dynsec-admin");
    let file = decisions_file(&dir);
    if !add_admin(&dir, &file) {
        return;
    }
    for peer in pipit_and_mosquitto(&dir, &body(&file)) {
        let kind = peer.kind;
        let (_, mut alice) = try_connect(peer.addr, &connect("alice", Some(("alice", "apw"))));
        assert!(
            !subscribe(&mut alice, "$CONTROL/dynamic-security/#"),
            "{kind:?}"
        );
        let create = r#"{"commands":[{"command":"createClient","username":"mallory"}]}"#;
        alice.send(&publish_v5(
            CONTROL,
            create.as_bytes(),
            1,
            false,
            1,
            Props::new(),
        ));
        assert_eq!(alice.recv_kind(4).body.get(2), Some(&0x87), "{kind:?}");

        let (ok, mut admin) = try_connect(peer.addr, &connect("admin", Some(("admin", "adminpw"))));
        assert!(ok, "{kind:?}");
        assert!(subscribe(
            &mut admin,
            "$CONTROL/dynamic-security/v1/response"
        ));
        let get =
            r#"{"commands":[{"command":"getClient","username":"mallory","correlationData":"7"}]}"#;
        let response: serde_json::Value = serde_json::from_str(&command(&mut admin, get)).unwrap();
        let expected = serde_json::json!({"responses": [
            {"command": "getClient", "error": "Client not found", "correlationData": "7"}]});
        assert_eq!(response, expected, "{kind:?}");
        for (payload, error) in [
            ("{not json", "Payload not valid JSON"),
            (r#"{"commands":{}}"#, "Invalid/missing commands"),
            (
                r#"{"commands":[{"command":"createClient"}]}"#,
                "Invalid/missing username",
            ),
            (
                r#"{"commands":[{"command":"frobnicate"}]}"#,
                "Unknown command",
            ),
        ] {
            let response: serde_json::Value =
                serde_json::from_str(&command(&mut admin, payload)).unwrap();
            assert_eq!(
                response["responses"][0]["error"], error,
                "{kind:?}: {payload}"
            );
        }
        // Still serving.
        assert!(
            publish(&mut alice, "data/x", 2, &mut Vec::new()),
            "{kind:?}"
        );
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 scratch path")
}

/// The file pipit saves after `mosquitto_ctrl` changes is read back by a restarted pipit,
/// and by Mosquitto, with the same decisions.
#[test]
fn a_file_pipit_wrote_loads_in_pipit_again_and_in_mosquitto() {
    if !Path::new("/usr/bin/mosquitto_ctrl").is_file() {
        eprintln!("skipped: /usr/bin/mosquitto_ctrl is not installed");
        return;
    }
    let dir = Scratch::new("dynsec-reload");
    let file = dir.path("dynsec.json");
    assert!(ctrl(&["dynsec", "init", path(&file), "admin", "adminpw"]).0);
    let before = {
        let peer = start(&dir, Kind::Pipit, &body(&file));
        for args in COMMANDS {
            dynsec(peer.addr, args);
        }
        sensor_decisions(peer.addr)
    };
    assert!(!dir.path("dynsec.json.new").exists());
    let mut peers: Vec<Peer> = vec![start(&dir, Kind::Pipit, &body(&file))];
    if mosquitto_installed("loading pipit's file") {
        peers.push(start(&dir, Kind::Mosquitto, &body(&file)));
    }
    for peer in peers {
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(sensor_decisions(peer.addr), before, "{:?}", peer.kind);
    }
}

/// `$CONTROL/...` is the broker's, dynamic security or not: a PUBLISH there reaches no
/// subscriber, on pipit as on Mosquitto (which consumes it in `handle__publish`).
#[test]
fn control_topics_reach_no_subscriber_even_without_dynamic_security() {
    let dir = Scratch::new("dynsec-control-consumed");
    for peer in pipit_and_mosquitto(&dir, "allow_anonymous true\n") {
        let mut sub = Raw::connect(peer.addr, "eavesdropper", true);
        sub.subscribe("$CONTROL/#", 1);
        let mut publisher = Raw::connect(peer.addr, "admin-ish", true);
        publisher.send(&common::publish(
            "$CONTROL/dynamic-security/v1",
            br#"{"commands":[]}"#,
            1,
            false,
            1,
        ));
        publisher.recv_kind(4);
        publisher.send(&common::publish("$CONTROL/other", b"x", 0, false, 0));
        sub.expect_silence(300);
    }
}
