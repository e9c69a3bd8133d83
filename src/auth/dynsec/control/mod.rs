//! The `$CONTROL/dynamic-security/v1` API: a PUBLISH carrying `{"commands": [...]}` is run
//! command by command against the model, and one `{"responses": [...]}` answers it, with
//! Mosquitto 2.0's command names, error strings and `correlationData`.
//!
//! Like the plugin, a command names its arguments case-insensitively, a command that fails
//! leaves the model as it was (the plugin's partial updates aside), and after a change the
//! clients whose rights changed are listed to be disconnected ("kicked"): the broker
//! re-authenticates them when they reconnect. Commands in one message run in order; the
//! model is saved and recompiled once after the message if any command changed it.

mod clients;
mod groups;
mod roles;

use log::info;
use serde_json::{Map, Value, json};

use super::json as j;
use super::model::Model;

/// Topic the control API listens on.
pub const TOPIC: &str = "$CONTROL/dynamic-security/v1";
/// Topic responses are published on.
pub const RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";

/// Clients to disconnect because their rights changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kick {
    /// Every connection authenticated with this username.
    Username(String),
    /// Every connection without a username (the anonymous group changed).
    Anonymous,
}

/// What running one control message did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The JSON response to publish on `RESPONSE_TOPIC`.
    pub response: Vec<u8>,
    /// Clients to disconnect.
    pub kicks: Vec<Kick>,
    /// Whether the model changed (save and recompile).
    pub changed: bool,
}

/// State while running one message's commands.
struct Run<'a> {
    model: &'a mut Model,
    responses: Vec<Value>,
    kicks: Vec<Kick>,
    changed: bool,
    /// The client running the commands, for the log.
    admin: &'a str,
}

/// A command's arguments (`Map`) and its `correlationData`.
type Args<'c> = (&'c Map<String, Value>, Option<&'c str>);

impl Run<'_> {
    /// Adds a response of `command` with `error` (none: success).
    fn reply(&mut self, command: &str, error: Option<&str>, correlation: Option<&str>) {
        let mut o = Map::new();
        o.insert("command".into(), command.into());
        if let Some(e) = error {
            o.insert("error".into(), e.into());
        }
        if let Some(c) = correlation {
            o.insert("correlationData".into(), c.into());
        }
        self.responses.push(Value::Object(o));
    }

    /// Adds a successful response of `command` carrying `data`.
    fn data(&mut self, command: &str, data: Value, correlation: Option<&str>) {
        let mut o = Map::new();
        o.insert("command".into(), command.into());
        o.insert("data".into(), data);
        if let Some(c) = correlation {
            o.insert("correlationData".into(), c.into());
        }
        self.responses.push(Value::Object(o));
    }

    /// Records a successful change: replies, marks the model changed and logs it.
    fn done(&mut self, command: &str, detail: &str, correlation: Option<&str>) {
        self.changed = true;
        self.reply(command, None, correlation);
        info!("dynsec: {} | {command}{detail}", self.admin);
    }

    /// Disconnects `username`'s connections.
    fn kick(&mut self, username: &str) {
        let kick = Kick::Username(username.to_string());
        if !self.kicks.contains(&kick) {
            self.kicks.push(kick);
        }
    }

    /// Disconnects the members of group `name`, and anonymous clients if it is the
    /// anonymous group.
    fn kick_group(&mut self, name: &str) {
        if self.model.anonymous_group.as_deref() == Some(name)
            && !self.kicks.contains(&Kick::Anonymous)
        {
            self.kicks.push(Kick::Anonymous);
        }
        let members: Vec<String> = (self.model.groups.get(name))
            .map(|g| g.clients.iter().map(|m| m.name.clone()).collect())
            .unwrap_or_default();
        for m in members {
            self.kick(&m);
        }
    }

    /// Disconnects every client that holds role `name`, directly or through a group.
    fn kick_role(&mut self, name: &str) {
        let holders: Vec<String> = (self.model.clients.iter())
            .filter(|(_, c)| c.roles.iter().any(|r| r.name == name))
            .map(|(u, _)| u.clone())
            .collect();
        for u in holders {
            self.kick(&u);
        }
        let groups: Vec<String> = (self.model.groups.iter())
            .filter(|(_, g)| g.roles.iter().any(|r| r.name == name))
            .map(|(n, _)| n.clone())
            .collect();
        for g in groups {
            self.kick_group(&g);
        }
    }

    /// The name argument `key` (`username`, `groupname`, `rolename`) of `command`, or `None`
    /// after replying with the plugin's error for it.
    fn name<'c>(&mut self, command: &str, (args, corr): Args<'c>, key: &str) -> Option<&'c str> {
        let (missing, not_utf8) = match key {
            "username" => ("Invalid/missing username", "Username not valid UTF-8"),
            "groupname" => ("Invalid/missing groupname", "Group name not valid UTF-8"),
            _ => ("Invalid/missing rolename", "Role name not valid UTF-8"),
        };
        match j::string(args, key) {
            Ok(Some(name)) if valid_utf8(name) => Some(name),
            Ok(Some(_)) => {
                self.reply(command, Some(not_utf8), corr);
                None
            }
            _ => {
                self.reply(command, Some(missing), corr);
                None
            }
        }
    }
}

