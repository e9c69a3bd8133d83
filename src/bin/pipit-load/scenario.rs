//! The traffic patterns: which publishers publish on which topics, which subscribers subscribe
//! to which filters, and which (publisher, subscriber) streams each subscriber must receive.
//!
//! Topics live under `pipit-load/<run id>/` so concurrent runs never see each other's traffic.

/// One traffic pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// P publishers, one topic each, to C subscribers on a `+` wildcard filter.
    Fanin,
    /// P publishers on one topic to C subscribers.
    Fanout,
    /// P pairs, each on its own topic.
    P2p,
    /// Fan-in at a fixed rate, measuring latency.
    Latency,
    /// Idle connections only.
    Conns,
    /// Fan-out where one subscriber stops reading.
    Slow,
    /// Persistent subscribers reconnect and take their queued messages.
    Resume,
    /// Connections opened and closed at once (a third of them reset) at a rate.
    Storm,
}

impl Scenario {
    /// Parses a scenario name as given on the command line.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Some(match name {
            "fanin" => Scenario::Fanin,
            "fanout" => Scenario::Fanout,
            "p2p" => Scenario::P2p,
            "latency" => Scenario::Latency,
            "conns" => Scenario::Conns,
            "slow" => Scenario::Slow,
            "resume" => Scenario::Resume,
            "storm" => Scenario::Storm,
            _ => return None,
        })
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanin => "fanin",
            Scenario::Fanout => "fanout",
            Scenario::P2p => "p2p",
            Scenario::Latency => "latency",
            Scenario::Conns => "conns",
            Scenario::Slow => "slow",
            Scenario::Resume => "resume",
            Scenario::Storm => "storm",
        }
    }

    /// Default (publishers, subscribers).
    pub fn default_clients(self) -> (usize, usize) {
        match self {
            Scenario::Fanin => (4, 1),
            Scenario::Fanout => (1, 10),
            Scenario::P2p => (10, 10),
            Scenario::Latency => (1, 1),
            Scenario::Conns | Scenario::Storm => (0, 0),
            Scenario::Slow => (1, 4),
            Scenario::Resume => (0, 1),
        }
    }
}

/// A subscriber's part in the plan.
#[derive(Debug)]
pub struct SubPlan {
    /// The one topic filter it subscribes to.
    pub topic_filter: String,
    /// Publishers whose every message it must receive.
    pub publishers: Vec<usize>,
    /// Stops reading once publishing starts (the `slow` scenario's stalled subscriber).
    pub stalled: bool,
}

/// Who publishes where and who receives what.
#[derive(Debug)]
pub struct Plan {
    /// Topic of each publisher, indexed by publisher id.
    pub publisher_topics: Vec<String>,
    /// Every subscriber.
    pub subscribers: Vec<SubPlan>,
}

impl Plan {
    /// Builds the plan for `scenario` with `publishers` and `subscribers` under `prefix`.
    pub fn build(scenario: Scenario, publishers: usize, subscribers: usize, prefix: &str) -> Plan {
        let all: Vec<usize> = (0..publishers).collect();
        let shared = |topic_filter: String, stalled_first: bool| SubPlan {
            topic_filter,
            publishers: all.clone(),
            stalled: stalled_first,
        };
        match scenario {
            Scenario::Fanin | Scenario::Latency => Plan {
                publisher_topics: (0..publishers)
                    .map(|p| format!("{prefix}/in/{p}"))
                    .collect(),
                subscribers: (0..subscribers)
                    .map(|_| shared(format!("{prefix}/in/+"), false))
                    .collect(),
            },
            Scenario::Fanout | Scenario::Slow => Plan {
                publisher_topics: vec![format!("{prefix}/out"); publishers],
                subscribers: (0..subscribers)
                    .map(|s| {
                        shared(
                            format!("{prefix}/out"),
                            scenario == Scenario::Slow && s == 0,
                        )
                    })
                    .collect(),
            },
            Scenario::P2p => Plan {
                publisher_topics: (0..publishers)
                    .map(|p| format!("{prefix}/p2p/{p}"))
                    .collect(),
                subscribers: (0..publishers)
                    .map(|p| SubPlan {
                        topic_filter: format!("{prefix}/p2p/{p}"),
                        publishers: vec![p],
                        stalled: false,
                    })
                    .collect(),
            },
            // What arrives was published in an earlier run; the filter only completes the
            // subscriber's handshake.
            Scenario::Resume => Plan {
                publisher_topics: Vec::new(),
                subscribers: (0..subscribers)
                    .map(|_| SubPlan {
                        topic_filter: format!("{prefix}/resume"),
                        publishers: Vec::new(),
                        stalled: false,
                    })
                    .collect(),
            },
            Scenario::Conns | Scenario::Storm => Plan {
                publisher_topics: Vec::new(),
                subscribers: Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let fanin = Plan::build(Scenario::Fanin, 3, 1, "x");
        assert_eq!(fanin.publisher_topics, ["x/in/0", "x/in/1", "x/in/2"]);
        assert_eq!(fanin.subscribers[0].topic_filter, "x/in/+");
        assert_eq!(fanin.subscribers[0].publishers, [0, 1, 2]);
        let p2p = Plan::build(Scenario::P2p, 2, 2, "x");
        assert_eq!(p2p.subscribers[1].publishers, [1]);
        let slow = Plan::build(Scenario::Slow, 1, 3, "x");
        let stalled: Vec<bool> = slow.subscribers.iter().map(|s| s.stalled).collect();
        assert_eq!(stalled, [true, false, false]);
        let resume = Plan::build(Scenario::Resume, 0, 2, "x");
        assert!(resume.publisher_topics.is_empty());
        assert_eq!(resume.subscribers.len(), 2);
        for name in [
            "fanin", "fanout", "p2p", "latency", "conns", "slow", "resume", "storm",
        ] {
            assert_eq!(Scenario::from_name(name).map(Scenario::name), Some(name));
        }
    }
}
