//! Record bodies, read back: every read is bounds-checked, and a body that does not parse
//! exactly is refused rather than misread.

use super::*;

/// Decodes a record of `kind`; `None` if the kind is unknown or the body does not parse
/// (the store's CRC passed, so this is a bug or a foreign writer: the record is skipped).
pub fn decode(kind: u8, body: &[u8]) -> Option<Record<'_>> {
    let mut r = Reader(body);
    let record = match kind {
        MESSAGE => Record::Message(r.message()?),
        RETAIN => Record::Retain {
            topic: r.str()?,
            message: r.u64()?,
        },
        SESSION => Record::Session(r.session()?),
        SESSION_END => Record::SessionEnd { key: r.u64()? },
        SUBSCRIBE => Record::Subscribe {
            key: r.u64()?,
            filter: r.str()?,
            options: SubscriptionOptions::parse(r.u8()?, Version::V5).ok()?,
            subscription_id: r.u32()?,
        },
        UNSUBSCRIBE => Record::Unsubscribe {
            key: r.u64()?,
            filter: r.str()?,
        },
        ENQUEUE => {
            let key = r.u64()?;
            let message = r.u64()?;
            let flags = r.u8()?;
            let subscription_ids = r.bytes()?;
            let inline = if flags & INLINE_BIT != 0 {
                Some(r.message()?).filter(|m| m.id == message)
            } else {
                None
            };
            if flags & INLINE_BIT != 0 && inline.is_none() {
                return None;
            }
            Record::Enqueue {
                key,
                message,
                qos: QoS::from_bits(flags & QOS_MASK)?,
                retain: flags & RETAIN_BIT != 0,
                subscription_ids,
                inline,
            }
        }
        SENT => Record::Sent {
            key: r.u64()?,
            message: r.u64()?,
            packet_id: r.u16()?,
            count: r.u16()?,
        },
        DEQUEUE => Record::Dequeue {
            key: r.u64()?,
            message: r.u64()?,
        },
        ACKED | PUBREC => {
            let (key, packet_id, count) = (r.u64()?, r.u16()?, r.u16()?);
            match kind {
                ACKED => Record::Acked {
                    key,
                    packet_id,
                    count,
                },
                _ => Record::Pubrec {
                    key,
                    packet_id,
                    count,
                },
            }
        }
        QOS2_IN | QOS2_RELEASED => {
            let (key, packet_id) = (r.u64()?, r.u16()?);
            match kind {
                QOS2_IN => Record::Qos2In { key, packet_id },
                _ => Record::Qos2Released { key, packet_id },
            }
        }
        WILL_GONE => Record::WillGone { key: r.u64()? },
        BRIDGE => Record::Bridge {
            key: r.u64()?,
            name: r.str()?,
        },
        _ => return None,
    };
    r.0.is_empty().then_some(record)
}

/// Reads a record body front to back; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    fn opt_bytes(&mut self) -> Option<Option<&'a [u8]>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.bytes()?)),
            _ => None,
        }
    }

    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        match self.opt_bytes()? {
            None => Some(None),
            Some(b) => Some(Some(std::str::from_utf8(b).ok()?)),
        }
    }

    fn message(&mut self) -> Option<StoredMessage<'a>> {
        let id = self.u64()?;
        let flags = self.u8()?;
        let expires_at = if flags & EXPIRY_BIT != 0 {
            Some(self.u64()?)
        } else {
            None
        };
        let topic = self.str()?;
        let properties = if flags & PROPERTIES_BIT != 0 {
            Some(StoredProperties {
                payload_format_indicator: self.u8()?.checked_sub(1),
                content_type: self.opt_str()?,
                response_topic: self.opt_str()?,
                correlation_data: self.opt_bytes()?,
                user_properties: self.bytes()?,
            })
        } else {
            None
        };
        Some(StoredMessage {
            id,
            qos: QoS::from_bits(flags & QOS_MASK)?,
            retain: flags & RETAIN_BIT != 0,
            expires_at,
            topic,
            properties,
            payload: self.bytes()?,
        })
    }

    fn session(&mut self) -> Option<StoredSession<'a>> {
        let key = self.u64()?;
        let client_id = self.str()?;
        let version = match self.u8()? {
            3 => Version::V31,
            4 => Version::V311,
            5 => Version::V5,
            _ => return None,
        };
        let expiry_interval = self.u32()?;
        let listener = self.u16()?;
        let username = self.opt_str()?;
        let will = match self.u8()? {
            0 => None,
            1 => {
                let delay = self.u32()?;
                let message_expiry_interval = self.u32()?.checked_sub(1);
                Some(StoredWill {
                    delay,
                    message_expiry_interval,
                    message: self.message()?,
                })
            }
            _ => return None,
        };
        Some(StoredSession {
            key,
            client_id,
            version,
            expiry_interval,
            listener,
            username,
            will,
        })
    }
}
