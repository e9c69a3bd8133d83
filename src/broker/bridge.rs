//! The loop's side of bridges (`crate::bridge` has their protocol): when a link is due, a
//! non-blocking connect to its address with CONNECT queued behind it, so the first writable
//! event sends it (over TLS, after the ClientHello: CONNECT waits in rustls until the
//! handshake ends); a PINGREQ every keepalive interval while it is up. Resolving a host name
//! happens on a helper thread (`bridge::resolve`), looked at here once per sweep.

use super::*;
use crate::bridge::{self, Link};

impl Broker {
    /// Moves every bridge's link on: starts due connections, takes resolver answers, pings.
    pub(super) fn bridges_tick(&mut self) {
        let now = self.state.now;
        for i in 0..self.state.bridges.len() {
            let b = &mut self.state.bridges[i];
            match &b.link {
                Link::Idle(Some(at)) if *at <= now => match bridge::resolve(b) {
                    Ok(addrs) => self.bridge_connect(i, &addrs),
                    Err(rx) => b.link = Link::Resolving(rx),
                },
                Link::Resolving(rx) => {
                    if let Some(addrs) = bridge::resolved(rx) {
                        self.bridge_connect(i, &addrs);
                    }
                }
                &Link::Connected(id) => {
                    if bridge::ping_due(b, now) {
                        let State { conns, pool, .. } = &mut self.state;
                        if let Some(conn) = conns.get_mut(id) {
                            wire::encode_pingreq(conn.tx.frames(pool));
                        }
                        self.state.mark_dirty(id);
                    }
                }
                Link::Idle(_) | Link::Connecting(_) => {}
            }
        }
    }

    /// Connects bridge `i` to the first of `addrs` (what its current address resolved to).
    fn bridge_connect(&mut self, i: usize, addrs: &[SocketAddr]) {
        let b = &self.state.bridges[i];
        let (host, port) = &b.config.addresses[b.address];
        let Some(&addr) = addrs.first() else {
            warn!("bridge {}: cannot resolve {host}:{port}", b.config.name);
            bridge::on_closed(&mut self.state, i, false, false);
            return;
        };
        info!(
            "bridge {}: connecting to {host}:{port} ({addr}){}{}",
            b.config.name,
            if self.connectors[i].is_tls() {
                ", TLS"
            } else {
                ""
            },
            if b.private { ", try_private" } else { "" }
        );
        match self.open_bridge(i, addr) {
            Ok(id) => self.state.bridges[i].link = Link::Connecting(id),
            Err(e) => {
                warn!(
                    "bridge {}: connect to {addr}: {e}",
                    self.state.bridges[i].config.name
                );
                bridge::on_closed(&mut self.state, i, false, false);
            }
        }
    }

    /// Opens bridge `i`'s connection to `addr` without waiting for it, CONNECT queued.
    fn open_bridge(&mut self, i: usize, addr: SocketAddr) -> io::Result<ConnId> {
        let socket = mio::net::TcpStream::connect(addr)?;
        let b = &self.state.bridges[i];
        let host = &b.config.addresses[b.address].0;
        let mut stream = self.connectors[i].wrap(socket, host)?;
        let state = &mut self.state;
        let id = state.conns.next_id();
        self.poll.registry().register(
            &mut stream,
            Token(id.index()),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let mut conn = Conn::new(id, stream, addr, 0, state.millis());
        let b = &state.bridges[i];
        conn.bridge = Some(i as u16);
        conn.version = b.config.protocol_version;
        // Nothing is written before the connect completes (the first writable event).
        conn.writable = false;
        bridge::encode_connect(b, conn.tx.frames(&mut state.pool));
        state.conns.insert(conn);
        Ok(id)
    }
}
