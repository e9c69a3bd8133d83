//! In-process against loopback TCP: one publisher and one subscriber of the same broker,
//! first as `LocalClient`s, then as TCP clients over 127.0.0.1, at QoS 0 and QoS 1. The
//! figure is messages per CPU-second of the whole process (the broker's thread and the
//! clients' thread together, `getrusage(RUSAGE_SELF)`), so what each transport costs on
//! both sides is counted; messages per wall-clock second are printed beside it.
//!
//! Both clients run on one thread in rounds: the publisher sends `WINDOW` messages without
//! waiting, the subscriber takes all of them (acknowledging QoS 1 ones), then at QoS 1 the
//! publisher takes its `WINDOW` PUBACKs. Nothing spins: every wait blocks. The TCP clients
//! write a round's PUBLISHes (built once) with one write and read through a buffer, so
//! their own cost is small; the local clients are the library's, decoding each delivery
//! into a `Delivery` as an embedder gets it.
//!
//! Bounded in time: `BENCH_SECONDS` (default 2) per run, `BENCH_REPEAT` (default 3) runs of
//! each case, the cases interleaved so a busy moment on a shared machine hits all of them;
//! the median and the range are printed.
//!
//! ```text
//! cargo bench --bench embed
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::error::Error;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use pipit::embed::{Event, LocalClient, LocalOptions, Outgoing, loopback_config};
use pipit::wire::{QoS, SubscriptionOptions};

/// Messages sent per round before waiting for them.
const WINDOW: usize = 100;
/// Each message's topic and payload (a sensor reading's size).
const TOPIC: &str = "bench/embed/temp";
const PAYLOAD: &[u8] = b"{\"t\":21.5,\"rh\":40}";
/// How long any one wait may take before the run is abandoned as broken.
const WAIT: Duration = Duration::from_secs(10);

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// A publisher and a subscriber that can run one round.
trait Pair {
    /// Publishes `WINDOW` messages at `qos` and waits until the subscriber has them all
    /// (and, at QoS 1, the publisher its acknowledgements).
    fn round(&mut self, qos: QoS) -> Result<()>;
}

/// Two `LocalClient`s.
struct Local {
    publisher: LocalClient,
    subscriber: LocalClient,
}

impl Local {
    fn new(handle: &pipit::Handle, n: usize, qos: QoS) -> Result<Local> {
        let publisher = handle.local_client(LocalOptions::new(&format!("local-pub-{n}")))?;
        let mut subscriber = handle.local_client(LocalOptions::new(&format!("local-sub-{n}")))?;
        subscriber.subscribe(&[(TOPIC, SubscriptionOptions::at(qos))])?;
        Ok(Local {
            publisher,
            subscriber,
        })
    }
}

impl Pair for Local {
    fn round(&mut self, qos: QoS) -> Result<()> {
        let message = Outgoing::new(TOPIC, PAYLOAD).qos(qos);
        for _ in 0..WINDOW {
            self.publisher.publish_nowait(&message)?;
        }
        for _ in 0..WINDOW {
            self.subscriber
                .recv_timeout(WAIT)?
                .ok_or("local: a message did not arrive")?;
        }
        if qos == QoS::AtLeastOnce {
            let mut acked = 0;
            while acked < WINDOW {
                match self.publisher.next_event(WAIT)? {
                    Some(Event::Published { .. }) => acked += 1,
                    Some(_) => {}
                    None => return Err("local: a PUBACK did not arrive".into()),
                }
            }
        }
        Ok(())
    }
}

/// Two TCP clients (MQTT 3.1.1, from the tests' raw-bytes helpers).
struct Tcp {
    publisher: BufReader<TcpStream>,
    subscriber: BufReader<TcpStream>,
    /// A round's PUBLISHes at QoS 0 and at QoS 1 (packet ids 1..=WINDOW, all acknowledged
    /// before the next round reuses them).
    burst: [Vec<u8>; 2],
    /// The subscriber's PUBACKs of one read, sent with one write.
    acks: Vec<u8>,
    body: Vec<u8>,
}

impl Tcp {
    fn new(addr: SocketAddr, n: usize, qos: QoS) -> Result<Tcp> {
        let publisher = common::Raw::connect(addr, &format!("tcp-pub-{n}"), true);
        let mut subscriber = common::Raw::connect(addr, &format!("tcp-sub-{n}"), true);
        subscriber.subscribe(TOPIC, qos as u8);
        let burst = |qos: u8| -> Vec<u8> {
            (1..=WINDOW as u16)
                .flat_map(|id| common::publish(TOPIC, PAYLOAD, qos, false, id))
                .collect()
        };
        Ok(Tcp {
            publisher: BufReader::new(publisher.stream),
            subscriber: BufReader::new(subscriber.stream),
            burst: [burst(0), burst(1)],
            acks: Vec::new(),
            body: Vec::new(),
        })
    }
}

