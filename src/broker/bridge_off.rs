//! Without the `bridge` feature: the loop's bridge steps, with no bridge to step (`config`
//! refuses `connection` blocks in this build, so there never is one).

use super::Broker;

impl Broker {
    /// Moves each bridge's link on: there are none.
    pub(super) fn bridges_tick(&mut self) {}

    /// SIGHUP's bridge reload: there are none to reload, and a file that now has a
    /// `connection` block is refused by `config` (the reload of the rest goes on).
    pub(super) fn reload_bridges(&mut self) {}
}
