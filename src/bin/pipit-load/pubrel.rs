//! A subscriber's inbound QoS 2 packet ids that wait for their PUBREL: a PUBLISH that comes
//! again with one of them (re-sent after a reconnect) is the same message, answered with
//! PUBREC but not delivered again [MQTT-4.3.3-2].

/// One bit per packet id; empty until the first QoS 2 message.
#[derive(Debug, Default)]
pub struct AwaitingPubrel(Vec<u64>);

impl AwaitingPubrel {
    /// Notes `packet_id` as received; false if it already was (a re-send).
    pub fn first(&mut self, packet_id: u16) -> bool {
        if self.0.is_empty() {
            self.0 = vec![0; 65_536 / 64];
        }
        let (word, bit) = (usize::from(packet_id / 64), packet_id % 64);
        let fresh = self.0[word] & (1 << bit) == 0;
        self.0[word] |= 1 << bit;
        fresh
    }

    /// PUBREL for `packet_id`: the message is released, the id free for a new one.
    pub fn release(&mut self, packet_id: u16) {
        if let Some(w) = self.0.get_mut(usize::from(packet_id / 64)) {
            *w &= !(1 << (packet_id % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resend_before_pubrel_is_not_new() {
        let mut ids = AwaitingPubrel::default();
        assert!(ids.first(7));
        assert!(!ids.first(7));
        ids.release(7);
        assert!(ids.first(7));
        assert!(ids.first(65_535));
    }
}
