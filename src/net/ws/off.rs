//! Without the `websocket` feature: the names the transport seam uses, and no way to make
//! any of them. `config` refuses `protocol websockets` at its line (and `Broker` a `Config`
//! made in code that asks for it), so no listener wraps a socket in WebSockets; the types
//! are uninhabited and every method is an empty match.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;

use super::Stream;
use crate::config::features::not_built;
use crate::config::{Config, ListenerConfig};

/// A WebSocket listener's settings: none can exist in this build.
#[derive(Debug)]
pub enum WsConfig {}

/// Why the WebSocket layer ends a connection: never, in this build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsClose {}

impl WsClose {
    /// What happened, for the connection's close line in the log.
    pub fn reason(self) -> &'static str {
        match self {}
    }
}

impl std::fmt::Display for WsClose {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

impl std::error::Error for WsClose {}

/// A WebSocket listener's settings: refused, this build has no WebSockets.
pub fn config(_: &Config, listener: &ListenerConfig) -> io::Result<WsConfig> {
    let message = format!("listener {}: {}", listener.addr, not_built("websocket"));
    Err(io::Error::new(io::ErrorKind::Unsupported, message))
}

/// A WebSocket connection: none can exist in this build. (A struct around the empty
/// enum, not the enum itself, so `Stream::Ws(Box::new(WsStream::new(..)))` in `net` is not
/// an unreachable expression there.)
#[derive(Debug)]
pub struct WsStream(Never);

/// No value.
#[derive(Debug)]
enum Never {}

impl WsStream {
    /// Never called: there is no `WsConfig` to call it with.
    pub fn new(_: Stream, config: Arc<WsConfig>) -> WsStream {
        match *config {}
    }

    /// The transport underneath.
    pub fn inner(&self) -> &Stream {
        match self.0 {}
    }

    /// The transport underneath, for registering with mio.
    pub fn inner_mut(&mut self) -> &mut Stream {
        match self.0 {}
    }

    /// Sends what waits.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        match self.0 {}
    }

    /// Sends a close frame.
    pub fn close(&mut self, _: bool) {
        match self.0 {}
    }

    /// The TCP socket and the bytes still owed to the client.
    pub fn into_lingering(self, _: Vec<u8>) -> Option<(TcpStream, Vec<u8>)> {
        match self.0 {}
    }
}

impl Read for WsStream {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match self.0 {}
    }
}

impl Write for WsStream {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        match self.0 {}
    }

    fn write_vectored(&mut self, _: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.0 {}
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.0 {}
    }
}
