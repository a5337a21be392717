//! Resources tasks wait on (channels, semaphores, wait queues, timers, join handles,
//! wasm channels) and the waits in progress, from `ResourceCreated`,
//! `ResourceDropped`, `WaitBegin`, `WaitEnd` and `JoinWaiting`; and the two warnings
//! they make possible:
//!
//! - a **deadlock**: a cycle of tasks each waiting on something only another task
//!   of the cycle can signal (join handles, channels whose senders are known);
//! - a **stuck wait**: a task waiting on something whose only signaller is itself
//!   deadlocked or stuck, so nothing alive can signal it.
//!
//! The search is in `blocked.rs`.

use std::collections::{BTreeMap, BTreeSet};

use lucid_protocol::{
    ResourceCreated, ResourceId, ResourceKind, ResourceOps, TaskId, WaitBegin, WaitEnd, WaitOp, WaitOutcome,
};
use serde::{Deserialize, Serialize};

use super::State;
use crate::time::Ticks;

/// Live resources kept; a stream that creates more without dropping any has the
/// rest counted in [`Resources::untracked`].
pub const MAX_RESOURCES: usize = 1 << 16;
/// Waits in progress kept per task (a `select` over many resources).
pub const MAX_WAITS_PER_TASK: usize = 8;
/// Deadlocks kept (and warned about).
pub const MAX_DEADLOCKS: usize = 1000;
/// Waiters of a resource judged again when who holds it changes.
const MAX_JUDGED_WAITERS: usize = 16;

/// A live resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// Its id.
    pub id: ResourceId,
    /// What it is.
    pub kind: ResourceKind,
    /// Name given at creation (may be empty).
    pub name: String,
    /// `file:line:column` where it was created.
    pub location: String,
    /// Values or permits it holds, where that applies.
    pub capacity: Option<u64>,
    /// Trace time of its creation.
    pub created: Ticks,
    /// Waits begun on it so far.
    pub waits: u64,
    /// Operations done on it as the kernel counted them (`ResourceOps`: sends,
    /// receives, acquisitions, locks).
    #[serde(default)]
    pub ops: BTreeMap<WaitOp, u64>,
    /// Who holds its handles (a channel's senders), once the kernel said.
    #[serde(default)]
    pub holders: Option<Holders>,
}

/// Who holds a resource's handles (`Holders`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holders {
    /// Tasks holding one (named twice for two).
    pub tasks: Vec<TaskId>,
    /// Handles whose holder is unknown (unused yet, or shared).
    pub unknown: u32,
}

impl Holders {
    /// `task 5, task 6 and 1 unknown`-style text with `label` naming tasks; empty
    /// when no handle is held.
    #[must_use]
    pub fn text(&self, label: impl Fn(TaskId) -> String) -> String {
        let mut parts: Vec<String> = self.tasks.iter().map(|&t| label(t)).collect();
        if self.unknown > 0 {
            parts.push(format!("{} unknown", self.unknown));
        }
        parts.join(", ")
    }
}

impl Resource {
    /// Values in a channel's queue as of the latest operation counts (sends less
    /// receives); `None` for other kinds.
    #[must_use]
    pub fn queued(&self) -> Option<u64> {
        matches!(self.kind, ResourceKind::Channel | ResourceKind::WasmChannel).then(|| {
            let n = |op| self.ops.get(&op).copied().unwrap_or(0);
            // The two counts are read a moment apart in the kernel.
            n(WaitOp::Send)
                .saturating_sub(n(WaitOp::Recv))
                .min(self.capacity.unwrap_or(u64::MAX))
        })
    }

    /// `send 12 recv 11`, or empty when nothing was counted.
    #[must_use]
    pub fn ops_text(&self) -> String {
        self.ops
            .iter()
            .map(|(op, n)| format!("{} {n}", op.name()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Ended waits kept for the timeline ([`State::wait_marks`]).
pub const MAX_WAIT_MARKS: usize = 16_384;

/// An ended wait, for the timeline's wait bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitMark {
    /// The task that waited.
    pub task: TaskId,
    /// What it waited on.
    pub resource: ResourceId,
    /// When the wait began.
    pub start: Ticks,
    /// When it ended.
    pub end: Ticks,
}

/// A wait in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    /// The resource waited on.
    pub resource: ResourceId,
    /// What for.
    pub op: WaitOp,
    /// Trace time the wait began.
    pub since: Ticks,
}

/// A deadlock found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlock {
    /// Its tasks, in cycle order (each waits on the next, the last on the first).
    pub tasks: Vec<TaskId>,
    /// The resource each of them waits on, in the same order.
    pub resources: Vec<ResourceId>,
    /// Trace time the cycle closed: the latest of its waits began.
    pub formed: Ticks,
    /// Trace time it was found.
    pub detected: Ticks,
}

/// Resources and waits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Live resources by id.
    pub live: BTreeMap<ResourceId, Resource>,
    /// `ResourceCreated` messages.
    pub created: u64,
    /// `ResourceDropped` messages.
    pub dropped: u64,
    /// Resources not kept because [`MAX_RESOURCES`] were live.
    pub untracked: u64,
    /// Waits in progress by task, oldest first.
    pub waits: BTreeMap<TaskId, Vec<Wait>>,
    /// `WaitBegin` messages.
    pub waits_begun: u64,
    /// Operations counted on every resource (`ResourceOps`), by operation.
    #[serde(default)]
    pub ops: BTreeMap<WaitOp, u64>,
    /// Waits ended, by outcome: ready, cancelled, timed out.
    pub waits_ended: [u64; 3],
    /// The task each waiting task last awaited the join handle of (`JoinWaiting`).
    pub joining: BTreeMap<TaskId, TaskId>,
    /// Tasks found deadlocked or stuck: nothing alive can wake them.
    pub blocked_forever: BTreeSet<TaskId>,
    /// Deadlocks warned about (each cycle once), oldest first.
    pub deadlocks: Vec<Deadlock>,
    /// Waits whose finding (a deadlock or stuck wait involving a channel) is
    /// confirmed when its time comes, by the time due.
    #[serde(default)]
    pub suspects: Vec<(Ticks, TaskId)>,
}

