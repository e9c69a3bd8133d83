//! The broker as a library: the builder's ways to run it, and in-process clients
//! (`pipit::embed::LocalClient`) talking to each other, to TCP clients (raw bytes and
//! rumqttc), under the same ACLs and password checks, and through a shutdown.

mod common;
#[path = "common/auth.rs"]
mod support;

use std::time::{Duration, Instant};

use common::{Connect, Raw};
use pipit::embed::{Event, LocalError, LocalOptions, Outgoing, loopback_config};
use pipit::wire::{Properties, QoS, RetainHandling, SubscriptionOptions};
use pipit::{Broker, Spawned};
use support::Scratch;

const WAIT: Duration = Duration::from_secs(5);

fn spawn(adjust: impl FnOnce(&mut pipit::Config)) -> Spawned {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut builder = Broker::builder(loopback_config());
    adjust(builder.config_mut());
    builder.spawn().expect("bind")
}

fn stop(broker: Spawned) {
    broker.handle.shutdown();
    broker
        .thread
        .join()
        .expect("broker thread panicked")
        .expect("broker run failed");
}

fn sub(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions::at(qos)
}

#[test]
fn local_to_local_at_every_qos_with_retain_properties_and_shared_subscriptions() {
    let broker = spawn(|_| {});
    let mut publisher = broker
        .handle
        .local_client(LocalOptions::new("publisher"))
        .unwrap();
    let mut subscriber = broker
        .handle
        .local_client(LocalOptions::new("subscriber"))
        .unwrap();
    // Retained before the subscription: delivered at SUBSCRIBE with the retain flag.
    publisher
        .publish(
            &Outgoing::new("home/door", b"closed")
                .qos(QoS::AtLeastOnce)
                .retain(true),
        )
        .unwrap();
    let granted = subscriber
        .subscribe(&[("home/#", sub(QoS::ExactlyOnce))])
        .unwrap();
    assert_eq!(granted, [2]);
    let retained = subscriber.recv_timeout(WAIT).unwrap().expect("retained");
    assert_eq!(
        (
            retained.topic.as_str(),
            &retained.payload[..],
            retained.retain
        ),
        ("home/door", &b"closed"[..], true)
    );

    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let mut properties = Properties {
            content_type: Some("text/plain"),
            response_topic: Some("home/replies"),
            ..Properties::default()
        };
        // One user property (0x26), encoded as the block `UserProperties` borrows.
        let mut user = vec![0x26];
        for s in ["room", "hall"] {
            user.extend_from_slice(&(s.len() as u16).to_be_bytes());
            user.extend_from_slice(s.as_bytes());
        }
        properties.user_properties = pipit::wire::UserProperties::new(&user);
        publisher
            .publish(
                &Outgoing::new("home/light", format!("{qos:?}").as_bytes())
                    .qos(qos)
                    .properties(properties),
            )
            .unwrap();
        let got = subscriber.recv_timeout(WAIT).unwrap().expect("a message");
        assert_eq!(got.topic, "home/light");
        assert_eq!(got.payload, format!("{qos:?}").as_bytes());
        assert_eq!((got.qos, got.retain), (qos, false));
        let p = got.properties();
        assert_eq!(p.content_type, Some("text/plain"));
        assert_eq!(p.response_topic, Some("home/replies"));
        assert_eq!(
            p.user_properties.iter().collect::<Vec<_>>(),
            [("room", "hall")]
        );
    }

    // Unsubscribed: nothing more arrives.
    assert_eq!(subscriber.unsubscribe(&["home/#"]).unwrap(), [0]);
    publisher
        .publish(&Outgoing::new("home/light", b"off"))
        .unwrap();
    assert_eq!(
        subscriber.recv_timeout(Duration::from_millis(200)).unwrap(),
        None
    );

    // A shared subscription: each message goes to one member of the group.
    let mut worker = broker
        .handle
        .local_client(LocalOptions::new("worker"))
        .unwrap();
    for client in [&mut subscriber, &mut worker] {
        let granted = client
            .subscribe(&[("$share/pool/jobs/+", sub(QoS::AtLeastOnce))])
            .unwrap();
        assert_eq!(granted, [1]);
    }
    for i in 0..4 {
        let payload = i.to_string();
        publisher
            .publish(&Outgoing::new("jobs/x", payload.as_bytes()).qos(QoS::AtLeastOnce))
            .unwrap();
    }
    let mut received = 0;
    for client in [&mut subscriber, &mut worker] {
        while let Some(m) = client.recv_timeout(Duration::from_millis(300)).unwrap() {
            assert_eq!(m.topic, "jobs/x");
            received += 1;
        }
    }
    assert_eq!(received, 4, "every job once, across the group");
    stop(broker);
}

