//! TLS on listeners with `certfile`/`keyfile`: the rustls server configuration built once per
//! listener from PEM files, and `TlsStream`, one non-blocking TLS session over a mio socket,
//! server side for a listener's clients or client side for a bridge (`tls_client` builds a
//! bridge's configuration).
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
//! The username a client certificate gives (`use_identity_as_username`,
//! `use_subject_as_username`) is read from its subject by `x509`.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use log::debug;
use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig, ServerConnection,
};

use super::x509;
use crate::config::{CertUsername, TlsConfig, TlsVersion};

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
    let roots = ca_roots(tls.cafile.as_deref(), tls.capath.as_deref())?;
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

/// The CA certificates peer certificates are checked against: `cafile`, then every file
/// in `capath` holding PEM certificates. Empty when neither is set.
pub(super) fn ca_roots(cafile: Option<&Path>, capath: Option<&Path>) -> io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    if let Some(file) = cafile {
        for cert in load_certs(file)? {
            roots
                .add(cert)
                .map_err(|e| file_error(file, format!("not a usable CA certificate: {e}")))?;
        }
    }
    if let Some(dir) = capath {
        let entries =
            fs::read_dir(dir).map_err(|e| file_error(dir, format!("cannot read: {e}")))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        // As OpenSSL, which looks certificates up in a capath directory and never reads the
        // rest: a file there that holds no usable CA certificate is passed over.
        for file in &files {
            let certs = load_certs(file).unwrap_or_default();
            let mut usable = 0;
            for cert in certs {
                usable += usize::from(roots.add(cert).is_ok());
            }
            if usable == 0 {
                debug!("capath: {} holds no usable CA certificate", file.display());
            }
        }
    }
    Ok(roots)
}

/// Every certificate in a PEM file; at least one.
pub(super) fn load_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(path, format!("cannot read certificates: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in it".into()));
    }
    Ok(certs)
}

pub(super) fn file_error(path: &Path, message: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: {message}", path.display()),
    )
}

/// One TLS session over a non-blocking socket: a listener's (server side) or a bridge's
/// (client side).
#[derive(Debug)]
pub struct TlsStream {
    socket: TcpStream,
    session: Connection,
    /// Why the session failed, kept for the connection's one close line in the log.
    failure: Option<rustls::Error>,
}

impl TlsStream {
    /// Starts a session on a freshly accepted socket; the handshake runs as bytes arrive.
    pub fn new(socket: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let session = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream::over(socket, Connection::Server(session)))
    }

    /// Starts a client session to `server` on a connecting socket: the ClientHello goes out
    /// on the first writable event, and what is written before the handshake ends waits in
    /// rustls (under `BUFFER_LIMIT`) until it does.
    pub fn client(
        socket: TcpStream,
        config: Arc<ClientConfig>,
        server: ServerName<'static>,
    ) -> io::Result<TlsStream> {
        let session = ClientConnection::new(config, server).map_err(io::Error::other)?;
        Ok(TlsStream::over(socket, Connection::Client(session)))
    }

    fn over(socket: TcpStream, mut session: Connection) -> TlsStream {
        session.set_buffer_limit(Some(BUFFER_LIMIT));
        TlsStream {
            socket,
            session,
            failure: None,
        }
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

    /// The username the client's verified certificate gives, read as `from` says; `None`
    /// without a certificate, or if the certificate has no such name.
    pub fn peer_username(&self, from: CertUsername) -> Option<Box<str>> {
        let leaf = self.session.peer_certificates()?.first()?;
        match from {
            CertUsername::CommonName => x509::common_name(leaf).map(Box::from),
            CertUsername::Subject => x509::subject_rfc2253(leaf).map(String::into_boxed_str),
        }
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
