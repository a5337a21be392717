//! Kernel restarts: a stream may carry several boots of the kernel one after the
//! other (QEMU restarted behind a console that stayed attached, or recordings put end
//! to end). Each boot starts its TSC, task ids and instance ids again, so the state
//! keeps them apart:
//!
//! - A new boot begins when a stream that already carried events in the current
//!   boot starts again at sequence 0 (`Item::Restart`; a restart of a stream still
//!   silent in this boot is that stream's first frame of it), or when a second
//!   `Hello` of the same boot names another boot time.
//! - The old boot's live tasks end with it ([`TaskStatus::EndedByRestart`], at the
//!   old boot's last timestamp) and expire like completed tasks; its running wasm
//!   instances are marked ended. A task or instance id of the new boot never updates
//!   an old boot's record: it replaces it.
//! - Trace time stays one monotonic axis for the views: each boot's timestamps are
//!   shifted to begin just after the previous boot's last one, from its `Hello`'s
//!   boot time (or its first event when that comes first). Within the first boot the
//!   shift is 0, so trace time is the kernel's TSC. Every boot is converted at the
//!   latest `Hello`'s TSC rate.
//! - A warning and a [`BootMark`] (drawn by the Timeline and Logs views) say where
//!   the new boot begins.

use std::cmp::Reverse;
use std::collections::VecDeque;

use lucid_protocol::{Hello, StreamId, TaskId};
use serde::{Deserialize, Serialize};

use super::counts::LastTs;
use super::{State, Task, TaskStatus, Warning, WarningKind};
use crate::time::Ticks;

/// Boot marks kept (the latest ones); all restarts are counted.
pub const MAX_BOOT_MARKS: usize = 256;

/// Where a boot of the kernel began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootMark {
    /// The boot's number: 2 for the first restart.
    pub boot: u64,
    /// Trace time where it begins (after every timestamp of the boot before).
    pub ts: Ticks,
    /// Tasks of the boot before that were still alive and ended with it.
    pub tasks_ended: u64,
    /// Wasm instances of the boot before that were still running and ended with it.
    pub instances_ended: u64,
}

/// How the current boot's timestamps map to trace time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BootClock {
    /// Added to the boot's timestamps.
    offset: u64,
    /// Trace time at which the boot begins: none of its events is placed earlier.
    start: u64,
    /// The offset is chosen by the boot's first event.
    pending: bool,
    /// The boot's `Hello` was seen.
    hello_seen: bool,
}

impl BootClock {
    /// Trace time of the raw timestamp `ts`; `boot_tsc` is the `Hello`'s boot time
    /// when the event is one.
    #[inline]
    pub(crate) fn trace_time(&mut self, ts: u64, boot_tsc: Option<u64>) -> u64 {
        if self.pending {
            let base = boot_tsc.filter(|&b| b <= ts).unwrap_or(ts);
            self.offset = self.start.saturating_sub(base);
            self.pending = false;
        }
        ts.saturating_add(self.offset).max(self.start)
    }
}

impl State {
    /// Whether the restart of `stream` begins a new boot: the stream already carried
    /// events in this one.
    pub(super) fn restart_begins_boot(&self, stream: StreamId) -> bool {
        self.last_ts.contains(stream)
    }

    /// Whether `h` is the `Hello` of another boot than the current one.
    pub(super) fn hello_begins_boot(&self, h: &Hello<'_>) -> bool {
        self.boot_clock.hello_seen && self.kernel.as_ref().is_some_and(|k| k.boot_tsc != h.boot_tsc)
    }

    /// Notes that the current boot's `Hello` arrived.
    pub(super) fn hello_seen(&mut self) {
        self.boot_clock.hello_seen = true;
    }

    /// Drops the ids of [`State::boot_task_ids`] (the tasks created in the current
    /// boot, so a restart finds them without visiting every task) that no longer
    /// name a live task of the boot, once they outnumber the tasks twice: the list
    /// stays bounded by the tasks plus what one pruning interval adds.
    pub(super) fn compact_boot_tasks(&mut self) {
        if self.boot_task_ids.len() < 2 * self.tasks.len() + 4096 {
            return;
        }
        let (tasks, boot) = (&self.tasks, self.boot);
        self.boot_task_ids
            .retain(|id| tasks.get(id).is_some_and(|t| t.boot == boot && !t.status.is_done()));
        self.boot_task_ids.sort_unstable();
        self.boot_task_ids.dedup();
    }

