//! The authorize hook asked before a client's PUBLISH, SUBSCRIBE or UNSUBSCRIBE is
//! handled, so it may answer later (`Authorize::authorize_later`, `auth/defer.rs`). Its
//! answers go into `State::granted`, where the handler's ACL checks find them; the hook is
//! not asked twice. A packet with an answer still owed waits at the front of the
//! connection's input, and is handled again, with the answers, once they are all in.

use log::debug;

use super::Ctx;
use crate::auth::Access;
use crate::auth::defer::{Completion, Pending};
use crate::auth::hooks::Authorization;
use crate::core::state::State;
use crate::core::topic::split_shared;
use crate::wire::Packet;

/// Asks the hook about every topic `packet` needs access to; whether the packet may be
/// handled now (`false`: it waits for a deferred answer).
pub fn ask(state: &mut State, ctx: Ctx, packet: &Packet<'_>) -> bool {
    let requests = requests(state, ctx, packet);
    let answered = (state.conns.get_mut(ctx.id))
        .and_then(|c| c.hooks.as_deref_mut())
        .and_then(|h| h.take_answers());
    if let Some(answers) = answered {
        // Handled again with the answers that came later; any other kind of answer (there
        // is none) would refuse.
        let verdicts = answers
            .into_iter()
            .map(|a| matches!(a, Completion::Access(true)));
        state.granted = requests
            .into_iter()
            .zip(verdicts)
            .map(|((topic, access), allowed)| (topic, access, allowed))
            .collect();
        return true;
    }
    let ticket = state.deferrals.ticket();
    let mut answers = Vec::with_capacity(requests.len());
    let State {
        hooks,
        deferrals,
        sessions,
        ..
    } = &*state;
    let Some(hook) = hooks.authorize.as_ref() else {
        return true;
    };
    let session = sessions.get(ctx.sid.0 as usize);
    let client_id = session.map_or("", |s| &*s.client_id);
    let username = session.and_then(|s| s.username.as_deref());
    for (index, (topic, access)) in requests.iter().enumerate() {
        let files = state.allowed_by_files(ctx.listener, client_id, username, topic, *access);
        let request = Authorization {
            client_id,
            username,
            listener: ctx.listener,
            topic,
            access: *access,
        };
        let mut deferred = false;
        let defer = deferrals.defer(ctx.id, ticket, index, &mut deferred);
        let answer = hook.authorize_later(&request, files, defer);
        answers.push(match (answer, deferred) {
            (Some(allowed), _) => Some(Completion::Access(allowed)),
            (None, true) => None,
            // "Later" without taking a `Later`: nothing would ever answer.
            (None, false) => Some(Completion::Access(false)),
        });
    }
    if answers.iter().any(Option::is_none) {
        debug!("client {client_id}: waiting for the authorize hook's decision");
        if let Some(conn) = state.conns.get_mut(ctx.id) {
            conn.hooks_mut().pending = Some(Pending { ticket, answers });
        }
        return false;
    }
    state.granted = requests
        .into_iter()
        .zip(answers.into_iter().flatten())
        .map(|((topic, access), a)| (topic, access, a == Completion::Access(true)))
        .collect();
    true
}

/// The (topic, access) pairs `packet` is checked for, as its handler checks them: a
/// PUBLISH's topic (through its alias), each valid SUBSCRIBE filter without its
/// `$share/GROUP/` prefix, each UNSUBSCRIBE filter as sent.
fn requests(state: &mut State, ctx: Ctx, packet: &Packet<'_>) -> Vec<(Box<str>, Access)> {
    let limits = state.topic_limits();
    match packet {
        Packet::Publish(publish) if publish.topic.is_empty() => {
            let alias = publish.properties.topic_alias;
            // An empty topic stands for the alias's: looked up, not set.
            (state.sessions.get_mut(ctx.sid.0 as usize))
                .and_then(|s| s.link.as_deref_mut())
                .and_then(|link| link.inbound_aliases.resolve("", alias, u16::MAX).ok())
                .flatten()
                .map(|topic| vec![(Box::from(&*topic), Access::Write)])
                .unwrap_or_default()
        }
        Packet::Publish(publish) => vec![(Box::from(publish.topic), Access::Write)],
        Packet::Subscribe(subscribe) => (subscribe.filters.iter())
            .filter_map(|(raw, _)| split_shared(raw, limits).ok())
            .map(|split| (Box::from(split.filter), Access::Subscribe))
            .collect(),
        Packet::Unsubscribe(unsubscribe) => (unsubscribe.filters.iter())
            .map(|raw| (Box::from(raw), Access::Unsubscribe))
            .collect(),
        _ => Vec::new(),
    }
}
