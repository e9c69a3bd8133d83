//! Turning a session's queue into PUBLISH frames: what the inflight window and the output
//! bound admit, in queue order, each frame encoded once per form (`FrameCache`) or for this
//! client alone (topic aliases, subscription identifiers); and re-sending what was in flight
//! when a session resumes [MQTT-4.4.0-1].

use std::rc::Rc;
use std::time::Instant;

use super::flow::{AckState, Flow};
use super::{Link, QueueLimits, Session};
use crate::core::alias::OutboundTopic;
use crate::core::frame_cache::FrameCache;
use crate::core::message::Message;
use crate::net::buffer::{SPLICE_MIN, Spliced};
use crate::persist::journal::Journal;
use crate::persist::record;
use crate::wire::{Ack, PacketType, Properties, Publish, QoS, Version};

/// What one `write_pending` or `resend_inflight` sent, and what it dropped instead of sending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendDrops {
    /// PUBLISH packets put in the output.
    pub publishes: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// PUBREL packets put in the output (re-sent on a resumed session).
    pub pubrels: u64,
    /// Messages whose expiry interval ran out while they waited [MQTT-3.3.2-5].
    pub expired: u64,
    /// Messages larger than the client's Maximum Packet Size [MQTT-3.1.2-25].
    pub too_large: u64,
    /// Sending stopped at a QoS 2 message whose record is not yet durable (see
    /// `persist::journal`): the session is to be written again when it is.
    pub held: bool,
}

