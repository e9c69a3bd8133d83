//! TLS listeners, spoken to by an independent client (`rumqttc` over rustls): QoS 1 through
//! TLS, client certificates required or not, the certificate CN as username, a failed
//! handshake that closes only its own connection and is logged once with its cause, and
//! start-up errors for bad PEM files.
//! The CA and certificates are made at test time with `rcgen`.
#![cfg(feature = "tls")]
#![cfg(feature = "tls")]

mod common;
#[path = "common/pki.rs"]
mod pki;
#[path = "common/auth.rs"]
mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pipit::config::{TlsConfig, TlsVersion};
use pipit::{Broker, Config};
use pki::pki;
use rumqttc::{
    Client, ConnectReturnCode, Connection, ConnectionError, Event, MqttOptions, Packet, QoS,
    SubscribeReasonCode, Transport,
};

/// Client options for a TLS connection to `addr`, with the client certificate `cert` (a
/// name in the PKI, e.g. `sensor`) or none.
fn options(id: &str, addr: SocketAddr, cert: Option<&str>) -> MqttOptions {
    let pki = pki();
    let client_auth = cert.map(|name| {
        (
            pki.read(&format!("{name}.crt")),
            pki.read(&format!("{name}.key")),
        )
    });
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(5));
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_transport(Transport::tls(pki.read("ca.crt"), client_auth, None));
    o
}

/// Drives `connection` until `pick` returns `Some` for an event or error; `None` after `within`.
fn wait_for<T>(
    connection: &mut Connection,
    within: Duration,
    mut pick: impl FnMut(Result<Event, ConnectionError>) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        // Err: nothing within 200 ms (or the client is gone); look at the clock again.
        if let Ok(event) = connection.recv_timeout(Duration::from_millis(200))
            && let Some(picked) = pick(event)
        {
            return Some(picked);
        }
    }
    None
}

/// Drives `connection` until CONNACK: `Ok` if accepted, else the error that ended it.
fn connack(connection: &mut Connection) -> Result<(), Box<ConnectionError>> {
    wait_for(connection, Duration::from_secs(5), |event| match event {
        Ok(Event::Incoming(Packet::ConnAck(_))) => Some(Ok(())),
        Ok(_) => None,
        Err(e) => Some(Err(Box::new(e))),
    })
    .expect("neither CONNACK nor an error within 5 s")
}

/// Drives `connection` until SUBACK and returns its return codes.
fn suback(connection: &mut Connection) -> Vec<SubscribeReasonCode> {
    wait_for(connection, Duration::from_secs(5), |event| match event {
        Ok(Event::Incoming(Packet::SubAck(ack))) => Some(ack.return_codes),
        Ok(_) => None,
        Err(e) => panic!("connection error: {e}"),
    })
    .expect("no SUBACK")
}

/// Drives `connection` until a PUBLISH arrives; returns its topic, payload and QoS.
fn next_publish(connection: &mut Connection) -> (String, Vec<u8>, QoS) {
    wait_for(connection, Duration::from_secs(10), |event| match event {
        Ok(Event::Incoming(Packet::Publish(p))) => Some((p.topic, p.payload.to_vec(), p.qos)),
        Ok(_) => None,
        Err(e) => panic!("connection error: {e}"),
    })
    .expect("no PUBLISH")
}

