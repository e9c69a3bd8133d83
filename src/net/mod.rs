//! The transport seam: `Stream` is what a connection reads MQTT bytes from and writes them
//! to, plain TCP, TLS, or WebSockets over either, and `Transport` is how a listener turns an
//! accepted socket into one.
//!
//! Every variant keeps mio's contract: `read` and `write` return `WouldBlock` only when the
//! socket did, and the socket is registered once, edge-triggered, for reading and writing.
//! TLS and WebSockets may hold output of their own after a `read` (handshake replies, pongs)
//! or a `write`; `flush_pending` sends it when the socket becomes writable. `Connector` is the
//! same for a bridge's outbound socket: plain TCP, or TLS as a client. Without the `tls`
//! feature there is no TLS variant, and a listener or bridge configured for TLS is refused at
//! start-up.

pub(crate) mod buffer;
pub(crate) mod conn;
#[cfg(feature = "bridge")]
mod connector;
pub(crate) mod linger;
pub(crate) mod listen;
pub(crate) mod local;
pub mod mem;
pub(crate) mod pool;
#[cfg(feature = "tls")]
pub(crate) mod tls;
#[cfg(all(feature = "tls", feature = "bridge"))]
pub(crate) mod tls_client;
// Without the `websocket` feature, `ws/off.rs`: the same names, nothing to make.
#[cfg_attr(not(feature = "websocket"), path = "ws/off.rs")]
pub(crate) mod ws;
#[cfg(feature = "tls")]
pub(crate) mod x509;

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::config::{CertUsername, Config, ListenerConfig, Protocol};
#[cfg(feature = "bridge")]
pub use connector::Connector;
#[cfg(feature = "tls")]
use tls::TlsStream;
use ws::{WsConfig, WsStream};

/// How one listener wraps the sockets it accepts.
#[derive(Debug)]
pub struct Transport {
    /// TLS under everything else, if the listener has certificates.
    tls: Tls,
    /// WebSockets over the TCP or TLS stream (`protocol websockets`).
    ws: Option<Arc<WsConfig>>,
}

/// A listener's TLS: none, or its server configuration.
#[derive(Debug)]
enum Tls {
    /// Plain TCP.
    None,
    /// TLS with this server configuration.
    #[cfg(feature = "tls")]
    On(Arc<rustls::ServerConfig>),
}

impl Transport {
    /// The transport listener `index` of `config` asks for; TLS certificates and keys, and
    /// `http_dir`, are opened here, so a missing or bad one stops start-up with an error
    /// naming it.
    pub fn for_listener(config: &Config, index: usize) -> io::Result<Transport> {
        let listener = &config.listeners[index];
        let ws = match listener.protocol {
            Protocol::Mqtt => None,
            Protocol::Websockets => Some(Arc::new(ws::config(config, listener)?)),
        };
        Ok(Transport {
            tls: Transport::tls(listener)?,
            ws,
        })
    }

    fn tls(listener: &ListenerConfig) -> io::Result<Tls> {
        match &listener.tls {
            None => Ok(Tls::None),
            #[cfg(feature = "tls")]
            Some(config) => tls::server_config(config)
                .map(Tls::On)
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
        let stream = match &self.tls {
            Tls::None => Stream::Tcp(socket),
            #[cfg(feature = "tls")]
            Tls::On(config) => Stream::Tls(Box::new(TlsStream::new(socket, Arc::clone(config))?)),
        };
        Ok(match &self.ws {
            None => stream,
            Some(config) => Stream::Ws(Box::new(WsStream::new(stream, Arc::clone(config)))),
        })
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
    /// WebSockets over TCP or TLS (boxed, as TLS).
    Ws(Box<WsStream>),
    /// An in-process client's pipe (`local.rs`): no socket, nothing to register.
    Local(Box<local::LocalStream>),
    /// In memory, no socket: the fuzz harness's connections (`broker/drive.rs`).
    Mem(mem::MemStream),
}

impl Stream {
    /// Writes output the transport holds (TLS records); `true` once none is left, `false`
    /// if the socket would block first.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        match self {
            Stream::Tcp(_) | Stream::Mem(_) => Ok(true),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.flush_pending(),
            Stream::Ws(ws) => ws.flush_pending(),
            Stream::Local(_) => Ok(true),
        }
    }

