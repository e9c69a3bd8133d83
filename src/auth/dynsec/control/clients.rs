//! Control commands on clients: create, delete, modify, password, client id, roles,
//! enable/disable, get and list.

use serde_json::{Map, Value, json};

use super::{Args, Run, list_page, valid_utf8};
use crate::auth::dynsec::encode;
use crate::auth::dynsec::json as j;
use crate::auth::dynsec::model::{
    Client, DEFAULT_ITERATIONS, NO_PRIORITY, PasswordHash, Ref, SALT_LEN, insert_member, insert_ref,
};
use crate::auth::password::pbkdf2;

/// A new password hash with a random salt, or `None` if the system has no randomness.
pub fn hash_password(password: &str) -> Option<PasswordHash> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::getrandom(&mut salt).ok()?;
    Some(PasswordHash {
        hash: pbkdf2(password.as_bytes(), &salt, DEFAULT_ITERATIONS),
        salt,
        iterations: DEFAULT_ITERATIONS,
    })
}

/// The `roles` argument of a command: `Ok(None)` when absent; the plugin's error when it is
/// not an array of objects with a `rolename` or names a role that does not exist.
pub fn roles_arg(
    run: &Run<'_>,
    args: &Map<String, Value>,
) -> Result<Option<Vec<Ref>>, &'static str> {
    let Some(list) = j::get(args, "roles") else {
        return Ok(None);
    };
    let Value::Array(list) = list else {
        return Err("'roles' not an array or missing/invalid rolename");
    };
    let mut roles = Vec::new();
    for item in list {
        let name = item
            .as_object()
            .and_then(|o| j::string(o, "rolename").ok().flatten());
        let (Some(name), Some(o)) = (name, item.as_object()) else {
            return Err("'roles' not an array or missing/invalid rolename");
        };
        if !run.model.roles.contains_key(name) {
            return Err("Role not found");
        }
        let priority = j::int(o, "priority", NO_PRIORITY);
        insert_ref(
            &mut roles,
            Ref {
                name: name.to_string(),
                priority,
            },
        );
    }
    Ok(Some(roles))
}

/// The `{"groupname", "priority"}` objects of a `groups` argument.
fn groups_arg(args: &Map<String, Value>) -> Option<Vec<Ref>> {
    let Some(Value::Array(list)) = j::get(args, "groups") else {
        return None;
    };
    let refs = list.iter().filter_map(Value::as_object).filter_map(|o| {
        let name = j::string(o, "groupname").ok().flatten()?;
        let priority = j::int(o, "priority", NO_PRIORITY);
        Some(Ref {
            name: name.to_string(),
            priority,
        })
    });
    Some(refs.collect())
}

/// Adds `username` to each existing group of `groups`, with its priority there.
fn join_groups(run: &mut Run<'_>, username: &str, groups: Vec<Ref>) {
    for g in groups {
        if let Some(group) = run.model.groups.get_mut(&g.name) {
            let member = Ref {
                name: username.to_string(),
                priority: g.priority,
            };
            insert_member(&mut group.clients, member);
        }
    }
}

/// Removes `username` from every group.
fn leave_all_groups(run: &mut Run<'_>, username: &str) {
    for group in run.model.groups.values_mut() {
        group.clients.retain(|m| m.name != username);
    }
}

