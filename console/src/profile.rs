//! `lucid profile`: where the CPU time of a recording (or a window of it) went, per
//! task, per spawn location and per CPU, and the longest polls.
//!
//! Built from the items of one pass ([`crate::window::scan`]): poll slices from
//! `PollStart`/`PollEnd` pairs on a CPU's stream, scheduling latency from a task's
//! first wake to its next poll, run-queue depth from the CPU's samples. Task names and
//! spawn locations come from the state at the window's start and the spawns inside it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;

use lucid_protocol::{Item, Message, PollResult, Ring, TaskId, TaskKind};
use serde::Serialize;

use crate::fmt::duration_ns;
use crate::state::{Histogram, State};
use crate::time::{Clock, Ticks};

/// What a report says about a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskInfo {
    pub name: String,
    pub kind: &'static str,
    pub location: String,
}

fn kind_name(k: TaskKind) -> &'static str {
    match k {
        TaskKind::Kernel => "kernel",
        TaskKind::Wasm => "wasm",
    }
}

/// Names, kinds and spawn locations of tasks: those the state knows at the window's
/// start, then the spawns and snapshots inside it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tasks(BTreeMap<TaskId, TaskInfo>);

impl Tasks {
    pub fn from_state(state: &State) -> Self {
        Self(
            state
                .tasks
                .values()
                .map(|t| {
                    (
                        t.id,
                        TaskInfo {
                            name: t.display_name(),
                            kind: kind_name(t.kind),
                            location: if t.location.is_empty() {
                                "?".into()
                            } else {
                                t.location.to_string()
                            },
                        },
                    )
                })
                .collect(),
        )
    }

    pub fn observe(&mut self, m: &Message<'_>) {
        let (task, name, kind, loc) = match m {
            Message::TaskSpawned(s) => (s.task, s.name, s.kind, s.location),
            Message::TaskSnapshot(s) => (s.task, s.name, s.kind, s.location),
            // A task whose spawn came before the recording started: its instance
            // says what it is (as the state model does).
            Message::WasmInstanceSnapshot(w) if !self.0.contains_key(&w.task) => {
                self.0.insert(
                    w.task,
                    TaskInfo {
                        name: w.module.to_string(),
                        kind: kind_name(TaskKind::Wasm),
                        location: "?".into(),
                    },
                );
                return;
            }
            _ => return,
        };
        self.0.insert(
            task,
            TaskInfo {
                name: if name.is_empty() {
                    format!("task {task}")
                } else {
                    name.to_string()
                },
                kind: kind_name(kind),
                location: format!("{}:{}:{}", loc.file, loc.line, loc.column),
            },
        );
    }

    pub fn get(&self, task: TaskId) -> TaskInfo {
        self.0.get(&task).cloned().unwrap_or_else(|| TaskInfo {
            name: format!("task {task}"),
            kind: "kernel",
            location: "?".into(),
        })
    }
}

/// One poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PollSlice {
    pub cpu: u32,
    pub task: TaskId,
    pub start: u64,
    pub end: u64,
    pub result: PollResult,
}

/// Pairs `PollStart` and `PollEnd` per CPU, as the state model does.
#[derive(Debug, Clone, Default)]
pub(crate) struct Polls(BTreeMap<u32, (TaskId, u64)>);

impl Polls {
    /// Polls running at the window's start count from `from` (their earlier part is
    /// outside the window).
    pub fn from_state(state: &State, from: Option<u64>) -> Self {
        Self(
            state
                .cpus
                .iter()
                .filter_map(|(&cpu, c)| c.polling.map(|(t, s)| (cpu, (t, from.map_or(s, |f| s.max(f))))))
                .collect(),
        )
    }

