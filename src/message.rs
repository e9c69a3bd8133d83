//! `Message`: one published application message, stored once and shared by every queue
//! that holds it (`Rc<Message>`): subscribers' queues, inflight windows and the retained store.

use std::rc::Rc;

use crate::wire::QoS;

/// One application message as the broker keeps it, after the publisher's PUBLISH is parsed.
#[derive(Debug, PartialEq)]
pub struct Message {
    /// The topic name it was published to.
    pub topic: Box<str>,
    /// The application payload, stored once whatever the number of subscribers.
    pub payload: Box<[u8]>,
    /// The QoS it was published with; each subscriber gets at most its granted QoS.
    pub qos: QoS,
    /// The RETAIN flag as published.
    pub retain: bool,
}

impl Message {
    /// Builds a shared message, copying topic and payload out of the receive buffer.
    pub fn shared(topic: &str, payload: &[u8], qos: QoS, retain: bool) -> Rc<Message> {
        Rc::new(Message {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
        })
    }
}
