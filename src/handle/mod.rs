//! Packet handlers, one file per packet family. Each reads parse → validate → apply and
//! returns `Result<(), Close>`; only `broker/` acts on a `Close`.
//!
//! `dispatch` is the one table from (connection phase, packet) to handler.

mod ack;
mod auth;
mod authorize;
#[cfg_attr(not(feature = "bridge"), path = "bridge_off.rs")]
mod bridge;
mod connect;
mod control;
mod dynsec;
mod publish;
mod subscribe;

pub use connect::connection_log_level;

use log::debug;

use crate::core::state::{Close, State};
use crate::ids::ConnId;
use crate::ids::SessionId;
use crate::net::conn::Phase;
use crate::persist::held::PUBACK_HEADER;
use crate::persist::journal::Hold;
use crate::wire::{Packet, Version};

/// What every handler of a connected client's packet needs, looked up once per packet.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// The connection the packet came on.
    pub id: ConnId,
    /// The session it is attached to.
    pub sid: SessionId,
    /// Its protocol version.
    pub version: Version,
    /// The listener it came in on (whose settings apply).
    pub listener: u16,
}

/// Handles one packet received on connection `id`.
pub fn dispatch(state: &mut State, id: ConnId, packet: &Packet<'_>) -> Result<(), Close> {
    let conn = state
        .conns
        .get(id)
        .ok_or(Close::Protocol("unknown connection"))?;
    if let Some(bridge) = conn.bridge {
        return bridge::dispatch(state, id, usize::from(bridge), packet);
    }
    let ctx = match (conn.phase, conn.session) {
        (Phase::AwaitingConnect, _) => {
            return match packet {
                // [MQTT-3.1.0-2] during an enhanced authentication exchange too.
                Packet::Connect(_) if auth::exchanging(state, id) => {
                    Err(Close::Protocol("second CONNECT"))
                }
                Packet::Connect(connect) => connect::handle(state, id, connect),
                // The client's step of an enhanced authentication exchange.
                Packet::Auth(packet) if auth::exchanging(state, id) => {
                    auth::continue_connect(state, id, packet)
                }
                // [MQTT-3.1.0-1] the first packet must be CONNECT.
                _ => Err(Close::Protocol("first packet must be CONNECT")),
            };
        }
        (Phase::Connected, Some(sid)) => Ctx {
            id,
            sid,
            version: conn.version,
            listener: conn.listener,
        },
        // Taken over: its session now belongs to a newer connection.
        (Phase::Connected, None) => return Err(Close::Protocol("no session")),
    };
    // An authorize hook is asked before the packet is handled, so it may answer later.
    let asked = state.hooks.authorize.is_some()
        && matches!(
            packet,
            Packet::Publish(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_)
        );
    if asked && !authorize::ask(state, ctx, packet) {
        return Ok(());
    }
    let result = handle_connected(state, ctx, packet);
    if asked {
        state.granted.clear();
    }
    result
}

/// Handles one packet from a connected client.
fn handle_connected(state: &mut State, ctx: Ctx, packet: &Packet<'_>) -> Result<(), Close> {
    match packet {
        // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
        Packet::Connect(_) => Err(Close::Protocol("second CONNECT")),
        Packet::Publish(publish) => publish::handle(state, ctx, publish),
        Packet::Puback(ack) => ack::puback(state, ctx, ack),
        Packet::Pubrec(ack) => ack::pubrec(state, ctx, ack),
        Packet::Pubrel(ack) => ack::pubrel(state, ctx, ack),
        Packet::Pubcomp(ack) => ack::pubcomp(state, ctx, ack),
        Packet::Subscribe(sub) => subscribe::subscribe(state, ctx, sub),
        Packet::Unsubscribe(unsub) => subscribe::unsubscribe(state, ctx, unsub),
        Packet::Pingreq => control::pingreq(state, ctx),
        Packet::Disconnect(d) => control::disconnect(state, ctx, d),
        Packet::Auth(packet) => auth::auth(state, ctx, packet),
        // Packets only a server sends.
        Packet::Connack(_) | Packet::Suback(_) | Packet::Unsuback(_) | Packet::Pingresp => {
            Err(Close::Protocol("server-only packet from client"))
        }
    }
}

/// The frames buffer of connection `id`, for a handler to append its one reply packet
/// (counted as sent).
fn reply(state: &mut State, id: ConnId) -> Option<&mut Vec<u8>> {
    let State {
        conns, pool, stats, ..
    } = state;
    let conn = conns.get_mut(id)?;
    stats.packets_sent += 1;
    Some(conn.tx.frames(pool))
}

/// Appends an acknowledgement for connection `id`, written by `encode`: to its output, or,
/// while the journal has records not yet durable (`persistence_sync fsync`), held until they
/// are (`persist::held`), so an ack never confirms what a crash could still lose.
fn acknowledge(state: &mut State, id: ConnId, encode: impl FnOnce(&mut Vec<u8>)) {
    match state.journal.hold() {
        Hold::Until(batch) => {
            state.stats.packets_sent += 1;
            let out = state.held_acks.start(id, batch);
            let from = out.len();
            encode(out);
            let puback = out.get(from) == Some(&PUBACK_HEADER);
            state.held_acks.end();
            if puback && let Some(conn) = state.conns.get_mut(id) {
                conn.held_pubacks = conn.held_pubacks.saturating_add(1);
            }
            // A disk that stalls must not let held acknowledgements grow with what clients
            // send: past `max_output_buffer` of them, a client that adds one is not read from
            // until its acknowledgements are written (as when its output backs up).
            if state.held_acks.bytes() >= state.config.max_output_buffer
                && let Some(conn) = state.conns.get_mut(id)
            {
                conn.read_paused = true;
            }
        }
        Hold::No => {
            if let Some(out) = reply(state, id) {
                encode(out);
            }
            state.mark_dirty(id);
        }
        Hold::Never => debug!("acknowledgement to {id:?} withheld: the store failed"),
    }
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
