//! `Message`: one published application message, stored once and shared by every queue
//! that holds it (`Rc<Message>`): subscribers' queues, inflight windows, pending wills and
//! the retained store.
//!
//! The MQTT 5 properties a message carries to its subscribers (v5 3.3.2.3) are kept once in
//! an optional box, so a v3 message or a v5 message without properties costs one pointer.
//! Its expiry is an absolute deadline; the remaining interval is computed when it is sent.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::core::payload::Payload;
use crate::persist::journal::StoreId;
use crate::wire::{Properties, QoS, UserProperties};

/// One application message as the broker keeps it, after the publisher's PUBLISH is parsed.
#[derive(Debug, PartialEq)]
pub struct Message {
    /// The topic name it was published to; shared with the publisher's session while it
    /// keeps publishing to the same topic (see `route::LastTopic`).
    pub topic: Rc<str>,
    /// The application payload, stored once whatever the number of subscribers (a large
    /// one shares the buffer it was received in).
    pub payload: Payload,
    /// The QoS it was published with; each subscriber gets at most its granted QoS.
    pub qos: QoS,
    /// The RETAIN flag as published.
    pub retain: bool,
    /// The MQTT 5 properties forwarded unchanged to subscribers, if any.
    pub properties: Option<Box<MessageProperties>>,
    /// When the message expires (v5 Message Expiry Interval); `None` never.
    pub expires_at: Option<Instant>,
    /// Where its PUBLISH frame is in the current output pass's `FrameCache`, if there.
    pub frame: FrameSlot,
    /// Its id in the persistent store, 0 while not stored.
    pub store_id: StoreId,
}

/// A message's place in the output pass's frame cache: (pass, entry), pass 0 for none. A
/// `Cell` because the message is shared; only the loop's thread touches it.
#[derive(Debug, Default)]
pub struct FrameSlot(Cell<(u32, u32)>);

impl FrameSlot {
    /// The (pass, entry) last recorded.
    pub fn get(&self) -> (u32, u32) {
        self.0.get()
    }

    /// Records where the frame is.
    pub fn set(&self, pass: u32, entry: u32) {
        self.0.set((pass, entry));
    }
}

impl PartialEq for FrameSlot {
    /// Scratch state, not part of what a message is: always equal.
    fn eq(&self, _: &FrameSlot) -> bool {
        true
    }
}

/// The PUBLISH properties a message is forwarded with [MQTT-3.3.2-4] [MQTT-3.3.2-15]
/// [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessageProperties {
    /// Payload Format Indicator (0 bytes, 1 UTF-8).
    pub payload_format_indicator: Option<u8>,
    /// Content Type.
    pub content_type: Option<Box<str>>,
    /// Response Topic of a request.
    pub response_topic: Option<Box<str>>,
    /// Correlation Data of a request.
    pub correlation_data: Option<Box<[u8]>>,
    /// The encoded User Property (0x26) entries, in the order they arrived.
    pub user_properties: Box<[u8]>,
}

