//! Bridges: the broker as an MQTT client of another broker, on the same event loop.
//!
//! Each `connection` block is a [`Bridge`]. Its local side is an ordinary
//! [`Session`](crate::core::session::Session) (client id `local_clientid`) made at start-up,
//! or taken up from the store (`spool`: with persistence on it survives a restart, found
//! by the `connection` name), and kept for the broker's life: the `out`
//! and `both` topics are its subscriptions (no-local and retain-as-published, as Mosquitto
//! makes them, so what the bridge brings in never goes back out), routing queues to it like
//! to any client, and its queue, inflight window and packet ids are the session machinery's.
//! While the link is down the session is offline and its queue fills (bounded by
//! `max_queued_messages`/`max_queued_bytes` like any client's); when it is up, the session is
//! attached to the bridge's `Conn` (`net/conn.rs`), whose output pass sends
//! PUBLISHes to the remote and whose acks the normal handlers take. Only the topic differs:
//! `route` remaps it on the way out (`topic::outbound`), `handle::bridge` on the way in.
//! An MQTT 5 remote's CONNACK sets the link's limits (`limits`), as a client's CONNECT does.
//!
//! The link's life: `Idle` until its restart time, `Resolving` while a helper thread looks
//! a host name up (the loop never blocks on DNS; IP literals need none), `Connecting` from
//! the non-blocking connect until CONNACK, then `Connected`. Any close goes back to `Idle`
//! with a jittered backoff and the next address in the list. The CONNECT carries the
//! `try_private` bit (protocol level | 0x80) for MQTT 3 bridges; a remote that refuses it,
//! with a CONNACK or by closing before one, is asked again without it.

mod lazy;
pub mod limits;
pub mod reload;
mod spool;
mod sys;
pub mod topic;

pub use lazy::{due, idle, unmappable};
pub use spool::make_room;
pub use sys::{BridgeStats, publish as publish_sys};

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use log::{info, warn};

use crate::config::{BridgeConfig, Restart, StartType};
use crate::core::message::Message;
use crate::core::route::{self, Sender};
use crate::core::session::NEVER_EXPIRES;
use crate::core::state::State;
use crate::ids::{ConnId, SessionId};
use crate::wire::{
    Connect, Disconnect, Properties, Publish, QoS, RetainHandling, SubscriptionOptions, Version,
    Will, encode_subscribe, encode_unsubscribe,
};

/// Where a bridge's link to its remote is.
#[derive(Debug)]
pub enum Link {
    /// Down; the next attempt is at the instant, `None` never (`start_type once`, used).
    Idle(Option<Instant>),
    /// A helper thread is resolving the current address's host name.
    Resolving(Receiver<Vec<SocketAddr>>),
    /// Connecting, or waiting for CONNACK, on this connection.
    Connecting(ConnId),
    /// Up on this connection.
    Connected(ConnId),
}

/// One bridge: its configuration, its local session and its link.
#[derive(Debug)]
pub struct Bridge {
    /// Its `connection` block.
    pub config: BridgeConfig,
    /// Its local session.
    pub session: SessionId,
    /// Where its link is.
    pub link: Link,
    /// The address (index into `config.addresses`) tried last or in use.
    pub address: usize,
    /// Whether the next CONNECT carries the `try_private` bit.
    pub private: bool,
    /// The remote refused a CONNECT that carried the bit, with "unacceptable protocol
    /// version": the next attempt goes without it.
    pub refused_private: bool,
    /// The last wait between attempts (the backoff's state).
    wait: Duration,
    /// When a PINGREQ was last sent on the current link.
    last_ping: Instant,
    /// When the link came up or a message was last handed to it (a lazy bridge's idle clock).
    last_out: Instant,
    /// Its counters, for `$SYS`.
    pub stats: BridgeStats,
    /// When its `$SYS` figures are published next (`None`: at once).
    next_sys: Option<Instant>,
    /// Scratch for remapping a topic on the way out, reused from message to message.
    remap: String,
    /// What the remote's CONNACK allows: the highest QoS and whether RETAIN is available.
    pub remote: limits::Remote,
}

impl Bridge {
    /// Whether the link is up.
    pub fn connected(&self) -> bool {
        matches!(self.link, Link::Connected(_))
    }
}

