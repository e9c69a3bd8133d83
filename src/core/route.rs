//! Routing one message: find the sessions whose subscriptions match its topic, merge
//! overlapping subscriptions so each session gets it once at the highest granted QoS, and
//! queue it to each. Allocation-free per message: the scratch lists are reused and every
//! queue holds an `Rc` of the one stored message.

use std::rc::Rc;

use crate::auth::Access;
use crate::core::drops::DropReason;
use crate::core::message::Message;
use crate::core::session::{Enqueued, QueueLimits};
use crate::core::state::State;
use crate::core::tree::{GroupRef, Subscriber};
use crate::ids::{ConnId, Millis, SessionId};
use crate::wire::QoS;

/// One session's merged delivery of the message being routed.
#[derive(Clone, Copy, Debug)]
struct Target {
    session: SessionId,
    qos: QoS,
    /// Keep the RETAIN flag: a matching subscription has Retain As Published.
    retain: bool,
}

/// Scratch lists reused for every routed message.
#[derive(Debug, Default)]
pub struct RouteScratch {
    subs: Vec<Subscriber>,
    groups: Vec<GroupRef>,
    targets: Vec<Target>,
    /// (target slot, subscription identifier) of every matching subscription that has one.
    ids: Vec<(u32, u32)>,
    /// The identifiers of the target being delivered.
    target_ids: Vec<u32>,
    stamp: u64,
}

/// The topic a session last published to (validated, and shared with the messages sent on
/// it) and what it matched, kept while the subscription tree is unchanged: a client that
/// publishes to one topic again (the usual sensor or gateway pattern) skips validating,
/// copying and matching it. Only small match results are kept, so this stays a few entries
/// per publishing session however many clients subscribe.
#[derive(Debug)]
pub struct LastTopic {
    topic: Rc<str>,
    /// The tree generation `subs` and `groups` were collected in; `None` when not kept.
    generation: Option<u64>,
    subs: Vec<Subscriber>,
    groups: Vec<GroupRef>,
}

/// Most subscriptions plus shared groups a `LastTopic` keeps; a larger fan-out costs more
/// to deliver than to walk the tree for.
const LAST_TOPIC_MAX_MATCHES: usize = 16;

impl LastTopic {
    /// The shared copy of `topic`, if it is this one.
    pub fn shared(&self, topic: &str) -> Option<Rc<str>> {
        (*self.topic == *topic).then(|| Rc::clone(&self.topic))
    }

    /// Whether this holds the match of exactly this topic (the same shared copy) in tree
    /// `generation`.
    fn matched(&self, topic: &Rc<str>, generation: u64) -> bool {
        self.generation == Some(generation) && Rc::ptr_eq(&self.topic, topic)
    }
}

/// Publishes `message` from session `origin` (`None` for the broker itself, e.g. a will):
/// stores it if retained [MQTT-3.3.1-5], then routes it. Returns how many sessions it was
/// queued to.
pub fn publish(state: &mut State, message: &Rc<Message>, origin: Option<SessionId>) -> usize {
    if message.retain && state.config.retain_available {
        state.retained.set(Rc::clone(message));
    }
    route(state, message, origin)
}

/// Delivers `message` to every matching subscription; returns the number of sessions.
fn route(state: &mut State, message: &Rc<Message>, origin: Option<SessionId>) -> usize {
    let State {
        tree,
        sessions,
        route,
        ..
    } = state;
    route.subs.clear();
    route.groups.clear();
    route.targets.clear();
    route.ids.clear();
    route.stamp += 1;
    let generation = tree.generation();
    let origin_session = origin.and_then(|sid| sessions.get_mut(sid.0 as usize));
    match origin_session.map(|s| s.last_topic_mut()) {
        Some(Some(last)) if last.matched(&message.topic, generation) => {
            route.subs.extend_from_slice(&last.subs);
            route.groups.extend_from_slice(&last.groups);
        }
        Some(slot) => {
            tree.collect(&message.topic, &mut route.subs, &mut route.groups);
            remember_match(slot, message, generation, &route.subs, &route.groups);
        }
        None => tree.collect(&message.topic, &mut route.subs, &mut route.groups),
    }
    for &group in &route.groups {
        let online = |s: SessionId| sessions.get(s.0 as usize).is_some_and(|s| s.is_online());
        if let Some(member) = tree.pick_shared(group, online) {
            route.subs.push(member);
        }
    }
    for sub in &route.subs {
        // [MQTT-3.8.3-3] No Local: not sent back to the session that published it.
        if sub.options.no_local && origin == Some(sub.session) {
            continue;
        }
        let Some(session) = sessions.get_mut(sub.session.0 as usize) else {
            continue;
        };
        // [MQTT-3.3.5-1] overlapping subscriptions: one delivery at the highest QoS.
        let qos = sub.options.qos.min(message.qos);
        // [MQTT-3.3.1-12] [MQTT-3.3.1-13] Retain As Published keeps the RETAIN flag.
        let retain = sub.options.retain_as_published && message.retain;
        if session.route_stamp != route.stamp {
            session.route_stamp = route.stamp;
            session.route_slot = route.targets.len() as u32;
            route.targets.push(Target {
                session: sub.session,
                qos,
                retain,
            });
        } else {
            let target = &mut route.targets[session.route_slot as usize];
            target.qos = target.qos.max(qos);
            target.retain |= retain;
        }
        // [MQTT-3.3.4-3] every matching subscription's identifier goes with the one delivery.
        if sub.subscription_id != 0 {
            route.ids.push((session.route_slot, sub.subscription_id));
        }
    }
    route.ids.sort_unstable();
    let publisher = origin
        .and_then(|sid| state.sessions.get(sid.0 as usize))
        .and_then(|s| s.conn());
    let from = Sender::new(state, publisher);
    let mut next_id = 0;
    let mut delivered = 0;
    for i in 0..state.route.targets.len() {
        let Target {
            session,
            qos,
            retain,
        } = state.route.targets[i];
        let mut ids = std::mem::take(&mut state.route.target_ids);
        ids.clear();
        while let Some(&(slot, id)) = state.route.ids.get(next_id)
            && slot as usize == i
        {
            ids.push(id);
            next_id += 1;
        }
        // Reading is checked per subscriber, so a wildcard subscription leaks no denied topic.
        if state.allowed(session, &message.topic, Access::Read) {
            deliver(state, session, message, qos, retain, &ids, &from);
            delivered += 1;
        } else {
            state.count_drop(session, DropReason::Acl, 1);
        }
        state.route.target_ids = ids;
    }
    delivered
}

