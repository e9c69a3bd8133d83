//! Mosquitto options that would restrict who may connect, what clients may do, or how a
//! connection is protected, and that pipit does not implement. Security options fail closed:
//! each stops start-up with `FILE:LINE`, what pipit would do without it, and what to use
//! instead; none is ever a warning. A boolean option whose `false` is what pipit does anyway
//! is accepted when false.

use super::ConfigError;
use super::line::Line;

/// What to use instead of a plugin (the dynamic security plugin is built in: `config::plugin`).
const USE_FILES: &str = "use password_file and acl_file, or the built-in dynamic security plugin, instead, or remove the line";

/// What to use instead of an authentication plugin (`auth_plugin`, `auth_opt_*`).
const AUTH_PLUGIN_INSTEAD: &str = "move its users and rules to password_file and acl_file, or to \
     the dynamic security plugin (plugin .../mosquitto_dynamic_security.so), or embed pipit in a \
     Rust program (pipit::Broker, the embedding API) for checks of your own";

/// Prefixes of option families refused like `REFUSED`: (prefix, why, what to do instead).
const REFUSED_PREFIXES: [(&str, &str, &str); 1] = [(
    "auth_opt_",
    "is an option of an authentication plugin (auth_plugin), which pipit cannot load, and without the plugin the access control it configures would be missing",
    AUTH_PLUGIN_INSTEAD,
)];

/// (option, why it cannot be ignored, what to do instead).
const REFUSED: [(&str, &str, &str); 11] = [
    (
        "psk_hint",
        "TLS-PSK is not supported (rustls, pipit's TLS library, has no external pre-shared keys), and without it this listener would accept unencrypted MQTT",
        "use certfile and keyfile (TLS with certificates) instead",
    ),
    (
        "psk_file",
        "TLS-PSK is not supported (rustls, pipit's TLS library, has no external pre-shared keys), and without it listeners would accept unencrypted MQTT",
        "use certfile and keyfile (TLS with certificates) instead",
    ),
    (
        "plugin",
        "plugins are not supported, and without this one the access control it provides would be missing",
        USE_FILES,
    ),
    (
        "global_plugin",
        "plugins are not supported, and without this one the access control it provides would be missing",
        USE_FILES,
    ),
    (
        "auth_plugin",
        "pipit cannot load Mosquitto's C authentication plugins (mosquitto-go-auth and others), and without this one the access control it provides would be missing",
        AUTH_PLUGIN_INSTEAD,
    ),
    (
        "crlfile",
        "certificate revocation lists are not supported, and without it revoked client certificates would be accepted",
        "issue the client certificates still trusted from a new CA (cafile), or remove the line",
    ),
    (
        "bind_interface",
        "binding to a network interface is not supported, and without it this listener would accept connections on every interface",
        "use `listener PORT ADDRESS` with the interface's address instead",
    ),
    (
        "mount_point",
        "mount points are not supported, and without it clients of this listener would reach every topic",
        "confine them with acl_file rules instead",
    ),
    (
        "ciphers",
        "choosing TLS 1.2 cipher suites is not supported, and without it the listener would offer suites this line may exclude",
        "remove the line to use rustls's defaults (AEAD suites with forward secrecy only), or require TLS 1.3 with tls_version tlsv1.3",
    ),
    (
        "ciphers_tls1.3",
        "choosing TLS 1.3 cipher suites is not supported, and without it the listener would offer suites this line may exclude",
        "remove the line to use rustls's defaults (all three TLS 1.3 suites)",
    ),
    (
        "check_retain_source",
        "is not supported, and without it retained messages would still be delivered after their publisher lost write access",
        "set it to false or remove the line",
    ),
];

/// Options refused only when set to `true`.
const REFUSED_WHEN_TRUE: [&str; 1] = ["check_retain_source"];

/// Whether `name` is one of the refused options.
pub(super) fn is_refused(name: &str) -> bool {
    REFUSED.iter().any(|(option, ..)| *option == name)
        || REFUSED_PREFIXES
            .iter()
            .any(|(prefix, ..)| name.starts_with(prefix))
}

/// The error that stops start-up at line `l` (whose option `is_refused`); `Ok` for a boolean
/// option set to `false`.
pub(super) fn check(l: &Line) -> Result<(), ConfigError> {
    if REFUSED_WHEN_TRUE.contains(&l.name) && !l.flag()? {
        return Ok(());
    }
    let by_name = REFUSED.iter().find(|(o, ..)| *o == l.name);
    let by_prefix = || {
        REFUSED_PREFIXES
            .iter()
            .find(|(p, ..)| l.name.starts_with(p))
    };
    let Some((_, why, instead)) = by_name.or_else(by_prefix).copied() else {
        return Ok(());
    };
    Err(l.error(format!(
        "{}: {why}; pipit refuses to start rather than ignore it: {instead}",
        l.name
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn line<'a>(name: &'a str, value: &'a str) -> Line<'a> {
        Line {
            file: Path::new("pipit.conf"),
            no: 3,
            name,
            value,
        }
    }

    #[test]
    fn every_refused_option_names_file_line_and_an_alternative() {
        for (name, ..) in REFUSED {
            let value = if REFUSED_WHEN_TRUE.contains(&name) {
                "true"
            } else {
                "x"
            };
            let message = check(&line(name, value)).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("pipit.conf:3: {name}: ")),
                "{message}"
            );
            assert!(message.contains("refuses to start"), "{message}");
        }
    }

    #[test]
    fn authentication_plugins_and_their_options_name_the_option_and_the_equivalents() {
        for (name, value) in [
            ("auth_plugin", "/usr/lib/mosquitto-go-auth/go-auth.so"),
            ("auth_opt_backends", "files, redis"),
            (
                "auth_opt_files_password_path",
                "/etc/mosquitto/auth/passwords",
            ),
        ] {
            assert!(is_refused(name));
            let message = check(&line(name, value)).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("pipit.conf:3: {name}: ")),
                "{message}"
            );
            for equivalent in ["password_file", "dynamic security plugin", "embed"] {
                assert!(message.contains(equivalent), "{message}");
            }
        }
        assert!(!is_refused("auth_plugin_deny_special_chars"));
    }

    #[test]
    fn false_is_what_pipit_does() {
        for name in REFUSED_WHEN_TRUE {
            assert!(is_refused(name));
            assert!(check(&line(name, "false")).is_ok());
            assert!(check(&line(name, "maybe")).is_err());
        }
    }
}
