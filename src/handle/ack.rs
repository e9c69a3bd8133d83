//! PUBACK, PUBREC, PUBREL, PUBCOMP: the acknowledgement flows of QoS 1 and 2.

use super::reply;
use crate::conn::ConnId;
use crate::session::AckOutcome;
use crate::state::{Close, State};
use crate::wire::{Ack, PacketType, Properties, reason};

/// PUBACK from the client: ends an outbound QoS 1 flow and frees an inflight slot.
pub fn puback(state: &mut State, id: ConnId, ack: &Ack<'_>) -> Result<(), Close> {
    let session = session_mut(state, id)?;
    if session.on_puback(ack.packet_id) == AckOutcome::Done {
        state.mark_dirty(id);
    }
    Ok(())
}

/// PUBREC from the client: answer PUBREL [MQTT-4.3.3-4].
pub fn pubrec(state: &mut State, id: ConnId, ack: &Ack<'_>) -> Result<(), Close> {
    let session = session_mut(state, id)?;
    // A PUBREC with a failure reason (v5) ends the flow without PUBREL [MQTT-4.3.3-4].
    if ack.reason_code >= reason::UNSPECIFIED_ERROR {
        session.on_pubrec(ack.packet_id);
        session.on_pubcomp(ack.packet_id);
        state.mark_dirty(id);
        return Ok(());
    }
    let code = match session.on_pubrec(ack.packet_id) {
        AckOutcome::Done => reason::SUCCESS,
        AckOutcome::UnknownPacketId => reason::PACKET_IDENTIFIER_NOT_FOUND,
    };
    send_ack(state, id, PacketType::Pubrel, ack.packet_id, code);
    Ok(())
}

/// PUBREL from the client: release the inbound QoS 2 packet id and answer PUBCOMP
/// [MQTT-4.3.3-11].
pub fn pubrel(state: &mut State, id: ConnId, ack: &Ack<'_>) -> Result<(), Close> {
    let session = session_mut(state, id)?;
    let code = if session.release_qos2(ack.packet_id) {
        reason::SUCCESS
    } else {
        reason::PACKET_IDENTIFIER_NOT_FOUND
    };
    send_ack(state, id, PacketType::Pubcomp, ack.packet_id, code);
    Ok(())
}

/// PUBCOMP from the client: ends an outbound QoS 2 flow.
pub fn pubcomp(state: &mut State, id: ConnId, ack: &Ack<'_>) -> Result<(), Close> {
    let session = session_mut(state, id)?;
    if session.on_pubcomp(ack.packet_id) == AckOutcome::Done {
        state.mark_dirty(id);
    }
    Ok(())
}

/// Appends a PUBACK/PUBREC/PUBREL/PUBCOMP to connection `id`'s output. A failure carries a
/// reason string when the client accepts problem information and it fits the client's
/// Maximum Packet Size [MQTT-3.1.2-29] [MQTT-3.4.2-2].
pub fn send_ack(state: &mut State, id: ConnId, kind: PacketType, packet_id: u16, code: u8) {
    let Some(version) = state.conns.get(id).map(|c| c.version) else {
        return;
    };
    let mut ack = Ack {
        packet_id,
        reason_code: code,
        properties: Properties::default(),
    };
    if code >= reason::UNSPECIFIED_ERROR
        && let Some(max) = super::problem_report(state, id)
    {
        ack.properties.reason_string = Some(match code {
            reason::NOT_AUTHORIZED => "not authorized to publish to this topic",
            reason::PAYLOAD_FORMAT_INVALID => "payload is not valid UTF-8",
            reason::PACKET_TOO_LARGE => "payload over the broker's message size limit",
            reason::PACKET_IDENTIFIER_NOT_FOUND => "packet identifier not found",
            _ => "refused",
        });
        if ack.encoded_len(version) > max as usize {
            ack.properties.reason_string = None;
        }
    }
    if let Some(out) = reply(state, id) {
        ack.encode(kind, version, out);
    }
    state.mark_dirty(id);
}

fn session_mut(state: &mut State, id: ConnId) -> Result<&mut crate::session::Session, Close> {
    let sid = state.session_of(id).ok_or(Close::Protocol("no session"))?;
    state
        .sessions
        .get_mut(sid.0 as usize)
        .ok_or(Close::Protocol("no session"))
}
