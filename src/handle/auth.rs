//! MQTT 5 enhanced authentication (v5 4.12), carried by the embedder's authenticate hook
//! (`Authenticate::step`). No method is built in: without a hook a CONNECT naming one is
//! refused with 0x8C, and an AUTH packet is a protocol error.
//!
//! At connect: the CONNECT's method and data go to the hook; `Continue(data)` sends AUTH
//! 0x18, keeps the CONNECT's bytes (`ConnHooks::connect`) and waits for the client's AUTH
//! 0x18, which goes to the hook in turn; success handles the kept CONNECT again, now
//! authenticated, and its CONNACK carries the method and the hook's data; failure answers
//! CONNACK 0x87/0x86/0x8C. Re-authentication: a connected client's AUTH 0x19 with the same
//! method starts the same exchange, ended by AUTH 0x00 or by DISCONNECT with the failure's
//! code. Any step may be deferred (`auth/defer.rs`): the packet then waits at the front of
//! the connection's input.

use log::{debug, warn};

use super::{Ctx, connect, reply};
use crate::auth::AuthResult;
use crate::auth::defer::{Completion, Pending};
use crate::auth::hooks::{Credentials, Stage, Step};
use crate::core::state::{Close, State};
use crate::ids::ConnId;
use crate::net::conn::PeerAddr;
use crate::wire::{self, Auth, Connect, Packet, Properties, Version, reason};

/// AUTH reason codes (v5 3.15.2.1).
const SUCCESS: u8 = 0x00;
const CONTINUE: u8 = 0x18;
const REAUTHENTICATE: u8 = 0x19;

/// What authenticating a CONNECT came to.
#[derive(Debug)]
enum Authenticated {
    /// Decided, with Authentication Data for the CONNACK.
    Decided(AuthResult, Option<Vec<u8>>),
    /// Not yet: the hook answers later, or the exchange goes on with the client's AUTH.
    NotYet,
}

/// A CONNECT's authentication, once it is decided.
pub(super) struct Admitted {
    /// The username the client is known by.
    pub(super) username: Option<Box<str>>,
    /// Its listener.
    pub(super) listener: u16,
    /// Its address.
    pub(super) peer: PeerAddr,
    /// Enhanced authentication's data for the CONNACK.
    pub(super) authentication_data: Option<Vec<u8>>,
}

/// Checks the credentials (or the client certificate, with `use_identity_as_username` or
/// `use_subject_as_username`, which need no password), then asks the hook, if any; `None`
/// while that is not decided.
pub(super) fn authenticate(
    state: &mut State,
    id: ConnId,
    connect: &Connect<'_>,
    client_id: &str,
) -> Result<Option<Admitted>, Close> {
    let (listener, peer) = state
        .conns
        .get(id)
        .map(|c| (c.listener, c.peer))
        .ok_or(Close::Protocol("connection vanished"))?;
    // use_identity_as_username / use_subject_as_username: the client certificate's CN or
    // subject is the username, and CONNECT's username and password are ignored.
    let identity = (state.conns.get(id)).and_then(|c| c.identity(&state.config));
    let mut verdict = match &identity {
        Some(Some(_)) => AuthResult::Ok,
        // No certificate, or no CN in it: as Mosquitto 2.0.11 answers.
        Some(None) => AuthResult::BadCredentials,
        None => (state.auth.get(usize::from(listener))).map_or(AuthResult::NotAuthorized, |auth| {
            let dynsec = state.dynsec.as_ref();
            auth.authenticate(dynsec, client_id, connect.username, connect.password)
        }),
    };
    // An embedder's hook has the last word, told what the files decided.
    let mut authentication_data = None;
    if state.hooks.authenticate.is_some() {
        let props = &connect.properties;
        let credentials = Credentials {
            client_id,
            username: match &identity {
                Some(name) => name.as_deref(),
                None => connect.username,
            },
            password: connect.password,
            listener,
            method: props.authentication_method,
            data: props.authentication_data,
            stage: Stage::Connect,
        };
        match connect_step(state, id, &credentials, verdict)? {
            Authenticated::Decided(result, data) => (verdict, authentication_data) = (result, data),
            Authenticated::NotYet => return Ok(None),
        }
    }
    if verdict != AuthResult::Ok {
        return Err(refuse_auth(state, id, client_id, verdict));
    }
    let username = identity.unwrap_or_else(|| connect.username.map(Box::from));
    Ok(Some(Admitted {
        username,
        listener,
        peer,
        authentication_data,
    }))
}

