//! The event loop: poll, accept, read, dispatch, flush, timers, close.
//!
//! This is the only place that reads the clock (`Instant::now()` once per turn, handed to
//! everything else through `State::now`), converts between mio tokens and `ConnId`s, and
//! closes connections, so a will fires once and a session detaches once.
//!
//! A loop turn: wait for events (at most until the next one-second timer sweep); accept new
//! connections; read each readable connection until `WouldBlock` (or a per-turn budget, after
//! which it is revisited next turn), parsing and handling every complete packet; then, for
//! every connection with output, encode its queued messages and write them with one `write`
//! call where the socket allows. Writability is only waited for while output is left.

mod reload;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{debug, info, trace, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::auth::Auth;
use crate::config::Config;
use crate::core::drops::DropReason;
use crate::core::lifecycle;
use crate::core::retain_walk;
use crate::core::state::{Close, State};
use crate::handle;
use crate::ids::ConnId;
use crate::metrics::SysClock;
use crate::net::Transport;
use crate::net::buffer::ReadOutcome;
use crate::net::conn::{Conn, Expiry, Phase};
use crate::net::linger::Lingerers;
use crate::wire::{self, Connack, Disconnect, Properties, Version, reason};

const WAKER: Token = Token(usize::MAX);
const SIGNALS: Token = Token(usize::MAX - 1);
/// Listener `i` has token `LISTENER_TOP - i`; connections use slab keys from 0 upward.
const LISTENER_TOP: usize = usize::MAX - 2;
/// Lingering sockets (closed connections) have tokens from here up, below the listeners.
const LINGER_FIRST: usize = usize::MAX / 2;

/// Reads per connection per turn before it yields to the others (and is revisited).
const READS_PER_TURN: usize = 16;
/// How often keepalive, connect and session-expiry timers are checked.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// What one poll event reported for a token.
#[derive(Clone, Copy, Debug)]
struct Ready {
    token: Token,
    readable: bool,
    writable: bool,
    /// The peer shut down its side (or the socket errored): read through to EOF.
    read_closed: bool,
}

/// Stops a running broker from another thread (the embedding API).
#[derive(Clone, Debug)]
pub struct Handle {
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
}

impl Handle {
    /// Asks the broker to shut down: it closes every connection and `run` returns.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            warn!("could not wake the broker loop: {e}");
        }
    }
}

/// A broker running on a thread of its own, from `Broker::spawn`.
#[derive(Debug)]
pub struct Spawned {
    /// The bound address of each listener, in configuration order.
    pub addrs: Vec<SocketAddr>,
    /// Stops the broker.
    pub handle: Handle,
    /// The broker's thread; joins with `run`'s result.
    pub thread: std::thread::JoinHandle<io::Result<()>>,
}

/// A bound broker, ready to `run`. It is not `Send` (messages are shared with `Rc`): build it
/// on the thread that runs it, or use `Broker::spawn`.
pub struct Broker {
    poll: Poll,
    events: Events,
    listeners: Vec<TcpListener>,
    /// How each listener wraps what it accepts (plain TCP or TLS), in listener order.
    transports: Vec<Transport>,
    state: State,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    signals: Option<Signals>,
    /// Connections to read again at the end of the turn (their per-turn read budget ran
    /// out, or their reads were paused and resumed), each with whether the peer may have
    /// closed its side, which makes a short read not the end of it.
    read_again: Vec<(ConnId, bool)>,
    /// Reused list of this turn's events.
    ready: Vec<Ready>,
    /// Open connections per listener, for each listener's `max_connections`.
    per_listener: Vec<usize>,
    /// Schedule of `$SYS` updates.
    sys: SysClock,
    /// Closed connections' sockets waiting for the client to read the reason (`linger`).
    lingering: Lingerers,
    /// A retained walk can go on: run the next turn at once.
    walk_again: bool,
}

