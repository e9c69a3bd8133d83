//! Reading: accepting connections, reading each readable one within its per-turn budget,
//! and handing every complete packet to `handle`. A connection whose own output is backed
//! up, or that is held for a subscriber over its output bound, is not read from.

use super::close::close_for;
use super::*;

impl Broker {
    pub(super) fn accept(&mut self, listener: usize) {
        loop {
            let (socket, peer) = match self.listeners[listener].accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("accept failed: {e}");
                    return;
                }
            };
            let state = &mut self.state;
            let listener_full = state.config.listeners[listener]
                .max_connections
                .is_some_and(|max| self.per_listener[listener] >= max);
            if listener_full
                || state
                    .config
                    .max_connections
                    .is_some_and(|max| state.conns.len() >= max)
            {
                state.stats.connections_refused += 1;
                info!("refused connection from {peer}: max_connections reached");
                continue;
            }
            // Frames are already batched per turn, so Nagle would only add latency.
            if let Err(e) = socket.set_nodelay(true) {
                debug!("TCP_NODELAY on {peer}: {e}");
            }
            let options = &state.config.listeners[listener];
            if let Err(e) = crate::net::listen::set_tcp_options((&socket).into(), options) {
                warn!("TCP keepalive or user timeout on {peer}: {e}");
            }
            let mut socket = match self.transports[listener].wrap(socket) {
                Ok(socket) => socket,
                Err(e) => {
                    warn!("could not start TLS with {peer}: {e}");
                    continue;
                }
            };
            let now = state.millis();
            let id = state.conns.next_id();
            let token = Token(id.index());
            if let Err(e) = self.poll.registry().register(
                &mut socket,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                warn!("could not register connection from {peer}: {e}");
                continue;
            }
            state
                .conns
                .insert(Conn::new(id, socket, peer, listener, now));
            self.per_listener[listener] += 1;
            state.stats.connections_accepted += 1;
            debug!("accepted connection from {peer}");
        }
    }

    pub(super) fn on_conn_event(&mut self, id: ConnId, ready: Ready) {
        if ready.writable {
            let Some(conn) = self.state.conns.get_mut(id) else {
                return;
            };
            conn.writable = true;
            self.state.mark_dirty(id);
        }
        // A client that goes away while its CONNECT waits for a deferred decision is let
        // go now (it has no session yet); a late answer finds no connection. (A local
        // client's events always say read-closed: its own pipe says when it has gone.)
        if ready.read_closed
            && let Some(conn) = self.state.conns.get_mut(id)
            && conn.waiting()
            && conn.phase == Phase::AwaitingConnect
            && conn.socket.local().is_none()
        {
            self.close(id, Close::PeerClosed);
            return;
        }
        if ready.readable {
            self.on_readable(id, ready.read_closed);
        }
    }

    /// Resumes a publisher that was held: the packets left in its buffer first, then what
    /// waits on its socket (its read events were passed over while held: read to
    /// `WouldBlock` or EOF).
    pub(super) fn resume(&mut self, id: ConnId) {
        if self.state.conns.get(id).is_some_and(|c| !c.rx.is_empty())
            && let Err(why) = self.process_rx(id)
        {
            self.close(id, why);
            return;
        }
        self.on_readable(id, true);
    }

    /// Reads and handles everything available on `id`, within the per-turn budget. A short
    /// read ends the turn's reading early unless the peer has also closed its side: the EOF
    /// behind the data raises no new edge, so it must be read now.
    pub(super) fn on_readable(&mut self, id: ConnId, peer_closed: bool) {
        let limit = self.state.config.max_packet_size as usize + 5;
        for _ in 0..READS_PER_TURN {
            let state = &mut self.state;
            let Some(conn) = state.conns.get_mut(id) else {
                return;
            };
            if conn.read_paused || conn.held_by.is_some() || conn.waiting() {
                return;
            }
            match conn.rx.read_from(&mut conn.socket, &mut state.pool, limit) {
                Ok(ReadOutcome::Data { bytes, drained }) => {
                    state.stats.bytes_received += bytes as u64;
                    self.read_this_turn += bytes as u64;
                    if let Err(why) = self.process_rx(id) {
                        self.close(id, why);
                        return;
                    }
                    self.pause_if_backed_up(id);
                    if drained && !peer_closed {
                        return;
                    }
                }
                Ok(ReadOutcome::WouldBlock) => {
                    conn.rx.release_if_empty(&mut state.pool);
                    return;
                }
                Ok(ReadOutcome::Eof) => {
                    self.close(id, Close::PeerClosed);
                    return;
                }
                Ok(ReadOutcome::Full) => {
                    self.close(id, Close::Protocol("receive buffer full"));
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close(id, close_for(&e));
                    return;
                }
            }
        }
        // The read budget ran out: read the rest after the other connections, with what the
        // event said about the peer's side.
        self.read_again.push((id, peer_closed));
    }

    /// Parses and handles every complete packet in `id`'s receive buffer.
    pub(super) fn process_rx(&mut self, id: ConnId) -> Result<(), Close> {
        let Some(conn) = self.state.conns.get_mut(id) else {
            return Ok(());
        };
        let bridge = conn.bridge;
        let mut rx = std::mem::take(&mut conn.rx);
        let max_packet_size = self.max_packet_size(bridge);
        let mut handled = 0;
        // Large payloads are not copied out of the buffer: their messages share it.
        self.state.receiving = rx.shareable().cloned();
        let result = loop {
            // A held connection's packets wait in the buffer until it is released, and so
            // do those of one waiting for a hook's decision.
            let Some(version) = self
                .state
                .conns
                .get(id)
                .filter(|c| c.held_by.is_none() && !c.waiting())
                .map(|c| c.version)
            else {
                break Ok(());
            };
            let state = &mut self.state;
            let decoded = wire::decode_with(rx.front(), version, max_packet_size, |packet| {
                trace!("{id:?} -> {packet:?}");
                handle::dispatch(state, id, packet)
            });
            match decoded {
                Ok(None) => break Ok(()),
                Ok(Some((outcome, len))) => {
                    let conn = self.state.conns.get_mut(id);
                    // The packet asked a hook that answers later: it stays at the front of
                    // the buffer, to be handled again with the answers.
                    if outcome.is_ok() && conn.as_ref().is_some_and(|c| c.waiting()) {
                        break Ok(());
                    }
                    // A CONNECT that began an enhanced authentication exchange is kept,
                    // to be handled again when the exchange succeeds.
                    if let Some(hooks) = conn.and_then(|c| c.hooks.as_deref_mut())
                        && std::mem::take(&mut hooks.keep_connect)
                    {
                        hooks.connect = rx.front().get(..len).map(Box::from);
                    }
                    handled += 1;
                    rx.consume(len);
                    if let Err(why) = outcome {
                        break Err(why);
                    }
                }
                Err(e) => break Err(Close::Decode(e)),
            }
        };
        let state = &mut self.state;
        state.receiving = None;
        state.stats.packets_received += handled;
        self.packets_this_turn += handled;
        let now = state.millis();
        if let Some(conn) = state.conns.get_mut(id) {
            rx.release_if_empty(&mut state.pool);
            conn.rx = rx;
            if handled > 0 {
                conn.last_packet_at = now;
            }
        }
        if handled > 0 {
            // A CONNECT starts its keepalive, which may end before the connect timeout
            // armed at accept; otherwise a check is armed already and this does nothing.
            state.conns.arm(id, state.uptime_millis(), now);
        }
        result
    }

    /// The largest packet taken on a connection: `max_packet_size`, or for bridge
    /// `bridge`'s link the smaller of it and `bridge_max_packet_size`: a larger one from
    /// the remote closes the link (MQTT 5 remotes are told the bound in CONNECT).
    fn max_packet_size(&self, bridge: Option<u16>) -> u32 {
        let ours = self.state.config.max_packet_size;
        (bridge.and_then(|i| self.state.bridges.get(usize::from(i))))
            .map(|b| b.config.max_packet_size)
            .filter(|&m| m > 0)
            .map_or(ours, |m| m.min(ours))
    }

    /// Stops reading from a client whose own replies are not being read.
    pub(super) fn pause_if_backed_up(&mut self, id: ConnId) {
        let cap = self.state.config.max_output_buffer;
        if let Some(conn) = self.state.conns.get_mut(id)
            && conn.tx.len() >= cap
        {
            conn.read_paused = true;
        }
    }
}
