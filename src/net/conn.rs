//! `Conn`: one client network connection: socket, buffers, protocol version, keepalive and
//! the session it is attached to once CONNECT succeeds.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::ids::{ConnId, Millis};

use slab::Slab;

use crate::config::Config;
use crate::core::will::Will;
use crate::ids::SessionId;
use crate::net::Stream;
use crate::net::buffer::{RxBuf, TxBuf};
use crate::wire::Version;

/// Connection slots `Conns::shrink` always leaves room for.
const SLOTS_KEPT: usize = 256;
/// How soon a connection whose timers are suspended (the broker is not reading it) is
/// looked at again: the sweep's period, so it times out as soon as reading resumes.
const RECHECK: Duration = Duration::from_secs(1);

/// After a burst: when `slab` held `peak` entries at once and most of those slots are now
/// vacant, moves it to a fresh allocation with the `reserved` slots reserved again, so the
/// pages the burst touched go back while the reservation (untouched, so never resident)
/// stays and the slab still never grows by copies. Returns the bytes of touched slots
/// given back.
pub fn shrink_slab<T>(slab: &mut Slab<T>, peak: usize, reserved: usize) -> usize {
    let len = slab.len();
    if peak <= 2 * len + SLOTS_KEPT {
        return 0;
    }
    slab.shrink_to_fit();
    slab.reserve_exact(reserved.saturating_sub(len));
    (peak - len) * std::mem::size_of::<T>()
}

/// The open connections. Every lookup takes a whole `ConnId` and finds nothing if the slot
/// now holds a later connection.
///
/// Their timers (connect timeout, keepalive) are checked from a deadline heap, so a sweep
/// touches only the connections whose check is due, not every idle one. Each connection
/// has one live check, the time in its `check_at`; a packet does not move it (that would
/// be a heap operation per packet): when it comes due and the connection was heard from
/// since, it is armed again for the new deadline. Entries left by a closed connection or by
/// arming a check earlier are skipped when they come up, and dropped in bulk by `shrink`.
#[derive(Debug)]
pub struct Conns {
    slab: Slab<Conn>,
    /// Timer checks, soonest first: (milliseconds since the broker started, connection).
    checks: BinaryHeap<Reverse<(u64, ConnId)>>,
    /// The time of the last `arm` or `timed_out`, in milliseconds since the broker started,
    /// from which `insert` dates a new connection's `Millis` stamp.
    uptime: u64,
    /// How long a new connection has to send CONNECT.
    connect_timeout: Duration,
    /// The generation the next accepted connection gets.
    next_generation: u32,
    /// The slots reserved up front, which `shrink` keeps.
    reserved: usize,
    /// The most connections open at once since the last `shrink`.
    peak: usize,
}

impl Conns {
    /// No connections, with room reserved for `capacity` slots.
    pub fn with_capacity(capacity: usize) -> Conns {
        Conns {
            slab: Slab::with_capacity(capacity),
            checks: BinaryHeap::new(),
            uptime: 0,
            connect_timeout: Duration::from_secs(10),
            next_generation: 0,
            reserved: capacity,
            peak: 0,
        }
    }

    /// Sets how long a new connection has to send CONNECT (`connect_timeout`).
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Conns {
        self.connect_timeout = connect_timeout;
        self
    }

    /// The id the next inserted connection gets (register its socket with this token).
    pub fn next_id(&self) -> ConnId {
        ConnId::new(self.slab.vacant_key(), self.next_generation)
    }

    /// Stores a new connection, whose `id` must be `next_id()`.
    pub fn insert(&mut self, conn: Conn) -> ConnId {
        let id = conn.id;
        debug_assert_eq!(id, self.next_id(), "a connection is inserted under next_id");
        // Accepted at or after the last arm or sweep: its stamp is that far past `uptime`.
        let now = conn.last_packet_at;
        let uptime = self.uptime + u64::from(now.0.wrapping_sub(self.uptime as u32));
        self.slab.insert(conn);
        self.arm(id, uptime, now);
        self.peak = self.peak.max(self.slab.len());
        self.next_generation = self.next_generation.wrapping_add(1);
        id
    }

