//! SIGHUP: re-read every listener's password and ACL files, then bring what connected clients
//! hold in line with them.
//!
//! After a reload: a client whose username no longer authenticates (removed from the password
//! file, or its entry changed) is disconnected, MQTT 5 with DISCONNECT 0x87, and its will is
//! not published; subscriptions the ACL no longer allows are removed; wills the client may no
//! longer publish are dropped; and messages a session holds for its client (queued, or sent
//! and not yet acknowledged) that the client may no longer read are dropped. So every message
//! a session sends was readable by its client under the ACL in force (routing checks it when
//! it queues the message, and a session never changes owner: `handle::connect`).
//!
//! A listener whose files fail to load keeps its previous settings, and its clients are left
//! as they are. The configuration file itself is not re-read.
//!
//! SIGHUP also reopens the log file (`log_dest file`) by its name, so that after logrotate
//! renames it new lines go to the new file; if it cannot be opened, the old one is kept.

use log::{info, warn};

use crate::auth::{Access, Auth};
use crate::core::drops::DropReason;
use crate::core::state::{Close, State};
use crate::ids::SessionId;
use crate::wire::reason;

/// Reloads the password and ACL files and applies them to connected clients and sessions.
pub fn security(state: &mut State) {
    let mut previous = Vec::with_capacity(state.auth.len());
    for (i, auth) in state.auth.iter_mut().enumerate() {
        previous.push(match auth.reload(&state.config.security_for(i)) {
            Ok(replaced) => {
                info!("SIGHUP: reloaded password and ACL files for listener {i}");
                Some(replaced)
            }
            Err(e) => {
                warn!("SIGHUP: keeping the previous security settings: {e}");
                None
            }
        });
    }
    state.acl_active = state.auth.iter().any(Auth::has_acl);
    revoke_credentials(state, &previous);
    revoke_subscriptions(state);
    revoke_wills(state);
    drop_unreadable_messages(state);
}

/// Reopens the binary's log file, if it has one; a failure keeps the old file and says so.
pub fn log_file(log: &crate::logging::LogLink) {
    match log.reopen() {
        Ok(Some(path)) => info!("SIGHUP: reopened log file {}", path.display()),
        Ok(None) => {}
        Err(e) => warn!("SIGHUP: {e}; still writing to the old log file"),
    }
}

/// Closes the connections whose username and password no longer authenticate. `previous[i]`
/// is listener `i`'s settings before the reload, `None` if they were kept.
fn revoke_credentials(state: &mut State, previous: &[Option<Auth>]) {
    let mut revoked = Vec::new();
    for conn in state.conns.iter() {
        let (Some(sid), Some(Some(old)), Some(new)) = (
            conn.session,
            previous.get(usize::from(conn.listener)),
            state.auth.get(usize::from(conn.listener)),
        ) else {
            continue;
        };
        // A certificate's identity and anonymous access are not in the files SIGHUP reads.
        if conn.identity(&state.config).is_some() {
            continue;
        }
        let Some(session) = state.sessions.get(sid.0 as usize) else {
            continue;
        };
        if let Some(username) = session.username.as_deref()
            && !old.same_credentials(new, username)
        {
            info!(
                "SIGHUP: client {} (user {username}): credentials no longer accepted",
                session.client_id
            );
            revoked.push(conn.id);
        }
    }
    for id in revoked {
        // The will was the revoked user's too.
        if let Some(conn) = state.conns.get_mut(id) {
            conn.will = None;
        }
        let why = Close::Reason(reason::NOT_AUTHORIZED, "credentials no longer accepted");
        state.to_close.push((id, why));
    }
}

/// Removes the subscriptions the ACL no longer allows.
fn revoke_subscriptions(state: &mut State) {
    let limits = state.topic_limits();
    let mut revoked = Vec::new();
    for (key, session) in &state.sessions {
        let sid = SessionId(key as u32);
        for (raw_filter, _, _) in session.subscriptions() {
            if let Ok(split) = crate::core::topic::split_shared(raw_filter, limits)
                && !state.allowed(sid, split.filter, Access::Subscribe)
            {
                revoked.push((sid, Box::<str>::from(raw_filter)));
            }
        }
    }
    for (sid, raw_filter) in revoked {
        if let Some(session) = state.sessions.get(sid.0 as usize) {
            info!(
                "SIGHUP: client {}: subscription {raw_filter:?} is no longer allowed; removed",
                session.client_id
            );
        }
        crate::core::lifecycle::unsubscribe(state, sid, &raw_filter);
    }
}

/// Drops the wills, of connected clients and delayed, that their clients may no longer
/// publish (`will::publish` would drop them anyway; this frees them now and says so).
fn revoke_wills(state: &mut State) {
    let mut revoked = Vec::new();
    for conn in state.conns.iter() {
        if let Some(w) = &conn.will
            && !w.allowed(state)
        {
            info!(
                "SIGHUP: client {}: will to {:?} is no longer allowed; dropped",
                w.client_id, w.message.topic
            );
            revoked.push(conn.id);
        }
    }
    for id in revoked {
        if let Some(conn) = state.conns.get_mut(id) {
            conn.will = None;
        }
    }
    let delayed: Vec<SessionId> = (state.pending_wills.iter())
        .filter(|(_, pending)| !pending.will.allowed(state))
        .map(|(&sid, _)| sid)
        .collect();
    for sid in delayed {
        if let Some(pending) = state.pending_wills.remove(&sid) {
            let w = pending.will;
            info!(
                "SIGHUP: client {}: delayed will to {:?} is no longer allowed; dropped",
                w.client_id, w.message.topic
            );
        }
    }
}

/// Drops the messages sessions hold that their clients may no longer read.
fn drop_unreadable_messages(state: &mut State) {
    if !state.acl_active {
        return;
    }
    let State {
        sessions,
        auth,
        dynsec,
        stats,
        journal,
        ..
    } = state;
    for (_, session) in sessions.iter_mut() {
        let Some(auth) = auth.get(usize::from(session.listener)) else {
            continue;
        };
        let client_id = session.client_id.clone();
        let username = session.username.clone();
        let dropped = session.drop_unreadable(
            |topic| {
                let (d, u) = (dynsec.as_ref(), username.as_deref());
                auth.allowed(d, &client_id, u, topic, Access::Read)
            },
            journal,
        );
        stats
            .dropped
            .count(DropReason::Acl, dropped as u64, &client_id);
    }
}
