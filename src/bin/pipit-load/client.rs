//! Per-client MQTT state and the reaction to each packet from the broker.
//!
//! [`World`] owns every publisher, subscriber and stream; the engine lends it one client's
//! role, state and write buffer per packet. Publishers fill their write buffer here, bounded
//! by the delivery window, the QoS 1/2 inflight window, the optional rate and a per-call byte
//! budget, so one busy publisher cannot starve the loop.

use std::fmt;
use std::io;
use std::time::Instant;

use crate::conn::Conn;
use crate::mqtt::{self, Packet};
use crate::pubrel::AwaitingPubrel;
use crate::stats::{PayloadHeader, SeqTrack};

/// Bytes a publisher may queue per fill; it refills once they are written.
const TX_BUDGET: usize = 64 * 1024;
/// Most latency samples kept (8 bytes each); later arrivals are not sampled.
const MAX_LATENCY_SAMPLES: usize = 10_000_000;
/// Packet id of our only SUBSCRIBE.
const SUBSCRIBE_ID: u16 = 1;

/// What a client does in the run; the index is into [`World::pubs`] or [`World::subs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Publishes on its topic.
    Publisher(usize),
    /// Subscribes and counts arrivals.
    Subscriber(usize),
    /// Connects and holds the connection (`conns`).
    Idle,
}

/// Where a client is in its connection's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// TCP connect in progress; CONNECT is already queued.
    Connecting,
    /// CONNECT sent, waiting for CONNACK.
    AwaitConnack,
    /// SUBSCRIBE sent, waiting for SUBACK.
    AwaitSuback,
    /// Connected (and subscribed, for subscribers).
    Ready,
    /// Failed or closed; the socket is deregistered.
    Closed,
}

/// Why a client's connection ended.
#[derive(Debug)]
pub enum Fail {
    /// A socket error.
    Io(io::ErrorKind),
    /// The broker closed the connection.
    Eof,
    /// The broker sent bytes we could not parse.
    Decode(mqtt::Error),
    /// CONNACK with a non-zero return code.
    Refused(u8),
    /// A packet that is wrong in the client's state; names it.
    Unexpected(&'static str),
    /// No CONNACK/SUBACK in time.
    Timeout,
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e.kind())
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Io(kind) => write!(f, "socket error: {kind}"),
            Fail::Eof => write!(f, "closed by the broker"),
            Fail::Decode(e) => write!(f, "bad packet from the broker: {e}"),
            Fail::Refused(rc) => write!(f, "CONNACK refused, return code {rc}"),
            Fail::Unexpected(what) => write!(f, "unexpected {what}"),
            Fail::Timeout => write!(f, "timed out waiting for the broker"),
        }
    }
}

/// One connection and what it is for.
pub struct Client {
    /// Socket and buffers.
    pub conn: Conn,
    /// Publisher, subscriber or idle.
    pub role: Role,
    /// Connection state.
    pub state: State,
    /// When the connect started.
    pub opened: Instant,
    /// Last time bytes were written (for keep alive).
    pub last_tx: Instant,
}

/// Where each QoS 1/2 packet id of a publisher is in its acknowledgement flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Free,
    AwaitPuback,
    AwaitPubrec,
    AwaitPubcomp,
}

/// A publisher's unacknowledged packet ids, at most `max` at a time.
pub struct Inflight {
    slots: Vec<Slot>,
    /// Packet ids in use.
    pub count: usize,
    max: usize,
    next: u16,
}

impl Inflight {
    /// An empty window of `max` ids (no table at all for QoS 0).
    pub fn new(qos: u8, max: usize) -> Inflight {
        let slots = if qos == 0 {
            Vec::new()
        } else {
            vec![Slot::Free; 65_536]
        };
        Inflight {
            slots,
            count: 0,
            max,
            next: 1,
        }
    }

    /// Takes a free packet id for a new PUBLISH, or `None` if the window is full.
    fn start(&mut self, qos: u8) -> Option<u16> {
        if self.count >= self.max {
            return None;
        }
        loop {
            let id = self.next;
            // Packet ids are non-zero [MQTT-2.3.1-1].
            self.next = if id == u16::MAX { 1 } else { id + 1 };
            if self.slots[id as usize] == Slot::Free {
                self.slots[id as usize] = if qos == 1 {
                    Slot::AwaitPuback
                } else {
                    Slot::AwaitPubrec
                };
                self.count += 1;
                return Some(id);
            }
        }
    }

