//! The `resume` scenario: persistent subscribers reconnect (clean session 0, the stable ids of
//! `--persistent`) and take whatever the broker kept queued for them from earlier runs, such
//! as an `--offline` fill, possibly across a broker restart. Every PUBLISH counts, whoever
//! sent it; the report gives the time from the first connect to the first message and the
//! rate until `--count` per subscriber arrived, none arrived for `--drain`, or `--duration`.

use std::time::{Duration, Instant};

use super::Engine;
use crate::client::{Role, State};
use crate::report::Report;
use crate::stats;

impl Engine<'_> {
    /// Reconnects every subscriber and counts what arrives.
    pub(super) fn run_resume(&mut self) -> Result<Report, String> {
        self.start_broker_watch();
        let self_start = stats::sample("self").unwrap_or_default();
        let t0 = Instant::now();
        self.world.start_ns = self.now_ns();
        self.world.last_arrival_ns = self.world.start_ns;
        self.measuring = true;
        self.progress = (t0, 0);
        self.next_tick = t0 + Duration::from_secs(1);
        for s in 0..self.world.subs.len() {
            let key = self
                .open(Role::Subscriber(s), s)
                .map_err(|e| format!("subscriber {s}: {e}"))?;
            self.world.subs[s].key = key;
        }
        let want = self.opts.count.map(|c| c * self.world.subs.len() as u64);
        let stop = self
            .opts
            .duration
            .map_or(self.deadline, |d| (t0 + d).min(self.deadline));
        let mut connected: Option<f64> = None;
        loop {
            let state = |key: usize| self.clients.get(key).map(|c| c.state);
            let keys = || self.world.subs.iter().map(|s| s.key);
            let waiting =
                keys().any(|k| matches!(state(k), Some(State::Connecting | State::AwaitConnack)));
            if connected.is_none() && !waiting {
                connected = Some(t0.elapsed().as_secs_f64());
            }
            let all_closed = keys().all(|k| state(k).is_none_or(|s| s == State::Closed));
            // The quiet period starts once connected: loading a large store comes first.
            let since = connected.map_or(stop, |c| {
                let last_arrival = self.epoch + Duration::from_nanos(self.world.last_arrival_ns);
                last_arrival.max(t0 + Duration::from_secs_f64(c)) + self.opts.drain
            });
            let quiet_until = since.min(stop);
            if want.is_some_and(|w| self.world.arrivals >= w)
                || all_closed
                || Instant::now() >= quiet_until
            {
                break;
            }
            self.turn(quiet_until)?;
        }
        let self_end = stats::sample("self").unwrap_or_default();
        let broker = self.end_broker_watch();
        let w = &self.world;
        let first = (w.first_arrival_ns).map(|ns| ns.saturating_sub(w.start_ns) as f64 / 1e9);
        // Connection is noticed after the turn that read the CONNACK, which may have read
        // the first messages too: those came after it.
        let connected = connected.map(|c| first.map_or(c, |f| c.min(f)));
        let report = Report {
            scenario: self.opts.scenario.name(),
            qos: self.opts.qos,
            size: self.opts.size,
            subscribers: w.subs.len(),
            delivered: w.arrivals,
            client_failures: self.client_failures,
            elapsed_s: w.last_arrival_ns.saturating_sub(w.start_ns) as f64 / 1e9,
            connected_s: connected,
            first_arrival_s: first,
            loadgen_cpu_s: self_end.cpu_s - self_start.cpu_s,
            broker,
            first_error: self.first_error.clone(),
            ..Report::default()
        };
        self.disconnect_all();
        Ok(report)
    }
}
