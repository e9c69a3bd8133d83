//! The Mosquitto `mosquitto.conf` parser that builds a `Config`.
//!
//! File format: one `option value` per line; a line whose first non-blank character is `#` is
//! a comment. After a flag, number or keyword the rest of the line is ignored, so a trailing
//! `# comment` is too; a path or string is the whole rest of the line (see `line`).
//! `listener PORT [ADDRESS]` opens a listener block: the listener options after it
//! (TLS, `protocol`, `max_connections`, `max_topic_alias`, `tcp_keepalive`,
//! `tcp_user_timeout` and, with `per_listener_settings true`,
//! `allow_anonymous`/`password_file`/`acl_file`) apply to that listener. Before the first
//! `listener` they apply to the default listener, which is opened by `port`/`bind_address`, or
//! on loopback 1883 when the file opens no listener at all; `max_connections` there is the
//! broker-wide bound. Every other option is global wherever it appears.
//!
//! Addresses: an IP (IPv6 with or without brackets) or a host name resolved at load, IPv4
//! preferred; no address binds 0.0.0.0 (Mosquitto also binds `::`). `include_dir DIR` (main
//! file only) reads DIR's `*.conf` files at that point in Mosquitto's order. Relative paths are
//! relative to the working directory, as in Mosquitto.
//!
//! As in Mosquitto 2.0, a file with a `listener`, `port` or `bind_address` line and no
//! `allow_anonymous` refuses anonymous clients, whatever the address; a file without any
//! (loopback 1883 only) allows them. An unknown option or a bad value is a `ConfigError` carrying
//! `FILE:LINE`, and so is an option Mosquitto has that would restrict access and that pipit
//! does not implement (`refused`); any other option pipit does not implement is a `Warning`,
//! or, if deprecated in Mosquitto and changing nothing in pipit, accepted (`known`).

use super::known;
use super::line::{Line, Origin, resolve};
use super::plugin::{self, DynsecDraft};
use super::section::{Section, SecurityDraft, TlsDraft};
use super::values::{log_type, metrics_listener, persistence_sync, tcp_keepalive, tls_version};
use super::{Config, ConfigError, DEFAULT_PORT, Protocol, SocketDomain, Warning, read_file};
use log::LevelFilter;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest MQTT packet.
const MQTT_MAX_PACKET: u32 = crate::wire::MAX_PACKET_SIZE;
/// Largest MQTT remaining length, hence the largest payload.
const MQTT_MAX_REMAINING: i64 = 268_435_455;

/// Parses config text read from `origin`, following its `include_dir` lines.
pub(super) fn parse(text: &str, origin: &Path) -> Result<(Config, Vec<Warning>), ConfigError> {
    let mut parser = Parser::new();
    parser.text(text, origin, true)?;
    parser.finish()
}

/// Parse state across the main file and its includes.
struct Parser {
    config: Config,
    warnings: Vec<Warning>,
    default: Section,
    listeners: Vec<Section>,
    port: Option<u16>,
    bind_address: Option<IpAddr>,
    security: SecurityDraft,
    /// Whether a `log_dest` line was read (the first replaces the default destination).
    log_dest_seen: bool,
    /// `connection` blocks.
    bridges: super::bridge::Drafts,
    /// Whether a `plugin` line was read (its options follow it).
    has_plugin: bool,
    /// The `global_plugin` line's plugin, which every listener uses.
    global_plugin: Option<DynsecDraft>,
    /// The first plugin line, named when listeners disagree on the plugin's file.
    first_plugin: Option<Origin>,
}

