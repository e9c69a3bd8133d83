//! A session's message flow: the queue of messages not yet sent (bounded as
//! `QueueLimits` says), the inflight window of QoS 1/2 messages awaiting acknowledgement,
//! outbound packet ids, and the packet ids of inbound QoS 2 messages awaiting PUBREL.
//!
//! Invariants: every inflight entry has a distinct non-zero packet id; the queue never holds
//! more than `max_queued_messages` (when non-zero) counted messages. QoS 0 for an online
//! client is not counted: it is bounded in bytes by the broker (`max_output_buffer`, see
//! `route::deliver`), which is why the queue also tracks its size in bytes (`backlog`).

use std::collections::VecDeque;
use std::rc::Rc;

use super::{QueueLimits, Session};
use crate::core::message::Message;
use crate::core::route::LastTopic;
use crate::persist::journal::Journal;
use crate::persist::record;
use crate::wire::QoS;

/// Where an outbound QoS 1/2 message is in its acknowledgement flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AckState {
    /// QoS 1 PUBLISH sent, PUBACK awaited.
    Puback,
    /// QoS 2 PUBLISH sent, PUBREC awaited.
    Pubrec,
    /// PUBREL sent, PUBCOMP awaited.
    Pubcomp,
    /// QoS 2 to a stored session, given its packet id but not sent until the record of that
    /// (journal batch here) is durable: a crash could otherwise resend it under another id.
    Unsent(u64),
}

#[derive(Debug)]
pub(super) struct Inflight {
    pub(super) packet_id: u16,
    pub(super) message: Rc<Message>,
    pub(super) qos: QoS,
    pub(super) retain: bool,
    pub(super) subscription_ids: SubscriptionIds,
    pub(super) state: AckState,
    /// Whether a stored session's record of this message is in the journal (see
    /// `Queued::logged`).
    pub(super) logged: bool,
}

#[derive(Debug)]
pub(super) struct Queued {
    pub(super) message: Rc<Message>,
    pub(super) qos: QoS,
    pub(super) retain: bool,
    /// Counts toward `max_queued_messages` / `max_queued_bytes` (everything but QoS 0
    /// queued while the client is online).
    pub(super) counted: bool,
    /// MQTT 5 subscription identifiers of the matching subscriptions.
    pub(super) subscription_ids: SubscriptionIds,
    /// Whether a stored session's ENQUEUE of it is in the journal: false while it is
    /// deferred (`persist::journal`, without `fsync`), so a delivery acknowledged soon
    /// costs no disk at all. Meaningless for sessions that are not stored.
    pub(super) logged: bool,
}

/// The MQTT 5 subscription identifiers one delivery carries [MQTT-3.3.4-3]. None or one is
/// the usual case and is held inline, so queuing a message to a subscriber allocates
/// nothing; several (overlapping subscriptions with identifiers) are boxed, behind a thin
/// pointer so the whole stays 16 bytes.
#[derive(Debug)]
pub(super) enum SubscriptionIds {
    None,
    One(u32),
    Many(Box<Box<[u32]>>),
}

impl SubscriptionIds {
    pub(super) fn new(ids: &[u32]) -> SubscriptionIds {
        match ids {
            [] => SubscriptionIds::None,
            [id] => SubscriptionIds::One(*id),
            _ => SubscriptionIds::Many(Box::new(ids.into())),
        }
    }

    pub(super) fn as_slice(&self) -> &[u32] {
        match self {
            SubscriptionIds::None => &[],
            SubscriptionIds::One(id) => std::slice::from_ref(id),
            SubscriptionIds::Many(ids) => ids,
        }
    }
}

/// Bytes of memory one queued message is taken to cost beyond its payload and topic.
const QUEUED_OVERHEAD: usize = 48;

/// What `enqueue` did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued for sending.
    Queued,
    /// Dropped: the queue was at its bound, or QoS 0 for an offline session.
    QueueFull,
}

