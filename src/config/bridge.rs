//! `connection NAME` blocks: Mosquitto's bridge options, with its names and defaults.
//!
//! A `connection` line opens a block; the bridge options after it (up to the next
//! `connection` or `listener`) belong to it. Other options stay global wherever they are.
//! A bridge option outside a block is an error, as in Mosquitto ("Invalid bridge
//! configuration"). Options Mosquitto has that pipit does not build yet are a named warning
//! each. The TLS options are read in `bridge_tls`; those pipit lacks (TLS-PSK) refuse to
//! start, so a bridge meant to be encrypted never connects in plaintext.
//!
//! `topic PATTERN [in|out|both] [QOS] [LOCAL_PREFIX REMOTE_PREFIX]` (read in `bridge_topic`) follows Mosquitto's
//! `bridge__add_topic`: `""` stands for an empty pattern or prefix; a prefix may hold no
//! wildcard; prefix + pattern must be a valid filter; an empty pattern needs both prefixes
//! (the table in the README). A word starting with `#` after the direction ends the line.

use super::bridge_tls::{self, BridgeTls};
use super::line::{Line, Origin};
use super::{ConfigError, Warning};
use crate::core::topic::{self, TopicLimits};
use crate::wire::{QoS, Version};
use std::net::IpAddr;
use std::time::Duration;

/// Bounds for checking bridge patterns at load: MQTT's own, not the broker's options.
pub(super) const PATTERN_LIMITS: TopicLimits = TopicLimits {
    max_length: 65_535,
    max_levels: 65_535,
};

/// Which way a bridge topic carries messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Local messages go to the remote broker (Mosquitto's default).
    Out,
    /// Remote messages are published locally.
    In,
    /// Both ways.
    Both,
}

impl Direction {
    /// Whether local messages on this topic are sent to the remote.
    pub fn outbound(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }

    /// Whether the bridge subscribes to this topic on the remote.
    pub fn inbound(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }
}

/// One `topic` line of a bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeTopic {
    /// Which way it carries messages.
    pub direction: Direction,
    /// The QoS of the subscriptions on both sides.
    pub qos: QoS,
    /// The local prefix, if any (no wildcards).
    pub local_prefix: Option<String>,
    /// The remote prefix, if any (no wildcards).
    pub remote_prefix: Option<String>,
    /// The filter on the local broker: local prefix + pattern.
    pub local_filter: String,
    /// The filter on the remote broker: remote prefix + pattern.
    pub remote_filter: String,
}

/// How a bridge waits between connection attempts (`restart_timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// `restart_timeout N`: always N seconds.
    Constant(Duration),
    /// `restart_timeout BASE CAP` (and the default, 5 and 30 seconds): Mosquitto's
    /// "decorrelated jitter", a random wait between BASE and three times the last, at most CAP.
    Backoff {
        /// The shortest wait.
        base: Duration,
        /// The longest wait.
        cap: Duration,
    },
}

/// When a bridge connects (`start_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartType {
    /// At start-up, and again whenever the connection drops.
    Automatic,
    /// `lazy`: connects when `threshold` messages are queued for the remote, and
    /// disconnects after `idle_timeout` with nothing to send.
    Lazy,
    /// `once`: connects at start-up and never again after it drops.
    Once,
}

/// What a bridge's full queue does with one more message (`bridge_queue_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueuePolicy {
    /// `drop_newest` (the default): the new message is dropped, as for any client.
    DropNewest,
    /// `drop_oldest`: the oldest queued message makes room.
    DropOldest,
    /// `latest`: the oldest queued message on the same topic makes room (else the oldest),
    /// so the queue keeps the latest value of each topic.
    Latest,
}

