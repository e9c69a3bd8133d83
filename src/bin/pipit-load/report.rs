//! The result of one run: a JSON line for scripts and a short summary for people.
//!
//! The JSON is flat except for `broker_rss_kb`, `latency_us` and `per_publisher` (last), and
//! every top-level key is unique, so shell scripts can pick fields without a JSON parser.

use std::fmt::Write;

use crate::stats::Percentiles;

/// Per-publisher counts over its counted streams.
#[derive(Clone, Copy, Debug, Default)]
pub struct PubCounts {
    /// Messages it sent.
    pub sent: u64,
    /// Distinct messages received over all its counted streams.
    pub received: u64,
    /// Expected minus received.
    pub lost: u64,
    /// Repeated arrivals.
    pub duplicated: u64,
    /// Arrivals below the highest sequence number already seen.
    pub out_of_order: u64,
}

/// Broker CPU and memory over the measured window.
#[derive(Clone, Copy, Debug, Default)]
pub struct BrokerUsage {
    /// utime + stime consumed during the window.
    pub cpu_s: f64,
    /// RSS at the start of the window, KiB.
    pub rss_start_kb: u64,
    /// RSS at the end of the window, KiB.
    pub rss_end_kb: u64,
    /// Largest RSS sampled (start, each second, end), KiB.
    pub rss_max_kb: u64,
}

/// Outcome of the `conns` scenario.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnsResult {
    /// Connections that got a successful CONNACK.
    pub ok: u64,
    /// Connections that failed before CONNACK.
    pub failed: u64,
    /// Connections closed by the broker while held.
    pub dropped: u64,
    /// Successful connections per second, first attempt to last CONNACK.
    pub rate_per_s: f64,
    /// Seconds the connections were held.
    pub hold_s: f64,
    /// Connections closed with a reset (`storm`).
    pub resets: u64,
}

/// Everything one run measured.
#[derive(Debug, Default)]
pub struct Report {
    /// Scenario name.
    pub scenario: &'static str,
    /// QoS used.
    pub qos: u8,
    /// Payload size.
    pub size: usize,
    /// Publishers.
    pub publishers: usize,
    /// Subscribers (including a stalled one).
    pub subscribers: usize,
    /// Messages sent by all publishers.
    pub sent: u64,
    /// Distinct messages received on counted streams.
    pub delivered: u64,
    /// Expected minus delivered.
    pub lost: u64,
    /// Repeated arrivals.
    pub duplicated: u64,
    /// Out-of-order arrivals.
    pub out_of_order: u64,
    /// Arrivals that were not ours or carried an impossible sequence number.
    pub invalid: u64,
    /// Acks for packet ids not in flight.
    pub stray_acks: u64,
    /// Clients that failed during the run.
    pub client_failures: u64,
    /// Times a subscriber left and resumed its session (`--bounce`).
    pub bounces: u64,
    /// Measured window: publishing start to last delivery.
    pub elapsed_s: f64,
    /// Seconds spent publishing.
    pub publish_s: f64,
    /// Load generator CPU over the window.
    pub loadgen_cpu_s: f64,
    /// Broker figures when `--broker-pid` was given.
    pub broker: Option<BrokerUsage>,
    /// Latency percentiles (latency scenario).
    pub latency: Option<Percentiles>,
    /// Latency sample count.
    pub latency_samples: usize,
    /// `conns` outcome.
    pub conns: Option<ConnsResult>,
    /// `resume`: seconds from the first connect to the last subscriber's CONNACK.
    pub connected_s: Option<f64>,
    /// `resume`: seconds from the first connect to the first message.
    pub first_arrival_s: Option<f64>,
    /// `slow`: stalled subscribers and what they received before stalling.
    pub stalled: Option<(usize, u64)>,
    /// First failure seen, if any.
    pub first_error: Option<String>,
    /// Per-publisher counts.
    pub per_publisher: Vec<PubCounts>,
}

/// Formats a finite float with three decimals, or `null`.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".into()
    }
}

