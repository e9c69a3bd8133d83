//! Broker configuration: the `Config` value every other module reads, with safe defaults.
//!
//! Defaults match Mosquitto 2 started without a config file: one listener on loopback port
//! 1883, anonymous clients allowed (loopback only), nothing persisted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// One listening socket and the options that apply to connections accepted on it.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerConfig {
    /// Address and port to bind; port 0 picks an ephemeral port (tests).
    pub addr: SocketAddr,
}

/// Everything the broker needs to know at start-up. Every bound says what happens at it.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Sockets to listen on.
    pub listeners: Vec<ListenerConfig>,
    /// Most simultaneous client connections; a connection over it is closed at accept.
    /// `None` is unlimited (Mosquitto's `max_connections -1`).
    pub max_connections: Option<usize>,
    /// Whether clients without a username may connect.
    pub allow_anonymous: bool,
    /// Mosquitto-format password file, if any.
    pub password_file: Option<PathBuf>,
    /// Mosquitto-format ACL file, if any.
    pub acl_file: Option<PathBuf>,
    /// Most unacknowledged outbound QoS 1/2 messages per session; more wait in the queue.
    pub max_inflight_messages: u16,
    /// Most messages queued per session beyond the inflight window; further QoS 1/2 messages
    /// for that session are dropped (counted). 0 is unlimited.
    pub max_queued_messages: usize,
    /// Most payload bytes queued per session beyond the inflight window; 0 is unlimited.
    pub max_queued_bytes: usize,
    /// Whether QoS 0 messages are queued for offline persistent sessions (Mosquitto: no).
    pub queue_qos0_messages: bool,
    /// Largest PUBLISH payload accepted; a larger one is dropped. 0 is no limit beyond
    /// `max_packet_size`.
    pub message_size_limit: u32,
    /// Largest packet accepted, in bytes including the fixed header; a larger remaining length
    /// closes the connection before its body is read.
    pub max_packet_size: u32,
    /// Largest keepalive a client may ask for; a larger (or zero, in v5) request is told this.
    pub max_keepalive: u16,
    /// How long a disconnected persistent v3 session is kept; `None` keeps it forever.
    pub persistent_client_expiration: Option<Duration>,
    /// Whether retained messages are stored.
    pub retain_available: bool,
    /// Seconds between `$SYS` updates; 0 disables them.
    pub sys_interval: u32,
    /// How long a new connection may take to send CONNECT before it is closed.
    pub connect_timeout: Duration,
    /// Longest topic name or filter accepted, in bytes.
    pub max_topic_length: usize,
    /// Most levels in a topic name or filter.
    pub max_topic_levels: usize,
    /// Most client bytes waiting in one connection's output buffer; at the bound QoS 0
    /// messages to that client are dropped (counted) and QoS 1/2 wait in the session queue.
    pub max_output_buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: vec![ListenerConfig {
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1883),
            }],
            max_connections: None,
            allow_anonymous: true,
            password_file: None,
            acl_file: None,
            max_inflight_messages: 20,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            queue_qos0_messages: false,
            message_size_limit: 0,
            max_packet_size: 1024 * 1024,
            max_keepalive: 65535,
            persistent_client_expiration: None,
            retain_available: true,
            sys_interval: 10,
            connect_timeout: Duration::from_secs(10),
            max_topic_length: 65535,
            max_topic_levels: 128,
            max_output_buffer: 1024 * 1024,
        }
    }
}