    /// The connection `id`, if it is still open.
    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slab.get(id.index()).filter(|c| c.id == id)
    }

    /// The connection `id`, if it is still open.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slab.get_mut(id.index()).filter(|c| c.id == id)
    }

    /// Removes connection `id`, if it is still open.
    pub fn try_remove(&mut self, id: ConnId) -> Option<Conn> {
        self.get(id)?;
        self.slab.try_remove(id.index())
    }

    /// The connection whose mio token is `token`, if any.
    pub fn id_at(&self, token: usize) -> Option<ConnId> {
        self.slab.get(token).map(|c| c.id)
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// After a burst of connections (see `shrink_slab`); returns the bytes freed. The keys
    /// of dropped slots are free, so no token changes, and the generation is global, so no
    /// id can come back. Timer checks of closed connections go too, once they outnumber
    /// the live ones (a storm of short connections leaves one each).
    pub fn shrink(&mut self) -> usize {
        let mut freed = shrink_slab(&mut self.slab, self.peak, self.reserved);
        self.peak = self.slab.len();
        if self.checks.len() > 2 * self.slab.len() + SLOTS_KEPT {
            let slab = &self.slab;
            self.checks.retain(|&Reverse((at, id))| {
                slab.get(id.index())
                    .is_some_and(|c| c.id == id && c.check_at == Some(Millis(at as u32)))
            });
        }
        let entries = self.checks.capacity();
        if entries > 2 * self.checks.len() + SLOTS_KEPT {
            self.checks.shrink_to_fit();
            freed += (entries - self.checks.capacity()) * size_of::<Reverse<(u64, ConnId)>>();
        }
        freed
    }

    /// Arms connection `id`'s timer check for when a timer of it can next run out, `now`
    /// being `uptime` milliseconds since the broker started; nothing if an earlier check is
    /// armed already (it arms the next one when it comes), or no timer runs.
    pub fn arm(&mut self, id: ConnId, uptime: u64, now: Millis) {
        self.uptime = uptime;
        let Some(conn) = self.slab.get_mut(id.index()).filter(|c| c.id == id) else {
            return;
        };
        let Some(delay) = conn.next_check(now, self.connect_timeout) else {
            return;
        };
        let at = uptime + delay.as_millis() as u64;
        // Stamps wrap (`Millis`, 49 days); checks are at most 1.5 x 65535 s (or the connect
        // timeout) ahead, far from half a wrap.
        let armed_earlier = conn
            .check_at
            .is_some_and(|armed| (at as u32).wrapping_sub(armed.0) as i32 >= 0);
        if armed_earlier {
            return;
        }
        conn.check_at = Some(Millis(at as u32));
        self.checks.push(Reverse((at, id)));
    }

    /// The connections whose timers ran out, `now` being `uptime` milliseconds since the
    /// broker started. Looks only at the checks that are due, and arms each one's next.
    pub fn timed_out(&mut self, uptime: u64, now: Millis) -> Vec<(ConnId, Expiry)> {
        self.uptime = uptime;
        let mut expired = Vec::new();
        while let Some(&Reverse((at, id))) = self.checks.peek() {
            if at > uptime {
                break;
            }
            self.checks.pop();
            let Some(conn) = self.slab.get_mut(id.index()).filter(|c| c.id == id) else {
                continue;
            };
            if conn.check_at != Some(Millis(at as u32)) {
                continue;
            }
            conn.check_at = None;
            if let Some(why) = conn.expired(now, self.connect_timeout) {
                expired.push((id, why));
            }
            // Even when expired: until it is closed it is reported again at each sweep.
            self.arm(id, uptime, now);
        }
        expired
    }

    /// Every open connection.
    pub fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.slab.iter().map(|(_, c)| c)
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
    /// Its id in [`Conns`].
    pub id: ConnId,
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
    /// The bridge (index in `State::bridges`) this is the outbound connection of: the
    /// broker is the client here.
    pub bridge: Option<u16>,
    /// The client connected with Mosquitto's bridge bit (`try_private`, protocol level 0x83
    /// or 0x84): its subscriptions are no-local and retain-as-published.
    pub bridge_peer: bool,
    /// PUBACKs to the peer held until what they confirm is durable (`persist::held`): its
    /// QoS 1 PUBLISHes not yet acknowledged, which a bridge's Receive Maximum bounds.
    pub held_pubacks: u16,
    /// When its output was last drained (written, or found under `max_output_buffer`): a
    /// client over the bound that has not drained for `slow_subscriber_timeout` is slow.
    pub last_drained: Millis,
    /// Its part in hook decisions and enhanced authentication (`auth/defer.rs`); boxed, as
    /// most connections never need it.
    pub(crate) hooks: Option<Box<crate::auth::defer::ConnHooks>>,
    /// When its live timer check in `Conns` is due, if one is armed.
    check_at: Option<Millis>,
}

