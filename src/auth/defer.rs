//! Deferred hook decisions: a hook that cannot answer at once (a database or an HTTP
//! look-up) takes a [`Later`] from the [`Defer`] it is handed, answers "later", and
//! completes the `Later` from any thread. The completion goes through a channel and wakes
//! the loop with its `mio::Waker`; the loop stays the only owner of the broker's state.
//!
//! Invariants, kept by the loop (`broker/decide.rs`):
//! - While a connection waits for a decision, the packet that asked for it stays at the
//!   front of its input buffer and nothing behind it is handled or read (back-pressure);
//!   once every answer is in, the packet is handled again with the answers in place of
//!   the hook's, so per-connection packet order holds.
//! - A completion names its connection by `ConnId` (with a generation) and a ticket: one
//!   for a connection that has gone, or for a decision no longer waited for, is ignored.
//! - A `Later` dropped without an answer refuses (not authorised), so a hook that loses
//!   its handle cannot leave a connection waiting for ever.

#![deny(missing_docs)]

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use mio::Waker;

use crate::auth::AuthResult;
use crate::auth::hooks::Step;
use crate::ids::ConnId;

/// An answer a hook gives, now or later: `bool` for an authorization, [`Step`] for an
/// authentication step. Sealed: no other type is an answer.
///
/// ```
/// fn answers<T: pipit::auth::defer::Answer>() {}
/// answers::<bool>();
/// answers::<pipit::auth::hooks::Step>();
/// ```
pub trait Answer: sealed::Answer + Send + 'static {}

impl Answer for bool {}
impl Answer for Step {}

pub(crate) use sealed::Completion;

mod sealed {
    use super::*;

    /// A completed answer, on its way to the loop or waiting there for its packet
    /// (nameable only inside the crate).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Completion {
        /// An authorization: allowed or not.
        Access(bool),
        /// An authentication step.
        Auth(Step),
    }

    /// The conversion an answer makes to what crosses the channel.
    pub trait Answer {
        /// The answer as a completion.
        fn completion(self) -> Completion;
        /// The answer of a `Later` dropped without one: a refusal.
        fn abandoned() -> Completion;
    }

    impl Answer for bool {
        fn completion(self) -> Completion {
            Completion::Access(self)
        }
        fn abandoned() -> Completion {
            Completion::Access(false)
        }
    }

    impl Answer for Step {
        fn completion(self) -> Completion {
            Completion::Auth(self)
        }
        fn abandoned() -> Completion {
            Completion::Auth(Step::Done(AuthResult::NotAuthorized))
        }
    }
}

/// One answer from a hook's thread to the loop.
#[derive(Debug)]
pub(crate) struct Done {
    pub conn: ConnId,
    pub ticket: u64,
    pub index: usize,
    pub completion: Completion,
}

/// The loop's way of handing out `Later`s: the sending end of its completion channel, its
/// waker, and the next ticket.
#[derive(Debug)]
pub(crate) struct Deferrals {
    sender: Sender<Done>,
    waker: Option<Arc<Waker>>,
    next_ticket: u64,
}

impl Deferrals {
    /// The loop's two ends: what `State` keeps, and the receiver the loop drains on a wake.
    pub(crate) fn new() -> (Deferrals, Receiver<Done>) {
        let (sender, receiver) = std::sync::mpsc::channel();
        let deferrals = Deferrals {
            sender,
            waker: None,
            next_ticket: 0,
        };
        (deferrals, receiver)
    }

    /// Sets the waker completions wake the loop with.
    pub(crate) fn set_waker(&mut self, waker: Arc<Waker>) {
        self.waker = Some(waker);
    }

    /// A new ticket, for one packet's decisions.
    pub(crate) fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    /// What a hook is handed for answer `index` of `ticket` on `conn`; `deferred` is set if
    /// it takes a `Later`.
    pub(crate) fn defer<'a, T: Answer>(
        &'a self,
        conn: ConnId,
        ticket: u64,
        index: usize,
        deferred: &'a mut bool,
    ) -> Defer<'a, T> {
        Defer {
            deferrals: self,
            conn,
            ticket,
            index,
            deferred,
            answer: PhantomData,
        }
    }
}

/// Handed to a hook with each question it may answer later: [`Defer::later`] gives the
/// [`Later`] to complete, from any thread, once the answer is known.
///
/// ```
/// use pipit::auth::AuthResult;
/// use pipit::auth::defer::Defer;
/// use pipit::auth::hooks::{Authenticate, Credentials, Step};
///
/// /// Asks a directory thread about every user.
/// struct Directory(std::sync::mpsc::Sender<(String, pipit::auth::defer::Later<Step>)>);
/// impl Authenticate for Directory {
///     fn step(&mut self, c: &Credentials<'_>, _files: AuthResult, defer: Defer<'_, Step>) -> Step {
///         let user = c.username.unwrap_or_default().to_owned();
///         match self.0.send((user, defer.later())) {
///             Ok(()) => Step::Later,
///             // The directory is gone: the dropped `Later` refuses, and so does this.
///             Err(_) => Step::Done(AuthResult::NotAuthorized),
///         }
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Defer<'a, T: Answer> {
    deferrals: &'a Deferrals,
    conn: ConnId,
    ticket: u64,
    index: usize,
    deferred: &'a mut bool,
    answer: PhantomData<fn(T)>,
}

