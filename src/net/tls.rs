//! TLS on listeners with `certfile`/`keyfile`: the rustls server configuration built once per
//! listener from PEM files, and `TlsStream`, one non-blocking TLS session over a mio socket.
//!
//! `TlsStream` runs the rustls state machine on the broker's own loop, with no thread of its
//! own. Reading pulls ciphertext from the socket until the caller's buffer is full of plaintext
//! or the socket would block (so a short read means a drained socket, as with plain TCP), and
//! pushes out whatever the handshake wants to send right away; what the socket
//! will not take yet stays in rustls and goes out from `flush_pending` on a later writable
//! event. Writing encrypts into a buffer bounded by `BUFFER_LIMIT`: at the bound a write
//! accepts fewer bytes, or none (`WouldBlock`), instead of buffering without limit. So a
//! `WouldBlock` from either direction always means the socket itself said so, and the
//! edge-triggered readiness event that follows is never missed.
//!
//! A client certificate's subject CN, for `use_identity_as_username`, is read with a short
//! hand-written DER walk (`common_name`) instead of a full X.509 parser.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use crate::config::{TlsConfig, TlsVersion};

/// Most bytes rustls holds per connection for sending (plaintext before the handshake, TLS
/// records after); at the bound `TlsStream::write` accepts less (see the module doc).
const BUFFER_LIMIT: usize = 64 * 1024;

/// Builds a listener's server configuration from its PEM files; the error names the file.
pub fn server_config(tls: &TlsConfig) -> io::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        Some(TlsVersion::Tls12) | None => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| io::Error::other(format!("TLS versions: {e}")))?;
    let roots = client_roots(tls)?;
    let builder = if roots.is_empty() {
        builder.with_no_client_auth()
    } else {
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if tls.require_certificate {
            verifier
        } else {
            verifier.allow_unauthenticated()
        };
        let verifier = verifier
            .build()
            .map_err(|e| io::Error::other(format!("client certificate verifier: {e}")))?;
        builder.with_client_cert_verifier(verifier)
    };
    let certs = load_certs(&tls.certfile)?;
    let key = PrivateKeyDer::from_pem_file(&tls.keyfile)
        .map_err(|e| file_error(&tls.keyfile, format!("no usable private key: {e}")))?;
    let config = builder.with_single_cert(certs, key).map_err(|e| {
        let (cert, key) = (tls.certfile.display(), tls.keyfile.display());
        io::Error::new(io::ErrorKind::InvalidInput, format!("{cert}, {key}: {e}"))
    })?;
    Ok(Arc::new(config))
}

/// The CA certificates client certificates are checked against: `cafile`, then every file
/// in `capath` holding PEM certificates. Empty when neither is set.
fn client_roots(tls: &TlsConfig) -> io::Result<RootCertStore> {
    let mut files = Vec::new();
    files.extend(tls.cafile.clone());
    if let Some(dir) = &tls.capath {
        let entries =
            fs::read_dir(dir).map_err(|e| file_error(dir, format!("cannot read: {e}")))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_file() {
                files.push(path);
            }
        }
        files.sort();
    }
    let mut roots = RootCertStore::empty();
    for file in &files {
        for cert in load_certs(file)? {
            roots
                .add(cert)
                .map_err(|e| file_error(file, format!("not a usable CA certificate: {e}")))?;
        }
    }
    Ok(roots)
}

/// Every certificate in a PEM file; at least one.
fn load_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(path, format!("cannot read certificates: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in it".into()));
    }
    Ok(certs)
}

fn file_error(path: &Path, message: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: {message}", path.display()),
    )
}

/// One server-side TLS session over a non-blocking socket.
#[derive(Debug)]
pub struct TlsStream {
    socket: TcpStream,
    session: ServerConnection,
    /// Why the session failed, kept for the connection's one close line in the log.
    failure: Option<rustls::Error>,
}

impl TlsStream {
    /// Starts a session on a freshly accepted socket; the handshake runs as bytes arrive.
    pub fn new(socket: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let mut session = ServerConnection::new(config).map_err(io::Error::other)?;
        session.set_buffer_limit(Some(BUFFER_LIMIT));
        Ok(TlsStream {
            socket,
            session,
            failure: None,
        })
    }

    /// The socket.
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// The socket, for registering with mio.
    pub fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    /// The TCP socket, without the TLS session.
    pub fn into_socket(self) -> TcpStream {
        self.socket
    }

