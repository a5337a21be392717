//! A channel for exactly one value.

use alloc::sync::Arc;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use crate::resource::{Resource, ResourceKind, WaitOp, WaitSpan};
use crate::spin::Spin;

/// The sender was dropped without sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oneshot sender dropped without sending")
    }
}

impl core::error::Error for RecvError {}

struct State<T> {
    value: Option<T>,
    rx_waker: Option<Waker>,
    tx_alive: bool,
    rx_alive: bool,
    resource: Resource,
}

/// Creates a connected sender and receiver.
#[track_caller]
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Spin::new(State {
        value: None,
        rx_waker: None,
        tx_alive: true,
        rx_alive: true,
        resource: Resource::new(ResourceKind::Oneshot, "", Some(1)),
    }));
    (
        Sender { shared: shared.clone() },
        Receiver {
            shared,
            wait: WaitSpan::new(),
        },
    )
}

/// Sends the value; dropping it unsent makes the receiver see [`RecvError`].
pub struct Sender<T> {
    shared: Arc<Spin<State<T>>>,
}

impl<T> Sender<T> {
    /// Sends `value`.
    ///
    /// # Errors
    ///
    /// Gives `value` back if the receiver is gone.
    pub fn send(self, value: T) -> Result<(), T> {
        let waker = {
            let mut state = self.shared.lock();
            if !state.rx_alive {
                return Err(value);
            }
            state.value = Some(value);
            state.rx_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Whether the receiver was dropped.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        !self.shared.lock().rx_alive
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.lock();
            state.tx_alive = false;
            state.rx_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Sender").finish_non_exhaustive()
    }
}

/// Awaits the value.
pub struct Receiver<T> {
    shared: Arc<Spin<State<T>>>,
    wait: WaitSpan,
}

impl<T> Receiver<T> {
    /// Takes the value if it has been sent.
    ///
    /// # Errors
    ///
    /// `Err(Some(RecvError))` if the sender is gone without sending,
    /// `Err(None)` if nothing was sent yet.
    pub fn try_recv(&mut self) -> Result<T, Option<RecvError>> {
        let mut state = self.shared.lock();
        match state.value.take() {
            Some(value) => Ok(value),
            None if !state.tx_alive => Err(Some(RecvError)),
            None => Err(None),
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (poll, resource) = {
            let mut state = self.shared.lock();
            let poll = if let Some(value) = state.value.take() {
                Poll::Ready(Ok(value))
            } else if !state.tx_alive {
                Poll::Ready(Err(RecvError))
            } else {
                match &mut state.rx_waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            };
            (poll, state.resource.id())
        };
        if poll.is_pending() {
            self.wait.pending(resource, WaitOp::Recv);
        } else {
            self.wait.ready();
        }
        poll
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let value = {
            let mut state = self.shared.lock();
            state.rx_alive = false;
            state.value.take()
        };
        // Dropped outside the lock: `T`'s destructor may do anything.
        drop(value);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Receiver").finish_non_exhaustive()
    }
}
