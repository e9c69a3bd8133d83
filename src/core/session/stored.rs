//! A session's message flow as the store sees it: replaying the records that change it
//! (`persist::restore`), and listing what a snapshot writes (`persist::snapshot`).
//!
//! Records name a queued message by its store id and an inflight one by its packet id. A
//! message is in a session's queue at most once per delivery, and the records come in the
//! order the changes happened, so the first queue entry with the id is the one meant.

use std::rc::Rc;

use super::Session;
use super::flow::{AckState, Queued, SubscriptionIds};
use crate::core::message::Message;
use crate::persist::journal::Journal;
use crate::persist::record;
use crate::wire::QoS;

/// One message a stored session holds, for a snapshot.
#[derive(Debug)]
pub struct StoredEntry<'a> {
    /// The message.
    pub message: &'a Rc<Message>,
    /// QoS it is delivered at.
    pub qos: QoS,
    /// RETAIN flag to send.
    pub retain: bool,
    /// Subscription identifiers.
    pub subscription_ids: &'a [u32],
    /// Packet id if in flight (0: queued).
    pub packet_id: u16,
    /// Whether its PUBREC came (PUBREL is what remains).
    pub released: bool,
}

impl Session {
    /// Appends a message to the queue as a record says, whatever the queue's bounds (they
    /// held when it was queued).
    pub fn restore_enqueue(
        &mut self,
        message: Rc<Message>,
        qos: QoS,
        retain: bool,
        subscription_ids: &[u32],
    ) {
        self.flow_mut().push_queued(Queued {
            message,
            qos,
            retain,
            counted: true,
            subscription_ids: SubscriptionIds::new(subscription_ids),
            logged: true,
        });
    }

    /// Marks the message just queued as not yet in the journal; returns whether the session
    /// was not already waiting with others (so it is to be put on the journal's list).
    pub fn defer_last(&mut self) -> bool {
        let flow = self.flow_mut();
        if let Some(q) = flow.queue.back_mut() {
            q.logged = false;
        }
        !std::mem::replace(&mut flow.deferred, true)
    }

    /// Whether messages not yet in the journal wait here: what is queued after them must
    /// wait too, so the journal keeps the queue's order.
    pub fn has_deferred(&self) -> bool {
        self.flow.as_deref().is_some_and(|f| f.deferred)
    }

    /// Whether the message in flight under `packet_id` is in the journal (so its
    /// acknowledgement is recorded).
    pub fn inflight_logged(&self, packet_id: u16) -> bool {
        self.flow
            .as_deref()
            .is_some_and(|f| (f.inflight.iter()).any(|e| e.packet_id == packet_id && e.logged))
    }

    /// Records every message of this stored session not yet in the journal, in the order
    /// a replay needs: those in flight (queued, sent, PUBREC noted), then the queued ones.
    pub fn log_deferred(&mut self, journal: &mut Journal) {
        let key = self.store_key;
        let Some(flow) = self.flow.as_deref_mut() else {
            return;
        };
        flow.deferred = false;
        if key == 0 {
            return;
        }
        for f in flow.inflight.iter_mut().filter(|f| !f.logged) {
            f.logged = true;
            let ids = f.subscription_ids.as_slice();
            journal.enqueue(key, &f.message, f.qos, f.retain, ids);
            journal.sent(key, f.message.store_id.get(), f.packet_id);
            if f.state == AckState::Pubcomp {
                journal.packet(record::PUBREC, key, f.packet_id);
            }
        }
        for q in flow.queue.iter_mut().filter(|q| q.counted && !q.logged) {
            q.logged = true;
            let ids = q.subscription_ids.as_slice();
            journal.enqueue(key, &q.message, q.qos, q.retain, ids);
        }
    }

    /// Takes the first queued entry of message `id` out of the queue.
    fn take_queued(&mut self, id: u64) -> Option<Queued> {
        let flow = self.flow.as_deref_mut()?;
        let i = flow
            .queue
            .iter()
            .position(|q| q.message.store_id.get() == id)?;
        flow.remove_queued(i)
    }

