//! Dynamic security decisions, as Mosquitto 2.0's plugin makes them: authentication of a
//! username and password, and the four ACL checks (publish send, publish receive,
//! subscribe, unsubscribe).
//!
//! The order the plugin checks ACL entries in: the client's roles by priority, then its groups
//! by priority, each group's roles by priority; within a role its entries of the check's type
//! by priority (for subscribe and unsubscribe: the literal entry equal to the filter first,
//! then the patterns). The first entry that matches decides. `Compiled` flattens that order
//! into one list per client and check whenever the configuration changes, so a check is a
//! hash lookup and a walk of one list, never a walk of the model.

use std::collections::HashMap;

use super::model::{AclKind, DefaultAccess, Model, PasswordHash, Role};
use crate::auth::Access;
use crate::auth::password::{constant_time_eq, pbkdf2};
use crate::core::topic;

/// What the plugin says, before the broker combines it with its other checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Refused.
    Deny,
    /// No opinion (`MOSQ_ERR_PLUGIN_DEFER`): the password or ACL file decides, if any.
    Defer,
}

/// One ACL entry, ready to match.
#[derive(Clone, Debug)]
struct Entry {
    topic: Box<str>,
    /// Compared for equality (`subscribeLiteral`, `unsubscribeLiteral`).
    literal: bool,
    allow: bool,
}

/// The entries of one client (or of the anonymous group) for each check, in check order.
#[derive(Clone, Debug, Default)]
struct Entries {
    /// Indexed by `check_index`.
    lists: [Vec<Entry>; 4],
}

/// The model's ACLs flattened per client: rebuilt on every change.
#[derive(Debug, Default)]
pub struct Compiled {
    clients: HashMap<Box<str>, Entries>,
    /// The anonymous group's entries, if there is an anonymous group.
    anonymous: Option<Entries>,
    default: DefaultAccess,
}

/// The list a check walks: publish send, receive, subscribe, unsubscribe.
fn check_index(access: Access) -> usize {
    match access {
        Access::Write => 0,
        Access::Read => 1,
        Access::Subscribe => 2,
        Access::Unsubscribe => 3,
    }
}

/// Appends `role`'s entries to each list of `entries`.
fn add_role(entries: &mut Entries, role: &Role) {
    // Literal entries are looked up before the role's patterns, whatever their priority.
    let order = [
        (0, AclKind::PublishClientSend),
        (1, AclKind::PublishClientReceive),
        (2, AclKind::SubscribeLiteral),
        (2, AclKind::SubscribePattern),
        (3, AclKind::UnsubscribeLiteral),
        (3, AclKind::UnsubscribePattern),
    ];
    for (index, kind) in order {
        let literal = matches!(
            kind,
            AclKind::SubscribeLiteral | AclKind::UnsubscribeLiteral
        );
        let list = &mut entries.lists[index];
        for acl in role.acls.iter().filter(|a| a.kind == kind) {
            // A publish entry whose filter is invalid never matches (Mosquitto's matcher
            // returns an error for it): leaving it out costs nothing per message.
            if index < 2 && !valid_filter(&acl.topic) {
                continue;
            }
            list.push(Entry {
                topic: acl.topic.as_str().into(),
                literal,
                allow: acl.allow,
            });
        }
    }
}

impl Compiled {
    /// Flattens `model` for checking.
    pub fn new(model: &Model) -> Compiled {
        let roles_of = |refs: &[super::model::Ref], entries: &mut Entries| {
            for r in refs {
                if let Some(role) = model.roles.get(&r.name) {
                    add_role(entries, role);
                }
            }
        };
        let mut clients = HashMap::with_capacity(model.clients.len());
        for (username, client) in &model.clients {
            let mut entries = Entries::default();
            roles_of(&client.roles, &mut entries);
            for g in model.client_groups(username) {
                if let Some(group) = model.groups.get(&g.name) {
                    roles_of(&group.roles, &mut entries);
                }
            }
            clients.insert(username.as_str().into(), entries);
        }
        let anonymous = (model.anonymous_group.as_ref())
            .and_then(|name| model.groups.get(name))
            .map(|group| {
                let mut entries = Entries::default();
                roles_of(&group.roles, &mut entries);
                entries
            });
        Compiled {
            clients,
            anonymous,
            default: model.default_access,
        }
    }

    /// The plugin's ACL check for a client with `username` (`None`: anonymous).
    pub fn check(&self, username: Option<&str>, topic: &str, access: Access) -> Decision {
        let entries = match username {
            // A username the plugin does not know is left to the other checks.
            Some(u) => match self.clients.get(u) {
                Some(entries) => Some(entries),
                None => return Decision::Defer,
            },
            None => self.anonymous.as_ref(),
        };
        let index = check_index(access);
        if let Some(entries) = entries {
            for entry in &entries.lists[index] {
                let hit = match (entry.literal, index) {
                    (true, _) => *entry.topic == *topic,
                    (false, 0 | 1) => publish_matches(&entry.topic, topic),
                    (false, _) => sub_acl_check(&entry.topic, topic),
                };
                if hit {
                    return if entry.allow {
                        Decision::Allow
                    } else {
                        Decision::Deny
                    };
                }
            }
        }
        let default = match access {
            Access::Write => self.default.publish_client_send,
            Access::Read => self.default.publish_client_receive,
            Access::Subscribe => self.default.subscribe,
            Access::Unsubscribe => self.default.unsubscribe,
        };
        // `$CONTROL` topics are never reached through the default: only an entry grants them.
        if default && !topic.starts_with("$CONTROL") {
            Decision::Allow
        } else {
            Decision::Defer
        }
    }
}

