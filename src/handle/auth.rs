//! MQTT 5 enhanced authentication (v5 4.12): the hook where an authentication method
//! (SCRAM, Kerberos, ...) plugs in. No method is built in, so a CONNECT naming one is
//! refused with 0x8C and an AUTH packet is always a protocol error.

use crate::core::state::Close;
use crate::wire::{Auth, reason};

/// What an authentication method says about a CONNECT's Authentication Method and Data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The method is not supported: CONNACK 0x8C Bad authentication method [MQTT-4.12.0-1].
    Unsupported,
}

/// Starts enhanced authentication with `method`; a method would look at `_data` and answer
/// with AUTH 0x18 (continue) or accept. None is built in.
pub fn start(method: &str, _data: Option<&[u8]>) -> Verdict {
    log::debug!("enhanced authentication method {method:?} is not supported");
    Verdict::Unsupported
}

/// The CONNACK reason code for a verdict.
pub fn connack_code(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Unsupported => reason::BAD_AUTHENTICATION_METHOD,
    }
}

/// AUTH from a connected client: with no method in progress it is a protocol error
/// [MQTT-4.12.0-2] (re-authentication needs a method the connection started with).
pub fn auth(_packet: &Auth<'_>) -> Result<(), Close> {
    Err(Close::Protocol("AUTH without an authentication method"))
}