impl Broker {
    /// Binds every configured listener, loading TLS certificates and keys first: a file that
    /// cannot be loaded is an error naming it.
    pub fn bind(config: Config) -> io::Result<Broker> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let transports = config
            .listeners
            .iter()
            .map(Transport::for_listener)
            .collect::<io::Result<Vec<_>>>()?;
        let mut listeners = Vec::new();
        for (i, listener) in config.listeners.iter().enumerate() {
            let mut socket = TcpListener::bind(listener.addr)?;
            poll.registry()
                .register(&mut socket, Token(LISTENER_TOP - i), Interest::READABLE)?;
            info!("listening on {}", socket.local_addr()?);
            listeners.push(socket);
        }
        let auth = (0..config.listeners.len())
            .map(|i| Auth::load(&config.security_for(i)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        Ok(Broker {
            poll,
            events: Events::with_capacity(1024),
            state: State::new(config, auth, Instant::now()),
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            signals: None,
            read_again: Vec::new(),
            ready: Vec::new(),
            per_listener: vec![0; listeners.len()],
            sys: SysClock::new(Instant::now()),
            walk_again: false,
            lingering: Lingerers::new(LINGER_FIRST),
            listeners,
            transports,
        })
    }

    /// Binds the listeners and runs the broker on a new thread.
    pub fn spawn(config: Config) -> io::Result<Spawned> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("pipit".into())
            .spawn(move || match Broker::bind(config) {
                Ok(broker) => {
                    // The receiver waits for this message; if it is gone, nobody can stop us.
                    let _ = tx.send(Ok((broker.local_addrs(), broker.handle())));
                    broker.run()
                }
                Err(e) => {
                    let kind = e.kind();
                    let _ = tx.send(Err(e));
                    Err(kind.into())
                }
            })?;
        let (addrs, handle) = rx
            .recv()
            .map_err(|_| io::Error::other("broker thread exited before binding"))??;
        Ok(Spawned {
            addrs,
            handle,
            thread,
        })
    }

    /// The bound address of each listener, in configuration order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// A handle that can stop the broker from another thread.
    pub fn handle(&self) -> Handle {
        Handle {
            waker: Arc::clone(&self.waker),
            stop: Arc::clone(&self.stop),
        }
    }