    /// Last words of the transport before the socket is dropped (TLS close_notify, a
    /// WebSocket close frame), sent only if the socket takes them now. With `output_left`
    /// the broker's output is not all written, and a close frame must wait behind it.
    pub fn close(&mut self, output_left: bool) {
        match self {
            Stream::Tcp(_) | Stream::Mem(_) => {}
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.close_notify(),
            Stream::Ws(ws) => ws.close(output_left),
            Stream::Local(_) => {}
        }
    }

    /// The TCP socket underneath, and the bytes to write on it before it closes: the
    /// broker's `unwritten` output as the transport frames it (plain TCP as is, WebSockets
    /// as frames and a close frame), nothing over TLS (its session state is dropped).
    /// `None` for a local client (its pipe already holds everything written, and its end
    /// reads it after the loop's end is dropped) and in memory: there is no socket to linger.
    pub fn into_lingering(self, unwritten: Vec<u8>) -> Option<(TcpStream, Vec<u8>)> {
        match self {
            Stream::Tcp(socket) => Some((socket, unwritten)),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => Some((tls.into_socket(), Vec::new())),
            Stream::Ws(ws) => ws.into_lingering(unwritten),
            Stream::Local(_) | Stream::Mem(_) => None,
        }
    }

    /// The local client's pipe, if this is one.
    pub fn local(&mut self) -> Option<&mut local::LocalStream> {
        match self {
            Stream::Local(pipe) => Some(pipe),
            _ => None,
        }
    }

    /// Why the TLS session failed, if it did (for the log line that closes the connection).
    pub fn tls_failure(&self) -> Option<&dyn std::fmt::Display> {
        match self {
            Stream::Tcp(_) | Stream::Mem(_) => None,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.failure().map(|e| e as &dyn std::fmt::Display),
            Stream::Ws(ws) => ws.inner().tls_failure(),
            Stream::Local(_) => None,
        }
    }

    /// The username the client's verified TLS certificate gives, read as `from` says;
    /// `None` without a certificate or such a name.
    #[cfg_attr(not(feature = "tls"), allow(clippy::only_used_in_recursion))]
    pub fn peer_username(&self, from: CertUsername) -> Option<Box<str>> {
        match self {
            Stream::Tcp(_) | Stream::Mem(_) => None,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.peer_username(from),
            Stream::Ws(ws) => ws.inner().peer_username(from),
            Stream::Local(_) => None,
        }
    }

    /// The peer's address, read from the socket (for the WebSocket layer's log lines).
    #[cfg(feature = "websocket")]
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            Stream::Tcp(socket) => socket.peer_addr(),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.socket().peer_addr(),
            Stream::Ws(ws) => ws.inner().peer_addr(),
            Stream::Local(_) | Stream::Mem(_) => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// The TCP socket underneath; `None` for a local client's pipe and in memory, which
    /// have nothing to register.
    fn socket(&mut self) -> Option<&mut TcpStream> {
        match self {
            Stream::Tcp(socket) => Some(socket),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => Some(tls.socket_mut()),
            Stream::Ws(ws) => ws.inner_mut().socket(),
            Stream::Local(_) | Stream::Mem(_) => None,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.read(out),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.read(out),
            Stream::Ws(ws) => ws.read(out),
            Stream::Local(pipe) => pipe.read(out),
            Stream::Mem(mem) => mem.read(out),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.write(data),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.write(data),
            Stream::Ws(ws) => ws.write(data),
            Stream::Local(pipe) => pipe.write(data),
            Stream::Mem(mem) => mem.write(data),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.write_vectored(bufs),
            Stream::Ws(ws) => ws.write_vectored(bufs),
            Stream::Local(pipe) => pipe.write_vectored(bufs),
            Stream::Mem(mem) => mem.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(socket) => socket.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.flush(),
            Stream::Ws(ws) => ws.flush(),
            Stream::Local(pipe) => pipe.flush(),
            Stream::Mem(mem) => mem.flush(),
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
        // A local client's pipe has no descriptor: the loop's waker stands in for it.
        match self.socket() {
            Some(socket) => socket.register(registry, token, interests),
            None => Ok(()),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self.socket() {
            Some(socket) => socket.reregister(registry, token, interests),
            None => Ok(()),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self.socket() {
            Some(socket) => socket.deregister(registry),
            None => Ok(()),
        }
    }
}
