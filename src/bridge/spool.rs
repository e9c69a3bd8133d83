//! A bridge's spool: its local session, which holds what waits for the remote (queued and
//! in-flight QoS 1/2 messages, their packet ids and QoS 2 stage).
//!
//! With persistence on and `local_cleansession false` (the default when `cleansession` is
//! false) the session is a stored one, tagged in the store with the bridge's `connection`
//! name (a BRIDGE record), so it survives a restart or `kill -9` and a changed
//! `local_clientid` takes it over rather than orphaning it. Its subscriptions always come
//! from the current configuration; what it holds is kept, in order. With
//! `local_cleansession true` nothing of it is stored, and a spool stored before is
//! discarded. A message leaves the spool only when the remote acknowledges it (PUBACK,
//! PUBCOMP: `lifecycle::acknowledge` records that), or when the queue policy evicts it.

use log::{info, warn};

use crate::config::{BridgeConfig, QueuePolicy};
use crate::core::drops::DropReason;
use crate::core::lifecycle;
use crate::core::message::Message;
use crate::core::session::{NEVER_EXPIRES, QueueLimits, Session};
use crate::core::state::State;
use crate::ids::SessionId;
use crate::persist::record;
use crate::wire::{QoS, RetainHandling, SubscriptionOptions, Version};

/// The sessions the store gave back for each configured bridge (by index), taken out of
/// the client-id index so that ids can be reassigned without two sessions sharing one.
pub fn restored(state: &mut State) -> Vec<Option<SessionId>> {
    let mut found = vec![None; state.config.bridges.len()];
    for (key, session) in state.sessions.iter() {
        if let Some(slot) = session.bridge.and_then(|i| found.get_mut(usize::from(i))) {
            *slot = Some(SessionId(key as u32));
        }
    }
    for sid in found.iter().flatten() {
        if let Some(session) = state.sessions.get(sid.0 as usize) {
            let id = session.client_id.clone();
            state.client_ids.remove(&id, *sid, &state.sessions);
        }
    }
    found
}

/// Bridge `i`'s local session for `config`: `restored` (its spool from the store) under the
/// configured `local_clientid`, or a new one; stored if the spool is to be kept on disk;
/// subscribed to the configured `out`/`both` topics and to nothing else.
pub fn local_session(
    state: &mut State,
    i: usize,
    config: &BridgeConfig,
    restored: Option<SessionId>,
) -> SessionId {
    let keep = !config.local_clean();
    let restored = match restored {
        Some(sid) if !keep => {
            let held = state
                .sessions
                .get(sid.0 as usize)
                .map_or(0, Session::stored_len);
            info!(
                "bridge {}: local_cleansession true: {held} stored messages discarded",
                config.name
            );
            lifecycle::discard(state, sid);
            None
        }
        other => other,
    };
    let sid = match restored {
        Some(sid) => {
            if let Some(session) = state.sessions.get(sid.0 as usize) {
                let held = session.stored_len();
                info!("bridge {}: {held} stored messages to send", config.name);
            }
            sid
        }
        None => {
            let session = Session::new(config.local_clientid.as_str().into(), NEVER_EXPIRES);
            SessionId(state.sessions.insert(session) as u32)
        }
    };
    adopt(state, i, config, sid);
    sid
}

/// Makes `sid` (not in the client-id index) bridge `i`'s local session for `config`: named
/// `local_clientid` (a session already holding that id, a client's, gives way), stored under
/// the bridge's name if the spool is to be kept on disk, and subscribed to the configured
/// `out`/`both` topics and to nothing else. Used at start and when SIGHUP changes a block.
pub(crate) fn adopt(state: &mut State, i: usize, config: &BridgeConfig, sid: SessionId) {
    if let Some(old) = state
        .client_ids
        .get(&config.local_clientid, &state.sessions)
        .filter(|old| *old != sid)
    {
        lifecycle::discard(state, old);
    }
    if let Some(session) = state.sessions.get_mut(sid.0 as usize) {
        session.client_id = config.local_clientid.as_str().into();
        session.bridge = Some(i as u16);
        session.version = Version::V5;
        session.expiry_interval = NEVER_EXPIRES;
        session.expires_at = None;
    }
    state.client_ids.insert(sid, &state.sessions);
    if !config.local_clean() {
        record(state, sid, &config.name);
    }
    subscribe(state, sid, config);
}

