//! One task as the stream describes it.

use std::collections::BTreeMap;

use lucid_protocol::{InstanceId, Outcome, ResourceKind, TaskId, TaskKind, Waker};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::histogram::Histogram;
use super::history::TaskHistory;
use super::text::Text;
use crate::time::Ticks;

/// Distinct wakers remembered per task; further ones are counted as "other".
pub const MAX_WAKERS_BY: usize = 16;

/// Lifecycle of a task as far as the stream told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskStatus {
    /// Being polled.
    Running,
    /// Woken, waiting in a run queue.
    Scheduled,
    /// Pending and not scheduled.
    Idle,
    /// Finished (ok, cancelled or panicked).
    Completed(Outcome),
    /// Alive when its kernel restarted: it ended with its boot.
    EndedByRestart,
}

impl TaskStatus {
    /// Name as the views show it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Scheduled => "scheduled",
            Self::Idle => "idle",
            Self::Completed(Outcome::Ok) => "completed",
            Self::Completed(Outcome::Cancelled) => "cancelled",
            Self::Completed(Outcome::Panicked) => "panicked",
            Self::EndedByRestart => "ended by restart",
        }
    }

    /// Order for sorting: running first, then scheduled, idle, finished.
    #[must_use]
    pub const fn rank(self) -> u8 {
        match self {
            Self::Running => 0,
            Self::Scheduled => 1,
            Self::Idle => 2,
            Self::Completed(Outcome::Ok) => 3,
            Self::Completed(Outcome::Cancelled) => 4,
            Self::Completed(Outcome::Panicked) => 5,
            Self::EndedByRestart => 6,
        }
    }

    /// Finished in any way.
    #[must_use]
    pub const fn is_done(self) -> bool {
        matches!(self, Self::Completed(_) | Self::EndedByRestart)
    }
}

/// Who woke a task, for the "woken by" table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WokenBy {
    /// A task.
    Task(TaskId),
    /// An interrupt handler.
    Interrupt(u8),
    /// Outside any task or interrupt.
    Nobody,
    /// Any waker beyond the [`MAX_WAKERS_BY`] remembered.
    Other,
}

impl From<Waker> for WokenBy {
    fn from(w: Waker) -> Self {
        match w {
            Waker::None => Self::Nobody,
            Waker::Task(t) => Self::Task(t),
            Waker::Interrupt(v) => Self::Interrupt(v),
        }
    }
}

/// Who woke a task, how often: at most [`MAX_WAKERS_BY`] wakers plus
/// [`WokenBy::Other`], in key order. The first waker is held inline (most tasks have
/// one), more on the heap, grown one entry at a time (a new waker is rare); serialised
/// as the map it stands for.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WokenByCounts(SmallVec<[(WokenBy, u64); 1]>);

impl WokenByCounts {
    /// Distinct wakers counted.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nobody woke the task.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (waker, wakes) in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&WokenBy, &u64)> + ExactSizeIterator + '_ {
        self.0.iter().map(|(k, n)| (k, n))
    }

    /// Wakes by `key`.
    #[must_use]
    pub fn get(&self, key: &WokenBy) -> Option<&u64> {
        self.0.binary_search_by(|(k, _)| k.cmp(key)).ok().map(|i| &self.0[i].1)
    }

    /// Whether `key` woke the task.
    #[must_use]
    pub fn contains_key(&self, key: &WokenBy) -> bool {
        self.get(key).is_some()
    }

    /// Adds `n` wakes by `key`.
    pub fn add(&mut self, key: WokenBy, n: u64) {
        match self.0.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.0[i].1 += n,
            Err(i) => {
                self.0.reserve_exact(1);
                self.0.insert(i, (key, n));
            }
        }
    }
}

impl std::ops::Index<&WokenBy> for WokenByCounts {
    type Output = u64;

    fn index(&self, key: &WokenBy) -> &u64 {
        self.get(key).expect("no wakes by this waker")
    }
}

