//! Bridges (`connection` blocks): two pipit brokers bridged in, out and both ways with
//! prefixes, QoS 0/1/2 and retained messages; pipit bridged to the real Mosquitto in both
//! directions, MQTT 3.1.1 and 5, `try_private` on and off; a `topic # both` bridge that
//! must not echo; the uplink stopped and started again with QoS 1 messages published in
//! between; a remote that refuses the `try_private` bit; and pipit as the server of a
//! bridge that sets it, compared with Mosquitto. Over TLS (`tls` module): pipit bridged to
//! pipit's TLS listener both ways, with a client certificate the remote requires; a wrong CA
//! or a certificate for another name never connects (and never sends plaintext), unless
//! `bridge_insecure` waives the name; and pipit bridged to Mosquitto's TLS listener.
#![cfg(feature = "bridge")]

#[path = "common/bridge.rs"]
mod bridging;
mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[cfg(feature = "tls")]
#[path = "common/pki.rs"]
mod pki;
#[path = "common/auth.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use bridging::{STATE, bridged, next_message, subscriber, wait_up};
use common::{Connect, Publish, Raw, TestBroker, publish, start_with};
use mosquitto::{Mosquitto, mosquitto_installed};
use pipit::Config;
use support::{free_port, local};

/// Publishes at `qos` from a fresh client at `addr`, waiting for the flow to complete.
fn publish_at(addr: SocketAddr, topic: &str, payload: &[u8], qos: u8, retain: bool) {
    let mut c = Raw::connect(addr, "pub", true);
    c.send(&publish(topic, payload, qos, retain, 7));
    match qos {
        1 => drop(c.recv_kind(4)),
        2 => {
            c.recv_kind(5);
            c.send(&[0x62, 2, 0, 7]);
            c.recv_kind(7);
        }
        _ => c.ping(),
    }
}

#[test]
fn two_pipits_bridged_out_in_and_both_with_prefixes_qos_and_retained() {
    let remote = start_with(|_| {});
    let gateway = bridged(&format!(
        "address {}\ntopic sensors/# out 1 local/ site1/\ntopic cmd/# in 2 dev/ cloud/\n\
         topic x/# both 0\ntopic keep/# out 1\ntopic q2/# out 2\n",
        remote.addr
    ));
    wait_up(remote.addr);
    // out: a local prefix is taken off and the remote one put on, at the message's QoS.
    let mut up = subscriber(remote.addr, "up", "site1/#", 2);
    publish_at(gateway.addr, "local/sensors/t1", b"21.5", 1, false);
    let p = next_message(&mut up);
    assert_eq!(
        (&*p.topic, &*p.payload, p.qos),
        ("site1/sensors/t1", &b"21.5"[..], 1)
    );
    publish_at(gateway.addr, "sensors/t1", b"no prefix", 1, false);
    up.expect_silence(300);
    let mut q2 = subscriber(remote.addr, "q2", "q2/#", 2);
    publish_at(gateway.addr, "q2/t", b"exactly once", 2, false);
    let p = next_message(&mut q2);
    assert_eq!((&*p.topic, p.qos), ("q2/t", 2), "out at QoS 2");
    q2.expect_silence(300);
    // in: QoS 2 end to end.
    let mut down = subscriber(gateway.addr, "down", "dev/#", 2);
    publish_at(remote.addr, "cloud/cmd/open", b"now", 2, false);
    let p = next_message(&mut down);
    assert_eq!(
        (&*p.topic, &*p.payload, p.qos),
        ("dev/cmd/open", &b"now"[..], 2)
    );
    // both, at QoS 0.
    let mut x_up = subscriber(remote.addr, "xu", "x/#", 1);
    let mut x_down = subscriber(gateway.addr, "xd", "x/#", 1);
    // Each side's subscriber gets its own broker's message at QoS 1 and the bridged one at
    // the bridge's QoS 0.
    publish_at(gateway.addr, "x/from-gw", b"a", 1, false);
    let p = next_message(&mut x_up);
    assert_eq!((&*p.topic, p.qos), ("x/from-gw", 0));
    let p = next_message(&mut x_down);
    assert_eq!((&*p.topic, p.qos), ("x/from-gw", 1));
    publish_at(remote.addr, "x/from-cloud", b"b", 1, false);
    let p = next_message(&mut x_up);
    assert_eq!((&*p.topic, p.qos), ("x/from-cloud", 1));
    let p = next_message(&mut x_down);
    assert_eq!((&*p.topic, p.qos), ("x/from-cloud", 0));
    // retained: kept on the remote, so a later subscriber there gets it. A subscriber
    // already there says when it has crossed (the publisher's PUBACK comes from the
    // gateway, before the bridge has forwarded it).
    let mut crossed = subscriber(remote.addr, "crossed", "keep/#", 1);
    publish_at(gateway.addr, "keep/last", b"r", 1, true);
    assert_eq!(&*next_message(&mut crossed).topic, "keep/last");
    let mut probe = subscriber(remote.addr, "probe", "keep/#", 1);
    let p = next_message(&mut probe);
    assert_eq!(
        (&*p.topic, p.retain, &*p.payload),
        ("keep/last", true, &b"r"[..])
    );
}

