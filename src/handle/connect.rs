//! CONNECT: validate the client id and will, attach or create the session (taking it over
//! from an older connection), answer CONNACK, and re-send what a resumed session owes.

use log::{debug, info, warn};

use super::reply;
use crate::auth::Access;
use crate::core::alias::OutboundAliases;
use crate::core::budget::Shed;
use crate::core::drops::DropReason;
use crate::core::lifecycle;
use crate::core::message::Message;
use crate::core::session::{Link, NEVER_EXPIRES};
use crate::core::state::{Close, State};
use crate::core::topic::{TopicError, validate_name};
use crate::core::will::Will;
use crate::ids::ConnId;
use crate::ids::SessionId;
use crate::net::conn::{Conn, PeerAddr, Phase};
use crate::wire::{Connack, Connect, MAX_PACKET_SIZE, Properties, Version, reason};

/// Longest client id MQTT 3.1 allows [MQTT 3.1, 3.1].
const MAX_CLIENT_ID_V31: usize = 23;

/// Handles CONNECT on a new connection: validate it (refusing with the CONNACK code the
/// standard gives, before anything changes), then attach the session and answer.
pub fn handle(state: &mut State, id: ConnId, connect: &Connect<'_>) -> Result<(), Close> {
    let version = connect.version;
    let v5 = version == Version::V5;
    if let Some(conn) = state.conns.get_mut(id) {
        conn.version = version;
    }
    let props = &connect.properties;

    // Validate.
    // Under memory_limit, new connections are the first thing shed (`core::budget`): v5
    // 0x97 Quota exceeded, the code for a limit the operator set (0x89 Server busy would
    // invite an immediate retry); 3.1.1 0x03 Server unavailable.
    if state.budget.sheds(Shed::Connections) {
        state.budget.count(Shed::Connections, connect.client_id);
        return Err(refuse(state, id, reason::QUOTA_EXCEEDED));
    }
    // v5 3.1.2.11.10: Authentication Data without an Authentication Method is a Protocol Error.
    if props.authentication_method.is_none() && props.authentication_data.is_some() {
        debug!(
            "client {}: CONNECT with authentication data but no method",
            connect.client_id
        );
        return Err(refuse(state, id, reason::PROTOCOL_ERROR));
    }
    // Enhanced authentication: no method is built in; the authenticate hook may know it
    // [MQTT-4.12.0-1].
    if !super::auth::method_supported(state, props.authentication_method) {
        return Err(refuse(state, id, reason::BAD_AUTHENTICATION_METHOD));
    }
    let (client_id, assigned) = client_id(state, id, connect)?;
    validate_will(state, id, connect)?;
    // Not yet decided: a hook answers later, or an enhanced authentication exchange goes on.
    let Some(super::auth::Admitted {
        username,
        listener,
        peer,
        authentication_data,
    }) = super::auth::authenticate(state, id, connect, &client_id)?
    else {
        if connect.client_id.is_empty()
            && let Some(hooks) = state.conns.get_mut(id).and_then(|c| c.hooks.as_deref_mut())
        {
            hooks.assigned_id = Some(client_id.into());
        }
        return Ok(());
    };
    let client_id = username_as_client_id(state, id, client_id, username.as_deref(), peer)?;
    // A bridge's local session is the bridge's: a client taking it over would cut the link
    // and leave the bridge attaching to a session that is no longer its own.
    if state
        .bridges
        .iter()
        .any(|b| b.config.local_clientid == client_id)
    {
        debug!("client {client_id} from {peer}: the id is a bridge's local_clientid");
        return Err(refuse(state, id, reason::CLIENT_IDENTIFIER_NOT_VALID));
    }
    let (keep_alive, server_keep_alive) = keep_alive(state, id, connect, &client_id)?;
    // [MQTT-3.1.2-24] the CONNACK must fit the client's Maximum Packet Size. One that cannot
    // be answered is closed without CONNACK (as Mosquitto does), before it takes anything over.
    let mut connack = Connack {
        session_present: false,
        reason_code: reason::SUCCESS,
        properties: Properties::default(),
    };
    if v5 {
        let assigned_id = assigned.then_some(client_id.as_str());
        connack.properties = connack_properties(state, listener, assigned_id, server_keep_alive);
        // [MQTT-4.12.0-5] the method of the CONNECT, and the hook's last data.
        connack.properties.authentication_method = props.authentication_method;
        connack.properties.authentication_data = authentication_data.as_deref();
    }
    let client_max = props.maximum_packet_size.unwrap_or(u32::MAX);
    if !connack.fit(version, client_max) {
        debug!(
            "client {client_id}: a {}-byte CONNACK exceeds its maximum packet size {client_max}",
            connack.encoded_len(version)
        );
        return Err(Close::Refused);
    }

    // Apply.
    let will = build_will(state, connect, &client_id, username.as_deref(), listener);
    let (sid, resumed) = attach(
        state,
        id,
        connect,
        &client_id,
        username.as_deref(),
        listener,
    );
    let Some(conn) = state.conns.get_mut(id) else {
        return Err(Close::Protocol("connection vanished"));
    };
    conn.phase = Phase::Connected;
    conn.bridge_peer = connect.bridge;
    conn.session = Some(sid);
    conn.keep_alive = keep_alive;
    conn.will = will.map(Box::new);
    let alias_bytes = state.config.max_outbound_alias_bytes;
    if let Some(session) = state.sessions.get_mut(sid.0 as usize) {
        session.username = username;
        session.listener = listener;
        session.version = version;
        // v5 3.1.2.11.2: the Session Expiry Interval; 3.1.1 clean session ends with the
        // connection.
        session.expiry_interval = match (v5, connect.clean_start) {
            (true, _) => props.session_expiry_interval.unwrap_or(0),
            (false, true) => 0,
            (false, false) => NEVER_EXPIRES,
        };
        session.link = v5.then(|| {
            Box::new(Link {
                receive_maximum: props.receive_maximum.unwrap_or(u16::MAX),
                maximum_packet_size: client_max,
                topic_alias_maximum: props.topic_alias_maximum.unwrap_or(0),
                problem_information: props.request_problem_information != Some(0),
                outbound_aliases: OutboundAliases::new(alias_bytes),
                ..Link::default()
            })
        });
    }
    let will = state.conns.get_mut(id).and_then(|c| c.will.take());
    lifecycle::record_session(state, sid, will.as_deref());
    if let Some(conn) = state.conns.get_mut(id) {
        conn.will = will;
    }
    // `connection_messages false` moves connect/close lines from info to debug (Mosquitto).
    let level = connection_log_level(state.config.connection_messages);
    log::log!(
        level,
        "client {client_id} connected from {peer} ({version:?}, clean {}, keepalive {}s{})",
        connect.clean_start,
        keep_alive,
        if resumed { ", session resumed" } else { "" }
    );
    // [MQTT-3.2.2-2] session present reflects a resumed session.
    connack.session_present = resumed;
    if let Some(out) = super::reply(state, id) {
        connack.encode(version, out);
    }
    state.stats.connects += 1;
    if let Some(hook) = state.hooks.intercept.as_mut() {
        let username = state
            .sessions
            .get(sid.0 as usize)
            .and_then(|s| s.username.as_deref());
        hook.on_connect(&client_id, username);
    }
    if resumed {
        resend(state, id, sid, version);
    }
    state.mark_dirty(id);
    Ok(())
}

