//! The records pipit's store holds, and their bytes. The store (`persist::store`) frames and
//! checks each record; this file gives its kind byte and body meaning.
//!
//! A record is a change to durable state, in the order it happened: replaying them in order
//! from an empty state (or from a snapshot, which is the same records for the live state)
//! rebuilds the retained messages and the persistent sessions. Messages are stored once, as
//! a `MESSAGE` record with a store id, and referred to by that id from the retained store and
//! from every queue. Sessions are referred to by a store key, so queue records stay small.
//!
//! Integers are little-endian; strings and byte strings are a `u32` length and the bytes.
//! Times are milliseconds since the Unix epoch, so an expiry counts on across a restart.

mod decode;
mod encode;

pub use decode::decode;
pub use encode::*;

use crate::wire::{QoS, SubscriptionOptions, Version};

/// A message: `id, flags, [expiry], topic, [properties], payload`.
pub const MESSAGE: u8 = 1;
/// A retained message set (`topic, message id`) or cleared (`topic, 0`).
pub const RETAIN: u8 = 2;
/// A persistent session created or reconnected, with its will.
pub const SESSION: u8 = 3;
/// A session ended.
pub const SESSION_END: u8 = 4;
/// A subscription added or replaced.
pub const SUBSCRIBE: u8 = 5;
/// A subscription removed.
pub const UNSUBSCRIBE: u8 = 6;
/// A message queued to a session; the first reference to a message carries the message
/// itself, which saves a record per message in the common case of one stored subscriber.
pub const ENQUEUE: u8 = 7;
/// A run of queued messages sent: `count` messages with consecutive store ids from
/// `message`, into the inflight window under consecutive packet ids from `packet_id` (QoS 1/2),
/// or gone (packet id 0: QoS 0, a run of one). Runs are what a subscriber's one write per
/// loop turn produces, so most turns need one record, not one per message.
pub const SENT: u8 = 8;
/// A queued message dropped unsent (expired, too large, no longer readable).
pub const DEQUEUE: u8 = 9;
/// A run of outbound QoS 1/2 flows ended (PUBACK, PUBCOMP, or a refusing PUBREC), for
/// `count` consecutive packet ids.
pub const ACKED: u8 = 10;
/// A run of outbound QoS 2 messages' PUBRECs came: PUBREL is what remains.
pub const PUBREC: u8 = 11;
/// An inbound QoS 2 packet id now awaits PUBREL.
pub const QOS2_IN: u8 = 12;
/// An inbound QoS 2 packet id released by PUBREL.
pub const QOS2_RELEASED: u8 = 13;
/// A session's will published or discarded.
pub const WILL_GONE: u8 = 14;
/// A stored session is bridge NAME's local session (`key, name`): a bridge finds its spool
/// by its `connection` name, so a changed `local_clientid` does not orphan it.
pub const BRIDGE: u8 = 15;

/// The stored form of a message (MESSAGE), borrowed from where it lives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoredMessage<'a> {
    /// Store id, unique for the store's life.
    pub id: u64,
    /// QoS as published.
    pub qos: QoS,
    /// RETAIN as published.
    pub retain: bool,
    /// Expiry as Unix milliseconds, if any.
    pub expires_at: Option<u64>,
    /// Topic name.
    pub topic: &'a str,
    /// v5 properties forwarded with it.
    pub properties: Option<StoredProperties<'a>>,
    /// Payload.
    pub payload: &'a [u8],
}

/// A message's forwarded v5 properties.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StoredProperties<'a> {
    /// Payload Format Indicator.
    pub payload_format_indicator: Option<u8>,
    /// Content Type.
    pub content_type: Option<&'a str>,
    /// Response Topic.
    pub response_topic: Option<&'a str>,
    /// Correlation Data.
    pub correlation_data: Option<&'a [u8]>,
    /// Encoded User Property entries.
    pub user_properties: &'a [u8],
}