/// Makes (or takes up from the store) every configured bridge's local session with its
/// subscriptions, publishes `0` on each one's state topic, and schedules the first
/// connection now.
pub fn start(state: &mut State) {
    let restored = spool::restored(state);
    for (i, config) in state.config.bridges.clone().into_iter().enumerate() {
        let stored = restored.get(i).copied().flatten();
        let bridge = make(state, config, i, stored);
        state.bridges.push(bridge);
        notify_local(state, i, false);
    }
}

/// Bridge `i` of `config`: its local session (`stored`, its spool from the store, or a new
/// one; see `spool`) with its subscriptions, its first connection due now.
pub(crate) fn make(
    state: &mut State,
    config: BridgeConfig,
    i: usize,
    stored: Option<SessionId>,
) -> Bridge {
    let session = spool::local_session(state, i, &config, stored);
    let now = state.now;
    Bridge {
        private: config.try_private && config.protocol_version != Version::V5,
        config,
        session,
        link: Link::Idle(Some(now)),
        address: 0,
        refused_private: false,
        wait: Duration::ZERO,
        last_ping: now,
        last_out: now,
        stats: BridgeStats::default(),
        next_sys: None,
        remap: String::new(),
        remote: limits::Remote::default(),
    }
}

/// Publishes the bridge's state (`1` up, `0` down) retained on its state topic locally.
pub fn notify_local(state: &mut State, i: usize, up: bool) {
    let Some(b) = state.bridges.get(i).filter(|b| b.config.notifications) else {
        return;
    };
    let payload: &[u8] = if up { b"1" } else { b"0" };
    let message = Message::shared(b.config.state_topic(), payload, QoS::AtLeastOnce, true);
    let origin = Some(b.session);
    route::publish(state, &message, origin);
}

/// The addresses to try for address `index` of bridge `b`: at once for an IP literal, or
/// `Err` with a channel the helper thread answers on for a host name.
pub fn resolve(b: &Bridge) -> Result<Vec<SocketAddr>, Receiver<Vec<SocketAddr>>> {
    let (host, port) = b.config.addresses[b.address].clone();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    // Name lookup blocks: it runs on a short-lived thread that owns nothing of the broker's
    // state and exits once it answers (an answer nobody reads is dropped).
    let spawned = std::thread::Builder::new()
        .name("pipit-resolve".into())
        .spawn(move || {
            let found = (host.as_str(), port)
                .to_socket_addrs()
                .map(|addrs| {
                    let mut v: Vec<SocketAddr> = addrs.collect();
                    v.sort_by_key(SocketAddr::is_ipv6);
                    v
                })
                .unwrap_or_default();
            let _ = tx.send(found);
        });
    if let Err(e) = spawned {
        warn!(
            "bridge {}: cannot start a resolver thread: {e}",
            b.config.name
        );
    }
    Err(rx)
}

/// The answer of a resolver thread, if it came: `Some(addresses)`, empty if it failed.
pub fn resolved(rx: &Receiver<Vec<SocketAddr>>) -> Option<Vec<SocketAddr>> {
    match rx.try_recv() {
        Ok(found) => Some(found),
        Err(TryRecvError::Empty) => None,
        Err(TryRecvError::Disconnected) => Some(Vec::new()),
    }
}

/// Appends the bridge's CONNECT to `out`.
pub fn encode_connect(b: &Bridge, out: &mut Vec<u8>) {
    let c = &b.config;
    let state_topic = c.state_topic();
    // The remote publishes `0` for us if the link dies without DISCONNECT.
    let will = (c.notifications && !c.notifications_local_only).then(|| Will {
        topic: &state_topic,
        payload: b"0",
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties::default(),
    });
    let connect = Connect {
        version: c.protocol_version,
        bridge: b.private,
        clean_start: c.cleansession,
        keep_alive: c.keepalive,
        properties: Properties {
            // MQTT 5: `bridge_session_expiry_interval`, else a session as lasting as a
            // 3.1.1 `cleansession false` one. 0 is what its absence means.
            session_expiry_interval: (c.protocol_version == Version::V5)
                .then(|| {
                    (c.session_expiry_interval).unwrap_or(if c.cleansession {
                        0
                    } else {
                        NEVER_EXPIRES
                    })
                })
                .filter(|&s| s != 0),
            maximum_packet_size: (c.max_packet_size > 0).then_some(c.max_packet_size),
            receive_maximum: (c.receive_maximum > 0).then_some(c.receive_maximum),
            ..Properties::default()
        },
        client_id: &c.remote_clientid,
        will,
        username: c.remote_username.as_deref(),
        password: c.remote_password.as_deref().map(str::as_bytes),
    };
    connect.encode(out);
}