/// Whether `s` passes `mosquitto_validate_utf8`: besides being UTF-8 (which a JSON string
/// is), no control characters and no non-characters.
pub fn valid_utf8(s: &str) -> bool {
    s.len() <= 65536
        && s.chars().all(|c| {
            let c = u32::from(c);
            !(c <= 0x1F
                || (0x7F..=0x9F).contains(&c)
                || (0xFDD0..=0xFDEF).contains(&c)
                || (c & 0xFFFF) >= 0xFFFE)
        })
}

/// Runs the commands of one control message from `admin` (its client id and username,
/// for the log) against `model`.
pub fn run(model: &mut Model, payload: &[u8], admin: &str) -> Outcome {
    let mut run = Run {
        model,
        responses: Vec::new(),
        kicks: Vec::new(),
        changed: false,
        admin,
    };
    match serde_json::from_slice::<Value>(payload) {
        Err(_) => run.reply("Unknown command", Some("Payload not valid JSON"), None),
        Ok(tree) => match tree.as_object().and_then(|o| j::get(o, "commands")) {
            Some(Value::Array(commands)) => run_commands(&mut run, commands),
            _ => run.reply("Unknown command", Some("Invalid/missing commands"), None),
        },
    }
    let response = json!({ "responses": run.responses });
    Outcome {
        response: response.to_string().into_bytes(),
        kicks: run.kicks,
        changed: run.changed,
    }
}

fn run_commands(run: &mut Run<'_>, commands: &[Value]) {
    // As in the plugin, a command without a name answers with the correlation data of the
    // command before it.
    let mut correlation: Option<&str> = None;
    for command in commands {
        let Value::Object(args) = command else {
            run.reply(
                "Unknown command",
                Some("Command not an object"),
                correlation,
            );
            continue;
        };
        let Ok(Some(name)) = j::string(args, "command") else {
            run.reply("Unknown command", Some("Missing command"), correlation);
            continue;
        };
        correlation = match j::string(args, "correlationData") {
            Ok(c) => c,
            Err(()) => {
                // The plugin stops at this command.
                run.reply(name, Some("Invalid correlationData data type."), None);
                return;
            }
        };
        let a = (args, correlation);
        // Names are compared ignoring ASCII case, as the plugin's `strcasecmp`.
        match name.to_ascii_lowercase().as_str() {
            "setdefaultaclaccess" => set_default_acl_access(run, a),
            "getdefaultaclaccess" => get_default_acl_access(run, a),
            "createclient" => clients::create(run, a),
            "deleteclient" => clients::delete(run, a),
            "getclient" => clients::get(run, a),
            "listclients" => clients::list(run, a),
            "modifyclient" => clients::modify(run, a),
            "setclientpassword" => clients::set_password(run, a),
            "setclientid" => clients::set_id(run, a),
            "addclientrole" => clients::add_role(run, a),
            "removeclientrole" => clients::remove_role(run, a),
            "enableclient" => clients::enable(run, a, true),
            "disableclient" => clients::enable(run, a, false),
            "addgroupclient" => groups::add_client(run, a),
            "creategroup" => groups::create(run, a),
            "deletegroup" => groups::delete(run, a),
            "getgroup" => groups::get(run, a),
            "listgroups" => groups::list(run, a),
            "modifygroup" => groups::modify(run, a),
            "removegroupclient" => groups::remove_client(run, a),
            "addgrouprole" => groups::add_role(run, a),
            "removegrouprole" => groups::remove_role(run, a),
            "setanonymousgroup" => groups::set_anonymous(run, a),
            "getanonymousgroup" => groups::get_anonymous(run, a),
            "createrole" => roles::create(run, a),
            "getrole" => roles::get(run, a),
            "listroles" => roles::list(run, a),
            "modifyrole" => roles::modify(run, a),
            "deleterole" => roles::delete(run, a),
            "addroleacl" => roles::add_acl(run, a),
            "removeroleacl" => roles::remove_acl(run, a),
            _ => run.reply(name, Some("Unknown command"), correlation),
        }
    }
}