impl Conn {
    /// A freshly accepted connection.
    pub fn new(id: ConnId, socket: Stream, peer: SocketAddr, listener: usize, now: Millis) -> Conn {
        Conn {
            id,
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
            bridge: None,
            bridge_peer: false,
            held_pubacks: 0,
            last_drained: now,
            hooks: None,
            check_at: None,
        }
    }

    /// Whether its input waits for a hook's deferred decision (neither read nor handled).
    pub fn waiting(&self) -> bool {
        self.hooks.as_ref().is_some_and(|h| h.waiting())
    }

    /// The client id assigned to its CONNECT while that CONNECT waited for a hook.
    pub(crate) fn assigned_id(&self) -> Option<&str> {
        self.hooks.as_ref()?.assigned_id.as_deref()
    }

    /// Its part in hook decisions, made on first use.
    pub(crate) fn hooks_mut(&mut self) -> &mut crate::auth::defer::ConnHooks {
        self.hooks.get_or_insert_with(Box::default)
    }

    /// With `use_identity_as_username` or `use_subject_as_username` on its listener, the
    /// username that replaces CONNECT's username and password: the client certificate's CN
    /// or subject, `Some(None)` without a certificate or such a name.
    pub fn identity(&self, config: &Config) -> Option<Option<Box<str>>> {
        let tls = config
            .listeners
            .get(usize::from(self.listener))?
            .tls
            .as_ref()?;
        let from = tls.cert_username()?;
        Some(self.socket.peer_username(from))
    }

    /// Whether a timer of this connection has run out at `now`.
    pub fn expired(&self, now: Millis, connect_timeout: Duration) -> Option<Expiry> {
        let silent = now.since(self.last_packet_at);
        match self.phase {
            Phase::AwaitingConnect if silent > connect_timeout => Some(Expiry::ConnectTimeout),
            Phase::AwaitingConnect => None,
            Phase::Connected if self.keep_alive == 0 => None,
            // Not read from by the broker's choice (held for a subscriber, or its own output
            // backed up): its packets wait unread, so its silence is not its own.
            Phase::Connected if self.held_by.is_some() || self.read_paused => None,
            Phase::Connected => {
                (silent > keep_alive_limit(self.keep_alive)).then_some(Expiry::KeepAlive)
            }
        }
    }

    /// How long from `now` until `expired` can first say a timer ran out, if a timer runs
    /// (none does for a connected client with keepalive 0). One whose packets the broker is
    /// not reading is looked at again after `RECHECK`, as long as that lasts.
    pub fn next_check(&self, now: Millis, connect_timeout: Duration) -> Option<Duration> {
        let limit = match self.phase {
            Phase::AwaitingConnect => connect_timeout,
            Phase::Connected if self.keep_alive == 0 => return None,
            Phase::Connected if self.held_by.is_some() || self.read_paused => {
                return Some(RECHECK);
            }
            Phase::Connected => keep_alive_limit(self.keep_alive),
        };
        // `expired` wants a silence longer than the limit: one millisecond past it.
        let silent = now.since(self.last_packet_at);
        Some(limit.saturating_sub(silent) + Duration::from_millis(1))
    }
}

