//! Delivering a SUBSCRIBE's retained messages across loop turns.
//!
//! A subscription to `#` on a gateway holding 100,000 retained states must get all of them,
//! and must not stall every other client while it does. So SUBSCRIBE only starts a walk: a
//! cursor into the retained store (the last topic visited). Each loop turn, `step` moves each
//! walk forward by a bounded slice, while its client has room: its backlog under
//! `max_output_buffer` (QoS 0) and room in its session queue (QoS 1/2, which then wait for
//! the inflight window as any message does). The client draining its output, or
//! acknowledging, is what makes room and so what drives the walk on.
//!
//! Messages go out in topic order, with RETAIN set [MQTT-3.3.1-6] [MQTT-3.8.4-3], at the
//! lower of the message's and the granted QoS, each checked against the ACL for reading.
//! A new SUBSCRIBE of the same filter restarts its walk; UNSUBSCRIBE cancels it; a walk of an
//! offline session waits for it to reconnect.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::rc::Rc;

use crate::auth::Access;
use crate::core::drops::DropReason;
use crate::core::message::Message;
use crate::core::retain::Scan;
use crate::core::route::{Sender, deliver};
use crate::core::state::State;
use crate::ids::SessionId;
use crate::wire::QoS;

/// Most retained messages one walk queues per loop turn.
const MESSAGES_PER_TURN: usize = 256;
/// Most stored topics one walk looks at per loop turn (a sparse filter visits many).
const TOPICS_PER_TURN: usize = 4096;

/// Where one subscription's retained messages stand; keyed in `Walks` by the session and
/// the topic filter (never a shared subscription: those get no retained messages).
#[derive(Debug)]
struct Walk {
    granted: QoS,
    subscription_id: u32,
    /// The last topic visited; `None` before the first.
    cursor: Option<Rc<str>>,
    /// The journal batch its SUBACK waits for: no retained message goes out before it.
    after: u64,
}

/// The walks in progress, by (session, filter): starting, replacing or cancelling one is a
/// lookup, however many filters one SUBSCRIBE carries.
#[derive(Debug, Default)]
pub struct Walks {
    map: BTreeMap<(SessionId, Box<str>), Walk>,
    /// Messages of the walk being stepped (reused).
    batch: Vec<Rc<Message>>,
}

impl Walks {
    /// Starts delivering the retained messages matching `filter` to session `session`,
    /// replacing a walk of the same filter that was under way, once journal batch `after`
    /// (that of its SUBACK, 0 for none) is durable.
    pub fn start(
        &mut self,
        session: SessionId,
        filter: &str,
        granted: QoS,
        subscription_id: u32,
        after: u64,
    ) {
        let walk = Walk {
            granted,
            subscription_id,
            cursor: None,
            after,
        };
        self.map.insert((session, filter.into()), walk);
    }

    /// Stops the walk of `filter` for `session`, if one is under way.
    pub fn cancel(&mut self, session: SessionId, filter: &str) {
        if !self.map.is_empty() {
            self.map.remove(&(session, Box::from(filter)));
        }
    }

    /// Stops every walk of `session` (it ended).
    pub fn cancel_session(&mut self, session: SessionId) {
        if !self.map.is_empty() {
            self.map.retain(|(s, _), _| *s != session);
        }
    }

