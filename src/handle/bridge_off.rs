//! Without the `bridge` feature: no connection is a bridge's (`config` refuses `connection`
//! blocks in this build), so nothing reaches here; a packet that did would close its
//! connection.

use crate::core::state::{Close, State};
use crate::ids::ConnId;
use crate::wire::Packet;

/// Handles one packet from bridge `i`'s remote: there is no bridge `i`.
pub fn dispatch(_: &mut State, _: ConnId, _: usize, _: &Packet<'_>) -> Result<(), Close> {
    Err(Close::Protocol("no bridges in this build"))
}
