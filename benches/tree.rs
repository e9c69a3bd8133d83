//! Subscription-tree benchmarks: matching one topic name against 100,000 subscriptions.
//!
//! Topics follow a fleet layout, `site/{0..100}/device/{0..1000}/temp`, and each tree holds
//! 100,000 subscriptions of one session each. Four trees are measured:
//! - `exact`: every session subscribes to one device's topic;
//! - `plus`: `site/{s}/device/+/m{0..1000}`, a `+` at the device level;
//! - `hash`: `site/{s}/device/{d}/#`;
//! - `mixed`: per ten sessions, seven exact filters, one `site/{s}/device/{d}/+`, one
//!   `site/+/device/{d}/temp` and one `site/{s}/#` (so some filters are shared by many
//!   sessions, as dashboards' are).
//!
//! Each lookup collects into reused vectors, as `route.rs` does; the benchmark id notes how
//! many subscribers the lookup returns. Building the 100,000-subscription tree is measured
//! too.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use pipit::core::tree::{Subscriber, SubscriptionTree};
use pipit::ids::SessionId;
use pipit::wire::{QoS, RetainHandling, SubscriptionOptions};

const SITES: u32 = 100;
const DEVICES: u32 = 1000;
const SUBSCRIPTIONS: u32 = SITES * DEVICES;

fn subscriber(session: u32) -> Subscriber {
    Subscriber {
        session: SessionId(session),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        },
        subscription_id: 0,
    }
}

/// Site and device of subscription `i`: consecutive sessions land on different sites.
fn site_device(i: u32) -> (u32, u32) {
    (i % SITES, i / SITES)
}

fn exact_filter(i: u32) -> String {
    let (s, d) = site_device(i);
    format!("site/{s}/device/{d}/temp")
}

fn plus_filter(i: u32) -> String {
    let (s, m) = site_device(i);
    format!("site/{s}/device/+/m{m}")
}

fn hash_filter(i: u32) -> String {
    let (s, d) = site_device(i);
    format!("site/{s}/device/{d}/#")
}

fn mixed_filter(i: u32) -> String {
    let (s, d) = site_device(i);
    match i % 10 {
        7 => format!("site/{s}/device/{d}/+"),
        8 => format!("site/+/device/{d}/temp"),
        9 => format!("site/{s}/#"),
        _ => exact_filter(i),
    }
}

fn build(filter: fn(u32) -> String) -> SubscriptionTree {
    let mut tree = SubscriptionTree::default();
    for i in 0..SUBSCRIPTIONS {
        tree.subscribe(&filter(i), None, subscriber(i));
    }
    tree
}

/// One tree to build and the topic names to look up in it.
struct Case {
    kind: &'static str,
    filter: fn(u32) -> String,
    topics: &'static [&'static str],
}

const CASES: [Case; 4] = [
    Case {
        kind: "exact",
        filter: exact_filter,
        topics: &["site/42/device/420/temp", "site/42/device/420/humidity"],
    },
    Case {
        kind: "plus",
        filter: plus_filter,
        topics: &["site/42/device/7/m420"],
    },
    Case {
        kind: "hash",
        filter: hash_filter,
        topics: &["site/42/device/420/temp"],
    },
    Case {
        kind: "mixed",
        filter: mixed_filter,
        topics: &["site/42/device/420/temp", "site/49/device/7/humidity"],
    },
];

fn bench_collect(c: &mut Criterion) {
    let mut group = c.benchmark_group("tree_collect_100k");
    let mut subs = Vec::new();
    let mut groups = Vec::new();
    for case in &CASES {
        let mut tree = build(case.filter);
        for &topic in case.topics {
            subs.clear();
            groups.clear();
            tree.collect(topic, &mut subs, &mut groups);
            let id = BenchmarkId::new(case.kind, format!("{topic} ({} subs)", subs.len()));
            group.bench_function(id, |b| {
                b.iter(|| {
                    subs.clear();
                    groups.clear();
                    tree.collect(black_box(topic), &mut subs, &mut groups);
                    subs.len()
                })
            });
        }
    }
    group.finish();
}

fn bench_build(c: &mut Criterion) {
    let filters: Vec<String> = (0..SUBSCRIPTIONS).map(mixed_filter).collect();
    let mut group = c.benchmark_group("tree_build_100k");
    group.sample_size(10);
    group.bench_function("mixed", |b| {
        b.iter(|| {
            let mut tree = SubscriptionTree::default();
            for (i, filter) in filters.iter().enumerate() {
                tree.subscribe(filter, None, subscriber(i as u32));
            }
            tree
        })
    });
    group.finish();
}

criterion_group!(benches, bench_collect, bench_build);
criterion_main!(benches);
