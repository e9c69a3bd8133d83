//! The dynamic security data: clients, groups, roles with their ACL entries, the default
//! access and the anonymous group, read from and written to Mosquitto 2.0's JSON format.
//!
//! Invariants, as Mosquitto's plugin keeps them: clients, groups and roles are keyed by name
//! (byte order, Mosquitto's `strcmp` sort); every role or group a list names exists; a list
//! of roles (or groups) is ordered by priority, highest first, then by name, and holds each
//! name once; a group's clients are ordered by username; a role's ACL entries are ordered by
//! type (`AclKind` order), then priority, highest first, then as added. Entries the plugin
//! would skip when loading (a client without a username, a password hash of the wrong
//! length, a role name that does not exist, ...) are skipped with a warning; a file whose
//! shape is wrong (`clients` not an array, ...) is an error. Fields pipit does not read are
//! kept in `extra` and written back.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use log::warn;
use serde_json::{Map, Value};

use super::json::{self as j, get};

/// Salt length of a dynamic security password hash (Mosquitto's `SALT_LEN`).
pub const SALT_LEN: usize = 12;
/// PBKDF2 iterations for a new password (Mosquitto's `PW_DEFAULT_ITERATIONS`).
pub const DEFAULT_ITERATIONS: u32 = 101;
/// Priority of a role or group named without one.
pub const NO_PRIORITY: i32 = -1;

/// Whether each kind of check passes when no ACL entry matches (`defaultACLAccess`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefaultAccess {
    /// `publishClientSend`: a client may publish.
    pub publish_client_send: bool,
    /// `publishClientReceive`: a client may receive a message.
    pub publish_client_receive: bool,
    /// `subscribe`: a client may subscribe.
    pub subscribe: bool,
    /// `unsubscribe`: a client may unsubscribe.
    pub unsubscribe: bool,
}

/// A PBKDF2-HMAC-SHA512 password hash, as the plugin stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordHash {
    /// The 64-byte derived key.
    pub hash: [u8; 64],
    /// The salt.
    pub salt: [u8; SALT_LEN],
    /// PBKDF2 iterations, at least 1.
    pub iterations: u32,
}

/// A reference to a role, group or client by name, with its priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    /// The name referred to.
    pub name: String,
    /// Its priority; `NO_PRIORITY` when none was given.
    pub priority: i32,
}

/// One client (a username) of the dynamic security configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Client {
    /// The client id it must connect with, if restricted.
    pub clientid: Option<String>,
    /// Its password; without one, it never authenticates through dynamic security.
    pub password: Option<PasswordHash>,
    /// `textname`.
    pub text_name: Option<String>,
    /// `textdescription`.
    pub text_description: Option<String>,
    /// Whether it may not connect.
    pub disabled: bool,
    /// Its roles, in check order.
    pub roles: Vec<Ref>,
    /// Fields pipit does not read.
    pub extra: Map<String, Value>,
}

/// A group of clients sharing roles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group {
    /// `textname`.
    pub text_name: Option<String>,
    /// `textdescription`.
    pub text_description: Option<String>,
    /// Its roles, in check order.
    pub roles: Vec<Ref>,
    /// Its clients by username (each with the priority of this group for that client).
    pub clients: Vec<Ref>,
    /// Fields pipit does not read.
    pub extra: Map<String, Value>,
}

/// The type of an ACL entry, in the order the plugin writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AclKind {
    /// `publishClientSend`: the client publishes to a matching topic.
    PublishClientSend,
    /// `publishClientReceive`: the client is sent a message on a matching topic.
    PublishClientReceive,
    /// `subscribeLiteral`: the client subscribes with exactly this filter.
    SubscribeLiteral,
    /// `subscribePattern`: the client subscribes with a filter this one covers.
    SubscribePattern,
    /// `unsubscribeLiteral`: the client unsubscribes exactly this filter.
    UnsubscribeLiteral,
    /// `unsubscribePattern`: the client unsubscribes a filter this one covers.
    UnsubscribePattern,
}

/// Every ACL type with its JSON name.
pub const ACL_KINDS: [(AclKind, &str); 6] = [
    (AclKind::PublishClientSend, "publishClientSend"),
    (AclKind::PublishClientReceive, "publishClientReceive"),
    (AclKind::SubscribeLiteral, "subscribeLiteral"),
    (AclKind::SubscribePattern, "subscribePattern"),
    (AclKind::UnsubscribeLiteral, "unsubscribeLiteral"),
    (AclKind::UnsubscribePattern, "unsubscribePattern"),
];

