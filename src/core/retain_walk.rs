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

/// One subscription's retained messages still to send.
#[derive(Debug)]
struct Walk {
    session: SessionId,
    /// The topic filter (never a shared subscription: those get no retained messages).
    filter: Box<str>,
    granted: QoS,
    subscription_id: u32,
    /// The last topic visited; `None` before the first.
    cursor: Option<Rc<str>>,
}

/// The walks in progress.
#[derive(Debug, Default)]
pub struct Walks {
    list: Vec<Walk>,
    /// Messages of the walk being stepped (reused).
    batch: Vec<Rc<Message>>,
}

impl Walks {
    /// Starts delivering the retained messages matching `filter` to session `session`,
    /// replacing a walk of the same filter that was under way.
    pub fn start(&mut self, session: SessionId, filter: &str, granted: QoS, subscription_id: u32) {
        self.cancel(session, filter);
        self.list.push(Walk {
            session,
            filter: filter.into(),
            granted,
            subscription_id,
            cursor: None,
        });
    }

    /// Stops the walk of `filter` for `session`, if one is under way.
    pub fn cancel(&mut self, session: SessionId, filter: &str) {
        self.list
            .retain(|w| !(w.session == session && *w.filter == *filter));
    }

    /// Stops every walk of `session` (it ended).
    pub fn cancel_session(&mut self, session: SessionId) {
        self.list.retain(|w| w.session != session);
    }

    /// Whether any walk is under way.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Moves every walk whose client has room forward by one slice.
pub fn step(state: &mut State) {
    let mut list = std::mem::take(&mut state.walks.list);
    list.retain_mut(|walk| !step_one(state, walk));
    // Walks started while stepping (none today) are kept behind the stepped ones.
    list.append(&mut state.walks.list);
    state.walks.list = list;
}

/// Whether a walk's client has room for more now (after this turn's output was written), so
/// the loop should run another turn at once rather than wait for an event.
pub fn any_ready(state: &State) -> bool {
    state.walks.list.iter().any(|w| room(state, w).is_some())
}

/// Moves one walk forward; returns whether it is finished.
fn step_one(state: &mut State, walk: &mut Walk) -> bool {
    let Some(room) = room(state, walk) else {
        return false;
    };
    let mut batch = std::mem::take(&mut state.walks.batch);
    batch.clear();
    let want = room.min(MESSAGES_PER_TURN);
    let scan = state
        .retained
        .scan(&walk.filter, walk.cursor.as_deref(), TOPICS_PER_TURN, |m| {
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
    for message in &batch {
        // An expired retained message is not sent [MQTT-3.3.2-5].
        if message.expired(state.now) {
            continue;
        }
        if !state.allowed(walk.session, &message.topic, Access::Read) {
            state.count_drop(walk.session, DropReason::Acl, 1);
            continue;
        }
        let qos = message.qos.min(walk.granted);
        if qos == QoS::AtMostOnce && room_for_qos0(state, walk.session) == Some(false) {
            stopped_at = Some(Rc::clone(&message.topic));
            break;
        }
        deliver(state, walk.session, message, qos, true, ids, &from);
    }
    if let Some(resume_before) = stopped_at {
        // Resume with this message: the cursor is exclusive, so step back to the one before
        // it in the batch (or keep the old cursor if it was the first).
        let i = batch
            .iter()
            .position(|m| Rc::ptr_eq(&m.topic, &resume_before))
            .unwrap_or(0);
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
fn room(state: &State, walk: &Walk) -> Option<usize> {
    let session = state.sessions.get(walk.session.0 as usize)?;
    session.conn()?;
    if room_for_qos0(state, walk.session) != Some(true) {
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