impl Session {
    /// Moves queued messages into `out` as PUBLISH frames while `out` is below `out_limit`
    /// bytes and the inflight window has room, in queue order (so per-topic order holds).
    /// Messages expired at `now` are dropped [MQTT-3.3.2-5], and so are messages larger than
    /// the client's Maximum Packet Size [MQTT-3.1.2-25]; returns what was dropped. A frame
    /// another subscriber already took in the same form is copied from `cache`. A stored
    /// session's sends and drops are recorded in `journal`. With `spliced` (a plain TCP
    /// connection), a payload of `SPLICE_MIN` bytes or more is not copied: its frame ends
    /// before it in `out` and the message goes to `spliced`, for a vectored write.
    #[allow(clippy::too_many_arguments)]
    pub fn write_pending(
        &mut self,
        out: &mut Vec<u8>,
        mut spliced: Option<&mut Spliced>,
        out_limit: usize,
        version: Version,
        limits: QueueLimits,
        now: Instant,
        cache: &mut FrameCache,
        journal: &mut Journal,
    ) -> SendDrops {
        let max_inflight = self.max_inflight(limits);
        let Session {
            flow,
            link,
            store_key,
            ..
        } = self;
        let key = *store_key;
        let mut dropped = SendDrops::default();
        let Some(flow) = flow.as_deref_mut() else {
            return dropped;
        };
        let spliced_bytes = |s: &Option<&mut Spliced>| s.as_deref().map_or(0, Spliced::bytes);
        if flow.unsent > 0 {
            send_unsent(
                flow,
                link,
                key,
                out,
                out_limit.saturating_sub(spliced_bytes(&spliced)),
                version,
                now,
                journal,
                &mut dropped,
            );
            if flow.unsent > 0 {
                return dropped;
            }
        }
        // A stored session's QoS 2 gets its packet id recorded before it is sent (`Unsent`).
        let assign_first = key != 0 && journal.holds();
        while out.len() + spliced_bytes(&spliced) < out_limit {
            let Some(front) = flow.queue.front() else {
                return dropped;
            };
            let expired = front.message.expired(now);
            if !expired && front.qos != QoS::AtMostOnce && flow.inflight.len() >= max_inflight {
                return dropped;
            }
            // A crash before its record is durable would make the publisher's retransmission
            // a second delivery: exactly once waits for the disk. (A stored session waits
            // for the later record of its packet id instead, below.)
            if front.qos == QoS::ExactlyOnce
                && !assign_first
                && !journal.durable(front.message.store_id.get())
            {
                dropped.held = true;
                return dropped;
            }
            // What comes after an unsent QoS 2 message waits with it, to keep the order.
            if flow.unsent > 0 && front.qos != QoS::ExactlyOnce {
                return dropped;
            }
            let q = flow.remove_queued(0).expect("front was just seen");
            // What a stored session queued is on disk when it counted (see `lifecycle::enqueue`).
            let stored = key != 0 && q.counted && q.logged;
            let ids = q.subscription_ids.as_slice();
            if expired {
                if stored {
                    journal.dequeue(key, q.message.store_id.get());
                }
                dropped.expired += 1;
                continue;
            }
            if assign_first && q.qos == QoS::ExactlyOnce {
                let mut publish =
                    publish_frame(&q.message, q.qos, q.retain, 0, false, version, now);
                if !fits(&mut publish, link.as_deref(), ids, version) {
                    journal.dequeue(key, q.message.store_id.get());
                    dropped.too_large += 1;
                    continue;
                }
                let packet_id = flow.allocate_packet_id();
                journal.sent(key, q.message.store_id.get(), packet_id);
                let batch = journal.open_batch();
                flow.push_inflight_as(q, packet_id, AckState::Unsent(batch));
                flow.unsent += 1;
                dropped.held = true;
                continue;
            }
            // The frame is the same for every subscriber without aliases or identifiers; it
            // is worth keeping only if other queues hold the message too.
            let shareable = ids.is_empty()
                && link.as_deref().is_none_or(|l| l.topic_alias_maximum == 0)
                && Rc::strong_count(&q.message) > 1;
            if shareable && let Some(len) = cache.len_of(&q.message, version, q.qos, q.retain) {
                let max = link.as_deref().map_or(u32::MAX, |l| l.maximum_packet_size);
                if u32::try_from(len).is_ok_and(|len| len <= max) {
                    let packet_id = match q.qos {
                        QoS::AtMostOnce => 0,
                        _ => flow.allocate_packet_id(),
                    };
                    cache.copy_into(out, &q.message, version, q.qos, q.retain, packet_id);
                    dropped.count_publish(&q.message);
                    if stored {
                        journal.sent(key, q.message.store_id.get(), packet_id);
                    }
                    flow.push_inflight(q, packet_id);
                } else {
                    if stored {
                        journal.dequeue(key, q.message.store_id.get());
                    }
                    dropped.too_large += 1;
                }
                continue;
            }
            let mut publish = publish_frame(&q.message, q.qos, q.retain, 0, false, version, now);
            if !fits(&mut publish, link.as_deref(), ids, version) {
                if stored {
                    journal.dequeue(key, q.message.store_id.get());
                }
                dropped.too_large += 1;
                continue;
            }
            if q.qos != QoS::AtMostOnce {
                publish.packet_id = flow.allocate_packet_id();
            }
            if let Some(link) = link.as_deref_mut() {
                set_alias(&mut publish, link, &q.message.topic);
            }
            let start = out.len();
            match spliced.as_deref_mut() {
                Some(spliced) if q.message.payload.len() >= SPLICE_MIN => {
                    publish.encode_head(version, ids, out);
                    spliced.push(out.len(), Rc::clone(&q.message));
                }
                _ => {
                    publish.encode(version, ids, out);
                    if shareable {
                        cache.insert(&q.message, version, q.qos, q.retain, &out[start..]);
                    }
                }
            }
            dropped.count_publish(&q.message);
            let packet_id = publish.packet_id;
            if stored {
                journal.sent(key, q.message.store_id.get(), packet_id);
            }
            flow.push_inflight(q, packet_id);
        }
        dropped
    }

    /// Re-sends every unacknowledged message when a persistent session reconnects: PUBLISH
    /// with DUP set, or PUBREL where PUBREC already came [MQTT-4.4.0-1]. A PUBLISH now larger
    /// than the client's Maximum Packet Size is dropped instead [MQTT-3.1.2-25]; returns how
    /// many were dropped.
    pub fn resend_inflight(
        &mut self,
        out: &mut Vec<u8>,
        version: Version,
        now: Instant,
        journal: &mut Journal,
    ) -> SendDrops {
        let Session {
            flow,
            link,
            store_key,
            ..
        } = self;
        let key = *store_key;
        let Some(flow) = flow.as_deref_mut() else {
            return SendDrops::default();
        };
        let before = flow.inflight.len();
        let mut sent = SendDrops::default();
        flow.inflight.retain(|f| match f.state {
            AckState::Puback | AckState::Pubrec => {
                let ids = f.subscription_ids.as_slice();
                // [MQTT-3.3.1-1] DUP is set when re-delivering.
                let mut publish =
                    publish_frame(&f.message, f.qos, f.retain, f.packet_id, true, version, now);
                if !fits(&mut publish, link.as_deref(), ids, version) {
                    if key != 0 && f.logged {
                        journal.packet(record::ACKED, key, f.packet_id);
                    }
                    return false;
                }
                publish.properties.topic_alias = None;
                publish.encode(version, ids, out);
                sent.count_publish(&f.message);
                true
            }
            AckState::Pubcomp => {
                encode_ack(PacketType::Pubrel, f.packet_id, 0, version, out);
                sent.pubrels += 1;
                true
            }
            // Never sent: `write_pending` sends it once its packet id is durable.
            AckState::Unsent(_) => true,
        });
        SendDrops {
            too_large: (before - flow.inflight.len()) as u64,
            ..sent
        }
    }
}

