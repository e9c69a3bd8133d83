//! Embedding hooks that answer later, MQTT 5 enhanced authentication through the
//! authenticate hook, and an interceptor that rewrites a PUBLISH's properties: raw MQTT
//! bytes over TCP against a broker embedded with the hooks.

mod common;

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Connect, Frame, Prop, Props, Raw, prop, split_props};
use pipit::auth::defer::{Defer, Later};
use pipit::auth::hooks::{PublishProperties, Stage, Step};
use pipit::embed::{
    Access, AuthResult, Authenticate, Authorization, Authorize, Credentials, Hooks, Intercept,
    Intercepted, Verdict, loopback_config,
};
use pipit::{Broker, Config, Spawned};

const WAIT: Duration = Duration::from_secs(5);
/// Authentication Method and Authentication Data (v5 3.1.2.11.9, 3.1.2.11.10).
const METHOD: u8 = 0x15;
const DATA: u8 = 0x16;

fn spawn_with(hooks: Hooks, adjust: impl FnOnce(&mut Config)) -> Spawned {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut config = loopback_config();
    adjust(&mut config);
    Broker::builder(config).hooks(hooks).spawn().expect("bind")
}

fn spawn(hooks: Hooks) -> Spawned {
    spawn_with(hooks, |_| {})
}

fn stop(broker: Spawned) {
    broker.handle.shutdown();
    let joined = broker.thread.join().expect("broker thread panicked");
    joined.expect("broker run failed");
}

/// An AUTH packet with `code`, `method` and `data`.
fn auth(code: u8, method: &str, data: &[u8]) -> Vec<u8> {
    let props = Props::new().bin(METHOD, method.as_bytes()).bin(DATA, data);
    let mut body = vec![code];
    common::varint(props.0.len(), &mut body);
    body.extend_from_slice(&props.0);
    common::frame(0xf0, &body)
}

/// An AUTH frame's reason code and properties.
fn parse_auth(f: &Frame) -> (u8, Vec<(u8, Prop)>) {
    assert_eq!(f.kind(), 15, "expected AUTH, got {f:?}");
    let code = f.body.first().copied().unwrap_or(0);
    let props = f.body.get(1..).map_or_else(Vec::new, |b| split_props(b).0);
    (code, props)
}

fn bytes(p: Option<Prop>) -> Option<Vec<u8>> {
    match p {
        Some(Prop::Bytes(b)) => Some(b),
        _ => None,
    }
}

/// The CONNECT of a client using method `method` with `data`.
fn enhanced(client_id: &str, method: &str, data: &[u8]) -> Connect {
    Connect::v5(
        client_id,
        Props::new().bin(METHOD, method.as_bytes()).bin(DATA, data),
    )
}

/// A challenge/response method, "TOY" (SCRAM's shape without its cryptography): the
/// client's first data is its nonce, the broker answers `nonce:server`, the client proves
/// itself with `proof:nonce:server`, and the broker ends with `verified`. With `defer`,
/// the proof's check is answered later, from another thread.
struct Toy {
    defer: Option<Sender<(Vec<u8>, Later<Step>)>>,
}

impl Toy {
    fn check(data: Option<&[u8]>) -> Step {
        match data.and_then(|d| d.strip_prefix(b"proof:")) {
            Some(rest) if rest.ends_with(b":server") => Step::Success(b"verified".to_vec()),
            _ => Step::Done(AuthResult::NotAuthorized),
        }
    }
}

impl Authenticate for Toy {
    fn step(&mut self, c: &Credentials<'_>, files: AuthResult, later: Defer<'_, Step>) -> Step {
        match (c.method, c.stage) {
            (None, _) => Step::Done(files),
            (Some("TOY"), Stage::Connect | Stage::Reauthenticate) => {
                let mut challenge = c.data.unwrap_or_default().to_vec();
                challenge.extend_from_slice(b":server");
                Step::Continue(challenge)
            }
            (Some("TOY"), Stage::Continue) => match &self.defer {
                Some(to) => {
                    let data = c.data.unwrap_or_default().to_vec();
                    to.send((data, later.later()))
                        .expect("the test holds the receiver");
                    Step::Later
                }
                None => Toy::check(c.data),
            },
            (Some(_), _) => Step::BadMethod,
        }
    }
}

