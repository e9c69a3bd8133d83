//! A session's life: attach (new, resumed, or taken over from another connection), detach,
//! expiry, discard, its subscriptions added and removed, and its messages queued,
//! acknowledged, and (inbound QoS 2) held until PUBREL. This is the only place a session's
//! durable state changes, so persistence has one place to hook in. Wills are scheduled
//! through `will` from here.
//!
//! Time is `state.now`, set by the loop; nothing here reads a clock or touches a socket.

use std::cmp::Reverse;

use log::{debug, info};

use crate::auth::Access;
use std::rc::Rc;

use crate::core::message::Message;
use crate::core::session::{AckOutcome, Attach, Enqueued, QueueLimits, Session};
use crate::core::state::{Close, State};
use crate::core::topic::split_shared;
use crate::core::tree::Subscriber;
use crate::core::will::{self, Will};
use crate::ids::{ConnId, SessionId};
use crate::persist::journal::{Journal, stored_session};
use crate::persist::record;
use crate::wire::{QoS, SubscriptionOptions, reason};

/// Attaches connection `conn` to the session for `client_id`: the existing one if `resume`
/// [MQTT-3.1.2-5], else a new one, the existing one discarded [MQTT-3.1.2-4]. A connection
/// still attached to the existing session is closed [MQTT-3.1.4-3] and its will settled by
/// `will::on_takeover`. Returns the session and whether an existing session was resumed.
pub fn attach(state: &mut State, conn: ConnId, client_id: &str, resume: bool) -> (SessionId, bool) {
    let existing = state.client_ids.get(client_id, &state.sessions);
    let old_will = existing.and_then(|old| take_over(state, old, client_id));
    let resumed = match existing {
        Some(old) if resume => state.sessions.get_mut(old.0 as usize).map(|session| {
            session.attach = Some(Attach::Network(conn));
            session.expires_at = None;
            session.detached_at = None;
            old
        }),
        Some(old) => {
            discard(state, old);
            None
        }
        None => None,
    };
    if let Some(old_will) = old_will {
        will::on_takeover(state, old_will, resumed.is_some());
    }
    if let Some(sid) = resumed {
        return (sid, true);
    }
    let mut session = Session::new(client_id.into(), 0);
    session.attach = Some(Attach::Network(conn));
    let sid = SessionId(state.sessions.insert(session) as u32);
    state.client_ids.insert(sid, &state.sessions);
    (sid, false)
}

/// Detaches session `sid` from the connection that holds it, if any, and has the loop close
/// that connection [MQTT-3.1.4-3]; returns that connection's will, which is now the
/// takeover's to settle rather than the close's.
fn take_over(state: &mut State, sid: SessionId, client_id: &str) -> Option<Will> {
    let Attach::Network(old_conn) = state.sessions.get_mut(sid.0 as usize)?.attach.take()?;
    debug!("client {client_id} taken over by a new connection");
    state.to_close.push((old_conn, Close::TakenOver));
    let conn = state.conns.get_mut(old_conn)?;
    conn.session = None;
    conn.will.take().map(|will| *will)
}

/// Detaches session `sid` from its closing connection `conn`: a session that ends with its
/// connection is discarded, any other starts its expiry clock. Nothing happens if the
/// session has moved to another connection (a takeover).
pub fn detach(state: &mut State, sid: SessionId, conn: ConnId) {
    let persistent = state.config.persistent_client_expiration;
    let now = state.now;
    let Some(session) = state.sessions.get_mut(sid.0 as usize) else {
        return;
    };
    if session.conn() != Some(conn) {
        return;
    }
    session.attach = None;
    if session.bridge.is_some() {
        // A bridge's local session lasts as long as the bridge is configured: what is
        // published while the link is down waits in its queue.
        return;
    }
    if session.ends_with_connection() {
        discard(state, sid);
    } else {
        session.expires_at = session.expiry_deadline(now, persistent);
        session.detached_at = Some(now);
        arm_expiry(state, sid);
        bound_offline_sessions(state);
    }
}

/// Keeps the offline sessions within `max_sessions`: past it, the one that would expire
/// soonest is expired now (one that never expires goes after every one that does; among
/// those, the longest disconnected), logged and counted as expired. The walk is made only
/// when there are more sessions in all than the bound.
pub fn bound_offline_sessions(state: &mut State) {
    let max = state.config.max_sessions;
    if max == 0 || state.sessions.len() <= max {
        return;
    }
    let mut offline: Vec<_> = (state.sessions.iter())
        .filter(|(_, s)| !s.is_online() && s.bridge.is_none())
        .map(|(key, s)| {
            let never = s.expires_at.is_none();
            (never, s.expires_at, s.detached_at, SessionId(key as u32))
        })
        .collect();
    let Some(excess) = offline.len().checked_sub(max).filter(|&n| n > 0) else {
        return;
    };
    offline.sort_unstable();
    for &(.., sid) in &offline[..excess] {
        if let Some(session) = state.sessions.get(sid.0 as usize) {
            info!(
                "client {}: session expired: more than max_sessions ({max}) offline sessions",
                session.client_id
            );
        }
        state.stats.clients_expired += 1;
        discard(state, sid);
    }
}

