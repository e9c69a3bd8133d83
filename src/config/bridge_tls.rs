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

// A build without `bridge` refuses `connection` blocks (`config::features`).
#[cfg(all(test, feature = "bridge"))]
mod tests {
    use crate::config::{BridgeTls, Config, TlsVersion};
    use std::path::{Path, PathBuf};

    fn parse(block: &str) -> Result<Option<BridgeTls>, String> {
        let text = format!("connection b\naddress 10.0.0.2:8883\ntopic t\n{block}");
        Config::parse(&text, Path::new("pipit.conf"))
            .map(|(c, _)| c.bridges[0].tls.clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn tls_options_are_read_and_need_a_ca() {
        assert_eq!(parse(""), Ok(None), "plain TCP without TLS options");
        let tls = parse(
            "bridge_capath /certs\nbridge_certfile /c.pem\nbridge_keyfile /k.pem\n\
             bridge_tls_version tlsv1.3\nbridge_alpn x-amzn-mqtt-ca\nbridge_insecure false\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(tls.capath, Some(PathBuf::from("/certs")));
        assert_eq!(tls.certfile, Some(PathBuf::from("/c.pem")));
        assert_eq!(tls.min_version, Some(TlsVersion::Tls13));
        assert_eq!(tls.alpn.as_deref(), Some("x-amzn-mqtt-ca"));
        assert!(!tls.insecure);
        for block in [
            "bridge_insecure true\n",
            "bridge_certfile /c\nbridge_keyfile /k\n",
        ] {
            let e = parse(block).unwrap_err();
            assert!(
                e.starts_with("pipit.conf:1: bridge b: TLS options without bridge_cafile")
                    && e.ends_with("pipit refuses to start"),
                "{block}: {e}"
            );
        }
        let e = parse("bridge_cafile /ca\nbridge_certfile /c\n").unwrap_err();
        assert_eq!(
            e,
            "pipit.conf:1: bridge b: bridge_certfile and bridge_keyfile go together"
        );
    }
}
