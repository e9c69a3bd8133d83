//! The subscription tree: which sessions want a topic.
//!
//! Nodes live in one arena (`Vec<Node>` plus a free list) and are addressed by index. Each
//! node has a map of exact child levels and dedicated `+` and `#` child slots, so matching a
//! topic name walks at most three branches per level and never scans unrelated filters.
//! Subscribers are stored by `SessionId`, never by connection, so offline persistent sessions
//! still collect messages. Nodes left with no subscribers and no children are freed at once,
//! so the tree's size follows the live subscriptions, not every filter ever seen.
//!
//! Nothing here recurses per level: matching keeps its pending `+` branches on an explicit
//! stack (reused between calls, so a match allocates nothing once warm), and subscribing,
//! unsubscribing and pruning are loops. A topic of tens of thousands of levels costs time in
//! proportion to its levels and the nodes it reaches, and no call stack.

use crate::core::hash::LevelMap;

use crate::core::topic::{is_dollar, levels};
use crate::ids::SessionId;
use crate::wire::SubscriptionOptions;

/// One session's subscription at a node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Subscriber {
    /// The subscribing session.
    pub session: SessionId,
    /// QoS and the MQTT 5 options it subscribed with.
    pub options: SubscriptionOptions,
    /// MQTT 5 subscription identifier; 0 when none was given.
    pub subscription_id: u32,
}

/// A `$share/{group}/{filter}` group at a node: one member gets each message, in turn.
#[derive(Debug)]
struct SharedGroup {
    name: Box<str>,
    members: Vec<Subscriber>,
    /// Index of the member that gets the next message.
    next: usize,
}

/// Refers to a shared group that matched a topic, for `pick_shared`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupRef {
    node: u32,
    group: u32,
}

#[derive(Debug, Default)]
struct Node {
    children: LevelMap<u32>,
    plus: Option<u32>,
    hash: Option<u32>,
    subscribers: Vec<Subscriber>,
    shared: Vec<SharedGroup>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.hash.is_none()
            && self.subscribers.is_empty()
            && self.shared.is_empty()
    }
}

/// Every subscription of every session, indexed by filter level.
#[derive(Debug)]
pub struct SubscriptionTree {
    nodes: Vec<Node>,
    free: Vec<u32>,
    count: usize,
    /// Of `count`, the members of shared groups.
    shared_count: usize,
    /// Bumped by every subscribe and by every unsubscribe that removed something, so a
    /// remembered match result can tell whether it still holds.
    generation: u64,
    /// `collect`'s stack of branches still to walk, kept between calls for its capacity.
    pending: Vec<Branch>,
}

/// A branch of a match still to walk: a node and where the topic's remaining levels start
/// (`None` once every level is consumed).
type Branch = (u32, Option<usize>);

const ROOT: u32 = 0;

impl Default for SubscriptionTree {
    fn default() -> Self {
        SubscriptionTree {
            nodes: vec![Node::default()],
            free: Vec::new(),
            count: 0,
            shared_count: 0,
            generation: 0,
            pending: Vec::new(),
        }
    }
}

impl SubscriptionTree {
    /// Number of subscriptions (shared members included).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Number of shared subscriptions (members of `$share` groups).
    pub fn shared_len(&self) -> usize {
        self.shared_count
    }

    /// Whether the tree holds no subscription.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Changes whenever a subscription is added, replaced or removed: `collect` gives the
    /// same result for the same topic while this stays the same.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Adds or replaces `sub.session`'s subscription to `filter` (in `share_group`, if any).
    /// Returns true if it replaced an existing subscription [MQTT-3.8.4-3].
    pub fn subscribe(&mut self, filter: &str, share_group: Option<&str>, sub: Subscriber) -> bool {
        self.generation += 1;
        let mut node = ROOT;
        for level in levels(filter) {
            node = self.child_or_insert(node, level);
        }
        let n = &mut self.nodes[node as usize];
        let members = match share_group {
            None => &mut n.subscribers,
            Some(name) => match n.shared.iter().position(|g| &*g.name == name) {
                Some(i) => &mut n.shared[i].members,
                None => {
                    n.shared.push(SharedGroup {
                        name: name.into(),
                        members: Vec::new(),
                        next: 0,
                    });
                    &mut n.shared.last_mut().expect("just pushed").members
                }
            },
        };
        match members.iter_mut().find(|s| s.session == sub.session) {
            Some(existing) => {
                *existing = sub;
                true
            }
            None => {
                members.push(sub);
                self.count += 1;
                self.shared_count += usize::from(share_group.is_some());
                false
            }
        }
    }

