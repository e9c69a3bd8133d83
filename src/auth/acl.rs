//! Mosquitto ACL files: which client may read, write or subscribe to which topics.
//!
//! Format, one rule per line, `#` lines are comments:
//! - `topic [read|write|readwrite|deny] TOPIC`: access defaults to `readwrite`. Rules before
//!   the first `user` line apply to anonymous clients; after `user NAME`, to that user only.
//! - `pattern [read|write|readwrite|deny] TOPIC`: applies to every client; a level that is
//!   exactly `%c` or `%u` stands for the client id or username.
//!
//! Semantics, as Mosquitto's: with an ACL file a client may do only what a rule grants; a
//! matching `deny` rule wins over any grant. What "matching" means by access:
//! - `Write` (a PUBLISH topic name) and `Read` (a topic name at delivery) match the rule's
//!   topic as a subscription filter matches a topic name, so a leading `+`/`#` never matches a
//!   `$` topic [MQTT-4.7.2-1].
//! - `Subscribe` (a topic filter) needs a read/readwrite rule that covers the filter: every
//!   topic the filter can match, the rule matches too (rule `sensors/#` allows `sensors/+/temp`
//!   and `sensors/#`, not `#`). A `deny` rule refuses the subscription only when it covers the
//!   whole filter; a wider filter is allowed and its denied topics are withheld at delivery by
//!   the `Read` check.
//!
//! `%c`/`%u` only match a client id or username with no `/`, `+` or `#`, so nobody can widen a
//! pattern by choosing their name; `%u` never matches an anonymous client. Checks allocate
//! nothing: the topic is compared level by level against the parsed rule.

use crate::config::{ConfigError, read_file};
use std::collections::HashMap;
use std::path::Path;

/// What a client asks to do with a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Receive a message published to this topic name.
    Read,
    /// Publish to this topic name.
    Write,
    /// Subscribe with this topic filter (a shared subscription's filter without its
    /// `$share/GROUP/` prefix).
    Subscribe,
    /// Unsubscribe this topic filter (checked by dynamic security only).
    Unsubscribe,
}

/// What a rule grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grant {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Grant {
    fn allows(self, access: Access) -> bool {
        match access {
            Access::Read | Access::Subscribe => matches!(self, Grant::Read | Grant::ReadWrite),
            Access::Write => matches!(self, Grant::Write | Grant::ReadWrite),
            // Mosquitto's ACL file does not restrict unsubscribing.
            Access::Unsubscribe => true,
        }
    }
}

/// One level of a rule's topic.
#[derive(Debug)]
enum Level {
    Literal(String),
    /// `+`: any one level.
    Plus,
    /// `#`: this level and all below, or none.
    Hash,
    /// `%c` in a `pattern` rule.
    ClientId,
    /// `%u` in a `pattern` rule.
    Username,
}

/// Who is asking, for `%c`/`%u`.
#[derive(Clone, Copy)]
struct Client<'a> {
    id: &'a str,
    username: Option<&'a str>,
}

#[derive(Debug)]
struct Rule {
    grant: Grant,
    levels: Vec<Level>,
}

impl Rule {
    fn parse(text: &str, substitute: bool) -> Result<Rule, String> {
        let (grant, topic) = match text.split_once(char::is_whitespace) {
            Some((word, rest)) => match grant(word) {
                Some(grant) => (grant, rest.trim()),
                None => (Grant::ReadWrite, text),
            },
            None if grant(text).is_some() => return Err(format!("missing topic after \"{text}\"")),
            None => (Grant::ReadWrite, text),
        };
        let count = topic.split('/').count();
        let mut levels = Vec::with_capacity(count);
        for (index, level) in topic.split('/').enumerate() {
            levels.push(match level {
                "+" => Level::Plus,
                "#" if index + 1 == count => Level::Hash,
                "%c" if substitute => Level::ClientId,
                "%u" if substitute => Level::Username,
                _ if level.contains(['+', '#']) => {
                    return Err(format!("\"{topic}\" is not a valid topic filter"));
                }
                _ => Level::Literal(level.to_string()),
            });
        }
        Ok(Rule { grant, levels })
    }

    /// Whether this rule's topic matches `topic` (a name, or a filter it must cover).
    fn applies(&self, topic: &str, access: Access, client: Client) -> bool {
        let is_filter = access == Access::Subscribe;
        let mut names = topic.split('/');
        for (index, level) in self.levels.iter().enumerate() {
            if index == 0 && topic.starts_with('$') && matches!(level, Level::Plus | Level::Hash) {
                return false; // [MQTT-4.7.2-1]
            }
            let matched = match (level, names.next()) {
                (Level::Hash, _) => return true,
                (_, None) => return false,
                (Level::Plus, Some(name)) => !(is_filter && name == "#"),
                (Level::Literal(literal), Some(name)) => name == literal,
                (Level::ClientId, Some(name)) => substitutes(client.id, name),
                (Level::Username, Some(name)) => {
                    client.username.is_some_and(|u| substitutes(u, name))
                }
            };
            if !matched {
                return false;
            }
        }
        names.next().is_none()
    }
}

