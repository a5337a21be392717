//! The state model: everything the console knows, built only from decoded protocol
//! items (and the receive times of the chunks they came in). No UI types here; views,
//! stats and exporters read it.
//!
//! Memory stays bounded in a long session: completed tasks are dropped once they are
//! older than [`Config::retain_ns`] of trace time, and per-CPU poll slices, run-queue
//! samples, utilisation windows, logs and warnings are kept in fixed-size windows.
//! Whatever the stream, everything keyed by its ids is capped (`limits`), and a
//! kernel restart begins a new boot instead of mixing two (`boot`).

pub(crate) mod blocked;
mod boot;
mod columns;
mod counts;
mod cpu;
mod histogram;
mod history;
mod latency;
mod limits;
mod log;
mod loss;
mod resource;
mod sampled;
mod task;
mod task_columns;
mod task_map;
mod text;
mod warning;
mod wasm;
mod wasm_code;

#[cfg(test)]
mod boot_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use lucid_protocol::{
    CallsiteId, FrameError, InstanceId, Item, Message, Outcome, PollResult, Ring, StreamId, TaskId, TaskPanicked,
    TaskState,
};
use serde::{Deserialize, Serialize};

use crate::time::fastdiv::Divisor;
use crate::time::{Clock, HostNs, Ticks};

pub use boot::{BootMark, MAX_BOOT_MARKS, marks_between};
pub use counts::KindCounts;
pub use cpu::{Cpu, CpuTotals, MAX_RQ_SAMPLES, MAX_SLICES_PER_CPU, MAX_STEAL_SOURCES, MAX_UTIL_WINDOWS, Slice};
pub use histogram::Histogram;
pub use history::{BUCKETS_PER_LEVEL, BusyHistory, TASK_BUCKETS, TaskHistory};
pub use latency::{LATENCY_BOUNDS_NS, LatencyHistogram};
pub use limits::{MAX_BYTES_PER_BYTE, MAX_INSTANCES, MAX_TASKS, MAX_TRAP_CODES, OTHER_TRAP_CODES};
pub use log::{CallsiteInfo, LogLine, MAX_CALLSITES, MAX_LOGS, level_name};
pub use loss::LossOrigin;
pub use resource::{
    Deadlock, MAX_DEADLOCKS, MAX_RESOURCES, MAX_WAIT_MARKS, MAX_WAITS_PER_TASK, Resource, Resources, Wait, WaitMark,
};
pub use sampled::{MAX_POLL_SAMPLES, MAX_SAMPLED_PCS, MAX_WARNING_PCS, Sampled, TaskSampled};
pub use task::{MAX_WAKERS_BY, Task, TaskStatus, WokenBy, WokenByCounts};
pub use task_map::{Cursor as TaskCursor, Iter as TaskIter, TaskMap, Values as TaskValues};
pub use text::Text;
pub use warning::{Warning, WarningKind};
pub use wasm::{Hostcall, MAX_HOSTCALL_KINDS, MAX_MEMORY_SAMPLES, OTHER_HOSTCALLS, WasmInstance};
pub use wasm_code::{CodeFunction, MAX_WASM_FUNCTIONS, WasmCode};

/// Warnings kept verbatim for reports (the first ones); further ones are only counted.
pub const MAX_WARNINGS: usize = 100;
/// Warnings of each kind kept verbatim (the first ones), so a kind that floods the
/// report (long polls under load) does not hide a rare one.
pub const MAX_WARNINGS_PER_KIND: usize = 20;
/// CPUs a stream may name before its `Hello` says how many there are.
pub const MAX_CPUS_WITHOUT_HELLO: u32 = 256;
/// CPUs a stream may name beyond the `Hello`'s count (a kernel that brings up more
/// CPUs than it announced).
pub const CPU_MARGIN: u32 = 8;
/// CPUs a stream may name whatever its `Hello` says (a `Hello` claiming billions of
/// CPUs must not lift the bound).
pub const MAX_CPUS: u32 = 4096;
/// Task panics kept with their messages (all are counted).
pub const MAX_PANICS: usize = 1000;
/// Most recent warnings kept for the views.
pub const MAX_RECENT_WARNINGS: usize = 500;
/// TSC frequency assumed until a `Hello` says otherwise.
pub const DEFAULT_TSC_HZ: u64 = 1_000_000_000;
/// Expired task ids remembered.
pub const MAX_EXPIRED_IDS: usize = 1 << 16;
/// Wakes kept for the timeline.
pub const MAX_WAKE_MARKS: usize = 16_384;
/// Events between two passes that drop expired tasks.
const PRUNE_EVERY: u64 = 4096;

/// A wake, for drawing on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakeMark {
    /// When.
    pub ts: Ticks,
    /// The CPU whose stream reported it.
    pub cpu: u32,
    /// The woken task.
    pub task: TaskId,
    /// Who woke it.
    pub waker: WokenBy,
}

/// The wake marks as columns: time after the previous one, CPU, woken task, and
/// the waker as a kind and (for a task or an interrupt) its number.
mod wake_mark_columns {
    use std::collections::VecDeque;

    use lucid_protocol::TaskId;
    use serde::{Deserializer, Serializer};

    use super::columns;
    use super::{WakeMark, WokenBy};
    use crate::time::Ticks;

