//! Broker configuration: the `Config` value every other module reads, with safe defaults.
//!
//! Defaults match Mosquitto 2 started without a config file: one listener on loopback port
//! 1883, anonymous clients allowed (loopback only), nothing persisted. `Config::parse` and
//! `Config::load` read Mosquitto's `mosquitto.conf` format (see `parse` for the rules); their
//! errors and warnings carry `FILE:LINE`.

mod bridge;
mod bridge_tls;
mod bridge_topic;
pub mod features;
mod known;
mod line;
mod logging;
mod parse;
mod plugin;
mod refused;
mod section;
mod values;

pub use bridge::{BridgeConfig, BridgeTopic, Direction, QueuePolicy, Restart, StartType};
pub use bridge_tls::BridgeTls;
pub use bridge_topic::bridge_topic;
pub use logging::LogConfig;

use log::LevelFilter;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::persist::store::SyncPolicy;

/// The smallest `max_keepalive` accepted (from the file or `--max-keepalive`), as in
/// Mosquitto: below it, clients would be told to ping more often than is sensible, and 0
/// would turn keepalive checking off.
pub const MIN_MAX_KEEPALIVE: u16 = 10;

/// Port of the default listener when the file does not set `port`.
const DEFAULT_PORT: u16 = 1883;

/// Transport spoken on a listener (`protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT straight over TCP (the default).
    Mqtt,
    /// MQTT over WebSockets.
    Websockets,
}

/// Lowest TLS version a listener accepts (`tls_version`) or a bridge offers
/// (`bridge_tls_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 and later (`tlsv1.2`; `tlsv1.1` is raised to this with a warning).
    Tls12,
    /// TLS 1.3 only (`tlsv1.3`).
    Tls13,
}

/// Certificate-based TLS on one listener; exists only when both certfile and keyfile are set.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsConfig {
    /// PEM server certificate chain.
    pub certfile: PathBuf,
    /// PEM private key of `certfile`.
    pub keyfile: PathBuf,
    /// PEM file of CA certificates that client certificates are checked against.
    pub cafile: Option<PathBuf>,
    /// Directory of PEM CA certificates that client certificates are checked against.
    pub capath: Option<PathBuf>,
    /// Whether a client must present a valid certificate (needs `cafile` or `capath`).
    pub require_certificate: bool,
    /// Whether the client certificate's CN replaces the MQTT username.
    pub use_identity_as_username: bool,
    /// Whether the client certificate's whole subject, in RFC 2253 form as Mosquitto writes
    /// it, replaces the MQTT username (`use_identity_as_username` wins if both are set).
    pub use_subject_as_username: bool,
    /// Lowest version accepted; `None` accepts TLS 1.2 and 1.3.
    pub min_version: Option<TlsVersion>,
}

/// Which name of the client certificate's subject becomes the username.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertUsername {
    /// The first CN (`use_identity_as_username`).
    CommonName,
    /// The whole subject, e.g. `CN=sensor-7,O=Acme,C=NZ` (`use_subject_as_username`).
    Subject,
}

impl TlsConfig {
    /// Where a client's username comes from on this listener: its certificate (as Mosquitto,
    /// the CN when both options are set), or `None` for the CONNECT's username and password.
    pub fn cert_username(&self) -> Option<CertUsername> {
        if self.use_identity_as_username {
            Some(CertUsername::CommonName)
        } else if self.use_subject_as_username {
            Some(CertUsername::Subject)
        } else {
            None
        }
    }
}

/// Authentication and access-control settings that apply to a connection.
#[derive(Clone, Debug, PartialEq)]
pub struct SecurityConfig {
    /// Whether clients without a username may connect.
    pub allow_anonymous: bool,
    /// Mosquitto-format password file, if any.
    pub password_file: Option<PathBuf>,
    /// Mosquitto-format ACL file, if any.
    pub acl_file: Option<PathBuf>,
    /// The dynamic security plugin's JSON file (`plugin .../mosquitto_dynamic_security.so`
    /// with `plugin_opt_config_file`), if the plugin is loaded.
    pub dynsec: Option<PathBuf>,
}

