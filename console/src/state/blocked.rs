//! Tasks that can never run again, found from the waits in progress:
//!
//! - a **deadlock**: a cycle of tasks each waiting on something only another task
//!   of the cycle can signal;
//! - a **stuck wait**: a task waiting on something only tasks that can never run
//!   again can signal (deadlocked, stuck, or a task that lost its waker).
//!
//! Three kinds of wait name who can signal them. A join handle's only signaller
//! is the task joined: exact, so a cycle of joins is warned about the moment its
//! last wait begins. A receive on a channel can be signalled only by the tasks
//! holding its senders, and a lock only by the mutex's holder, as the kernel knows
//! them (`Holders`: a sender is held by the task that used it, unknown before its
//! first use or once shared, and then the wait is not judged; a lock by the task
//! that took it). That is known from use, not ownership, and a wake may be in
//! flight on a stream that arrives late, so a finding involving a channel or a
//! mutex is warned about only if it still holds [`CONFIRM_AFTER_MS`] of trace time
//! later with every task in it idle.

use std::collections::{BTreeMap, BTreeSet};

use lucid_protocol::{ResourceKind, TaskId, WaitOp};

use super::resource::{Deadlock, MAX_DEADLOCKS, Wait};
use super::{State, TaskStatus, WarningKind};
use crate::time::Ticks;

/// Largest group of waiting tasks followed from one wait.
const MAX_EXPLORED: usize = 64;
/// Trace time (milliseconds) a finding that involves a channel must hold before it
/// is warned: well past any wake in flight on a late stream, well inside the second
/// a deadlock must be reported within.
pub const CONFIRM_AFTER_MS: u64 = 500;

/// Who can signal a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// The end of the task joined.
    Join,
    /// A send by a holder of the channel's senders.
    Senders,
    /// The unlock of the mutex's holder.
    Lock,
}

/// One task's wait and the tasks that alone can end it.
#[derive(Debug, Clone)]
struct Edge {
    wait: Wait,
    on: Vec<TaskId>,
    signal: Signal,
}

/// What following the waits from one task found.
struct Finding {
    /// Every task reached, with its wait (tasks already known blocked have none).
    edges: BTreeMap<TaskId, Option<Edge>>,
}

impl Finding {
    /// Whether any wait in it is judged from holders (needs confirming).
    fn needs_confirming(&self) -> bool {
        self.edges.values().flatten().any(|e| e.signal != Signal::Join)
    }

    /// Whether `to` is reachable from `from` in one or more steps.
    fn reaches(&self, from: TaskId, to: TaskId) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(t) = stack.pop() {
            for &n in self.edges.get(&t).and_then(Option::as_ref).map_or(&[][..], |e| &e.on) {
                if n == to {
                    return true;
                }
                if seen.insert(n) {
                    stack.push(n);
                }
            }
        }
        false
    }

    /// The cycle through `start`, in wait order (each waits on the next).
    fn cycle_from(&self, start: TaskId) -> Vec<TaskId> {
        let mut path = vec![start];
        let mut cur = start;
        while path.len() <= MAX_EXPLORED {
            let Some(next) = self
                .edges
                .get(&cur)
                .and_then(Option::as_ref)
                .and_then(|e| e.on.iter().copied().find(|&n| n == start || self.reaches(n, start)))
            else {
                break;
            };
            if next == start {
                break;
            }
            path.push(next);
            cur = next;
        }
        path
    }
}

impl State {
    /// When a finding suspected at `ts` is confirmed.
    fn confirm_due(&self, ts: u64) -> Ticks {
        Ticks(ts.saturating_add(self.tsc_hz() / 1000 * CONFIRM_AFTER_MS))
    }