    pub(super) fn serialize<S: Serializer>(v: &VecDeque<WakeMark>, s: S) -> Result<S::Ok, S::Error> {
        columns::serialize(s, |o| {
            o.u(v.len() as u64);
            let mut p = 0;
            v.iter().for_each(|m| o.delta(&mut p, m.ts.0));
            v.iter().for_each(|m| o.u(u64::from(m.cpu)));
            let mut p = 0;
            v.iter().for_each(|m| o.delta(&mut p, m.task.0));
            for m in v {
                match m.waker {
                    WokenBy::Nobody => o.u(0),
                    WokenBy::Other => o.u(1),
                    WokenBy::Interrupt(i) => {
                        o.u(2);
                        o.u(u64::from(i));
                    }
                    WokenBy::Task(t) => {
                        o.u(3);
                        o.relative(m.task.0, t.0);
                    }
                }
            }
        })
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VecDeque<WakeMark>, D::Error> {
        columns::deserialize(d, |r| {
            let n = r.count(4)?;
            let mut v = Vec::with_capacity(n);
            let mut p = 0;
            for _ in 0..n {
                v.push(WakeMark {
                    ts: Ticks(r.delta(&mut p)?),
                    cpu: 0,
                    task: TaskId(0),
                    waker: WokenBy::Nobody,
                });
            }
            for m in &mut v {
                m.cpu = r.u32()?;
            }
            let mut p = 0;
            for m in &mut v {
                m.task = TaskId(r.delta(&mut p)?);
            }
            for m in &mut v {
                m.waker = match r.u()? {
                    0 => WokenBy::Nobody,
                    1 => WokenBy::Other,
                    2 => WokenBy::Interrupt(u8::try_from(r.u()?).map_err(|_| "interrupt vector out of range")?),
                    3 => WokenBy::Task(TaskId(r.relative(m.task.0)?)),
                    _ => return Err("bad waker kind"),
                };
            }
            Ok(v.into())
        })
    }
}

/// Thresholds and limits of the state model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Completed tasks are kept this long (trace time, nanoseconds) after completing.
    pub retain_ns: u64,
    /// A poll longer than this is a warning.
    pub long_poll_ns: u64,
    /// This many self-wakes in a row without another waker is a self-wake storm.
    pub self_wake_storm: u64,
    /// Width of one utilisation window (trace time, nanoseconds).
    pub util_window_ns: u64,
    /// Tasks held at most (see [`MAX_TASKS`]).
    pub max_tasks: usize,
    /// Wasm instances held at most (see [`MAX_INSTANCES`]).
    pub max_instances: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            retain_ns: 60_000_000_000,
            long_poll_ns: 10_000_000,
            self_wake_storm: 1000,
            util_window_ns: 10_000_000,
            max_tasks: MAX_TASKS,
            max_instances: MAX_INSTANCES,
        }
    }
}

/// What the kernel said about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelInfo {
    /// Protocol version major.minor.
    pub version: (u16, u16),
    /// Build id.
    pub build_id: String,
    /// TSC ticks per second.
    pub tsc_hz: u64,
    /// CPUs.
    pub cpus: u32,
    /// TSC at boot.
    pub boot_tsc: u64,
}

/// Frame-level problems the decoder reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHealth {
    /// Sequence discontinuities.
    pub sequence_gaps: u64,
    /// Frames missing according to them.
    pub missing_frames: u64,
    /// Streams that restarted at sequence 0.
    pub restarts: u64,
    /// Frames with a CRC mismatch.
    pub crc_errors: u64,
    /// Frames with bad COBS, too short, too large or with malformed records.
    pub malformed_frames: u64,
    /// Frames of an incompatible protocol version.
    pub version_errors: u64,
    /// The input ended inside a frame.
    pub incomplete_frames: u64,
}

/// Everything known about a traced kernel.
/// Adds `n` to a figure summed from the stream, saturating at `u64::MAX` (a wrapped
/// sum would show a hostile stream's huge values as a small count); `true` if it is
/// saturated.
pub(crate) fn add_saturating(figure: &mut u64, n: u64) -> bool {
    *figure = figure.saturating_add(n);
    *figure == u64::MAX
}

