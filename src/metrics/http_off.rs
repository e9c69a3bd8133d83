//! Without the `metrics` feature: no Prometheus endpoint. `config` refuses
//! `metrics_listener` at its line (and `Broker` a `Config` made in code that sets it), so no
//! server is ever bound; the type cannot be made and its methods are empty matches. `$SYS`
//! is built either way. The exposition renderer stays (the loop names it where a scrape is
//! answered), unreachable, and is dropped from a release build by LTO.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::{Registry, Token};

use crate::config::features::not_built;

/// The Prometheus endpoint: none can exist in this build.
#[derive(Debug)]
pub struct MetricsServer(Never);

/// No value.
#[derive(Debug)]
enum Never {}

impl MetricsServer {
    /// Refused: this build has no Prometheus endpoint.
    pub fn bind(addr: SocketAddr, _: &Registry, _: usize) -> io::Result<Self> {
        let message = format!("metrics_listener {addr}: {}", not_built("metrics"));
        Err(io::Error::new(io::ErrorKind::Unsupported, message))
    }

    /// Where it listens.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self.0 {}
    }

    /// Whether `token` is the listener's or a scrape's.
    pub fn owns(&self, _: Token) -> bool {
        match self.0 {}
    }

    /// Handles an event on one of its tokens.
    pub fn on_event(
        &mut self,
        _: &Registry,
        _: Token,
        _: Instant,
        _: impl FnOnce() -> (String, &'static str),
    ) {
        match self.0 {}
    }

    /// Closes the scrapes past their deadline.
    pub fn expire(&mut self, _: &Registry, _: Instant) {
        match self.0 {}
    }
}