/// Reads one packet's first byte and body into `body` from a buffered stream.
fn read_packet(input: &mut BufReader<TcpStream>, body: &mut Vec<u8>) -> Result<u8> {
    let mut byte = [0u8; 1];
    input.read_exact(&mut byte)?;
    let header = byte[0];
    let (mut len, mut shift) = (0usize, 0);
    loop {
        input.read_exact(&mut byte)?;
        len |= usize::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    body.resize(len, 0);
    input.read_exact(body)?;
    Ok(header)
}

impl Pair for Tcp {
    fn round(&mut self, qos: QoS) -> Result<()> {
        let q1 = qos == QoS::AtLeastOnce;
        self.publisher
            .get_mut()
            .write_all(&self.burst[usize::from(q1)])?;
        for _ in 0..WINDOW {
            let header = read_packet(&mut self.subscriber, &mut self.body)?;
            if header >> 4 != 3 {
                return Err(format!("tcp: expected PUBLISH, got {header:#04x}").into());
            }
            if q1 {
                // Topic length, topic, then the packet id.
                let at = 2 + usize::from(u16::from_be_bytes([self.body[0], self.body[1]]));
                let id = u16::from_be_bytes([self.body[at], self.body[at + 1]]);
                self.acks.extend_from_slice(&common::ack(0x40, id));
            }
            // Acknowledge what this read brought in with one write, as a client would.
            if !self.acks.is_empty() && self.subscriber.buffer().is_empty() {
                self.subscriber.get_mut().write_all(&self.acks)?;
                self.acks.clear();
            }
        }
        if q1 {
            for _ in 0..WINDOW {
                let header = read_packet(&mut self.publisher, &mut self.body)?;
                if header != 0x40 {
                    return Err(format!("tcp: expected PUBACK, got {header:#04x}").into());
                }
            }
        }
        Ok(())
    }
}

/// CPU time of the whole process so far (every thread), in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF and a valid pointer; it cannot fail with these.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// One run: rounds for `for_how_long`; (messages per CPU-second, messages per second).
fn run(pair: &mut dyn Pair, qos: QoS, for_how_long: Duration) -> Result<(f64, f64)> {
    pair.round(qos)?; // warm-up: buffers, queues and frame caches at their working size
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let mut messages = 0;
    while started.elapsed() < for_how_long {
        pair.round(qos)?;
        messages += WINDOW;
    }
    let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    Ok((messages as f64 / cpu, messages as f64 / wall))
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, short.
    let testing = !std::env::args().any(|a| a == "--bench");
    let seconds = if testing { 0 } else { env("BENCH_SECONDS", 2) };
    let repeat = if testing {
        1
    } else {
        env("BENCH_REPEAT", 3).max(1) as usize
    };
    let for_how_long = Duration::from_millis(seconds.max(1) * 1000 / if testing { 10 } else { 1 });

    let broker = pipit::Broker::builder(loopback_config()).spawn()?;
    let addr = broker.addrs[0];
    let cases = [
        ("local", QoS::AtMostOnce),
        ("tcp", QoS::AtMostOnce),
        ("local", QoS::AtLeastOnce),
        ("tcp", QoS::AtLeastOnce),
    ];
    let mut results = vec![Vec::new(); cases.len()];
    let mut out = std::io::stdout();
    for r in 0..repeat {
        for (i, &(transport, qos)) in cases.iter().enumerate() {
            let n = r * cases.len() + i;
            let mut pair: Box<dyn Pair> = match transport {
                "local" => Box::new(Local::new(&broker.handle, n, qos)?),
                _ => Box::new(Tcp::new(addr, n, qos)?),
            };
            let (per_cpu, per_wall) = run(pair.as_mut(), qos, for_how_long)?;
            writeln!(
                out,
                "run {}: {transport:5} QoS {}: {per_cpu:>9.0} msg/CPU-s {per_wall:>9.0} msg/s",
                r + 1,
                qos as u8
            )?;
            results[i].push((per_cpu, per_wall));
        }
    }
    writeln!(
        out,
        "\ncase        msg/CPU-s median (min-max)      msg/s median"
    )?;
    for (i, &(transport, qos)) in cases.iter().enumerate() {
        let cpu: Vec<f64> = results[i].iter().map(|r| r.0).collect();
        let wall: Vec<f64> = results[i].iter().map(|r| r.1).collect();
        let (lo, hi) = (
            cpu.iter().copied().fold(f64::MAX, f64::min),
            cpu.iter().copied().fold(0.0, f64::max),
        );
        writeln!(
            out,
            "{transport:5} QoS {}  {:>9.0} ({lo:.0}-{hi:.0})  {:>9.0}",
            qos as u8,
            median(cpu),
            median(wall)
        )?;
    }
    broker.handle.shutdown();
    broker
        .thread
        .join()
        .map_err(|_| "the broker thread panicked")??;
    Ok(())
}
