//! The loop's side of hooks' deferred decisions (`auth/defer.rs`): on a wake-up, each
//! completion goes to the connection that waits for it, and a connection whose packet has
//! every answer is handled again from that packet on, then read again.

use super::*;

impl Broker {
    /// Takes every completed decision; a connection whose waiting packet is now answered is
    /// resumed. A completion for a connection that has gone (its `ConnId`'s generation no
    /// longer matches) or for a decision no longer waited for is ignored.
    pub(super) fn on_decisions(&mut self) {
        while let Ok(done) = self.decisions.try_recv() {
            let id = done.conn;
            let Some(hooks) = (self.state.conns.get_mut(id)).and_then(|c| c.hooks.as_deref_mut())
            else {
                debug!("a hook's decision for {id:?} came after its connection closed");
                continue;
            };
            if hooks.record(done) {
                self.resume(id);
            }
        }
    }
}