    /// Moves `id` from `from` to `to` (freeing it if `to` is `Free`); false if it was not in `from`.
    fn advance(&mut self, id: u16, from: Slot, to: Slot) -> bool {
        match self.slots.get_mut(id as usize) {
            Some(slot) if *slot == from => {
                *slot = to;
                if to == Slot::Free {
                    self.count -= 1;
                }
                true
            }
            _ => false,
        }
    }
}

/// A publisher's counters and window.
pub struct Publisher {
    /// Slab key of its client.
    pub key: usize,
    /// Topic it publishes on.
    pub topic: String,
    /// Messages written to the write buffer (the next sequence number).
    pub sent: u64,
    /// QoS 1/2 flows completed.
    pub acked: u64,
    /// Unacknowledged packet ids.
    pub inflight: Inflight,
    /// Streams carrying its messages.
    pub streams: Vec<usize>,
}

/// A subscriber and the streams it receives.
pub struct Subscriber {
    /// Slab key of its client.
    pub key: usize,
    /// Its one topic filter.
    pub topic_filter: String,
    /// Stops reading once publishing starts.
    pub stalled: bool,
    /// Stream index for each publisher id, `None` if it should not receive that publisher.
    pub stream_of: Vec<Option<usize>>,
    /// Inbound QoS 2 packet ids waiting for their PUBREL (kept across reconnects).
    pub awaiting_pubrel: AwaitingPubrel,
}

/// What one subscriber has received from one publisher.
pub struct Stream {
    /// Publisher id.
    pub publisher: usize,
    /// Subscriber index.
    pub subscriber: usize,
    /// Arrival tracking.
    pub track: SeqTrack,
    /// Counts toward delivery, loss and the publisher's window (false for a stalled one).
    pub counted: bool,
}

/// Limits a publisher obeys while filling.
pub struct Limits {
    /// QoS of publishes.
    pub qos: u8,
    /// Messages a publisher may be ahead of its slowest counted stream.
    pub window: u64,
    /// Messages per publisher.
    pub count: Option<u64>,
    /// Messages per second per publisher.
    pub rate_per_pub: Option<f64>,
    /// Smallest batch worth a write when not rate-limited.
    pub min_batch: u64,
    /// PUBLISHes carry the RETAIN flag.
    pub retain: bool,
    /// Topics a publisher cycles through (`--topics`); 1 is its own topic only.
    pub topics: u64,
}

/// Every publisher, subscriber and stream, plus run-wide counters.
pub struct World {
    /// Publishing limits.
    pub limits: Limits,
    /// Publishers by id.
    pub pubs: Vec<Publisher>,
    /// Subscribers by index.
    pub subs: Vec<Subscriber>,
    /// Streams by index.
    pub streams: Vec<Stream>,
    /// Payload template: filler after the header.
    pub payload: Vec<u8>,
    /// Publishers may fill (measured window).
    pub publishing: bool,
    /// Stalled subscribers stop reading (from the start of the measured window).
    pub stalling: bool,
    /// Start of publishing, in nanoseconds since the epoch.
    pub start_ns: u64,
    /// Arrivals on counted streams (with duplicates): the progress counter.
    pub arrivals: u64,
    /// Time of the last counted arrival, in nanoseconds since the epoch.
    pub last_arrival_ns: u64,
    /// Arrivals at stalled subscribers before they stalled.
    pub stalled_arrivals: u64,
    /// PUBLISHes whose payload had no valid header or came from an unknown publisher.
    pub foreign: u64,
    /// Acks for packet ids not in flight.
    pub stray_acks: u64,
    /// Latency samples in nanoseconds, when the scenario records them.
    pub latencies: Option<Vec<u64>>,
    /// Idle clients that got a successful CONNACK.
    pub idle_ready: u64,
    /// Every PUBLISH a subscriber gets counts as an arrival, whoever sent it (`resume`).
    pub backlog: bool,
    /// Time of the first arrival when counting a backlog, ns since the epoch.
    pub first_arrival_ns: Option<u64>,
}

