//! pipit's own `log::Log`: Mosquitto 2.0's log destinations and line format, for the `pipit`
//! binary (the library only logs through the `log` facade and never installs a logger).
//!
//! A line is `TIMESTAMP: TEXT`, the timestamp being seconds since the epoch, or local time
//! through `log_timestamp_format` (`strftime`), or absent with `log_timestamp false`. Errors
//! and warnings start their text with `Error: ` and `Warning: `, as Mosquitto's own do. Each
//! line goes to every destination of `LogConfig`: stderr, stdout, a file (`LogLink::reopen`
//! on SIGHUP, for logrotate), syslog (`syslog`), and `$SYS/broker/log/...` topics (`topic`).
//!
//! Levels map to Mosquitto's types: error to error (`E`, syslog `err`), warn to warning
//! (`W`, `warning`), info, which pipit uses for what Mosquitto logs as notices (connects,
//! closes, listeners), to notice (`N`, `notice`), debug and trace to debug (syslog `debug`;
//! never published, as in Mosquitto).
//!
//! The level filter is `log_type` (or `-v`), and `RUST_LOG` when set overrides it, with
//! `env_filter`'s syntax (`RUST_LOG=pipit::broker=trace`).

mod syslog;
mod timestamp;
pub(crate) mod topic;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::config::LogConfig;
pub use syslog::DEV_LOG;
use syslog::Syslog;
pub use topic::TopicQueue;

/// The `log::Log` the `pipit` binary installs; build it with [`Logger::open`].
pub struct Logger {
    filter: env_filter::Filter,
    out: Arc<Outputs>,
}

/// What the broker keeps of the logger: reopening the file on SIGHUP, and the queue of lines
/// to publish on topics.
#[derive(Clone)]
pub struct LogLink {
    out: Arc<Outputs>,
}

/// The destinations and the line format; shared by the logger and the broker's link.
struct Outputs {
    stderr: bool,
    stdout: bool,
    file: Option<LogFile>,
    syslog: Option<Syslog>,
    topic: Option<Arc<TopicQueue>>,
    timestamp: bool,
    timestamp_format: Option<std::ffi::CString>,
}

/// The `log_dest file` destination: its path and the file open now.
struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

/// Mosquitto's type of a line at `level`, for its syslog severity and topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Error,
    Warning,
    Notice,
    Debug,
}

impl Kind {
    fn of(level: Level) -> Kind {
        match level {
            Level::Error => Kind::Error,
            Level::Warn => Kind::Warning,
            Level::Info => Kind::Notice,
            Level::Debug | Level::Trace => Kind::Debug,
        }
    }
}

impl Logger {
    /// A logger for `config` with `level` (from `log_type` or `-v`), overridden by
    /// `rust_log` directives when given; opens the log file now (so before any privilege
    /// drop) and `/dev/log` for syslog (`syslog_path` in tests). An error names the file.
    pub fn open(
        config: &LogConfig,
        level: LevelFilter,
        rust_log: Option<&str>,
        syslog_path: &Path,
    ) -> io::Result<Logger> {
        let mut filter = env_filter::Builder::new();
        filter.filter_level(level);
        if let Some(directives) = rust_log {
            filter.parse(directives);
        }
        let file = match &config.file {
            Some(path) => Some(LogFile {
                file: Mutex::new(open_file(path)?),
                path: path.clone(),
            }),
            None => None,
        };
        let timestamp_format = match &config.timestamp_format {
            Some(format) => Some(std::ffi::CString::new(format.as_str()).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "log_timestamp_format has a NUL",
                )
            })?),
            None => None,
        };
        timestamp::init();
        let out = Outputs {
            stderr: config.stderr,
            stdout: config.stdout,
            file,
            syslog: config
                .syslog
                .then(|| Syslog::new(syslog_path, config.facility)),
            topic: config.topic.then(|| Arc::new(TopicQueue::new())),
            timestamp: config.timestamp,
            timestamp_format,
        };
        Ok(Logger {
            filter: filter.build(),
            out: Arc::new(out),
        })
    }

    /// The broker's side of this logger, for `Broker::set_log`.
    pub fn link(&self) -> LogLink {
        LogLink {
            out: Arc::clone(&self.out),
        }
    }

    /// The most verbose level this logger writes, for `log::set_max_level`.
    pub fn max_level(&self) -> LevelFilter {
        self.filter.filter()
    }

    /// Installs this logger as the process's `log` logger.
    pub fn install(self) -> Result<(), log::SetLoggerError> {
        let max = self.max_level();
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(max);
        Ok(())
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !self.filter.matches(record) {
            return;
        }
        let kind = Kind::of(record.level());
        let line = self.out.line(record);
        self.out.write(kind, &line);
    }

    fn flush(&self) {
        // Lines are written whole, unbuffered; only std's stdout buffers.
        let _ = io::stdout().flush();
    }
}

impl LogLink {
    /// Reopens the log file by its path (after logrotate renamed it). On failure the old
    /// file is kept and the error returned; `Ok(None)` when there is no log file.
    pub fn reopen(&self) -> io::Result<Option<&Path>> {
        let Some(log) = &self.out.file else {
            return Ok(None);
        };
        let file = open_file(&log.path)?;
        *log.file.lock().unwrap_or_else(|poison| poison.into_inner()) = file;
        Ok(Some(&log.path))
    }

    /// The queue of lines for `$SYS/broker/log/...`, with `log_dest topic`.
    pub(crate) fn topic(&self) -> Option<&Arc<TopicQueue>> {
        self.out.topic.as_ref()
    }
}

impl Outputs {
    fn line(&self, record: &Record) -> String {
        let mut line = String::with_capacity(128);
        if self.timestamp {
            timestamp::push(&mut line, self.timestamp_format.as_deref());
            line.push_str(": ");
        }
        match record.level() {
            Level::Error => line.push_str("Error: "),
            Level::Warn => line.push_str("Warning: "),
            _ => {}
        }
        use std::fmt::Write as _;
        let _ = write!(line, "{}", record.args());
        line
    }

    /// Writes `line` to every destination. A failed write has nowhere better to be
    /// reported, so it is dropped.
    fn write(&self, kind: Kind, line: &str) {
        if self.stderr || self.stdout || self.file.is_some() {
            let mut bytes = Vec::with_capacity(line.len() + 1);
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            if self.stdout {
                let _ = io::stdout().lock().write_all(&bytes);
            }
            if self.stderr {
                let _ = io::stderr().lock().write_all(&bytes);
            }
            if let Some(log) = &self.file {
                let mut file = log.file.lock().unwrap_or_else(|poison| poison.into_inner());
                let _ = file.write_all(&bytes);
            }
        }
        if let Some(syslog) = &self.syslog {
            syslog.send(kind, line);
        }
        if let Some(queue) = &self.topic {
            queue.push(kind, line);
        }
    }
}

/// Opens the log file for appending, created readable by its owner only, as Mosquitto.
fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            let why = format!(
                "unable to open log file {} for writing: {e}",
                path.display()
            );
            io::Error::new(e.kind(), why)
        })
}