/// What an acknowledgement from the client did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// It completed or advanced a flow; an inflight slot may be free.
    Done,
    /// No message is in flight under that packet id.
    UnknownPacketId,
    /// The message in flight under that packet id awaits another kind of acknowledgement
    /// (PUBREC for QoS 1, PUBACK for QoS 2, PUBCOMP before PUBREC): a protocol error.
    WrongKind,
}

/// The queues and windows of a session that has exchanged messages.
#[derive(Debug)]
pub(super) struct Flow {
    pub(super) inflight: VecDeque<Inflight>,
    pub(super) queue: VecDeque<Queued>,
    /// Queue entries that count toward `max_queued_messages`, and their payload bytes.
    pub(super) counted: usize,
    pub(super) counted_bytes: usize,
    /// What every queue entry costs, in bytes: payload, topic and the entry.
    pub(super) backlog: usize,
    pub(super) inbound_qos2: Vec<u16>,
    pub(super) next_packet_id: u16,
    /// Inflight entries in state `Unsent`, so a window without any is not scanned.
    pub(super) unsent: usize,
    /// Whether entries not yet logged wait here (the session is on the journal's list).
    pub(super) deferred: bool,
    /// The topic this client last published to and what it matched (`route::LastTopic`).
    pub(super) last_topic: Option<LastTopic>,
}

impl Default for Flow {
    fn default() -> Self {
        Flow {
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            counted: 0,
            counted_bytes: 0,
            backlog: 0,
            inbound_qos2: Vec::new(),
            next_packet_id: 1,
            unsent: 0,
            deferred: false,
            last_topic: None,
        }
    }
}

impl Flow {
    /// Puts a QoS 1/2 message just sent with `packet_id` in the inflight window (QoS 0 needs
    /// nothing more).
    pub(super) fn push_inflight(&mut self, q: Queued, packet_id: u16) {
        let state = match q.qos {
            QoS::AtMostOnce => return,
            QoS::AtLeastOnce => AckState::Puback,
            QoS::ExactlyOnce => AckState::Pubrec,
        };
        self.push_inflight_as(q, packet_id, state);
    }

    /// Puts a QoS 1/2 message in the inflight window at `state`.
    pub(super) fn push_inflight_as(&mut self, q: Queued, packet_id: u16, state: AckState) {
        self.inflight.push_back(Inflight {
            packet_id,
            state,
            message: q.message,
            qos: q.qos,
            retain: q.retain,
            subscription_ids: q.subscription_ids,
            logged: q.logged,
        });
    }

    /// Appends `q` to the queue, keeping the queue's counts and backlog in step.
    pub(super) fn push_queued(&mut self, q: Queued) {
        self.backlog += queued_cost(&q.message);
        if q.counted {
            self.counted += 1;
            self.counted_bytes += q.message.payload.len();
        }
        self.queue.push_back(q);
    }

    /// Takes queue entry `i` out, keeping the queue's counts and backlog in step.
    pub(super) fn remove_queued(&mut self, i: usize) -> Option<Queued> {
        let q = self.queue.remove(i)?;
        self.backlog -= queued_cost(&q.message);
        if q.counted {
            self.counted -= 1;
            self.counted_bytes -= q.message.payload.len();
        }
        Some(q)
    }

    /// Where the message in flight under `packet_id` is (ids in flight are distinct).
    fn find(&self, packet_id: u16) -> Option<usize> {
        // Acks usually come in order, so the search starts at the front.
        self.inflight.iter().position(|f| f.packet_id == packet_id)
    }

    pub(super) fn allocate_packet_id(&mut self) -> u16 {
        // Ids are handed out in cyclic order and the window keeps allocation order, so every
        // id in use lies on the cycle from the front entry's id to the back entry's id. A
        // candidate past the back entry is free without a scan; only after the ids wrapped
        // all the way round a message stuck in flight is the window searched. The window
        // holds at most 65535 ids, so a free one exists whenever this is called.
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            let free = match (self.inflight.front(), self.inflight.back()) {
                (Some(front), Some(back)) => {
                    cycle_distance(front.packet_id, id)
                        > cycle_distance(front.packet_id, back.packet_id)
                        || !self.inflight.iter().any(|f| f.packet_id == id)
                }
                _ => true,
            };
            if free {
                return id;
            }
        }
    }
}

