//! A bridge's TLS options (`bridge_cafile`, `bridge_capath`, `bridge_certfile`,
//! `bridge_keyfile`, `bridge_insecure`, `bridge_tls_version`, `bridge_alpn`), as Mosquitto
//! reads them: TLS is on when `bridge_cafile` or `bridge_capath` is set, and any other of these
//! options without one of them refuses start-up, so a bridge meant to be encrypted never
//! connects in plaintext. `bridge_identity`/`bridge_psk` (TLS-PSK, which rustls lacks) and
//! `bridge_require_ocsp` stay refused.

use std::path::PathBuf;

use super::line::{Line, Origin};
use super::{ConfigError, TlsVersion, Warning};

/// TLS bridge options pipit refuses (never plaintext instead).
pub(super) const REFUSED: &str = "bridge_identity bridge_psk bridge_require_ocsp";

/// TLS bridge options pipit builds.
pub(super) const BUILT: &str = "bridge_alpn bridge_cafile bridge_capath bridge_certfile \
    bridge_insecure bridge_keyfile bridge_tls_version";

/// One bridge's TLS client settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeTls {
    /// `bridge_cafile`: PEM CA certificates the remote's certificate is checked against.
    pub cafile: Option<PathBuf>,
    /// `bridge_capath`: a directory of PEM CA certificate files.
    pub capath: Option<PathBuf>,
    /// `bridge_certfile`: the client certificate chain (PEM), with `keyfile`.
    pub certfile: Option<PathBuf>,
    /// `bridge_keyfile`: the client certificate's private key (PEM).
    pub keyfile: Option<PathBuf>,
    /// `bridge_insecure`: do not check that the certificate names the host (the chain is
    /// still verified), as Mosquitto.
    pub insecure: bool,
    /// `bridge_tls_version`: the lowest version offered; `None` offers TLS 1.2 and 1.3.
    pub min_version: Option<TlsVersion>,
    /// `bridge_alpn`: the one ALPN protocol offered (AWS IoT wants one on port 443).
    pub alpn: Option<String>,
}

/// Applies TLS option `l` to `tls` (made on the block's first TLS option); `Ok(false)` if
/// `l` is no TLS option.
pub(super) fn option(
    l: &Line,
    tls: &mut Option<BridgeTls>,
    bridge: &str,
    warnings: &mut Vec<Warning>,
) -> Result<bool, ConfigError> {
    if REFUSED.split_whitespace().any(|o| o == l.name) {
        return Err(l.error(format!(
            "{}: not supported (rustls has no TLS-PSK or OCSP stapling check), and bridge \
             {bridge} would otherwise connect without it: pipit refuses to start",
            l.name
        )));
    }
    if !BUILT.split_whitespace().any(|o| o == l.name) {
        return Ok(false);
    }
    let t = tls.get_or_insert_with(BridgeTls::default);
    match l.name {
        "bridge_cafile" => t.cafile = Some(l.path()?),
        "bridge_capath" => t.capath = Some(l.path()?),
        "bridge_certfile" => t.certfile = Some(l.path()?),
        "bridge_keyfile" => t.keyfile = Some(l.path()?),
        "bridge_insecure" => {
            t.insecure = l.flag()?;
            if t.insecure {
                warnings.push(l.warning(format!(
                    "bridge_insecure true: bridge {bridge} does not check that the remote's \
                     certificate names its host"
                )));
            }
        }
        "bridge_tls_version" => t.min_version = Some(super::values::tls_version(l, warnings)?),
        _ => t.alpn = Some(l.word()?.to_string()),
    }
    Ok(true)
}

/// Checks a finished block's TLS settings as Mosquitto does: a CA is required, and a client
/// certificate needs both its files.
pub(super) fn check(tls: &BridgeTls, bridge: &str, origin: &Origin) -> Result<(), ConfigError> {
    if tls.cafile.is_none() && tls.capath.is_none() {
        return Err(origin.error(format!(
            "bridge {bridge}: TLS options without bridge_cafile or bridge_capath (TLS is on \
             only with a CA to check the remote against), and the bridge would otherwise \
             connect in plaintext: pipit refuses to start"
        )));
    }
    if tls.certfile.is_some() != tls.keyfile.is_some() {
        return Err(origin.error(format!(
            "bridge {bridge}: bridge_certfile and bridge_keyfile go together"
        )));
    }
    Ok(())
}