/// Appends what ends bridge `b`'s link cleanly to `out`: the `0` notification on the remote
/// (DISCONNECT means the remote drops the will that would have carried it), then DISCONNECT.
pub fn encode_goodbye(b: &Bridge, out: &mut Vec<u8>) {
    let c = &b.config;
    if c.notifications && !c.notifications_local_only {
        let state_topic = c.state_topic();
        let notice = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: &state_topic,
            packet_id: 0,
            properties: Properties::default(),
            payload: b"0",
        };
        notice.encode(c.protocol_version, &[], out);
    }
    let disconnect = Disconnect {
        reason_code: crate::wire::reason::SUCCESS,
        properties: Properties::default(),
    };
    disconnect.encode(c.protocol_version, out);
}

/// After CONNACK: the remote subscriptions (`in`, `both`; MQTT 5 with no-local and
/// retain-as-published, as Mosquitto), unsubscribes of `out`-only topics
/// (`bridge_attempt_unsubscribe`), and the remote `1` notification queued to go first.
pub fn on_connected(state: &mut State, i: usize, out_frames: &mut Vec<u8>) {
    let Some(b) = state.bridges.get(i) else {
        return;
    };
    let version = b.config.protocol_version;
    let sid = b.session;
    let topics = b.config.topics.clone();
    let unsubscribe = b.config.attempt_unsubscribe;
    let remote_notice = b.config.notifications && !b.config.notifications_local_only;
    let state_topic = b.config.state_topic();
    for t in &topics {
        let Some(session) = state.sessions.get_mut(sid.0 as usize) else {
            return;
        };
        let packet_id = session.allocate_packet_id();
        if t.direction.inbound() {
            let v5 = version == Version::V5;
            let options = SubscriptionOptions {
                qos: t.qos,
                no_local: v5,
                retain_as_published: v5,
                retain_handling: RetainHandling::SendAtSubscribe,
            };
            let filters = [(t.remote_filter.as_str(), options)];
            encode_subscribe(
                packet_id,
                &Properties::default(),
                &filters,
                version,
                out_frames,
            );
        } else if unsubscribe {
            let filters = [t.remote_filter.as_str()];
            encode_unsubscribe(
                packet_id,
                &Properties::default(),
                &filters,
                version,
                out_frames,
            );
        }
    }
    if remote_notice {
        let message = Message::shared(state_topic, b"1", QoS::AtLeastOnce, true);
        let from = Sender::new(state, None);
        route::deliver(state, sid, &message, QoS::AtLeastOnce, true, &[], &from);
    }
}

/// The local message to send to the remote for `message` queued to bridge `i`'s session:
/// with its remote topic (`None` if no outbound topic matches), shared as it is when the
/// topic is unchanged. A changed topic is built in the bridge's reused buffer, so the one
/// allocation per message is the new message's own topic.
pub fn outbound(state: &mut State, i: u16, message: &Rc<Message>) -> Option<Rc<Message>> {
    let now = state.now;
    let b = state.bridges.get_mut(usize::from(i))?;
    let changed = topic::outbound(&b.config.topics, &message.topic, &mut b.remap)?;
    if changed && b.remap.is_empty() {
        // A PUBLISH with no topic would make the remote close the link, and the resend
        // after reconnecting close it again, for ever.
        unmappable(b, &message.topic, "out");
        return None;
    }
    b.stats.out += 1;
    b.last_out = now;
    if !changed {
        return Some(Rc::clone(message));
    }
    Some(Rc::new(message.rebuilt(
        Rc::from(b.remap.as_str()),
        message.payload.clone(),
    )))
}

/// Whether bridge `i` keeps the RETAIN flag on what it sends (`bridge_outgoing_retain`, and
/// the remote's Retain Available).
pub fn outgoing_retain(state: &State, i: u16) -> bool {
    state
        .bridges
        .get(usize::from(i))
        .is_none_or(|b| b.config.outgoing_retain && b.remote.retain_available)
}