/// Discards every offline session whose expiry has come at `state.now`.
pub fn expire(state: &mut State) {
    let now = state.now;
    while let Some(&Reverse((at, sid))) = state.session_expiry.peek() {
        if at > now {
            break;
        }
        state.session_expiry.pop();
        // The entry may be stale (the session came back, or ended and its slot was reused):
        // the session's own expiry time decides.
        let Some(session) = state.sessions.get(sid.0 as usize) else {
            continue;
        };
        if session.is_online() || session.expires_at.is_none_or(|at| at > now) {
            continue;
        }
        debug!("client {}: session expired", session.client_id);
        state.stats.clients_expired += 1;
        discard(state, sid);
    }
    // Clients that come and go leave an entry per visit: drop the stale ones once they
    // outnumber the sessions.
    if state.session_expiry.len() > 2 * state.sessions.len() + STALE_KEPT {
        let sessions = &state.sessions;
        state.session_expiry.retain(|&Reverse((at, sid))| {
            (sessions.get(sid.0 as usize))
                .is_some_and(|s| !s.is_online() && s.expires_at == Some(at))
        });
        state.session_expiry.shrink_to_fit();
    }
}

/// Stale entries `expire` lets the expiry queue hold before dropping them.
const STALE_KEPT: usize = 256;

/// Queues session `sid`'s expiry time, if it has one, for `expire` (every place that sets
/// an offline session's `expires_at` calls this).
pub fn arm_expiry(state: &mut State, sid: SessionId) {
    if let Some(at) = (state.sessions.get(sid.0 as usize)).and_then(|s| s.expires_at) {
        state.session_expiry.push(Reverse((at, sid)));
    }
}

/// Ends a session: its delayed will, if any, is published first [MQTT-3.1.3-9], then the
/// session and all its subscriptions are removed. Every way a session ends comes here,
/// so no will outlives its session (whose slot a new session may reuse).
pub fn discard(state: &mut State, sid: SessionId) {
    will::publish_for(state, sid);
    // Unindexed first: the index compares through the slab.
    if let Some(session) = state.sessions.get(sid.0 as usize) {
        state
            .client_ids
            .remove(&session.client_id, sid, &state.sessions);
    }
    let Some(session) = state.sessions.try_remove(sid.0 as usize) else {
        return;
    };
    if session.store_key != 0 {
        state
            .journal
            .key_only(record::SESSION_END, session.store_key);
    }
    state.walks.cancel_session(sid);
    for (raw_filter, _, _) in session.subscriptions() {
        unindex(state, sid, raw_filter);
    }
}

/// Adds or replaces one subscription of session `sid`, if the ACL and
/// `max_subscriptions_per_client` allow it; returns the granted QoS and whether it replaced
/// an existing subscription, or a failure reason code.
pub fn subscribe(
    state: &mut State,
    sid: SessionId,
    raw_filter: &str,
    options: SubscriptionOptions,
    subscription_id: u32,
) -> Result<(QoS, bool), u8> {
    let split =
        split_shared(raw_filter, state.topic_limits()).map_err(|_| reason::TOPIC_FILTER_INVALID)?;
    if !state.allowed(sid, split.filter, Access::Subscribe) {
        return Err(reason::NOT_AUTHORIZED);
    }
    // A session's subscriptions are bounded: a peer cannot grow the tree without limit.
    let max = state.config.max_subscriptions_per_client;
    let session = state
        .sessions
        .get(sid.0 as usize)
        .ok_or(reason::UNSPECIFIED_ERROR)?;
    if max != 0 && session.subscription_count() >= max && !session.has_subscription(raw_filter) {
        return Err(reason::QUOTA_EXCEEDED);
    }
    let existed = state.tree.subscribe(
        split.filter,
        split.share_group,
        Subscriber {
            session: sid,
            options,
            subscription_id,
        },
    );
    let session = state
        .sessions
        .get_mut(sid.0 as usize)
        .ok_or(reason::UNSPECIFIED_ERROR)?;
    session.set_subscription(raw_filter, options, subscription_id);
    if session.store_key != 0 {
        let key = session.store_key;
        (state.journal).subscribe(key, raw_filter, options, subscription_id);
    }
    Ok((options.qos, existed))
}