#[test]
fn enhanced_authentication_challenge_response_at_connect() {
    let broker = spawn(Hooks {
        authenticate: Some(Box::new(Toy { defer: None })),
        ..Hooks::default()
    });
    let addr = broker.addrs[0];
    let mut c = Raw::open(addr);
    c.send(&enhanced("toy", "TOY", b"n1").bytes());
    // [MQTT-4.12.0-2] AUTH 0x18 with the method [MQTT-4.12.0-5] and the challenge.
    let (code, props) = parse_auth(&c.recv().expect("AUTH"));
    assert_eq!(code, 0x18);
    assert_eq!(bytes(prop(&props, METHOD)), Some(b"TOY".to_vec()));
    assert_eq!(bytes(prop(&props, DATA)), Some(b"n1:server".to_vec()));
    c.send(&auth(0x18, "TOY", b"proof:n1:server"));
    let ack = common::Connack5::parse(&c.recv().expect("CONNACK"));
    assert_eq!(ack.code, 0);
    assert_eq!(bytes(prop(&ack.props, METHOD)), Some(b"TOY".to_vec()));
    assert_eq!(bytes(prop(&ack.props, DATA)), Some(b"verified".to_vec()));
    // Connected for real: it can subscribe.
    assert_eq!(c.subscribe_v5(Props::new(), &[("t", 1)]), [1]);

    // A wrong proof: CONNACK 0x87 [MQTT-4.12.0-4].
    let mut c = Raw::open(addr);
    c.send(&enhanced("liar", "TOY", b"n2").bytes());
    parse_auth(&c.recv().expect("AUTH"));
    c.send(&auth(0x18, "TOY", b"guess"));
    assert_eq!(
        common::Connack5::parse(&c.recv().expect("CONNACK")).code,
        0x87
    );
    c.expect_closed();

    // A method the hook does not know: 0x8C [MQTT-4.12.0-1].
    let (_, ack) = Raw::connect_v5(addr, &enhanced("other", "SCRAM-SHA-1", b"x"));
    assert_eq!(ack.code, 0x8c);

    // A second CONNECT during the exchange is a protocol error [MQTT-3.1.0-2].
    let mut c = Raw::open(addr);
    c.send(&enhanced("twice", "TOY", b"n4").bytes());
    parse_auth(&c.recv().expect("AUTH"));
    c.send(&enhanced("twice", "TOY", b"n5").bytes());
    let frames = c.expect_closed();
    assert!(!frames.iter().any(|f| f.kind() == 15), "{frames:?}");

    // The client's AUTH must name the CONNECT's method [MQTT-4.12.0-5].
    let mut c = Raw::open(addr);
    c.send(&enhanced("switch", "TOY", b"n3").bytes());
    parse_auth(&c.recv().expect("AUTH"));
    c.send(&auth(0x18, "OTHER", b"proof:n3:server"));
    let frames = c.expect_closed();
    assert!(
        !frames
            .iter()
            .any(|f| f.kind() == 2 && f.body.get(1) == Some(&0)),
        "no successful CONNACK: {frames:?}"
    );
    stop(broker);
}

