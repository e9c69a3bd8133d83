//! The opening handshake (RFC 6455 section 4): the client's HTTP/1.1 request head, parsed
//! with `httparse`, is either a WebSocket upgrade, answered `101 Switching Protocols`, or a
//! plain HTTP request (served from `http_dir`, see `http`), or is refused with a 4xx status.
//!
//! As Mosquitto: any request path is accepted; the subprotocol is the first of the client's
//! `Sec-WebSocket-Protocol` list that is `mqtt` or `mqttv3.1` (compared exactly), echoed back.
//! A client that offers subprotocols, none of them MQTT, is refused (400; Mosquitto closes
//! without a word). A client that offers none is answered without the header and spoken MQTT
//! to (Mosquitto answers 101 and then ignores what it sends).

use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 4.2.2 appends to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The subprotocols pipit speaks, as Mosquitto names them.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];
/// Most header lines in a request; more is refused with 431.
const MAX_HEADERS: usize = 64;

/// An HTTP status pipit answers with: the code, its reason phrase, an extra header line (or
/// "") and why, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The status code.
    pub code: u16,
    /// The reason phrase.
    pub phrase: &'static str,
    /// One more header line, with its CRLF, or "".
    pub extra: &'static str,
    /// Why, for the log.
    pub why: &'static str,
}

impl Status {
    /// A status with no extra header.
    pub const fn new(code: u16, phrase: &'static str, why: &'static str) -> Status {
        Status {
            code,
            phrase,
            extra: "",
            why,
        }
    }
}

/// A request head too large for `websockets_headers_size`.
pub const TOO_LARGE: Status = Status::new(
    431,
    "Request Header Fields Too Large",
    "request head larger than websockets_headers_size",
);

/// What the client asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A valid WebSocket upgrade.
    Upgrade {
        /// The `Sec-WebSocket-Accept` value.
        accept: String,
        /// The subprotocol chosen, if the client offered any.
        protocol: Option<&'static str>,
        /// The request target, for the log.
        target: String,
    },
    /// A plain HTTP request.
    Http {
        /// The method.
        method: String,
        /// The request target (path and query).
        target: String,
    },
}

/// Parses a request head from the front of `buf`: `Ok(None)` while incomplete, else the
/// request and the head's length. A head past `limit` bytes is refused with 431, a request
/// that is not HTTP/1.x or a broken upgrade with 400 (426 for a WebSocket version other
/// than 13).
pub fn parse(buf: &[u8], limit: usize) -> Result<Option<(Request, usize)>, Status> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= limit => len,
        Ok(httparse::Status::Partial) if buf.len() < limit => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(TOO_LARGE),
        Err(_) => return Err(Status::new(400, "Bad Request", "not an HTTP request")),
    };
    let method = request.method.unwrap_or_default();
    let target = request.path.unwrap_or_default().to_string();
    let headers = &*request.headers;
    if !has_token(headers, "upgrade", "websocket") {
        let method = method.to_string();
        return Ok(Some((Request::Http { method, target }, len)));
    }
    let bad = |why| Status::new(400, "Bad Request", why);
    // [RFC 6455 4.1] an upgrade is a GET in HTTP/1.1 or later, asking for it in Connection.
    if method != "GET" || request.version != Some(1) {
        return Err(bad("WebSocket upgrade that is not an HTTP/1.1 GET"));
    }
    if !has_token(headers, "connection", "upgrade") {
        return Err(bad("WebSocket upgrade without Connection: Upgrade"));
    }
    if values(headers, "sec-websocket-version").ne(["13"]) {
        return Err(Status {
            extra: "Sec-WebSocket-Version: 13\r\n",
            ..Status::new(426, "Upgrade Required", "WebSocket version other than 13")
        });
    }
    let key = values(headers, "sec-websocket-key")
        .next()
        .unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD.decode(key);
    if decoded.map_or(true, |k| k.len() != 16) {
        return Err(bad("missing or malformed Sec-WebSocket-Key"));
    }
    let mut offered = values(headers, "sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .peekable();
    let protocol = match offered.peek() {
        None => None,
        Some(_) => match offered.find_map(|p| SUBPROTOCOLS.into_iter().find(|&s| s == p)) {
            Some(protocol) => Some(protocol),
            None => return Err(bad("no MQTT subprotocol (mqtt, mqttv3.1) offered")),
        },
    };
    let accept = accept_key(key);
    Ok(Some((
        Request::Upgrade {
            accept,
            protocol,
            target,
        },
        len,
    )))
}