    pub fn observe(&mut self, cpu: u32, ts: u64, m: &Message<'_>) -> Option<PollSlice> {
        match *m {
            Message::PollStart { task } => {
                self.0.insert(cpu, (task, ts));
                None
            }
            Message::PollEnd { task, result } => match self.0.remove(&cpu) {
                Some((t, start)) if t == task && ts >= start => Some(PollSlice {
                    cpu,
                    task,
                    start,
                    end: ts,
                    result,
                }),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The executor events of an item: (cpu, timestamp, message) of task and interrupt
/// streams.
pub(crate) fn executor_event<'a>(item: &'a Item<'a>) -> Option<(u32, u64, &'a Message<'a>)> {
    match item {
        Item::Event { stream, event, .. } if matches!(stream.ring, Ring::Task | Ring::Interrupt) => {
            Some((stream.cpu, event.ts, &event.message))
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Default)]
struct TaskAcc {
    busy: u64,
    polls: u64,
    poll: Histogram,
    sched: Histogram,
}

#[derive(Debug, Clone, Default)]
struct CpuAcc {
    busy: u64,
    steals_in: u64,
    steals_out: u64,
    run_queue: Histogram,
}

/// Folds the items of a window into a [`Profile`].
#[derive(Debug)]
pub struct Profiler {
    tasks: Tasks,
    polls: Polls,
    acc: BTreeMap<TaskId, TaskAcc>,
    cpus: BTreeMap<u32, CpuAcc>,
    /// First wake of a task since its last poll started.
    woken: BTreeMap<TaskId, u64>,
    longest: BinaryHeap<Reverse<(u64, u64, u32, TaskId)>>,
    top: usize,
    seen: Option<(u64, u64)>,
    hello_cpus: Option<u32>,
}

impl Profiler {
    /// A profiler starting from `state` (the state at the window's start, whose start
    /// is `from` if the window has one), keeping the `top` longest polls.
    #[must_use]
    pub fn new(state: &State, from: Option<u64>, top: usize) -> Self {
        Self {
            tasks: Tasks::from_state(state),
            polls: Polls::from_state(state, from),
            acc: BTreeMap::new(),
            cpus: BTreeMap::new(),
            woken: BTreeMap::new(),
            longest: BinaryHeap::new(),
            top,
            seen: None,
            hello_cpus: state.kernel.as_ref().map(|k| k.cpus),
        }
    }

    /// Takes one item.
    pub fn observe(&mut self, item: &Item<'_>) {
        if let Item::Event { event, .. } = item {
            match &event.message {
                Message::Hello(h) => self.hello_cpus = Some(h.cpus),
                m => self.tasks.observe(m),
            }
        }
        let Some((cpu, ts, m)) = executor_event(item) else {
            return;
        };
        self.seen = Some(self.seen.map_or((ts, ts), |(a, b)| (a.min(ts), b.max(ts))));
        if let Some(s) = self.polls.observe(cpu, ts, m) {
            let d = s.end - s.start;
            let a = self.acc.entry(s.task).or_default();
            a.busy += d;
            a.polls += 1;
            a.poll.record(d);
            self.cpus.entry(cpu).or_default().busy += d;
            self.longest.push(Reverse((d, s.start, cpu, s.task)));
            if self.longest.len() > self.top {
                self.longest.pop();
            }
        }
        match *m {
            Message::Wake { task, .. } => {
                self.woken.entry(task).or_insert(ts);
            }
            Message::PollStart { task } => {
                if let Some(w) = self.woken.remove(&task) {
                    self.acc.entry(task).or_default().sched.record(ts.saturating_sub(w));
                }
            }
            Message::Steal { from_cpu, to_cpu, .. } => {
                self.cpus.entry(from_cpu).or_default().steals_out += 1;
                self.cpus.entry(to_cpu).or_default().steals_in += 1;
            }
            Message::RunQueueDepth { depth } => self.cpus.entry(cpu).or_default().run_queue.record(u64::from(depth)),
            _ => {}
        }
    }

    /// The profile, with times converted by `clock` and counted from `origin`;
    /// `window` is the window's (start, end) in ticks where known, else the span of
    /// the events seen.
    #[must_use]
    pub fn finish(self, clock: Clock, origin: u64, window: (Option<u64>, Option<u64>)) -> Profile {
        let ns = |t: u64| clock.ns(Ticks(t));
        let (a, b) = (
            window.0.or(self.seen.map(|s| s.0)).unwrap_or(0),
            window.1.or(self.seen.map(|s| s.1)).unwrap_or(0),
        );
        let span = b.saturating_sub(a);
        let ncpus = u64::from(self.hello_cpus.unwrap_or(0))
            .max(self.cpus.len() as u64)
            .max(1);
        let share = |busy: u64| {
            if span == 0 {
                0.0
            } else {
                busy as f64 / (span * ncpus) as f64
            }
        };
        let mut tasks: Vec<TaskProfile> = self
            .acc
            .iter()
            .filter(|(_, t)| t.polls > 0)
            .map(|(&id, t)| {
                let info = self.tasks.get(id);
                TaskProfile {
                    task: id,
                    name: info.name,
                    kind: info.kind,
                    location: info.location,
                    busy_ns: ns(t.busy),
                    cpu_share: share(t.busy),
                    polls: t.polls,
                    mean_poll_ns: ns(t.poll.mean()),
                    p99_poll_ns: ns(t.poll.quantile(0.99)),
                    max_poll_ns: ns(t.poll.max()),
                    p99_sched_ns: (t.sched.count() > 0).then(|| ns(t.sched.quantile(0.99))),
                }
            })
            .collect();
        tasks.sort_by(|x, y| y.busy_ns.cmp(&x.busy_ns).then(x.task.cmp(&y.task)));
        let mut by_loc: BTreeMap<String, (u64, TaskAcc)> = BTreeMap::new();
        for (&id, t) in &self.acc {
            let e = by_loc.entry(self.tasks.get(id).location).or_default();
            e.0 += 1;
            e.1.busy += t.busy;
            e.1.polls += t.polls;
            e.1.poll.merge(&t.poll);
            e.1.sched.merge(&t.sched);
        }
        let mut locations: Vec<LocationProfile> = by_loc
            .into_iter()
            .filter(|(_, (_, t))| t.polls > 0)
            .map(|(location, (n, t))| LocationProfile {
                location,
                tasks: n,
                busy_ns: ns(t.busy),
                cpu_share: share(t.busy),
                polls: t.polls,
                mean_poll_ns: ns(t.poll.mean()),
                p99_poll_ns: ns(t.poll.quantile(0.99)),
                max_poll_ns: ns(t.poll.max()),
                p99_sched_ns: (t.sched.count() > 0).then(|| ns(t.sched.quantile(0.99))),
            })
            .collect();
        locations.sort_by(|x, y| y.busy_ns.cmp(&x.busy_ns).then(x.location.cmp(&y.location)));
        let cpus = self
            .cpus
            .iter()
            .map(|(&cpu, c)| CpuProfile {
                cpu,
                utilization: if span == 0 { 0.0 } else { c.busy as f64 / span as f64 },
                busy_ns: ns(c.busy),
                steals_in: c.steals_in,
                steals_out: c.steals_out,
                run_queue: (c.run_queue.count() > 0).then(|| RunQueue {
                    samples: c.run_queue.count(),
                    p50: c.run_queue.quantile(0.5),
                    p90: c.run_queue.quantile(0.9),
                    p99: c.run_queue.quantile(0.99),
                    max: c.run_queue.max(),
                }),
            })
            .collect();
        let mut longest: Vec<_> = self.longest.into_iter().map(|Reverse(p)| p).collect();
        longest.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
        let longest_polls = longest
            .into_iter()
            .map(|(d, start, cpu, task)| LongPoll {
                at_ns: ns(start.saturating_sub(origin)),
                duration_ns: ns(d),
                cpu,
                task,
                name: self.tasks.get(task).name,
            })
            .collect();
        Profile {
            from_ns: ns(a.saturating_sub(origin)),
            to_ns: ns(b.saturating_sub(origin)),
            cpus_counted: ncpus,
            busy_ns: ns(self.acc.values().map(|t| t.busy).sum()),
            tasks,
            locations,
            cpus,
            longest_polls,
        }
    }
}

/// One task's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskProfile {
    /// Task id.
    pub task: TaskId,
    /// Name.
    pub name: String,
    /// `kernel` or `wasm`.
    pub kind: &'static str,
    /// Spawn location `file:line:column`.
    pub location: String,
    /// Time spent in its polls.
    pub busy_ns: u64,
    /// `busy / (window × CPUs)`.
    pub cpu_share: f64,
    /// Polls completed in the window.
    pub polls: u64,
    /// Mean poll duration.
    pub mean_poll_ns: u64,
    /// 99th percentile poll duration (histogram bucket bound, ≤ 12.5 % above).
    pub p99_poll_ns: u64,
    /// Longest poll.
    pub max_poll_ns: u64,
    /// 99th percentile of first wake → poll start, if it was woken.
    pub p99_sched_ns: Option<u64>,
}

/// One spawn location's numbers, over its tasks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocationProfile {
    /// Spawn location `file:line:column` (`?` when unknown).
    pub location: String,
    /// Tasks polled in the window.
    pub tasks: u64,
    /// Time spent in their polls.
    pub busy_ns: u64,
    /// `busy / (window × CPUs)`.
    pub cpu_share: f64,
    /// Polls.
    pub polls: u64,
    /// Mean poll duration.
    pub mean_poll_ns: u64,
    /// 99th percentile poll duration.
    pub p99_poll_ns: u64,
    /// Longest poll.
    pub max_poll_ns: u64,
    /// 99th percentile scheduling latency.
    pub p99_sched_ns: Option<u64>,
}

/// Run-queue depth samples of a CPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunQueue {
    /// Samples.
    pub samples: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

/// One CPU's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuProfile {
    /// CPU number.
    pub cpu: u32,
    /// Busy fraction of the window.
    pub utilization: f64,
    /// Time spent polling.
    pub busy_ns: u64,
    /// Tasks stolen by this CPU.
    pub steals_in: u64,
    /// Tasks stolen from this CPU.
    pub steals_out: u64,
    /// Run-queue depth, if sampled.
    pub run_queue: Option<RunQueue>,
}

/// One of the longest polls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LongPoll {
    /// Start, after the recording's first event.
    pub at_ns: u64,
    /// Duration.
    pub duration_ns: u64,
    /// CPU.
    pub cpu: u32,
    /// Task.
    pub task: TaskId,
    /// Task name.
    pub name: String,
}

