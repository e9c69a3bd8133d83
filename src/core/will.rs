//! Will messages after the connection is gone: published at once, or delayed by the MQTT 5
//! Will Delay Interval (v5 3.1.3.2.2).
//!
//! A delayed will waits in `State::pending_wills`, keyed by its session (at most one per
//! session, so the map is bounded by the number of sessions, and cancelling or publishing
//! one is O(1)). It is published when its delay passes or when its session ends
//! (`lifecycle::discard`), whichever comes first [MQTT-3.1.3-9]; a new connection to
//! the session cancels it. The broker's one-second sweep calls [`publish_due`]. A will's
//! Message Expiry Interval counts from when it is published.
//!
//! A connection taken over by a new one with its client id never reaches the pending map:
//! its will is settled at the takeover ([`on_takeover`]), where it is known whether the new
//! connection goes on with the session.
//!
//! A will is checked against its client's write access twice: at CONNECT (a will the client
//! may not publish is dropped there) and when it is published, since SIGHUP may have reloaded
//! the ACL in between. It carries its client's identity for that, as its session may be gone.

use std::rc::Rc;
use std::time::{Duration, Instant};

use log::debug;

use crate::auth::Access;
use crate::core::drops::DropReason;
use crate::core::message::Message;
use crate::core::route;
use crate::core::state::State;
use crate::ids::SessionId;
use crate::persist::record;

/// A connection's will, from its CONNECT.
#[derive(Debug)]
pub struct Will {
    /// The will message.
    pub message: Rc<Message>,
    /// Will Delay Interval in seconds (0 in 3.1.1).
    pub delay: u32,
    /// Message Expiry Interval, counted from when the will is published, not from CONNECT.
    pub message_expiry_interval: Option<u32>,
    /// The client id of the client that set it, for the ACL.
    pub client_id: Box<str>,
    /// The username that client authenticated with, for the ACL.
    pub username: Option<Box<str>>,
    /// The listener that client connected through, whose ACL applies.
    pub listener: u16,
}

impl Will {
    /// Whether its client may publish it, under the ACL as it is now (it may have been
    /// reloaded since CONNECT) and the broker's hold on `$SYS`.
    pub fn allowed(&self, state: &State) -> bool {
        let username = self.username.as_deref();
        let topic = &self.message.topic;
        state.allowed_as(
            self.listener,
            &self.client_id,
            username,
            topic,
            Access::Write,
        )
    }

    /// The message to publish at `now`, its expiry counted from `now`.
    pub fn into_message(mut self, now: Instant) -> Rc<Message> {
        if let (Some(secs), Some(message)) =
            (self.message_expiry_interval, Rc::get_mut(&mut self.message))
        {
            message.expires_at = Some(now + Duration::from_secs(u64::from(secs)));
        }
        self.message
    }
}

/// A will waiting for its delay to pass.
#[derive(Debug)]
pub struct PendingWill {
    /// When it is published.
    pub at: Instant,
    /// The will.
    pub will: Will,
}

/// Handles the will of a connection that ended without a normal DISCONNECT. `session` is
/// its session if it outlives the connection: then a Will Delay Interval postpones the
/// will, to at most the session's end. (A connection taken over has no session left here:
/// its will went through [`on_takeover`].)
pub fn on_close(state: &mut State, session: Option<SessionId>, will: Will) {
    let Some((sid, s)) =
        session.and_then(|sid| state.sessions.get(sid.0 as usize).map(|s| (sid, s)))
    else {
        publish(state, will);
        return;
    };
    if will.delay == 0 {
        publish(state, will);
        return;
    }
    let delay = will.delay.min(s.expiry_interval);
    let at = state.now + Duration::from_secs(u64::from(delay));
    state.pending_wills.insert(sid, PendingWill { at, will });
}

