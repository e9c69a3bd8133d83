//! Hooks: an embedding program's say over who connects and what is published, on top of
//! the file-based checks (`password_file`, `acl_file`, dynamic security), which stay the
//! default: a hook is handed what the files decided and returns it unless it decides
//! otherwise. Hooks run on the broker's thread, inside the handler, so they must not block
//! the loop: one that needs I/O answers later (`auth/defer.rs`). The authentication hook
//! also carries MQTT 5 enhanced authentication (AUTH exchanges at connect and
//! re-authentication), and the intercept hook may rewrite a PUBLISH's properties.

#![deny(missing_docs)]

use crate::auth::defer::Defer;
#[cfg(doc)]
use crate::auth::defer::Later;
use crate::auth::{Access, AuthResult};
use crate::wire::{Properties, QoS};

/// The User Property identifier (v5 3.3.2.3.7).
const USER_PROPERTY: u8 = 0x26;

/// A CONNECT's credentials, as an [`Authenticate`] hook sees them.
#[derive(Clone, Copy, Debug)]
pub struct Credentials<'a> {
    /// The client identifier (after `use_username_as_clientid` and assignment).
    pub client_id: &'a str,
    /// The username from CONNECT, or the client certificate's name with
    /// `use_identity_as_username`/`use_subject_as_username`.
    pub username: Option<&'a str>,
    /// The password from CONNECT.
    pub password: Option<&'a [u8]>,
    /// The listener (index in `Config::listeners`) the client came through.
    pub listener: u16,
    /// The MQTT 5 Authentication Method, for enhanced authentication (v5 4.12).
    pub method: Option<&'a str>,
    /// The Authentication Data of the CONNECT or AUTH this step answers.
    pub data: Option<&'a [u8]>,
    /// Which step of authentication this is.
    pub stage: Stage,
}

/// Where an authentication step comes from.
///
/// ```
/// assert_ne!(pipit::auth::hooks::Stage::Connect, pipit::auth::hooks::Stage::Reauthenticate);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The CONNECT.
    Connect,
    /// The client's AUTH 0x18 (Continue authentication), answering the broker's.
    Continue,
    /// A connected client's AUTH 0x19 (Re-authenticate) [MQTT-4.12.1-1].
    Reauthenticate,
}

/// An [`Authenticate`] hook's answer to one step of authentication.
///
/// ```
/// use pipit::auth::{AuthResult, hooks::Step};
/// let challenge = Step::Continue(b"nonce".to_vec());
/// assert_ne!(challenge, Step::Done(AuthResult::Ok));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Decided: `Ok` lets the client in (or, re-authenticating, on), otherwise CONNACK
    /// 0x86/0x87 (3.1.1 0x04/0x05), or DISCONNECT with that code when re-authenticating.
    Done(AuthResult),
    /// Accepted, with Authentication Data for the client in the CONNACK (or in the AUTH
    /// 0x00 that ends a re-authentication).
    Success(Vec<u8>),
    /// Enhanced authentication goes on: the broker sends AUTH 0x18 with the method and
    /// this data, and the client's AUTH 0x18 comes back as the next step
    /// ([`Stage::Continue`]).
    Continue(Vec<u8>),
    /// The Authentication Method is not one the hook knows: CONNACK (or DISCONNECT) 0x8C.
    BadMethod,
    /// The answer comes later, through the [`Later`] taken from the [`Defer`].
    Later,
}

/// Decides whether a client may connect.
///
/// ```
/// use pipit::auth::AuthResult;
/// use pipit::auth::hooks::{Authenticate, Credentials};
///
/// /// Lets in only usernames that start with "dev-", whatever the password file says.
/// struct Devices;
/// impl Authenticate for Devices {
///     fn authenticate(&mut self, c: &Credentials<'_>, _files: AuthResult) -> AuthResult {
///         match c.username {
///             Some(u) if u.starts_with("dev-") => AuthResult::Ok,
///             _ => AuthResult::NotAuthorized,
///         }
///     }
/// }
/// let hooks = pipit::auth::hooks::Hooks { authenticate: Some(Box::new(Devices)), ..Default::default() };
/// # drop(hooks);
/// ```
pub trait Authenticate: Send {
    /// The verdict for `credentials`; `files` is what the password file, dynamic security
    /// or the client certificate decided (`Ok` without any of them and with
    /// `allow_anonymous`). The default returns it.
    fn authenticate(&mut self, credentials: &Credentials<'_>, files: AuthResult) -> AuthResult {
        let _ = credentials;
        files
    }

