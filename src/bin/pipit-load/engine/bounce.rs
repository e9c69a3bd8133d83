//! `--bounce`: persistent subscribers leave and resume their sessions while publishing, so a
//! run checks that a broker keeps and re-sends what a session is owed across connections.
//!
//! Subscriber `s` first leaves `(s + 1) * period / (subscribers + 1)` after publishing
//! starts (so they are staggered), then every `period`; each absence lasts [`ABSENCE`].
//! Leaves alternate a DISCONNECT and a reset (SO_LINGER 0, no DISCONNECT, nothing of the
//! write buffer kept). Streams belong to the subscriber index, not the connection, so
//! losses and duplicates are counted across the whole run.

use std::time::{Duration, Instant};

use log::debug;

use super::Engine;
use crate::client::Role;
use crate::mqtt;

/// How long a bouncing subscriber stays away.
const ABSENCE: Duration = Duration::from_secs(1);

/// Each subscriber's next leave or return, and what happened so far.
#[derive(Default)]
pub(super) struct Bounces {
    /// Per subscriber: when it next leaves (`Ok`) or returns (`Err`); empty until publishing.
    due: Vec<Result<Instant, Instant>>,
    /// Leaves so far.
    pub(super) leaves: u64,
}

impl Engine<'_> {
    /// Leaves and returns whatever is due at `now` (called each turn while publishing).
    pub(super) fn bounce(&mut self, now: Instant) {
        let Some(period) = self.opts.bounce else {
            return;
        };
        let n = self.world.subs.len();
        if self.bounces.due.is_empty() {
            self.bounces.due = (0..n)
                .map(|s| Ok(now + period.mul_f64((s + 1) as f64 / (n + 1) as f64)))
                .collect();
        }
        for s in 0..n {
            match self.bounces.due[s] {
                Ok(at) if now >= at => {
                    self.leave(s);
                    self.bounces.due[s] = Err(now + ABSENCE);
                }
                Err(at) if now >= at => {
                    self.come_back(s);
                    self.bounces.due[s] = Ok(now + period);
                }
                _ => {}
            }
        }
    }

    /// Brings back every subscriber still away (publishing stopped: the drain needs them).
    pub(super) fn end_bounces(&mut self) {
        for s in 0..self.bounces.due.len() {
            if self.bounces.due[s].is_err() {
                self.come_back(s);
            }
        }
        self.bounces.due.clear();
    }

    /// Closes subscriber `s`'s connection, with DISCONNECT on even leaves and a reset on odd.
    fn leave(&mut self, s: usize) {
        let key = std::mem::replace(&mut self.world.subs[s].key, usize::MAX);
        let Some(mut client) = self.clients.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut client.conn.stream);
        let reset = self.bounces.leaves % 2 == 1;
        self.bounces.leaves += 1;
        if reset {
            // SO_LINGER 0: close() sends RST and drops what was not yet written.
            let _ = socket2::SockRef::from(&client.conn.stream).set_linger(Some(Duration::ZERO));
        } else {
            mqtt::disconnect(&mut client.conn.tx);
            let _ = client.conn.flush();
        }
        debug!(
            "subscriber {s} leaves ({})",
            if reset { "reset" } else { "DISCONNECT" }
        );
    }

    /// Reconnects subscriber `s` with its persistent session (it subscribes again on CONNACK).
    fn come_back(&mut self, s: usize) {
        match self.open(Role::Subscriber(s), s) {
            Ok(key) => self.world.subs[s].key = key,
            Err(why) => {
                self.client_failures += 1;
                self.note_error(format!("subscriber {s} reconnect: {why}"));
            }
        }
    }
}
