//! Unit tests of the whole chain: `core/` changes state, the journal records it, the store
//! keeps it, and a new state restored from the store (from the log, or from a snapshot)
//! holds the same sessions, queues, windows and retained messages.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::journal::Journal;
use super::restore::Restore;
use super::snapshot::Snapshot;
use super::store::{Store, StoreOptions, SyncPolicy};
use crate::config::Config;
use crate::core::frame_cache::FrameCache;
use crate::core::lifecycle::{self, Acknowledgement, attach, detach, subscribe};
use crate::core::message::Message;
use crate::core::route;
use crate::core::state::State;
use crate::ids::{ConnId, SessionId};
use crate::wire::{Properties, QoS, SubscriptionOptions, Version};

/// A fresh, empty directory under the system's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pipit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn options() -> StoreOptions {
    StoreOptions {
        sync: SyncPolicy::Fsync,
        segment_bytes: 1 << 20,
    }
}

/// A state with its journal writing to a store in `dir`, restored from what is there.
fn open(dir: &Path, now: Instant) -> State {
    open_with(dir, now, Config::default())
}

/// `open` with `config`.
fn open_with(dir: &Path, now: Instant, config: Config) -> State {
    let mut state = State::for_test(config, now);
    let mut restore = Restore::default();
    let (store, _) = Store::open(dir, options(), None, |kind, body| {
        restore.apply(&mut state, kind, body)
    })
    .expect("the store opens");
    state.journal = Journal::new(Some(store), SyncPolicy::Fsync, now);
    restore.finish(&mut state);
    state
}

/// Commits and closes the state's store, as a clean shutdown does.
fn close(mut state: State) {
    let _ = state.journal.commit();
    if let Some(store) = state.journal.take_store() {
        store.close().expect("the store closes");
    }
}

/// A persistent session for `client_id` on connection `conn`, recorded.
fn persistent(state: &mut State, conn: usize, client_id: &str) -> SessionId {
    let (sid, _) = attach(state, ConnId::new(conn, conn as u32), client_id, true);
    state.sessions[sid.0 as usize].expiry_interval = 3600;
    state.sessions[sid.0 as usize].version = Version::V5;
    lifecycle::record_session(state, sid, None);
    sid
}

/// Ends the batch and waits until it is durable, as the loop does across turns.
fn sync(state: &mut State) {
    let _ = state.journal.commit();
    if let Some(store) = state.journal.store_mut() {
        store.wait_durable().expect("the batch is durable");
    }
    state.journal.poll();
}

/// Sends what `sid`'s queue and window allow, as the loop's flush does; returns the frames.
fn send(state: &mut State, sid: SessionId) -> Vec<u8> {
    let limits = state.queue_limits();
    let State {
        sessions,
        journal,
        now,
        ..
    } = state;
    let mut out = Vec::new();
    sessions[sid.0 as usize].write_pending(
        &mut out,
        None,
        1 << 20,
        Version::V5,
        limits,
        *now,
        &mut FrameCache::default(),
        journal,
    );
    out
}

/// Whether `frames` holds `needle`.
fn holds(frames: &[u8], needle: &[u8]) -> bool {
    frames.windows(needle.len()).any(|w| w == needle)
}

/// What a session holds, as (message topic/payload, packet id, PUBREC seen).
fn entries(state: &State, client_id: &str) -> Vec<(String, u16, bool)> {
    let sid = state
        .client_ids
        .get(client_id, &state.sessions)
        .expect("the session is back");
    state.sessions[sid.0 as usize]
        .stored_entries()
        .map(|e| {
            let text = format!(
                "{}={}",
                e.message.topic,
                String::from_utf8_lossy(&e.message.payload)
            );
            (text, e.packet_id, e.released)
        })
        .collect()
}

