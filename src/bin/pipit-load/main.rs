//! `pipit-load`: a single-threaded MQTT 3.1.1 load generator for comparing brokers.
//!
//! It speaks MQTT with its own small codec (`mqtt.rs`, independent of the broker's `wire`), runs
//! every client on one `mio` loop so the other core is left to the broker, batches many
//! PUBLISHes per `write()`, and parses every complete packet per `read()`. Each run prints one
//! JSON line on stdout (starting with `{`) and a human summary on stderr; progress goes to
//! stderr about once a second. Everything is bounded: publishers stop at `--duration` or
//! `--count`, the drain and the whole run have deadlines, and traffic only goes to `--host`.

mod client;
mod conn;
mod engine;
mod mqtt;
mod pubrel;
mod report;
mod scenario;
mod stats;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use scenario::Scenario;

const HELP: &str = "\
pipit-load: MQTT 3.1.1 load generator (one thread, non-blocking sockets)

USAGE:
    pipit-load <SCENARIO> [OPTIONS]

SCENARIOS:
    fanin     P publishers (one topic each) -> C subscribers on a wildcard filter (default C=1)
    fanout    P publishers on one topic -> C subscribers (default 1 -> 10)
    p2p       P pairs, each publisher -> its own subscriber on its own topic
    latency   P publishers at a fixed total --rate -> 1 subscriber; latency percentiles
    conns     open --conns idle connections at --conn-rate, hold them --hold seconds
    slow      P publishers -> C subscribers, one of which stops reading once publishing starts
    resume    C subscribers reconnect their persistent sessions (as --persistent) and take what
              the broker kept queued for them; reports the time to the first message, and
              the rate until --count per subscriber arrived or none arrived for --drain
    storm     a connection storm: --conn-rate new connections per second for --duration;
              each one closes as soon as its CONNACK arrives, every third with a reset
              (SO_LINGER 0), the others with DISCONNECT and a close

OPTIONS:
    --host HOST          broker address [default: 127.0.0.1]
    --port PORT          broker port [default: 1883]
    --qos 0|1|2          QoS of publishes and subscriptions [default: 0]
    --size BYTES         payload size, >= 20 (seq, publisher id, timestamp) [default: 64]
    --duration SECS      publishing time [default: 5 unless --count is given]
    --count N            messages per publisher (with --duration: whichever comes first)
    --publishers P       publishers (fanin 4, fanout 1, latency 1, slow 1)
    --subscribers C      subscribers (fanin 1, fanout 10, latency 1, slow 4)
    --pairs P            p2p pairs [default: 10]
    --rate R             total messages/s over all publishers (latency: default 1000;
                         other scenarios: unlimited)
    --window W           a publisher pauses while W messages ahead of its slowest reading
                         subscriber [default: 1000]
    --inflight N         unacknowledged QoS 1/2 PUBLISHes per publisher [default: 20,
                         Mosquitto's max_inflight_messages]
    --persistent         subscribers keep their sessions: clean session 0 and the client id
                         pipit-load-s<index>, the same in every run (so a broker with
                         persistence stores what is queued for them); DISCONNECT at the end
    --offline            with --persistent: subscribers subscribe, then DISCONNECT before
                         publishing starts, so the broker queues every message for them;
                         nothing counts as delivered (fills a broker's store; see resume)
    --bounce SECS        with --persistent: every SECS seconds while publishing, each
                         subscriber (staggered) leaves for 1 s and resumes its session;
                         leaves alternate DISCONNECT and a reset (SO_LINGER 0). Its streams
                         keep counting across connections; inbound QoS 2 is de-duplicated by
                         packet id until PUBREL, as a client must
    --prefix NAME        topics under NAME/ instead of a fresh pipit-load/<run id>/, and
                         persistent client ids NAME-s<index> (letters, digits, - and _), so
                         runs side by side keep apart and a run resumes the same subscriptions
    --retain             publish with the RETAIN flag
    --topics N           fanin: each publisher spreads its messages over N topics
                         <topic>-0 .. <topic>-<N-1>, all matched by the subscribers'
                         filter (with --retain: N retained topics per publisher) [default: 1]
    --conns C            conns: connections to open [default: 1000]
    --conn-rate R        conns: connections opened per second, 0 = as fast as possible
                         [default: 1000]
    --hold SECS          conns: how long to hold them once connected [default: 5]
    --keepalive SECS     MQTT keep alive; a PINGREQ goes out at half of it [default: 60]
    --drain SECS         after publishing stops, wait for deliveries until none arrived for
                         this long [default: 5]
    --timeout SECS       hard limit for the whole run [default: duration + drain + 30,
                         or 300 with --count alone]
    --broker-pid PID     sample the broker's CPU and RSS from /proc/PID at start and end of the
                         measured window (RSS also each second) and report them
    --quiet              no progress lines
    -h, --help           this text

OUTPUT:
    stdout: one JSON line per run; stderr: progress and a human-readable summary.
    Exit status 0 if the run completed, 1 on a setup failure or bad options.
";

/// Every option of a run, with defaults applied.
#[derive(Clone, Debug)]
pub struct Options {
    /// Which traffic pattern to run.
    pub scenario: Scenario,
    /// Resolved broker address.
    pub addr: SocketAddr,
    /// QoS of publishes and subscriptions.
    pub qos: u8,
    /// Payload size in bytes.
    pub size: usize,
    /// Publishing time limit.
    pub duration: Option<Duration>,
    /// Messages per publisher limit.
    pub count: Option<u64>,
    /// Publishers (or pairs for p2p).
    pub publishers: usize,
    /// Subscribers (ignored for p2p).
    pub subscribers: usize,
    /// Total publish rate, messages per second.
    pub rate: Option<f64>,
    /// Messages a publisher may be ahead of delivery.
    pub window: u64,
    /// Unacknowledged QoS 1/2 PUBLISHes per publisher.
    pub inflight: usize,
    /// Connections for `conns`.
    pub conns: usize,
    /// Connections per second for `conns`; 0 means unlimited.
    pub conn_rate: f64,
    /// Hold time for `conns`.
    pub hold: Duration,
    /// MQTT keep alive in seconds.
    pub keepalive: u16,
    /// Longest wait for deliveries after publishing stops.
    pub drain: Duration,
    /// Hard limit for the run.
    pub timeout: Duration,
    /// Broker process to sample.
    pub broker_pid: Option<u32>,
    /// Suppress progress lines.
    pub quiet: bool,
    /// Subscribers use clean session 0 and stable client ids.
    pub persistent: bool,
    /// Subscribers disconnect before publishing; nothing is delivered.
    pub offline: bool,
    /// PUBLISHes carry the RETAIN flag.
    pub retain: bool,
    /// Topics each fan-in publisher cycles through.
    pub topics: u64,
    /// Persistent subscribers leave and come back this often while publishing.
    pub bounce: Option<Duration>,
    /// Fixed topic prefix and persistent client id prefix.
    pub prefix: Option<String>,
}

/// Parses a number of seconds (fractions allowed) into a `Duration`.
fn seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("not a number of seconds: {s}")),
    }
}

