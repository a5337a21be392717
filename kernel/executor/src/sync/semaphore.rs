//! A fair (FIFO) counting semaphore, and an async mutex built on it.

use core::fmt;
use core::future::Future;
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::task::{Context, Poll};

use super::Closed;
use super::waiter::{List, Node, WaitState, WakeBatch, set_waker};
use crate::holders;
use crate::loom::cell::UnsafeCell;
use crate::resource::{CountedOp, Resource, ResourceKind, WaitOp, WaitSpan};
use crate::spin::Spin;

/// A counting semaphore. Waiters are served in arrival order: a large
/// request at the head is not overtaken by smaller ones behind it.
pub struct Semaphore {
    inner: Spin<Inner>,
    resource: Resource,
}

struct Inner {
    permits: usize,
    waiters: List,
    closed: bool,
}

impl Semaphore {
    /// The most permits a semaphore can hold.
    pub const MAX_PERMITS: usize = usize::MAX >> 1;

    /// A semaphore with `permits` permits.
    ///
    /// # Panics
    ///
    /// If `permits` exceeds [`Semaphore::MAX_PERMITS`].
    #[must_use]
    #[track_caller]
    pub fn new(permits: usize) -> Self {
        Self::with_resource(
            permits,
            Resource::new(ResourceKind::Semaphore, "", Some(permits as u64)),
        )
    }

    /// A semaphore that is part of another primitive, which reports the
    /// waits on it as its own.
    #[track_caller]
    pub(crate) fn untracked(permits: usize) -> Self {
        Self::with_resource(permits, Resource::untracked())
    }

    #[track_caller]
    fn with_resource(permits: usize, resource: Resource) -> Self {
        assert!(permits <= Self::MAX_PERMITS, "too many permits");
        Self {
            inner: Spin::new(Inner {
                permits,
                waiters: List::new(),
                closed: false,
            }),
            resource,
        }
    }

    /// Permits available right now.
    #[must_use]
    pub fn available_permits(&self) -> usize {
        self.inner.lock().permits
    }

