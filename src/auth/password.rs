//! Mosquitto password files: loading `username:hash` lines and checking CONNECT credentials.
//!
//! The two formats `mosquitto_passwd` writes, salt and hash in padded standard base64:
//! - `$7$ITERATIONS$SALT$HASH`: PBKDF2-HMAC-SHA512 with a 64-byte hash (Mosquitto 2's
//!   default: 101 iterations, 12-byte salt);
//! - `$6$SALT$HASH`: SHA-512 over the password bytes followed by the salt bytes (Mosquitto 1.6
//!   and earlier).
//!
//! Blank lines and lines starting with `#` are skipped. Invariants: every loaded user has a
//! well-formed hash with at most `MAX_ITERATIONS` iterations (a hostile file cannot make one
//! CONNECT burn minutes of CPU); hashes are compared in constant time, and an unknown user costs
//! a PBKDF2 run like a known one.

use crate::config::{ConfigError, read_file};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha512};
use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;

/// PBKDF2 iterations `pipit passwd` writes (Mosquitto 2's value).
pub const PBKDF2_ITERATIONS: u32 = 101;
/// Salt length in bytes `pipit passwd` writes (Mosquitto's value).
pub const SALT_LEN: usize = 12;
/// Most PBKDF2 iterations a password file may ask for; more is a load error.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Length of a SHA-512 digest, the stored hash in both formats.
const HASH_LEN: usize = 64;

/// One user's stored hash.
#[derive(PartialEq, Eq)]
enum Hash {
    /// `$6$`: SHA-512(password || salt).
    Sha512 { salt: Vec<u8>, hash: [u8; HASH_LEN] },
    /// `$7$`: PBKDF2-HMAC-SHA512(password, salt, iterations).
    Pbkdf2 {
        iterations: u32,
        salt: Vec<u8>,
        hash: [u8; HASH_LEN],
    },
}

impl Hash {
    fn parse(text: &str) -> Result<Hash, &'static str> {
        let mut fields = text.split('$');
        if fields.next() != Some("") {
            return Err("the password is not hashed (expected $6$ or $7$; use pipit passwd)");
        }
        let hash = match fields.next() {
            Some("6") => {
                let salt = decode_salt(fields.next())?;
                Hash::Sha512 {
                    salt,
                    hash: decode_hash(fields.next())?,
                }
            }
            Some("7") => {
                let iterations = fields.next().and_then(|i| i.parse::<u32>().ok());
                let iterations = match iterations {
                    Some(n @ 1..=MAX_ITERATIONS) => n,
                    _ => return Err("$7$ iteration count is not a number from 1 to 10000000"),
                };
                let salt = decode_salt(fields.next())?;
                Hash::Pbkdf2 {
                    iterations,
                    salt,
                    hash: decode_hash(fields.next())?,
                }
            }
            _ => return Err("unknown hash type (expected $6$ or $7$)"),
        };
        match fields.next() {
            Some(_) => Err("unexpected text after the hash"),
            None => Ok(hash),
        }
    }

    fn matches(&self, password: &[u8]) -> bool {
        let computed = match self {
            Hash::Sha512 { salt, .. } => {
                let digest = Sha512::new()
                    .chain_update(password)
                    .chain_update(salt)
                    .finalize();
                digest.into()
            }
            Hash::Pbkdf2 {
                iterations, salt, ..
            } => pbkdf2(password, salt, *iterations),
        };
        let (Hash::Sha512 { hash, .. } | Hash::Pbkdf2 { hash, .. }) = self;
        constant_time_eq(&computed, hash)
    }
}

fn decode_salt(field: Option<&str>) -> Result<Vec<u8>, &'static str> {
    match field.map(|f| BASE64.decode(f)) {
        Some(Ok(salt)) if !salt.is_empty() => Ok(salt),
        _ => Err("salt is not base64"),
    }
}

