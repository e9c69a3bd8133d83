//! `protocol websockets` listeners over raw TCP: the upgrade, MQTT packets split across and
//! joined in frames, a WebSocket and a TCP client exchanging messages, ping/pong, the close
//! handshake, unmasked and oversize frames, refused requests (4xx, never a hang),
//! `websockets_headers_size`, and `http_dir` file serving with its traversal refusals.
//! Where pipit behaves "as Mosquitto" (paths and subprotocols accepted, text frames, files
//! served), the same requests go to the real Mosquitto 2.0.11 too, when it is installed.
#![cfg(feature = "websocket")]

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;
#[path = "common/auth.rs"]
mod support;
#[path = "common/ws.rs"]
mod ws;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use common::{Connect, publish, subscribe};
use mosquitto::{Mosquitto, mosquitto_installed};
use pipit::config::{ListenerConfig, Protocol};
use pipit::{Broker, Config, Spawned};
use support::{Scratch, free_port, local};
use ws::{Ws, binary, header, http, masked, status_line, upgrade_request};

/// A pipit broker with a WebSocket listener and a plain TCP one; stopped on drop.
struct Pipit {
    ws: SocketAddr,
    tcp: SocketAddr,
    spawned: Option<Spawned>,
}

impl Drop for Pipit {
    fn drop(&mut self) {
        if let Some(spawned) = self.spawned.take() {
            spawned.handle.shutdown();
            let result = spawned.thread.join().expect("broker thread panicked");
            result.expect("broker run failed");
        }
    }
}

/// Starts pipit with a WebSocket listener (first) and a TCP one on 127.0.0.1, after
/// `adjust` edits the configuration.
fn pipit(adjust: impl FnOnce(&mut Config)) -> Pipit {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut config = Config::default();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    config.listeners = vec![ListenerConfig::new(any), ListenerConfig::new(any)];
    config.listeners[0].protocol = Protocol::Websockets;
    adjust(&mut config);
    let spawned = Broker::spawn(config).expect("bind");
    Pipit {
        ws: spawned.addrs[0],
        tcp: spawned.addrs[1],
        spawned: Some(spawned),
    }
}

/// The real Mosquitto with a WebSocket listener on loopback carrying `extra` options, and
/// that listener's address; `None` (with a notice) when it is not installed.
fn mosquitto_ws(extra: &str) -> Option<(Mosquitto, SocketAddr)> {
    if !mosquitto_installed("WebSockets comparison") {
        return None;
    }
    let port = free_port();
    // Its WebSocket listener (libwebsockets) takes an interface name; with an IP address
    // it would listen on every interface.
    let m = Mosquitto::with_config(&format!(
        "allow_anonymous true\nlistener {port} lo\nprotocol websockets\n{extra}\n"
    ));
    let addr = local(port);
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Some((m, addr));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("mosquitto's websockets listener did not open:\n{}", m.log());
}

/// Upgrades and completes a 3.1.1 CONNECT as `client_id`.
fn connected(addr: SocketAddr, client_id: &str) -> Ws {
    let mut c = Ws::open(addr);
    c.send(&binary(&Connect::v311(client_id).bytes()));
    let ack = c.recv().expect("no CONNACK");
    assert_eq!((ack.header, ack.body), (0x20, vec![0, 0]));
    c
}

#[test]
fn packets_may_span_frames_and_frames_may_hold_several() {
    let broker = pipit(|_| {});
    let mut sub = connected(broker.ws, "ws-sub");
    // SUBSCRIBE and PINGREQ in one frame.
    sub.send(&binary(
        &[subscribe(1, &[("t/#", 1)]), vec![0xc0, 0]].concat(),
    ));
    assert_eq!(sub.recv().unwrap().header, 0x90);
    assert_eq!(sub.recv().unwrap().header, 0xd0);
    let mut publisher = connected(broker.ws, "ws-pub");
    // A PUBLISH cut into a fragmented message of three frames, then one spanning two
    // unfragmented frames.
    let first = publish("t/a", b"split", 1, false, 7);
    publisher.send(
        &[
            masked(0x02, &first[..2]),
            masked(0x00, &first[2..6]),
            masked(0x80, &first[6..]),
        ]
        .concat(),
    );
    let second = publish("t/b", b"joined", 1, false, 8);
    publisher.send(&[binary(&second[..5]), binary(&second[5..])].concat());
    for (packet_id, topic, payload) in [(7u16, "t/a", "split"), (8, "t/b", "joined")] {
        let ack = publisher.recv().unwrap();
        assert_eq!(
            (ack.header, ack.body),
            (0x40, packet_id.to_be_bytes().to_vec())
        );
        let got = common::Publish::parse(&sub.recv().unwrap());
        assert_eq!(
            (got.topic.as_str(), &got.payload[..]),
            (topic, payload.as_bytes())
        );
    }
}