/// One listening socket and the options that apply to connections accepted on it.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerConfig {
    /// Address and port to bind; port 0 picks an ephemeral port (tests).
    pub addr: SocketAddr,
    /// Listen on IPv6 and IPv4 both (`listener PORT` or `port PORT` without an address, as
    /// Mosquitto does): one dual-stack socket on `[::]`, or `addr` (IPv4) alone where the
    /// host has no IPv6.
    pub dual_stack: bool,
    /// `socket_domain ipv4|ipv6`: the one address family this listener serves; `None` is
    /// both for a listener without an address, and the address's own family otherwise.
    pub socket_domain: Option<SocketDomain>,
    /// Transport spoken on this listener.
    pub protocol: Protocol,
    /// Most simultaneous connections on this listener; at the bound a new one is closed at
    /// accept. `None` is unlimited (the broker-wide `Config::max_connections` still applies).
    pub max_connections: Option<usize>,
    /// Most topic aliases a v5 client may create on this listener; 0 disallows them.
    pub max_topic_alias: u16,
    /// TLS settings; `None` is plain TCP (WebSockets: `ws://`, with TLS `wss://`).
    pub tls: Option<TlsConfig>,
    /// Whether a client's username replaces its client id (`use_username_as_clientid`): a
    /// client without a username is refused.
    pub use_username_as_clientid: bool,
    /// Directory of files served to plain HTTP requests on a WebSockets listener
    /// (`http_dir`); `None` answers them 426.
    pub http_dir: Option<PathBuf>,
    /// This listener's own security settings, set only with `per_listener_settings true`;
    /// read them through `Config::security_for`.
    pub security: Option<SecurityConfig>,
    /// TCP keepalive probes on accepted sockets (`tcp_keepalive IDLE INTERVAL COUNT`, the
    /// syntax of Mosquitto's `bridge_tcp_keepalive`); `None` leaves the kernel's default (off).
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// `TCP_USER_TIMEOUT` on accepted sockets (`tcp_user_timeout MS`, the unit of Mosquitto's
    /// `bridge_tcp_user_timeout`): sent data unacknowledged this long closes the connection.
    pub tcp_user_timeout: Option<Duration>,
}

/// TCP keepalive settings of a listener: a silent peer is probed after `idle`, then every
/// `interval`, and the connection fails after `count` unanswered probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpKeepalive {
    /// Silence before the first probe (`TCP_KEEPIDLE`).
    pub idle: Duration,
    /// Time between probes (`TCP_KEEPINTVL`).
    pub interval: Duration,
    /// Unanswered probes before the connection fails (`TCP_KEEPCNT`).
    pub count: u32,
}

/// An address family a listener may be restricted to (`socket_domain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketDomain {
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

impl ListenerConfig {
    /// A plain MQTT listener on `addr` with default options.
    pub fn new(addr: SocketAddr) -> Self {
        ListenerConfig {
            addr,
            dual_stack: false,
            socket_domain: None,
            protocol: Protocol::Mqtt,
            max_connections: None,
            max_topic_alias: 10,
            tls: None,
            use_username_as_clientid: false,
            http_dir: None,
            security: None,
            tcp_keepalive: None,
            tcp_user_timeout: None,
        }
    }
}

