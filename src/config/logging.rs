//! The logging options as Mosquitto 2.0 reads them: `log_dest`, `log_facility`,
//! `log_timestamp` and `log_timestamp_format` (`log_type`, a level, is parsed beside the
//! other options in `parse`).
//!
//! `log_dest` lines add destinations: the first one replaces the default (stderr), `none`
//! clears the ones before it, and `file PATH` may appear once (PATH is the rest of the line).

use std::path::PathBuf;

use super::ConfigError;
use super::Warning;
use super::line::Line;

/// Where log lines go and how each line starts. The `pipit` binary's logger
/// (`crate::logging`) acts on it; the library itself logs through the `log` facade only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Write lines to standard error (the default destination).
    pub stderr: bool,
    /// Write lines to standard output.
    pub stdout: bool,
    /// Append lines to this file, opened at start and reopened on SIGHUP.
    pub file: Option<PathBuf>,
    /// Send lines to the local syslog daemon (`/dev/log`).
    pub syslog: bool,
    /// Publish lines on `$SYS/broker/log/E|W|N` (debug lines never).
    pub topic: bool,
    /// Syslog facility `local0`..`local7` (0..=7) from `log_facility`; `None` is `daemon`.
    pub facility: Option<u8>,
    /// Whether each line starts with a timestamp and `: `.
    pub timestamp: bool,
    /// A `strftime` format for that timestamp in local time; `None` is seconds since the epoch.
    pub timestamp_format: Option<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            stderr: true,
            stdout: false,
            file: None,
            syslog: false,
            topic: false,
            facility: None,
            timestamp: true,
            timestamp_format: None,
        }
    }
}

impl LogConfig {
    /// Whether no destination is left (`log_dest none`).
    pub fn is_silent(&self) -> bool {
        !(self.stderr || self.stdout || self.file.is_some() || self.syslog || self.topic)
    }

    /// Applies one `log_dest` line; `first` is true for the first `log_dest` read, which
    /// replaces the default destination.
    pub(super) fn dest(
        &mut self,
        l: &Line,
        first: bool,
        warnings: &mut Vec<Warning>,
    ) -> Result<(), ConfigError> {
        let value = l.text()?;
        let (word, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        if first {
            self.clear();
        }
        match word {
            "none" => self.clear(),
            "stderr" => self.stderr = true,
            "stdout" => self.stdout = true,
            "syslog" => self.syslog = true,
            "topic" => self.topic = true,
            "file" => {
                if self.file.is_some() {
                    return Err(l.error("duplicate \"log_dest file\": only one log file"));
                }
                match rest.trim() {
                    "" => return Err(l.error("log_dest file needs a file name")),
                    path => self.file = Some(PathBuf::from(path)),
                }
            }
            "dlt" => warnings.push(l.warning("log_dest dlt is not supported and is ignored")),
            other => return Err(l.error(format!("log_dest: unknown destination \"{other}\""))),
        }
        Ok(())
    }

    /// No destination at all.
    fn clear(&mut self) {
        self.stderr = false;
        self.stdout = false;
        self.file = None;
        self.syslog = false;
        self.topic = false;
    }
}

/// `log_facility N`: syslog's `localN`, N in 0..=7, as Mosquitto.
pub(super) fn facility(l: &Line) -> Result<u8, ConfigError> {
    l.int(0, 7)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::{Path, PathBuf};

    fn log(text: &str) -> super::LogConfig {
        let (config, warnings) = Config::parse(text, Path::new("pipit.conf")).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        config.log
    }

    fn error(text: &str) -> String {
        Config::parse(text, Path::new("pipit.conf"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_first_log_dest_replaces_stderr_and_later_ones_add() {
        assert!(log("").stderr);
        let l = log("log_dest stdout\n");
        assert!(l.stdout && !l.stderr);
        let l = log("log_dest file /var/log/pipit.log\nlog_dest syslog\nlog_dest topic\n");
        assert_eq!(l.file, Some(PathBuf::from("/var/log/pipit.log")));
        assert!(l.syslog && l.topic && !l.stderr && !l.stdout);
        let l = log("log_dest stdout\nlog_dest none\nlog_dest topic\n");
        assert!(l.topic && !l.stdout);
        assert!(log("log_dest none\n").is_silent());
        assert!(log("log_dest syslog # to the journal\n").syslog);
    }

    #[test]
    fn a_log_file_name_is_the_rest_of_the_line() {
        let l = log("log_dest file /var/log/my pipit.log\n");
        assert_eq!(l.file, Some(PathBuf::from("/var/log/my pipit.log")));
    }

    #[test]
    fn timestamps_and_facility() {
        let l = log("log_timestamp false\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\n");
        assert!(!l.timestamp);
        assert_eq!(l.timestamp_format.as_deref(), Some("%Y-%m-%dT%H:%M:%S"));
        assert_eq!(log("log_facility 5\n").facility, Some(5));
        assert_eq!(log("").facility, None);
    }

    #[test]
    fn bad_logging_lines_stop_start_up() {
        for (text, message) in [
            (
                "log_dest file /a\nlog_dest file /b\n",
                "pipit.conf:2: duplicate",
            ),
            ("log_dest file\n", "pipit.conf:1: log_dest file needs"),
            ("log_dest printer\n", "unknown destination"),
            ("log_facility 8\n", "out of range 0..=7"),
            ("log_timestamp maybe\n", "not true or false"),
        ] {
            let e = error(text);
            assert!(e.contains(message), "{text:?}: {e}");
        }
    }
}
