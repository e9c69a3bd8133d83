//! Record bodies, written: each `put_*` appends one record's body to the store's buffer.

use super::*;

/// Appends a MESSAGE body.
pub fn put_message(out: &mut Vec<u8>, m: &StoredMessage<'_>) {
    put_u64(out, m.id);
    let mut flags = m.qos as u8;
    flags |= if m.retain { RETAIN_BIT } else { 0 };
    flags |= if m.expires_at.is_some() {
        EXPIRY_BIT
    } else {
        0
    };
    flags |= if m.properties.is_some() {
        PROPERTIES_BIT
    } else {
        0
    };
    out.push(flags);
    if let Some(at) = m.expires_at {
        put_u64(out, at);
    }
    put_bytes(out, m.topic.as_bytes());
    if let Some(p) = &m.properties {
        out.push(
            p.payload_format_indicator
                .map_or(0, |v| v.saturating_add(1)),
        );
        put_opt(out, p.content_type.map(str::as_bytes));
        put_opt(out, p.response_topic.map(str::as_bytes));
        put_opt(out, p.correlation_data);
        put_bytes(out, p.user_properties);
    }
    put_bytes(out, m.payload);
}

/// Appends a SESSION body.
pub fn put_session(out: &mut Vec<u8>, s: &StoredSession<'_>) {
    put_u64(out, s.key);
    put_bytes(out, s.client_id.as_bytes());
    out.push(s.version.level());
    put_u32(out, s.expiry_interval);
    put_u16(out, s.listener);
    put_opt(out, s.username.map(str::as_bytes));
    match &s.will {
        None => out.push(0),
        Some(w) => {
            out.push(1);
            put_u32(out, w.delay);
            put_u32(
                out,
                w.message_expiry_interval.map_or(0, |v| v.saturating_add(1)),
            );
            put_message(out, &w.message);
        }
    }
}

/// Appends a SUBSCRIBE body.
pub fn put_subscribe(
    out: &mut Vec<u8>,
    key: u64,
    filter: &str,
    options: SubscriptionOptions,
    subscription_id: u32,
) {
    put_u64(out, key);
    put_bytes(out, filter.as_bytes());
    out.push(options.to_byte(Version::V5));
    put_u32(out, subscription_id);
}

/// Appends an ENQUEUE body, with the message inline when `inline` is given.
pub fn put_enqueue(
    out: &mut Vec<u8>,
    key: u64,
    message: u64,
    qos: QoS,
    retain: bool,
    subscription_ids: &[u32],
    inline: Option<&StoredMessage<'_>>,
) {
    put_u64(out, key);
    put_u64(out, message);
    let mut flags = qos as u8 | if retain { RETAIN_BIT } else { 0 };
    flags |= if inline.is_some() { INLINE_BIT } else { 0 };
    out.push(flags);
    put_u32(out, subscription_ids.len() as u32 * 4);
    for id in subscription_ids {
        put_u32(out, *id);
    }
    if let Some(m) = inline {
        put_message(out, m);
    }
}

/// Appends the body of a record that is a key and a message id (DEQUEUE).
pub fn put_key_message(out: &mut Vec<u8>, key: u64, message: u64) {
    put_u64(out, key);
    put_u64(out, message);
}

/// Appends the body of a run: SENT (with `message`), ACKED or PUBREC (without).
pub fn put_run(out: &mut Vec<u8>, key: u64, message: Option<u64>, packet_id: u16, count: u16) {
    put_u64(out, key);
    if let Some(message) = message {
        put_u64(out, message);
    }
    put_u16(out, packet_id);
    put_u16(out, count);
}

/// The packet id after `packet_id` in a run (ids wrap from 65535 to 1; 0 stays 0).
pub fn next_packet_id(packet_id: u16) -> u16 {
    match packet_id {
        0 => 0,
        u16::MAX => 1,
        p => p + 1,
    }
}

/// Appends the body of a record that is a key and a packet id (QOS2_IN, QOS2_RELEASED).
pub fn put_key_packet(out: &mut Vec<u8>, key: u64, packet_id: u16) {
    put_u64(out, key);
    put_u16(out, packet_id);
}

/// Appends a RETAIN body.
pub fn put_retain(out: &mut Vec<u8>, topic: &str, message: u64) {
    put_bytes(out, topic.as_bytes());
    put_u64(out, message);
}

/// Appends the body of a record that is a key and a string (UNSUBSCRIBE, BRIDGE).
pub fn put_key_str(out: &mut Vec<u8>, key: u64, s: &str) {
    put_u64(out, key);
    put_bytes(out, s.as_bytes());
}

/// Appends a `u64` (the whole body of SESSION_END and WILL_GONE).
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

fn put_opt(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            put_bytes(out, b);
        }
    }
}