/// A `topic # both` bridge between two brokers delivers each message once on each side, in
/// MQTT 3.1.1 (`try_private`: the remote gives the bridge no-local) and MQTT 5 (the
/// bridge's own no-local subscription option).
#[test]
fn a_both_hash_bridge_does_not_echo() {
    for version in ["mqttv311", "mqttv50"] {
        let remote = start_with(|_| {});
        let gateway = bridged(&format!(
            "address {}\ntopic # both 1\nbridge_protocol_version {version}\n",
            remote.addr
        ));
        wait_up(remote.addr);
        let mut on_gw = subscriber(gateway.addr, "a", "t/#", 1);
        let mut on_remote = subscriber(remote.addr, "b", "t/#", 1);
        publish_at(gateway.addr, "t/1", b"from gw", 1, false);
        publish_at(remote.addr, "t/2", b"from remote", 1, false);
        for side in [&mut on_gw, &mut on_remote] {
            let mut got: Vec<String> = (0..2).map(|_| next_message(side).topic).collect();
            got.sort();
            assert_eq!(got, ["t/1", "t/2"], "{version}");
            side.expect_silence(700);
        }
    }
}

/// pipit bridged to the real Mosquitto, both directions, for MQTT 3.1.1 with and without
/// `try_private` and for MQTT 5; with `try_private` Mosquitto does not echo a `both` topic.
#[test]
fn bridged_to_mosquitto_both_ways() {
    if !mosquitto_installed("bridge to Mosquitto") {
        return;
    }
    let cases = [("mqttv311", true), ("mqttv311", false), ("mqttv50", true)];
    for (version, private) in cases {
        let cloud = Mosquitto::start("user root\n");
        let gateway = bridged(&format!(
            "address {}\nbridge_protocol_version {version}\ntry_private {private}\n\
             topic up/# out 1\ntopic down/# in 1\ntopic both/# both 1\n",
            cloud.addr
        ));
        wait_up(cloud.addr);
        let case = format!("{version} try_private {private}");
        let mut at_cloud = subscriber(cloud.addr, "c", "up/#", 1);
        publish_at(gateway.addr, "up/a", b"1", 1, false);
        assert_eq!(next_message(&mut at_cloud).topic, "up/a", "{case}");
        let mut at_gw = subscriber(gateway.addr, "g", "down/#", 1);
        publish_at(cloud.addr, "down/b", b"2", 1, false);
        assert_eq!(next_message(&mut at_gw).topic, "down/b", "{case}");
        if private || version == "mqttv50" {
            let mut both = subscriber(gateway.addr, "h", "both/#", 1);
            publish_at(gateway.addr, "both/c", b"3", 1, false);
            assert_eq!(next_message(&mut both).topic, "both/c", "{case}");
            both.expect_silence(700);
        }
        let log = cloud.log();
        let expected = if private && version == "mqttv311" {
            "New bridge connected"
        } else {
            "New client connected"
        };
        assert!(log.contains(expected), "{case}: {log}");
    }
}