/// Builds a state worth restoring, closes it, and returns what it held.
fn build(dir: &Path, now: Instant) -> Vec<(String, u16, bool)> {
    let mut state = open(dir, now);
    state.config.max_inflight_messages = 3;
    let a = persistent(&mut state, 1, "a");
    let b = persistent(&mut state, 2, "b");
    let (clean, _) = attach(&mut state, ConnId::new(3, 3), "clean", true);
    let options = SubscriptionOptions {
        no_local: true,
        ..SubscriptionOptions::at(QoS::ExactlyOnce)
    };
    subscribe(&mut state, a, "t/#", options, 5).unwrap();
    subscribe(
        &mut state,
        b,
        "t/x",
        SubscriptionOptions::at(QoS::AtLeastOnce),
        0,
    )
    .unwrap();
    subscribe(
        &mut state,
        clean,
        "t/#",
        SubscriptionOptions::at(QoS::ExactlyOnce),
        0,
    )
    .unwrap();
    detach(&mut state, b, ConnId::new(2, 2));
    let props = Properties {
        content_type: Some("text/plain"),
        message_expiry_interval: Some(600),
        ..Properties::default()
    };
    let retained = Message::with_properties(
        "t/r",
        b"kept"[..].into(),
        QoS::AtLeastOnce,
        true,
        &props,
        now,
    );
    route::publish(&mut state, &retained, None);
    for i in 0..5 {
        let m = Message::shared("t/x", format!("m{i}").as_bytes(), QoS::ExactlyOnce, false);
        route::publish(&mut state, &m, None);
    }
    // QoS 0 is not stored, for an online or offline session.
    route::publish(
        &mut state,
        &Message::shared("t/x", b"q0", QoS::AtMostOnce, false),
        None,
    );
    let first = send(&mut state, a);
    assert!(holds(&first, b"kept"), "QoS 1 goes at once");
    assert!(
        !holds(&first, b"m0"),
        "QoS 2 waits until the record of its packet id is durable"
    );
    sync(&mut state);
    let second = send(&mut state, a);
    assert!(holds(&second, b"m0") && holds(&second, b"m1"));
    let pubrec = Acknowledgement::Pubrec { accepted: true };
    // In flight: the retained message (QoS 1, id 1), m0 and m1 (QoS 2). The first two
    // flows complete, the third is past PUBREC.
    let done = crate::core::session::AckOutcome::Done;
    let acks = [
        (Acknowledgement::Puback, 1),
        (pubrec, 2),
        (Acknowledgement::Pubcomp, 2),
        (pubrec, 3),
    ];
    for (ack, packet_id) in acks {
        assert_eq!(lifecycle::acknowledge(&mut state, a, ack, packet_id), done);
    }
    assert!(lifecycle::receive_qos2(&mut state, a, 7));
    assert!(lifecycle::receive_qos2(&mut state, a, 8));
    assert!(lifecycle::release_qos2(&mut state, a, 8));
    detach(&mut state, a, ConnId::new(1, 1));
    let held = entries(&state, "a");
    assert_eq!(entries(&state, "b").len(), 5, "b holds all five, not QoS 0");
    close(state);
    held
}

/// Checks a restored state against what `build` made.
fn check(state: &State, held: &[(String, u16, bool)]) {
    assert_eq!(entries(state, "a"), held);
    let retained = entries(state, "b");
    assert_eq!(retained.len(), 5);
    assert!(retained.iter().all(|(_, packet_id, _)| *packet_id == 0));
    assert!(state.client_ids.get("clean", &state.sessions).is_none());
    let a = state.client_ids.get("a", &state.sessions).unwrap();
    let session = &state.sessions[a.0 as usize];
    assert_eq!(session.inbound_qos2(), [7]);
    let subs: Vec<_> = session.subscriptions().collect();
    assert_eq!(subs.len(), 1);
    assert_eq!((subs[0].0, subs[0].1.no_local, subs[0].2), ("t/#", true, 5));
    assert!(!session.is_online() && session.expires_at.is_some());
    let mut kept = Vec::new();
    state.retained.for_each_match("t/#", |m| {
        kept.push(Rc::clone(m));
        std::ops::ControlFlow::Continue(())
    });
    assert_eq!(kept.len(), 1);
    let p = kept[0].publish_properties(state.now);
    assert_eq!(p.content_type, Some("text/plain"));
    assert!(
        p.message_expiry_interval
            .is_some_and(|s| s <= 600 && s > 590)
    );
}