    /// Writes TLS records rustls holds until none is left (`true`) or the socket would
    /// block (`false`).
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut self.socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Queues a close_notify alert and writes what the socket takes now (the connection is
    /// closing either way).
    pub fn close_notify(&mut self) {
        self.session.send_close_notify();
        let _ = self.flush_pending();
    }

    /// Why the TLS session failed (a bad handshake or record), once it has.
    pub fn failure(&self) -> Option<&rustls::Error> {
        self.failure.as_ref()
    }

    /// The subject CN of the client's verified certificate, if it sent one.
    pub fn peer_common_name(&self) -> Option<Box<str>> {
        let leaf = self.session.peer_certificates()?.first()?;
        common_name(leaf).map(Box::from)
    }

    /// Reads ciphertext once and processes it; returns whether the peer closed its side.
    fn read_records(&mut self) -> io::Result<bool> {
        let eof = loop {
            match self.session.read_tls(&mut self.socket) {
                Ok(n) => break n == 0,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if let Err(e) = self.session.process_new_packets() {
            // rustls queued an alert saying why; send it if the socket takes it.
            let _ = self.flush_pending();
            self.failure = Some(e.clone());
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        // Handshake replies go out now; what the socket will not take waits for writable.
        self.flush_pending()?;
        Ok(eof)
    }
}

impl Read for TlsStream {
    /// Plaintext until `out` is full or the socket has nothing more to give, so a short read
    /// means the socket is drained (the broker relies on it with edge-triggered readiness);
    /// `WouldBlock` when no plaintext came (mid-handshake too); `Ok(0)` when the peer closed,
    /// with or without close_notify.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        let mut eof = false;
        while filled < out.len() {
            match self.session.reader().read(&mut out[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && eof => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match self.read_records() {
                Ok(closed) => eof = closed,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }
}

impl Write for TlsStream {
    /// Encrypts what fits under `BUFFER_LIMIT` and writes records until the socket would
    /// block; `WouldBlock` only when nothing fits and the socket refused more.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(data)])
    }

    /// As `write`, with the buffers in one go (a WebSocket frame's header and payload).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let drained = self.flush_pending()?;
        let n = self.session.writer().write_vectored(bufs)?;
        self.flush_pending()?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(match drained {
                false => io::ErrorKind::WouldBlock.into(),
                true => io::ErrorKind::WriteZero.into(),
            });
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.flush_pending()? {
            true => Ok(()),
            false => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// OID 2.5.4.3 (id-at-commonName), DER-encoded contents.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// DER tags used on the walk to the subject.
mod tag {
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    pub const OID: u8 = 0x06;
    pub const VERSION: u8 = 0xa0;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const TELETEX_STRING: u8 = 0x14;
    pub const IA5_STRING: u8 = 0x16;
}

/// The first CN in an X.509 certificate's subject, if it is a UTF-8-compatible string.
/// Walks Certificate → tbsCertificate → (version, serial, signature, issuer, validity) →
/// subject → RDN sets → AttributeTypeAndValue (RFC 5280, 4.1).
fn common_name(cert: &[u8]) -> Option<&str> {
    let (_, certificate, _) = der_next(cert).filter(|t| t.0 == tag::SEQUENCE)?;
    let (_, mut tbs, _) = der_next(certificate).filter(|t| t.0 == tag::SEQUENCE)?;
    if tbs.first() == Some(&tag::VERSION) {
        tbs = der_next(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity.
    for _ in 0..4 {
        tbs = der_next(tbs)?.2;
    }
    let (_, mut rdns, _) = der_next(tbs).filter(|t| t.0 == tag::SEQUENCE)?;
    while !rdns.is_empty() {
        let (_, mut set, rest) = der_next(rdns).filter(|t| t.0 == tag::SET)?;
        rdns = rest;
        while !set.is_empty() {
            let (_, attribute, rest) = der_next(set).filter(|t| t.0 == tag::SEQUENCE)?;
            set = rest;
            let (_, oid, value) = der_next(attribute).filter(|t| t.0 == tag::OID)?;
            if oid != OID_COMMON_NAME {
                continue;
            }
            let (value_tag, value, _) = der_next(value)?;
            return match value_tag {
                tag::UTF8_STRING
                | tag::PRINTABLE_STRING
                | tag::TELETEX_STRING
                | tag::IA5_STRING => std::str::from_utf8(value).ok(),
                _ => None,
            };
        }
    }
    None
}

/// One DER element: `(tag, contents, rest)`; `None` if truncated or not definite-length.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let count = usize::from(first & 0x7f);
            let bytes = rest.get(..count)?;
            let len = bytes
                .iter()
                .fold(0usize, |len, &b| (len << 8) | usize::from(b));
            (len, &rest[count..])
        }
        _ => return None,
    };
    let contents = rest.get(..len)?;
    Some((tag, contents, &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER element with a definite length (short or long form).
    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n @ 0..=0x7f => out.push(n as u8),
            n @ 0x80..=0xff => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(contents);
        out
    }

    fn attribute(oid: &[u8], value_tag: u8, value: &[u8]) -> Vec<u8> {
        der(
            tag::SET,
            &der(
                tag::SEQUENCE,
                &[der(tag::OID, oid), der(value_tag, value)].concat(),
            ),
        )
    }

    /// A certificate skeleton: only the fields the walk looks at are meaningful.
    fn certificate(subject: &[u8], with_version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(der(tag::VERSION, &der(0x02, &[2])));
        }
        tbs.extend(der(0x02, &[0x01, 0x23])); // serialNumber
        tbs.extend(der(tag::SEQUENCE, &der(tag::OID, &[0x2a, 0x86, 0x48]))); // signature
        tbs.extend(der(
            tag::SEQUENCE,
            &attribute(OID_COMMON_NAME, tag::UTF8_STRING, b"ca"),
        ));
        tbs.extend(der(
            tag::SEQUENCE,
            &[der(0x17, b"250101"), der(0x17, b"350101")].concat(),
        ));
        tbs.extend(der(tag::SEQUENCE, subject));
        tbs.extend(der(tag::SEQUENCE, &[0; 200])); // subjectPublicKeyInfo: long form length
        let body = [
            der(tag::SEQUENCE, &tbs),
            der(tag::SEQUENCE, &[]),
            der(0x03, &[0]),
        ]
        .concat();
        der(tag::SEQUENCE, &body)
    }

    #[test]
    fn common_name_is_read_from_the_subject_not_the_issuer() {
        let subject = [
            attribute(&[0x55, 0x04, 0x06], tag::PRINTABLE_STRING, b"NZ"),
            attribute(OID_COMMON_NAME, tag::UTF8_STRING, b"sensor-7"),
            attribute(OID_COMMON_NAME, tag::UTF8_STRING, b"second"),
        ]
        .concat();
        assert_eq!(common_name(&certificate(&subject, true)), Some("sensor-7"));
        assert_eq!(common_name(&certificate(&subject, false)), Some("sensor-7"));
        let printable = attribute(OID_COMMON_NAME, tag::PRINTABLE_STRING, b"plc");
        assert_eq!(common_name(&certificate(&printable, true)), Some("plc"));
    }

    #[test]
    fn no_common_name_or_unsupported_string_gives_none() {
        let country = attribute(&[0x55, 0x04, 0x06], tag::PRINTABLE_STRING, b"NZ");
        assert_eq!(common_name(&certificate(&country, true)), None);
        let bmp = attribute(OID_COMMON_NAME, 0x1e, &[0, b'a']);
        assert_eq!(common_name(&certificate(&bmp, true)), None);
        assert_eq!(common_name(&certificate(&[], true)), None);
    }

    #[test]
    fn truncated_or_garbage_der_gives_none() {
        let subject = attribute(OID_COMMON_NAME, tag::UTF8_STRING, b"sensor-7");
        let cert = certificate(&subject, true);
        for len in 0..cert.len() {
            assert_eq!(common_name(&cert[..len]), None, "truncated to {len}");
        }
        assert_eq!(
            common_name(&[0x30, 0x80, 0x00, 0x00]),
            None,
            "indefinite length"
        );
        assert_eq!(
            common_name(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            None,
            "length too long"
        );
    }

    #[test]
    fn der_lengths_short_and_long_form() {
        assert_eq!(
            der_next(&[0x04, 0x02, 1, 2, 9]),
            Some((0x04, &[1, 2][..], &[9][..]))
        );
        let long = der(0x04, &[7; 300]);
        let (tag, contents, rest) = der_next(&long).unwrap();
        assert_eq!((tag, contents.len(), rest.len()), (0x04, 300, 0));
        assert_eq!(der_next(&[0x04, 0x03, 1]), None);
    }
}
