//! Embedding hooks (`pipit::embed::Hooks`): an authentication hook and an authorization hook
//! on top of the files, and an interceptor that rewrites, drops and observes, for local and
//! TCP clients alike.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Connect, Raw};
use pipit::embed::{
    Access, AuthResult, Authenticate, Authorization, Authorize, Credentials, Hooks, Intercept,
    Intercepted, LocalError, LocalOptions, Outgoing, Verdict, loopback_config,
};
use pipit::wire::{QoS, SubscriptionOptions};
use pipit::{Broker, Spawned};

const WAIT: Duration = Duration::from_secs(5);

fn spawn(hooks: Hooks) -> Spawned {
    let _ = env_logger::builder().is_test(true).try_init();
    Broker::builder(loopback_config())
        .hooks(hooks)
        .spawn()
        .expect("bind")
}

fn stop(broker: Spawned) {
    broker.handle.shutdown();
    broker
        .thread
        .join()
        .expect("broker thread panicked")
        .expect("broker run failed");
}

/// Refuses the user "mallory", and otherwise says what the files said.
struct NoMallory;

impl Authenticate for NoMallory {
    fn authenticate(&mut self, c: &Credentials<'_>, files: AuthResult) -> AuthResult {
        if c.username == Some("mallory") {
            AuthResult::NotAuthorized
        } else {
            files
        }
    }
}

#[test]
fn an_auth_hook_refuses_a_user_local_and_over_tcp() {
    let broker = spawn(Hooks {
        authenticate: Some(Box::new(NoMallory)),
        ..Hooks::default()
    });
    let refused = broker
        .handle
        .local_client(LocalOptions::new("m").login("mallory", b"any"))
        .unwrap_err();
    assert_eq!(refused, LocalError::Refused(0x87));
    let code = common::connack_code(
        broker.addrs[0],
        &Connect::v311("m-tcp").login("mallory", b"any"),
    );
    assert_eq!(code, 0x05, "3.1.1 not authorized");
    // Everyone else: the files' verdict (no password file, anonymous allowed).
    broker
        .handle
        .local_client(LocalOptions::new("a").login("alice", b"any"))
        .unwrap()
        .disconnect();
    assert_eq!(
        common::connack_code(broker.addrs[0], &Connect::v311("anon")),
        0
    );
    stop(broker);
}

/// Drops `drop/...`, rewrites `raw/x` to `cooked/x` in upper case, and records connects
/// and disconnects.
struct Cook(Arc<Mutex<Vec<String>>>);

impl Intercept for Cook {
    fn on_publish(&mut self, p: &Intercepted<'_>) -> Verdict {
        if p.topic.starts_with("drop/") {
            return Verdict::Drop;
        }
        match p.topic.strip_prefix("raw/") {
            Some(rest) => Verdict::Rewrite {
                properties: None,
                topic: format!("cooked/{rest}"),
                payload: p.payload.to_ascii_uppercase(),
            },
            None => Verdict::Keep,
        }
    }

    fn on_connect(&mut self, client_id: &str, _username: Option<&str>) {
        self.0.lock().unwrap().push(format!("+{client_id}"));
    }

    fn on_disconnect(&mut self, client_id: &str) {
        self.0.lock().unwrap().push(format!("-{client_id}"));
    }
}

#[test]
fn an_interceptor_rewrites_drops_and_observes() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let broker = spawn(Hooks {
        intercept: Some(Box::new(Cook(Arc::clone(&seen)))),
        ..Hooks::default()
    });
    let mut watcher = broker
        .handle
        .local_client(LocalOptions::new("watcher"))
        .unwrap();
    watcher
        .subscribe(&[("#", SubscriptionOptions::at(QoS::AtLeastOnce))])
        .unwrap();
    let mut local = broker
        .handle
        .local_client(LocalOptions::new("local"))
        .unwrap();
    local
        .publish(&Outgoing::new("drop/me", b"x").qos(QoS::AtLeastOnce))
        .unwrap();
    local
        .publish(&Outgoing::new("raw/1", b"abc").qos(QoS::ExactlyOnce))
        .unwrap();
    let mut tcp = Raw::connect(broker.addrs[0], "tcp", true);
    tcp.publish_acked("raw/2", b"def", false, 1);
    tcp.publish_acked("plain", b"as is", false, 2);
    let mut got = Vec::new();
    while let Some(m) = watcher.recv_timeout(Duration::from_millis(500)).unwrap() {
        got.push((m.topic, m.payload));
    }
    assert_eq!(
        got,
        [
            ("cooked/1".to_owned(), b"ABC".to_vec()),
            ("cooked/2".to_owned(), b"DEF".to_vec()),
            ("plain".to_owned(), b"as is".to_vec()),
        ]
    );
    tcp.disconnect();
    local.disconnect();
    // The close is the loop's; give it the turn.
    let deadline = std::time::Instant::now() + WAIT;
    while seen.lock().unwrap().len() < 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut events = seen.lock().unwrap().clone();
    events.sort();
    assert_eq!(events, ["+local", "+tcp", "+watcher", "-local", "-tcp"]);
    stop(broker);
}

/// Users named `*-ro` publish nothing; nobody subscribes to `secret/...`; nobody receives
/// `hidden/...` (whatever filter matched it).
struct Policy;

impl Authorize for Policy {
    fn authorize(&self, a: &Authorization<'_>, files: bool) -> bool {
        let read_only = a.username.is_some_and(|u| u.ends_with("-ro"));
        files
            && match a.access {
                Access::Write => !read_only,
                Access::Subscribe => !a.topic.starts_with("secret/"),
                Access::Read => !a.topic.starts_with("hidden/"),
                Access::Unsubscribe => true,
            }
    }
}

#[test]
fn an_authorize_hook_decides_publish_subscribe_and_receive() {
    let broker = spawn(Hooks {
        authorize: Some(Box::new(Policy)),
        ..Hooks::default()
    });
    let mut viewer = broker
        .handle
        .local_client(LocalOptions::new("viewer").login("viewer-ro", b""))
        .unwrap();
    assert_eq!(
        viewer.publish(&Outgoing::new("a/b", b"x").qos(QoS::AtLeastOnce)),
        Err(LocalError::Refused(0x87))
    );
    let codes = viewer
        .subscribe(&[
            ("secret/#", SubscriptionOptions::at(QoS::AtLeastOnce)),
            ("#", SubscriptionOptions::at(QoS::AtLeastOnce)),
        ])
        .unwrap();
    assert_eq!(codes, [0x87, 1]);
    let mut writer = Raw::connect(broker.addrs[0], "writer", true);
    writer.publish_acked("hidden/x", b"no", false, 1);
    writer.publish_acked("open/x", b"yes", false, 2);
    let got = viewer.recv_timeout(WAIT).unwrap().expect("a message");
    assert_eq!(got.topic, "open/x", "hidden/x is not delivered");
    assert_eq!(
        viewer.recv_timeout(Duration::from_millis(200)).unwrap(),
        None
    );
    stop(broker);
}
