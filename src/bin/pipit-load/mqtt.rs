//! A minimal MQTT 3.1.1 client codec, written independently of the broker's `wire` module so
//! the load generator checks the broker rather than agreeing with it by construction.
//!
//! Encoders append exactly one frame to a `Vec<u8>` (so many frames share one `write()`).
//! [`decode`] returns `Ok(None)` while a frame is incomplete and borrows the payload from the
//! caller's buffer; every `Err` means the connection is unusable.

/// Why a frame from the broker could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The remaining length is longer than four bytes or larger than our limit.
    RemainingLength,
    /// A packet body is shorter than its fields need; names the field.
    Truncated(&'static str),
    /// A packet type a client never receives, or reserved flags set.
    UnexpectedType(u8),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::RemainingLength => write!(f, "malformed or oversized remaining length"),
            Error::Truncated(field) => write!(f, "packet too short for {field}"),
            Error::UnexpectedType(b) => write!(f, "unexpected packet type/flags 0x{b:02x}"),
        }
    }
}

/// One packet received from the broker, borrowing from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNACK with its return code (0 = accepted).
    Connack { return_code: u8 },
    /// SUBACK: packet id and the first granted QoS (0x80 = failure).
    Suback { packet_id: u16, granted: u8 },
    /// PUBLISH: QoS, packet id (0 for QoS 0) and application payload.
    Publish {
        qos: u8,
        packet_id: u16,
        payload: &'a [u8],
    },
    /// PUBACK for a QoS 1 PUBLISH we sent.
    Puback(u16),
    /// PUBREC for a QoS 2 PUBLISH we sent.
    Pubrec(u16),
    /// PUBREL for a QoS 2 PUBLISH we received.
    Pubrel(u16),
    /// PUBCOMP for a PUBREL we sent.
    Pubcomp(u16),
    /// PINGRESP.
    Pingresp,
}

/// Largest remaining length we accept from the broker (the protocol maximum is ~256 MiB).
pub const MAX_REMAINING: usize = 64 * 1024 * 1024;

/// Appends a variable-byte-integer remaining length.
fn put_remaining(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
}

/// Appends a length-prefixed UTF-8 string.
fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends a CONNECT without will or credentials; `clean` sets the clean session flag.
pub fn connect(out: &mut Vec<u8>, client_id: &str, clean: bool, keep_alive: u16) {
    out.push(0x10);
    put_remaining(out, 10 + 2 + client_id.len());
    // Protocol name "MQTT", level 4 [MQTT-3.1.2-1], [MQTT-3.1.2-2]; flags: only clean
    // session, bit 1 [MQTT-3.1.2-4].
    let flags = if clean { 0x02 } else { 0x00 };
    out.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, flags]);
    out.extend_from_slice(&keep_alive.to_be_bytes());
    put_str(out, client_id);
}

/// Appends a SUBSCRIBE for one topic filter; fixed header flags are 0b0010 [MQTT-3.8.1-1].
pub fn subscribe(out: &mut Vec<u8>, packet_id: u16, topic_filter: &str, qos: u8) {
    out.push(0x82);
    put_remaining(out, 2 + 2 + topic_filter.len() + 1);
    out.extend_from_slice(&packet_id.to_be_bytes());
    put_str(out, topic_filter);
    out.push(qos);
}

/// Appends a PUBLISH; `packet_id` is written only for QoS 1 and 2 [MQTT-2.3.1-5].
pub fn publish(
    out: &mut Vec<u8>,
    topic: &str,
    qos: u8,
    retain: bool,
    packet_id: u16,
    payload: &[u8],
) {
    // RETAIN is bit 0 of the fixed header [MQTT-3.3.1-5].
    out.push(0x30 | (qos << 1) | u8::from(retain));
    let id_len = if qos > 0 { 2 } else { 0 };
    put_remaining(out, 2 + topic.len() + id_len + payload.len());
    put_str(out, topic);
    if qos > 0 {
        out.extend_from_slice(&packet_id.to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Appends a PUBACK.
pub fn puback(out: &mut Vec<u8>, packet_id: u16) {
    ack(out, 0x40, packet_id);
}

/// Appends a PUBREC.
pub fn pubrec(out: &mut Vec<u8>, packet_id: u16) {
    ack(out, 0x50, packet_id);
}

/// Appends a PUBREL; its fixed header flags are 0b0010 [MQTT-3.6.1-1].
pub fn pubrel(out: &mut Vec<u8>, packet_id: u16) {
    ack(out, 0x62, packet_id);
}

/// Appends a PUBCOMP.
pub fn pubcomp(out: &mut Vec<u8>, packet_id: u16) {
    ack(out, 0x70, packet_id);
}

/// Appends a PINGREQ.
pub fn pingreq(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xC0, 0]);
}

/// Appends a DISCONNECT.
pub fn disconnect(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xE0, 0]);
}

/// Appends a two-byte acknowledgement frame of the given first byte.
fn ack(out: &mut Vec<u8>, first: u8, packet_id: u16) {
    out.push(first);
    out.push(2);
    out.extend_from_slice(&packet_id.to_be_bytes());
}

