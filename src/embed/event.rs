//! What a [`LocalClient`](super::LocalClient) receives: messages and the broker's answers.

use std::collections::HashSet;

use crate::wire::{self, Ack, Packet, PacketType, Properties, QoS, Version};

/// A message delivered to a local client's subscription.
///
/// ```
/// use pipit::embed::{LocalOptions, Outgoing};
/// use pipit::wire::{Properties, QoS, SubscriptionOptions};
///
/// let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
/// let mut client = broker.handle.local_client(LocalOptions::new("c"))?;
/// client.subscribe(&[("t", SubscriptionOptions::at(QoS::AtMostOnce))])?;
/// let properties = Properties { content_type: Some("text/plain"), ..Properties::default() };
/// client.publish(&Outgoing::new("t", b"hi").properties(properties))?;
/// let got = client.recv_timeout(std::time::Duration::from_secs(5))?.expect("a message");
/// assert_eq!(got.properties().content_type, Some("text/plain"));
/// # broker.handle.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The topic it was published on.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// The QoS it was delivered with.
    pub qos: QoS,
    /// Whether it came as a retained message.
    pub retain: bool,
    /// Whether the broker sent it before (a re-delivery after a reconnect).
    pub dup: bool,
    /// The PUBLISH frame, kept for its properties.
    frame: Vec<u8>,
}

impl Delivery {
    /// A delivery of the PUBLISH `p` that arrived as `frame`.
    pub(super) fn new(p: &wire::Publish<'_>, frame: &[u8]) -> Delivery {
        Delivery {
            topic: p.topic.to_owned(),
            payload: p.payload.to_vec(),
            qos: p.qos,
            retain: p.retain,
            dup: p.dup,
            frame: frame.to_vec(),
        }
    }

    /// Its MQTT 5 properties: user properties, content type, response topic, correlation
    /// data, message expiry, subscription identifiers (the first).
    pub fn properties(&self) -> Properties<'_> {
        // The frame decoded once when it arrived; it decodes the same again.
        match wire::decode(&self.frame, Version::V5, wire::MAX_PACKET_SIZE) {
            Ok(Some((Packet::Publish(p), _))) => p.properties,
            _ => Properties::default(),
        }
    }
}

/// One thing that happened to a local client, in the order it happened.
///
/// ```
/// use pipit::embed::{Event, LocalOptions};
/// use pipit::wire::{QoS, SubscriptionOptions};
///
/// let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
/// let mut client = broker.handle.local_client(LocalOptions::new("c"))?;
/// let packet_id = client.subscribe_nowait(&[("a/#", SubscriptionOptions::at(QoS::ExactlyOnce))])?;
/// let event = client.next_event(std::time::Duration::from_secs(5))?;
/// assert_eq!(event, Some(Event::Subscribed { packet_id, reason_codes: vec![2] }));
/// # broker.handle.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// CONNACK: the broker accepted (reason code 0) or refused the client.
    Connected {
        /// Whether the broker resumed a stored session.
        session_present: bool,
        /// The CONNACK reason code (MQTT 5).
        reason_code: u8,
        /// The client identifier the broker assigned, if the client sent none.
        assigned_client_id: Option<String>,
    },
    /// A message for one of the client's subscriptions (acknowledged already).
    Message(Delivery),
    /// A QoS 1 or 2 PUBLISH of the client's finished: PUBACK, PUBCOMP, or a PUBREC with an
    /// error reason code.
    Published {
        /// The PUBLISH's packet identifier.
        packet_id: u16,
        /// The reason code: below 0x80 accepted, else refused (0x87 not authorized, ...).
        reason_code: u8,
    },
    /// SUBACK.
    Subscribed {
        /// The SUBSCRIBE's packet identifier.
        packet_id: u16,
        /// One code per filter: the QoS granted, or an error (0x80 and up).
        reason_codes: Vec<u8>,
    },
    /// UNSUBACK.
    Unsubscribed {
        /// The UNSUBSCRIBE's packet identifier.
        packet_id: u16,
        /// One code per filter: 0 removed, 0x11 there was no such subscription, ...
        reason_codes: Vec<u8>,
    },
    /// The connection ended: the broker's DISCONNECT reason code, or `None` if it closed
    /// without one (shut down, or the client was refused at CONNECT).
    Disconnected {
        /// The DISCONNECT reason code, if one came.
        reason_code: Option<u8>,
    },
}

/// The event a packet from the broker makes, with any reply appended to `replies`.
pub(super) fn on_packet(
    packet: &Packet<'_>,
    frame: &[u8],
    inbound_qos2: &mut HashSet<u16>,
    replies: &mut Vec<u8>,
) -> Option<Event> {
    let ack = |packet_id: u16, kind: PacketType, out: &mut Vec<u8>| {
        Ack {
            packet_id,
            reason_code: 0,
            properties: Properties::default(),
        }
        .encode(kind, Version::V5, out)
    };
    match packet {
        Packet::Connack(c) => Some(Event::Connected {
            session_present: c.session_present,
            reason_code: c.reason_code,
            assigned_client_id: c.properties.assigned_client_identifier.map(str::to_owned),
        }),
        Packet::Publish(p) => match p.qos {
            QoS::AtMostOnce => Some(Event::Message(Delivery::new(p, frame))),
            QoS::AtLeastOnce => {
                ack(p.packet_id, PacketType::Puback, replies);
                Some(Event::Message(Delivery::new(p, frame)))
            }
            QoS::ExactlyOnce => {
                ack(p.packet_id, PacketType::Pubrec, replies);
                // A re-sent PUBLISH before our PUBREC arrived is the same message.
                inbound_qos2
                    .insert(p.packet_id)
                    .then(|| Event::Message(Delivery::new(p, frame)))
            }
        },
        Packet::Pubrel(a) => {
            inbound_qos2.remove(&a.packet_id);
            ack(a.packet_id, PacketType::Pubcomp, replies);
            None
        }
        Packet::Puback(a) | Packet::Pubcomp(a) => Some(Event::Published {
            packet_id: a.packet_id,
            reason_code: a.reason_code,
        }),
        Packet::Pubrec(a) if a.reason_code >= 0x80 => Some(Event::Published {
            packet_id: a.packet_id,
            reason_code: a.reason_code,
        }),
        Packet::Pubrec(a) => {
            ack(a.packet_id, PacketType::Pubrel, replies);
            None
        }
        Packet::Suback(s) => Some(Event::Subscribed {
            packet_id: s.packet_id,
            reason_codes: s.reason_codes.to_vec(),
        }),
        Packet::Unsuback(u) => Some(Event::Unsubscribed {
            packet_id: u.packet_id,
            reason_codes: u.reason_codes.to_vec(),
        }),
        Packet::Disconnect(d) => Some(Event::Disconnected {
            reason_code: Some(d.reason_code),
        }),
        // Nothing else is sent to a client that never pings or authenticates.
        _ => None,
    }
}
