//! `LocalClient`: an MQTT 5 client inside the process, over an in-memory pipe to the loop.
//!
//! The client encodes its packets with the crate's own codec and sends them down the pipe,
//! then wakes the loop; what the loop sends back is decoded here into [`Event`]s. Messages
//! for its subscriptions are acknowledged as they are decoded (PUBACK; PUBREC, then PUBCOMP
//! for the PUBREL), so the broker's inflight window moves whenever the client takes input.
//! Blocking calls take input until their answer comes and keep every other event, in order,
//! for [`LocalClient::recv_timeout`], [`LocalClient::next_event`] and
//! [`LocalClient::poll_event`]. The client owns nothing of the broker's state.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use super::event::{Delivery, Event, on_packet};
use super::options::{LocalError, LocalOptions, Outgoing};
use crate::Handle;
use crate::net::local::{ClientEnd, pipe};
use crate::wire::{self, Connect, Disconnect, Properties, QoS, SubscriptionOptions, Version, Will};

/// An MQTT 5 client inside the process (see the [module](super) documentation). `Send`:
/// make it on one thread, use it on another. Dropped without [`LocalClient::disconnect`], it
/// is a client gone away: its will is published.
///
/// ```
/// use pipit::embed::{LocalOptions, Outgoing};
/// use pipit::wire::{QoS, SubscriptionOptions};
///
/// let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
/// let mut client = broker.handle.local_client(LocalOptions::new("me"))?;
/// client.subscribe(&[("echo", SubscriptionOptions::at(QoS::ExactlyOnce))])?;
/// client.publish(&Outgoing::new("echo", b"ping").qos(QoS::ExactlyOnce).retain(true))?;
/// let got = client.recv_timeout(std::time::Duration::from_secs(5))?.expect("a message");
/// assert_eq!((got.qos, &got.payload[..]), (QoS::ExactlyOnce, &b"ping"[..]));
/// client.disconnect();
/// broker.handle.shutdown();
/// # broker.thread.join().expect("the broker thread panicked")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LocalClient {
    pipe: ClientEnd,
    handle: Handle,
    /// Bytes from the broker not yet decoded (a frame split across chunks).
    input: Vec<u8>,
    /// Events decoded and not yet taken.
    events: VecDeque<Event>,
    /// Packet ids of QoS 2 messages received and not yet released (PUBREL): a re-sent
    /// PUBLISH with one of them is not delivered twice.
    inbound_qos2: HashSet<u16>,
    next_packet_id: u16,
    timeout: Duration,
    /// The pipe has closed (or a frame could not be decoded).
    closed: bool,
    /// A `Disconnected` event was made (there is only ever one).
    told_disconnected: bool,
}

impl Drop for LocalClient {
    /// Ends the input channel and wakes the loop, which reads it as the client gone (the
    /// will is published unless DISCONNECT came first).
    fn drop(&mut self) {
        let (ended, _) = std::sync::mpsc::channel();
        drop(std::mem::replace(&mut self.pipe.input, ended));
        self.handle.wake();
    }
}

impl std::fmt::Debug for LocalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalClient")
            .field("events", &self.events.len())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// Connects a local client and waits for the broker's CONNACK (the loop must be running
    /// on another thread; from the loop's own thread use [`Handle::start_local_client`]).
    /// A refused CONNECT is `LocalError::Refused` with the CONNACK reason code.
    ///
    /// ```
    /// let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// let client = broker.handle.local_client(pipit::embed::LocalOptions::new("c"))?;
    /// client.disconnect();
    /// # broker.handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_client(&self, options: LocalOptions) -> Result<LocalClient, LocalError> {
        let mut client = self.start_local_client(options)?;
        let connected = client.wait_for(|e| matches!(e, Event::Connected { .. }))?;
        match connected {
            Event::Connected { reason_code, .. } if reason_code >= 0x80 => {
                Err(LocalError::Refused(reason_code))
            }
            _ => Ok(client),
        }
    }

    /// Starts connecting a local client without waiting: its first event is
    /// [`Event::Connected`]. For a caller that drives the loop itself with
    /// [`Broker::poll_once`](crate::Broker::poll_once) on the same thread.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pipit::embed::{Event, LocalOptions};
    /// let mut broker = pipit::Broker::builder(pipit::embed::loopback_config()).bind()?;
    /// let mut client = broker.handle().start_local_client(LocalOptions::new("c"))?;
    /// let event = loop {
    ///     broker.poll_once(Duration::from_millis(10))?;
    ///     if let Some(event) = client.poll_event()? {
    ///         break event;
    ///     }
    /// };
    /// assert!(matches!(event, Event::Connected { reason_code: 0, .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_local_client(&self, options: LocalOptions) -> Result<LocalClient, LocalError> {
        let (stream, pipe) = pipe(self.output_cap(), options.on_output.clone());
        self.admit(stream, options.listener)
            .map_err(|_| LocalError::Unavailable)?;
        let mut client = LocalClient {
            pipe,
            handle: self.clone(),
            input: Vec::new(),
            events: VecDeque::new(),
            inbound_qos2: HashSet::new(),
            next_packet_id: 0,
            timeout: options.timeout,
            closed: false,
            told_disconnected: false,
        };
        let will = options.will.as_ref().map(|w| Will {
            topic: &w.topic,
            payload: &w.payload,
            qos: w.qos,
            retain: w.retain,
            properties: Properties::default(),
        });
        let connect = Connect {
            version: Version::V5,
            bridge: false,
            clean_start: options.clean_start,
            keep_alive: 0,
            properties: Properties {
                session_expiry_interval: Some(options.session_expiry_interval).filter(|&s| s != 0),
                ..Properties::default()
            },
            client_id: &options.client_id,
            will,
            username: options.username.as_deref(),
            password: options.password.as_deref(),
        };
        let mut out = Vec::with_capacity(connect.encoded_len());
        connect.encode(&mut out);
        client.send(out)?;
        Ok(client)
    }
}

