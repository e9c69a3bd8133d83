//! Options of Cargo features that can be compiled out (`websocket`, `persistence`, `bridge`,
//! `metrics`). A build without a feature still knows its options by name, so a file that
//! uses one stops start-up with `FILE:LINE` and "pipit was built without feature X" rather
//! than being read as a typo or, worse, silently ignored: a broker that would drop what
//! the file asks to keep, or not serve a listener it names, must not start.
//!
//! `Config` values built in code (the embedding API) are checked the same way by
//! [`check_built`] when a broker is made from them.

use std::io;

use super::line::Line;
use super::{Config, ConfigError, Protocol};

/// The error text for an option of `feature` in a build without it.
pub fn not_built(feature: &str) -> String {
    format!("pipit was built without feature {feature}")
}

/// Refuses `l` if it asks for a feature this build lacks: `persistence true`,
/// `protocol websockets`, a `connection` block (or any bridge option), `metrics_listener`.
pub(super) fn check(l: &Line) -> Result<(), ConfigError> {
    let feature = match l.name {
        "persistence" | "retained_persistence" if !cfg!(feature = "persistence") && l.flag()? => {
            "persistence"
        }
        "protocol" if !cfg!(feature = "websocket") && l.word()? == "websockets" => "websocket",
        "connection" if !cfg!(feature = "bridge") => "bridge",
        name if !cfg!(feature = "bridge") && super::bridge::is_bridge_option(name) => "bridge",
        "metrics_listener" if !cfg!(feature = "metrics") => "metrics",
        _ => return Ok(()),
    };
    let message = format!("{}: {}", l.name, not_built(feature));
    Err(l.error(message))
}

/// Refuses a `Config` that asks for a feature this build lacks (one made in code; a parsed
/// file was refused at its line already).
pub fn check_built(config: &Config) -> io::Result<()> {
    let wants = [
        ("persistence", config.store_dir().is_some()),
        (
            "websocket",
            (config.listeners.iter()).any(|l| l.protocol == Protocol::Websockets),
        ),
        ("bridge", !config.bridges.is_empty()),
        ("metrics", config.metrics_listener.is_some()),
    ];
    let built = [
        cfg!(feature = "persistence"),
        cfg!(feature = "websocket"),
        cfg!(feature = "bridge"),
        cfg!(feature = "metrics"),
    ];
    match wants
        .iter()
        .zip(built)
        .find(|((_, wanted), built)| *wanted && !built)
    {
        Some(((feature, _), _)) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            not_built(feature),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every option of a compiled-out feature stops the parse at its line, naming the
    /// feature; with the feature built, the same lines parse.
    #[test]
    fn options_of_a_missing_feature_name_file_line_and_feature() {
        let cases = [
            (
                "persistence true\n",
                "persistence",
                cfg!(feature = "persistence"),
            ),
            (
                "retained_persistence 1\n",
                "persistence",
                cfg!(feature = "persistence"),
            ),
            (
                "listener 9001\nprotocol websockets\n",
                "websocket",
                cfg!(feature = "websocket"),
            ),
            (
                "connection b\naddress 127.0.0.1\ntopic t\n",
                "bridge",
                cfg!(feature = "bridge"),
            ),
            (
                "metrics_listener 9234\n",
                "metrics",
                cfg!(feature = "metrics"),
            ),
        ];
        for (text, feature, built) in cases {
            let result = Config::parse(text, Path::new("pipit.conf"));
            if built {
                assert!(result.is_ok(), "{text:?}: {:?}", result.err());
                continue;
            }
            let e = result.expect_err(text);
            // The line of the option itself (the listener line before it is fine).
            let line = 1 + text
                .lines()
                .take_while(|l| l.starts_with("listener"))
                .count();
            assert_eq!(e.line, Some(line), "{text:?}");
            let expected = format!("pipit was built without feature {feature}");
            assert!(e.message.ends_with(&expected), "{text:?}: {e}");
        }
        // What a build without the feature does anyway is accepted.
        let text = "persistence false\nprotocol mqtt\n";
        assert!(Config::parse(text, Path::new("pipit.conf")).is_ok());
    }

    #[test]
    fn a_config_made_in_code_is_checked_too() {
        let mut config = Config::default();
        assert!(check_built(&config).is_ok());
        config.persistence = true;
        let result = check_built(&config);
        assert_eq!(result.is_ok(), cfg!(feature = "persistence"));
        if let Err(e) = result {
            assert_eq!(e.to_string(), "pipit was built without feature persistence");
        }
    }
}