/// The client id to use and whether the broker assigned it; refuses ids the version or the
/// configuration does not allow.
fn client_id(
    state: &mut State,
    id: ConnId,
    connect: &Connect<'_>,
) -> Result<(String, bool), Close> {
    let version = connect.version;
    let empty = connect.client_id.is_empty();
    let client_id = match (version, empty) {
        (Version::V31, _) if connect.client_id.chars().count() > MAX_CLIENT_ID_V31 => {
            return Err(refuse(state, id, reason::CLIENT_IDENTIFIER_NOT_VALID));
        }
        // [MQTT-3.1.3-8] zero-length id without clean session: identifier rejected.
        (Version::V31, true) | (Version::V311, true) if !connect.clean_start => {
            return Err(refuse(state, id, reason::CLIENT_IDENTIFIER_NOT_VALID));
        }
        (Version::V31, true) => {
            return Err(refuse(state, id, reason::CLIENT_IDENTIFIER_NOT_VALID));
        }
        // Mosquitto's `allow_zero_length_clientid false`: no assigned ids.
        (_, true) if !state.config.allow_zero_length_clientid => {
            return Err(refuse(state, id, reason::CLIENT_IDENTIFIER_NOT_VALID));
        }
        // [MQTT-3.1.3-6] [MQTT-3.2.2-16] zero-length id: the server assigns one.
        // A CONNECT handled again (a hook answered later, or an enhanced authentication
        // exchange ended) keeps the id assigned the first time: the one the hook saw.
        (_, true) => match state.conns.get(id).and_then(Conn::assigned_id) {
            Some(kept) => kept.to_owned(),
            None => {
                state.assigned_ids += 1;
                format!("pipit-{}", state.assigned_ids)
            }
        },
        (_, false) => connect.client_id.to_owned(),
    };
    // Mosquitto's `clientid_prefixes`: only ids with the prefix may connect, an assigned id
    // too; the others are "not authorised" in every version, as in Mosquitto 2.0.11.
    if let Some(prefix) = &state.config.clientid_prefixes
        && !client_id.starts_with(prefix.as_str())
    {
        let peer = state.conns.get(id).map(|c| c.peer);
        let from = peer.map(|p| format!(" from {p}")).unwrap_or_default();
        warn!("client {client_id}{from}: not authorised: no clientid_prefixes prefix {prefix:?}");
        return Err(refuse(state, id, reason::NOT_AUTHORIZED));
    }
    Ok((client_id, version == Version::V5 && empty))
}

