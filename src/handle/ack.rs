//! PUBACK, PUBREC, PUBREL, PUBCOMP: the acknowledgement flows of QoS 1 and 2.
//!
//! An acknowledgement of the wrong kind for the message in flight under its packet id (PUBREC
//! or PUBCOMP for QoS 1, PUBACK for QoS 2, PUBCOMP before PUBREC) is a protocol error that
//! closes the connection; one for a packet id with nothing in flight is not (a late
//! duplicate): PUBACK and PUBCOMP are ignored and PUBREC is answered with PUBREL.

use super::{Ctx, acknowledge};
use crate::core::lifecycle::{self, Acknowledgement};
use crate::core::session::AckOutcome;
use crate::core::state::{Close, State};
use crate::ids::ConnId;
use crate::wire::{Ack, PacketType, Properties, reason};

/// PUBACK from the client: ends an outbound QoS 1 flow and frees an inflight slot.
pub fn puback(state: &mut State, ctx: Ctx, ack: &Ack<'_>) -> Result<(), Close> {
    let id = ctx.id;
    match lifecycle::acknowledge(state, ctx.sid, Acknowledgement::Puback, ack.packet_id) {
        AckOutcome::Done => state.mark_dirty(id),
        // As Mosquitto: a PUBACK for nothing in flight (a late duplicate) is ignored.
        AckOutcome::UnknownPacketId => {}
        AckOutcome::WrongKind => return Err(Close::Protocol("PUBACK for a QoS 2 message")),
    }
    Ok(())
}

/// PUBREC from the client: answer PUBREL [MQTT-4.3.3-4].
pub fn pubrec(state: &mut State, ctx: Ctx, ack: &Ack<'_>) -> Result<(), Close> {
    let id = ctx.id;
    // A PUBREC with a failure reason (v5) ends the flow without PUBREL [MQTT-4.3.3-4].
    let accepted = ack.reason_code < reason::UNSPECIFIED_ERROR;
    let pubrec = Acknowledgement::Pubrec { accepted };
    let code = match lifecycle::acknowledge(state, ctx.sid, pubrec, ack.packet_id) {
        AckOutcome::Done if !accepted => {
            state.mark_dirty(id);
            return Ok(());
        }
        AckOutcome::Done => reason::SUCCESS,
        AckOutcome::UnknownPacketId if !accepted => return Ok(()),
        AckOutcome::UnknownPacketId => reason::PACKET_IDENTIFIER_NOT_FOUND,
        AckOutcome::WrongKind => return Err(Close::Protocol("PUBREC out of its QoS 2 flow")),
    };
    send_ack(state, id, PacketType::Pubrel, ack.packet_id, code);
    Ok(())
}

/// PUBREL from the client: release the inbound QoS 2 packet id and answer PUBCOMP
/// [MQTT-4.3.3-11].
pub fn pubrel(state: &mut State, ctx: Ctx, ack: &Ack<'_>) -> Result<(), Close> {
    let id = ctx.id;
    let code = if lifecycle::release_qos2(state, ctx.sid, ack.packet_id) {
        reason::SUCCESS
    } else {
        reason::PACKET_IDENTIFIER_NOT_FOUND
    };
    send_ack(state, id, PacketType::Pubcomp, ack.packet_id, code);
    Ok(())
}

/// PUBCOMP from the client: ends an outbound QoS 2 flow.
pub fn pubcomp(state: &mut State, ctx: Ctx, ack: &Ack<'_>) -> Result<(), Close> {
    let id = ctx.id;
    match lifecycle::acknowledge(state, ctx.sid, Acknowledgement::Pubcomp, ack.packet_id) {
        AckOutcome::Done => state.mark_dirty(id),
        AckOutcome::UnknownPacketId => {}
        AckOutcome::WrongKind => return Err(Close::Protocol("PUBCOMP out of its QoS 2 flow")),
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
        ack.properties.reason_string = Some(reason::ack_reason_string(code));
        if ack.encoded_len(version) > max as usize {
            ack.properties.reason_string = None;
        }
    }
    acknowledge(state, id, |out| ack.encode(kind, version, out));
}