fn grant(word: &str) -> Option<Grant> {
    match word {
        "read" => Some(Grant::Read),
        "write" => Some(Grant::Write),
        "readwrite" => Some(Grant::ReadWrite),
        "deny" => Some(Grant::Deny),
        _ => None,
    }
}

/// Whether `value` (a client id or username) stands for the topic level `name`.
fn substitutes(value: &str, name: &str) -> bool {
    value == name && !value.contains(['/', '+', '#'])
}

/// A loaded ACL file.
#[derive(Debug)]
pub struct AclFile {
    /// `topic` rules before the first `user` line.
    anonymous: Vec<Rule>,
    /// `topic` rules of each user section (sections of the same user are merged).
    users: HashMap<String, Vec<Rule>>,
    /// `pattern` rules, for every client.
    patterns: Vec<Rule>,
}

impl AclFile {
    /// Reads and parses an ACL file; errors carry `FILE:LINE`.
    pub fn load(path: &Path) -> Result<AclFile, ConfigError> {
        AclFile::parse(&read_file(path)?, path)
    }

    /// Parses ACL text read from `origin` (named in errors).
    pub fn parse(text: &str, origin: &Path) -> Result<AclFile, ConfigError> {
        let mut acl = AclFile {
            anonymous: Vec::new(),
            users: HashMap::new(),
            patterns: Vec::new(),
        };
        let mut user: Option<String> = None;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |message: String| ConfigError {
                file: origin.to_path_buf(),
                line: Some(index + 1),
                message,
            };
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            if rest.is_empty() {
                return Err(error(format!("\"{keyword}\" needs a value")));
            }
            match keyword {
                "user" => {
                    acl.users.entry(rest.to_string()).or_default();
                    user = Some(rest.to_string());
                }
                "topic" => {
                    let rule = Rule::parse(rest, false).map_err(error)?;
                    match &user {
                        Some(name) => acl.users.entry(name.clone()).or_default().push(rule),
                        None => acl.anonymous.push(rule),
                    }
                }
                "pattern" => acl.patterns.push(Rule::parse(rest, true).map_err(error)?),
                other => return Err(error(format!("unknown keyword \"{other}\""))),
            }
        }
        Ok(acl)
    }

    /// Whether the client may have `access` to `topic` (a topic filter for `Subscribe`).
    pub fn check(
        &self,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> bool {
        let own = match username {
            Some(name) => self.users.get(name).map_or(&[][..], Vec::as_slice),
            None => &self.anonymous,
        };
        let client = Client {
            id: client_id,
            username,
        };
        let rules = || own.iter().chain(&self.patterns);
        if rules().any(|r| r.grant == Grant::Deny && r.applies(topic, access, client)) {
            return false;
        }
        rules().any(|r| r.grant.allows(access) && r.applies(topic, access, client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Access::{Read, Subscribe, Write};

    fn rules(text: &str) -> AclFile {
        AclFile::parse(text, Path::new("acl")).unwrap()
    }

    const FILE: &str = "\
# anonymous clients
topic read public/#
topic read $SYS/broker/uptime

user alice
topic readwrite sensors/#
topic deny sensors/secret
topic write alerts

user bob
topic sensors/+/temp

pattern write clients/%c/status
pattern readwrite users/%u/#
";

    #[test]
    fn anonymous_section_applies_only_to_anonymous_clients() {
        let acl = rules(FILE);
        assert!(acl.check("c", None, "public/news", Read));
        assert!(!acl.check("c", None, "public/news", Write));
        assert!(!acl.check("c", Some("alice"), "public/news", Read));
        assert!(!acl.check("c", Some("carol"), "public/news", Read));
    }

    #[test]
    fn user_sections_grant_their_access() {
        let acl = rules(FILE);
        assert!(acl.check("c", Some("alice"), "sensors/a/temp", Read));
        assert!(acl.check("c", Some("alice"), "sensors/a/temp", Write));
        assert!(acl.check("c", Some("alice"), "alerts", Write));
        assert!(!acl.check("c", Some("alice"), "alerts", Read));
        assert!(acl.check("c", Some("bob"), "sensors/x/temp", Write));
        assert!(!acl.check("c", Some("bob"), "sensors/x/humidity", Read));
    }

    #[test]
    fn deny_wins_over_grants() {
        let acl = rules(FILE);
        assert!(!acl.check("c", Some("alice"), "sensors/secret", Read));
        assert!(!acl.check("c", Some("alice"), "sensors/secret", Write));
        assert!(!acl.check("c", Some("alice"), "sensors/secret", Subscribe));
        assert!(acl.check("c", Some("alice"), "sensors/secret/x", Read));
        let acl = rules(&format!("pattern deny users/%u/private\n{FILE}"));
        assert!(!acl.check("c", Some("bob"), "users/bob/private", Write));
        assert!(acl.check("c", Some("bob"), "users/bob/public", Write));
    }

    #[test]
    fn patterns_substitute_client_id_and_username() {
        let acl = rules(FILE);
        assert!(acl.check("dev1", None, "clients/dev1/status", Write));
        assert!(!acl.check("dev1", None, "clients/dev2/status", Write));
        assert!(!acl.check("dev1", None, "clients/dev1/status", Read));
        assert!(acl.check("c", Some("carol"), "users/carol/a/b", Read));
        assert!(acl.check("c", Some("carol"), "users/carol", Write));
        assert!(!acl.check("c", Some("carol"), "users/dave/a", Read));
        assert!(!acl.check("c", None, "users//a", Read));
    }

    #[test]
    fn wildcard_names_cannot_widen_patterns() {
        let acl = rules(FILE);
        assert!(!acl.check("+", None, "clients/+/status", Write));
        assert!(!acl.check("c", Some("+"), "users/+/a", Subscribe));
        assert!(!acl.check("c", Some("#"), "users/#", Subscribe));
        assert!(!acl.check("a/b", None, "clients/a/b/status", Write));
        assert!(acl.check("c", Some("carol"), "users/carol/+", Subscribe));
    }

    #[test]
    fn subscriptions_must_be_covered_by_a_read_rule() {
        let acl = rules(FILE);
        let alice = |filter| acl.check("c", Some("alice"), filter, Subscribe);
        assert!(alice("sensors/#"));
        assert!(alice("sensors/+/temp"));
        assert!(alice("sensors"));
        assert!(!alice("#"));
        assert!(!alice("+/temp"));
        assert!(!alice("alerts"));
        let bob = |filter| acl.check("c", Some("bob"), filter, Subscribe);
        assert!(bob("sensors/+/temp"));
        assert!(bob("sensors/kitchen/temp"));
        assert!(!bob("sensors/#"));
        assert!(!bob("sensors/+/#"));
        assert!(!bob("sensors/+"));
    }

    #[test]
    fn leading_wildcards_do_not_match_dollar_topics() {
        let acl = rules("topic read #\ntopic read +/x\n");
        assert!(acl.check("c", None, "a/b", Read));
        assert!(!acl.check("c", None, "$SYS/broker/uptime", Read));
        assert!(!acl.check("c", None, "$SYS/x", Read));
        assert!(acl.check("c", None, "#", Subscribe));
        assert!(!acl.check("c", None, "$SYS/#", Subscribe));
        let acl = rules(FILE);
        assert!(acl.check("c", None, "$SYS/broker/uptime", Read));
        assert!(acl.check("c", None, "$SYS/broker/uptime", Subscribe));
    }

    #[test]
    fn empty_acl_denies_everything() {
        let acl = rules("# nothing\n");
        assert!(!acl.check("c", None, "a", Read));
        assert!(!acl.check("c", Some("u"), "a", Write));
    }

    #[test]
    fn sections_merge_and_topics_may_contain_spaces() {
        let acl = rules("user u\ntopic a\nuser v\ntopic b\nuser u\ntopic read my topic\n");
        assert!(acl.check("c", Some("u"), "a", Write));
        assert!(acl.check("c", Some("u"), "my topic", Read));
        assert!(!acl.check("c", Some("u"), "b", Read));
        let acl = rules("topic with space\n");
        assert!(acl.check("c", None, "with space", Write));
    }

    #[test]
    fn bad_lines_name_their_line() {
        let cases = [
            ("topic read a/#/b", "not a valid topic filter"),
            ("topic a+", "not a valid topic filter"),
            ("topic read", "missing topic"),
            ("user", "needs a value"),
            ("topics a", "unknown keyword"),
        ];
        for (line, expected) in cases {
            let err = AclFile::parse(&format!("topic ok\n{line}\n"), Path::new("acl"));
            let err = err.err().unwrap();
            assert!(err.to_string().starts_with("acl:2: "), "{err}");
            assert!(err.message.contains(expected), "{line}: {err}");
        }
    }

    #[test]
    fn percent_is_literal_in_topic_rules() {
        let acl = rules("topic a/%c\n");
        assert!(acl.check("x", None, "a/%c", Write));
        assert!(!acl.check("x", None, "a/x", Write));
    }
}
