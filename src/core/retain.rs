//! Retained messages: at most one per topic name, matched against new subscriptions' filters.
//!
//! Stored in a map ordered by topic name, keyed by the message's own shared topic (so a
//! retained message costs its map slot and nothing more). Ordered storage is what lets a
//! SUBSCRIBE's retained set be walked incrementally, a bounded slice per loop turn, resumed
//! from the last topic visited (`scan` with a cursor) however the store changes in between.
//!
//! Matching a filter seeks rather than scans: an exact filter is one lookup; at a `+` level,
//! once one branch is done the scan jumps to the next branch; a literal level after it jumps
//! straight to the keys that have it. So `site/+/device/42/temp` over 100,000 topics costs a
//! few lookups per site, not a pass over every topic. (Keys sort as strings, and `/` sorts
//! below `0`, so "every key that starts with `p/`" ends just before `p0`.)
//!
//! The store is bounded by `max_retained` messages: at the bound, a retained PUBLISH to a new
//! topic is still delivered but not stored (counted in `dropped`). The broker's own `$SYS`
//! topics do not count, so they never take a client's place.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};
use std::rc::Rc;

use crate::core::message::Message;
use crate::core::topic::levels;

/// The retained message store.
#[derive(Debug)]
pub struct RetainedStore {
    by_topic: BTreeMap<Rc<str>, Rc<Message>>,
    /// How many of the stored topics are `$SYS` topics.
    sys_topics: usize,
    max_retained: usize,
    /// Retained messages not stored because the store was full.
    pub dropped: u64,
}

/// Where a bounded `scan` stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scan {
    /// Every matching message was visited.
    Done,
    /// The budget ran out or the visitor stopped: resume after this topic (`None`: from
    /// the start).
    More(Option<Rc<str>>),
}

/// What one stored topic means for the filter being matched.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// It matches.
    Match,
    /// It does not match; the next topic may.
    Next,
    /// Nothing before this key can match.
    SeekTo(String),
    /// Nothing after it can match.
    Done,
}

impl RetainedStore {
    /// An empty store holding at most `max_retained` messages (0 is unlimited).
    pub fn new(max_retained: usize) -> Self {
        RetainedStore {
            by_topic: BTreeMap::new(),
            sys_topics: 0,
            max_retained,
            dropped: 0,
        }
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }

    /// Every retained message, in topic order.
    pub fn iter(&self) -> impl Iterator<Item = &Rc<Message>> {
        self.by_topic.values()
    }

    /// Whether no message is retained.
    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }

    /// Stores `message` as the retained message of its topic, replacing any previous one; a
    /// zero-length payload clears the topic instead [MQTT-3.3.1-10] [MQTT-3.3.1-11].
    pub fn set(&mut self, message: Rc<Message>) {
        let sys = message.topic.starts_with("$SYS/");
        if message.payload.is_empty() {
            if self.by_topic.remove(&*message.topic).is_some() && sys {
                self.sys_topics -= 1;
            }
            return;
        }
        if let Some(slot) = self.by_topic.get_mut(&*message.topic) {
            *slot = message;
            return;
        }
        let full = self.by_topic.len() - self.sys_topics >= self.max_retained;
        if self.max_retained != 0 && full && !sys {
            self.dropped += 1;
            return;
        }
        self.sys_topics += usize::from(sys);
        self.by_topic.insert(Rc::clone(&message.topic), message);
    }

    /// Clears `topic`'s retained message; returns whether there was one.
    pub fn remove(&mut self, topic: &str) -> bool {
        let removed = self.by_topic.remove(topic).is_some();
        if removed && topic.starts_with("$SYS/") {
            self.sys_topics -= 1;
        }
        removed
    }

    /// Visits every retained message whose topic matches `filter`, in topic order, until
    /// `visit` breaks.
    pub fn for_each_match(&self, filter: &str, visit: impl FnMut(&Rc<Message>) -> ControlFlow<()>) {
        self.scan(filter, None, usize::MAX, visit);
    }

    /// Visits, in topic order, the retained messages matching `filter` whose topic sorts
    /// after `after`, looking at no more than `budget` stored topics. A visitor that breaks
    /// leaves the message it was given unvisited: the returned cursor resumes with it.
    pub fn scan(
        &self,
        filter: &str,
        after: Option<&str>,
        mut budget: usize,
        mut visit: impl FnMut(&Rc<Message>) -> ControlFlow<()>,
    ) -> Scan {
        let prefix = literal_prefix(filter);
        let mut last: Option<&Rc<str>> = None;
        let mut seek: Option<String> = None;
        let resume =
            |last: Option<&Rc<str>>| Scan::More(last.map(Rc::clone).or(after.map(Rc::from)));
        loop {
            let start = match (&seek, after) {
                (Some(target), _) => Bound::Included(target.as_str()),
                (None, Some(after)) if after >= prefix => Bound::Excluded(after),
                (None, _) => Bound::Included(prefix),
            };
            let mut next_seek = None;
            for (key, message) in self.by_topic.range::<str, _>((start, Bound::Unbounded)) {
                if !key.starts_with(prefix) {
                    return Scan::Done;
                }
                if budget == 0 {
                    return resume(last);
                }
                budget -= 1;
                match step(filter, key) {
                    Step::Match => {
                        if visit(message).is_break() {
                            return resume(last);
                        }
                    }
                    Step::Next => {}
                    Step::SeekTo(target) => next_seek = Some(target),
                    Step::Done => return Scan::Done,
                }
                last = Some(key);
                if next_seek.is_some() {
                    break;
                }
            }
            match next_seek {
                Some(target) => seek = Some(target),
                None => return Scan::Done,
            }
        }
    }
}

