//! Closing a connection so the client reads why.
//!
//! When the broker closes a connection that still has unread input (a client that keeps
//! publishing past Receive Maximum, say), closing the socket at once makes the kernel answer
//! with a reset, and a reset can destroy the DISCONNECT (or refusing CONNACK) still in flight:
//! the client sees "connection reset" instead of the reason code. So a connection the broker
//! closes lingers: what is left of its output is written, then the write side is shut down
//! (the client reads the reason and then EOF), and its input is read and discarded until the
//! client closes too, for at most [`LINGER`] and [`LINGER_BYTES`]. The connection itself is
//! already gone (session detached, will handled, slot freed); only the socket waits here.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use log::debug;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;

/// How long a closed connection waits for the client to close its side.
pub const LINGER: Duration = Duration::from_secs(1);
/// How much input a lingering connection reads (and discards) before it gives up.
pub const LINGER_BYTES: usize = 64 * 1024;
/// Most connections lingering at once; beyond that a connection is closed at once.
const MAX_LINGERING: usize = 1024;

/// One closed connection's socket, waiting for the client to read its last words.
#[derive(Debug)]
struct Lingering {
    socket: TcpStream,
    /// Output not yet written (the reason code, usually a few bytes).
    unwritten: Vec<u8>,
    /// Whether the write side is shut down (after the last output byte).
    shut: bool,
    until: Instant,
    /// Input bytes still allowed.
    budget: usize,
}

/// Sockets lingering after close, registered with tokens from `first_token` up.
#[derive(Debug)]
pub struct Lingerers {
    slab: Slab<Lingering>,
    first_token: usize,
}

impl Lingerers {
    /// None lingering; their tokens are `first_token + key`.
    pub fn new(first_token: usize) -> Lingerers {
        Lingerers {
            slab: Slab::new(),
            first_token,
        }
    }

    /// Whether `token` is a lingering socket's.
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.first_token && self.slab.contains(token.0 - self.first_token)
    }

    /// Starts lingering on `socket` (already deregistered), with `unwritten` output left.
    /// Closes it at once if too many linger already or it cannot be registered.
    pub fn start(
        &mut self,
        registry: &Registry,
        socket: TcpStream,
        unwritten: Vec<u8>,
        now: Instant,
    ) {
        if self.slab.len() >= MAX_LINGERING {
            return;
        }
        let entry = self.slab.vacant_entry();
        let mut lingering = Lingering {
            socket,
            unwritten,
            shut: false,
            until: now + LINGER,
            budget: LINGER_BYTES,
        };
        let token = Token(self.first_token + entry.key());
        if let Err(e) = registry.register(
            &mut lingering.socket,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            debug!("lingering close: register: {e}");
            return;
        }
        let key = entry.key();
        entry.insert(lingering);
        self.advance(registry, key);
    }

    /// Handles an event for a lingering socket's `token`.
    pub fn on_event(&mut self, registry: &Registry, token: Token) {
        self.advance(registry, token.0 - self.first_token);
    }

    /// Closes every socket whose linger ran out at `now`; returns the earliest deadline left.
    pub fn expire(&mut self, registry: &Registry, now: Instant) -> Option<Instant> {
        let expired: Vec<usize> = self
            .slab
            .iter()
            .filter(|(_, l)| l.until <= now)
            .map(|(key, _)| key)
            .collect();
        for key in expired {
            self.remove(registry, key);
        }
        self.slab.iter().map(|(_, l)| l.until).min()
    }

    /// Closes every lingering socket (the broker is stopping).
    pub fn clear(&mut self, registry: &Registry) {
        let keys: Vec<usize> = self.slab.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.remove(registry, key);
        }
    }

    /// Writes what is left, shuts the write side once it is written, and reads input until
    /// EOF, an error or the byte budget; the socket is closed when any of those comes.
    fn advance(&mut self, registry: &Registry, key: usize) {
        let Some(l) = self.slab.get_mut(key) else {
            return;
        };
        match step(l) {
            Ok(true) => {}
            Ok(false) => self.remove(registry, key),
            Err(e) => {
                debug!("lingering close: {e}");
                self.remove(registry, key);
            }
        }
    }

    fn remove(&mut self, registry: &Registry, key: usize) {
        if let Some(mut l) = self.slab.try_remove(key) {
            // Best effort: the socket is closed when dropped either way.
            let _ = registry.deregister(&mut l.socket);
        }
    }
}

/// One round of writing and draining; `Ok(false)` when the socket can be closed.
fn step(l: &mut Lingering) -> io::Result<bool> {
    while !l.unwritten.is_empty() {
        match l.socket.write(&l.unwritten) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                l.unwritten.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if l.unwritten.is_empty() && !l.shut {
        l.shut = true;
        l.socket.shutdown(Shutdown::Write)?;
    }
    let mut scratch = [0u8; 4096];
    loop {
        match l.socket.read(&mut scratch) {
            // The client closed its side: it has read everything before our FIN.
            Ok(0) => return Ok(false),
            Ok(n) if n >= l.budget => return Ok(false),
            Ok(n) => l.budget -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
