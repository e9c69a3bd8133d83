//! The figures of `$SYS` in the Prometheus text exposition format, version 0.0.4: one
//! family per figure with its `# HELP` and `# TYPE` lines, names prefixed `pipit_`, counters
//! ending `_total`, units in the name (`_bytes`, `_seconds`). Written by hand: on one thread
//! the figures are plain integers and a registry would only add a copy of them.

use std::fmt::Write;

use super::figures::Figures;
use super::load::{LoadAverages, RATES, WINDOWS};
use crate::core::budget::Shed;
use crate::core::drops::DropReason;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Appends one family with a single unlabelled sample.
fn family(out: &mut String, (name, kind, help, value): (&str, &str, &str, u64)) {
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    );
}

/// The whole exposition for `figures`, with the load averages when `$SYS` computes them.
pub fn render(figures: &Figures, load: Option<&LoadAverages>) -> String {
    let f = figures;
    let s = &f.stats;
    let n = |v: usize| v as u64;
    let mut out = String::with_capacity(8 * 1024);
    let _ = write!(
        out,
        "# HELP pipit_info The broker's version.\n# TYPE pipit_info gauge\n\
         pipit_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    let (gauge, counter) = ("gauge", "counter");
    // One row a line: the table reads better than each tuple spread over six.
    #[rustfmt::skip]
    let mut families = vec![
        ("pipit_uptime_seconds", gauge, "Seconds since the broker started.", f.uptime),
        ("pipit_clients", gauge, "Sessions, online or not.", n(f.clients_total)),
        ("pipit_clients_connected", gauge, "Sessions with a network connection.", n(f.clients_connected)),
        ("pipit_clients_disconnected", gauge, "Sessions without a network connection.", n(f.clients_disconnected())),
        ("pipit_clients_maximum", gauge, "The most sessions seen at once.", n(f.clients_maximum)),
        ("pipit_clients_expired_total", counter, "Offline sessions discarded when their expiry interval ran out.", s.clients_expired),
        ("pipit_subscriptions", gauge, "Subscriptions, shared ones included.", n(f.subscriptions)),
        ("pipit_shared_subscriptions", gauge, "Shared subscriptions.", n(f.shared_subscriptions)),
        ("pipit_retained_messages", gauge, "Retained messages.", n(f.retained)),
        ("pipit_stored_messages", gauge, "Distinct messages held: retained, queued, in flight or a delayed will.", n(f.stored_messages)),
        ("pipit_stored_messages_payload_bytes", gauge, "Payload bytes of the stored messages.", f.stored_bytes),
        ("pipit_queued_messages", gauge, "Messages waiting in session queues, counted per session.", n(f.queued)),
        ("pipit_packets_received_total", counter, "MQTT packets received, of every type.", s.packets_received),
        ("pipit_packets_sent_total", counter, "MQTT packets sent, of every type.", s.packets_sent),
        ("pipit_publish_received_total", counter, "PUBLISH packets received.", s.publish_received),
        ("pipit_publish_sent_total", counter, "PUBLISH packets sent.", s.publish_sent),
        ("pipit_received_bytes_total", counter, "MQTT bytes read from clients.", s.bytes_received),
        ("pipit_sent_bytes_total", counter, "MQTT bytes written to clients.", s.bytes_sent),
        ("pipit_publish_received_bytes_total", counter, "Payload bytes of the PUBLISH packets received.", s.publish_bytes_received),
        ("pipit_publish_sent_bytes_total", counter, "Payload bytes of the PUBLISH packets sent.", s.publish_bytes_sent),
        ("pipit_connections_accepted_total", counter, "TCP connections accepted.", s.connections_accepted),
        ("pipit_connections_refused_total", counter, "TCP connections refused at max_connections.", s.connections_refused),
        ("pipit_connects_total", counter, "CONNECTs accepted.", s.connects),
    ];
    if let Some((current, maximum)) = f.heap {
        families.push((
            "pipit_heap_bytes",
            gauge,
            "Heap bytes in use (the counting allocator, else glibc mallinfo2).",
            current,
        ));
        families.push((
            "pipit_heap_maximum_bytes",
            gauge,
            "The most heap bytes seen in use.",
            maximum,
        ));
    }
    if let Some(written) = f.store_bytes_written {
        families.push((
            "pipit_store_written_bytes_total",
            counter,
            "Bytes the persistent store has written.",
            written,
        ));
    }
    if let Some(limit) = f.budget.limit() {
        families.push((
            "pipit_memory_limit_bytes",
            gauge,
            "The heap budget (memory_limit).",
            limit,
        ));
        families.push((
            "pipit_memory_shedding_stages",
            gauge,
            "How many memory_limit shedding stages are in force (0-4).",
            f.budget.stages() as u64,
        ));
    }
    for row in families {
        family(&mut out, row);
    }
    if f.budget.limit().is_some() {
        out.push_str(
            "# HELP pipit_memory_shed_total What memory_limit has shed, by stage.\n\
             # TYPE pipit_memory_shed_total counter\n",
        );
        for what in Shed::ALL {
            let _ = writeln!(
                out,
                "pipit_memory_shed_total{{stage=\"{}\"}} {}",
                what.name(),
                f.budget.shed(what)
            );
        }
    }
    out.push_str(
        "# HELP pipit_messages_dropped_total Messages not delivered, by reason.\n\
         # TYPE pipit_messages_dropped_total counter\n",
    );
    for reason in DropReason::ALL {
        let _ = writeln!(
            out,
            "pipit_messages_dropped_total{{reason=\"{}\"}} {}",
            reason.name(),
            s.dropped.get(reason)
        );
    }
    if let Some(load) = load {
        out.push_str(
            "# HELP pipit_load_per_minute Per-minute rates averaged over a window, as in $SYS \
             broker/load.\n# TYPE pipit_load_per_minute gauge\n",
        );
        for (rate, window, value) in load.iter() {
            let _ = writeln!(
                out,
                "pipit_load_per_minute{{rate=\"{}\",window=\"{}\"}} {value:.2}",
                RATES[rate].replace('/', "_"),
                WINDOWS[window].1
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let mut figures = Figures::default();
        figures.stats.publish_received = 7;
        figures.heap = Some((10, 20));
        figures.budget = crate::core::budget::Budget::new(Some(100));
        let text = render(&figures, Some(&LoadAverages::default()));
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge"].contains(&kind), "{line}");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
                declared.push(name.to_string());
            } else if !line.starts_with("# HELP ") {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(declared.last().map(String::as_str), Some(name), "{line}");
            }
        }
        assert!(text.contains("\npipit_publish_received_total 7\n"));
        assert!(text.contains("\npipit_memory_limit_bytes 100\n"));
        assert!(text.contains("\npipit_memory_shed_total{stage=\"qos0\"} 0\n"));
        assert!(
            text.contains(
                "pipit_load_per_minute{rate=\"messages_received\",window=\"1min\"} 0.00\n"
            )
        );
        assert!(text.ends_with('\n'));
    }
}
