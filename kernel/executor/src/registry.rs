//! The live tasks of a runtime with hooks installed: intrusive lists the task
//! joins when spawned and leaves just before its memory is freed, so a trace
//! consumer that connects late can be sent every task with its totals.
//!
//! The list is sharded by the CPU the task was first queued on, so CPUs spawning
//! and freeing their own tasks each keep to their own lock and cache line. The locks are held for a push, an unlink, or one
//! walk, always with the platform's interrupts masked: a task's last
//! reference can be dropped by an interrupt handler, which then unlinks it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::panic::Location;
use core::ptr::NonNull;

use cordyceps::List;

use crate::platform::Platform;
use crate::spin::Spin;
use crate::task::{Header, TaskCounters, TaskId, TaskKind};

/// A task's place in the run at the moment it was listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveState {
    /// Being polled.
    Running,
    /// Woken and waiting in a run queue (or spawned and not yet polled).
    Scheduled,
    /// Waiting for a wake.
    Idle,
    /// Finished; only its `JoinHandle` keeps it.
    Completed,
}

/// One live task as [`Runtime::live_tasks`](crate::Runtime::live_tasks)
/// lists it.
#[derive(Debug, Clone, Copy)]
pub struct LiveTask {
    /// Its id.
    pub id: TaskId,
    /// Its name, if it has one.
    pub name: Option<&'static str>,
    /// Kernel service or wasm instance.
    pub kind: TaskKind,
    /// Where it was spawned.
    pub location: &'static Location<'static>,
    /// The task that spawned it, if it was spawned from a task.
    pub parent: Option<TaskId>,
    /// Running, scheduled, idle or completed.
    pub state: LiveState,
    /// The CPU whose run queue it belongs to.
    pub cpu: usize,
    /// Wakers that exist for it.
    pub wakers: usize,
    /// Its totals.
    pub counters: TaskCounters,
}

pub(crate) struct Registry {
    shards: Box<[Spin<List<Header>>]>,
}

impl Registry {
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| Spin::new(List::new())).collect(),
        }
    }

    fn shard(&self, header: &Header) -> &Spin<List<Header>> {
        &self.shards[header.registry_shard() % self.shards.len()]
    }

    /// Lists a newly allocated task.
    pub(crate) fn insert(&self, platform: &dyn Platform, header: NonNull<Header>) {
        // SAFETY: the caller passes a live header it just allocated.
        let shard = self.shard(unsafe { header.as_ref() });
        platform.without_interrupts(&mut || shard.lock().push_back(header));
    }

    /// Unlinks a task whose memory is about to be freed.
    ///
    /// # Safety
    ///
    /// `header` was [`Registry::insert`]ed into this registry and not removed.
    pub(crate) unsafe fn remove(&self, platform: &dyn Platform, header: NonNull<Header>) {
        // SAFETY: the caller guarantees the header is still allocated.
        let shard = self.shard(unsafe { header.as_ref() });
        platform.without_interrupts(&mut || {
            // SAFETY: the caller guarantees the task is in this list (its shard is
            // fixed at allocation), and the lock gives exclusive access to it.
            unsafe { shard.lock().remove(header) };
        });
    }

    /// Every listed task.
    pub(crate) fn collect(&self, platform: &dyn Platform) -> Vec<LiveTask> {
        let mut out = Vec::new();
        for shard in &self.shards {
            platform.without_interrupts(&mut || {
                let list = shard.lock();
                out.reserve(list.len());
                // A listed header is alive: it is unlinked, under this lock, before
                // its memory is freed.
                out.extend(list.iter().map(|h| h.live_task()));
            });
        }
        out.sort_unstable_by_key(|t| t.id);
        out
    }

    /// How many tasks are listed.
    pub(crate) fn len(&self, platform: &dyn Platform) -> usize {
        let mut n = 0;
        for shard in &self.shards {
            platform.without_interrupts(&mut || n += shard.lock().len());
        }
        n
    }
}
