//! Retained messages: at most one per topic name, matched against new subscriptions' filters.
//!
//! Stored as a tree of topic levels so a new filter walks only the branches it can match:
//! an exact filter costs one lookup per level, `+` visits one level of children, `#` visits
//! the subtree below it. Clearing a topic frees its now-empty branch. The store is bounded by
//! `max_retained` messages: at the bound, a retained PUBLISH to a new topic is still delivered
//! but not stored (counted in `dropped`).

use crate::hash::LevelMap;
use std::ops::ControlFlow;
use std::rc::Rc;

use crate::message::Message;
use crate::topic::{Levels, levels};

#[derive(Debug, Default)]
struct Node {
    children: LevelMap<u32>,
    message: Option<Rc<Message>>,
}

/// The retained message store.
#[derive(Debug)]
pub struct RetainedStore {
    nodes: Vec<Node>,
    free: Vec<u32>,
    count: usize,
    max_retained: usize,
    /// Retained messages not stored because the store was full.
    pub dropped: u64,
}

const ROOT: u32 = 0;

impl RetainedStore {
    /// An empty store holding at most `max_retained` messages (0 is unlimited).
    pub fn new(max_retained: usize) -> Self {
        RetainedStore {
            nodes: vec![Node::default()],
            free: Vec::new(),
            count: 0,
            max_retained,
            dropped: 0,
        }
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no message is retained.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Stores `message` as the retained message of its topic, replacing any previous one; a
    /// zero-length payload clears the topic instead [MQTT-3.3.1-10] [MQTT-3.3.1-11].
    pub fn set(&mut self, message: Rc<Message>) {
        if message.payload.is_empty() {
            self.clear(&message.topic);
            return;
        }
        if self.max_retained != 0
            && self.count >= self.max_retained
            && !self.contains(&message.topic)
        {
            self.dropped += 1;
            return;
        }
        let mut node = ROOT;
        for level in levels(&message.topic) {
            node = match self.nodes[node as usize].children.get(level) {
                Some(&child) => child,
                None => {
                    let child = self.alloc();
                    self.nodes[node as usize]
                        .children
                        .insert(level.into(), child);
                    child
                }
            };
        }
        if self.nodes[node as usize].message.replace(message).is_none() {
            self.count += 1;
        }
    }

    /// Visits the retained messages whose topic matches `filter`, until `visit` breaks, so a
    /// caller that can take only so many stops the walk instead of paying for all of them.
    pub fn for_each_match(
        &self,
        filter: &str,
        mut visit: impl FnMut(&Rc<Message>) -> ControlFlow<()>,
    ) {
        let _ = self.walk(ROOT, levels(filter), true, &mut visit);
    }

    fn contains(&self, topic: &str) -> bool {
        self.find(topic)
            .is_some_and(|n| self.nodes[n as usize].message.is_some())
    }

    fn find(&self, topic: &str) -> Option<u32> {
        let mut node = ROOT;
        for level in levels(topic) {
            node = *self.nodes[node as usize].children.get(level)?;
        }
        Some(node)
    }

    fn clear(&mut self, topic: &str) {
        let mut path = vec![ROOT];
        for level in levels(topic) {
            match self.nodes[*path.last().expect("path starts at the root") as usize]
                .children
                .get(level)
            {
                Some(&child) => path.push(child),
                None => return,
            }
        }
        let leaf = *path.last().expect("path starts at the root");
        if self.nodes[leaf as usize].message.take().is_none() {
            return;
        }
        self.count -= 1;
        // Free the branch bottom-up while it holds nothing.
        let names: Vec<&str> = levels(topic).collect();
        for depth in (1..path.len()).rev() {
            let node = &self.nodes[path[depth] as usize];
            if node.message.is_some() || !node.children.is_empty() {
                break;
            }
            self.nodes[path[depth - 1] as usize]
                .children
                .remove(names[depth - 1]);
            self.free.push(path[depth]);
        }
    }

    fn alloc(&mut self) -> u32 {
        match self.free.pop() {
            Some(i) => i,
            None => {
                self.nodes.push(Node::default());
                (self.nodes.len() - 1) as u32
            }
        }
    }

    fn walk(
        &self,
        node: u32,
        mut rest: Levels<'_>,
        at_root: bool,
        visit: &mut impl FnMut(&Rc<Message>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let n = &self.nodes[node as usize];
        let Some(level) = rest.next() else {
            if let Some(m) = &n.message {
                visit(m)?;
            }
            return ControlFlow::Continue(());
        };
        match level {
            "#" => {
                // "a/#" matches "a" itself too [MQTT-4.7.1-2].
                if let Some(m) = &n.message {
                    visit(m)?;
                }
                for (name, &child) in &n.children {
                    // [MQTT-4.7.2-1] wildcards at the first level skip `$` topics.
                    if !(at_root && name.starts_with('$')) {
                        self.subtree(child, visit)?;
                    }
                }
            }
            "+" => {
                for (name, &child) in &n.children {
                    if !(at_root && name.starts_with('$')) {
                        self.walk(child, rest.clone(), false, visit)?;
                    }
                }
            }
            _ => {
                if let Some(&child) = n.children.get(level) {
                    self.walk(child, rest, false, visit)?;
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn subtree(
        &self,
        node: u32,
        visit: &mut impl FnMut(&Rc<Message>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let n = &self.nodes[node as usize];
        if let Some(m) = &n.message {
            visit(m)?;
        }
        for &child in n.children.values() {
            self.subtree(child, visit)?;
        }
        ControlFlow::Continue(())
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
        assert!(s.nodes[0].children.is_empty(), "cleared branch is freed");
    }

    #[test]
    fn wildcard_lookup() {
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
    fn the_walk_stops_when_the_visitor_breaks() {
        let mut s = RetainedStore::new(0);
        for i in 0..100 {
            s.set(msg(&format!("t/{i}"), "p"));
        }
        let mut seen = 0;
        s.for_each_match("#", |_| {
            seen += 1;
            if seen == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(seen, 3);
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
    }
}