/// A connected subscriber to `filter` at QoS 1 and a connected publisher, both over TLS.
fn pair(
    addr: SocketAddr,
    cert: Option<&str>,
    filter: &str,
) -> ((Client, Connection), (Client, Connection)) {
    let (sub, mut sub_conn) = Client::new(options("tls-sub", addr, cert), 100);
    connack(&mut sub_conn).expect("subscriber connects");
    sub.subscribe(filter, QoS::AtLeastOnce).unwrap();
    assert_eq!(
        suback(&mut sub_conn),
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let (publisher, mut pub_conn) = Client::new(options("tls-pub", addr, cert), 100);
    connack(&mut pub_conn).expect("publisher connects");
    ((sub, sub_conn), (publisher, pub_conn))
}

/// Publishes at QoS 1 and checks the subscriber receives it (the publisher's connection is
/// driven on a thread so its PUBACK flows).
fn roundtrip(
    publisher: &Client,
    pub_conn: Connection,
    sub_conn: &mut Connection,
    topic: &str,
    payload: Vec<u8>,
) -> Connection {
    let driver = std::thread::spawn(move || {
        let mut pub_conn = pub_conn;
        wait_for(&mut pub_conn, Duration::from_secs(10), |event| {
            matches!(event, Ok(Event::Incoming(Packet::PubAck(_)))).then_some(())
        })
        .expect("no PUBACK");
        pub_conn
    });
    publisher
        .publish(topic, QoS::AtLeastOnce, false, payload.clone())
        .unwrap();
    assert_eq!(
        next_publish(sub_conn),
        (topic.to_string(), payload, QoS::AtLeastOnce)
    );
    driver.join().expect("publisher thread")
}

#[test]
fn qos1_publish_subscribe_over_tls_without_client_certificate() {
    let broker = common::start_with(|c| {
        c.listeners[0].tls = Some(TlsConfig {
            cafile: None,
            ..pki().tls(false, false)
        })
    });
    let ((_sub, mut sub_conn), (publisher, pub_conn)) = pair(broker.addr, None, "tls/#");
    let pub_conn = roundtrip(
        &publisher,
        pub_conn,
        &mut sub_conn,
        "tls/a",
        b"hello".to_vec(),
    );
    // Larger than the TLS send buffer bound: goes out in partial writes.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    roundtrip(&publisher, pub_conn, &mut sub_conn, "tls/big", big);
}

#[test]
fn pipelined_burst_arrives_whole_and_in_order() {
    // Many records per read on both sides: a short plaintext read must mean a drained
    // socket, or the edge-triggered loop would stall with ciphertext left unread.
    let broker = common::start_with(|c| {
        c.listeners[0].tls = Some(TlsConfig {
            cafile: None,
            ..pki().tls(false, false)
        })
    });
    let ((_sub, mut sub_conn), (publisher, mut pub_conn)) = pair(broker.addr, None, "burst");
    let count = 500u32;
    let driver = std::thread::spawn(move || {
        let mut acked = 0;
        wait_for(&mut pub_conn, Duration::from_secs(20), |event| {
            if let Ok(Event::Incoming(Packet::PubAck(_))) = event {
                acked += 1;
            }
            (acked == count).then_some(())
        });
        acked
    });
    for i in 0..count {
        let mut payload = i.to_be_bytes().to_vec();
        payload.resize(1500, b'x');
        publisher
            .publish("burst", QoS::AtLeastOnce, false, payload)
            .unwrap();
    }
    for i in 0..count {
        let (_, payload, _) = next_publish(&mut sub_conn);
        assert_eq!(payload[..4], i.to_be_bytes(), "message {i}");
    }
    assert_eq!(driver.join().unwrap(), count, "every PUBACK arrived");
}

#[test]
fn required_client_certificate_is_checked_against_the_ca() {
    let broker = common::start_with(|c| c.listeners[0].tls = Some(pki().tls(true, false)));
    let ((_sub, mut sub_conn), (publisher, pub_conn)) =
        pair(broker.addr, Some("sensor"), "certs/#");
    let pub_conn = roundtrip(
        &publisher,
        pub_conn,
        &mut sub_conn,
        "certs/x",
        b"ok".to_vec(),
    );

    let (_client, mut conn) = Client::new(options("no-cert", broker.addr, None), 10);
    assert!(
        connack(&mut conn).is_err(),
        "a client without a certificate is refused"
    );
    // The clients with certificates are still served.
    roundtrip(
        &publisher,
        pub_conn,
        &mut sub_conn,
        "certs/y",
        b"still".to_vec(),
    );
}

#[test]
fn certificate_cn_is_the_username_for_acls() {
    let dir = &pki().dir;
    let acl = dir.join("identity.acl");
    std::fs::write(&acl, "user sensor-7\ntopic readwrite sensors/#\n").unwrap();
    let broker = common::start_with(|c| {
        // Optional certificates, so the no-certificate case reaches CONNECT.
        c.listeners[0].tls = Some(pki().tls(false, true));
        c.allow_anonymous = false;
        c.acl_file = Some(acl);
    });

    // The CONNECT username is ignored: the certificate's CN, sensor-7, is the username.
    let mut opts = options("cn-sub", broker.addr, Some("sensor"));
    opts.set_credentials("mallory", "wrong");
    let (sub, mut sub_conn) = Client::new(opts, 10);
    connack(&mut sub_conn).expect("sensor-7 connects without a password");
    sub.subscribe("sensors/#", QoS::AtLeastOnce).unwrap();
    assert_eq!(
        suback(&mut sub_conn),
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    sub.subscribe("secret/#", QoS::AtLeastOnce).unwrap();
    assert_eq!(suback(&mut sub_conn), [SubscribeReasonCode::Failure]);
    let (publisher, pub_conn) = Client::new(options("cn-pub", broker.addr, Some("sensor")), 10);
    let mut pub_conn = pub_conn;
    connack(&mut pub_conn).expect("publisher connects");
    roundtrip(
        &publisher,
        pub_conn,
        &mut sub_conn,
        "sensors/t",
        b"21.5".to_vec(),
    );

    // Another CN gets sensor-7's rights nowhere.
    let (intruder, mut intruder_conn) =
        Client::new(options("cn-intruder", broker.addr, Some("intruder")), 10);
    connack(&mut intruder_conn).expect("a valid certificate connects");
    intruder.subscribe("sensors/#", QoS::AtLeastOnce).unwrap();
    assert_eq!(suback(&mut intruder_conn), [SubscribeReasonCode::Failure]);

    // No certificate, no identity: "bad username or password" (Mosquitto 2.0.11's answer,
    // `tests/tls_subject.rs`), whatever the CONNECT username says.
    let mut opts = options("cn-none", broker.addr, None);
    opts.set_credentials("sensor-7", "x");
    let (_none, mut none_conn) = Client::new(opts, 10);
    match connack(&mut none_conn).map_err(|e| *e) {
        Err(ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, ConnectReturnCode::BadUserNamePassword)
        }
        other => panic!("expected CONNACK bad username or password, got {other:?}"),
    }
}

#[test]
fn plain_mqtt_on_a_tls_port_closes_only_that_connection() {
    let broker = common::start_with(|c| {
        c.listeners[0].tls = Some(TlsConfig {
            cafile: None,
            ..pki().tls(false, false)
        })
    });
    let ((_sub, mut sub_conn), (publisher, pub_conn)) = pair(broker.addr, None, "mixed/#");

    // A plain MQTT 3.1.1 CONNECT where a TLS ClientHello belongs.
    let mut raw = std::net::TcpStream::connect(broker.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(&[
        0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x04, b'p',
        b'l', b'a', b'n',
    ])
    .unwrap();
    let mut rest = Vec::new();
    match raw.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the broker did not close the plain connection: {e}"),
    }
    assert!(
        rest.first().is_none_or(|&b| b == 0x15),
        "at most a TLS alert comes back, never a CONNACK: {rest:?}"
    );

    roundtrip(
        &publisher,
        pub_conn,
        &mut sub_conn,
        "mixed/a",
        b"fine".to_vec(),
    );
}

#[test]
fn a_failed_handshake_is_one_log_line_with_its_cause() {
    let dir = support::Scratch::new("tls-log");
    let addr = support::local(support::free_port());
    let config = dir.write(
        "pipit.conf",
        &format!(
            "listener {} 127.0.0.1\ncertfile {}\nkeyfile {}\nallow_anonymous true\n",
            addr.port(),
            pki().path("server.crt").display(),
            pki().path("server.key").display()
        ),
    );
    let pipit = support::Pipit::with_config(&config, addr, &dir.path("log"));

    // Plain MQTT where a TLS ClientHello belongs.
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    let peer = raw.local_addr().unwrap().to_string();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(&common::Connect::v311("plain").bytes())
        .unwrap();
    let _ = raw.read_to_end(&mut Vec::new());

    let log = pipit.wait_log(&format!("connection from {peer} closed"));
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&peer)).collect();
    assert_eq!(lines.len(), 1, "one line for the connection:\n{log}");
    assert!(
        lines[0].contains("closed before CONNECT: TLS error: ") && lines[0].contains("corrupt"),
        "the line names rustls's reason: {}",
        lines[0]
    );
}