/// Removes one subscription of session `sid` (and any retained walk for it); returns
/// whether it existed.
pub fn unsubscribe(state: &mut State, sid: SessionId, raw_filter: &str) -> bool {
    let removed = unindex(state, sid, raw_filter);
    if let Some(session) = state.sessions.get_mut(sid.0 as usize) {
        session.remove_subscription(raw_filter);
        if session.store_key != 0 {
            state.journal.unsubscribe(session.store_key, raw_filter);
        }
    }
    state.walks.cancel(sid, raw_filter);
    removed
}

/// Queues `message` to `session` for delivery at `qos` (see `Session::enqueue`); every
/// message a session is given comes through here (from `route::deliver`). A stored session
/// records what it queues, except QoS 0 for an online client (the entries that count
/// toward the queue's bound are exactly the recorded ones). Without `fsync`, what an online
/// client is given is recorded only if it is still held at the next `log_deferred`, so a
/// delivery acknowledged at once costs no disk.
#[allow(clippy::too_many_arguments)]
pub fn enqueue(
    sid: SessionId,
    session: &mut Session,
    message: &Rc<Message>,
    qos: QoS,
    retain: bool,
    subscription_ids: &[u32],
    limits: QueueLimits,
    journal: &mut Journal,
) -> Enqueued {
    let recorded = session.store_key != 0 && (qos != QoS::AtMostOnce || !session.is_online());
    let enqueued = session.enqueue(Rc::clone(message), qos, retain, subscription_ids, limits);
    if recorded && enqueued == Enqueued::Queued {
        if journal.defers() && (session.is_online() || session.has_deferred()) {
            if session.defer_last() {
                journal.defer(sid);
            }
        } else {
            let key = session.store_key;
            journal.enqueue(key, message, qos, retain, subscription_ids);
        }
    }
    enqueued
}

/// Records what stored sessions were given and still hold since the last call (see
/// `enqueue`). Only a store defers records: without the `persistence` feature there is none.
#[cfg(feature = "persistence")]
pub fn log_deferred(state: &mut State) {
    let State {
        sessions, journal, ..
    } = state;
    for sid in journal.take_deferred() {
        if let Some(session) = sessions.get_mut(sid.0 as usize) {
            session.log_deferred(journal);
        }
    }
}

/// Records persistent session `sid` (and the will of the connection that just attached to
/// it) in the journal: once it outlives its connection, and again on every CONNECT to it.
pub fn record_session(state: &mut State, sid: SessionId, will: Option<&Will>) {
    let State {
        sessions, journal, ..
    } = state;
    if !journal.enabled() {
        return;
    }
    let Some(session) = sessions.get_mut(sid.0 as usize) else {
        return;
    };
    if session.store_key == 0 {
        if session.ends_with_connection() {
            return;
        }
        session.store_key = journal.new_key();
    }
    let stored = stored_session(session, will, journal);
    journal.append(record::SESSION, |out| record::put_session(out, &stored));
}

/// An acknowledgement from the client of a message the broker sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acknowledgement {
    /// PUBACK: a QoS 1 message is done.
    Puback,
    /// PUBREC, accepting (the flow goes on to PUBREL) or refusing (v5, it ends here).
    Pubrec {
        /// Whether the reason code is below 0x80.
        accepted: bool,
    },
    /// PUBCOMP: a QoS 2 message is done.
    Pubcomp,
}

/// Applies an acknowledgement from session `sid`'s client to its inflight window.
pub fn acknowledge(
    state: &mut State,
    sid: SessionId,
    ack: Acknowledgement,
    packet_id: u16,
) -> AckOutcome {
    let Some(session) = state.sessions.get_mut(sid.0 as usize) else {
        return AckOutcome::UnknownPacketId;
    };
    let logged = session.store_key != 0 && session.inflight_logged(packet_id);
    let (outcome, kind) = match ack {
        Acknowledgement::Puback => (session.on_puback(packet_id), record::ACKED),
        Acknowledgement::Pubrec { accepted: true } => {
            (session.on_pubrec(packet_id, true), record::PUBREC)
        }
        Acknowledgement::Pubrec { accepted: false } => {
            (session.on_pubrec(packet_id, false), record::ACKED)
        }
        Acknowledgement::Pubcomp => (session.on_pubcomp(packet_id), record::ACKED),
    };
    if outcome == AckOutcome::Done && logged {
        state.journal.packet(kind, session.store_key, packet_id);
    }
    outcome
}

