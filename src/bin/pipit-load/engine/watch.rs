//! Sampling the broker process named by `--broker-pid`: CPU and RSS at the start and end of
//! the measured window (the once-a-second tick adds RSS samples for the maximum).

use log::warn;

use super::Engine;
use crate::report::BrokerUsage;
use crate::stats::{self, ProcSample};

/// Broker process being sampled.
pub(super) struct BrokerWatch {
    pub(super) pid: String,
    pub(super) start: ProcSample,
    pub(super) rss_max_kb: u64,
}

impl Engine<'_> {
    /// Starts sampling the broker if `--broker-pid` was given.
    pub(super) fn start_broker_watch(&mut self) {
        let Some(pid) = self.opts.broker_pid else {
            return;
        };
        let pid = pid.to_string();
        match stats::sample(&pid) {
            Ok(start) => {
                self.broker = Some(BrokerWatch {
                    pid,
                    rss_max_kb: start.rss_kb,
                    start,
                })
            }
            Err(e) => warn!("cannot sample broker: {e}"),
        }
    }

    /// Final broker figures.
    pub(super) fn end_broker_watch(&mut self) -> Option<BrokerUsage> {
        let b = self.broker.take()?;
        let end = stats::sample(&b.pid)
            .map_err(|e| warn!("cannot sample broker: {e}"))
            .ok()?;
        Some(BrokerUsage {
            cpu_s: end.cpu_s - b.start.cpu_s,
            rss_start_kb: b.start.rss_kb,
            rss_end_kb: end.rss_kb,
            rss_max_kb: b.rss_max_kb.max(end.rss_kb),
        })
    }
}