/// The uplink stopped and started again on the same port: the QoS 1 messages published on
/// the gateway meanwhile wait in the bridge's session and arrive after it reconnects, in
/// order, once each.
#[test]
fn qos1_published_while_the_uplink_is_down_arrives_in_order() {
    let port = free_port();
    let remote_at = |p: u16| start_with(move |c| c.listeners[0].addr = local(p));
    let remote = remote_at(port);
    // A host name: resolved off the loop, on a helper thread, at each attempt.
    let gateway = bridged(&format!("address localhost:{port}\ntopic q/# out 1\n"));
    wait_up(remote.addr);
    drop(remote);
    let mut publisher = Raw::connect(gateway.addr, "pub", true);
    for i in 0..20u16 {
        publisher.publish_acked("q/n", i.to_string().as_bytes(), false, i + 1);
    }
    let remote = remote_at(port);
    let mut sub = subscriber(remote.addr, "s", "q/#", 1);
    let got: Vec<String> = (0..20)
        .map(|_| String::from_utf8(next_message(&mut sub).payload).unwrap())
        .collect();
    let expected: Vec<String> = (0..20).map(|i: u16| i.to_string()).collect();
    assert_eq!(got, expected);
    sub.expect_silence(500);
}

/// A fake remote that refuses CONNECT with the `try_private` bit (protocol level 0x84), by
/// closing the socket (as HiveMQ does) or with CONNACK 1, and accepts level 4: the bridge
/// asks again without the bit and gets connected.
#[test]
fn a_remote_refusing_try_private_still_gets_the_bridge() {
    for refuse_by_closing in [true, false] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let gateway = bridged(&format!("address {addr}\ntopic t out 0\n"));
        let mut levels = Vec::new();
        let mut accepted = None;
        // The bridge retries every second: each attempt is accepted here.
        for _ in 0..3 {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = [0u8; 9];
            s.read_exact(&mut head).unwrap();
            // 0x10, one length byte, 0 4 "MQTT", level; then the rest of the CONNECT.
            levels.push(head[8]);
            let mut rest = vec![0u8; usize::from(head[1]) + 2 - head.len()];
            s.read_exact(&mut rest).unwrap();
            if head[8] == 0x84 {
                if !refuse_by_closing {
                    s.write_all(&[0x20, 2, 0, 1]).unwrap();
                }
                continue;
            }
            s.write_all(&[0x20, 2, 0, 0]).unwrap();
            accepted = Some(s);
            break;
        }
        assert!(
            accepted.is_some(),
            "closing {refuse_by_closing}: {levels:?}"
        );
        assert_eq!(levels, [0x84, 4], "closing {refuse_by_closing}");
        drop(gateway);
    }
}

/// As Mosquitto: a client connecting with the bridge bit (0x84) is not sent its own
/// messages back on a matching subscription, and keeps their RETAIN flag.
#[test]
fn a_try_private_client_gets_no_local_and_retain_as_published_as_mosquitto() {
    let pipit = start_with(|_| {});
    let mut addrs = vec![("pipit", pipit.addr)];
    let cloud = mosquitto_installed("try_private server side").then(|| Mosquitto::start(""));
    if let Some(m) = &cloud {
        addrs.push(("mosquitto", m.addr));
    }
    for (name, addr) in addrs {
        let mut bridge = Raw::connect_with(
            addr,
            &Connect {
                level: 0x84,
                ..Connect::v311("br")
            },
        );
        assert_eq!(bridge.subscribe("t/#", 1), 1);
        let mut other = Raw::connect(addr, "other", true);
        other.publish_acked("t/other", b"x", true, 1);
        let p = next_message(&mut bridge);
        assert_eq!((&*p.topic, p.retain), ("t/other", true), "{name}");
        bridge.publish_acked("t/own", b"y", false, 2);
        bridge.expect_silence(500);
        let mut plain = Raw::connect(addr, "plain", true);
        assert_eq!(plain.subscribe("u/#", 1), 1);
        // Mosquitto sends the message before the PUBACK: both are read by `next_message`.
        plain.send(&publish("u/own", b"z", 1, false, 3));
        assert_eq!(
            next_message(&mut plain).topic,
            "u/own",
            "{name}: no bit, no no-local"
        );
    }
}