/// What `lucid profile` prints (`--json`: exactly this object).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// Window start, after the recording's first event.
    pub from_ns: u64,
    /// Window end.
    pub to_ns: u64,
    /// CPUs the shares are relative to.
    pub cpus_counted: u64,
    /// Busy time of all tasks.
    pub busy_ns: u64,
    /// Tasks by busy time.
    pub tasks: Vec<TaskProfile>,
    /// Spawn locations by busy time.
    pub locations: Vec<LocationProfile>,
    /// CPUs.
    pub cpus: Vec<CpuProfile>,
    /// Longest polls, longest first.
    pub longest_polls: Vec<LongPoll>,
}

impl Profile {
    /// The human-readable form, with at most `top` tasks and locations.
    #[must_use]
    pub fn to_text(&self, top: usize) -> String {
        let mut o = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_text(&mut o, top);
        o
    }

    fn write_text(&self, o: &mut String, top: usize) -> std::fmt::Result {
        let d = duration_ns;
        let opt = |v: Option<u64>| v.map_or_else(|| "-".into(), duration_ns);
        writeln!(
            o,
            "window     +{} .. +{} ({}), {} CPUs, {} busy",
            d(self.from_ns),
            d(self.to_ns),
            d(self.to_ns.saturating_sub(self.from_ns)),
            self.cpus_counted,
            d(self.busy_ns)
        )?;
        writeln!(o, "\ncpus")?;
        writeln!(
            o,
            "  {:<5} {:>6} {:>9} {:>9} {:>9}  run queue p50/p90/p99/max",
            "cpu", "util", "busy", "steal in", "steal out"
        )?;
        for c in &self.cpus {
            let rq = c
                .run_queue
                .as_ref()
                .map_or_else(|| "-".into(), |r| format!("{}/{}/{}/{}", r.p50, r.p90, r.p99, r.max));
            writeln!(
                o,
                "  {:<5} {:>5.1}% {:>9} {:>9} {:>9}  {rq}",
                c.cpu,
                c.utilization * 100.0,
                d(c.busy_ns),
                c.steals_in,
                c.steals_out
            )?;
        }
        writeln!(o, "\ntasks by busy time")?;
        writeln!(
            o,
            "  {:<7} {:<20} {:<6} {:>9} {:>6} {:>7} {:>9} {:>9} {:>9} {:>9}  location",
            "id", "name", "kind", "busy", "share", "polls", "mean", "p99", "max", "sched p99"
        )?;
        for t in self.tasks.iter().take(top) {
            writeln!(
                o,
                "  {:<7} {:<20} {:<6} {:>9} {:>5.1}% {:>7} {:>9} {:>9} {:>9} {:>9}  {}",
                t.task,
                truncate(&t.name, 20),
                t.kind,
                d(t.busy_ns),
                t.cpu_share * 100.0,
                t.polls,
                d(t.mean_poll_ns),
                d(t.p99_poll_ns),
                d(t.max_poll_ns),
                opt(t.p99_sched_ns),
                t.location
            )?;
        }
        writeln!(o, "\nspawn locations by busy time")?;
        writeln!(
            o,
            "  {:<40} {:>6} {:>9} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9}",
            "location", "tasks", "busy", "share", "polls", "mean", "p99", "max", "sched p99"
        )?;
        for l in self.locations.iter().take(top) {
            writeln!(
                o,
                "  {:<40} {:>6} {:>9} {:>5.1}% {:>8} {:>9} {:>9} {:>9} {:>9}",
                truncate(&l.location, 40),
                l.tasks,
                d(l.busy_ns),
                l.cpu_share * 100.0,
                l.polls,
                d(l.mean_poll_ns),
                d(l.p99_poll_ns),
                d(l.max_poll_ns),
                opt(l.p99_sched_ns)
            )?;
        }
        writeln!(o, "\nlongest polls")?;
        for p in &self.longest_polls {
            writeln!(
                o,
                "  +{:<12} {:>9}  cpu {:<3} task {} ({})",
                d(p.at_ns),
                d(p.duration_ns),
                p.cpu,
                p.task,
                p.name
            )?;
        }
        Ok(())
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).chain(['…']).collect()
    }
}

impl crate::window::Observer for Profiler {
    fn observe(&mut self, item: &Item<'_>) {
        Profiler::observe(self, item);
    }
}

#[cfg(test)]
mod tests;