/// Everything the broker needs to know at start-up. Every bound says what happens at it.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Sockets to listen on.
    pub listeners: Vec<ListenerConfig>,
    /// Bridges to other brokers (`connection` blocks), in file order.
    pub bridges: Vec<BridgeConfig>,
    /// Most simultaneous client connections; a connection over it is closed at accept.
    /// `None` is unlimited (Mosquitto's `max_connections -1`).
    pub max_connections: Option<usize>,
    /// Whether clients without a username may connect.
    pub allow_anonymous: bool,
    /// Mosquitto-format password file, if any.
    pub password_file: Option<PathBuf>,
    /// Mosquitto-format ACL file, if any.
    pub acl_file: Option<PathBuf>,
    /// The dynamic security plugin's JSON file, if the plugin is loaded.
    pub dynsec: Option<PathBuf>,
    /// Most unacknowledged outbound QoS 1/2 messages per session; more wait in the queue.
    /// Also the Receive Maximum pipit announces to MQTT 5 clients. The default, 100, is
    /// wider than Mosquitto's 20: the messages wait in the session either way, so the window
    /// costs no memory, while each round trip to the client carries up to this many, which
    /// is what bounds a QoS 1/2 subscriber's rate over a slow link (and the broker's CPU per
    /// message: fewer, fuller writes).
    pub max_inflight_messages: u16,
    /// Most QoS 1/2 messages queued per session beyond the inflight window (and QoS 0 for an
    /// offline session with `queue_qos0_messages`); further messages for that session are
    /// dropped (counted). QoS 0 to an online client does not count: it is bounded by
    /// `max_output_buffer`. 0 is unlimited.
    pub max_queued_messages: usize,
    /// Most payload bytes queued per session, counted as `max_queued_messages`; 0 is
    /// unlimited (Mosquitto's default).
    pub max_queued_bytes: usize,
    /// Most payload bytes queued across all sessions together, counted as
    /// `max_queued_bytes` (pipit's `max_queued_bytes_total`); a message that would go over
    /// it is dropped for that session (counted as `queue_full`). 0, the default, is
    /// unlimited.
    pub max_queued_bytes_total: usize,
    /// Most offline sessions kept (pipit's `max_sessions`); past it the offline session
    /// that would expire soonest (the longest disconnected among those that never expire)
    /// is expired at once, logged. 0 is unlimited; the default is 100,000.
    pub max_sessions: usize,
    /// The heap budget in bytes (Mosquitto's `memory_limit`), measured by the counting
    /// allocator (`crate::heap`); near it the broker sheds load in a fixed order
    /// (`core::budget`). `None` (Mosquitto's 0) is no budget.
    pub memory_limit: Option<u64>,
    /// Whether QoS 0 messages are queued for offline persistent sessions (Mosquitto: no).
    pub queue_qos0_messages: bool,
    /// Largest PUBLISH payload accepted; a larger one is dropped. 0 is no limit beyond
    /// `max_packet_size`.
    pub message_size_limit: u32,
    /// Largest packet accepted, in bytes including the fixed header; a larger remaining length
    /// closes the connection before its body is read.
    pub max_packet_size: u32,
    /// Largest keepalive a client may ask for; a larger (or zero, in v5) request is told this.
    /// At least [`MIN_MAX_KEEPALIVE`].
    pub max_keepalive: u16,
    /// How long a disconnected persistent v3 session is kept; `None` keeps it forever.
    pub persistent_client_expiration: Option<Duration>,
    /// Whether retained messages are stored.
    pub retain_available: bool,
    /// Seconds between `$SYS` updates (and load average updates); 0 disables them.
    pub sys_interval: u32,
    /// Where the Prometheus endpoint (`GET /metrics`) listens (`metrics_listener PORT
    /// [ADDRESS]`, loopback unless an address is given); `None`, the default, serves none.
    pub metrics_listener: Option<SocketAddr>,
    /// How long a new connection may take to send CONNECT before it is closed.
    pub connect_timeout: Duration,
    /// Longest topic name or filter accepted, in bytes (65,535, as Mosquitto).
    pub max_topic_length: usize,
    /// Most `/`-separated levels in a topic name or filter: 201 (200 separators), the bound
    /// Mosquitto 2.0 enforces. Every level of a subscription costs a tree node (about 270
    /// bytes measured, for two bytes of filter) and every level of a retained topic a store
    /// node, so a 65,535-byte filter of 32,768 levels would cost about 9 MB, for each of the
    /// `max_subscriptions_per_client` filters a client may hold. Beyond the bound a
    /// filter gets SUBACK 0x8F (3.1.1 0x80), a PUBLISH v5 0x90 (3.1.1 acknowledged and
    /// dropped) and a will CONNACK 0x90 (3.1.1 0x03); the connection stays up.
    pub max_topic_levels: usize,
    /// Most bytes waiting for one online client (its output buffer plus the QoS 0 queued for
    /// it). Over the bound, the publishers whose messages wait for it are not read from
    /// (TCP back-pressure) while it keeps draining; QoS 1/2 wait in the session queue.
    pub max_output_buffer: usize,
    /// How long a client over `max_output_buffer` may go without draining any output before
    /// it is treated as slow: its QoS 0 is then dropped (counted) and nobody waits for it.
    pub slow_subscriber_timeout: Duration,
    /// Most subscriptions one session may hold (pipit's `max_subscriptions_per_client`); a
    /// SUBSCRIBE for a new filter beyond it is refused (0x80 / v5 0x97 quota exceeded).
    /// 0 is unlimited.
    pub max_subscriptions_per_client: usize,
    /// Most bytes one MQTT 5 connection's outbound topic alias table may cost (each entry
    /// counted with its topic's length); at the bound the broker stops assigning aliases to
    /// that client and sends further topics in full.
    pub max_outbound_alias_bytes: usize,
    /// Most retained messages stored (pipit's `max_retained_messages`); at the bound a
    /// retained PUBLISH to a new topic is delivered but not stored (counted). 0 is unlimited.
    pub max_retained_messages: usize,
    /// Whether each listener has its own security settings (`ListenerConfig::security`);
    /// otherwise `allow_anonymous`, `password_file`, `acl_file` and `dynsec` above apply to
    /// all.
    pub per_listener_settings: bool,
    /// Whether a client may connect with an empty client id (one is then assigned).
    pub allow_zero_length_clientid: bool,
    /// Deprecated Mosquitto option: when set, client ids must start with this prefix.
    pub clientid_prefixes: Option<String>,
    /// Whether client connects and disconnects are logged.
    pub connection_messages: bool,
    /// Log level from `log_type`; `None` leaves it to the command line/environment.
    pub log_level: Option<LevelFilter>,
    /// Where log lines go and how they start (`log_dest`, `log_facility`, `log_timestamp`,
    /// `log_timestamp_format`), for the binary's logger.
    pub log: LogConfig,
    /// The user the `pipit` binary switches to when started as root (`user`): `mosquitto`
    /// unless set (then `nobody` if there is no `mosquitto`); `root` stays root. The library
    /// never switches.
    pub user: String,
    /// Whether sessions and retained messages are saved to disk.
    pub persistence: bool,
    /// Directory of the persistence file; `None` is the working directory.
    pub persistence_location: Option<PathBuf>,
    /// Name of the persistence file inside `persistence_location`.
    pub persistence_file: PathBuf,
    /// How often a snapshot is written even if the log is small (see `persist::snapshot`):
    /// seconds, or changes with `autosave_on_changes`; zero for only by log size.
    pub autosave_interval: Duration,
    /// Whether `autosave_interval` counts changes instead of seconds.
    pub autosave_on_changes: bool,
    /// When appended records reach the disk (`persistence_sync`).
    pub persistence_sync: SyncPolicy,
    /// Below this many free bytes on the store's file system, QoS 1/2 PUBLISHes are refused.
    pub persistence_min_free_space: u64,
    /// The store directory given on the command line, overriding the configuration's.
    pub persistence_dir: Option<PathBuf>,
    /// Where the `pipit` binary writes its process id at start (removed at a clean exit).
    pub pid_file: Option<PathBuf>,
    /// Largest HTTP request head a WebSockets listener reads, in bytes; past it the request
    /// is answered 431 and the connection closed. 0 is the default, 4096.
    pub websockets_headers_size: u16,
    /// Which WebSocket-layer events are logged (at info level): a mask of libwebsockets'
    /// log level bits, as Mosquitto's `websockets_log_level` (see `net::ws::log_bits`).
    pub websockets_log_level: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bridges: Vec::new(),
            listeners: vec![ListenerConfig::new(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                DEFAULT_PORT,
            ))],
            max_connections: None,
            allow_anonymous: true,
            password_file: None,
            acl_file: None,
            dynsec: None,
            max_inflight_messages: 100,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            max_queued_bytes_total: 0,
            max_sessions: 100_000,
            memory_limit: None,
            queue_qos0_messages: false,
            message_size_limit: 0,
            max_packet_size: 1024 * 1024,
            max_keepalive: 65535,
            persistent_client_expiration: None,
            retain_available: true,
            sys_interval: 10,
            metrics_listener: None,
            connect_timeout: Duration::from_secs(10),
            max_topic_length: 65535,
            max_topic_levels: 201,
            max_output_buffer: 1024 * 1024,
            slow_subscriber_timeout: Duration::from_secs(5),
            max_subscriptions_per_client: 10_000,
            max_retained_messages: 100_000,
            max_outbound_alias_bytes: crate::core::alias::DEFAULT_MAX_OUTBOUND_ALIAS_BYTES,
            per_listener_settings: false,
            allow_zero_length_clientid: true,
            clientid_prefixes: None,
            connection_messages: true,
            log_level: None,
            log: LogConfig::default(),
            user: String::from("mosquitto"),
            persistence: false,
            persistence_location: None,
            persistence_file: PathBuf::from("mosquitto.db"),
            autosave_interval: Duration::from_secs(1800),
            autosave_on_changes: false,
            persistence_sync: SyncPolicy::Fsync,
            persistence_min_free_space: 64 << 20,
            persistence_dir: None,
            pid_file: None,
            websockets_headers_size: 0,
            websockets_log_level: 0,
        }
    }
}

