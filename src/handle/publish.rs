//! PUBLISH from a client: validate, store if retained, route, acknowledge.

use log::debug;

use super::ack::send_ack;
use crate::auth::Access;
use crate::conn::ConnId;
use crate::message::Message;
use crate::route;
use crate::state::{Close, State};
use crate::topic::validate_name;
use crate::wire::{PacketType, Publish, QoS, reason};

/// Handles an inbound PUBLISH.
pub fn handle(state: &mut State, id: ConnId, publish: Publish<'_>) -> Result<(), Close> {
    // Validate.
    let sid = state.session_of(id).ok_or(Close::Protocol("no session"))?;
    if validate_name(publish.topic, state.topic_limits()).is_err() {
        debug!("invalid topic name in PUBLISH from {:?}", id);
        return Err(Close::Protocol("invalid topic name"));
    }
    state.stats.messages_received += 1;
    let limit = state.config.message_size_limit;
    let oversize = limit != 0 && publish.payload.len() > limit as usize;

    // Apply: QoS 2 is routed once per packet id until PUBREL [MQTT-4.3.3-9].
    let first_delivery = match publish.qos {
        QoS::ExactlyOnce => state
            .sessions
            .get_mut(sid.0 as usize)
            .is_some_and(|s| s.receive_qos2(publish.packet_id)),
        _ => true,
    };
    let denied = !state.allowed(sid, publish.topic, Access::Write);
    if denied {
        // 3.1.1 has no way to refuse a PUBLISH: it is acknowledged and dropped, as Mosquitto does.
        debug!("PUBLISH to {:?} denied by ACL", publish.topic);
    } else if oversize {
        debug!(
            "dropping {}-byte PUBLISH over message_size_limit",
            publish.payload.len()
        );
        state.stats.messages_dropped += 1;
    } else if first_delivery {
        let message = Message::shared(publish.topic, publish.payload, publish.qos, publish.retain);
        route::publish(state, &message);
    }

    let code = if oversize {
        reason::PACKET_TOO_LARGE
    } else {
        reason::SUCCESS
    };
    match publish.qos {
        QoS::AtMostOnce => {}
        // [MQTT-4.3.2-2] PUBACK; [MQTT-4.3.3-2] PUBREC.
        QoS::AtLeastOnce => send_ack(state, id, PacketType::Puback, publish.packet_id, code),
        QoS::ExactlyOnce => send_ack(state, id, PacketType::Pubrec, publish.packet_id, code),
    }
    Ok(())
}
