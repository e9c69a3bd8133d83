//! MQTT 5 topic aliases (v5 3.3.2.3.4), both directions, for one network connection.
//!
//! Inbound, the client maps alias numbers to topic names; the broker remembers at most its
//! advertised Topic Alias Maximum entries. Outbound, the broker assigns aliases to the first
//! topics it sends, up to the client's Topic Alias Maximum, and then stops assigning (fill then
//! stop): later topics go out in full. Both maps die with the connection [MQTT-3.3.2-7].

use std::rc::Rc;

use crate::hash::LevelMap;

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
/// Topic Alias Maximum; once full, no more are assigned.
#[derive(Debug, Default)]
pub struct OutboundAliases {
    assigned: LevelMap<u16>,
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
    /// Decides how to send `topic` to a client whose Topic Alias Maximum is `maximum`
    /// [MQTT-3.3.2-10], recording a new assignment.
    pub fn choose(&mut self, topic: &str, maximum: u16) -> OutboundTopic {
        if let Some(&alias) = self.assigned.get(topic) {
            return OutboundTopic::Known(alias);
        }
        let next = self.assigned.len() + 1;
        match u16::try_from(next) {
            Ok(alias) if alias <= maximum => {
                self.assigned.insert(topic.into(), alias);
                OutboundTopic::Assign(alias)
            }
            _ => OutboundTopic::Plain,
        }
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

    #[test]
    fn outbound_fill_then_stop() {
        let mut a = OutboundAliases::default();
        assert_eq!(a.choose("a", 2), OutboundTopic::Assign(1));
        assert_eq!(a.choose("a", 2), OutboundTopic::Known(1));
        assert_eq!(a.choose("b", 2), OutboundTopic::Assign(2));
        assert_eq!(a.choose("c", 2), OutboundTopic::Plain);
        assert_eq!(a.choose("b", 2), OutboundTopic::Known(2));
        assert_eq!(a.choose("x", 0), OutboundTopic::Plain);
    }
}
