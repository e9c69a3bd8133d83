//! The loop's side of bridges (`crate::bridge` has their protocol): when a link is due, a
//! non-blocking connect to its address with CONNECT queued behind it, so the first writable
//! event sends it (over TLS, after the ClientHello: CONNECT waits in rustls until the
//! handshake ends); a PINGREQ every keepalive interval while it is up. Resolving a host name
//! happens on a helper thread (`bridge::resolve`), looked at here once per sweep. A lazy
//! bridge starts when its threshold is queued and stops when idle; `bridge_stop` ends a link
//! cleanly (idle, or SIGHUP: `reload_bridges`).

use std::net::IpAddr;

use socket2::{Domain, Protocol, Socket, Type};

use super::*;
use crate::bridge::{self, Link};
use crate::net::Connector;

/// Each bridge's way of wrapping its outbound socket (plain or TLS), by bridge index.
pub(super) type Connectors = Vec<Connector>;

/// The connectors `config`'s bridges ask for; a TLS file that cannot be loaded is an error
/// naming it.
pub(super) fn connectors(config: &Config) -> io::Result<Connectors> {
    config.bridges.iter().map(Connector::for_bridge).collect()
}

impl Broker {
    /// Moves every bridge's link on: starts due connections (a lazy one only with its
    /// threshold queued), takes resolver answers, pings, and stops a lazy link gone idle.
    pub(super) fn bridges_tick(&mut self) {
        let now = self.state.now;
        for i in 0..self.state.bridges.len() {
            if bridge::due(&self.state, i) {
                let b = &mut self.state.bridges[i];
                match bridge::resolve(b) {
                    Ok(addrs) => self.bridge_connect(i, &addrs),
                    Err(rx) => b.link = Link::Resolving(rx),
                }
                continue;
            }
            if bridge::idle(&self.state, i) {
                info!(
                    "bridge {}: nothing sent for idle_timeout; disconnecting",
                    self.state.bridges[i].config.name
                );
                self.bridge_stop(i, "idle_timeout");
                // Back when the threshold is queued again, without a backoff.
                self.state.bridges[i].link = Link::Idle(Some(now));
                continue;
            }
            let b = &mut self.state.bridges[i];
            match &b.link {
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

    /// Ends bridge `i`'s link now: one that is up says goodbye first (`encode_goodbye`); a
    /// name lookup under way is forgotten. The link is left `Idle` as a close leaves it.
    pub(super) fn bridge_stop(&mut self, i: usize, why: &'static str) {
        let b = &mut self.state.bridges[i];
        let id = match b.link {
            Link::Connected(id) => {
                let State {
                    conns,
                    pool,
                    bridges,
                    ..
                } = &mut self.state;
                if let Some(conn) = conns.get_mut(id) {
                    bridge::encode_goodbye(&bridges[i], conn.tx.frames(pool));
                }
                id
            }
            Link::Connecting(id) => id,
            Link::Resolving(_) | Link::Idle(_) => {
                b.link = Link::Idle(None);
                return;
            }
        };
        self.close(id, Close::Reason(reason::SUCCESS, why));
    }

    /// SIGHUP: reads the configuration file again and brings the bridges in line with its
    /// `connection` blocks (`bridge::reload`). Changed and removed bridges' links end
    /// cleanly first. A file that no longer loads (or a bridge TLS file that does not)
    /// leaves every bridge as it is, and the log says why.
    pub(super) fn reload_bridges(&mut self) {
        let Some(path) = self.config_file.clone() else {
            return;
        };
        let loaded = Config::load(&path).map(|(config, warnings)| {
            for warning in warnings {
                warn!("{warning}");
            }
            config.bridges
        });
        let new = match loaded {
            Ok(new) => new,
            Err(e) => {
                warn!("SIGHUP: keeping the bridges as they are: {e}");
                return;
            }
        };
        let connectors = match new.iter().map(Connector::for_bridge).collect() {
            Ok(connectors) => connectors,
            Err(e) => {
                warn!("SIGHUP: keeping the bridges as they are: {e}");
                return;
            }
        };
        let fates = bridge::reload::plan(&self.state.bridges, &new);
        for (i, fate) in fates.iter().enumerate() {
            if !matches!(fate, bridge::reload::Fate::Kept(_)) {
                self.bridge_stop(i, "reconfigured by SIGHUP");
            }
        }
        let kept = fates
            .iter()
            .filter(|f| matches!(f, bridge::reload::Fate::Kept(_)))
            .count();
        let total = new.len();
        bridge::reload::apply(&mut self.state, new, &fates);
        self.connectors = connectors;
        info!(
            "SIGHUP: reloaded bridges from {}: {kept} of {total} unchanged",
            path.display()
        );
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
        let b = &self.state.bridges[i];
        let socket = connect_from(b.config.bind_address, addr)?;
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

/// A non-blocking connect to `addr`, from `bind` if given (`bridge_bind_address`: the
/// socket is bound to it, any port, before connecting).
fn connect_from(bind: Option<IpAddr>, addr: SocketAddr) -> io::Result<mio::net::TcpStream> {
    let Some(ip) = bind else {
        return mio::net::TcpStream::connect(addr);
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::new(ip, 0).into())?;
    socket.set_nonblocking(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(mio::net::TcpStream::from_std(socket.into()))
}