    /// One step of authentication, which may be MQTT 5 enhanced authentication (a
    /// `credentials.method`) and may be answered later (take `defer.later()` and return
    /// [`Step::Later`]). The default knows no method (CONNACK 0x8C, as without a hook
    /// [MQTT-4.12.0-1]) and otherwise asks [`Authenticate::authenticate`] at once.
    ///
    /// ```
    /// use pipit::auth::AuthResult;
    /// use pipit::auth::defer::Defer;
    /// use pipit::auth::hooks::{Authenticate, Credentials, Stage, Step};
    ///
    /// /// Method "TOY": the client proves it knows the secret by echoing the challenge.
    /// struct Toy;
    /// impl Authenticate for Toy {
    ///     fn step(&mut self, c: &Credentials<'_>, _files: AuthResult, _defer: Defer<'_, Step>) -> Step {
    ///         match (c.method, c.stage, c.data) {
    ///             (Some("TOY"), Stage::Connect | Stage::Reauthenticate, _) => Step::Continue(b"challenge".to_vec()),
    ///             (Some("TOY"), Stage::Continue, Some(b"challenge")) => Step::Success(b"welcome".to_vec()),
    ///             (Some("TOY"), Stage::Continue, _) => Step::Done(AuthResult::NotAuthorized),
    ///             (Some(_), _, _) => Step::BadMethod,
    ///             (None, _, _) => Step::Done(AuthResult::Ok),
    ///         }
    ///     }
    /// }
    /// ```
    fn step(
        &mut self,
        credentials: &Credentials<'_>,
        files: AuthResult,
        defer: Defer<'_, Step>,
    ) -> Step {
        let _ = defer;
        if credentials.method.is_some() {
            return Step::BadMethod;
        }
        Step::Done(self.authenticate(credentials, files))
    }
}

/// One access check, as an [`Authorize`] hook sees it.
#[derive(Clone, Copy, Debug)]
pub struct Authorization<'a> {
    /// The client identifier.
    pub client_id: &'a str,
    /// The username it authenticated with.
    pub username: Option<&'a str>,
    /// The listener (index in `Config::listeners`) it came through.
    pub listener: u16,
    /// The topic name (`Read`, `Write`) or filter (`Subscribe`, `Unsubscribe`; a shared
    /// subscription's without its `$share/GROUP/` prefix).
    pub topic: &'a str,
    /// What the client wants: publish (`Write`), subscribe, unsubscribe, or receive a
    /// message (`Read`, checked per delivery).
    pub access: Access,
}

/// Decides what a client may publish, subscribe to and receive, on top of the ACL file or
/// dynamic security. Called on the broker's thread for every check (per delivery for
/// `Read`), so it must be quick; it takes `&self` because checks happen while the broker's
/// state is only read (keep counters in atomics or a `Cell`-free structure of your own).
/// Topics only the broker publishes (`$SYS`) stay closed to clients' writes whatever it
/// says; bridges are not asked about.
///
/// ```
/// use pipit::auth::Access;
/// use pipit::auth::hooks::{Authorization, Authorize};
///
/// /// Read-only users are those whose name ends in "-ro".
/// struct ReadOnly;
/// impl Authorize for ReadOnly {
///     fn authorize(&self, a: &Authorization<'_>, files: bool) -> bool {
///         let read_only = a.username.is_some_and(|u| u.ends_with("-ro"));
///         files && !(read_only && a.access == Access::Write)
///     }
/// }
/// let hooks = pipit::auth::hooks::Hooks { authorize: Some(Box::new(ReadOnly)), ..Default::default() };
/// # drop(hooks);
/// ```
pub trait Authorize: Send {
    /// Whether the access `request` describes is allowed; `files` is what the ACL file or
    /// dynamic security decided (`true` without either). The default returns it.
    fn authorize(&self, request: &Authorization<'_>, files: bool) -> bool {
        let _ = request;
        files
    }

