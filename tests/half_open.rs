//! Half-open peers (issue 17): a client that vanishes without FIN or RST. Each test puts the
//! client in its own network namespace, joined to the broker's by a veth pair, and then sets
//! the namespace's end of the link down: from then on nothing the client's kernel sends
//! arrives and nothing the broker sends is acknowledged, exactly as when a device loses power
//! or its network. The broker (in this process) listens on the host end's address.
//!
//! - MQTT keepalive: the client is closed after 1.5 x its keepalive and its will published.
//! - Keepalive 0 with the listener's `tcp_keepalive`: the kernel's probes go unanswered and
//!   the connection fails; a client on a listener without the option stays "connected".
//! - Keepalive 0 with `tcp_user_timeout`: a message sent to the vanished subscriber is never
//!   acknowledged and the connection fails after the timeout; without the option, not.
//!
//! Needs root and `ip` (iproute2) with network namespaces; where they are unavailable each
//! test prints a notice and passes without running.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Connect, Raw};
use pipit::Config;
use pipit::config::{ListenerConfig, TcpKeepalive};

/// A network namespace holding the client's end of a veth pair; removed on drop.
struct Netns {
    name: String,
    host_if: String,
    client_if: String,
    /// The host end's address: the broker listens here.
    host_ip: Ipv4Addr,
}

/// Distinguishes the namespaces (and subnets) of tests running at the same time.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`; true if it succeeded.
fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Netns {
    /// Creates the namespace and the link, or `None` (with a notice) where this cannot run.
    fn create() -> Option<Netns> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = (std::process::id() % 10_000) * 10 + n;
        let subnet = 4 * (tag % 64);
        let ns = Netns {
            name: format!("pipit-ho-{tag}"),
            host_if: format!("pho{tag}h"),
            client_if: format!("pho{tag}c"),
            host_ip: Ipv4Addr::new(10, 213, (tag / 64 % 256) as u8, subnet as u8 + 1),
        };
        let client_ip = Ipv4Addr::new(10, 213, (tag / 64 % 256) as u8, subnet as u8 + 2);
        if !ip(&["netns", "add", &ns.name]) {
            println!("SKIPPED: cannot create a network namespace (needs root and iproute2)");
            return None;
        }
        let (host_cidr, client_cidr) = (format!("{}/30", ns.host_ip), format!("{client_ip}/30"));
        let steps: [&[&str]; 6] = [
            &[
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &ns.client_if,
                "netns",
                &ns.name,
            ],
            &["addr", "add", &host_cidr, "dev", &ns.host_if],
            &["link", "set", &ns.host_if, "up"],
            &[
                "-n",
                &ns.name,
                "addr",
                "add",
                &client_cidr,
                "dev",
                &ns.client_if,
            ],
            &["-n", &ns.name, "link", "set", &ns.client_if, "up"],
            &["-n", &ns.name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            if !ip(step) {
                println!("SKIPPED: `ip {}` failed", step.join(" "));
                return None;
            }
        }
        Some(ns)
    }

    /// Connects to `addr` from inside the namespace (the socket stays in it).
    fn connect(&self, addr: SocketAddr) -> Raw {
        let path = format!("/run/netns/{}", self.name);
        let stream = std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open the namespace");
            // SAFETY: setns on this short-lived thread only; the fd is valid while `file` lives.
            let rc =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            TcpStream::connect(addr).expect("connect from the namespace")
        })
        .join()
        .expect("connecting thread panicked");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Raw { stream }
    }

    /// Sets the client's end of the link down: the client vanishes without FIN or RST.
    fn cut(&self) {
        assert!(ip(&[
            "-n",
            &self.name,
            "link",
            "set",
            &self.client_if,
            "down"
        ]));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and so the pair.
        ip(&["netns", "del", &self.name]);
        ip(&["link", "del", &self.host_if]);
    }
}

/// A broker whose listeners (all on the namespace link's host address) get `adjust`ed.
fn broker(ns: &Netns, listeners: Vec<fn(&mut ListenerConfig)>) -> common::TestBroker {
    let host_ip = ns.host_ip;
    common::start_with(move |c: &mut Config| {
        c.listeners = (listeners.iter())
            .map(|adjust| {
                let mut l = ListenerConfig::new(SocketAddr::new(IpAddr::V4(host_ip), 0));
                adjust(&mut l);
                l
            })
            .collect();
    })
}

