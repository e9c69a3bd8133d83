//! The event loop and the phases of a run.
//!
//! Traffic scenarios: connect and subscribe every subscriber (waiting for each SUBACK), connect
//! every publisher, then the measured window: publishers fill until `--duration`/`--count`,
//! then a drain waits (at most `--drain`) until every counted stream has every message and
//! every QoS 1/2 flow is complete. `conns` opens idle connections at a rate and holds them;
//! `resume` reconnects persistent subscribers and counts what the broker kept for them.
//! Every phase has a deadline under the run's hard `--timeout`.
//!
//! Only this module calls `Instant::now()` and closes connections; a failed client is
//! deregistered and marked `Closed` (idle ones are removed from the slab).

mod bounce;
mod conns;
mod resume;
mod storm;
mod traffic;
mod watch;

use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, warn};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::Options;
use crate::client::{
    Client, Fail, Inflight, Limits, Publisher, Role, State, Stream, Subscriber, World,
};
use crate::conn::{Conn, RX_DATA, RX_IDLE, ReadOutcome};
use crate::mqtt;
use crate::report::Report;
use crate::scenario::{Plan, Scenario};
use crate::stats::{self, SeqTrack};
use watch::BrokerWatch;

/// Time allowed for a connection to get its CONNACK (and SUBACK); `resume` allows its whole
/// `--timeout`, for a broker that loads a large store before it answers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest poll wait, so deadlines are noticed promptly.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// Receive buffer of a stalled subscriber, so the broker has to hold its backlog.
const STALLED_RCVBUF: usize = 4096;
/// Most connects started per loop turn in `conns`.
const CONNECTS_PER_TURN: usize = 256;

/// Counters of the `conns` scenario.
#[derive(Default)]
struct ConnCounts {
    attempted: usize,
    failed: u64,
    dropped: u64,
    last_ok: Option<Instant>,
}

/// The loop and everything it owns.
struct Engine<'o> {
    opts: &'o Options,
    poll: Poll,
    events: Events,
    ready: Vec<(usize, bool, bool)>,
    clients: Slab<Client>,
    world: World,
    epoch: Instant,
    deadline: Instant,
    client_prefix: String,
    more_work: bool,
    connect_timeout: Duration,
    measuring: bool,
    next_tick: Instant,
    progress: (Instant, u64),
    broker: Option<BrokerWatch>,
    conns: ConnCounts,
    bounces: bounce::Bounces,
    client_failures: u64,
    first_error: Option<String>,
}

/// Runs the scenario in `opts` and returns its report, or why it could not run.
pub fn run(opts: &Options) -> Result<Report, String> {
    let mut engine = Engine::new(opts).map_err(|e| format!("poll: {e}"))?;
    match opts.scenario {
        Scenario::Conns => engine.run_conns(),
        Scenario::Storm => engine.run_storm(),
        Scenario::Resume => engine.run_resume(),
        _ => engine.run_traffic(),
    }
}

