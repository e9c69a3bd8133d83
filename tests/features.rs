//! A build without a Cargo feature refuses what needs it, never ignoring it: the binary stops
//! at the config file's line (exit code 2, "FILE:LINE: OPTION: pipit was built without
//! feature X"), and so does an embedder's builder from the same file; a `Config` made in code
//! that asks for the feature is refused when the broker is made. Each test runs only in a
//! build without its feature (`cargo test --no-default-features --test features`).

// Nothing to refuse in a build with every feature.
#![cfg(not(all(
    feature = "persistence",
    feature = "websocket",
    feature = "bridge",
    feature = "metrics"
)))]

use std::path::PathBuf;

/// A config file in a directory of its own under the system's temporary directory.
fn config_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pipit-features-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let path = dir.join("pipit.conf");
    std::fs::write(&path, text).expect("config file");
    path
}

/// Runs the binary on `text` and the builder on the same file; both must refuse it at
/// `line` for `feature`.
fn refused(name: &str, text: &str, line: usize, option: &str, feature: &str) {
    let path = config_file(name, text);
    let expected = format!(
        "{}:{line}: {option}: pipit was built without feature {feature}",
        path.display()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipit"))
        .arg("-c")
        .arg(&path)
        .output()
        .expect("run pipit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    assert!(stderr.contains(&expected), "{name}: {stderr}");
    let err = pipit::embed::Builder::from_file(&path).expect_err(name);
    assert_eq!(err.to_string(), expected, "{name}");
    let _ = std::fs::remove_dir_all(path.parent().expect("the file's directory"));
}

#[cfg(not(feature = "persistence"))]
#[test]
fn persistence_true_is_refused_at_its_line() {
    refused(
        "persistence",
        "listener 0 127.0.0.1\nallow_anonymous true\npersistence true\n",
        3,
        "persistence",
        "persistence",
    );
}

#[cfg(not(feature = "persistence"))]
#[test]
fn a_config_made_in_code_with_a_store_is_refused() {
    let mut config = pipit::embed::loopback_config();
    config.persistence_dir = Some(std::env::temp_dir().join("pipit-features-never-made"));
    let Err(err) = pipit::Broker::builder(config).spawn() else {
        panic!("a broker with a store started in a build without persistence");
    };
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert_eq!(
        err.to_string(),
        "pipit was built without feature persistence"
    );
}

#[cfg(not(feature = "websocket"))]
#[test]
fn a_websockets_listener_is_refused_at_its_line() {
    refused(
        "websocket",
        "listener 0 127.0.0.1\nprotocol websockets\n",
        2,
        "protocol",
        "websocket",
    );
}

#[cfg(not(feature = "bridge"))]
#[test]
fn a_connection_block_is_refused_at_its_line() {
    refused(
        "bridge",
        "listener 0 127.0.0.1\n\nconnection uplink\naddress 127.0.0.1:1883\n",
        3,
        "connection",
        "bridge",
    );
}

#[cfg(not(feature = "metrics"))]
#[test]
fn the_metrics_listener_is_refused_at_its_line() {
    refused(
        "metrics",
        "listener 0 127.0.0.1\nmetrics_listener 0\n",
        2,
        "metrics_listener",
        "metrics",
    );
}
