//! The transport seam: `Stream` is what a connection reads MQTT bytes from and writes them
//! to, plain TCP or TLS, and `Transport` is how a listener turns an accepted socket into one.
//!
//! Both variants keep mio's contract: `read` and `write` return `WouldBlock` only when the
//! socket did, and the socket is registered once, edge-triggered, for reading and writing.
//! TLS may hold encrypted output after a `read` (handshake replies) or a `write`;
//! `flush_pending` sends it when the socket becomes writable. Without the `tls` feature only `Tcp` exists, and a listener configured for
//! TLS is refused at start-up.

pub(crate) mod buffer;
pub(crate) mod conn;
pub(crate) mod linger;
pub(crate) mod listen;
pub(crate) mod pool;
#[cfg(feature = "tls")]
pub(crate) mod tls;
#[cfg(feature = "tls")]
pub(crate) mod x509;

use std::io::{self, Read, Write};

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::config::{CertUsername, ListenerConfig};
#[cfg(feature = "tls")]
use tls::TlsStream;

/// How one listener wraps the sockets it accepts.
#[derive(Debug)]
pub enum Transport {
    /// MQTT straight over TCP.
    Tcp,
    /// MQTT over TLS with this listener's server configuration.
    #[cfg(feature = "tls")]
    Tls(std::sync::Arc<rustls::ServerConfig>),
}

impl Transport {
    /// The transport `listener` asks for; TLS certificates and keys are loaded here, so a
    /// missing or bad file stops start-up with an error naming it.
    pub fn for_listener(listener: &ListenerConfig) -> io::Result<Transport> {
        match &listener.tls {
            None => Ok(Transport::Tcp),
            #[cfg(feature = "tls")]
            Some(config) => tls::server_config(config)
                .map(Transport::Tls)
                .map_err(|e| io::Error::new(e.kind(), format!("listener {}: {e}", listener.addr))),
            #[cfg(not(feature = "tls"))]
            Some(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "listener {}: certfile/keyfile set, but pipit was built without the \
                     `tls` feature",
                    listener.addr
                ),
            )),
        }
    }

    /// Wraps an accepted socket.
    pub fn wrap(&self, socket: TcpStream) -> io::Result<Stream> {
        match self {
            Transport::Tcp => Ok(Stream::Tcp(socket)),
            #[cfg(feature = "tls")]
            Transport::Tls(config) => TlsStream::new(socket, std::sync::Arc::clone(config))
                .map(|s| Stream::Tls(Box::new(s))),
        }
    }
}

/// One client connection's byte stream.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP (boxed: the session state is large, the plain variant is 4 bytes).
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Stream {
    /// Writes output the transport holds (TLS records); `true` once none is left, `false`
    /// if the socket would block first.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        match self {
            Stream::Tcp(_) => Ok(true),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.flush_pending(),
        }
    }

    /// Last words of the transport before the socket is dropped (TLS close_notify), sent
    /// only if the socket takes them now.
    pub fn close(&mut self) {
        match self {
            Stream::Tcp(_) => {}
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.close_notify(),
        }
    }

    /// The TCP socket underneath, and whether the stream was plain TCP (a TLS session's
    /// state is dropped).
    pub fn into_tcp(self) -> (TcpStream, bool) {
        match self {
            Stream::Tcp(socket) => (socket, true),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => (tls.into_socket(), false),
        }
    }

    /// Why the TLS session failed, if it did (for the log line that closes the connection).
    pub fn tls_failure(&self) -> Option<&dyn std::fmt::Display> {
        match self {
            Stream::Tcp(_) => None,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.failure().map(|e| e as &dyn std::fmt::Display),
        }
    }

    /// The username the client's verified TLS certificate gives, read as `from` says;
    /// `None` without a certificate or such a name.
    #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
    pub fn peer_username(&self, from: CertUsername) -> Option<Box<str>> {
        match self {
            Stream::Tcp(_) => None,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.peer_username(from),
        }
    }

    fn socket(&mut self) -> &mut TcpStream {
        match self {
            Stream::Tcp(socket) => socket,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.socket_mut(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.read(out),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.read(out),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.write(data),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(socket) => socket.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.socket().register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.socket().reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.socket().deregister(registry)
    }
}
