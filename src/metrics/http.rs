//! The Prometheus endpoint's HTTP/1.1 server, on the broker's own loop: `GET /metrics`
//! answers 200 with the exposition, another path 404, another method 405, a request that is
//! not HTTP 400. One request per connection (`Connection: close`).
//!
//! Bounds, so a scraper gone wrong costs little and never stalls the loop: at most
//! `MAX_CONNECTIONS` at once (one more is closed at accept), a request head of at most
//! `MAX_REQUEST` bytes (a longer one gets 431 and is closed), and `DEADLINE` for the whole
//! exchange (a client that sends slowly or does not read the answer is closed by the sweep).
//! Sockets are non-blocking and edge-triggered like the MQTT ones: reads and writes go to
//! `WouldBlock` and resume on the next event.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use log::debug;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use slab::Slab;

/// Most scrapes served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest request head read, in bytes.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long one exchange may take, from accept to the last byte of the answer.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// What a complete request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `GET /metrics`.
    Metrics,
    /// Another path.
    NotFound,
    /// Another method.
    MethodNotAllowed,
    /// Not an HTTP request, or over `MAX_REQUEST`.
    Bad(u16, &'static str),
}

/// Parses the request head in `bytes`: `None` while it is incomplete.
pub fn parse(bytes: &[u8]) -> Option<Request> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Partial) if bytes.len() < MAX_REQUEST => None,
        Ok(httparse::Status::Partial) => Some(Request::Bad(431, "Request Header Fields Too Large")),
        Err(_) => Some(Request::Bad(400, "Bad Request")),
        Ok(httparse::Status::Complete(_)) => {
            let path = request.path.unwrap_or_default();
            let path = path.split_once('?').map_or(path, |(path, _)| path);
            Some(match (request.method, path) {
                (Some("GET"), "/metrics") => Request::Metrics,
                (Some("GET"), _) => Request::NotFound,
                _ => Request::MethodNotAllowed,
            })
        }
    }
}