/// Checks the will [MQTT-3.1.2-9]: its topic is a topic name like any PUBLISH's.
fn validate_will(state: &mut State, id: ConnId, connect: &Connect<'_>) -> Result<(), Close> {
    let Some(w) = &connect.will else {
        return Ok(());
    };
    let limits = state.topic_limits();
    match validate_name(w.topic, limits) {
        Ok(()) => {}
        // Well-formed but over the topic length or level bound: refused, not closed (v5
        // 0x90; 3.1.1 has no closer code than 0x03).
        Err(TopicError::TooLong) => {
            debug!("will topic over the topic length or level bound");
            return Err(refuse(state, id, reason::TOPIC_NAME_INVALID));
        }
        Err(_) => return Err(Close::Protocol("invalid will topic")),
    }
    let wp = &w.properties;
    // [MQTT-3.3.2-13] a response topic is a topic name.
    if wp
        .response_topic
        .is_some_and(|t| validate_name(t, limits).is_err())
    {
        return Err(Close::Protocol("invalid will response topic"));
    }
    // v5 3.1.3.2.3: a will declared UTF-8 must be UTF-8.
    if wp.payload_format_indicator == Some(1) && std::str::from_utf8(w.payload).is_err() {
        return Err(refuse(state, id, reason::PAYLOAD_FORMAT_INVALID));
    }
    Ok(())
}