/// Whether `acl` is a topic filter `mosquitto_topic_matches_sub` accepts: not empty, each
/// wildcard a whole level, `#` only last.
fn valid_filter(acl: &str) -> bool {
    let count = topic::levels(acl).count();
    !acl.is_empty()
        && topic::levels(acl).enumerate().all(|(i, level)| {
            !level.contains(['+', '#']) || level == "+" || (level == "#" && i + 1 == count)
        })
}

/// Whether valid ACL filter `acl` matches topic name `name` (`mosquitto_topic_matches_sub`).
fn publish_matches(acl: &str, name: &str) -> bool {
    !name.is_empty() && topic::matches(acl, name)
}

/// Whether subscription filter `sub` is covered by ACL filter `acl` (the plugin's
/// `sub_acl_check`): level by level, `+` in the ACL covers any one level (a `+` or `#` of
/// the filter's too), a trailing `/#` (or a lone `#`) covers the rest; a filter ending in
/// `#` is covered only by an ACL ending in `#`.
pub fn sub_acl_check(acl: &str, sub: &str) -> bool {
    if acl == "#" {
        return true;
    }
    fn strip_hash(s: &str) -> (&str, bool) {
        if s == "#" {
            ("", true)
        } else if let Some(rest) = s.strip_suffix("/#") {
            (rest, true)
        } else {
            (s, false)
        }
    }
    let (acl, acl_hash) = strip_hash(acl);
    let (sub, sub_hash) = strip_hash(sub);
    if sub_hash && !acl_hash {
        return false;
    }
    let acl_levels: Vec<&str> = acl.split('/').collect();
    let sub_levels: Vec<&str> = sub.split('/').collect();
    if acl_levels.len() > sub_levels.len() || (sub_levels.len() > acl_levels.len() && !acl_hash) {
        return false;
    }
    sub_levels
        .iter()
        .enumerate()
        .all(|(i, s)| match acl_levels.get(i) {
            Some(a) => *a == "+" || a == s,
            // Beyond the ACL's levels, only its trailing `#` covers.
            None => acl_hash,
        })
}

/// The plugin's password check for a CONNECT: `Defer` without both a username and a
/// password or for a username it does not know (or that has no password); `Deny` for a
/// disabled client, a client id other than the one the client is bound to, or a wrong
/// password.
pub fn authenticate(
    model: &Model,
    username: Option<&str>,
    password: Option<&[u8]>,
    client_id: &str,
) -> Decision {
    let (Some(username), Some(password)) = (username, password) else {
        return Decision::Defer;
    };
    let Some(client) = model.clients.get(username) else {
        return Decision::Defer;
    };
    if client.disabled {
        return Decision::Deny;
    }
    if client.clientid.as_deref().is_some_and(|id| id != client_id) {
        return Decision::Deny;
    }
    match &client.password {
        Some(stored) if password_matches(stored, password) => Decision::Allow,
        Some(_) => Decision::Deny,
        None => Decision::Defer,
    }
}

