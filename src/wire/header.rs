//! The fixed header: packet type, flags and remaining length. `check_frame` is the first of
//! the codec's two steps: it says whether a whole frame is in the buffer (and how long it
//! is) without looking at the body, and refuses an oversize frame as soon as its remaining
//! length is known, before the body arrives.

use super::Error;
use super::reader::varint_prefix;

/// The control packet type: the high nibble of the first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    /// 1: client request to connect.
    Connect,
    /// 2: connect acknowledgment.
    Connack,
    /// 3: publish message.
    Publish,
    /// 4: publish acknowledgment (QoS 1).
    Puback,
    /// 5: publish received (QoS 2, part 1).
    Pubrec,
    /// 6: publish release (QoS 2, part 2).
    Pubrel,
    /// 7: publish complete (QoS 2, part 3).
    Pubcomp,
    /// 8: subscribe request.
    Subscribe,
    /// 9: subscribe acknowledgment.
    Suback,
    /// 10: unsubscribe request.
    Unsubscribe,
    /// 11: unsubscribe acknowledgment.
    Unsuback,
    /// 12: ping request.
    Pingreq,
    /// 13: ping response.
    Pingresp,
    /// 14: disconnect notification.
    Disconnect,
    /// 15: authentication exchange (v5 only).
    Auth,
}

impl PacketType {
    /// The packet type for a high nibble; 0 is reserved (v3.1.1 table 2.1, v5 table 2-1).
    fn from_nibble(nibble: u8) -> Result<PacketType, Error> {
        Ok(match nibble {
            1 => PacketType::Connect,
            2 => PacketType::Connack,
            3 => PacketType::Publish,
            4 => PacketType::Puback,
            5 => PacketType::Pubrec,
            6 => PacketType::Pubrel,
            7 => PacketType::Pubcomp,
            8 => PacketType::Subscribe,
            9 => PacketType::Suback,
            10 => PacketType::Unsubscribe,
            11 => PacketType::Unsuback,
            12 => PacketType::Pingreq,
            13 => PacketType::Pingresp,
            14 => PacketType::Disconnect,
            15 => PacketType::Auth,
            _ => return Err(Error::Malformed("packet type")),
        })
    }

    /// The high nibble this type is encoded as.
    pub(crate) fn nibble(self) -> u8 {
        match self {
            PacketType::Connect => 1,
            PacketType::Connack => 2,
            PacketType::Publish => 3,
            PacketType::Puback => 4,
            PacketType::Pubrec => 5,
            PacketType::Pubrel => 6,
            PacketType::Pubcomp => 7,
            PacketType::Subscribe => 8,
            PacketType::Suback => 9,
            PacketType::Unsubscribe => 10,
            PacketType::Unsuback => 11,
            PacketType::Pingreq => 12,
            PacketType::Pingresp => 13,
            PacketType::Disconnect => 14,
            PacketType::Auth => 15,
        }
    }
}

/// A complete frame at the front of a buffer: its body is `buf[header_len..total_len]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The packet type from the first byte.
    pub packet_type: PacketType,
    /// The low nibble of the first byte (checked by each packet's parser).
    pub flags: u8,
    /// Bytes of fixed header: the first byte plus the remaining-length varint.
    pub header_len: usize,
    /// Bytes of the whole frame: header plus body.
    pub total_len: usize,
}

/// Checks for one whole frame at the front of `buf`.
///
/// `Ok(None)` until the fixed header and the whole body are present. `Err(TooLarge)` as soon
/// as the remaining length is known and the frame (header + body) exceeds `max_packet_size`,
/// before the body arrives. Packet type 0 is `Malformed("packet type")`; a remaining length
/// longer than four bytes is `Malformed("remaining length")`.
pub fn check_frame(buf: &[u8], max_packet_size: u32) -> Result<Option<Frame>, Error> {
    let Some((&byte1, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let packet_type = PacketType::from_nibble(byte1 >> 4)?;
    // v3.1.1 2.2.3, v5 1.5.5: the remaining length is at most four bytes.
    let Some((remaining, varint_len)) = varint_prefix(rest, "remaining length")? else {
        return Ok(None);
    };
    let header_len = 1 + varint_len;
    let total_len = header_len + remaining as usize;
    // v5 3.2.2.3.6: a packet above our Maximum Packet Size is answered with 0x95 and a close;
    // the whole frame (fixed header included) counts.
    if total_len as u64 > u64::from(max_packet_size) {
        return Err(Error::TooLarge);
    }
    if buf.len() < total_len {
        return Ok(None);
    }
    Ok(Some(Frame {
        packet_type,
        flags: byte1 & 0x0f,
        header_len,
        total_len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Version, decode};

    #[test]
    fn empty_buffer_needs_more() {
        assert_eq!(check_frame(&[], 1024), Ok(None));
    }

    #[test]
    fn whole_frame_is_found() {
        let buf = [0x30, 0x03, 0, 1, b'a', 0xff];
        assert_eq!(
            check_frame(&buf, 1024),
            Ok(Some(Frame {
                packet_type: PacketType::Publish,
                flags: 0,
                header_len: 2,
                total_len: 5,
            }))
        );
    }

    #[test]
    fn packet_type_zero_is_malformed() {
        assert_eq!(
            check_frame(&[0x00, 0x00], 1024),
            Err(Error::Malformed("packet type"))
        );
        assert_eq!(
            decode(&[0x00], Version::V311, 1024),
            Err(Error::Malformed("packet type"))
        );
    }

    #[test]
    fn five_byte_remaining_length_is_malformed() {
        let buf = [0x30, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(
            decode(&buf, Version::V311, u32::MAX),
            Err(Error::Malformed("remaining length"))
        );
    }

    #[test]
    fn oversize_is_refused_before_the_body() {
        // Remaining length 268,435,455 with only the five-byte header present.
        let buf = [0x30, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(decode(&buf, Version::V5, 1024 * 1024), Err(Error::TooLarge));
        // The limit counts the header too: a 10-byte frame against a 9-byte limit.
        assert_eq!(check_frame(&[0x30, 0x08], 9), Err(Error::TooLarge));
        assert_eq!(check_frame(&[0x30, 0x08], 10), Ok(None));
    }
}