    /// Removes `session`'s subscription to `filter`; returns whether there was one.
    pub fn unsubscribe(
        &mut self,
        filter: &str,
        share_group: Option<&str>,
        session: SessionId,
    ) -> bool {
        let mut path = vec![ROOT];
        let mut node = ROOT;
        for level in levels(filter) {
            match self.child(node, level) {
                Some(next) => node = next,
                None => return false,
            }
            path.push(node);
        }
        let n = &mut self.nodes[node as usize];
        let removed = match share_group {
            None => remove_member(&mut n.subscribers, session),
            Some(name) => match n.shared.iter().position(|g| &*g.name == name) {
                Some(i) => {
                    let removed = remove_member(&mut n.shared[i].members, session);
                    if n.shared[i].members.is_empty() {
                        n.shared.swap_remove(i);
                    }
                    removed
                }
                None => false,
            },
        };
        if removed {
            self.generation += 1;
            self.count -= 1;
            self.shared_count -= usize::from(share_group.is_some());
            self.prune(filter, &path);
        }
        removed
    }

    /// Appends every plain subscription matching topic `name` to `subs` and every matching
    /// shared group to `groups`. A session may appear several times (overlapping filters);
    /// the caller merges them. Each node is reached at most once (the tree is a trie), so the
    /// work is bounded by the topic's levels and the tree's nodes. The order is a depth-first
    /// walk's: at each level `#`, then the whole `+` branch, then the exact one.
    pub fn collect(&mut self, name: &str, subs: &mut Vec<Subscriber>, groups: &mut Vec<GroupRef>) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.push((ROOT, Some(0)));
        // [MQTT-4.7.2-1] A leading wildcard does not match a topic starting with `$`.
        let mut skip_wildcards = is_dollar(name);
        while let Some((mut node, mut at)) = pending.pop() {
            // Follow one branch down, leaving the exact alternative of each `+` for later.
            loop {
                let n = &self.nodes[node as usize];
                let Some(start) = at else {
                    self.take(node, subs, groups);
                    // "a/#" matches "a" as well as everything below it [MQTT-4.7.1-2].
                    if let Some(hash) = n.hash {
                        self.take(hash, subs, groups);
                    }
                    break;
                };
                let rest = &name[start..];
                // `/` is ASCII, so the split point is a char boundary.
                let (level, after) = match rest.bytes().position(|b| b == b'/') {
                    Some(i) => (&rest[..i], Some(start + i + 1)),
                    None => (rest, None),
                };
                let exact = n.children.get(level).copied();
                let plus = if skip_wildcards {
                    None
                } else {
                    if let Some(hash) = n.hash {
                        self.take(hash, subs, groups);
                    }
                    n.plus
                };
                skip_wildcards = false;
                node = match (plus, exact) {
                    (Some(plus), Some(exact)) => {
                        pending.push((exact, after));
                        plus
                    }
                    (Some(next), None) | (None, Some(next)) => next,
                    (None, None) => break,
                };
                at = after;
            }
        }
        self.pending = pending;
    }

    /// Picks the member of a shared group that gets the next message: round-robin among the
    /// members `eligible` accepts (e.g. those online), falling back to any member.
    pub fn pick_shared(
        &mut self,
        group: GroupRef,
        eligible: impl Fn(SessionId) -> bool,
    ) -> Option<Subscriber> {
        let g = self
            .nodes
            .get_mut(group.node as usize)?
            .shared
            .get_mut(group.group as usize)?;
        let n = g.members.len();
        if n == 0 {
            return None;
        }
        let start = g.next % n;
        let chosen = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| eligible(g.members[i].session))
            .unwrap_or(start);
        g.next = chosen + 1;
        Some(g.members[chosen])
    }

    fn take(&self, node: u32, subs: &mut Vec<Subscriber>, groups: &mut Vec<GroupRef>) {
        let n = &self.nodes[node as usize];
        subs.extend_from_slice(&n.subscribers);
        groups.extend((0..n.shared.len()).map(|group| GroupRef {
            node,
            group: group as u32,
        }));
    }

    fn child(&self, node: u32, level: &str) -> Option<u32> {
        let n = &self.nodes[node as usize];
        match level {
            "+" => n.plus,
            "#" => n.hash,
            _ => n.children.get(level).copied(),
        }
    }

    fn child_or_insert(&mut self, node: u32, level: &str) -> u32 {
        if let Some(existing) = self.child(node, level) {
            return existing;
        }
        let new = match self.free.pop() {
            Some(i) => i,
            None => {
                self.nodes.push(Node::default());
                (self.nodes.len() - 1) as u32
            }
        };
        let n = &mut self.nodes[node as usize];
        match level {
            "+" => n.plus = Some(new),
            "#" => n.hash = Some(new),
            _ => {
                n.children.insert(level.into(), new);
            }
        }
        new
    }

    /// Frees the empty nodes at the end of `path` (the nodes along `filter`), deepest first.
    fn prune(&mut self, filter: &str, path: &[u32]) {
        let names: Vec<&str> = levels(filter).collect();
        for depth in (1..path.len()).rev() {
            let node = path[depth];
            if !self.nodes[node as usize].is_empty() {
                return;
            }
            let parent = &mut self.nodes[path[depth - 1] as usize];
            match names[depth - 1] {
                "+" => parent.plus = None,
                "#" => parent.hash = None,
                level => {
                    parent.children.remove(level);
                }
            }
            self.nodes[node as usize] = Node::default();
            self.free.push(node);
        }
    }
}