#[test]
fn reauthentication_with_the_same_method() {
    let broker = spawn(Hooks {
        authenticate: Some(Box::new(Toy { defer: None })),
        ..Hooks::default()
    });
    let mut c = Raw::open(broker.addrs[0]);
    c.send(&enhanced("re", "TOY", b"n1").bytes());
    parse_auth(&c.recv().expect("AUTH"));
    c.send(&auth(0x18, "TOY", b"proof:n1:server"));
    assert_eq!(common::Connack5::parse(&c.recv().expect("CONNACK")).code, 0);
    // [MQTT-4.12.1-1] AUTH 0x19 starts it; the exchange ends with AUTH 0x00.
    c.send(&auth(0x19, "TOY", b"n2"));
    let (code, props) = parse_auth(&c.recv().expect("AUTH"));
    assert_eq!(
        (code, bytes(prop(&props, DATA))),
        (0x18, Some(b"n2:server".to_vec()))
    );
    c.send(&auth(0x18, "TOY", b"proof:n2:server"));
    let (code, props) = parse_auth(&c.recv().expect("AUTH"));
    assert_eq!(code, 0x00);
    assert_eq!(bytes(prop(&props, METHOD)), Some(b"TOY".to_vec()));
    assert_eq!(bytes(prop(&props, DATA)), Some(b"verified".to_vec()));
    c.ping();
    // A failed re-authentication closes the connection [MQTT-4.12.1-2].
    c.send(&auth(0x19, "TOY", b"n3"));
    parse_auth(&c.recv().expect("AUTH"));
    c.send(&auth(0x18, "TOY", b"wrong"));
    assert_eq!(c.expect_disconnect(), 0x87);

    // Re-authenticating with another method is a protocol error [MQTT-4.12.1-1].
    let mut c = Raw::open(broker.addrs[0]);
    c.send(&enhanced("re2", "TOY", b"n1").bytes());
    parse_auth(&c.recv().expect("AUTH"));
    c.send(&auth(0x18, "TOY", b"proof:n1:server"));
    assert_eq!(common::Connack5::parse(&c.recv().expect("CONNACK")).code, 0);
    c.send(&auth(0x19, "OTHER", b"n2"));
    assert_eq!(c.expect_disconnect(), 0x82);

    // A client that connected without a method may not send AUTH [MQTT-4.12.0-7].
    let mut plain = Raw::v5(broker.addrs[0], "plain", Props::new());
    plain.send(&auth(0x19, "TOY", b"n"));
    assert_eq!(plain.expect_disconnect(), 0x82);
    stop(broker);
}

#[test]
fn without_a_hook_an_authentication_method_is_refused() {
    let broker = spawn(Hooks::default());
    let (_, ack) = Raw::connect_v5(broker.addrs[0], &enhanced("c", "TOY", b"x"));
    assert_eq!(ack.code, 0x8c);
    stop(broker);
}

#[test]
fn a_deferred_step_of_enhanced_authentication() {
    let (to, steps) = channel();
    let broker = spawn(Hooks {
        authenticate: Some(Box::new(Toy { defer: Some(to) })),
        ..Hooks::default()
    });
    let mut c = Raw::open(broker.addrs[0]);
    c.send(&enhanced("slow", "TOY", b"n1").bytes());
    parse_auth(&c.recv().expect("AUTH"));
    c.send(&auth(0x18, "TOY", b"proof:n1:server"));
    let (data, later) = steps.recv_timeout(WAIT).expect("the hook deferred");
    c.expect_silence(200);
    std::thread::spawn(move || later.complete(Toy::check(Some(&data))));
    let ack = common::Connack5::parse(&c.recv().expect("CONNACK"));
    assert_eq!(ack.code, 0);
    assert_eq!(bytes(prop(&ack.props, DATA)), Some(b"verified".to_vec()));
    stop(broker);
}

/// Passes every CONNECT's decision to the test, which answers it later.
struct Deferred(Sender<(String, Later<Step>)>);

impl Authenticate for Deferred {
    fn step(&mut self, c: &Credentials<'_>, _files: AuthResult, later: Defer<'_, Step>) -> Step {
        let sent = self.0.send((c.client_id.to_owned(), later.later()));
        sent.expect("the test holds the receiver");
        Step::Later
    }
}

/// The client ids the intercept hook saw connect.
type Seen = Arc<Mutex<Vec<String>>>;

/// Counts connects (the intercept hook sees each accepted one).
struct Connects(Arc<Mutex<Vec<String>>>);

impl Intercept for Connects {
    fn on_connect(&mut self, client_id: &str, _username: Option<&str>) {
        self.0.lock().unwrap().push(client_id.to_owned());
    }
}

fn deferred_connects(
    adjust: impl FnOnce(&mut Config),
) -> (Spawned, Receiver<(String, Later<Step>)>, Seen) {
    let (to, decisions) = channel();
    let connects = Arc::new(Mutex::new(Vec::new()));
    let broker = spawn_with(
        Hooks {
            authenticate: Some(Box::new(Deferred(to))),
            intercept: Some(Box::new(Connects(Arc::clone(&connects)))),
            ..Hooks::default()
        },
        adjust,
    );
    (broker, decisions, connects)
}