/// Records inbound QoS 2 `packet_id` of session `sid` as awaiting PUBREL; false if it
/// already was (a resend, not to be routed again) [MQTT-4.3.3-9].
pub fn receive_qos2(state: &mut State, sid: SessionId, packet_id: u16) -> bool {
    let Some(session) = state.sessions.get_mut(sid.0 as usize) else {
        return false;
    };
    let new = session.receive_qos2(packet_id);
    if new && session.store_key != 0 {
        (state.journal).packet(record::QOS2_IN, session.store_key, packet_id);
    }
    new
}

/// Releases inbound QoS 2 `packet_id` of session `sid` (PUBREL); false if it was not held.
pub fn release_qos2(state: &mut State, sid: SessionId, packet_id: u16) -> bool {
    let Some(session) = state.sessions.get_mut(sid.0 as usize) else {
        return false;
    };
    let released = session.release_qos2(packet_id);
    if released && session.store_key != 0 {
        (state.journal).packet(record::QOS2_RELEASED, session.store_key, packet_id);
    }
    released
}

/// Takes session `sid`'s subscription to `raw_filter` out of the tree.
fn unindex(state: &mut State, sid: SessionId, raw_filter: &str) -> bool {
    match split_shared(raw_filter, state.topic_limits()) {
        Ok(split) => state.tree.unsubscribe(split.filter, split.share_group, sid),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::config::Config;

    /// A broker state with the default configuration, at time `now`.
    fn state(now: Instant) -> State {
        State::for_test(Config::default(), now)
    }

    fn options(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions::at(qos)
    }

    /// The sessions subscribed to topic `name`.
    fn subscribers(state: &mut State, name: &str) -> Vec<SessionId> {
        let (mut subs, mut groups) = (Vec::new(), Vec::new());
        state.tree.collect(name, &mut subs, &mut groups);
        subs.iter().map(|s| s.session).collect()
    }

    #[test]
    fn attach_creates_resumes_or_replaces_a_session() {
        let mut s = state(Instant::now());
        let (first, resumed) = attach(&mut s, ConnId::new(0, 0), "c", true);
        assert!(!resumed, "nothing to resume");
        s.sessions[first.0 as usize].expiry_interval = 60;
        detach(&mut s, first, ConnId::new(0, 0));
        let (again, resumed) = attach(&mut s, ConnId::new(1, 1), "c", true);
        assert_eq!((again, resumed), (first, true));
        let (fresh, resumed) = attach(&mut s, ConnId::new(2, 2), "c", false);
        assert!(!resumed, "clean start discards [MQTT-3.1.2-4]");
        assert_eq!(s.sessions.len(), 1);
        assert_eq!(s.client_ids.get("c", &s.sessions), Some(fresh));
        // The connection the session was taken from is to be closed as taken over.
        assert!(s.to_close.contains(&(ConnId::new(1, 1), Close::TakenOver)));
    }

    #[test]
    fn detach_discards_a_clean_session_and_starts_the_clock_of_a_lasting_one() {
        let start = Instant::now();
        let mut s = state(start);
        let (clean, _) = attach(&mut s, ConnId::new(0, 0), "clean", false);
        subscribe(&mut s, clean, "t/#", options(QoS::AtMostOnce), 0).unwrap();
        detach(&mut s, clean, ConnId::new(0, 0));
        assert!(s.sessions.get(clean.0 as usize).is_none());
        assert!(
            subscribers(&mut s, "t/x").is_empty(),
            "its subscriptions went with it"
        );

        let (lasting, _) = attach(&mut s, ConnId::new(1, 1), "lasting", false);
        s.sessions[lasting.0 as usize].expiry_interval = 10;
        subscribe(&mut s, lasting, "t/#", options(QoS::AtLeastOnce), 0).unwrap();
        // A detach from a connection the session no longer has changes nothing.
        detach(&mut s, lasting, ConnId::new(9, 9));
        assert!(s.sessions[lasting.0 as usize].is_online());
        detach(&mut s, lasting, ConnId::new(1, 1));
        assert_eq!(
            subscribers(&mut s, "t/x"),
            [lasting],
            "offline, still collecting"
        );
        s.now = start + Duration::from_secs(9);
        expire(&mut s);
        assert!(s.sessions.get(lasting.0 as usize).is_some());
        s.now = start + Duration::from_secs(10);
        expire(&mut s);
        assert!(s.sessions.get(lasting.0 as usize).is_none(), "expired");
        assert!(subscribers(&mut s, "t/x").is_empty());
        assert_eq!(s.client_ids.get("lasting", &s.sessions), None);
    }

    #[test]
    fn past_max_sessions_the_offline_session_expiring_soonest_goes_first() {
        let start = Instant::now();
        let config = Config {
            max_sessions: 2,
            ..Config::default()
        };
        let mut s = State::for_test(config, start);
        // (client, Session Expiry Interval): "never" never expires, so it goes last.
        let clients = [
            ("never", crate::core::session::NEVER_EXPIRES),
            ("long", 600),
            ("short", 60),
        ];
        let mut sids = Vec::new();
        for (i, (client, interval)) in clients.into_iter().enumerate() {
            let conn = ConnId::new(i, i as u32);
            let (sid, _) = attach(&mut s, conn, client, false);
            s.sessions[sid.0 as usize].expiry_interval = interval;
            sids.push((sid, conn));
        }
        for (i, &(sid, conn)) in sids.iter().enumerate() {
            s.set_now(start + Duration::from_secs(i as u64));
            detach(&mut s, sid, conn);
        }
        let left: Vec<&str> = s.sessions.iter().map(|(_, x)| &*x.client_id).collect();
        assert_eq!(
            left,
            ["never", "long"],
            "\"short\" would have expired first"
        );
        assert_eq!(s.stats.clients_expired, 1);
        // An online session does not count against the bound.
        let (online, _) = attach(&mut s, ConnId::new(7, 7), "online", false);
        bound_offline_sessions(&mut s);
        assert_eq!(s.sessions.len(), 3);
        assert!(s.sessions[online.0 as usize].is_online());
    }

    #[test]
    fn expiry_goes_by_each_sessions_latest_time_not_by_stale_entries() {
        let start = Instant::now();
        let mut s = state(start);
        let (sid, _) = attach(&mut s, ConnId::new(0, 0), "c", false);
        s.sessions[sid.0 as usize].expiry_interval = 60;
        detach(&mut s, sid, ConnId::new(0, 0));
        // Back at 30 s and gone again at 50 s: the entry for 60 s is stale.
        s.set_now(start + Duration::from_secs(30));
        attach(&mut s, ConnId::new(1, 1), "c", false);
        s.sessions[sid.0 as usize].expiry_interval = 60;
        s.set_now(start + Duration::from_secs(50));
        detach(&mut s, sid, ConnId::new(1, 1));
        s.set_now(start + Duration::from_secs(61));
        expire(&mut s);
        assert_eq!(s.sessions.len(), 1, "expires 60 s after its last visit");
        assert_eq!(s.session_expiry.len(), 1, "the stale entry is gone");
        s.set_now(start + Duration::from_secs(110));
        expire(&mut s);
        assert!(s.sessions.is_empty());
        assert_eq!(s.stats.clients_expired, 1);
    }

    #[test]
    fn subscribe_and_unsubscribe_keep_the_tree_and_the_session_in_step() {
        let mut s = state(Instant::now());
        let (sid, _) = attach(&mut s, ConnId::new(0, 0), "c", false);
        assert_eq!(
            subscribe(&mut s, sid, "a/+", options(QoS::ExactlyOnce), 7),
            Ok((QoS::ExactlyOnce, false))
        );
        assert_eq!(
            subscribe(&mut s, sid, "a/+", options(QoS::AtMostOnce), 7),
            Ok((QoS::AtMostOnce, true)),
            "replaced"
        );
        assert_eq!(
            subscribe(&mut s, sid, "a/#/b", options(QoS::AtMostOnce), 0),
            Err(reason::TOPIC_FILTER_INVALID)
        );
        assert_eq!(subscribers(&mut s, "a/x"), [sid]);
        assert!(s.sessions[sid.0 as usize].has_subscription("a/+"));
        assert!(unsubscribe(&mut s, sid, "a/+"));
        assert!(!unsubscribe(&mut s, sid, "a/+"), "already gone");
        assert!(subscribers(&mut s, "a/x").is_empty());
        assert!(!s.sessions[sid.0 as usize].has_subscription("a/+"));
    }

    #[test]
    fn max_subscriptions_per_client_is_answered_per_filter() {
        let mut s = state(Instant::now());
        s.config.max_subscriptions_per_client = 1;
        let (sid, _) = attach(&mut s, ConnId::new(0, 0), "c", false);
        assert!(subscribe(&mut s, sid, "a", options(QoS::AtMostOnce), 0).is_ok());
        assert_eq!(
            subscribe(&mut s, sid, "b", options(QoS::AtMostOnce), 0),
            Err(reason::QUOTA_EXCEEDED)
        );
        assert!(
            subscribe(&mut s, sid, "a", options(QoS::AtLeastOnce), 0).is_ok(),
            "replacing one is not a new one"
        );
    }
}