impl Resources {
    /// The live resource `id`, if known.
    #[must_use]
    pub fn get(&self, id: ResourceId) -> Option<&Resource> {
        self.live.get(&id)
    }

    /// `chan#12 "ping"`-style label of resource `id` (`#12` when unknown).
    #[must_use]
    pub fn label(&self, id: ResourceId) -> String {
        match self.live.get(&id) {
            Some(r) if r.name.is_empty() => format!("{}#{}", r.kind.name(), id),
            Some(r) => format!("{}#{} {}", r.kind.name(), id, r.name),
            None => format!("#{id}"),
        }
    }

    /// The newest wait in progress of `task` on a resource (not a frame it is parked
    /// in): with several open (a select), the one it got to last; on a stream that
    /// lost wait ends, never a stale one older than what it waits on now.
    #[must_use]
    pub fn current_wait(&self, task: TaskId) -> Option<&Wait> {
        self.waits.get(&task)?.iter().rev().find(|w| w.op != WaitOp::Inside)
    }

    /// The frames `task` is parked in, outermost first (frames park innermost first,
    /// so this is their begin order reversed).
    pub fn frames(&self, task: TaskId) -> impl Iterator<Item = &Wait> {
        self.waits
            .get(&task)
            .into_iter()
            .flat_map(|ws| ws.iter().rev().filter(|w| w.op == WaitOp::Inside))
    }

    /// `task`'s await stack while it is parked in frames: the frames' names,
    /// outermost first, then the resource it waits on (`rounds › chan#12 pong
    /// recv`); `None` when it is in no frame.
    #[must_use]
    pub fn await_stack(&self, task: TaskId) -> Option<String> {
        let mut parts: Vec<String> = self
            .frames(task)
            .map(|w| match self.live.get(&w.resource) {
                Some(r) if !r.name.is_empty() => r.name.to_string(),
                _ => format!("frame#{}", w.resource),
            })
            .collect();
        if parts.is_empty() {
            return None;
        }
        if let Some(w) = self.current_wait(task) {
            parts.push(format!("{} {}", self.label(w.resource), w.op.name()));
        }
        Some(parts.join(" › "))
    }

    /// Tasks waiting on `id`, with their waits.
    pub fn waiters(&self, id: ResourceId) -> impl Iterator<Item = (TaskId, &Wait)> {
        self.waits
            .iter()
            .flat_map(move |(&t, ws)| ws.iter().filter(move |w| w.resource == id).map(move |w| (t, w)))
    }

    /// Tasks waiting on `id`.
    #[must_use]
    pub fn waiter_count(&self, id: ResourceId) -> usize {
        self.waiters(id).count()
    }

    /// Tasks waiting, by the kind of resource they wait on (unknown resources under
    /// `None`).
    #[must_use]
    pub fn waiting_by_kind(&self) -> BTreeMap<Option<ResourceKind>, u64> {
        let mut by = BTreeMap::new();
        for ws in self.waits.values() {
            if let Some(w) = ws.iter().rev().find(|w| w.op != WaitOp::Inside) {
                *by.entry(self.live.get(&w.resource).map(|r| r.kind)).or_default() += 1;
            }
        }
        by
    }

    fn create(&mut self, ts: u64, r: &ResourceCreated<'_>) {
        self.created = self.created.saturating_add(1);
        if self.live.len() >= MAX_RESOURCES && !self.live.contains_key(&r.id) {
            self.untracked = self.untracked.saturating_add(1);
            return;
        }
        self.live.insert(
            r.id,
            Resource {
                id: r.id,
                kind: r.kind,
                name: r.name.to_string(),
                location: format!("{}:{}:{}", r.location.file, r.location.line, r.location.column),
                capacity: r.capacity,
                created: Ticks(ts),
                waits: 0,
                ops: BTreeMap::new(),
                holders: None,
            },
        );
    }

    fn drop_resource(&mut self, id: ResourceId) {
        self.dropped = self.dropped.saturating_add(1);
        self.live.remove(&id);
    }

