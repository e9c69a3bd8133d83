//! The dynamic security data as JSON: the file Mosquitto's plugin writes (with the fields
//! pipit does not read put back), and the objects the control API answers with.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use super::model::{Acl, Client, Group, Model, NO_PRIORITY, Ref, Role};

impl Model {
    /// The configuration as Mosquitto's plugin writes it, with the fields pipit does not
    /// read put back.
    pub fn to_json(&self) -> Value {
        let mut top = self.extra.clone();
        let d = self.default_access;
        top.insert(
            "defaultACLAccess".into(),
            json!({
                "publishClientSend": d.publish_client_send,
                "publishClientReceive": d.publish_client_receive,
                "subscribe": d.subscribe,
                "unsubscribe": d.unsubscribe,
            }),
        );
        let clients = self.clients.iter().map(|(n, c)| client_json(n, c, false));
        top.insert("clients".into(), Value::Array(clients.collect()));
        let groups = self.groups.iter().map(|(n, g)| group_json(n, g, false));
        top.insert("groups".into(), Value::Array(groups.collect()));
        let roles = self.roles.iter().map(|(n, r)| role_json(n, r));
        top.insert("roles".into(), Value::Array(roles.collect()));
        if let Some(name) = &self.anonymous_group {
            top.insert("anonymousGroup".into(), Value::String(name.clone()));
        }
        Value::Object(top)
    }
}

/// A list of role or group references as the plugin writes it (no priority when -1).
pub fn refs_json(list: &[Ref], name_key: &str) -> Value {
    let items = list.iter().map(|r| {
        let mut o = Map::new();
        o.insert(name_key.into(), Value::String(r.name.clone()));
        if r.priority != NO_PRIORITY {
            o.insert("priority".into(), r.priority.into());
        }
        Value::Object(o)
    });
    Value::Array(items.collect())
}

/// Inserts the optional text fields of a client, group or role.
fn texts(o: &mut Map<String, Value>, name: &Option<String>, description: &Option<String>) {
    if let Some(t) = name {
        o.insert("textname".into(), Value::String(t.clone()));
    }
    if let Some(t) = description {
        o.insert("textdescription".into(), Value::String(t.clone()));
    }
}

/// A client as the file stores it (`for_reply`: as `getClient` shows it, without the
/// password and the fields pipit does not read).
pub fn client_json(username: &str, c: &Client, for_reply: bool) -> Value {
    let mut o = if for_reply {
        Map::new()
    } else {
        c.extra.clone()
    };
    o.insert("username".into(), Value::String(username.into()));
    if let Some(id) = &c.clientid {
        o.insert("clientid".into(), Value::String(id.clone()));
    }
    texts(&mut o, &c.text_name, &c.text_description);
    if c.disabled {
        o.insert("disabled".into(), Value::Bool(true));
    }
    o.insert("roles".into(), refs_json(&c.roles, "rolename"));
    if let (Some(pw), false) = (&c.password, for_reply) {
        o.insert("password".into(), Value::String(BASE64.encode(pw.hash)));
        o.insert("salt".into(), Value::String(BASE64.encode(pw.salt)));
        o.insert("iterations".into(), pw.iterations.into());
    }
    Value::Object(o)
}

/// A group as the file stores it (`for_reply`: as `getGroup` shows it).
pub fn group_json(name: &str, g: &Group, for_reply: bool) -> Value {
    let mut o = if for_reply {
        Map::new()
    } else {
        g.extra.clone()
    };
    o.insert("groupname".into(), Value::String(name.into()));
    texts(&mut o, &g.text_name, &g.text_description);
    o.insert("roles".into(), refs_json(&g.roles, "rolename"));
    // `getGroup` lists members without their priority.
    let clients = match for_reply {
        true => Value::Array(
            (g.clients.iter())
                .map(|m| json!({ "username": m.name }))
                .collect(),
        ),
        false => refs_json(&g.clients, "username"),
    };
    o.insert("clients".into(), clients);
    Value::Object(o)
}

/// A role with its ACL entries (the same in the file and in `getRole`, but for `extra`).
pub fn role_json(name: &str, r: &Role) -> Value {
    let mut o = r.extra.clone();
    o.insert("rolename".into(), Value::String(name.into()));
    texts(&mut o, &r.text_name, &r.text_description);
    o.insert("acls".into(), acls_json(&r.acls));
    Value::Object(o)
}

/// ACL entries as the plugin writes them.
pub fn acls_json(acls: &[Acl]) -> Value {
    let items = acls.iter().map(|a| {
        json!({
            "acltype": a.kind.name(),
            "topic": a.topic,
            "priority": a.priority,
            "allow": a.allow,
        })
    });
    Value::Array(items.collect())
}