impl std::fmt::Debug for WokenByCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for WokenByCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for WokenByCounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = BTreeMap::<WokenBy, u64>::deserialize(d)?;
        Ok(Self(m.into_iter().collect()))
    }
}

/// One task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// Name given at spawn.
    pub name: Text,
    /// Kernel or wasm.
    pub kind: TaskKind,
    /// Spawn location `file:line:column` (empty when unknown).
    pub location: Text,
    /// The spawning task.
    pub parent: Option<TaskId>,
    /// The wasm instance it drives.
    pub instance: Option<InstanceId>,
    /// Current status.
    pub status: TaskStatus,
    /// CPU it last ran on (or was spawned on).
    pub cpu: Option<u32>,
    /// Trace time of the spawn (or of the first event seen).
    pub spawned_ts: Ticks,
    /// Trace time it completed.
    pub completed_ts: Option<Ticks>,
    /// Polls started.
    pub polls: u64,
    /// Wakes.
    pub wakes: u64,
    /// Self-wakes.
    pub self_wakes: u64,
    /// Live wakers, once a clone/drop or snapshot said how many.
    pub wakers: Option<u64>,
    /// Waker clones.
    pub waker_clones: u64,
    /// Waker drops.
    pub waker_drops: u64,
    /// Who woke it, how often (at most [`MAX_WAKERS_BY`] entries plus `Other`).
    pub woken_by: WokenByCounts,
    /// Trace time of the last wake.
    pub last_woken: Option<Ticks>,
    /// Ticks spent in completed polls.
    pub busy_ticks: Ticks,
    /// Busy time over its whole life, for timelines zoomed out past the kept polls.
    pub history: TaskHistory,
    /// Ticks spent scheduled before a poll.
    pub scheduled_ticks: Ticks,
    /// Poll durations in ticks.
    pub poll_hist: Histogram,
    /// Wake → poll latency in ticks.
    pub sched_hist: Histogram,
    /// Polls longer than the long-poll threshold.
    pub long_polls: u64,
    /// Warnings about this task.
    pub warnings: u64,
    /// Its contained panic: the message and where it was raised.
    pub panic: Option<Box<str>>,
    /// The kernel boot it belongs to (0 for the first of the stream, see
    /// [`super::State::boot`]).
    #[serde(default)]
    pub boot: u32,
    /// Time it spent waiting on resources, by what it waited on (ended waits; at
    /// most [`MAX_PARKED`] kinds of resource, the rest under the last).
    #[serde(default)]
    pub parked: Vec<Parked>,
    /// Start of the current poll.
    pub(crate) poll_started: Option<u64>,
    /// Start of the latest poll on any CPU, to recognise an overtaken poll end.
    pub(crate) last_poll_start: Option<u64>,
    /// Since when it is scheduled.
    pub(crate) scheduled_since: Option<u64>,
    /// Woken while being polled: scheduled again when the poll ends.
    pub(crate) woken_while_running: Option<u64>,
    /// Self-wakes since the last other wake.
    pub(crate) self_wake_run: u64,
    /// Whether the current run of self-wakes was warned about.
    pub(crate) storm_warned: bool,
    /// Whether the current lost-waker condition was warned about.
    pub(crate) lost_warned: bool,
}

/// Kinds of resource a task's parked time is kept for ([`Task::parked`]).
pub const MAX_PARKED: usize = 8;

/// Time a task spent waiting on one kind of resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parked {
    /// The resource's kind (`None`: unknown, or "other" once the list is full).
    pub kind: Option<ResourceKind>,
    /// The resource's name (empty if unnamed).
    pub name: Box<str>,
    /// Waits ended.
    pub waits: u64,
    /// Their total time.
    pub ticks: Ticks,
}

impl Parked {
    /// `chan ping`, `timer`, `unknown`.
    #[must_use]
    pub fn label(&self) -> String {
        match (self.kind, self.name.is_empty()) {
            (Some(k), true) => k.name().to_string(),
            (Some(k), false) => format!("{} {}", k.name(), self.name),
            (None, true) => "unknown".into(),
            (None, false) => self.name.to_string(),
        }
    }
}