impl AclKind {
    /// The type named `name`, ignoring ASCII case (the plugin's `strcasecmp`).
    pub fn parse(name: &str) -> Option<AclKind> {
        ACL_KINDS
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(k, _)| *k)
    }

    /// The JSON name.
    pub fn name(self) -> &'static str {
        ACL_KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, n)| n)
    }
}

/// One ACL entry of a role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl {
    /// Its type.
    pub kind: AclKind,
    /// The topic or filter it applies to.
    pub topic: String,
    /// Its priority within the role and type (default 0).
    pub priority: i32,
    /// Whether a match allows (or denies).
    pub allow: bool,
}

/// A named set of ACL entries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Role {
    /// `textname`.
    pub text_name: Option<String>,
    /// `textdescription`.
    pub text_description: Option<String>,
    /// Its entries, in check order (see the module invariants).
    pub acls: Vec<Acl>,
    /// Fields pipit does not read.
    pub extra: Map<String, Value>,
}

impl Role {
    /// Adds `acl` after the entries of its type with a priority at least its own.
    pub fn insert_acl(&mut self, acl: Acl) {
        let at = self
            .acls
            .iter()
            .position(|a| (a.kind, -i64::from(a.priority)) > (acl.kind, -i64::from(acl.priority)))
            .unwrap_or(self.acls.len());
        self.acls.insert(at, acl);
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    /// `defaultACLAccess`.
    pub default_access: DefaultAccess,
    /// Clients by username.
    pub clients: BTreeMap<String, Client>,
    /// Groups by name.
    pub groups: BTreeMap<String, Group>,
    /// Roles by name.
    pub roles: BTreeMap<String, Role>,
    /// The group whose roles apply to clients without a username.
    pub anonymous_group: Option<String>,
    /// Top-level fields pipit does not read.
    pub extra: Map<String, Value>,
}

/// Adds `r` to a role or group list in check order, unless the name is there already
/// (the plugin keeps the first); returns whether it was added.
pub fn insert_ref(list: &mut Vec<Ref>, r: Ref) -> bool {
    if list.iter().any(|x| x.name == r.name) {
        return false;
    }
    let key = |x: &Ref| (-i64::from(x.priority), x.name.clone());
    let at = list.partition_point(|x| key(x) <= key(&r));
    list.insert(at, r);
    true
}

/// Adds `r` to a group's client list in username order, unless it is there already.
pub fn insert_member(list: &mut Vec<Ref>, r: Ref) -> bool {
    match list.binary_search_by(|x| x.name.cmp(&r.name)) {
        Ok(_) => false,
        Err(at) => {
            list.insert(at, r);
            true
        }
    }
}

impl Model {
    /// The groups `username` belongs to, in check order (priority, then name).
    pub fn client_groups(&self, username: &str) -> Vec<Ref> {
        let mut groups = Vec::new();
        for (name, group) in &self.groups {
            if let Some(m) = group.clients.iter().find(|m| m.name == username) {
                let priority = m.priority;
                insert_ref(
                    &mut groups,
                    Ref {
                        name: name.clone(),
                        priority,
                    },
                );
            }
        }
        groups
    }