impl<'o> Engine<'o> {
    /// Sets up the poll, the plan and the per-stream tracking.
    fn new(opts: &'o Options) -> io::Result<Engine<'o>> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let run_id = std::process::id().wrapping_mul(2_654_435_761) ^ nanos;
        let prefix = (opts.prefix.clone()).unwrap_or_else(|| format!("pipit-load/{run_id:08x}"));
        let plan = Plan::build(opts.scenario, opts.publishers, opts.subscribers, &prefix);
        let mut streams = Vec::new();
        let mut pubs: Vec<Publisher> = (plan.publisher_topics.into_iter())
            .map(|topic| Publisher {
                key: usize::MAX,
                topic,
                sent: 0,
                acked: 0,
                inflight: Inflight::new(opts.qos, opts.inflight),
                streams: Vec::new(),
            })
            .collect();
        let subs = (plan.subscribers.into_iter().enumerate())
            .map(|(s, sub)| {
                let mut stream_of = vec![None; pubs.len()];
                for p in sub.publishers {
                    stream_of[p] = Some(streams.len());
                    pubs[p].streams.push(streams.len());
                    streams.push(Stream {
                        publisher: p,
                        subscriber: s,
                        track: SeqTrack::default(),
                        counted: !sub.stalled,
                    });
                }
                Subscriber {
                    key: usize::MAX,
                    topic_filter: sub.topic_filter,
                    stalled: sub.stalled,
                    stream_of,
                    awaiting_pubrel: Default::default(),
                }
            })
            .collect();
        let mut payload = vec![0u8; opts.size];
        for (i, b) in payload.iter_mut().enumerate().skip(stats::HEADER_LEN) {
            *b = b'a' + (i % 26) as u8;
        }
        let world = World {
            limits: Limits {
                qos: opts.qos,
                window: opts.window,
                count: opts.count,
                rate_per_pub: opts.rate.map(|r| r / opts.publishers.max(1) as f64),
                min_batch: (opts.window.min(opts.inflight as u64) / 8).max(1),
                retain: opts.retain,
                topics: opts.topics,
            },
            pubs,
            subs,
            streams,
            payload,
            publishing: false,
            stalling: false,
            start_ns: 0,
            arrivals: 0,
            last_arrival_ns: 0,
            stalled_arrivals: 0,
            foreign: 0,
            stray_acks: 0,
            latencies: (opts.scenario == Scenario::Latency).then(Vec::new),
            idle_ready: 0,
            backlog: opts.scenario == Scenario::Resume,
            first_arrival_ns: None,
        };
        let now = Instant::now();
        Ok(Engine {
            opts,
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            ready: Vec::with_capacity(1024),
            clients: Slab::new(),
            world,
            epoch: now,
            deadline: now + opts.timeout,
            client_prefix: format!("pl{run_id:08x}"),
            more_work: false,
            connect_timeout: match opts.scenario {
                Scenario::Resume => opts.timeout,
                _ => CONNECT_TIMEOUT,
            },
            measuring: false,
            next_tick: now + Duration::from_secs(1),
            progress: (now, 0),
            broker: None,
            conns: ConnCounts::default(),
            bounces: bounce::Bounces::default(),
            client_failures: 0,
            first_error: None,
        })
    }

    /// Nanoseconds since the run's epoch: the clock shared by senders and receivers.
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Starts a connection for `role` with CONNECT queued; returns its slab key.
    fn open(&mut self, role: Role, index: usize) -> Result<usize, Fail> {
        let stalled = matches!(role, Role::Subscriber(s) if self.world.subs[s].stalled);
        let rx_size = if role == Role::Idle { RX_IDLE } else { RX_DATA };
        let mut conn = Conn::connect(self.opts.addr, stalled.then_some(STALLED_RCVBUF), rx_size)?;
        let entry = self.clients.vacant_entry();
        let key = entry.key();
        self.poll.registry().register(
            &mut conn.stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let (letter, persistent) = match role {
            Role::Publisher(_) => ('p', false),
            Role::Subscriber(_) => ('s', self.opts.persistent),
            Role::Idle => ('c', false),
        };
        // A persistent subscriber's id is the same in every run, so a later run resumes it.
        let id = match (&self.opts.prefix, persistent) {
            (Some(name), true) => format!("{name}-{letter}{index}"),
            (None, true) => format!("pipit-load-{letter}{index}"),
            (_, false) => format!("{}{letter}{index}", self.client_prefix),
        };
        mqtt::connect(&mut conn.tx, &id, !persistent, self.opts.keepalive);
        let now = Instant::now();
        entry.insert(Client {
            conn,
            role,
            state: State::Connecting,
            opened: now,
            last_tx: now,
        });
        Ok(key)
    }

    /// Ends a client: deregisters it; idle clients leave the slab, others stay `Closed`.
    fn fail(&mut self, key: usize, why: Fail) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        if client.state == State::Closed {
            return;
        }
        let _ = self.poll.registry().deregister(&mut client.conn.stream);
        let was = client.state;
        client.state = State::Closed;
        let role = client.role;
        match role {
            Role::Idle => {
                if was == State::Ready {
                    self.conns.dropped += 1;
                } else {
                    self.conns.failed += 1;
                }
                debug!("connection {key}: {why}");
                self.clients.remove(key);
            }
            _ => {
                self.client_failures += 1;
                warn!("{role:?}: {why}");
            }
        }
        self.note_error(format!("{role:?}: {why}"));
    }