#[test]
fn local_to_rumqttc_and_back() {
    use rumqttc::{Client, Event as RumEvent, MqttOptions, Packet};
    let broker = spawn(|_| {});
    let addr = broker.addrs[0];
    let mut local = broker
        .handle
        .local_client(LocalOptions::new("local"))
        .unwrap();
    local
        .subscribe(&[("to/local", sub(QoS::AtLeastOnce))])
        .unwrap();

    let mut options = MqttOptions::new("tcp", addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(options, 10);
    client
        .subscribe("to/tcp", rumqttc::QoS::AtLeastOnce)
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no SUBACK for rumqttc");
        if let Ok(Ok(RumEvent::Incoming(Packet::SubAck(_)))) =
            connection.recv_timeout(Duration::from_millis(100))
        {
            break;
        }
    }

    local
        .publish(&Outgoing::new("to/tcp", b"from local").qos(QoS::AtLeastOnce))
        .unwrap();
    let got = loop {
        assert!(Instant::now() < deadline, "rumqttc got nothing");
        if let Ok(Ok(RumEvent::Incoming(Packet::Publish(p)))) =
            connection.recv_timeout(Duration::from_millis(100))
        {
            break p;
        }
    };
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("to/tcp", &b"from local"[..])
    );

    client
        .publish(
            "to/local",
            rumqttc::QoS::AtLeastOnce,
            false,
            b"from tcp".to_vec(),
        )
        .unwrap();
    // rumqttc sends only while its connection is driven.
    let reply = loop {
        assert!(Instant::now() < deadline, "the local client got nothing");
        let _ = connection.recv_timeout(Duration::from_millis(20));
        if let Some(m) = local.recv_timeout(Duration::from_millis(20)).unwrap() {
            break m;
        }
    };
    assert_eq!(
        (reply.topic.as_str(), &reply.payload[..], reply.qos),
        ("to/local", &b"from tcp"[..], QoS::AtLeastOnce)
    );
    stop(broker);
}

#[test]
fn shutdown_from_another_thread_publishes_wills_and_joins() {
    let broker = spawn(|_| {});
    let mut watcher = Raw::connect(broker.addrs[0], "watcher", true);
    watcher.subscribe("bye/#", 0);
    let mut local = broker
        .handle
        .local_client(LocalOptions::new("leaving").will(
            "bye/local",
            b"gone",
            QoS::AtMostOnce,
            false,
        ))
        .unwrap();
    let _tcp = Raw::connect_with(
        broker.addrs[0],
        &Connect::v311("tcp-leaving").will("bye/tcp", b"gone", 0, false),
    );
    let handle = broker.handle.clone();
    std::thread::spawn(move || handle.shutdown())
        .join()
        .unwrap();
    let mut wills: Vec<String> = (0..2).map(|_| watcher.recv_publish().topic).collect();
    wills.sort();
    assert_eq!(wills, ["bye/local", "bye/tcp"]);
    broker
        .thread
        .join()
        .expect("broker thread panicked")
        .expect("broker run failed");
    // The local client is told why: DISCONNECT 0x8B, server shutting down.
    assert_eq!(
        local.next_event(WAIT).unwrap(),
        Some(Event::Disconnected {
            reason_code: Some(0x8b)
        })
    );
    assert_eq!(local.next_event(WAIT), Err(LocalError::Closed));
    assert_eq!(
        local.publish(&Outgoing::new("x", b"")),
        Err(LocalError::Closed)
    );
    assert!(
        broker
            .handle
            .local_client(LocalOptions::new("late"))
            .is_err(),
        "a stopped broker takes no local client"
    );
}