    /// `task`'s wait and who alone can end it, if that is known. `strict`: a wait
    /// judged from holders (senders, a lock's) counts only while its task is idle
    /// (not woken); else a task in the poll that begins the wait counts too.
    fn edge(&self, task: TaskId, strict: bool) -> Option<Edge> {
        let res = &self.resources;
        if let Some((wait, joined)) = res.join_wait(task) {
            return Some(Edge {
                wait: *wait,
                on: vec![joined],
                signal: Signal::Join,
            });
        }
        let waits = res.waits.get(&task)?;
        let mut open = waits.iter().filter(|w| w.op != WaitOp::Inside);
        let wait = *open.next()?;
        if open.next().is_some() {
            return None;
        }
        let resource = res.get(wait.resource)?;
        let holders = resource.holders.as_ref()?;
        let signal = match (resource.kind, wait.op) {
            (ResourceKind::Channel, WaitOp::Recv) => Signal::Senders,
            (ResourceKind::Mutex, WaitOp::Lock) => Signal::Lock,
            _ => return None,
        };
        if holders.unknown != 0 || holders.tasks.is_empty() {
            return None;
        }
        let t = self.tasks.get(&task)?;
        let parked = match t.status {
            TaskStatus::Idle => true,
            // A wake seen during the poll may be the one that queued it, dated late
            // (see `State::poll_end`); the confirmation sees the poll's end.
            TaskStatus::Running => !strict,
            _ => false,
        };
        parked.then(|| Edge {
            wait,
            on: holders.tasks.clone(),
            signal,
        })
    }

    /// Follows the waits from `start`: `Some` when every task reached waits only
    /// on tasks reached (or known blocked for good), so none of them can run again.
    fn explore(&self, start: TaskId, strict: bool) -> Option<Finding> {
        let mut edges = BTreeMap::new();
        let mut stack = vec![start];
        while let Some(t) = stack.pop() {
            if edges.contains_key(&t) {
                continue;
            }
            if t != start && self.resources.blocked_forever.contains(&t) {
                edges.insert(t, None);
                continue;
            }
            if edges.len() >= MAX_EXPLORED || self.tasks.get(&t).is_some_and(|x| x.status.is_done()) {
                return None;
            }
            let edge = self.edge(t, strict)?;
            stack.extend(edge.on.iter().copied().filter(|n| !edges.contains_key(n)));
            edges.insert(t, Some(edge));
        }
        Some(Finding { edges })
    }

    /// A wait that can be judged began, or what can signal one changed: warns now
    /// about what `task`'s waits show exactly, and has findings that involve a
    /// channel or a mutex confirmed later.
    pub(super) fn judge_wait(&mut self, cpu: u32, ts: u64, task: TaskId) {
        if self.resources.blocked_forever.contains(&task) {
            return;
        }
        let Some(finding) = self.explore(task, false) else {
            return;
        };
        if finding.needs_confirming() {
            self.suspect(ts, task);
            return;
        }
        self.warn_finding(cpu, ts, task, &finding, false);
    }

    /// Has `task`'s finding confirmed [`CONFIRM_AFTER_MS`] after `ts` (once; at most
    /// [`MAX_DEADLOCKS`] wait at a time).
    fn suspect(&mut self, ts: u64, task: TaskId) {
        let due = self.confirm_due(ts);
        let suspects = &mut self.resources.suspects;
        if !suspects.iter().any(|&(_, t)| t == task) && suspects.len() < MAX_DEADLOCKS {
            suspects.push((due, task));
        }
    }

    /// Confirms the findings due by `ts`.
    pub(super) fn confirm_suspects(&mut self, cpu: u32, ts: u64) {
        while let Some(&(due, task)) = self.resources.suspects.first()
            && due.0 <= ts
        {
            self.resources.suspects.remove(0);
            if self.resources.blocked_forever.contains(&task) {
                continue;
            }
            if let Some(finding) = self.explore(task, true) {
                self.warn_finding(cpu, ts, task, &finding, true);
            }
        }
    }

    /// `task` can never run again (it lost its waker): whoever waits on it only is
    /// stuck.
    pub(super) fn cannot_run(&mut self, cpu: u32, ts: u64, task: TaskId) {
        self.resources.blocked_forever.insert(task);
        self.find_stuck_waits(cpu, ts, false);
    }

    /// Warns about each cycle in `finding` as a deadlock and every other task in it
    /// as a stuck wait; then about any other task now waiting only on blocked ones.
    /// A cycle is named from `start` (the task whose wait closed it) when it is in
    /// one. `confirmed`: the finding held for [`CONFIRM_AFTER_MS`].
    fn warn_finding(&mut self, cpu: u32, ts: u64, start: TaskId, finding: &Finding, confirmed: bool) {
        let waiting: Vec<TaskId> = core::iter::once(start)
            .chain(
                finding
                    .edges
                    .iter()
                    .filter(|&(&t, e)| e.is_some() && t != start)
                    .map(|(&t, _)| t),
            )
            .collect();
        for &t in &waiting {
            if !self.resources.blocked_forever.contains(&t) && finding.reaches(t, t) {
                let cycle = finding.cycle_from(t);
                self.deadlock(cpu, ts, &cycle, finding);
            }
        }
        self.find_stuck_waits(cpu, ts, confirmed);
    }

