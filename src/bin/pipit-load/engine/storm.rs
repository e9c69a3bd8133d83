//! The `storm` scenario: new connections at `--conn-rate` for `--duration`, each closed as
//! soon as its CONNACK arrives: every third with a reset (SO_LINGER 0: RST, no DISCONNECT),
//! the others with DISCONNECT and a close. The broker is left with nothing to keep, so its
//! memory and descriptors afterwards show what a storm leaked.

use std::time::{Duration, Instant};

use log::debug;

use super::{CONNECT_TIMEOUT, CONNECTS_PER_TURN, Engine};
use crate::client::{Fail, Role, State};
use crate::mqtt;
use crate::report::{ConnsResult, Report};
use crate::stats;

impl Engine<'_> {
    /// Opens connections at `--conn-rate` for `--duration`, closing each at its CONNACK.
    pub(super) fn run_storm(&mut self) -> Result<Report, String> {
        self.start_broker_watch();
        let self_start = stats::sample("self").unwrap_or_default();
        let t0 = Instant::now();
        self.measuring = true;
        self.progress = (t0, 0);
        self.next_tick = t0 + Duration::from_secs(1);
        let rate = self.opts.conn_rate.max(1.0);
        let duration = self.opts.duration.unwrap_or_default();
        let target = (duration.as_secs_f64() * rate) as usize;
        let stop = (t0 + duration + CONNECT_TIMEOUT).min(self.deadline);
        let mut resets = 0u64;
        let mut closed = 0u64;
        loop {
            let now = Instant::now();
            let due = (((now - t0).as_secs_f64() * rate) as usize + 1).min(target);
            for _ in self.conns.attempted..due.min(self.conns.attempted + CONNECTS_PER_TURN) {
                let index = self.conns.attempted;
                self.conns.attempted += 1;
                if let Err(why) = self.open(Role::Idle, index) {
                    self.conns.failed += 1;
                    debug!("connection {index}: {why}");
                    self.note_error(format!("connect: {why}"));
                }
            }
            let ready: Vec<usize> = (self.clients.iter())
                .filter(|(_, c)| c.state == State::Ready)
                .map(|(key, _)| key)
                .collect();
            for key in ready {
                let reset = closed.is_multiple_of(3);
                self.close_stormed(key, reset);
                closed += 1;
                resets += u64::from(reset);
            }
            let done = self.conns.attempted == target && self.clients.is_empty();
            if done || now >= stop {
                break;
            }
            let next_due = if self.conns.attempted < target {
                t0 + Duration::from_secs_f64(self.conns.attempted as f64 / rate)
            } else {
                stop
            };
            self.turn(next_due.min(stop))?;
        }
        let pending: Vec<usize> = self.clients.iter().map(|(key, _)| key).collect();
        for key in pending {
            self.fail(key, Fail::Timeout);
        }
        let elapsed_s = t0.elapsed().as_secs_f64();
        let self_end = stats::sample("self").unwrap_or_default();
        let broker = self.end_broker_watch();
        let ok = self.world.idle_ready;
        Ok(Report {
            scenario: "storm",
            elapsed_s,
            loadgen_cpu_s: self_end.cpu_s - self_start.cpu_s,
            broker,
            conns: Some(ConnsResult {
                ok,
                failed: self.conns.failed,
                dropped: self.conns.dropped,
                rate_per_s: ok as f64 / elapsed_s.max(1e-9),
                hold_s: 0.0,
                resets,
            }),
            client_failures: self.conns.failed + self.conns.dropped,
            first_error: self.first_error.clone(),
            ..Report::default()
        })
    }

    /// Closes a connected storm client: RST if `reset`, else DISCONNECT then close.
    fn close_stormed(&mut self, key: usize, reset: bool) {
        let Some(mut client) = self.clients.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut client.conn.stream);
        if reset {
            // SO_LINGER 0: close() sends RST instead of FIN.
            let _ = socket2::SockRef::from(&client.conn.stream).set_linger(Some(Duration::ZERO));
        } else {
            mqtt::disconnect(&mut client.conn.tx);
            let _ = client.conn.flush();
        }
    }
}