/// Whether `password` hashes to `stored`. The plugin passes the password as a C string, so
/// it ends at the first NUL byte.
fn password_matches(stored: &PasswordHash, password: &[u8]) -> bool {
    let end = password
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(password.len());
    let hash = pbkdf2(&password[..end], &stored.salt, stored.iterations);
    constant_time_eq(&hash, &stored.hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_acl_check_agrees_with_the_plugins_own_table() {
        // The cases of Mosquitto's sub_matches_sub.c self-test.
        for (acl, sub, expected) in [
            ("foo/+/bar", "foo/#", false),
            ("foo/+/ba℞/#", "foo/baz/ba℞", true),
            ("foo/+/ba℞/#", "foo/baz/ba℞/+", true),
            ("foo/+/ba℞/#", "foo/baz/ba℞/#", true),
            ("foo/+/ba℞/#", "foo/baz/+/#", false),
            ("/+//#", "/foo///#", true),
            ("#", "#", true),
            ("#", "+", true),
            ("/#", "+", false),
            ("/#", "/+", true),
            ("/+", "#", false),
            ("/+", "+", false),
            ("+/+", "topic/topic", true),
            ("+/+", "topic/topic/", false),
            ("+", "#", false),
            ("+", "+", true),
            ("a/b/c/d/e", "a/b/c/d/e", true),
            ("a/b/ /d/e", "a/b/c/d/e", false),
        ] {
            assert_eq!(sub_acl_check(acl, sub), expected, "{acl} {sub}");
        }
    }

    #[test]
    fn publish_filters_match_as_mosquitto() {
        assert!(publish_matches("a/+/c", "a/b/c"));
        assert!(publish_matches("a/#", "a"));
        assert!(!publish_matches("#", "$SYS/x"));
        assert!(publish_matches("$SYS/#", "$SYS/x"));
        for invalid in ["a/#/c", "a+", "#a", ""] {
            assert!(!valid_filter(invalid), "{invalid}");
        }
        assert!(valid_filter("+/a/#") && valid_filter("a"));
    }

    fn model(text: &str) -> Model {
        Model::from_json(text).unwrap()
    }

    #[test]
    fn client_roles_then_groups_by_priority_first_match_decides() {
        let m = model(
            r##"{"clients": [{"username": "u", "roles": [{"rolename": "low", "priority": 1},
                {"rolename": "high", "priority": 2}]}],
            "groups": [{"groupname": "g", "clients": [{"username": "u"}],
                "roles": [{"rolename": "group"}]}],
            "roles": [
              {"rolename": "high", "acls": [{"acltype": "publishClientSend", "topic": "a/#",
                 "allow": false}]},
              {"rolename": "low", "acls": [{"acltype": "publishClientSend", "topic": "a/b",
                 "allow": true}, {"acltype": "subscribePattern", "topic": "s/+", "allow": false,
                 "priority": 9}, {"acltype": "subscribeLiteral", "topic": "s/x", "allow": true}]},
              {"rolename": "group", "acls": [{"acltype": "publishClientSend", "topic": "g/#",
                 "allow": true}, {"acltype": "publishClientReceive", "topic": "#",
                 "allow": true}]}]}"##,
        );
        let c = Compiled::new(&m);
        let u = Some("u");
        assert_eq!(c.check(u, "a/b", Access::Write), Decision::Deny);
        assert_eq!(c.check(u, "g/1", Access::Write), Decision::Allow);
        assert_eq!(c.check(u, "other", Access::Write), Decision::Defer);
        // The literal entry comes before the role's patterns, whatever the priorities.
        assert_eq!(c.check(u, "s/x", Access::Subscribe), Decision::Allow);
        assert_eq!(c.check(u, "s/y", Access::Subscribe), Decision::Deny);
        assert_eq!(c.check(u, "x", Access::Read), Decision::Allow);
        assert_eq!(
            c.check(Some("stranger"), "x", Access::Read),
            Decision::Defer
        );
        assert_eq!(c.check(None, "x", Access::Read), Decision::Defer);
    }

    #[test]
    fn default_access_never_opens_control_topics() {
        let m = model(r#"{"defaultACLAccess": {"publishClientSend": true, "unsubscribe": true}}"#);
        let c = Compiled::new(&m);
        assert_eq!(c.check(None, "a", Access::Write), Decision::Allow);
        assert_eq!(c.check(None, "a", Access::Unsubscribe), Decision::Allow);
        assert_eq!(c.check(None, "a", Access::Read), Decision::Defer);
        let control = "$CONTROL/dynamic-security/v1";
        assert_eq!(c.check(None, control, Access::Write), Decision::Defer);
    }

    #[test]
    fn authentication_defers_denies_and_allows_as_the_plugin() {
        let hash = pbkdf2(b"pw", b"0123456789ab", 101);
        let b64 = |b: &[u8]| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(b)
        };
        let text = format!(
            r#"{{"clients": [
                {{"username": "u", "password": "{h}", "salt": "{s}", "iterations": 101}},
                {{"username": "bound", "clientid": "c1", "password": "{h}", "salt": "{s}",
                  "iterations": 101}},
                {{"username": "off", "disabled": true, "password": "{h}", "salt": "{s}",
                  "iterations": 101}},
                {{"username": "nopw"}}]}}"#,
            h = b64(&hash),
            s = b64(b"0123456789ab")
        );
        let m = model(&text);
        let auth = |u: Option<&str>, p: Option<&[u8]>, id| authenticate(&m, u, p, id);
        assert_eq!(auth(Some("u"), Some(b"pw"), "x"), Decision::Allow);
        assert_eq!(auth(Some("u"), Some(b"pw\0tail"), "x"), Decision::Allow);
        assert_eq!(auth(Some("u"), Some(b"no"), "x"), Decision::Deny);
        assert_eq!(auth(Some("u"), None, "x"), Decision::Defer);
        assert_eq!(auth(None, Some(b"pw"), "x"), Decision::Defer);
        assert_eq!(auth(Some("bound"), Some(b"pw"), "c1"), Decision::Allow);
        assert_eq!(auth(Some("bound"), Some(b"pw"), "c2"), Decision::Deny);
        assert_eq!(auth(Some("off"), Some(b"pw"), "x"), Decision::Deny);
        assert_eq!(auth(Some("nopw"), Some(b"pw"), "x"), Decision::Defer);
        assert_eq!(auth(Some("ghost"), Some(b"pw"), "x"), Decision::Defer);
    }
}