fn decode_hash(field: Option<&str>) -> Result<[u8; HASH_LEN], &'static str> {
    let decoded = field.map(|f| BASE64.decode(f));
    let bytes = decoded
        .and_then(Result::ok)
        .and_then(|h| <[u8; HASH_LEN]>::try_from(h).ok());
    bytes.ok_or("hash is not 64 bytes of base64")
}

pub(super) fn pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> [u8; HASH_LEN] {
    let mut out = [0; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    out
}

/// Compares every byte whatever the first difference, so timing does not reveal the prefix.
pub(super) fn constant_time_eq(a: &[u8; HASH_LEN], b: &[u8; HASH_LEN]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    black_box(diff) == 0
}

/// The `$7$` entry for `password` with the given salt and iteration count.
pub fn hash_pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> String {
    let hash = pbkdf2(password, salt, iterations);
    format!(
        "$7${iterations}${}${}",
        BASE64.encode(salt),
        BASE64.encode(hash)
    )
}

/// A loaded password file: usernames and their hashes.
pub struct PasswordFile {
    users: HashMap<String, Hash>,
}

impl PasswordFile {
    /// Reads and parses a password file; errors carry `FILE:LINE`.
    pub fn load(path: &Path) -> Result<PasswordFile, ConfigError> {
        PasswordFile::parse(&read_file(path)?, path)
    }

    /// Parses password-file text read from `origin` (named in errors).
    pub fn parse(text: &str, origin: &Path) -> Result<PasswordFile, ConfigError> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |message: String| ConfigError {
                file: origin.to_path_buf(),
                line: Some(index + 1),
                message,
            };
            let Some((username, hash)) = line.split_once(':') else {
                return Err(error("expected username:hash".to_string()));
            };
            if username.is_empty() {
                return Err(error("empty username".to_string()));
            }
            let hash = Hash::parse(hash.trim_end())
                .map_err(|why| error(format!("user \"{username}\": {why}")))?;
            if users.insert(username.to_string(), hash).is_some() {
                return Err(error(format!("user \"{username}\" is listed twice")));
            }
        }
        Ok(PasswordFile { users })
    }

    /// Whether `username` has an entry here, identical to its entry in `other`: a client that
    /// authenticated against `other` still would (compared stored hash to stored hash: the
    /// password is not kept, so a changed entry counts as changed even for the same password).
    pub fn same_entry(&self, other: &PasswordFile, username: &str) -> bool {
        self.users
            .get(username)
            .is_some_and(|hash| other.users.get(username) == Some(hash))
    }

    /// Whether `password` is `username`'s; false for an unknown user, after comparable work.
    pub fn check(&self, username: &str, password: &[u8]) -> bool {
        match self.users.get(username) {
            Some(hash) => hash.matches(password),
            None => {
                let decoy = pbkdf2(password, &[0; SALT_LEN], PBKDF2_ITERATIONS);
                black_box(constant_time_eq(&decoy, &[0; HASH_LEN]));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by `mosquitto_passwd` 2.0.11 (`-H sha512` for carol and dave).
    /// Passwords: user=pass, alice="s3cr3t:with colon", bob="", carol=p4ss,
    /// dave and erin="héllo wörld".
    const MOSQUITTO_FILE: &str = "\
user:$7$101$jQG99ae6XmrZWEnH$aRSxVh6YHPP5+wWmJu8N50jKExwt+C4x2vr4222VaA+VyaHsM6wxrJXy1tcR5RE2nLOUZlOcFnMacJFJ8oeccw==
alice:$7$101$UujlPOT6NvK7plSh$+b/Y0xQNMktGbvvXoW7qGFnEGw4T2QWr7/TKgtBQ30a56eZdT1jXu4teZTV5vAW3yoB8O9rL4qjjQBo4T+Ep6Q==
bob:$7$101$JvcUj2dprdhFg/JF$1rJbScTf7HD7mqkgTJa0wR/1le+p49fAPOSHhsJ4BGcNWMHcNEvj7ILCyf57otsmDQYmUxtUmW606N1yFGqx0Q==
carol:$6$wYZEpSbe0L7OkZZu$5jQrEkrAwa4chbZDu9Ur14DMIQlUQ7V/Yk7sX/ZU9lLi0JZiJ4ngQv2L7joba3OvRdPUdg9UoheXaPhp1ncycA==
dave:$6$UOTqTlG3XDUUaHhZ$i9EDIsqndx2oAQJUWXBvGP101yN3PHOT4RE2PltQLXVU57GwP0PcOurN3zoaXoG0G/wkdWeYt/0rLA+Mp7HMyA==
erin:$7$101$LfsX7eanLCHAg5cY$c/4pk6FVh+748446xl7h+IixdYrkvy+eak0xq1Q6nLwOVaGuRP8zsN1DEQk4TWvYlc+snXDPj4XP4E4lku+V+Q==
";

    fn parse(text: &str) -> Result<PasswordFile, ConfigError> {
        PasswordFile::parse(text, Path::new("pw"))
    }

    #[test]
    fn mosquitto_pbkdf2_entries_verify() {
        let file = parse(MOSQUITTO_FILE).unwrap();
        assert!(file.check("user", b"pass"));
        assert!(file.check("alice", b"s3cr3t:with colon"));
        assert!(file.check("bob", b""));
        assert!(file.check("erin", "héllo wörld".as_bytes()));
        assert!(!file.check("user", b"Pass"));
        assert!(!file.check("user", b""));
        assert!(!file.check("bob", b"x"));
    }

    #[test]
    fn mosquitto_sha512_entries_verify() {
        let file = parse(MOSQUITTO_FILE).unwrap();
        assert!(file.check("carol", b"p4ss"));
        assert!(file.check("dave", "héllo wörld".as_bytes()));
        assert!(!file.check("carol", b"p4ss "));
    }

    #[test]
    fn unknown_user_is_refused() {
        let file = parse(MOSQUITTO_FILE).unwrap();
        assert!(!file.check("mallory", b"pass"));
        assert!(!file.check("", b""));
        assert!(!file.check("User", b"pass"));
    }

    #[test]
    fn comments_blank_lines_and_crlf_are_accepted() {
        let text = format!("# users\n\n{}", MOSQUITTO_FILE.replace('\n', "\r\n"));
        assert!(parse(&text).unwrap().check("carol", b"p4ss"));
    }

    #[test]
    fn our_hash_round_trips() {
        let entry = hash_pbkdf2(b"pw", b"0123456789ab", PBKDF2_ITERATIONS);
        assert!(entry.starts_with("$7$101$MDEyMzQ1Njc4OWFi$"));
        let file = parse(&format!("u:{entry}\n")).unwrap();
        assert!(file.check("u", b"pw"));
        assert!(!file.check("u", b"pW"));
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let cases = [
            ("a:plaintext", "not hashed"),
            ("nocolon", "username:hash"),
            (":$6$c2FsdA==$AAAA", "empty username"),
            ("a:$5$c2FsdA==$AAAA", "unknown hash type"),
            ("a:$6$!!!$AAAA", "salt"),
            ("a:$6$c2FsdA==$AAAA", "64 bytes"),
            ("a:$7$abc$c2FsdA==$AAAA", "iteration"),
            ("a:$7$0$c2FsdA==$AAAA", "iteration"),
            ("a:$7$10000001$c2FsdA==$AAAA", "iteration"),
        ];
        for (line, expected) in cases {
            let err = parse(&format!("# header\n{line}\n")).err().unwrap();
            assert_eq!(err.line, Some(2), "{line}");
            assert!(err.to_string().starts_with("pw:2: "), "{err}");
            assert!(err.message.contains(expected), "{line}: {err}");
        }
    }

    #[test]
    fn trailing_fields_and_duplicates_are_refused() {
        let entry = hash_pbkdf2(b"pw", b"salt", 1);
        assert!(parse(&format!("a:{entry}$x\n")).is_err());
        let err = parse(&format!("a:{entry}\na:{entry}\n")).err().unwrap();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("twice"));
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = PasswordFile::load(Path::new("/nonexistent/pipit.pw"))
            .err()
            .unwrap();
        assert_eq!(err.line, None);
    }
}