impl Parser {
    fn new() -> Self {
        Parser {
            config: Config::default(),
            warnings: Vec::new(),
            default: Section::new(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                DEFAULT_PORT,
            )),
            listeners: Vec::new(),
            port: None,
            bind_address: None,
            security: SecurityDraft::default(),
            log_dest_seen: false,
            bridges: super::bridge::Drafts::default(),
            has_plugin: false,
            global_plugin: None,
            first_plugin: None,
        }
    }

    fn text(&mut self, text: &str, file: &Path, main: bool) -> Result<(), ConfigError> {
        for (index, raw) in text.lines().enumerate() {
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (name, value) = trimmed
                .split_once(char::is_whitespace)
                .unwrap_or((trimmed, ""));
            let line = Line {
                file,
                no: index + 1,
                name,
                value: value.trim(),
            };
            self.option(&line, main)?;
        }
        Ok(())
    }

    /// The block the current line belongs to, marking it as having listener options.
    fn section(&mut self, line: &Line) -> &mut Section {
        let section = match self.listeners.last_mut() {
            Some(section) => section,
            None => &mut self.default,
        };
        section.first.get_or_insert_with(|| line.origin());
        section
    }

    fn tls(&mut self, line: &Line) -> &mut TlsDraft {
        let tls = &mut self.section(line).tls;
        tls.first.get_or_insert_with(|| line.origin());
        tls
    }

    /// Records a security option both globally and for the current block; `finish` picks one.
    fn security(&mut self, line: &Line, set: impl Fn(&mut SecurityDraft)) {
        set(&mut self.security);
        let section = match self.listeners.last_mut() {
            Some(section) => section,
            None => &mut self.default,
        };
        set(&mut section.security);
        section.security.first.get_or_insert_with(|| line.origin());
    }

    fn option(&mut self, l: &Line, main: bool) -> Result<(), ConfigError> {
        super::features::check(l)?;
        let c = &mut self.config;
        match l.name {
            "listener" => self.listener(l)?,
            "port" => self.port = Some(l.int(0, 65535)?),
            // A string in Mosquitto: trailing text is part of the address, which then fails.
            "bind_address" => self.bind_address = Some(resolve(l, l.text()?, 0)?.ip()),
            "include_dir" if main => self.include_dir(l)?,
            "include_dir" => return Err(l.error("include_dir is only allowed in the main file")),
            "max_connections" => {
                let limit = match l.int::<i64>(-1, i64::from(i32::MAX))? {
                    -1 => None,
                    n => Some(
                        usize::try_from(n).map_err(|_| l.error("max_connections: too large"))?,
                    ),
                };
                match self.listeners.last_mut() {
                    Some(section) => section.listener.max_connections = limit,
                    None => self.config.max_connections = limit,
                }
            }
            "socket_domain" => {
                let domain = match l.word()? {
                    "ipv4" => SocketDomain::Ipv4,
                    "ipv6" => SocketDomain::Ipv6,
                    other => {
                        let why = format!("socket_domain: unknown domain \"{other}\"");
                        return Err(l.error(why));
                    }
                };
                self.section(l).listener.socket_domain = Some(domain);
            }
            "protocol" => {
                let protocol = match l.word()? {
                    "mqtt" => Protocol::Mqtt,
                    "websockets" => Protocol::Websockets,
                    other => return Err(l.error(format!("protocol: unknown protocol \"{other}\""))),
                };
                self.section(l).listener.protocol = protocol;
            }
            // Read on any listener, used on a websockets one (as Mosquitto).
            "http_dir" => self.section(l).listener.http_dir = Some(l.path()?),
            // Global, as in Mosquitto; any integer is a mask of libwebsockets' level bits.
            "websockets_log_level" => {
                c.websockets_log_level =
                    l.int::<i32>(i64::from(i32::MIN), i64::from(i32::MAX))? as u32;
            }
            "websockets_headers_size" => c.websockets_headers_size = l.int(0, 65535)?,
            "max_topic_alias" => self.section(l).listener.max_topic_alias = l.int(0, 65535)?,
            "tcp_keepalive" => self.section(l).listener.tcp_keepalive = Some(tcp_keepalive(l)?),
            "tcp_user_timeout" => {
                let ms = l.int(1, i64::from(i32::MAX))?;
                self.section(l).listener.tcp_user_timeout = Some(Duration::from_millis(ms));
            }
            "certfile" => self.tls(l).certfile = Some(l.path()?),
            "keyfile" => self.tls(l).keyfile = Some(l.path()?),
            "cafile" => self.tls(l).cafile = Some(l.path()?),
            "capath" => self.tls(l).capath = Some(l.path()?),
            "require_certificate" => self.tls(l).require_certificate = l.flag()?,
            "use_identity_as_username" => self.tls(l).use_identity_as_username = l.flag()?,
            // `false` is what a plain listener does: accepted there, as Mosquitto accepts it.
            "use_subject_as_username" => match l.flag()? {
                true => self.tls(l).use_subject_as_username = true,
                false => self.section(l).tls.use_subject_as_username = false,
            },
            "use_username_as_clientid" => {
                self.section(l).listener.use_username_as_clientid = l.flag()?;
            }
            "tls_version" => self.tls(l).min_version = Some(tls_version(l, &mut self.warnings)?),
            "allow_anonymous" => {
                let allow = l.flag()?;
                self.security(l, |s| s.allow_anonymous = Some(allow));
            }
            "password_file" => {
                let path = l.path()?;
                self.security(l, |s| s.password_file = Some(path.clone()));
            }
            "acl_file" => {
                let path = l.path()?;
                self.security(l, |s| s.acl_file = Some(path.clone()));
            }
            "per_listener_settings" => c.per_listener_settings = l.flag()?,
            "max_inflight_messages" => {
                c.max_inflight_messages = match l.int(0, 65535)? {
                    0 => u16::MAX,
                    n => n,
                }
            }
            "max_queued_messages" => c.max_queued_messages = l.int(0, i64::MAX)?,
            "max_queued_bytes" => c.max_queued_bytes = l.int(0, i64::MAX)?,
            "max_queued_bytes_total" => c.max_queued_bytes_total = l.int(0, i64::MAX)?,
            "max_sessions" => c.max_sessions = l.int(0, i64::from(u32::MAX))?,
            // Mosquitto: a byte count, negative refused, 0 no limit.
            "memory_limit" => c.memory_limit = Some(l.int(0, i64::MAX)?).filter(|&n: &u64| n != 0),
            "queue_qos0_messages" => c.queue_qos0_messages = l.flag()?,
            "max_output_buffer" => c.max_output_buffer = l.int(1024, i64::from(u32::MAX))?,
            "slow_subscriber_timeout" => {
                c.slow_subscriber_timeout = Duration::from_secs(l.int(1, 86_400)?);
            }
            "message_size_limit" => c.message_size_limit = l.int(0, MQTT_MAX_REMAINING)?,
            "max_packet_size" => {
                c.max_packet_size = match l.int(0, i64::from(MQTT_MAX_PACKET))? {
                    0 => MQTT_MAX_PACKET,
                    n if n < 20 => {
                        return Err(l.error("max_packet_size: below 20 bytes is forbidden"));
                    }
                    n => n,
                }
            }
            "max_keepalive" => {
                c.max_keepalive = l.int(i64::from(super::MIN_MAX_KEEPALIVE), 65535)?;
            }
            "persistent_client_expiration" => c.persistent_client_expiration = Some(l.duration()?),
            "retain_available" => c.retain_available = l.flag()?,
            "sys_interval" => c.sys_interval = l.int(0, i64::from(u32::MAX))?,
            "metrics_listener" => c.metrics_listener = Some(metrics_listener(l)?),
            "max_subscriptions_per_client" => {
                c.max_subscriptions_per_client = l.int(0, i64::from(u32::MAX))?
            }
            "max_retained_messages" => c.max_retained_messages = l.int(0, i64::from(u32::MAX))?,
            "allow_zero_length_clientid" => c.allow_zero_length_clientid = l.flag()?,
            "clientid_prefixes" => c.clientid_prefixes = Some(l.text()?.to_string()),
            "connection_messages" => c.connection_messages = l.flag()?,
            // `retained_persistence` is Mosquitto's other name for `persistence`.
            "persistence" | "retained_persistence" => c.persistence = l.flag()?,
            "pid_file" => c.pid_file = Some(l.path()?),
            "persistence_sync" => c.persistence_sync = persistence_sync(l)?,
            "persistence_min_free_space" => c.persistence_min_free_space = l.int(0, i64::MAX)?,
            "autosave_on_changes" => c.autosave_on_changes = l.flag()?,
            "persistence_location" => c.persistence_location = Some(l.path()?),
            "persistence_file" => c.persistence_file = l.path()?,
            "autosave_interval" => c.autosave_interval = Duration::from_secs(l.int(0, i64::MAX)?),
            "log_type" => {
                let level = log_type(l)?;
                c.log_level = match level {
                    LevelFilter::Off => Some(LevelFilter::Off),
                    level => Some(c.log_level.map_or(level, |old| old.max(level))),
                };
            }
            "log_dest" => {
                let first = !std::mem::replace(&mut self.log_dest_seen, true);
                c.log.dest(l, first, &mut self.warnings)?;
            }
            "log_facility" => c.log.facility = Some(super::logging::facility(l)?),
            "log_timestamp" => c.log.timestamp = l.flag()?,
            // A string in Mosquitto: the whole rest of the line.
            "log_timestamp_format" => c.log.timestamp_format = Some(l.text()?.to_string()),
            // A string in Mosquitto: the whole rest of the line.
            "user" => c.user = l.text()?.to_string(),
            "connection" => self.bridges.connection(l)?,
            "plugin" if plugin::is_dynsec(l.value) => {
                let draft = DynsecDraft {
                    origin: l.origin(),
                    option: "plugin",
                    config_file: None,
                };
                self.has_plugin = true;
                self.first_plugin.get_or_insert_with(|| l.origin());
                self.security(l, |s| s.dynsec = Some(draft.clone()));
            }
            "global_plugin" if plugin::is_dynsec(l.value) => {
                self.has_plugin = true;
                self.first_plugin.get_or_insert_with(|| l.origin());
                self.global_plugin = Some(DynsecDraft {
                    origin: l.origin(),
                    option: "global_plugin",
                    config_file: None,
                });
            }
            name if plugin::option_key(l).is_some() => self.plugin_option(l, name)?,
            name if known::is_no_op(name) => known::no_op(l)?,
            name if super::bridge::is_bridge_option(name) => {
                self.bridges.option(l, &mut self.warnings)?;
            }
            name if super::refused::is_refused(name) => super::refused::check(l)?,
            name if known::is_unsupported(name) => {
                self.warnings
                    .push(l.warning(format!("{name} is not supported and is ignored")));
            }
            name => return Err(l.error(format!("unknown option \"{name}\""))),
        }
        Ok(())
    }

    /// A `plugin_opt_*` / `global_plugin_opt_*` line, applied to the plugin line before it.
    fn plugin_option(&mut self, l: &Line, name: &str) -> Result<(), ConfigError> {
        let key = plugin::option_key(l).unwrap_or_default();
        match plugin::option(l, key, self.has_plugin)? {
            plugin::Opt::Ignored(warning) => self.warnings.push(l.warning(warning)),
            plugin::Opt::ConfigFile(path) if name.starts_with("global_") => {
                if let Some(draft) = &mut self.global_plugin {
                    draft.config_file = Some(path);
                }
            }
            plugin::Opt::ConfigFile(path) => self.security(l, |s| {
                if let Some(draft) = &mut s.dynsec {
                    draft.config_file = Some(path.clone());
                }
            }),
        }
        Ok(())
    }

    /// `listener PORT [ADDRESS]`: as in Mosquitto, an address starting with `#` is a
    /// comment, and words after the address are ignored.
    fn listener(&mut self, l: &Line) -> Result<(), ConfigError> {
        self.bridges.close();
        let mut words = l.text()?.split_whitespace();
        let port: u16 = l.parse_int(words.next().unwrap_or_default(), 0, 65535)?;
        let host = words.next().filter(|host| !host.starts_with('#'));
        let addr = match host {
            None => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            Some(host) => resolve(l, host, port)?,
        };
        let mut section = Section::new(addr);
        section.listener.dual_stack = host.is_none();
        self.listeners.push(section);
        Ok(())
    }

    fn include_dir(&mut self, l: &Line) -> Result<(), ConfigError> {
        let dir = l.path()?;
        let read_error = |e: std::io::Error| l.error(format!("include_dir {}: {e}", dir.display()));
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            if path.extension().is_some_and(|e| e == "conf") && path.is_file() {
                files.push(path);
            }
        }
        // Mosquitto's order: alphabetical, each upper-case letter before its lower case.
        files.sort_by_cached_key(|path| {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            name.chars()
                .map(|c| (c.to_ascii_lowercase(), c.is_ascii_lowercase()))
                .collect::<Vec<_>>()
        });
        for file in files {
            self.text(&read_file(&file)?, &file, false)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(Config, Vec<Warning>), ConfigError> {
        let mut config = self.config;
        // Mosquitto's "local only" mode: a file without listener, port or bind_address.
        let local_only =
            self.port.is_none() && self.bind_address.is_none() && self.listeners.is_empty();
        let open_default =
            self.port.is_some() || self.bind_address.is_some() || self.listeners.is_empty();
        if open_default {
            let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
            let ip = match (self.bind_address, self.port) {
                (Some(ip), _) => ip,
                (None, Some(_)) => unspecified,
                (None, None) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            };
            self.default.listener.addr = SocketAddr::new(ip, self.port.unwrap_or(DEFAULT_PORT));
            self.default.listener.dual_stack = self.bind_address.is_none() && self.port.is_some();
            self.listeners.insert(0, self.default);
        } else {
            let lost = self.default.first.or(match config.per_listener_settings {
                true => self.default.security.first,
                false => None,
            });
            if let Some(origin) = lost {
                let message = "options before the first listener apply to the default listener, \
                               which is not opened (no port or bind_address): ignored";
                self.warnings.push(origin.warning(message));
            }
        }
        let mut listeners = Vec::with_capacity(self.listeners.len());
        for mut section in self.listeners {
            section.listener.tls = section.tls.finish()?;
            if config.per_listener_settings {
                if section.security.dynsec.is_none() {
                    section.security.dynsec = self.global_plugin.clone();
                }
                section.listener.security = Some(section.security.finish(local_only)?);
            }
            listeners.push(section.listener);
        }
        // With per_listener_settings the global fields describe the default listener, if open.
        let default_own = listeners.first().filter(|_| open_default);
        let global = default_own.and_then(|l| l.security.clone());
        if self.security.dynsec.is_none() {
            self.security.dynsec = self.global_plugin.clone();
        }
        let global = match global {
            Some(global) => global,
            None => self.security.finish(local_only)?,
        };
        // The plugin keeps one configuration for the broker.
        let files: Vec<&PathBuf> = (listeners.iter().filter_map(|l| l.security.as_ref()))
            .chain([&global])
            .filter_map(|s| s.dynsec.as_ref())
            .collect();
        if files.windows(2).any(|pair| pair[0] != pair[1])
            && let Some(origin) = self.first_plugin
        {
            return Err(origin.error(
                "listeners name different plugin_opt_config_file files: pipit keeps one \
                 dynamic security file for the broker, as Mosquitto's plugin does",
            ));
        }
        config.listeners = listeners;
        config.bridges = self.bridges.finish()?;
        config.allow_anonymous = global.allow_anonymous;
        config.password_file = global.password_file;
        config.acl_file = global.acl_file;
        config.dynsec = global.dynsec;
        Ok((config, self.warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{TcpKeepalive, TlsVersion};
    use crate::persist::store::SyncPolicy;
    use std::net::Ipv6Addr;

    fn parse(text: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
        Config::parse(text, Path::new("pipit.conf"))
    }

    fn config(text: &str) -> Config {
        let (config, warnings) = parse(text).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        config
    }

    fn error(text: &str) -> String {
        parse(text).err().unwrap().to_string()
    }

    /// A fresh directory under the system temp directory, unique to this process and test.
    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pipit-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn v4(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port)
    }

    #[test]
    fn empty_file_keeps_the_defaults() {
        assert_eq!(config("# nothing here\n\n   \n"), Config::default());
    }

    #[test]
    // Its file uses every feature's options (`config::features`).
    #[cfg(all(
        feature = "persistence",
        feature = "websocket",
        feature = "bridge",
        feature = "metrics"
    ))]
    fn every_supported_option_parses() {
        let text = "\
per_listener_settings false
allow_anonymous true
password_file /etc/pipit/pw
acl_file /etc/pipit/acl
max_connections 500
max_inflight_messages 5
max_queued_messages 200
max_queued_bytes 1048576
max_queued_bytes_total 67108864
max_sessions 5000
memory_limit 268435456
queue_qos0_messages true
message_size_limit 65536
max_packet_size 131072
max_keepalive 120
persistent_client_expiration 2d
retain_available false
sys_interval 0
allow_zero_length_clientid false
clientid_prefixes secure-
connection_messages false
persistence true
persistence_location /var/lib/pipit/
persistence_file pipit.db
autosave_interval 60
autosave_on_changes true
persistence_sync interval 500
persistence_min_free_space 1000
log_type warning
log_type error
log_dest stderr

listener 8883 0.0.0.0
protocol mqtt
max_connections 100
max_topic_alias 5
certfile /etc/pipit/cert.pem
keyfile /etc/pipit/key.pem
cafile /etc/pipit/ca.pem
capath /etc/pipit/certs
require_certificate true
use_identity_as_username true
use_subject_as_username true
use_username_as_clientid true
tls_version tlsv1.3

listener 8080 ::1
protocol websockets
http_dir /var/www/mqtt # a path keeps the rest of the line
websockets_headers_size 8192
websockets_log_level 9
";
        let (c, warnings) = parse(text).unwrap();
        assert_eq!(warnings, [], "every option is acted on");
        assert_eq!(c.websockets_headers_size, 8192);
        assert_eq!(c.websockets_log_level, 9);
        assert!(!c.per_listener_settings);
        assert!(c.allow_anonymous);
        assert_eq!(c.password_file, Some(PathBuf::from("/etc/pipit/pw")));
        assert_eq!(c.acl_file, Some(PathBuf::from("/etc/pipit/acl")));
        assert_eq!(c.max_connections, Some(500));
        assert_eq!(c.max_inflight_messages, 5);
        assert_eq!(c.max_queued_messages, 200);
        assert_eq!(c.max_queued_bytes, 1_048_576);
        assert_eq!(c.max_queued_bytes_total, 64 << 20);
        assert_eq!(c.max_sessions, 5000);
        assert_eq!(c.memory_limit, Some(256 << 20));
        assert!(c.queue_qos0_messages);
        assert_eq!(c.message_size_limit, 65536);
        assert_eq!(c.max_packet_size, 131_072);
        assert_eq!(c.max_keepalive, 120);
        assert_eq!(
            c.persistent_client_expiration,
            Some(Duration::from_secs(2 * 86_400))
        );
        assert!(!c.retain_available);
        assert_eq!(c.sys_interval, 0);
        assert!(!c.allow_zero_length_clientid);
        assert_eq!(c.clientid_prefixes.as_deref(), Some("secure-"));
        assert!(!c.connection_messages);
        assert!(c.persistence);
        assert_eq!(
            c.persistence_location,
            Some(PathBuf::from("/var/lib/pipit/"))
        );
        assert_eq!(c.persistence_file, PathBuf::from("pipit.db"));
        assert_eq!(c.autosave_interval, Duration::from_secs(60));
        assert!(c.autosave_on_changes);
        assert_eq!(
            c.persistence_sync,
            SyncPolicy::Interval(Duration::from_millis(500))
        );
        assert_eq!(c.persistence_min_free_space, 1000);
        assert_eq!(
            c.store_dir(),
            Some(PathBuf::from("/var/lib/pipit/pipit.db.pipit"))
        );
        assert_eq!(c.log_level, Some(LevelFilter::Warn));
        assert_eq!(
            c.listeners.len(),
            2,
            "explicit listeners replace the default one"
        );
        let tls = &c.listeners[0];
        assert_eq!(tls.addr, v4([0, 0, 0, 0], 8883));
        assert_eq!(tls.protocol, Protocol::Mqtt);
        assert_eq!(tls.max_connections, Some(100));
        assert_eq!(tls.max_topic_alias, 5);
        assert_eq!(tls.security, None);
        let expected = crate::config::TlsConfig {
            certfile: "/etc/pipit/cert.pem".into(),
            keyfile: "/etc/pipit/key.pem".into(),
            cafile: Some("/etc/pipit/ca.pem".into()),
            capath: Some("/etc/pipit/certs".into()),
            require_certificate: true,
            use_identity_as_username: true,
            use_subject_as_username: true,
            min_version: Some(TlsVersion::Tls13),
        };
        assert_eq!(tls.tls, Some(expected));
        assert!(tls.use_username_as_clientid);
        assert!(
            !c.listeners[1].use_username_as_clientid,
            "a listener option"
        );
        let ws = &c.listeners[1];
        assert_eq!(
            ws.addr,
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 8080)
        );
        assert_eq!(ws.protocol, Protocol::Websockets);
        let http_dir = "/var/www/mqtt # a path keeps the rest of the line";
        assert_eq!(ws.http_dir, Some(PathBuf::from(http_dir)));
        assert_eq!(c.listeners[0].http_dir, None);
        assert_eq!(
            (ws.max_connections, ws.max_topic_alias, &ws.tls),
            (None, 10, &None)
        );
    }

    #[test]
    fn memory_limit_is_a_byte_count_as_mosquitto_reads_it() {
        assert_eq!(
            config("memory_limit 0\n").memory_limit,
            None,
            "0 is no limit"
        );
        assert_eq!(config("memory_limit 1000\n").memory_limit, Some(1000));
        let error = parse("memory_limit -1\n").unwrap_err().to_string();
        assert!(error.contains("memory_limit"), "{error}");
        assert!(parse("memory_limit 64M\n").is_err(), "no unit suffixes");
    }

    #[test]
    fn pipit_bounds_parse() {
        let (c, warnings) =
            parse("max_subscriptions_per_client 50\nmax_retained_messages 0\n").unwrap();
        assert!(warnings.is_empty());
        assert_eq!(
            (c.max_subscriptions_per_client, c.max_retained_messages),
            (50, 0)
        );
        assert!(parse("max_retained_messages -1\n").is_err());
    }

    #[test]
    fn persistence_sync_takes_fsync_interval_or_none() {
        for (value, expected) in [
            ("fsync", Some(SyncPolicy::Fsync)),
            ("none", Some(SyncPolicy::Never)),
            (
                "interval 1000",
                Some(SyncPolicy::Interval(Duration::from_secs(1))),
            ),
            ("interval", None),
            ("interval 0", None),
            ("fsync # always", Some(SyncPolicy::Fsync)),
            (
                "interval 1000 # ms",
                Some(SyncPolicy::Interval(Duration::from_secs(1))),
            ),
            ("# fsync", None),
            ("always", None),
        ] {
            let parsed = parse(&format!("persistence_sync {value}\n"));
            assert_eq!(
                parsed.ok().map(|(c, _)| c.persistence_sync),
                expected,
                "{value}"
            );
        }
        let (c, _) = parse("persistence false\n").unwrap();
        assert_eq!(c.store_dir(), None, "off: no store");
    }

    #[test]
    // Its file turns persistence and a WebSocket listener on.
    #[cfg(all(feature = "persistence", feature = "websocket"))]
    fn options_without_effect_yet_warn_instead_of_passing_silently() {
        let text = "\
allow_zero_length_clientid false
clientid_prefixes secure-
connection_messages false
persistence true
listener 8080 127.0.0.1
protocol websockets
";
        let (c, warnings) = parse(text).unwrap();
        assert!(!c.allow_zero_length_clientid && c.persistence);
        // The client id, logging, persistence and WebSockets options are all enforced.
        assert_eq!(warnings, []);
        // The defaults, and settings that ask for what pipit already does, are silent.
        let quiet = "allow_zero_length_clientid true\nconnection_messages true\n\
                     persistence false\nprotocol mqtt\n";
        assert!(parse(quiet).unwrap().1.is_empty());
    }

    #[test]
    fn a_typo_names_file_and_line() {
        let text = "# pipit\n\nallow_anonymous true\n\n\n\nmax_conections 10\n";
        assert_eq!(
            error(text),
            "pipit.conf:7: unknown option \"max_conections\""
        );
    }

    #[test]
    fn bad_values_name_file_line_and_problem() {
        let cases = [
            (
                "max_connections ten",
                "pipit.conf:1: max_connections: \"ten\" is not a whole number",
            ),
            ("max_connections -2", "out of range"),
            ("allow_anonymous yes", "\"yes\" is not true or false"),
            ("allow_anonymous", "allow_anonymous needs a value"),
            ("port 70000", "port: 70000 is out of range 0..=65535"),
            ("max_inflight_messages 65536", "out of range"),
            ("max_keepalive 5", "out of range 10..=65535"),
            ("max_packet_size 10", "below 20 bytes"),
            ("message_size_limit 268435456", "out of range"),
            ("persistent_client_expiration 10", "needs a unit"),
            ("persistent_client_expiration 0d", "out of range"),
            ("persistent_client_expiration xd", "not a whole number"),
            ("protocol http", "unknown protocol"),
            ("websockets_headers_size 65536", "out of range 0..=65535"),
            ("websockets_log_level all", "not a whole number"),
            ("log_type verbose", "unknown type"),
            ("tcp_keepalive 60 10", "expected IDLE INTERVAL COUNT"),
            ("tcp_keepalive 60 10 0", "out of range 1..=127"),
            ("tcp_keepalive 0 10 3", "out of range 1..=32767"),
            ("tcp_user_timeout 0", "out of range"),
            ("log_dest printer", "unknown destination"),
            ("listener", "needs a value"),
            ("listener abc", "not a whole number"),
            ("listener 0 /run/pipit.sock", "unix socket"),
            ("tls_version sslv3", "unknown version"),
        ];
        for (line, expected) in cases {
            let message = error(&format!("{line}\n"));
            assert!(message.starts_with("pipit.conf:1: "), "{line}: {message}");
            assert!(message.contains(expected), "{line}: {message}");
        }
    }

    /// Issue 13 row 1, as Mosquitto 2.0.11 reads these lines (checked with the real broker):
    /// a flag, number or keyword is the first word, the rest of the line is ignored.
    #[test]
    fn trailing_text_after_flags_numbers_and_keywords_is_ignored() {
        let text = "\
allow_anonymous false # comment
per_listener_settings 0   # Mosquitto's 0 and 1 are flags too
max_inflight_messages 20  # x
sys_interval 1 2
max_keepalive 60\t# tabbed
persistent_client_expiration 2d # two days
log_type error # errors only
persistence_sync none # fast
listener 1884 127.0.0.1 # MQTT
protocol mqtt # plain
max_connections 7 # per listener
max_topic_alias 3 extra words
listener 1885 # every address
listener 1886 ::1 ignored # v6
";
        let c = config(text);
        assert!(!c.allow_anonymous && !c.per_listener_settings);
        assert_eq!((c.max_inflight_messages, c.sys_interval), (20, 1));
        assert_eq!(c.max_keepalive, 60);
        assert_eq!(
            c.persistent_client_expiration,
            Some(Duration::from_secs(2 * 86_400))
        );
        assert_eq!(c.log_level, Some(LevelFilter::Error));
        assert_eq!(c.persistence_sync, SyncPolicy::Never);
        let addrs: Vec<SocketAddr> = c.listeners.iter().map(|l| l.addr).collect();
        let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 1886);
        let expected = [v4([127, 0, 0, 1], 1884), v4([0, 0, 0, 0], 1885), v6];
        assert_eq!(addrs, expected);
        let first = &c.listeners[0];
        assert_eq!((first.max_connections, first.max_topic_alias), (Some(7), 3));
        assert!(config("allow_anonymous 1\n").allow_anonymous);
    }

    #[test]
    fn tcp_options_are_per_listener() {
        let c =
            config("listener 1884\ntcp_keepalive 60 10 3\ntcp_user_timeout 30000\nlistener 1885\n");
        let keepalive = TcpKeepalive {
            idle: Duration::from_secs(60),
            interval: Duration::from_secs(10),
            count: 3,
        };
        assert_eq!(c.listeners[0].tcp_keepalive, Some(keepalive));
        assert_eq!(
            c.listeners[0].tcp_user_timeout,
            Some(Duration::from_millis(30_000))
        );
        assert_eq!(
            (
                c.listeners[1].tcp_keepalive,
                c.listeners[1].tcp_user_timeout
            ),
            (None, None)
        );
    }

    /// Mosquitto reads paths and strings as the whole rest of the line, so a trailing comment
    /// becomes part of the path (and the file is then not found, as with Mosquitto).
    #[test]
    fn paths_and_strings_keep_the_rest_of_the_line() {
        let c = config("password_file /etc/x # c\nacl_file /etc/my acl\nclientid_prefixes a b\n");
        assert_eq!(c.password_file, Some(PathBuf::from("/etc/x # c")));
        assert_eq!(c.acl_file, Some(PathBuf::from("/etc/my acl")));
        assert_eq!(c.clientid_prefixes.as_deref(), Some("a b"));
        assert!(error("tls_version tlsv1.2 # c\n").contains("unknown version"));
        assert!(error("bind_address 127.0.0.1 # c\n").contains("cannot resolve"));
    }

    /// A value that is wrong in its first word is still refused, trailing comment or not.
    #[test]
    fn a_wrong_first_word_is_refused_whatever_follows() {
        for line in [
            "allow_anonymous maybe # c",
            "allow_anonymous # true",
            "max_connections ten # c",
            "max_inflight_messages -5 # c",
            "persistent_client_expiration 10 # days",
            "protocol http # c",
            "log_type verbose # c",
            "listener abc # c",
            "listener 1883 # c\nmax_topic_alias x # 3",
        ] {
            let message = error(&format!("{line}\n"));
            assert!(message.starts_with("pipit.conf:"), "{line}: {message}");
        }
    }

    #[test]
    fn special_values() {
        let c = config("max_connections -1\nmax_inflight_messages 0\nmax_packet_size 0\n");
        assert_eq!(c.max_connections, None);
        assert_eq!(c.max_inflight_messages, u16::MAX);
        assert_eq!(c.max_packet_size, MQTT_MAX_PACKET);
        for (text, seconds) in [
            ("3h", 3 * 3600),
            ("1w", 604_800),
            ("1m", 2_592_000),
            ("1y", 31_536_000),
        ] {
            let c = config(&format!("persistent_client_expiration {text}\n"));
            assert_eq!(
                c.persistent_client_expiration,
                Some(Duration::from_secs(seconds))
            );
        }
    }

    #[test]
    fn logging_options_map_to_a_level() {
        let level = |text: &str| config(text).log_level;
        assert_eq!(level("log_type error\n"), Some(LevelFilter::Error));
        assert_eq!(
            level("log_type error\nlog_type information\n"),
            Some(LevelFilter::Info)
        );
        assert_eq!(level("log_type all\n"), Some(LevelFilter::Debug));
        assert_eq!(
            level("log_type debug\nlog_type none\n"),
            Some(LevelFilter::Off)
        );
        // `log_dest none` silences by leaving no destination, not by the level.
        assert_eq!(
            level("log_type debug\nlog_dest none\n"),
            Some(LevelFilter::Debug)
        );
        assert!(config("log_dest none\n").log.is_silent());
    }

    #[test]
    fn a_listener_of_the_files_own_refuses_anonymous_by_default() {
        // Mosquitto 2.0: only a file that opens no listener (local only) allows them.
        assert!(config("persistence false\n").allow_anonymous);
        assert!(!config("listener 1883 127.0.0.1\n").allow_anonymous);
        assert!(!config("listener 1883 localhost\n").allow_anonymous);
        assert!(!config("bind_address 127.0.0.1\n").allow_anonymous);
        assert!(!config("listener 1883\n").allow_anonymous);
        assert!(!config("listener 1883 127.0.0.1\nlistener 1884 10.0.0.1\n").allow_anonymous);
        assert!(!config("port 1883\n").allow_anonymous);
        assert!(config("listener 1883\nallow_anonymous true\n").allow_anonymous);
    }

    #[test]
    fn listener_addresses() {
        let addr = |text: &str| config(text).listeners[0].addr;
        assert_eq!(addr("listener 1884\n"), v4([0, 0, 0, 0], 1884));
        assert_eq!(
            addr("listener 1884 192.168.1.5\n"),
            v4([192, 168, 1, 5], 1884)
        );
        assert_eq!(addr("listener 1884 localhost\n"), v4([127, 0, 0, 1], 1884));
        let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 1884);
        assert_eq!(addr("listener 1884 ::\n"), any6);
        assert_eq!(addr("listener 1884 [::]\n"), any6);
        assert_eq!(addr("port 1999\n"), v4([0, 0, 0, 0], 1999));
        // Without an address, IPv6 too, as Mosquitto; with one, that address alone.
        let dual = |text: &str| config(text).listeners[0].dual_stack;
        assert!(dual("listener 1884\n") && dual("listener 1884 # all\n") && dual("port 1999\n"));
        assert!(!dual("listener 1884 0.0.0.0\n") && !dual("listener 1884 ::\n"));
        assert!(!dual("bind_address 127.0.0.1\n") && !dual("port 1999\nbind_address 0.0.0.0\n"));
        let domain = |text: &str| config(text).listeners[0].socket_domain;
        assert_eq!(
            domain("listener 1884\nsocket_domain ipv6\n"),
            Some(SocketDomain::Ipv6)
        );
        assert_eq!(
            domain("socket_domain ipv4 # v4\nport 1999\n"),
            Some(SocketDomain::Ipv4)
        );
        assert_eq!(domain("listener 1884\n"), None);
        assert!(parse("listener 1884\nsocket_domain ipx\n").is_err());
        assert!(
            !dual("allow_anonymous true\n"),
            "the default listener is loopback only"
        );
        assert_eq!(addr("bind_address 127.0.0.1\n"), v4([127, 0, 0, 1], 1883));
        assert_eq!(
            addr("bind_address localhost\nport 1999\n"),
            v4([127, 0, 0, 1], 1999)
        );
    }

    #[test]
    // A build without `metrics` refuses the option (`config::features`).
    #[cfg(feature = "metrics")]
    fn metrics_listener_is_off_by_default_and_loopback_without_an_address() {
        let metrics = |text: &str| config(text).metrics_listener;
        assert_eq!(metrics(""), None);
        assert_eq!(
            metrics("metrics_listener 9234\n"),
            Some(v4([127, 0, 0, 1], 9234))
        );
        assert_eq!(
            metrics("metrics_listener 9234 0.0.0.0\n"),
            Some(v4([0, 0, 0, 0], 9234))
        );
        assert!(error("metrics_listener\n").contains("needs a value"));
        assert!(error("metrics_listener 70000\n").starts_with("pipit.conf:1: "));
    }

    #[test]
    fn default_listener_comes_first_when_opened() {
        let c = config("port 1883\nlistener 8883 127.0.0.1\n");
        let addrs: Vec<_> = c.listeners.iter().map(|l| l.addr).collect();
        assert_eq!(addrs, [v4([0, 0, 0, 0], 1883), v4([127, 0, 0, 1], 8883)]);
        let (c, warnings) = parse("max_topic_alias 3\nlistener 8883 127.0.0.1\n").unwrap();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].max_topic_alias, 10);
        assert!(
            warnings[0]
                .to_string()
                .starts_with("pipit.conf:1: options before the first")
        );
    }

    #[test]
    fn tls_needs_certfile_and_keyfile() {
        let message = error("listener 8883\ncertfile /c.pem\n\nlistener 1883\n");
        assert_eq!(
            message,
            "pipit.conf:2: TLS needs both certfile and keyfile on this listener"
        );
        assert!(error("listener 8883\ncafile /ca.pem\n").contains("keyfile"));
        let plain = "listener 1883\nrequire_certificate false\nuse_identity_as_username false\n";
        assert!(
            config(plain).listeners[0].tls.is_none(),
            "defaults restated"
        );
        let message = error("listener 8883\ncertfile /c\nkeyfile /k\nrequire_certificate true\n");
        assert!(message.contains("cafile or capath"), "{message}");
        let (c, warnings) =
            parse("listener 8883\ncertfile /c\nkeyfile /k\ntls_version tlsv1.1\n").unwrap();
        assert_eq!(
            c.listeners[0].tls.as_ref().unwrap().min_version,
            Some(TlsVersion::Tls12)
        );
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn per_listener_settings_give_each_listener_its_security() {
        let text = "\
per_listener_settings true
listener 1883 127.0.0.1
listener 8883 10.0.0.1
password_file /pw
acl_file /acl
listener 9883 10.0.0.1
allow_anonymous true
";
        let c = config(text);
        let local = c.security_for(0);
        assert_eq!(
            (local.allow_anonymous, &local.password_file),
            (false, &None)
        );
        let remote = c.security_for(1);
        assert!(!remote.allow_anonymous);
        assert_eq!(remote.password_file, Some(PathBuf::from("/pw")));
        assert_eq!(remote.acl_file, Some(PathBuf::from("/acl")));
        let open = c.security_for(2);
        assert_eq!((open.allow_anonymous, &open.password_file), (true, &None));
        assert!(c.listeners.iter().all(|l| l.security.is_some()));
    }

    #[test]
    fn without_per_listener_settings_security_is_global() {
        let c = config("listener 1883 127.0.0.1\nlistener 8883 10.0.0.1\npassword_file /pw\n");
        assert!(c.listeners.iter().all(|l| l.security.is_none()));
        for index in [0, 1, 7] {
            let security = c.security_for(index);
            assert_eq!(security.password_file, Some(PathBuf::from("/pw")));
            assert!(!security.allow_anonymous);
        }
    }

    #[test]
    // Its file has a `connection` block.
    #[cfg(feature = "bridge")]
    fn unsupported_options_are_warnings_with_lines() {
        let text = "\
max_qos 1
set_tcp_nodelay true
upgrade_outgoing_qos false
connection bridge-01
address 10.0.0.2:1883
topic sensors/# out 1
listener 1883 127.0.0.1
tls_keyform pem
dhparamfile /dh.pem
";
        let (c, warnings) = parse(text).unwrap();
        assert_eq!(c.listeners.len(), 1);
        let lines: Vec<usize> = warnings.iter().map(|w| w.line).collect();
        assert_eq!(
            lines,
            [1, 2, 3, 8, 9],
            "a bridge block is built, not warned"
        );
        assert_eq!(
            warnings[0].to_string(),
            "pipit.conf:1: max_qos is not supported and is ignored"
        );
        assert_eq!(c.bridges.len(), 1);
        let error = parse("remote_username u\n").unwrap_err().to_string();
        assert!(error.contains("pipit.conf:1: remote_username is a bridge option"));
    }

    #[test]
    fn include_dir_reads_conf_files_in_mosquitto_order() {
        let dir = scratch_dir("include");
        for (name, text) in [
            ("b.conf", "max_queued_messages 2\n"),
            ("A.conf", "max_queued_messages 9\nlistener 1884 127.0.0.1\n"),
            ("a.conf", "max_queued_messages 1\n"),
            ("00.conf", "max_queued_messages 0\nsys_interval 3\n"),
            ("notes.txt", "this is not a config file\n"),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let text = format!("max_queued_messages 7\ninclude_dir {}\n", dir.display());
        let c = config(&text);
        assert_eq!(c.max_queued_messages, 2, "b.conf is read last");
        assert_eq!(c.sys_interval, 3);
        assert_eq!(c.listeners[0].addr, v4([127, 0, 0, 1], 1884));
        let main = dir.join("main.conf.main");
        std::fs::write(&main, &text).unwrap();
        assert_eq!(Config::load(&main).unwrap().0.max_queued_messages, 2);
    }

    #[test]
    fn include_dir_errors_name_the_included_file() {
        let dir = scratch_dir("include-bad");
        std::fs::write(dir.join("10-good.conf"), "sys_interval 5\n").unwrap();
        std::fs::write(dir.join("20-bad.conf"), "# c\nretain_available maybe\n").unwrap();
        let message = error(&format!("include_dir {}\n", dir.display()));
        let expected = format!("{}:2: retain_available", dir.join("20-bad.conf").display());
        assert!(message.starts_with(&expected), "{message}");
        std::fs::write(dir.join("20-bad.conf"), "include_dir /tmp\n").unwrap();
        assert!(error(&format!("include_dir {}\n", dir.display())).contains("only allowed"));
        let message = error("\ninclude_dir /nonexistent/pipit.d\n");
        assert!(message.starts_with("pipit.conf:2: include_dir /nonexistent/pipit.d"));
    }

    #[test]
    fn missing_file_is_an_error_without_a_line() {
        let err = Config::from_file(Path::new("/nonexistent/pipit.conf"))
            .err()
            .unwrap();
        assert_eq!(err.line, None);
        assert!(
            err.to_string()
                .starts_with("/nonexistent/pipit.conf: cannot read")
        );
    }
}
