//! Authentication and authorisation: who may connect (password file, anonymous access,
//! dynamic security) and what they may do (ACL file, dynamic security), as Mosquitto 2's
//! built-in security and its dynamic security plugin do it.
//!
//! One `Auth` serves the connections of one listener with `per_listener_settings`, or all of
//! them otherwise (`Config::security_for` gives the settings). Invariant: an `Auth` always holds
//! files that parsed completely; `reload` swaps in new ones only when they all load. The
//! dynamic security data (`dynsec::Dynsec`) is one for the broker, held by `State` and lent
//! to the checks of the listeners that use it; SIGHUP does not reload it (nor does
//! Mosquitto reload plugins).

pub mod passwd;

pub mod acl;
pub mod defer;
pub mod dynsec;
pub mod hooks;
pub mod password;

pub use acl::{Access, AclFile};
pub use dynsec::{Decision, Dynsec};
pub use password::PasswordFile;

use crate::config::{ConfigError, SecurityConfig};

/// Whether only the broker may publish to `topic`, whatever the ACL says: every topic that
/// starts with `$SYS` (`$SYSTEM/x` too, as Mosquitto compares the first four characters),
/// except a Mosquitto bridge's connection notification `$SYS/broker/connection/NAME/state`,
/// which Mosquitto lets clients publish (the ACL still applies to it).
pub fn broker_only(topic: &str) -> bool {
    if !topic.starts_with("$SYS") {
        return false;
    }
    let bridge_state = topic
        .strip_prefix("$SYS/broker/connection/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, last)| last == "state");
    !bridge_state
}

/// The outcome of checking a CONNECT's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthResult {
    /// The client may connect.
    Ok,
    /// Unknown username or wrong password: CONNACK 0x04 (v3) / 0x86 (v5).
    BadCredentials,
    /// The client may not connect at all (e.g. anonymous when not allowed):
    /// CONNACK 0x05 (v3) / 0x87 (v5).
    NotAuthorized,
}

/// The loaded security state of one listener (or of the broker).
pub struct Auth {
    passwords: Option<PasswordFile>,
    acl: Option<AclFile>,
    allow_anonymous: bool,
    /// Whether the dynamic security plugin is consulted (first, as Mosquitto loads plugins
    /// before the password and ACL files).
    dynsec: bool,
}

impl Auth {
    /// Loads the password and ACL files `security` names; errors carry `FILE:LINE`.
    pub fn load(security: &SecurityConfig) -> Result<Auth, ConfigError> {
        let passwords = security
            .password_file
            .as_deref()
            .map(PasswordFile::load)
            .transpose()?;
        let acl = security
            .acl_file
            .as_deref()
            .map(AclFile::load)
            .transpose()?;
        Ok(Auth {
            passwords,
            acl,
            allow_anonymous: security.allow_anonymous,
            dynsec: security.dynsec.is_some(),
        })
    }

    /// Reloads from `security` (SIGHUP) and returns the state it replaced; on error the
    /// current state is kept unchanged.
    pub fn reload(&mut self, security: &SecurityConfig) -> Result<Auth, ConfigError> {
        Ok(std::mem::replace(self, Auth::load(security)?))
    }