impl LocalClient {
    /// Publishes `message`. QoS 0 returns once it is handed to the broker; QoS 1 and 2
    /// return once the broker has accepted it (PUBACK, or PUBCOMP: with persistence on, the
    /// broker acknowledges only what is durable), or with `LocalError::Refused` and the
    /// reason code (0x87 not authorized by the ACL, ...).
    ///
    /// ```
    /// # let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// # let mut client = broker.handle.local_client(pipit::embed::LocalOptions::new("c"))?;
    /// use pipit::wire::QoS;
    /// client.publish(&pipit::embed::Outgoing::new("a/b", b"1").qos(QoS::AtLeastOnce))?;
    /// # broker.handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(&mut self, message: &Outgoing<'_>) -> Result<(), LocalError> {
        let Some(id) = self.publish_nowait(message)? else {
            return Ok(());
        };
        match self
            .wait_for(|e| matches!(e, Event::Published { packet_id, .. } if *packet_id == id))?
        {
            Event::Published { reason_code, .. } if reason_code >= 0x80 => {
                Err(LocalError::Refused(reason_code))
            }
            _ => Ok(()),
        }
    }

    /// Sends `message` without waiting; for QoS 1 and 2, returns the packet identifier that
    /// [`Event::Published`] will carry.
    ///
    /// ```
    /// # let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// # let mut client = broker.handle.local_client(pipit::embed::LocalOptions::new("c"))?;
    /// let message = pipit::embed::Outgoing::new("a", b"1");
    /// assert_eq!(client.publish_nowait(&message)?, None, "QoS 0 has no packet id");
    /// # broker.handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_nowait(&mut self, message: &Outgoing<'_>) -> Result<Option<u16>, LocalError> {
        let packet_id = match message.qos {
            QoS::AtMostOnce => 0,
            QoS::AtLeastOnce | QoS::ExactlyOnce => self.packet_id(),
        };
        let publish = wire::Publish {
            dup: false,
            qos: message.qos,
            retain: message.retain,
            topic: message.topic,
            packet_id,
            properties: message.properties,
            payload: message.payload,
        };
        let mut out = Vec::with_capacity(publish.encoded_len(Version::V5, &[]));
        publish.encode(Version::V5, &[], &mut out);
        self.send(out)?;
        Ok((packet_id != 0).then_some(packet_id))
    }

    /// Subscribes to `filters` (`$share/{group}/...` for shared subscriptions) and waits for
    /// SUBACK: one code per filter, the granted QoS or an error (0x87 not authorized, ...).
    ///
    /// ```
    /// # let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// # let mut client = broker.handle.local_client(pipit::embed::LocalOptions::new("c"))?;
    /// use pipit::wire::{QoS, SubscriptionOptions};
    /// let codes = client.subscribe(&[
    ///     ("a/+", SubscriptionOptions::at(QoS::AtLeastOnce)),
    ///     ("$share/workers/jobs/#", SubscriptionOptions::at(QoS::AtMostOnce)),
    /// ])?;
    /// assert_eq!(codes, [1, 0]);
    /// # broker.handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(
        &mut self,
        filters: &[(&str, SubscriptionOptions)],
    ) -> Result<Vec<u8>, LocalError> {
        self.subscribe_with(filters, &Properties::default())
    }

    /// Like [`LocalClient::subscribe`], with SUBSCRIBE properties (a subscription
    /// identifier, user properties).
    ///
    /// ```
    /// # let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// # let mut client = broker.handle.local_client(pipit::embed::LocalOptions::new("c"))?;
    /// use pipit::wire::{Properties, QoS, SubscriptionOptions};
    /// let properties = Properties { subscription_identifier: Some(7), ..Properties::default() };
    /// let codes = client.subscribe_with(&[("x", SubscriptionOptions::at(QoS::AtMostOnce))], &properties)?;
    /// assert_eq!(codes, [0]);
    /// # broker.handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_with(
        &mut self,
        filters: &[(&str, SubscriptionOptions)],
        properties: &Properties<'_>,
    ) -> Result<Vec<u8>, LocalError> {
        let id = self.subscribe_nowait_with(filters, properties)?;
        match self
            .wait_for(|e| matches!(e, Event::Subscribed { packet_id, .. } if *packet_id == id))?
        {
            Event::Subscribed { reason_codes, .. } => Ok(reason_codes),
            _ => Err(LocalError::Closed),
        }
    }

    /// Sends SUBSCRIBE without waiting; returns the packet identifier that
    /// [`Event::Subscribed`] will carry.
    ///
    /// ```
    /// # let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// # let mut client = broker.handle.local_client(pipit::embed::LocalOptions::new("c"))?;
    /// use pipit::wire::{QoS, SubscriptionOptions};
    /// let id = client.subscribe_nowait(&[("x", SubscriptionOptions::at(QoS::AtMostOnce))])?;
    /// assert_ne!(id, 0);
    /// # broker.handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_nowait(
        &mut self,
        filters: &[(&str, SubscriptionOptions)],
    ) -> Result<u16, LocalError> {
        self.subscribe_nowait_with(filters, &Properties::default())
    }

    fn subscribe_nowait_with(
        &mut self,
        filters: &[(&str, SubscriptionOptions)],
        properties: &Properties<'_>,
    ) -> Result<u16, LocalError> {
        let packet_id = self.packet_id();
        let mut out = Vec::new();
        wire::encode_subscribe(packet_id, properties, filters, Version::V5, &mut out);
        self.send(out)?;
        Ok(packet_id)
    }

    /// Unsubscribes from `filters` and waits for UNSUBACK: one code per filter (0 removed,
    /// 0x11 no such subscription).
    ///
    /// ```
    /// # let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// # let mut client = broker.handle.local_client(pipit::embed::LocalOptions::new("c"))?;
    /// assert_eq!(client.unsubscribe(&["never/subscribed"])?, [0x11]);
    /// # broker.handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unsubscribe(&mut self, filters: &[&str]) -> Result<Vec<u8>, LocalError> {
        let id = self.packet_id();
        let mut out = Vec::new();
        wire::encode_unsubscribe(id, &Properties::default(), filters, Version::V5, &mut out);
        self.send(out)?;
        match self
            .wait_for(|e| matches!(e, Event::Unsubscribed { packet_id, .. } if *packet_id == id))?
        {
            Event::Unsubscribed { reason_codes, .. } => Ok(reason_codes),
            _ => Err(LocalError::Closed),
        }
    }

    /// The next message for the client's subscriptions, waiting at most `timeout`;
    /// `Ok(None)` if none came. Other events stay for [`LocalClient::next_event`]; the
    /// connection's end is `Err(LocalError::Closed)` once no message is left.
    ///
    /// ```
    /// # let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// # let mut client = broker.handle.local_client(pipit::embed::LocalOptions::new("c"))?;
    /// let nothing = client.recv_timeout(std::time::Duration::from_millis(10))?;
    /// assert_eq!(nothing, None);
    /// # broker.handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Delivery>, LocalError> {
        let deadline = Instant::now() + timeout;
        match self.wait_until(deadline, |e| matches!(e, Event::Message(_))) {
            Ok(Event::Message(delivery)) => Ok(Some(delivery)),
            Ok(_) => Err(LocalError::Closed),
            Err(LocalError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next event, waiting at most `timeout`; `Ok(None)` if none came, `Err(Closed)`
    /// once the connection has ended and every event was taken.
    ///
    /// ```
    /// # let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// # let mut client = broker.handle.local_client(pipit::embed::LocalOptions::new("c"))?;
    /// assert_eq!(client.next_event(std::time::Duration::from_millis(10))?, None);
    /// # broker.handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, LocalError> {
        match self.wait_until(Instant::now() + timeout, |_| true) {
            Ok(event) => Ok(Some(event)),
            Err(LocalError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next event if one is there, without waiting (for a caller's own loop, e.g. on
    /// the [`LocalOptions::on_output`] signal).
    ///
    /// ```
    /// # let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// # let mut client = broker.handle.local_client(pipit::embed::LocalOptions::new("c"))?;
    /// assert_eq!(client.poll_event()?, None);
    /// # broker.handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_event(&mut self) -> Result<Option<Event>, LocalError> {
        while self.take_input(None)? {}
        match self.events.pop_front() {
            Some(event) => Ok(Some(event)),
            None if self.closed => Err(LocalError::Closed),
            None => Ok(None),
        }
    }

    /// Disconnects normally (DISCONNECT, reason 0): the will is not published.
    ///
    /// ```
    /// # let broker = pipit::Broker::builder(pipit::embed::loopback_config()).spawn()?;
    /// let client = broker.handle.local_client(pipit::embed::LocalOptions::new("c"))?;
    /// client.disconnect();
    /// # broker.handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn disconnect(mut self) {
        let mut out = Vec::new();
        Disconnect {
            reason_code: 0,
            properties: Properties::default(),
        }
        .encode(Version::V5, &mut out);
        // Already closed: there is nobody left to tell.
        let _ = self.send(out);
    }

    /// The next packet identifier (never 0).
    fn packet_id(&mut self) -> u16 {
        self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
        self.next_packet_id
    }

    /// Sends bytes to the loop and wakes it.
    fn send(&mut self, bytes: Vec<u8>) -> Result<(), LocalError> {
        if self.closed || self.pipe.input.send(bytes).is_err() {
            return Err(LocalError::Closed);
        }
        self.handle.wake();
        Ok(())
    }

    /// The first event `wanted` accepts (earlier ones are kept), waiting the client's timeout.
    fn wait_for(&mut self, wanted: impl FnMut(&Event) -> bool) -> Result<Event, LocalError> {
        self.wait_until(Instant::now() + self.timeout, wanted)
    }

    fn wait_until(
        &mut self,
        deadline: Instant,
        mut wanted: impl FnMut(&Event) -> bool,
    ) -> Result<Event, LocalError> {
        let mut seen = 0;
        loop {
            if let Some(i) = self.events.iter().skip(seen).position(&mut wanted) {
                return self.events.remove(seen + i).ok_or(LocalError::Closed);
            }
            seen = self.events.len();
            if self.closed {
                return Err(LocalError::Closed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(LocalError::Timeout);
            }
            self.take_input(Some(deadline - now))?;
        }
    }

    /// Takes one chunk of the broker's output, waiting at most `wait` (`None`: not at all),
    /// and decodes what it completes; `false` if there was none.
    fn take_input(&mut self, wait: Option<Duration>) -> Result<bool, LocalError> {
        if self.closed {
            return Ok(false);
        }
        let chunk = match wait {
            None => match self.pipe.output.try_recv() {
                Ok(chunk) => Some(chunk),
                Err(TryRecvError::Empty) => return Ok(false),
                Err(TryRecvError::Disconnected) => None,
            },
            Some(wait) => match self.pipe.output.recv_timeout(wait) {
                Ok(chunk) => Some(chunk),
                Err(RecvTimeoutError::Timeout) => return Ok(false),
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        let Some(chunk) = chunk else {
            self.close();
            return Ok(false);
        };
        let shared = &self.pipe.shared;
        shared.unread.fetch_sub(chunk.len(), Ordering::SeqCst);
        // The loop stopped writing at the bound: tell it there is room again.
        if shared.blocked.load(Ordering::SeqCst) {
            self.handle.wake();
        }
        self.input.extend_from_slice(&chunk);
        self.decode()?;
        Ok(true)
    }

    /// Turns every complete frame in `input` into events, answering the broker's PUBLISHes.
    fn decode(&mut self) -> Result<(), LocalError> {
        let mut at = 0;
        let mut replies = Vec::new();
        loop {
            let buf = &self.input[at..];
            let (event, len) = match wire::decode(buf, Version::V5, wire::MAX_PACKET_SIZE) {
                Ok(None) => break,
                Ok(Some((packet, len))) => (
                    on_packet(&packet, &buf[..len], &mut self.inbound_qos2, &mut replies),
                    len,
                ),
                Err(e) => {
                    log::debug!("local client: undecodable frame from the broker: {e}");
                    self.close();
                    break;
                }
            };
            at += len;
            if let Some(Event::Disconnected { .. }) = event {
                self.told_disconnected = true;
            }
            self.events.extend(event);
        }
        self.input.drain(..at);
        if !replies.is_empty() {
            self.send(replies)?;
        }
        Ok(())
    }

    /// Marks the connection closed, with a `Disconnected` event unless one came already.
    fn close(&mut self) {
        self.closed = true;
        if !self.told_disconnected {
            self.told_disconnected = true;
            self.events
                .push_back(Event::Disconnected { reason_code: None });
        }
    }
}
