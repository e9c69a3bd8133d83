//! Routing one message: find the sessions whose subscriptions match its topic, merge
//! overlapping subscriptions so each session gets it once at the highest granted QoS, and
//! queue it to each. Allocation-free per message: the scratch lists are reused and every
//! queue holds an `Rc` of the one stored message.

use std::rc::Rc;

use crate::auth::Access;
use crate::message::Message;
use crate::session::{Enqueued, SessionId};
use crate::state::State;
use crate::tree::{GroupRef, Subscriber};
use crate::wire::QoS;

/// One session's merged delivery of the message being routed.
#[derive(Clone, Copy, Debug)]
struct Target {
    session: SessionId,
    qos: QoS,
}

/// Scratch lists reused for every routed message.
#[derive(Debug, Default)]
pub struct RouteScratch {
    subs: Vec<Subscriber>,
    groups: Vec<GroupRef>,
    targets: Vec<Target>,
    stamp: u64,
}

/// Publishes `message`: stores it if retained [MQTT-3.3.1-5], then routes it.
pub fn publish(state: &mut State, message: &Rc<Message>) {
    if message.retain && state.config.retain_available {
        state.retained.set(Rc::clone(message));
    }
    route(state, message);
}

/// Delivers `message` to every matching subscription.
fn route(state: &mut State, message: &Rc<Message>) {
    let State {
        tree,
        sessions,
        route,
        ..
    } = state;
    route.subs.clear();
    route.groups.clear();
    route.targets.clear();
    route.stamp += 1;
    tree.collect(&message.topic, &mut route.subs, &mut route.groups);
    for &group in &route.groups {
        let online = |s: SessionId| sessions.get(s.0 as usize).is_some_and(|s| s.conn.is_some());
        if let Some(member) = tree.pick_shared(group, online) {
            route.subs.push(member);
        }
    }
    for sub in &route.subs {
        let Some(session) = sessions.get_mut(sub.session.0 as usize) else {
            continue;
        };
        // [MQTT-3.3.5-1] overlapping subscriptions: one delivery at the highest QoS.
        let qos = sub.options.qos.min(message.qos);
        if session.route_stamp == route.stamp {
            let target = &mut route.targets[session.route_slot as usize];
            target.qos = target.qos.max(qos);
        } else {
            session.route_stamp = route.stamp;
            session.route_slot = route.targets.len() as u32;
            route.targets.push(Target {
                session: sub.session,
                qos,
            });
        }
    }
    let limits = state.queue_limits();
    for i in 0..state.route.targets.len() {
        let Target { session, qos } = state.route.targets[i];
        // Reading is checked per subscriber, so a wildcard subscription leaks no denied topic.
        if state.allowed(session, &message.topic, Access::Read) {
            deliver(state, session, message, qos, false, limits);
        }
    }
}

/// Queues `message` to one session at `qos` with the RETAIN flag to send, and marks its
/// connection for writing if it is online.
pub fn deliver(
    state: &mut State,
    sid: SessionId,
    message: &Rc<Message>,
    qos: QoS,
    retain: bool,
    limits: crate::session::QueueLimits,
) {
    let Some(session) = state.sessions.get_mut(sid.0 as usize) else {
        return;
    };
    let conn = session.conn;
    if let Some(conn_id) = conn {
        // At the output cap QoS 0 is dropped rather than queued behind a slow reader.
        let over_cap = state
            .conns
            .get(conn_id.0)
            .is_some_and(|c| c.tx.len() >= state.config.max_output_buffer);
        if over_cap && qos == QoS::AtMostOnce {
            state.stats.messages_dropped += 1;
            return;
        }
    }
    match session.enqueue(Rc::clone(message), qos, retain, limits) {
        Enqueued::Queued => {
            state.stats.messages_sent += 1;
            if let Some(conn_id) = conn {
                state.mark_dirty(conn_id);
            }
        }
        Enqueued::Dropped => state.stats.messages_dropped += 1,
    }
}