/// Client options for a TLS 1.2-only client with the `sensor` certificate (rumqttc's own
/// rustls version, configured directly).
fn tls12_options(id: &str, addr: SocketAddr) -> MqttOptions {
    use rumqttc::tokio_rustls::rustls::pki_types::pem::PemObject;
    use rumqttc::tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rumqttc::tokio_rustls::rustls::{ClientConfig, RootCertStore, version};
    let pki = pki();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.path("ca.crt")).unwrap())
        .unwrap();
    let chain = vec![CertificateDer::from_pem_file(pki.path("sensor.crt")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(pki.path("sensor.key")).unwrap();
    let config = ClientConfig::builder_with_protocol_versions(&[&version::TLS12])
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_transport(Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(std::sync::Arc::new(config)),
    ));
    o
}

#[test]
fn tls_version_sets_the_lowest_version_accepted() {
    let default = common::start_with(|c| c.listeners[0].tls = Some(pki().tls(true, false)));
    let (_c, mut conn) = Client::new(tls12_options("tls12", default.addr), 10);
    connack(&mut conn).expect("TLS 1.2 is accepted by default");

    let strict = common::start_with(|c| {
        c.listeners[0].tls = Some(TlsConfig {
            min_version: Some(TlsVersion::Tls13),
            ..pki().tls(true, false)
        })
    });
    let (_c, mut conn) = Client::new(tls12_options("tls12", strict.addr), 10);
    assert!(
        connack(&mut conn).is_err(),
        "tls_version tlsv1.3 refuses TLS 1.2"
    );
    let ((_sub, mut sub_conn), (publisher, pub_conn)) = pair(strict.addr, Some("sensor"), "v13");
    roundtrip(&publisher, pub_conn, &mut sub_conn, "v13", b"ok".to_vec());
}