/// With `use_username_as_clientid` on the client's listener, its username (from CONNECT or
/// its certificate) replaces `client_id`: a second connection of the same user takes the
/// first over, and ACL `%c` is the username. A client without a username is "not
/// authorised", as in Mosquitto 2.0.11 (which also checks `clientid_prefixes` against the
/// id the client sent).
fn username_as_client_id(
    state: &mut State,
    id: ConnId,
    client_id: String,
    username: Option<&str>,
    peer: PeerAddr,
) -> Result<String, Close> {
    let listener = state.conns.get(id).map(|c| usize::from(c.listener));
    let listeners = &state.config.listeners;
    if !listener.is_some_and(|i| listeners.get(i).is_some_and(|l| l.use_username_as_clientid)) {
        return Ok(client_id);
    }
    match username {
        Some(username) => Ok(username.to_owned()),
        None => {
            warn!("client {client_id} from {peer}: not authorised: no username to use as its id");
            Err(refuse(state, id, reason::NOT_AUTHORIZED))
        }
    }
}

/// The keepalive the connection is held to, and the Server Keep Alive to announce if it
/// differs from what an MQTT 5 client asked for [MQTT-3.2.2-21].
fn keep_alive(
    state: &mut State,
    id: ConnId,
    connect: &Connect<'_>,
    client_id: &str,
) -> Result<(u16, Option<u16>), Close> {
    let v5 = connect.version == Version::V5;
    let max_keepalive = state.config.max_keepalive;
    let server_keep_alive = (v5 && (connect.keep_alive == 0 || connect.keep_alive > max_keepalive))
        .then_some(max_keepalive);
    // MQTT 3 has no way to tell a client the server's keepalive: as Mosquitto does, a client
    // asking for more than `max_keepalive` is refused with "identifier rejected".
    if !v5 && connect.keep_alive > max_keepalive {
        debug!(
            "client {client_id} asked for keepalive {}s, over max_keepalive",
            connect.keep_alive
        );
        return Err(refuse(state, id, reason::CLIENT_IDENTIFIER_NOT_VALID));
    }
    Ok((
        server_keep_alive.unwrap_or(connect.keep_alive),
        server_keep_alive,
    ))
}

/// The will to keep for the connection: none if the client may not publish to its topic
/// (the client is still accepted, as Mosquitto 2.0 does; `will::publish` checks again, as
/// SIGHUP may reload the ACL meanwhile).
fn build_will(
    state: &State,
    connect: &Connect<'_>,
    client_id: &str,
    username: Option<&str>,
    listener: u16,
) -> Option<Will> {
    let w = connect.will.as_ref()?;
    if !state.allowed_as(listener, client_id, username, w.topic, Access::Write) {
        debug!(
            "client {client_id}: will to {:?} not authorised; dropped",
            w.topic
        );
        return None;
    }
    let wp = &w.properties;
    Some(Will {
        message: if connect.version == Version::V5 {
            Message::with_properties(w.topic, w.payload.into(), w.qos, w.retain, wp, state.now)
        } else {
            Message::shared(w.topic, w.payload, w.qos, w.retain)
        },
        delay: wp.will_delay_interval.unwrap_or(0),
        message_expiry_interval: wp.message_expiry_interval,
        client_id: client_id.into(),
        username: username.map(Box::from),
        listener,
    })
}

/// Attaches the connection to its session: the existing one if the client asked to resume
/// it, it lasts beyond its connection, and it belongs to this user; a new one otherwise.
/// A resumed session's delayed will is cancelled [MQTT-3.1.3-9]; a clean start ends the old
/// session instead, which publishes its will at once.
fn attach(
    state: &mut State,
    id: ConnId,
    connect: &Connect<'_>,
    client_id: &str,
    username: Option<&str>,
    listener: u16,
) -> (SessionId, bool) {
    let existing = state.client_ids.get(client_id, &state.sessions);
    let owned = existing.is_some_and(|old| owns(state, old, username, listener));
    if existing.is_some() && !connect.clean_start && !owned {
        info!("client {client_id}: its session belongs to another user; starting a new one");
    }
    // A session that ends with its connection (3.1.1 clean session, 3.1.1 [MQTT-3.1.2-6];
    // v5 Session Expiry 0, 3.1.2.11.2) ends when that connection is taken over: there is
    // nothing to resume.
    let lasting = existing.is_some_and(|old| {
        (state.sessions.get(old.0 as usize)).is_some_and(|s| !s.ends_with_connection())
    });
    let resume = owned && lasting && !connect.clean_start;
    if let Some(old) = existing
        && resume
    {
        crate::core::will::cancel(state, old);
    }
    lifecycle::attach(state, id, client_id, resume)
}

