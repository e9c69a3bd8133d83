//! Control commands on groups: create, delete, modify, members, roles, the anonymous group,
//! get and list.

use serde_json::{Value, json};

use super::clients::roles_arg;
use super::{Args, Run, list_page};
use crate::auth::dynsec::encode;
use crate::auth::dynsec::json as j;
use crate::auth::dynsec::model::{Group, NO_PRIORITY, Ref, insert_member, insert_ref};

pub fn create(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "createGroup";
    let (args, corr) = a;
    let Some(name) = run.name(C, a, "groupname") else {
        return;
    };
    let Ok(text_name) = j::string(args, "textname") else {
        return run.reply(C, Some("Invalid/missing textname"), corr);
    };
    let Ok(text_description) = j::string(args, "textdescription") else {
        return run.reply(C, Some("Invalid/missing textdescription"), corr);
    };
    if run.model.groups.contains_key(name) {
        return run.reply(C, Some("Group already exists"), corr);
    }
    let roles = match roles_arg(run, args) {
        Ok(roles) => roles.unwrap_or_default(),
        Err("Role not found") => return run.reply(C, Some("Role not found"), corr),
        // The plugin answers a malformed list here with a plain internal error.
        Err(_) => return run.reply(C, Some("Internal error"), corr),
    };
    let group = Group {
        text_name: text_name.map(String::from),
        text_description: text_description.map(String::from),
        roles,
        ..Group::default()
    };
    run.model.groups.insert(name.to_string(), group);
    run.done(C, &format!(" | groupname={name}"), corr);
}

pub fn delete(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "deleteGroup";
    let Some(name) = run.name(C, a, "groupname") else {
        return;
    };
    if !run.model.groups.contains_key(name) {
        return run.reply(C, Some("Group not found"), a.1);
    }
    run.kick_group(name);
    run.model.groups.remove(name);
    // The plugin would keep a dangling anonymous group; none is safer and the same to
    // clients (no roles apply).
    if run.model.anonymous_group.as_deref() == Some(name) {
        run.model.anonymous_group = None;
    }
    run.done(C, &format!(" | groupname={name}"), a.1);
}

pub fn add_client(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "addGroupClient";
    let Some(username) = run.name(C, a, "username") else {
        return;
    };
    let Some(name) = run.name(C, a, "groupname") else {
        return;
    };
    let priority = j::int(a.0, "priority", NO_PRIORITY);
    let error = if !run.model.clients.contains_key(username) {
        Some("Client not found")
    } else {
        match run.model.groups.get_mut(name) {
            None => Some("Group not found"),
            Some(group) => {
                let member = Ref {
                    name: username.to_string(),
                    priority,
                };
                (!insert_member(&mut group.clients, member))
                    .then_some("Client is already in this group")
            }
        }
    };
    match error {
        Some(e) => run.reply(C, Some(e), a.1),
        None => run.done(
            C,
            &format!(" | groupname={name} | username={username}"),
            a.1,
        ),
    }
    // The plugin disconnects the client whatever the outcome.
    run.kick(username);
}

pub fn remove_client(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "removeGroupClient";
    let Some(username) = run.name(C, a, "username") else {
        return;
    };
    let Some(name) = run.name(C, a, "groupname") else {
        return;
    };
    if !run.model.clients.contains_key(username) {
        run.reply(C, Some("Client not found"), a.1);
    } else if let Some(group) = run.model.groups.get_mut(name) {
        group.clients.retain(|m| m.name != username);
        run.done(
            C,
            &format!(" | groupname={name} | username={username}"),
            a.1,
        );
    } else {
        run.reply(C, Some("Group not found"), a.1);
    }
    run.kick(username);
}

pub fn add_role(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "addGroupRole";
    let Some(name) = run.name(C, a, "groupname") else {
        return;
    };
    let Some(rolename) = run.name(C, a, "rolename") else {
        return;
    };
    let priority = j::int(a.0, "priority", NO_PRIORITY);
    if !run.model.groups.contains_key(name) {
        return run.reply(C, Some("Group not found"), a.1);
    }
    if !run.model.roles.contains_key(rolename) {
        return run.reply(C, Some("Role not found"), a.1);
    }
    if let Some(group) = run.model.groups.get_mut(name) {
        let r = Ref {
            name: rolename.to_string(),
            priority,
        };
        if !insert_ref(&mut group.roles, r) {
            return run.reply(C, Some("Group is already in this role"), a.1);
        }
    }
    let detail = format!(" | groupname={name} | rolename={rolename} | priority={priority}");
    run.done(C, &detail, a.1);
    run.kick_group(name);
}

