//! Timers on an abstract clock.
//!
//! The [`Timer`] does not read any clock: the embedder tells it the time with
//! [`Timer::turn`] (the kernel from its APIC timer interrupt path and before
//! idling, host tests from a mock clock) and asks [`Timer::next_deadline`]
//! when to be called next (the kernel programs a one-shot APIC timer for it,
//! so an idle system takes no periodic tick).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::panic::Location;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use crate::resource::{OwnedWait, ResourceKind, WaitOp};
use crate::spin::Spin;

/// A point in time on the timer's clock, in nanoseconds since an origin the
/// embedder chooses (boot, for the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(0);

    /// An instant `nanos` nanoseconds after the origin.
    #[must_use]
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// Nanoseconds since the origin.
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating at the end of time.
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Instant {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }

    /// How long after `earlier` this is (zero if it is not after).
    #[must_use]
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

struct Inner {
    now: Instant,
    /// Keyed by (deadline, sequence number) so equal deadlines fire in
    /// registration order and every sleep has a unique key.
    entries: BTreeMap<(Instant, u64), Waker>,
    next_seq: u64,
}

/// Sleeps and timeouts, fired by [`Timer::turn`].
pub struct Timer {
    inner: Spin<Inner>,
}

impl Default for Timer {
    fn default() -> Self {
        Self::new()
    }
}

impl Timer {
    /// A timer whose clock reads [`Instant::ZERO`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            inner: Spin::new(Inner {
                now: Instant::ZERO,
                entries: BTreeMap::new(),
                next_seq: 0,
            }),
        }
    }

    /// The time of the last [`Timer::turn`].
    #[must_use]
    pub fn now(&self) -> Instant {
        self.inner.lock().now
    }

    /// Advances the clock to `now` (it never goes backwards) and wakes every
    /// sleep whose deadline has passed. Returns how many were woken.
    pub fn turn(&self, now: Instant) -> usize {
        let mut fired = Vec::new();
        {
            let mut inner = self.inner.lock();
            if now > inner.now {
                inner.now = now;
            }
            let now = inner.now;
            while let Some(entry) = inner.entries.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                fired.push(entry.remove());
            }
        }
        // Woken outside the lock: a wake may run hooks and touch run queues.
        let count = fired.len();
        for waker in fired {
            waker.wake();
        }
        count
    }

    /// [`Timer::turn`] to `now() + by`.
    pub fn advance(&self, by: Duration) -> usize {
        let now = self.now().saturating_add(by);
        self.turn(now)
    }

    /// The earliest pending deadline: when the embedder must call
    /// [`Timer::turn`] next. `None` if nothing sleeps.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.inner
            .lock()
            .entries
            .first_key_value()
            .map(|(&(deadline, _), _)| deadline)
    }

    /// Number of registered sleeps.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.inner.lock().entries.len()
    }

    /// Completes once the clock has advanced by `duration` from now.
    #[track_caller]
    pub fn sleep(&self, duration: Duration) -> Sleep<'_> {
        let deadline = self.now().saturating_add(duration);
        self.sleep_until(deadline)
    }

    /// Completes once the clock reaches `deadline`.
    #[track_caller]
    pub fn sleep_until(&self, deadline: Instant) -> Sleep<'_> {
        self.sleep_until_at(deadline, Location::caller())
    }

    /// [`Timer::sleep_until`], reported as created at `location`.
    pub fn sleep_until_at(&self, deadline: Instant, location: &'static Location<'static>) -> Sleep<'_> {
        Sleep {
            timer: self,
            deadline,
            key: None,
            location,
            wait: OwnedWait::new(),
        }
    }

    /// Runs `future` for at most `duration`.
    #[track_caller]
    pub fn timeout<F: Future>(&self, duration: Duration, future: F) -> Timeout<'_, F> {
        Timeout {
            future,
            sleep: self.sleep(duration),
        }
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("Timer")
            .field("now", &inner.now)
            .field("pending", &inner.entries.len())
            .finish()
    }
}

/// The future returned by [`Timer::sleep`] and [`Timer::sleep_until`].
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep<'t> {
    timer: &'t Timer,
    deadline: Instant,
    key: Option<(Instant, u64)>,
    location: &'static Location<'static>,
    wait: OwnedWait,
}

impl Sleep<'_> {
    /// When this sleep completes.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // The clock is read and the entry registered under one lock, so a
        // `turn` either happened before (and we see its time) or will find
        // the entry.
        let mut inner = this.timer.inner.lock();
        if inner.now >= this.deadline {
            if let Some(key) = this.key.take() {
                inner.entries.remove(&key);
            }
            drop(inner);
            this.wait.ready();
            return Poll::Ready(());
        }
        let key = match this.key {
            Some(key) => key,
            None => {
                let key = (this.deadline, inner.next_seq);
                inner.next_seq += 1;
                this.key = Some(key);
                key
            }
        };
        match inner.entries.get_mut(&key) {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            Some(waker) => waker.clone_from(cx.waker()),
            None => {
                inner.entries.insert(key, cx.waker().clone());
            }
        }
        drop(inner);
        this.wait
            .pending(ResourceKind::Timer, "", None, this.location, WaitOp::Sleep);
        Poll::Pending
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.timer.inner.lock().entries.remove(&key);
        }
    }
}

impl fmt::Debug for Sleep<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.key.is_some())
            .finish()
    }
}

/// The future returned by [`Timer::timeout`].
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<'t, F> {
    future: F,
    sleep: Sleep<'t>,
}

/// A [`Timeout`] ran out before its future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl core::error::Error for Elapsed {}

impl<F: Future> Future for Timeout<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of
        // `self`, and `Timeout` has no `Drop` impl that could move it.
        // `sleep` is `Unpin` and is not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        Pin::new(&mut this.sleep).poll(cx).map(|()| Err(Elapsed))
    }
}

impl<F> fmt::Debug for Timeout<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("sleep", &self.sleep)
            .finish_non_exhaustive()
    }
}
