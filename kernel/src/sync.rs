//! The kernel's spin lock: a `lock_api` mutex whose raw lock counts, per CPU, the
//! locks held, so a panic while one is held stops the kernel instead of unwinding
//! past a critical section (see [`crate::panic`]).

use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::percpu;

/// A spin lock that keeps this CPU's held-lock count ([`percpu::PerCpu::spin_locks_held`]).
#[derive(Debug)]
pub struct RawSpinLock {
    locked: AtomicBool,
}

/// A value behind a [`RawSpinLock`].
pub type SpinLock<T> = lock_api::Mutex<RawSpinLock, T>;
/// The guard of a [`SpinLock`].
pub type SpinLockGuard<'a, T> = lock_api::MutexGuard<'a, RawSpinLock, T>;

fn count_held(delta: i32) {
    if let Some(cpu) = percpu::try_current() {
        cpu.spin_locks_held.fetch_add(delta as u32, Ordering::Relaxed);
    }
}

// SAFETY: `locked` admits one holder at a time (acquire on lock, release on unlock).
unsafe impl lock_api::RawMutex for RawSpinLock {
    const INIT: Self = Self {
        locked: AtomicBool::new(false),
    };
    // The held-lock count is per CPU: a guard must be released where it was taken.
    type GuardMarker = lock_api::GuardNoSend;

    fn lock(&self) {
        while !self.try_lock() {
            while self.locked.load(Ordering::Relaxed) {
                core::hint::spin_loop();
            }
        }
    }

    fn try_lock(&self) -> bool {
        let taken = self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if taken {
            count_held(1);
        }
        taken
    }

    unsafe fn unlock(&self) {
        count_held(-1);
        self.locked.store(false, Ordering::Release);
    }

    fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}