impl SendDrops {
    /// Counts one PUBLISH of `message` put in the output.
    fn count_publish(&mut self, message: &Message) {
        self.publishes += 1;
        self.payload_bytes += message.payload.len() as u64;
    }
}

/// Sends the QoS 2 messages in `flow`'s window that wait for the record of their packet id
/// (`AckState::Unsent`), in window order, as far as that record is durable.
#[allow(clippy::too_many_arguments)]
fn send_unsent(
    flow: &mut Flow,
    link: &mut Option<Box<Link>>,
    key: u64,
    out: &mut Vec<u8>,
    out_limit: usize,
    version: Version,
    now: Instant,
    journal: &mut Journal,
    dropped: &mut SendDrops,
) {
    let durable = journal.durable_batch();
    let mut i = 0;
    while i < flow.inflight.len() && flow.unsent > 0 {
        let AckState::Unsent(batch) = flow.inflight[i].state else {
            i += 1;
            continue;
        };
        if batch > durable {
            dropped.held = true;
            return;
        }
        if out.len() >= out_limit {
            return;
        }
        flow.unsent -= 1;
        let f = &flow.inflight[i];
        let ids = f.subscription_ids.as_slice();
        let mut publish = publish_frame(
            &f.message,
            f.qos,
            f.retain,
            f.packet_id,
            false,
            version,
            now,
        );
        // The client may have reconnected with a smaller Maximum Packet Size meanwhile.
        if fits(&mut publish, link.as_deref(), ids, version) {
            if let Some(link) = link.as_deref_mut() {
                set_alias(&mut publish, link, &f.message.topic);
            }
            publish.encode(version, ids, out);
            dropped.count_publish(&f.message);
            flow.inflight[i].state = AckState::Pubrec;
            i += 1;
        } else {
            journal.packet(record::ACKED, key, f.packet_id);
            flow.inflight.remove(i);
            dropped.too_large += 1;
        }
    }
}

/// Gives `publish` the topic alias `link`'s outbound map chooses for `topic`.
fn set_alias(publish: &mut Publish<'_>, link: &mut Link, topic: &Rc<str>) {
    match link
        .outbound_aliases
        .choose(topic, link.topic_alias_maximum)
    {
        OutboundTopic::Plain => publish.properties.topic_alias = None,
        OutboundTopic::Assign(alias) => publish.properties.topic_alias = Some(alias),
        OutboundTopic::Known(alias) => {
            publish.properties.topic_alias = Some(alias);
            publish.topic = "";
        }
    }
}

/// The PUBLISH delivering `message` to one subscriber (v5 properties as of `now`).
fn publish_frame(
    message: &Message,
    qos: QoS,
    retain: bool,
    packet_id: u16,
    dup: bool,
    version: Version,
    now: Instant,
) -> Publish<'_> {
    Publish {
        dup,
        qos,
        retain,
        topic: &message.topic,
        packet_id,
        properties: if version == Version::V5 {
            message.publish_properties(now)
        } else {
            Properties::default()
        },
        payload: &message.payload,
    }
}

/// Whether `publish` fits the client's Maximum Packet Size. It is measured with its full
/// topic and, if the client accepts aliases, the largest alias: an upper bound of what is
/// sent. Leaves a placeholder alias set; the caller decides the real one.
fn fits(publish: &mut Publish<'_>, link: Option<&Link>, ids: &[u32], version: Version) -> bool {
    let Some(link) = link else {
        return true;
    };
    if link.topic_alias_maximum > 0 {
        publish.properties.topic_alias = Some(u16::MAX);
    }
    let len = publish.encoded_len(version, ids);
    u32::try_from(len).is_ok_and(|len| len <= link.maximum_packet_size)
}

/// Appends a PUBACK/PUBREC/PUBREL/PUBCOMP frame.
fn encode_ack(
    packet_type: PacketType,
    packet_id: u16,
    reason_code: u8,
    version: Version,
    out: &mut Vec<u8>,
) {
    let ack = Ack {
        packet_id,
        reason_code,
        properties: Properties::default(),
    };
    ack.encode(packet_type, version, out);
}