/// A contained task panic, as the stream reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanicRecord {
    /// The task.
    pub task: TaskId,
    /// Its name when the stream gave one (empty otherwise).
    pub name: String,
    /// The panic message.
    pub message: String,
    /// `file:line:column` where it was raised (empty when unknown).
    pub location: String,
    /// Trace time (TSC).
    pub ts: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Thresholds and limits.
    pub config: Config,
    /// From the `Hello`, once seen.
    pub kernel: Option<KernelInfo>,
    /// Events applied.
    pub events: u64,
    /// Events by kind.
    pub events_by_kind: KindCounts,
    /// Tasks by id: live ones, and completed ones within the retention time.
    pub tasks: TaskMap,
    /// `TaskSpawned` messages.
    pub tasks_spawned: u64,
    /// `TaskCompleted` messages.
    pub tasks_completed: u64,
    /// Events ignored because they name a CPU beyond [`State::cpu_bound`].
    pub events_beyond_cpus: u64,
    /// Figures summed from the stream that reached `u64::MAX` (each warned about once).
    pub saturated_figures: Vec<String>,
    /// Contained task panics (`TaskPanicked` messages).
    pub task_panics: u64,
    /// The first [`MAX_PANICS`] of them, oldest first.
    pub panics: Vec<PanicRecord>,
    /// Completed tasks dropped from [`State::tasks`] after the retention time.
    pub tasks_expired: u64,
    /// Trace time the latest snapshot answer's totals were read (its `TaskSnapshot`s'
    /// time): every task alive then is named by it.
    #[serde(default)]
    pub snapshot_taken: Option<Ticks>,
    /// Tasks dropped from [`State::tasks`] to stay within [`MAX_TASKS`] (the views,
    /// `lucid stats` and the metrics no longer see them; the spawn and completion
    /// counts still include them).
    pub tasks_evicted: u64,
    /// Of those, tasks that had not completed.
    pub live_tasks_evicted: u64,
    /// Wasm instances dropped from [`State::wasm`] to stay within [`MAX_INSTANCES`].
    pub instances_evicted: u64,
    /// Hostcall reports counted under [`OTHER_HOSTCALLS`] because their instance
    /// already had [`MAX_HOSTCALL_KINDS`] kinds.
    pub hostcalls_in_other: u64,
    /// Traps counted under [`OTHER_TRAP_CODES`] because their instance already had
    /// [`MAX_TRAP_CODES`] codes.
    pub traps_in_other: u64,
    /// Callsite registrations ignored because [`MAX_CALLSITES`] were held.
    pub callsites_ignored: u64,
    /// CPUs by number.
    pub cpus: BTreeMap<u32, Cpu>,
    /// Wasm instances by id.
    pub wasm: BTreeMap<InstanceId, WasmInstance>,
    /// Resources tasks wait on, and the waits in progress.
    pub resources: Resources,
    /// Where the wasm modules' functions lie (from snapshot answers).
    #[serde(default)]
    pub wasm_code: WasmCode,
    /// Profiling samples, per task and context.
    #[serde(default)]
    pub sampled: Sampled,
    /// Sum of `Loss` reports.
    pub dropped_events: u64,
    /// How much of [`State::dropped_events`] happened while no console was attached.
    pub loss: LossOrigin,
    /// Frame-level health.
    pub health: StreamHealth,
    /// Smallest and largest timestamp seen.
    pub ts_range: Option<(Ticks, Ticks)>,
    /// First and last host receive time seen.
    pub rx_range: Option<(HostNs, HostNs)>,
    /// Registered callsites.
    pub callsites: BTreeMap<CallsiteId, CallsiteInfo>,
    /// Tracing events, oldest first (at most [`MAX_LOGS`]).
    pub logs: VecDeque<LogLine>,
    /// Log lines dropped from the front of [`State::logs`].
    pub logs_dropped: u64,
    /// Recent wakes for the timeline, oldest first (at most [`MAX_WAKE_MARKS`]).
    #[serde(with = "wake_mark_columns")]
    pub wake_marks: VecDeque<WakeMark>,
    /// Recent ended waits for the timeline, oldest first (at most
    /// [`MAX_WAIT_MARKS`]).
    #[serde(default)]
    pub wait_marks: VecDeque<WaitMark>,
    /// The first warnings, oldest first (at most [`MAX_WARNINGS`]), for reports.
    pub warnings: Vec<Warning>,
    /// Warnings not kept in [`State::warnings`] because of the limit.
    pub warnings_dropped: u64,
    /// The latest warnings, oldest first (at most [`MAX_RECENT_WARNINGS`]), for views.
    pub recent_warnings: VecDeque<Warning>,
    /// Every warning, counted by kind.
    pub warning_counts: BTreeMap<WarningKind, u64>,
    /// The first warnings of each kind (at most [`MAX_WARNINGS_PER_KIND`]), oldest first.
    pub first_warnings_by_kind: BTreeMap<WarningKind, Vec<Warning>>,
    /// Offset of the first incompatible-version frame, if any.
    pub first_version_error: Option<(u64, FrameError)>,
    /// The current kernel boot: 0 for the first the stream carries, one more at
    /// every restart (see the `boot` module).
    pub boot: u32,
    /// Kernel restarts: boots after the first.
    pub kernel_restarts: u64,
    /// Tasks alive when their kernel restarted, ended with it.
    pub tasks_ended_by_restart: u64,
    /// Where the latest boots began, oldest first (at most [`MAX_BOOT_MARKS`]).
    pub boot_marks: VecDeque<BootMark>,
    /// How the current boot's timestamps become trace time.
    boot_clock: boot::BootClock,
    /// Tasks created in the current boot (and perhaps gone since), for the restart
    /// that ends them.
    boot_task_ids: Vec<TaskId>,
    /// Last timestamp per stream, to detect time going backwards.
    last_ts: counts::LastTs,
    /// Newest timestamp of any task or interrupt stream (see [`State::now`]).
    task_now: u64,
    /// Recently expired task ids (at most [`MAX_EXPIRED_IDS`]), so a late wake or
    /// waker drop does not bring a finished task back as a new idle one.
    expired: BTreeSet<TaskId>,
    expired_order: VecDeque<TaskId>,
    /// Completed tasks by completion time, so pruning finds the expired ones without
    /// visiting every task.
    #[serde(skip)]
    completions: Completions,
    /// Task names and locations, shared.
    #[serde(skip)]
    texts: text::Interner,
    /// Conversions of the per-event path, for the current TSC rate and config.
    #[serde(skip)]
    conv: Conversions,
}

/// What the per-event path derives from the TSC rate and the config, kept until
/// either changes. A cache: not serialised, not part of equality or debug output.
#[derive(Clone, Copy)]
struct Conversions {
    /// (TSC rate, utilisation window, long-poll threshold) it was made for.
    key: (u64, u64, u64),
    clock: Clock,
    window: Divisor,
    long_poll_ticks: u64,
}

impl Default for Conversions {
    fn default() -> Self {
        Self {
            // No rate is 0, so the first use makes it.
            key: (0, 0, 0),
            clock: Clock::new(1),
            window: Divisor::new(1),
            long_poll_ticks: 0,
        }
    }
}

impl PartialEq for Conversions {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Conversions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

/// (completion time, task) of completed tasks, oldest first; entries of tasks gone
/// since are skipped when met. A cache of [`State::tasks`]: not serialised, rebuilt
/// when missing (a deserialised state), and not part of equality or debug output.
#[derive(Clone, Default)]
struct Completions {
    heap: BinaryHeap<Reverse<(Ticks, TaskId)>>,
    /// The heap holds every completed task of [`State::tasks`].
    valid: bool,
}

impl PartialEq for Completions {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Completions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

impl State {
    /// An empty state with the default configuration.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty state with `config`.
    #[must_use]
    pub fn with_config(config: Config) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// TSC ticks per second: the kernel's, or [`DEFAULT_TSC_HZ`] before its `Hello`.
    #[must_use]
    pub fn tsc_hz(&self) -> u64 {
        self.kernel.as_ref().map_or(DEFAULT_TSC_HZ, |k| k.tsc_hz).max(1)
    }