/// What queuing `message` costs in bytes, for the backlog.
pub(super) fn queued_cost(message: &Message) -> usize {
    message.payload.len() + message.topic.len() + QUEUED_OVERHEAD
}

/// Steps from packet id `from` forward to `to` on the cycle 1..=65535 (0 is not an id).
fn cycle_distance(from: u16, to: u16) -> u32 {
    (u32::from(to) + 65535 - u32::from(from)) % 65535
}

impl Session {
    pub(super) fn flow_mut(&mut self) -> &mut Flow {
        self.flow.get_or_insert_with(Box::default)
    }

    /// Most unacknowledged QoS 1/2 messages in flight to the client: the configured window,
    /// or less if the client's Receive Maximum is lower [MQTT-3.3.4-9].
    pub(super) fn max_inflight(&self, limits: QueueLimits) -> usize {
        let receive_maximum = self.link.as_ref().map_or(u16::MAX, |l| l.receive_maximum);
        usize::from(limits.max_inflight.min(receive_maximum))
    }

    /// Queues `message` for delivery at `qos` (already the minimum of published and granted
    /// QoS) with the RETAIN flag to send and the subscription identifiers of the matching
    /// subscriptions. QoS 0 for an online client is always queued (the caller bounds it in
    /// bytes); anything else is dropped at the queue's bound.
    pub fn enqueue(
        &mut self,
        message: Rc<Message>,
        qos: QoS,
        retain: bool,
        subscription_ids: &[u32],
        limits: QueueLimits,
    ) -> Enqueued {
        let offline = !self.is_online();
        if offline && qos == QoS::AtMostOnce && !limits.queue_qos0_offline {
            return Enqueued::QueueFull;
        }
        let counted = offline || qos != QoS::AtMostOnce;
        let flow = self.flow_mut();
        let payload = message.payload.len();
        if counted {
            let full = (limits.max_queued != 0 && flow.counted >= limits.max_queued)
                || (limits.max_queued_bytes != 0
                    && flow.counted_bytes + payload > limits.max_queued_bytes);
            if full {
                return Enqueued::QueueFull;
            }
        }
        flow.push_queued(Queued {
            message,
            qos,
            retain,
            counted,
            subscription_ids: SubscriptionIds::new(subscription_ids),
            logged: true,
        });
        Enqueued::Queued
    }

    /// How many more counted messages the queue takes before its bound (`usize::MAX` when
    /// unbounded).
    pub fn queue_room(&self, limits: QueueLimits) -> usize {
        if limits.max_queued == 0 {
            return usize::MAX;
        }
        let queued = self.flow.as_ref().map_or(0, |f| f.counted);
        limits.max_queued.saturating_sub(queued)
    }

    /// Whether a counted message of `payload` bytes would be refused by `limits` now.
    pub fn queue_full(&self, limits: QueueLimits, payload: usize) -> bool {
        self.flow.as_ref().is_some_and(|f| {
            (limits.max_queued != 0 && f.counted >= limits.max_queued)
                || (limits.max_queued_bytes != 0
                    && f.counted_bytes + payload > limits.max_queued_bytes)
        })
    }

    /// Removes one counted queued message to make room (a bridge's queue policy): the oldest
    /// on `same_topic` if given and there is one, else the oldest. A stored session records
    /// it gone, so a restart does not bring it back. Returns whether one went.
    pub fn evict_queued(&mut self, same_topic: Option<&str>, journal: &mut Journal) -> bool {
        let key = self.store_key;
        let Some(flow) = self.flow.as_deref_mut() else {
            return false;
        };
        let on_topic = same_topic.and_then(|topic| {
            (flow.queue.iter()).position(|q| q.counted && *q.message.topic == *topic)
        });
        let at = on_topic.or_else(|| flow.queue.iter().position(|q| q.counted));
        let Some(q) = at.and_then(|i| flow.remove_queued(i)) else {
            return false;
        };
        // One not yet logged (deferred) is simply never written.
        if key != 0 && q.logged {
            journal.dequeue(key, q.message.store_id.get());
        }
        true
    }

