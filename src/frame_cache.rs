//! Outgoing PUBLISH frames built once per form and copied to every subscriber that takes the
//! same form.
//!
//! When one message goes to many subscribers (fan-out), most of them receive byte-identical
//! frames: the same topic, payload, flags and properties, differing at most in the packet id.
//! So the first subscriber's frame is kept (with the offset of its packet id) and the others
//! get a copy with their packet id patched in. A form is (message, protocol version, QoS,
//! RETAIN); subscribers with topic aliases or subscription identifiers get frames of their
//! own. The cache holds a few recent forms and lives for one output pass of the loop (a v5
//! frame's Message Expiry Interval is computed for that moment), keeping its buffers so it
//! allocates nothing once warm.

use std::rc::Rc;

use crate::message::Message;
use crate::wire::{QoS, Version, publish_packet_id_offset};

/// Forms kept: a turn's fan-out seldom interleaves more messages than this per subscriber.
const SLOTS: usize = 8;
/// Largest frame kept: past this, copying the payload dominates and encoding costs no more.
pub const MAX_CACHED_FRAME: usize = 4096;

/// One cached frame.
#[derive(Debug, Default)]
struct Slot {
    /// The message it delivers; `None` when the slot is free. Holding the `Rc` keeps the
    /// message (and so its address, the key) from being reused while cached.
    message: Option<Rc<Message>>,
    version: Option<Version>,
    qos: Option<QoS>,
    retain: bool,
    /// The encoded frame, packet id as first encoded.
    bytes: Vec<u8>,
    /// Where the packet id is in `bytes` (QoS 1/2).
    packet_id_at: Option<usize>,
}

/// Recently encoded PUBLISH frames.
#[derive(Debug, Default)]
pub struct FrameCache {
    slots: Vec<Slot>,
    next: usize,
}

impl FrameCache {
    /// Forgets every frame (a new output pass: `now` has moved), keeping the buffers.
    pub fn clear(&mut self) {
        for slot in &mut self.slots {
            slot.message = None;
        }
    }

    /// Appends to `out` the frame of `message` in this form with `packet_id` patched in, if
    /// it is cached; returns its length.
    pub fn copy_into(
        &self,
        out: &mut Vec<u8>,
        message: &Rc<Message>,
        version: Version,
        qos: QoS,
        retain: bool,
        packet_id: u16,
    ) -> Option<usize> {
        let slot = self.find(message, version, qos, retain)?;
        let start = out.len();
        out.extend_from_slice(&slot.bytes);
        if let Some(at) = slot.packet_id_at {
            out[start + at..start + at + 2].copy_from_slice(&packet_id.to_be_bytes());
        }
        Some(slot.bytes.len())
    }

    /// The length `message`'s frame in this form has, if cached.
    pub fn len_of(
        &self,
        message: &Rc<Message>,
        version: Version,
        qos: QoS,
        retain: bool,
    ) -> Option<usize> {
        self.find(message, version, qos, retain)
            .map(|s| s.bytes.len())
    }

    fn find(
        &self,
        message: &Rc<Message>,
        version: Version,
        qos: QoS,
        retain: bool,
    ) -> Option<&Slot> {
        self.slots.iter().find(|s| {
            s.message.as_ref().is_some_and(|m| Rc::ptr_eq(m, message))
                && s.version == Some(version)
                && s.qos == Some(qos)
                && s.retain == retain
        })
    }

    /// Keeps `frame`, just encoded for `message` in this form.
    pub fn insert(
        &mut self,
        message: &Rc<Message>,
        version: Version,
        qos: QoS,
        retain: bool,
        frame: &[u8],
    ) {
        if frame.len() > MAX_CACHED_FRAME {
            return;
        }
        let i = if self.slots.len() < SLOTS {
            self.slots.push(Slot::default());
            self.slots.len() - 1
        } else {
            let i = self.next;
            self.next = (self.next + 1) % SLOTS;
            i
        };
        let slot = &mut self.slots[i];
        slot.message = Some(Rc::clone(message));
        slot.version = Some(version);
        slot.qos = Some(qos);
        slot.retain = retain;
        slot.bytes.clear();
        slot.bytes.extend_from_slice(frame);
        slot.packet_id_at = publish_packet_id_offset(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Properties;
    use crate::wire::Publish;

    fn frame(m: &Message, qos: QoS, packet_id: u16) -> Vec<u8> {
        let mut out = Vec::new();
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: &m.topic,
            packet_id,
            properties: Properties::default(),
            payload: &m.payload,
        }
        .encode(Version::V311, &[], &mut out);
        out
    }

    #[test]
    fn a_cached_frame_is_copied_with_its_packet_id_patched() {
        let m = Message::shared("a/b", b"payload", QoS::AtLeastOnce, false);
        let mut cache = FrameCache::default();
        cache.insert(
            &m,
            Version::V311,
            QoS::AtLeastOnce,
            false,
            &frame(&m, QoS::AtLeastOnce, 1),
        );
        let mut out = vec![0xff];
        let len = cache.copy_into(&mut out, &m, Version::V311, QoS::AtLeastOnce, false, 0x1234);
        assert_eq!(len, Some(out.len() - 1));
        assert_eq!(&out[1..], frame(&m, QoS::AtLeastOnce, 0x1234));
        // Another form, or another message with the same content, is not a hit.
        assert!(
            cache
                .len_of(&m, Version::V5, QoS::AtLeastOnce, false)
                .is_none()
        );
        assert!(
            cache
                .len_of(&m, Version::V311, QoS::AtMostOnce, false)
                .is_none()
        );
        let twin = Message::shared("a/b", b"payload", QoS::AtLeastOnce, false);
        assert!(
            cache
                .len_of(&twin, Version::V311, QoS::AtLeastOnce, false)
                .is_none()
        );
        cache.clear();
        assert!(
            cache
                .len_of(&m, Version::V311, QoS::AtLeastOnce, false)
                .is_none()
        );
    }

    #[test]
    fn slots_are_reused_round_robin() {
        let mut cache = FrameCache::default();
        let messages: Vec<_> = (0..SLOTS + 2)
            .map(|i| Message::shared(format!("t/{i}"), b"x", QoS::AtMostOnce, false))
            .collect();
        for m in &messages {
            cache.insert(
                m,
                Version::V311,
                QoS::AtMostOnce,
                false,
                &frame(m, QoS::AtMostOnce, 0),
            );
        }
        assert_eq!(cache.slots.len(), SLOTS);
        assert!(
            cache
                .len_of(&messages[0], Version::V311, QoS::AtMostOnce, false)
                .is_none()
        );
        let last = &messages[SLOTS + 1];
        let mut out = Vec::new();
        cache.copy_into(&mut out, last, Version::V311, QoS::AtMostOnce, false, 0);
        assert_eq!(out, frame(last, QoS::AtMostOnce, 0));
    }
}
