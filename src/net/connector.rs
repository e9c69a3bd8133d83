//! `Connector`: how one bridge wraps its outbound socket, plain TCP or TLS as a client (the
//! `bridge` feature; TLS with the `tls` feature too).

use std::io;
#[cfg(feature = "tls")]
use std::sync::Arc;

use mio::net::TcpStream;

use super::Stream;
#[cfg(feature = "tls")]
use super::tls::TlsStream;
#[cfg(feature = "tls")]
use super::tls_client;
use crate::config::BridgeConfig;

/// How one bridge wraps its outbound socket: plain TCP, or TLS as a client.
#[derive(Debug)]
pub struct Connector {
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Connector {
    /// The connector bridge `b` asks for; its TLS files are opened here, so a missing or bad
    /// one stops start-up with an error naming it.
    pub fn for_bridge(b: &BridgeConfig) -> io::Result<Connector> {
        #[cfg(feature = "tls")]
        {
            let tls = b
                .tls
                .as_ref()
                .map(|tls| tls_client::client_config(b, tls))
                .transpose()?;
            Ok(Connector { tls })
        }
        #[cfg(not(feature = "tls"))]
        match b.tls {
            None => Ok(Connector {}),
            Some(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "bridge {}: bridge_cafile/bridge_capath set, but pipit was built without \
                     the `tls` feature",
                    b.name
                ),
            )),
        }
    }

    /// Wraps a connecting socket to `host` (the name its certificate must carry, over TLS).
    pub fn wrap(&self, socket: TcpStream, host: &str) -> io::Result<Stream> {
        #[cfg(feature = "tls")]
        if let Some(config) = &self.tls {
            let name = tls_client::server_name(host)?;
            let tls = TlsStream::client(socket, Arc::clone(config), name)?;
            return Ok(Stream::Tls(Box::new(tls)));
        }
        #[cfg(not(feature = "tls"))]
        let _ = host;
        Ok(Stream::Tcp(socket))
    }

    /// Whether the connection is TLS, for the log.
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }
}