    /// Makes SIGINT and SIGTERM shut the broker down cleanly (for the binary; embedders
    /// keep their own signal handling and use `Handle`).
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// Runs the loop until a signal or `Handle::shutdown`, then closes every connection.
    pub fn run(mut self) -> io::Result<()> {
        let mut next_sweep = Instant::now() + SWEEP_INTERVAL;
        loop {
            let next_linger_end = self.lingering.expire(self.poll.registry(), Instant::now());
            let timeout = if self.read_again.is_empty() && !self.walk_again {
                let wake = next_linger_end.map_or(next_sweep, |end| end.min(next_sweep));
                wake.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.state.now = Instant::now();
            self.ready.clear();
            self.ready.extend(self.events.iter().map(|e| Ready {
                token: e.token(),
                readable: e.is_readable() || e.is_read_closed() || e.is_error(),
                writable: e.is_writable(),
                read_closed: e.is_read_closed() || e.is_error(),
            }));
            for i in 0..self.ready.len() {
                let ready = self.ready[i];
                match ready.token {
                    WAKER => {}
                    SIGNALS => self.on_signals(),
                    Token(t) if t > LISTENER_TOP - self.listeners.len() && t <= LISTENER_TOP => {
                        self.accept(LISTENER_TOP - t);
                    }
                    token if self.lingering.owns(token) => {
                        self.lingering.on_event(self.poll.registry(), token);
                    }
                    Token(key) => {
                        if let Some(id) = self.state.conns.id_at(key) {
                            self.on_conn_event(id, ready);
                        }
                    }
                }
            }
            for (id, peer_closed) in std::mem::take(&mut self.read_again) {
                self.on_readable(id, peer_closed);
            }
            self.finish_turn();
            if self.stop.load(Ordering::SeqCst) {
                self.shutdown();
                return Ok(());
            }
            if self.state.now >= next_sweep {
                self.sweep();
                self.sys.tick(&mut self.state);
                self.finish_turn();
                next_sweep = self.state.now + SWEEP_INTERVAL;
            }
        }
    }

    fn on_signals(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        for signal in signals.pending() {
            match signal {
                SIGHUP => crate::broker::reload::security(&mut self.state),
                _ => {
                    info!("signal {signal} received, shutting down");
                    self.stop.store(true, Ordering::SeqCst);
                }
            }
        }
    }

    fn accept(&mut self, listener: usize) {
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

    fn on_conn_event(&mut self, id: ConnId, ready: Ready) {
        if ready.writable {
            let Some(conn) = self.state.conns.get_mut(id) else {
                return;
            };
            conn.writable = true;
            self.state.mark_dirty(id);
        }
        if ready.readable {
            self.on_readable(id, ready.read_closed);
        }
    }

    /// Reads and handles everything available on `id`, within the per-turn budget. A short
    /// read ends the turn's reading early unless the peer has also closed its side: the EOF
    /// behind the data raises no new edge, so it must be read now.
    fn on_readable(&mut self, id: ConnId, peer_closed: bool) {
        let limit = self.state.config.max_packet_size as usize + 5;
        // Packets left in the buffer when the connection was held go first.
        if self
            .state
            .conns
            .get(id)
            .is_some_and(|c| !c.rx.is_empty() && c.held_by.is_none())
            && let Err(why) = self.process_rx(id)
        {
            self.close(id, why);
            return;
        }
        for _ in 0..READS_PER_TURN {
            let state = &mut self.state;
            let Some(conn) = state.conns.get_mut(id) else {
                return;
            };
            if conn.read_paused || conn.held_by.is_some() {
                return;
            }
            match conn.rx.read_from(&mut conn.socket, &mut state.pool, limit) {
                Ok(ReadOutcome::Data { drained, .. }) => {
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
    fn process_rx(&mut self, id: ConnId) -> Result<(), Close> {
        let Some(conn) = self.state.conns.get_mut(id) else {
            return Ok(());
        };
        let mut rx = std::mem::take(&mut conn.rx);
        let max_packet_size = self.state.config.max_packet_size;
        let mut handled_any = false;
        let result = loop {
            // A held connection's packets wait in the buffer until it is released.
            let Some(version) = self
                .state
                .conns
                .get(id)
                .filter(|c| c.held_by.is_none())
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
                Ok(Some((handled, len))) => {
                    handled_any = true;
                    rx.consume(len);
                    if let Err(why) = handled {
                        break Err(why);
                    }
                }
                Err(e) => break Err(Close::Decode(e)),
            }
        };
        let state = &mut self.state;
        let now = state.millis();
        if let Some(conn) = state.conns.get_mut(id) {
            rx.release_if_empty(&mut state.pool);
            conn.rx = rx;
            if handled_any {
                conn.last_packet_at = now;
            }
        }
        result
    }

    /// Stops reading from a client whose own replies are not being read.
    fn pause_if_backed_up(&mut self, id: ConnId) {
        let cap = self.state.config.max_output_buffer;
        if let Some(conn) = self.state.conns.get_mut(id)
            && conn.tx.len() >= cap
        {
            conn.read_paused = true;
        }
    }

    /// Closes what handlers asked to close, moves retained walks on, writes every dirty
    /// connection's output and releases publishers whose subscribers caught up.
    fn finish_turn(&mut self) {
        loop {
            for (id, why) in std::mem::take(&mut self.state.to_close) {
                self.close(id, why);
            }
            if !self.state.walks.is_empty() {
                retain_walk::step(&mut self.state);
            }
            self.flush_dirty();
            self.release_held();
            // A walk whose client has room after this turn's writes goes on next turn.
            self.walk_again = !self.state.walks.is_empty() && retain_walk::any_ready(&self.state);
            if self.state.to_close.is_empty() {
                return;
            }
        }
    }

    /// Lets held publishers be read again once the subscriber they wait for is under half
    /// its `max_output_buffer` (so each release is followed by a useful batch), is slow
    /// (it will drop their QoS 0 now), or is gone.
    fn release_held(&mut self) {
        let state = &mut self.state;
        if state.held.is_empty() {
            return;
        }
        let now = state.millis();
        let cap = state.config.max_output_buffer;
        let slow_after = state.config.slow_subscriber_timeout;
        let mut held = std::mem::take(&mut state.held);
        held.retain(|&(publisher, subscriber)| {
            let Some(conn) = state.conns.get(publisher) else {
                return false;
            };
            if conn.held_by != Some(subscriber) {
                return false;
            }
            let waiting = state.output_backlog(subscriber).is_some_and(|backlog| {
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
            // Its read events were passed over while held: read to WouldBlock or EOF.
            self.read_again.push((publisher, true));
            false
        });
        held.append(&mut state.held);
        state.held = held;
    }

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.state.dirty);
        let limits = self.state.queue_limits();
        let millis = self.state.millis();
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
                let out = conn.tx.frames_up_to(config.max_output_buffer, pool);
                let dropped = session.write_pending(
                    out,
                    config.max_output_buffer,
                    conn.version,
                    limits,
                    *now,
                    frames,
                );
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
            let written = conn.tx.write_to(&mut conn.socket, pool);
            if conn.tx.len() < before {
                conn.last_drained = millis;
            }
            match written {
                Ok(true) => {
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
    }

    /// Closes connections whose timers ran out and discards expired offline sessions.
    fn sweep(&mut self) {
        let millis = self.state.millis();
        let timeout = self.state.config.connect_timeout;
        let expired: Vec<(ConnId, Close)> = self
            .state
            .conns
            .iter()
            .filter_map(|conn| {
                conn.expired(millis, timeout).map(|e| {
                    let why = match e {
                        Expiry::ConnectTimeout => Close::ConnectTimeout,
                        Expiry::KeepAlive => Close::KeepAliveTimeout,
                    };
                    (conn.id, why)
                })
            })
            .collect();
        self.state.to_close.extend(expired);
        lifecycle::expire(&mut self.state);
        crate::core::will::publish_due(&mut self.state);
    }

    /// The one close path: last words to the client, log, will, session, slab slot.
    fn close(&mut self, id: ConnId, why: Close) {
        let Some(mut conn) = self.state.conns.try_remove(id) else {
            return;
        };
        self.per_listener[usize::from(conn.listener)] -= 1;
        let state = &mut self.state;
        let client_max = conn
            .session
            .and_then(|sid| state.sessions.get(sid.0 as usize))
            .and_then(|s| s.link.as_deref())
            .map_or(u32::MAX, |link| link.maximum_packet_size);
        last_words(&mut conn, why, client_max, &mut state.pool);
        if !conn.tx.is_empty() {
            // Best effort: what the socket does not take now lingers below (plain TCP).
            let _ = conn.tx.write_to(&mut conn.socket, &mut state.pool);
        }
        conn.socket.close();
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

        if let Some(sid) = conn.session {
            lifecycle::detach(state, sid, id);
        }
        // [MQTT-3.1.2-8] the will is published when the connection ends without DISCONNECT.
        if why.publishes_will()
            && let Some(will) = conn.will.take()
        {
            crate::core::will::on_close(state, conn.session, *will);
        }
        if why.lingers() {
            // A TLS connection's unwritten bytes are plaintext: only the TCP ones can go.
            let (socket, tcp) = conn.socket.into_tcp();
            let unwritten = if tcp { unwritten } else { Vec::new() };
            self.lingering
                .start(self.poll.registry(), socket, unwritten, state.now);
        }
    }

    /// Publishes every will, delivers what it can, and closes every connection.
    fn shutdown(&mut self) {
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

/// The close reason for a socket error: the TLS layer reports a failed handshake or a bad
/// record as `InvalidData` (plain TCP never does), everything else is a socket error.
fn close_for(e: &io::Error) -> Close {
    match e.kind() {
        io::ErrorKind::InvalidData => Close::Tls,
        kind => Close::Io(kind),
    }
}

/// Queues the final CONNACK or DISCONNECT a closing connection is owed. A v5 DISCONNECT
/// carries the reason as a Reason String unless that would exceed the client's Maximum
/// Packet Size (`client_max`) [MQTT-3.14.2-3].
fn last_words(conn: &mut Conn, why: Close, client_max: u32, pool: &mut crate::net::pool::Pool) {
    match (conn.phase, why) {
        // [MQTT-3.1.2-2] unsupported protocol level: CONNACK 0x01, then close.
        (Phase::AwaitingConnect, Close::Decode(wire::Error::UnsupportedProtocolVersion)) => {
            Connack {
                session_present: false,
                reason_code: reason::v3::UNACCEPTABLE_PROTOCOL_VERSION,
                properties: Properties::default(),
            }
            .encode(Version::V311, conn.tx.frames(pool));
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
        }
        (Phase::Connected, _) if conn.version == Version::V5 => {
            let Some(reason_code) = why.disconnect_code() else {
                return;
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
            disconnect.encode(Version::V5, conn.tx.frames(pool));
        }
        _ => {}
    }
}