    /// The kernel's TSC rate ([`DEFAULT_TSC_HZ`] before its `Hello`): how its
    /// timestamps become nanoseconds.
    #[must_use]
    pub fn clock(&self) -> Clock {
        let hz = self.tsc_hz();
        if self.conv.key.0 == hz {
            self.conv.clock
        } else {
            Clock::new(hz)
        }
    }

    /// The conversions for the current TSC rate and config.
    #[inline]
    fn conv(&mut self) -> Conversions {
        let key = (self.tsc_hz(), self.config.util_window_ns, self.config.long_poll_ns);
        if self.conv.key != key {
            let clock = Clock::new(key.0);
            self.conv = Conversions {
                key,
                clock,
                window: Divisor::new(clock.ticks(key.1).get().max(1)),
                long_poll_ticks: clock.ticks(key.2).get(),
            };
        }
        self.conv
    }

    /// The latest trace time up to which task state is known: the newest event of a
    /// CPU's task or interrupt stream. Control messages (heartbeats, counts) pass the
    /// time-ordered merge at once and may be newer; they do not move "now", or live
    /// views would show a stretch of time whose task events are still on their way.
    /// Falls back to the newest event of any stream (0 before any event).
    #[must_use]
    pub fn now(&self) -> Ticks {
        if self.task_now > 0 {
            Ticks(self.task_now)
        } else {
            self.ts_range.map_or(Ticks::ZERO, |(_, b)| b)
        }
    }

    /// Notes the receive time of the chunk whose items follow.
    pub fn received_at(&mut self, rx: HostNs) {
        self.rx_range = Some(match self.rx_range {
            None => (rx, rx),
            Some((a, b)) => (a.min(rx), b.max(rx)),
        });
    }

    /// Adds a warning (bounded).
    pub fn warn(&mut self, w: Warning) {
        *self.warning_counts.entry(w.kind).or_default() += 1;
        let first = self.first_warnings_by_kind.entry(w.kind).or_default();
        if first.len() < MAX_WARNINGS_PER_KIND {
            first.push(w.clone());
        }
        if let Some(t) = w.task.and_then(|t| self.tasks.get_mut(&t))
            && t.boot == self.boot
        {
            t.warnings += 1;
        }
        if self.recent_warnings.len() >= MAX_RECENT_WARNINGS {
            self.recent_warnings.pop_front();
        }
        self.recent_warnings.push_back(w.clone());
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(w);
        } else {
            self.warnings_dropped += 1;
        }
    }

    fn warn_at(&mut self, kind: WarningKind, ts: u64, cpu: u32, task: Option<TaskId>, message: String) {
        self.warn(Warning {
            kind,
            ts: Some(Ticks(ts)),
            cpu: Some(cpu),
            task,
            message,
            samples: Vec::new(),
        });
    }

    /// Folds one decoder item into the state.
    pub fn apply(&mut self, item: &Item<'_>) {
        match *item {
            Item::Event { stream, ref event, .. } => self.apply_event(stream, event.ts, &event.message),
            Item::Gap {
                stream,
                expected,
                received,
            } => {
                self.health.sequence_gaps += 1;
                let missing = received.wrapping_sub(expected);
                if missing < 1 << 31 {
                    self.health.missing_frames += u64::from(missing);
                }
                let mut w = Warning::new(
                    WarningKind::SequenceGap,
                    format!(
                        "sequence gap on cpu {} {:?} ring: expected frame {expected}, got {received}",
                        stream.cpu, stream.ring
                    ),
                );
                w.cpu = Some(stream.cpu);
                self.warn(w);
            }
            Item::Restart { stream } => {
                self.health.restarts += 1;
                // Otherwise the stream's first frame of a boot that already began.
                if self.restart_begins_boot(stream) {
                    self.begin_boot(&format!(
                        "cpu {} {:?} stream started again at sequence 0",
                        stream.cpu, stream.ring
                    ));
                }
            }
            Item::Error { offset, error } => {
                let kind = match error {
                    FrameError::Crc { .. } => {
                        self.health.crc_errors += 1;
                        WarningKind::CrcError
                    }
                    FrameError::IncompatibleVersion { .. } => {
                        self.health.version_errors += 1;
                        self.first_version_error.get_or_insert((offset, error));
                        WarningKind::Protocol
                    }
                    FrameError::Incomplete { .. } => {
                        self.health.incomplete_frames += 1;
                        WarningKind::Malformed
                    }
                    _ => {
                        self.health.malformed_frames += 1;
                        WarningKind::Malformed
                    }
                };
                self.warn(Warning::new(kind, format!("stream byte offset {offset}: {error}")));
            }
        }
    }

    /// The task `id`, created (first seen at `ts`) if unknown.
    #[inline]
    fn task(&mut self, id: TaskId, ts: u64) -> &mut Task {
        if self.tasks.len() >= self.config.max_tasks && !self.tasks.contains_key(&id) {
            self.make_room_for_task();
        }
        let boot = self.boot;
        let mut created = false;
        let new = || {
            let mut t = Task::new(id, Ticks(ts));
            t.boot = boot;
            t
        };
        let t = self.tasks.get_or_insert_with(id, || {
            created = true;
            new()
        });
        if t.boot != boot {
            // An id of an earlier boot, ended with it: this is another task.
            *t = new();
            created = true;
            self.tasks_expired += 1;
        }
        if created {
            // Compacted by `prune`.
            self.boot_task_ids.push(id);
        }
        t
    }

    /// The highest CPU number the stream may name: the `Hello`'s count plus a margin,
    /// or [`MAX_CPUS_WITHOUT_HELLO`] before one. Each CPU costs the state a few
    /// kilobytes, so a stream naming arbitrary CPUs must not create them.
    fn cpu_bound(&self) -> u32 {
        self.kernel
            .as_ref()
            .map_or(MAX_CPUS_WITHOUT_HELLO, |k| k.cpus.saturating_add(CPU_MARGIN))
            .min(MAX_CPUS)
    }