    fn begin(&mut self, ts: u64, w: &WaitBegin) {
        self.waits_begun = self.waits_begun.saturating_add(1);
        if let Some(r) = self.live.get_mut(&w.resource) {
            r.waits = r.waits.saturating_add(1);
        }
        let waits = self.waits.entry(w.task).or_default();
        // Already known (a snapshot answer repeats the waits in progress): it keeps
        // its start.
        if waits.iter().any(|x| x.resource == w.resource) {
            return;
        }
        // Full: a stream that lost wait ends leaves stale waits behind; the oldest
        // makes room, so what the task waits on now is never refused.
        if waits.len() >= MAX_WAITS_PER_TASK {
            waits.remove(0);
        }
        waits.push(Wait {
            resource: w.resource,
            op: w.op,
            since: Ticks(ts),
        });
    }

    /// Ends `w`'s wait; returns it if it was known.
    fn end(&mut self, w: &WaitEnd) -> Option<Wait> {
        let i = match w.outcome {
            WaitOutcome::Ready => 0,
            WaitOutcome::Cancelled => 1,
            WaitOutcome::TimedOut => 2,
        };
        self.waits_ended[i] = self.waits_ended[i].saturating_add(1);
        let mut ended = None;
        if let Some(waits) = self.waits.get_mut(&w.task) {
            if let Some(i) = waits.iter().position(|x| x.resource == w.resource) {
                ended = Some(waits.remove(i));
            }
            waits.retain(|x| x.resource != w.resource);
            if waits.is_empty() {
                self.waits.remove(&w.task);
            }
        }
        if !self.waits.contains_key(&w.task) {
            self.joining.remove(&w.task);
            self.blocked_forever.remove(&w.task);
        }
        ended
    }

    /// `task` ended: its waits end with it.
    /// Forgets the live resources and waits of a boot that ended: its ids mean
    /// nothing in the next boot. Counters and found deadlocks stay.
    pub(super) fn end_boot(&mut self) {
        self.live.clear();
        self.waits.clear();
        self.joining.clear();
        self.blocked_forever.clear();
        self.suspects.clear();
    }

    pub(super) fn task_ended(&mut self, task: TaskId) {
        self.waits.remove(&task);
        self.joining.remove(&task);
        self.blocked_forever.remove(&task);
    }

    /// The join wait of `task` and the task it joins, if it waits on a join handle.
    pub(super) fn join_wait(&self, task: TaskId) -> Option<(&Wait, TaskId)> {
        let wait = self.waits.get(&task)?.iter().find(|w| w.op == WaitOp::Join)?;
        Some((wait, *self.joining.get(&task)?))
    }
}

impl State {
    pub(super) fn resource_created(&mut self, ts: u64, r: &ResourceCreated<'_>) {
        self.resources.create(ts, r);
    }

    pub(super) fn resource_dropped(&mut self, id: ResourceId) {
        self.resources.drop_resource(id);
    }

    pub(super) fn join_waiting(&mut self, task: TaskId, waiter: TaskId) {
        self.resources.joining.insert(waiter, task);
    }

    pub(super) fn resource_ops(&mut self, r: &ResourceOps) {
        let total = self.resources.ops.entry(r.op).or_default();
        *total = total.saturating_add(r.count);
        if let Some(live) = self.resources.live.get_mut(&r.id) {
            let n = live.ops.entry(r.op).or_default();
            *n = n.saturating_add(r.count);
        }
    }

    pub(super) fn wait_end(&mut self, ts: u64, w: &WaitEnd) {
        // Frames are stages, not waits: the timeline draws what tasks waited on.
        if let Some(wait) = self.resources.end(w)
            && wait.op != WaitOp::Inside
        {
            if self.wait_marks.len() >= MAX_WAIT_MARKS {
                self.wait_marks.pop_front();
            }
            self.wait_marks.push_back(WaitMark {
                task: w.task,
                resource: w.resource,
                start: wait.since,
                end: Ticks(ts).max(wait.since),
            });
            let res = self.resources.live.get(&w.resource);
            if let Some(t) = self.tasks.get_mut(&w.task) {
                t.add_parked(
                    res.map(|r| r.kind),
                    res.map_or("", |r| r.name.as_str()),
                    Ticks(ts).saturating_sub(wait.since),
                );
            }
        }
    }

    pub(super) fn wait_begin(&mut self, cpu: u32, ts: u64, w: &WaitBegin) {
        self.resources.begin(ts, w);
        if matches!(w.op, WaitOp::Join | WaitOp::Recv | WaitOp::Lock) {
            self.judge_wait(cpu, ts, w.task);
        }
    }

    /// Who holds `h.resource`'s handles changed: its waiters may now be judged.
    pub(super) fn holders(&mut self, cpu: u32, ts: u64, h: &lucid_protocol::Holders) {
        let Some(r) = self.resources.live.get_mut(&h.resource) else {
            return;
        };
        r.holders = Some(Holders {
            tasks: h.named().collect(),
            unknown: h.unknown,
        });
        // A few are enough to find a cycle through it; a stream naming thousands
        // of waiters of one resource does not make each message cost thousands of
        // searches.
        let waiters: Vec<TaskId> = self
            .resources
            .waiters(h.resource)
            .map(|(t, _)| t)
            .take(MAX_JUDGED_WAITERS)
            .collect();
        for task in waiters {
            self.judge_wait(cpu, ts, task);
        }
    }

