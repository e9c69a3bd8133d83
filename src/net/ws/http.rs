//! Plain HTTP on a WebSocket listener: with `http_dir`, a GET or HEAD is answered with a
//! file from that directory (as Mosquitto serves it), one request per connection; without
//! it, with `426 Upgrade Required`, where Mosquitto closes without a word.
//!
//! A request never reaches outside the directory: the target is percent-decoded, a `..`
//! segment is refused (403), and the file's canonical path (symlinks resolved) must lie
//! under the directory's canonical path (403 otherwise, as Mosquitto). A directory is
//! redirected to its path with a trailing `/`, which serves its `index.html`. Methods other
//! than GET and HEAD get 405, a missing file 404, anything but a regular file 403.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::handshake::Status;

const NOT_FOUND: Status = Status::new(404, "Not Found", "no such file in http_dir");
const FORBIDDEN: Status = Status::new(403, "Forbidden", "outside http_dir or not a file");

/// A file to send: the response head is written, the body follows.
#[derive(Debug)]
pub struct Body {
    /// The open file, read from its start.
    pub file: File,
    /// Bytes still to send.
    pub left: u64,
}

/// The answer to a plain HTTP request.
#[derive(Debug)]
pub enum Answer {
    /// 200 with this head and, unless the request was HEAD, this body.
    File(String, Option<Body>),
    /// A redirect (302) to the target with a trailing `/`.
    Redirect(String),
    /// An error status.
    Refused(Status),
}

/// Answers `method target` from `dir` (canonical), or 426 without one.
pub fn answer(dir: Option<&Path>, method: &str, target: &str) -> Answer {
    let Some(dir) = dir else {
        return Answer::Refused(Status {
            extra: "Upgrade: websocket\r\n",
            ..Status::new(426, "Upgrade Required", "HTTP request without http_dir")
        });
    };
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return Answer::Refused(Status {
                extra: "Allow: GET, HEAD\r\n",
                ..Status::new(
                    405,
                    "Method Not Allowed",
                    "HTTP method other than GET or HEAD",
                )
            });
        }
    };
    let path = match local_path(dir, target) {
        Ok(path) => path,
        Err(status) => return Answer::Refused(status),
    };
    let canonical = match path.canonicalize() {
        Ok(canonical) => canonical,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Answer::Refused(FORBIDDEN),
        Err(_) => return Answer::Refused(NOT_FOUND),
    };
    // A symlink may lead anywhere: only what resolves inside the directory is served.
    if !canonical.starts_with(dir) {
        return Answer::Refused(FORBIDDEN);
    }
    // Non-blocking: opening a named pipe would otherwise wait for a writer, with the loop.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&canonical);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Answer::Refused(FORBIDDEN),
        Err(_) => return Answer::Refused(NOT_FOUND),
    };
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(_) => return Answer::Refused(NOT_FOUND),
    };
    if meta.is_dir() {
        let path = target.split(['?', '#']).next().unwrap_or_default();
        return Answer::Redirect(format!("{path}/"));
    }
    if !meta.is_file() {
        return Answer::Refused(FORBIDDEN);
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\nServer: pipit\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        content_type(&canonical),
        meta.len()
    );
    let body = (!head_only).then_some(Body {
        file,
        left: meta.len(),
    });
    Answer::File(head, body)
}

/// The redirect response to `location`.
pub fn redirect(location: &str, out: &mut Vec<u8>) {
    let head = format!(
        "HTTP/1.1 302 Found\r\nServer: pipit\r\nLocation: {location}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    out.extend_from_slice(head.as_bytes());
}

/// The file `target` names under `dir`, not yet resolved: percent-decoded, query and
/// fragment dropped, `index.html` for a trailing `/`. A `..` segment, a NUL or a target
/// that is not a path is refused.
fn local_path(dir: &Path, target: &str) -> Result<PathBuf, Status> {
    let bad = Status::new(400, "Bad Request", "request target is not a path");
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(bad);
    }
    let decoded = percent_decode(path).ok_or(bad)?;
    let mut local = dir.to_path_buf();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(Status::new(403, "Forbidden", "`..` in the request path")),
            segment if segment.contains('\0') => return Err(bad),
            segment => local.push(segment),
        }
    }
    if decoded.ends_with('/') {
        local.push("index.html");
    }
    Ok(local)
}

/// `%XX` sequences decoded; `None` if one is broken or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = [bytes.next()?, bytes.next()?];
        let hex = std::str::from_utf8(&hex).ok()?;
        out.push(u8::from_str_radix(hex, 16).ok()?);
    }
    String::from_utf8(out).ok()
}

/// The Content-Type for a file, by its extension.
fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "wasm" => "application/wasm",
        "woff2" => "font/woff2",
        "xml" => "application/xml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pipit-http-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("www/sub")).unwrap();
        std::fs::write(dir.join("www/index.html"), "<p>hi</p>").unwrap();
        std::fs::write(dir.join("www/sub/a b.js"), "x").unwrap();
        std::fs::write(dir.join("secret.txt"), "no").unwrap();
        std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("www/link.txt")).unwrap();
        dir.canonicalize().unwrap()
    }

    fn code(answer: &Answer) -> u16 {
        match answer {
            Answer::File(..) => 200,
            Answer::Redirect(_) => 302,
            Answer::Refused(status) => status.code,
        }
    }

    #[test]
    fn files_inside_are_served_and_nothing_outside() {
        let root = dir();
        let www = root.join("www");
        let cases = [
            ("GET", "/", 200),
            ("GET", "/index.html?v=1", 200),
            ("HEAD", "/index.html", 200),
            ("GET", "/sub/a%20b.js", 200),
            ("GET", "/sub", 302),
            ("GET", "/nope.html", 404),
            ("GET", "/../secret.txt", 403),
            ("GET", "/%2e%2e/secret.txt", 403),
            ("GET", "/sub/%2E%2E/%2e%2e/secret.txt", 403),
            ("GET", "/link.txt", 403),
            ("GET", "/%zz", 400),
            ("GET", "/a%00b", 400),
            ("GET", "http://x/index.html", 400),
            ("POST", "/index.html", 405),
        ];
        for (method, target, expected) in cases {
            let got = answer(Some(&www), method, target);
            assert_eq!(code(&got), expected, "{method} {target}: {got:?}");
        }
        let Answer::File(head, body) = answer(Some(&www), "GET", "/") else {
            panic!("not served");
        };
        assert!(head.contains("Content-Type: text/html; charset=utf-8\r\n"));
        assert!(head.contains("Content-Length: 9\r\n"));
        assert_eq!(body.map(|b| b.left), Some(9));
        let Answer::File(_, body) = answer(Some(&www), "HEAD", "/") else {
            panic!("not served");
        };
        assert!(body.is_none(), "HEAD has no body");
        let Answer::Redirect(location) = answer(Some(&www), "GET", "/sub?x") else {
            panic!("not redirected");
        };
        assert_eq!(location, "/sub/");
        assert_eq!(code(&answer(None, "GET", "/")), 426);
        let _ = std::fs::remove_dir_all(root);
    }
}