pub fn create(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "createClient";
    let (args, corr) = a;
    let Some(username) = run.name(C, a, "username") else {
        return;
    };
    let Ok(password) = j::string(args, "password") else {
        return run.reply(C, Some("Invalid/missing password"), corr);
    };
    let Ok(clientid) = j::string(args, "clientid") else {
        return run.reply(C, Some("Invalid/missing client id"), corr);
    };
    if clientid.is_some_and(|c| !valid_utf8(c)) {
        return run.reply(C, Some("Client ID not valid UTF-8"), corr);
    }
    let Ok(text_name) = j::string(args, "textname") else {
        return run.reply(C, Some("Invalid/missing textname"), corr);
    };
    let Ok(text_description) = j::string(args, "textdescription") else {
        return run.reply(C, Some("Invalid/missing textdescription"), corr);
    };
    if run.model.clients.contains_key(username) {
        return run.reply(C, Some("Client already exists"), corr);
    }
    let password = match password.map(hash_password) {
        Some(None) => return run.reply(C, Some("Internal error"), corr),
        Some(hash) => hash,
        None => None,
    };
    let roles = match roles_arg(run, args) {
        Ok(roles) => roles.unwrap_or_default(),
        Err(e) => return run.reply(C, Some(e), corr),
    };
    let groups = groups_arg(args).unwrap_or_default();
    if groups
        .iter()
        .any(|g| !run.model.groups.contains_key(&g.name))
    {
        return run.reply(C, Some("Group not found"), corr);
    }
    let client = Client {
        clientid: clientid.filter(|c| !c.is_empty()).map(String::from),
        password,
        text_name: text_name.map(String::from),
        text_description: text_description.map(String::from),
        roles,
        ..Client::default()
    };
    run.model.clients.insert(username.to_string(), client);
    join_groups(run, username, groups);
    let shown = if password_given(args) {
        "*****"
    } else {
        "no password"
    };
    run.done(
        C,
        &format!(" | username={username} | password={shown}"),
        corr,
    );
}

fn password_given(args: &Map<String, Value>) -> bool {
    matches!(j::string(args, "password"), Ok(Some(_)))
}

pub fn delete(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "deleteClient";
    let Some(username) = run.name(C, a, "username") else {
        return;
    };
    if run.model.clients.remove(username).is_none() {
        return run.reply(C, Some("Client not found"), a.1);
    }
    leave_all_groups(run, username);
    run.done(C, &format!(" | username={username}"), a.1);
    run.kick(username);
}

/// `enableClient` (`enable`) and `disableClient`.
pub fn enable(run: &mut Run<'_>, a: Args<'_>, enable: bool) {
    let c = if enable {
        "enableClient"
    } else {
        "disableClient"
    };
    let Some(username) = run.name(c, a, "username") else {
        return;
    };
    let Some(client) = run.model.clients.get_mut(username) else {
        return run.reply(c, Some("Client not found"), a.1);
    };
    client.disabled = !enable;
    if !enable {
        run.kick(username);
    }
    run.done(c, &format!(" | username={username}"), a.1);
}

pub fn set_id(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "setClientId";
    let Some(username) = run.name(C, a, "username") else {
        return;
    };
    let Ok(clientid) = j::string(a.0, "clientid") else {
        return run.reply(C, Some("Invalid/missing client ID"), a.1);
    };
    if clientid.is_some_and(|c| !valid_utf8(c)) {
        return run.reply(C, Some("Client ID not valid UTF-8"), a.1);
    }
    let Some(client) = run.model.clients.get_mut(username) else {
        return run.reply(C, Some("Client not found"), a.1);
    };
    client.clientid = clientid.filter(|c| !c.is_empty()).map(String::from);
    let shown = client.clientid.clone().unwrap_or_else(|| "(null)".into());
    run.done(
        C,
        &format!(" | username={username} | clientid={shown}"),
        a.1,
    );
    run.kick(username);
}

pub fn set_password(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "setClientPassword";
    let Some(username) = run.name(C, a, "username") else {
        return;
    };
    let Ok(Some(password)) = j::string(a.0, "password") else {
        return run.reply(C, Some("Invalid/missing password"), a.1);
    };
    if password.is_empty() {
        return run.reply(C, Some("Empty password is not allowed"), a.1);
    }
    if !run.model.clients.contains_key(username) {
        return run.reply(C, Some("Client not found"), a.1);
    }
    let Some(hash) = hash_password(password) else {
        return run.reply(C, Some("Internal error"), a.1);
    };
    if let Some(client) = run.model.clients.get_mut(username) {
        client.password = Some(hash);
    }
    run.done(C, &format!(" | username={username} | password=******"), a.1);
    run.kick(username);
}

