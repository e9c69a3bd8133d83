//! The control API against a model in memory: responses and kicks, as the plugin gives them.

use serde_json::{Value, json};

use super::{Kick, run};
use crate::auth::Access;
use crate::auth::dynsec::decide::{Compiled, Decision, authenticate};
use crate::auth::dynsec::model::Model;

/// Runs `commands` and returns the responses and kicks.
fn call(model: &mut Model, commands: Value) -> (Vec<Value>, Vec<Kick>) {
    let payload = json!({ "commands": commands }).to_string();
    let outcome = run(model, payload.as_bytes(), "admin/admin");
    let response: Value = serde_json::from_slice(&outcome.response).unwrap();
    let responses = response["responses"].as_array().unwrap().clone();
    (responses, outcome.kicks)
}

/// The `error` of each response (`None` for success).
fn errors(responses: &[Value]) -> Vec<Option<&str>> {
    responses.iter().map(|r| r["error"].as_str()).collect()
}

#[test]
fn malformed_messages_get_the_plugins_errors() {
    let mut m = Model::default();
    for (payload, error) in [
        (&b"not json"[..], "Payload not valid JSON"),
        (b"{\"commands\": 3}", "Invalid/missing commands"),
        (b"[1]", "Invalid/missing commands"),
        (b"\xff\xfe", "Payload not valid JSON"),
    ] {
        let outcome = run(&mut m, payload, "a");
        let v: Value = serde_json::from_slice(&outcome.response).unwrap();
        let r = &v["responses"][0];
        assert_eq!(
            (r["command"].as_str(), r["error"].as_str()),
            (Some("Unknown command"), Some(error))
        );
    }
    let (r, _) = call(
        &mut m,
        json!([5, {"correlationData": "c1", "command": "nope"}, {"x": 1},
               {"command": "getClient", "correlationData": 7}, {"command": "listRoles"}]),
    );
    assert_eq!(
        errors(&r),
        [
            Some("Command not an object"),
            Some("Unknown command"),
            Some("Missing command"),
            Some("Invalid correlationData data type."),
        ]
    );
    // A command without a name answers with the previous command's correlation data.
    assert_eq!(r[2]["correlationData"], "c1");
    assert_eq!(r[1]["command"], "nope");
}

#[test]
fn clients_roles_and_groups_end_to_end() {
    let mut m = Model::default();
    let (r, kicks) = call(
        &mut m,
        json!([
            {"command": "createRole", "rolename": "r", "correlationData": "x"},
            {"command": "addRoleACL", "rolename": "r", "acltype": "publishClientSend",
             "topic": "a/#", "allow": true},
            {"command": "addRoleACL", "rolename": "r", "acltype": "publishClientSend",
             "topic": "a/#"},
            {"command": "addRoleACL", "rolename": "r", "acltype": "bogus", "topic": "a"},
            {"command": "addRoleACL", "rolename": "r", "acltype": "subscribeLiteral",
             "topic": "a/#/b"},
            {"command": "createClient", "username": "u", "password": "pw",
             "roles": [{"rolename": "r"}]},
            {"command": "createClient", "username": "u"},
            {"command": "createClient", "username": "v", "roles": [{"rolename": "ghost"}]},
            {"command": "createGroup", "groupname": "g"},
            {"command": "addGroupClient", "groupname": "g", "username": "u", "priority": 2},
            {"command": "addGroupClient", "groupname": "g", "username": "u"},
            {"command": "setAnonymousGroup", "groupname": "g"},
            {"command": "setClientPassword", "username": "u", "password": ""},
            {"command": "modifyRole", "rolename": "ghost"},
        ]),
    );
    assert_eq!(
        errors(&r),
        [
            None,
            None,
            Some("ACL with this topic already exists"),
            Some("Unknown acltype"),
            Some("Invalid ACL topic"),
            None,
            Some("Client already exists"),
            Some("Role not found"),
            None,
            None,
            Some("Client is already in this group"),
            None,
            Some("Empty password is not allowed"),
            Some("Role does not exist"),
        ]
    );
    assert_eq!(r[0]["correlationData"], "x");
    assert!(kicks.contains(&Kick::Username("u".into())) && kicks.contains(&Kick::Anonymous));
    let compiled = Compiled::new(&m);
    assert_eq!(
        compiled.check(Some("u"), "a/1", Access::Write),
        Decision::Allow
    );
    assert_eq!(
        authenticate(&m, Some("u"), Some(b"pw"), "any"),
        Decision::Allow
    );

    let (r, _) = call(
        &mut m,
        json!([{"command": "getClient", "username": "u"},
               {"command": "listClients", "verbose": false},
               {"command": "getAnonymousGroup"},
               {"command": "getDefaultACLAccess"},
               {"command": "getClient", "username": "nobody"}]),
    );
    let client = &r[0]["data"]["client"];
    assert_eq!(client["roles"], json!([{"rolename": "r"}]));
    assert_eq!(client["groups"], json!([{"groupname": "g", "priority": 2}]));
    assert!(client.get("password").is_none());
    assert_eq!(r[1]["data"], json!({"totalCount": 1, "clients": ["u"]}));
    assert_eq!(r[2]["data"]["group"]["groupname"], "g");
    assert_eq!(
        r[3]["data"]["acls"][0],
        json!({"acltype": "publishClientSend", "allow": false})
    );
    assert_eq!(errors(&r)[4], Some("Client not found"));
}

#[test]
fn deleting_unlinks_and_kicks_the_holders() {
    let mut m = Model::default();
    call(
        &mut m,
        json!([{"command": "createRole", "rolename": "r"},
               {"command": "createGroup", "groupname": "g", "roles": [{"rolename": "r"}]},
               {"command": "createClient", "username": "a", "groups": [{"groupname": "g"}]},
               {"command": "createClient", "username": "b", "roles": [{"rolename": "r"}]}]),
    );
    let (r, kicks) = call(&mut m, json!([{"command": "deleteRole", "rolename": "r"}]));
    assert_eq!(errors(&r), [None]);
    assert_eq!(
        kicks,
        [Kick::Username("b".into()), Kick::Username("a".into())]
    );
    assert!(m.clients["b"].roles.is_empty() && m.groups["g"].roles.is_empty());
    let (_, kicks) = call(
        &mut m,
        json!([{"command": "deleteClient", "username": "a"}]),
    );
    assert_eq!(kicks, [Kick::Username("a".into())]);
    assert!(m.groups["g"].clients.is_empty());
    let (r, _) = call(
        &mut m,
        json!([{"command": "listRoles"}, {"command": "listGroups", "count": 0, "offset": -3}]),
    );
    assert_eq!(r[0]["data"], json!({"totalCount": 0, "roles": []}));
    assert_eq!(r[1]["data"], json!({"totalCount": 1, "groups": ["g"]}));
}

#[test]
fn default_access_is_set_by_type_ignoring_case() {
    let mut m = Model::default();
    let (r, _) = call(
        &mut m,
        json!([{"command": "setDefaultACLAccess", "acls": [
                  {"acltype": "SUBSCRIBE", "allow": true},
                  {"acltype": "publishClientSend", "allow": "yes"}]},
               {"command": "setDefaultACLAccess"}]),
    );
    assert_eq!(errors(&r), [None, Some("Missing/invalid actions array")]);
    assert!(m.default_access.subscribe && !m.default_access.publish_client_send);
}
