//! SIGHUP for bridges, the state's side (the loop's, which ends links, is
//! `broker::bridge`): the `connection` blocks read again are matched to the running bridges
//! by name. An unchanged block keeps its bridge as it is: link, session, queue, counters. A
//! changed one keeps its local session and what it holds (its name is the same bridge),
//! with its local subscriptions made to follow the new `out` topics and its client id the
//! new `local_clientid`, and connects again with the new settings. A removed one's session
//! is discarded with its queue. A new one starts as at start-up.
//!
//! Invariant kept: `State::bridges` is in the configuration's order, and every bridge
//! session's `bridge` and every bridge connection's `bridge` is its index there.

use log::info;

use super::{Bridge, Link, make, notify_local, spool};
use crate::config::BridgeConfig;
use crate::core::lifecycle;
use crate::core::state::State;
use crate::wire::Version;

/// What becomes of a running bridge when the configuration is read again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Its block is unchanged; it is the new bridge at this index.
    Kept(usize),
    /// Its block changed; it is the new bridge at this index.
    Changed(usize),
    /// Its block is gone.
    Removed,
}

/// The fate of each bridge in `old`, by name, in the new configuration `new`.
pub fn plan(old: &[Bridge], new: &[BridgeConfig]) -> Vec<Fate> {
    old.iter()
        .map(|b| match new.iter().position(|c| c.name == b.config.name) {
            Some(j) if new[j] == b.config => Fate::Kept(j),
            Some(j) => Fate::Changed(j),
            None => Fate::Removed,
        })
        .collect()
}

/// Puts the new configuration `new` in place, each running bridge going as `fates` says.
/// The links of changed and removed bridges must be down already (`broker::bridge` ends
/// them cleanly first).
pub fn apply(state: &mut State, new: Vec<BridgeConfig>, fates: &[Fate]) {
    let mut old: Vec<Option<Bridge>> = std::mem::take(&mut state.bridges)
        .into_iter()
        .map(Some)
        .collect();
    // Removed sessions go first, and changed ones leave the client-id index before any
    // takes its new id, so ids may move between bridges in one reload.
    for (k, fate) in fates.iter().enumerate() {
        let Some(b) = &old[k] else { continue };
        let sid = b.session;
        match fate {
            Fate::Removed => {
                info!("SIGHUP: bridge {}: removed", b.config.name);
                lifecycle::discard(state, sid);
                old[k] = None;
            }
            Fate::Changed(_) => {
                if let Some(session) = state.sessions.get(sid.0 as usize) {
                    state
                        .client_ids
                        .remove(&session.client_id, sid, &state.sessions);
                }
            }
            Fate::Kept(_) => {}
        }
    }
    let mut bridges = Vec::with_capacity(new.len());
    let mut added = Vec::new();
    for (j, config) in new.into_iter().enumerate() {
        let from = fates
            .iter()
            .position(|f| matches!(f, Fate::Kept(n) | Fate::Changed(n) if *n == j));
        let bridge = match from.and_then(|k| old[k].take().map(|b| (fates[k], b))) {
            Some((Fate::Kept(_), b)) => b,
            Some((_, b)) => reconfigure(state, b, config, j),
            None => {
                info!("SIGHUP: bridge {}: added", config.name);
                added.push(j);
                make(state, config, j, None)
            }
        };
        bridges.push(bridge);
    }
    state.config.bridges = bridges.iter().map(|b| b.config.clone()).collect();
    for (j, b) in bridges.iter().enumerate() {
        if let Some(session) = state.sessions.get_mut(b.session.0 as usize) {
            session.bridge = Some(j as u16);
        }
        if let Link::Connecting(id) | Link::Connected(id) = b.link
            && let Some(conn) = state.conns.get_mut(id)
        {
            conn.bridge = Some(j as u16);
        }
    }
    state.bridges = bridges;
    for j in added {
        notify_local(state, j, false);
    }
}

/// Bridge `b`, whose link is down, with its changed block `config` (bridge `j` now): its
/// session, with what it holds, renamed to the new `local_clientid` (a session already
/// holding that id gives way, as at start-up) and stored again under that id if its spool is
/// kept on disk, its local subscriptions those of the new `out` topics, and its link due now.
fn reconfigure(state: &mut State, mut b: Bridge, config: BridgeConfig, j: usize) -> Bridge {
    info!(
        "SIGHUP: bridge {}: changed; connecting again with the new settings",
        config.name
    );
    spool::adopt(state, j, &config, b.session);
    b.private = config.try_private && config.protocol_version != Version::V5;
    b.refused_private = false;
    b.address = 0;
    b.wait = std::time::Duration::ZERO;
    b.next_sys = None;
    b.link = Link::Idle(Some(state.now));
    b.last_out = state.now;
    b.config = config;
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Instant;

    fn configs(text: &str) -> Vec<BridgeConfig> {
        crate::config::Config::parse(text, Path::new("t.conf"))
            .unwrap()
            .0
            .bridges
    }

    fn state(text: &str) -> State {
        let config = crate::config::Config {
            bridges: configs(text),
            ..Default::default()
        };
        let mut state = State::new(config, Vec::new(), Instant::now());
        super::super::start(&mut state);
        state
    }

    const A: &str = "connection a\naddress 10.0.0.1\nclientid a\ntopic a/# out 1\n";
    const B: &str = "connection b\naddress 10.0.0.2\nclientid b\ntopic b/# out 1\n";

    #[test]
    fn blocks_are_matched_by_name() {
        let s = state(&format!("{A}{B}"));
        let changed = B.replace("b/# out 1", "b/# both 1");
        let c = format!("connection c\naddress 10.0.0.3\ntopic c\n{changed}{A}");
        assert_eq!(
            plan(&s.bridges, &configs(&c)),
            [Fate::Kept(2), Fate::Changed(1)]
        );
        assert_eq!(
            plan(&s.bridges, &configs(A)),
            [Fate::Kept(0), Fate::Removed]
        );
    }

    /// A changed bridge keeps its session (and so its queue) under its new id, subscribed
    /// to the new `out` topics only; indexes follow the new order; a removed one's session
    /// is gone; a new one has its own.
    #[test]
    fn apply_keeps_renames_discards_and_reindexes() {
        let mut s = state(&format!("{A}{B}"));
        let b_sid = s.bridges[1].session;
        let changed = B.replace(
            "clientid b\ntopic b/# out 1",
            "clientid b2\ntopic c/# out 0",
        );
        let c = "connection c\naddress 10.0.0.3\nclientid c\ntopic x/# out 1\n";
        let new = configs(&format!("{changed}{c}"));
        let fates = plan(&s.bridges, &new);
        apply(&mut s, new, &fates);
        assert_eq!(s.bridges.len(), 2);
        assert_eq!(s.bridges[0].session, b_sid, "b kept its session");
        assert_eq!(
            s.client_ids.get("local.a", &s.sessions),
            None,
            "a's is gone"
        );
        assert_eq!(s.sessions.len(), 2);
        let session = &s.sessions[b_sid.0 as usize];
        assert_eq!((&*session.client_id, session.bridge), ("local.b2", Some(0)));
        let filters: Vec<&str> = session.subscriptions().map(|(f, _, _)| f).collect();
        assert_eq!(filters, ["c/#"]);
        assert_eq!(s.client_ids.get("local.b2", &s.sessions), Some(b_sid));
        assert_eq!(s.client_ids.get("local.b", &s.sessions), None);
        let c_sid = s.bridges[1].session;
        assert_eq!(s.sessions[c_sid.0 as usize].bridge, Some(1));
        assert_eq!(s.config.bridges[1].name, "c");
    }
}