    /// Checks a CONNECT's username and password (`dynsec`: the broker's dynamic security
    /// data, consulted if this listener uses it).
    ///
    /// Without dynamic security: without a username, allowed only with `allow_anonymous`.
    /// With one: checked against the password file if there is one (a missing password never
    /// matches); without a password file the username is not checked, and the client is
    /// refused unless `allow_anonymous` (Mosquitto 2: no password file and no anonymous
    /// access refuses every client).
    ///
    /// With dynamic security, as Mosquitto 2.0 chains its checks: the plugin allows or
    /// refuses a client it knows with a password; for any other the password file decides
    /// if there is one; if nothing decided, only a client without a username is let in, and
    /// only with `allow_anonymous`. Every refusal is "not authorised", as in Mosquitto.
    pub fn authenticate(
        &self,
        dynsec: Option<&Dynsec>,
        client_id: &str,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> AuthResult {
        let Some(dynsec) = dynsec.filter(|_| self.dynsec) else {
            return self.authenticate_files(username, password);
        };
        match dynsec.authenticate(username, password, client_id) {
            Decision::Allow => return AuthResult::Ok,
            Decision::Deny => return AuthResult::NotAuthorized,
            Decision::Defer => {}
        }
        match (username, &self.passwords) {
            (Some(username), Some(passwords)) => {
                match password.is_some_and(|p| passwords.check(username, p)) {
                    true => AuthResult::Ok,
                    false => AuthResult::NotAuthorized,
                }
            }
            (None, _) if self.allow_anonymous => AuthResult::Ok,
            _ => AuthResult::NotAuthorized,
        }
    }

    /// `authenticate` without dynamic security.
    fn authenticate_files(&self, username: Option<&str>, password: Option<&[u8]>) -> AuthResult {
        match (username, &self.passwords) {
            (None, _) | (Some(_), None) if self.allow_anonymous => AuthResult::Ok,
            (None, _) | (Some(_), None) => AuthResult::NotAuthorized,
            (Some(username), Some(passwords)) => {
                match password.is_some_and(|p| passwords.check(username, p)) {
                    true => AuthResult::Ok,
                    false => AuthResult::BadCredentials,
                }
            }
        }
    }

    /// Whether a client that authenticated as `username` under `self` still does under
    /// `other` (SIGHUP): without a password file the username was not checked, with one its
    /// entry must be unchanged.
    pub fn same_credentials(&self, other: &Auth, username: &str) -> bool {
        match (&self.passwords, &other.passwords) {
            (None, None) => true,
            (Some(old), Some(new)) => old.same_entry(new, username),
            _ => false,
        }
    }

    /// Whether this listener consults the dynamic security plugin.
    pub fn uses_dynsec(&self) -> bool {
        self.dynsec
    }

    /// Whether topics are restricted: by an ACL file or dynamic security (if not, `allowed`
    /// is always true).
    pub fn has_acl(&self) -> bool {
        self.acl.is_some() || self.dynsec
    }

    /// Whether the client may have `access` to `topic` (a filter for `Subscribe` and
    /// `Unsubscribe`); always true without an ACL file or dynamic security.
    ///
    /// With dynamic security, as Mosquitto 2.0 chains its checks: the plugin's entry (or
    /// its default access) decides; if it has no opinion, the ACL file decides if there is
    /// one (which never restricts unsubscribing), and otherwise access is denied.
    pub fn allowed(
        &self,
        dynsec: Option<&Dynsec>,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> bool {
        if let Some(dynsec) = dynsec.filter(|_| self.dynsec) {
            match dynsec.check(username, topic, access) {
                Decision::Allow => return true,
                Decision::Deny => return false,
                Decision::Defer if self.acl.is_none() => return false,
                Decision::Defer => {}
            }
        } else if self.dynsec {
            // The listener names the plugin but the data is not lent: fail closed.
            return false;
        }
        access == Access::Unsubscribe
            || (self.acl.as_ref()).is_none_or(|acl| acl.check(client_id, username, topic, access))
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Password hashes stay out of logs.
        f.debug_struct("Auth")
            .field("allow_anonymous", &self.allow_anonymous)
            .field("password_file", &self.passwords.is_some())
            .field("acl_file", &self.acl.is_some())
            .field("dynsec", &self.dynsec)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// A scratch file under the system temp directory, unique to this test process.
    fn scratch(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pipit-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn security(anonymous: bool, pw: Option<&Path>, acl: Option<&Path>) -> SecurityConfig {
        SecurityConfig {
            allow_anonymous: anonymous,
            password_file: pw.map(Path::to_path_buf),
            acl_file: acl.map(Path::to_path_buf),
            dynsec: None,
        }
    }

    fn password_file(name: &str) -> PathBuf {
        let entry = password::hash_pbkdf2(b"secret", b"0123456789ab", 101);
        scratch(name, &format!("alice:{entry}\n"))
    }

    #[test]
    fn anonymous_access_follows_allow_anonymous() {
        let open = Auth::load(&security(true, None, None)).unwrap();
        assert_eq!(open.authenticate(None, "c", None, None), AuthResult::Ok);
        assert_eq!(
            open.authenticate(None, "c", Some("anyone"), Some(b"x")),
            AuthResult::Ok
        );
        let closed = Auth::load(&security(false, None, None)).unwrap();
        assert_eq!(
            closed.authenticate(None, "c", None, None),
            AuthResult::NotAuthorized
        );
        assert_eq!(
            closed.authenticate(None, "c", Some("anyone"), Some(b"x")),
            AuthResult::NotAuthorized
        );
    }

    #[test]
    fn password_file_checks_usernames() {
        let pw = password_file("check.pw");
        for anonymous in [false, true] {
            let auth = Auth::load(&security(anonymous, Some(&pw), None)).unwrap();
            assert_eq!(
                auth.authenticate(None, "c", Some("alice"), Some(b"secret")),
                AuthResult::Ok
            );
            assert_eq!(
                auth.authenticate(None, "c", Some("alice"), Some(b"nope")),
                AuthResult::BadCredentials
            );
            assert_eq!(
                auth.authenticate(None, "c", Some("alice"), None),
                AuthResult::BadCredentials
            );
            assert_eq!(
                auth.authenticate(None, "c", Some("bob"), Some(b"secret")),
                AuthResult::BadCredentials
            );
        }
        let auth = Auth::load(&security(false, Some(&pw), None)).unwrap();
        assert_eq!(
            auth.authenticate(None, "c", None, None),
            AuthResult::NotAuthorized
        );
        let auth = Auth::load(&security(true, Some(&pw), None)).unwrap();
        assert_eq!(auth.authenticate(None, "c", None, None), AuthResult::Ok);
    }

    #[test]
    fn acl_is_consulted_only_when_configured() {
        let open = Auth::load(&security(true, None, None)).unwrap();
        assert!(open.allowed(None, "c", None, "any/topic", Access::Write));
        let acl = scratch("check.acl", "topic read news/#\n");
        let auth = Auth::load(&security(true, None, Some(&acl))).unwrap();
        assert!(auth.allowed(None, "c", None, "news/today", Access::Read));
        assert!(!auth.allowed(None, "c", None, "news/today", Access::Write));
    }

    #[test]
    fn sys_topics_are_broker_only() {
        for topic in [
            "$SYS",
            "$SYS/broker/version",
            "$SYSTEM/x",
            "$SYS/broker/connection/a/b",
        ] {
            assert!(broker_only(topic), "{topic}");
        }
        for topic in [
            "sys/x",
            "$share/x",
            "x/$SYS",
            "$SYS/broker/connection/bridge-1/state",
        ] {
            assert!(!broker_only(topic), "{topic}");
        }
        assert!(broker_only("$SYS/broker/connection/a/b/state"));
    }

    #[test]
    fn reload_keeps_the_old_state_on_error() {
        let pw = password_file("reload.pw");
        let mut auth = Auth::load(&security(false, Some(&pw), None)).unwrap();
        let bad = scratch("reload-bad.acl", "topic read a/#/b\n");
        let err = auth
            .reload(&security(true, None, Some(&bad)))
            .err()
            .unwrap();
        assert_eq!(err.line, Some(1));
        assert_eq!(
            auth.authenticate(None, "c", None, None),
            AuthResult::NotAuthorized
        );
        assert_eq!(
            auth.authenticate(None, "c", Some("alice"), Some(b"secret")),
            AuthResult::Ok
        );
        auth.reload(&security(true, None, None)).unwrap();
        assert_eq!(auth.authenticate(None, "c", None, None), AuthResult::Ok);
    }

    #[test]
    fn missing_files_fail_to_load() {
        let missing = Path::new("/nonexistent/pipit/pw");
        assert!(Auth::load(&security(true, Some(missing), None)).is_err());
        assert!(Auth::load(&security(true, None, Some(missing))).is_err());
    }
}