/// One `connection` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeConfig {
    /// The name after `connection`: the default client id's suffix and the log's name.
    pub name: String,
    /// `address`/`addresses`: remote brokers as (host, port), tried in order.
    pub addresses: Vec<(String, u16)>,
    /// `round_robin`: after a failure, go on to the next address (true) or start again from
    /// the first (false, the default: the first is the primary).
    pub round_robin: bool,
    /// `topic` lines, in file order (the first matching one remaps a topic).
    pub topics: Vec<BridgeTopic>,
    /// `remote_clientid`/`clientid`: the client id sent to the remote; default
    /// `HOSTNAME.NAME`.
    pub remote_clientid: String,
    /// `local_clientid`: the id of the bridge's session on this broker; default
    /// `local.REMOTE_CLIENTID`.
    pub local_clientid: String,
    /// `remote_username`/`username`.
    pub remote_username: Option<String>,
    /// `remote_password`/`password`.
    pub remote_password: Option<String>,
    /// `cleansession`: the remote session starts clean (default false).
    pub cleansession: bool,
    /// `local_cleansession`: the local session (the spool) is not kept across restarts
    /// (default: `cleansession`).
    pub local_cleansession: Option<bool>,
    /// `keepalive_interval` in seconds (default 60, at least 5).
    pub keepalive: u16,
    /// `bridge_protocol_version` (default MQTT 3.1.1).
    pub protocol_version: Version,
    /// `try_private`: mark CONNECT as a bridge's (protocol level | 0x80; default true).
    pub try_private: bool,
    /// `notifications` (default true).
    pub notifications: bool,
    /// `notifications_local_only` (default false).
    pub notifications_local_only: bool,
    /// `notification_topic`; default `$SYS/broker/connection/REMOTE_CLIENTID/state`.
    pub notification_topic: Option<String>,
    /// `restart_timeout`.
    pub restart: Restart,
    /// `start_type`.
    pub start_type: StartType,
    /// `threshold`: how many queued messages start a lazy bridge (default 10, at least 1).
    pub threshold: usize,
    /// `idle_timeout`: how long a lazy bridge stays up with nothing to send (default 60
    /// seconds, at least 1).
    pub idle_timeout: Duration,
    /// `bridge_bind_address`: the local address the bridge's socket binds to before it
    /// connects; `None` lets the system choose.
    pub bind_address: Option<IpAddr>,
    /// `bridge_attempt_unsubscribe`: unsubscribe `out` topics on the remote (default true).
    pub attempt_unsubscribe: bool,
    /// `bridge_outgoing_retain`: keep the RETAIN flag on what goes out (default true).
    pub outgoing_retain: bool,
    /// `bridge_max_packet_size`: the largest packet taken from the remote (and, as in
    /// Mosquitto, sent to it); 0 is no limit.
    pub max_packet_size: u32,
    /// `bridge_receive_maximum` (MQTT 5): the Receive Maximum sent in CONNECT, most
    /// unacknowledged QoS 2 PUBLISHes taken from the remote; 0 is not set (the broker's
    /// `max_inflight_messages` bounds them).
    pub receive_maximum: u16,
    /// `bridge_session_expiry_interval` (MQTT 5): the Session Expiry Interval sent in
    /// CONNECT; `None`: "never" with `cleansession false`, 0 with `cleansession true`.
    pub session_expiry_interval: Option<u32>,
    /// `bridge_max_queued_messages` (pipit's): most messages queued for the remote; 0 is
    /// the broker's `max_queued_messages`.
    pub max_queued_messages: usize,
    /// `bridge_max_queued_bytes` (pipit's): most payload bytes queued; 0 is the broker's
    /// `max_queued_bytes`.
    pub max_queued_bytes: usize,
    /// `bridge_queue_policy` (pipit's): what a full queue does.
    pub queue_policy: QueuePolicy,
    /// TLS to the remote (`bridge_cafile` or `bridge_capath` set); `None` is plain TCP.
    pub tls: Option<BridgeTls>,
}

