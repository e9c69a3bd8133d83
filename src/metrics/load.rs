//! Load averages, as Mosquitto computes them for `$SYS/broker/load/...`: for each counted
//! rate, exponential moving averages of the per-minute rate over 1, 5 and 15 minutes,
//! updated every `sys_interval`. With `dt` the seconds since the last update and `r` the
//! per-minute rate over them, each average `a` of window `w` minutes becomes
//! `r + exp(-dt / 60w) * (a - r)`. The first update only takes the counters as the baseline
//! (the averages start at 0, as Mosquitto's first report says `0.00`).

use std::time::Instant;

use crate::core::state::Stats;

/// The rates averaged, by their `$SYS/broker/load/` names.
pub const RATES: [&str; 9] = [
    "messages/received",
    "messages/sent",
    "publish/dropped",
    "publish/received",
    "publish/sent",
    "bytes/received",
    "bytes/sent",
    "sockets",
    "connections",
];

/// The windows, in minutes, each with its `$SYS` name.
pub const WINDOWS: [(u32, &str); 3] = [(1, "1min"), (5, "5min"), (15, "15min")];

/// The counters behind each of `RATES`, in that order.
fn counters(stats: &Stats) -> [u64; RATES.len()] {
    [
        stats.packets_received,
        stats.packets_sent,
        stats.dropped.total(),
        stats.publish_received,
        stats.publish_sent,
        stats.bytes_received,
        stats.bytes_sent,
        stats.connections_accepted,
        stats.connects,
    ]
}

/// The averages, and the counters of the last update.
#[derive(Debug, Default)]
pub struct LoadAverages {
    last: Option<([u64; RATES.len()], Instant)>,
    averages: [[f64; WINDOWS.len()]; RATES.len()],
}

impl LoadAverages {
    /// Moves every average on to `now`, from what the counters in `stats` did since the last
    /// update.
    pub fn update(&mut self, stats: &Stats, now: Instant) {
        let current = counters(stats);
        if let Some((previous, at)) = self.last {
            let secs = now.saturating_duration_since(at).as_secs_f64();
            if secs <= 0.0 {
                return;
            }
            for (rate, averages) in self.averages.iter_mut().enumerate() {
                let per_minute = current[rate].saturating_sub(previous[rate]) as f64 * 60.0 / secs;
                for (average, (minutes, _)) in averages.iter_mut().zip(WINDOWS) {
                    let decay = (-secs / (60.0 * f64::from(minutes))).exp();
                    *average = per_minute + decay * (*average - per_minute);
                }
            }
        }
        self.last = Some((current, now));
    }

    /// Every average: (index into `RATES`, index into `WINDOWS`, per-minute value).
    pub fn iter(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        self.averages
            .iter()
            .enumerate()
            .flat_map(|(rate, averages)| {
                averages
                    .iter()
                    .enumerate()
                    .map(move |(window, &value)| (rate, window, value))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_steady_rate_converges_and_windows_follow_in_order() {
        let start = Instant::now();
        let mut load = LoadAverages::default();
        let mut stats = Stats::default();
        load.update(&stats, start);
        assert!(load.iter().all(|(_, _, v)| v == 0.0));
        // 10 PUBLISH packets a second for ten minutes, updated every 10 s.
        for step in 1..=60 {
            stats.publish_received += 100;
            load.update(&stats, start + Duration::from_secs(10 * step));
        }
        let value = |rate: &str, window: usize| {
            let r = RATES.iter().position(|&n| n == rate).unwrap();
            load.iter()
                .find(|&(i, w, _)| i == r && w == window)
                .unwrap()
                .2
        };
        // 600 a minute: the 1-minute average is there, the longer ones behind it.
        assert!((value("publish/received", 0) - 600.0).abs() < 0.5);
        let five = value("publish/received", 1);
        let fifteen = value("publish/received", 2);
        assert!(
            five < 600.0 && fifteen < five && fifteen > 0.0,
            "{five} {fifteen}"
        );
        // Mosquitto's formula, worked by hand for the 5-minute window after ten minutes.
        let expected = 600.0 * (1.0 - (-600.0f64 / 300.0).exp());
        assert!((five - expected).abs() < 0.01, "{five} vs {expected}");
        assert_eq!(value("bytes/received", 0), 0.0);
    }
}