impl Task {
    /// A task first seen at `ts`.
    #[must_use]
    pub fn new(id: TaskId, ts: Ticks) -> Self {
        Self {
            id,
            name: Text::default(),
            kind: TaskKind::Kernel,
            location: Text::default(),
            parent: None,
            instance: None,
            status: TaskStatus::Idle,
            cpu: None,
            spawned_ts: ts,
            completed_ts: None,
            polls: 0,
            wakes: 0,
            self_wakes: 0,
            wakers: None,
            waker_clones: 0,
            waker_drops: 0,
            woken_by: WokenByCounts::default(),
            last_woken: None,
            busy_ticks: Ticks::ZERO,
            history: TaskHistory::default(),
            scheduled_ticks: Ticks::ZERO,
            poll_hist: Histogram::new(),
            sched_hist: Histogram::new(),
            long_polls: 0,
            warnings: 0,
            poll_started: None,
            last_poll_start: None,
            scheduled_since: None,
            woken_while_running: None,
            self_wake_run: 0,
            storm_warned: false,
            lost_warned: false,
            panic: None,
            boot: 0,
            parked: Vec::new(),
        }
    }

    /// Adds an ended wait of `ticks` on a resource of `kind` named `name` (`None`:
    /// a resource the stream did not describe).
    pub(crate) fn add_parked(&mut self, kind: Option<ResourceKind>, name: &str, ticks: Ticks) {
        let i = match self.parked.iter().position(|p| p.kind == kind && *p.name == *name) {
            Some(i) => i,
            None if self.parked.len() < MAX_PARKED => {
                self.parked.push(Parked {
                    kind,
                    name: name.into(),
                    waits: 0,
                    ticks: Ticks::ZERO,
                });
                self.parked.len() - 1
            }
            None => {
                // Full: the last entry gathers the rest.
                let last = self.parked.len() - 1;
                self.parked[last].kind = None;
                self.parked[last].name = "other".into();
                last
            }
        };
        let p = &mut self.parked[i];
        p.waits = p.waits.saturating_add(1);
        p.ticks = Ticks(p.ticks.0.saturating_add(ticks.0));
    }

    /// Lifetime so far in ticks: spawn to completion, or to `now`.
    #[must_use]
    pub fn total_ticks(&self, now: Ticks) -> Ticks {
        self.completed_ts.unwrap_or(now).saturating_sub(self.spawned_ts)
    }

    /// Busy ticks including the poll in progress.
    #[must_use]
    pub fn busy_ticks_at(&self, now: Ticks) -> Ticks {
        self.busy_ticks + self.poll_started.map_or(Ticks::ZERO, |s| now.saturating_sub(Ticks(s)))
    }

    /// Scheduled ticks including the current wait in the run queue.
    #[must_use]
    pub fn scheduled_ticks_at(&self, now: Ticks) -> Ticks {
        let waiting = match self.status {
            TaskStatus::Scheduled => self
                .scheduled_since
                .map_or(Ticks::ZERO, |s| now.saturating_sub(Ticks(s))),
            _ => Ticks::ZERO,
        };
        self.scheduled_ticks + waiting
    }

    /// Ticks neither polled nor scheduled.
    #[must_use]
    pub fn idle_ticks_at(&self, now: Ticks) -> Ticks {
        self.total_ticks(now)
            .saturating_sub(self.busy_ticks_at(now))
            .saturating_sub(self.scheduled_ticks_at(now))
    }

    /// A name to show: the given one, or `task <id>`.
    #[must_use]
    pub fn display_name(&self) -> String {
        if self.name.is_empty() {
            format!("task {}", self.id)
        } else {
            self.name.to_string()
        }
    }

    pub(crate) fn note_waker(&mut self, w: Waker) {
        let mut key = WokenBy::from(w);
        if !self.woken_by.contains_key(&key) && self.woken_by.len() >= MAX_WAKERS_BY {
            key = WokenBy::Other;
        }
        self.woken_by.add(key, 1);
    }
}
