//! Measurement: per-stream sequence tracking (lost, duplicated, out of order), latency
//! percentiles, and CPU/RSS samples of a process from `/proc`.
//!
//! A stream is one (publisher, subscriber) pair. Its sequence numbers start at 0 and are dense,
//! so a bitmap of seen numbers gives exact duplicate and loss counts; the bitmap only grows up
//! to the number of messages the publisher has actually sent (checked on every record).

use std::fs;
use std::io;

/// Bytes at the front of every payload: sequence number, publisher id, send timestamp.
pub const HEADER_LEN: usize = 8 + 4 + 8;

/// Kernel clock ticks per second for `/proc/*/stat` times (`USER_HZ`, 100 on Linux).
const CLOCK_TICKS_PER_S: f64 = 100.0;

/// The header a publisher writes at the front of each payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadHeader {
    /// Per-publisher sequence number, from 0.
    pub seq: u64,
    /// Index of the publisher in this run.
    pub publisher: u32,
    /// Send time in nanoseconds since the run's epoch (monotonic clock).
    pub sent_ns: u64,
}

impl PayloadHeader {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `payload`.
    pub fn write(&self, payload: &mut [u8]) {
        payload[0..8].copy_from_slice(&self.seq.to_le_bytes());
        payload[8..12].copy_from_slice(&self.publisher.to_le_bytes());
        payload[12..20].copy_from_slice(&self.sent_ns.to_le_bytes());
    }

    /// Reads a header from a received payload; `None` if it is too short.
    pub fn read(payload: &[u8]) -> Option<PayloadHeader> {
        let seq = u64::from_le_bytes(payload.get(0..8)?.try_into().ok()?);
        let publisher = u32::from_le_bytes(payload.get(8..12)?.try_into().ok()?);
        let sent_ns = u64::from_le_bytes(payload.get(12..20)?.try_into().ok()?);
        Some(PayloadHeader {
            seq,
            publisher,
            sent_ns,
        })
    }
}

/// What one subscriber has received from one publisher.
#[derive(Debug, Default)]
pub struct SeqTrack {
    /// Bit `n` is set once sequence number `n` has arrived.
    seen: Vec<u64>,
    /// Distinct sequence numbers received.
    pub distinct: u64,
    /// Arrivals of a sequence number already seen.
    pub duplicated: u64,
    /// First arrivals of a number below the highest one already seen.
    pub out_of_order: u64,
    /// Arrivals with a sequence number the publisher never sent.
    pub invalid: u64,
    /// One past the highest sequence number seen.
    next: u64,
}

impl SeqTrack {
    /// One past the highest sequence number seen: how far delivery has got, counting a
    /// message skipped over (lost) as passed.
    pub fn reached(&self) -> u64 {
        self.next
    }

    /// Records one arrival; `sent` is how many messages the publisher has sent so far.
    pub fn record(&mut self, seq: u64, sent: u64) {
        if seq >= sent {
            self.invalid += 1;
            return;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicated += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.distinct += 1;
        if seq < self.next {
            self.out_of_order += 1;
        } else {
            self.next = seq + 1;
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

/// Nearest-rank percentiles of latency samples given in nanoseconds; `None` if empty.
pub fn percentiles(samples_ns: &mut [u64]) -> Option<Percentiles> {
    if samples_ns.is_empty() {
        return None;
    }
    samples_ns.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * samples_ns.len() as f64).ceil() as usize).clamp(1, samples_ns.len());
        samples_ns[rank - 1] as f64 / 1000.0
    };
    Some(Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: at(1.0),
    })
}

/// CPU time and resident memory of a process at one instant.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    /// utime + stime of all threads, in seconds.
    pub cpu_s: f64,
    /// VmRSS in KiB.
    pub rss_kb: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `pid` may be `"self"`.
pub fn sample(pid: &str) -> io::Result<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let bad =
        |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}: {what}"));
    // The command name may hold spaces and parentheses: fields restart after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .ok_or_else(|| bad("no ')' in stat"))?
        .1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' the first field is field 3 (state); utime is field 14, stime field 15.
    let tick = |n: usize| -> io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad("utime/stime"))
    };
    let ticks = tick(14)? + tick(15)?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| bad("VmRSS"))?;
    Ok(ProcSample {
        cpu_s: ticks as f64 / CLOCK_TICKS_PER_S,
        rss_kb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_track_counts() {
        let mut t = SeqTrack::default();
        for seq in [0, 1, 3, 2, 2, 70, 9] {
            t.record(seq, 100);
        }
        t.record(100, 100);
        assert_eq!(t.distinct, 6);
        assert_eq!(t.duplicated, 1);
        assert_eq!(t.out_of_order, 2);
        assert_eq!(t.invalid, 1);
    }

    #[test]
    fn header_round_trip_and_short() {
        let h = PayloadHeader {
            seq: 5,
            publisher: 3,
            sent_ns: 99,
        };
        let mut buf = [0u8; 24];
        h.write(&mut buf);
        assert_eq!(PayloadHeader::read(&buf), Some(h));
        assert_eq!(PayloadHeader::read(&buf[..19]), None);
    }

    #[test]
    fn nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).map(|n| n * 1000).collect();
        let p = percentiles(&mut v).expect("non-empty");
        assert_eq!(
            (p.p50, p.p90, p.p99, p.p999, p.max),
            (500.0, 900.0, 990.0, 999.0, 1000.0)
        );
        assert_eq!(percentiles(&mut []), None);
    }

    #[test]
    fn sample_self() {
        let s = sample("self").expect("/proc/self readable");
        assert!(s.rss_kb > 0);
    }
}
