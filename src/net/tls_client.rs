//! A bridge's TLS client configuration (`bridge_cafile` and the rest), built once at start-up
//! from its PEM files, and the name its remote's certificate must carry.
//!
//! The remote's certificate chain is always verified against the bridge's CAs. The name is
//! the address's host: a DNS name, or an IP address matched against the certificate's IP
//! SANs. `bridge_insecure` skips only the name check, as Mosquitto's does (OpenSSL there
//! still verifies the chain): `NameUnchecked` passes a certificate whose only fault is its
//! name.

use std::io;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, SignatureScheme};

use super::tls::{ca_roots, file_error, load_certs};
use crate::config::{BridgeConfig, BridgeTls, TlsVersion};

/// Builds bridge `b`'s client configuration; the error names the bridge and the file.
pub fn client_config(b: &BridgeConfig, tls: &BridgeTls) -> io::Result<Arc<ClientConfig>> {
    build(tls).map_err(|e| io::Error::new(e.kind(), format!("bridge {}: {e}", b.name)))
}

fn build(tls: &BridgeTls) -> io::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        Some(TlsVersion::Tls12) | None => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let roots = ca_roots(tls.cafile.as_deref(), tls.capath.as_deref())?;
    if roots.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bridge_capath holds no usable CA certificate",
        ));
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| io::Error::other(format!("server certificate verifier: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure {
        Arc::new(NameUnchecked(verifier))
    } else {
        verifier
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| io::Error::other(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&tls.certfile, &tls.keyfile) {
        (Some(certfile), Some(keyfile)) => {
            let certs = load_certs(certfile)?;
            let key = PrivateKeyDer::from_pem_file(keyfile)
                .map_err(|e| file_error(keyfile, format!("no usable private key: {e}")))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                let (cert, key) = (certfile.display(), keyfile.display());
                io::Error::new(io::ErrorKind::InvalidInput, format!("{cert}, {key}: {e}"))
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    if let Some(alpn) = &tls.alpn {
        config.alpn_protocols = vec![alpn.as_bytes().to_vec()];
    }
    Ok(Arc::new(config))
}

/// The name a remote at `host` must show: an IP address for an IP literal, else a DNS name.
pub fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    ServerName::try_from(host.to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host} is not a name TLS can check: {e}"),
        )
    })
}

/// A verifier that checks the chain, signatures and validity as the inner one does, but
/// accepts a certificate for another name (`bridge_insecure`).
#[derive(Debug)]
struct NameUnchecked(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for NameUnchecked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        // webpki checks the chain before the name: a name error means the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