    /// Reads a configuration from its JSON text; the error says what is wrong.
    pub fn from_json(text: &str) -> Result<Model, String> {
        // An empty file is an empty configuration, as in the plugin.
        if text.trim().is_empty() {
            return Ok(Model::default());
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(top) = value else {
            return Err("not a JSON object".into());
        };
        let mut model = Model {
            extra: j::extra(
                &top,
                &[
                    "defaultACLAccess",
                    "clients",
                    "groups",
                    "roles",
                    "anonymousGroup",
                ],
            ),
            ..Model::default()
        };
        if let Some(Value::Object(access)) = get(&top, "defaultACLAccess") {
            let flag = |key| j::boolean(access, key, false);
            model.default_access = DefaultAccess {
                publish_client_send: flag("publishClientSend"),
                publish_client_receive: flag("publishClientReceive"),
                subscribe: flag("subscribe"),
                unsubscribe: flag("unsubscribe"),
            };
        }
        // The plugin's order: roles, then clients (naming roles), then groups (naming both).
        for role in array(&top, "roles")? {
            model.load_role(role);
        }
        for client in array(&top, "clients")? {
            model.load_client(client);
        }
        for group in array(&top, "groups")? {
            model.load_group(group);
        }
        if let Ok(Some(name)) = j::string(&top, "anonymousGroup") {
            match model.groups.contains_key(name) {
                true => model.anonymous_group = Some(name.to_string()),
                false => warn!("dynamic security: anonymousGroup {name:?} does not exist"),
            }
        }
        Ok(model)
    }

    fn load_role(&mut self, value: &Value) {
        let Value::Object(o) = value else { return };
        let Ok(Some(name)) = j::string(o, "rolename") else {
            warn!("dynamic security: a role without a rolename is skipped");
            return;
        };
        let mut role = Role {
            text_name: j::string(o, "textname").ok().flatten().map(String::from),
            text_description: j::string(o, "textdescription")
                .ok()
                .flatten()
                .map(String::from),
            acls: Vec::new(),
            extra: j::extra(o, &["rolename", "textname", "textdescription", "acls"]),
        };
        if let Some(Value::Array(acls)) = get(o, "acls") {
            role.acls = parse_acls(acls);
        }
        self.roles.insert(name.to_string(), role);
    }

    fn load_client(&mut self, value: &Value) {
        let Value::Object(o) = value else { return };
        let Ok(Some(username)) = j::string(o, "username") else {
            warn!("dynamic security: a client without a username is skipped");
            return;
        };
        let password = match parse_password(o) {
            Ok(password) => password,
            Err(why) => {
                warn!("dynamic security: client {username:?} is skipped: {why}");
                return;
            }
        };
        let mut client = Client {
            clientid: j::string(o, "clientid").ok().flatten().map(String::from),
            password,
            text_name: j::string(o, "textname").ok().flatten().map(String::from),
            text_description: j::string(o, "textdescription")
                .ok()
                .flatten()
                .map(String::from),
            disabled: j::boolean(o, "disabled", false),
            roles: Vec::new(),
            extra: j::extra(o, CLIENT_FIELDS),
        };
        if let Some(Value::Array(roles)) = get(o, "roles") {
            client.roles = self.known_refs(roles, "rolename", |m, n| m.roles.contains_key(n));
        }
        self.clients.insert(username.to_string(), client);
    }

    fn load_group(&mut self, value: &Value) {
        let Value::Object(o) = value else { return };
        let Ok(Some(name)) = j::string(o, "groupname") else {
            warn!("dynamic security: a group without a groupname is skipped");
            return;
        };
        let mut group = Group {
            text_name: j::string(o, "textname").ok().flatten().map(String::from),
            text_description: j::string(o, "textdescription")
                .ok()
                .flatten()
                .map(String::from),
            roles: Vec::new(),
            clients: Vec::new(),
            extra: j::extra(
                o,
                &[
                    "groupname",
                    "textname",
                    "textdescription",
                    "roles",
                    "clients",
                ],
            ),
        };
        if let Some(Value::Array(roles)) = get(o, "roles") {
            group.roles = self.known_refs(roles, "rolename", |m, n| m.roles.contains_key(n));
        }
        if let Some(Value::Array(clients)) = get(o, "clients") {
            for r in self.known_refs(clients, "username", |m, n| m.clients.contains_key(n)) {
                insert_member(&mut group.clients, r);
            }
        }
        self.groups.insert(name.to_string(), group);
    }

    /// The `{NAME_KEY: ..., "priority": ...}` objects of `list` that name something `known`,
    /// in check order; the others are skipped with a warning.
    fn known_refs(
        &self,
        list: &[Value],
        name_key: &str,
        known: impl Fn(&Model, &str) -> bool,
    ) -> Vec<Ref> {
        let mut refs = Vec::new();
        for item in list {
            let Value::Object(o) = item else { continue };
            let Ok(Some(name)) = j::string(o, name_key) else {
                continue;
            };
            if !known(self, name) {
                warn!("dynamic security: {name_key} {name:?} does not exist; skipped");
                continue;
            }
            let priority = j::int(o, "priority", NO_PRIORITY);
            insert_ref(
                &mut refs,
                Ref {
                    name: name.to_string(),
                    priority,
                },
            );
        }
        refs
    }
}

/// The client fields pipit reads.
const CLIENT_FIELDS: &[&str] = &[
    "username",
    "clientid",
    "textname",
    "textdescription",
    "disabled",
    "roles",
    "password",
    "salt",
    "iterations",
];

/// The array at `key`, empty when absent; anything else there is an error.
fn array<'a>(top: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], String> {
    match get(top, key) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("\"{key}\" is not an array")),
    }
}