    /// Ends the current boot and begins the next: see the module documentation.
    pub(super) fn begin_boot(&mut self, why: &str) {
        let end = self.ts_range.map_or(Ticks::ZERO, |(_, b)| b);
        let old = self.boot;
        let mut tasks_ended = 0u64;
        for id in std::mem::take(&mut self.boot_task_ids) {
            let Some(t) = self.tasks.get_mut(&id) else { continue };
            if t.boot != old || t.status.is_done() {
                continue;
            }
            t.status = TaskStatus::EndedByRestart;
            t.poll_started = None;
            t.scheduled_since = None;
            t.woken_while_running = None;
            if t.completed_ts.is_none() {
                let at = end.max(t.spawned_ts);
                t.completed_ts = Some(at);
                self.completions.heap.push(Reverse((at, id)));
            }
            tasks_ended += 1;
        }
        // Instances are few (capped): visiting them all is cheap.
        let mut instances_ended = 0u64;
        for w in self.wasm.values_mut().filter(|w| w.boot == old && !w.has_ended()) {
            w.ended_by_restart = true;
            instances_ended += 1;
        }
        for c in self.cpus.values_mut() {
            c.polling = None;
            c.poll_samples.clear();
            c.stuck_warned = None;
        }
        // Ids of the old boot mean nothing in the new one, nor do its code addresses.
        self.resources.end_boot();
        self.wasm_code.clear();
        self.sampled.clear();
        self.expired.clear();
        self.expired_order.clear();
        self.last_ts = LastTs::default();
        self.boot = old.saturating_add(1);
        self.kernel_restarts = self.kernel_restarts.saturating_add(1);
        self.tasks_ended_by_restart = self.tasks_ended_by_restart.saturating_add(tasks_ended);
        let start = if self.ts_range.is_some() {
            end.get().saturating_add(1)
        } else {
            0
        };
        self.boot_clock = BootClock {
            offset: 0,
            start,
            pending: true,
            hello_seen: false,
        };
        let number = u64::from(self.boot) + 1;
        if self.boot_marks.len() >= MAX_BOOT_MARKS {
            self.boot_marks.pop_front();
        }
        self.boot_marks.push_back(BootMark {
            boot: number,
            ts: Ticks(start),
            tasks_ended,
            instances_ended,
        });
        self.warn(Warning {
            kind: WarningKind::KernelRestart,
            ts: Some(Ticks(start)),
            cpu: None,
            task: None,
            message: format!(
                "kernel restarted ({why}): boot {number} begins; {tasks_ended} tasks and {instances_ended} wasm \
                 instances of boot {} ended with it",
                number - 1
            ),
            samples: Vec::new(),
        });
    }
}

impl State {
    /// The boot (as [`State::boot`] counts them) that trace time `ts` belongs to.
    /// Boots before the oldest kept [`BootMark`] all answer the boot before it.
    #[must_use]
    pub fn boot_at(&self, ts: Ticks) -> u32 {
        let later = self.boot_marks.iter().rev().take_while(|m| m.ts > ts).count();
        self.boot.saturating_sub(u32::try_from(later).unwrap_or(u32::MAX))
    }

    /// The task `id` of boot `boot`, if it is still held (a later boot's task with
    /// the same id is another task).
    #[must_use]
    pub fn task_of_boot(&self, id: TaskId, boot: u32) -> Option<&Task> {
        self.tasks.get(&id).filter(|t| t.boot == boot)
    }
}

/// Boot marks between `from` and `to` (trace time, inclusive), oldest first.
pub fn marks_between(marks: &VecDeque<BootMark>, from: Ticks, to: Ticks) -> impl Iterator<Item = &BootMark> {
    marks.iter().filter(move |m| m.ts >= from && m.ts <= to)
}
