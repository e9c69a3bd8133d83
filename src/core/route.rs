//! Routing one message: find the sessions whose subscriptions match its topic, merge
//! overlapping subscriptions so each session gets it once at the highest granted QoS, and
//! queue it to each. Allocation-free per message: the scratch lists are reused and every
//! queue holds an `Rc` of the one stored message.

use std::rc::Rc;

use crate::auth::Access;
use crate::core::budget::Shed;
use crate::core::drops::DropReason;
use crate::core::lifecycle;
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
    let sys = message.topic.starts_with("$SYS/");
    if message.retain
        && state.config.retain_available
        && !sys
        && !message.payload.is_empty()
        && state.budget.sheds(Shed::Retained)
    {
        shed_retained(state, message, origin);
    } else if message.retain && state.config.retain_available {
        // `$SYS` is the broker's own, published again after a restart: not stored.
        if !sys {
            // An empty payload clears the topic's retained message [MQTT-3.3.1-10].
            let kept = (!message.payload.is_empty()).then_some(&**message);
            state.journal.retain(&message.topic, kept);
        }
        // The store keeps it indefinitely: not the receive buffer it may share.
        state.retained.set(Message::unshared(Rc::clone(message)));
    }
    route(state, message, origin)
}

/// Under `memory_limit`'s last stage a retained message is delivered but not stored; one it
/// would have replaced is cleared, so a later subscriber gets no stale value, and memory only
/// goes down.
fn shed_retained(state: &mut State, message: &Message, origin: Option<SessionId>) {
    let client_id = origin
        .and_then(|sid| state.sessions.get(sid.0 as usize))
        .map_or("", |s| &s.client_id);
    state.budget.count(Shed::Retained, client_id);
    if state.retained.remove(&message.topic) {
        state.journal.retain(&message.topic, None);
    }
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
        // Most brokers have no bridge: then no subscriber is one, and no lookup is needed.
        let bridge = if state.bridges.is_empty() {
            None
        } else {
            state
                .sessions
                .get(session.0 as usize)
                .and_then(|s| s.bridge)
        };
        if let Some(i) = bridge {
            // A bridge's local side: the message goes out under its remote topic.
            if let Some(remote) = crate::bridge::outbound(state, i, message) {
                let retain = retain && crate::bridge::outgoing_retain(state, i);
                let qos = crate::bridge::outgoing_qos(state, i, qos);
                let limits = crate::bridge::make_room(state, i, &remote, qos);
                deliver(
                    state,
                    session,
                    &remote,
                    qos,
                    retain,
                    &ids,
                    &from.with_limits(limits),
                );
                delivered += 1;
            }
        } else if state.allowed(session, &message.topic, Access::Read) {
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

    /// The same sender, queueing under `limits` (a bridge's own queue bounds).
    pub fn with_limits(self, limits: QueueLimits) -> Sender {
        Sender { limits, ..self }
    }
}

/// Queues `message` to one session at `qos` with the RETAIN flag and subscription
/// identifiers to send, and marks its connection for writing if it is online.
///
/// What waits for an online client is bounded in bytes: while it is over `max_output_buffer`
/// and the client keeps draining, the message is queued anyway and the sender's connection
/// is held (not read from) until the client catches up, at any QoS; once the client has not
/// drained for `slow_subscriber_timeout`, its QoS 0 is dropped instead and its QoS 1/2 is
/// bounded by the queue's limits.
pub fn deliver(
    state: &mut State,
    sid: SessionId,
    message: &Rc<Message>,
    qos: QoS,
    retain: bool,
    subscription_ids: &[u32],
    from: &Sender,
) {
    // Counted toward `max_queued_bytes_total`, when set (else nothing reads the total, and
    // this costs no lookup): everything but QoS 0 to an online client.
    let payload = message.payload.len();
    let counted = state.config.max_queued_bytes_total != 0
        && (state.sessions.get(sid.0 as usize))
            .is_some_and(|s| qos != QoS::AtMostOnce || !s.is_online());
    if counted && over_total(state, payload) {
        state.count_drop(sid, DropReason::QueueFull, 1);
        return;
    }
    let State {
        sessions,
        conns,
        config,
        stats,
        dirty,
        journal,
        budget,
        queued_total,
        ..
    } = state;
    let Some(session) = sessions.get_mut(sid.0 as usize) else {
        return;
    };
    let mut conn = session.conn().and_then(|id| conns.get_mut(id));
    // Under memory_limit, QoS 0 to a subscriber not keeping up (the kernel did not take all
    // of its last write) or queued for an offline one is dropped, not held (`core::budget`).
    if qos == QoS::AtMostOnce
        && budget.sheds(Shed::Qos0)
        && conn
            .as_deref()
            .map_or(from.limits.queue_qos0_offline, |c| !c.tx.is_empty())
    {
        budget.count(Shed::Qos0, &session.client_id);
        stats
            .dropped
            .count(DropReason::MemoryLimit, 1, &session.client_id);
        return;
    }
    let mut hold = None;
    if qos != QoS::AtMostOnce
        && let Some(conn) = conn.as_deref()
        && conn.tx.len() + session.backlog() >= config.max_output_buffer
        && from.now.since(conn.last_drained) <= config.slow_subscriber_timeout
    {
        // QoS 1/2 over the bound is queued (it was accepted: it is never dropped here), and
        // its publisher is not read from until the subscriber drains to half: what the
        // publishers have outstanding waits in their sockets (TCP back-pressure), not in the
        // broker. Without this, fan-in QoS 1 of 16 KiB held everything 16 publishers had
        // outstanding (264 MB); now a subscriber pins at most `max_output_buffer` plus one
        // turn's reads. A slow subscriber holds nobody: its queue is bounded by
        // `max_queued_messages`/`max_queued_bytes` as an offline session's is.
        hold = from.publisher.filter(|&p| p != conn.id);
    } else if qos == QoS::AtMostOnce
        && let Some(conn) = conn.as_deref_mut()
    {
        if conn.tx.len() + session.backlog() < config.max_output_buffer {
            // Under the bound is not the same as draining: only an empty output buffer
            // (everything written) restarts the slow clock here, so a stalled client sitting
            // just under the bound cannot keep resetting it.
            if conn.tx.is_empty() && conn.last_drained != from.now {
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
    match lifecycle::enqueue(
        sid,
        session,
        message,
        qos,
        retain,
        subscription_ids,
        limits,
        journal,
    ) {
        Enqueued::Queued => {
            if counted {
                queued_total.bytes += payload;
            }
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

/// Whether `payload` more bytes counted toward the queues' bounds would take all sessions
/// together over `max_queued_bytes_total`. The running estimate only grows between walks
/// (`QueuedTotal`), so before refusing it is made exact by a walk over the sessions, at most
/// once a turn: the walk costs nothing until the queues come near the cap.
fn over_total(state: &mut State, payload: usize) -> bool {
    let cap = state.config.max_queued_bytes_total;
    if cap == 0 || state.queued_total.bytes.saturating_add(payload) <= cap {
        return false;
    }
    let now = state.millis();
    if state.queued_total.walked != Some(now) {
        state.queued_total.bytes = state.sessions.iter().map(|(_, s)| s.queued_bytes()).sum();
        state.queued_total.walked = Some(now);
    }
    state.queued_total.bytes.saturating_add(payload) > cap
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::config::Config;
    use crate::core::lifecycle::{attach, detach, discard, subscribe};
    use crate::wire::SubscriptionOptions;

    /// The connection of the `i`th client of `online` (no socket: routing only queues).
    fn conn(i: usize) -> ConnId {
        ConnId::new(i, 0)
    }

    /// A state with one session per client id, the `i`th online on `conn(i)`.
    fn online(clients: &[&str]) -> (State, Vec<SessionId>) {
        let mut state = State::for_test(Config::default(), Instant::now());
        let sids = (0..)
            .zip(clients)
            .map(|(i, id)| attach(&mut state, conn(i), id, false).0)
            .collect();
        (state, sids)
    }

    /// Subscribes `sid` to `filter` with `options` and subscription identifier `id` (0: none).
    fn sub(state: &mut State, sid: SessionId, filter: &str, options: SubscriptionOptions, id: u32) {
        subscribe(state, sid, filter, options, id).expect("a valid filter the ACL allows");
    }

    /// What session `sid` has queued: (payload, QoS, RETAIN, subscription identifiers).
    fn queued(state: &State, sid: SessionId) -> Vec<(String, QoS, bool, Vec<u32>)> {
        state.sessions[sid.0 as usize]
            .queued_messages()
            .map(|(m, qos, retain, ids)| {
                let payload = String::from_utf8_lossy(&m.payload).into_owned();
                (payload, qos, retain, ids.to_vec())
            })
            .collect()
    }

    fn message(topic: &str, payload: &str, qos: QoS, retain: bool) -> Rc<Message> {
        Message::shared(topic, payload.as_bytes(), qos, retain)
    }

    #[test]
    fn overlapping_subscriptions_deliver_once_at_the_highest_qos_with_every_identifier() {
        let (mut s, sids) = online(&["c"]);
        let c = sids[0];
        sub(
            &mut s,
            c,
            "a/+",
            SubscriptionOptions::at(QoS::AtMostOnce),
            1,
        );
        sub(
            &mut s,
            c,
            "a/#",
            SubscriptionOptions::at(QoS::ExactlyOnce),
            2,
        );
        sub(
            &mut s,
            c,
            "a/b",
            SubscriptionOptions::at(QoS::AtLeastOnce),
            0,
        );
        sub(
            &mut s,
            c,
            "+/b",
            SubscriptionOptions::at(QoS::AtMostOnce),
            3,
        );
        // [MQTT-3.3.5-1] one delivery, at the highest granted QoS (bounded by the message's);
        // [MQTT-3.3.4-3] carrying the identifier of every matching subscription that has one.
        assert_eq!(
            publish(&mut s, &message("a/b", "2", QoS::ExactlyOnce, false), None),
            1
        );
        assert_eq!(
            publish(&mut s, &message("a/b", "1", QoS::AtLeastOnce, false), None),
            1
        );
        assert_eq!(
            publish(&mut s, &message("a/c", "0", QoS::ExactlyOnce, false), None),
            1
        );
        assert_eq!(
            queued(&s, c),
            [
                ("2".into(), QoS::ExactlyOnce, false, vec![1, 2, 3]),
                ("1".into(), QoS::AtLeastOnce, false, vec![1, 2, 3]),
                ("0".into(), QoS::ExactlyOnce, false, vec![1, 2]),
            ]
        );
    }

    #[test]
    fn no_local_keeps_a_message_from_the_session_that_published_it() {
        let (mut s, sids) = online(&["publisher", "other"]);
        let (publisher, other) = (sids[0], sids[1]);
        let no_local = SubscriptionOptions {
            no_local: true,
            ..SubscriptionOptions::at(QoS::AtLeastOnce)
        };
        sub(&mut s, publisher, "t", no_local, 0);
        sub(&mut s, other, "t", no_local, 0);
        // [MQTT-3.8.3-3] not forwarded to the publishing session; others still get it.
        assert_eq!(
            publish(
                &mut s,
                &message("t", "own", QoS::AtLeastOnce, false),
                Some(publisher)
            ),
            1
        );
        assert_eq!(queued(&s, publisher), []);
        assert_eq!(queued(&s, other).len(), 1);
        // A message the broker publishes (a will, say) has no publishing session.
        publish(&mut s, &message("t", "will", QoS::AtLeastOnce, false), None);
        assert_eq!(queued(&s, publisher).len(), 1);
    }

    #[test]
    fn retain_as_published_keeps_the_retain_flag_only_where_asked() {
        let (mut s, sids) = online(&["keeps", "clears"]);
        let (keeps, clears) = (sids[0], sids[1]);
        let rap = SubscriptionOptions {
            retain_as_published: true,
            ..SubscriptionOptions::at(QoS::AtMostOnce)
        };
        sub(&mut s, keeps, "r", rap, 0);
        sub(
            &mut s,
            keeps,
            "#",
            SubscriptionOptions::at(QoS::AtMostOnce),
            0,
        );
        sub(
            &mut s,
            clears,
            "r",
            SubscriptionOptions::at(QoS::AtMostOnce),
            0,
        );
        publish(
            &mut s,
            &message("r", "retained", QoS::AtMostOnce, true),
            None,
        );
        publish(&mut s, &message("r", "live", QoS::AtMostOnce, false), None);
        // [MQTT-3.3.1-12] [MQTT-3.3.1-13]: a merged delivery keeps RETAIN if any matching
        // subscription has Retain As Published.
        let flags = |sid| {
            queued(&s, sid)
                .into_iter()
                .map(|q| (q.0, q.2))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            flags(keeps),
            [("retained".into(), true), ("live".into(), false)]
        );
        assert_eq!(
            flags(clears),
            [("retained".into(), false), ("live".into(), false)]
        );
    }

    #[test]
    fn a_shared_subscription_delivers_each_message_to_one_online_member() {
        let (mut s, sids) = online(&["m1", "m2", "away"]);
        for &sid in &sids {
            sub(
                &mut s,
                sid,
                "$share/g/s/+",
                SubscriptionOptions::at(QoS::AtLeastOnce),
                0,
            );
        }
        let away = sids[2];
        s.sessions[away.0 as usize].expiry_interval = 60;
        detach(&mut s, away, conn(2));
        for n in 0..6 {
            let m = message("s/x", &n.to_string(), QoS::AtLeastOnce, false);
            assert_eq!(publish(&mut s, &m, None), 1, "one member per message");
        }
        let counts: Vec<usize> = sids.iter().map(|&sid| queued(&s, sid).len()).collect();
        assert_eq!(counts, [3, 3, 0], "round-robin over the online members");
    }

    #[test]
    fn an_offline_session_queues_qos_1_and_drops_qos_0() {
        let (mut s, sids) = online(&["away"]);
        let away = sids[0];
        sub(
            &mut s,
            away,
            "q",
            SubscriptionOptions::at(QoS::ExactlyOnce),
            0,
        );
        s.sessions[away.0 as usize].expiry_interval = 60;
        detach(&mut s, away, conn(0));
        publish(&mut s, &message("q", "1", QoS::AtLeastOnce, false), None);
        publish(&mut s, &message("q", "0", QoS::AtMostOnce, false), None);
        assert_eq!(
            queued(&s, away),
            [("1".into(), QoS::AtLeastOnce, false, vec![])]
        );
        assert_eq!(
            s.stats.dropped.get(DropReason::QueueFull),
            1,
            "QoS 0 counted as queue_full"
        );
        assert_eq!(s.stats.dropped.total(), 1);

        // `queue_qos0_messages` keeps QoS 0 for it too.
        s.config.queue_qos0_messages = true;
        publish(&mut s, &message("q", "kept", QoS::AtMostOnce, false), None);
        assert_eq!(s.sessions[away.0 as usize].queued(), 2);
        assert_eq!(s.stats.dropped.total(), 1);
    }

    #[test]
    fn max_queued_bytes_total_bounds_all_queues_together() {
        let (mut s, sids) = online(&["a", "b"]);
        s.config.max_queued_bytes_total = 10;
        for (i, &sid) in sids.iter().enumerate() {
            sub(
                &mut s,
                sid,
                "q",
                SubscriptionOptions::at(QoS::AtLeastOnce),
                0,
            );
            s.sessions[sid.0 as usize].expiry_interval = 60;
            detach(&mut s, sid, conn(i));
        }
        publish(&mut s, &message("q", "1234", QoS::AtLeastOnce, false), None);
        publish(&mut s, &message("q", "5678", QoS::AtLeastOnce, false), None);
        let queued: Vec<usize> = (sids.iter())
            .map(|sid| s.sessions[sid.0 as usize].queued())
            .collect();
        assert_eq!(queued, [1, 1], "8 bytes queued; 4 more would be 12");
        assert_eq!(s.stats.dropped.get(DropReason::QueueFull), 2);
        // Once "a" is gone, the next turn's walk finds the room it left.
        discard(&mut s, sids[0]);
        s.set_now(s.now + std::time::Duration::from_millis(5));
        publish(&mut s, &message("q", "9012", QoS::AtLeastOnce, false), None);
        assert_eq!(s.sessions[sids[1].0 as usize].queued(), 2);
    }

    #[test]
    fn under_memory_limit_qos_0_queued_offline_and_new_retained_are_shed() {
        let config = Config {
            memory_limit: Some(1000),
            queue_qos0_messages: true,
            ..Config::default()
        };
        let mut s = State::for_test(config, Instant::now());
        let (away, _) = attach(&mut s, conn(1), "away", false);
        sub(
            &mut s,
            away,
            "t/#",
            SubscriptionOptions::at(QoS::AtLeastOnce),
            0,
        );
        s.sessions[away.0 as usize].expiry_interval = 60;
        detach(&mut s, away, conn(1));
        publish(
            &mut s,
            &message("t/old", "stale", QoS::AtMostOnce, true),
            None,
        );
        s.budget.observe(Some(1000));
        assert!(s.budget.sheds(Shed::Retained), "every stage at 100 %");
        let queued_before = s.sessions[away.0 as usize].queued();
        publish(
            &mut s,
            &message("t/old", "new", QoS::AtMostOnce, true),
            None,
        );
        publish(&mut s, &message("t/new", "x", QoS::AtMostOnce, true), None);
        assert_eq!(
            s.sessions[away.0 as usize].queued(),
            queued_before,
            "QoS 0 not queued offline"
        );
        assert_eq!(s.budget.shed(Shed::Qos0), 2);
        assert_eq!(s.stats.dropped.get(DropReason::MemoryLimit), 2);
        assert_eq!(
            s.retained.len(),
            0,
            "replaced one cleared, new one not stored"
        );
        assert_eq!(s.budget.shed(Shed::Retained), 2);
        // QoS 1 still queues: refusing it is the publisher's handler's decision.
        publish(&mut s, &message("t/q", "1", QoS::AtLeastOnce, false), None);
        assert_eq!(s.sessions[away.0 as usize].queued(), queued_before + 1);
    }

    #[test]
    fn publishing_a_retained_message_stores_it_and_an_empty_one_clears_it() {
        let (mut s, _) = online(&[]);
        // Stored even with no subscriber to route it to [MQTT-3.3.1-5].
        assert_eq!(
            publish(
                &mut s,
                &message("r/1", "kept", QoS::AtLeastOnce, true),
                None
            ),
            0
        );
        publish(
            &mut s,
            &message("r/2", "not retained", QoS::AtLeastOnce, false),
            None,
        );
        let stored = |s: &State| {
            let mut found = Vec::new();
            s.retained.for_each_match("r/#", |m| {
                found.push((m.topic.to_string(), m.payload.to_vec()));
                std::ops::ControlFlow::Continue(())
            });
            found
        };
        assert_eq!(stored(&s), [("r/1".to_string(), b"kept".to_vec())]);
        // [MQTT-3.3.1-10] [MQTT-3.3.1-11] a zero-length retained payload clears the topic.
        publish(&mut s, &message("r/1", "", QoS::AtMostOnce, true), None);
        assert_eq!(stored(&s), []);
    }
}