/// Makes `message`'s topic the session's last topic, with what it matched if that is small;
/// reuses the slot's lists.
fn remember_match(
    slot: &mut Option<LastTopic>,
    message: &Message,
    generation: u64,
    subs: &[Subscriber],
    groups: &[GroupRef],
) {
    let last = slot.get_or_insert_with(|| LastTopic {
        topic: Rc::clone(&message.topic),
        generation: None,
        subs: Vec::new(),
        groups: Vec::new(),
    });
    last.topic = Rc::clone(&message.topic);
    last.subs.clear();
    last.groups.clear();
    if subs.len() + groups.len() > LAST_TOPIC_MAX_MATCHES {
        last.generation = None;
        return;
    }
    last.generation = Some(generation);
    last.subs.extend_from_slice(subs);
    last.groups.extend_from_slice(groups);
}

/// Who is sending what `deliver` queues, and what it needs to know once per message rather
/// than once per subscriber.
#[derive(Clone, Copy, Debug)]
pub struct Sender {
    /// The publisher's connection, held back when a subscriber is over its output bound.
    publisher: Option<ConnId>,
    limits: QueueLimits,
    now: Millis,
}

impl Sender {
    /// A sender for messages from connection `publisher` (`None`: the broker itself).
    pub fn new(state: &State, publisher: Option<ConnId>) -> Sender {
        Sender {
            publisher,
            limits: state.queue_limits(),
            now: state.millis(),
        }
    }
}

/// Queues `message` to one session at `qos` with the RETAIN flag and subscription
/// identifiers to send, and marks its connection for writing if it is online.
///
/// QoS 0 to an online client is bounded in bytes, not by the queue: while what waits for it
/// is over `max_output_buffer` and it keeps draining, the message is queued anyway and the
/// sender's connection is held (not read from) until the client catches up; once the client
/// has not drained for `slow_subscriber_timeout`, its QoS 0 is dropped instead.
pub fn deliver(
    state: &mut State,
    sid: SessionId,
    message: &Rc<Message>,
    qos: QoS,
    retain: bool,
    subscription_ids: &[u32],
    from: &Sender,
) {
    let State {
        sessions,
        conns,
        config,
        stats,
        dirty,
        ..
    } = state;
    let Some(session) = sessions.get_mut(sid.0 as usize) else {
        return;
    };
    let mut conn = session.conn().and_then(|id| conns.get_mut(id));
    let mut hold = None;
    if qos == QoS::AtMostOnce
        && let Some(conn) = conn.as_deref_mut()
    {
        if conn.tx.len() + session.backlog() < config.max_output_buffer {
            if conn.last_drained != from.now {
                conn.last_drained = from.now;
            }
        } else if from.now.since(conn.last_drained) > config.slow_subscriber_timeout {
            stats
                .dropped
                .count(DropReason::OutputCap, 1, &session.client_id);
            return;
        } else {
            hold = from.publisher.filter(|&p| p != conn.id);
        }
    }
    let limits = from.limits;
    match session.enqueue(Rc::clone(message), qos, retain, subscription_ids, limits) {
        Enqueued::Queued => {
            stats.messages_sent += 1;
            if let Some(conn) = conn
                && !conn.dirty
            {
                conn.dirty = true;
                dirty.push(conn.id);
            }
        }
        Enqueued::QueueFull => {
            stats
                .dropped
                .count(DropReason::QueueFull, 1, &session.client_id);
        }
    }
    if let (Some(publisher), Some(subscriber)) = (hold, session.conn()) {
        state.hold(publisher, subscriber);
    }
}
