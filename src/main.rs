//! The `pipit` binary: command-line flags to `Config`, logging, run the broker, and the
//! switch away from root once it is bound.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use std::path::Path;

use log::{error, info, warn};
use pipit::config::{ListenerConfig, LogConfig};
use pipit::logging::{self, LogLink, Logger};
use pipit::{Broker, Config, SignalCatcher};

/// Every allocation is counted, for `memory_limit` and `$SYS/broker/heap/current`
/// (`pipit::heap`); underneath, the system allocator.
#[cfg(not(target_env = "musl"))]
#[global_allocator]
static ALLOCATOR: pipit::heap::Counting<std::alloc::System> =
    pipit::heap::Counting::new(std::alloc::System);

/// Static musl builds count mimalloc's allocations: musl's malloc halves fan-in throughput
/// (see Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: pipit::heap::Counting<mimalloc::MiMalloc> =
    pipit::heap::Counting::new(mimalloc::MiMalloc);

/// musl's x86_64 `memcpy` and `memmove`, replaced: theirs cost the static build a sixth of
/// its fan-in and fan-out throughput (the module says why).
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
mod memcpy;
#[cfg(target_os = "linux")]
mod startup_pages;

const HELP: &str = "\
pipit: a small, fast MQTT broker (MQTT 3.1, 3.1.1 and 5.0)

USAGE:
    pipit [OPTIONS]
    pipit passwd [-c | -D] [-b] FILE USER [PASSWORD]   manage a Mosquitto-format password file

OPTIONS:
    -c, --config FILE    read a mosquitto.conf-style configuration file
    -p, --port PORT      listen on PORT (default 1883) on every --bind address
        --bind ADDR      listen on ADDR (IPv4 or IPv6; repeatable; default 127.0.0.1)
        --max-keepalive SECS
                         largest keepalive a client may use (MQTT 5 clients asking for
                         more, or for 0, are told this value); overrides max_keepalive
        --persistence-dir DIR
                         keep retained messages and persistent sessions in the store
                         directory DIR (persistence on); overrides persistence_location
    -v, --verbose        more logging (-v debug, -vv trace); RUST_LOG overrides
    -h, --help           print this help
    -V, --version        print the version

Without a configuration file pipit listens on 127.0.0.1:1883 and allows anonymous clients
(loopback only), like Mosquitto 2 started without one.
";

struct Args {
    config: Option<std::path::PathBuf>,
    port: Option<u16>,
    binds: Vec<IpAddr>,
    max_keepalive: Option<u16>,
    persistence_dir: Option<std::path::PathBuf>,
    verbosity: usize,
}

fn parse_args() -> Result<Option<Args>, pico_args::Error> {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        print!("{HELP}");
        return Ok(None);
    }
    if args.contains(["-V", "--version"]) {
        println!("pipit {}", env!("CARGO_PKG_VERSION"));
        return Ok(None);
    }
    let mut verbosity = 0;
    while args.contains(["-v", "--verbose"]) {
        verbosity += 1;
    }
    let parsed = Args {
        config: args.opt_value_from_os_str(["-c", "--config"], |s| {
            Ok::<_, std::convert::Infallible>(std::path::PathBuf::from(s))
        })?,
        port: args.opt_value_from_str(["-p", "--port"])?,
        binds: args.values_from_str("--bind")?,
        max_keepalive: args.opt_value_from_str("--max-keepalive")?,
        persistence_dir: args.opt_value_from_os_str("--persistence-dir", |s| {
            Ok::<_, std::convert::Infallible>(std::path::PathBuf::from(s))
        })?,
        verbosity,
    };
    let rest = args.finish();
    if !rest.is_empty() {
        return Err(pico_args::Error::ArgumentParsingFailed {
            cause: format!("unexpected arguments: {rest:?}"),
        });
    }
    Ok(Some(parsed))
}

/// The level: `-v` flags win over the configuration's `log_type`; `RUST_LOG` (applied by the
/// logger) over both.
fn log_level(verbosity: usize, configured: Option<log::LevelFilter>) -> log::LevelFilter {
    match (verbosity, configured) {
        (0, Some(level)) => level,
        (0, None) => log::LevelFilter::Info,
        (1, _) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// Installs pipit's logger for `log` (`log_dest` and the rest). A log file that cannot be
/// opened leaves, as in Mosquitto, errors only, on stderr.
fn init_logging(log: &LogConfig, level: log::LevelFilter) -> Option<LogLink> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let dev_log = Path::new(logging::DEV_LOG);
    let (logger, failed) = match Logger::open(log, level, rust_log.as_deref(), dev_log) {
        Ok(logger) => (logger, None),
        Err(e) => {
            let fallback = LogConfig::default();
            let logger = Logger::open(&fallback, log::LevelFilter::Error, None, dev_log);
            match logger {
                Ok(logger) => (logger, Some(e)),
                Err(_) => return None,
            }
        }
    };
    let link = logger.link();
    // Only the first call installs; main calls this once.
    let _ = logger.install();
    if let Some(e) = failed {
        error!("{e}");
    }
    Some(link)
}

/// The configuration from `-c` (with its warnings, logged once logging is set up) and flags.
fn build_config(args: &Args) -> Result<(Config, Vec<pipit::config::Warning>), String> {
    let (mut config, warnings) = match &args.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => (Config::default(), Vec::new()),
    };
    if let Some(max_keepalive) = args.max_keepalive {
        if max_keepalive < pipit::config::MIN_MAX_KEEPALIVE {
            return Err(format!(
                "--max-keepalive: {max_keepalive} is out of range {}..=65535",
                pipit::config::MIN_MAX_KEEPALIVE
            ));
        }
        config.max_keepalive = max_keepalive;
    }
    if let Some(dir) = &args.persistence_dir {
        config.persistence = true;
        config.persistence_dir = Some(dir.clone());
    }
    if !args.binds.is_empty() || args.port.is_some() {
        let port = args.port.unwrap_or(1883);
        let binds = if args.binds.is_empty() {
            vec![IpAddr::from([127, 0, 0, 1])]
        } else {
            args.binds.clone()
        };
        config.listeners = binds
            .into_iter()
            .map(|ip| ListenerConfig::new(SocketAddr::new(ip, port)))
            .collect();
    }
    Ok((config, warnings))
}

