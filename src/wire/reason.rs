//! Reason codes: the MQTT 5 reason codes (v5 section 2.4, named as the standard names
//! them), the v3 CONNACK return codes, and the one table of conversions: decode error to
//! reason code, and v5 reason codes down to their v3 equivalents.

use super::Error;

/// 0x00: CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, AUTH.
pub const SUCCESS: u8 = 0x00;
/// 0x00: DISCONNECT.
pub const NORMAL_DISCONNECTION: u8 = 0x00;
/// 0x00: SUBACK.
pub const GRANTED_QOS_0: u8 = 0x00;
/// 0x01: SUBACK.
pub const GRANTED_QOS_1: u8 = 0x01;
/// 0x02: SUBACK.
pub const GRANTED_QOS_2: u8 = 0x02;
/// 0x04: DISCONNECT (client asks for its will to be published).
pub const DISCONNECT_WITH_WILL_MESSAGE: u8 = 0x04;
/// 0x10: PUBACK, PUBREC.
pub const NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
/// 0x11: UNSUBACK.
pub const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
/// 0x18: AUTH.
pub const CONTINUE_AUTHENTICATION: u8 = 0x18;
/// 0x19: AUTH.
pub const REAUTHENTICATE: u8 = 0x19;
/// 0x80: CONNACK, PUBACK, PUBREC, SUBACK, UNSUBACK, DISCONNECT.
pub const UNSPECIFIED_ERROR: u8 = 0x80;
/// 0x81: CONNACK, DISCONNECT.
pub const MALFORMED_PACKET: u8 = 0x81;
/// 0x82: CONNACK, DISCONNECT.
pub const PROTOCOL_ERROR: u8 = 0x82;
/// 0x83: CONNACK, PUBACK, PUBREC, SUBACK, UNSUBACK, DISCONNECT.
pub const IMPLEMENTATION_SPECIFIC_ERROR: u8 = 0x83;
/// 0x84: CONNACK.
pub const UNSUPPORTED_PROTOCOL_VERSION: u8 = 0x84;
/// 0x85: CONNACK.
pub const CLIENT_IDENTIFIER_NOT_VALID: u8 = 0x85;
/// 0x86: CONNACK.
pub const BAD_USER_NAME_OR_PASSWORD: u8 = 0x86;
/// 0x87: CONNACK, PUBACK, PUBREC, SUBACK, UNSUBACK, DISCONNECT.
pub const NOT_AUTHORIZED: u8 = 0x87;
/// 0x88: CONNACK.
pub const SERVER_UNAVAILABLE: u8 = 0x88;
/// 0x89: CONNACK, DISCONNECT.
pub const SERVER_BUSY: u8 = 0x89;
/// 0x8A: CONNACK.
pub const BANNED: u8 = 0x8a;
/// 0x8B: DISCONNECT.
pub const SERVER_SHUTTING_DOWN: u8 = 0x8b;
/// 0x8C: CONNACK, DISCONNECT.
pub const BAD_AUTHENTICATION_METHOD: u8 = 0x8c;
/// 0x8D: DISCONNECT.
pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8d;
/// 0x8E: DISCONNECT.
pub const SESSION_TAKEN_OVER: u8 = 0x8e;
/// 0x8F: SUBACK, UNSUBACK, DISCONNECT.
pub const TOPIC_FILTER_INVALID: u8 = 0x8f;
/// 0x90: CONNACK, PUBACK, PUBREC, DISCONNECT.
pub const TOPIC_NAME_INVALID: u8 = 0x90;
/// 0x91: PUBACK, PUBREC, SUBACK, UNSUBACK.
pub const PACKET_IDENTIFIER_IN_USE: u8 = 0x91;
/// 0x92: PUBREL, PUBCOMP.
pub const PACKET_IDENTIFIER_NOT_FOUND: u8 = 0x92;
/// 0x93: DISCONNECT.
pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
/// 0x94: DISCONNECT.
pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
/// 0x95: CONNACK, DISCONNECT.
pub const PACKET_TOO_LARGE: u8 = 0x95;
/// 0x96: DISCONNECT.
pub const MESSAGE_RATE_TOO_HIGH: u8 = 0x96;
/// 0x97: CONNACK, PUBACK, PUBREC, SUBACK, DISCONNECT.
pub const QUOTA_EXCEEDED: u8 = 0x97;
/// 0x98: DISCONNECT.
pub const ADMINISTRATIVE_ACTION: u8 = 0x98;
/// 0x99: CONNACK, PUBACK, PUBREC, DISCONNECT.
pub const PAYLOAD_FORMAT_INVALID: u8 = 0x99;
/// 0x9A: CONNACK, DISCONNECT.
pub const RETAIN_NOT_SUPPORTED: u8 = 0x9a;
/// 0x9B: CONNACK, DISCONNECT.
pub const QOS_NOT_SUPPORTED: u8 = 0x9b;
/// 0x9C: CONNACK, DISCONNECT.
pub const USE_ANOTHER_SERVER: u8 = 0x9c;
/// 0x9D: CONNACK, DISCONNECT.
pub const SERVER_MOVED: u8 = 0x9d;
/// 0x9E: SUBACK, DISCONNECT.
pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0x9e;
/// 0x9F: CONNACK, DISCONNECT.
pub const CONNECTION_RATE_EXCEEDED: u8 = 0x9f;
/// 0xA0: DISCONNECT.
pub const MAXIMUM_CONNECT_TIME: u8 = 0xa0;
/// 0xA1: SUBACK, DISCONNECT.
pub const SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: u8 = 0xa1;
/// 0xA2: SUBACK, DISCONNECT.
pub const WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0xa2;

