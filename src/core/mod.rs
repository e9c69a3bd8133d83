//! The broker's state and the rules that change it, with no I/O and no clock reads (time
//! is a parameter): sessions and their queues, the subscription tree, retained messages,
//! routing, wills, topic aliases, and the one place a session's life changes
//! (`lifecycle`).

pub(crate) mod alias;
pub(crate) mod budget;
pub(crate) mod clients;
pub(crate) mod close;
pub(crate) mod drops;
pub(crate) mod frame_cache;
pub(crate) mod hash;
pub(crate) mod lifecycle;
pub mod message;
pub mod payload;
pub mod retain;
pub(crate) mod retain_walk;
pub(crate) mod route;
pub mod session;
pub(crate) mod state;
pub mod topic;
pub mod tree;
pub(crate) mod will;
