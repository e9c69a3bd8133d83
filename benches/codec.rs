//! Codec micro-benchmarks: decoding and encoding the packets a broker handles most.
//!
//! Each fixture is produced by the codec's own encoder, so decoding benchmarks read exactly
//! the bytes the broker would write. PUBLISH is measured with a small (4-byte) and a 1 KiB
//! payload in MQTT 3.1.1 and 5.0; CONNECT and SUBSCRIBE in 3.1.1. Encoding appends into a
//! reused `Vec` (cleared, not reallocated), as the broker's send path does.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pipit::wire::{
    Connect, Packet, Properties, Publish, QoS, RetainHandling, SubscriptionOptions, Version,
    decode_with, encode_subscribe,
};

/// Maximum packet size passed to `decode_with`: large enough for every fixture.
const MAX_PACKET: u32 = 1 << 20;

const TOPIC: &str = "site/42/device/420/temp";

fn publish(payload: &[u8]) -> Publish<'_> {
    Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TOPIC,
        packet_id: 4242,
        properties: Properties::default(),
        payload,
    }
}

fn connect() -> Connect<'static> {
    Connect {
        version: Version::V311,
        bridge: false,
        clean_start: true,
        keep_alive: 60,
        properties: Properties::default(),
        client_id: "sensor-gateway-0042",
        will: None,
        username: Some("gateway"),
        password: Some(b"correct horse battery staple"),
    }
}

fn options(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: RetainHandling::SendAtSubscribe,
    }
}

/// Three filters, one of each kind: exact, single-level and multi-level wildcard.
fn subscribe_filters() -> [(&'static str, SubscriptionOptions); 3] {
    [
        (TOPIC, options(QoS::AtLeastOnce)),
        ("site/42/device/+/temp", options(QoS::AtMostOnce)),
        ("site/7/#", options(QoS::ExactlyOnce)),
    ]
}

fn encoded_subscribe() -> Vec<u8> {
    let mut out = Vec::new();
    encode_subscribe(
        17,
        &Properties::default(),
        &subscribe_filters(),
        Version::V311,
        &mut out,
    );
    out
}

/// Decodes `frame`, which must hold exactly one whole packet, as the broker does (lent to a
/// handler, here `black_box`), and returns its length.
fn decode_one(frame: &[u8], version: Version) -> usize {
    match decode_with(frame, version, MAX_PACKET, |packet| {
        black_box(packet);
    }) {
        Ok(Some(((), len))) => len,
        other => panic!("fixture must decode as one whole packet, got {other:?}"),
    }
}

fn bench_publish(c: &mut Criterion) {
    let small = b"21.5".to_vec();
    let large = vec![0x5a_u8; 1024];
    let mut group = c.benchmark_group("publish");
    for (size, payload) in [("small", &small), ("1KiB", &large)] {
        for (vname, version) in [("v311", Version::V311), ("v5", Version::V5)] {
            let packet = publish(payload);
            let mut frame = Vec::new();
            packet.encode(version, &[], &mut frame);
            group.throughput(Throughput::Bytes(frame.len() as u64));
            let id = format!("{size}/{vname}");

            group.bench_with_input(BenchmarkId::new("decode", &id), &frame, |b, frame| {
                b.iter(|| decode_one(black_box(frame), version))
            });

            let mut out = Vec::with_capacity(frame.len());
            group.bench_function(BenchmarkId::new("encode", &id), |b| {
                b.iter(|| {
                    out.clear();
                    black_box(&packet).encode(version, &[], &mut out);
                    out.len()
                })
            });
        }
    }
    group.finish();
}

fn bench_connect(c: &mut Criterion) {
    let packet = connect();
    let mut frame = Vec::new();
    packet.encode(&mut frame);
    let mut group = c.benchmark_group("connect");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("decode/v311", |b| {
        b.iter(|| decode_one(black_box(&frame), Version::V311))
    });
    let mut out = Vec::with_capacity(frame.len());
    group.bench_function("encode/v311", |b| {
        b.iter(|| {
            out.clear();
            black_box(&packet).encode(&mut out);
            out.len()
        })
    });
    group.finish();
}

fn bench_subscribe(c: &mut Criterion) {
    let frame = encoded_subscribe();
    let filters = subscribe_filters();
    let mut group = c.benchmark_group("subscribe");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("decode/v311", |b| {
        b.iter(|| {
            // Iterate the filters too: the broker always does, and parsing them is the work.
            let count = |packet: &Packet<'_>| match packet {
                Packet::Subscribe(s) => s.filters.iter().count(),
                other => panic!("fixture must decode as SUBSCRIBE, got {other:?}"),
            };
            match decode_with(black_box(&frame), Version::V311, MAX_PACKET, count) {
                Ok(Some((filters, _))) => filters,
                other => panic!("fixture must decode as one whole packet, got {other:?}"),
            }
        })
    });
    let mut out = Vec::with_capacity(frame.len());
    group.bench_function("encode/v311", |b| {
        b.iter(|| {
            out.clear();
            encode_subscribe(
                17,
                &Properties::default(),
                black_box(&filters),
                Version::V311,
                &mut out,
            );
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_publish, bench_connect, bench_subscribe);
criterion_main!(benches);