/// `listClients`, `listGroups`, `listRoles`: `count` items from `offset`, each verbose or
/// just a name, with `totalCount`.
fn list_page(
    run: &mut Run<'_>,
    command: &str,
    key: &str,
    (args, corr): Args<'_>,
    items: impl ExactSizeIterator<Item = (Value, Value)>,
) {
    let verbose = j::boolean(args, "verbose", false);
    let count = j::int(args, "count", -1);
    let offset = usize::try_from(j::int(args, "offset", 0)).unwrap_or(0);
    let total = items.len();
    // A count of 0 still lists one item, as the plugin's loop does.
    let take = usize::try_from(count).map_or(usize::MAX, |c| c.max(1));
    let page: Vec<Value> = items
        .skip(offset)
        .take(take)
        .map(|(full, name)| if verbose { full } else { name })
        .collect();
    let data = json!({ "totalCount": total, key: page });
    run.data(command, data, corr);
}

/// The four default-access types with their JSON names.
const DEFAULT_TYPES: [&str; 4] = [
    "publishClientSend",
    "publishClientReceive",
    "subscribe",
    "unsubscribe",
];

fn set_default_acl_access(run: &mut Run<'_>, (args, corr): Args<'_>) {
    const COMMAND: &str = "setDefaultACLAccess";
    let Some(Value::Array(acls)) = j::get(args, "acls") else {
        run.reply(COMMAND, Some("Missing/invalid actions array"), corr);
        return;
    };
    let mut detail = String::new();
    for acl in acls.iter().filter_map(Value::as_object) {
        let (Ok(Some(kind)), Some(allow)) = (
            j::string(acl, "acltype"),
            j::get(acl, "allow").and_then(Value::as_bool),
        ) else {
            continue;
        };
        let d = &mut run.model.default_access;
        let slot = match DEFAULT_TYPES
            .iter()
            .position(|t| t.eq_ignore_ascii_case(kind))
        {
            Some(0) => &mut d.publish_client_send,
            Some(1) => &mut d.publish_client_receive,
            Some(2) => &mut d.subscribe,
            Some(3) => &mut d.unsubscribe,
            _ => continue,
        };
        *slot = allow;
        detail.push_str(&format!(" | acltype={kind} | allow={allow}"));
    }
    run.done(COMMAND, &detail, corr);
}

fn get_default_acl_access(run: &mut Run<'_>, (_, corr): Args<'_>) {
    let d = run.model.default_access;
    let allows = [
        d.publish_client_send,
        d.publish_client_receive,
        d.subscribe,
        d.unsubscribe,
    ];
    let acls: Vec<Value> = (DEFAULT_TYPES.iter().zip(allows))
        .map(|(t, allow)| json!({ "acltype": t, "allow": allow }))
        .collect();
    run.data("getDefaultACLAccess", json!({ "acls": acls }), corr);
}

#[cfg(test)]
mod tests;