    /// Asked instead of [`Authorize::authorize`] for a client's PUBLISH (`Write`),
    /// SUBSCRIBE and UNSUBSCRIBE, which may wait: `Some` answers now; `None`, after taking
    /// `defer.later()`, answers later, and the client's packets wait in order meanwhile.
    /// Deliveries (`Read`) are checked per message and cannot wait. The default asks
    /// `authorize` at once.
    ///
    /// ```
    /// use pipit::auth::defer::Defer;
    /// use pipit::auth::hooks::{Authorization, Authorize};
    ///
    /// /// Lets a policy thread decide who may publish to `billing/#`.
    /// struct Billing(std::sync::mpsc::Sender<(String, pipit::auth::defer::Later<bool>)>);
    /// impl Authorize for Billing {
    ///     fn authorize_later(&self, a: &Authorization<'_>, files: bool, defer: Defer<'_, bool>) -> Option<bool> {
    ///         if !files || !a.topic.starts_with("billing/") {
    ///             return Some(files);
    ///         }
    ///         self.0.send((a.client_id.to_owned(), defer.later())).ok()?;
    ///         None
    ///     }
    /// }
    /// ```
    fn authorize_later(
        &self,
        request: &Authorization<'_>,
        files: bool,
        defer: Defer<'_, bool>,
    ) -> Option<bool> {
        let _ = defer;
        Some(self.authorize(request, files))
    }
}

/// A PUBLISH an [`Intercept`] hook sees: accepted by the ACL, not yet routed.
#[derive(Clone, Copy, Debug)]
pub struct Intercepted<'a> {
    /// The publisher's client identifier.
    pub client_id: &'a str,
    /// The publisher's username.
    pub username: Option<&'a str>,
    /// The topic (aliases resolved).
    pub topic: &'a str,
    /// The payload.
    pub payload: &'a [u8],
    /// The QoS it was published with.
    pub qos: QoS,
    /// The retain flag.
    pub retain: bool,
    /// Its MQTT 5 properties (empty for MQTT 3 publishers).
    pub properties: &'a Properties<'a>,
}

/// What becomes of an intercepted PUBLISH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Route it as it is.
    Keep,
    /// Drop it: it is acknowledged to the publisher (success) and reaches nobody.
    Drop,
    /// Route this topic and payload instead, and these properties if given (the QoS and
    /// retain flag stay). A topic or response topic that is not a valid topic name, a
    /// payload declared UTF-8 that is not, or a user property over 65,535 bytes drops the
    /// message.
    Rewrite {
        /// The topic to publish on.
        topic: String,
        /// The payload to publish.
        payload: Vec<u8>,
        /// The properties subscribers receive instead of the publisher's (`None` keeps
        /// them). They reach MQTT 5 subscribers only, as any property does.
        properties: Option<PublishProperties>,
    },
}

/// The properties of a PUBLISH that travel to subscribers, owned, for an [`Intercept`] hook
/// to rewrite (v5 3.3.2.3).
///
/// ```
/// use pipit::auth::hooks::PublishProperties;
/// use pipit::wire::Properties;
///
/// let mut p = PublishProperties::of(&Properties { content_type: Some("text/plain"), ..Properties::default() });
/// p.user_properties.push(("site".into(), "7".into()));
/// p.message_expiry_interval = Some(60);
/// assert_eq!(p.content_type.as_deref(), Some("text/plain"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// 0x01 Payload Format Indicator: 1 for a UTF-8 payload.
    pub payload_format_indicator: Option<u8>,
    /// 0x02 Message Expiry Interval in seconds, counted from when the broker routes it.
    pub message_expiry_interval: Option<u32>,
    /// 0x03 Content Type.
    pub content_type: Option<String>,
    /// 0x08 Response Topic.
    pub response_topic: Option<String>,
    /// 0x09 Correlation Data.
    pub correlation_data: Option<Vec<u8>>,
    /// 0x26 User Properties, in order.
    pub user_properties: Vec<(String, String)>,
}

