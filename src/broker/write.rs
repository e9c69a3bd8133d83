//! The end of a loop turn: close what handlers asked to close, move retained walks on,
//! encode each dirty connection's queued messages and write them with one call, and let
//! held publishers be read again once their subscribers catch up.

use super::close::close_for;
use super::*;
use crate::core::session::Session;
use crate::net::Stream;

impl Broker {
    /// Closes what handlers asked to close, moves retained walks on, writes every dirty
    /// connection's output and releases publishers whose subscribers caught up.
    pub(super) fn finish_turn(&mut self) {
        loop {
            for (id, why) in std::mem::take(&mut self.state.to_close) {
                self.close(id, why);
            }
            if !self.state.walks.is_empty() {
                retain_walk::step(&mut self.state);
            }
            // Without `fsync` (which holds acknowledgements until their batch is durable),
            // what the handlers appended reaches the OS before any acknowledgement of it
            // leaves, so a kill -9 loses nothing. With it, one batch per turn: a second would
            // make each turn's acknowledgements wait for two syncs.
            if !self.state.journal.holds() {
                self.commit_journal();
            }
            self.flush_dirty();
            self.release_held();
            // Then the sends just made (packet ids given to stored messages). What either
            // commit releases is written by the next pass.
            self.commit_journal();
            // A walk whose client has room after this turn's writes goes on next turn.
            self.walk_again = !self.state.walks.is_empty() && retain_walk::any_ready(&self.state);
            if self.state.to_close.is_empty() && self.state.dirty.is_empty() {
                // What was left for the next turn keeps it from waiting in `poll`.
                self.state.dirty.append(&mut self.next_turn);
                self.read_this_turn = 0;
                self.packets_this_turn = 0;
                return;
            }
        }
    }

    /// Lets held publishers be read again once the subscriber they wait for is under half
    /// its `max_output_buffer` (so each release is followed by a useful batch), is slow
    /// (it will drop their QoS 0 now, as it does under `memory_limit`), or is gone.
    pub(super) fn release_held(&mut self) {
        let state = &mut self.state;
        if state.held.is_empty() {
            return;
        }
        let now = state.millis();
        let cap = state.config.max_output_buffer;
        let slow_after = state.config.slow_subscriber_timeout;
        // Under memory_limit's QoS 0 stage a subscriber not keeping up has its QoS 0 dropped,
        // so nobody need wait for it (`route::deliver`).
        let shedding = state.budget.sheds(crate::core::budget::Shed::Qos0);
        let mut held = std::mem::take(&mut state.held);
        held.retain(|&(publisher, subscriber)| {
            let Some(conn) = state.conns.get(publisher) else {
                return false;
            };
            if conn.held_by != Some(subscriber) {
                return false;
            }
            let waiting = !shedding
                && state.output_backlog(subscriber).is_some_and(|backlog| {
                    backlog >= cap / 2
                        && state
                            .conns
                            .get(subscriber)
                            .is_some_and(|s| now.since(s.last_drained) <= slow_after)
                });
            if waiting {
                return true;
            }
            if let Some(conn) = state.conns.get_mut(publisher) {
                conn.held_by = None;
            }
            self.released.push(publisher);
            false
        });
        held.append(&mut state.held);
        state.held = held;
    }