/// The v3.1/v3.1.1 CONNACK return codes (v3.1.1 table 3.1).
pub mod v3 {
    /// 0x00: connection accepted.
    pub const ACCEPTED: u8 = 0x00;
    /// 0x01: the server does not support the requested protocol level.
    pub const UNACCEPTABLE_PROTOCOL_VERSION: u8 = 0x01;
    /// 0x02: the client identifier is not allowed.
    pub const IDENTIFIER_REJECTED: u8 = 0x02;
    /// 0x03: the MQTT service is unavailable.
    pub const SERVER_UNAVAILABLE: u8 = 0x03;
    /// 0x04: the user name or password is malformed or wrong.
    pub const BAD_USERNAME_OR_PASSWORD: u8 = 0x04;
    /// 0x05: the client is not authorized to connect.
    pub const NOT_AUTHORIZED: u8 = 0x05;
    /// 0x80: SUBACK failure return code.
    pub const SUBACK_FAILURE: u8 = 0x80;
}

/// The v5 reason code to send (CONNACK or DISCONNECT) before closing for a decode error.
pub fn for_error(e: Error) -> u8 {
    match e {
        Error::Malformed(_) => MALFORMED_PACKET,
        // [MQTT-3.3.2-8] a Topic Alias of 0 is its own reason.
        Error::Protocol(super::property::TOPIC_ALIAS_NAME) => TOPIC_ALIAS_INVALID,
        Error::Protocol(_) => PROTOCOL_ERROR,
        Error::TooLarge => PACKET_TOO_LARGE,
        // [MQTT-3.1.2-2]: CONNACK 0x84 then close.
        Error::UnsupportedProtocolVersion => UNSUPPORTED_PROTOCOL_VERSION,
        // [MQTT-3.1.2-1]: no CONNACK is sent for it; closing is all.
        Error::BadProtocolName => MALFORMED_PACKET,
    }
}

/// The Reason String sent with a failed PUBACK/PUBREC/PUBREL/PUBCOMP `code` (only with
/// codes of 0x80 and above: success codes carry none).
pub fn ack_reason_string(code: u8) -> &'static str {
    match code {
        NOT_AUTHORIZED => "not authorized to publish to this topic",
        PAYLOAD_FORMAT_INVALID => "payload is not valid UTF-8",
        PACKET_TOO_LARGE => "payload over the broker's message size limit",
        PACKET_IDENTIFIER_NOT_FOUND => "packet identifier not found",
        TOPIC_NAME_INVALID => "topic name over the broker's length or level bound",
        _ => "refused",
    }
}

/// The v3 CONNACK return code for a v5 CONNACK reason code.
pub fn connack_v3(code: u8) -> u8 {
    match code {
        SUCCESS => v3::ACCEPTED,
        UNSUPPORTED_PROTOCOL_VERSION => v3::UNACCEPTABLE_PROTOCOL_VERSION,
        CLIENT_IDENTIFIER_NOT_VALID => v3::IDENTIFIER_REJECTED,
        BAD_USER_NAME_OR_PASSWORD => v3::BAD_USERNAME_OR_PASSWORD,
        NOT_AUTHORIZED | BANNED => v3::NOT_AUTHORIZED,
        // SERVER_UNAVAILABLE, SERVER_BUSY, SERVER_SHUTTING_DOWN and every other failure.
        _ => v3::SERVER_UNAVAILABLE,
    }
}

/// The v3 SUBACK return code for a v5 SUBACK reason code (granted QoS kept, any failure
/// 0x80) [MQTT-3.9.3-2].
pub fn suback_v3(code: u8) -> u8 {
    match code {
        GRANTED_QOS_0 | GRANTED_QOS_1 | GRANTED_QOS_2 => code,
        _ => v3::SUBACK_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_reason_codes() {
        assert_eq!(for_error(Error::Malformed("topic")), 0x81);
        assert_eq!(for_error(Error::Protocol("packet id")), 0x82);
        assert_eq!(for_error(Error::TooLarge), 0x95);
        assert_eq!(for_error(Error::UnsupportedProtocolVersion), 0x84);
        assert_eq!(for_error(Error::BadProtocolName), 0x81);
    }

    #[test]
    fn connack_codes_map_to_v3() {
        let cases = [
            (0x00, 0),
            (0x84, 1),
            (0x85, 2),
            (0x86, 4),
            (0x87, 5),
            (0x8a, 5),
            (0x88, 3),
            (0x89, 3),
            (0x8b, 3),
            (0x80, 3),
            (0x97, 3),
        ];
        for (v5, v3) in cases {
            assert_eq!(connack_v3(v5), v3, "{v5:#04x}");
        }
    }

    #[test]
    fn suback_codes_map_to_v3() {
        assert_eq!(suback_v3(0), 0);
        assert_eq!(suback_v3(1), 1);
        assert_eq!(suback_v3(2), 2);
        assert_eq!(suback_v3(0x87), 0x80);
        assert_eq!(suback_v3(0xa2), 0x80);
    }
}
