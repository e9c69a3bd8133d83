//! Hooks: an embedding program's say over who connects and what is published, on top of
//! the file-based checks (`password_file`, `acl_file`, dynamic security), which stay the
//! default: a hook is handed what the files decided and returns it unless it decides
//! otherwise. Hooks run on the broker's thread, inside the handler, so they must answer
//! at once (no I/O that can block the loop).

#![deny(missing_docs)]

use crate::auth::{Access, AuthResult};
use crate::wire::{Properties, QoS};

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
    /// Route this topic and payload instead (the QoS, retain flag and properties stay). A
    /// topic that is not a valid topic name drops the message.
    Rewrite {
        /// The topic to publish on.
        topic: String,
        /// The payload to publish.
        payload: Vec<u8>,
    },
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
///         Verdict::Rewrite { topic: format!("site-7/{}", p.topic), payload: p.payload.to_vec() }
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