impl World {
    /// Reacts to one packet for a client in `role`/`state`, queueing replies into `tx`.
    pub fn handle(
        &mut self,
        role: Role,
        state: &mut State,
        packet: Packet<'_>,
        tx: &mut Vec<u8>,
        now_ns: u64,
    ) -> Result<(), Fail> {
        match packet {
            Packet::Connack { return_code } => {
                if *state != State::AwaitConnack {
                    return Err(Fail::Unexpected("CONNACK"));
                }
                if return_code != 0 {
                    return Err(Fail::Refused(return_code));
                }
                *state = match role {
                    Role::Subscriber(s) => {
                        mqtt::subscribe(
                            tx,
                            SUBSCRIBE_ID,
                            &self.subs[s].topic_filter,
                            self.limits.qos,
                        );
                        State::AwaitSuback
                    }
                    Role::Publisher(_) => State::Ready,
                    Role::Idle => {
                        self.idle_ready += 1;
                        State::Ready
                    }
                };
            }
            Packet::Suback { packet_id, granted } => {
                if *state != State::AwaitSuback || packet_id != SUBSCRIBE_ID {
                    return Err(Fail::Unexpected("SUBACK"));
                }
                // 0x80 is the failure return code [MQTT-3.9.3-2].
                if granted == 0x80 {
                    return Err(Fail::Unexpected("SUBACK failure"));
                }
                *state = State::Ready;
            }
            Packet::Publish {
                qos,
                packet_id,
                payload,
            } => {
                let Role::Subscriber(s) = role else {
                    return Err(Fail::Unexpected("PUBLISH to a non-subscriber"));
                };
                // A QoS 2 PUBLISH re-sent before its PUBREL is not delivered again.
                if qos != 2 || self.subs[s].awaiting_pubrel.first(packet_id) {
                    self.arrive(s, payload, now_ns);
                }
                match qos {
                    1 => mqtt::puback(tx, packet_id),
                    2 => mqtt::pubrec(tx, packet_id),
                    _ => {}
                }
            }
            Packet::Pubrel(packet_id) => {
                if let Role::Subscriber(s) = role {
                    self.subs[s].awaiting_pubrel.release(packet_id);
                }
                mqtt::pubcomp(tx, packet_id);
            }
            Packet::Puback(id) => {
                self.ack(role, id, Slot::AwaitPuback, Slot::Free);
            }
            Packet::Pubrec(id) => {
                // A repeated PUBREC gets another PUBREL [MQTT-4.3.3-1].
                let repeat = self.publisher_slot_is(role, id, Slot::AwaitPubcomp);
                if repeat || self.ack(role, id, Slot::AwaitPubrec, Slot::AwaitPubcomp) {
                    mqtt::pubrel(tx, id);
                }
            }
            Packet::Pubcomp(id) => {
                if self.ack(role, id, Slot::AwaitPubcomp, Slot::Free) {
                    self.count_acked(role);
                }
            }
            Packet::Pingresp => {}
        }
        Ok(())
    }

    /// Advances a publisher's packet id; counts a stray ack if it was not in `from`.
    fn ack(&mut self, role: Role, id: u16, from: Slot, to: Slot) -> bool {
        let Role::Publisher(p) = role else {
            self.stray_acks += 1;
            return false;
        };
        let ok = self.pubs[p].inflight.advance(id, from, to);
        if !ok {
            self.stray_acks += 1;
        } else if from == Slot::AwaitPuback {
            self.pubs[p].acked += 1;
        }
        ok
    }

    /// Counts a completed QoS 2 flow.
    fn count_acked(&mut self, role: Role) {
        if let Role::Publisher(p) = role {
            self.pubs[p].acked += 1;
        }
    }

    /// Whether a publisher's packet id is in `slot`.
    fn publisher_slot_is(&self, role: Role, id: u16, slot: Slot) -> bool {
        match role {
            Role::Publisher(p) => self.pubs[p].inflight.slots.get(id as usize) == Some(&slot),
            _ => false,
        }
    }

