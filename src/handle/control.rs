//! PINGREQ and DISCONNECT.

use super::{Ctx, reply};
use crate::core::state::{Close, State};
use crate::wire::{Disconnect, reason};

/// PINGREQ: answer PINGRESP [MQTT-3.12.4-1].
pub fn pingreq(state: &mut State, ctx: Ctx) -> Result<(), Close> {
    let id = ctx.id;
    if let Some(out) = reply(state, id) {
        crate::wire::encode_pingresp(out);
    }
    state.mark_dirty(id);
    Ok(())
}

/// DISCONNECT: a normal close discards the will [MQTT-3.14.4-3]; v5 reason 0x04 keeps it.
/// A v5 DISCONNECT may change the Session Expiry Interval, but not from 0 [MQTT-3.14.2-2].
pub fn disconnect(state: &mut State, ctx: Ctx, d: &Disconnect<'_>) -> Result<(), Close> {
    let id = ctx.id;
    if let Some(expiry) = d.properties.session_expiry_interval
        && let Some(session) = state.sessions.get_mut(ctx.sid.0 as usize)
    {
        if session.expiry_interval == 0 && expiry != 0 {
            return Err(Close::Protocol("session expiry interval changed from 0"));
        }
        session.expiry_interval = expiry;
    }
    if d.reason_code >= reason::UNSPECIFIED_ERROR {
        log::debug!("{id:?} disconnected with reason {:#04x}", d.reason_code);
    }
    Err(Close::ClientDisconnect {
        with_will: d.reason_code == reason::DISCONNECT_WITH_WILL_MESSAGE,
    })
}