impl Config {
    /// The persistent store's directory, if persistence is on: the command line's, or
    /// `persistence_file` with `.pipit` added, in `persistence_location` (pipit's store is a
    /// directory of its own format next to where Mosquitto keeps its file).
    pub fn store_dir(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.persistence_dir {
            return Some(dir.clone());
        }
        if !self.persistence {
            return None;
        }
        let mut name = self.persistence_file.clone().into_os_string();
        name.push(".pipit");
        let location = self.persistence_location.clone().unwrap_or_default();
        Some(location.join(name))
    }

    /// Loads a config file, logging each warning with `log::warn!`.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let (config, warnings) = Config::load(path)?;
        for warning in &warnings {
            log::warn!("{warning}");
        }
        Ok(config)
    }

    /// Loads a config file and returns the warnings for the caller to report.
    pub fn load(path: &Path) -> Result<(Config, Vec<Warning>), ConfigError> {
        Config::parse(&read_file(path)?, path)
    }

    /// Parses config text read from `origin` (named in errors; `include_dir` reads the disk).
    pub fn parse(text: &str, origin: &Path) -> Result<(Config, Vec<Warning>), ConfigError> {
        parse::parse(text, origin)
    }

    /// The security settings of connections accepted on listener `listener_index`: its own
    /// with `per_listener_settings`, else (or for an unknown index) the global ones.
    pub fn security_for(&self, listener_index: usize) -> SecurityConfig {
        let own = self
            .listeners
            .get(listener_index)
            .and_then(|l| l.security.as_ref());
        own.cloned().unwrap_or_else(|| SecurityConfig {
            allow_anonymous: self.allow_anonymous,
            password_file: self.password_file.clone(),
            acl_file: self.acl_file.clone(),
            dynsec: self.dynsec.clone(),
        })
    }
}

/// A configuration (or password/ACL file) problem that stops start-up: `FILE:LINE: message`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    /// File the problem is in.
    pub file: PathBuf,
    /// 1-based line number; `None` when the whole file is at fault (e.g. unreadable).
    pub line: Option<usize>,
    /// What is wrong, naming the option and value.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A recognised option that pipit ignores or adjusts: `FILE:LINE: message`.
#[derive(Clone, Debug, PartialEq)]
pub struct Warning {
    /// File the option is in.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What is ignored and why.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Reads a whole text file; the error names the file.
pub(crate) fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        message: format!("cannot read: {e}"),
    })
}
