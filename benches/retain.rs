//! Retained-store benchmarks: what a new subscription costs with 100,000 retained topics.
//!
//! The store holds one retained message per topic `site/{0..100}/device/{0..1000}/temp`.
//! Each benchmark visits every retained message matching one filter, the work a SUBSCRIBE
//! does before the broker queues the matches: an exact filter (1 match), `+` at the device
//! level (1,000) and at the site level (100), `#` below one site (1,000), and `#` alone
//! (all 100,000). Storing a retained message over an existing one is measured too.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pipit::core::message::Message;
use pipit::core::retain::RetainedStore;
use pipit::wire::QoS;

const SITES: u32 = 100;
const DEVICES: u32 = 1000;

fn topic(site: u32, device: u32) -> String {
    format!("site/{site}/device/{device}/temp")
}

fn build() -> RetainedStore {
    let mut store = RetainedStore::new(0);
    for site in 0..SITES {
        for device in 0..DEVICES {
            let payload = format!("{}.{}", 15 + device % 15, site % 10);
            store.set(Message::shared(
                topic(site, device),
                payload.as_bytes(),
                QoS::AtLeastOnce,
                true,
            ));
        }
    }
    store
}

fn count_matches(store: &RetainedStore, filter: &str) -> u64 {
    let mut n = 0;
    store.for_each_match(filter, |m| {
        black_box(m);
        n += 1;
        std::ops::ControlFlow::Continue(())
    });
    n
}

fn bench_match(c: &mut Criterion) {
    let store = build();
    let filters = [
        ("exact", "site/42/device/420/temp"),
        ("exact_miss", "site/42/device/420/humidity"),
        ("plus_device", "site/42/device/+/temp"),
        ("plus_site", "site/+/device/420/temp"),
        ("hash_site", "site/42/#"),
        ("hash_all", "#"),
    ];
    let mut group = c.benchmark_group("retain_match_100k");
    for (kind, filter) in filters {
        let matches = count_matches(&store, filter);
        // Throughput in elements reports the cost per retained message visited.
        group.throughput(Throughput::Elements(matches.max(1)));
        let id = BenchmarkId::new(kind, format!("{filter} ({matches} matches)"));
        group.bench_function(id, |b| b.iter(|| count_matches(&store, black_box(filter))));
    }
    group.finish();
}

fn bench_set(c: &mut Criterion) {
    let mut store = build();
    let message = Message::shared(topic(42, 420), b"22.5", QoS::AtLeastOnce, true);
    let mut group = c.benchmark_group("retain_set_100k");
    group.bench_function("replace", |b| {
        b.iter(|| store.set(black_box(message.clone())))
    });
    group.finish();
}

criterion_group!(benches, bench_match, bench_set);
criterion_main!(benches);