/// The whole answer to `request`; `body` gives the exposition and its content type.
pub fn response(request: Request, body: impl FnOnce() -> (String, &'static str)) -> Vec<u8> {
    let (status, reason, extra, (body, content_type)) = match request {
        Request::Metrics => (200, "OK", "", body()),
        Request::NotFound => (404, "Not Found", "", ("not found\n".into(), "text/plain")),
        Request::MethodNotAllowed => (
            405,
            "Method Not Allowed",
            "Allow: GET\r\n",
            ("method not allowed\n".into(), "text/plain"),
        ),
        Request::Bad(status, reason) => (status, reason, "", (format!("{reason}\n"), "text/plain")),
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         {extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// One scrape in progress.
#[derive(Debug)]
struct Exchange {
    socket: TcpStream,
    /// The request head so far (at most `MAX_REQUEST` bytes).
    request: Vec<u8>,
    /// The answer, once the request is complete, and how much of it is written.
    response: Option<(Vec<u8>, usize)>,
    deadline: Instant,
}

/// The metrics listener and its scrapes in progress. Its tokens: the listener's, then one
/// per slot below it.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    token: usize,
    exchanges: Slab<Exchange>,
}

impl MetricsServer {
    /// Binds `addr` and registers it with `token`; scrapes take the `MAX_CONNECTIONS`
    /// tokens below it.
    pub fn bind(addr: SocketAddr, registry: &Registry, token: usize) -> io::Result<Self> {
        let mut listener = TcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("metrics_listener {addr}: {e}")))?;
        registry.register(&mut listener, Token(token), Interest::READABLE)?;
        Ok(MetricsServer {
            listener,
            token,
            exchanges: Slab::with_capacity(MAX_CONNECTIONS),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether `token` is the listener's or a scrape's.
    pub fn owns(&self, token: Token) -> bool {
        token.0 <= self.token && token.0 + MAX_CONNECTIONS >= self.token
    }

    /// Handles an event on one of its tokens; `body` renders the exposition if a scrape
    /// asks for it.
    pub fn on_event(
        &mut self,
        registry: &Registry,
        token: Token,
        now: Instant,
        body: impl FnOnce() -> (String, &'static str),
    ) {
        if token.0 == self.token {
            self.accept(registry, now);
            return;
        }
        let key = self.token - 1 - token.0;
        let Some(exchange) = self.exchanges.get_mut(key) else {
            return;
        };
        match exchange.advance(body) {
            Ok(false) => {}
            Ok(true) => self.finish(registry, key),
            Err(e) => {
                debug!("metrics scrape: {e}");
                self.finish(registry, key);
            }
        }
    }

    /// Closes the scrapes past their deadline at `now`.
    pub fn expire(&mut self, registry: &Registry, now: Instant) {
        let late: Vec<usize> = self
            .exchanges
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(key, _)| key)
            .collect();
        for key in late {
            debug!("metrics scrape: closed after {DEADLINE:?}");
            self.finish(registry, key);
        }
    }

    fn accept(&mut self, registry: &Registry, now: Instant) {
        loop {
            let (mut socket, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("metrics accept failed: {e}");
                    return;
                }
            };
            if self.exchanges.len() >= MAX_CONNECTIONS {
                debug!("metrics scrape from {peer} closed: {MAX_CONNECTIONS} already open");
                continue;
            }
            let entry = self.exchanges.vacant_entry();
            let token = Token(self.token - 1 - entry.key());
            if let Err(e) =
                registry.register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)
            {
                debug!("metrics scrape from {peer}: {e}");
                continue;
            }
            entry.insert(Exchange {
                socket,
                request: Vec::new(),
                response: None,
                deadline: now + DEADLINE,
            });
        }
    }

    fn finish(&mut self, registry: &Registry, key: usize) {
        if let Some(mut exchange) = self.exchanges.try_remove(key) {
            let _ = registry.deregister(&mut exchange.socket);
            let _ = exchange.socket.shutdown(Shutdown::Both);
        }
    }
}

impl Exchange {
    /// Reads the request and writes the answer as far as the socket allows; `true` once the
    /// exchange is over.
    fn advance(&mut self, body: impl FnOnce() -> (String, &'static str)) -> io::Result<bool> {
        if self.response.is_none() {
            let Some(request) = self.read_request()? else {
                return Ok(false);
            };
            self.response = Some((response(request, body), 0));
        }
        let Some((out, written)) = self.response.as_mut() else {
            return Ok(false);
        };
        while *written < out.len() {
            match self.socket.write(&out[*written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => *written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads what is available of the request head; the request once it is complete (or
    /// too long). EOF before that is an error.
    fn read_request(&mut self) -> io::Result<Option<Request>> {
        let mut chunk = [0u8; 1024];
        loop {
            let room = MAX_REQUEST - self.request.len();
            match self.socket.read(&mut chunk[..room.min(1024)]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.request.extend_from_slice(&chunk[..n]);
                    if let Some(request) = parse(&self.request) {
                        return Ok(Some(request));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_apart() {
        let cases: [(&[u8], Option<Request>); 7] = [
            (
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                Some(Request::Metrics),
            ),
            (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", Some(Request::Metrics)),
            (b"GET / HTTP/1.1\r\n\r\n", Some(Request::NotFound)),
            (
                b"POST /metrics HTTP/1.1\r\n\r\n",
                Some(Request::MethodNotAllowed),
            ),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n", None),
            (
                b"\x10\x0c\x00\x04MQTT",
                Some(Request::Bad(400, "Bad Request")),
            ),
            (b"GET /metrics HTTP/1.1\r\nX: ", None),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                parse(bytes),
                expected,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let long = [
            b"GET /metrics HTTP/1.1\r\nX: ".as_slice(),
            &[b'a'; MAX_REQUEST],
        ]
        .concat();
        assert_eq!(
            parse(&long[..MAX_REQUEST]),
            Some(Request::Bad(431, "Request Header Fields Too Large"))
        );
    }

    #[test]
    fn answers_carry_length_and_close() {
        let answer =
            String::from_utf8(response(Request::Metrics, || ("a 1\n".into(), "t/p"))).unwrap();
        assert_eq!(
            answer,
            "HTTP/1.1 200 OK\r\nContent-Type: t/p\r\nContent-Length: 4\r\nConnection: close\r\n\r\na 1\n"
        );
        let answer = response(Request::MethodNotAllowed, || unreachable!());
        assert!(
            String::from_utf8(answer)
                .unwrap()
                .contains("405 Method Not Allowed\r\n")
        );
    }
}
