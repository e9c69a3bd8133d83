//! `memory_limit`: one budget for the broker's whole heap, as the counting allocator
//! (`crate::heap`) measures it, read once per loop turn. As use climbs through the budget the
//! broker sheds load in a fixed order, each step adding to the ones before:
//!
//! | stage | from  | what is shed                                                  |
//! | ----- | ----- | ------------------------------------------------------------- |
//! | 1     | 85 %  | new connections (CONNACK v5 0x97, v3 0x03)                    |
//! | 2     | 90 %  | QoS 0 to slow subscribers (last write not all taken), offline |
//! | 3     | 95 %  | new QoS 1/2 PUBLISHes (v5 PUBACK/PUBREC 0x97, v3 no ack)      |
//! | 4     | 100 % | new retained messages (delivered, not stored)                 |
//!
//! A stage ends only once use is 10 points of the budget below where it began (stage 4, at
//! 100 %, ends below 90 %), so the broker does not flap at a threshold. Nothing is ever
//! refused an allocation: Rust aborts when one fails, so the bound is kept by refusing work
//! at the door, and a single turn may overshoot it by what it was already doing.

use log::{debug, info, warn};

/// What the broker stops doing under memory pressure, in the order it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// CONNECTs are refused.
    Connections,
    /// QoS 0 to a subscriber with output already waiting, or to an offline session, is
    /// dropped.
    Qos0,
    /// QoS 1/2 PUBLISHes are refused (not acknowledged as received).
    Publishes,
    /// Retained messages are delivered but not stored.
    Retained,
}

impl Shed {
    /// Every stage, in the order they begin.
    pub const ALL: [Shed; 4] = [
        Shed::Connections,
        Shed::Qos0,
        Shed::Publishes,
        Shed::Retained,
    ];

    /// The stage's name in `$SYS/broker/memory/shed/<name>`, the metrics and the log.
    pub fn name(self) -> &'static str {
        match self {
            Shed::Connections => "connections",
            Shed::Qos0 => "qos0",
            Shed::Publishes => "publishes",
            Shed::Retained => "retained",
        }
    }

    /// The share of the budget in use, in percent, at which the stage begins.
    fn begins_at(self) -> u64 {
        match self {
            Shed::Connections => 85,
            Shed::Qos0 => 90,
            Shed::Publishes => 95,
            Shed::Retained => 100,
        }
    }
}

/// Percentage points of the budget use must fall below a stage's start for it to end.
const HYSTERESIS: u64 = 10;

/// The budget, the use last measured, the stages in force and what each has shed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Budget {
    limit: Option<u64>,
    used: u64,
    /// How many of `Shed::ALL` are in force, from the first.
    stages: usize,
    shed: [u64; Shed::ALL.len()],
}

impl Budget {
    /// A budget of `limit` heap bytes; `None` sheds nothing.
    pub fn new(limit: Option<u64>) -> Budget {
        Budget {
            limit,
            ..Budget::default()
        }
    }

    /// Takes `used` heap bytes (`None`: not measured) as the use now, starting or ending
    /// stages as it crosses their thresholds.
    pub fn observe(&mut self, used: Option<u64>) {
        let (Some(limit), Some(used)) = (self.limit, used) else {
            return;
        };
        self.used = used;
        let percent = (u128::from(used) * 100 / u128::from(limit.max(1))) as u64;
        let before = self.stages;
        while let Some(next) = Shed::ALL.get(self.stages)
            && percent >= next.begins_at()
        {
            self.stages += 1;
        }
        while self.stages > 0 && percent + HYSTERESIS < Shed::ALL[self.stages - 1].begins_at() {
            self.stages -= 1;
        }
        if self.stages > before {
            let started: Vec<&str> = Shed::ALL[before..self.stages]
                .iter()
                .map(|s| s.name())
                .collect();
            warn!(
                "memory_limit: {used} of {limit} bytes in use ({percent}%): shedding {}",
                started.join(", ")
            );
        } else if self.stages < before {
            let ended: Vec<&str> = Shed::ALL[self.stages..before]
                .iter()
                .map(|s| s.name())
                .collect();
            info!(
                "memory_limit: {used} of {limit} bytes in use ({percent}%): no longer shedding {}",
                ended.join(", ")
            );
        }
    }

    /// Whether `what` is being shed now.
    pub fn sheds(&self, what: Shed) -> bool {
        self.stages > what as usize
    }

    /// Counts one thing shed by `what` on behalf of `client_id`, logged at debug level.
    pub fn count(&mut self, what: Shed, client_id: &str) {
        self.shed[what as usize] += 1;
        debug!(
            "client {client_id}: {} shed under memory_limit",
            what.name()
        );
    }

    /// How many things `what` has shed.
    pub fn shed(&self, what: Shed) -> u64 {
        self.shed[what as usize]
    }

    /// The budget in bytes, if one is set.
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// How many stages are in force (0: none; 4: all).
    pub fn stages(&self) -> usize {
        self.stages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_force(b: &Budget) -> Vec<&'static str> {
        Shed::ALL
            .iter()
            .filter(|s| b.sheds(**s))
            .map(|s| s.name())
            .collect()
    }

    #[test]
    fn stages_begin_in_order_and_end_with_hysteresis() {
        let mut b = Budget::new(Some(1000));
        b.observe(Some(849));
        assert!(in_force(&b).is_empty());
        b.observe(Some(850));
        assert_eq!(in_force(&b), ["connections"]);
        b.observe(Some(960));
        assert_eq!(in_force(&b), ["connections", "qos0", "publishes"]);
        b.observe(Some(1200));
        assert_eq!(b.stages(), 4);
        // Stage 4 began at 100 %: it holds down to 90 %, and so do the ones before it.
        b.observe(Some(900));
        assert_eq!(b.stages(), 4);
        b.observe(Some(899));
        assert_eq!(in_force(&b), ["connections", "qos0", "publishes"]);
        b.observe(Some(849));
        assert_eq!(in_force(&b), ["connections", "qos0"]);
        b.observe(Some(790));
        assert_eq!(in_force(&b), ["connections"]);
        b.observe(Some(749));
        assert!(in_force(&b).is_empty());
    }

    #[test]
    fn without_a_limit_or_a_measurement_nothing_is_shed() {
        let mut b = Budget::new(None);
        b.observe(Some(u64::MAX));
        assert_eq!(b.stages(), 0);
        let mut b = Budget::new(Some(10));
        b.observe(None);
        assert_eq!(b.stages(), 0);
    }

    #[test]
    fn what_is_shed_is_counted_per_stage() {
        let mut b = Budget::new(Some(10));
        b.count(Shed::Qos0, "c");
        b.count(Shed::Qos0, "c");
        b.count(Shed::Retained, "c");
        assert_eq!(
            Shed::ALL.map(|s| b.shed(s)),
            [0, 2, 0, 1],
            "in the order of Shed::ALL"
        );
    }
}