#[test]
fn a_deferred_connect_holds_the_clients_packets_until_it_is_decided() {
    let (broker, decisions, _) = deferred_connects(|_| {});
    let mut c = Raw::open(broker.addrs[0]);
    // CONNECT, a QoS 1 PUBLISH and a PINGREQ at once: nothing is answered before the
    // decision, and everything after it, in order.
    let mut burst = Connect::v311("held").bytes();
    burst.extend(common::publish("t", b"x", 1, false, 7));
    burst.extend([0xc0, 0x00]);
    c.send(&burst);
    let (client_id, later) = decisions.recv_timeout(WAIT).expect("asked");
    assert_eq!(client_id, "held");
    c.expect_silence(300);
    later.complete(Step::Done(AuthResult::Ok));
    let kinds: Vec<(u8, Vec<u8>)> = (0..3)
        .map(|_| c.recv().expect("a reply"))
        .map(|f| (f.kind(), f.body))
        .collect();
    assert_eq!(
        kinds,
        [(2, vec![0, 0]), (4, vec![0, 7]), (13, vec![])],
        "CONNACK, PUBACK, PINGRESP"
    );

    // Refused later: CONNACK 0x05, and nothing behind the CONNECT was handled.
    let mut c = Raw::open(broker.addrs[0]);
    let mut burst = Connect::v311("nope").bytes();
    burst.extend([0xc0, 0x00]);
    c.send(&burst);
    let (_, later) = decisions.recv_timeout(WAIT).expect("asked");
    later.complete(Step::Done(AuthResult::NotAuthorized));
    let frames = c.expect_closed();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!((frames[0].kind(), frames[0].body.clone()), (2, vec![0, 5]));

    // A `Later` dropped unanswered refuses.
    let mut c = Raw::open(broker.addrs[0]);
    c.send(&Connect::v311("dropped").bytes());
    drop(decisions.recv_timeout(WAIT).expect("asked"));
    assert_eq!(c.recv().map(|f| f.body), Some(vec![0, 5]));
    stop(broker);
}

#[test]
fn a_client_gone_while_its_connect_waits_is_let_go_and_the_late_answer_ignored() {
    let (broker, decisions, connects) = deferred_connects(|_| {});
    let c = Raw::open(broker.addrs[0]);
    let mut c = c;
    c.send(&Connect::v311("leaver").bytes());
    let (_, later) = decisions.recv_timeout(WAIT).expect("asked");
    drop(c);
    std::thread::sleep(Duration::from_millis(200));
    // The same client id connects again while the first answer is still owed; the late
    // answer for the gone connection reaches nobody.
    let mut again = Raw::open(broker.addrs[0]);
    again.send(&Connect::v311("leaver").bytes());
    let (_, second) = decisions.recv_timeout(WAIT).expect("asked again");
    later.complete(Step::Done(AuthResult::Ok));
    again.expect_silence(200);
    assert!(connects.lock().unwrap().is_empty());
    second.complete(Step::Done(AuthResult::Ok));
    assert_eq!(again.recv().map(|f| f.body), Some(vec![0, 0]));
    assert_eq!(*connects.lock().unwrap(), ["leaver"]);
    stop(broker);
}

#[test]
fn a_connect_decision_that_never_comes_times_out() {
    let (broker, decisions, connects) = deferred_connects(|config| {
        config.connect_timeout = Duration::from_secs(1);
    });
    let mut c = Raw::open(broker.addrs[0]);
    c.send(&Connect::v311("forgotten").bytes());
    let (_, later) = decisions.recv_timeout(WAIT).expect("asked");
    let start = Instant::now();
    let frames = c.expect_closed();
    assert!(frames.is_empty(), "closed without CONNACK: {frames:?}");
    assert!(start.elapsed() < Duration::from_secs(4));
    later.complete(Step::Done(AuthResult::Ok));
    std::thread::sleep(Duration::from_millis(100));
    assert!(connects.lock().unwrap().is_empty());
    stop(broker);
}

/// Defers every decision about topics under `slow/` to the test; the rest is the files'.
struct SlowTopics(Sender<(String, Access, Later<bool>)>);

