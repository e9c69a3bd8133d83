//! Packets from the remote broker on a bridge's connection, where this broker is the client:
//! CONNACK first, then PUBLISH (remapped to its local topic and published like a client's),
//! the acks of what the bridge sent (the same handlers as a client's), SUBACK, UNSUBACK and
//! PINGRESP. A packet only a client sends is a protocol error.

use log::{debug, info, warn};

use super::{Ctx, ack, publish};
use crate::bridge;
use crate::core::state::{Close, State};
use crate::ids::ConnId;
use crate::net::conn::Phase;
use crate::wire::{Connack, Packet, PacketType, Publish, QoS, reason};

/// Handles one packet from bridge `i`'s remote on connection `id`.
pub fn dispatch(state: &mut State, id: ConnId, i: usize, packet: &Packet<'_>) -> Result<(), Close> {
    let conn = state
        .conns
        .get(id)
        .ok_or(Close::Protocol("unknown connection"))?;
    let (phase, version) = (conn.phase, conn.version);
    let sid = state
        .bridges
        .get(i)
        .map(|b| b.session)
        .ok_or(Close::Protocol("unknown bridge"))?;
    if phase == Phase::AwaitingConnect {
        return match packet {
            Packet::Connack(connack) => connack_received(state, id, i, connack),
            // [MQTT-3.2.0-1] the server's first packet is CONNACK.
            _ => Err(Close::Protocol(
                "bridge: the remote's first packet must be CONNACK",
            )),
        };
    }
    let ctx = Ctx {
        id,
        sid,
        version,
        listener: 0,
    };
    match packet {
        Packet::Publish(p) => {
            if let Some(b) = state.bridges.get_mut(i) {
                b.stats.into += 1;
            }
            let topics = state.bridges.get(i).map(|b| &b.config.topics[..]);
            let local = bridge::topic::inbound(topics.unwrap_or_default(), p.topic);
            if local.is_empty() {
                drop_unmappable(state, id, i, p);
                return Ok(());
            }
            let mut remapped = *p;
            remapped.topic = &local;
            publish::handle(state, ctx, &remapped)
        }
        Packet::Puback(a) => ack::puback(state, ctx, a),
        Packet::Pubrec(a) => ack::pubrec(state, ctx, a),
        Packet::Pubrel(a) => ack::pubrel(state, ctx, a),
        Packet::Pubcomp(a) => ack::pubcomp(state, ctx, a),
        Packet::Suback(s) => {
            if let Some(code) = s.reason_codes.iter().find(|&&c| c >= 0x80) {
                warn!(
                    "bridge {}: the remote refused a subscription ({code:#04x})",
                    name(state, i)
                );
            }
            Ok(())
        }
        Packet::Unsuback(_) | Packet::Pingresp => Ok(()),
        Packet::Disconnect(d) => {
            info!(
                "bridge {}: the remote disconnected (reason {:#04x})",
                name(state, i),
                d.reason_code
            );
            Err(Close::PeerClosed)
        }
        Packet::Connack(_) => Err(Close::Protocol("bridge: a second CONNACK")),
        Packet::Connect(_)
        | Packet::Subscribe(_)
        | Packet::Unsubscribe(_)
        | Packet::Pingreq
        | Packet::Auth(_) => Err(Close::Protocol("bridge: a client's packet from the remote")),
    }
}

/// A PUBLISH whose local topic would be empty (a topic that is exactly the remote prefix,
/// with no local prefix): dropped and counted, and acknowledged so the remote does not send
/// it again, which would otherwise close and reopen the link for ever. MQTT 5 says why
/// (0x90); a QoS 2 flow ends there, or (3.1.1) at the PUBREL, answered as for any id.
fn drop_unmappable(state: &mut State, id: ConnId, i: usize, p: &Publish<'_>) {
    if let Some(b) = state.bridges.get_mut(i) {
        bridge::unmappable(b, p.topic, "in");
    }
    let kind = match p.qos {
        QoS::AtMostOnce => return,
        QoS::AtLeastOnce => PacketType::Puback,
        QoS::ExactlyOnce => PacketType::Pubrec,
    };
    ack::send_ack(state, id, kind, p.packet_id, reason::TOPIC_NAME_INVALID);
}

/// The bridge's name, for logs.
fn name(state: &State, i: usize) -> &str {
    state.bridges.get(i).map_or("?", |b| &b.config.name)
}

/// CONNACK: on success the link is up: the local session is attached to this connection
/// under the limits an MQTT 5 remote's CONNACK sets (`bridge::limits`), the subscriptions
/// go out, then what was in flight and what queued. A refusal closes; one
/// that may be the `try_private` bit's fault is retried without it (`bridge::on_closed`).
fn connack_received(
    state: &mut State,
    id: ConnId,
    i: usize,
    connack: &Connack<'_>,
) -> Result<(), Close> {
    if connack.reason_code != reason::SUCCESS {
        warn!(
            "bridge {}: the remote refused the connection (code {:#04x})",
            name(state, i),
            connack.reason_code
        );
        // 3.1.1's "unacceptable protocol version" is how a broker refuses the bit.
        let version_refused = connack.reason_code == reason::v3::UNACCEPTABLE_PROTOCOL_VERSION
            || connack.reason_code == reason::UNSUPPORTED_PROTOCOL_VERSION;
        if version_refused && let Some(b) = state.bridges.get_mut(i) {
            b.refused_private = b.private;
        }
        return Err(Close::Refused);
    }
    let Some(b) = state.bridges.get(i) else {
        return Err(Close::Protocol("unknown bridge"));
    };
    let (sid, keepalive) = (b.session, b.config.keepalive);
    let version = b.config.protocol_version;
    let props = &connack.properties;
    let alias_bytes = state.config.max_outbound_alias_bytes;
    let (link, remote) = bridge::limits::from_connack(props, &b.config, alias_bytes);
    if let Some(assigned) = props.assigned_client_identifier {
        info!(
            "bridge {}: the remote assigned client id {assigned}",
            name(state, i)
        );
    }
    if let Some(b) = state.bridges.get_mut(i) {
        b.remote = remote;
    }
    let Some(session) = state.sessions.get_mut(sid.0 as usize) else {
        return Err(Close::Protocol("bridge session gone"));
    };
    session.attach = Some(crate::core::session::Attach::Network(id));
    session.version = version;
    session.link = link;
    // What queued while the link was down goes out as this remote takes it.
    session.cap_queued(remote.maximum_qos, remote.retain_available);
    if let Some(conn) = state.conns.get_mut(id) {
        conn.phase = Phase::Connected;
        conn.session = Some(sid);
        // The remote's silence for 1.5 keepalives closes the link: our PINGREQs get replies.
        conn.keep_alive = keepalive;
    }
    debug!(
        "bridge {}: CONNACK, session present {}",
        name(state, i),
        connack.session_present
    );
    bridge::on_connack(state, i, id);
    let mut frames = Vec::new();
    bridge::on_connected(state, i, &mut frames);
    let State { conns, pool, .. } = state;
    if let Some(conn) = conns.get_mut(id) {
        conn.tx.frames(pool).extend_from_slice(&frames);
    }
    // [MQTT-4.4.0-1] what the remote had not acknowledged goes again first, counted (and
    // what no longer fits its Maximum Packet Size dropped) as for a client.
    super::connect::resend(state, id, sid, version);
    state.mark_dirty(id);
    Ok(())
}
