//! Driving the whole broker without sockets or a clock, for the fuzz harness (`crate::fuzz`)
//! and the tests that replay its corpus.
//!
//! A [`Driver`] is a [`Broker`] with no listening socket whose connections are in-memory
//! streams (`net/mem.rs`), and whose clock moves only when told. Each call is one event of the
//! real loop (`Broker::run`): bytes arriving, the peer closing, the peer reading (the socket
//! writable again), or time passing (the loop's once-a-second work, `Broker::on_second`:
//! keepalive, connect timeout, session expiry, delayed wills, `$SYS`; configured bridges
//! would dial out over real sockets, so the harness configures none; the memory trim is
//! left out, its fresh slab reservation being no input's doing). After each, the rest of
//! the loop turn runs as in `run` (`Broker::read_pending`, then `finish_turn`): released
//! publishers are resumed, budgeted reads finished, closes, retained walks and writes done,
//! until nothing is left for an immediate next turn. The handlers, state, close path and
//! output path are the broker's own; only `poll` and `Instant::now` are not.

use std::net::{Ipv4Addr, SocketAddr};

use super::*;
use crate::net::Stream;
use crate::net::mem::{self, MemPeer};

/// A broker run by its caller, one event at a time. Not for production use.
pub struct Driver {
    broker: Broker,
    /// Each connection made, by the index `connect` returned (closed ones stay, inert).
    peers: Vec<(ConnId, MemPeer)>,
    /// The driven clock.
    now: Instant,
}

impl Driver {
    /// A broker for `config` with no socket bound (listeners only lend their settings);
    /// persistence and bridges as configured.
    pub fn new(config: Config) -> io::Result<Driver> {
        let broker = Broker::unbound(config)?;
        let now = broker.state.now;
        Ok(Driver {
            broker,
            peers: Vec::new(),
            now,
        })
    }

    /// A new client connection on the first listener, as if accepted now, with `window` bytes
    /// of room for the broker's output; returns its index for the calls below.
    pub fn connect(&mut self, window: usize) -> usize {
        let state = &mut self.broker.state;
        let (stream, peer) = mem::pair(window);
        let id = state.conns.next_id();
        // A loopback peer, so anonymous clients are let in as on the default listener.
        let port = 1024 + (self.peers.len() % 60_000) as u16;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let now = state.millis();
        state
            .conns
            .insert(Conn::new(id, Stream::Mem(stream), addr, 0, now));
        self.broker.per_listener[0] += 1;
        state.stats.connections_accepted += 1;
        self.peers.push((id, peer));
        self.peers.len() - 1
    }

    /// Number of connections made so far (open or not).
    pub fn connections(&self) -> usize {
        self.peers.len()
    }

    /// Whether connection `index` is still open on the broker's side.
    pub fn is_open(&self, index: usize) -> bool {
        self.peers
            .get(index)
            .is_some_and(|(id, _)| self.broker.state.conns.get(*id).is_some())
    }

    /// Connection `index` sends `bytes`, as a blocking writer would: what fits in the
    /// receive buffer, a read event and the rest of the turn, again while the broker takes
    /// more. What the broker leaves unread once the buffer is full (it holds this publisher
    /// back, or waits on a hook) is dropped, as if the peer gave up; returns the bytes sent.
    pub fn send(&mut self, index: usize, bytes: &[u8]) -> usize {
        let mut sent = 0;
        loop {
            let taken = self
                .peers
                .get(index)
                .map_or(0, |(_, peer)| peer.send(&bytes[sent..]));
            sent += taken;
            self.event(index, true, false, false);
            if sent == bytes.len() || taken == 0 {
                return sent;
            }
        }
    }

    /// Connection `index` closes its side: a read event that ends in EOF.
    pub fn close(&mut self, index: usize) {
        if let Some((_, peer)) = self.peers.get(index) {
            peer.close();
        }
        self.event(index, true, false, true);
    }

    /// Connection `index` reads everything the broker wrote and has room for `window` bytes
    /// more: a write event.
    pub fn drain(&mut self, index: usize, window: usize) {
        if let Some((_, peer)) = self.peers.get(index) {
            peer.drain(window);
        }
        self.event(index, false, true, false);
    }

    /// Bytes the broker has written to connection `index` in all.
    pub fn written(&self, index: usize) -> u64 {
        self.peers.get(index).map_or(0, |(_, peer)| peer.written())
    }

    /// Moves the clock on by `by`, then runs the sweep the loop runs every second.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.broker.state.set_now(self.now);
        self.broker.on_second();
        self.settle();
    }

    /// Shuts the broker down as a signal would: wills published, every connection closed.
    pub fn shutdown(mut self) {
        self.broker.state.set_now(self.now);
        self.broker.shutdown();
    }

    /// One poll event for connection `index`, then the rest of the turn.
    fn event(&mut self, index: usize, readable: bool, writable: bool, read_closed: bool) {
        let Some(&(id, _)) = self.peers.get(index) else {
            return;
        };
        self.broker.state.set_now(self.now);
        let ready = Ready {
            token: Token(id.index()),
            readable,
            writable,
            read_closed,
        };
        if self.broker.state.conns.get(id).is_some() {
            self.broker.on_conn_event(id, ready);
        }
        self.broker.finish_turn();
        self.settle();
    }

    /// Runs further turns, as `run` does without waiting, while publishers were released,
    /// reads were left for later, or a retained walk can go on.
    fn settle(&mut self) {
        let broker = &mut self.broker;
        while !broker.released.is_empty() || !broker.read_again.is_empty() || broker.walk_again {
            broker.read_pending();
            broker.finish_turn();
        }
    }
}