    /// Whether `m` on `stream` names a CPU beyond [`State::cpu_bound`]; warned about once.
    fn names_unknown_cpu(&mut self, stream: StreamId, m: &Message<'_>) -> bool {
        let bound = self.cpu_bound();
        let named = match *m {
            Message::Steal { from_cpu, to_cpu, .. } => from_cpu.max(to_cpu),
            Message::Loss { cpu, .. } => cpu,
            _ => 0,
        };
        let cpu = stream.cpu.max(named);
        if cpu < bound {
            return false;
        }
        self.events_beyond_cpus = self.events_beyond_cpus.saturating_add(1);
        if self.events_beyond_cpus == 1 {
            self.warn(Warning::new(
                WarningKind::Inconsistent,
                format!("events name cpu {cpu}, beyond the {bound} CPUs this stream may have: ignored (and counted)"),
            ));
        }
        true
    }

    fn apply_event(&mut self, stream: StreamId, ts: u64, m: &Message<'_>) {
        self.events += 1;
        let boot_tsc = match m {
            Message::Hello(h) => {
                if self.hello_begins_boot(h) {
                    self.begin_boot("a Hello with another boot time");
                }
                Some(h.boot_tsc)
            }
            _ => {
                if self.names_unknown_cpu(stream, m) {
                    return;
                }
                None
            }
        };
        let ts = self.boot_clock.trace_time(ts, boot_tsc);
        if matches!(stream.ring, Ring::Task | Ring::Interrupt) {
            self.task_now = self.task_now.max(ts);
        }
        self.events_by_kind.add(m.kind());
        let t = Ticks(ts);
        self.ts_range = Some(match self.ts_range {
            None => (t, t),
            Some((a, b)) => (a.min(t), b.max(t)),
        });
        // Only the rings the merge puts in time order: it passes most control
        // messages straight through but holds a snapshot answer for its place.
        if matches!(stream.ring, Ring::Task | Ring::Interrupt)
            && let Some(prev) = self.last_ts.replace(stream, ts)
            && ts < prev
        {
            self.warn_at(
                WarningKind::Inconsistent,
                ts,
                stream.cpu,
                None,
                format!(
                    "timestamps went backwards on cpu {} {:?} ring ({prev} then {ts})",
                    stream.cpu, stream.ring
                ),
            );
        }
        if stream.ring != Ring::Host {
            let c = self.cpus.entry(stream.cpu).or_default();
            c.events += 1;
            // Counted before the expired-task filter below, so the totals equal the
            // events of each kind.
            let totals = &mut c.totals;
            match m {
                Message::PollStart { .. } => totals.polls += 1,
                Message::Wake { .. } => totals.wakes += 1,
                Message::TaskSpawned(_) => totals.spawns += 1,
                Message::TaskCompleted { .. } => totals.completions += 1,
                _ => {}
            }
        }
        if stream.ring == Ring::Control && matches!(m, Message::Resume) {
            // The kernel's resume burst (a console's own Resume rides the host ring).
            self.loss.resumed();
        }
        if !self.is_about_expired_task(m) {
            self.apply_message(stream.cpu, ts, m);
        }
        if let Some(&(due, _)) = self.resources.suspects.first()
            && due.0 <= ts
        {
            self.confirm_suspects(stream.cpu, ts);
        }
        if self.events.is_multiple_of(PRUNE_EVERY) || matches!(m, Message::Heartbeat) {
            self.prune();
            self.check_stuck_polls();
        }
    }