/// Reads a big-endian u16 at `at`, naming `field` if it is missing.
fn get_u16(body: &[u8], at: usize, field: &'static str) -> Result<u16, Error> {
    match body.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(Error::Truncated(field)),
    }
}

/// Decodes one frame from the front of `buf`: `Ok(None)` if incomplete, else the packet and
/// the number of bytes it used.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet<'_>, usize)>, Error> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut remaining = 0usize;
    let mut header_len = 1;
    loop {
        if header_len > 4 {
            return Err(Error::RemainingLength);
        }
        let Some(&byte) = buf.get(header_len) else {
            return Ok(None);
        };
        remaining |= ((byte & 0x7f) as usize) << (7 * (header_len - 1));
        header_len += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    if remaining > MAX_REMAINING {
        return Err(Error::RemainingLength);
    }
    let total = header_len + remaining;
    let Some(body) = buf.get(header_len..total) else {
        return Ok(None);
    };
    let packet = match first {
        0x20 => Packet::Connack {
            return_code: *body.get(1).ok_or(Error::Truncated("connack return code"))?,
        },
        0x90 => Packet::Suback {
            packet_id: get_u16(body, 0, "suback packet id")?,
            granted: *body.get(2).ok_or(Error::Truncated("suback return code"))?,
        },
        0x30..=0x3f => {
            let qos = (first >> 1) & 0x03;
            if qos == 3 {
                return Err(Error::UnexpectedType(first));
            }
            let topic_len = get_u16(body, 0, "publish topic length")? as usize;
            let mut at = 2 + topic_len;
            if body.len() < at {
                return Err(Error::Truncated("publish topic"));
            }
            let packet_id = if qos > 0 {
                let id = get_u16(body, at, "publish packet id")?;
                at += 2;
                id
            } else {
                0
            };
            Packet::Publish {
                qos,
                packet_id,
                payload: &body[at..],
            }
        }
        0x40 => Packet::Puback(get_u16(body, 0, "puback packet id")?),
        0x50 => Packet::Pubrec(get_u16(body, 0, "pubrec packet id")?),
        0x62 => Packet::Pubrel(get_u16(body, 0, "pubrel packet id")?),
        0x70 => Packet::Pubcomp(get_u16(body, 0, "pubcomp packet id")?),
        0xD0 => Packet::Pingresp,
        other => return Err(Error::UnexpectedType(other)),
    };
    Ok(Some((packet, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trips_and_truncations_need_more() {
        for qos in 0..=2 {
            let mut out = Vec::new();
            publish(&mut out, "a/b", qos, false, 7, b"hello");
            let (packet, used) = decode(&out).expect("valid").expect("complete");
            assert_eq!(used, out.len());
            let packet_id = if qos > 0 { 7 } else { 0 };
            assert_eq!(
                packet,
                Packet::Publish {
                    qos,
                    packet_id,
                    payload: b"hello"
                }
            );
            for cut in 0..out.len() {
                assert_eq!(decode(&out[..cut]), Ok(None));
            }
        }
    }

    #[test]
    fn fixed_bytes() {
        let mut out = Vec::new();
        connect(&mut out, "c", true, 60);
        assert_eq!(
            out,
            [
                0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 1, b'c'
            ]
        );
        out.clear();
        connect(&mut out, "c", false, 60);
        assert_eq!(out[9], 0, "no flag set: a persistent session");
        out.clear();
        publish(&mut out, "t", 1, true, 5, b"x");
        assert_eq!(out, [0x33, 6, 0, 1, b't', 0, 5, b'x']);
        out.clear();
        subscribe(&mut out, 1, "t/#", 1);
        assert_eq!(out, [0x82, 8, 0, 1, 0, 3, b't', b'/', b'#', 1]);
        out.clear();
        pubrel(&mut out, 0x0102);
        assert_eq!(out, [0x62, 2, 1, 2]);
    }

    #[test]
    fn acks_and_errors() {
        assert_eq!(
            decode(&[0x20, 2, 0, 0]),
            Ok(Some((Packet::Connack { return_code: 0 }, 4)))
        );
        assert_eq!(
            decode(&[0x90, 3, 0, 1, 0x80]),
            Ok(Some((
                Packet::Suback {
                    packet_id: 1,
                    granted: 0x80
                },
                5
            )))
        );
        assert_eq!(decode(&[0x50, 2, 0, 9]), Ok(Some((Packet::Pubrec(9), 4))));
        assert_eq!(
            decode(&[0x40, 0]),
            Err(Error::Truncated("puback packet id"))
        );
        assert_eq!(
            decode(&[0x40, 0x80, 0x80, 0x80, 0x80, 1]),
            Err(Error::RemainingLength)
        );
        assert_eq!(decode(&[0xF0, 0]), Err(Error::UnexpectedType(0xF0)));
        let mut big = 127 * 128 * 128 * 128usize;
        let mut frame = vec![0x30];
        put_remaining(&mut frame, big);
        assert_eq!(decode(&frame), Err(Error::RemainingLength));
        big = 300;
        frame.clear();
        frame.push(0x30);
        put_remaining(&mut frame, big);
        assert_eq!(frame, [0x30, 0xAC, 0x02]);
    }
}
