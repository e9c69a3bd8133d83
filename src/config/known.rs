//! Mosquitto options pipit recognises without acting on them: deprecated ones that change
//! nothing in pipit (accepted, noted at debug), options that restrict nobody and that pipit
//! does not implement (each use a `Warning`). Options that would restrict
//! access are not here: `refused` stops start-up for them.

use super::ConfigError;
use super::line::Line;

/// Mosquitto options pipit recognises but does not implement and that restrict nobody: each
/// use is a `Warning` (a space-separated list). `maximum_qos` is Mosquitto's other name for
/// `max_qos`.
const UNSUPPORTED: &str = "\
    accept_protocol_versions auth_plugin_deny_special_chars auto_id_prefix \
    dhparamfile max_inflight_bytes max_qos maximum_qos set_tcp_nodelay \
    tls_engine tls_engine_kpass_sha1 tls_keyform upgrade_outgoing_qos";
/// Options Mosquitto 2.0 still reads but that change nothing in pipit: (option, whether its
/// value must be a flag, why it changes nothing). Accepted, and noted at debug level.
const NO_OP: [(&str, bool, &str); 2] = [
    (
        "allow_duplicate_messages",
        true,
        "deprecated in Mosquitto 2.0; pipit delivers a message once to a client whose \
         subscriptions overlap [MQTT-3.3.5-1], which both settings permit",
    ),
    (
        "retry_interval",
        false,
        "Mosquitto 2.0 no longer has it and ignores the line",
    ),
];

/// Whether `name` is an option that restricts nobody and that pipit does not implement.
pub(super) fn is_unsupported(name: &str) -> bool {
    UNSUPPORTED.split_whitespace().any(|o| o == name)
}

/// Whether `name` is a deprecated option that changes nothing in pipit.
pub(super) fn is_no_op(name: &str) -> bool {
    NO_OP.iter().any(|(option, ..)| *option == name)
}