    fn apply_message(&mut self, cpu: u32, ts: u64, m: &Message<'_>) {
        match *m {
            Message::Hello(h) => {
                self.loss.hello(self.dropped_events);
                self.kernel = Some(KernelInfo {
                    version: (h.major, h.minor),
                    build_id: h.build_id.to_string(),
                    tsc_hz: h.tsc_hz,
                    cpus: h.cpus,
                    boot_tsc: h.boot_tsc,
                });
                self.hello_seen();
                if h.minor > lucid_protocol::MINOR {
                    self.warn(Warning::new(
                        WarningKind::Protocol,
                        format!(
                            "kernel speaks protocol {}.{}, this console {}.{}: newer messages are skipped",
                            h.major,
                            h.minor,
                            lucid_protocol::MAJOR,
                            lucid_protocol::MINOR
                        ),
                    ));
                }
            }
            Message::Callsite(c) => self.register_callsite(&c),
            Message::TraceEvent(e) => self.log(cpu, ts, &e),
            Message::TaskSpawned(s) => {
                self.tasks_spawned += 1;
                self.expired.remove(&s.task);
                let name = self.texts.text(s.name);
                let location = self.texts.location(s.location.file, s.location.line, s.location.column);
                let t = self.task(s.task, ts);
                t.spawned_ts = Ticks(ts);
                t.name = name;
                t.kind = s.kind;
                t.location = location;
                t.parent = s.parent;
                t.cpu = Some(cpu);
            }
            Message::PollStart { task } => self.poll_start(cpu, ts, task),
            Message::PollEnd { task, result } => self.poll_end(cpu, ts, task, result),
            Message::Wake {
                task, waker, self_wake, ..
            } => self.wake(cpu, ts, task, waker, self_wake),
            Message::WakerClone { task, wakers } => {
                let t = self.task(task, ts);
                t.waker_clones += 1;
                t.wakers = Some(wakers);
                t.lost_warned = false;
            }
            Message::WakerDrop { task, wakers } => {
                let t = self.task(task, ts);
                t.waker_drops += 1;
                t.wakers = Some(wakers);
                if wakers == 0
                    && t.status == TaskStatus::Idle
                    && t.woken_while_running.is_none()
                    && self.infers_lost_wakers()
                {
                    self.lost_waker(cpu, ts, task);
                }
            }
            Message::TaskCompleted { task, outcome } => {
                self.tasks_completed += 1;
                self.complete(cpu, ts, task, outcome);
            }
            Message::LostWaker(l) if self.tasks.get(&l.task).is_some_and(|t| !t.status.is_done()) => {
                self.lost_waker(cpu, ts, l.task);
            }
            Message::TaskPanicked(p) => self.task_panicked(cpu, ts, &p),
            Message::TaskDropped { task } => {
                // Storage freed without a completion: the task was cancelled.
                if let Some(t) = self.tasks.get(&task)
                    && !t.status.is_done()
                {
                    self.complete(cpu, ts, task, Outcome::Cancelled);
                }
            }
            Message::Steal { task, from_cpu, to_cpu } => {
                self.cpus.entry(from_cpu).or_default().steals_out += 1;
                let thief = self.cpus.entry(to_cpu).or_default();
                thief.steals_in += 1;
                thief.count_steal_from(from_cpu);
                self.task(task, ts).cpu = Some(to_cpu);
            }
            Message::CpuIdle => self.cpus.entry(cpu).or_default().set_idle(ts, true),
            Message::CpuBusy => self.cpus.entry(cpu).or_default().set_idle(ts, false),
            Message::RunQueueDepth { depth } => self.cpus.entry(cpu).or_default().sample_run_queue(ts, depth),
            Message::Loss { cpu, count, .. } => {
                let mut saturated = add_saturating(&mut self.dropped_events, count);
                saturated |= add_saturating(&mut self.cpus.entry(cpu).or_default().dropped, count);
                if saturated {
                    self.saturated("dropped events (the sum of the kernel's Loss reports)");
                }
                self.loss.loss(count);
                if self.loss.warn_once(self.dropped_events) {
                    self.warn(Warning::new(
                        WarningKind::SequenceGap,
                        format!(
                            "the kernel dropped events while this console was attached ({count} on cpu {cpu}): \
                             the reader or the link did not keep up"
                        ),
                    ));
                }
            }
            Message::Heartbeat => self.loss.heartbeat(),
            Message::TaskSnapshot(s) => {
                self.snapshot_taken = Some(Ticks(ts));
                let name = self.texts.text(s.name);
                let location = self.texts.location(s.location.file, s.location.line, s.location.column);
                let t = self.task(s.task, ts);
                t.name = name;
                t.kind = s.kind;
                t.location = location;
                t.parent = s.parent;
                t.cpu = Some(s.cpu);
                t.spawned_ts = Ticks(s.spawned_tsc);
                t.status = match s.state {
                    TaskState::Running => TaskStatus::Running,
                    TaskState::Scheduled => TaskStatus::Scheduled,
                    TaskState::Idle => TaskStatus::Idle,
                    TaskState::Completed => TaskStatus::Completed(Outcome::Ok),
                };
                if t.status == TaskStatus::Scheduled {
                    t.scheduled_since.get_or_insert(ts);
                }
                // A snapshot carries the kernel's totals, which include what this
                // console saw before (if anything): take them as they are.
                t.polls = s.polls;
                t.wakes = s.wakes;
                t.self_wakes = s.self_wakes;
                t.wakers = Some(s.wakers);
                t.busy_ticks = Ticks(s.busy_ticks);
                t.scheduled_ticks = Ticks(s.scheduled_ticks);
            }
            Message::WasmInstanceCreated(_)
            | Message::WasmInstanceSnapshot(_)
            | Message::WasmStateChanged { .. }
            | Message::WasmMemoryGrow { .. }
            | Message::WasmPoll { .. }
            | Message::WasmHostcalls { .. }
            | Message::WasmTrap(_)
            | Message::WasmStderrTail(_)
            | Message::WasmInstanceArgs(_) => self.apply_wasm(ts, m),
            Message::WasmFunction(f) => self.wasm_code.insert(&f),
            Message::Sample(s) => self.sample(cpu, &s),
            Message::ResourceCreated(r) => self.resource_created(ts, &r),
            Message::ResourceDropped(r) => self.resource_dropped(r.id),
            Message::WaitBegin(w) => self.wait_begin(cpu, ts, &w),
            Message::WaitEnd(w) => self.wait_end(ts, &w),
            Message::ResourceOps(r) => self.resource_ops(&r),
            Message::JoinWaiting { task, waiter } => self.join_waiting(task, waiter),
            Message::Holders(h) => self.holders(cpu, ts, &h),
            _ => {}
        }
    }

    fn poll_start(&mut self, cpu: u32, ts: u64, task: TaskId) {
        let mut waited = None;
        let t = self.task(task, ts);
        t.polls += 1;
        t.cpu = Some(cpu);
        if let Some(since) = t.scheduled_since.take()
            && ts >= since
        {
            let wait = ts - since;
            t.scheduled_ticks += Ticks(wait);
            t.sched_hist.record(wait);
            waited = Some(wait);
        }
        if !t.status.is_done() {
            t.status = TaskStatus::Running;
        }
        t.poll_started = Some(ts);
        t.last_poll_start = Some(ts);
        t.lost_warned = false;
        self.ran(task);
        let conv = self.conv();
        let waited_ns = waited.map(|w| conv.clock.ns(Ticks(w)));
        let c = self.cpus.entry(cpu).or_default();
        if let Some(ns) = waited_ns {
            c.totals.sched_latency.record(ns);
        }
        c.poll_samples.clear();
        if let Some((other, _)) = c.polling.replace((task, ts)) {
            self.warn_at(
                WarningKind::Inconsistent,
                ts,
                cpu,
                Some(task),
                format!("cpu {cpu}: poll of task {task} started while task {other} was being polled"),
            );
        }
    }