impl PublishProperties {
    /// An owned copy of what `properties` says of these fields.
    ///
    /// ```
    /// let p = pipit::auth::hooks::PublishProperties::of(&pipit::wire::Properties::default());
    /// assert_eq!(p, Default::default());
    /// ```
    pub fn of(properties: &Properties<'_>) -> PublishProperties {
        PublishProperties {
            payload_format_indicator: properties.payload_format_indicator,
            message_expiry_interval: properties.message_expiry_interval,
            content_type: properties.content_type.map(str::to_owned),
            response_topic: properties.response_topic.map(str::to_owned),
            correlation_data: properties.correlation_data.map(<[u8]>::to_vec),
            user_properties: (properties.user_properties.iter())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// The user properties as an encoded block (`UserProperties::new` wraps it), or `None`
    /// if a key or value is too long for an MQTT string.
    pub(crate) fn encoded_user_properties(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for (key, value) in &self.user_properties {
            out.push(USER_PROPERTY);
            for s in [key, value] {
                // An MQTT string is a two-byte length then the bytes (v5 1.5.4).
                out.extend_from_slice(&u16::try_from(s.len()).ok()?.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
        Some(out)
    }

    /// These properties as the codec's borrowed form, with `user_properties` the block
    /// `encoded_user_properties` returned.
    pub(crate) fn borrowed<'a>(&'a self, user_properties: &'a [u8]) -> Properties<'a> {
        Properties {
            payload_format_indicator: self.payload_format_indicator,
            message_expiry_interval: self.message_expiry_interval,
            content_type: self.content_type.as_deref(),
            response_topic: self.response_topic.as_deref(),
            correlation_data: self.correlation_data.as_deref(),
            user_properties: crate::wire::UserProperties::new(user_properties),
            ..Properties::default()
        }
    }
}

/// Sees every PUBLISH before it is routed, and every connect and disconnect.
///
/// ```
/// use pipit::auth::hooks::{Intercept, Intercepted, Verdict};
///
/// /// Drops debug chatter and prefixes everything else with the site name.
/// struct Site;
/// impl Intercept for Site {
///     fn on_publish(&mut self, p: &Intercepted<'_>) -> Verdict {
///         if p.topic.starts_with("debug/") {
///             return Verdict::Drop;
///         }
///         Verdict::Rewrite {
///             topic: format!("site-7/{}", p.topic),
///             payload: p.payload.to_vec(),
///             properties: None,
///         }
///     }
/// }
/// let hooks = pipit::auth::hooks::Hooks { intercept: Some(Box::new(Site)), ..Default::default() };
/// # drop(hooks);
/// ```
pub trait Intercept: Send {
    /// What to do with `publish`; the default routes it unchanged. Not called for the
    /// broker's own messages (`$SYS`, wills, retained messages already stored) or for
    /// `$CONTROL/` requests.
    fn on_publish(&mut self, publish: &Intercepted<'_>) -> Verdict {
        let _ = publish;
        Verdict::Keep
    }

    /// A client connected (its CONNACK is on its way).
    fn on_connect(&mut self, client_id: &str, username: Option<&str>) {
        let _ = (client_id, username);
    }

    /// A connected client's connection closed, for whatever reason.
    fn on_disconnect(&mut self, client_id: &str) {
        let _ = client_id;
    }
}

/// The hooks a broker runs; none by default (the file-based checks alone).
///
/// ```
/// let hooks = pipit::auth::hooks::Hooks::default();
/// assert!(hooks.authenticate.is_none() && hooks.authorize.is_none() && hooks.intercept.is_none());
/// ```
#[derive(Default)]
pub struct Hooks {
    /// Decides who connects.
    pub authenticate: Option<Box<dyn Authenticate>>,
    /// Decides what a client may publish, subscribe to and receive.
    pub authorize: Option<Box<dyn Authorize>>,
    /// Sees and may change every PUBLISH, connect and disconnect.
    pub intercept: Option<Box<dyn Intercept>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("authenticate", &self.authenticate.is_some())
            .field("authorize", &self.authorize.is_some())
            .field("intercept", &self.intercept.is_some())
            .finish()
    }
}
