//! The broker as a library: build it from a [`Config`] or a config file, run it the way the
//! program around it runs, and talk to it from inside the process.
//!
//! - [`Builder`] (from [`Broker::builder`] or [`Builder::from_file`]) binds the listeners,
//!   then [`Builder::run`] runs the loop on the caller's thread until a [`Handle`] stops it,
//!   [`Builder::spawn`] runs it on a thread of its own, and [`Builder::bind`] returns the
//!   [`Broker`] for a caller's own loop to drive with [`Broker::poll_once`].
//! - [`LocalClient`] (from [`Handle::local_client`]) is an MQTT 5 client without a socket,
//!   usable from any thread. It is a connection of its own to the loop: its CONNECT, PUBLISH,
//!   SUBSCRIBE and UNSUBSCRIBE go through the same handlers, authentication, ACLs, sessions,
//!   queues and bounds as a network client's, and it counts as a client in `$SYS`. The bytes
//!   cross over a pair of in-memory channels (`net/local.rs`) and the loop's `mio::Waker`;
//!   the loop stays the only owner of the broker's state.
//! - [`Hooks`] (with [`Builder::hooks`]): an [`Authenticate`] hook that has the last word on
//!   every CONNECT, told what the password file (or dynamic security, or the certificate)
//!   decided, an [`Authorize`] hook that has it on every publish, subscribe and delivery,
//!   told what the ACL decided, and an [`Intercept`] hook that sees every client's PUBLISH after the ACL and
//!   keeps, drops or rewrites it (topic, payload and [`PublishProperties`]), and every
//!   connect and disconnect (`auth/hooks.rs`). The authenticate hook also carries MQTT 5
//!   enhanced authentication ([`Step::Continue`] sends AUTH; re-authentication too), and
//!   authentication and publish/subscribe authorization may answer later: the hook takes a
//!   [`Later`] from its [`Defer`] and completes it from any thread, while the client's
//!   packets wait in order (`auth/defer.rs`).
//!
//! ```
//! use pipit::embed::{LocalOptions, Outgoing};
//! use pipit::wire::{QoS, SubscriptionOptions};
//!
//! let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
//! let mut sensor = broker.handle.local_client(LocalOptions::new("sensor"))?;
//! let mut display = broker.handle.local_client(LocalOptions::new("display"))?;
//! display.subscribe(&[("rooms/+/temp", SubscriptionOptions::at(QoS::AtLeastOnce))])?;
//! sensor.publish(&Outgoing::new("rooms/kitchen/temp", b"21.5").qos(QoS::AtLeastOnce))?;
//! let got = display.recv_timeout(std::time::Duration::from_secs(5))?.expect("a message");
//! assert_eq!((got.topic.as_str(), &got.payload[..]), ("rooms/kitchen/temp", &b"21.5"[..]));
//! broker.handle.shutdown();
//! broker.thread.join().expect("the broker thread panicked")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod client;
mod event;
mod options;

use std::io;
use std::path::Path;

pub use crate::auth::Access;
pub use crate::auth::AuthResult;
pub use crate::auth::defer::{Answer, Defer, Later};
pub use crate::auth::hooks::{
    Authenticate, Authorization, Authorize, Credentials, Hooks, Intercept, Intercepted,
    PublishProperties, Stage, Step, Verdict,
};
pub use crate::net::local::Notify;
pub use client::LocalClient;
pub use event::{Delivery, Event};
pub use options::{LocalError, LocalOptions, LocalWill, Outgoing};

use crate::{Broker, Config, Handle, Spawned};

/// A broker configuration to start from: one plain MQTT listener on `127.0.0.1` at a port
/// the system picks, everything else as [`Config::default`] (Mosquitto's defaults).
///
/// ```
/// let config = pipit::embed::loopback_config();
/// assert_eq!(config.listeners[0].addr.port(), 0);
/// ```
pub fn loopback_config() -> Config {
    let mut config = Config::default();
    for listener in &mut config.listeners {
        listener.addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    }
    config
}

/// A broker about to start: its configuration, then how to run it.
///
/// ```
/// let mut builder = pipit::Broker::builder(pipit::Config::default());
/// builder.config_mut().listeners[0].addr = "127.0.0.1:0".parse().unwrap();
/// let broker = builder.spawn()?;
/// println!("listening on {:?}", broker.addrs);
/// broker.handle.shutdown();
/// broker.thread.join().expect("the broker thread panicked")?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Builder {
    config: Config,
    hooks: Hooks,
}

