//! `plugin` / `global_plugin` lines naming Mosquitto's dynamic security plugin, and their
//! `plugin_opt_*` / `global_plugin_opt_*` options.
//!
//! pipit has the plugin built in (`auth::dynsec`), so a file that loads it from any
//! directory works unchanged. The plugin reads one option, `plugin_opt_config_file`, which
//! pipit requires (Mosquitto would start with the plugin inactive, and so with access
//! control missing); any other option of the plugin is a warning, as the plugin ignores it.
//! An option before any plugin line is an error, as in Mosquitto. Other plugins are refused
//! (`refused`).

use std::path::PathBuf;

use super::ConfigError;
use super::line::{Line, Origin};

/// The dynamic security plugin of one scope (global or a listener), as written so far.
#[derive(Clone)]
pub(super) struct DynsecDraft {
    /// The `plugin` line, for the error when the config file is missing.
    pub(super) origin: Origin,
    /// `plugin` or `global_plugin`, as the line names it.
    pub(super) option: &'static str,
    /// `plugin_opt_config_file`.
    pub(super) config_file: Option<PathBuf>,
}

impl DynsecDraft {
    /// The config file, or the error naming the plugin line without one.
    pub(super) fn finish(&self) -> Result<PathBuf, ConfigError> {
        self.config_file.clone().ok_or_else(|| {
            self.origin.error(format!(
                "{}: the dynamic security plugin needs plugin_opt_config_file (the JSON file \
                 of its clients, groups and roles); without it access control would be missing",
                self.option
            ))
        })
    }
}

/// Whether a `plugin` line's path names the dynamic security plugin (in any directory).
pub(super) fn is_dynsec(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("mosquitto_dynamic_security")
}

/// The option name of a `plugin_opt_KEY` / `global_plugin_opt_KEY` line, if it is one.
pub(super) fn option_key<'a>(l: &Line<'a>) -> Option<&'a str> {
    (l.name.strip_prefix("plugin_opt_")).or_else(|| l.name.strip_prefix("global_plugin_opt_"))
}

/// What a plugin option line does to the current plugin's draft.
pub(super) enum Opt {
    /// Sets the config file.
    ConfigFile(PathBuf),
    /// An option the plugin does not read: the warning to give.
    Ignored(String),
}

/// Reads option line `l` with key `key`; `has_plugin` says whether a plugin line came
/// before it.
pub(super) fn option(l: &Line, key: &str, has_plugin: bool) -> Result<Opt, ConfigError> {
    if !has_plugin {
        return Err(l.error(format!("{}: no plugin line before it", l.name)));
    }
    if key.is_empty() || l.value.is_empty() {
        return Err(l.error(format!("{}: empty option name or value", l.name)));
    }
    if key == "config_file" {
        return Ok(Opt::ConfigFile(l.path()?));
    }
    Ok(Opt::Ignored(format!(
        "{}: the dynamic security plugin has no option \"{key}\"; ignored",
        l.name
    )))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::{Path, PathBuf};

    fn parse(text: &str) -> Result<(Config, usize), String> {
        Config::parse(text, Path::new("pipit.conf"))
            .map(|(c, w)| (c, w.len()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_dynamic_security_plugin_loads_from_any_directory() {
        for so in [
            "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
            "/usr/local/lib/mosquitto_dynamic_security.so",
            "mosquitto_dynamic_security.so",
        ] {
            let (c, warnings) = parse(&format!(
                "plugin {so}\nplugin_opt_config_file /d/dynsec.json\n"
            ))
            .unwrap();
            assert_eq!(c.dynsec, Some(PathBuf::from("/d/dynsec.json")), "{so}");
            assert_eq!(c.security_for(0).dynsec, c.dynsec);
            assert_eq!(warnings, 0);
        }
        let (c, _) = parse(
            "global_plugin /x/mosquitto_dynamic_security.so\n\
                            global_plugin_opt_config_file /d.json\n",
        )
        .unwrap();
        assert_eq!(c.dynsec, Some(PathBuf::from("/d.json")));
    }

    #[test]
    fn the_config_file_is_required_and_other_options_warn() {
        let so = "plugin /usr/lib/mosquitto_dynamic_security.so\n";
        let e = parse(so).unwrap_err();
        assert!(
            e.starts_with("pipit.conf:1: ") && e.contains("plugin_opt_config_file"),
            "{e}"
        );
        let (_, warnings) = parse(&format!(
            "{so}plugin_opt_config_file /d.json\nplugin_opt_verbose true\n"
        ))
        .unwrap();
        assert_eq!(warnings, 1);
        let e = parse("plugin_opt_config_file /d.json\n").unwrap_err();
        assert!(e.contains("no plugin line before it"), "{e}");
        assert!(parse(&format!("{so}plugin_opt_config_file\n")).is_err());
    }

    #[test]
    fn other_plugins_are_still_refused() {
        let e = parse("plugin /usr/lib/auth-plug.so\n").unwrap_err();
        assert!(e.contains("refuses to start"), "{e}");
    }

    #[test]
    fn listeners_may_not_name_different_files() {
        let text = "per_listener_settings true\n\
                    listener 1883 127.0.0.1\nplugin /l/mosquitto_dynamic_security.so\n\
                    plugin_opt_config_file /a.json\n\
                    listener 1884 127.0.0.1\nplugin /l/mosquitto_dynamic_security.so\n\
                    plugin_opt_config_file /b.json\n";
        let e = parse(text).unwrap_err();
        assert!(e.contains("one dynamic security file"), "{e}");
        let same = text.replace("/b.json", "/a.json");
        let (c, _) = parse(&same).unwrap();
        assert_eq!(c.security_for(1).dynsec, Some(PathBuf::from("/a.json")));
    }
}
