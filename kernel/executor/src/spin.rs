//! A minimal test-and-test-and-set lock for the executor's own short critical
//! sections (timer entries, waiter lists, channel buffers).
//!
//! It never blocks on anything but another CPU finishing a few instructions, so
//! it is safe to take from a task. It does not mask interrupts: the kernel must
//! not take these locks from an interrupt handler that can preempt a holder on
//! the same CPU (the executor's wake paths, which interrupt handlers do call,
//! take none of them; `Timer::turn` does, so it belongs in a task or with
//! interrupts masked around every holder).

use core::fmt;
use core::ops::{Deref, DerefMut};

use crate::loom::atomic::{AtomicBool, Ordering::*};
use crate::loom::cell::UnsafeCell;
use crate::loom::hint;

pub(crate) struct Spin<T> {
    locked: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `T` to one holder at a time, so sharing
// the lock only requires that `T` can move between threads.
unsafe impl<T: Send> Sync for Spin<T> {}
// SAFETY: owning the lock owns the `T`.
unsafe impl<T: Send> Send for Spin<T> {}

impl<T> Spin<T> {
    pub(crate) fn new(data: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            data: UnsafeCell::new(data),
        }
    }

    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        loop {
            if self.locked.compare_exchange_weak(false, true, Acquire, Relaxed).is_ok() {
                return SpinGuard { lock: self };
            }
            while self.locked.load(Relaxed) {
                hint::spin_loop();
            }
        }
    }
}

impl<T> fmt::Debug for Spin<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spin")
            .field("locked", &self.locked.load(Relaxed))
            .finish_non_exhaustive()
    }
}

pub(crate) struct SpinGuard<'a, T> {
    lock: &'a Spin<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: holding the guard means `locked` is ours, so no other
        // reference to the data exists.
        self.lock.data.with(|p| unsafe { &*p })
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow.
        self.lock.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Release);
    }
}
