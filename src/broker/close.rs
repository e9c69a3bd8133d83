//! The one close path: last words to the client (CONNACK or DISCONNECT with the reason),
//! the log line, the session detached and the will handled, then the socket left to linger
//! so the client reads why. Also the broker's own shutdown.

use super::*;
use crate::net::ws::WsClose;

impl Broker {
    /// The one close path: last words to the client, log, will, session, slab slot.
    pub(super) fn close(&mut self, id: ConnId, why: Close) {
        let Some(mut conn) = self.state.conns.try_remove(id) else {
            return;
        };
        let local = conn.socket.local().is_some();
        if conn.bridge.is_none() && !local {
            self.per_listener[usize::from(conn.listener)] -= 1;
        }
        let state = &mut self.state;
        let client_max = conn
            .session
            .and_then(|sid| state.sessions.get(sid.0 as usize))
            .map_or(u32::MAX, crate::core::session::Session::maximum_packet_size);
        // A bridge's connection is the broker's own as a client: it owes the remote nothing,
        // and without a DISCONNECT the remote publishes the bridge's `0` will.
        if conn.bridge.is_none() && last_words(&mut conn, why, client_max, &mut state.pool) {
            state.stats.packets_sent += 1;
        }
        if !conn.tx.is_empty() {
            // Best effort: what the socket does not take now lingers below (plain TCP).
            let sent = &mut state.stats.bytes_sent;
            let _ = conn.tx.write_to(&mut conn.socket, &mut state.pool, sent);
        }
        conn.socket.close(!conn.tx.is_empty());
        if let Err(e) = self.poll.registry().deregister(&mut conn.socket) {
            debug!("deregister: {e}");
        }
        conn.rx.consume(usize::MAX);
        conn.rx.release_if_empty(&mut state.pool);
        let unwritten = conn.tx.take_unwritten(&mut state.pool);

        let session = conn
            .session
            .and_then(|sid| state.sessions.get(sid.0 as usize).map(|s| (sid, s)));
        let client_id = session.map_or("", |(_, s)| &s.client_id);
        let level = handle::connection_log_level(state.config.connection_messages);
        let why_line = CloseLine {
            why,
            tls_failure: conn.socket.tls_failure(),
        };
        match why {
            Close::ClientDisconnect { .. } => {
                log::log!(level, "client {client_id} disconnected from {}", conn.peer)
            }
            _ if conn.bridge.is_some() => {
                let name = conn
                    .bridge
                    .and_then(|i| state.bridges.get(usize::from(i)))
                    .map_or("?", |b| &b.config.name);
                // A remote whose certificate does not verify needs the operator, whatever
                // `connection_messages` says.
                let level = match why_line.tls_failure {
                    Some(_) => log::Level::Warn,
                    None => level,
                };
                log::log!(
                    level,
                    "bridge {name}: connection to {} closed: {why_line}",
                    conn.peer
                )
            }
            Close::Refused => log::log!(level, "connection from {} refused at CONNECT", conn.peer),
            _ if conn.phase == Phase::AwaitingConnect => log::log!(
                level,
                "connection from {} closed before CONNECT: {why_line}",
                conn.peer,
            ),
            _ => log::log!(
                level,
                "client {client_id} from {} closed: {why_line}",
                conn.peer,
            ),
        }

        if let Some(hook) = state.hooks.intercept.as_mut()
            && conn.session.is_some()
            && conn.bridge.is_none()
        {
            hook.on_disconnect(client_id);
        }
        if let Some(sid) = conn.session {
            lifecycle::detach(state, sid, id);
        }
        if let Some(i) = conn.bridge {
            let connacked = conn.phase == Phase::Connected;
            // The remote hung up on our CONNECT (FIN or reset): perhaps for the bridge bit.
            let hung_up = matches!(
                why,
                Close::PeerClosed | Close::Io(io::ErrorKind::ConnectionReset)
            );
            crate::bridge::on_closed(state, usize::from(i), connacked, hung_up);
        }
        // [MQTT-3.1.2-8] the will is published when the connection ends without DISCONNECT.
        if let Some(will) = conn.will.take() {
            if why.publishes_will() {
                crate::core::will::on_close(state, conn.session, *will);
            } else {
                // [MQTT-3.14.4-3] discarded: a stored session must not keep it either.
                crate::core::will::gone(state, &will.client_id);
            }
        }
        // What is left goes out as the transport frames it (nothing, over TLS).
        if why.lingers()
            && let Some((socket, unwritten)) = conn.socket.into_lingering(unwritten)
        {
            self.lingering
                .start(self.poll.registry(), socket, unwritten, state.now);
        }
    }