/// The bridge's state: `1` on the remote once up, and `0` there through the bridge's will
/// when the gateway goes away without DISCONNECT; locally `1` retained on Mosquitto's
/// default topic, `$SYS/broker/connection/<remote_clientid>/state`.
#[test]
fn state_notifications_locally_and_on_the_remote_through_the_will() {
    let remote = start_with(|_| {});
    let gateway = bridged(&format!("address {}\ntopic t out 0\n", remote.addr));
    wait_up(remote.addr);
    let mut watch = subscriber(remote.addr, "w", STATE, 1);
    let p = next_message(&mut watch);
    assert_eq!((&*p.payload, p.retain), (&b"1"[..], true));
    drop(gateway);
    assert_eq!(next_message(&mut watch).payload, b"0", "the will");

    let text = format!(
        "connection gw\nclientid gw\naddress {}\ntopic t out 0\nnotifications_local_only true\n",
        remote.addr
    );
    let (parsed, _) = Config::parse(&text, Path::new("bridge.conf")).unwrap();
    let gateway = start_with(|c| c.bridges = parsed.bridges);
    let mut local = subscriber(gateway.addr, "l", "$SYS/broker/connection/gw/state", 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = next_message(&mut local);
        if p.payload == b"1" {
            break;
        }
        assert!(Instant::now() < deadline, "no 1 on the local state topic");
    }
}

/// A client may not take a bridge's local session over: its id is refused (CONNACK 2), and
/// the bridge keeps working.
#[test]
fn a_client_cannot_take_the_bridges_local_client_id() {
    let remote = start_with(|_| {});
    let gateway = bridged(&format!("address {}\ntopic t/# out 1\n", remote.addr));
    wait_up(remote.addr);
    assert_eq!(
        common::connack_code(gateway.addr, &Connect::v311("local.gw")),
        2
    );
    let mut up = subscriber(remote.addr, "up", "t/#", 1);
    publish_at(gateway.addr, "t/still", b"1", 1, false);
    assert_eq!(next_message(&mut up).topic, "t/still");
}

/// Through the address list: the first address refuses connections, the second is the
/// remote, which the bridge reaches.
#[test]
fn the_bridge_goes_through_its_address_list() {
    let remote = start_with(|_| {});
    let dead = free_port();
    let gateway = bridged(&format!(
        "addresses 127.0.0.1:{dead} {}\ntopic t/# out 1\n",
        remote.addr
    ));
    wait_up(remote.addr);
    let mut up = subscriber(remote.addr, "up", "t/#", 1);
    publish_at(gateway.addr, "t/x", b"1", 1, false);
    assert_eq!(next_message(&mut up).topic, "t/x");
}