/// The QoS bridge `i` sends a message at, `qos` at most the remote's Maximum QoS.
pub fn outgoing_qos(state: &State, i: u16, qos: QoS) -> QoS {
    (state.bridges.get(usize::from(i))).map_or(qos, |b| qos.min(b.remote.maximum_qos))
}

/// Bridge `i`'s link closed: publishes `0` locally if it had been up (`connacked`), picks
/// the next address (the first again after a link that was up, unless `round_robin`), and
/// schedules the next attempt after the backoff. With the `try_private` bit sent, a remote
/// that refused it (a CONNACK refusal, or closing the socket before any CONNACK, as HiveMQ
/// does: `refused_before_connack`) is asked again at once without it, and is not asked with
/// it again.
pub fn on_closed(state: &mut State, i: usize, connacked: bool, refused_before_connack: bool) {
    let now = state.now;
    let Some(b) = state.bridges.get_mut(i) else {
        return;
    };
    let refused = std::mem::take(&mut b.refused_private) || refused_before_connack;
    if !connacked && refused && b.private {
        info!(
            "bridge {}: refused before CONNACK with try_private; trying again without it",
            b.config.name
        );
        b.private = false;
        b.link = Link::Idle(Some(now));
        return;
    }
    let count = b.config.addresses.len();
    b.address = if connacked && !b.config.round_robin {
        0
    } else {
        (b.address + 1) % count
    };
    if connacked {
        // A link that came up starts its next backoff from the base.
        b.wait = Duration::ZERO;
    }
    b.wait = next_wait(b.config.restart, b.wait);
    let again = (b.config.start_type != StartType::Once).then(|| now + b.wait);
    let (host, port) = &b.config.addresses[b.address];
    info!(
        "bridge {}: link down; next attempt in {:?} to {host}:{port}",
        b.config.name, b.wait
    );
    b.link = Link::Idle(again);
    if connacked {
        notify_local(state, i, false);
    }
}

/// Bridge `i` is up on `id` from `now`.
pub fn on_connack(state: &mut State, i: usize, id: ConnId) {
    let now = state.now;
    if let Some(b) = state.bridges.get_mut(i) {
        b.link = Link::Connected(id);
        b.wait = Duration::ZERO;
        b.last_ping = now;
        b.last_out = now;
        b.stats.connects += 1;
        let (host, port) = &b.config.addresses[b.address];
        info!("bridge {}: connected to {host}:{port}", b.config.name);
    }
    notify_local(state, i, true);
}

/// Whether bridge `i` is due a PINGREQ at `now` (every keepalive interval); marks it sent.
pub fn ping_due(b: &mut Bridge, now: Instant) -> bool {
    let interval = Duration::from_secs(u64::from(b.config.keepalive));
    if now.saturating_duration_since(b.last_ping) < interval {
        return false;
    }
    b.last_ping = now;
    true
}

/// The wait after `last` (zero after success): constant, or Mosquitto's decorrelated jitter,
/// a random time between the base and three times the last, at most the cap.
fn next_wait(restart: Restart, last: Duration) -> Duration {
    match restart {
        Restart::Constant(wait) => wait,
        Restart::Backoff { base, cap } => {
            let high = (last * 3).max(base);
            let mut bytes = [0u8; 8];
            // Without randomness the wait is the top of the range: still bounded.
            let r = match getrandom::getrandom(&mut bytes) {
                Ok(()) => u64::from_le_bytes(bytes),
                Err(_) => u64::MAX,
            };
            let span = (high - base).as_millis() as u64;
            let wait = base + Duration::from_millis(r % (span + 1));
            wait.min(cap)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_between_base_and_cap_and_grows() {
        let restart = Restart::Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(30),
        };
        let mut wait = Duration::ZERO;
        let mut longest = Duration::ZERO;
        for _ in 0..200 {
            wait = next_wait(restart, wait);
            assert!(wait >= Duration::from_secs(5) && wait <= Duration::from_secs(30));
            longest = longest.max(wait);
        }
        assert!(longest > Duration::from_secs(15), "it grows: {longest:?}");
        let constant = Restart::Constant(Duration::from_secs(2));
        assert_eq!(
            next_wait(constant, Duration::from_secs(9)),
            Duration::from_secs(2)
        );
    }
}
