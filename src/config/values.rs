//! Option values with a grammar of their own, read from one configuration line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use log::LevelFilter;

use super::line::{Line, resolve};
use super::{ConfigError, TcpKeepalive, TlsVersion, Warning};
use crate::persist::store::SyncPolicy;

/// `metrics_listener PORT [ADDRESS]`: without an address, loopback only (the figures say
/// who is connected and how busy the broker is, so exposing them is a choice to make).
pub(super) fn metrics_listener(l: &Line) -> Result<SocketAddr, ConfigError> {
    let mut words = l.text()?.split_whitespace();
    let port: u16 = l.parse_int(words.next().unwrap_or_default(), 0, 65535)?;
    match words.next() {
        None => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
        Some(host) => resolve(l, host, port),
    }
}

/// A string in Mosquitto, so trailing text is part of the version (and fails).
pub(super) fn tls_version(
    l: &Line,
    warnings: &mut Vec<Warning>,
) -> Result<TlsVersion, ConfigError> {
    match l.text()? {
        "tlsv1.3" => Ok(TlsVersion::Tls13),
        "tlsv1.2" => Ok(TlsVersion::Tls12),
        "tlsv1.1" => {
            warnings.push(l.warning("tls_version tlsv1.1 is not supported; using tlsv1.2"));
            Ok(TlsVersion::Tls12)
        }
        other => Err(l.error(format!("tls_version: unknown version \"{other}\""))),
    }
}

/// `persistence_sync fsync | interval MS | none`; later words are ignored, as after every
/// keyword.
pub(super) fn persistence_sync(l: &Line) -> Result<SyncPolicy, ConfigError> {
    let mut words = l.text()?.split_whitespace();
    let policy = match (words.next(), words.next()) {
        (Some("fsync"), _) => SyncPolicy::Fsync,
        (Some("none"), _) => SyncPolicy::Never,
        (Some("interval"), Some(ms)) => {
            SyncPolicy::Interval(Duration::from_millis(l.parse_int(ms, 1, 3_600_000)?))
        }
        _ => {
            return Err(l.error(format!(
                "persistence_sync: expected fsync, interval MS or none, got \"{}\"",
                l.value
            )));
        }
    };
    Ok(policy)
}

/// The most verbose level one `log_type` asks for; `none` is `Off`.
pub(super) fn log_type(l: &Line) -> Result<LevelFilter, ConfigError> {
    Ok(match l.word()? {
        "none" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warning" => LevelFilter::Warn,
        "notice" | "information" | "subscribe" | "unsubscribe" | "websockets" => LevelFilter::Info,
        "debug" | "all" => LevelFilter::Debug,
        other => return Err(l.error(format!("log_type: unknown type \"{other}\""))),
    })
}

/// `tcp_keepalive IDLE INTERVAL COUNT`: seconds of silence before the first probe, seconds
/// between probes, and unanswered probes before the connection fails (Linux caps them at
/// 32,767 s, 32,767 s and 127).
pub(super) fn tcp_keepalive(l: &Line) -> Result<TcpKeepalive, ConfigError> {
    let mut words = l.text()?.split_whitespace();
    let (Some(idle), Some(interval), Some(count)) = (words.next(), words.next(), words.next())
    else {
        return Err(l.error("tcp_keepalive: expected IDLE INTERVAL COUNT"));
    };
    Ok(TcpKeepalive {
        idle: Duration::from_secs(l.parse_int(idle, 1, 32_767)?),
        interval: Duration::from_secs(l.parse_int(interval, 1, 32_767)?),
        count: l.parse_int(count, 1, 127)?,
    })
}
