//! Interoperability with an independent client: the `rumqttc` crate (MQTT 3.1.1).

mod common;

use std::time::{Duration, Instant};

use rumqttc::{Client, Event, LastWill, MqttOptions, Packet, QoS};

fn options(id: &str, addr: std::net::SocketAddr) -> MqttOptions {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(5));
    o
}

/// Collects PUBLISH payloads from `connection` until `n` arrived or the deadline passes.
fn collect(connection: &mut rumqttc::Connection, n: usize) -> Vec<(String, Vec<u8>, QoS, bool)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        match connection.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                got.push((p.topic.clone(), p.payload.to_vec(), p.qos, p.retain))
            }
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => panic!("connection error: {e}"),
        }
    }
    got
}

/// Drives `connection` until SUBACK arrives.
fn wait_suback(connection: &mut rumqttc::Connection) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Ok(Event::Incoming(Packet::SubAck(_)))) =
            connection.recv_timeout(Duration::from_millis(200))
        {
            return;
        }
    }
    panic!("no SUBACK");
}

#[test]
fn qos_0_1_2_and_retained_with_rumqttc() {
    let broker = common::start();
    let (publisher, mut pub_conn) = Client::new(options("rumqttc-pub", broker.addr), 100);
    publisher
        .publish("rt/retained", QoS::AtLeastOnce, true, b"kept".to_vec())
        .unwrap();
    // Drive the publisher until its PUBACK so the retained message is stored.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Ok(Event::Incoming(Packet::PubAck(_)))) =
            pub_conn.recv_timeout(Duration::from_millis(200))
        {
            break;
        }
    }

    let (subscriber, mut sub_conn) = Client::new(options("rumqttc-sub", broker.addr), 100);
    subscriber.subscribe("rt/#", QoS::ExactlyOnce).unwrap();
    wait_suback(&mut sub_conn);
    let retained = collect(&mut sub_conn, 1);
    assert_eq!(
        retained,
        [(
            "rt/retained".into(),
            b"kept".to_vec(),
            QoS::AtLeastOnce,
            true
        )]
    );

    let pub_thread = std::thread::spawn(move || {
        for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
            .into_iter()
            .enumerate()
        {
            publisher
                .publish(format!("rt/{i}"), qos, false, vec![i as u8; 10])
                .unwrap();
        }
        // Drive the event loop so the publishes and their acks flow.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let _ = pub_conn.recv_timeout(Duration::from_millis(100));
        }
    });
    let got = collect(&mut sub_conn, 3);
    pub_thread.join().unwrap();
    let summary: Vec<(String, QoS)> = got.into_iter().map(|(t, _, q, _)| (t, q)).collect();
    assert_eq!(
        summary,
        [
            ("rt/0".to_string(), QoS::AtMostOnce),
            ("rt/1".to_string(), QoS::AtLeastOnce),
            ("rt/2".to_string(), QoS::ExactlyOnce)
        ]
    );
}

#[test]
fn last_will_with_rumqttc() {
    let broker = common::start();
    let (watcher, mut watch_conn) = Client::new(options("rumqttc-watch", broker.addr), 10);
    watcher.subscribe("lw/#", QoS::AtLeastOnce).unwrap();
    wait_suback(&mut watch_conn);

    let mut o = options("rumqttc-dying", broker.addr);
    o.set_last_will(LastWill::new(
        "lw/dying",
        b"bye".to_vec(),
        QoS::AtLeastOnce,
        false,
    ));
    let (_dying, mut dying_conn) = Client::new(o, 10);
    // Connect, then drop the connection without DISCONNECT.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) =
            dying_conn.recv_timeout(Duration::from_millis(200))
        {
            break;
        }
    }
    drop(dying_conn);
    let got = collect(&mut watch_conn, 1);
    assert_eq!(
        got,
        [("lw/dying".into(), b"bye".to_vec(), QoS::AtLeastOnce, false)]
    );
}

#[test]
fn persistent_session_with_rumqttc() {
    let broker = common::start();
    let mut o = options("rumqttc-durable", broker.addr);
    o.set_clean_session(false);
    let (client, mut conn) = Client::new(o.clone(), 10);
    client.subscribe("ps/x", QoS::AtLeastOnce).unwrap();
    wait_suback(&mut conn);
    client.disconnect().unwrap();
    let _ = conn.recv_timeout(Duration::from_millis(300));
    drop(conn);

    let mut p = common::Raw::connect(broker.addr, "raw-pub", true);
    p.publish_acked("ps/x", b"while away", false, 1);

    let (_client, mut conn) = Client::new(o, 10);
    let mut session_present = None;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && got.is_empty() {
        match conn.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(Event::Incoming(Packet::ConnAck(a)))) => {
                session_present = Some(a.session_present)
            }
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => got.push(p.payload.to_vec()),
            _ => {}
        }
    }
    assert_eq!(session_present, Some(true));
    assert_eq!(got, [b"while away".to_vec()]);
}