    /// Whether any walk is under way.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Moves every walk whose client has room forward by one slice.
pub fn step(state: &mut State) {
    let mut map = std::mem::take(&mut state.walks.map);
    map.retain(|(sid, filter), walk| !step_one(state, *sid, filter, walk));
    // Walks started while stepping (none today) join the rest.
    map.append(&mut state.walks.map);
    state.walks.map = map;
}

/// Whether a walk's client has room for more now (after this turn's output was written), so
/// the loop should run another turn at once rather than wait for an event.
pub fn any_ready(state: &State) -> bool {
    (state.walks.map.iter()).any(|((sid, _), walk)| room(state, *sid, walk).is_some())
}

/// Moves session `sid`'s walk of `filter` forward; returns whether it is finished.
fn step_one(state: &mut State, sid: SessionId, filter: &str, walk: &mut Walk) -> bool {
    let Some(room) = room(state, sid, walk) else {
        return false;
    };
    let mut batch = std::mem::take(&mut state.walks.batch);
    batch.clear();
    let want = room.min(MESSAGES_PER_TURN);
    let scan = state
        .retained
        .scan(filter, walk.cursor.as_deref(), TOPICS_PER_TURN, |m| {
            if batch.len() == want {
                return ControlFlow::Break(());
            }
            batch.push(Rc::clone(m));
            ControlFlow::Continue(())
        });
    let ids: &[u32] = if walk.subscription_id == 0 {
        &[]
    } else {
        &[walk.subscription_id]
    };
    let mut done = scan == Scan::Done;
    let mut stopped_at = None;
    let from = Sender::new(state, None);
    for (i, message) in batch.iter().enumerate() {
        // An expired retained message is not sent [MQTT-3.3.2-5].
        if message.expired(state.now) {
            continue;
        }
        if !state.allowed(sid, &message.topic, Access::Read) {
            state.count_drop(sid, DropReason::Acl, 1);
            continue;
        }
        let qos = message.qos.min(walk.granted);
        if qos == QoS::AtMostOnce && room_for_qos0(state, sid) == Some(false) {
            stopped_at = Some(i);
            break;
        }
        deliver(state, sid, message, qos, true, ids, &from);
    }
    if let Some(i) = stopped_at {
        // Resume with message `i`: the cursor is exclusive, so it stays on the one before it
        // (or where it was, if `i` is the first).
        if i > 0 {
            walk.cursor = Some(Rc::clone(&batch[i - 1].topic));
        }
        done = false;
    } else if let Scan::More(cursor) = scan {
        walk.cursor = cursor;
    }
    batch.clear();
    state.walks.batch = batch;
    done
}

/// How many messages the walk's session can take now: `None` if none (offline, output full
/// or, for a QoS 1/2 walk, queue full).
fn room(state: &State, sid: SessionId, walk: &Walk) -> Option<usize> {
    let session = state.sessions.get(sid.0 as usize)?;
    session.conn()?;
    if walk.after > state.journal.durable_batch() {
        return None;
    }
    if room_for_qos0(state, sid) != Some(true) {
        return None;
    }
    let room = if walk.granted == QoS::AtMostOnce {
        usize::MAX
    } else {
        session.queue_room(state.queue_limits())
    };
    (room > 0).then_some(room)
}

/// Whether the online session's backlog is under `max_output_buffer`; `None` if offline.
fn room_for_qos0(state: &State, sid: SessionId) -> Option<bool> {
    let conn = state.sessions.get(sid.0 as usize)?.conn()?;
    let backlog = state.output_backlog(conn)?;
    Some(backlog < state.config.max_output_buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_are_started_replaced_and_cancelled_by_session_and_filter() {
        let mut walks = Walks::default();
        // One SUBSCRIBE may carry tens of thousands of filters: each start is a lookup, not
        // a pass over every walk under way (which made such a SUBSCRIBE quadratic).
        for i in 0..20_000 {
            walks.start(SessionId(1), &format!("f/{i}"), QoS::AtMostOnce, 0, 0);
        }
        walks.start(SessionId(2), "f/0", QoS::AtMostOnce, 0, 0);
        assert_eq!(walks.map.len(), 20_001);
        walks.start(SessionId(1), "f/0", QoS::AtLeastOnce, 7, 0);
        assert_eq!(
            walks.map.len(),
            20_001,
            "a new SUBSCRIBE of the filter restarts it"
        );
        let restarted = &walks.map[&(SessionId(1), Box::from("f/0"))];
        assert_eq!(
            (restarted.granted, restarted.subscription_id),
            (QoS::AtLeastOnce, 7)
        );
        walks.cancel(SessionId(1), "f/1");
        assert_eq!(walks.map.len(), 20_000);
        walks.cancel_session(SessionId(1));
        assert_eq!(walks.map.len(), 1, "only session 2's walk is left");
    }
}