    fn poll_end(&mut self, cpu: u32, ts: u64, task: TaskId, result: PollResult) {
        let infer_lost = self.infers_lost_wakers();
        let end_says_woken = self.poll_end_says_woken();
        let conv = self.conv();
        let (window, long, clock) = (conv.window, conv.long_poll_ticks, conv.clock);
        let c = self.cpus.entry(cpu).or_default();
        let started = match c.polling.take() {
            Some((t, start)) if t == task => Some(start),
            _ => None,
        };
        let ticks = started.map(|s| ts.saturating_sub(s));
        let poll_pcs = std::mem::take(&mut c.poll_samples);
        if let (Some(start), Some(d)) = (started, ticks) {
            c.totals.poll_latency.record(clock.ns(Ticks(d)));
            c.busy_ticks += Ticks(d);
            c.add_busy_by(start, ts, window);
            c.push_slice(Slice {
                task,
                start: Ticks(start),
                end: Ticks(ts),
                ready: result == PollResult::Ready,
            });
        }
        let t = self.task(task, ts);
        t.poll_started = None;
        if let (Some(start), Some(d)) = (started, ticks) {
            t.busy_ticks += Ticks(d);
            t.poll_hist.record(d);
            t.history.add(start, ts);
        }
        let long_poll = ticks.filter(|&d| long > 0 && d > long);
        if long_poll.is_some() {
            t.long_polls += 1;
        }
        // A poll that another CPU's poll started after has been overtaken: the kernel
        // stamps PollEnd after the task is released to other CPUs, so a CPU stalled
        // in between (a descheduled vCPU) reports an end that overlaps later polls.
        // The later polls speak for the task's status, not this end.
        let overtaken = started.is_some_and(|s| t.last_poll_start.is_some_and(|l| l > s));
        let mut lost = false;
        if !t.status.is_done() && !overtaken {
            // A kernel that says whether the task was woken during the poll is
            // believed over the wakes seen during it: a CPU may date the start of a
            // poll with the previous poll's end, before the wake that queued it.
            let woken = t.woken_while_running.take();
            let requeued = if end_says_woken {
                (result == PollResult::PendingWoken).then_some(ts)
            } else {
                woken
            };
            if let Some(woken) = requeued {
                t.status = TaskStatus::Scheduled;
                t.scheduled_since = Some(woken.max(ts));
            } else {
                t.status = TaskStatus::Idle;
                lost = result == PollResult::Pending && t.wakers == Some(0) && infer_lost;
            }
        }
        if let Some(d) = long_poll {
            let ns = self.clock().ns(Ticks(d));
            let samples = if started.is_some() {
                sampled::hottest_pcs(&poll_pcs)
            } else {
                Vec::new()
            };
            self.warn(Warning {
                kind: WarningKind::LongPoll,
                ts: Some(Ticks(ts)),
                cpu: Some(cpu),
                task: Some(task),
                message: format!(
                    "task {task} polled for {} on cpu {cpu} (threshold {})",
                    crate::fmt::duration_ns(ns),
                    crate::fmt::duration_ns(self.config.long_poll_ns)
                ),
                samples,
            });
        }
        if started.is_none() {
            self.warn_at(
                WarningKind::Inconsistent,
                ts,
                cpu,
                Some(task),
                format!("cpu {cpu}: poll of task {task} ended ({result:?}) without a matching start"),
            );
        }
        if lost {
            self.lost_waker(cpu, ts, task);
        }
    }

    fn wake(&mut self, cpu: u32, ts: u64, task: TaskId, waker: lucid_protocol::Waker, self_wake: bool) {
        let storm = self.config.self_wake_storm;
        if self.wake_marks.len() >= MAX_WAKE_MARKS {
            self.wake_marks.pop_front();
        }
        self.wake_marks.push_back(WakeMark {
            ts: Ticks(ts),
            cpu,
            task,
            waker: waker.into(),
        });
        let t = self.task(task, ts);
        t.wakes += 1;
        t.note_waker(waker);
        t.last_woken = Some(Ticks(ts));
        t.lost_warned = false;
        let mut storm_hit = None;
        if self_wake {
            t.self_wakes += 1;
            t.self_wake_run += 1;
            if storm > 0 && t.self_wake_run >= storm && !t.storm_warned {
                t.storm_warned = true;
                storm_hit = Some(t.self_wake_run);
            }
        } else {
            t.self_wake_run = 0;
            t.storm_warned = false;
        }
        match t.status {
            TaskStatus::Running => {
                t.woken_while_running.get_or_insert(ts);
            }
            TaskStatus::Idle => {
                t.status = TaskStatus::Scheduled;
                t.scheduled_since = Some(ts);
            }
            TaskStatus::Scheduled | TaskStatus::Completed(_) | TaskStatus::EndedByRestart => {}
        }
        if let Some(n) = storm_hit {
            self.warn_at(
                WarningKind::SelfWakeStorm,
                ts,
                cpu,
                Some(task),
                format!("task {task} woke itself {n} times in a row"),
            );
        }
    }

    /// Whether this console infers lost wakers from the stream's waker counts and
    /// poll ends: only for a kernel older than protocol minor 1, which does not
    /// send its own `LostWaker` verdicts. Inferring needs the stream in cross-CPU
    /// order, which a lagging CPU's late frames break; the kernel's verdict does not.
    fn infers_lost_wakers(&self) -> bool {
        self.kernel.as_ref().is_none_or(|k| k.version.1 < 1)
    }

    /// Whether the stream's poll ends say if the task was woken during the poll
    /// (`PollResult::PendingWoken`, protocol minor 3).
    fn poll_end_says_woken(&self) -> bool {
        self.kernel.as_ref().is_some_and(|k| k.version.1 >= 3)
    }

    fn lost_waker(&mut self, cpu: u32, ts: u64, task: TaskId) {
        let Some(t) = self.tasks.get_mut(&task) else { return };
        if t.lost_warned {
            return;
        }
        t.lost_warned = true;
        let name = t.display_name();
        self.warn_at(
            WarningKind::LostWaker,
            ts,
            cpu,
            Some(task),
            format!("task {task} ({name}) is pending with no waker and not scheduled: nothing can wake it"),
        );
        self.cannot_run(cpu, ts, task);
    }