    /// A queued message was sent: into the inflight window under `packet_id`, or gone (0).
    pub fn restore_sent(&mut self, id: u64, packet_id: u16) {
        let Some(q) = self.take_queued(id) else {
            return;
        };
        if packet_id == 0 {
            return;
        }
        let flow = self.flow_mut();
        // A record replayed twice (a damaged log) must not put one id in flight twice.
        flow.inflight.retain(|f| f.packet_id != packet_id);
        flow.push_inflight(q, packet_id);
        flow.next_packet_id = packet_id.checked_add(1).unwrap_or(1);
    }

    /// A queued message was dropped unsent.
    pub fn restore_dequeue(&mut self, id: u64) {
        self.take_queued(id);
    }

    /// An outbound flow ended.
    pub fn restore_acked(&mut self, packet_id: u16) {
        if let Some(flow) = self.flow.as_deref_mut() {
            flow.inflight.retain(|f| f.packet_id != packet_id);
        }
    }

    /// An outbound QoS 2 message's PUBREC came.
    pub fn restore_pubrec(&mut self, packet_id: u16) {
        if let Some(flow) = self.flow.as_deref_mut()
            && let Some(f) = flow.inflight.iter_mut().find(|f| f.packet_id == packet_id)
            && f.state == AckState::Pubrec
        {
            f.state = AckState::Pubcomp;
        }
    }

    /// The messages a snapshot records for this session: in flight first (in window order),
    /// then the queue's recorded entries (QoS 0 queued while online is not stored).
    pub fn stored_entries(&self) -> impl Iterator<Item = StoredEntry<'_>> {
        let flow = self.flow.as_deref();
        let inflight = flow
            .into_iter()
            .flat_map(|f| &f.inflight)
            .map(|f| StoredEntry {
                message: &f.message,
                qos: f.qos,
                retain: f.retain,
                subscription_ids: f.subscription_ids.as_slice(),
                packet_id: f.packet_id,
                released: f.state == AckState::Pubcomp,
            });
        let queued = flow
            .into_iter()
            .flat_map(|f| &f.queue)
            .filter(|q| q.counted)
            .map(|q| StoredEntry {
                message: &q.message,
                qos: q.qos,
                retain: q.retain,
                subscription_ids: q.subscription_ids.as_slice(),
                packet_id: 0,
                released: false,
            });
        inflight.chain(queued)
    }

    /// How many messages `stored_entries` lists.
    pub fn stored_len(&self) -> usize {
        self.flow
            .as_deref()
            .map_or(0, |f| f.inflight.len() + f.counted)
    }

    /// The inbound QoS 2 packet ids awaiting PUBREL.
    pub fn inbound_qos2(&self) -> &[u16] {
        self.flow.as_deref().map_or(&[], |f| &f.inbound_qos2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::session::NEVER_EXPIRES;

    fn message(id: u64) -> Rc<Message> {
        let m = Message::shared("t", b"x", QoS::ExactlyOnce, false);
        m.store_id.set(id);
        m
    }

    #[test]
    fn records_replay_into_queue_and_window() {
        let mut s = Session::new("c".into(), NEVER_EXPIRES);
        for id in 1..=4 {
            s.restore_enqueue(message(id), QoS::ExactlyOnce, false, &[id as u32]);
        }
        s.restore_sent(1, 10);
        s.restore_sent(2, 11);
        s.restore_pubrec(11);
        s.restore_dequeue(3);
        s.restore_acked(10);
        s.restore_sent(99, 12);
        let entries: Vec<(u64, u16, bool)> = s
            .stored_entries()
            .map(|e| (e.message.store_id.get(), e.packet_id, e.released))
            .collect();
        assert_eq!(entries, [(2, 11, true), (4, 0, false)]);
        assert_eq!(s.queued(), 1);
        let e = s
            .stored_entries()
            .last()
            .map(|e| e.subscription_ids.to_vec());
        assert_eq!(e, Some(vec![4]));
    }
}