#[test]
fn unreadable_certificate_or_key_fails_bind_naming_the_file() {
    let pki = pki();
    let bind = |tls: TlsConfig| {
        let mut config = Config::default();
        config.listeners[0].addr = "127.0.0.1:0".parse().unwrap();
        config.listeners[0].tls = Some(tls);
        match Broker::bind(config) {
            Ok(_) => panic!("bind succeeded"),
            Err(e) => e.to_string(),
        }
    };
    let missing = pki.path("missing.crt");
    let err = bind(TlsConfig {
        certfile: missing.clone(),
        ..pki.tls(false, false)
    });
    assert!(err.contains(&*missing.to_string_lossy()), "{err}");

    // A certificate where the key belongs.
    let err = bind(TlsConfig {
        keyfile: pki.path("ca.crt"),
        ..pki.tls(false, false)
    });
    assert!(err.contains("ca.crt"), "{err}");

    // A key that is not the certificate's.
    let err = bind(TlsConfig {
        keyfile: pki.path("sensor.key"),
        ..pki.tls(false, false)
    });
    assert!(err.contains("server.crt"), "{err}");
}

#[test]
fn capath_directory_of_ca_certificates_verifies_clients() {
    let capath = pki().dir.join("capath");
    std::fs::create_dir_all(&capath).unwrap();
    std::fs::copy(pki().path("ca.crt"), capath.join("pipit-test-ca.pem")).unwrap();
    // What /etc/ssl/certs also holds: OpenSSL passes over files that are no certificates.
    std::fs::write(capath.join("README"), "not a certificate\n").unwrap();
    std::fs::write(
        capath.join("broken.pem"),
        "-----BEGIN CERTIFICATE-----\nAA\n",
    )
    .unwrap();
    let broker = common::start_with(|c| {
        c.listeners[0].tls = Some(TlsConfig {
            cafile: None,
            capath: Some(capath),
            ..pki().tls(true, false)
        })
    });
    let ((_sub, mut sub_conn), (publisher, pub_conn)) = pair(broker.addr, Some("sensor"), "cp");
    roundtrip(&publisher, pub_conn, &mut sub_conn, "cp", b"ok".to_vec());
}
