//! Will messages after the connection is gone: published at once, or delayed by the MQTT 5
//! Will Delay Interval (v5 3.1.3.2.2).
//!
//! A delayed will waits in `State::pending_wills` (at most one per session, so the list is
//! bounded by the number of sessions). It is published when its delay passes or when its
//! session ends, whichever comes first [MQTT-3.1.3-9]; a new connection to the session
//! cancels it. The broker's one-second sweep calls [`publish_due`].

use std::rc::Rc;
use std::time::{Duration, Instant};

use log::debug;

use crate::message::Message;
use crate::route;
use crate::session::SessionId;
use crate::state::State;

/// A will waiting for its delay to pass.
#[derive(Debug)]
pub struct PendingWill {
    /// When it is published.
    pub at: Instant,
    /// The session whose connection ended.
    pub session: SessionId,
    /// The will message.
    pub message: Rc<Message>,
}

/// Handles the will of connection that ended without a normal DISCONNECT. `session` is its
/// session if it outlives the connection: then a Will Delay Interval postpones the will,
/// to at most the session's end.
pub fn on_close(state: &mut State, session: Option<SessionId>, message: Rc<Message>) {
    let Some((sid, s)) =
        session.and_then(|sid| state.sessions.get(sid.0 as usize).map(|s| (sid, s)))
    else {
        route::publish(state, &message, None);
        return;
    };
    if s.will_delay == 0 {
        route::publish(state, &message, None);
        return;
    }
    if s.conn.is_some() {
        // Taken over: the new connection arrived within the delay [MQTT-3.1.3-9].
        debug!(
            "client {}: delayed will cancelled by a new connection",
            s.client_id
        );
        return;
    }
    let delay = s.will_delay.min(s.expiry_interval);
    let at = state.now + Duration::from_secs(u64::from(delay));
    cancel(state, sid);
    state.pending_wills.push(PendingWill {
        at,
        session: sid,
        message,
    });
}

/// Drops session `sid`'s delayed will: its client connected again.
pub fn cancel(state: &mut State, sid: SessionId) {
    state.pending_wills.retain(|w| w.session != sid);
}

/// Publishes session `sid`'s delayed will now: the session is ending.
pub fn publish_for(state: &mut State, sid: SessionId) {
    if let Some(i) = state.pending_wills.iter().position(|w| w.session == sid) {
        let will = state.pending_wills.swap_remove(i);
        route::publish(state, &will.message, None);
    }
}

/// Publishes every delayed will whose time has come at `state.now`.
pub fn publish_due(state: &mut State) {
    let now = state.now;
    while let Some(i) = state.pending_wills.iter().position(|w| w.at <= now) {
        let will = state.pending_wills.swap_remove(i);
        route::publish(state, &will.message, None);
    }
}

/// Publishes every delayed will: the broker is shutting down.
pub fn publish_all(state: &mut State) {
    for will in std::mem::take(&mut state.pending_wills) {
        route::publish(state, &will.message, None);
    }
}