/// What the bridge sends, read from a fake remote: CONNECT as configured (the bridge bit,
/// clean session off, keepalive, client id, the `0` will retained on the state topic, user
/// name and password), UNSUBSCRIBE of an `out` topic, SUBSCRIBE of an `in` one, the `1`
/// notification, then PINGREQ within the keepalive interval.
#[test]
fn the_bridge_connects_subscribes_and_pings_as_configured() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _gateway = bridged(&format!(
        "address {addr}\nkeepalive_interval 5\nremote_username u\nremote_password p\n\
         topic o/# out 1\ntopic i/# in 2\n"
    ));
    let (s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let mut remote = Raw { stream: s };
    let connect = remote.recv().expect("CONNECT");
    let mut expected = Vec::new();
    for part in [&b"MQTT"[..], b"gw", STATE.as_bytes(), b"0", b"u", b"p"] {
        expected.push(u8::try_from(part.len() >> 8).unwrap());
        expected.push(u8::try_from(part.len() & 0xff).unwrap());
        expected.extend_from_slice(part);
        if part == b"MQTT" {
            // Level 4 with the bridge bit; user name, password, will retain, will QoS 1,
            // will; clean session off; keepalive 5.
            expected.extend_from_slice(&[0x84, 0xec, 0, 5]);
        }
    }
    assert_eq!((connect.header, connect.body), (0x10, expected));
    remote.send(&[0x20, 2, 0, 0]);
    let unsubscribe = remote.recv_kind(10);
    assert_eq!(&unsubscribe.body[2..], b"\x00\x03o/#");
    let subscribe = remote.recv_kind(8);
    assert_eq!(&subscribe.body[2..], b"\x00\x03i/#\x02");
    let notice = remote.recv_kind(3);
    assert_eq!(notice.header, 0x33, "QoS 1, retained");
    let started = Instant::now();
    let ping = remote.recv().expect("PINGREQ");
    assert_eq!((ping.header, ping.body.len()), (0xc0, 0));
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
}

