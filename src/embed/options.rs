//! What a local client is made with: its options (`LocalOptions`), the messages it sends
//! (`Outgoing`), and how a call fails (`LocalError`).

use std::time::Duration;

use crate::net::local::Notify;
use crate::wire::{Properties, QoS};

/// Why a local client call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalError {
    /// The connection is closed (the broker refused or closed it, or shut down).
    Closed,
    /// No answer within the client's timeout.
    Timeout,
    /// The broker answered with this error reason code (0x80 and up): a refused CONNECT,
    /// PUBLISH (0x87 not authorized, 0x97 quota exceeded, ...).
    Refused(u8),
    /// The local client could not be started (no such listener, or the broker stopped).
    Unavailable,
}

impl std::fmt::Display for LocalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalError::Closed => f.write_str("the local client's connection is closed"),
            LocalError::Timeout => f.write_str("no answer from the broker in time"),
            LocalError::Refused(code) => write!(f, "refused by the broker (reason {code:#04x})"),
            LocalError::Unavailable => f.write_str("the broker cannot take a local client"),
        }
    }
}

impl std::error::Error for LocalError {}

/// The will of a local client, published if it goes away without
/// [`LocalClient::disconnect`](crate::embed::LocalClient::disconnect) (dropped) or when the broker shuts down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalWill {
    /// Topic to publish on.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS to publish with.
    pub qos: QoS,
    /// Whether it is retained.
    pub retain: bool,
}

/// How a local client connects.
///
/// ```
/// use pipit::embed::LocalOptions;
/// let options = LocalOptions::new("gateway")
///     .login("gw", b"secret")
///     .session(false, 3600)
///     .timeout(std::time::Duration::from_secs(2));
/// assert_eq!(options.client_id, "gateway");
/// ```
#[derive(Clone)]
pub struct LocalOptions {
    /// The client identifier; empty asks the broker to assign one.
    pub client_id: String,
    /// Clean Start: discard a stored session of the same client id.
    pub clean_start: bool,
    /// Session Expiry Interval in seconds (0: the session ends with the client).
    pub session_expiry_interval: u32,
    /// Username, checked like a network client's (password file, dynamic security).
    pub username: Option<String>,
    /// Password.
    pub password: Option<Vec<u8>>,
    /// The will.
    pub will: Option<LocalWill>,
    /// The listener (by index in `Config::listeners`) whose security settings apply, with
    /// `per_listener_settings`; 0 by default.
    pub listener: usize,
    /// How long a blocking call waits for the broker's answer.
    pub timeout: Duration,
    /// Called on the broker's thread each time output is handed to the client, e.g. to wake
    /// the embedder's own event loop; it must not block.
    pub on_output: Option<Notify>,
}

