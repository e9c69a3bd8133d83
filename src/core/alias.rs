//! MQTT 5 topic aliases (v5 3.3.2.3.4), both directions, for one network connection.
//!
//! Inbound, the client maps alias numbers to topic names; the broker remembers at most its
//! advertised Topic Alias Maximum entries. Outbound, the broker assigns aliases to the first
//! topics it sends, up to the client's Topic Alias Maximum and a budget of bytes, and then
//! stops assigning (fill then stop): later topics go out in full. The outbound map shares
//! each topic with the message it came in (`Rc<str>`), so twenty subscribers aliasing the same
//! topics hold one copy of them, and counts each entry's bytes as if it held the last one, so a
//! client announcing Topic Alias Maximum 65,535 cannot make the broker keep 65,535 long
//! topics for it. Both maps die with the connection [MQTT-3.3.2-7].

use std::collections::HashMap;
use std::mem::size_of;
use std::rc::Rc;

use crate::core::hash::BuildLevelHasher;

/// Why an inbound alias could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasError {
    /// Alias 0 or above the maximum we advertised: DISCONNECT 0x94 [MQTT-3.3.2-9].
    Invalid,
    /// An empty topic with an alias never set on this connection: protocol error (0x82).
    Unknown,
}

/// Aliases set by the client. Bounded by our Topic Alias Maximum.
#[derive(Debug, Default)]
pub struct InboundAliases {
    topics: Vec<Option<Rc<str>>>,
}

impl InboundAliases {
    /// Resolves a PUBLISH's topic: with an alias, a non-empty topic (re)sets it and an empty
    /// topic uses it. `maximum` is the Topic Alias Maximum we advertised. Returns the topic
    /// the alias stands for, or `None` when the PUBLISH's own topic is the one to use.
    pub fn resolve(
        &mut self,
        topic: &str,
        alias: Option<u16>,
        maximum: u16,
    ) -> Result<Option<Rc<str>>, AliasError> {
        let Some(alias) = alias else {
            return Ok(None);
        };
        // [MQTT-3.3.2-8] [MQTT-3.3.2-9] alias 0 or above the maximum is invalid.
        if alias == 0 || alias > maximum {
            return Err(AliasError::Invalid);
        }
        let slot = usize::from(alias - 1);
        if topic.is_empty() {
            return match self.topics.get(slot) {
                Some(Some(known)) => Ok(Some(Rc::clone(known))),
                _ => Err(AliasError::Unknown),
            };
        }
        if self.topics.len() <= slot {
            self.topics.resize(slot + 1, None);
        }
        // Clients often repeat topic and alias on every PUBLISH: keep the stored copy then.
        if self.topics[slot].as_deref() != Some(topic) {
            self.topics[slot] = Some(topic.into());
        }
        Ok(None)
    }
}

/// Aliases the broker assigned to this client, topic to alias. Bounded by the client's
/// Topic Alias Maximum and by `max_bytes`; once either is reached, no more are assigned.
#[derive(Debug)]
pub struct OutboundAliases {
    assigned: HashMap<Rc<str>, u16, BuildLevelHasher>,
    /// What the assigned entries cost, as `entry_bytes` counts it.
    bytes: usize,
    /// Most bytes the entries may cost.
    max_bytes: usize,
}

/// The default byte budget of one connection's outbound aliases (`Config`'s
/// `max_outbound_alias_bytes`): a thousand 16-byte topics, or a few long ones.
pub const DEFAULT_MAX_OUTBOUND_ALIAS_BYTES: usize = 64 * 1024;

impl Default for OutboundAliases {
    fn default() -> Self {
        OutboundAliases::new(DEFAULT_MAX_OUTBOUND_ALIAS_BYTES)
    }
}

/// What one assignment of `topic` costs: the topic's bytes and the `Rc`'s counts (in case
/// the table holds its last reference), the map's slot and its control byte.
fn entry_bytes(topic: &str) -> usize {
    topic.len() + 2 * size_of::<usize>() + size_of::<(Rc<str>, u16)>() + 1
}

/// How to send a topic to a client that accepts aliases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboundTopic {
    /// Send the topic with no alias (the map is full, or aliases are not accepted).
    Plain,
    /// Send the topic and this newly assigned alias.
    Assign(u16),
    /// Send an empty topic and this alias, which the client already knows.
    Known(u16),
}

