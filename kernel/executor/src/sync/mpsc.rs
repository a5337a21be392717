//! A bounded multi-producer, single-consumer channel.
//!
//! Capacity is a [`Semaphore`]: a sender takes a permit per value (waiting in
//! FIFO order when the channel is full), the receiver gives it back when it
//! takes the value out. Dropping the receiver closes the semaphore, which
//! fails every waiting and future send.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use super::{Closed, Semaphore};
use crate::holders::Handle;
use crate::resource::{CountedOp, Resource, ResourceKind, WaitOp, WaitSpan};
use crate::spin::Spin;

/// The receiver is gone; the value that could not be sent is inside.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel receiver dropped")
    }
}

impl<T> core::error::Error for SendError<T> {}

/// Why [`Sender::try_send`] failed; the value is inside.
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is at capacity.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("channel full"),
            TrySendError::Closed(_) => f.write_str("channel receiver dropped"),
        }
    }
}

impl<T> core::error::Error for TrySendError<T> {}

struct Chan<T> {
    capacity: Semaphore,
    state: Spin<State<T>>,
    resource: Resource,
}

struct State<T> {
    buffer: VecDeque<T>,
    rx_waker: Option<Waker>,
    senders: usize,
    rx_alive: bool,
}

/// Creates a channel holding at most `capacity` values.
///
/// # Panics
///
/// If `capacity` is zero.
#[track_caller]
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    named_channel("", capacity)
}

/// [`channel`] with a name the trace shows.
///
/// # Panics
///
/// If `capacity` is zero.
#[track_caller]
pub fn named_channel<T>(name: &'static str, capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "a bounded channel needs capacity");
    let chan = Arc::new(Chan {
        resource: Resource::new(ResourceKind::Channel, name, Some(capacity as u64)),
        capacity: Semaphore::untracked(capacity),
        state: Spin::new(State {
            buffer: VecDeque::with_capacity(capacity),
            rx_waker: None,
            senders: 1,
            rx_alive: true,
        }),
    });
    let handle = Handle::new(&chan.resource);
    (
        Sender {
            chan: chan.clone(),
            handle,
        },
        Receiver { chan },
    )
}

/// Sends values; clone it for more producers.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
    /// Who holds it, for the trace ([`crate::holders`]).
    handle: Handle,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting for room.
    ///
    /// # Errors
    ///
    /// Gives `value` back if the receiver is gone.
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.handle.used(&self.chan.resource);
        match self
            .chan
            .capacity
            .acquire_for(1, self.chan.resource.id(), WaitOp::Send)
            .await
        {
            Ok(permit) => permit.forget(),
            Err(Closed) => return Err(SendError(value)),
        }
        self.push(value).map_err(SendError)
    }

    /// Sends `value` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the value.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.handle.used(&self.chan.resource);
        match self.chan.capacity.try_acquire(1) {
            Ok(permit) => permit.forget(),
            Err(Some(Closed)) => return Err(TrySendError::Closed(value)),
            Err(None) => return Err(TrySendError::Full(value)),
        }
        self.push(value).map_err(TrySendError::Closed)
    }

    /// Pushes a value whose capacity permit was taken.
    fn push(&self, value: T) -> Result<(), T> {
        let waker = {
            let mut state = self.chan.state.lock();
            if !state.rx_alive {
                return Err(value);
            }
            state.buffer.push_back(value);
            state.rx_waker.take()
        };
        self.chan.resource.count(CountedOp::Send);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Whether the receiver was dropped.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.chan.capacity.is_closed()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.state.lock().senders += 1;
        Sender {
            chan: self.chan.clone(),
            handle: Handle::new(&self.chan.resource),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.handle.release(&self.chan.resource);
        let waker = {
            let mut state = self.chan.state.lock();
            state.senders -= 1;
            if state.senders == 0 {
                state.rx_waker.take()
            } else {
                None
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Sender").finish_non_exhaustive()
    }
}

/// Receives values in the order they were sent (per sender).
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Waits for the next value; `None` once every sender is gone and the
    /// buffer is empty.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { rx: self, wait: None }
    }

    /// Polls for the next value (see [`Receiver::recv`]).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let value = {
            let mut state = self.chan.state.lock();
            match state.buffer.pop_front() {
                Some(value) => value,
                None if state.senders == 0 => return Poll::Ready(None),
                None => {
                    match &mut state.rx_waker {
                        Some(waker) if waker.will_wake(cx.waker()) => {}
                        slot => *slot = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                }
            }
        };
        self.chan.capacity.add_permits(1);
        self.chan.resource.count(CountedOp::Recv);
        Poll::Ready(Some(value))
    }

    /// Takes the next value if there is one.
    ///
    /// # Errors
    ///
    /// `Err(true)` if the channel is empty and every sender is gone,
    /// `Err(false)` if it is just empty.
    pub fn try_recv(&mut self) -> Result<T, bool> {
        let value = {
            let mut state = self.chan.state.lock();
            match state.buffer.pop_front() {
                Some(value) => value,
                None => return Err(state.senders == 0),
            }
        };
        self.chan.capacity.add_permits(1);
        self.chan.resource.count(CountedOp::Recv);
        Ok(value)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.capacity.close();
        let buffer = {
            let mut state = self.chan.state.lock();
            state.rx_alive = false;
            core::mem::take(&mut state.buffer)
        };
        // Dropped outside the lock: `T`'s destructor may do anything.
        drop(buffer);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Receiver").finish_non_exhaustive()
    }
}

/// The future returned by [`Receiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T> {
    rx: &'a mut Receiver<T>,
    /// Made when the receive first waits: a plain `None` until then, which the
    /// compiler can see through on a receive that completes at once (the span's
    /// atomics it could not).
    wait: Option<WaitSpan>,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let poll = this.rx.poll_recv(cx);
        if poll.is_pending() {
            let resource = this.rx.chan.resource.id();
            if resource != 0 {
                this.wait
                    .get_or_insert_with(WaitSpan::new)
                    .pending(resource, WaitOp::Recv);
            }
        } else if let Some(wait) = &this.wait {
            wait.ready();
        }
        poll
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").finish_non_exhaustive()
    }
}
