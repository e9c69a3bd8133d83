//! Replays the kept fuzz corpus (`fuzz/corpus/<target>/`) through the same target functions
//! the coverage-guided harness in `fuzz/` runs (`pipit::fuzz`), so every input that once
//! found new code, and every crash found since, is checked by `cargo test`; and checks that
//! the harness's socket-free broker (`pipit::fuzz::Driver`) really delivers, so a corpus
//! that runs clean is not clean because nothing ran.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Connect, ack, publish, subscribe};

/// As in the harness: the largest allocation is recorded, and the targets check it.
#[global_allocator]
static ALLOC: pipit::fuzz::PeakAlloc = pipit::fuzz::PeakAlloc;

/// A fuzz target: arbitrary bytes in, a panic on a finding.
type Target = fn(&[u8]);

/// `fuzz/corpus/<name>/`.
fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name)
}

/// Runs `target` on every file of `fuzz/corpus/<name>/`; returns how many there were.
fn replay(name: &str, target: Target) -> usize {
    let dir = corpus(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        // The target's own panic names the finding; this line names the input.
        eprintln!("{name}: {}", file.display());
        target(&data);
    }
    files.len()
}

#[test]
fn codec_corpus_replays_without_a_finding() {
    assert!(
        replay("codec", pipit::fuzz::codec) > 0,
        "the corpus is empty"
    );
}

#[test]
fn broker_corpus_replays_without_a_finding() {
    assert!(
        replay("broker", pipit::fuzz::broker) > 0,
        "the corpus is empty"
    );
}

/// Fuzzer-found crashes and hangs, each replayed through the target that found it (the
/// file's name says what it found; see README, Fuzzing).
#[test]
fn regression_inputs_replay_without_a_finding() {
    let targets: [(&str, Target); 2] = [
        ("codec", pipit::fuzz::codec),
        ("broker", pipit::fuzz::broker),
    ];
    let mut replayed = 0;
    for (name, target) in targets {
        let dir = format!("regressions/{name}");
        if corpus(&dir).exists() {
            replayed += replay(&dir, target);
        }
    }
    assert!(replayed > 0, "no regression inputs found");
}

#[test]
fn the_driver_delivers_between_connections_and_runs_keepalive() {
    let mut driver = pipit::fuzz::Driver::new(pipit::Config::default()).unwrap();
    let sub = driver.connect(1 << 16);
    let publisher = driver.connect(1 << 16);
    driver.send(sub, &Connect::v311("sub").keep_alive(10).bytes());
    driver.send(sub, &subscribe(1, &[("t/#", 1)]));
    let before = driver.written(sub);
    assert_eq!(before, 4 + 5, "CONNACK and SUBACK");
    driver.send(publisher, &Connect::v311("pub").bytes());
    driver.send(publisher, &publish("t/a", b"hello", 1, false, 1));
    assert_eq!(driver.written(publisher), 4 + 4, "CONNACK and PUBACK");
    let delivered = driver.written(sub) - before;
    assert_eq!(delivered, 2 + 2 + 3 + 2 + 5, "the PUBLISH, QoS 1");
    driver.send(sub, &ack(0x40, 1));
    // Silent for more than 1.5 x 10 s: the subscriber is closed, the publisher (no
    // keepalive) is not.
    driver.advance(Duration::from_secs(16));
    assert!(!driver.is_open(sub));
    assert!(driver.is_open(publisher));
    driver.shutdown();
}

/// A send larger than the stand-in receive buffer goes through whole while the broker
/// reads, and is cut, not queued without bound, once the broker stops reading (the fuzzer
/// found the harness's own queue growing past the allocation bound).
#[test]
fn the_driver_sends_through_its_receive_buffer_and_cuts_what_the_broker_leaves() {
    let mut driver = pipit::fuzz::Driver::new(pipit::Config::default()).unwrap();
    let publisher = driver.connect(1 << 16);
    let mut stream = Connect::v311("pub").bytes();
    for id in 1..=4 {
        stream.extend(publish("t/a", &[b'x'; 4000], 1, false, id));
    }
    assert!(stream.len() > pipit::fuzz::RECEIVE_BUFFER);
    assert_eq!(driver.send(publisher, &stream), stream.len());
    assert_eq!(
        driver.written(publisher),
        4 + 4 * 4,
        "CONNACK and four PUBACKs"
    );
    driver.shutdown();

    // The broker closes on a PUBLISH over its maximum packet size and reads nothing after
    // it: the rest is cut at the buffer, not queued.
    let mut driver = pipit::fuzz::Driver::new(pipit::Config {
        max_packet_size: 1024,
        ..pipit::Config::default()
    })
    .unwrap();
    let client = driver.connect(1 << 16);
    let half_packet = [0x30, 0xff, 0xff, 0x03];
    let mut flood = Connect::v311("c").bytes();
    flood.extend(half_packet);
    flood.extend(vec![0; 3 * pipit::fuzz::RECEIVE_BUFFER]);
    let sent = driver.send(client, &flood);
    assert!(sent < flood.len(), "{sent} of {}", flood.len());
    driver.shutdown();
}
