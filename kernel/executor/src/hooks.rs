//! Instrumentation hooks: the executor's only contact with tracing.
//!
//! The kernel's trace layer implements [`Hooks`] and hands a `&'static dyn
//! Hooks` to [`Runtime::new`](crate::Runtime::new). With no hooks installed, or
//! with their gate closed ([`Runtime::set_hooks_enabled`](crate::Runtime::set_hooks_enabled):
//! tracing paused or off), every call site is one load and a well-predicted branch.
//!
//! # Detecting lost wakers
//!
//! Every [`Waker`](core::task::Waker) the executor hands out beyond the one
//! borrowed for a poll is counted per task, in the task's state word beside its
//! flags and references (hooks or not: the count rides on the reference count's
//! own read-modify-write): [`Hooks::on_waker_clone`] reports the count after an
//! increment, [`Hooks::on_waker_drop`] after a decrement (a wake by value is
//! reported as [`Hooks::on_wake`] followed by [`Hooks::on_waker_drop`]). A task
//! whose poll ended in [`PollResult::Pending`] while its count is zero, and which
//! has no pending cancellation, can never be woken again: that is a lost waker.
//!
//! The executor judges that itself and reports it with [`Hooks::on_lost_waker`],
//! from the one snapshot of the state word that makes it true: a poll's end
//! (`Pending`, not woken, no waker) or the drop of the last waker of an idle
//! task. Flags and count change together, so exactly one transition leaves a task
//! lost and it is reported exactly once; a wake by value marks the task woken and
//! lets go of its waker in the same transition, so a wake in flight is never
//! mistaken for a lost waker. The verdict comes from the executor's own atomics, so
//! a consumer needs no cross-CPU ordering of the stream to trust it.

use core::panic::Location;

use crate::platform::TaskPanic;
use crate::task::{PollResult, TaskId, TaskKind, TaskStats};

/// What the trace records when a task is spawned.
#[derive(Debug, Clone, Copy)]
pub struct SpawnInfo<'a> {
    /// The new task's id.
    pub id: TaskId,
    /// The name given to the [`TaskBuilder`](crate::TaskBuilder), if any
    /// (`'static`, so a trace layer may keep a reference instead of a copy).
    pub name: Option<&'static str>,
    /// Kernel service or wasm instance.
    pub kind: TaskKind,
    /// Where `spawn` was called.
    pub location: &'static Location<'static>,
    /// The CPU whose run queue took the task, or `None` for the global
    /// injector.
    pub cpu: Option<usize>,
    /// The task that spawned it, if it was spawned from a task.
    pub parent: Option<TaskId>,
    /// The new task's totals: the hook records the spawn time with
    /// [`TaskStats::spawned`].
    pub stats: &'a TaskStats,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The future returned `Ready`.
    Ok,
    /// The task was cancelled; its future was dropped (or its output is
    /// handed to the `JoinHandle` inside `JoinError::Cancelled`).
    Cancelled,
    /// The future panicked and the platform contained the panic.
    Panicked,
}

/// Events the executor reports. Every method has an empty default so a trace
/// layer implements only what it records.
///
/// Hooks run on the hot path, possibly from interrupt handlers (wakes) and
/// with no task context: they must not block, allocate unboundedly, or call
/// back into the executor.
pub trait Hooks: Sync {
    /// A task was created and queued.
    fn on_spawn(&self, info: &SpawnInfo<'_>) {
        let _ = info;
    }
    /// `cpu` is about to poll `task`. The hook records the time in `stats`
    /// ([`TaskStats::poll_started`]) if it keeps time.
    fn on_poll_start(&self, cpu: usize, task: TaskId, stats: &TaskStats) {
        let _ = (cpu, task, stats);
    }
    /// `cpu` finished polling `task` with `result`. The hook records the time
    /// in `stats` ([`TaskStats::poll_ended`]) if it keeps time.
    fn on_poll_end(&self, cpu: usize, task: TaskId, result: PollResult, stats: &TaskStats) {
        let _ = (cpu, task, result, stats);
    }
    /// `task` was woken. `by_ref` distinguishes `wake_by_ref` from `wake`;
    /// `self_wake` is true when the task woke itself during its own poll;
    /// `waker` is the task running on the waking CPU, if any (`None` from an
    /// interrupt handler or a non-executor thread). The hook records the
    /// time in `stats` ([`TaskStats::woken`]) if it keeps time.
    fn on_wake(&self, task: TaskId, by_ref: bool, self_wake: bool, waker: Option<TaskId>, stats: &TaskStats) {
        let _ = (task, by_ref, self_wake, waker, stats);
    }
    /// A waker for `task` was cloned; `count` wakers now exist.
    fn on_waker_clone(&self, task: TaskId, count: usize) {
        let _ = (task, count);
    }
    /// A waker for `task` was dropped or consumed; `count` remain.
    fn on_waker_drop(&self, task: TaskId, count: usize) {
        let _ = (task, count);
    }
    /// `task` is pending with no waker left and nothing pending that would run it
    /// again (no wake, no cancellation): nothing can ever wake it. Reported by
    /// the CPU that ended its poll or dropped its last waker; rarely, by both.
    fn on_lost_waker(&self, task: TaskId) {
        let _ = task;
    }
    /// `task`'s `JoinHandle` was polled and the task is not complete yet.
    fn on_join_waiting(&self, task: TaskId) {
        let _ = task;
    }
    /// `task`'s poll on `cpu` panicked and the platform contained `panic`; the
    /// task is about to complete as [`Outcome::Panicked`]. Rare: the hook may
    /// take its time (format, log).
    fn on_task_panicked(&self, cpu: usize, task: TaskId, panic: &TaskPanic) {
        let _ = (cpu, task, panic);
    }
    /// `task` completed with `outcome` on `cpu`.
    fn on_complete(&self, cpu: usize, task: TaskId, outcome: Outcome) {
        let _ = (cpu, task, outcome);
    }
    /// The last reference to `task` was dropped and its memory is being freed.
    fn on_drop(&self, task: TaskId) {
        let _ = task;
    }
    /// `to` took `task` from `from`'s run queue (once per stolen task).
    fn on_steal(&self, task: TaskId, from: usize, to: usize) {
        let _ = (task, from, to);
    }
    /// `cpu` is about to idle (`entering`) or has woken up.
    fn on_idle(&self, cpu: usize, entering: bool) {
        let _ = (cpu, entering);
    }
}
