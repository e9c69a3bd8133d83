//! Mosquitto 2.0's dynamic security plugin (`mosquitto_dynamic_security.so`), built in:
//! clients, groups and roles kept in a JSON file (`plugin_opt_config_file`), managed at run
//! time through the `$CONTROL/dynamic-security/v1` topic (`mosquitto_ctrl dynsec ...`).
//!
//! `model` holds the data read from the file, `encode` its JSON form, `file` reads and
//! atomically replaces the file, `decide` makes the plugin's authentication and ACL
//! decisions (from a form compiled per client whenever the data changes), and `control`
//! runs the control API's commands.
//!
//! How the broker combines a decision with its other checks (as Mosquitto 2.0 does, the
//! plugin being consulted first): see `Auth::authenticate` and `Auth::allowed`. One
//! `Dynsec` serves every listener that names the plugin, as the plugin keeps one
//! configuration per broker. Invariant: `compiled` always reflects `model`.

mod control;
mod decide;
mod encode;
mod file;
mod json;
mod model;

use std::path::{Path, PathBuf};

use log::{error, info, warn};

use crate::auth::Access;
use crate::config::ConfigError;
pub use control::{Kick, RESPONSE_TOPIC, TOPIC};
pub use decide::Decision;

/// The loaded dynamic security configuration.
#[derive(Debug)]
pub struct Dynsec {
    path: PathBuf,
    model: model::Model,
    compiled: decide::Compiled,
}

/// What a control message did: the response to publish and the clients to disconnect.
#[derive(Debug)]
pub struct ControlOutcome {
    /// The JSON response for `RESPONSE_TOPIC`.
    pub response: Vec<u8>,
    /// Clients whose rights changed.
    pub kicks: Vec<Kick>,
}

impl Dynsec {
    /// Loads the file at `path`. A missing file is an empty configuration that the first
    /// change creates (as Mosquitto 2.0.11 does); an unreadable or malformed one is an
    /// error, where Mosquitto would log it and run with nothing loaded (and overwrite the
    /// file at the first change).
    pub fn load(path: &Path) -> Result<Dynsec, ConfigError> {
        let fail = |message: String| ConfigError {
            file: path.to_path_buf(),
            line: None,
            message: format!("dynamic security configuration: {message}"),
        };
        let model = match file::read(path).map_err(|e| fail(format!("cannot read: {e}")))? {
            Some(text) => model::Model::from_json(&text).map_err(fail)?,
            None => {
                warn!(
                    "{}: dynamic security configuration not found: starting with none \
                     (no clients, every ACL check denied); the first change creates it",
                    path.display()
                );
                model::Model::default()
            }
        };
        info!(
            "dynamic security: {} clients, {} groups, {} roles from {}",
            model.clients.len(),
            model.groups.len(),
            model.roles.len(),
            path.display()
        );
        Ok(Dynsec {
            path: path.to_path_buf(),
            compiled: decide::Compiled::new(&model),
            model,
        })
    }

    /// The file this configuration is saved to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plugin's verdict on a CONNECT's credentials.
    pub fn authenticate(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
        client_id: &str,
    ) -> Decision {
        decide::authenticate(&self.model, username, password, client_id)
    }

    /// The plugin's verdict on `access` to `topic` by a client with `username`.
    pub fn check(&self, username: Option<&str>, topic: &str, access: Access) -> Decision {
        self.compiled.check(username, topic, access)
    }

    /// Runs a control message from `admin` (client id and username, for the log); after a
    /// change the data is recompiled and saved.
    pub fn control(&mut self, payload: &[u8], admin: &str) -> ControlOutcome {
        let outcome = control::run(&mut self.model, payload, admin);
        if outcome.changed {
            self.compiled = decide::Compiled::new(&self.model);
            self.save();
        }
        ControlOutcome {
            response: outcome.response,
            kicks: outcome.kicks,
        }
    }

    /// Writes the data to the file; a failure is logged and the change stays in force
    /// until the broker stops (as in the plugin).
    fn save(&self) {
        let text = match serde_json::to_vec_pretty(&self.model.to_json()) {
            Ok(text) => text,
            Err(e) => return error!("dynamic security: cannot encode the configuration: {e}"),
        };
        if let Err(e) = file::write_atomic(&self.path, &text) {
            error!(
                "{}: cannot save the dynamic security configuration: {e}",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pipit-dynsec-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("dynsec.json")
    }

    #[test]
    fn a_missing_file_is_empty_and_the_first_change_creates_it() {
        let path = scratch("missing");
        let _ = std::fs::remove_file(&path);
        let mut dynsec = Dynsec::load(&path).unwrap();
        assert_eq!(dynsec.check(None, "a", Access::Read), Decision::Defer);
        let create = br#"{"commands":[{"command":"createRole","rolename":"r"}]}"#;
        let outcome = dynsec.control(create, "admin/admin");
        assert!(String::from_utf8_lossy(&outcome.response).contains("createRole"));
        let reloaded = Dynsec::load(&path).unwrap();
        assert!(reloaded.model.roles.contains_key("r"));
    }

    #[test]
    fn a_broken_file_stops_loading_with_its_name() {
        let path = scratch("broken");
        std::fs::write(&path, "{\"clients\": [").unwrap();
        let e = Dynsec::load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&path.display().to_string()) && e.contains("not valid JSON"),
            "{e}"
        );
    }
}