impl BridgeConfig {
    /// A block named `name` with Mosquitto's defaults.
    fn new(name: &str) -> BridgeConfig {
        BridgeConfig {
            name: name.to_string(),
            addresses: Vec::new(),
            round_robin: false,
            topics: Vec::new(),
            remote_clientid: String::new(),
            local_clientid: String::new(),
            remote_username: None,
            remote_password: None,
            cleansession: false,
            local_cleansession: None,
            keepalive: 60,
            protocol_version: Version::V311,
            try_private: true,
            notifications: true,
            notifications_local_only: false,
            notification_topic: None,
            restart: Restart::Backoff {
                base: Duration::from_secs(5),
                cap: Duration::from_secs(30),
            },
            start_type: StartType::Automatic,
            threshold: 10,
            idle_timeout: Duration::from_secs(60),
            bind_address: None,
            attempt_unsubscribe: true,
            outgoing_retain: true,
            max_packet_size: 0,
            receive_maximum: 0,
            session_expiry_interval: None,
            max_queued_messages: 0,
            max_queued_bytes: 0,
            queue_policy: QueuePolicy::DropNewest,
            tls: None,
        }
    }

    /// Whether the local session (the spool) is clean: `local_cleansession`, by default
    /// `cleansession`. A clean one is never stored, so it does not survive a restart.
    pub fn local_clean(&self) -> bool {
        self.local_cleansession.unwrap_or(self.cleansession)
    }

    /// The topic the connection state (`1`/`0`) is published on.
    pub fn state_topic(&self) -> String {
        match &self.notification_topic {
            Some(topic) => topic.clone(),
            None => format!("$SYS/broker/connection/{}/state", self.remote_clientid),
        }
    }
}

/// Whether `name` is an option of a `connection` block.
pub(crate) fn is_bridge_option(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "addresses"
            | "round_robin"
            | "topic"
            | "remote_clientid"
            | "clientid"
            | "local_clientid"
            | "local_username"
            | "local_password"
            | "remote_username"
            | "username"
            | "remote_password"
            | "password"
            | "cleansession"
            | "local_cleansession"
            | "keepalive_interval"
            | "bridge_protocol_version"
            | "try_private"
            | "notifications"
            | "notifications_local_only"
            | "notification_topic"
            | "restart_timeout"
            | "start_type"
            | "threshold"
            | "idle_timeout"
            | "bridge_bind_address"
            | "bridge_attempt_unsubscribe"
            | "bridge_outgoing_retain"
            | "bridge_max_packet_size"
            | "bridge_receive_maximum"
            | "bridge_session_expiry_interval"
            | "bridge_max_queued_messages"
            | "bridge_max_queued_bytes"
            | "bridge_queue_policy"
    ) || bridge_tls::BUILT.split_whitespace().any(|o| o == name)
        || bridge_tls::REFUSED.split_whitespace().any(|o| o == name)
}

/// Bridges being read, in file order.
#[derive(Default)]
pub(super) struct Drafts {
    bridges: Vec<BridgeConfig>,
    /// Where each block starts, for errors found when the file is finished.
    origins: Vec<Origin>,
    /// Whether the current line is inside a `connection` block.
    open: bool,
}

impl Drafts {
    /// `connection NAME`: opens a block.
    pub(super) fn connection(&mut self, l: &Line) -> Result<(), ConfigError> {
        let name = l.word()?;
        if self.bridges.iter().any(|b| b.name == name) {
            return Err(l.error(format!("connection {name}: a bridge of that name exists")));
        }
        self.bridges.push(BridgeConfig::new(name));
        self.origins.push(l.origin());
        self.open = true;
        Ok(())
    }

    /// Ends the current block (a `listener` line).
    pub(super) fn close(&mut self) {
        self.open = false;
    }