/// The real Mosquitto bridged into pipit with `topic # both` (Mosquitto sets the bridge bit
/// by default): each message arrives once on each side, as pipit gives the bridge no-local.
#[test]
fn mosquitto_bridged_into_pipit_does_not_echo() {
    if !mosquitto_installed("Mosquitto bridged into pipit") {
        return;
    }
    let gateway = start_with(|_| {});
    let cloud = Mosquitto::start(&format!(
        "user root\nconnection m\naddress {}\nremote_clientid mq\nrestart_timeout 1\n\
         topic b/# both 1\n",
        gateway.addr
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut watch = subscriber(gateway.addr, "watch", "$SYS/broker/connection/mq/state", 0);
    while next_message(&mut watch).payload != b"1" {
        assert!(Instant::now() < deadline, "{}", cloud.log());
    }
    // Mosquitto subscribes after it sends `1`: a probe that crosses shows it has.
    let mut probe = subscriber(cloud.addr, "probe", "b/probe", 0);
    loop {
        publish_at(gateway.addr, "b/probe", b"?", 0, false);
        if probe.drain(300).iter().any(|f| f.kind() == 3) {
            break;
        }
        assert!(Instant::now() < deadline, "{}", cloud.log());
    }
    let mut on_pipit = subscriber(gateway.addr, "p", "b/#", 1);
    let mut on_cloud = subscriber(cloud.addr, "c", "b/#", 1);
    publish_at(gateway.addr, "b/1", b"from pipit", 1, false);
    publish_at(cloud.addr, "b/2", b"from mosquitto", 1, false);
    for side in [&mut on_pipit, &mut on_cloud] {
        let mut got: Vec<String> = (0..2).map(|_| next_message(side).topic).collect();
        got.sort();
        assert_eq!(got, ["b/1", "b/2"], "{}", cloud.log());
        side.expect_silence(700);
    }
}

/// `$SYS/broker/bridges/NAME/...`: with the remote down, QoS 1 messages for it are counted
/// as handed out and queued, the link as down, the address as configured.
#[test]
fn sys_figures_per_bridge() {
    let dead = free_port();
    let text = format!(
        "connection gw\nclientid gw\naddress 127.0.0.1:{dead}\nrestart_timeout 1\n\
         topic q/# out 1\n"
    );
    let (parsed, _) = Config::parse(&text, Path::new("bridge.conf")).unwrap();
    let gateway = start_with(|c| {
        c.bridges = parsed.bridges;
        c.sys_interval = 1;
    });
    let mut publisher = Raw::connect(gateway.addr, "pub", true);
    for i in 1..=3u16 {
        publisher.publish_acked("q/n", b"x", false, i);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = std::collections::BTreeMap::new();
    let wanted = [
        ("connected", "0".to_string()),
        ("address", format!("127.0.0.1:{dead}")),
        ("queued/messages", "3".to_string()),
        ("messages/out", "3".to_string()),
        ("messages/in", "0".to_string()),
        ("reconnects", "0".to_string()),
    ];
    while Instant::now() < deadline {
        let mut sys = subscriber(gateway.addr, "sys", "$SYS/broker/bridges/gw/#", 0);
        // Figures come in a burst each second: the quiet after one ends the read.
        for f in sys.drain(600) {
            if f.kind() == 3 {
                let p = Publish::parse(&f);
                let name = p
                    .topic
                    .trim_start_matches("$SYS/broker/bridges/gw/")
                    .to_string();
                seen.insert(name, String::from_utf8(p.payload).unwrap());
            }
        }
        if wanted.iter().all(|(k, v)| seen.get(*k) == Some(v)) {
            let bytes: usize = seen["queued/bytes"].parse().unwrap();
            assert!(bytes > 0, "{seen:?}");
            return;
        }
    }
    panic!("{seen:?}");
}

/// A bridge's own queue bound and its policy at the bound, with the remote down: four
/// QoS 1 messages into a queue of three, then the remote comes up and gets what was kept,
/// in order.
#[test]
fn the_queue_bound_and_its_policy() {
    let cases = [
        ("drop_newest", ["q/a 0", "q/b 1", "q/b 2"]),
        ("drop_oldest", ["q/b 1", "q/b 2", "q/b 3"]),
        ("latest", ["q/a 0", "q/b 2", "q/b 3"]),
    ];
    for (policy, kept) in cases {
        let port = free_port();
        let gateway = bridged(&format!(
            "address 127.0.0.1:{port}\ntopic q/# out 1\nbridge_max_queued_messages 3\n\
             bridge_queue_policy {policy}\n"
        ));
        let mut publisher = Raw::connect(gateway.addr, "pub", true);
        for (n, topic) in ["q/a", "q/b", "q/b", "q/b"].into_iter().enumerate() {
            let n = u16::try_from(n).unwrap();
            publisher.publish_acked(topic, n.to_string().as_bytes(), false, n + 1);
        }
        let remote = start_with(move |c| c.listeners[0].addr = local(port));
        let mut sub = subscriber(remote.addr, "s", "q/#", 1);
        let got: Vec<String> = (0..3)
            .map(|_| {
                let p = next_message(&mut sub);
                format!("{} {}", p.topic, String::from_utf8(p.payload).unwrap())
            })
            .collect();
        assert_eq!(got, kept, "{policy}");
        sub.expect_silence(500);
    }
}

/// Bridges over TLS, to pipit's and Mosquitto's TLS listeners, with the test PKI.
#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use crate::pki::pki;
    use pipit::config::ListenerConfig;

    /// A remote pipit with a plain listener (the tests' clients) and a TLS one (the bridge's),
    /// requiring a client certificate if `require_certificate`; the TLS listener's address.
    fn tls_remote(require_certificate: bool, server: &str) -> (TestBroker, SocketAddr) {
        let pki = pki();
        let broker = start_with(|c| {
            let mut tls = ListenerConfig::new("127.0.0.1:0".parse().unwrap());
            tls.tls = Some(pipit::config::TlsConfig {
                certfile: pki.path(&format!("{server}.crt")),
                keyfile: pki.path(&format!("{server}.key")),
                ..pki.tls(require_certificate, false)
            });
            c.listeners.push(tls);
        });
        let tls_addr = broker.addrs[1];
        (broker, tls_addr)
    }

    /// The `bridge_cafile` line for CA file `ca` of the PKI.
    fn cafile(ca: &str) -> String {
        format!("bridge_cafile {}\n", pki().path(ca).display())
    }

    /// Messages both ways over TLS, to the remote's address as an IP (an IP SAN) and as a
    /// host name (a DNS SAN), MQTT 3.1.1 and 5, TLS 1.2 and 1.3 at least.
    #[test]
    fn two_pipits_bridged_over_tls_both_ways() {
        let cases = [
            ("127.0.0.1", "mqttv311", "tlsv1.2"),
            ("localhost", "mqttv50", "tlsv1.3"),
        ];
        for (host, version, tls_version) in cases {
            let (remote, tls_addr) = tls_remote(false, "server");
            let gateway = bridged(&format!(
                "address {host}:{}\n{}bridge_tls_version {tls_version}\n\
                 bridge_protocol_version {version}\ntopic up/# out 1\ntopic down/# in 1\n",
                tls_addr.port(),
                cafile("ca.crt"),
            ));
            wait_up(remote.addr);
            let mut up = subscriber(remote.addr, "up", "up/#", 1);
            publish_at(gateway.addr, "up/a", b"over tls", 1, false);
            let p = next_message(&mut up);
            assert_eq!(
                (&*p.topic, &*p.payload),
                ("up/a", &b"over tls"[..]),
                "{host}"
            );
            let mut down = subscriber(gateway.addr, "down", "down/#", 1);
            publish_at(remote.addr, "down/b", b"back", 1, false);
            let p = next_message(&mut down);
            assert_eq!((&*p.topic, &*p.payload), ("down/b", &b"back"[..]), "{host}");
        }
    }

    /// A remote listener with `require_certificate true`: the bridge's `bridge_certfile` and
    /// `bridge_keyfile` get it in; without them it is refused.
    #[test]
    fn a_required_client_certificate_from_bridge_certfile() {
        let (remote, tls_addr) = tls_remote(true, "server");
        let pki = pki();
        let gateway = bridged(&format!(
            "address {tls_addr}\n{}bridge_certfile {}\nbridge_keyfile {}\ntopic up/# out 1\n",
            cafile("ca.crt"),
            pki.path("sensor.crt").display(),
            pki.path("sensor.key").display(),
        ));
        wait_up(remote.addr);
        let mut up = subscriber(remote.addr, "up", "up/#", 1);
        publish_at(gateway.addr, "up/a", b"signed", 1, false);
        assert_eq!(next_message(&mut up).topic, "up/a");
        drop(gateway);

        let (remote, tls_addr) = tls_remote(true, "server");
        let _gateway = bridged(&format!(
            "address {tls_addr}\n{}topic up/# out 1\n",
            cafile("ca.crt")
        ));
        let mut watch = subscriber(remote.addr, "watch", STATE, 0);
        watch.expect_silence(2500);
    }

    /// The remote's certificate does not verify (another CA, or another name): the bridge
    /// never comes up, and keeps trying.
    #[test]
    fn a_certificate_that_does_not_verify_never_connects() {
        for (server, ca) in [("server", "rogue-ca.crt"), ("elsewhere", "ca.crt")] {
            let (remote, tls_addr) = tls_remote(false, server);
            let _gateway = bridged(&format!(
                "address {tls_addr}\n{}topic up/# out 1\n",
                cafile(ca)
            ));
            let mut watch = subscriber(remote.addr, "watch", STATE, 0);
            watch.expect_silence(2500);
        }
    }

    /// `bridge_insecure true` waives the name (a certificate for `broker.invalid` on
    /// 127.0.0.1), not the chain: with another CA it still never connects.
    #[test]
    fn bridge_insecure_skips_the_name_check_only() {
        let (remote, tls_addr) = tls_remote(false, "elsewhere");
        // As `bridged`, with the one warning `bridge_insecure true` gets.
        let insecure = |tls_addr: SocketAddr, ca: &str| {
            let text = format!(
                "connection gw\nclientid gw\nrestart_timeout 1\nnotification_topic {STATE}\n\
                 address {tls_addr}\n{}bridge_insecure true\ntopic up/# out 1\n",
                cafile(ca)
            );
            let (parsed, warnings) = Config::parse(&text, Path::new("bridge.conf")).unwrap();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].to_string().contains("bridge_insecure true"));
            start_with(|c| c.bridges = parsed.bridges)
        };
        let gateway = insecure(tls_addr, "ca.crt");
        wait_up(remote.addr);
        drop(gateway);
        let (remote, tls_addr) = tls_remote(false, "elsewhere");
        let _gateway = insecure(tls_addr, "rogue-ca.crt");
        let mut watch = subscriber(remote.addr, "watch", STATE, 0);
        watch.expect_silence(2500);
    }

    /// What a TLS bridge sends a server that is not TLS: a ClientHello on every attempt
    /// (retried after the backoff), never an MQTT CONNECT in plaintext.
    #[test]
    fn a_tls_bridge_never_sends_plaintext() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _gateway = bridged(&format!(
            "address {addr}\n{}topic t out 1\n",
            cafile("ca.crt")
        ));
        for attempt in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = [0u8; 3];
            s.read_exact(&mut head).unwrap();
            // A TLS handshake record (22), version 3.x; a CONNECT would start 0x10.
            assert_eq!((head[0], head[1]), (0x16, 0x03), "attempt {attempt}");
            // An answer that is no TLS: the bridge drops this link and tries again.
            s.write_all(&[0x20, 2, 0, 0]).unwrap();
        }
    }

    /// A bridge TLS file that cannot be loaded stops start-up, naming the bridge and file.
    #[test]
    fn an_unreadable_bridge_file_stops_start_up() {
        let missing = pki().path("no-such-ca.crt");
        let text = format!(
            "connection gw\naddress 127.0.0.1:8883\nbridge_cafile {}\ntopic t\n",
            missing.display()
        );
        let (parsed, _) = Config::parse(&text, Path::new("bridge.conf")).unwrap();
        let mut config = Config::default();
        config.listeners[0].addr = "127.0.0.1:0".parse().unwrap();
        config.bridges = parsed.bridges;
        let e = pipit::Broker::bind(config)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.starts_with("bridge gw: ") && e.contains(&*missing.to_string_lossy()),
            "{e}"
        );
    }

    /// pipit bridged to the real Mosquitto's TLS listener, messages both ways.
    #[test]
    fn bridged_to_mosquitto_over_tls() {
        if !mosquitto_installed("TLS bridge to Mosquitto") {
            return;
        }
        let pki = pki();
        let plain = free_port();
        let cloud = Mosquitto::with_config(&format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nallow_anonymous true\nuser root\n\
             log_dest stderr\nlistener {plain} 127.0.0.1\n",
            pki.path("ca.crt").display(),
            pki.path("server.crt").display(),
            pki.path("server.key").display(),
        ));
        let cloud_plain = local(plain);
        // Mosquitto opens its listeners one after another, and `with_config` waited for the
        // TLS one only: the plain one may not be open yet.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(cloud_plain).is_err() {
            assert!(Instant::now() < deadline, "{}", cloud.log());
            std::thread::sleep(Duration::from_millis(25));
        }
        let gateway = bridged(&format!(
            "address {}\n{}topic up/# out 1\ntopic down/# in 1\n",
            cloud.addr,
            cafile("ca.crt")
        ));
        wait_up(cloud_plain);
        let mut up = subscriber(cloud_plain, "up", "up/#", 1);
        publish_at(gateway.addr, "up/a", b"1", 1, false);
        assert_eq!(next_message(&mut up).topic, "up/a");
        let mut down = subscriber(gateway.addr, "down", "down/#", 1);
        publish_at(cloud_plain, "down/b", b"2", 1, false);
        assert_eq!(next_message(&mut down).topic, "down/b");
    }
}
