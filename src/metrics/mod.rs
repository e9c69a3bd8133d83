//! Broker statistics, from one set of counters (`State::stats`, one integer add where each
//! event happens) and gauges worked out from `State` when reported (`figures`):
//!
//! - `sys`: the `$SYS/broker/...` topics Mosquitto 2.0 publishes, same names and formats,
//!   and pipit's own, retained, every `sys_interval` seconds, each only when it changed;
//! - `load`: the 1, 5 and 15-minute load averages of `$SYS/broker/load/...`;
//! - `prometheus` and `http`: the same figures in the Prometheus text format, served by
//!   `metrics_listener` on the broker's loop (the `metrics` feature; `$SYS` is always built).

mod figures;
mod heap;
// Without the `metrics` feature, `http_off.rs`: the same names, no endpoint.
#[cfg_attr(not(feature = "metrics"), path = "http_off.rs")]
pub mod http;
mod load;
mod prometheus;
mod sys;

use std::time::Instant;

use figures::Taker;
use load::LoadAverages;
use sys::SysTree;

use crate::core::state::State;

/// What the statistics remember between reports: the `$SYS` schedule and last values, the
/// load averages and the maxima.
#[derive(Debug)]
pub struct Metrics {
    taker: Taker,
    load: LoadAverages,
    sys: SysTree,
}

impl Metrics {
    /// Statistics for a broker started at `now`; the first `$SYS` update is due at once.
    pub fn new(now: Instant) -> Metrics {
        Metrics {
            taker: Taker::new(now),
            load: LoadAverages::default(),
            sys: SysTree::default(),
        }
    }

    /// Every `sys_interval` seconds: moves the load averages on and publishes the `$SYS`
    /// topics whose values changed.
    pub fn tick(&mut self, state: &mut State) {
        if !self.sys.due(state.now, state.config.sys_interval) {
            return;
        }
        self.load.update(&state.stats, state.now);
        let figures = self.taker.take(state);
        let rows = sys::rows(&figures, &self.load);
        self.sys.publish(state, rows);
    }

    /// The Prometheus exposition of `state` now, and its content type. The load averages
    /// are those of the last `$SYS` update (absent with `sys_interval 0`).
    pub fn prometheus(&mut self, state: &State) -> (String, &'static str) {
        let figures = self.taker.take(state);
        let load = (state.config.sys_interval > 0).then_some(&self.load);
        (prometheus::render(&figures, load), prometheus::CONTENT_TYPE)
    }
}
