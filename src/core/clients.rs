//! The client-id index: which session holds a client id.
//!
//! A hash table of bare `SessionId`s (4 bytes a slot) that hashes and compares through the
//! session slab, so the client id is stored once, in its session, rather than again as a map
//! key: this index is one of the few things every idle connection pays for.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use slab::Slab;

use crate::core::session::Session;
use crate::ids::SessionId;

/// Client id to session, for every session (online or not).
#[derive(Debug, Default)]
pub struct ClientIndex {
    table: HashTable<SessionId>,
    hasher: RandomState,
}

impl ClientIndex {
    /// The session holding `client_id`, if any.
    pub fn get(&self, client_id: &str, sessions: &Slab<Session>) -> Option<SessionId> {
        let hash = self.hasher.hash_one(client_id);
        self.table
            .find(hash, |&sid| holds(sessions, sid, client_id))
            .copied()
    }

    /// Indexes session `sid`, which must already be in `sessions` with its client id, and
    /// whose client id must not be indexed yet.
    pub fn insert(&mut self, sid: SessionId, sessions: &Slab<Session>) {
        let Some(session) = sessions.get(sid.0 as usize) else {
            return;
        };
        let hasher = &self.hasher;
        let hash = hasher.hash_one(&*session.client_id);
        self.table.insert_unique(hash, sid, |&other| {
            sessions
                .get(other.0 as usize)
                .map_or(0, |s| hasher.hash_one(&*s.client_id))
        });
    }

    /// After a burst of connections: when most of the table is empty, shrinks it to fit
    /// (rehashing through the slab). Returns the slots freed.
    pub fn shrink(&mut self, sessions: &Slab<Session>) -> usize {
        let before = self.table.capacity();
        if before <= 4 * self.table.len() + 1024 {
            return 0;
        }
        let hasher = &self.hasher;
        self.table.shrink_to_fit(|&sid| {
            sessions
                .get(sid.0 as usize)
                .map_or(0, |s| hasher.hash_one(&*s.client_id))
        });
        before - self.table.capacity()
    }

    /// Removes `sid` from the index if it is the session indexed for `client_id`.
    pub fn remove(&mut self, client_id: &str, sid: SessionId, sessions: &Slab<Session>) {
        let hash = self.hasher.hash_one(client_id);
        if let Ok(entry) = self.table.find_entry(hash, |&other| {
            other == sid && holds(sessions, other, client_id)
        }) {
            entry.remove();
        }
    }
}

fn holds(sessions: &Slab<Session>, sid: SessionId, client_id: &str) -> bool {
    sessions
        .get(sid.0 as usize)
        .is_some_and(|s| &*s.client_id == client_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_after_a_burst_and_still_finds() {
        let mut sessions = Slab::new();
        let mut index = ClientIndex::default();
        let sids: Vec<SessionId> = (0..5000)
            .map(|i| {
                let sid =
                    SessionId(sessions.insert(Session::new(format!("c{i}").into(), 0)) as u32);
                index.insert(sid, &sessions);
                sid
            })
            .collect();
        for (i, &sid) in sids.iter().enumerate().skip(10) {
            index.remove(&format!("c{i}"), sid, &sessions);
            sessions.remove(sid.0 as usize);
        }
        assert!(index.shrink(&sessions) > 0);
        assert!(index.table.capacity() < 1024);
        assert_eq!(index.get("c3", &sessions), Some(sids[3]));
        assert_eq!(index.get("c10", &sessions), None);
    }

    #[test]
    fn finds_inserts_and_removes_through_the_slab() {
        let mut sessions = Slab::new();
        let mut index = ClientIndex::default();
        let ids: Vec<SessionId> = (0..100)
            .map(|i| {
                let sid =
                    SessionId(sessions.insert(Session::new(format!("c{i}").into(), 0)) as u32);
                index.insert(sid, &sessions);
                sid
            })
            .collect();
        for (i, &sid) in ids.iter().enumerate() {
            assert_eq!(index.get(&format!("c{i}"), &sessions), Some(sid));
        }
        assert_eq!(index.get("nobody", &sessions), None);
        index.remove("c7", ids[8], &sessions);
        assert_eq!(
            index.get("c7", &sessions),
            Some(ids[7]),
            "only the matching session"
        );
        index.remove("c7", ids[7], &sessions);
        assert_eq!(index.get("c7", &sessions), None);
        assert_eq!(index.get("c8", &sessions), Some(ids[8]));
    }
}