/// Handles the will of a connection taken over by a new connection with its client id
/// (v5 3.1.4), decided at the takeover: `resumed` says whether the new connection goes on
/// with the old connection's session. The old connection closes without DISCONNECT, so its
/// will is due [MQTT-3.1.2-8]: at once without a delay; with one, a new connection to the
/// session within the delay means it is never sent [MQTT-3.1.3-9], while a session that
/// ends here (a clean start, or one that ended with its connection) publishes it now, since
/// the session's end cuts the delay short (v5 3.1.3.2.2).
pub fn on_takeover(state: &mut State, will: Will, resumed: bool) {
    if resumed && will.delay > 0 {
        debug!(
            "client {}: delayed will cancelled by a new connection",
            will.client_id
        );
        return;
    }
    publish(state, will);
}

/// Drops session `sid`'s delayed will: its client connected again.
pub fn cancel(state: &mut State, sid: SessionId) {
    state.pending_wills.remove(&sid);
}

/// Publishes session `sid`'s delayed will now: the session is ending.
pub fn publish_for(state: &mut State, sid: SessionId) {
    if let Some(pending) = state.pending_wills.remove(&sid) {
        publish(state, pending.will);
    }
}

/// Publishes every delayed will whose time has come at `state.now`.
pub fn publish_due(state: &mut State) {
    let now = state.now;
    // One pass over the map, then in due order; nothing is collected when none is due.
    let mut due: Vec<PendingWill> = state
        .pending_wills
        .extract_if(|_, w| w.at <= now)
        .map(|(_, w)| w)
        .collect();
    due.sort_by_key(|w| w.at);
    for pending in due {
        publish(state, pending.will);
    }
}

/// Publishes every delayed will: the broker is shutting down.
pub fn publish_all(state: &mut State) {
    for (_, pending) in std::mem::take(&mut state.pending_wills) {
        publish(state, pending.will);
    }
}

/// Publishes `will` now (its Message Expiry Interval counts from now), if its client may
/// still publish to its topic.
pub fn publish(state: &mut State, will: Will) {
    gone(state, &will.client_id);
    if !will.allowed(state) {
        let topic = &will.message.topic;
        debug!(
            "client {}: will to {topic:?} not authorised",
            will.client_id
        );
        state
            .stats
            .dropped
            .count(DropReason::Acl, 1, &will.client_id);
        return;
    }
    let message = will.into_message(state.now);
    route::publish(state, &message, None);
}