impl<T: Answer> Defer<'_, T> {
    /// The handle to answer with later; the hook then returns its "later" answer
    /// (`Step::Later`, or `None` from `Authorize::authorize_later`).
    ///
    /// ```
    /// use pipit::auth::defer::{Defer, Later};
    /// fn keep(defer: Defer<'_, bool>) -> Later<bool> {
    ///     defer.later()
    /// }
    /// ```
    pub fn later(self) -> Later<T> {
        *self.deferred = true;
        Later {
            sender: Some(self.deferrals.sender.clone()),
            waker: self.deferrals.waker.clone(),
            conn: self.conn,
            ticket: self.ticket,
            index: self.index,
            answer: PhantomData,
        }
    }
}

/// A decision a hook owes the broker: [`Later::complete`] it from any thread. Dropped
/// without an answer, it refuses (the client is not authorised).
///
/// ```
/// use pipit::auth::defer::Later;
/// fn answer_on_a_thread(later: Later<bool>) {
///     std::thread::spawn(move || later.complete(true));
/// }
/// ```
#[derive(Debug)]
pub struct Later<T: Answer> {
    sender: Option<Sender<Done>>,
    waker: Option<Arc<Waker>>,
    conn: ConnId,
    ticket: u64,
    index: usize,
    answer: PhantomData<fn(T)>,
}

impl<T: Answer> Later<T> {
    /// Gives the answer and wakes the broker; ignored if the client has gone meanwhile.
    ///
    /// ```
    /// fn allow(later: pipit::auth::defer::Later<bool>) {
    ///     later.complete(true);
    /// }
    /// ```
    pub fn complete(mut self, answer: T) {
        self.send(answer.completion());
    }

    fn send(&mut self, completion: Completion) {
        let Some(sender) = self.sender.take() else {
            return;
        };
        let done = Done {
            conn: self.conn,
            ticket: self.ticket,
            index: self.index,
            completion,
        };
        // A broker that has stopped has nobody left to answer.
        if sender.send(done).is_ok()
            && let Some(waker) = &self.waker
            && let Err(e) = waker.wake()
        {
            log::warn!("could not wake the broker loop: {e}");
        }
    }
}

impl<T: Answer> Drop for Later<T> {
    fn drop(&mut self) {
        self.send(T::abandoned());
    }
}

/// A connection's part in hook decisions and MQTT 5 enhanced authentication.
#[derive(Debug, Default)]
pub(crate) struct ConnHooks {
    /// The decisions the packet at the front of the input buffer waits for.
    pub pending: Option<Pending>,
    /// The Authentication Method of the CONNECT, for enhanced authentication
    /// [MQTT-4.12.0-5].
    pub method: Option<Box<str>>,
    /// During an enhanced authentication exchange at connect: the CONNECT, handled again
    /// when the exchange succeeds. `None` once connected.
    pub connect: Option<Box<[u8]>>,
    /// Set by the CONNECT handler that started an exchange: the loop keeps the packet's
    /// bytes in `connect` once it is handled.
    pub keep_connect: bool,
    /// A re-authentication [MQTT-4.12.1-1] is under way.
    pub reauthenticating: bool,
    /// The exchange's verdict, for the CONNECT handled again: the Authentication Data for
    /// the CONNACK.
    pub accepted: Option<Option<Vec<u8>>>,
    /// The client id the broker assigned to a CONNECT with an empty one, kept while the
    /// CONNECT waits, so the CONNECT handled again gets the id the hook was asked about.
    pub assigned_id: Option<Box<str>>,
}

/// The answers one packet waits for.
#[derive(Debug)]
pub(crate) struct Pending {
    /// Which `Later`s belong to it.
    pub ticket: u64,
    /// One slot per question, in the order they were asked.
    pub answers: Vec<Option<Completion>>,
}

impl Pending {
    /// Whether every answer is in.
    pub fn complete(&self) -> bool {
        self.answers.iter().all(Option::is_some)
    }
}

impl ConnHooks {
    /// Whether the connection waits for an answer not yet given (its input is not handled).
    pub fn waiting(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| !p.complete())
    }

    /// The answers to the packet at the front of the input buffer, if they are all in;
    /// taken, so the next packet asks afresh.
    pub fn take_answers(&mut self) -> Option<Vec<Completion>> {
        if !self.pending.as_ref().is_some_and(Pending::complete) {
            return None;
        }
        let pending = self.pending.take()?;
        Some(pending.answers.into_iter().flatten().collect())
    }

    /// Records `done` if the connection waits for it; whether that completed its packet's
    /// answers (and it should be resumed).
    pub fn record(&mut self, done: Done) -> bool {
        let Some(pending) = self.pending.as_mut().filter(|p| p.ticket == done.ticket) else {
            return false;
        };
        match pending.answers.get_mut(done.index) {
            Some(slot @ None) => *slot = Some(done.completion),
            _ => return false,
        }
        pending.complete()
    }
}
