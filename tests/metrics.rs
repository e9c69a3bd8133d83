//! The Prometheus endpoint (`metrics_listener`) over raw TCP: `GET /metrics` answers the
//! exposition and its counters move between two scrapes; another path is 404, another
//! method 405; an oversize request head and a client that never finishes its request are
//! closed, and scrapers over the connection bound are turned away, without the broker
//! waiting on any of them.
#![cfg(feature = "metrics")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Raw, TestBroker, start_with};

fn broker() -> (TestBroker, SocketAddr) {
    let broker = start_with(|c| {
        c.sys_interval = 1;
        c.metrics_listener = Some("127.0.0.1:0".parse().unwrap());
    });
    let metrics = broker.metrics.expect("the metrics listener is bound");
    (broker, metrics)
}

/// An answer: status code, head, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` on a new connection and reads the answer to EOF.
fn http(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics listener");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("the answer, then EOF");
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head[9..12].parse().expect("a status code");
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.parse::<usize>().ok());
    assert_eq!(length, Some(body.len()), "{head}");
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn scrape(addr: SocketAddr) -> String {
    let answer = http(addr, b"GET /metrics HTTP/1.1\r\nHost: pipit\r\n\r\n");
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert!(
        answer
            .head
            .contains("Content-Type: text/plain; version=0.0.4"),
        "{}",
        answer.head
    );
    answer.body
}

/// The value of the sample named exactly `sample` (labels included) in `text`.
fn value(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {sample} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn two_scrapes_see_the_counters_move() {
    let (broker, metrics) = broker();
    let first = scrape(metrics);
    assert!(first.contains("# TYPE pipit_publish_received_total counter\n"));
    assert!(first.contains("# HELP pipit_clients_connected "));
    assert_eq!(value(&first, "pipit_publish_received_total"), 0.0);
    let mut publisher = Raw::connect(broker.addr, "publisher", true);
    for i in 1..=3 {
        publisher.publish_acked("a/b", b"hello", false, i);
    }
    let second = scrape(metrics);
    assert_eq!(value(&second, "pipit_publish_received_total"), 3.0);
    assert_eq!(value(&second, "pipit_publish_received_bytes_total"), 15.0);
    assert_eq!(value(&second, "pipit_clients_connected"), 1.0);
    assert!(
        value(&second, "pipit_received_bytes_total") > value(&first, "pipit_received_bytes_total")
    );
    assert!(value(&second, "pipit_packets_sent_total") >= 4.0);
    assert_eq!(
        value(
            &second,
            "pipit_messages_dropped_total{reason=\"queue_full\"}"
        ),
        0.0
    );
}

#[test]
fn other_paths_are_404_and_other_methods_405() {
    let (_broker, metrics) = broker();
    assert_eq!(http(metrics, b"GET / HTTP/1.1\r\n\r\n").status, 404);
    assert_eq!(http(metrics, b"GET /metricsx HTTP/1.0\r\n\r\n").status, 404);
    let post = http(
        metrics,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert!(post.head.contains("Allow: GET"), "{}", post.head);
    assert_eq!(
        http(metrics, b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c").status,
        400
    );
    // And the endpoint still serves.
    scrape(metrics);
}

#[test]
fn an_oversize_request_head_is_closed() {
    let (_broker, metrics) = broker();
    let mut s = TcpStream::connect(metrics).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = b"GET /metrics HTTP/1.1\r\nX-Long: ".to_vec();
    request.resize(64 * 1024, b'a');
    // The broker may stop reading and close before all of it is written.
    let _ = s.write_all(&request);
    let mut answer = Vec::new();
    // A 431 then EOF, or a reset (the rest of the head was never read): closed either way.
    match s.read_to_end(&mut answer) {
        Ok(_) => assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 431 "),
            "{}",
            String::from_utf8_lossy(&answer)
        ),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    scrape(metrics);
}

#[test]
fn slow_clients_are_closed_and_the_connection_bound_holds() {
    let (_broker, metrics) = broker();
    let started = Instant::now();
    // Sixteen scrapes that never finish their request: the bound.
    let mut slow: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = TcpStream::connect(metrics).unwrap();
            s.write_all(b"GET /met").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    // A seventeenth is closed at once, with no answer.
    let mut extra = TcpStream::connect(metrics).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = Vec::new();
    match extra.read_to_end(&mut buf) {
        Ok(n) => assert_eq!(n, 0, "{}", String::from_utf8_lossy(&buf)),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    // The slow ones are closed at the deadline (5 s), not left open.
    for s in &mut slow {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(9),
        "{waited:?}"
    );
    scrape(metrics);
}

#[test]
fn without_the_option_no_metrics_listener_is_bound() {
    let broker = start_with(|_| {});
    assert_eq!(broker.metrics, None);
}