impl Message {
    /// Builds a shared message, copying the payload (and the topic, unless it is already
    /// shared) out of the receive buffer.
    pub fn shared(
        topic: impl Into<Rc<str>>,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Rc<Message> {
        Message::of(topic, payload.into(), qos, retain)
    }

    /// Builds a shared message with `payload` as it is (a large one may share its receive
    /// buffer).
    pub fn of(topic: impl Into<Rc<str>>, payload: Payload, qos: QoS, retain: bool) -> Rc<Message> {
        Rc::new(Message {
            topic: topic.into(),
            payload,
            qos,
            retain,
            properties: None,
            expires_at: None,
            frame: FrameSlot::default(),
            store_id: StoreId::default(),
        })
    }

    /// Builds a shared message that keeps the forwardable properties of a v5 PUBLISH (or
    /// will) and its expiry, counted from `now`.
    pub fn with_properties(
        topic: impl Into<Rc<str>>,
        payload: Payload,
        qos: QoS,
        retain: bool,
        props: &Properties<'_>,
        now: Instant,
    ) -> Rc<Message> {
        let forwarded = props.payload_format_indicator.is_some()
            || props.content_type.is_some()
            || props.response_topic.is_some()
            || props.correlation_data.is_some()
            || !props.user_properties.is_empty();
        let properties = forwarded.then(|| {
            let mut user_properties = Vec::with_capacity(props.user_properties.encoded_len());
            props.user_properties.encode_entries(&mut user_properties);
            Box::new(MessageProperties {
                payload_format_indicator: props.payload_format_indicator,
                content_type: props.content_type.map(Box::from),
                response_topic: props.response_topic.map(Box::from),
                correlation_data: props.correlation_data.map(Box::from),
                user_properties: user_properties.into_boxed_slice(),
            })
        });
        Rc::new(Message {
            topic: topic.into(),
            payload,
            qos,
            retain,
            properties,
            expires_at: props
                .message_expiry_interval
                .map(|secs| now + Duration::from_secs(u64::from(secs))),
            frame: FrameSlot::default(),
            store_id: StoreId::default(),
        })
    }

    /// `message` with a payload of its own: the same message if it has one, else a copy
    /// that no longer holds the receive buffer (for what keeps messages indefinitely).
    pub fn unshared(message: Rc<Message>) -> Rc<Message> {
        if !message.payload.is_shared() {
            return message;
        }
        let copy = message.rebuilt(
            Rc::clone(&message.topic),
            Payload::from(&message.payload[..]),
        );
        copy.store_id.set(message.store_id.get());
        Rc::new(copy)
    }

    /// This message on `topic` with `payload`: the same QoS, RETAIN flag, properties and
    /// expiry, not yet in a frame cache or the store.
    pub fn rebuilt(&self, topic: Rc<str>, payload: Payload) -> Message {
        Message {
            topic,
            payload,
            qos: self.qos,
            retain: self.retain,
            properties: self.properties.clone(),
            expires_at: self.expires_at,
            frame: FrameSlot::default(),
            store_id: StoreId::default(),
        }
    }

    /// Whether the message has expired at `now` and must not be delivered [MQTT-3.3.2-5].
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The PUBLISH properties to send it with at `now`: the stored properties and the
    /// remaining expiry interval, rounded up [MQTT-3.3.2-6].
    pub fn publish_properties(&self, now: Instant) -> Properties<'_> {
        let mut out = Properties {
            message_expiry_interval: self.expires_at.map(|at| {
                let left = at.saturating_duration_since(now);
                let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                u32::try_from(secs).unwrap_or(u32::MAX)
            }),
            ..Properties::default()
        };
        if let Some(p) = &self.properties {
            out.payload_format_indicator = p.payload_format_indicator;
            out.content_type = p.content_type.as_deref();
            out.response_topic = p.response_topic.as_deref();
            out.correlation_data = p.correlation_data.as_deref();
            out.user_properties = UserProperties::new(&p.user_properties);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unshared_copies_a_shared_payload_and_keeps_the_rest() {
        let buf: crate::core::payload::RxBytes = Rc::new(vec![9; 64].into_boxed_slice());
        let payload = Payload::shared(&buf, 8, 32).expect("within the buffer");
        let message = Message::of("t", payload, QoS::AtLeastOnce, true);
        message.store_id.set(42);
        assert_eq!(Rc::strong_count(&buf), 2);
        let kept = Message::unshared(Rc::clone(&message));
        assert!(!kept.payload.is_shared());
        assert_eq!(*kept, *message, "the same message");
        assert_eq!(kept.store_id.get(), 42, "the same stored message");
        drop(message);
        assert_eq!(
            Rc::strong_count(&buf),
            1,
            "the copy does not hold the buffer"
        );
        let owned = Message::shared("t", b"small", QoS::AtMostOnce, false);
        assert!(
            Rc::ptr_eq(&Message::unshared(Rc::clone(&owned)), &owned),
            "no copy needed"
        );
    }
}
