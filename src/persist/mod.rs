//! Persistence: a crash-safe store of opaque records on disk, under the typed records of sessions, messages and retained state.

pub mod store;
