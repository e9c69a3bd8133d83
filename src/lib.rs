//! pipit: a small, fast MQTT broker for the edge (MQTT 3.1, 3.1.1 and 5.0).
//!
//! # A tour
//!
//! One thread runs one `mio` poll loop ([`Broker::run`], in `broker/`) that owns every
//! connection and everything else the broker knows in one `State` value (`core/state.rs`),
//! lent to the packet handlers as `&mut State`: no locks, no globals.
//!
//! A PUBLISH travels like this: bytes are read into the connection's receive buffer
//! (`net/buffer.rs`, buffers recycled through `net/pool.rs` so idle connections hold none);
//! the sans-IO codec (`wire/`) checks that a whole frame is present and parses a borrowed
//! view; `handle/` dispatches on (connection phase, packet type) with a `Ctx` looked up once,
//! validates, then applies; the payload is copied once into an `Rc<Message>`
//! (`core/message.rs`); `core/retain.rs` stores it if retained; `core/route.rs` asks the
//! subscription tree (`core/tree.rs`) for matching sessions, merges overlapping
//! subscriptions, and queues an `Rc` to each `Session` (`core/session/`), holding the
//! publisher back (TCP back-pressure) when a subscriber's output is over its bound. At the
//! end of the loop turn (`broker/write.rs`) every connection with output has its queued
//! messages encoded into its send buffer, each frame built once per form
//! (`core/frame_cache.rs`), and written with one `write` call.
//!
//! Around that path: `ids.rs` holds the keys every module shares; `core/lifecycle.rs` is the
//! only place a session is attached, taken over, detached, expired or discarded, or its
//! subscriptions change; `core/close.rs` is the one table of close reasons; `core/will.rs`
//! holds delayed wills, `core/retain_walk.rs` a SUBSCRIBE's retained messages still to send,
//! `core/drops.rs` the drop counters, `core/budget.rs` the `memory_limit` stages (measured by
//! the counting allocator of `heap.rs`); `net/` is the transport seam (plain TCP or rustls,
//! driven by the same loop) and the lingering close; `config/` reads mosquitto.conf;
//! `auth/` checks password and ACL files and writes password files; `metrics/` publishes
//! `$SYS` and serves the same figures to Prometheus (`metrics_listener`) on the same loop;
//! `broker/reload.rs` applies SIGHUP; `notify.rs` (with `broker/service.rs`) speaks
//! systemd's notification protocol. The binary installs its own logger (`logging/`,
//! Mosquitto's log destinations; the loop publishes its topic lines and reopens its file only
//! when given it with `Broker::set_log`) and switches away from root (`user.rs`); the library
//! does neither by itself.
//!
//! With persistence on, each durable change is also recorded where it happens
//! (`core/lifecycle.rs`, `core/route.rs`, `core/session/write.rs`) through the `Journal`
//! (`persist/journal.rs`) as a typed record (`persist/record/`). The store underneath
//! (`persist/store/`) appends the turn's records with one `write` and syncs them on a helper
//! thread (group commit); acknowledgements wait for that in `persist/held.rs`, and
//! `broker/persist.rs` ties it to the loop. At start, `persist/restore.rs` replays the records
//! into the state; `persist/snapshot.rs` rewrites the live state so old segments can go.
//!
//! # Embedding
//!
//! [`embed`] is the library's front door: [`Broker::builder`] from a [`Config`] (or
//! [`embed::Builder::from_file`]), then `run` on the caller's thread, `spawn` on a thread of
//! its own, or [`Broker::poll_once`] from the caller's own loop; [`Handle`] stops it and makes
//! [`embed::LocalClient`]s, MQTT 5 clients inside the process that go through the same
//! handlers, ACLs and sessions as network clients (`net/local.rs` is their transport,
//! `broker/embedding.rs` the loop's side).
//!
//! ```
//! let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
//! println!("listening on {:?}", broker.addrs);
//! broker.handle.shutdown();
//! broker.thread.join().expect("the broker thread panicked")?;
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs)]

pub mod auth;
// Without the `bridge` feature, `bridge/off.rs`: the names the broker uses, no bridges.
#[cfg_attr(not(feature = "bridge"), path = "bridge/off.rs")]
pub mod bridge;
mod broker;
pub mod config;
pub mod core;
pub mod embed;
#[doc(hidden)]
pub mod fuzz;
mod handle;
pub mod heap;
pub mod ids;
pub mod logging;
mod metrics;
mod net;
pub mod notify;
pub mod persist;
pub mod user;
pub mod wire;

pub use broker::{Broker, Handle, SignalCatcher, Spawned};
pub use config::Config;