/// Accepts line `l`, whose option `is_no_op`: a flag's value is still checked, as Mosquitto
/// checks it, and the line is noted at debug level.
pub(super) fn no_op(l: &Line) -> Result<(), ConfigError> {
    let Some((_, flag, why)) = NO_OP.iter().find(|(o, ..)| *o == l.name) else {
        return Ok(());
    };
    if *flag {
        l.flag()?;
    }
    log::debug!(
        "{}:{}: {} changes nothing: {why}",
        l.file.display(),
        l.no,
        l.name
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    /// What pipit does with a line, by design.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Outcome {
        Accepted,
        Warned,
        Refused,
    }
    use Outcome::{Accepted, Refused, Warned};

    /// Every option Mosquitto 2.0.11's example mosquitto.conf names (Debian's
    /// /usr/share/doc/mosquitto/examples/mosquitto.conf), then the others its
    /// mosquitto.conf(5) page and its parser (src/conf.c) still read, each with a value, and
    /// what pipit does with it. `include_dir` is given an empty directory.
    const MOSQUITTO_OPTIONS: [(&str, Outcome); 107] = [
        ("per_listener_settings false", Accepted),
        ("allow_zero_length_clientid true", Accepted),
        ("auto_id_prefix auto-", Warned),
        ("check_retain_source true", Refused),
        ("max_inflight_bytes 0", Warned),
        ("max_inflight_messages 20", Accepted),
        ("max_keepalive 65535", Accepted),
        ("max_packet_size 0", Accepted),
        ("max_queued_bytes 0", Accepted),
        ("max_qos 2", Warned),
        ("max_queued_messages 1000", Accepted),
        ("memory_limit 0", Accepted),
        ("message_size_limit 0", Accepted),
        ("persistent_client_expiration 2w", Accepted),
        ("pid_file /run/mosquitto.pid", Accepted),
        ("queue_qos0_messages false", Accepted),
        ("retain_available true", Accepted),
        ("set_tcp_nodelay false", Warned),
        ("sys_interval 10", Accepted),
        ("upgrade_outgoing_qos false", Warned),
        ("user mosquitto", Accepted),
        ("listener 8883 127.0.0.1", Accepted),
        ("socket_domain ipv4", Accepted),
        ("bind_interface eth0", Refused),
        ("http_dir /var/www", Accepted),
        ("max_connections -1", Accepted),
        ("mount_point tenant/", Refused),
        ("protocol mqtt", Accepted),
        ("use_username_as_clientid true", Accepted),
        ("websockets_headers_size 4096", Accepted),
        ("certfile /c.pem", Accepted),
        ("keyfile /k.pem", Accepted),
        ("ciphers ECDHE-RSA-AES128-GCM-SHA256", Refused),
        ("ciphers_tls1.3 TLS_AES_128_GCM_SHA256", Refused),
        ("crlfile /crl.pem", Refused),
        ("dhparamfile /dh.pem", Warned),
        ("require_certificate false", Accepted),
        ("cafile /ca.pem", Accepted),
        ("capath /certs", Accepted),
        ("use_identity_as_username false", Accepted),
        ("psk_hint hint", Refused),
        ("autosave_interval 1800", Accepted),
        ("autosave_on_changes false", Accepted),
        ("persistence false", Accepted),
        ("persistence_file mosquitto.db", Accepted),
        ("persistence_location /var/lib/mosquitto/", Accepted),
        ("log_dest stderr", Accepted),
        ("log_type error", Accepted),
        ("connection_messages true", Accepted),
        ("log_facility 5", Accepted),
        ("log_timestamp true", Accepted),
        ("log_timestamp_format %Y-%m-%dT%H:%M:%S", Accepted),
        ("websockets_log_level 0", Accepted),
        ("clientid_prefixes secure-", Accepted),
        ("allow_anonymous false", Accepted),
        ("password_file /etc/mosquitto/pw", Accepted),
        ("psk_file /etc/mosquitto/psk", Refused),
        ("acl_file /etc/mosquitto/acl", Accepted),
        ("auth_plugin /usr/lib/auth.so", Refused),
        ("include_dir", Accepted),
        ("connection bridge-01", Accepted),
        ("address 10.0.0.2:1883", Accepted),
        ("topic sensors/# out 1", Accepted),
        ("bridge_bind_address 10.0.0.1", Accepted),
        ("bridge_attempt_unsubscribe true", Accepted),
        ("bridge_protocol_version mqttv311", Accepted),
        ("cleansession false", Accepted),
        ("idle_timeout 60", Accepted),
        ("keepalive_interval 60", Accepted),
        ("local_clientid local", Accepted),
        ("notifications true", Accepted),
        ("notification_topic $SYS/bridge", Accepted),
        ("remote_clientid remote", Accepted),
        ("remote_password secret", Accepted),
        ("remote_username user", Accepted),
        ("restart_timeout 5 30", Accepted),
        ("round_robin false", Accepted),
        ("start_type automatic", Accepted),
        ("threshold 10", Accepted),
        ("try_private true", Accepted),
        ("bridge_outgoing_retain true", Accepted),
        ("bridge_max_packet_size 0", Accepted),
        ("bridge_cafile /ca.pem", Accepted),
        ("bridge_capath /certs", Accepted),
        // Refused without bridge_cafile/bridge_capath: never plaintext instead.
        ("bridge_alpn x-amzn-mqtt-ca", Refused),
        ("bridge_insecure false", Refused),
        ("bridge_certfile /c.pem", Refused),
        ("bridge_keyfile /k.pem", Refused),
        ("bridge_identity id", Refused),
        ("bridge_psk 0123", Refused),
        // Not in the example file, in the man page or the parser.
        ("allow_duplicate_messages true", Accepted),
        ("allow_duplicate_messages false", Accepted),
        ("retry_interval 20", Accepted),
        ("retained_persistence false", Accepted),
        ("maximum_qos 1", Warned),
        ("auth_opt_backend files", Refused),
        ("auth_plugin_deny_special_chars true", Warned),
        ("bind_address 127.0.0.1", Accepted),
        ("port 1884", Accepted),
        ("max_topic_alias 10", Accepted),
        ("tls_version tlsv1.2", Accepted),
        ("use_subject_as_username true", Accepted),
        ("tls_engine pkcs11", Warned),
        ("tls_keyform pem", Warned),
        ("local_password secret", Refused),
        ("bridge_tls_version tlsv1.2", Refused),
        // The dynamic security plugin and its options: `config::plugin`'s tests.
        ("plugin /usr/lib/mosquitto_acl_plugin.so", Refused),
    ];

    /// The listener and TLS files every line is read after, so each listener option has a
    /// complete listener to apply to.
    const PRELUDE: &str = "listener 8883 127.0.0.1\ncertfile /c.pem\nkeyfile /k.pem\n\
                           cafile /ca.pem\n";

    /// What parsing `line` after `PRELUDE` does; `Err` for an error not made by design.
    fn outcome(line: &str) -> Result<Outcome, String> {
        let empty = std::env::temp_dir().join(format!("pipit-known-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let name = line.split_whitespace().next().unwrap_or_default();
        let line = match line {
            "include_dir" => format!("include_dir {}", empty.display()),
            // A bridge option goes in a block, which needs an address and a topic.
            line if crate::config::bridge::is_bridge_option(name) || name == "connection" => {
                let opener = if name == "connection" {
                    ""
                } else {
                    "connection b\n"
                };
                let address = if name.starts_with("address") {
                    ""
                } else {
                    "address 10.0.0.2\n"
                };
                let topic = if name == "topic" { "" } else { "topic t\n" };
                format!("{opener}{line}\n{address}{topic}")
            }
            line => line.to_string(),
        };
        match Config::parse(&format!("{PRELUDE}{line}\n"), Path::new("pipit.conf")) {
            Ok((_, warnings)) if warnings.is_empty() => Ok(Accepted),
            Ok(_) => Ok(Warned),
            Err(e) if e.to_string().contains("refuses to start") => Ok(Refused),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn no_option_mosquitto_documents_is_unknown() {
        for (line, expected) in MOSQUITTO_OPTIONS {
            let got = outcome(line);
            // A build without a feature refuses its options (`config::features`).
            if matches!(&got, Err(e) if e.contains("pipit was built without feature")) {
                continue;
            }
            assert_eq!(got, Ok(expected), "{line}");
        }
    }

    #[test]
    fn deprecated_flags_are_still_checked_and_retry_interval_takes_anything() {
        for line in ["allow_duplicate_messages maybe", "allow_duplicate_messages"] {
            let message = outcome(line).unwrap_err();
            assert!(message.starts_with("pipit.conf:5: allow_duplicate_messages"));
        }
        assert_eq!(outcome("retry_interval"), Ok(Accepted));
        assert_eq!(outcome("retry_interval twenty"), Ok(Accepted));
    }

    #[test]
    #[cfg(feature = "persistence")]
    fn retained_persistence_is_persistence() {
        let parse = |text: &str| Config::parse(text, Path::new("pipit.conf")).unwrap().0;
        assert!(parse("retained_persistence true\n").persistence);
        assert!(!parse("persistence true\nretained_persistence false\n").persistence);
    }
}