fn remove_member(members: &mut Vec<Subscriber>, session: SessionId) -> bool {
    match members.iter().position(|s| s.session == session) {
        Some(i) => {
            members.swap_remove(i);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{QoS, RetainHandling};

    fn sub(session: u32, qos: QoS) -> Subscriber {
        Subscriber {
            session: SessionId(session),
            options: SubscriptionOptions {
                qos,
                no_local: false,
                retain_as_published: false,
                retain_handling: RetainHandling::SendAtSubscribe,
            },
            subscription_id: 0,
        }
    }

    fn matching(tree: &mut SubscriptionTree, name: &str) -> Vec<u32> {
        let (mut subs, mut groups) = (Vec::new(), Vec::new());
        tree.collect(name, &mut subs, &mut groups);
        let mut ids: Vec<u32> = subs.iter().map(|s| s.session.0).collect();
        ids.sort();
        ids
    }

    #[test]
    fn exact_plus_and_hash() {
        let mut t = SubscriptionTree::default();
        t.subscribe("a/b", None, sub(1, QoS::AtMostOnce));
        t.subscribe("a/+", None, sub(2, QoS::AtMostOnce));
        t.subscribe("a/#", None, sub(3, QoS::AtMostOnce));
        t.subscribe("#", None, sub(4, QoS::AtMostOnce));
        t.subscribe("+/+/c", None, sub(5, QoS::AtMostOnce));
        assert_eq!(matching(&mut t, "a/b"), [1, 2, 3, 4]);
        assert_eq!(matching(&mut t, "a"), [3, 4]);
        assert_eq!(matching(&mut t, "a/b/c"), [3, 4, 5]);
        assert_eq!(matching(&mut t, "x"), [4]);
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn dollar_topics_skip_leading_wildcards() {
        let mut t = SubscriptionTree::default();
        t.subscribe("#", None, sub(1, QoS::AtMostOnce));
        t.subscribe("+/x", None, sub(2, QoS::AtMostOnce));
        t.subscribe("$SYS/#", None, sub(3, QoS::AtMostOnce));
        t.subscribe("$SYS/+", None, sub(4, QoS::AtMostOnce));
        assert_eq!(matching(&mut t, "$SYS/x"), [3, 4]);
        assert_eq!(matching(&mut t, "a/x"), [1, 2]);
    }

    #[test]
    fn replace_and_unsubscribe_prunes() {
        let mut t = SubscriptionTree::default();
        assert!(!t.subscribe("a/b/c", None, sub(1, QoS::AtMostOnce)));
        assert!(t.subscribe("a/b/c", None, sub(1, QoS::ExactlyOnce)));
        assert_eq!(t.len(), 1);
        assert!(t.unsubscribe("a/b/c", None, SessionId(1)));
        assert!(!t.unsubscribe("a/b/c", None, SessionId(1)));
        assert!(t.is_empty());
        assert!(t.nodes[0].is_empty(), "empty branches are freed");
        assert_eq!(t.free.len(), 3);
        t.subscribe("x/+/#", None, sub(2, QoS::AtMostOnce));
        assert_eq!(t.nodes.len(), 4, "freed nodes are reused");
        assert_eq!(matching(&mut t, "x/y/z"), [2]);
    }

    #[test]
    fn shared_groups_round_robin() {
        let mut t = SubscriptionTree::default();
        t.subscribe("s/+", Some("g"), sub(1, QoS::AtMostOnce));
        t.subscribe("s/+", Some("g"), sub(2, QoS::AtMostOnce));
        t.subscribe("s/+", Some("h"), sub(3, QoS::AtMostOnce));
        t.subscribe("s/+", None, sub(4, QoS::AtMostOnce));
        t.subscribe("s/+", Some("h"), sub(3, QoS::AtLeastOnce));
        assert_eq!((t.len(), t.shared_len()), (4, 3));
        assert!(t.unsubscribe("s/+", None, SessionId(4)));
        let (mut subs, mut groups) = (Vec::new(), Vec::new());
        t.collect("s/1", &mut subs, &mut groups);
        assert!(subs.is_empty());
        assert_eq!(groups.len(), 2);
        let picks: Vec<u32> = (0..4)
            .map(|_| t.pick_shared(groups[0], |_| true).unwrap().session.0)
            .collect();
        assert_eq!(picks, [1, 2, 1, 2]);
        assert_eq!(t.pick_shared(groups[0], |s| s.0 == 2).unwrap().session.0, 2);
        assert!(t.unsubscribe("s/+", Some("g"), SessionId(1)));
        assert!(t.unsubscribe("s/+", Some("g"), SessionId(2)));
        assert!(t.unsubscribe("s/+", Some("h"), SessionId(3)));
        assert!(t.is_empty());
        assert_eq!(t.shared_len(), 0);
    }

    #[test]
    fn a_topic_of_30000_levels_matches_without_deep_recursion() {
        // Matching used to recurse once per level: a topic this deep overflowed the stack.
        let deep = vec!["a"; 30_000].join("/");
        let all_plus = vec!["+"; 30_000].join("/");
        let alternating: Vec<&str> = (0..30_000)
            .map(|i| if i % 2 == 0 { "a" } else { "+" })
            .collect();
        let alternating = alternating.join("/");
        let mut t = SubscriptionTree::default();
        t.subscribe(&deep, None, sub(1, QoS::AtMostOnce));
        t.subscribe(&all_plus, None, sub(2, QoS::AtMostOnce));
        t.subscribe(&alternating, None, sub(3, QoS::AtMostOnce));
        t.subscribe("a/a/#", None, sub(4, QoS::AtMostOnce));
        t.subscribe(&format!("{deep}/#"), None, sub(5, QoS::AtMostOnce));
        let started = std::time::Instant::now();
        assert_eq!(matching(&mut t, &deep), [1, 2, 3, 4, 5]);
        assert_eq!(matching(&mut t, &format!("{deep}/b")), [4, 5]);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        for (filter, session) in [(&deep, 1), (&all_plus, 2), (&alternating, 3)] {
            assert!(t.unsubscribe(filter, None, SessionId(session)));
        }
        assert!(t.unsubscribe("a/a/#", None, SessionId(4)));
        assert!(t.unsubscribe(&format!("{deep}/#"), None, SessionId(5)));
        assert!(t.is_empty());
        assert!(t.nodes[0].is_empty(), "every deep branch is freed");
    }

    #[test]
    fn overlapping_wildcards_match_in_depth_first_order() {
        let mut t = SubscriptionTree::default();
        for (i, filter) in ["a/b/c", "+/b/c", "a/+/c", "+/+/c", "a/#", "#", "+/b/#"]
            .into_iter()
            .enumerate()
        {
            t.subscribe(filter, None, sub(i as u32, QoS::AtMostOnce));
        }
        let (mut subs, mut groups) = (Vec::new(), Vec::new());
        t.collect("a/b/c", &mut subs, &mut groups);
        let order: Vec<u32> = subs.iter().map(|s| s.session.0).collect();
        // At each level: `#` first, then the whole `+` branch, then the exact one.
        assert_eq!(order, [5, 3, 6, 1, 4, 2, 0]);
    }
}