#[test]
fn a_dropped_local_client_is_a_client_gone_its_will_fires() {
    let broker = spawn(|_| {});
    let mut watcher = broker
        .handle
        .local_client(LocalOptions::new("watcher"))
        .unwrap();
    watcher
        .subscribe(&[("bye/#", sub(QoS::AtLeastOnce))])
        .unwrap();
    let polite = broker
        .handle
        .local_client(LocalOptions::new("polite").will("bye/polite", b"x", QoS::AtLeastOnce, false))
        .unwrap();
    polite.disconnect();
    let rude = broker
        .handle
        .local_client(LocalOptions::new("rude").will("bye/rude", b"x", QoS::AtLeastOnce, false))
        .unwrap();
    drop(rude);
    let will = watcher.recv_timeout(WAIT).unwrap().expect("the will");
    assert_eq!(will.topic, "bye/rude", "DISCONNECT discards the will");
    assert_eq!(
        watcher.recv_timeout(Duration::from_millis(200)).unwrap(),
        None
    );
    stop(broker);
}

#[test]
fn two_brokers_in_one_process_on_different_ports() {
    let a = spawn(|_| {});
    let b = spawn(|_| {});
    assert_ne!(a.addrs[0], b.addrs[0]);
    let mut on_a = a.handle.local_client(LocalOptions::new("same-id")).unwrap();
    let mut on_b = b.handle.local_client(LocalOptions::new("same-id")).unwrap();
    for client in [&mut on_a, &mut on_b] {
        client.subscribe(&[("t", sub(QoS::AtMostOnce))]).unwrap();
    }
    let mut tcp_a = Raw::connect(a.addrs[0], "tcp", true);
    tcp_a.subscribe("t", 0);
    on_a.publish(&Outgoing::new("t", b"on a")).unwrap();
    assert_eq!(
        on_a.recv_timeout(WAIT).unwrap().map(|m| m.payload),
        Some(b"on a".to_vec())
    );
    assert_eq!(tcp_a.recv_publish().payload, b"on a");
    assert_eq!(
        on_b.recv_timeout(Duration::from_millis(200)).unwrap(),
        None,
        "the other broker's client id is its own"
    );
    stop(a);
    on_b.publish(&Outgoing::new("t", b"on b")).unwrap();
    assert_eq!(
        on_b.recv_timeout(WAIT).unwrap().map(|m| m.payload),
        Some(b"on b".to_vec())
    );
    stop(b);
}

#[test]
fn local_clients_are_held_to_passwords_and_acls() {
    let dir = Scratch::new("embed-acl");
    let passwords = support::alice_password_file(&dir);
    let acl = dir.write(
        "acl",
        "user alice\ntopic readwrite alice/#\ntopic read shared/#\n",
    );
    let broker = spawn(|config| {
        config.allow_anonymous = false;
        config.password_file = Some(passwords.clone());
        config.acl_file = Some(acl.clone());
    });
    let refused = broker
        .handle
        .local_client(LocalOptions::new("anon"))
        .unwrap_err();
    assert_eq!(refused, LocalError::Refused(0x87), "not authorized");
    let wrong = broker
        .handle
        .local_client(LocalOptions::new("a").login("alice", b"wrong"))
        .unwrap_err();
    assert_eq!(
        wrong,
        LocalError::Refused(0x86),
        "bad user name or password"
    );
    let mut alice = broker
        .handle
        .local_client(LocalOptions::new("a").login("alice", b"secret"))
        .unwrap();
    assert_eq!(
        alice
            .subscribe(&[
                ("alice/#", sub(QoS::AtLeastOnce)),
                ("shared/x", sub(QoS::AtLeastOnce)),
                ("bob/#", sub(QoS::AtLeastOnce)),
            ])
            .unwrap(),
        [1, 1, 0x87]
    );
    assert_eq!(
        alice.publish(&Outgoing::new("shared/x", b"no").qos(QoS::AtLeastOnce)),
        Err(LocalError::Refused(0x87))
    );
    alice
        .publish(&Outgoing::new("alice/x", b"yes").qos(QoS::AtLeastOnce))
        .unwrap();
    assert_eq!(
        alice.recv_timeout(WAIT).unwrap().map(|m| m.topic),
        Some("alice/x".to_owned())
    );
    stop(broker);
}