/// The part of `filter` before its first wildcard level: every matching topic starts with
/// it. For `a/#`, that is `a` (the filter matches `a` itself [MQTT-4.7.1-2]).
fn literal_prefix(filter: &str) -> &str {
    match filter.find(['+', '#']) {
        Some(i) if filter[i..].starts_with('#') && i > 0 => &filter[..i - 1],
        Some(i) => &filter[..i],
        None => filter,
    }
}

/// Matches `key` against `filter`, and where it does not match says how far the scan may
/// jump ahead. Keys between two keys sharing a prefix share it too, which is what makes
/// each jump safe.
fn step(filter: &str, key: &str) -> Step {
    // Where, in `key`, the value matched by the latest `+` ends: its branch is what a
    // mismatch further down moves past.
    let mut plus_end: Option<usize> = None;
    let mut rest = Some(key);
    for (depth, f) in levels(filter).enumerate() {
        // [MQTT-4.7.2-1] a leading wildcard does not match a `$` topic; they all sort
        // before `%`.
        if depth == 0 && (f == "#" || f == "+") && key.starts_with('$') {
            return Step::SeekTo("%".into());
        }
        if f == "#" {
            return Step::Match;
        }
        let Some(level_and_rest) = rest else {
            // The key is shorter than the filter; a longer key after it may match.
            return Step::Next;
        };
        let start = key.len() - level_and_rest.len();
        let (level, after) = match level_and_rest.find('/') {
            Some(i) => (&level_and_rest[..i], Some(&level_and_rest[i + 1..])),
            None => (level_and_rest, None),
        };
        if f == "+" {
            plus_end = Some(start + level.len());
        } else if level != f {
            let mut target = String::with_capacity(start + f.len() + 1);
            target.push_str(&key[..start]);
            target.push_str(f);
            if key < target.as_str() {
                return Step::SeekTo(target);
            }
            target.push('/');
            if key < target.as_str() {
                return Step::SeekTo(target);
            }
            // Past every key with this level: on to the next branch of the last `+`.
            return match plus_end {
                Some(end) => Step::SeekTo(format!("{}0", &key[..end])),
                None => Step::Done,
            };
        }
        rest = after;
    }
    match rest {
        None => Step::Match,
        // Longer than the filter: so is every key below this one.
        Some(below) => Step::SeekTo(format!("{}0", &key[..key.len() - below.len() - 1])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::QoS;

    fn msg(topic: &str, payload: &str) -> Rc<Message> {
        Message::shared(topic, payload.as_bytes(), QoS::AtMostOnce, true)
    }

    fn topics(store: &RetainedStore, filter: &str) -> Vec<String> {
        let mut out = Vec::new();
        store.for_each_match(filter, |m| {
            out.push(m.topic.to_string());
            ControlFlow::Continue(())
        });
        out
    }

    /// Every topic `filter` matches, by the plain level-by-level rule.
    fn brute(all: &[&str], filter: &str) -> Vec<String> {
        let mut out: Vec<String> = all
            .iter()
            .filter(|t| crate::core::topic::matches(filter, t))
            .map(|t| t.to_string())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn set_replace_clear() {
        let mut s = RetainedStore::new(0);
        s.set(msg("a/b", "1"));
        s.set(msg("a/b", "2"));
        assert_eq!(s.len(), 1);
        let mut payloads = Vec::new();
        s.for_each_match("a/b", |m| {
            payloads.push(m.payload.to_vec());
            ControlFlow::Continue(())
        });
        assert_eq!(payloads, [b"2".to_vec()]);
        s.set(msg("a/b", ""));
        assert!(s.is_empty());
    }

    #[test]
    fn wildcard_lookup_in_topic_order() {
        let mut s = RetainedStore::new(0);
        for t in ["a", "a/b", "a/c", "a/b/c", "x/b", "$SYS/up", "/lead"] {
            s.set(msg(t, "p"));
        }
        assert_eq!(topics(&s, "a/+"), ["a/b", "a/c"]);
        assert_eq!(topics(&s, "a/#"), ["a", "a/b", "a/b/c", "a/c"]);
        assert_eq!(topics(&s, "+/b"), ["a/b", "x/b"]);
        assert_eq!(topics(&s, "#").len(), 6, "all but the $ topic");
        assert_eq!(topics(&s, "$SYS/#"), ["$SYS/up"]);
        assert_eq!(topics(&s, "+/lead"), ["/lead"]);
        assert_eq!(topics(&s, "nope/#"), Vec::<String>::new());
    }

    #[test]
    fn seeking_agrees_with_plain_matching() {
        // Level names chosen so string order and level order disagree ('-' and '.' sort
        // below '/', '0' above it).
        let names = ["a", "a-", "a.b", "a0", "b", "", "ab", "$x"];
        let mut all = Vec::new();
        for x in names {
            all.push(x.to_string());
            for y in names {
                all.push(format!("{x}/{y}"));
                for z in ["a", "b-", ""] {
                    all.push(format!("{x}/{y}/{z}"));
                }
            }
        }
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut s = RetainedStore::new(0);
        for t in &all {
            s.set(msg(t, "p"));
        }
        let mut filters = vec!["#".to_string(), "+".into(), "+/+".into(), "+/#".into()];
        for x in names {
            for f in [
                x.to_string(),
                format!("{x}/#"),
                format!("{x}/+"),
                format!("+/{x}"),
                format!("+/{x}/#"),
                format!("+/+/{x}"),
                format!("{x}/+/a"),
                format!("+/{x}/b-"),
            ] {
                filters.push(f);
            }
        }
        for f in &filters {
            assert_eq!(topics(&s, f), brute(&all, f), "filter {f:?}");
        }
    }

    #[test]
    fn a_scan_resumes_where_it_stopped() {
        let mut s = RetainedStore::new(0);
        for i in 0..100 {
            s.set(msg(&format!("t/{i:03}"), "p"));
            s.set(msg(&format!("u/{i:03}"), "p"));
        }
        for budget in [1, 3, 7, 50] {
            let mut seen = Vec::new();
            let mut cursor: Option<Rc<str>> = None;
            loop {
                let scan = s.scan("+/none", cursor.as_deref(), budget, |m| {
                    seen.push(m.topic.to_string());
                    ControlFlow::Continue(())
                });
                match scan {
                    Scan::Done => break,
                    Scan::More(at) => cursor = at,
                }
            }
            assert!(
                seen.is_empty(),
                "resumed scans of a filter with no match end"
            );
        }
        let mut seen = Vec::new();
        let mut cursor: Option<Rc<str>> = None;
        let mut turns = 0;
        loop {
            turns += 1;
            // The visitor takes two per turn, then breaks.
            let mut taken = 0;
            let scan = s.scan("t/#", cursor.as_deref(), 1000, |m| {
                if taken == 2 {
                    return ControlFlow::Break(());
                }
                taken += 1;
                seen.push(m.topic.to_string());
                ControlFlow::Continue(())
            });
            match scan {
                Scan::Done => break,
                Scan::More(at) => cursor = at,
            }
        }
        let expected: Vec<String> = (0..100).map(|i| format!("t/{i:03}")).collect();
        assert_eq!(seen, expected, "each message once, in order");
        assert_eq!(turns, 50, "the last turn takes two and finds the end");
    }

    #[test]
    fn a_plus_filter_seeks_past_branches() {
        let mut s = RetainedStore::new(0);
        for site in 0..50 {
            for device in 0..200 {
                s.set(msg(&format!("site/{site}/device/{device}/temp"), "p"));
            }
        }
        let mut visited_budget = 50 * 8;
        let scan = s.scan("site/+/device/42/temp", None, visited_budget, |_| {
            ControlFlow::Continue(())
        });
        assert_eq!(scan, Scan::Done, "a few keys per site, not 200");
        visited_budget = 10;
        assert!(matches!(
            s.scan("site/+/device/42/temp", None, visited_budget, |_| {
                ControlFlow::Continue(())
            }),
            Scan::More(_)
        ));
        assert_eq!(topics(&s, "site/+/device/42/temp").len(), 50);
    }

    #[test]
    fn bounded() {
        let mut s = RetainedStore::new(2);
        s.set(msg("a", "1"));
        s.set(msg("b", "1"));
        s.set(msg("c", "1"));
        assert_eq!(s.len(), 2);
        assert_eq!(s.dropped, 1);
        s.set(msg("a", "2"));
        assert_eq!(s.dropped, 1, "replacing an existing topic is not refused");
        s.set(msg("$SYS/broker/uptime", "1"));
        assert_eq!(s.len(), 3, "the broker's own topics do not count");
        s.set(msg("$SYS/broker/uptime", ""));
        s.set(msg("a", ""));
        s.set(msg("d", "1"));
        assert_eq!(s.len(), 2);
        assert_eq!(s.dropped, 1);
    }
}
