//! A queue of tasks waiting for a notification.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use super::Closed;
use super::waiter::{List, Node, WaitState, WakeBatch, set_waker};
use crate::resource::{Resource, ResourceKind, WaitOp, WaitSpan};
use crate::spin::Spin;

/// Marks (in `Waiter::want`, unused by wait queues) a waiter woken by
/// [`WaitQueue::wake`] rather than [`WaitQueue::wake_all`].
const WAKE_ONE: usize = 1;

/// Tasks wait in FIFO order until woken.
///
/// [`WaitQueue::wake`] with nobody waiting stores one wake-up that the next
/// [`WaitQueue::wait`] consumes at once (like `Notify::notify_one`), so a
/// "check condition, then wait" sequence cannot miss a wake that lands in
/// between. [`WaitQueue::wake_all`] only wakes current waiters.
pub struct WaitQueue {
    inner: Spin<Inner>,
    resource: Resource,
}

struct Inner {
    waiters: List,
    wakeup: bool,
    closed: bool,
}

impl Default for WaitQueue {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    /// An empty, open queue.
    #[must_use]
    #[track_caller]
    pub fn new() -> Self {
        Self::named("")
    }

    /// An empty, open queue with a name the trace shows.
    #[must_use]
    #[track_caller]
    pub fn named(name: &'static str) -> Self {
        Self {
            inner: Spin::new(Inner {
                waiters: List::new(),
                wakeup: false,
                closed: false,
            }),
            resource: Resource::new(ResourceKind::WaitQueue, name, None),
        }
    }

    /// A queue that is part of another primitive, which reports the waits on
    /// it as its own (see [`WaitQueue::wait_for`]).
    #[must_use]
    pub fn untracked() -> Self {
        Self {
            inner: Spin::new(Inner {
                waiters: List::new(),
                wakeup: false,
                closed: false,
            }),
            resource: Resource::untracked(),
        }
    }

    /// Waits for a wake-up.
    pub fn wait(&self) -> Wait<'_> {
        self.wait_for(self.resource.id(), WaitOp::Wait)
    }

    /// [`WaitQueue::wait`], reported as `op` on `resource` (a
    /// [`Resource::id`]) if it waits.
    pub fn wait_for(&self, resource: u64, op: WaitOp) -> Wait<'_> {
        Wait {
            queue: self,
            node: Node::new(0),
            resource,
            op,
            wait: WaitSpan::new(),
        }
    }

    /// Wakes the longest waiter, or stores a wake-up if nobody waits.
    pub fn wake(&self) {
        let waker = {
            let mut inner = self.inner.lock();
            Self::wake_one_locked(&mut inner)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn wake_one_locked(inner: &mut Inner) -> Option<Waker> {
        match inner.waiters.0.pop_front() {
            Some(ptr) => {
                // SAFETY: the node was linked until now, so its future is
                // alive, and we hold the lock that guards it.
                unsafe {
                    (*ptr.as_ptr()).state = WaitState::Woken;
                    (*ptr.as_ptr()).want = WAKE_ONE;
                    (*ptr.as_ptr()).waker.take()
                }
            }
            None => {
                if !inner.closed {
                    inner.wakeup = true;
                }
                None
            }
        }
    }

    /// Wakes every current waiter.
    pub fn wake_all(&self) {
        self.drain(WaitState::Woken);
    }

    /// Closes the queue: current and future waiters get [`Closed`].
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.drain(WaitState::Closed);
    }

    /// Whether [`WaitQueue::close`] was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    fn drain(&self, to: WaitState) {
        loop {
            let mut batch = WakeBatch::new();
            let more = {
                let mut inner = self.inner.lock();
                loop {
                    if batch.is_full() {
                        break true;
                    }
                    let Some(ptr) = inner.waiters.0.pop_front() else {
                        break false;
                    };
                    // SAFETY: as in `wake_one_locked`.
                    unsafe {
                        (*ptr.as_ptr()).state = to;
                        batch.push((*ptr.as_ptr()).waker.take());
                    }
                }
            };
            batch.wake_all();
            if !more {
                return;
            }
        }
    }
}

impl fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("WaitQueue")
            .field("waiters", &inner.waiters.0.len())
            .field("wakeup", &inner.wakeup)
            .field("closed", &inner.closed)
            .finish()
    }
}

/// The future returned by [`WaitQueue::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<'a> {
    queue: &'a WaitQueue,
    node: Node,
    /// Reported as the resource waited on.
    resource: u64,
    op: WaitOp,
    wait: WaitSpan,
}

impl Future for Wait<'_> {
    type Output = Result<(), Closed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.into_ref().get_ref();
        let poll = this.poll_locked(cx);
        if poll.is_pending() {
            this.wait.pending(this.resource, this.op);
        } else {
            this.wait.ready();
        }
        poll
    }
}

impl Wait<'_> {
    fn poll_locked(&self, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        let this = self;
        let ptr = this.node.ptr();
        let mut inner = this.queue.inner.lock();
        // SAFETY: we hold the lock that guards the node, which lives as long
        // as `self`.
        let waiter = unsafe { &mut *ptr.as_ptr() };
        match waiter.state {
            WaitState::Start => {
                if inner.closed {
                    waiter.state = WaitState::Done;
                    return Poll::Ready(Err(Closed));
                }
                if inner.wakeup {
                    inner.wakeup = false;
                    waiter.state = WaitState::Done;
                    return Poll::Ready(Ok(()));
                }
                set_waker(waiter, cx.waker());
                waiter.state = WaitState::Queued;
                // `self` is pinned: the node stays put until `Drop` unlinks it.
                inner.waiters.0.push_back(ptr);
                Poll::Pending
            }
            WaitState::Queued => {
                set_waker(waiter, cx.waker());
                Poll::Pending
            }
            WaitState::Woken => {
                waiter.state = WaitState::Done;
                Poll::Ready(Ok(()))
            }
            WaitState::Closed => {
                waiter.state = WaitState::Done;
                Poll::Ready(Err(Closed))
            }
            WaitState::Done => panic!("Wait polled after completion"),
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let ptr = self.node.ptr();
        let waker = {
            let mut inner = self.queue.inner.lock();
            // SAFETY: we hold the lock that guards the node.
            match unsafe { (*ptr.as_ptr()).state } {
                WaitState::Queued => {
                    // SAFETY: `Queued` means the node is in this list.
                    unsafe { inner.waiters.0.remove(ptr) };
                    None
                }
                // Woken by `wake` but dropped before it saw the wake-up: pass
                // it on so it is not lost. (`wake_all` and `close` reach
                // every waiter, so theirs need no passing on.)
                // SAFETY: we hold the lock that guards the node.
                WaitState::Woken if unsafe { (*ptr.as_ptr()).want } == WAKE_ONE => {
                    WaitQueue::wake_one_locked(&mut inner)
                }
                WaitState::Woken => None,
                WaitState::Start | WaitState::Closed | WaitState::Done => None,
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait").finish_non_exhaustive()
    }
}
