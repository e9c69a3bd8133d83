//! Control commands on roles: create, delete, modify, ACL entries, get and list.

use serde_json::{Value, json};

use super::{Args, Run, list_page, valid_utf8};
use crate::auth::dynsec::encode;
use crate::auth::dynsec::json as j;
use crate::auth::dynsec::model::{Acl, AclKind, Role, parse_acls};

pub fn create(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "createRole";
    let (args, corr) = a;
    let Some(name) = run.name(C, a, "rolename") else {
        return;
    };
    let Ok(text_name) = j::string(args, "textname") else {
        return run.reply(C, Some("Invalid/missing textname"), corr);
    };
    let Ok(text_description) = j::string(args, "textdescription") else {
        return run.reply(C, Some("Invalid/missing textdescription"), corr);
    };
    if run.model.roles.contains_key(name) {
        return run.reply(C, Some("Role already exists"), corr);
    }
    let acls = match j::get(args, "acls") {
        Some(Value::Array(list)) => parse_acls(list),
        _ => Vec::new(),
    };
    let role = Role {
        text_name: text_name.map(String::from),
        text_description: text_description.map(String::from),
        acls,
        ..Role::default()
    };
    run.model.roles.insert(name.to_string(), role);
    run.done(C, &format!(" | rolename={name}"), corr);
}

pub fn delete(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "deleteRole";
    let Some(name) = run.name(C, a, "rolename") else {
        return;
    };
    if !run.model.roles.contains_key(name) {
        return run.reply(C, Some("Role not found"), a.1);
    }
    run.kick_role(name);
    run.model.roles.remove(name);
    for client in run.model.clients.values_mut() {
        client.roles.retain(|r| r.name != name);
    }
    for group in run.model.groups.values_mut() {
        group.roles.retain(|r| r.name != name);
    }
    run.done(C, &format!(" | rolename={name}"), a.1);
}

pub fn modify(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "modifyRole";
    let (args, corr) = a;
    let Some(name) = run.name(C, a, "rolename") else {
        return;
    };
    let Some(role) = run.model.roles.get_mut(name) else {
        return run.reply(C, Some("Role does not exist"), corr);
    };
    if let Ok(Some(t)) = j::string(args, "textname") {
        role.text_name = Some(t.to_string());
    }
    if let Ok(Some(t)) = j::string(args, "textdescription") {
        role.text_description = Some(t.to_string());
    }
    if let Some(Value::Array(list)) = j::get(args, "acls") {
        role.acls = parse_acls(list);
    }
    // As in the plugin, nobody is disconnected: the new entries apply from the next check.
    run.done(C, &format!(" | rolename={name}"), corr);
}

/// The `acltype` argument of `addRoleACL` / `removeRoleACL`, or the plugin's error.
fn acl_kind(args: &serde_json::Map<String, Value>) -> Result<AclKind, &'static str> {
    match j::string(args, "acltype") {
        Ok(Some(kind)) => AclKind::parse(kind).ok_or("Unknown acltype"),
        _ => Err("Invalid/missing acltype"),
    }
}

/// Whether `topic` passes `mosquitto_sub_topic_check`: each wildcard a whole level, `#`
/// only last, at most 65,535 bytes.
fn valid_acl_topic(topic: &str) -> bool {
    let levels: Vec<&str> = topic.split('/').collect();
    topic.len() <= 65535
        && levels.iter().enumerate().all(|(i, level)| {
            !level.contains(['+', '#']) || *level == "+" || (*level == "#" && i + 1 == levels.len())
        })
}

/// The `topic` argument of `addRoleACL` / `removeRoleACL`, or the plugin's error.
fn acl_topic(args: &serde_json::Map<String, Value>) -> Result<&str, &'static str> {
    match j::string(args, "topic") {
        Ok(Some(t)) if !valid_utf8(t) => Err("Topic not valid UTF-8"),
        Ok(Some(t)) if !valid_acl_topic(t) => Err("Invalid ACL topic"),
        Ok(Some(t)) => Ok(t),
        _ => Err("Invalid/missing topic"),
    }
}

pub fn add_acl(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "addRoleACL";
    let (args, corr) = a;
    let Some(name) = run.name(C, a, "rolename") else {
        return;
    };
    if !run.model.roles.contains_key(name) {
        return run.reply(C, Some("Role not found"), corr);
    }
    let acl = acl_kind(args).and_then(|kind| {
        Ok(Acl {
            kind,
            topic: acl_topic(args)?.to_string(),
            priority: j::int(args, "priority", 0),
            allow: j::boolean(args, "allow", false),
        })
    });
    let acl = match acl {
        Ok(acl) => acl,
        Err(e) => return run.reply(C, Some(e), corr),
    };
    let Some(role) = run.model.roles.get_mut(name) else {
        return;
    };
    if role
        .acls
        .iter()
        .any(|x| x.kind == acl.kind && x.topic == acl.topic)
    {
        return run.reply(C, Some("ACL with this topic already exists"), corr);
    }
    let detail = format!(
        " | rolename={name} | acltype={} | topic={} | priority={} | allow={}",
        acl.kind.name(),
        acl.topic,
        acl.priority,
        acl.allow
    );
    role.insert_acl(acl);
    run.done(C, &detail, corr);
    run.kick_role(name);
}

pub fn remove_acl(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "removeRoleACL";
    let (args, corr) = a;
    let Some(name) = run.name(C, a, "rolename") else {
        return;
    };
    if !run.model.roles.contains_key(name) {
        return run.reply(C, Some("Role not found"), corr);
    }
    let target = acl_kind(args).and_then(|kind| Ok((kind, acl_topic(args)?)));
    let (kind, topic) = match target {
        Ok(target) => target,
        Err(e) => return run.reply(C, Some(e), corr),
    };
    let Some(role) = run.model.roles.get_mut(name) else {
        return;
    };
    let Some(at) = (role.acls.iter()).position(|x| x.kind == kind && x.topic == topic) else {
        return run.reply(C, Some("ACL not found"), corr);
    };
    role.acls.remove(at);
    let detail = format!(
        " | rolename={name} | acltype={} | topic={topic}",
        kind.name()
    );
    run.done(C, &detail, corr);
    run.kick_role(name);
}

pub fn get(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "getRole";
    let Some(name) = run.name(C, a, "rolename") else {
        return;
    };
    let Some(role) = run.model.roles.get(name) else {
        return run.reply(C, Some("Role not found"), a.1);
    };
    let data = json!({ "role": role_data(name, role) });
    run.data(C, data, a.1);
}

/// A role as `getRole` shows it: without the fields pipit does not read.
fn role_data(name: &str, role: &Role) -> Value {
    let bare = Role {
        extra: serde_json::Map::new(),
        ..role.clone()
    };
    encode::role_json(name, &bare)
}

pub fn list(run: &mut Run<'_>, a: Args<'_>) {
    let items: Vec<(Value, Value)> = (run.model.roles.iter())
        .map(|(n, r)| (role_data(n, r), Value::String(n.clone())))
        .collect();
    list_page(run, "listRoles", "roles", a, items.into_iter());
}
