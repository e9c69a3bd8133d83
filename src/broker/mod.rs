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

#[cfg_attr(not(feature = "bridge"), path = "bridge_off.rs")]
mod bridge;
mod close;
mod decide;
pub mod drive;
mod embedding;
#[cfg_attr(not(feature = "persistence"), path = "persist_off.rs")]
mod persist;
mod read;
mod reload;
mod service;
mod trim;
mod write;

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

use crate::auth::{Auth, Dynsec};
use crate::config::Config;
use crate::core::drops::DropReason;
use crate::core::lifecycle;
use crate::core::retain_walk;
use crate::core::state::{Close, State};
use crate::handle;
use crate::ids::ConnId;
use crate::metrics::Metrics;
use crate::metrics::http::MetricsServer;
use crate::net::Transport;
use crate::net::buffer::ReadOutcome;
use crate::net::conn::{Conn, Expiry, Phase};
use crate::net::linger::Lingerers;
use crate::wire::{self, Connack, Disconnect, Properties, Version, reason};

use embedding::Locals;
pub use embedding::{Handle, Spawned};

const WAKER: Token = Token(usize::MAX);
const SIGNALS: Token = Token(usize::MAX - 1);
/// Listener `i` has token `LISTENER_TOP - i`; connections use slab keys from 0 upward.
const LISTENER_TOP: usize = usize::MAX - 2;
/// Lingering sockets (closed connections) have tokens from here up, below the listeners.
const LINGER_FIRST: usize = usize::MAX / 2;
/// The metrics listener's token; its scrapes have the few tokens below it.
const METRICS: usize = LINGER_FIRST - 1;

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

/// SIGINT, SIGTERM and SIGHUP caught from the moment it is made, held until the loop
/// handles them (`Broker::handle_signals`). The binary makes it before binding, so a signal
/// that arrives while the broker starts is handled, not fatal (SIGHUP's default action).
pub struct SignalCatcher(Signals);

impl std::fmt::Debug for SignalCatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalCatcher")
    }
}

impl SignalCatcher {
    /// Installs the handlers.
    pub fn install() -> io::Result<SignalCatcher> {
        Signals::new([SIGINT, SIGTERM, SIGHUP]).map(SignalCatcher)
    }
}

/// A bound broker, ready to `run`. It is not `Send` (messages are shared with `Rc`): build it
/// on the thread that runs it, or use `Broker::spawn`.
pub struct Broker {
    poll: Poll,
    events: Events,
    listeners: Vec<TcpListener>,
    /// How each listener wraps what it accepts (plain TCP or TLS), in listener order.
    transports: Vec<Transport>,
    /// Each bridge's way of wrapping its outbound socket (plain or TLS), by bridge index.
    #[cfg(feature = "bridge")]
    connectors: bridge::Connectors,
    state: State,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    signals: Option<Signals>,
    /// Connections to read again at the end of the turn (their per-turn read budget ran
    /// out, or their reads were paused and resumed), each with whether the peer may have
    /// closed its side, which makes a short read not the end of it.
    read_again: Vec<(ConnId, bool)>,
    /// Bytes read since the last turn's writes (`finish_turn` resets it): a turn busy with
    /// large messages leaves publishers' acknowledgements for the next.
    read_this_turn: u64,
    /// Packets handled since the last turn's writes: with `read_this_turn`, whether the
    /// turn's packets were large.
    packets_this_turn: u64,
    /// Connections whose acknowledgements wait for the next turn's writes.
    next_turn: Vec<ConnId>,
    /// One bit per connection slot: its acknowledgements waited last turn, so they do not
    /// wait again (a bit here rather than a flag in every `Conn`, which would grow it by 8
    /// bytes).
    waited: Vec<u64>,
    /// Publishers released from a hold this turn, to resume at the start of the next.
    released: Vec<ConnId>,
    /// Reused list of this turn's events.
    ready: Vec<Ready>,
    /// Open connections per listener, for each listener's `max_connections`.
    per_listener: Vec<usize>,
    /// `$SYS` and the figures behind the metrics endpoint.
    metrics: Metrics,
    /// The Prometheus endpoint, with `metrics_listener`.
    metrics_server: Option<MetricsServer>,
    /// Closed connections' sockets waiting for the client to read the reason (`linger`).
    lingering: Lingerers,
    /// A retained walk can go on: run the next turn at once.
    walk_again: bool,
    /// Connections whose sending stopped at a QoS 2 message not yet durable.
    durable_waiters: Vec<ConnId>,
    /// The persistent store's directory, if persistence is on.
    #[cfg(feature = "persistence")]
    store_dir: Option<std::path::PathBuf>,
    /// When the last snapshot was begun (or the broker started).
    #[cfg(feature = "persistence")]
    last_snapshot: Instant,
    /// A snapshot being written, a slice per turn.
    snapshot: Option<persist::Snapshot>,
    /// When deliveries not yet recorded are recorded next (without `fsync`).
    deferred_until: Instant,
    /// The binary's logger: its file is reopened on SIGHUP, its topic lines published.
    log: Option<crate::logging::LogLink>,
    /// The service manager to report to (`service.rs`), if systemd started the binary.
    notifier: Option<crate::notify::Notifier>,
    /// The last `STATUS=` sent.
    last_status: String,
    /// The configuration file, read again on SIGHUP for its bridges (`set_config_file`).
    config_file: Option<std::path::PathBuf>,
    /// Sessions at the last sweep, for giving a burst's slots back (`trim.rs`).
    session_peak: usize,
    /// Bytes the sweeps gave back since the heap was last trimmed (`broker/trim.rs`).
    released_since_trim: usize,
    /// Bytes read by the last sweep, and by the last heap trim (`broker/trim.rs`).
    received_at_sweep: u64,
    received_at_trim: u64,
    /// In-process clients: new ones to admit, and those admitted (`handle.rs`).
    locals: Locals,
    /// When the one-second sweep runs next; `None` until the first turn has started the loop.
    next_sweep: Option<Instant>,
    /// The loop has shut down: `poll_once` does nothing more.
    stopped: bool,
    /// Hooks' deferred decisions, completed from other threads (`decide.rs`).
    decisions: std::sync::mpsc::Receiver<crate::auth::defer::Done>,
}

