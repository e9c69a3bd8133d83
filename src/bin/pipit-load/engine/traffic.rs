//! The traffic scenarios' phases: subscribe, connect publishers, publish for the measured
//! window, drain, then count per publisher. With `--offline` the subscribers leave (with
//! DISCONNECT, keeping their persistent sessions) before anything is published, so every
//! message is queued at the broker and no stream is counted.

use std::time::{Duration, Instant};

use super::Engine;
use crate::client::{Role, State};
use crate::mqtt;
use crate::report::{PubCounts, Report};
use crate::stats;

impl Engine<'_> {
    /// Whether every counted stream has everything sent and no QoS 1/2 flow is open. A
    /// subscriber still reconnecting (`--bounce`) counts as alive: it is owed the rest.
    fn drained(&self) -> bool {
        let alive = |key: usize| {
            self.clients
                .get(key)
                .is_some_and(|c| c.state != State::Closed)
        };
        let streams_done = self.world.streams.iter().all(|s| {
            !s.counted
                || !alive(self.world.subs[s.subscriber].key)
                || s.track.distinct >= self.world.pubs[s.publisher].sent
        });
        let flows_done = self
            .world
            .pubs
            .iter()
            .all(|p| p.inflight.count == 0 || !alive(p.key));
        streams_done && flows_done
    }

    /// Whether publishing can go no further: every live publisher is waiting for deliveries
    /// (its window or its inflight slots are used up) and none has arrived for `--drain`.
    /// A broker that dropped what the windows wait for would otherwise hold the run until
    /// `--timeout`.
    fn delivery_stalled(&self) -> bool {
        // Offline, nothing ever arrives; `--timeout` bounds a broker that stops acknowledging.
        if self.opts.offline {
            return false;
        }
        let last_arrival = self.epoch + Duration::from_nanos(self.world.last_arrival_ns);
        if Instant::now() < last_arrival + self.opts.drain {
            return false;
        }
        (0..self.world.pubs.len()).all(|p| {
            self.world.finished(p)
                || self.world.waits_for_delivery(p)
                || self
                    .clients
                    .get(self.world.pubs[p].key)
                    .is_none_or(|c| c.state == State::Closed)
        })
    }

    /// Fan-in, fan-out, p2p, latency and slow.
    pub(super) fn run_traffic(&mut self) -> Result<Report, String> {
        for s in 0..self.world.subs.len() {
            let key = self
                .open(Role::Subscriber(s), s)
                .map_err(|e| format!("subscriber {s}: {e}"))?;
            self.world.subs[s].key = key;
        }
        self.wait_ready("subscribing")?;
        if self.opts.offline {
            self.leave_subscribers();
        }
        for p in 0..self.world.pubs.len() {
            let key = self
                .open(Role::Publisher(p), p)
                .map_err(|e| format!("publisher {p}: {e}"))?;
            self.world.pubs[p].key = key;
        }
        self.wait_ready("connecting publishers")?;

        self.start_broker_watch();
        let self_start = stats::sample("self").unwrap_or_default();
        let t0 = Instant::now();
        self.world.start_ns = self.now_ns();
        self.world.last_arrival_ns = self.world.start_ns;
        self.world.publishing = true;
        self.world.stalling = true;
        self.measuring = true;
        self.progress = (t0, 0);
        self.next_tick = t0 + Duration::from_secs(1);
        let stop = self
            .opts
            .duration
            .map_or(self.deadline, |d| (t0 + d).min(self.deadline));
        loop {
            let all_done = (0..self.world.pubs.len()).all(|p| {
                self.world.finished(p)
                    || self
                        .clients
                        .get(self.world.pubs[p].key)
                        .is_none_or(|c| c.state == State::Closed)
            });
            if Instant::now() >= stop || all_done {
                break;
            }
            if self.delivery_stalled() {
                self.note_error(format!(
                    "nothing delivered for {:.1} s while every publisher waited for delivery; \
                     publishing stopped early",
                    self.opts.drain.as_secs_f64()
                ));
                break;
            }
            self.turn(stop)?;
        }
        self.world.publishing = false;
        self.end_bounces();
        let publish_s = t0.elapsed().as_secs_f64();
        let stopped = Instant::now();
        // Drain while messages keep arriving: stop once complete, after `--drain` without an
        // arrival, or at the hard deadline.
        loop {
            let last_arrival = self.epoch + Duration::from_nanos(self.world.last_arrival_ns);
            let quiet_until = (last_arrival.max(stopped) + self.opts.drain).min(self.deadline);
            if self.drained() || Instant::now() >= quiet_until {
                break;
            }
            self.turn(quiet_until)?;
        }
        let self_end = stats::sample("self").unwrap_or_default();
        let broker = self.end_broker_watch();
        let elapsed_s = (self
            .world
            .last_arrival_ns
            .saturating_sub(self.world.start_ns)) as f64
            / 1e9;
        let mut report = self.traffic_report();
        report.elapsed_s = if elapsed_s > 0.0 {
            elapsed_s
        } else {
            publish_s
        };
        report.publish_s = publish_s;
        report.loadgen_cpu_s = self_end.cpu_s - self_start.cpu_s;
        report.broker = broker;
        self.disconnect_all();
        Ok(report)
    }

    /// Sends DISCONNECT for every subscriber and stops serving them: their sessions stay at
    /// the broker (they are persistent) and no stream counts. The sockets stay open until the
    /// run ends, so the DISCONNECT is read before any close.
    fn leave_subscribers(&mut self) {
        for sub in &mut self.world.subs {
            // Forgetting the key takes the subscriber out of the phases' waits and checks.
            let key = std::mem::replace(&mut sub.key, usize::MAX);
            let Some(client) = self.clients.get_mut(key) else {
                continue;
            };
            mqtt::disconnect(&mut client.conn.tx);
            let _ = client.conn.flush();
            let _ = self.poll.registry().deregister(&mut client.conn.stream);
            client.state = State::Closed;
        }
        for stream in &mut self.world.streams {
            stream.counted = false;
        }
    }

    /// Counts per publisher and in total.
    fn traffic_report(&mut self) -> Report {
        let w = &mut self.world;
        let mut per_publisher = vec![PubCounts::default(); w.pubs.len()];
        let mut invalid = w.foreign;
        for (p, counts) in per_publisher.iter_mut().enumerate() {
            counts.sent = w.pubs[p].sent;
        }
        for s in w.streams.iter().filter(|s| s.counted) {
            let c = &mut per_publisher[s.publisher];
            c.received += s.track.distinct;
            c.lost += w.pubs[s.publisher].sent.saturating_sub(s.track.distinct);
            c.duplicated += s.track.duplicated;
            c.out_of_order += s.track.out_of_order;
            invalid += s.track.invalid;
        }
        let stalled_subs = w.subs.iter().filter(|s| s.stalled).count();
        let latency = w.latencies.as_mut().and_then(|v| stats::percentiles(v));
        Report {
            scenario: self.opts.scenario.name(),
            qos: self.opts.qos,
            size: self.opts.size,
            publishers: w.pubs.len(),
            subscribers: w.subs.len(),
            sent: per_publisher.iter().map(|c| c.sent).sum(),
            delivered: per_publisher.iter().map(|c| c.received).sum(),
            lost: per_publisher.iter().map(|c| c.lost).sum(),
            duplicated: per_publisher.iter().map(|c| c.duplicated).sum(),
            out_of_order: per_publisher.iter().map(|c| c.out_of_order).sum(),
            invalid,
            stray_acks: w.stray_acks,
            client_failures: self.client_failures,
            bounces: self.bounces.leaves,
            latency,
            latency_samples: w.latencies.as_ref().map_or(0, Vec::len),
            stalled: (stalled_subs > 0).then_some((stalled_subs, w.stalled_arrivals)),
            first_error: self.first_error.clone(),
            per_publisher,
            ..Report::default()
        }
    }
}