/// A client's password: `None` unless `password`, `salt` and `iterations` are all there
/// with the right types; an error (the client is skipped) if they are but do not decode.
fn parse_password(o: &Map<String, Value>) -> Result<Option<PasswordHash>, &'static str> {
    let (Ok(Some(hash)), Ok(Some(salt)), Some(iterations)) = (
        j::string(o, "password"),
        j::string(o, "salt"),
        get(o, "iterations").and_then(Value::as_f64),
    ) else {
        return Ok(None);
    };
    let iterations = iterations as i32;
    if iterations < 1 {
        return Err("iterations below 1");
    }
    if iterations as u32 > crate::auth::password::MAX_ITERATIONS {
        return Err("more iterations than pipit accepts");
    }
    let salt = BASE64.decode(salt).ok().and_then(|s| s.try_into().ok());
    let hash = BASE64.decode(hash).ok().and_then(|h| h.try_into().ok());
    match (salt, hash) {
        (Some(salt), Some(hash)) => Ok(Some(PasswordHash {
            hash,
            salt,
            iterations: iterations as u32,
        })),
        (None, _) => Err("the salt is not 12 bytes of base64"),
        (_, None) => Err("the password hash is not 64 bytes of base64"),
    }
}

/// A role's (or a command's) `acls` array, in check order; entries of an unknown type or
/// without a string topic are skipped, as in the plugin.
pub fn parse_acls(list: &[Value]) -> Vec<Acl> {
    let mut role = Role::default();
    for item in list {
        let Value::Object(o) = item else { continue };
        let Some(kind) = j::string(o, "acltype")
            .ok()
            .flatten()
            .and_then(AclKind::parse)
        else {
            continue;
        };
        let Ok(Some(topic)) = j::string(o, "topic") else {
            continue;
        };
        role.insert_acl(Acl {
            kind,
            topic: topic.to_string(),
            priority: j::int(o, "priority", 0),
            allow: j::boolean(o, "allow", false),
        });
    }
    role.acls
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{
        "defaultACLAccess": {"publishClientSend": true, "subscribe": 1},
        "clients": [
            {"username": "u", "roles": [{"rolename": "b"}, {"rolename": "a", "priority": 5},
                {"rolename": "missing"}, {"rolename": "a", "priority": 9}], "custom": [1]},
            {"username": "bad", "password": "x", "salt": "eA==", "iterations": 101},
            {"clientid": "no-username"}
        ],
        "groups": [{"groupname": "g", "clients": [{"username": "u", "priority": 3},
            {"username": "ghost"}], "roles": [{"rolename": "a"}]}],
        "roles": [{"rolename": "a", "acls": [
            {"acltype": "subscribePattern", "topic": "s/#", "allow": true},
            {"acltype": "publishClientSend", "topic": "low", "priority": 1},
            {"acltype": "PUBLISHCLIENTSEND", "topic": "high", "priority": 7},
            {"acltype": "bogus", "topic": "x"}]},
            {"rolename": "b"}],
        "anonymousGroup": "g",
        "futureField": {"kept": true}
    }"#;

    #[test]
    fn loads_as_the_plugin_does() {
        let m = Model::from_json(FILE).unwrap();
        assert!(m.default_access.publish_client_send);
        // Not a boolean: false, as the plugin reads it.
        assert!(!m.default_access.subscribe);
        assert_eq!(m.clients.keys().collect::<Vec<_>>(), ["u"]);
        let u = &m.clients["u"];
        let roles: Vec<_> = u
            .roles
            .iter()
            .map(|r| (r.name.as_str(), r.priority))
            .collect();
        assert_eq!(roles, [("a", 5), ("b", -1)]);
        assert!(u.extra.contains_key("custom"));
        assert_eq!(m.groups["g"].clients.len(), 1);
        assert_eq!(m.client_groups("u")[0].priority, 3);
        let topics: Vec<_> = m.roles["a"].acls.iter().map(|a| a.topic.as_str()).collect();
        assert_eq!(topics, ["high", "low", "s/#"]);
        assert_eq!(m.anonymous_group.as_deref(), Some("g"));
    }

    #[test]
    fn saves_and_reloads_to_the_same_model_keeping_unknown_fields() {
        let m = Model::from_json(FILE).unwrap();
        let text = serde_json::to_string_pretty(&m.to_json()).unwrap();
        assert!(text.contains("futureField") && text.contains("custom"));
        assert_eq!(Model::from_json(&text).unwrap(), m);
    }

    #[test]
    fn a_file_of_the_wrong_shape_is_an_error() {
        for (text, why) in [
            ("{", "not valid JSON"),
            ("[]", "not a JSON object"),
            (r#"{"clients": {}}"#, "\"clients\" is not an array"),
            (r#"{"roles": 3}"#, "\"roles\" is not an array"),
        ] {
            assert!(Model::from_json(text).unwrap_err().contains(why), "{text}");
        }
        assert_eq!(Model::from_json(" \n").unwrap(), Model::default());
    }
}