fn main() -> ExitCode {
    pipit::heap::tune_allocator();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("passwd") {
        return match pipit::auth::passwd::run(&argv[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pipit passwd: {e}");
                ExitCode::from(2)
            }
        };
    }
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipit: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let (config, warnings) = match build_config(&args) {
        Ok(loaded) => loaded,
        Err(e) => {
            init_logging(&LogConfig::default(), log_level(args.verbosity, None));
            error!("{e}");
            return ExitCode::from(2);
        }
    };
    let log = init_logging(&config.log, log_level(args.verbosity, config.log_level));
    for warning in warnings {
        log::warn!("{warning}");
    }
    let to_stderr = config.log.stderr;
    let pid_file = config.pid_file.clone();
    let result = start(config, args.config.as_deref(), log).and_then(run);
    if let Some(path) = &pid_file
        && result.is_ok()
    {
        // Best effort: a file left behind names a process that is gone.
        let _ = std::fs::remove_file(path);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            if !to_stderr {
                // Said where whoever started pipit looks, whatever the log destinations.
                eprintln!("pipit: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Binds the broker, writes the pid file, connects the logger and signals, then switches
/// away from root (`user`): everything that needs root is open by then. SIGHUP reads
/// `config_file`'s bridges again.
fn start(
    config: Config,
    config_file: Option<&Path>,
    log: Option<LogLink>,
) -> std::io::Result<Broker> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let account = pipit::user::target(&config.user).map_err(invalid)?;
    let was_root = pipit::user::is_root();
    let store_dir = config.store_dir();
    // A store directory made now is made by root: it is handed to the user with its files.
    let new_store = store_dir.as_ref().filter(|dir| !dir.exists()).cloned();
    let pid_file = config.pid_file.clone();
    let signals = SignalCatcher::install()?;
    let mut broker = Broker::bind(config)?;
    // As Mosquitto: written once the broker could start, or no start at all.
    if let Some(path) = &pid_file {
        write_pid_file(path).map_err(|e| {
            let why = format!("unable to write pid file {}: {e}", path.display());
            std::io::Error::new(e.kind(), why)
        })?;
    }
    if let Some(log) = log {
        broker.set_log(log);
    }
    broker.handle_signals(signals)?;
    if let Some(path) = config_file {
        broker.set_config_file(path.to_path_buf());
    }
    if let Some(account) = &account {
        if let Some(dir) = &new_store {
            pipit::user::give(dir, account)?;
        }
        pipit::user::switch(account)?;
        info!("running as user {} (uid {})", account.name, account.uid);
        // pipit creates log segments and snapshots in the store while it runs.
        if let Some(dir) = store_dir.filter(|dir| !pipit::user::can_write(dir)) {
            return Err(invalid(format!(
                "the store directory {} is not writable by user {}: give it to that user, \
                 or set `user` in the configuration",
                dir.display(),
                account.name
            )));
        }
    }
    if was_root && pipit::user::is_root() {
        warn!("pipit should not be run as root");
    }
    // Started by systemd (Type=notify): the loop reports READY=1 once it runs.
    if let Some(notifier) = pipit::notify::Notifier::from_env()? {
        broker.set_notifier(notifier);
    }
    Ok(broker)
}

/// Runs the broker until it stops. On Linux, once it has run for a second and a half (its
/// first turn, the first once-a-second sweep), the pages only start-up touched are given back
/// (`startup_pages`): configuration parsing, TLS set-up and the store's recovery need not stay
/// resident while the broker idles.
fn run(mut broker: Broker) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let release_at = std::time::Instant::now() + std::time::Duration::from_millis(1500);
        while let Some(left) = release_at.checked_duration_since(std::time::Instant::now()) {
            if !broker.poll_once(left)? {
                return Ok(());
            }
        }
        startup_pages::release();
    }
    broker.run()
}

/// Writes this process's id to `path` whole or not at all (a temporary file beside it, then a
/// rename), so whoever watches for the file never reads it empty.
fn write_pid_file(path: &Path) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    std::fs::write(&temporary, format!("{}\n", std::process::id()))?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        // Best effort: the error that matters is the rename's.
        let _ = std::fs::remove_file(&temporary);
    })
}