impl Authorize for SlowTopics {
    fn authorize_later(
        &self,
        a: &Authorization<'_>,
        files: bool,
        later: Defer<'_, bool>,
    ) -> Option<bool> {
        if !a.topic.starts_with("slow/") {
            return Some(files);
        }
        let sent = self.0.send((a.topic.to_owned(), a.access, later.later()));
        sent.expect("the test holds the receiver");
        None
    }
}

#[test]
fn deferred_authorization_keeps_each_clients_packet_order() {
    let (to, asked) = channel();
    let broker = spawn(Hooks {
        authorize: Some(Box::new(SlowTopics(to))),
        ..Hooks::default()
    });
    let addr = broker.addrs[0];
    let mut watcher = Raw::v5(addr, "watcher", Props::new());
    assert_eq!(watcher.subscribe_v5(Props::new(), &[("#", 1)]), [1]);
    let mut p = Raw::v5(addr, "publisher", Props::new());
    let mut burst = common::publish_v5("slow/a", b"1", 1, false, 1, Props::new());
    burst.extend(common::publish_v5(
        "fast/b",
        b"2",
        1,
        false,
        2,
        Props::new(),
    ));
    burst.extend(common::publish_v5(
        "slow/c",
        b"3",
        1,
        false,
        3,
        Props::new(),
    ));
    p.send(&burst);
    let (topic, access, first) = asked.recv_timeout(WAIT).expect("asked");
    assert_eq!((topic.as_str(), access), ("slow/a", Access::Write));
    // Nothing behind the waiting PUBLISH is handled, not even `fast/b`.
    p.expect_silence(200);
    first.complete(true);
    let (topic, _, third) = asked.recv_timeout(WAIT).expect("asked");
    assert_eq!(topic, "slow/c");
    third.complete(false);
    // (packet id, reason code; absent means success)
    let acks: Vec<(u8, u8)> = (0..3)
        .map(|_| p.recv_kind(4).body)
        .map(|b| (b[1], b.get(2).copied().unwrap_or(0)))
        .collect();
    // Refused: 0x87 Not authorized.
    assert_eq!(acks, [(1, 0), (2, 0), (3, 0x87)]);
    let got: Vec<String> = (0..2).map(|_| watcher.recv_publish5().topic).collect();
    assert_eq!(got, ["slow/a", "fast/b"]);
    watcher.expect_silence(200);

    // SUBSCRIBE: one question per filter; the SUBACK waits for every answer.
    let mut s = Raw::v5(addr, "subscriber", Props::new());
    s.send(&common::subscribe_v5(
        5,
        Props::new(),
        &[("slow/x", 1), ("open", 1), ("slow/y", 0)],
    ));
    let (x, _, later_x) = asked.recv_timeout(WAIT).expect("asked");
    let (y, access, later_y) = asked.recv_timeout(WAIT).expect("asked");
    assert_eq!(
        (x.as_str(), y.as_str(), access),
        ("slow/x", "slow/y", Access::Subscribe)
    );
    later_y.complete(true);
    s.expect_silence(200);
    drop(later_x);
    let suback = s.recv_kind(9);
    assert_eq!(suback.body[..2], [0, 5]);
    let (_, codes) = split_props(&suback.body[2..]);
    assert_eq!(codes, [0x87, 1, 0]);
    stop(broker);
}

/// Rewrites every PUBLISH's properties.
struct Relabel;

impl Intercept for Relabel {
    fn on_publish(&mut self, p: &Intercepted<'_>) -> Verdict {
        let mut properties = PublishProperties::of(p.properties);
        properties.user_properties.retain(|(k, _)| k != "secret");
        properties.user_properties.push(("site".into(), "7".into()));
        properties.content_type = Some("application/json".into());
        properties.response_topic = Some(format!("replies/{}", p.client_id));
        properties.correlation_data = Some(b"c-1".to_vec());
        properties.message_expiry_interval = Some(3600);
        properties.payload_format_indicator = Some(1);
        let topic = p.topic.to_owned();
        match p.topic {
            // A rewrite that breaks a rule is dropped.
            "bad" => Verdict::Rewrite {
                topic,
                payload: vec![0xff],
                properties: Some(properties),
            },
            _ => Verdict::Rewrite {
                topic,
                payload: b"{}".to_vec(),
                properties: Some(properties),
            },
        }
    }
}

