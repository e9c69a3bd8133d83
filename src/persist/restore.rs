//! Rebuilding the broker's state from the store's records at start-up.
//!
//! Records are replayed in order into a `State` whose journal is not yet open, so nothing
//! replayed is written again. A record that names a message or a session the replay does not
//! know (its own record was lost to corruption, or the message expired while the broker was
//! down) is skipped and counted. Payloads are held once, by the `Rc` every queue shares; the
//! id maps are dropped at the end, freeing every message nothing refers to any more.
//!
//! After the replay every session is offline, as its client's connection is gone: its
//! expiry clock starts now, and its will is handled as a connection lost now would be
//! (published, or scheduled after its delay). A bridge's local session (its spool, named
//! by a BRIDGE record) is marked as the configured bridge of that name, which
//! `bridge::start` takes it up; one whose bridge is no longer configured is discarded.

use std::collections::HashMap;
use std::rc::Rc;

use log::{info, warn};

use super::journal::Journal;
use super::record::{self, Record, StoredMessage, StoredSession};
use crate::core::lifecycle;
use crate::core::message::{Message, MessageProperties};
use crate::core::session::Session;
use crate::core::state::State;
use crate::core::will::{self, Will};
use crate::ids::SessionId;
use crate::wire::QoS;

/// The replay in progress.
#[derive(Debug, Default)]
pub struct Restore {
    messages: HashMap<u64, Rc<Message>>,
    sessions: HashMap<u64, SessionId>,
    wills: HashMap<u64, Will>,
    /// Bridge sessions: store key to the bridge's `connection` name.
    bridges: HashMap<u64, Box<str>>,
    last_message: u64,
    last_key: u64,
    /// Records that named something unknown, or did not parse.
    pub skipped: u64,
    /// Messages that had expired.
    pub expired: u64,
}

impl Restore {
    /// Applies one record to `state`.
    pub fn apply(&mut self, state: &mut State, kind: u8, body: &[u8]) {
        let Some(record) = record::decode(kind, body) else {
            self.skipped += 1;
            return;
        };
        let applied = match record {
            Record::Message(m) => {
                self.message(state, &m);
                true
            }
            Record::Retain { topic, message: 0 } => {
                let empty = Message::shared(topic, b"", QoS::AtMostOnce, true);
                state.retained.set(empty);
                true
            }
            Record::Retain { message, .. } => match self.messages.get(&message) {
                Some(m) => {
                    state.retained.set(Rc::clone(m));
                    true
                }
                None => false,
            },
            Record::Session(s) => {
                self.session(state, &s);
                true
            }
            Record::SessionEnd { key } => match self.sessions.remove(&key) {
                Some(sid) => {
                    self.wills.remove(&key);
                    lifecycle::discard(state, sid);
                    true
                }
                None => false,
            },
            Record::Subscribe {
                key,
                filter,
                options,
                subscription_id,
            } => match self.sessions.get(&key) {
                Some(&sid) => {
                    lifecycle::subscribe(state, sid, filter, options, subscription_id).is_ok()
                }
                None => false,
            },
            Record::Unsubscribe { key, filter } => match self.sessions.get(&key) {
                Some(&sid) => {
                    lifecycle::unsubscribe(state, sid, filter);
                    true
                }
                None => false,
            },
            Record::Enqueue {
                key,
                message,
                qos,
                retain,
                subscription_ids,
                inline,
            } => {
                if let Some(m) = &inline {
                    self.message(state, m);
                }
                let ids: Vec<u32> = subscription_ids
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                match (self.session_mut(state, key), self.messages.get(&message)) {
                    (Some(session), Some(m)) => {
                        session.restore_enqueue(Rc::clone(m), qos, retain, &ids);
                        true
                    }
                    _ => false,
                }
            }
            Record::Sent {
                key,
                message,
                packet_id,
                count,
            } => self
                .session_mut(state, key)
                .map(|s| {
                    let mut packet_id = packet_id;
                    for i in 0..u64::from(count) {
                        s.restore_sent(message + i, packet_id);
                        packet_id = record::next_packet_id(packet_id);
                    }
                })
                .is_some(),
            Record::Dequeue { key, message } => self
                .session_mut(state, key)
                .map(|s| s.restore_dequeue(message))
                .is_some(),
            Record::Acked {
                key,
                packet_id,
                count,
            } => self
                .session_mut(state, key)
                .map(|s| each_packet_id(packet_id, count, |p| s.restore_acked(p)))
                .is_some(),
            Record::Pubrec {
                key,
                packet_id,
                count,
            } => self
                .session_mut(state, key)
                .map(|s| each_packet_id(packet_id, count, |p| s.restore_pubrec(p)))
                .is_some(),
            Record::Qos2In { key, packet_id } => self
                .session_mut(state, key)
                .map(|s| s.receive_qos2(packet_id))
                .is_some(),
            Record::Qos2Released { key, packet_id } => self
                .session_mut(state, key)
                .map(|s| s.release_qos2(packet_id))
                .is_some(),
            Record::WillGone { key } => {
                self.wills.remove(&key);
                true
            }
            Record::Bridge { key, name } => {
                let known = self.sessions.contains_key(&key);
                if known {
                    self.bridges.insert(key, name.into());
                }
                known
            }
        };
        if !applied {
            self.skipped += 1;
        }
    }

    /// A message record (or an ENQUEUE's inline one): known by its id from now on.
    fn message(&mut self, state: &State, m: &StoredMessage<'_>) {
        self.last_message = self.last_message.max(m.id);
        match message_of(m, &state.journal, state.now) {
            Some(message) => {
                self.messages.insert(m.id, message);
            }
            None => self.expired += 1,
        }
    }