pub fn modify(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "modifyClient";
    let (args, corr) = a;
    let Some(username) = run.name(C, a, "username") else {
        return;
    };
    if !run.model.clients.contains_key(username) {
        return run.reply(C, Some("Client not found"), corr);
    }
    // Checked before anything changes, unlike the plugin, which applies the fields before
    // the roles and keeps them when the roles are refused.
    let roles = match roles_arg(run, args) {
        Ok(roles) => roles,
        Err(e) => {
            run.kick(username);
            return run.reply(C, Some(e), corr);
        }
    };
    let password = match j::string(args, "password") {
        // An empty password leaves the password as it is.
        Ok(Some(p)) if !p.is_empty() => match hash_password(p) {
            Some(hash) => Some(hash),
            None => return run.reply(C, Some("Internal error"), corr),
        },
        _ => None,
    };
    let groups = groups_arg(args);
    let Some(client) = run.model.clients.get_mut(username) else {
        return;
    };
    if let Ok(Some(id)) = j::string(args, "clientid") {
        client.clientid = Some(id.to_string()).filter(|c| !c.is_empty());
    }
    if password.is_some() {
        client.password = password;
    }
    if let Ok(Some(t)) = j::string(args, "textname") {
        client.text_name = Some(t.to_string());
    }
    if let Ok(Some(t)) = j::string(args, "textdescription") {
        client.text_description = Some(t.to_string());
    }
    if let Some(roles) = roles {
        client.roles = roles;
    }
    if let Some(groups) = groups {
        leave_all_groups(run, username);
        join_groups(run, username, groups);
    }
    run.done(C, &format!(" | username={username}"), corr);
    run.kick(username);
}

/// The `username` and `rolename` of an add/remove-role command `c`, both existing; `None`
/// once the error response is sent (checked in the plugin's order).
fn client_and_role<'c>(run: &mut Run<'_>, c: &str, a: Args<'c>) -> Option<(&'c str, &'c str)> {
    let username = run.name(c, a, "username")?;
    let rolename = run.name(c, a, "rolename")?;
    if !run.model.clients.contains_key(username) {
        run.reply(c, Some("Client not found"), a.1);
        return None;
    }
    if !run.model.roles.contains_key(rolename) {
        run.reply(c, Some("Role not found"), a.1);
        return None;
    }
    Some((username, rolename))
}

pub fn add_role(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "addClientRole";
    let Some((username, rolename)) = client_and_role(run, C, a) else {
        return;
    };
    let priority = j::int(a.0, "priority", NO_PRIORITY);
    if let Some(client) = run.model.clients.get_mut(username) {
        let r = Ref {
            name: rolename.to_string(),
            priority,
        };
        if !insert_ref(&mut client.roles, r) {
            // The plugin's answer when the client already has the role.
            return run.reply(C, Some("Internal error"), a.1);
        }
    }
    let detail = format!(" | username={username} | rolename={rolename} | priority={priority}");
    run.done(C, &detail, a.1);
    run.kick(username);
}

pub fn remove_role(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "removeClientRole";
    let Some((username, rolename)) = client_and_role(run, C, a) else {
        return;
    };
    if let Some(client) = run.model.clients.get_mut(username) {
        client.roles.retain(|r| r.name != rolename);
    }
    run.done(
        C,
        &format!(" | username={username} | rolename={rolename}"),
        a.1,
    );
    run.kick(username);
}

/// A client as `getClient` and a verbose `listClients` show it: with its groups.
fn client_data(run: &Run<'_>, username: &str, client: &Client) -> Value {
    let mut value = encode::client_json(username, client, true);
    let groups = encode::refs_json(&run.model.client_groups(username), "groupname");
    if let Value::Object(o) = &mut value {
        o.insert("groups".into(), groups);
    }
    value
}

pub fn get(run: &mut Run<'_>, a: Args<'_>) {
    const C: &str = "getClient";
    let Some(username) = run.name(C, a, "username") else {
        return;
    };
    let Some(client) = run.model.clients.get(username) else {
        return run.reply(C, Some("Client not found"), a.1);
    };
    let data = json!({ "client": client_data(run, username, client) });
    run.data(C, data, a.1);
}

pub fn list(run: &mut Run<'_>, a: Args<'_>) {
    let items: Vec<(Value, Value)> = (run.model.clients.iter())
        .map(|(u, c)| (client_data(run, u, c), Value::String(u.clone())))
        .collect();
    list_page(run, "listClients", "clients", a, items.into_iter());
}