    /// A bridge option `l`, applied to the open block.
    pub(super) fn option(
        &mut self,
        l: &Line,
        warnings: &mut Vec<Warning>,
    ) -> Result<(), ConfigError> {
        let Some(b) = self.bridges.last_mut().filter(|_| self.open) else {
            return Err(l.error(format!(
                "{} is a bridge option: it belongs after a `connection` line",
                l.name
            )));
        };
        match l.name {
            "address" | "addresses" => {
                if !b.addresses.is_empty() {
                    return Err(l.error(format!("{}: bridge {} has an address", l.name, b.name)));
                }
                for word in l.text()?.split_whitespace() {
                    b.addresses.push(host_port(l, word)?);
                }
            }
            "round_robin" => b.round_robin = l.flag()?,
            "topic" => b.topics.push(super::bridge_topic::topic_line(l)?),
            "remote_clientid" | "clientid" => b.remote_clientid = l.word()?.to_string(),
            "local_clientid" => b.local_clientid = l.word()?.to_string(),
            "remote_username" | "username" => b.remote_username = Some(l.word()?.to_string()),
            "remote_password" | "password" => b.remote_password = Some(l.word()?.to_string()),
            "cleansession" => b.cleansession = l.flag()?,
            "local_cleansession" => b.local_cleansession = Some(l.flag()?),
            "keepalive_interval" => {
                // As Mosquitto: below 5 seconds is raised to 5.
                b.keepalive = l.int::<u16>(0, i64::from(u16::MAX))?.max(5);
            }
            "bridge_protocol_version" => {
                b.protocol_version = match l.word()? {
                    "mqttv31" => Version::V31,
                    "mqttv311" => Version::V311,
                    "mqttv50" => Version::V5,
                    other => {
                        return Err(l.error(format!(
                            "bridge_protocol_version: \"{other}\" is not mqttv31, mqttv311 or mqttv50"
                        )));
                    }
                }
            }
            "try_private" => b.try_private = l.flag()?,
            "notifications" => b.notifications = l.flag()?,
            "notifications_local_only" => b.notifications_local_only = l.flag()?,
            "notification_topic" => {
                let topic = l.word()?;
                topic::validate_name(topic, PATTERN_LIMITS).map_err(|_| {
                    l.error(format!(
                        "notification_topic: \"{topic}\" is not a topic name"
                    ))
                })?;
                b.notification_topic = Some(topic.to_string());
            }
            "restart_timeout" => b.restart = restart(l)?,
            "start_type" => {
                b.start_type = match l.word()? {
                    "automatic" => StartType::Automatic,
                    "once" => StartType::Once,
                    "lazy" => StartType::Lazy,
                    other => {
                        return Err(l.error(format!(
                            "start_type: \"{other}\" is not automatic, lazy or once"
                        )));
                    }
                }
            }
            // As Mosquitto: below 1 is raised to 1.
            "threshold" => {
                b.threshold = l.int::<i64>(i64::MIN, i64::from(u32::MAX))?.max(1) as usize
            }
            "idle_timeout" => {
                let secs = l.int::<i64>(i64::MIN, i64::from(u32::MAX))?.max(1);
                b.idle_timeout = Duration::from_secs(secs as u64);
            }
            "bridge_bind_address" => {
                let word = l.word()?;
                b.bind_address = Some(word.parse().map_err(|_| {
                    l.error(format!(
                        "bridge_bind_address: \"{word}\" is not an IP address"
                    ))
                })?);
            }
            "bridge_attempt_unsubscribe" => b.attempt_unsubscribe = l.flag()?,
            "bridge_outgoing_retain" => b.outgoing_retain = l.flag()?,
            "bridge_max_packet_size" => {
                // As Mosquitto: a negative size is no limit.
                b.max_packet_size = l.int::<i64>(i64::MIN, i64::from(u32::MAX))?.max(0) as u32;
            }
            "bridge_receive_maximum" => b.receive_maximum = l.int(1, i64::from(u16::MAX))?,
            "bridge_session_expiry_interval" => {
                b.session_expiry_interval = Some(l.int(0, i64::from(u32::MAX))?);
            }
            "bridge_max_queued_messages" => {
                b.max_queued_messages = l.int(0, i64::from(u32::MAX))?;
            }
            "bridge_max_queued_bytes" => b.max_queued_bytes = l.int(0, i64::MAX)?,
            "bridge_queue_policy" => {
                b.queue_policy = match l.word()? {
                    "drop_newest" => QueuePolicy::DropNewest,
                    "drop_oldest" => QueuePolicy::DropOldest,
                    "latest" => QueuePolicy::Latest,
                    other => {
                        return Err(l.error(format!(
                            "bridge_queue_policy: \"{other}\" is not drop_newest, drop_oldest or latest"
                        )));
                    }
                }
            }
            // In Mosquitto these name the bridge's local identity, whose ACLs then bound what
            // it publishes locally; pipit's bridges bypass local ACLs, so ignoring them would
            // grant what the file restricts.
            "local_username" | "local_password" => {
                return Err(l.error(format!(
                    "{}: a bridge's local identity is not supported, and without it the \
                     bridge would publish locally past the ACLs it names; pipit refuses to \
                     start rather than ignore it: remove the line",
                    l.name
                )));
            }
            _ if bridge_tls::option(l, &mut b.tls, &b.name, warnings)? => {}
            name => {
                warnings.push(l.warning(format!(
                    "{name} is not built yet for bridges and is ignored"
                )));
            }
        }
        Ok(())
    }