    fn session_mut<'s>(&self, state: &'s mut State, key: u64) -> Option<&'s mut Session> {
        let sid = self.sessions.get(&key)?;
        state.sessions.get_mut(sid.0 as usize)
    }

    /// A SESSION record: a new session, or the next connection's settings for a known one.
    fn session(&mut self, state: &mut State, s: &StoredSession<'_>) {
        self.last_key = self.last_key.max(s.key);
        let sid = match self.sessions.get(&s.key) {
            Some(&sid) => sid,
            None => {
                // A session of this client id under another key ended without its record
                // surviving: the newer one wins, as a clean start would have made it.
                if let Some(old) = state.client_ids.get(s.client_id, &state.sessions) {
                    self.sessions.retain(|_, sid| *sid != old);
                    lifecycle::discard(state, old);
                }
                let mut session = Session::new(s.client_id.into(), s.expiry_interval);
                session.store_key = s.key;
                let sid = SessionId(state.sessions.insert(session) as u32);
                state.client_ids.insert(sid, &state.sessions);
                self.sessions.insert(s.key, sid);
                sid
            }
        };
        if let Some(session) = state.sessions.get_mut(sid.0 as usize) {
            session.expiry_interval = s.expiry_interval;
            session.listener = s.listener;
            session.version = s.version;
            session.username = s.username.map(Box::from);
        }
        self.wills.remove(&s.key);
        if let Some(w) = &s.will
            && let Some(message) = message_of(&w.message, &state.journal, state.now)
        {
            let will = Will {
                message,
                delay: w.delay,
                message_expiry_interval: w.message_expiry_interval,
                client_id: s.client_id.into(),
                username: s.username.map(Box::from),
                listener: s.listener,
            };
            self.wills.insert(s.key, will);
        }
    }

    /// Ends the replay: every session offline with its expiry clock started, the id
    /// sequences continued, and, once `journal` is the live one, the wills handled.
    pub fn finish(self, state: &mut State) {
        let now = state.now;
        let persistent = state.config.persistent_client_expiration;
        let mut queued = 0;
        let mut ended = Vec::new();
        for (&key, &sid) in &self.sessions {
            let Some(session) = state.sessions.get_mut(sid.0 as usize) else {
                continue;
            };
            if session.ends_with_connection() {
                ended.push((key, sid));
                continue;
            }
            session.expires_at = session.expiry_deadline(now, persistent);
            queued += session.stored_entries().count();
            lifecycle::arm_expiry(state, sid);
        }
        state.journal.resume_ids(self.last_message, self.last_key);
        for &(key, sid) in &ended {
            state.journal.key_only(record::SESSION_END, key);
            lifecycle::discard(state, sid);
        }
        for (key, name) in &self.bridges {
            if let Some(&sid) = self.sessions.get(key) {
                claim_bridge(state, sid, name);
            }
        }
        info!(
            "restored {} sessions ({queued} messages queued or in flight) and {} retained messages",
            self.sessions.len() - ended.len(),
            state.retained.len(),
        );
        if self.skipped > 0 || self.expired > 0 {
            warn!(
                "restore: {} records named something lost or unreadable and were skipped; {} messages had expired",
                self.skipped, self.expired
            );
        }
        for (key, will) in self.wills {
            let sid = self.sessions.get(&key).copied();
            will::on_close(state, sid, will);
        }
    }
}

/// Marks restored session `sid` as the local session of the configured bridge `name`
/// (found by name, so a changed `local_clientid` keeps its spool), or discards it if no
/// such bridge is configured any more. A bridge's session never expires.
fn claim_bridge(state: &mut State, sid: SessionId, name: &str) {
    let index = (state.config.bridges.iter()).position(|b| b.name == name);
    let Some(session) = state.sessions.get_mut(sid.0 as usize) else {
        return;
    };
    match index {
        Some(i) => {
            session.bridge = Some(i as u16);
            session.expires_at = None;
        }
        None => {
            let held = session.stored_len();
            warn!(
                "bridge {name} is no longer configured: its {held} stored messages are discarded"
            );
            lifecycle::discard(state, sid);
        }
    }
}

/// Calls `f` with each of the `count` consecutive packet ids from `packet_id`.
fn each_packet_id(mut packet_id: u16, count: u16, mut f: impl FnMut(u16)) {
    for _ in 0..count {
        f(packet_id);
        packet_id = record::next_packet_id(packet_id);
    }
}

/// The message a MESSAGE record (or a will) describes; `None` if it expired at `now`.
fn message_of(
    m: &StoredMessage<'_>,
    journal: &Journal,
    now: std::time::Instant,
) -> Option<Rc<Message>> {
    let expires_at = match m.expires_at {
        Some(unix) => Some(journal.instant_of(unix, now)?),
        None => None,
    };
    let message = Message {
        topic: Rc::from(m.topic),
        payload: m.payload.into(),
        qos: m.qos,
        retain: m.retain,
        properties: m.properties.map(|p| {
            Box::new(MessageProperties {
                payload_format_indicator: p.payload_format_indicator,
                content_type: p.content_type.map(Box::from),
                response_topic: p.response_topic.map(Box::from),
                correlation_data: p.correlation_data.map(Box::from),
                user_properties: p.user_properties.into(),
            })
        }),
        expires_at,
        frame: Default::default(),
        store_id: Default::default(),
    };
    message.store_id.set(m.id);
    Some(Rc::new(message))
}
