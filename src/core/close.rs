//! `Close`: every reason the broker closes a connection, and the one table from each to
//! what the client is told (the MQTT 5 DISCONNECT reason code and Reason String), what the
//! log says, whether the will is published and whether the socket lingers. Reason codes
//! themselves, and the codec's errors' codes, are in `wire::reason`.

use crate::wire::reason;

/// Why the broker closes a connection; decides the log line, the v5 DISCONNECT reason and
/// whether the will is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// The client sent DISCONNECT; `with_will` for v5 reason 0x04.
    ClientDisconnect {
        /// Whether the client asked for its will to be published anyway.
        with_will: bool,
    },
    /// The peer closed the socket without DISCONNECT.
    PeerClosed,
    /// A socket error other than would-block.
    Io(std::io::ErrorKind),
    /// The TLS handshake failed or a TLS record was bad (`Stream::tls_failure` says why).
    Tls,
    /// The WebSocket layer ended the connection: a bad frame (a close frame with its status
    /// is sent), a refused request head, or a plain HTTP request answered; names which.
    WebSocket(&'static str),
    /// The bytes could not be decoded.
    Decode(crate::wire::Error),
    /// A well-formed packet broke a rule of the protocol; names the rule.
    Protocol(&'static str),
    /// CONNECT was refused; the CONNACK carrying the reason is already queued.
    Refused,
    /// Nothing arrived within one and a half keepalive periods.
    KeepAliveTimeout,
    /// No CONNECT arrived within the connect timeout.
    ConnectTimeout,
    /// Another connection connected with the same client id.
    TakenOver,
    /// The broker is shutting down.
    Shutdown,
    /// An MQTT 5 rule with its own DISCONNECT reason code (e.g. 0x93, 0x94, 0x99); the text
    /// is for the log.
    Reason(u8, &'static str),
}

impl Close {
    /// Whether the will message is published: on every close but a normal DISCONNECT
    /// [MQTT-3.1.2-8] [MQTT-3.1.2-10].
    pub fn publishes_will(self) -> bool {
        !matches!(self, Close::ClientDisconnect { with_will: false })
    }
}

impl Close {
    /// Whether the broker chose to close, so the client may still be sending and must be
    /// given the chance to read the reason before the socket closes (`linger`).
    pub fn lingers(self) -> bool {
        matches!(
            self,
            Close::Decode(_)
                | Close::Protocol(_)
                | Close::Refused
                | Close::KeepAliveTimeout
                | Close::ConnectTimeout
                | Close::TakenOver
                | Close::Reason(..)
                | Close::WebSocket(_)
        )
    }

    /// The reason code of the MQTT 5 DISCONNECT the broker sends for this close; `None`
    /// when there is nothing to say (the client closed, or cannot be reached).
    pub fn disconnect_code(self) -> Option<u8> {
        Some(match self {
            Close::Decode(e) => reason::for_error(e),
            Close::Protocol(_) => reason::PROTOCOL_ERROR,
            Close::KeepAliveTimeout => reason::KEEP_ALIVE_TIMEOUT,
            Close::TakenOver => reason::SESSION_TAKEN_OVER,
            Close::Shutdown => reason::SERVER_SHUTTING_DOWN,
            Close::Reason(code, _) => code,
            Close::ClientDisconnect { .. }
            | Close::PeerClosed
            | Close::Io(_)
            | Close::Tls
            | Close::WebSocket(_)
            | Close::Refused
            | Close::ConnectTimeout => return None,
        })
    }

    /// A short human-readable reason, for a v5 DISCONNECT's Reason String.
    pub fn reason_string(self) -> &'static str {
        match self {
            Close::ClientDisconnect { .. } => "client disconnected",
            Close::PeerClosed => "connection closed by peer",
            Close::Io(_) => "socket error",
            Close::Decode(crate::wire::Error::Malformed(field)) => field,
            Close::Decode(crate::wire::Error::Protocol(rule)) => rule,
            Close::Decode(crate::wire::Error::TooLarge) => "packet too large",
            Close::Decode(_) => "unsupported protocol",
            Close::Protocol(rule) => rule,
            Close::Refused => "connection refused",
            Close::KeepAliveTimeout => "keepalive timeout",
            Close::ConnectTimeout => "no CONNECT in time",
            Close::TakenOver => "session taken over",
            Close::Shutdown => "server shutting down",
            Close::Reason(_, why) => why,
            Close::Tls => "TLS error",
            Close::WebSocket(why) => why,
        }
    }
}

impl std::fmt::Display for Close {
    /// The log form: the Reason String, with the detail a log line can afford.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Close::Io(kind) => write!(f, "socket error: {kind}"),
            Close::Decode(e) => e.fmt(f),
            Close::Protocol(rule) => write!(f, "protocol error: {rule}"),
            Close::Reason(code, why) => write!(f, "{why} (reason {code:#04x})"),
            other => f.write_str(other.reason_string()),
        }
    }
}
