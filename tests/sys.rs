//! `$SYS` statistics topics.

mod common;

use common::{Raw, start_with};

#[test]
fn sys_topics_report_connected_clients() {
    let broker = start_with(|c| c.sys_interval = 1);
    let _other = Raw::connect(broker.addr, "other", true);
    let mut watcher = Raw::connect(broker.addr, "watcher", true);
    watcher.subscribe("$SYS/broker/clients/connected", 0);
    // The first value may be retained from before we connected; wait for one counting us both.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let p = watcher.recv_publish();
        assert_eq!(p.topic, "$SYS/broker/clients/connected");
        if p.payload == b"2" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never saw 2 connected clients"
        );
    }
}

#[test]
fn hash_subscribers_do_not_get_sys_topics() {
    let broker = start_with(|c| c.sys_interval = 1);
    let mut all = Raw::connect(broker.addr, "all", true);
    all.subscribe("#", 0);
    all.expect_silence(1500);
}