    /// Payload bytes of the queued messages that count toward `max_queued_bytes`.
    pub fn queued_bytes(&self) -> usize {
        self.flow.as_ref().map_or(0, |f| f.counted_bytes)
    }

    /// What the queued messages cost in bytes (payloads, topics and entries).
    pub fn backlog(&self) -> usize {
        self.flow.as_ref().map_or(0, |f| f.backlog)
    }

    /// Whether anything waits to be written: queued messages that the window admits, or QoS 2
    /// messages in the window not yet sent (`AckState::Unsent`).
    pub fn has_pending(&self, limits: QueueLimits) -> bool {
        let max_inflight = self.max_inflight(limits);
        self.flow.as_ref().is_some_and(|f| {
            f.unsent > 0
                || f.queue
                    .front()
                    .is_some_and(|q| q.qos == QoS::AtMostOnce || f.inflight.len() < max_inflight)
        })
    }

    /// The stored copy of `topic` if it is the topic this client last published to (so it
    /// was validated then and need not be again).
    pub fn known_topic(&self, topic: &str) -> Option<Rc<str>> {
        self.flow.as_ref()?.last_topic.as_ref()?.shared(topic)
    }

    /// The slot where routing keeps this client's last published topic and its match.
    pub fn last_topic_mut(&mut self) -> &mut Option<LastTopic> {
        &mut self.flow_mut().last_topic
    }

    /// Number of inbound QoS 2 messages awaiting PUBREL (counted against our Receive Maximum).
    pub fn inbound_qos2_len(&self) -> usize {
        self.flow.as_ref().map_or(0, |f| f.inbound_qos2.len())
    }