impl Broker {
    /// Binds every configured listener, loading TLS certificates and keys first: a file that
    /// cannot be loaded is an error naming it.
    pub fn bind(config: Config) -> io::Result<Broker> {
        let mut broker = Broker::unbound(config)?;
        for (i, listener) in broker.state.config.listeners.iter().enumerate() {
            let mut socket = crate::net::listen::bind(listener)?;
            broker.poll.registry().register(
                &mut socket,
                Token(LISTENER_TOP - i),
                Interest::READABLE,
            )?;
            info!("listening on {}", socket.local_addr()?);
            broker.listeners.push(socket);
        }
        if let Some(addr) = broker.state.config.metrics_listener {
            let server = MetricsServer::bind(addr, broker.poll.registry(), METRICS)?;
            info!("serving metrics on http://{}/metrics", server.local_addr()?);
            broker.metrics_server = Some(server);
        }
        Ok(broker)
    }

    /// Everything `bind` makes but the listening sockets: the state, restored from the store,
    /// and the loop's own parts. `drive.rs` runs a broker like this without sockets.
    fn unbound(config: Config) -> io::Result<Broker> {
        // Never fail open: a budget nothing measures would bound nothing.
        if config.memory_limit.is_some() && crate::heap::counted().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "memory_limit needs the counting allocator (pipit::heap::Counting) installed \
                 as the program's global allocator",
            ));
        }
        crate::config::features::check_built(&config)?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let transports = (0..config.listeners.len())
            .map(|i| Transport::for_listener(&config, i))
            .collect::<io::Result<Vec<_>>>()?;
        #[cfg(feature = "bridge")]
        let connectors = bridge::connectors(&config)?;
        let auth = (0..config.listeners.len())
            .map(|i| Auth::load(&config.security_for(i)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        // One dynamic security file serves every listener naming the plugin (`config`
        // refuses listeners that disagree).
        let dynsec_file = (0..config.listeners.len())
            .find_map(|i| config.security_for(i).dynsec)
            .or_else(|| config.dynsec.clone());
        let dynsec = dynsec_file
            .map(|path| Dynsec::load(&path))
            .transpose()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let store_dir = config.store_dir();
        let mut state = State::new(config, auth, Instant::now());
        state.dynsec = dynsec;
        let (mut deferrals, decisions) = crate::auth::defer::Deferrals::new();
        deferrals.set_waker(Arc::clone(&waker));
        state.deferrals = deferrals;
        // The store first: a second broker on the same store is refused for its lock, not for
        // an address in use, and no client connects before the state is restored.
        if let Some(dir) = &store_dir {
            persist::open(&mut state, dir, &waker)?;
            // A store written under a larger bound (or none) keeps no more than this one.
            crate::core::lifecycle::bound_offline_sessions(&mut state);
        }
        crate::bridge::start(&mut state);
        let listener_count = state.config.listeners.len();
        Ok(Broker {
            poll,
            events: Events::with_capacity(1024),
            state,
            durable_waiters: Vec::new(),
            #[cfg(feature = "persistence")]
            store_dir,
            #[cfg(feature = "persistence")]
            last_snapshot: Instant::now(),
            snapshot: None,
            deferred_until: Instant::now(),
            log: None,
            notifier: None,
            last_status: String::new(),
            config_file: None,
            session_peak: 0,
            released_since_trim: 0,
            received_at_sweep: 0,
            received_at_trim: 0,
            locals: Locals::new(),
            next_sweep: None,
            stopped: false,
            decisions,
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            signals: None,
            read_again: Vec::new(),
            read_this_turn: 0,
            packets_this_turn: 0,
            next_turn: Vec::new(),
            waited: Vec::new(),
            released: Vec::new(),
            ready: Vec::new(),
            per_listener: vec![0; listener_count],
            metrics: Metrics::new(Instant::now()),
            metrics_server: None,
            walk_again: false,
            lingering: Lingerers::new(LINGER_FIRST),
            listeners: Vec::new(),
            transports,
            #[cfg(feature = "bridge")]
            connectors,
        })
    }

    /// The bound address of each listener, in configuration order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The bound address of the metrics listener, if configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server
            .as_ref()
            .and_then(|m| m.local_addr().ok())
    }

    /// A handle that can stop the broker from another thread.
    pub fn handle(&self) -> Handle {
        Handle {
            waker: Arc::clone(&self.waker),
            stop: Arc::clone(&self.stop),
            locals: self.locals.sender.clone(),
            listeners: self.state.config.listeners.len(),
            output_cap: self.state.config.max_output_buffer,
        }
    }

    /// Makes SIGINT and SIGTERM shut the broker down cleanly and SIGHUP reload, with the
    /// handlers `catcher` installed (for the binary; embedders keep their own signal handling
    /// and use `Handle`).
    pub fn handle_signals(&mut self, catcher: SignalCatcher) -> io::Result<()> {
        let SignalCatcher(mut signals) = catcher;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// Names the configuration file the broker was started from: SIGHUP reads its
    /// `connection` blocks again (the rest of it is not re-read).
    pub fn set_config_file(&mut self, path: std::path::PathBuf) {
        self.config_file = Some(path);
    }

    /// Connects the binary's logger (`crate::logging`): SIGHUP reopens its log file, and
    /// with `log_dest topic` the loop publishes its lines on `$SYS/broker/log/...`.
    pub fn set_log(&mut self, log: crate::logging::LogLink) {
        if let Some(queue) = log.topic() {
            queue.attach(Arc::clone(&self.waker));
        }
        self.log = Some(log);
    }

    /// Runs the loop until a signal or `Handle::shutdown`, then closes every connection.
    ///
    /// ```
    /// let broker = pipit::Broker::builder(pipit::embed::loopback_config()).bind()?;
    /// let handle = broker.handle();
    /// let stopper = std::thread::spawn(move || handle.shutdown());
    /// broker.run()?;
    /// stopper.join().expect("the stopping thread panicked");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run(mut self) -> io::Result<()> {
        while self.turn(None)? {}
        Ok(())
    }

    /// One loop turn for a caller's own loop: waits at most `timeout` for something to do,
    /// does it, and returns `Ok(true)`, or `Ok(false)` once the broker has shut down (after a
    /// `Handle::shutdown`, or a signal with `handle_signals`). The broker's own timers are
    /// kept as long as it is called at least once a second; a `timeout` of zero never waits.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut broker = pipit::Broker::builder(pipit::embed::loopback_config()).bind()?;
    /// let handle = broker.handle();
    /// let mut turns = 0;
    /// while broker.poll_once(Duration::from_millis(10))? {
    ///     turns += 1;
    ///     if turns == 3 {
    ///         handle.shutdown();
    ///     }
    /// }
    /// assert!(!broker.poll_once(Duration::ZERO)?, "stays stopped");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_once(&mut self, timeout: Duration) -> io::Result<bool> {
        self.turn(Some(timeout))
    }

    /// Starts the loop: the first status report, bridges, and what restoring queued.
    fn start(&mut self) -> Instant {
        self.notify_ready();
        self.state.set_now(Instant::now());
        self.bridges_tick();
        self.finish_turn();
        Instant::now() + SWEEP_INTERVAL
    }

    /// One loop turn, waiting at most `limit` (or until the broker's next deadline); `false`
    /// once the broker has shut down.
    fn turn(&mut self, limit: Option<Duration>) -> io::Result<bool> {
        if self.stopped {
            return Ok(false);
        }
        let next_sweep = match self.next_sweep {
            Some(at) => at,
            None => self.start(),
        };
        self.next_sweep = Some(next_sweep);
        let next_linger_end = self.lingering.expire(self.poll.registry(), Instant::now());
        let next_watchdog = self.notify_watchdog(Instant::now());
        // Connections left dirty by the flush (written in full with more pending) are
        // written again at once, not at the next event or sweep.
        let mut timeout = if self.read_again.is_empty()
            && self.state.dirty.is_empty()
            && self.released.is_empty()
            && !self.walk_again
            && self.snapshot.is_none()
        {
            let mut wake = next_linger_end.map_or(next_sweep, |end| end.min(next_sweep));
            if self.state.journal.has_deferred() {
                wake = wake.min(self.deferred_until);
            }
            if let Some(at) = next_watchdog {
                wake = wake.min(at);
            }
            wake.saturating_duration_since(Instant::now())
        } else {
            Duration::ZERO
        };
        if let Some(limit) = limit {
            timeout = timeout.min(limit);
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(e),
        }
        self.state.set_now(Instant::now());
        self.state.budget.observe(crate::heap::counted());
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
                WAKER => {
                    self.on_durable();
                    self.on_decisions();
                    self.on_local();
                }
                SIGNALS => self.on_signals(),
                Token(t) if t > LISTENER_TOP - self.listeners.len() && t <= LISTENER_TOP => {
                    self.accept(LISTENER_TOP - t);
                }
                token if self.lingering.owns(token) => {
                    self.lingering.on_event(self.poll.registry(), token);
                }
                token if self.metrics_server.as_ref().is_some_and(|m| m.owns(token)) => {
                    self.on_metrics(token);
                }
                Token(key) => {
                    if let Some(id) = self.state.conns.id_at(key) {
                        self.on_conn_event(id, ready);
                    }
                }
            }
        }
        self.read_pending();
        if let Some(queue) = self.log.as_ref().and_then(|log| log.topic()) {
            crate::logging::topic::publish(queue, &mut self.state);
        }
        self.finish_turn();
        self.snapshot_step();
        if self.stop.load(Ordering::SeqCst) {
            self.shutdown();
            self.stopped = true;
            return Ok(false);
        }
        if self.state.now >= next_sweep {
            self.on_second();
            self.give_back_memory();
            self.notify_status();
            self.next_sweep = Some(self.state.now + SWEEP_INTERVAL);
        }
        Ok(true)
    }

    /// After a turn's events: resumes the publishers released from a hold, then reads what
    /// was left for later (a spent read budget, reads paused and resumed).
    fn read_pending(&mut self) {
        for id in std::mem::take(&mut self.released) {
            self.resume(id);
        }
        for (id, peer_closed) in std::mem::take(&mut self.read_again) {
            self.on_readable(id, peer_closed);
        }
    }

    /// The once-a-second work: timers, bridges, the store's sweep, `$SYS`, then the turn's
    /// closes and writes.
    fn on_second(&mut self) {
        self.sweep();
        self.bridges_tick();
        crate::bridge::publish_sys(&mut self.state);
        self.persist_sweep();
        self.metrics.tick(&mut self.state);
        self.finish_turn();
    }

    fn on_signals(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        for signal in signals.pending() {
            match signal {
                SIGHUP => {
                    self.notify_reload(false);
                    crate::broker::reload::security(&mut self.state);
                    self.reload_bridges();
                    if let Some(log) = &self.log {
                        crate::broker::reload::log_file(log);
                    }
                    self.notify_reload(true);
                }
                _ => {
                    info!("signal {signal} received, shutting down");
                    self.stop.store(true, Ordering::SeqCst);
                }
            }
        }
    }

    /// An event for the metrics listener or one of its scrapes.
    fn on_metrics(&mut self, token: Token) {
        let Broker {
            poll,
            metrics,
            metrics_server,
            state,
            ..
        } = self;
        if let Some(server) = metrics_server {
            server.on_event(poll.registry(), token, state.now, || {
                metrics.prometheus(state)
            });
        }
    }

    /// Closes connections whose timers ran out, scrapes past their deadline, and discards
    /// expired offline sessions. Timers are kept in deadline order, so the cost is that of
    /// what is due, not of every idle connection and session.
    fn sweep(&mut self) {
        if let Some(server) = &mut self.metrics_server {
            server.expire(self.poll.registry(), self.state.now);
        }
        let state = &mut self.state;
        let expired = state.conns.timed_out(state.uptime_millis(), state.millis());
        state.to_close.extend(expired.into_iter().map(|(id, e)| {
            let why = match e {
                Expiry::ConnectTimeout => Close::ConnectTimeout,
                Expiry::KeepAlive => Close::KeepAliveTimeout,
            };
            (id, why)
        }));
        lifecycle::expire(&mut self.state);
        crate::core::will::publish_due(&mut self.state);
    }
}