/// Refuses `client_id`, which did not authenticate, with the code its verdict gives.
fn refuse_auth(state: &mut State, id: ConnId, client_id: &str, verdict: AuthResult) -> Close {
    let peer = state
        .conns
        .get(id)
        .map(|c| c.peer.to_string())
        .unwrap_or_default();
    let code = match verdict {
        AuthResult::BadCredentials => {
            warn!("client {client_id} from {peer}: bad username or password");
            reason::BAD_USER_NAME_OR_PASSWORD
        }
        AuthResult::Ok | AuthResult::NotAuthorized => {
            warn!("client {client_id} from {peer}: not authorised");
            reason::NOT_AUTHORIZED
        }
    };
    connect::refuse(state, id, code)
}

/// Whether the hook should be asked about a CONNECT with Authentication Method `method`:
/// without a hook, a method is refused, as no method is built in [MQTT-4.12.0-1].
pub(super) fn method_supported(state: &State, method: Option<&str>) -> bool {
    let supported = method.is_none() || state.hooks.authenticate.is_some();
    if !supported {
        debug!("enhanced authentication method {method:?} is not supported");
    }
    supported
}

/// The CONNECT's authentication step with the hook, told what the files decided: the
/// verdict, or `NotYet`. A CONNECT handled again after a successful exchange is accepted
/// with that exchange's data.
fn connect_step(
    state: &mut State,
    id: ConnId,
    credentials: &Credentials<'_>,
    files: AuthResult,
) -> Result<Authenticated, Close> {
    let accepted = (state.conns.get_mut(id))
        .and_then(|c| c.hooks.as_deref_mut())
        .and_then(|h| h.accepted.take());
    if let Some(data) = accepted {
        return Ok(Authenticated::Decided(AuthResult::Ok, data));
    }
    // The method a re-authentication must name [MQTT-4.12.1-1].
    if let Some(method) = credentials.method
        && let Some(conn) = state.conns.get_mut(id)
    {
        conn.hooks_mut().method = Some(method.into());
    }
    let Some(step) = ask(state, id, credentials, files) else {
        return Ok(Authenticated::NotYet);
    };
    match step {
        Step::Continue(data) => {
            // [MQTT-4.12.0-6] no AUTH to a client that named no method.
            let Some(method) = credentials.method else {
                debug!(
                    "client {}: the hook continued without a method",
                    credentials.client_id
                );
                return Ok(Authenticated::Decided(AuthResult::NotAuthorized, None));
            };
            send_auth(state, id, CONTINUE, method, Some(&data));
            if let Some(conn) = state.conns.get_mut(id) {
                let hooks = conn.hooks_mut();
                hooks.method = Some(method.into());
                hooks.keep_connect = true;
            }
            Ok(Authenticated::NotYet)
        }
        step => decided(state, id, step),
    }
}

/// Whether connection `id` is in an enhanced authentication exchange at connect (its
/// CONNECT kept), so an AUTH from it is the client's step.
pub(super) fn exchanging(state: &State, id: ConnId) -> bool {
    (state.conns.get(id))
        .and_then(|c| c.hooks.as_deref())
        .is_some_and(|h| h.connect.is_some())
}