    /// Whether [`Semaphore::close`] was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// Waits for `n` permits.
    pub fn acquire(&self, n: usize) -> Acquire<'_> {
        self.acquire_for(n, self.resource.id(), WaitOp::Acquire)
    }

    /// [`Semaphore::acquire`], reported as `op` on `resource` if it waits.
    pub(crate) fn acquire_for(&self, n: usize, resource: u64, op: WaitOp) -> Acquire<'_> {
        Acquire {
            sem: self,
            node: Node::new(n),
            resource,
            op,
            wait: WaitSpan::new(),
        }
    }

    /// Takes `n` permits if they are available and nobody is waiting.
    ///
    /// # Errors
    ///
    /// `Err(Some(Closed))` if closed, `Err(None)` if the permits are not
    /// available now.
    pub fn try_acquire(&self, n: usize) -> Result<Permit<'_>, Option<Closed>> {
        self.try_acquire_as(n, CountedOp::Acquire)
    }

    /// [`Semaphore::try_acquire`], counted as `op` on the semaphore's resource.
    pub(crate) fn try_acquire_as(&self, n: usize, op: CountedOp) -> Result<Permit<'_>, Option<Closed>> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Err(Some(Closed));
        }
        if inner.waiters.0.is_empty() && inner.permits >= n {
            inner.permits -= n;
            drop(inner);
            self.resource.count(op);
            Ok(Permit { sem: self, permits: n })
        } else {
            Err(None)
        }
    }

    /// Adds `n` permits, waking the waiters they satisfy.
    ///
    /// # Panics
    ///
    /// If the total would exceed [`Semaphore::MAX_PERMITS`].
    pub fn add_permits(&self, n: usize) {
        let mut n = n;
        loop {
            let mut batch = WakeBatch::new();
            let more = {
                let mut inner = self.inner.lock();
                inner.permits = inner
                    .permits
                    .checked_add(n)
                    .filter(|&p| p <= Self::MAX_PERMITS)
                    .expect("semaphore permit overflow");
                n = 0;
                grant(&mut inner, &mut batch)
            };
            batch.wake_all();
            if !more {
                return;
            }
        }
    }

    /// Closes the semaphore: every waiter, present and future, gets
    /// [`Closed`]. Permits already handed out stay valid.
    pub fn close(&self) {
        loop {
            let mut batch = WakeBatch::new();
            let more = {
                let mut inner = self.inner.lock();
                inner.closed = true;
                loop {
                    if batch.is_full() {
                        break true;
                    }
                    let Some(ptr) = inner.waiters.0.pop_front() else {
                        break false;
                    };
                    // SAFETY: the node was linked until now, so its future is
                    // alive, and we hold the lock that guards it.
                    unsafe {
                        (*ptr.as_ptr()).state = WaitState::Closed;
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

/// Hands permits to waiters at the head of the queue while they fit. Returns
/// `true` if it stopped because `batch` is full (call again after waking it).
fn grant(inner: &mut Inner, batch: &mut WakeBatch) -> bool {
    loop {
        if batch.is_full() {
            return true;
        }
        let Some(front) = inner.waiters.0.front() else {
            return false;
        };
        let want = front.want;
        if want > inner.permits {
            return false;
        }
        let Some(ptr) = inner.waiters.0.pop_front() else {
            return false;
        };
        inner.permits -= want;
        // SAFETY: the node was linked until now, so its future is alive, and
        // we hold the lock that guards it.
        unsafe {
            (*ptr.as_ptr()).state = WaitState::Woken;
            batch.push((*ptr.as_ptr()).waker.take());
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("Semaphore")
            .field("permits", &inner.permits)
            .field("closed", &inner.closed)
            .finish_non_exhaustive()
    }
}

/// The future returned by [`Semaphore::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    sem: &'a Semaphore,
    node: Node,
    /// Reported as the resource waited on.
    resource: u64,
    op: WaitOp,
    wait: WaitSpan,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<Permit<'a>, Closed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Only shared access is needed: the node is an `UnsafeCell` guarded
        // by the semaphore's lock, and nothing is moved.
        let this = self.into_ref().get_ref();
        let poll = this.poll_locked(cx);
        // A lock reports its holder: to a task that begins waiting, and when taken.
        let lock_waited = (this.op == WaitOp::Lock).then(|| this.wait.is_waiting());
        if poll.is_pending() {
            this.wait.pending(this.resource, this.op);
            if lock_waited == Some(false) {
                holders::waiting_on(&this.sem.resource);
            }
        } else {
            this.wait.ready();
            if let Some(waited) = lock_waited
                && matches!(poll, Poll::Ready(Ok(_)))
            {
                holders::taken(&this.sem.resource, waited);
            }
        }
        poll
    }
}

impl<'a> Acquire<'a> {
    fn poll_locked(&self, cx: &mut Context<'_>) -> Poll<Result<Permit<'a>, Closed>> {
        let this = self;
        let ptr = this.node.ptr();
        let mut inner = this.sem.inner.lock();
        // SAFETY: we hold the lock that guards the node, and the node lives
        // as long as `self`.
        let waiter = unsafe { &mut *ptr.as_ptr() };
        match waiter.state {
            WaitState::Start => {
                if inner.closed {
                    waiter.state = WaitState::Done;
                    return Poll::Ready(Err(Closed));
                }
                if inner.waiters.0.is_empty() && inner.permits >= waiter.want {
                    inner.permits -= waiter.want;
                    waiter.state = WaitState::Done;
                    this.sem.resource.count(counted(this.op));
                    return Poll::Ready(Ok(Permit {
                        sem: this.sem,
                        permits: waiter.want,
                    }));
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
                this.sem.resource.count(counted(this.op));
                Poll::Ready(Ok(Permit {
                    sem: this.sem,
                    permits: waiter.want,
                }))
            }
            WaitState::Closed => {
                waiter.state = WaitState::Done;
                Poll::Ready(Err(Closed))
            }
            WaitState::Done => panic!("Acquire polled after completion"),
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let ptr = self.node.ptr();
        let mut batch = WakeBatch::new();
        let more = {
            let mut inner = self.sem.inner.lock();
            // SAFETY: we hold the lock that guards the node.
            let (state, want) = unsafe { ((*ptr.as_ptr()).state, (*ptr.as_ptr()).want) };
            match state {
                WaitState::Queued => {
                    // SAFETY: `Queued` means the node is in this list.
                    unsafe { inner.waiters.0.remove(ptr) };
                }
                // Granted but never taken: give the permits back.
                WaitState::Woken => inner.permits += want,
                WaitState::Start | WaitState::Closed | WaitState::Done => return,
            }
            // Leaving the head (or returning permits) may unblock others.
            grant(&mut inner, &mut batch)
        };
        batch.wake_all();
        if more {
            self.sem.add_permits(0);
        }
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire").finish_non_exhaustive()
    }
}

/// Permits taken from a [`Semaphore`]; dropping it gives them back.
#[must_use = "dropping a permit releases it at once"]
pub struct Permit<'a> {
    sem: &'a Semaphore,
    permits: usize,
}

impl Permit<'_> {
    /// Keeps the permits out of the semaphore for good (until someone calls
    /// [`Semaphore::add_permits`]).
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// How many permits this holds.
    #[must_use]
    pub fn permits(&self) -> usize {
        self.permits
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.sem.add_permits(self.permits);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("permits", &self.permits).finish()
    }
}

/// An async mutex: waiters queue in FIFO order and sleep instead of spinning.
pub struct Mutex<T> {
    sem: Semaphore,
    data: UnsafeCell<T>,
}

// SAFETY: the semaphore hands out one guard at a time; moving the mutex moves
// the `T`.
unsafe impl<T: Send> Send for Mutex<T> {}
// SAFETY: as above: `&Mutex` gives `&mut T` to one guard holder at a time.
unsafe impl<T: Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `data`.
    #[track_caller]
    pub fn new(data: T) -> Self {
        Self {
            sem: Semaphore::with_resource(1, Resource::new(ResourceKind::Mutex, "", None)),
            data: UnsafeCell::new(data),
        }
    }

    /// Waits for the lock.
    pub async fn lock(&self) -> MutexGuard<'_, T> {
        match self.sem.acquire_for(1, self.sem.resource.id(), WaitOp::Lock).await {
            Ok(permit) => permit.forget(),
            Err(Closed) => unreachable!("a mutex's semaphore is never closed"),
        }
        MutexGuard { mutex: self }
    }

    /// Takes the lock if it is free and nobody waits for it.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let permit = self.sem.try_acquire_as(1, CountedOp::Lock).ok()?;
        permit.forget();
        holders::taken(&self.sem.resource, false);
        Some(MutexGuard { mutex: self })
    }
}

impl<T> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("locked", &(self.sem.available_permits() == 0))
            .finish_non_exhaustive()
    }
}

/// Holds a [`Mutex`] locked; unlocks on drop.
#[must_use = "dropping a guard unlocks the mutex at once"]
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard is the only holder of the mutex's permit.
        self.mutex.data.with(|p| unsafe { &*p })
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow.
        self.mutex.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        holders::released(&self.mutex.sem.resource);
        self.mutex.sem.add_permits(1);
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// What an acquisition reported as `op` counts as.
fn counted(op: WaitOp) -> CountedOp {
    if op == WaitOp::Lock {
        CountedOp::Lock
    } else {
        CountedOp::Acquire
    }
}
