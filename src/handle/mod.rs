//! Packet handlers, one file per packet family. Each reads parse → validate → apply and
//! returns `Result<(), Close>`; only `broker.rs` acts on a `Close`.
//!
//! `dispatch` is the one table from (connection phase, packet) to handler.

mod ack;
mod auth;
mod connect;
mod control;
mod publish;
mod subscribe;

pub use connect::connection_log_level;

use crate::core::state::{Close, State};
use crate::ids::ConnId;
use crate::ids::SessionId;
use crate::net::conn::Phase;
use crate::wire::{Packet, Version};

/// Handles one packet received on connection `id`.
pub fn dispatch(state: &mut State, id: ConnId, packet: &Packet<'_>) -> Result<(), Close> {
    let phase = state
        .conns
        .get(id)
        .map(|c| c.phase)
        .ok_or(Close::Protocol("unknown connection"))?;
    match (phase, packet) {
        (Phase::AwaitingConnect, Packet::Connect(connect)) => connect::handle(state, id, connect),
        // [MQTT-3.1.0-1] the first packet must be CONNECT.
        (Phase::AwaitingConnect, _) => Err(Close::Protocol("first packet must be CONNECT")),
        // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
        (Phase::Connected, Packet::Connect(_)) => Err(Close::Protocol("second CONNECT")),
        (Phase::Connected, Packet::Publish(publish)) => publish::handle(state, id, publish),
        (Phase::Connected, Packet::Puback(ack)) => ack::puback(state, id, ack),
        (Phase::Connected, Packet::Pubrec(ack)) => ack::pubrec(state, id, ack),
        (Phase::Connected, Packet::Pubrel(ack)) => ack::pubrel(state, id, ack),
        (Phase::Connected, Packet::Pubcomp(ack)) => ack::pubcomp(state, id, ack),
        (Phase::Connected, Packet::Subscribe(sub)) => subscribe::subscribe(state, id, sub),
        (Phase::Connected, Packet::Unsubscribe(unsub)) => subscribe::unsubscribe(state, id, unsub),
        (Phase::Connected, Packet::Pingreq) => control::pingreq(state, id),
        (Phase::Connected, Packet::Disconnect(d)) => control::disconnect(state, id, d),
        (Phase::Connected, Packet::Auth(packet)) => auth::auth(packet),
        // Packets only a server sends.
        (
            Phase::Connected,
            Packet::Connack(_) | Packet::Suback(_) | Packet::Unsuback(_) | Packet::Pingresp,
        ) => Err(Close::Protocol("server-only packet from client")),
    }
}

/// The frames buffer of connection `id`, for a handler to append its reply.
fn reply(state: &mut State, id: ConnId) -> Option<&mut Vec<u8>> {
    let State { conns, pool, .. } = state;
    let conn = conns.get_mut(id)?;
    Some(conn.tx.frames(pool))
}

/// The session and protocol version of a connected client's connection.
fn attached(state: &State, id: ConnId) -> Result<(SessionId, Version), Close> {
    let conn = state
        .conns
        .get(id)
        .ok_or(Close::Protocol("no connection"))?;
    let sid = conn.session.ok_or(Close::Protocol("no session"))?;
    Ok((sid, conn.version))
}

/// The largest packet connection `id` accepts, if a Reason String may be sent to it at all:
/// an MQTT 5 client that did not set Request Problem Information to 0 [MQTT-3.1.2-29].
/// Callers drop the string when the packet would exceed that size [MQTT-3.4.2-2].
fn problem_report(state: &State, id: ConnId) -> Option<u32> {
    let conn = state.conns.get(id)?;
    if conn.version != Version::V5 {
        return None;
    }
    let link = conn
        .session
        .and_then(|sid| state.sessions.get(sid.0 as usize))
        .and_then(|s| s.link.as_deref())?;
    link.problem_information.then_some(link.maximum_packet_size)
}