/// [MQTT-3.1.2-24] One and a half times the keepalive (seconds) without a packet closes
/// the connection.
fn keep_alive_limit(keep_alive: u16) -> Duration {
    Duration::from_millis(u64::from(keep_alive) * 1500)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection over a real loopback socket (its peer end is dropped).
    fn conn(id: ConnId) -> Conn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let socket = std::net::TcpStream::connect(addr).unwrap();
        let stream = Stream::Tcp(mio::net::TcpStream::from_std(socket));
        Conn::new(id, stream, addr, 0, Millis(0))
    }

    #[test]
    fn a_stale_id_cannot_reach_a_connection_that_reuses_its_slot() {
        let mut conns = Conns::with_capacity(4);
        let old = conns.insert(conn(conns.next_id()));
        assert!(conns.get(old).is_some());
        // The old connection closes and a new one takes its slot in the same turn, while a
        // close request (say, "taken over") for the old one is still queued.
        assert!(conns.try_remove(old).is_some());
        let new = conns.insert(conn(conns.next_id()));
        assert_eq!(new.index(), old.index(), "the slot is reused");
        assert!(conns.get(old).is_none());
        assert!(conns.get_mut(old).is_none());
        assert!(
            conns.try_remove(old).is_none(),
            "the stale request closes nothing"
        );
        assert_eq!(conns.len(), 1);
        assert_eq!(conns.id_at(new.index()), Some(new));
        assert!(conns.get(new).is_some());
    }

    #[test]
    fn a_connection_the_broker_is_not_reading_does_not_time_out() {
        let mut c = conn(ConnId::new(0, 0));
        c.phase = Phase::Connected;
        c.keep_alive = 10;
        let later = Millis(16_000);
        assert_eq!(
            c.expired(later, Duration::from_secs(10)),
            Some(Expiry::KeepAlive)
        );
        c.held_by = Some(ConnId::new(1, 1));
        assert_eq!(c.expired(later, Duration::from_secs(10)), None, "held");
        c.held_by = None;
        c.read_paused = true;
        assert_eq!(c.expired(later, Duration::from_secs(10)), None, "paused");
    }

    /// `timed_out` at second `s` (a sweep's view: uptime and stamp agree).
    fn sweep(conns: &mut Conns, s: u64) -> Vec<(ConnId, Expiry)> {
        conns.timed_out(s * 1000, Millis((s * 1000) as u32))
    }

    #[test]
    fn a_sweep_looks_only_at_connections_whose_check_is_due() {
        let mut conns = Conns::with_capacity(4);
        let quiet = conns.insert(conn(conns.next_id()));
        let talker = conns.insert(conn(conns.next_id()));
        for id in [quiet, talker] {
            let c = conns.get_mut(id).unwrap();
            c.phase = Phase::Connected;
            c.keep_alive = 10;
        }
        // Their connect timeouts, armed at accept, come due and arm their keepalives (15 s
        // after their last packet, at 0).
        assert!(sweep(&mut conns, 11).is_empty());
        assert_eq!(conns.checks.len(), 2);
        // Nothing is due before 15 s: the heap is not even popped.
        assert!(sweep(&mut conns, 14).is_empty());
        assert_eq!(conns.checks.len(), 2);
        // The talker sent a packet at 10 s: its check at 15 s arms the next, at 25 s.
        conns.get_mut(talker).unwrap().last_packet_at = Millis(10_000);
        assert_eq!(sweep(&mut conns, 16), vec![(quiet, Expiry::KeepAlive)]);
        assert!(sweep(&mut conns, 25).iter().all(|&(id, _)| id != talker));
        assert!(sweep(&mut conns, 26).contains(&(talker, Expiry::KeepAlive)));
    }

    #[test]
    fn a_connect_arms_a_keepalive_shorter_than_the_connect_timeout() {
        let mut conns = Conns::with_capacity(4).with_connect_timeout(Duration::from_secs(10));
        let id = conns.insert(conn(conns.next_id()));
        assert_eq!(
            conns.checks.peek(),
            Some(&Reverse((10_001, id))),
            "connect timeout"
        );
        // CONNECT at 1 s with keepalive 1: the loop arms it, due 1.5 s later.
        let c = conns.get_mut(id).unwrap();
        (c.phase, c.keep_alive, c.last_packet_at) = (Phase::Connected, 1, Millis(1000));
        conns.arm(id, 1000, Millis(1000));
        assert!(sweep(&mut conns, 2).is_empty(), "1 s of silence");
        assert_eq!(sweep(&mut conns, 3), vec![(id, Expiry::KeepAlive)]);
        // The connect timeout's entry is stale and skipped.
        assert!(
            sweep(&mut conns, 11)
                .iter()
                .all(|&(_, why)| why == Expiry::KeepAlive)
        );
    }

    #[test]
    fn checks_of_closed_connections_are_dropped_by_shrink() {
        let mut conns = Conns::with_capacity(4);
        for _ in 0..600 {
            let id = conns.insert(conn(conns.next_id()));
            conns.try_remove(id);
        }
        assert_eq!(conns.checks.len(), 600);
        conns.shrink();
        assert!(conns.checks.is_empty());
    }

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
