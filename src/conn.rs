//! `Conn`: one client network connection: socket, buffers, protocol version, keepalive and
//! the session it is attached to once CONNECT succeeds.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::buffer::{RxBuf, TxBuf};
use crate::config::Config;
use crate::net::Stream;
use crate::session::SessionId;
use crate::will::Will;
use crate::wire::Version;

/// Index of a connection in the broker's connection slab (its mio token). Stored as `u32`
/// (connections are bounded by file descriptors) to keep sessions small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(u32);

impl ConnId {
    /// The id of slab slot `key`.
    pub fn new(key: usize) -> ConnId {
        ConnId(key as u32)
    }

    /// The slab slot.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A peer's address as logs need it: 20 bytes where a `SocketAddr` takes 32 (IPv6 flow
/// info and scope id are not kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr {
    ip: IpAddr,
    port: u16,
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> PeerAddr {
        PeerAddr {
            ip: addr.ip(),
            port: addr.port(),
        }
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        SocketAddr::new(self.ip, self.port).fmt(f)
    }
}

/// Milliseconds since the broker started, wrapping every 49 days: enough to measure
/// timeouts of at most 1.5 × 65535 s, at a quarter of an `Instant`'s size per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Millis(pub u32);

impl Millis {
    /// The time from `earlier` to `self` (correct across a wrap, for spans under 49 days).
    pub fn since(self, earlier: Millis) -> Duration {
        Duration::from_millis(u64::from(self.0.wrapping_sub(earlier.0)))
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted; the first packet must be CONNECT [MQTT-3.1.0-1].
    AwaitingConnect,
    /// CONNECT accepted; attached to a session.
    Connected,
}

/// Why a connection's timer fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// No CONNECT within the connect timeout.
    ConnectTimeout,
    /// Silent for more than one and a half keepalive periods [MQTT-3.1.2-24].
    KeepAlive,
}

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    /// The socket, plain or TLS.
    pub socket: Stream,
    /// The peer's address, for logs.
    pub peer: PeerAddr,
    /// Index of the listener it came in on.
    pub listener: u16,
    /// Where it is in its life.
    pub phase: Phase,
    /// Protocol version from CONNECT (3.1.1 until then).
    pub version: Version,
    /// The attached session, once connected.
    pub session: Option<SessionId>,
    /// Keepalive in seconds from CONNECT; 0 disables the check.
    pub keep_alive: u16,
    /// When the last packet arrived (or the connection was accepted).
    pub last_packet_at: Millis,
    /// The will to publish if the connection ends without a normal DISCONNECT (boxed: most
    /// connections have none, and an idle connection should stay small).
    pub will: Option<Box<Will>>,
    /// Bytes read and not yet parsed.
    pub rx: RxBuf,
    /// Frames not yet written.
    pub tx: TxBuf,
    /// False after a write would block, until the socket reports writable again.
    pub writable: bool,
    /// On the broker's dirty list this turn (it has output to produce).
    pub dirty: bool,
    /// Reading stopped because its output is not being consumed.
    pub read_paused: bool,
    /// Reading stopped because a subscriber of its messages is over its output bound
    /// (`State::hold`); that subscriber's connection.
    pub held_by: Option<ConnId>,
    /// When its output was last drained (written, or found under `max_output_buffer`): a
    /// client over the bound that has not drained for `slow_subscriber_timeout` is slow.
    pub last_drained: Millis,
}

impl Conn {
    /// A freshly accepted connection.
    pub fn new(socket: Stream, peer: SocketAddr, listener: usize, now: Millis) -> Conn {
        Conn {
            socket,
            peer: peer.into(),
            // Listeners are few: the configuration cannot open 65536 sockets on one port set.
            listener: listener as u16,
            phase: Phase::AwaitingConnect,
            version: Version::V311,
            session: None,
            keep_alive: 0,
            last_packet_at: now,
            will: None,
            rx: RxBuf::default(),
            tx: TxBuf::default(),
            writable: true,
            dirty: false,
            read_paused: false,
            held_by: None,
            last_drained: now,
        }
    }

    /// With `use_identity_as_username` on its listener, the username that replaces CONNECT's
    /// username and password: the client certificate's CN, `Some(None)` without one.
    pub fn identity(&self, config: &Config) -> Option<Option<Box<str>>> {
        let tls = config
            .listeners
            .get(usize::from(self.listener))?
            .tls
            .as_ref()?;
        tls.use_identity_as_username
            .then(|| self.socket.peer_common_name())
    }

    /// Whether a timer of this connection has run out at `now`.
    pub fn expired(&self, now: Millis, connect_timeout: Duration) -> Option<Expiry> {
        let silent = now.since(self.last_packet_at);
        match self.phase {
            Phase::AwaitingConnect if silent > connect_timeout => Some(Expiry::ConnectTimeout),
            Phase::AwaitingConnect => None,
            Phase::Connected if self.keep_alive == 0 => None,
            // [MQTT-3.1.2-24] one and a half times the keepalive, in milliseconds.
            Phase::Connected => {
                let limit = Duration::from_millis(u64::from(self.keep_alive) * 1500);
                (silent > limit).then_some(Expiry::KeepAlive)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_print_like_socket_addresses() {
        for text in ["127.0.0.1:1883", "[::1]:8883"] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(PeerAddr::from(addr).to_string(), text);
        }
    }

    #[test]
    fn millis_spans_survive_the_wrap() {
        let before = Millis(u32::MAX - 500);
        let after = Millis(499);
        assert_eq!(after.since(before), Duration::from_millis(1000));
        assert_eq!(Millis(2000).since(Millis(500)), Duration::from_millis(1500));
    }
}
