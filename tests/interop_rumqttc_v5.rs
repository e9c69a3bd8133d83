//! Interoperability with an independent MQTT 5 client: `rumqttc::v5`.

mod common;

use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties, SubscribeProperties};
use rumqttc::v5::{Client, Connection, Event, MqttOptions};

fn options(id: &str, addr: std::net::SocketAddr) -> MqttOptions {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(5));
    o
}

/// Drives `connection` until `want` matches an incoming packet; returns every PUBLISH seen.
fn drive(connection: &mut Connection, n: usize, want: impl Fn(&Packet) -> bool) -> Vec<Publish> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut matched = false;
    while (!matched || got.len() < n) && Instant::now() < deadline {
        match connection.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(Event::Incoming(p))) => {
                if want(&p) {
                    matched = true;
                }
                if let Packet::Publish(p) = p {
                    got.push(p);
                }
            }
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => panic!("connection error: {e}"),
        }
    }
    assert!(matched, "expected packet never arrived");
    got
}

#[test]
fn subscription_id_user_properties_and_qos_with_rumqttc_v5() {
    let broker = common::start();
    let (sub, mut sub_conn) = Client::new(options("r5-sub", broker.addr), 100);
    sub.subscribe_with_properties(
        "r5/#",
        QoS::ExactlyOnce,
        SubscribeProperties {
            id: Some(7),
            user_properties: Vec::new(),
        },
    )
    .unwrap();
    drive(&mut sub_conn, 0, |p| matches!(p, Packet::SubAck(..)));

    let (publisher, mut pub_conn) = Client::new(options("r5-pub", broker.addr), 100);
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let props = PublishProperties {
            user_properties: vec![("n".into(), i.to_string())],
            content_type: Some("text/plain".into()),
            ..Default::default()
        };
        publisher
            .publish_with_properties(format!("r5/{i}"), qos, false, vec![i as u8], props)
            .unwrap();
    }
    drive(&mut pub_conn, 0, |p| matches!(p, Packet::PubComp(..)));

    let got = drive(&mut sub_conn, 3, |_| true);
    assert_eq!(got.len(), 3);
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p.topic, format!("r5/{i}").as_bytes());
        assert_eq!(p.payload.as_ref(), &[i as u8]);
        assert_eq!(p.qos as u8, i as u8);
        let props = p.properties.as_ref().expect("properties");
        assert_eq!(props.subscription_identifiers, [7]);
        assert_eq!(props.user_properties, [("n".to_string(), i.to_string())]);
        assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    }
}
