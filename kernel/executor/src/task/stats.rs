//! A task's running totals, kept in its header while hooks are installed, so a
//! trace consumer that arrives late can be told what it missed
//! ([`Runtime::live_tasks`](crate::Runtime::live_tasks)).
//!
//! Counts are kept by the executor. Times are recorded by the [`Hooks`] with
//! the timestamp they stamp their own event with, so one clock read serves
//! both and the totals agree with the events; the executor has no clock.
//!
//! No field is changed by a locked instruction except the count of wakes from
//! outside the task's own poll (a wake already takes a compare-and-swap on the
//! same cache line): the poll counters and the self-wake count are written only
//! by the CPU holding the task's `POLLING` bit, which orders successive pollers,
//! so a task that wakes itself (`yield_now`) pays no locked instruction for it.
//!
//! [`Hooks`]: crate::Hooks

use crate::loom::atomic::{AtomicU64, Ordering::*};

/// A task's totals, updated as it runs. See the module documentation.
#[derive(Debug)]
pub struct TaskStats {
    polls: AtomicU64,
    /// Wakes other than self-wakes (from any CPU or interrupt).
    other_wakes: AtomicU64,
    self_wakes: AtomicU64,
    spawned_at: AtomicU64,
    poll_started_at: AtomicU64,
    /// When the task was last woken while not already scheduled; 0 when it
    /// is not waiting for a poll.
    scheduled_at: AtomicU64,
    busy: AtomicU64,
    scheduled: AtomicU64,
}

/// A copy of a task's totals at one moment, in the hooks' time unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounters {
    /// Polls started.
    pub polls: u64,
    /// Wakes (by value or by reference), including self-wakes.
    pub wakes: u64,
    /// Wakes the task issued during its own poll.
    pub self_wakes: u64,
    /// When the task was spawned.
    pub spawned_at: u64,
    /// Time spent being polled (completed polls).
    pub busy: u64,
    /// Time spent woken but not yet polled (up to the last poll start).
    pub scheduled: u64,
}

impl TaskStats {
    pub(crate) fn new() -> Self {
        Self {
            polls: AtomicU64::new(0),
            other_wakes: AtomicU64::new(0),
            self_wakes: AtomicU64::new(0),
            spawned_at: AtomicU64::new(0),
            poll_started_at: AtomicU64::new(0),
            scheduled_at: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            scheduled: AtomicU64::new(0),
        }
    }

    /// The task was spawned (and so scheduled) at `now`.
    pub fn spawned(&self, now: u64) {
        self.spawned_at.store(now, Relaxed);
        self.scheduled_at.store(now.max(1), Relaxed);
    }

    /// A poll starts at `now`. Called only by the polling CPU.
    pub fn poll_started(&self, now: u64) {
        self.poll_started_at.store(now, Relaxed);
        let since = self.scheduled_at.load(Relaxed);
        if since != 0 {
            self.scheduled_at.store(0, Relaxed);
            let waited = now.saturating_sub(since);
            self.scheduled.store(self.scheduled.load(Relaxed) + waited, Relaxed);
        }
    }

    /// The poll that started last ends at `now`. Called only by the polling CPU.
    pub fn poll_ended(&self, now: u64) {
        let took = now.saturating_sub(self.poll_started_at.load(Relaxed));
        self.busy.store(self.busy.load(Relaxed) + took, Relaxed);
    }

    /// The task was woken at `now`: it waits for a poll from here on, unless
    /// it was already waiting.
    pub fn woken(&self, now: u64) {
        // Load-then-store: two wakers racing both see 0 and store nearly the
        // same time; a poll start racing a wake loses at most that wake's wait.
        if self.scheduled_at.load(Relaxed) == 0 {
            self.scheduled_at.store(now.max(1), Relaxed);
        }
    }

    pub(crate) fn count_poll(&self) {
        self.polls.store(self.polls.load(Relaxed) + 1, Relaxed);
    }

    pub(crate) fn count_wake(&self, self_wake: bool) {
        if self_wake {
            // Only the polling CPU wakes a task from inside its own poll.
            self.self_wakes.store(self.self_wakes.load(Relaxed) + 1, Relaxed);
        } else {
            self.other_wakes.fetch_add(1, Relaxed);
        }
    }

    /// The totals now.
    #[must_use]
    pub fn counters(&self) -> TaskCounters {
        // Read once, so the copy never has fewer wakes than self-wakes.
        let self_wakes = self.self_wakes.load(Relaxed);
        TaskCounters {
            polls: self.polls.load(Relaxed),
            wakes: self.other_wakes.load(Relaxed).wrapping_add(self_wakes),
            self_wakes,
            spawned_at: self.spawned_at.load(Relaxed),
            busy: self.busy.load(Relaxed),
            scheduled: self.scheduled.load(Relaxed),
        }
    }
}
