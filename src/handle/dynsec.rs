//! PUBLISH to `$CONTROL/...`: the message is the broker's, never routed to subscribers (as
//! in Mosquitto, once the publisher's write access to the topic has passed the ACL check),
//! with dynamic security or without. On `$CONTROL/dynamic-security/v1`, on a listener that
//! uses dynamic security, it runs the
//! control API; the response is published, QoS 0 and not retained, on
//! `$CONTROL/dynamic-security/v1/response` to whoever may read it, and the clients whose
//! rights changed are disconnected (MQTT 5: DISCONNECT 0x98 Administrative action) without
//! their will, as Mosquitto's `mosquitto_kick_client_by_username` does.

use log::info;

use crate::auth::dynsec::{Kick, RESPONSE_TOPIC, TOPIC};
use crate::core::message::Message;
use crate::core::route;
use crate::core::state::{Close, State};
use crate::ids::SessionId;
use crate::wire::{QoS, reason};

/// Whether a PUBLISH to `topic` is for the broker rather than subscribers.
pub fn is_control(topic: &str) -> bool {
    topic.starts_with("$CONTROL/")
}

/// Handles a control PUBLISH from session `sid` (whose write access was checked) received
/// on `listener`.
pub fn control(state: &mut State, sid: SessionId, listener: u16, topic: &str, payload: &[u8]) {
    // Other `$CONTROL/` topics, or this one where dynamic security is off, have no handler:
    // the message is dropped, as Mosquitto drops it.
    let handled = state.dynsec.is_some()
        && (state.auth.get(usize::from(listener))).is_some_and(|a| a.uses_dynsec());
    if topic != TOPIC || !handled {
        return;
    }
    let admin = match state.sessions.get(sid.0 as usize) {
        Some(s) => format!("{}/{}", s.client_id, s.username.as_deref().unwrap_or("")),
        None => return,
    };
    let Some(dynsec) = state.dynsec.as_mut() else {
        return;
    };
    let outcome = dynsec.control(payload, &admin);
    let response = Message::shared(RESPONSE_TOPIC, &outcome.response, QoS::AtMostOnce, false);
    route::publish(state, &response, None);
    kick(state, &outcome.kicks);
}

/// Disconnects the connected clients `kicks` names.
fn kick(state: &mut State, kicks: &[Kick]) {
    if kicks.is_empty() {
        return;
    }
    let mut kicked = Vec::new();
    for conn in state.conns.iter() {
        let Some(session) = conn
            .session
            .and_then(|sid| state.sessions.get(sid.0 as usize))
        else {
            continue;
        };
        let username = session.username.as_deref();
        let hit = kicks.iter().any(|k| match k {
            Kick::Username(u) => username == Some(u.as_str()),
            Kick::Anonymous => username.is_none(),
        });
        if hit {
            info!(
                "client {}: rights changed by dynamic security; disconnected",
                session.client_id
            );
            kicked.push(conn.id);
        }
    }
    for id in kicked {
        if let Some(conn) = state.conns.get_mut(id) {
            conn.will = None;
        }
        let why = Close::Reason(
            reason::ADMINISTRATIVE_ACTION,
            "rights changed by dynamic security",
        );
        state.to_close.push((id, why));
    }
}
