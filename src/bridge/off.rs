//! Without the `bridge` feature: no bridges. `config` refuses a `connection` block (and any
//! bridge option) at its line, and `Broker` a `Config` made in code that has bridges, so
//! `State::bridges` stays empty and no session or connection is ever a bridge's. What the
//! rest of the broker names is here: a `Bridge` that cannot be made (its configuration is
//! readable, for the code that looks a bridge up by index and finds none) and the calls
//! routing and the loop make, each doing what it does when no bridge is configured.

use std::rc::Rc;

use crate::config::BridgeConfig;
use crate::core::message::Message;
use crate::core::session::QueueLimits;
use crate::core::state::State;
use crate::wire::QoS;

/// One bridge: none can exist in this build.
#[derive(Debug)]
pub struct Bridge {
    /// Its `connection` block.
    pub config: BridgeConfig,
    /// Makes the type impossible to build.
    never: Never,
}

/// No value.
#[derive(Debug)]
enum Never {}

/// Starts the configured bridges: there are none.
pub fn start(_: &mut State) {}

/// Publishes the bridges' `$SYS` figures: there are none.
pub fn publish_sys(_: &mut State) {}

/// Bridge `i`'s link closed: there is no bridge `i`.
pub fn on_closed(state: &mut State, i: usize, _: bool, _: bool) {
    if let Some(b) = state.bridges.get(i) {
        match b.never {}
    }
}

/// The message bridge `i` sends to its remote: there is no bridge `i`.
pub fn outbound(_: &mut State, _: u16, _: &Rc<Message>) -> Option<Rc<Message>> {
    None
}

/// Whether bridge `i` sends RETAIN on: there is no bridge `i`.
pub fn outgoing_retain(_: &State, _: u16) -> bool {
    false
}

/// The QoS bridge `i` sends at: there is no bridge `i`, the QoS is unchanged.
pub fn outgoing_qos(_: &State, _: u16, qos: QoS) -> QoS {
    qos
}

/// Bridge `i`'s queue bounds: there is no bridge `i`, the broker's own apply.
pub fn make_room(state: &mut State, _: u16, _: &Message, _: QoS) -> QueueLimits {
    state.queue_limits()
}