    /// The finished bridges: defaults filled in, each checked as Mosquitto checks them.
    pub(super) fn finish(self) -> Result<Vec<BridgeConfig>, ConfigError> {
        let host = hostname();
        let mut bridges = self.bridges;
        for (b, origin) in bridges.iter_mut().zip(&self.origins) {
            if b.addresses.is_empty() {
                return Err(origin.error(format!("bridge {} has no address", b.name)));
            }
            if b.topics.is_empty() {
                return Err(origin.error(format!("bridge {} has no topic", b.name)));
            }
            if b.remote_clientid.is_empty() {
                b.remote_clientid = format!("{host}.{}", b.name);
            }
            if b.local_clientid.is_empty() {
                b.local_clientid = format!("local.{}", b.remote_clientid);
            }
            if let Some(tls) = &b.tls {
                bridge_tls::check(tls, &b.name, origin)?;
            }
        }
        for (i, (b, origin)) in bridges.iter().zip(&self.origins).enumerate() {
            if bridges[..i]
                .iter()
                .any(|o| o.local_clientid == b.local_clientid)
            {
                return Err(origin.error(format!(
                    "bridge {}: local_clientid {} is another bridge's too",
                    b.name, b.local_clientid
                )));
            }
        }
        Ok(bridges)
    }
}

/// The machine's host name, for default client ids (Mosquitto's `gethostname`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// `host[:port]`, port 1883 when absent; an IPv6 literal goes in brackets to carry a port.
fn host_port(l: &Line, word: &str) -> Result<(String, u16), ConfigError> {
    let (host, port) = match word.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
            (host, l.parse_int(port, 1, 65535)?)
        }
        _ => (word, 1883),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(l.error(format!("{}: \"{word}\" has no host", l.name)));
    }
    Ok((host.to_string(), port))
}

/// `restart_timeout BASE [CAP]`: below 1 second is raised to 1, as Mosquitto does.
fn restart(l: &Line) -> Result<Restart, ConfigError> {
    let mut words = l.text()?.split_whitespace();
    let base: u64 = l
        .parse_int::<i64>(
            words.next().unwrap_or_default(),
            i64::MIN,
            i64::from(u32::MAX),
        )?
        .max(1) as u64;
    match words.next().filter(|w| !w.starts_with('#')) {
        None => Ok(Restart::Constant(Duration::from_secs(base))),
        Some(cap) => {
            let cap: u64 = l.parse_int(cap, 0, i64::from(u32::MAX))?;
            if cap < base {
                return Err(l.error("restart_timeout: the backoff cap is lower than the base"));
            }
            Ok(Restart::Backoff {
                base: Duration::from_secs(base),
                cap: Duration::from_secs(cap),
            })
        }
    }
}