/// Records bridge session `sid` (under its current client id) and its bridge's name.
fn record(state: &mut State, sid: SessionId, name: &str) {
    lifecycle::record_session(state, sid, None);
    let key = state
        .sessions
        .get(sid.0 as usize)
        .map_or(0, |s| s.store_key);
    if key != 0 {
        (state.journal).append(record::BRIDGE, |out| record::put_key_str(out, key, name));
    }
}

/// Makes `sid`'s subscriptions the configured outbound topics (no-local and
/// retain-as-published, as Mosquitto makes them, so what the bridge brings in never goes
/// back out); a stored one no longer configured is dropped.
fn subscribe(state: &mut State, sid: SessionId, config: &BridgeConfig) {
    let outbound: Vec<&str> = (config.topics.iter())
        .filter(|t| t.direction.outbound())
        .map(|t| t.local_filter.as_str())
        .collect();
    let stale: Vec<String> = (state.sessions.get(sid.0 as usize).into_iter())
        .flat_map(Session::subscriptions)
        .filter(|(filter, _, _)| !outbound.contains(filter))
        .map(|(filter, _, _)| filter.to_string())
        .collect();
    for filter in stale {
        lifecycle::unsubscribe(state, sid, &filter);
    }
    for t in config.topics.iter().filter(|t| t.direction.outbound()) {
        let options = SubscriptionOptions {
            qos: t.qos,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::SendAtSubscribe,
        };
        if let Err(code) = lifecycle::subscribe(state, sid, &t.local_filter, options, 0) {
            warn!(
                "bridge {}: local subscription {} refused (reason {code:#04x})",
                config.name, t.local_filter
            );
        }
    }
}

/// Bridge `i`'s queue bounds (its own `bridge_max_queued_*`, else the broker's), after
/// making room for `message` by its `bridge_queue_policy` if the queue is full: `drop_oldest`
/// drops the oldest queued messages, `latest` the oldest on the same topic (else the
/// oldest), as many as it takes for the new one to fit (or until the queue is empty);
/// `drop_newest` nothing (the new message is refused, as for a client). Each dropped
/// message is counted as a queue-full drop, and leaves the store too.
pub fn make_room(state: &mut State, i: u16, message: &Message, qos: QoS) -> QueueLimits {
    let mut limits = state.queue_limits();
    let Some(b) = state.bridges.get(usize::from(i)) else {
        return limits;
    };
    if b.config.max_queued_messages != 0 {
        limits.max_queued = b.config.max_queued_messages;
    }
    if b.config.max_queued_bytes != 0 {
        limits.max_queued_bytes = b.config.max_queued_bytes;
    }
    let (policy, sid) = (b.config.queue_policy, b.session);
    let State {
        sessions, journal, ..
    } = state;
    let Some(session) = sessions.get_mut(sid.0 as usize) else {
        return limits;
    };
    // QoS 0 to a connected bridge is not counted (bounded by the output instead), and to a
    // disconnected one it is not queued at all (unless queue_qos0_messages): either way
    // nothing queued is evicted for it.
    let offline = !session.is_online();
    let counted = qos != QoS::AtMostOnce || (offline && limits.queue_qos0_offline);
    if policy == QueuePolicy::DropNewest || !counted {
        return limits;
    }
    let same_topic = (policy == QueuePolicy::Latest).then_some(&*message.topic);
    let mut evicted = 0;
    while session.queue_full(limits, message.payload.len())
        && session.evict_queued(same_topic, journal)
    {
        evicted += 1;
    }
    if evicted > 0 {
        state.count_drop(sid, DropReason::QueueFull, evicted);
    }
    limits
}