    /// Publishes every will, delivers what it can, and closes every connection.
    pub(super) fn shutdown(&mut self) {
        self.notify_stopping();
        info!(
            "shutting down: closing {} connections",
            self.state.conns.len()
        );
        self.listeners.clear();
        let ids: Vec<ConnId> = self.state.conns.iter().map(|c| c.id).collect();
        for &id in &ids {
            if let Some(will) = self.state.conns.get_mut(id).and_then(|c| c.will.take()) {
                crate::core::will::publish(&mut self.state, *will);
            }
        }
        crate::core::will::publish_all(&mut self.state);
        self.finish_turn();
        for id in ids {
            self.close(id, Close::Shutdown);
        }
        self.lingering.clear(self.poll.registry());
        self.close_store();
        info!("stopped");
    }
}

/// A close reason as the log shows it: with what the TLS layer said when TLS failed, so a
/// failed handshake is one line naming its cause.
struct CloseLine<'a> {
    why: Close,
    tls_failure: Option<&'a dyn std::fmt::Display>,
}

impl std::fmt::Display for CloseLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.why, self.tls_failure) {
            (Close::Tls, Some(detail)) => write!(f, "{}: {detail}", self.why),
            _ => self.why.fmt(f),
        }
    }
}

/// The close reason for a socket error: the WebSocket layer's own reasons travel as a
/// `WsClose`; the TLS layer reports a failed handshake or a bad record as `InvalidData`
/// (plain TCP never does); everything else is a socket error.
pub(super) fn close_for(e: &io::Error) -> Close {
    if let Some(ws) = e.get_ref().and_then(|e| e.downcast_ref::<WsClose>()) {
        return Close::WebSocket(ws.reason());
    }
    match e.kind() {
        io::ErrorKind::InvalidData => Close::Tls,
        kind => Close::Io(kind),
    }
}

/// Queues the final CONNACK or DISCONNECT a closing connection is owed. A v5 DISCONNECT
/// carries the reason as a Reason String unless that would exceed the client's Maximum
/// Packet Size (`client_max`) [MQTT-3.14.2-3], and is not sent at all if even the bare
/// reason code would [MQTT-3.1.2-24]. Returns whether a packet was queued.
fn last_words(
    conn: &mut Conn,
    why: Close,
    client_max: u32,
    pool: &mut crate::net::pool::Pool,
) -> bool {
    match (conn.phase, why) {
        // [MQTT-3.1.2-2] unsupported protocol level: CONNACK 0x01, then close.
        (Phase::AwaitingConnect, Close::Decode(wire::Error::UnsupportedProtocolVersion)) => {
            Connack {
                session_present: false,
                reason_code: reason::v3::UNACCEPTABLE_PROTOCOL_VERSION,
                properties: Properties::default(),
            }
            .encode(Version::V311, conn.tx.frames(pool));
            true
        }
        // A v5 CONNECT that cannot be decoded: CONNACK with the reason [MQTT-3.1.4-1].
        (Phase::AwaitingConnect, Close::Decode(e))
            if wire::connect_version(conn.rx.front()) == Some(Version::V5) =>
        {
            Connack {
                session_present: false,
                reason_code: reason::for_error(e),
                properties: Properties::default(),
            }
            .encode(Version::V5, conn.tx.frames(pool));
            true
        }
        (Phase::Connected, _) if conn.version == Version::V5 => {
            let Some(reason_code) = why.disconnect_code() else {
                return false;
            };
            let mut disconnect = Disconnect {
                reason_code,
                properties: Properties {
                    reason_string: Some(why.reason_string()),
                    ..Properties::default()
                },
            };
            if disconnect.encoded_len(Version::V5) > client_max as usize {
                disconnect.properties.reason_string = None;
            }
            // [MQTT-3.1.2-24] a client that cannot take even the bare reason code gets none.
            let fits = disconnect.encoded_len(Version::V5) <= client_max as usize;
            if fits {
                disconnect.encode(Version::V5, conn.tx.frames(pool));
            }
            fits
        }
        _ => false,
    }
}
