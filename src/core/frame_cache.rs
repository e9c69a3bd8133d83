//! Outgoing PUBLISH frames built once per message and copied to every subscriber that takes
//! the same form.
//!
//! When one message goes to many subscribers (fan-out), most of them receive byte-identical
//! frames: the same topic, payload, flags and properties, differing at most in the packet id.
//! So the first subscriber's frame is kept in an arena (with the offset of its packet id) and
//! the others get a copy with their packet id patched in. The message itself records where
//! its frame is (`Message::frame`), so finding it costs no lookup. A form is (protocol
//! version, QoS, RETAIN); the first form written in a pass is the one kept, and subscribers
//! in other forms, or with topic aliases or subscription identifiers, get frames of their own.
//!
//! The cache lives for one output pass of the loop (a v5 frame's Message Expiry Interval is
//! computed for that moment): `clear` starts a new pass, which makes every recorded slot stale
//! at once. Its buffers are kept, so it allocates nothing once warm, and the arena is bounded.

use std::rc::Rc;

use crate::core::message::Message;
use crate::wire::{QoS, Version, publish_packet_id_offset};

/// Largest frame kept: past this, copying the payload dominates and encoding costs no more.
const MAX_CACHED_FRAME: usize = 4096;
/// Most bytes the arena holds in one pass; later frames are encoded per subscriber.
const MAX_ARENA: usize = 1 << 20;

/// The form of a frame: which version, QoS and RETAIN flag it was encoded for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Form {
    version: Version,
    qos: QoS,
    retain: bool,
}

/// One kept frame.
#[derive(Clone, Copy, Debug)]
struct Entry {
    form: Form,
    start: u32,
    len: u32,
    /// Where the packet id is in the frame (QoS 1/2).
    packet_id_at: Option<u16>,
}

/// The frames of one output pass.
#[derive(Debug)]
pub struct FrameCache {
    /// This pass's number; slots recorded in other passes are stale. Never 0 (a message's
    /// slot starts at pass 0: none).
    pass: u32,
    arena: Vec<u8>,
    entries: Vec<Entry>,
}

impl Default for FrameCache {
    fn default() -> Self {
        FrameCache {
            pass: 1,
            arena: Vec::new(),
            entries: Vec::new(),
        }
    }
}

impl FrameCache {
    /// Starts a new output pass: every frame kept so far is forgotten.
    pub fn clear(&mut self) {
        self.pass = self.pass.checked_add(1).unwrap_or(1);
        self.arena.clear();
        self.entries.clear();
    }

    fn entry(&self, message: &Message, form: Form) -> Option<Entry> {
        let (pass, index) = message.frame.get();
        if pass != self.pass {
            return None;
        }
        self.entries
            .get(index as usize)
            .copied()
            .filter(|e| e.form == form)
    }

    /// The length of `message`'s frame in this form, if it is kept.
    pub fn len_of(
        &self,
        message: &Message,
        version: Version,
        qos: QoS,
        retain: bool,
    ) -> Option<usize> {
        let form = Form {
            version,
            qos,
            retain,
        };
        self.entry(message, form).map(|e| e.len as usize)
    }

    /// Appends to `out` the kept frame of `message` in this form with `packet_id` patched
    /// in; returns whether it was kept.
    pub fn copy_into(
        &self,
        out: &mut Vec<u8>,
        message: &Message,
        version: Version,
        qos: QoS,
        retain: bool,
        packet_id: u16,
    ) -> bool {
        let form = Form {
            version,
            qos,
            retain,
        };
        let Some(e) = self.entry(message, form) else {
            return false;
        };
        let start = out.len();
        out.extend_from_slice(&self.arena[e.start as usize..(e.start + e.len) as usize]);
        if let Some(at) = e.packet_id_at {
            let at = start + usize::from(at);
            out[at..at + 2].copy_from_slice(&packet_id.to_be_bytes());
        }
        true
    }

    /// Keeps `frame`, just encoded for `message` in this form, unless it is large, the arena
    /// is full, or the message already has a frame this pass.
    pub fn insert(
        &mut self,
        message: &Rc<Message>,
        version: Version,
        qos: QoS,
        retain: bool,
        frame: &[u8],
    ) {
        if frame.len() > MAX_CACHED_FRAME
            || self.arena.len() + frame.len() > MAX_ARENA
            || message.frame.get().0 == self.pass
        {
            return;
        }
        let entry = Entry {
            form: Form {
                version,
                qos,
                retain,
            },
            start: self.arena.len() as u32,
            len: frame.len() as u32,
            packet_id_at: publish_packet_id_offset(frame).and_then(|at| u16::try_from(at).ok()),
        };
        self.arena.extend_from_slice(frame);
        message.frame.set(self.pass, self.entries.len() as u32);
        self.entries.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Properties, Publish};

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

    const V: Version = Version::V311;
    const Q1: QoS = QoS::AtLeastOnce;

    #[test]
    fn a_kept_frame_is_copied_with_its_packet_id_patched() {
        let m = Message::shared("a/b", b"payload", Q1, false);
        let mut cache = FrameCache::default();
        cache.insert(&m, V, Q1, false, &frame(&m, Q1, 1));
        let mut out = vec![0xff];
        assert!(cache.copy_into(&mut out, &m, V, Q1, false, 0x1234));
        assert_eq!(&out[1..], frame(&m, Q1, 0x1234));
        assert_eq!(cache.len_of(&m, V, Q1, false), Some(out.len() - 1));
        // Another form, or another message with the same content, is not kept.
        assert!(cache.len_of(&m, Version::V5, Q1, false).is_none());
        assert!(cache.len_of(&m, V, QoS::AtMostOnce, false).is_none());
        let twin = Message::shared("a/b", b"payload", Q1, false);
        assert!(cache.len_of(&twin, V, Q1, false).is_none());
    }

    #[test]
    fn a_new_pass_forgets_every_frame() {
        let messages: Vec<_> = (0..100)
            .map(|i| Message::shared(format!("t/{i}"), b"x", Q1, false))
            .collect();
        let mut cache = FrameCache::default();
        for m in &messages {
            cache.insert(m, V, Q1, false, &frame(m, Q1, 7));
        }
        for m in &messages {
            let mut out = Vec::new();
            assert!(cache.copy_into(&mut out, m, V, Q1, false, 9), "all kept");
            assert_eq!(out, frame(m, Q1, 9));
        }
        cache.clear();
        assert!(
            messages
                .iter()
                .all(|m| cache.len_of(m, V, Q1, false).is_none())
        );
    }

    #[test]
    fn large_frames_are_not_kept() {
        let m = Message::shared("big", &[0u8; MAX_CACHED_FRAME], Q1, false);
        let mut cache = FrameCache::default();
        cache.insert(&m, V, Q1, false, &frame(&m, Q1, 1));
        assert!(cache.len_of(&m, V, Q1, false).is_none());
    }
}
