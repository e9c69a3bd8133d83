//! What one scope of a configuration file sets, as written, before defaults are applied:
//! a listener block (or the default listener's options before any `listener`) with its TLS
//! and security options. `parse` fills these and finishes them into `Config` parts.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::line::Origin;
use super::plugin::DynsecDraft;
use super::{ConfigError, ListenerConfig, SecurityConfig, TlsConfig, TlsVersion};

/// Security options as written in one scope, before defaults are applied.
#[derive(Default)]
pub(super) struct SecurityDraft {
    pub(super) allow_anonymous: Option<bool>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) acl_file: Option<PathBuf>,
    pub(super) dynsec: Option<DynsecDraft>,
    pub(super) first: Option<Origin>,
}

impl SecurityDraft {
    /// The settings, with `allow_anonymous` defaulting to `local_only` (Mosquitto 2.0: true
    /// only when the file opens no listener of its own).
    pub(super) fn finish(self, local_only: bool) -> Result<SecurityConfig, ConfigError> {
        Ok(SecurityConfig {
            allow_anonymous: self.allow_anonymous.unwrap_or(local_only),
            password_file: self.password_file,
            acl_file: self.acl_file,
            dynsec: self.dynsec.as_ref().map(DynsecDraft::finish).transpose()?,
        })
    }
}

/// TLS options as written in one listener block, checked when the file is finished.
#[derive(Default)]
pub(super) struct TlsDraft {
    pub(super) certfile: Option<PathBuf>,
    pub(super) keyfile: Option<PathBuf>,
    pub(super) cafile: Option<PathBuf>,
    pub(super) capath: Option<PathBuf>,
    pub(super) require_certificate: bool,
    pub(super) use_identity_as_username: bool,
    pub(super) use_subject_as_username: bool,
    pub(super) min_version: Option<TlsVersion>,
    pub(super) first: Option<Origin>,
}

impl TlsDraft {
    /// The listener's TLS settings, `None` for a plain listener.
    pub(super) fn finish(self) -> Result<Option<TlsConfig>, ConfigError> {
        let Some(origin) = self.first else {
            return Ok(None);
        };
        // `require_certificate false` and the like on a plain listener restate what it does
        // anyway: accepted, as Mosquitto accepts them.
        let restated_defaults = self.certfile.is_none()
            && self.keyfile.is_none()
            && self.cafile.is_none()
            && self.capath.is_none()
            && self.min_version.is_none()
            && !self.require_certificate
            && !self.use_identity_as_username
            && !self.use_subject_as_username;
        if restated_defaults {
            return Ok(None);
        }
        let (Some(certfile), Some(keyfile)) = (self.certfile, self.keyfile) else {
            return Err(origin.error("TLS needs both certfile and keyfile on this listener"));
        };
        if self.require_certificate && self.cafile.is_none() && self.capath.is_none() {
            return Err(origin.error("require_certificate needs cafile or capath"));
        }
        Ok(Some(TlsConfig {
            certfile,
            keyfile,
            cafile: self.cafile,
            capath: self.capath,
            require_certificate: self.require_certificate,
            use_identity_as_username: self.use_identity_as_username,
            use_subject_as_username: self.use_subject_as_username,
            min_version: self.min_version,
        }))
    }
}

/// The options of one listener block (or of the default listener, before any `listener`).
pub(super) struct Section {
    pub(super) listener: ListenerConfig,
    pub(super) tls: TlsDraft,
    pub(super) security: SecurityDraft,
    /// First listener option in this block, for the "default listener not opened" warning.
    pub(super) first: Option<Origin>,
}

impl Section {
    /// A block for a listener on `addr`, with nothing written yet.
    pub(super) fn new(addr: SocketAddr) -> Self {
        let listener = ListenerConfig::new(addr);
        Section {
            listener,
            tls: TlsDraft::default(),
            security: SecurityDraft::default(),
            first: None,
        }
    }
}