/// A session's will (inside SESSION).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoredWill<'a> {
    /// The will message (its id is 0: it is not shared).
    pub message: StoredMessage<'a>,
    /// Will Delay Interval, seconds.
    pub delay: u32,
    /// Message Expiry Interval, counted from publication.
    pub message_expiry_interval: Option<u32>,
}

/// A persistent session (SESSION).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoredSession<'a> {
    /// Store key the other records name it by.
    pub key: u64,
    /// Client identifier.
    pub client_id: &'a str,
    /// Protocol version of its last connection.
    pub version: Version,
    /// Session Expiry Interval, seconds.
    pub expiry_interval: u32,
    /// Listener index its client came through.
    pub listener: u16,
    /// Username, for ACL checks.
    pub username: Option<&'a str>,
    /// Its will, if any.
    pub will: Option<StoredWill<'a>>,
}

/// One decoded record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Record<'a> {
    /// See [`MESSAGE`].
    Message(StoredMessage<'a>),
    /// See [`RETAIN`]; message id 0 clears.
    Retain {
        /// Topic name.
        topic: &'a str,
        /// Message id, 0 to clear.
        message: u64,
    },
    /// See [`SESSION`].
    Session(StoredSession<'a>),
    /// See [`SESSION_END`].
    SessionEnd {
        /// Session key.
        key: u64,
    },
    /// See [`SUBSCRIBE`].
    Subscribe {
        /// Session key.
        key: u64,
        /// The filter as subscribed, `$share/` prefix included.
        filter: &'a str,
        /// Options.
        options: SubscriptionOptions,
        /// Subscription identifier, 0 for none.
        subscription_id: u32,
    },
    /// See [`UNSUBSCRIBE`].
    Unsubscribe {
        /// Session key.
        key: u64,
        /// The filter as subscribed.
        filter: &'a str,
    },
    /// See [`ENQUEUE`].
    Enqueue {
        /// Session key.
        key: u64,
        /// Message id.
        message: u64,
        /// QoS it is delivered at.
        qos: QoS,
        /// RETAIN flag to send.
        retain: bool,
        /// Subscription identifiers, encoded as `u32`s.
        subscription_ids: &'a [u8],
        /// The message itself, when this is its first record (its id is `message`).
        inline: Option<StoredMessage<'a>>,
    },
    /// See [`SENT`].
    Sent {
        /// Session key.
        key: u64,
        /// First message id.
        message: u64,
        /// First packet id, 0 for QoS 0.
        packet_id: u16,
        /// Messages in the run.
        count: u16,
    },
    /// See [`DEQUEUE`].
    Dequeue {
        /// Session key.
        key: u64,
        /// Message id.
        message: u64,
    },
    /// See [`ACKED`].
    Acked {
        /// Session key.
        key: u64,
        /// First packet id.
        packet_id: u16,
        /// Packet ids in the run.
        count: u16,
    },
    /// See [`PUBREC`].
    Pubrec {
        /// Session key.
        key: u64,
        /// First packet id.
        packet_id: u16,
        /// Packet ids in the run.
        count: u16,
    },
    /// See [`QOS2_IN`].
    Qos2In {
        /// Session key.
        key: u64,
        /// Packet id.
        packet_id: u16,
    },
    /// See [`QOS2_RELEASED`].
    Qos2Released {
        /// Session key.
        key: u64,
        /// Packet id.
        packet_id: u16,
    },
    /// See [`WILL_GONE`].
    WillGone {
        /// Session key.
        key: u64,
    },
    /// See [`BRIDGE`].
    Bridge {
        /// Session key.
        key: u64,
        /// The bridge's `connection` name.
        name: &'a str,
    },
}

pub(super) const QOS_MASK: u8 = 0x03;
pub(super) const RETAIN_BIT: u8 = 0x04;
pub(super) const EXPIRY_BIT: u8 = 0x08;
pub(super) const PROPERTIES_BIT: u8 = 0x10;
/// ENQUEUE: the message follows.
pub(super) const INLINE_BIT: u8 = 0x08;

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(kind: u8, body: Vec<u8>, expected: Record<'_>) {
        assert_eq!(decode(kind, &body), Some(expected));
        // Every strict prefix is refused, never misread.
        for cut in 0..body.len() {
            assert_eq!(decode(kind, &body[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn every_record_round_trips_and_prefixes_are_refused() {
        let message = StoredMessage {
            id: 7,
            qos: QoS::ExactlyOnce,
            retain: true,
            expires_at: Some(1_700_000_000_000),
            topic: "a/b",
            properties: Some(StoredProperties {
                payload_format_indicator: Some(1),
                content_type: Some("text/plain"),
                response_topic: None,
                correlation_data: Some(b"\x00\x01"),
                user_properties: b"\x26\x00\x01k\x00\x01v",
            }),
            payload: b"hello",
        };
        let mut out = Vec::new();
        put_message(&mut out, &message);
        round_trip(MESSAGE, out, Record::Message(message));

        let plain = StoredMessage {
            properties: None,
            expires_at: None,
            ..message
        };
        let session = StoredSession {
            key: 3,
            client_id: "c1",
            version: Version::V5,
            expiry_interval: 60,
            listener: 1,
            username: Some("u"),
            will: Some(StoredWill {
                message: StoredMessage { id: 0, ..plain },
                delay: 5,
                message_expiry_interval: Some(0),
            }),
        };
        let mut out = Vec::new();
        put_session(&mut out, &session);
        round_trip(SESSION, out, Record::Session(session));

        let mut out = Vec::new();
        put_enqueue(&mut out, 3, 7, QoS::AtLeastOnce, true, &[1, 9], None);
        round_trip(
            ENQUEUE,
            out,
            Record::Enqueue {
                key: 3,
                message: 7,
                qos: QoS::AtLeastOnce,
                retain: true,
                subscription_ids: &[1, 0, 0, 0, 9, 0, 0, 0],
                inline: None,
            },
        );
        let mut out = Vec::new();
        put_enqueue(&mut out, 3, 7, QoS::AtMostOnce, false, &[], Some(&message));
        round_trip(
            ENQUEUE,
            out,
            Record::Enqueue {
                key: 3,
                message: 7,
                qos: QoS::AtMostOnce,
                retain: false,
                subscription_ids: &[],
                inline: Some(message),
            },
        );

        let options = SubscriptionOptions {
            no_local: true,
            ..SubscriptionOptions::at(QoS::AtLeastOnce)
        };
        let mut out = Vec::new();
        put_subscribe(&mut out, 3, "$share/g/x/#", options, 42);
        round_trip(
            SUBSCRIBE,
            out,
            Record::Subscribe {
                key: 3,
                filter: "$share/g/x/#",
                options,
                subscription_id: 42,
            },
        );

        let mut out = Vec::new();
        put_run(&mut out, 3, Some(7), 11, 4);
        round_trip(
            SENT,
            out,
            Record::Sent {
                key: 3,
                message: 7,
                packet_id: 11,
                count: 4,
            },
        );
        let mut out = Vec::new();
        put_run(&mut out, 3, None, 11, 2);
        round_trip(
            PUBREC,
            out,
            Record::Pubrec {
                key: 3,
                packet_id: 11,
                count: 2,
            },
        );
        let mut out = Vec::new();
        put_key_packet(&mut out, 3, 11);
        round_trip(
            QOS2_IN,
            out,
            Record::Qos2In {
                key: 3,
                packet_id: 11,
            },
        );
        let mut out = Vec::new();
        put_key_str(&mut out, 3, "cloud");
        round_trip(
            BRIDGE,
            out,
            Record::Bridge {
                key: 3,
                name: "cloud",
            },
        );
        let mut out = Vec::new();
        put_retain(&mut out, "a/b", 0);
        round_trip(
            RETAIN,
            out,
            Record::Retain {
                topic: "a/b",
                message: 0,
            },
        );
    }

    #[test]
    fn unknown_kinds_and_trailing_bytes_are_refused() {
        assert_eq!(decode(200, &[]), None);
        let mut out = Vec::new();
        put_u64(&mut out, 1);
        out.push(0);
        assert_eq!(decode(SESSION_END, &out), None);
    }
}