#[test]
fn a_restored_log_holds_what_was_recorded() {
    let dir = temp_dir("round-trip-log");
    let now = Instant::now();
    let held = build(&dir, now);
    assert_eq!(
        held,
        [
            ("t/x=m1".to_string(), 3, true),
            ("t/x=m2".to_string(), 0, false),
            ("t/x=m3".to_string(), 0, false),
            ("t/x=m4".to_string(), 0, false),
        ]
    );
    let state = open(&dir, now + Duration::from_secs(1));
    check(&state, &held);
    close(state);
    // Restoring adds nothing: a second restart sees the same.
    let state = open(&dir, now + Duration::from_secs(2));
    check(&state, &held);
    close(state);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restored_snapshot_holds_the_live_state() {
    let dir = temp_dir("round-trip-snapshot");
    let now = Instant::now();
    let held = build(&dir, now);
    let mut state = open(&dir, now);
    let mut snapshot = Snapshot::begin(&mut state).expect("a snapshot begins");
    // Changes after it began go to the log after it, and are replayed on top of it.
    route::publish(
        &mut state,
        &Message::shared("late/x", b"late", QoS::AtLeastOnce, true),
        None,
    );
    while !snapshot.step(&state.journal) {}
    snapshot.finish(&mut state.journal);
    // The retained message published meanwhile is back too, from the log.
    let _ = state.journal.commit();
    if let Some(store) = state.journal.store_mut() {
        store.wait_durable().expect("the snapshot is durable");
    }
    close(state);
    let state = open(&dir, now + Duration::from_secs(1));
    check(&state, &held);
    let mut late = 0;
    state.retained.for_each_match("late/#", |_| {
        late += 1;
        std::ops::ControlFlow::Continue(())
    });
    assert_eq!(late, 1, "published after the snapshot began: from the log");
    close(state);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_fsync_a_delivery_acknowledged_in_time_is_never_written() {
    let dir = temp_dir("round-trip-deferred");
    let now = Instant::now();
    let interval = SyncPolicy::Interval(Duration::from_millis(50));
    let mut state = State::for_test(Config::default(), now);
    let options = StoreOptions {
        sync: interval,
        segment_bytes: 1 << 20,
    };
    let (store, _) = Store::open(&dir, options, None, |_, _| {}).expect("the store opens");
    state.journal = Journal::new(Some(store), interval, now);
    let a = persistent(&mut state, 1, "a");
    subscribe(
        &mut state,
        a,
        "t/#",
        SubscriptionOptions::at(QoS::AtLeastOnce),
        0,
    )
    .unwrap();
    let _ = state.journal.commit();
    let before = state.journal.bytes_written();
    for i in 0..4 {
        let m = Message::shared("t/x", format!("m{i}").as_bytes(), QoS::AtLeastOnce, false);
        route::publish(&mut state, &m, None);
    }
    assert!(holds(&send(&mut state, a), b"m3"), "sent at once");
    // m0 and m1 are acknowledged before the deferred records are written: never written.
    for packet_id in [1, 2] {
        lifecycle::acknowledge(&mut state, a, Acknowledgement::Puback, packet_id);
    }
    let _ = state.journal.commit();
    assert_eq!(state.journal.bytes_written(), before, "nothing written yet");
    lifecycle::log_deferred(&mut state);
    let _ = state.journal.commit();
    let per_message = (state.journal.bytes_written() - before) / 2;
    assert!(
        per_message > 64,
        "m2 and m3 are written: {per_message} bytes each"
    );
    // An acknowledgement of a written message is written too.
    lifecycle::acknowledge(&mut state, a, Acknowledgement::Puback, 3);
    close(state);
    let state = open(&dir, now);
    let held: Vec<_> = entries(&state, "a")
        .into_iter()
        .map(|e| (e.0, e.1))
        .collect();
    assert_eq!(held, [("t/x=m3".to_string(), 4)]);
    close(state);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn acknowledgements_are_held_until_their_batch_is_durable() {
    use super::journal::Hold;
    let dir = temp_dir("round-trip-hold");
    let now = Instant::now();
    let mut state = open(&dir, now);
    assert_eq!(state.journal.hold(), Hold::No, "nothing appended");
    let a = persistent(&mut state, 1, "a");
    let Hold::Until(batch) = state.journal.hold() else {
        panic!("the SESSION record is not durable yet");
    };
    let _ = state.journal.commit();
    assert_eq!(
        state.journal.hold(),
        Hold::Until(batch),
        "written, not yet synced"
    );
    assert!(state.journal.durable_batch() < batch);
    sync(&mut state);
    assert!(state.journal.durable_batch() >= batch);
    assert_eq!(state.journal.hold(), Hold::No, "durable");
    // A retained walk started now waits for the SUBACK's batch.
    subscribe(
        &mut state,
        a,
        "t/#",
        SubscriptionOptions::at(QoS::AtLeastOnce),
        0,
    )
    .unwrap();
    assert!(state.journal.walk_after() > state.journal.durable_batch());
    close(state);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A configuration with one bridge, `connection up`, whose local session is `local_clientid`.
fn bridge_config(local_clientid: &str) -> Config {
    let text = format!(
        "connection up\naddress 127.0.0.1:1\ntopic q/# out 1 l/ r/\nlocal_clientid {local_clientid}\n"
    );
    let (config, _) = Config::parse(&text, Path::new("t.conf")).expect("a bridge block");
    config
}

#[test]
fn a_bridge_spool_comes_back_from_a_snapshot_under_its_name() {
    let dir = temp_dir("round-trip-bridge");
    let now = Instant::now();
    let mut state = open_with(&dir, now, bridge_config("first"));
    crate::bridge::start(&mut state);
    for n in ["1", "2", "3"] {
        let m = Message::shared(format!("l/q/{n}"), n.as_bytes(), QoS::AtLeastOnce, false);
        route::publish(&mut state, &m, None);
    }
    sync(&mut state);
    let mut snapshot = Snapshot::begin(&mut state).expect("a snapshot begins");
    while !snapshot.step(&state.journal) {}
    snapshot.finish(&mut state.journal);
    sync(&mut state);
    close(state);
    // Another local_clientid: the spool is the connection name's.
    let mut state = open_with(&dir, now + Duration::from_secs(1), bridge_config("second"));
    crate::bridge::start(&mut state);
    let remapped = ["r/q/1=1", "r/q/2=2", "r/q/3=3"].map(|t| (t.to_string(), 0, false));
    assert_eq!(entries(&state, "second"), remapped);
    assert_eq!(state.client_ids.get("first", &state.sessions), None);
    assert_eq!(state.sessions.len(), 1, "one session: the bridge's");
    close(state);
    // No bridge of that name any more: the spool is discarded.
    let state = open_with(&dir, now + Duration::from_secs(2), Config::default());
    assert_eq!(state.sessions.len(), 0);
    close(state);
    let _ = std::fs::remove_dir_all(&dir);
}
