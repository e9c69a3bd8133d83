//! The `conns` scenario: open idle connections at `--conn-rate`, hold them for `--hold`,
//! and sample the broker while they are all open.

use std::time::{Duration, Instant};

use log::debug;

use super::{CONNECT_TIMEOUT, CONNECTS_PER_TURN, Engine};
use crate::client::{Fail, Role, State};
use crate::report::{ConnsResult, Report};
use crate::stats;

impl Engine<'_> {
    /// Idle connections at `--conn-rate`, held for `--hold`.
    pub(super) fn run_conns(&mut self) -> Result<Report, String> {
        let target = self.opts.conns;
        self.start_broker_watch();
        let self_start = stats::sample("self").unwrap_or_default();
        let t0 = Instant::now();
        self.measuring = true;
        self.progress = (t0, 0);
        self.next_tick = t0 + Duration::from_secs(1);
        let rate = self.opts.conn_rate;
        let connect_s = if rate > 0.0 {
            target as f64 / rate
        } else {
            0.0
        };
        let connect_until =
            (t0 + Duration::from_secs_f64(connect_s) + CONNECT_TIMEOUT * 2).min(self.deadline);
        loop {
            let now = Instant::now();
            let due = if rate > 0.0 {
                (((now - t0).as_secs_f64() * rate) as usize + 1).min(target)
            } else {
                target
            };
            for _ in self.conns.attempted..due.min(self.conns.attempted + CONNECTS_PER_TURN) {
                let index = self.conns.attempted;
                self.conns.attempted += 1;
                if let Err(why) = self.open(Role::Idle, index) {
                    self.conns.failed += 1;
                    debug!("connection {index}: {why}");
                    self.note_error(format!("connect: {why}"));
                }
            }
            let before = self.world.idle_ready;
            let resolved = self.world.idle_ready + self.conns.failed;
            if (self.conns.attempted == target && resolved >= target as u64) || now >= connect_until
            {
                break;
            }
            let next_due = if rate > 0.0 && self.conns.attempted < target {
                t0 + Duration::from_secs_f64(self.conns.attempted as f64 / rate)
            } else {
                connect_until
            };
            self.turn(next_due.min(connect_until))?;
            if self.world.idle_ready > before {
                self.conns.last_ok = Some(Instant::now());
            }
        }
        let pending: Vec<usize> = (self.clients.iter())
            .filter(|(_, c)| c.state != State::Ready)
            .map(|(key, _)| key)
            .collect();
        for key in pending {
            self.fail(key, Fail::Timeout);
        }
        let held_from = Instant::now();
        let hold_until = (held_from + self.opts.hold).min(self.deadline);
        while Instant::now() < hold_until {
            self.turn(hold_until)?;
        }
        let hold_s = held_from.elapsed().as_secs_f64();
        let self_end = stats::sample("self").unwrap_or_default();
        let broker = self.end_broker_watch();
        let ok = self.world.idle_ready;
        let connect_elapsed = self.conns.last_ok.map_or(0.0, |t| (t - t0).as_secs_f64());
        self.disconnect_all();
        Ok(Report {
            scenario: "conns",
            qos: self.opts.qos,
            size: self.opts.size,
            elapsed_s: connect_elapsed,
            loadgen_cpu_s: self_end.cpu_s - self_start.cpu_s,
            broker,
            conns: Some(ConnsResult {
                ok,
                failed: self.conns.failed,
                dropped: self.conns.dropped,
                rate_per_s: if connect_elapsed > 0.0 {
                    ok as f64 / connect_elapsed
                } else {
                    0.0
                },
                hold_s,
                resets: 0,
            }),
            client_failures: self.conns.failed + self.conns.dropped,
            first_error: self.first_error.clone(),
            ..Report::default()
        })
    }
}
