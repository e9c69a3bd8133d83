//! The embedding handle, `Broker::spawn`, and the loop's side of in-process clients.
//!
//! A [`Handle`] is the only way into a running loop from another thread: it sets the stop
//! flag, or hands over the loop's end of a new local client's pipe, and wakes the loop with
//! its `mio::Waker`. The loop owns everything else: on each wake-up it admits the new local
//! clients as connections of their own (`Conn` with a `Stream::Local`), then looks at each
//! local client's pipe for input or room for output, as it would for a socket's readiness.

use std::sync::mpsc::{Receiver, Sender};

use super::*;
use crate::auth::hooks::Hooks;
use crate::net::local::LocalStream;

/// Stops a running broker from another thread, and makes in-process clients
/// ([`Handle::local_client`](crate::embed::LocalClient)). Cheap to clone; `Send` and `Sync`.
///
/// ```
/// let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
/// let stopper = broker.handle.clone();
/// std::thread::spawn(move || stopper.shutdown());
/// broker.thread.join().expect("the broker thread panicked")?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Handle {
    pub(super) waker: Arc<Waker>,
    pub(super) stop: Arc<AtomicBool>,
    /// New local clients, admitted by the loop on its next wake-up.
    pub(super) locals: Sender<NewLocal>,
    /// How many listeners the broker has (a local client borrows one's security settings).
    pub(super) listeners: usize,
    /// `max_output_buffer`: the bound of a local client's unread output.
    pub(super) output_cap: usize,
}

/// A local client's pipe on its way to the loop.
#[derive(Debug)]
pub(crate) struct NewLocal {
    /// The loop's end.
    stream: LocalStream,
    /// The listener whose security settings apply to it.
    listener: usize,
}

/// The loop's side of local clients: the queue of new ones and the ones admitted.
#[derive(Debug)]
pub(super) struct Locals {
    pub(super) incoming: Receiver<NewLocal>,
    pub(super) sender: Sender<NewLocal>,
    /// Admitted local clients (closed ones are dropped from the list when next seen).
    pub(super) admitted: Vec<ConnId>,
}

impl Locals {
    pub(super) fn new() -> Locals {
        let (sender, incoming) = std::sync::mpsc::channel();
        Locals {
            incoming,
            sender,
            admitted: Vec::new(),
        }
    }
}

/// A broker running on a thread of its own, from `Broker::spawn`.
#[derive(Debug)]
pub struct Spawned {
    /// The bound address of each listener, in configuration order.
    pub addrs: Vec<SocketAddr>,
    /// The bound address of the metrics listener, if configured.
    pub metrics_addr: Option<SocketAddr>,
    /// Stops the broker.
    pub handle: Handle,
    /// The broker's thread; joins with `run`'s result.
    pub thread: std::thread::JoinHandle<io::Result<()>>,
}

impl Handle {
    /// Asks the broker to shut down: it publishes every will, closes every connection (local
    /// clients too), and `run` returns (or `poll_once` returns `false`).
    ///
    /// ```
    /// let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// broker.handle.shutdown();
    /// broker.thread.join().expect("the broker thread panicked")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Wakes the loop (a local client sent something, or wants to).
    pub(crate) fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            warn!("could not wake the broker loop: {e}");
        }
    }

    /// The bound of a local client's unread output.
    pub(crate) fn output_cap(&self) -> usize {
        self.output_cap
    }

    /// Hands the loop's end of a local client's pipe to the loop; the client's security
    /// settings are listener `listener`'s. Fails if there is no such listener or the loop
    /// has stopped.
    pub(crate) fn admit(&self, stream: LocalStream, listener: usize) -> io::Result<()> {
        if listener >= self.listeners {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a local client borrows listener {listener}'s settings, but there are {}",
                    self.listeners
                ),
            ));
        }
        if self.stop.load(Ordering::SeqCst) {
            return Err(io::ErrorKind::NotConnected.into());
        }
        self.locals
            .send(NewLocal { stream, listener })
            .map_err(|_| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl Broker {
    /// Installs an embedder's hooks, before the loop runs.
    pub(crate) fn set_hooks(&mut self, hooks: Hooks) {
        self.state.hooks = hooks;
    }

    /// Binds the listeners and runs the broker on a new thread.
    pub fn spawn(config: Config) -> io::Result<Spawned> {
        Broker::spawn_with(config, Hooks::default())
    }

    /// `spawn` with an embedder's hooks (`embed::Builder::hooks`).
    pub(crate) fn spawn_with(config: Config, hooks: Hooks) -> io::Result<Spawned> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("pipit".into())
            .spawn(move || match Broker::bind(config) {
                Ok(mut broker) => {
                    broker.set_hooks(hooks);
                    // The receiver waits for this message; if it is gone, nobody can stop us.
                    let metrics_addr = broker.metrics_addr();
                    let _ = tx.send(Ok((broker.local_addrs(), metrics_addr, broker.handle())));
                    broker.run()
                }
                Err(e) => {
                    let kind = e.kind();
                    let _ = tx.send(Err(e));
                    Err(kind.into())
                }
            })?;
        let (addrs, metrics_addr, handle) = rx
            .recv()
            .map_err(|_| io::Error::other("broker thread exited before binding"))??;
        Ok(Spawned {
            addrs,
            metrics_addr,
            handle,
            thread,
        })
    }

    /// Admits new local clients, then reads and writes every local client whose pipe has
    /// input (or EOF) or room again, as a poll event would for a socket.
    pub(super) fn on_local(&mut self) {
        while let Ok(new) = self.locals.incoming.try_recv() {
            self.admit_local(new);
        }
        let mut i = 0;
        while let Some(&id) = self.locals.admitted.get(i) {
            let Some(pipe) = self.state.conns.get_mut(id).and_then(|c| c.socket.local()) else {
                self.locals.admitted.swap_remove(i);
                continue;
            };
            let writable = pipe.writable_again();
            let readable = pipe.readable();
            if readable || writable {
                let ready = Ready {
                    token: Token(id.index()),
                    readable,
                    writable,
                    // No edge follows data already taken off the channel: read it all now.
                    read_closed: true,
                };
                self.on_conn_event(id, ready);
            }
            i += 1;
        }
    }

    /// Makes a local client's pipe a connection, within `max_connections` (a local client
    /// counts as a client everywhere, `$SYS` included). Refused, its pipe is dropped, which
    /// its client reads as the connection closed.
    fn admit_local(&mut self, new: NewLocal) {
        let state = &mut self.state;
        if state
            .config
            .max_connections
            .is_some_and(|max| state.conns.len() >= max)
        {
            state.stats.connections_refused += 1;
            info!("refused a local client: max_connections reached");
            return;
        }
        let id = state.conns.next_id();
        let peer = SocketAddr::from(([127, 0, 0, 1], 0));
        let stream = crate::net::Stream::Local(Box::new(new.stream));
        let conn = Conn::new(id, stream, peer, new.listener, state.millis());
        state.conns.insert(conn);
        state.stats.connections_accepted += 1;
        self.locals.admitted.push(id);
        debug!("admitted a local client");
    }
}