    /// `task` ran after all: it was not blocked for good.
    #[inline]
    pub(super) fn ran(&mut self, task: TaskId) {
        if !self.resources.blocked_forever.is_empty() {
            self.resources.blocked_forever.remove(&task);
        }
        // A polled task is parked in no frame: its frames end here even when the
        // stream lost their ends (frames begin and end with every park).
        if let Some(ws) = self.resources.waits.get_mut(&task)
            && ws.iter().any(|w| w.op == WaitOp::Inside)
        {
            ws.retain(|w| w.op != WaitOp::Inside);
            if ws.is_empty() {
                self.resources.waits.remove(&task);
            }
        }
    }

    /// `task 5 (name)`, or `task 5` for an unnamed or unknown task.
    pub(crate) fn task_label(&self, task: TaskId) -> String {
        match self.tasks.get(&task) {
            Some(t) if !t.name.is_empty() => format!("task {task} ({})", t.name.as_str()),
            _ => format!("task {task}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use lucid_protocol::{Event, Item, Location, Message, Ring, StreamId, TaskKind, TaskSpawned};

    use super::*;
    use crate::state::{TaskStatus, WarningKind};

    fn apply(s: &mut State, ts: u64, message: Message<'_>) {
        s.apply(&Item::Event {
            stream: StreamId::new(0, Ring::Task),
            seq: 0,
            event: Event { ts, message },
        });
    }

    fn spawn(s: &mut State, ts: u64, task: u64, name: &str) {
        apply(
            s,
            ts,
            Message::TaskSpawned(TaskSpawned {
                task: TaskId(task),
                name,
                kind: TaskKind::Kernel,
                location: Location {
                    file: "w.rs",
                    line: 1,
                    column: 1,
                },
                parent: None,
            }),
        );
    }

    fn create(s: &mut State, ts: u64, id: u64, kind: ResourceKind, name: &str) {
        apply(
            s,
            ts,
            Message::ResourceCreated(ResourceCreated {
                id: ResourceId(id),
                kind,
                name,
                location: Location {
                    file: "w.rs",
                    line: 9,
                    column: 5,
                },
                capacity: Some(1),
            }),
        );
    }

    fn begin(s: &mut State, ts: u64, task: u64, resource: u64, op: WaitOp) {
        apply(
            s,
            ts,
            Message::WaitBegin(WaitBegin {
                task: TaskId(task),
                resource: ResourceId(resource),
                op,
            }),
        );
    }

    fn join(s: &mut State, ts: u64, waiter: u64, joined: u64, resource: u64) {
        apply(
            s,
            ts,
            Message::JoinWaiting {
                task: TaskId(joined),
                waiter: TaskId(waiter),
            },
        );
        create(s, ts, resource, ResourceKind::Join, "");
        begin(s, ts, waiter, resource, WaitOp::Join);
    }

    fn warnings(s: &State, kind: WarningKind) -> Vec<String> {
        s.warnings
            .iter()
            .filter(|w| w.kind == kind)
            .map(|w| w.message.clone())
            .collect()
    }

    #[test]
    fn a_wait_is_current_until_it_ends_and_the_resource_lives_until_dropped() {
        let mut s = State::new();
        spawn(&mut s, 1, 5, "pong");
        create(&mut s, 2, 12, ResourceKind::Channel, "ping");
        begin(&mut s, 10, 5, 12, WaitOp::Recv);
        assert_eq!(
            s.resources.current_wait(TaskId(5)),
            Some(&Wait {
                resource: ResourceId(12),
                op: WaitOp::Recv,
                since: Ticks(10)
            })
        );
        assert_eq!(s.resources.label(ResourceId(12)), "chan#12 ping");
        assert_eq!(s.resources.waiter_count(ResourceId(12)), 1);
        assert_eq!(s.resources.live[&ResourceId(12)].location, "w.rs:9:5");
        apply(
            &mut s,
            20,
            Message::WaitEnd(WaitEnd {
                task: TaskId(5),
                resource: ResourceId(12),
                outcome: WaitOutcome::Ready,
            }),
        );
        assert_eq!(s.resources.current_wait(TaskId(5)), None);
        assert_eq!(s.resources.waits_ended, [1, 0, 0]);
        apply(
            &mut s,
            30,
            Message::ResourceDropped(lucid_protocol::ResourceDropped { id: ResourceId(12) }),
        );
        assert!(s.resources.live.is_empty());
        assert_eq!((s.resources.created, s.resources.dropped), (1, 1));
        assert_eq!(s.resources.label(ResourceId(12)), "#12");
    }

    #[test]
    fn a_snapshot_repeating_a_known_wait_keeps_its_start() {
        let mut s = State::new();
        begin(&mut s, 10, 5, 12, WaitOp::Recv);
        begin(&mut s, 50, 5, 12, WaitOp::Recv);
        assert_eq!(s.resources.current_wait(TaskId(5)).map(|w| w.since), Some(Ticks(10)));
        assert_eq!(s.resources.waits[&TaskId(5)].len(), 1);
    }

    #[test]
    fn a_task_that_completes_stops_waiting() {
        let mut s = State::new();
        spawn(&mut s, 1, 5, "t");
        begin(&mut s, 10, 5, 12, WaitOp::Recv);
        apply(
            &mut s,
            20,
            Message::TaskCompleted {
                task: TaskId(5),
                outcome: lucid_protocol::Outcome::Cancelled,
            },
        );
        assert!(s.resources.waits.is_empty());
    }

    #[test]
    fn two_tasks_joining_each_other_are_a_deadlock_naming_both_and_both_resources() {
        let mut s = State::new();
        spawn(&mut s, 1, 5, "left");
        spawn(&mut s, 1, 6, "right");
        spawn(&mut s, 1, 7, "bystander");
        spawn(&mut s, 1, 8, "joins-bystander");
        // A join that is not part of a cycle is no deadlock.
        join(&mut s, 5, 8, 7, 30);
        join(&mut s, 10, 5, 6, 20);
        assert!(warnings(&s, WarningKind::Deadlock).is_empty());
        join(&mut s, 11, 6, 5, 21);
        let found = warnings(&s, WarningKind::Deadlock);
        assert_eq!(
            found,
            [
                "deadlock of 2 tasks: task 6 (right) waits on join#21 for task 5 (left), \
              task 5 (left) waits on join#20 for task 6 (right); none of them can proceed"
            ]
        );
        // Once per cycle.
        join(&mut s, 12, 6, 5, 21);
        assert_eq!(warnings(&s, WarningKind::Deadlock).len(), 1);
        assert!(warnings(&s, WarningKind::StuckWait).is_empty());
    }

    #[test]
    fn a_task_joining_a_deadlocked_task_is_a_stuck_wait_whenever_it_began() {
        let mut s = State::new();
        for (t, name) in [(5, "a"), (6, "b"), (7, "early"), (8, "late"), (9, "later")] {
            spawn(&mut s, 1, t, name);
        }
        join(&mut s, 5, 7, 5, 40);
        join(&mut s, 10, 5, 6, 20);
        join(&mut s, 11, 6, 5, 21);
        join(&mut s, 12, 8, 6, 41);
        join(&mut s, 13, 9, 8, 42);
        let stuck = warnings(&s, WarningKind::StuckWait);
        assert_eq!(
            stuck,
            [
                "stuck wait: task 7 (early) waits on join#40 for task 5 (a), which can never finish; \
                 nothing alive can signal it",
                "stuck wait: task 8 (late) waits on join#41 for task 6 (b), which can never finish; \
                 nothing alive can signal it",
                "stuck wait: task 9 (later) waits on join#42 for task 8 (late), which can never finish; \
                 nothing alive can signal it",
            ]
        );
    }

    #[test]
    fn a_task_joining_a_task_that_lost_its_waker_is_a_stuck_wait() {
        let mut s = State::new();
        spawn(&mut s, 1, 5, "lost-waker");
        spawn(&mut s, 1, 6, "stuck-joiner");
        join(&mut s, 5, 6, 5, 20);
        apply(&mut s, 10, Message::PollStart { task: TaskId(5) });
        apply(
            &mut s,
            11,
            Message::PollEnd {
                task: TaskId(5),
                result: lucid_protocol::PollResult::Pending,
            },
        );
        // No waker was ever cloned: the count is unknown until a snapshot or a drop.
        apply(
            &mut s,
            12,
            Message::WakerClone {
                task: TaskId(5),
                wakers: 1,
            },
        );
        apply(
            &mut s,
            13,
            Message::WakerDrop {
                task: TaskId(5),
                wakers: 0,
            },
        );
        assert_eq!(warnings(&s, WarningKind::LostWaker).len(), 1);
        assert_eq!(
            warnings(&s, WarningKind::StuckWait),
            [
                "stuck wait: task 6 (stuck-joiner) waits on join#20 for task 5 (lost-waker), which can never \
              finish; nothing alive can signal it"
            ]
        );
        assert!(warnings(&s, WarningKind::Deadlock).is_empty());
    }

    #[test]
    fn a_deadlock_records_when_it_formed_and_when_it_was_found() {
        let mut s = State::new();
        spawn(&mut s, 1, 5, "a");
        spawn(&mut s, 1, 6, "b");
        join(&mut s, 10, 5, 6, 20);
        join(&mut s, 17, 6, 5, 21);
        let d = &s.resources.deadlocks[0];
        assert_eq!(d.tasks, [TaskId(6), TaskId(5)]);
        assert_eq!(d.resources, [ResourceId(21), ResourceId(20)]);
        assert_eq!((d.formed, d.detected), (Ticks(17), Ticks(17)));
    }

    #[test]
    fn a_deadlock_stays_in_the_report_when_other_warnings_flood_it() {
        let mut s = State::new();
        for i in 0..200 {
            s.warn(crate::state::Warning::new(
                WarningKind::LongPoll,
                format!("long poll {i}"),
            ));
        }
        spawn(&mut s, 1, 5, "a");
        spawn(&mut s, 1, 6, "b");
        join(&mut s, 10, 5, 6, 20);
        join(&mut s, 11, 6, 5, 21);
        assert!(s.warnings.iter().all(|w| w.kind == WarningKind::LongPoll));
        assert_eq!(s.first_warnings_by_kind[&WarningKind::Deadlock].len(), 1);
        assert_eq!(
            s.first_warnings_by_kind[&WarningKind::LongPoll].len(),
            crate::state::MAX_WARNINGS_PER_KIND
        );
    }

    #[test]
    fn waits_on_a_finished_task_or_a_broken_chain_are_not_deadlocks() {
        let mut s = State::new();
        spawn(&mut s, 1, 5, "a");
        spawn(&mut s, 1, 6, "b");
        join(&mut s, 10, 5, 6, 20);
        // 6's join wait ends (it got its answer) before 5 is joined by 6 again.
        apply(
            &mut s,
            11,
            Message::WaitEnd(WaitEnd {
                task: TaskId(5),
                resource: ResourceId(20),
                outcome: WaitOutcome::Ready,
            }),
        );
        join(&mut s, 12, 6, 5, 21);
        assert!(warnings(&s, WarningKind::Deadlock).is_empty());
    }

    #[test]
    fn a_task_parked_in_frames_has_an_await_stack_down_to_its_resource() {
        let mut s = State::default();
        spawn(&mut s, 0, 5, "ping-pong");
        create(&mut s, 1, 12, ResourceKind::Channel, "pong");
        begin(&mut s, 10, 5, 12, WaitOp::Recv);
        // Frames park innermost first, each created at its first park.
        create(&mut s, 11, 20, ResourceKind::Frame, "one round");
        begin(&mut s, 11, 5, 20, WaitOp::Inside);
        create(&mut s, 12, 21, ResourceKind::Frame, "rounds");
        begin(&mut s, 12, 5, 21, WaitOp::Inside);
        let r = &s.resources;
        assert_eq!(
            r.await_stack(TaskId(5)).as_deref(),
            Some("rounds › one round › chan#12 pong recv")
        );
        assert_eq!(r.current_wait(TaskId(5)).map(|w| w.resource), Some(ResourceId(12)));
        assert_eq!(
            r.waiting_by_kind().get(&Some(ResourceKind::Channel)),
            Some(&1),
            "a frame is not what a task waits on"
        );
        // Polled again: out of both frames; no stack, the channel wait stays.
        for id in [21, 20] {
            apply(
                &mut s,
                20,
                Message::WaitEnd(WaitEnd {
                    task: TaskId(5),
                    resource: ResourceId(id),
                    outcome: WaitOutcome::Ready,
                }),
            );
        }
        assert_eq!(s.resources.await_stack(TaskId(5)), None);
        assert!(s.resources.current_wait(TaskId(5)).is_some());
    }

    #[test]
    fn a_poll_ends_every_frame_of_its_task_even_when_their_ends_were_lost() {
        let mut s = State::default();
        spawn(&mut s, 0, 5, "ping-pong");
        create(&mut s, 1, 20, ResourceKind::Frame, "between rounds");
        create(&mut s, 2, 12, ResourceKind::Timer, "");
        begin(&mut s, 10, 5, 12, WaitOp::Sleep);
        begin(&mut s, 10, 5, 20, WaitOp::Inside);
        assert!(s.resources.await_stack(TaskId(5)).is_some());
        apply(&mut s, 20, Message::PollStart { task: TaskId(5) });
        assert_eq!(s.resources.await_stack(TaskId(5)), None);
        assert!(
            s.resources.current_wait(TaskId(5)).is_some(),
            "the sleep is still waited on"
        );
    }

    #[test]
    fn operation_counts_add_up_per_resource_and_over_all() {
        let mut s = State::default();
        create(&mut s, 1, 12, ResourceKind::Channel, "ping");
        for (op, count) in [(WaitOp::Send, 5), (WaitOp::Recv, 4), (WaitOp::Send, 2)] {
            apply(
                &mut s,
                2,
                Message::ResourceOps(ResourceOps {
                    id: ResourceId(12),
                    op,
                    count,
                }),
            );
        }
        // A resource created before this console connected counts in the totals only.
        apply(
            &mut s,
            3,
            Message::ResourceOps(ResourceOps {
                id: ResourceId(99),
                op: WaitOp::Recv,
                count: u64::MAX,
            }),
        );
        let r = &s.resources;
        assert_eq!(r.live[&ResourceId(12)].ops_text(), "recv 4 send 7");
        assert_eq!(r.ops.get(&WaitOp::Send), Some(&7));
        assert_eq!(r.ops.get(&WaitOp::Recv), Some(&u64::MAX), "saturates");
    }

    /// Resource `id` (a channel) has senders held by `tasks` and `unknown` more.
    fn held(s: &mut State, ts: u64, id: u64, tasks: &[u64], unknown: u32) {
        let mut named = [None; lucid_protocol::NAMED_HOLDERS];
        for (slot, &t) in named.iter_mut().zip(tasks) {
            *slot = Some(TaskId(t));
        }
        apply(
            s,
            ts,
            Message::Holders(lucid_protocol::Holders {
                resource: ResourceId(id),
                tasks: named,
                unknown,
            }),
        );
    }

    /// `task` polled from `ts` to `ts + 1`, beginning a receive on `chan` that waits.
    fn recv_parks(s: &mut State, ts: u64, task: u64, chan: u64) {
        parks(s, ts, task, chan, WaitOp::Recv);
    }

    /// `task` polled from `ts` to `ts + 1`, beginning `op` on `resource`, which waits.
    fn parks(s: &mut State, ts: u64, task: u64, resource: u64, op: WaitOp) {
        apply(s, ts, Message::PollStart { task: TaskId(task) });
        begin(s, ts, task, resource, op);
        apply(
            s,
            ts + 1,
            Message::PollEnd {
                task: TaskId(task),
                result: lucid_protocol::PollResult::Pending,
            },
        );
    }

    /// Two tasks, each receiving on a channel whose only sender the other holds.
    fn channel_pair(s: &mut State) {
        spawn(s, 1, 5, "chan-a");
        spawn(s, 1, 6, "chan-b");
        create(s, 2, 30, ResourceKind::Channel, "to-a");
        create(s, 2, 31, ResourceKind::Channel, "to-b");
        held(s, 3, 30, &[6], 0);
        held(s, 3, 31, &[5], 0);
    }

    /// Half a second of trace time at the default clock, and a bit.
    fn confirm_ticks(s: &State) -> u64 {
        s.tsc_hz() / 1000 * crate::state::blocked::CONFIRM_AFTER_MS + 1
    }

    #[test]
    fn two_tasks_receiving_from_each_other_are_a_deadlock_once_it_held_half_a_second() {
        let mut s = State::new();
        channel_pair(&mut s);
        recv_parks(&mut s, 10, 5, 30);
        recv_parks(&mut s, 20, 6, 31);
        assert!(
            warnings(&s, WarningKind::Deadlock).is_empty(),
            "a wake may still be in flight: not yet"
        );
        let later = 20 + confirm_ticks(&s);
        apply(&mut s, later, Message::Heartbeat);
        assert_eq!(
            warnings(&s, WarningKind::Deadlock),
            [
                "deadlock of 2 tasks: task 6 (chan-b) waits on chan#31 to-b recv, sent to only by task 5 (chan-a), \
                 task 5 (chan-a) waits on chan#30 to-a recv, sent to only by task 6 (chan-b); none of them can proceed"
            ]
        );
        let d = &s.resources.deadlocks[0];
        assert_eq!(d.resources, [ResourceId(31), ResourceId(30)]);
        assert_eq!(d.formed, Ticks(20));
        // A third task receiving on a channel only chan-a sends on is stuck.
        spawn(&mut s, later, 7, "listener");
        create(&mut s, later, 32, ResourceKind::Channel, "news");
        held(&mut s, later, 32, &[5], 0);
        recv_parks(&mut s, later + 1, 7, 32);
        let end = later + 2 * confirm_ticks(&s);
        apply(&mut s, end, Message::Heartbeat);
        assert_eq!(warnings(&s, WarningKind::StuckWait).len(), 1, "{:?}", s.warnings);
        assert_eq!(warnings(&s, WarningKind::Deadlock).len(), 1);
    }

    #[test]
    fn a_woken_receiver_an_unknown_sender_or_a_poll_in_between_is_no_deadlock() {
        // Woken before the confirmation: the value was on its way.
        let mut s = State::new();
        channel_pair(&mut s);
        recv_parks(&mut s, 10, 5, 30);
        recv_parks(&mut s, 20, 6, 31);
        apply(
            &mut s,
            30,
            Message::Wake {
                task: TaskId(5),
                waker: lucid_protocol::Waker::Task(TaskId(6)),
                by_ref: true,
                self_wake: false,
            },
        );
        let end = 40 + confirm_ticks(&s);
        apply(&mut s, end, Message::Heartbeat);
        assert!(warnings(&s, WarningKind::Deadlock).is_empty());

        // One sender whose holder is unknown (not used yet, or shared).
        let mut s = State::new();
        channel_pair(&mut s);
        held(&mut s, 4, 30, &[6], 1);
        recv_parks(&mut s, 10, 5, 30);
        recv_parks(&mut s, 20, 6, 31);
        let end = 20 + confirm_ticks(&s);
        apply(&mut s, end, Message::Heartbeat);
        assert!(warnings(&s, WarningKind::Deadlock).is_empty());

        // The other task is running when the wait begins and stays so.
        let mut s = State::new();
        channel_pair(&mut s);
        apply(&mut s, 5, Message::PollStart { task: TaskId(6) });
        recv_parks(&mut s, 10, 5, 30);
        let end = 10 + confirm_ticks(&s);
        apply(&mut s, end, Message::Heartbeat);
        assert!(warnings(&s, WarningKind::Deadlock).is_empty());
    }

    fn hello(s: &mut State, minor: u16) {
        apply(
            s,
            0,
            Message::Hello(lucid_protocol::Hello {
                major: 1,
                minor,
                build_id: "k",
                tsc_hz: 1_000_000_000,
                cpus: 2,
                boot_tsc: 0,
            }),
        );
    }

    /// `task` is woken from outside any task (a timer on another CPU).
    fn timer_wake(s: &mut State, ts: u64, task: u64) {
        apply(
            s,
            ts,
            Message::Wake {
                task: TaskId(task),
                waker: lucid_protocol::Waker::None,
                by_ref: false,
                self_wake: false,
            },
        );
    }

    fn poll_end(s: &mut State, ts: u64, task: u64, result: lucid_protocol::PollResult) {
        apply(
            s,
            ts,
            Message::PollEnd {
                task: TaskId(task),
                result,
            },
        );
    }

    #[test]
    fn a_wake_dated_inside_the_poll_it_queued_leaves_the_task_idle_when_the_end_says_not_woken() {
        use lucid_protocol::PollResult::{Pending, PendingWoken};
        let woken_at = |s: &mut State, ts| timer_wake(s, ts, 5);
        let mut s = State::new();
        hello(&mut s, lucid_protocol::MINOR);
        spawn(&mut s, 1, 5, "sleeper");
        // The poll's start shares the previous poll's end on its CPU, which came
        // before the wake (on another CPU) that queued the task.
        apply(&mut s, 10, Message::PollStart { task: TaskId(5) });
        woken_at(&mut s, 12);
        poll_end(&mut s, 15, 5, Pending);
        assert_eq!(s.tasks[&TaskId(5)].status, TaskStatus::Idle);
        // Woken during the poll for real: queued again.
        apply(&mut s, 20, Message::PollStart { task: TaskId(5) });
        woken_at(&mut s, 22);
        poll_end(&mut s, 25, 5, PendingWoken);
        assert_eq!(s.tasks[&TaskId(5)].status, TaskStatus::Scheduled);

        // A kernel that does not say (minor 2) is judged by the wakes seen.
        let mut s = State::new();
        hello(&mut s, 2);
        spawn(&mut s, 1, 5, "sleeper");
        apply(&mut s, 10, Message::PollStart { task: TaskId(5) });
        woken_at(&mut s, 12);
        poll_end(&mut s, 15, 5, Pending);
        assert_eq!(s.tasks[&TaskId(5)].status, TaskStatus::Scheduled);
    }

    /// Tasks 5 (lock-a) and 6 (lock-b), mutexes 40 (first) and 41 (second).
    fn lock_pair(s: &mut State) {
        spawn(s, 1, 5, "lock-a");
        spawn(s, 1, 6, "lock-b");
        create(s, 2, 40, ResourceKind::Mutex, "first");
        create(s, 2, 41, ResourceKind::Mutex, "second");
    }

    /// Half a second of trace time after `ts`, the deadlock of [`lock_pair`]'s tasks
    /// is the one warned about.
    fn assert_lock_pair_deadlock(s: &mut State, ts: u64) {
        let end = ts + confirm_ticks(s);
        apply(s, end, Message::Heartbeat);
        assert_eq!(
            warnings(s, WarningKind::Deadlock),
            [
                "deadlock of 2 tasks: task 6 (lock-b) waits on mutex#40 first lock, held by task 5 (lock-a), \
                 task 5 (lock-a) waits on mutex#41 second lock, held by task 6 (lock-b); none of them can proceed"
            ]
        );
    }

    /// The order of a recorded round of the deadlock workload whose deadlock was
    /// missed: lock-a's poll is dated before the sleep's wake that queued it.
    #[test]
    fn a_lock_deadlock_is_found_when_a_wake_is_dated_inside_the_poll_it_queued() {
        let mut s = State::new();
        hello(&mut s, lucid_protocol::MINOR);
        lock_pair(&mut s);
        apply(&mut s, 10, Message::PollStart { task: TaskId(5) });
        timer_wake(&mut s, 12, 5);
        begin(&mut s, 13, 5, 41, WaitOp::Lock);
        held(&mut s, 14, 41, &[6], 0);
        poll_end(&mut s, 15, 5, lucid_protocol::PollResult::Pending);
        apply(&mut s, 20, Message::PollStart { task: TaskId(6) });
        begin(&mut s, 21, 6, 40, WaitOp::Lock);
        held(&mut s, 22, 40, &[5], 0);
        poll_end(&mut s, 23, 6, lucid_protocol::PollResult::Pending);
        assert_lock_pair_deadlock(&mut s, 23);
    }

    #[test]
    fn two_tasks_each_holding_the_mutex_the_other_waits_for_are_a_deadlock() {
        let mut s = State::new();
        lock_pair(&mut s);
        // Each wait's beginning tells who holds the mutex.
        parks(&mut s, 10, 5, 41, WaitOp::Lock);
        held(&mut s, 11, 41, &[6], 0);
        parks(&mut s, 20, 6, 40, WaitOp::Lock);
        held(&mut s, 21, 40, &[5], 0);
        assert_lock_pair_deadlock(&mut s, 21);
    }
}