    fn deadlock(&mut self, cpu: u32, ts: u64, cycle: &[TaskId], finding: &Finding) {
        let mut key = cycle.to_vec();
        key.sort_unstable();
        let known = self.resources.deadlocks.iter().any(|d| {
            let mut tasks = d.tasks.clone();
            tasks.sort_unstable();
            tasks == key
        });
        self.resources.blocked_forever.extend(cycle.iter().copied());
        if known || self.resources.deadlocks.len() >= MAX_DEADLOCKS {
            return;
        }
        let waits: Vec<Wait> = cycle
            .iter()
            .filter_map(|t| finding.edges.get(t).and_then(Option::as_ref).map(|e| e.wait))
            .collect();
        let steps: Vec<String> = cycle.iter().map(|&t| self.describe_wait(t)).collect();
        self.resources.deadlocks.push(Deadlock {
            resources: waits.iter().map(|w| w.resource).collect(),
            formed: waits.iter().map(|w| w.since).max().unwrap_or(Ticks(ts)),
            detected: Ticks(ts),
            tasks: cycle.to_vec(),
        });
        self.warn_at(
            WarningKind::Deadlock,
            ts,
            cpu,
            cycle.first().copied(),
            format!(
                "deadlock of {} tasks: {}; none of them can proceed",
                cycle.len(),
                steps.join(", ")
            ),
        );
    }

    /// Warns about every waiting task whose wait only tasks blocked for good can
    /// signal (to a fixpoint: a chain of such waits is stuck all along). A wait on a
    /// channel found so is only suspected unless `confirmed`.
    fn find_stuck_waits(&mut self, cpu: u32, ts: u64, confirmed: bool) {
        loop {
            let stuck: Vec<(TaskId, Signal)> = self
                .resources
                .waits
                .keys()
                .copied()
                .filter(|t| !self.resources.blocked_forever.contains(t))
                .filter_map(|t| {
                    let e = self.edge(t, true)?;
                    e.on.iter()
                        .all(|n| self.resources.blocked_forever.contains(n))
                        .then_some((t, e.signal))
                })
                .collect();
            let mut warned = false;
            for (task, signal) in stuck {
                if signal != Signal::Join && !confirmed {
                    self.suspect(ts, task);
                    continue;
                }
                warned = true;
                self.resources.blocked_forever.insert(task);
                let what = self.describe_wait(task);
                self.warn_at(
                    WarningKind::StuckWait,
                    ts,
                    cpu,
                    Some(task),
                    format!("stuck wait: {what}, which can never finish; nothing alive can signal it"),
                );
            }
            if !warned {
                return;
            }
        }
    }

    /// `task 5 (a) waits on join#9 for task 6 (b)`, `task 5 (a) waits on chan#12
    /// to-a recv, sent to only by task 6 (b)` or `task 5 (a) waits on mutex#3 lock,
    /// held by task 6 (b)`.
    fn describe_wait(&self, task: TaskId) -> String {
        let Some(edge) = self.edge(task, false).or_else(|| self.edge(task, true)) else {
            return self.task_label(task);
        };
        let mut on: Vec<TaskId> = edge.on.clone();
        on.dedup();
        let names: Vec<String> = on.iter().map(|&t| self.task_label(t)).collect();
        let names = names.join(" and ");
        match edge.signal {
            Signal::Join => format!(
                "{} waits on {} for {names}",
                self.task_label(task),
                self.resources.label(edge.wait.resource)
            ),
            Signal::Senders => format!(
                "{} waits on {} recv, sent to only by {names}",
                self.task_label(task),
                self.resources.label(edge.wait.resource)
            ),
            Signal::Lock => format!(
                "{} waits on {} lock, held by {names}",
                self.task_label(task),
                self.resources.label(edge.wait.resource)
            ),
        }
    }
}