/// Parses the command line.
fn parse_args() -> Result<Options, String> {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        print!("{HELP}");
        std::process::exit(0);
    }
    let e = |err: pico_args::Error| err.to_string();
    let host: String = args
        .opt_value_from_str("--host")
        .map_err(e)?
        .unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = args
        .opt_value_from_str("--port")
        .map_err(e)?
        .unwrap_or(1883);
    let qos: u8 = args.opt_value_from_str("--qos").map_err(e)?.unwrap_or(0);
    let size: usize = args.opt_value_from_str("--size").map_err(e)?.unwrap_or(64);
    let duration = args.opt_value_from_fn("--duration", seconds).map_err(e)?;
    let count: Option<u64> = args.opt_value_from_str("--count").map_err(e)?;
    let publishers: Option<usize> = args.opt_value_from_str("--publishers").map_err(e)?;
    let subscribers: Option<usize> = args.opt_value_from_str("--subscribers").map_err(e)?;
    let pairs: Option<usize> = args.opt_value_from_str("--pairs").map_err(e)?;
    let rate: Option<f64> = args.opt_value_from_str("--rate").map_err(e)?;
    let window: u64 = args
        .opt_value_from_str("--window")
        .map_err(e)?
        .unwrap_or(1000);
    let inflight: usize = args
        .opt_value_from_str("--inflight")
        .map_err(e)?
        .unwrap_or(20);
    let conns: usize = args
        .opt_value_from_str("--conns")
        .map_err(e)?
        .unwrap_or(1000);
    let conn_rate: f64 = args
        .opt_value_from_str("--conn-rate")
        .map_err(e)?
        .unwrap_or(1000.0);
    let hold = args
        .opt_value_from_fn("--hold", seconds)
        .map_err(e)?
        .unwrap_or(Duration::from_secs(5));
    let keepalive: u16 = args
        .opt_value_from_str("--keepalive")
        .map_err(e)?
        .unwrap_or(60);
    let drain = args
        .opt_value_from_fn("--drain", seconds)
        .map_err(e)?
        .unwrap_or(Duration::from_secs(5));
    let timeout = args.opt_value_from_fn("--timeout", seconds).map_err(e)?;
    let broker_pid: Option<u32> = args.opt_value_from_str("--broker-pid").map_err(e)?;
    let quiet = args.contains("--quiet");
    let persistent = args.contains("--persistent");
    let offline = args.contains("--offline");
    let retain = args.contains("--retain");
    let topics: u64 = args.opt_value_from_str("--topics").map_err(e)?.unwrap_or(1);
    let bounce = args.opt_value_from_fn("--bounce", seconds).map_err(e)?;
    let prefix: Option<String> = args.opt_value_from_str("--prefix").map_err(e)?;
    let name: String = args
        .free_from_str()
        .map_err(|_| "missing SCENARIO (see --help)".to_string())?;
    let rest = args.finish();
    if !rest.is_empty() {
        return Err(format!("unexpected arguments: {rest:?}"));
    }

    let scenario = Scenario::from_name(&name).ok_or_else(|| format!("unknown scenario: {name}"))?;
    if qos > 2 {
        return Err("--qos must be 0, 1 or 2".into());
    }
    if size < stats::HEADER_LEN {
        return Err(format!(
            "--size must be at least {} bytes",
            stats::HEADER_LEN
        ));
    }
    if window == 0 || inflight == 0 || inflight > 65_535 {
        return Err("--window must be > 0 and --inflight within 1..=65535".into());
    }
    if rate.is_some_and(|r| !(r.is_finite() && r > 0.0))
        || !(conn_rate.is_finite() && conn_rate >= 0.0)
    {
        return Err("--rate must be > 0 and --conn-rate >= 0".into());
    }
    if offline && !persistent {
        return Err("--offline needs --persistent (a clean session keeps nothing)".into());
    }
    if topics == 0 || (topics > 1 && scenario != Scenario::Fanin) {
        return Err("--topics must be >= 1, and above 1 only for fanin".into());
    }
    if bounce.is_some_and(|b| b < Duration::from_secs(2)) || (bounce.is_some() && !persistent) {
        return Err("--bounce needs --persistent and at least 2 seconds".into());
    }
    let name_ok = |p: &String| {
        !p.is_empty() && (p.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if prefix.as_ref().is_some_and(|p| !name_ok(p)) {
        return Err("--prefix: letters, digits, - and _ only".into());
    }
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {host}: {err}"))?
        .next()
        .ok_or_else(|| format!("no address for {host}"))?;
    let duration = match (duration, count) {
        (None, None) => Some(Duration::from_secs(5)),
        (d, _) => d,
    };
    let (def_pubs, def_subs) = scenario.default_clients();
    let publishers = match scenario {
        Scenario::P2p => pairs.or(publishers).unwrap_or(10),
        _ => publishers.unwrap_or(def_pubs),
    };
    let subscribers = subscribers.unwrap_or(def_subs);
    let needs_publishers = !matches!(
        scenario,
        Scenario::Conns | Scenario::Resume | Scenario::Storm
    );
    let needs_subscribers = !matches!(scenario, Scenario::Conns | Scenario::Storm);
    if (needs_publishers && publishers == 0) || (needs_subscribers && subscribers == 0) {
        return Err("need at least one publisher and one subscriber".into());
    }
    if scenario == Scenario::Slow && subscribers < 2 {
        return Err("slow needs at least 2 subscribers (one stalls)".into());
    }
    let rate = rate.or((scenario == Scenario::Latency).then_some(1000.0));
    let timeout = timeout.unwrap_or(match (scenario, duration) {
        (Scenario::Conns, _) => {
            let connect = if conn_rate > 0.0 {
                conns as f64 / conn_rate
            } else {
                0.0
            };
            Duration::from_secs_f64(connect) + hold + Duration::from_secs(60)
        }
        (Scenario::Storm, d) => d.unwrap_or_default() + Duration::from_secs(60),
        (_, Some(d)) => d + drain + Duration::from_secs(30),
        (_, None) => Duration::from_secs(300),
    });
    Ok(Options {
        scenario,
        addr,
        qos,
        size,
        duration,
        count,
        publishers,
        subscribers,
        rate,
        window,
        inflight,
        conns,
        conn_rate,
        hold,
        keepalive,
        drain,
        timeout,
        broker_pid,
        quiet,
        persistent: persistent || scenario == Scenario::Resume,
        offline,
        retain,
        topics,
        bounce,
        prefix,
    })
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(err) => {
            eprintln!("pipit-load: {err}");
            return ExitCode::FAILURE;
        }
    };
    match engine::run(&opts) {
        Ok(report) => {
            println!("{}", report.to_json());
            eprint!("{}", report.summary());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("pipit-load: {} failed: {err}", opts.scenario.name());
            ExitCode::FAILURE
        }
    }
}