/// Records that the will of `client_id`'s stored session is no longer pending (published
/// or discarded), so a restart does not publish it again.
pub fn gone(state: &mut State, client_id: &str) {
    if !state.journal.enabled() {
        return;
    }
    let key = state
        .client_ids
        .get(client_id, &state.sessions)
        .and_then(|sid| state.sessions.get(sid.0 as usize))
        .map_or(0, |s| s.store_key);
    if key != 0 {
        state.journal.key_only(record::WILL_GONE, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::core::lifecycle::{self, attach, detach};
    use crate::ids::ConnId;
    use crate::wire::{QoS, SubscriptionOptions};

    /// A state at `start` with "watcher" online, subscribed to `will/#`, and "dying", whose
    /// session lasts `session_expiry` seconds, gone offline; returns both sessions.
    fn setup(start: Instant, session_expiry: u32) -> (State, SessionId, SessionId) {
        let mut s = State::for_test(Config::default(), start);
        let (watcher, _) = attach(&mut s, ConnId::new(0, 0), "watcher", false);
        let options = SubscriptionOptions::at(QoS::AtLeastOnce);
        lifecycle::subscribe(&mut s, watcher, "will/#", options, 0).expect("allowed");
        let (dying, _) = attach(&mut s, ConnId::new(1, 0), "dying", false);
        s.sessions[dying.0 as usize].expiry_interval = session_expiry;
        detach(&mut s, dying, ConnId::new(1, 0));
        (s, watcher, dying)
    }

    /// A will to `will/dying` with a Will Delay Interval of `delay` seconds.
    fn will(delay: u32) -> Will {
        Will {
            message: Message::shared("will/dying", b"gone", QoS::AtLeastOnce, false),
            delay,
            message_expiry_interval: None,
            client_id: "dying".into(),
            username: None,
            listener: 0,
        }
    }

    /// How many wills `watcher` has been sent.
    fn received(s: &State, watcher: SessionId) -> usize {
        s.sessions[watcher.0 as usize].queued()
    }

    #[test]
    fn a_delayed_will_is_published_once_when_its_time_comes() {
        let start = Instant::now();
        let (mut s, watcher, dying) = setup(start, 60);
        on_close(&mut s, Some(dying), will(10));
        assert_eq!(received(&s, watcher), 0, "delayed, not published at close");
        s.now = start + Duration::from_millis(9_999);
        publish_due(&mut s);
        assert_eq!(received(&s, watcher), 0, "not before its time");
        s.now = start + Duration::from_secs(10);
        publish_due(&mut s);
        assert_eq!(received(&s, watcher), 1, "published when its time comes");
        s.now = start + Duration::from_secs(20);
        publish_due(&mut s);
        assert_eq!(received(&s, watcher), 1, "and only once");
        assert!(s.pending_wills.is_empty());
    }

    #[test]
    fn a_will_delay_is_cut_to_the_session_expiry() {
        let start = Instant::now();
        let (mut s, watcher, dying) = setup(start, 5);
        on_close(&mut s, Some(dying), will(3600));
        // v5 3.1.3.2.2: sent when the delay passes or the session ends, whichever is first.
        s.now = start + Duration::from_secs(4);
        publish_due(&mut s);
        assert_eq!(received(&s, watcher), 0);
        s.now = start + Duration::from_secs(5);
        publish_due(&mut s);
        assert_eq!(received(&s, watcher), 1);
    }

    #[test]
    fn discarding_the_session_publishes_its_delayed_will_at_once() {
        let start = Instant::now();
        let (mut s, watcher, dying) = setup(start, 60);
        on_close(&mut s, Some(dying), will(30));
        // [MQTT-3.1.3-9] the session ends first (here: discarded), so the will goes now.
        lifecycle::discard(&mut s, dying);
        assert_eq!(received(&s, watcher), 1);
        assert!(s.pending_wills.is_empty());
        s.now = start + Duration::from_secs(30);
        publish_due(&mut s);
        assert_eq!(received(&s, watcher), 1, "not again when its delay passes");
    }

    #[test]
    fn a_reconnect_within_the_delay_cancels_the_will() {
        let start = Instant::now();
        let (mut s, watcher, dying) = setup(start, 60);
        on_close(&mut s, Some(dying), will(30));
        s.now = start + Duration::from_secs(10);
        let (resumed, _) = attach(&mut s, ConnId::new(2, 0), "dying", true);
        assert_eq!(resumed, dying);
        cancel(&mut s, resumed);
        s.now = start + Duration::from_secs(60);
        publish_due(&mut s);
        assert_eq!(received(&s, watcher), 0, "[MQTT-3.1.3-9] never sent");
    }

    #[test]
    fn a_will_without_a_lasting_session_is_published_at_close() {
        let (mut s, watcher, _) = setup(Instant::now(), 60);
        on_close(&mut s, None, will(30));
        assert_eq!(received(&s, watcher), 1, "no session to wait with");
        assert!(s.pending_wills.is_empty());
    }

    #[test]
    fn a_will_the_client_may_not_publish_is_dropped_and_counted() {
        let mut s = State::for_test(Config::default(), Instant::now());
        let sys = Will {
            message: Message::shared("$SYS/broker/version", b"planted", QoS::AtMostOnce, true),
            ..will(0)
        };
        publish(&mut s, sys);
        assert!(s.retained.is_empty(), "not stored");
        assert_eq!(s.stats.dropped.get(DropReason::Acl), 1);
    }
}