/// The `Sec-WebSocket-Accept` value for a client's key [RFC 6455 4.2.2].
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// Appends the `101 Switching Protocols` response to `out`.
pub fn switching(accept: &str, protocol: Option<&str>, out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    out.extend_from_slice(format!("Sec-WebSocket-Accept: {accept}\r\n").as_bytes());
    if let Some(protocol) = protocol {
        out.extend_from_slice(format!("Sec-WebSocket-Protocol: {protocol}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a complete response with status `status` and a one-line plain-text body (left out
/// for HEAD) to `out`; the connection closes after it.
pub fn refusal(status: Status, head_only: bool, out: &mut Vec<u8>) {
    let body = format!("{} {}\n", status.code, status.phrase);
    let head = format!(
        "HTTP/1.1 {} {}\r\nServer: pipit\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n{}Connection: close\r\n\r\n",
        status.code,
        status.phrase,
        body.len(),
        status.extra,
    );
    out.extend_from_slice(head.as_bytes());
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
}

/// The values of every header `name` (case-insensitive), trimmed.
fn values<'a>(
    headers: &'a [httparse::Header<'_>],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim)
}

/// Whether header `name` lists `token` (comma-separated, case-insensitive).
fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    values(headers, name)
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 1.3's example key.
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn upgrade(path: &str, extra: &str) -> String {
        format!(
            "GET {path} HTTP/1.1\r\nHost: broker\r\nUpgrade: websocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
             Sec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    /// Parses `text` whole and cut at every byte: each prefix is incomplete, the whole is
    /// the same answer.
    fn every_split(text: &str) -> Result<Option<(Request, usize)>, Status> {
        let bytes = text.as_bytes();
        for cut in 0..bytes.len() {
            match parse(&bytes[..cut], 4096) {
                Ok(None) => {}
                // A broken request line may be seen before the end.
                Err(status) if status.code == 400 => {}
                other => panic!("prefix of {cut} bytes gave {other:?}"),
            }
        }
        parse(bytes, 4096)
    }

    #[test]
    fn the_accept_key_is_the_rfc_example() {
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn an_upgrade_on_any_path_chooses_the_first_mqtt_subprotocol() {
        let cases = [
            ("/mqtt", "Sec-WebSocket-Protocol: mqtt\r\n", Some("mqtt")),
            (
                "/",
                "Sec-WebSocket-Protocol: mqttv3.1\r\n",
                Some("mqttv3.1"),
            ),
            (
                "/a/b?c=d",
                "Sec-WebSocket-Protocol: foo, mqtt\r\n",
                Some("mqtt"),
            ),
            (
                "/",
                "Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\n",
                Some("mqttv3.1"),
            ),
            (
                "/",
                "Sec-WebSocket-Protocol: x\r\nSec-WebSocket-Protocol: mqtt\r\n",
                Some("mqtt"),
            ),
            ("/", "", None),
        ];
        for (path, extra, protocol) in cases {
            let text = upgrade(path, extra);
            let expected = Request::Upgrade {
                accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
                protocol,
                target: path.into(),
            };
            assert_eq!(
                every_split(&text),
                Ok(Some((expected, text.len()))),
                "{text}"
            );
        }
    }

    #[test]
    fn bytes_after_the_head_are_not_part_of_it() {
        let text = upgrade("/", "Sec-WebSocket-Protocol: mqtt\r\n");
        let with_frame = format!("{text}\u{82}");
        let (_, len) = parse(with_frame.as_bytes(), 4096).unwrap().unwrap();
        assert_eq!(len, text.len());
    }

    #[test]
    fn broken_upgrades_are_refused() {
        let cases = [
            (upgrade("/", "Sec-WebSocket-Protocol: MQTT\r\n"), 400),
            (upgrade("/", "Sec-WebSocket-Protocol: mqttv311\r\n"), 400),
            (upgrade("/", "").replace("Version: 13", "Version: 8"), 426),
            (upgrade("/", "").replace(KEY, "c2hvcnQ="), 400),
            (
                upgrade("/", "").replace("keep-alive, Upgrade", "keep-alive"),
                400,
            ),
            (upgrade("/", "").replace("GET", "POST"), 400),
            (upgrade("/", "").replace("HTTP/1.1", "HTTP/1.0"), 400),
            ("\x16\x03\x01\x02\x00\r\n\r\n".to_string(), 400),
        ];
        for (text, code) in cases {
            let got = parse(text.as_bytes(), 4096).map_err(|s| s.code);
            assert_eq!(got, Err(code), "{text:?}");
        }
    }

    #[test]
    fn plain_requests_are_http() {
        let text = "HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
        let expected = Request::Http {
            method: "HEAD".into(),
            target: "/index.html".into(),
        };
        assert_eq!(every_split(text), Ok(Some((expected, text.len()))));
    }

    #[test]
    fn a_head_past_the_bound_is_431() {
        let text = upgrade("/", &format!("X-Pad: {}\r\n", "a".repeat(200)));
        assert!(matches!(parse(text.as_bytes(), text.len()), Ok(Some(_))));
        assert_eq!(parse(text.as_bytes(), text.len() - 1), Err(TOO_LARGE));
        let partial = &text.as_bytes()[..100];
        assert_eq!(parse(partial, 100), Err(TOO_LARGE));
        assert_eq!(parse(partial, 101), Ok(None));
        let many: String = (0..70).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(parse(upgrade("/", &many).as_bytes(), 4096), Err(TOO_LARGE));
    }

    #[test]
    fn refusals_are_complete_responses() {
        let mut out = Vec::new();
        refusal(TOO_LARGE, false, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(text.ends_with("\r\n\r\n431 Request Header Fields Too Large\n"));
        assert!(text.contains("Content-Length: 36\r\n"));
    }
}