/// The CONNACK properties for an MQTT 5 client, each only when it differs from what its
/// absence means (v5 3.2.2.3), so a constrained client is not sent what it already assumes:
/// Receive Maximum 65535, no Maximum Packet Size but the protocol's, Topic Alias Maximum 0,
/// Retain, Wildcard, Subscription Identifiers and Shared Subscriptions all available.
fn connack_properties<'a>(
    state: &State,
    listener: u16,
    assigned_client_identifier: Option<&'a str>,
    server_keep_alive: Option<u16>,
) -> Properties<'a> {
    let config = &state.config;
    let receive_maximum = config.max_inflight_messages.max(1);
    let topic_alias_maximum =
        (config.listeners.get(usize::from(listener))).map_or(0, |l| l.max_topic_alias);
    Properties {
        // [MQTT-3.2.2-16] the identifier the broker assigned.
        assigned_client_identifier,
        server_keep_alive,
        receive_maximum: (receive_maximum != u16::MAX).then_some(receive_maximum),
        maximum_packet_size: (config.max_packet_size < MAX_PACKET_SIZE)
            .then_some(config.max_packet_size),
        topic_alias_maximum: (topic_alias_maximum > 0).then_some(topic_alias_maximum),
        retain_available: (!config.retain_available).then_some(0),
        ..Properties::default()
    }
}

/// Whether session `sid` belongs to the client connecting with `username` through
/// `listener`: the same username (or both anonymous) and, with `per_listener_settings`,
/// where each listener has its own users, the same listener.
fn owns(state: &State, sid: SessionId, username: Option<&str>, listener: u16) -> bool {
    state.sessions.get(sid.0 as usize).is_some_and(|s| {
        s.username.as_deref() == username
            && (!state.config.per_listener_settings || s.listener == listener)
    })
}

/// Re-sends a resumed session's unacknowledged messages, before anything queued (a
/// client's resumed session, or a bridge's local session when its link comes up).
pub(super) fn resend(state: &mut State, id: ConnId, sid: SessionId, version: Version) {
    let State {
        conns,
        sessions,
        pool,
        now,
        stats,
        journal,
        ..
    } = state;
    if let (Some(conn), Some(session)) = (conns.get_mut(id), sessions.get_mut(sid.0 as usize)) {
        let dropped = session.resend_inflight(conn.tx.frames(pool), version, *now, journal);
        stats.count_sends(&dropped);
        stats
            .dropped
            .count(DropReason::TooLarge, dropped.too_large, &session.client_id);
    }
}

/// Queues CONNACK with a failure reason (session present 0 [MQTT-3.2.2-4]); returns the
/// close that follows it.
pub(super) fn refuse(state: &mut State, id: ConnId, code: u8) -> Close {
    let Some(version) = state.conns.get(id).map(|c| c.version) else {
        return Close::Refused;
    };
    let reason_code = if version == Version::V5 {
        code
    } else {
        reason::connack_v3(code)
    };
    if let Some(out) = reply(state, id) {
        Connack {
            session_present: false,
            reason_code,
            properties: Properties::default(),
        }
        .encode(version, out);
    }
    Close::Refused
}

/// The level of the one-line connect and close log messages.
pub fn connection_log_level(connection_messages: bool) -> log::Level {
    if connection_messages {
        log::Level::Info
    } else {
        log::Level::Debug
    }
}
