//! PINGREQ and DISCONNECT.

use super::reply;
use crate::conn::ConnId;
use crate::state::{Close, State};
use crate::wire::{Disconnect, reason};

/// PINGREQ: answer PINGRESP [MQTT-3.12.4-1].
pub fn pingreq(state: &mut State, id: ConnId) -> Result<(), Close> {
    if let Some(out) = reply(state, id) {
        crate::wire::encode_pingresp(out);
    }
    state.mark_dirty(id);
    Ok(())
}

/// DISCONNECT: a normal close discards the will [MQTT-3.14.4-3]; v5 reason 0x04 keeps it.
pub fn disconnect(_state: &mut State, _id: ConnId, d: Disconnect<'_>) -> Result<(), Close> {
    Err(Close::ClientDisconnect {
        with_will: d.reason_code == reason::DISCONNECT_WITH_WILL_MESSAGE,
    })
}
