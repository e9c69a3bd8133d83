//! One line of a config file and the value parsers every option uses: words, flags, bounded
//! integers, Mosquitto durations and listener addresses. Every error and warning made here
//! names the option and carries its `FILE:LINE`.
//!
//! Trailing text, as Mosquitto 2.0 reads it: a flag, number or keyword is the value's first
//! word and the rest of the line is ignored (`allow_anonymous true # comment` is `true`),
//! while a path or string is the whole rest of the line (`password_file /etc/pw # c` names
//! the file `/etc/pw # c`, which Mosquitto then fails to open, as pipit does).

use super::{ConfigError, Warning};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where an option was written, kept for checks made after the whole file is read.
#[derive(Clone, Debug)]
pub(super) struct Origin {
    pub(super) file: PathBuf,
    pub(super) line: usize,
}

impl Origin {
    pub(super) fn error(&self, message: impl Into<String>) -> ConfigError {
        let (file, line) = (self.file.clone(), Some(self.line));
        ConfigError {
            file,
            line,
            message: message.into(),
        }
    }

    pub(super) fn warning(&self, message: impl Into<String>) -> Warning {
        Warning {
            file: self.file.clone(),
            line: self.line,
            message: message.into(),
        }
    }
}

/// One `option value` line.
pub(super) struct Line<'a> {
    pub(super) file: &'a Path,
    pub(super) no: usize,
    pub(super) name: &'a str,
    pub(super) value: &'a str,
}

impl Line<'_> {
    pub(super) fn origin(&self) -> Origin {
        Origin {
            file: self.file.to_path_buf(),
            line: self.no,
        }
    }

    pub(super) fn error(&self, message: impl Into<String>) -> ConfigError {
        self.origin().error(message)
    }

    pub(super) fn warning(&self, message: impl Into<String>) -> Warning {
        self.origin().warning(message)
    }

    /// The whole value, which must not be empty (paths, strings): trailing text is part of it.
    pub(super) fn text(&self) -> Result<&str, ConfigError> {
        match self.value {
            "" => Err(self.error(format!("{} needs a value", self.name))),
            value => Ok(value),
        }
    }

    /// The value's first word (flags, numbers, keywords); the rest of the line is ignored,
    /// as Mosquitto reads these values.
    pub(super) fn word(&self) -> Result<&str, ConfigError> {
        let value = self.text()?;
        Ok(value.split_whitespace().next().unwrap_or(value))
    }

    /// The whole value as a path.
    pub(super) fn path(&self) -> Result<PathBuf, ConfigError> {
        self.text().map(PathBuf::from)
    }

    /// `true` or `false`; Mosquitto also takes `1` and `0`.
    pub(super) fn flag(&self) -> Result<bool, ConfigError> {
        match self.word()? {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(self.error(format!("{}: \"{other}\" is not true or false", self.name))),
        }
    }

    /// The first word as a whole number in `min..=max`.
    pub(super) fn int<T: TryFrom<i64>>(&self, min: i64, max: i64) -> Result<T, ConfigError> {
        self.parse_int(self.word()?, min, max)
    }

    /// `word` as a whole number in `min..=max`; errors name this line's option.
    pub(super) fn parse_int<T: TryFrom<i64>>(
        &self,
        word: &str,
        min: i64,
        max: i64,
    ) -> Result<T, ConfigError> {
        let name = self.name;
        let value: i64 = word
            .parse()
            .map_err(|_| self.error(format!("{name}: \"{word}\" is not a whole number")))?;
        let out_of_range = || self.error(format!("{name}: {value} is out of range {min}..={max}"));
        if value < min || value > max {
            return Err(out_of_range());
        }
        T::try_from(value).map_err(|_| out_of_range())
    }

    /// Mosquitto's duration (the first word): a positive count followed by h, d, w, m (30 days) or y (365 days).
    pub(super) fn duration(&self) -> Result<Duration, ConfigError> {
        let word = self.word()?;
        let unit = word.chars().last().unwrap_or('?');
        let count = &word[..word.len() - unit.len_utf8()];
        let seconds: u64 = match unit {
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            'm' => 30 * 86_400,
            'y' => 365 * 86_400,
            _ => {
                return Err(self.error(format!(
                    "{}: \"{word}\" needs a unit h, d, w, m or y",
                    self.name
                )));
            }
        };
        let count: u64 = self.parse_int(count, 1, i64::from(u32::MAX))?;
        Ok(Duration::from_secs(count * seconds))
    }
}

/// An IP address (IPv6 optionally in brackets) or a host name, resolved now, IPv4 preferred.
pub(super) fn resolve(l: &Line, host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if host.starts_with('/') {
        return Err(l.error(format!(
            "{}: unix socket listeners are not supported",
            l.name
        )));
    }
    let unresolved = |why: String| l.error(format!("{}: cannot resolve \"{host}\": {why}", l.name));
    let addrs: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| unresolved(e.to_string()))?
        .collect();
    let first = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first());
    first
        .copied()
        .ok_or_else(|| unresolved("no addresses".to_string()))
}