    pub(super) fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.state.dirty);
        let mut again = Vec::new();
        let limits = self.state.queue_limits();
        let millis = self.state.millis();
        let busy = self.read_this_turn >= BUSY_TURN
            && self.read_this_turn >= self.packets_this_turn * LARGE_PACKETS;
        let next_turn = &mut self.next_turn;
        let waited = &mut self.waited;
        self.state.frames.clear();
        let State {
            conns,
            sessions,
            pool,
            config,
            to_close,
            now,
            stats,
            frames,
            journal,
            ..
        } = &mut self.state;
        for &id in &dirty {
            let Some(conn) = conns.get_mut(id) else {
                continue;
            };
            conn.dirty = false;
            if let Some(session) = conn.session.and_then(|s| sessions.get_mut(s.0 as usize))
                && session.has_pending(limits)
                && conn.tx.len() < config.max_output_buffer
            {
                conn.tx.frames_up_to(config.max_output_buffer, pool);
                let (out, spliced) = conn.tx.frames_and_spliced();
                // Large payloads go out from the shared message with a vectored write over
                // plain TCP. TLS and WebSocket streams copy them as before: each record or
                // frame is built (and, for TLS, encrypted) from a copy anyway.
                let spliced = matches!(conn.socket, Stream::Tcp(_)).then_some(spliced);
                let dropped = session.write_pending(
                    out,
                    spliced,
                    config.max_output_buffer,
                    conn.version,
                    limits,
                    *now,
                    frames,
                    journal,
                );
                if dropped.held {
                    self.durable_waiters.push(id);
                }
                stats.count_sends(&dropped);
                let client_id = &session.client_id;
                stats
                    .dropped
                    .count(DropReason::Expired, dropped.expired, client_id);
                stats
                    .dropped
                    .count(DropReason::TooLarge, dropped.too_large, client_id);
            }
            if !conn.writable {
                continue;
            }
            // Only a busy turn looks up the session or the bit: other turns, nearly all of
            // them, pay nothing for the rule. A bit left set by a turn that did not look
            // lets that connection's output go once without waiting later: harmless.
            if busy
                && only_acks(conn, conn.session.and_then(|s| sessions.get(s.0 as usize)))
                && !waited_last_turn(waited, id, false)
            {
                waited_last_turn(waited, id, true);
                conn.dirty = true;
                next_turn.push(id);
                continue;
            }
            if conn.tx.is_empty() {
                conn.last_drained = millis;
                // TLS records (handshake replies, the rest of earlier writes) may still wait.
                match conn.socket.flush_pending() {
                    Ok(true) => {}
                    Ok(false) => conn.writable = false,
                    Err(e) => to_close.push((id, close_for(&e))),
                }
                continue;
            }
            let before = conn.tx.len();
            let written = conn
                .tx
                .write_to(&mut conn.socket, pool, &mut stats.bytes_sent);
            if conn.tx.len() < before {
                conn.last_drained = millis;
            }
            match written {
                Ok(true) => {
                    // The kernel took everything, but the session may hold more than one
                    // pass admits (`write_pending` stops at `max_output_buffer`). Nothing
                    // else would wake this connection: no writable edge comes after a
                    // complete write, and its publishers may be held for it. So it stays
                    // dirty and is written again by `finish_turn`'s next pass, in this same
                    // turn, until the kernel is full or nothing is left (else the queue
                    // sat until the subscriber was declared slow and its QoS 0 dropped: 200
                    // publishers of 16 KiB to one reading subscriber lost almost everything).
                    if conn
                        .session
                        .and_then(|s| sessions.get(s.0 as usize))
                        .is_some_and(|s| s.has_pending(limits))
                    {
                        conn.dirty = true;
                        again.push(id);
                    }
                    if conn.read_paused {
                        conn.read_paused = false;
                        // Its read events were passed over while paused, so nothing says
                        // whether an EOF waits behind the data: read to WouldBlock or EOF.
                        self.read_again.push((id, true));
                    }
                }
                Ok(false) => conn.writable = false,
                Err(e) => to_close.push((id, close_for(&e))),
            }
        }
        dirty.clear();
        if self.state.dirty.is_empty() {
            self.state.dirty = dirty;
        }
        self.state.dirty.append(&mut again);
    }
}

/// Bytes read in one turn past which the turn is busy: 256 KiB, sixteen 16 KiB messages.
const BUSY_TURN: u64 = 256 * 1024;

/// Bytes per packet read, on average, in a turn of large messages. Counting the
/// subscribers' acknowledgements, 16 KiB messages average about 8 KiB. Small messages stay
/// under it, and their publishers' acknowledgements never wait: QoS 2 publishers of 64-byte
/// messages, whose PUBRECs and PUBCOMPs pace them, did 0.92 of their rate when they waited.
const LARGE_PACKETS: u64 = 2048;

/// Output this small is acknowledgements (a PUBACK is 4 bytes), not messages.
const ACKS_ONLY: usize = 512;

/// Whether `conn`'s output is a few acknowledgements: under `ACKS_ONLY` bytes, on a session
/// with no subscription, so no new message comes to it (what an earlier subscription left
/// queued may, and then waits one turn with the acknowledgements). After a busy turn of
/// large messages such a publisher's PUBACKs wait one turn, to go out with the next turn's
/// in one write. That cuts the writes, and the publishers' wake-ups, a stream of large
/// messages costs (0.21 to 0.13-0.18 per message at 16 KiB); a subscriber's messages never
/// wait.
fn only_acks(conn: &Conn, session: Option<&Session>) -> bool {
    !conn.tx.is_empty()
        && conn.tx.len() < ACKS_ONLY
        && session.is_some_and(|s| s.subscription_count() == 0)
}

/// Whether `id`'s acknowledgements waited last turn, by its bit in `waited`, which is then
/// set to `now`. A closed connection's bit may pass to the next in its slot, whose output is
/// then written once without waiting: harmless.
fn waited_last_turn(waited: &mut Vec<u64>, id: ConnId, now: bool) -> bool {
    let (word, bit) = (id.index() / 64, 1u64 << (id.index() % 64));
    if now && waited.len() <= word {
        waited.resize(word + 1, 0);
    }
    let Some(w) = waited.get_mut(word) else {
        return false;
    };
    let was = *w & bit != 0;
    if now {
        *w |= bit;
    } else {
        *w &= !bit;
    }
    was
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection whose acknowledgements waited is written the turn after, whatever that
    /// turn is, and may wait again only the turn after that; others are not touched.
    #[test]
    fn acknowledgements_wait_one_turn_at_most() {
        let mut waited = Vec::new();
        let (a, b) = (ConnId::new(3, 0), ConnId::new(130, 1));
        assert!(!waited_last_turn(&mut waited, a, false), "none waited yet");
        assert!(waited.is_empty(), "reading grows nothing");
        assert!(!waited_last_turn(&mut waited, b, true), "b waits now");
        assert_eq!(waited.len(), 3, "one bit per slot, up to b's");
        assert!(
            waited_last_turn(&mut waited, b, false),
            "so b is written next turn"
        );
        assert!(
            !waited_last_turn(&mut waited, b, false),
            "and may wait the turn after"
        );
        assert!(
            !waited_last_turn(&mut waited, a, false),
            "a's bit was never set"
        );
    }
}