// A build without `bridge` refuses `connection` blocks (`config::features`).
#[cfg(all(test, feature = "bridge"))]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
        Config::parse(text, Path::new("pipit.conf"))
    }

    #[test]
    fn a_block_gets_mosquittos_defaults() {
        let (c, warnings) = parse("connection up\naddress 10.0.0.2\ntopic a/# out 1\n").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let b = &c.bridges[0];
        assert_eq!(b.addresses, [("10.0.0.2".to_string(), 1883)]);
        assert_eq!(b.remote_clientid, format!("{}.up", hostname()));
        assert_eq!(b.local_clientid, format!("local.{}.up", hostname()));
        assert_eq!(b.keepalive, 60);
        assert_eq!(b.protocol_version, Version::V311);
        assert!(b.try_private && b.notifications && !b.notifications_local_only);
        assert!(!b.cleansession && !b.round_robin);
        assert!(b.attempt_unsubscribe && b.outgoing_retain);
        assert_eq!(
            b.restart,
            Restart::Backoff {
                base: Duration::from_secs(5),
                cap: Duration::from_secs(30)
            }
        );
        assert_eq!(b.topics[0].qos, QoS::AtLeastOnce);
        assert_eq!(
            b.state_topic(),
            format!("$SYS/broker/connection/{}/state", b.remote_clientid)
        );
    }

    #[test]
    fn every_built_option_is_read() {
        let text = "\
connection cloud
addresses [::1]:1884 broker.example.com:8883 10.0.0.9
round_robin true
topic \"\" both 2 here/t there/u
topic cmd/# in 1 \"\" site/ # a comment
clientid gw-1
local_clientid gw-local
username u
password p
cleansession true
keepalive_interval 2
bridge_protocol_version mqttv50
try_private false
notifications_local_only true
notification_topic gw/state
restart_timeout 3
start_type once
bridge_attempt_unsubscribe false
bridge_outgoing_retain false
bridge_max_packet_size -5
bridge_receive_maximum 20
bridge_session_expiry_interval 3600
local_cleansession true
bridge_max_queued_messages 10
bridge_max_queued_bytes 2048
bridge_queue_policy latest
";
        let (c, warnings) = parse(text).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let b = &c.bridges[0];
        let hosts: Vec<(&str, u16)> = b.addresses.iter().map(|(h, p)| (&**h, *p)).collect();
        assert_eq!(
            hosts,
            [
                ("::1", 1884),
                ("broker.example.com", 8883),
                ("10.0.0.9", 1883)
            ]
        );
        assert!(b.round_robin && b.cleansession && !b.try_private);
        assert_eq!(b.topics[0].local_filter, "here/t");
        assert_eq!(b.topics[0].remote_filter, "there/u");
        assert_eq!(b.topics[1].remote_filter, "site/cmd/#");
        assert_eq!(b.topics[1].local_prefix, None);
        assert_eq!(
            (&*b.remote_clientid, &*b.local_clientid),
            ("gw-1", "gw-local")
        );
        assert_eq!(b.remote_username.as_deref(), Some("u"));
        assert_eq!(b.remote_password.as_deref(), Some("p"));
        assert_eq!(b.keepalive, 5, "raised to 5 as Mosquitto");
        assert_eq!(b.protocol_version, Version::V5);
        assert_eq!(b.state_topic(), "gw/state");
        assert_eq!(b.restart, Restart::Constant(Duration::from_secs(3)));
        assert_eq!(b.start_type, StartType::Once);
        assert!(!b.attempt_unsubscribe && !b.outgoing_retain);
        assert_eq!(b.max_packet_size, 0);
        assert_eq!(b.receive_maximum, 20);
        assert_eq!(b.session_expiry_interval, Some(3600));
        assert!(b.local_clean());
        assert_eq!((b.max_queued_messages, b.max_queued_bytes), (10, 2048));
        assert_eq!(b.queue_policy, QueuePolicy::Latest);
    }

    #[test]
    fn errors_name_file_and_line() {
        let head = "connection b\naddress 10.0.0.2\n";
        let cases = [
            (
                "topic a/# sideways",
                "pipit.conf:3: topic: invalid bridge topic direction",
            ),
            (
                "topic a/# in 3",
                "pipit.conf:3: topic: invalid bridge QoS level",
            ),
            (
                "topic \"\" in 0 l/",
                "pipit.conf:3: topic: an empty pattern needs both",
            ),
            (
                "topic # in 0 l/+/ r/",
                "pipit.conf:3: topic: invalid local prefix",
            ),
            (
                "restart_timeout 10 5",
                "pipit.conf:3: restart_timeout: the backoff cap",
            ),
            (
                "bridge_protocol_version mqttv6",
                "pipit.conf:3: bridge_protocol_version",
            ),
            ("bridge_psk 0123", "pipit.conf:3: bridge_psk: not supported"),
            (
                "bridge_identity id",
                "pipit.conf:3: bridge_identity: not supported",
            ),
            (
                "bridge_queue_policy newest",
                "pipit.conf:3: bridge_queue_policy: \"newest\"",
            ),
            (
                "bridge_tls_version tlsv1.0",
                "pipit.conf:3: tls_version: unknown version",
            ),
            (
                "address 10.0.0.3",
                "pipit.conf:3: address: bridge b has an address",
            ),
            (
                "connection b",
                "pipit.conf:3: connection b: a bridge of that name",
            ),
        ];
        for (line, expected) in cases {
            let e = parse(&format!("{head}{line}\ntopic t\n"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(expected), "{line}: {e}");
        }
        let e = parse("connection b\ntopic t\n").unwrap_err().to_string();
        assert_eq!(e, "pipit.conf:1: bridge b has no address");
        let e = parse("connection b\naddress h\n").unwrap_err().to_string();
        assert_eq!(e, "pipit.conf:1: bridge b has no topic");
        let two = "connection a\naddress h\ntopic t\nlocal_clientid x\n\
                   connection b\naddress h\ntopic t\nlocal_clientid x\n";
        let e = parse(two).unwrap_err().to_string();
        assert!(
            e.starts_with("pipit.conf:5: bridge b: local_clientid x"),
            "{e}"
        );
    }

    #[test]
    fn lazy_start_and_bind_address_are_read() {
        let text = "connection b\naddress h\ntopic t\nthreshold 3\nidle_timeout 0\n\
                    start_type lazy\nbridge_bind_address 127.0.0.2\nlistener 1883\n";
        let (c, warnings) = parse(text).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let b = &c.bridges[0];
        assert_eq!(b.start_type, StartType::Lazy);
        assert_eq!(b.threshold, 3);
        assert_eq!(
            b.idle_timeout,
            Duration::from_secs(1),
            "raised to 1 as Mosquitto"
        );
        assert_eq!(b.bind_address, Some([127, 0, 0, 2].into()));
        let (c, _) = parse("connection b\naddress h\ntopic t\nthreshold -4\n").unwrap();
        assert_eq!(c.bridges[0].threshold, 1, "raised to 1 as Mosquitto");
        let e = parse("connection b\naddress h\ntopic t\nbridge_bind_address eth0\n");
        let e = e.unwrap_err().to_string();
        assert!(
            e.starts_with("pipit.conf:4: bridge_bind_address: \"eth0\" is not an IP"),
            "{e}"
        );
        let refused = parse("connection b\naddress h\ntopic t\nlocal_username gw\n");
        let refused = refused.unwrap_err().to_string();
        assert!(
            refused.starts_with("pipit.conf:4: local_username: "),
            "{refused}"
        );
        let e = parse(&format!("{text}topic u\n")).unwrap_err().to_string();
        assert!(
            e.contains("belongs after a `connection` line"),
            "a listener ends it: {e}"
        );
    }
}
