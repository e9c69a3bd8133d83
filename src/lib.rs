//! pipit: a small, fast MQTT broker for the edge (MQTT 3.1, 3.1.1 and 5.0).
//!
//! # A tour
//!
//! One thread runs one `mio` poll loop ([`Broker::run`], in `broker.rs`) that owns every
//! connection in a slab and everything else the broker knows in one `State` value, lent to
//! the packet handlers as `&mut State`: no locks, no globals.
//!
//! A PUBLISH travels like this: bytes are read into the connection's receive buffer
//! (`buffer.rs`, buffers recycled through `pool.rs` so idle connections hold none); the
//! sans-IO codec (`wire/`) checks that a whole frame is present and parses a borrowed view;
//! `handle/` dispatches on (connection phase, packet type) and validates it; the payload is
//! copied once into an `Rc<Message>` (`message.rs`); `retain.rs` stores it if retained;
//! `route.rs` asks the subscription tree (`tree.rs`) for matching sessions, merges overlapping
//! subscriptions, and queues an `Rc` to each `Session` (`session.rs`), which owns the inflight
//! window and the bounded queue. At the end of the loop turn every connection with output has
//! its queued messages encoded into its send buffer and written with one `write` call.
//!
//! Around that path: `net.rs` is the transport seam (plain TCP or `tls.rs`'s rustls stream,
//! both driven by the same loop); `config.rs` and `config/` read mosquitto.conf; `auth/`
//! checks password and ACL files and `passwd.rs` writes password files; `will.rs` holds
//! delayed wills, `alias.rs` MQTT 5 topic aliases, `clients.rs` the client-id index,
//! `sys.rs` the `$SYS` topics; `hash.rs` is the topic trees' hasher.
//!
//! # Embedding
//!
//! ```no_run
//! let mut config = pipit::Config::default();
//! config.listeners[0].addr = "127.0.0.1:0".parse().unwrap();
//! let running = pipit::Broker::spawn(config).unwrap();
//! println!("listening on {:?}", running.addrs);
//! running.handle.shutdown();
//! running.thread.join().unwrap().unwrap();
//! ```

pub mod auth;
mod broker;
pub mod config;
pub mod core;
mod handle;
pub mod ids;
mod metrics;
mod net;
pub mod wire;

pub use broker::{Broker, Handle, Spawned};
pub use config::Config;