/// The client's AUTH during the exchange at connect [MQTT-4.12.0-3]: its data goes to the
/// hook; success handles the kept CONNECT again.
pub(super) fn continue_connect(
    state: &mut State,
    id: ConnId,
    packet: &Auth<'_>,
) -> Result<(), Close> {
    let method = check(state, id, packet, CONTINUE)?;
    let Some(bytes) = (state.conns.get(id))
        .and_then(|c| c.hooks.as_deref())
        .and_then(|h| h.connect.clone())
    else {
        return Err(Close::Protocol("AUTH without a CONNECT"));
    };
    let listener = state.conns.get(id).map_or(0, |c| c.listener);
    let (step, client_id) = with_connect(&bytes, |connect| {
        let credentials = Credentials {
            client_id: connect.client_id,
            username: connect.username,
            password: None,
            listener,
            method: Some(&method),
            data: packet.properties.authentication_data,
            stage: Stage::Continue,
        };
        (
            ask(state, id, &credentials, AuthResult::Ok),
            connect.client_id.to_owned(),
        )
    })?;
    let Some(step) = step else {
        return Ok(());
    };
    match step {
        Step::Continue(data) => {
            send_auth(state, id, CONTINUE, &method, Some(&data));
            Ok(())
        }
        step => match decided(state, id, step)? {
            Authenticated::Decided(AuthResult::Ok, data) => {
                if let Some(hooks) = state.conns.get_mut(id).and_then(|c| c.hooks.as_deref_mut()) {
                    hooks.connect = None;
                    hooks.accepted = Some(data);
                }
                with_connect(&bytes, |connect| connect::handle(state, id, connect))?
            }
            Authenticated::Decided(result, _) => Err(refuse_auth(state, id, &client_id, result)),
            Authenticated::NotYet => Ok(()),
        },
    }
}

/// AUTH from a connected client: re-authentication (0x19) or its next step (0x18), with
/// the method it connected with [MQTT-4.12.1-1]; without one, a protocol error
/// [MQTT-4.12.0-7].
pub fn auth(state: &mut State, ctx: Ctx, packet: &Auth<'_>) -> Result<(), Close> {
    let id = ctx.id;
    let reauthenticating = (state.conns.get(id))
        .and_then(|c| c.hooks.as_deref())
        .is_some_and(|h| h.reauthenticating);
    let (expected, stage) = match reauthenticating {
        false => (REAUTHENTICATE, Stage::Reauthenticate),
        true => (CONTINUE, Stage::Continue),
    };
    let method = check(state, id, packet, expected)?;
    let session = state.sessions.get(ctx.sid.0 as usize);
    let client_id = session.map_or_else(String::new, |s| s.client_id.to_string());
    let username = session
        .and_then(|s| s.username.as_deref())
        .map(str::to_owned);
    let credentials = Credentials {
        client_id: &client_id,
        username: username.as_deref(),
        password: None,
        listener: ctx.listener,
        method: Some(&method),
        data: packet.properties.authentication_data,
        stage,
    };
    let Some(step) = ask(state, id, &credentials, AuthResult::Ok) else {
        return Ok(());
    };
    let set_reauthenticating = |state: &mut State, on: bool| {
        if let Some(conn) = state.conns.get_mut(id) {
            conn.hooks_mut().reauthenticating = on;
        }
    };
    match step {
        Step::Continue(data) => {
            set_reauthenticating(state, true);
            send_auth(state, id, CONTINUE, &method, Some(&data));
            Ok(())
        }
        Step::Done(AuthResult::Ok) | Step::Success(_) => {
            set_reauthenticating(state, false);
            let data = match &step {
                Step::Success(data) => Some(&data[..]),
                _ => None,
            };
            send_auth(state, id, SUCCESS, &method, data);
            debug!("client {client_id}: re-authenticated");
            Ok(())
        }
        // [MQTT-4.12.1-2] a failed re-authentication closes the connection.
        Step::BadMethod => Err(Close::Reason(
            reason::BAD_AUTHENTICATION_METHOD,
            "re-authentication: bad method",
        )),
        Step::Done(AuthResult::BadCredentials) => Err(Close::Reason(
            reason::BAD_USER_NAME_OR_PASSWORD,
            "re-authentication failed",
        )),
        Step::Done(AuthResult::NotAuthorized) | Step::Later => Err(Close::Reason(
            reason::NOT_AUTHORIZED,
            "re-authentication failed",
        )),
    }
}