#[test]
fn an_interceptor_rewrites_a_publishs_properties() {
    let broker = spawn(Hooks {
        intercept: Some(Box::new(Relabel)),
        ..Hooks::default()
    });
    let addr = broker.addrs[0];
    let mut sub = Raw::v5(addr, "sub", Props::new());
    assert_eq!(sub.subscribe_v5(Props::new(), &[("#", 1)]), [1]);
    let mut publisher = Raw::v5(addr, "pub", Props::new());
    let props = Props::new()
        .user("secret", "s")
        .user("keep", "k")
        .bin(0x03, b"text/plain");
    publisher.send(&common::publish_v5("a", b"raw", 1, false, 1, props));
    assert_eq!(publisher.recv_kind(4).body[..2], [0, 1]);
    let got = sub.recv_publish5();
    assert_eq!((got.topic.as_str(), &got.payload[..]), ("a", &b"{}"[..]));
    assert_eq!(
        got.user_properties(),
        [("keep".into(), "k".into()), ("site".into(), "7".into())]
    );
    assert_eq!(
        bytes(prop(&got.props, 0x03)),
        Some(b"application/json".to_vec())
    );
    assert_eq!(bytes(prop(&got.props, 0x08)), Some(b"replies/pub".to_vec()));
    assert_eq!(bytes(prop(&got.props, 0x09)), Some(b"c-1".to_vec()));
    assert_eq!(prop(&got.props, 0x01), Some(Prop::Int(1)));
    let expiry = common::prop_int(&got.props, 0x02).expect("message expiry");
    assert!((3590..=3600).contains(&expiry), "{expiry}");
    // A 3.1.1 publisher's message gets them too (its v5 subscribers see them).
    let mut old = Raw::connect(addr, "old", true);
    old.publish_acked("b", b"raw", false, 2);
    let got = sub.recv_publish5();
    assert_eq!(got.topic, "b");
    assert_eq!(bytes(prop(&got.props, 0x08)), Some(b"replies/old".to_vec()));
    // Declared UTF-8 but not: dropped, acknowledged.
    publisher.send(&common::publish_v5(
        "bad",
        b"raw",
        1,
        false,
        3,
        Props::new(),
    ));
    assert_eq!(publisher.recv_kind(4).body[..2], [0, 3]);
    sub.expect_silence(300);
    stop(broker);
}

#[test]
fn a_publish_decision_that_never_comes_ends_at_the_keepalive() {
    let (to, asked) = channel();
    let broker = spawn(Hooks {
        authorize: Some(Box::new(SlowTopics(to))),
        ..Hooks::default()
    });
    let mut c = Raw::connect_with(broker.addrs[0], &Connect::v311("ka").keep_alive(1));
    c.send(&common::publish("slow/x", b"x", 1, false, 1));
    let (_, _, later) = asked.recv_timeout(WAIT).expect("asked");
    let start = Instant::now();
    // Its keepalive of 1 s, one and a half times, and the once-a-second sweep.
    let frames = c.expect_closed();
    assert!(frames.is_empty(), "closed without PUBACK: {frames:?}");
    assert!(start.elapsed() < Duration::from_secs(4));
    later.complete(true);
    stop(broker);
}

#[test]
fn a_deferred_connect_with_an_empty_client_id_keeps_the_id_the_hook_saw() {
    let (broker, decisions, connects) = deferred_connects(|_| {});
    let mut c = Raw::open(broker.addrs[0]);
    c.send(&Connect::v5("", Props::new()).bytes());
    let (asked, later) = decisions.recv_timeout(WAIT).expect("asked");
    assert!(asked.starts_with("pipit-"), "{asked}");
    later.complete(Step::Done(AuthResult::Ok));
    let ack = common::Connack5::parse(&c.recv().expect("CONNACK"));
    assert_eq!(ack.code, 0);
    // [MQTT-3.2.2-16] the Assigned Client Identifier is the id the hook decided on.
    let assigned = bytes(prop(&ack.props, 0x12)).expect("an assigned id");
    assert_eq!(String::from_utf8(assigned).unwrap(), asked);
    c.send(&[0xc0, 0x00]);
    assert_eq!(c.recv().map(|f| f.kind()), Some(13), "PINGRESP");
    assert_eq!(*connects.lock().unwrap(), [asked]);
    stop(broker);
}