    /// Keeps `why` as the run's first error, unless one came before.
    fn note_error(&mut self, why: String) {
        if self.first_error.is_none() {
            self.first_error = Some(why);
        }
    }

    /// One loop turn: wait for events (at most until `until`), service them, let publishers
    /// fill, and run the once-a-second tick.
    fn turn(&mut self, until: Instant) -> Result<(), String> {
        let now = Instant::now();
        let mut timeout = until
            .min(self.next_tick)
            .saturating_duration_since(now)
            .min(MAX_WAIT);
        if self.world.publishing {
            if self.more_work {
                timeout = Duration::ZERO;
            } else if let Some(due_ns) = self.world.next_due_ns() {
                let due = self.epoch + Duration::from_nanos(due_ns);
                let wait = due
                    .saturating_duration_since(now)
                    .max(Duration::from_millis(1));
                timeout = timeout.min(wait);
            }
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        self.ready.clear();
        for event in self.events.iter() {
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            self.ready
                .push((event.token().0, readable, event.is_writable()));
        }
        for i in 0..self.ready.len() {
            let (key, readable, _writable) = self.ready[i];
            if let Err(why) = self.service(key, readable) {
                self.fail(key, why);
            }
        }
        if self.world.publishing {
            self.run_publishers();
        }
        let now = Instant::now();
        if now >= self.next_tick {
            self.tick(now);
        }
        if self.opts.bounce.is_some() && self.world.publishing {
            self.bounce(now);
        }
        Ok(())
    }

    /// Handles readiness of one client: finish connecting, read and parse everything, flush.
    fn service(&mut self, key: usize, readable: bool) -> Result<(), Fail> {
        let Some(client) = self.clients.get_mut(key) else {
            return Ok(());
        };
        match client.state {
            State::Closed => return Ok(()),
            State::Connecting if !client.conn.check_connected()? => return Ok(()),
            State::Connecting => client.state = State::AwaitConnack,
            _ => {}
        }
        let stalled = matches!(client.role, Role::Subscriber(s) if self.world.subs[s].stalled);
        if readable && !(stalled && self.world.stalling) {
            while let Some(outcome) = client.conn.read_some()? {
                if let ReadOutcome::Eof = outcome {
                    return Err(Fail::Eof);
                }
                let now_ns = self.epoch.elapsed().as_nanos() as u64;
                loop {
                    let (buf, tx) = client.conn.parts();
                    let Some((packet, used)) = mqtt::decode(buf).map_err(Fail::Decode)? else {
                        break;
                    };
                    self.world
                        .handle(client.role, &mut client.state, packet, tx, now_ns)?;
                    client.conn.consume(used);
                }
            }
        }
        if client.conn.pending() > 0 {
            client.conn.flush()?;
            client.last_tx = Instant::now();
        }
        Ok(())
    }

    /// Lets every ready publisher fill its buffer and writes it.
    fn run_publishers(&mut self) {
        self.more_work = false;
        let now_ns = self.now_ns();
        for p in 0..self.world.pubs.len() {
            let key = self.world.pubs[p].key;
            let Some(client) = self.clients.get_mut(key) else {
                continue;
            };
            if client.state != State::Ready {
                continue;
            }
            let budget_hit = self.world.fill(p, &mut client.conn, now_ns);
            if client.conn.pending() > 0 {
                if let Err(e) = client.conn.flush() {
                    self.fail(key, e.into());
                    continue;
                }
                client.last_tx = Instant::now();
            }
            if budget_hit && client.conn.pending() == 0 {
                self.more_work = true;
            }
        }
    }

    /// Once a second: progress line, broker RSS sample, keep alive, connect timeouts.
    fn tick(&mut self, now: Instant) {
        self.next_tick = now + Duration::from_secs(1);
        if let Some(b) = &mut self.broker
            && let Ok(s) = stats::sample(&b.pid)
        {
            b.rss_max_kb = b.rss_max_kb.max(s.rss_kb);
        }
        if self.measuring && !self.opts.quiet {
            self.print_progress(now);
        }
        let half = Duration::from_secs(u64::from(self.opts.keepalive) / 2);
        let mut late = Vec::new();
        for (key, client) in self.clients.iter_mut() {
            match client.state {
                State::Ready if self.opts.keepalive > 0 && now - client.last_tx >= half => {
                    mqtt::pingreq(&mut client.conn.tx);
                    client.last_tx = now;
                    if client.conn.flush().is_err() {
                        late.push((key, Fail::Io(io::ErrorKind::BrokenPipe)));
                    }
                }
                State::Connecting | State::AwaitConnack | State::AwaitSuback
                    if now - client.opened > self.connect_timeout =>
                {
                    late.push((key, Fail::Timeout));
                }
                _ => {}
            }
        }
        for (key, why) in late {
            self.fail(key, why);
        }
    }

    /// Prints one progress line to stderr.
    fn print_progress(&mut self, now: Instant) {
        let (then, before) = self.progress;
        let secs = (now - then).as_secs_f64().max(1e-9);
        let t = self.epoch.elapsed().as_secs_f64() - self.world.start_ns as f64 / 1e9;
        if matches!(self.opts.scenario, Scenario::Conns | Scenario::Storm) {
            let ok = self.world.idle_ready;
            eprintln!(
                "[pipit-load] {} {t:.1}s: {ok} ok, {} failed, {} attempted ({:.0} conn/s)",
                self.opts.scenario.name(),
                self.conns.failed,
                self.conns.attempted,
                (ok - before) as f64 / secs
            );
            self.progress = (now, ok);
        } else {
            let delivered = self.world.arrivals;
            let sent: u64 = self.world.pubs.iter().map(|p| p.sent).sum();
            eprintln!(
                "[pipit-load] {} {t:.1}s: sent {sent}, delivered {delivered} ({:.0} msg/s)",
                self.opts.scenario.name(),
                (delivered - before) as f64 / secs
            );
            self.progress = (now, delivered);
        }
    }

    /// Turns the loop until every publisher and subscriber is `Ready`.
    fn wait_ready(&mut self, what: &str) -> Result<(), String> {
        let deadline =
            (Instant::now() + CONNECT_TIMEOUT + Duration::from_secs(1)).min(self.deadline);
        loop {
            let keys = self
                .world
                .pubs
                .iter()
                .map(|p| p.key)
                .chain(self.world.subs.iter().map(|s| s.key));
            let mut all_ready = true;
            for key in keys {
                match self.clients.get(key).map(|c| c.state) {
                    Some(State::Ready) | None => {}
                    Some(State::Closed) => {
                        return Err(format!(
                            "{what}: {}",
                            self.first_error.clone().unwrap_or_default()
                        ));
                    }
                    Some(_) => all_ready = false,
                }
            }
            if all_ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("{what}: timed out"));
            }
            self.turn(deadline)?;
        }
    }

    /// Sends DISCONNECT on every open connection (best effort) and closes them all.
    fn disconnect_all(&mut self) {
        for (_, client) in self.clients.iter_mut() {
            if client.state == State::Ready {
                mqtt::disconnect(&mut client.conn.tx);
                let _ = client.conn.flush();
            }
        }
        self.clients.clear();
    }
}