#[test]
fn a_client_writing_one_byte_at_a_time_is_read() {
    let broker = pipit(|_| {});
    let request = upgrade_request("/", Some("mqtt"), "");
    let bytes = [request.as_bytes(), &binary(&Connect::v311("slow").bytes())].concat();
    let mut c = Ws::connect(broker.ws);
    for &b in &bytes {
        c.send(&[b]);
        std::thread::sleep(Duration::from_millis(1));
    }
    let head = c.read_head();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(c.recv().map(|f| f.header), Some(0x20), "CONNACK");
}

#[test]
fn websocket_and_tcp_clients_exchange_large_messages() {
    let broker = pipit(|_| {});
    let mut ws_sub = connected(broker.ws, "ws");
    ws_sub.send(&binary(&subscribe(1, &[("big/#", 0)])));
    assert_eq!(ws_sub.recv().unwrap().header, 0x90);
    let mut tcp = common::Raw::connect(broker.tcp, "tcp", true);
    assert_eq!(tcp.subscribe("big/#", 0), 0);
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    // From TCP to the WebSocket client: one frame (or more) of 300 KB.
    tcp.send(&publish("big/tcp", &payload, 0, false, 0));
    let got = common::Publish::parse(&ws_sub.recv().expect("no PUBLISH over ws"));
    assert_eq!(
        (got.topic.as_str(), got.payload.len()),
        ("big/tcp", payload.len())
    );
    assert!(got.payload == payload, "payload differs");
    assert_eq!(tcp.recv_publish().payload.len(), payload.len(), "own copy");
    // And back, in 1000-byte frames.
    let packet = publish("big/ws", &payload, 0, false, 0);
    let frames: Vec<u8> = packet.chunks(1000).flat_map(binary).collect();
    ws_sub.send(&frames);
    let got = tcp.recv_publish();
    assert_eq!(
        (got.topic.as_str(), got.payload == payload),
        ("big/ws", true)
    );
}

#[test]
fn ping_gets_pong_and_close_is_echoed_then_the_connection_ends() {
    let broker = pipit(|_| {});
    let mut c = connected(broker.ws, "pinger");
    c.send(&masked(0x89, b"are you there"));
    assert_eq!(c.frame(), Some((0x8a, b"are you there".to_vec())));
    c.send(&masked(0x88, &[0x03, 0xe8, b'b', b'y', b'e']));
    assert_eq!(c.frame(), Some((0x88, vec![0x03, 0xe8])));
    assert_eq!(c.frame(), None, "closed after the close handshake");
}

#[test]
fn an_unmasked_frame_closes_with_1002() {
    let broker = pipit(|_| {});
    let mut c = Ws::open(broker.ws);
    let mut frame = binary(&Connect::v311("bare").bytes());
    frame[1] &= 0x7f;
    frame.drain(2..6);
    let payload: Vec<u8> = frame[2..]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ [0x12, 0x34, 0x56, 0x78][i % 4])
        .collect();
    frame.truncate(2);
    frame.extend(payload);
    c.send(&frame);
    assert_eq!(c.close_code(), Some(1002));
}

#[test]
fn a_frame_over_max_packet_size_closes_with_1009_before_its_payload() {
    let broker = pipit(|c| c.max_packet_size = 1000);
    let mut c = connected(broker.ws, "big");
    // Only the header of a 2000-byte frame is sent.
    c.send(&binary(&[0; 2000])[..8]);
    assert_eq!(c.close_code(), Some(1009));
}

#[test]
fn text_frames_carry_mqtt_as_in_mosquitto() {
    let broker = pipit(|_| {});
    let mosquitto = mosquitto_ws("");
    let addrs = std::iter::once(broker.ws).chain(mosquitto.as_ref().map(|m| m.1));
    for addr in addrs {
        let mut c = Ws::open(addr);
        c.send(&masked(0x81, &Connect::v311("texter").bytes()));
        let ack = c.recv().expect("no CONNACK");
        assert_eq!((ack.header, ack.body), (0x20, vec![0, 0]), "{addr}");
    }
}

#[test]
fn any_path_and_the_mqtt_subprotocols_are_accepted_as_in_mosquitto() {
    let cases = [
        ("/mqtt", Some("mqtt"), Some("mqtt")),
        ("/", Some("mqtt"), Some("mqtt")),
        ("/any/path?x=1", Some("mqtt"), Some("mqtt")),
        ("/mqtt", Some("mqttv3.1"), Some("mqttv3.1")),
        ("/mqtt", Some("foo, mqtt"), Some("mqtt")),
        ("/mqtt", Some("mqttv3.1, mqtt"), Some("mqttv3.1")),
        ("/mqtt", None, None),
        // Refused: Mosquitto closes at once, pipit answers 400; neither upgrades.
        ("/mqtt", Some("MQTT"), Some("refused")),
        ("/mqtt", Some("mqttv311"), Some("refused")),
    ];
    let broker = pipit(|_| {});
    let mosquitto = mosquitto_ws("");
    let addrs = std::iter::once(broker.ws).chain(mosquitto.as_ref().map(|m| m.1));
    for addr in addrs {
        for (path, offered, expected) in cases {
            let request = upgrade_request(path, offered, "");
            let (_, head) = Ws::request(addr, request.as_bytes());
            let got = match status_line(&head) {
                "HTTP/1.1 101 Switching Protocols" => header(&head, "sec-websocket-protocol"),
                _ => Some("refused"),
            };
            assert_eq!(got, expected, "{addr} {path} {offered:?}: {head}");
        }
    }
}

