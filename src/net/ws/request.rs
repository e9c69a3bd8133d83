//! The request head of a WebSocket listener's connection, read and answered: the `101`
//! that opens the connection, or the answer to a plain HTTP request (a file from
//! `http_dir`, a redirect, a 4xx), after which the connection closes. Part of `WsStream`.

use std::io::{self, Read};

use super::handshake::{self, Request};
use super::{State, WsClose, WsStream, http, log_bits};

impl WsStream {
    /// Reads the request head until it is whole and answers it. `Ok(true)` at EOF,
    /// `Ok(false)` once upgraded; an answered HTTP request ends in an error (`WouldBlock`
    /// while the answer is still being sent).
    pub(super) fn read_head(&mut self) -> io::Result<bool> {
        let limit = self.config.headers_size;
        loop {
            let State::Handshake(head) = &mut self.state else {
                return Ok(false);
            };
            let old = head.len();
            head.resize(limit.min(old.saturating_mul(2).max(512)), 0);
            let read = self.inner.read(&mut head[old..]);
            head.truncate(old + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return Ok(true),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let head = std::mem::take(head);
            match handshake::parse(&head, limit) {
                Ok(None) => self.state = State::Handshake(head),
                Ok(Some((request, len))) => {
                    self.log_headers(&head[..len]);
                    return self.answer(request, head[len..].to_vec());
                }
                Err(status) => {
                    handshake::refusal(status, false, &mut self.out);
                    self.log(log_bits::ERR, format_args!("refused: {}", status.why));
                    return self.finish_answer(State::Answered, WsClose::Refused(status.why));
                }
            }
        }
    }

    /// Logs each header line with the HEADER bit.
    fn log_headers(&self, head: &[u8]) {
        if self.config.log_level & log_bits::HEADER == 0 {
            return;
        }
        for line in String::from_utf8_lossy(head)
            .lines()
            .filter(|l| !l.is_empty())
        {
            self.log(log_bits::HEADER, format_args!("header: {line}"));
        }
    }

    /// Answers a whole request head; `early` is what came after it.
    fn answer(&mut self, request: Request, early: Vec<u8>) -> io::Result<bool> {
        match request {
            Request::Upgrade {
                accept,
                protocol,
                target,
            } => {
                handshake::switching(&accept, protocol, &mut self.out);
                self.state = State::Open(early);
                let protocol = protocol.unwrap_or("none");
                self.log(
                    log_bits::INFO,
                    format_args!("upgraded on {target}, subprotocol {protocol}"),
                );
                // The socket takes the 101 now unless it is full; if not, the first write
                // or writable event sends it.
                self.flush_out()?;
                Ok(false)
            }
            Request::Http { method, target } => {
                let dir = self.config.http_dir.as_deref();
                let (state, code) = match http::answer(dir, &method, &target) {
                    http::Answer::File(head, body) => {
                        self.out.extend_from_slice(head.as_bytes());
                        (
                            body.map_or(State::Answered, |b| State::Body(Box::new(b))),
                            200,
                        )
                    }
                    http::Answer::Redirect(location) => {
                        http::redirect(&location, &mut self.out);
                        (State::Answered, 302)
                    }
                    http::Answer::Refused(status) => {
                        handshake::refusal(status, method == "HEAD", &mut self.out);
                        self.failure = Some(WsClose::Refused(status.why));
                        (State::Answered, status.code)
                    }
                };
                self.log(log_bits::INFO, format_args!("{method} {target}: {code}"));
                let why = self.failure.unwrap_or(WsClose::Answered);
                self.finish_answer(state, why)
            }
        }
    }

    /// Enters `state` (an HTTP answer in `out`) and sends what the socket takes; the
    /// connection ends with `why` once all is sent.
    fn finish_answer(&mut self, state: State, why: WsClose) -> io::Result<bool> {
        self.state = state;
        self.failure = Some(why);
        match self.flush_pending() {
            Ok(_) => Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => Err(e),
        }
    }
}