#[test]
fn a_local_client_counts_in_sys() {
    let broker = spawn(|config| config.sys_interval = 1);
    let mut local = broker
        .handle
        .local_client(LocalOptions::new("counted"))
        .unwrap();
    let options = SubscriptionOptions {
        retain_handling: RetainHandling::SendAtSubscribe,
        ..sub(QoS::AtMostOnce)
    };
    local
        .subscribe(&[("$SYS/broker/clients/connected", options)])
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "$SYS never counted the local client"
        );
        let Some(m) = local.recv_timeout(Duration::from_millis(500)).unwrap() else {
            continue;
        };
        if m.payload == b"1" {
            break;
        }
    }
    stop(broker);
}

#[test]
fn a_callers_own_loop_drives_the_broker_and_a_local_client_on_one_thread() {
    let mut broker = Broker::builder(loopback_config()).bind().unwrap();
    let handle = broker.handle();
    let mut client = handle
        .start_local_client(LocalOptions::new("single"))
        .unwrap();
    let next = |broker: &mut Broker, client: &mut pipit::embed::LocalClient| {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "no event");
            assert!(broker.poll_once(Duration::from_millis(10)).unwrap());
            if let Some(event) = client.poll_event().unwrap() {
                return event;
            }
        }
    };
    assert!(matches!(
        next(&mut broker, &mut client),
        Event::Connected { reason_code: 0, .. }
    ));
    let sub_id = client
        .subscribe_nowait(&[("loop/#", sub(QoS::ExactlyOnce))])
        .unwrap();
    assert_eq!(
        next(&mut broker, &mut client),
        Event::Subscribed {
            packet_id: sub_id,
            reason_codes: vec![2]
        }
    );
    let pub_id = client
        .publish_nowait(&Outgoing::new("loop/x", b"1").qos(QoS::ExactlyOnce))
        .unwrap()
        .expect("a packet id");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(next(&mut broker, &mut client));
    }
    assert!(seen.contains(&Event::Published {
        packet_id: pub_id,
        reason_code: 0
    }));
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Message(m) if m.payload == b"1"))
    );
    handle.shutdown();
    while broker.poll_once(Duration::from_millis(10)).unwrap() {}
}

#[test]
// A store on disk.
#[cfg(feature = "persistence")]
fn a_retained_message_from_a_local_client_survives_a_restart() {
    let dir = Scratch::new("embed-persist");
    let store = dir.dir.clone();
    let with_store = |config: &mut pipit::Config| {
        config.persistence = true;
        config.persistence_location = Some(store.clone());
    };
    let broker = spawn(with_store);
    let mut client = broker
        .handle
        .local_client(LocalOptions::new("keeper"))
        .unwrap();
    client
        .publish(
            &Outgoing::new("kept/state", b"on")
                .qos(QoS::AtLeastOnce)
                .retain(true),
        )
        .unwrap();
    drop(client);
    stop(broker);

    let broker = spawn(with_store);
    let mut reader = broker
        .handle
        .local_client(LocalOptions::new("reader"))
        .unwrap();
    reader
        .subscribe(&[("kept/#", sub(QoS::AtLeastOnce))])
        .unwrap();
    let got = reader
        .recv_timeout(WAIT)
        .unwrap()
        .expect("the retained message");
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("kept/state", &b"on"[..])
    );
    stop(broker);
}