impl std::fmt::Debug for LocalOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalOptions")
            .field("client_id", &self.client_id)
            .field("clean_start", &self.clean_start)
            .field("username", &self.username)
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl LocalOptions {
    /// Options for `client_id`: clean start, no session kept, no login, no will, listener 0,
    /// a 10 s timeout.
    ///
    /// ```
    /// let options = pipit::embed::LocalOptions::new("");
    /// assert!(options.clean_start);
    /// ```
    pub fn new(client_id: &str) -> LocalOptions {
        LocalOptions {
            client_id: client_id.to_owned(),
            clean_start: true,
            session_expiry_interval: 0,
            username: None,
            password: None,
            will: None,
            listener: 0,
            timeout: Duration::from_secs(10),
            on_output: None,
        }
    }

    /// With a username and password.
    ///
    /// ```
    /// let options = pipit::embed::LocalOptions::new("c").login("user", b"pw");
    /// assert_eq!(options.username.as_deref(), Some("user"));
    /// ```
    pub fn login(mut self, username: &str, password: &[u8]) -> LocalOptions {
        self.username = Some(username.to_owned());
        self.password = Some(password.to_vec());
        self
    }

    /// With Clean Start and a Session Expiry Interval in seconds.
    ///
    /// ```
    /// let options = pipit::embed::LocalOptions::new("c").session(false, 60);
    /// assert_eq!((options.clean_start, options.session_expiry_interval), (false, 60));
    /// ```
    pub fn session(mut self, clean_start: bool, expiry_interval: u32) -> LocalOptions {
        self.clean_start = clean_start;
        self.session_expiry_interval = expiry_interval;
        self
    }

    /// With a will.
    ///
    /// ```
    /// use pipit::wire::QoS;
    /// let options = pipit::embed::LocalOptions::new("c").will("gone/c", b"1", QoS::AtMostOnce, false);
    /// assert_eq!(options.will.map(|w| w.topic), Some("gone/c".to_owned()));
    /// ```
    pub fn will(mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool) -> LocalOptions {
        self.will = Some(LocalWill {
            topic: topic.to_owned(),
            payload: payload.to_vec(),
            qos,
            retain,
        });
        self
    }

    /// With the security settings of listener `index`.
    ///
    /// ```
    /// assert_eq!(pipit::embed::LocalOptions::new("c").listener(1).listener, 1);
    /// ```
    pub fn listener(mut self, index: usize) -> LocalOptions {
        self.listener = index;
        self
    }

    /// With a timeout for blocking calls.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = pipit::embed::LocalOptions::new("c").timeout(Duration::from_secs(1));
    /// assert_eq!(options.timeout, Duration::from_secs(1));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> LocalOptions {
        self.timeout = timeout;
        self
    }

    /// With a function the broker's thread calls whenever it hands the client output.
    ///
    /// ```
    /// let options = pipit::embed::LocalOptions::new("c").on_output(|| {});
    /// assert!(options.on_output.is_some());
    /// ```
    pub fn on_output(mut self, notify: impl Fn() + Send + Sync + 'static) -> LocalOptions {
        self.on_output = Some(std::sync::Arc::new(notify));
        self
    }
}

/// A PUBLISH a local client sends.
///
/// ```
/// use pipit::embed::Outgoing;
/// use pipit::wire::QoS;
/// let message = Outgoing::new("a/b", b"on").qos(QoS::ExactlyOnce).retain(true);
/// assert_eq!((message.qos, message.retain), (QoS::ExactlyOnce, true));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Outgoing<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Payload.
    pub payload: &'a [u8],
    /// QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// MQTT 5 properties.
    pub properties: Properties<'a>,
}

impl<'a> Outgoing<'a> {
    /// A QoS 0, non-retained message without properties.
    ///
    /// ```
    /// let message = pipit::embed::Outgoing::new("t", b"x");
    /// assert_eq!(message.qos, pipit::wire::QoS::AtMostOnce);
    /// ```
    pub fn new(topic: &'a str, payload: &'a [u8]) -> Outgoing<'a> {
        Outgoing {
            topic,
            payload,
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::default(),
        }
    }

    /// With QoS `qos`.
    ///
    /// ```
    /// let message = pipit::embed::Outgoing::new("t", b"x").qos(pipit::wire::QoS::AtLeastOnce);
    /// assert_eq!(message.qos, pipit::wire::QoS::AtLeastOnce);
    /// ```
    pub fn qos(mut self, qos: QoS) -> Outgoing<'a> {
        self.qos = qos;
        self
    }

    /// With the retain flag.
    ///
    /// ```
    /// assert!(pipit::embed::Outgoing::new("t", b"x").retain(true).retain);
    /// ```
    pub fn retain(mut self, retain: bool) -> Outgoing<'a> {
        self.retain = retain;
        self
    }

    /// With MQTT 5 properties.
    ///
    /// ```
    /// use pipit::wire::Properties;
    /// let properties = Properties { message_expiry_interval: Some(60), ..Properties::default() };
    /// let message = pipit::embed::Outgoing::new("t", b"x").properties(properties);
    /// assert_eq!(message.properties.message_expiry_interval, Some(60));
    /// ```
    pub fn properties(mut self, properties: Properties<'a>) -> Outgoing<'a> {
        self.properties = properties;
        self
    }
}