/// A client inside the namespace with a will on `will_topic` and the given keepalive.
fn vanishing_client(ns: &Netns, addr: SocketAddr, id: &str, keep_alive: u16) -> Raw {
    let mut c = ns.connect(addr);
    let connect =
        Connect::v311(id)
            .keep_alive(keep_alive)
            .will(&format!("will/{id}"), b"gone", 0, false);
    c.send(&connect.bytes());
    let ack = c.recv().expect("CONNACK");
    assert_eq!((ack.kind(), ack.body.clone()), (2, vec![0, 0]));
    c
}

/// Collects the wills (topic, arrival) that arrive at `observer` within `within`.
fn wills(observer: &mut Raw, within: Duration) -> Vec<(String, Instant)> {
    let start = Instant::now();
    let mut got = Vec::new();
    while start.elapsed() < within {
        let left = within
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(1));
        observer.stream.set_read_timeout(Some(left)).unwrap();
        match observer.read_frame() {
            Ok(Some(f)) if f.kind() == 3 => {
                got.push((common::Publish::parse(&f).topic, Instant::now()))
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("observer closed"),
            Err(_) => break,
        }
    }
    got
}

/// A client on the host side subscribed to every will.
fn observer(addr: SocketAddr) -> Raw {
    let mut o = Raw::connect(addr, "observer", true);
    assert_eq!(o.subscribe("will/#", 0), 0);
    o
}

#[test]
fn mqtt_keepalive_detects_a_vanished_client_at_one_and_a_half_times() {
    let Some(ns) = Netns::create() else { return };
    let b = broker(&ns, vec![|_| {}]);
    let mut o = observer(b.addr);
    let _c = vanishing_client(&ns, b.addr, "ka2", 2);
    let connected = Instant::now();
    ns.cut();
    let got = wills(&mut o, Duration::from_secs(8));
    assert_eq!(got.len(), 1, "one will expected: {got:?}");
    assert_eq!(got[0].0, "will/ka2");
    // 1.5 x 2 s after the last packet the broker heard (the CONNECT) [MQTT-3.1.2-24].
    let after = got[0].1 - connected;
    assert!(
        after >= Duration::from_millis(2_900),
        "will after {after:?}: closed before 1.5 x keepalive"
    );
}

#[test]
fn tcp_keepalive_drops_a_vanished_client_with_mqtt_keepalive_zero() {
    let Some(ns) = Netns::create() else { return };
    let probing: fn(&mut ListenerConfig) = |l| {
        l.tcp_keepalive = Some(TcpKeepalive {
            idle: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            count: 2,
        })
    };
    let b = broker(&ns, vec![probing, |_| {}]);
    let mut o = observer(b.addrs[0]);
    let _probed = vanishing_client(&ns, b.addrs[0], "probed", 0);
    let _plain = vanishing_client(&ns, b.addrs[1], "plain", 0);
    ns.cut();
    // Idle 1 s, then 2 probes 1 s apart: about 3 s. Without the option nothing would ever
    // notice: keepalive 0 means the broker expects no traffic.
    let got = wills(&mut o, Duration::from_secs(8));
    let topics: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics, ["will/probed"], "{got:?}");
}

#[test]
fn tcp_user_timeout_drops_a_vanished_subscriber_with_mqtt_keepalive_zero() {
    let Some(ns) = Netns::create() else { return };
    let timed: fn(&mut ListenerConfig) = |l| l.tcp_user_timeout = Some(Duration::from_secs(2));
    let b = broker(&ns, vec![timed, |_| {}]);
    let mut o = observer(b.addrs[0]);
    let mut timed_sub = vanishing_client(&ns, b.addrs[0], "timed", 0);
    let mut plain_sub = vanishing_client(&ns, b.addrs[1], "plain", 0);
    for c in [&mut timed_sub, &mut plain_sub] {
        assert_eq!(c.subscribe("data", 0), 0);
    }
    ns.cut();
    // The broker's PUBLISHes to both are never acknowledged: the one with the option fails
    // 2 s later (ETIMEDOUT); the other keeps retransmitting for many minutes.
    let mut publisher = Raw::connect(b.addrs[0], "publisher", true);
    publisher.publish_acked("data", b"unacknowledged", false, 1);
    let got = wills(&mut o, Duration::from_secs(8));
    let topics: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics, ["will/timed"], "{got:?}");
}