    /// Number of messages queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.flow.as_ref().map_or(0, |f| f.queue.len())
    }

    /// Every message the session holds, queued or in flight (for the store figures of
    /// `$SYS`; a message queued for several sessions appears in each).
    pub fn held_messages(&self) -> impl Iterator<Item = &Rc<Message>> {
        let flow = self.flow.as_deref();
        let queue = flow
            .into_iter()
            .flat_map(|f| f.queue.iter().map(|q| &q.message));
        let inflight = flow
            .into_iter()
            .flat_map(|f| f.inflight.iter().map(|i| &i.message));
        queue.chain(inflight)
    }

    /// The queued messages, oldest first, each with the QoS, RETAIN flag and subscription
    /// identifiers it is to be sent with.
    #[cfg(test)]
    pub fn queued_messages(&self) -> impl Iterator<Item = (&Message, QoS, bool, &[u32])> {
        let queue = self.flow.as_ref().map(|f| &f.queue).into_iter().flatten();
        queue.map(|q| (&*q.message, q.qos, q.retain, q.subscription_ids.as_slice()))
    }

    /// Number of outbound messages awaiting acknowledgement.
    pub fn inflight_len(&self) -> usize {
        self.flow.as_ref().map_or(0, |f| f.inflight.len())
    }

    /// Handles PUBACK for an outbound QoS 1 message.
    pub fn on_puback(&mut self, packet_id: u16) -> AckOutcome {
        self.finish(packet_id, AckState::Puback)
    }

    /// Handles PUBREC for an outbound QoS 2 message: `accepted` (a reason code below 0x80)
    /// moves it on to await PUBCOMP, and the caller answers with PUBREL, again if PUBREC
    /// comes again; a refusal ends the flow there [MQTT-4.3.3-4].
    pub fn on_pubrec(&mut self, packet_id: u16, accepted: bool) -> AckOutcome {
        let Some(flow) = self.flow.as_deref_mut() else {
            return AckOutcome::UnknownPacketId;
        };
        let Some(i) = flow.find(packet_id) else {
            return AckOutcome::UnknownPacketId;
        };
        match (flow.inflight[i].state, accepted) {
            (AckState::Pubrec, true) => flow.inflight[i].state = AckState::Pubcomp,
            (AckState::Pubcomp, true) => {}
            (AckState::Pubrec, false) => {
                flow.inflight.remove(i);
            }
            // Not sent yet: an ack for the id's previous message, late.
            (AckState::Unsent(_), _) => return AckOutcome::UnknownPacketId,
            (AckState::Puback, _) | (AckState::Pubcomp, false) => return AckOutcome::WrongKind,
        }
        AckOutcome::Done
    }

    /// Handles PUBCOMP, ending an outbound QoS 2 flow.
    pub fn on_pubcomp(&mut self, packet_id: u16) -> AckOutcome {
        self.finish(packet_id, AckState::Pubcomp)
    }

    /// Records an inbound QoS 2 PUBLISH; returns false if that packet id is already awaiting
    /// PUBREL, i.e. the message is a duplicate and must not be routed again [MQTT-4.3.3-9].
    pub fn receive_qos2(&mut self, packet_id: u16) -> bool {
        let flow = self.flow_mut();
        match flow.inbound_qos2.binary_search(&packet_id) {
            Ok(_) => false,
            Err(i) => {
                flow.inbound_qos2.insert(i, packet_id);
                true
            }
        }
    }

    /// Whether inbound QoS 2 `packet_id` is awaiting PUBREL (a PUBLISH with it is a resend).
    pub fn holds_qos2(&self, packet_id: u16) -> bool {
        self.flow
            .as_ref()
            .is_some_and(|f| f.inbound_qos2.binary_search(&packet_id).is_ok())
    }

    /// Handles PUBREL: releases the inbound packet id; false if it was not awaiting PUBREL.
    pub fn release_qos2(&mut self, packet_id: u16) -> bool {
        let Some(flow) = self.flow.as_deref_mut() else {
            return false;
        };
        match flow.inbound_qos2.binary_search(&packet_id) {
            Ok(i) => {
                flow.inbound_qos2.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Drops the queued messages, and the unacknowledged ones not yet past PUBREC, whose topic
    /// `readable` refuses (after SIGHUP reloaded the ACL), so the session sends its client
    /// only what the client may read; a stored session records the drops in `journal`.
    /// Returns how many were dropped.
    pub fn drop_unreadable(
        &mut self,
        mut readable: impl FnMut(&str) -> bool,
        journal: &mut Journal,
    ) -> usize {
        let key = self.store_key;
        let Some(flow) = self.flow.as_deref_mut() else {
            return 0;
        };
        let before = flow.queue.len() + flow.inflight.len();
        flow.queue.retain(|q| {
            let keep = readable(&q.message.topic);
            if !keep && key != 0 && q.counted && q.logged {
                journal.dequeue(key, q.message.store_id.get());
            }
            keep
        });
        flow.counted = flow.queue.iter().filter(|q| q.counted).count();
        flow.counted_bytes = flow
            .queue
            .iter()
            .filter(|q| q.counted)
            .map(|q| q.message.payload.len())
            .sum();
        flow.backlog = flow.queue.iter().map(|q| queued_cost(&q.message)).sum();
        // Dropping any inflight entries keeps the rest in allocation order, as packet ids need.
        flow.inflight.retain(|f| {
            let keep = f.state == AckState::Pubcomp || readable(&f.message.topic);
            if !keep && key != 0 && f.logged {
                journal.packet(record::ACKED, key, f.packet_id);
            }
            keep
        });
        flow.unsent = (flow.inflight.iter())
            .filter(|f| matches!(f.state, AckState::Unsent(_)))
            .count();
        before - flow.queue.len() - flow.inflight.len()
    }

    /// Ends the flow of `packet_id` if it awaits the acknowledgement `state` stands for.
    fn finish(&mut self, packet_id: u16, state: AckState) -> AckOutcome {
        let Some(flow) = self.flow.as_deref_mut() else {
            return AckOutcome::UnknownPacketId;
        };
        match flow.find(packet_id) {
            Some(i) if flow.inflight[i].state == state => {
                flow.inflight.remove(i);
                AckOutcome::Done
            }
            // Not sent yet: an ack for the id's previous message, late.
            Some(i) if matches!(flow.inflight[i].state, AckState::Unsent(_)) => {
                AckOutcome::UnknownPacketId
            }
            Some(_) => AckOutcome::WrongKind,
            None => AckOutcome::UnknownPacketId,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::frame_cache::FrameCache;
    use crate::core::session::{Attach, NEVER_EXPIRES};
    use crate::ids::ConnId;
    use crate::persist::journal::Journal;
    use crate::wire::Version;
    use crate::wire::{Packet, decode};
    use std::time::Instant;

    const LIMITS: QueueLimits = QueueLimits {
        max_inflight: 2,
        max_queued: 3,
        max_queued_bytes: 0,
        queue_qos0_offline: false,
    };

    fn online() -> Session {
        let mut s = Session::new("c".into(), NEVER_EXPIRES);
        s.attach = Some(Attach::Network(ConnId::new(0, 0)));
        s
    }

    fn msg(payload: &str, qos: QoS) -> Rc<Message> {
        Message::shared("t", payload.as_bytes(), qos, false)
    }

    /// Queues a message with `payload` at `qos` (no RETAIN, no subscription identifiers).
    fn queue(s: &mut Session, payload: &str, qos: QoS, limits: QueueLimits) -> Enqueued {
        s.enqueue(msg(payload, qos), qos, false, &[], limits)
    }

    #[test]
    fn subscription_ids_stay_inline_and_small() {
        for ids in [&[][..], &[7], &[7, 9, 11]] {
            assert_eq!(SubscriptionIds::new(ids).as_slice(), ids);
        }
        assert!(matches!(
            SubscriptionIds::new(&[7]),
            SubscriptionIds::One(7)
        ));
        // A queued delivery is a pointer, the identifiers and three flags.
        assert_eq!(std::mem::size_of::<SubscriptionIds>(), 16);
        assert_eq!(std::mem::size_of::<Queued>(), 32);
    }

    /// What one `write_pending` turn sends, as 3.1.1 frames.
    fn write(s: &mut Session, limits: QueueLimits) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cache = FrameCache::default();
        s.write_pending(
            &mut out,
            None,
            1 << 20,
            Version::V311,
            limits,
            Instant::now(),
            &mut cache,
            &mut Journal::default(),
        );
        out
    }

    /// Decodes every frame in `out` into (packet id, dup, payload) triples.
    fn publishes(out: &[u8]) -> Vec<(u16, bool, Vec<u8>)> {
        let mut rest = out;
        let mut seen = Vec::new();
        while let Some((packet, len)) = decode(rest, Version::V311, u32::MAX).unwrap() {
            if let Packet::Publish(p) = packet {
                seen.push((p.packet_id, p.dup, p.payload.to_vec()));
            }
            rest = &rest[len..];
        }
        seen
    }

    #[test]
    fn window_limits_qos1_and_acks_free_slots() {
        let mut s = online();
        for p in ["a", "b", "c"] {
            assert_eq!(queue(&mut s, p, QoS::AtLeastOnce, LIMITS), Enqueued::Queued);
        }
        let sent = publishes(&write(&mut s, LIMITS));
        assert_eq!(sent.len(), 2, "window of 2");
        assert_eq!(sent[0], (1, false, b"a".to_vec()));
        assert_eq!(
            s.on_pubrec(1, true),
            AckOutcome::WrongKind,
            "PUBREC for QoS 1"
        );
        assert_eq!(s.on_pubcomp(1), AckOutcome::WrongKind, "PUBCOMP for QoS 1");
        assert_eq!(s.on_puback(1), AckOutcome::Done);
        assert_eq!(s.on_puback(1), AckOutcome::UnknownPacketId);
        assert_eq!(
            publishes(&write(&mut s, LIMITS)),
            [(3, false, b"c".to_vec())]
        );
    }

    #[test]
    fn queue_bound_and_offline_qos0() {
        let mut s = Session::new("c".into(), NEVER_EXPIRES);
        assert_eq!(
            queue(&mut s, "0", QoS::AtMostOnce, LIMITS),
            Enqueued::QueueFull
        );
        for _ in 0..3 {
            assert_eq!(
                queue(&mut s, "1", QoS::AtLeastOnce, LIMITS),
                Enqueued::Queued
            );
        }
        assert_eq!(
            queue(&mut s, "1", QoS::AtLeastOnce, LIMITS),
            Enqueued::QueueFull
        );
        assert_eq!(s.queued(), 3);
    }

    #[test]
    fn online_qos0_does_not_count_toward_the_queue_bound() {
        let mut s = online();
        for _ in 0..10 {
            assert_eq!(
                queue(&mut s, "0", QoS::AtMostOnce, LIMITS),
                Enqueued::Queued
            );
        }
        assert_eq!(s.queue_room(LIMITS), 3, "max_queued 3 is all still free");
        assert_eq!(s.backlog(), 10 * (1 + 1 + QUEUED_OVERHEAD));
        for _ in 0..3 {
            assert_eq!(
                queue(&mut s, "1", QoS::AtLeastOnce, LIMITS),
                Enqueued::Queued
            );
        }
        assert_eq!(
            queue(&mut s, "1", QoS::AtLeastOnce, LIMITS),
            Enqueued::QueueFull,
            "the fourth QoS 1 beyond the window is over max_queued 3"
        );
        assert_eq!(publishes(&write(&mut s, LIMITS)).len(), 12, "window of 2");
        assert_eq!(s.queue_room(LIMITS), 2);
        assert_eq!(s.backlog(), 1 + 1 + QUEUED_OVERHEAD);
    }

    #[test]
    fn subscribers_taking_the_same_form_get_a_copy_with_their_own_packet_id() {
        let m = msg("shared", QoS::AtLeastOnce);
        let mut cache = FrameCache::default();
        let mut frames = Vec::new();
        for first_id in [1, 500] {
            let mut s = online();
            s.flow_mut().next_packet_id = first_id;
            s.enqueue(Rc::clone(&m), QoS::AtLeastOnce, false, &[], LIMITS);
            let mut out = Vec::new();
            let now = Instant::now();
            s.write_pending(
                &mut out,
                None,
                1 << 20,
                Version::V311,
                LIMITS,
                now,
                &mut cache,
                &mut Journal::default(),
            );
            assert_eq!(
                s.on_puback(first_id),
                AckOutcome::Done,
                "in flight as {first_id}"
            );
            frames.push(out);
        }
        assert_eq!(publishes(&frames[0]), [(1, false, b"shared".to_vec())]);
        assert_eq!(publishes(&frames[1]), [(500, false, b"shared".to_vec())]);
        assert!(
            cache
                .len_of(&m, Version::V311, QoS::AtLeastOnce, false)
                .is_some(),
            "the second was a copy"
        );
    }

    /// A bridge's remote with Maximum QoS 1 and no retain: what waits is held to that,
    /// a QoS 2 message in flight before its PUBREC included.
    #[test]
    fn capped_to_a_remotes_limits() {
        let mut s = online();
        for p in ["x", "y"] {
            s.enqueue(
                msg(p, QoS::ExactlyOnce),
                QoS::ExactlyOnce,
                true,
                &[],
                LIMITS,
            );
            if p == "x" {
                write(&mut s, LIMITS);
            }
        }
        s.cap_queued(QoS::AtLeastOnce, false);
        let mut out = Vec::new();
        let now = Instant::now();
        s.resend_inflight(&mut out, Version::V311, now, &mut Journal::default());
        let mut cache = FrameCache::default();
        let journal = &mut Journal::default();
        s.write_pending(
            &mut out,
            None,
            1 << 20,
            Version::V311,
            LIMITS,
            now,
            &mut cache,
            journal,
        );
        let mut rest = &out[..];
        let mut seen = Vec::new();
        while let Some((packet, len)) = decode(rest, Version::V311, u32::MAX).unwrap() {
            if let Packet::Publish(p) = packet {
                seen.push((p.packet_id, p.qos, p.retain));
            }
            rest = &rest[len..];
        }
        assert_eq!(seen[0], (1, QoS::AtLeastOnce, false), "resent as QoS 1");
        assert_eq!(s.on_puback(1), AckOutcome::Done, "now a QoS 1 flow");
        assert_eq!(seen.len(), 2, "x resent, y sent: {seen:?}");
        assert!(seen.iter().all(|&(_, q, r)| q == QoS::AtLeastOnce && !r));
    }

    #[test]
    fn qos2_flow_and_resend() {
        let mut s = online();
        queue(&mut s, "x", QoS::ExactlyOnce, LIMITS);
        queue(&mut s, "y", QoS::ExactlyOnce, LIMITS);
        write(&mut s, LIMITS);
        assert_eq!(
            s.on_pubcomp(1),
            AckOutcome::WrongKind,
            "PUBCOMP before PUBREC"
        );
        assert_eq!(s.on_puback(2), AckOutcome::WrongKind, "PUBACK for QoS 2");
        assert_eq!(s.on_pubrec(1, true), AckOutcome::Done);
        assert_eq!(s.on_pubrec(1, true), AckOutcome::Done, "PUBREC again");
        assert_eq!(s.on_pubrec(1, false), AckOutcome::WrongKind, "refused late");
        let mut out = Vec::new();
        s.resend_inflight(
            &mut out,
            Version::V311,
            Instant::now(),
            &mut Journal::default(),
        );
        // Message 1 awaits PUBCOMP: PUBREL (0x62) goes first; message 2 is re-sent with DUP.
        assert_eq!(&out[..4], &[0x62, 0x02, 0x00, 0x01]);
        assert_eq!(publishes(&out[4..]), [(2, true, b"y".to_vec())]);
        assert_eq!(s.on_pubcomp(1), AckOutcome::Done);
        assert_eq!(s.inflight_len(), 1);
    }

    #[test]
    fn persistent_client_expiration_bounds_every_session() {
        let now = Instant::now();
        let day = std::time::Duration::from_secs(86_400);
        let mut s = Session::new("c".into(), NEVER_EXPIRES);
        assert_eq!(s.expiry_deadline(now, None), None);
        assert_eq!(s.expiry_deadline(now, Some(day)), Some(now + day));
        s.expiry_interval = u32::MAX - 1;
        assert_eq!(s.expiry_deadline(now, Some(day)), Some(now + day));
        s.expiry_interval = 60;
        let minute = std::time::Duration::from_secs(60);
        assert_eq!(s.expiry_deadline(now, Some(day)), Some(now + minute));
        assert_eq!(s.expiry_deadline(now, None), Some(now + minute));
    }

    #[test]
    fn inbound_qos2_dedup() {
        let mut s = online();
        assert!(s.receive_qos2(7));
        assert!(!s.receive_qos2(7), "duplicate is not routed again");
        assert!(s.release_qos2(7));
        assert!(!s.release_qos2(7));
        assert!(s.receive_qos2(7), "a released id starts a new message");
    }

    #[test]
    fn packet_ids_wrap_and_skip_zero_and_in_use() {
        let mut s = online();
        s.flow_mut().next_packet_id = u16::MAX;
        let limits = QueueLimits {
            max_inflight: 10,
            ..LIMITS
        };
        for p in ["a", "b"] {
            queue(&mut s, p, QoS::AtLeastOnce, limits);
        }
        let ids: Vec<u16> = publishes(&write(&mut s, limits))
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(ids, [u16::MAX, 1]);
    }

    #[test]
    fn packet_ids_skip_a_message_stuck_in_flight_after_a_full_wrap() {
        let mut s = online();
        let limits = QueueLimits {
            max_inflight: 3,
            ..LIMITS
        };
        let send = |s: &mut Session, n: usize| -> Vec<u16> {
            for _ in 0..n {
                queue(s, "m", QoS::AtLeastOnce, limits);
            }
            publishes(&write(s, limits)).iter().map(|p| p.0).collect()
        };
        // Id 1 is never acknowledged; every later id is, until the ids come round again.
        assert_eq!(send(&mut s, 1), [1]);
        for id in 2..=u16::MAX {
            assert_eq!(send(&mut s, 1), [id]);
            assert_eq!(s.on_puback(id), AckOutcome::Done);
        }
        assert_eq!(send(&mut s, 2), [2, 3]);
        assert_eq!(s.on_puback(1), AckOutcome::Done);
        assert_eq!(send(&mut s, 1), [4]);
    }
}