impl OutboundAliases {
    /// An empty table whose entries may cost at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        OutboundAliases {
            assigned: HashMap::default(),
            bytes: 0,
            max_bytes,
        }
    }

    /// Decides how to send `topic` to a client whose Topic Alias Maximum is `maximum`
    /// [MQTT-3.3.2-10], recording a new assignment (sharing `topic`, not copying it).
    pub fn choose(&mut self, topic: &Rc<str>, maximum: u16) -> OutboundTopic {
        if let Some(&alias) = self.assigned.get(&**topic) {
            return OutboundTopic::Known(alias);
        }
        let cost = entry_bytes(topic);
        if self.bytes + cost > self.max_bytes {
            return OutboundTopic::Plain;
        }
        let next = self.assigned.len() + 1;
        match u16::try_from(next) {
            Ok(alias) if alias <= maximum => {
                self.assigned.insert(Rc::clone(topic), alias);
                self.bytes += cost;
                OutboundTopic::Assign(alias)
            }
            _ => OutboundTopic::Plain,
        }
    }

    /// What the assigned entries cost, in bytes (at most the budget).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_set_use_and_errors() {
        let mut a = InboundAliases::default();
        assert_eq!(a.resolve("t", None, 0), Ok(None));
        assert_eq!(a.resolve("t", Some(0), 5), Err(AliasError::Invalid));
        assert_eq!(a.resolve("t", Some(6), 5), Err(AliasError::Invalid));
        assert_eq!(a.resolve("", Some(2), 5), Err(AliasError::Unknown));
        assert_eq!(a.resolve("a/b", Some(2), 5), Ok(None));
        assert_eq!(a.resolve("", Some(2), 5), Ok(Some("a/b".into())));
        let stored = a.resolve("", Some(2), 5).unwrap().unwrap();
        assert_eq!(a.resolve("a/b", Some(2), 5), Ok(None));
        let again = a.resolve("", Some(2), 5).unwrap().unwrap();
        assert!(
            Rc::ptr_eq(&stored, &again),
            "re-setting the same topic keeps the copy"
        );
        assert_eq!(a.resolve("c", Some(2), 5), Ok(None));
        assert_eq!(a.resolve("", Some(2), 5), Ok(Some("c".into())));
    }

    fn topic(s: &str) -> Rc<str> {
        s.into()
    }

    #[test]
    fn outbound_fill_then_stop() {
        let mut a = OutboundAliases::default();
        assert_eq!(a.choose(&topic("a"), 2), OutboundTopic::Assign(1));
        assert_eq!(a.choose(&topic("a"), 2), OutboundTopic::Known(1));
        assert_eq!(a.choose(&topic("b"), 2), OutboundTopic::Assign(2));
        assert_eq!(a.choose(&topic("c"), 2), OutboundTopic::Plain);
        assert_eq!(a.choose(&topic("b"), 2), OutboundTopic::Known(2));
        assert_eq!(a.choose(&topic("x"), 0), OutboundTopic::Plain);
    }

    #[test]
    fn outbound_entries_share_the_topic() {
        let mut a = OutboundAliases::default();
        let t = topic("shared/topic");
        assert_eq!(a.choose(&t, 10), OutboundTopic::Assign(1));
        assert_eq!(
            Rc::strong_count(&t),
            2,
            "the table holds the message's copy"
        );
    }

    #[test]
    fn outbound_stops_assigning_at_the_byte_budget() {
        // A client announcing Topic Alias Maximum 65,535 and long distinct topics: each table
        // used to keep its own copy of every topic, 30 MB for each of 20 such subscribers.
        let mut a = OutboundAliases::new(64 * 1024);
        let mut assigned = 0;
        for i in 0..65_535u32 {
            let long = topic(&format!("{i:0>1000}"));
            match a.choose(&long, u16::MAX) {
                OutboundTopic::Assign(_) => assigned += 1,
                other => assert_eq!(other, OutboundTopic::Plain),
            }
            assert!(a.bytes() <= 64 * 1024);
        }
        assert_eq!(assigned, 64 * 1024 / entry_bytes(&format!("{:0>1000}", 0)));
        // What was assigned stays known; short topics do not squeeze past the budget either
        // once it is spent.
        assert_eq!(
            a.choose(&topic(&format!("{:0>1000}", 0)), u16::MAX),
            OutboundTopic::Known(1)
        );
        let mut small = OutboundAliases::new(3 * entry_bytes("t/0"));
        for i in 0..3 {
            assert!(matches!(
                small.choose(&topic(&format!("t/{i}")), 100),
                OutboundTopic::Assign(_)
            ));
        }
        assert_eq!(small.choose(&topic("t/3"), 100), OutboundTopic::Plain);
        assert_eq!(small.bytes(), 3 * entry_bytes("t/0"));
    }
}