/// Checks an AUTH from the client: reason code `expected` [MQTT-4.12.0-3]
/// [MQTT-4.12.1-1], and the method of the CONNECT [MQTT-4.12.0-5]; returns that method.
fn check(state: &State, id: ConnId, packet: &Auth<'_>, expected: u8) -> Result<Box<str>, Close> {
    let Some(method) = (state.conns.get(id))
        .and_then(|c| c.hooks.as_deref())
        .and_then(|h| h.method.clone())
    else {
        return Err(Close::Protocol("AUTH without an authentication method"));
    };
    if packet.reason_code != expected {
        return Err(Close::Protocol("AUTH with an unexpected reason code"));
    }
    if packet.properties.authentication_method != Some(&*method) {
        return Err(Close::Protocol("AUTH with another authentication method"));
    }
    Ok(method)
}

/// The hook's step for `credentials`: the answer that came later for this packet if there
/// is one, else the hook's; `None` while it is owed.
fn ask(
    state: &mut State,
    id: ConnId,
    credentials: &Credentials<'_>,
    files: AuthResult,
) -> Option<Step> {
    let answered = (state.conns.get_mut(id))
        .and_then(|c| c.hooks.as_deref_mut())
        .and_then(|h| h.take_answers());
    if let Some(answers) = answered {
        return Some(match answers.into_iter().next() {
            Some(Completion::Auth(step)) => step,
            _ => Step::Done(AuthResult::NotAuthorized),
        });
    }
    let ticket = state.deferrals.ticket();
    let State {
        hooks,
        deferrals,
        conns,
        ..
    } = state;
    let Some(hook) = hooks.authenticate.as_mut() else {
        return Some(match credentials.method {
            Some(_) => Step::BadMethod,
            None => Step::Done(files),
        });
    };
    let mut deferred = false;
    let step = hook.step(
        credentials,
        files,
        deferrals.defer(id, ticket, 0, &mut deferred),
    );
    match (step, deferred) {
        (Step::Later, true) => {
            debug!(
                "client {}: waiting for the authenticate hook's decision",
                credentials.client_id
            );
            if let Some(conn) = conns.get_mut(id) {
                conn.hooks_mut().pending = Some(Pending {
                    ticket,
                    answers: vec![None],
                });
            }
            None
        }
        // "Later" without taking a `Later`: nothing would ever answer.
        (Step::Later, false) => Some(Step::Done(AuthResult::NotAuthorized)),
        (step, _) => Some(step),
    }
}

/// A final step as a verdict; a bad method is refused with 0x8C at once.
fn decided(state: &mut State, id: ConnId, step: Step) -> Result<Authenticated, Close> {
    Ok(match step {
        Step::Done(result) => Authenticated::Decided(result, None),
        Step::Success(data) => Authenticated::Decided(AuthResult::Ok, Some(data)),
        // [MQTT-4.12.0-1] a method the hook does not support.
        Step::BadMethod => {
            debug!("{id:?}: the authenticate hook does not support the method");
            return Err(connect::refuse(
                state,
                id,
                reason::BAD_AUTHENTICATION_METHOD,
            ));
        }
        // Completed with "later" (nothing is left to answer), or "continue" after the
        // exchange: refused.
        Step::Later | Step::Continue(_) => Authenticated::Decided(AuthResult::NotAuthorized, None),
    })
}

/// Runs `f` on the CONNECT in `bytes` (kept when the exchange began, so it decodes).
fn with_connect<R>(bytes: &[u8], f: impl FnOnce(&wire::Connect<'_>) -> R) -> Result<R, Close> {
    let decoded = wire::decode_with(bytes, Version::V5, u32::MAX, |packet| match packet {
        Packet::Connect(connect) => Some(f(connect)),
        _ => None,
    });
    match decoded {
        Ok(Some((Some(r), _))) => Ok(r),
        _ => Err(Close::Protocol("the kept CONNECT does not decode")),
    }
}

/// Sends AUTH `reason_code` with `method` [MQTT-4.12.0-5] and `data`.
fn send_auth(state: &mut State, id: ConnId, reason_code: u8, method: &str, data: Option<&[u8]>) {
    if let Some(out) = reply(state, id) {
        Auth {
            reason_code,
            properties: Properties {
                authentication_method: Some(method),
                authentication_data: data,
                ..Properties::default()
            },
        }
        .encode(out);
    }
    state.mark_dirty(id);
}