/// Quotes a string for JSON.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Report {
    /// Delivered messages per second over the window.
    pub fn delivered_per_s(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.delivered as f64 / self.elapsed_s
        } else {
            0.0
        }
    }

    /// Delivered messages per broker CPU-second, when the broker was sampled.
    pub fn msgs_per_broker_cpu_s(&self) -> Option<f64> {
        let b = self.broker?;
        (b.cpu_s > 0.0 && self.delivered > 0).then(|| self.delivered as f64 / b.cpu_s)
    }

    /// The one-line JSON form.
    pub fn to_json(&self) -> String {
        let mut j = String::with_capacity(512);
        let opt = |v: Option<f64>| v.map_or("null".to_string(), num);
        let _ = write!(
            j,
            "{{\"scenario\":{},\"qos\":{},\"size\":{},\"publishers\":{},\"subscribers\":{},\
             \"sent\":{},\"delivered\":{},\"lost\":{},\"duplicated\":{},\"out_of_order\":{},\
             \"invalid\":{},\"stray_acks\":{},\"client_failures\":{},\"bounces\":{},\"elapsed_s\":{},\
             \"publish_s\":{},\"delivered_per_s\":{},\"loadgen_cpu_s\":{},\"loadgen_cpu_pct\":{}",
            quote(self.scenario),
            self.qos,
            self.size,
            self.publishers,
            self.subscribers,
            self.sent,
            self.delivered,
            self.lost,
            self.duplicated,
            self.out_of_order,
            self.invalid,
            self.stray_acks,
            self.client_failures,
            self.bounces,
            num(self.elapsed_s),
            num(self.publish_s),
            num(self.delivered_per_s()),
            num(self.loadgen_cpu_s),
            num(if self.elapsed_s > 0.0 {
                100.0 * self.loadgen_cpu_s / self.elapsed_s
            } else {
                0.0
            }),
        );
        let _ = write!(
            j,
            ",\"broker_cpu_s\":{},\"msgs_per_broker_cpu_s\":{}",
            opt(self.broker.map(|b| b.cpu_s)),
            opt(self.msgs_per_broker_cpu_s())
        );
        match self.broker {
            Some(b) => {
                let _ = write!(
                    j,
                    ",\"broker_rss_kb\":{{\"rss_start\":{},\"rss_end\":{},\"rss_max\":{}}}",
                    b.rss_start_kb, b.rss_end_kb, b.rss_max_kb
                );
            }
            None => j.push_str(",\"broker_rss_kb\":null"),
        }
        match self.latency {
            Some(l) => {
                let _ = write!(
                    j,
                    ",\"latency_us\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"p999\":{},\"max\":{}}},\
                     \"latency_samples\":{}",
                    num(l.p50),
                    num(l.p90),
                    num(l.p99),
                    num(l.p999),
                    num(l.max),
                    self.latency_samples
                );
            }
            None => j.push_str(",\"latency_us\":null"),
        }
        if let Some(c) = self.conns {
            let _ = write!(
                j,
                ",\"conns_ok\":{},\"conns_failed\":{},\"conns_dropped\":{},\"conn_rate_per_s\":{},\
                 \"hold_s\":{},\"conns_reset\":{}",
                c.ok,
                c.failed,
                c.dropped,
                num(c.rate_per_s),
                num(c.hold_s),
                c.resets
            );
        }
        if self.scenario == "resume" {
            let ms = |s: Option<f64>| opt(s.map(|s| s * 1e3));
            let (connack, first) = (ms(self.connected_s), ms(self.first_arrival_s));
            let _ = write!(j, ",\"connack_ms\":{connack},\"first_arrival_ms\":{first}");
        }
        if let Some((n, received)) = self.stalled {
            let _ = write!(
                j,
                ",\"stalled_subscribers\":{n},\"stalled_received\":{received}"
            );
        }
        let _ = write!(
            j,
            ",\"first_error\":{}",
            self.first_error
                .as_deref()
                .map_or("null".to_string(), quote)
        );
        j.push_str(",\"per_publisher\":[");
        for (i, p) in self.per_publisher.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(
                j,
                "{sep}{{\"id\":{i},\"sent\":{},\"received\":{},\"lost\":{},\"duplicated\":{},\
                 \"out_of_order\":{}}}",
                p.sent, p.received, p.lost, p.duplicated, p.out_of_order
            );
        }
        j.push_str("]}");
        j
    }

    /// A few lines for people.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        if let Some(c) = self.conns {
            let _ = writeln!(
                s,
                "conns: {} ok, {} failed, {} dropped while held; {:.0} conn/s; held {:.1} s",
                c.ok, c.failed, c.dropped, c.rate_per_s, c.hold_s
            );
        } else {
            let _ = writeln!(
                s,
                "{} qos{} {}B {}->{}: sent {}, delivered {} in {:.2} s = {:.0} msg/s; \
                 lost {}, duplicated {}, out of order {}, invalid {}",
                self.scenario,
                self.qos,
                self.size,
                self.publishers,
                self.subscribers,
                self.sent,
                self.delivered,
                self.elapsed_s,
                self.delivered_per_s(),
                self.lost,
                self.duplicated,
                self.out_of_order,
                self.invalid
            );
        }
        if let Some(l) = self.latency {
            let _ = writeln!(
                s,
                "latency us: p50 {:.0}, p90 {:.0}, p99 {:.0}, p99.9 {:.0}, max {:.0} ({} samples)",
                l.p50, l.p90, l.p99, l.p999, l.max, self.latency_samples
            );
        }
        if let Some(first) = self.first_arrival_s {
            let _ = writeln!(s, "first message {:.1} ms after connecting", first * 1e3);
        }
        if let Some((n, received)) = self.stalled {
            let _ = writeln!(
                s,
                "stalled subscribers: {n} (received {received} before stalling)"
            );
        }
        let _ = write!(s, "load generator CPU {:.2} s", self.loadgen_cpu_s);
        if let Some(b) = self.broker {
            let _ = write!(
                s,
                "; broker CPU {:.2} s, RSS {} -> {} KiB (max {})",
                b.cpu_s, b.rss_start_kb, b.rss_end_kb, b.rss_max_kb
            );
            if let Some(m) = self.msgs_per_broker_cpu_s() {
                let _ = write!(s, ", {m:.0} msg per broker CPU-s");
            }
        }
        s.push('\n');
        if let Some(e) = &self.first_error {
            let _ = writeln!(s, "first error: {e}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let r = Report {
            scenario: "fanin",
            delivered: 10,
            elapsed_s: 2.0,
            first_error: Some("a \"b\"\n".into()),
            per_publisher: vec![PubCounts::default()],
            ..Report::default()
        };
        let j = r.to_json();
        assert!(j.starts_with("{\"scenario\":\"fanin\""));
        assert!(j.contains("\"delivered_per_s\":5.000"));
        assert!(j.contains("\"first_error\":\"a \\\"b\\\"\\u000a\""));
        assert!(j.ends_with("\"out_of_order\":0}]}"));
        assert_eq!(quote("x"), "\"x\"");
    }
}