impl Broker {
    /// A builder for a broker with `config`.
    ///
    /// ```
    /// let broker = pipit::Broker::builder(pipit::embed::loopback_config()).bind()?;
    /// assert_eq!(broker.local_addrs().len(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder(config: Config) -> Builder {
        Builder {
            config,
            hooks: Hooks::default(),
        }
    }
}

impl Builder {
    /// A builder for a broker configured by a mosquitto.conf-style file (warnings go to the
    /// `log` crate); the error names the file and line of what it refuses.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("pipit-doc-{}.conf", std::process::id()));
    /// std::fs::write(&path, "listener 0 127.0.0.1\n")?;
    /// let broker = pipit::embed::Builder::from_file(&path)?.bind()?;
    /// assert_eq!(broker.local_addrs().len(), 1);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_file(path: &Path) -> io::Result<Builder> {
        let config = Config::from_file(path)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        Ok(Builder {
            config,
            hooks: Hooks::default(),
        })
    }

    /// With an embedder's hooks: authentication and authorization on top of the password
    /// and ACL files, and a say over every PUBLISH, connect and disconnect
    /// ([`Authenticate`], [`Authorize`], [`Intercept`]).
    ///
    /// ```
    /// use pipit::embed::{Hooks, Intercept, Intercepted, Verdict};
    /// struct Quiet;
    /// impl Intercept for Quiet {
    ///     fn on_publish(&mut self, p: &Intercepted<'_>) -> Verdict {
    ///         if p.payload.is_empty() { Verdict::Drop } else { Verdict::Keep }
    ///     }
    /// }
    /// let hooks = Hooks { intercept: Some(Box::new(Quiet)), ..Hooks::default() };
    /// let broker = pipit::Broker::builder(pipit::embed::loopback_config()).hooks(hooks).spawn()?;
    /// broker.handle.shutdown();
    /// broker.thread.join().expect("the broker thread panicked")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn hooks(mut self, hooks: Hooks) -> Builder {
        self.hooks = hooks;
        self
    }

    /// The configuration, to adjust before the broker starts.
    ///
    /// ```
    /// let mut builder = pipit::Broker::builder(pipit::embed::loopback_config());
    /// builder.config_mut().max_queued_messages = 100;
    /// assert_eq!(builder.config_mut().max_queued_messages, 100);
    /// ```
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Binds the listeners (and opens the store, with persistence) on this thread; the
    /// [`Broker`] then runs with [`Broker::run`] or a caller's loop calling
    /// [`Broker::poll_once`]. The broker is not `Send`: bind it on the thread that runs it.
    ///
    /// ```
    /// let broker = pipit::Broker::builder(pipit::embed::loopback_config()).bind()?;
    /// let handle = broker.handle();
    /// handle.shutdown();
    /// broker.run()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(self) -> io::Result<Broker> {
        let mut broker = Broker::bind(self.config)?;
        broker.set_hooks(self.hooks);
        Ok(broker)
    }

    /// Binds and runs the broker on the caller's thread until `on_start`'s handle (or a copy
    /// of it) shuts it down. `on_start` is called once the listeners are bound, with the
    /// handle and the bound addresses, before the loop starts.
    ///
    /// ```
    /// pipit::Broker::builder(pipit::embed::loopback_config()).run(|handle, addrs| {
    ///     assert_eq!(addrs.len(), 1);
    ///     let handle = handle.clone();
    ///     std::thread::spawn(move || handle.shutdown());
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run(self, on_start: impl FnOnce(&Handle, &[std::net::SocketAddr])) -> io::Result<()> {
        let broker = self.bind()?;
        on_start(&broker.handle(), &broker.local_addrs());
        broker.run()
    }

    /// Binds the listeners and runs the broker on a thread of its own; a bind error is
    /// returned here.
    ///
    /// ```
    /// let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// broker.handle.shutdown();
    /// broker.thread.join().expect("the broker thread panicked")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn(self) -> io::Result<Spawned> {
        Broker::spawn_with(self.config, self.hooks)
    }
}