    /// Records one PUBLISH arriving at subscriber `s`.
    fn arrive(&mut self, s: usize, payload: &[u8], now_ns: u64) {
        if self.backlog {
            self.first_arrival_ns.get_or_insert(now_ns);
            self.arrivals += 1;
            self.last_arrival_ns = now_ns;
            return;
        }
        let Some(header) = PayloadHeader::read(payload) else {
            self.foreign += 1;
            return;
        };
        let stream = self.subs[s]
            .stream_of
            .get(header.publisher as usize)
            .copied()
            .flatten();
        let Some(stream) = stream else {
            self.foreign += 1;
            return;
        };
        let sent = self.pubs[header.publisher as usize].sent;
        let stream = &mut self.streams[stream];
        stream.track.record(header.seq, sent);
        if !stream.counted {
            self.stalled_arrivals += 1;
            return;
        }
        self.arrivals += 1;
        self.last_arrival_ns = now_ns;
        if let Some(samples) = &mut self.latencies
            && samples.len() < MAX_LATENCY_SAMPLES
            && header.sent_ns >= self.start_ns
        {
            samples.push(now_ns.saturating_sub(header.sent_ns));
        }
    }

    /// Queues as many PUBLISHes for publisher `p` as its limits allow; true if it stopped
    /// only at the byte budget (so it can go on once the buffer is written).
    pub fn fill(&mut self, p: usize, conn: &mut Conn, now_ns: u64) -> bool {
        let mut room = self.delivery_room(p);
        let limits = &self.limits;
        let publisher = &mut self.pubs[p];
        if let Some(count) = limits.count {
            room = room.min(count.saturating_sub(publisher.sent));
        }
        if let Some(rate) = limits.rate_per_pub {
            let elapsed_s = now_ns.saturating_sub(self.start_ns) as f64 / 1e9;
            let due = (elapsed_s * rate) as u64 + 1;
            room = room.min(due.saturating_sub(publisher.sent));
        }
        // Without a rate, wait until a worthwhile batch fits: fewer, larger writes.
        let last = limits.count.is_some_and(|c| publisher.sent + room >= c);
        if limits.rate_per_pub.is_none() && room < limits.min_batch && !last {
            return false;
        }
        let start_len = conn.pending();
        while room > 0 {
            if conn.pending() - start_len >= TX_BUDGET {
                return true;
            }
            let packet_id = if limits.qos == 0 {
                0
            } else {
                match publisher.inflight.start(limits.qos) {
                    Some(id) => id,
                    None => break,
                }
            };
            let header = PayloadHeader {
                seq: publisher.sent,
                publisher: p as u32,
                sent_ns: now_ns,
            };
            header.write(&mut self.payload);
            let spread;
            let topic = if limits.topics > 1 {
                spread = format!("{}-{}", publisher.topic, publisher.sent % limits.topics);
                &spread
            } else {
                &publisher.topic
            };
            let (qos, retain) = (limits.qos, limits.retain);
            mqtt::publish(&mut conn.tx, topic, qos, retain, packet_id, &self.payload);
            publisher.sent += 1;
            room -= 1;
        }
        false
    }

    /// How many more messages publisher `p` may send before delivery catches up: its window
    /// ahead of the slowest counted stream, and for QoS 1/2 its free inflight slots.
    fn delivery_room(&self, p: usize) -> u64 {
        let publisher = &self.pubs[p];
        let slowest = publisher
            .streams
            .iter()
            .map(|&s| &self.streams[s])
            .filter(|s| s.counted)
            .map(|s| s.track.reached())
            .min();
        let mut room = slowest.map_or(u64::MAX, |d| {
            (d + self.limits.window).saturating_sub(publisher.sent)
        });
        if self.limits.qos > 0 {
            room = room.min((publisher.inflight.max - publisher.inflight.count) as u64);
        }
        room
    }

    /// Whether publisher `p` waits for deliveries before it sends again: its delivery room
    /// is below the batch `fill` waits for (or is none).
    pub fn waits_for_delivery(&self, p: usize) -> bool {
        self.delivery_room(p) < self.limits.min_batch
    }

    /// Whether publisher `p` has sent its `--count`.
    pub fn finished(&self, p: usize) -> bool {
        self.limits.count.is_some_and(|c| self.pubs[p].sent >= c)
    }

    /// When the next rate-limited message of any publisher is due, in ns since the epoch.
    pub fn next_due_ns(&self) -> Option<u64> {
        let rate = self.limits.rate_per_pub?;
        let next = self.pubs.iter().map(|p| p.sent).min()?;
        Some(self.start_ns + (next as f64 / rate * 1e9) as u64)
    }
}