#[test]
fn requests_that_are_not_upgrades_get_a_4xx_and_a_close() {
    let broker = pipit(|c| c.websockets_headers_size = 1024);
    let pad = |n: usize| format!("X-Pad: {}\r\n", "a".repeat(n));
    let cases = [
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_string(), 426),
        ("SSH-2.0-OpenSSH\r\n\r\n".to_string(), 400),
        (
            upgrade_request("/", Some("mqtt"), "").replace(": 13", ": 8"),
            426,
        ),
        (upgrade_request("/", Some("chat"), ""), 400),
        (upgrade_request("/", Some("mqtt"), &pad(1000)), 431),
        (upgrade_request("/", Some("mqtt"), &pad(100_000)), 431),
    ];
    for (request, code) in cases {
        let response = http(broker.ws, request.as_bytes());
        assert!(
            status_line(&response).starts_with(&format!("HTTP/1.1 {code} ")),
            "{request:.60}: {response}"
        );
    }
    // Under the bound the same padding is fine.
    let (_, head) = Ws::request(
        broker.ws,
        upgrade_request("/", Some("mqtt"), &pad(700)).as_bytes(),
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

#[test]
fn http_dir_serves_files_and_nothing_outside_it() {
    let dir = Scratch::new("http-dir");
    let www = dir.path("www");
    std::fs::create_dir_all(www.join("js")).unwrap();
    std::fs::write(www.join("index.html"), "<p>dashboard</p>\n").unwrap();
    std::fs::write(www.join("js/app.js"), "console.log(1)\n").unwrap();
    std::fs::write(dir.path("secret.txt"), "password\n").unwrap();
    std::os::unix::fs::symlink(dir.path("secret.txt"), www.join("escape.txt")).unwrap();
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    // (request, pipit's status, Mosquitto's status where it agrees).
    let cases = [
        (get("/"), 200, Some(200)),
        (get("/js/app.js"), 200, Some(200)),
        (get("/js/%61pp.js"), 200, None),
        (get("/missing.html"), 404, Some(404)),
        (get("/escape.txt"), 403, Some(403)),
        // Mosquitto answers these 404: it resolves `..` first, and finds no such file.
        (get("/../secret.txt"), 403, None),
        (get("/%2e%2e/secret.txt"), 403, None),
        (get("/js/%2E%2E/%2E%2E/secret.txt"), 403, None),
        (
            "POST /index.html HTTP/1.1\r\nContent-Length: 0\r\n\r\n".into(),
            405,
            Some(405),
        ),
    ];
    let www_text = www.to_str().unwrap().to_string();
    let broker = pipit(|c| c.listeners[0].http_dir = Some(www.clone()));
    let mosquitto = mosquitto_ws(&format!("http_dir {www_text}"));
    let mut brokers = vec![(broker.ws, false)];
    brokers.extend(mosquitto.as_ref().map(|m| (m.1, true)));
    for (addr, is_mosquitto) in brokers {
        for (request, code, mosquitto_code) in &cases {
            let expected = match is_mosquitto {
                false => *code,
                true => match mosquitto_code {
                    Some(code) => *code,
                    None => continue,
                },
            };
            let response = http(addr, request.as_bytes());
            let line = status_line(&response);
            assert!(
                line.starts_with("HTTP/1.") && line[9..].starts_with(&expected.to_string()),
                "{addr} {request:?}: {response}"
            );
            assert!(!response.contains("password"), "{response}");
        }
        let response = http(addr, get("/js/app.js").as_bytes());
        assert!(response.ends_with("\r\n\r\nconsole.log(1)\n"), "{response}");
        assert_eq!(header(&response, "content-length"), Some("15"));
    }
    let response = http(broker.ws, get("/js/app.js").as_bytes());
    assert_eq!(
        header(&response, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let head = http(broker.ws, b"HEAD /index.html HTTP/1.1\r\n\r\n");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
    let redirect = http(broker.ws, get("/js").as_bytes());
    assert_eq!(header(&redirect, "location"), Some("/js/"), "{redirect}");
    // The listener still upgrades.
    let mut c = connected(broker.ws, "after-http");
    c.stream.flush().unwrap();
}

#[test]
fn a_missing_http_dir_stops_start_up_naming_it() {
    let mut config = Config::default();
    config.listeners[0].addr = "127.0.0.1:0".parse().unwrap();
    config.listeners[0].protocol = Protocol::Websockets;
    config.listeners[0].http_dir = Some("/nonexistent/pipit-www".into());
    let error = Broker::bind(config).err().expect("bind must fail");
    assert!(
        error.to_string().contains("/nonexistent/pipit-www"),
        "{error}"
    );
}