    /// Warns, once per figure, that a sum of values from the stream reached
    /// `u64::MAX` and stays there: no real kernel sends such values, so the figure is
    /// not a count any more.
    pub(crate) fn saturated(&mut self, figure: &'static str) {
        if self.saturated_figures.iter().any(|f| f == figure) {
            return;
        }
        self.saturated_figures.push(figure.to_string());
        self.warn(Warning::new(
            WarningKind::Inconsistent,
            format!(
                "{figure} saturated at {}: the stream's values are not real counts",
                u64::MAX
            ),
        ));
    }

    fn task_panicked(&mut self, cpu: u32, ts: u64, p: &TaskPanicked<'_>) {
        self.task_panics = self.task_panics.saturating_add(1);
        let location = p
            .location
            .map(|at| format!("{}:{}:{}", at.file, at.line, at.column))
            .unwrap_or_default();
        let what = if location.is_empty() {
            p.message.to_string()
        } else {
            format!("{} (at {location})", p.message)
        };
        let t = self.task(p.task, ts);
        t.panic = Some(what.clone().into_boxed_str());
        let name = t.name.to_string();
        if self.panics.len() < MAX_PANICS {
            self.panics.push(PanicRecord {
                task: p.task,
                name: name.clone(),
                message: p.message.to_string(),
                location,
                ts,
            });
        }
        let who = if name.is_empty() {
            format!("task {}", p.task)
        } else {
            format!("task {} `{name}`", p.task)
        };
        self.warn_at(
            WarningKind::TaskPanicked,
            ts,
            cpu,
            Some(p.task),
            format!("{who} panicked on CPU {cpu}: {what}; the kernel contained it"),
        );
    }

    fn complete(&mut self, cpu: u32, ts: u64, task: TaskId, outcome: Outcome) {
        if outcome == Outcome::Cancelled {
            self.cpus.entry(cpu).or_default().totals.cancellations += 1;
        }
        let t = self.task(task, ts);
        t.status = TaskStatus::Completed(outcome);
        t.scheduled_since = None;
        t.woken_while_running = None;
        if t.completed_ts.is_none() {
            t.completed_ts = Some(Ticks(ts));
            self.completions.heap.push(Reverse((Ticks(ts), task)));
        }
        self.resources.task_ended(task);
    }

    /// Warns once about every poll in progress that has run longer than the long-poll
    /// threshold (measured against the newest timestamp of any CPU).
    fn check_stuck_polls(&mut self) {
        let long = self.clock().ticks(self.config.long_poll_ns);
        let now = self.now();
        if long == Ticks::ZERO {
            return;
        }
        let stuck: Vec<(u32, TaskId, u64)> = self
            .cpus
            .iter_mut()
            .filter_map(|(&cpu, c)| {
                let (task, start) = c.polling?;
                (now.saturating_sub(Ticks(start)) > long && c.stuck_warned != Some(start)).then(|| {
                    c.stuck_warned = Some(start);
                    (cpu, task, start)
                })
            })
            .collect();
        for (cpu, task, start) in stuck {
            let ran = crate::fmt::duration_ns(self.clock().ns(now.saturating_sub(Ticks(start))));
            self.warn_at(
                WarningKind::NeverYields,
                now.get(),
                cpu,
                Some(task),
                format!("task {task} has been in one poll on cpu {cpu} for {ran} without yielding"),
            );
        }
    }

    /// Drops completed tasks older than the retention time.
    pub fn prune(&mut self) {
        self.compact_boot_tasks();
        let retain = self.clock().ticks(self.config.retain_ns);
        let now = self.now();
        self.rebuild_completions();
        let mut expired: Vec<TaskId> = Vec::new();
        while let Some(&Reverse((c, id))) = self.completions.heap.peek()
            && now.saturating_sub(c) > retain
        {
            self.completions.heap.pop();
            // Gone already (and perhaps back since, completed at another time).
            if self.tasks.get(&id).is_some_and(|t| t.completed_ts == Some(c)) {
                expired.push(id);
            }
        }
        if expired.is_empty() {
            return;
        }
        // In id order, as a scan of the tasks would find them.
        expired.sort_unstable();
        expired.dedup();
        for id in expired {
            self.tasks.remove(&id);
            self.tasks_expired += 1;
            self.remember_expired(id);
        }
    }

    /// Makes [`State::completions`] hold every completed task (after
    /// deserialisation), and drops its stale entries once they outnumber the tasks
    /// (tasks that left the map by other ways than expiring), so it stays bounded.
    fn rebuild_completions(&mut self) {
        if self.completions.valid && self.completions.heap.len() <= 2 * self.tasks.len().max(PRUNE_EVERY as usize) {
            return;
        }
        self.completions.heap = self
            .tasks
            .values()
            .filter_map(|t| Some(Reverse((t.completed_ts?, t.id))))
            .collect();
        self.completions.valid = true;
    }

    /// Whether `m` concerns a task that completed and expired: late wakes and waker
    /// drops of finished tasks are legitimate and must not recreate them.
    fn is_about_expired_task(&self, m: &Message<'_>) -> bool {
        let task = match *m {
            Message::Wake { task, .. }
            | Message::WakerClone { task, .. }
            | Message::WakerDrop { task, .. }
            | Message::TaskDropped { task } => task,
            _ => return false,
        };
        !self.tasks.contains_key(&task) && self.expired.contains(&task)
    }

    /// Trace duration in seconds: TSC range over the kernel's TSC frequency, or the
    /// host receive-time range when no `Hello` says the frequency.
    #[must_use]
    pub fn duration_s(&self) -> f64 {
        match (&self.kernel, self.ts_range) {
            (Some(k), Some((a, b))) if k.tsc_hz > 0 => Clock::new(k.tsc_hz).secs_f64(b - a),
            _ => self.rx_range.map_or(0.0, |(a, b)| b.since(a) as f64 / 1e9),
        }
    }
}