pub fn remove_role(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "removeGroupRole";
    let Some(name) = run.name(C, a, "groupname") else {
        return;
    };
    let Some(rolename) = run.name(C, a, "rolename") else {
        return;
    };
    if !run.model.groups.contains_key(name) {
        return run.reply(C, Some("Group not found"), a.1);
    }
    if !run.model.roles.contains_key(rolename) {
        return run.reply(C, Some("Role not found"), a.1);
    }
    if let Some(group) = run.model.groups.get_mut(name) {
        group.roles.retain(|r| r.name != rolename);
    }
    run.done(
        C,
        &format!(" | groupname={name} | rolename={rolename}"),
        a.1,
    );
    run.kick_group(name);
}

pub fn modify(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "modifyGroup";
    let (args, corr) = a;
    let Some(name) = run.name(C, a, "groupname") else {
        return;
    };
    if !run.model.groups.contains_key(name) {
        return run.reply(C, Some("Group not found"), corr);
    }
    let roles = match roles_arg(run, args) {
        Ok(roles) => roles,
        Err(e) => {
            run.kick_group(name);
            return run.reply(C, Some(e), corr);
        }
    };
    // Members are replaced when `clients` is an array; unknown usernames are skipped.
    let members: Option<Vec<Ref>> = match j::get(args, "clients") {
        Some(Value::Array(list)) => Some(
            (list.iter().filter_map(Value::as_object))
                .filter_map(|o| {
                    let username = j::string(o, "username").ok().flatten()?;
                    let priority = j::int(o, "priority", NO_PRIORITY);
                    Some(Ref {
                        name: username.to_string(),
                        priority,
                    })
                })
                .filter(|r| run.model.clients.contains_key(&r.name))
                .collect(),
        ),
        _ => None,
    };
    // Members removed are disconnected as well as those that stay.
    run.kick_group(name);
    let Some(group) = run.model.groups.get_mut(name) else {
        return;
    };
    if let Ok(Some(t)) = j::string(args, "textname") {
        group.text_name = Some(t.to_string());
    }
    if let Ok(Some(t)) = j::string(args, "textdescription") {
        group.text_description = Some(t.to_string());
    }
    if let Some(roles) = roles {
        group.roles = roles;
    }
    if let Some(members) = members {
        group.clients.clear();
        for m in members {
            insert_member(&mut group.clients, m);
        }
    }
    run.done(C, &format!(" | groupname={name}"), corr);
    run.kick_group(name);
}

pub fn set_anonymous(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "setAnonymousGroup";
    let Some(name) = run.name(C, a, "groupname") else {
        return;
    };
    if !run.model.groups.contains_key(name) {
        return run.reply(C, Some("Group not found"), a.1);
    }
    run.model.anonymous_group = Some(name.to_string());
    run.done(C, &format!(" | groupname={name}"), a.1);
    // Only clients without a username change rights.
    if !run.kicks.contains(&super::Kick::Anonymous) {
        run.kicks.push(super::Kick::Anonymous);
    }
}

pub fn get_anonymous(run: &mut Run<'_>, (_, corr): Args<'_>) {
    let name = run.model.anonymous_group.clone().unwrap_or_default();
    let data = json!({ "group": { "groupname": name } });
    run.data("getAnonymousGroup", data, corr);
}

pub fn get(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "getGroup";
    let Some(name) = run.name(C, a, "groupname") else {
        return;
    };
    let Some(group) = run.model.groups.get(name) else {
        return run.reply(C, Some("Group not found"), a.1);
    };
    let data = json!({ "group": encode::group_json(name, group, true) });
    run.data(C, data, a.1);
}

pub fn list(run: &mut Run<'_>, a: Args<'_>) {
    let items: Vec<(Value, Value)> = (run.model.groups.iter())
        .map(|(n, g)| (encode::group_json(n, g, true), Value::String(n.clone())))
        .collect();
    list_page(run, "listGroups", "groups", a, items.into_iter());
}
