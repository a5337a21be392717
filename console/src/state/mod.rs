//! The state model: everything the console knows, built only from decoded protocol
//! items (and the receive times of the chunks they came in). No UI types here; views,
//! stats and exporters read it.

use std::collections::BTreeMap;

use lucid_protocol::{
    FrameError, InstanceId, Item, Message, MessageKind, Outcome, Ring, StreamId, TaskId, TaskKind, TaskState, WasmState,
};

/// Warnings kept verbatim; further ones are only counted.
pub const MAX_WARNINGS: usize = 100;

/// What the kernel said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelInfo {
    /// Protocol version major.minor.
    pub version: (u16, u16),
    /// Build id.
    pub build_id: String,
    /// TSC ticks per second.
    pub tsc_hz: u64,
    /// CPUs.
    pub cpus: u32,
}

/// Lifecycle of a task as far as the stream told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Spawned, not being polled.
    Idle,
    /// Being polled.
    Running,
    /// Finished.
    Completed(Outcome),
}

/// One task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Name given at spawn.
    pub name: String,
    /// Kernel or wasm.
    pub kind: TaskKind,
    /// Spawn location `file:line:column`.
    pub location: String,
    /// Current status.
    pub status: TaskStatus,
    /// Polls started.
    pub polls: u64,
    /// Wakes.
    pub wakes: u64,
    /// Self-wakes.
    pub self_wakes: u64,
    /// TSC ticks spent in completed polls.
    pub busy_ticks: u64,
    /// Longest poll in ticks.
    pub max_poll_ticks: u64,
}

/// One CPU (all rings of it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpu {
    /// Events seen from this CPU's streams.
    pub events: u64,
    /// Task being polled and when the poll started.
    pub polling: Option<(TaskId, u64)>,
    /// TSC ticks spent in polls.
    pub busy_ticks: u64,
    /// Events dropped on this CPU (from `Loss` reports).
    pub dropped: u64,
}

/// One wasm instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmInstance {
    /// Module name.
    pub module: String,
    /// Driving task.
    pub task: TaskId,
    /// Current state.
    pub state: WasmState,
    /// Linear memory pages.
    pub memory_pages: u32,
    /// Fuel consumed.
    pub fuel: u64,
    /// Traps.
    pub traps: u64,
}

/// Frame-level problems the decoder reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
#[derive(Debug, Clone, Default)]
pub struct State {
    /// From the `Hello`, once seen.
    pub kernel: Option<KernelInfo>,
    /// Events applied.
    pub events: u64,
    /// Events by kind.
    pub events_by_kind: BTreeMap<MessageKind, u64>,
    /// Tasks by id (spawned ones, plus ones first seen in other events).
    pub tasks: BTreeMap<TaskId, Task>,
    /// `TaskSpawned` messages.
    pub tasks_spawned: u64,
    /// `TaskCompleted` messages.
    pub tasks_completed: u64,
    /// CPUs by number.
    pub cpus: BTreeMap<u32, Cpu>,
    /// Wasm instances by id.
    pub wasm: BTreeMap<InstanceId, WasmInstance>,
    /// Sum of `Loss` reports.
    pub dropped_events: u64,
    /// Frame-level health.
    pub health: StreamHealth,
    /// Smallest and largest timestamp seen.
    pub ts_range: Option<(u64, u64)>,
    /// First and last host receive time seen.
    pub rx_range: Option<(u64, u64)>,
    /// Last timestamp per stream, to detect time going backwards.
    last_ts: BTreeMap<StreamId, u64>,
    /// Human-readable warnings, oldest first (at most [`MAX_WARNINGS`]).
    pub warnings: Vec<String>,
    /// Warnings not kept because of the limit.
    pub warnings_dropped: u64,
    /// Offset of the first incompatible-version frame, if any.
    pub first_version_error: Option<(u64, FrameError)>,
}

impl State {
    /// An empty state.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes the receive time of the chunk whose items follow.
    pub fn received_at(&mut self, rx_ns: u64) {
        self.rx_range = Some(match self.rx_range {
            None => (rx_ns, rx_ns),
            Some((a, b)) => (a.min(rx_ns), b.max(rx_ns)),
        });
    }

    /// Adds a warning (bounded).
    pub fn warn(&mut self, w: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(w);
        } else {
            self.warnings_dropped += 1;
        }
    }

    /// Folds one decoder item into the state.
    pub fn apply(&mut self, item: &Item<'_>) {
        match *item {
            Item::Event { stream, event, .. } => self.apply_event(stream, event.ts, &event.message),
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
                self.warn(format!(
                    "sequence gap on cpu {} {:?} ring: expected frame {expected}, got {received}",
                    stream.cpu, stream.ring
                ));
            }
            Item::Restart { stream } => {
                self.health.restarts += 1;
                self.warn(format!(
                    "stream of cpu {} {:?} ring restarted at sequence 0",
                    stream.cpu, stream.ring
                ));
            }
            Item::Error { offset, error } => {
                match error {
                    FrameError::Crc { .. } => self.health.crc_errors += 1,
                    FrameError::IncompatibleVersion { .. } => {
                        self.health.version_errors += 1;
                        self.first_version_error.get_or_insert((offset, error));
                    }
                    FrameError::Incomplete { .. } => self.health.incomplete_frames += 1,
                    _ => self.health.malformed_frames += 1,
                }
                self.warn(format!("stream byte offset {offset}: {error}"));
            }
        }
    }

    fn task(&mut self, id: TaskId) -> &mut Task {
        self.tasks.entry(id).or_insert_with(|| Task {
            name: String::new(),
            kind: TaskKind::Kernel,
            location: String::new(),
            status: TaskStatus::Idle,
            polls: 0,
            wakes: 0,
            self_wakes: 0,
            busy_ticks: 0,
            max_poll_ticks: 0,
        })
    }

    fn apply_event(&mut self, stream: StreamId, ts: u64, m: &Message<'_>) {
        self.events += 1;
        *self.events_by_kind.entry(m.kind()).or_default() += 1;
        self.ts_range = Some(match self.ts_range {
            None => (ts, ts),
            Some((a, b)) => (a.min(ts), b.max(ts)),
        });
        if let Some(prev) = self.last_ts.insert(stream, ts)
            && ts < prev
        {
            self.warn(format!(
                "timestamps went backwards on cpu {} {:?} ring ({prev} then {ts})",
                stream.cpu, stream.ring
            ));
        }
        if stream.ring != Ring::Host {
            self.cpus.entry(stream.cpu).or_default().events += 1;
        }
        match *m {
            Message::Hello(h) => {
                self.kernel = Some(KernelInfo {
                    version: (h.major, h.minor),
                    build_id: h.build_id.to_string(),
                    tsc_hz: h.tsc_hz,
                    cpus: h.cpus,
                });
                if h.minor > lucid_protocol::MINOR {
                    self.warn(format!(
                        "kernel speaks protocol {}.{}, this console {}.{}: newer messages are skipped",
                        h.major,
                        h.minor,
                        lucid_protocol::MAJOR,
                        lucid_protocol::MINOR
                    ));
                }
            }
            Message::TaskSpawned(s) => {
                self.tasks_spawned += 1;
                let t = self.task(s.task);
                t.name = s.name.to_string();
                t.kind = s.kind;
                t.location = format!("{}:{}:{}", s.location.file, s.location.line, s.location.column);
            }
            Message::PollStart { task } => {
                self.task(task).polls += 1;
                self.task(task).status = TaskStatus::Running;
                let cpu = self.cpus.entry(stream.cpu).or_default();
                if let Some((other, _)) = cpu.polling.replace((task, ts)) {
                    self.warn(format!(
                        "cpu {}: poll of task {task} started while task {other} was being polled",
                        stream.cpu
                    ));
                }
            }
            Message::PollEnd { task, result } => {
                let cpu = self.cpus.entry(stream.cpu).or_default();
                let started = match cpu.polling.take() {
                    Some((t, start)) if t == task => Some(start),
                    _ => None,
                };
                let ticks = started.map(|s| ts.saturating_sub(s));
                if let Some(d) = ticks {
                    cpu.busy_ticks += d;
                }
                let t = self.task(task);
                if let Some(d) = ticks {
                    t.busy_ticks += d;
                    t.max_poll_ticks = t.max_poll_ticks.max(d);
                }
                if !matches!(t.status, TaskStatus::Completed(_)) {
                    t.status = TaskStatus::Idle;
                }
                if started.is_none() {
                    self.warn(format!(
                        "cpu {}: poll of task {task} ended ({result:?}) without a matching start",
                        stream.cpu
                    ));
                }
            }
            Message::Wake { task, self_wake, .. } => {
                let t = self.task(task);
                t.wakes += 1;
                t.self_wakes += u64::from(self_wake);
            }
            Message::TaskCompleted { task, outcome } => {
                self.tasks_completed += 1;
                self.task(task).status = TaskStatus::Completed(outcome);
            }
            Message::Loss { cpu, count, .. } => {
                self.dropped_events += count;
                self.cpus.entry(cpu).or_default().dropped += count;
            }
            Message::WasmInstanceCreated(w) => {
                self.wasm.insert(
                    w.instance,
                    WasmInstance {
                        module: w.module.to_string(),
                        task: w.task,
                        state: WasmState::Created,
                        memory_pages: w.memory_pages,
                        fuel: 0,
                        traps: 0,
                    },
                );
            }
            Message::WasmStateChanged { instance, state } => {
                if let Some(w) = self.wasm.get_mut(&instance) {
                    w.state = state;
                }
            }
            Message::WasmMemoryGrow {
                instance, new_pages, ..
            } => {
                if let Some(w) = self.wasm.get_mut(&instance) {
                    w.memory_pages = new_pages;
                }
            }
            Message::WasmPoll { instance, fuel, .. } => {
                if let Some(w) = self.wasm.get_mut(&instance) {
                    w.fuel += fuel;
                }
            }
            Message::TaskSnapshot(t) => {
                let task = self.task(t.task);
                task.name = t.name.to_string();
                task.kind = t.kind;
                task.location = format!("{}:{}:{}", t.location.file, t.location.line, t.location.column);
                task.status = match t.state {
                    TaskState::Running => TaskStatus::Running,
                    TaskState::Completed => TaskStatus::Completed(Outcome::Ok),
                    TaskState::Idle | TaskState::Scheduled => TaskStatus::Idle,
                };
                // A snapshot carries the kernel's totals, which include what this
                // console saw before (if anything): take them as they are.
                task.polls = t.polls;
                task.wakes = t.wakes;
                task.self_wakes = t.self_wakes;
                task.busy_ticks = t.busy_ticks;
            }
            Message::WasmInstanceSnapshot(w) => {
                let traps = self.wasm.get(&w.instance).map_or(0, |i| i.traps);
                self.wasm.insert(
                    w.instance,
                    WasmInstance {
                        module: w.module.to_string(),
                        task: w.task,
                        state: w.state,
                        memory_pages: w.memory_pages,
                        fuel: w.fuel_used,
                        traps,
                    },
                );
            }
            Message::WasmTrap(t) => {
                if let Some(w) = self.wasm.get_mut(&t.instance) {
                    w.traps += 1;
                    w.state = WasmState::Trapped;
                }
            }
            _ => {}
        }
    }

    /// Trace duration in seconds: TSC range over the kernel's TSC frequency, or the
    /// host receive-time range when no `Hello` says the frequency.
    #[must_use]
    pub fn duration_s(&self) -> f64 {
        match (&self.kernel, self.ts_range) {
            (Some(k), Some((a, b))) if k.tsc_hz > 0 => (b - a) as f64 / k.tsc_hz as f64,
            _ => self.rx_range.map_or(0.0, |(a, b)| (b - a) as f64 / 1e9),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lucid_protocol::{Event, PollResult, TaskSpawned};

    fn ev(cpu: u32, ts: u64, message: Message<'_>) -> Item<'_> {
        Item::Event {
            stream: StreamId::new(cpu, Ring::Task),
            seq: 0,
            event: Event { ts, message },
        }
    }

    #[test]
    fn polls_accumulate_busy_time_per_task_and_cpu() {
        let mut s = State::new();
        s.apply(&ev(
            1,
            5,
            Message::TaskSpawned(TaskSpawned {
                task: 9,
                name: "t",
                kind: TaskKind::Kernel,
                location: lucid_protocol::Location {
                    file: "f.rs",
                    line: 1,
                    column: 2,
                },
                parent: None,
            }),
        ));
        s.apply(&ev(1, 10, Message::PollStart { task: 9 }));
        s.apply(&ev(
            1,
            25,
            Message::PollEnd {
                task: 9,
                result: PollResult::Pending,
            },
        ));
        s.apply(&ev(1, 30, Message::PollStart { task: 9 }));
        s.apply(&ev(
            1,
            31,
            Message::PollEnd {
                task: 9,
                result: PollResult::Ready,
            },
        ));
        s.apply(&ev(
            1,
            31,
            Message::TaskCompleted {
                task: 9,
                outcome: Outcome::Ok,
            },
        ));
        let t = &s.tasks[&9];
        assert_eq!((t.polls, t.busy_ticks, t.max_poll_ticks), (2, 16, 15));
        assert_eq!(t.status, TaskStatus::Completed(Outcome::Ok));
        assert_eq!(t.location, "f.rs:1:2");
        assert_eq!(s.cpus[&1].busy_ticks, 16);
        assert_eq!((s.tasks_spawned, s.tasks_completed), (1, 1));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn unmatched_poll_end_and_backwards_time_are_warned_about() {
        let mut s = State::new();
        s.apply(&ev(0, 10, Message::PollStart { task: 1 }));
        s.apply(&ev(
            0,
            5,
            Message::PollEnd {
                task: 2,
                result: PollResult::Pending,
            },
        ));
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert_eq!(s.tasks[&2].busy_ticks, 0);
    }

    #[test]
    fn losses_gaps_and_errors_are_counted() {
        let mut s = State::new();
        s.apply(&ev(
            0,
            1,
            Message::Loss {
                cpu: 3,
                ring: Ring::Interrupt,
                count: 7,
            },
        ));
        let stream = StreamId::new(3, Ring::Task);
        s.apply(&Item::Gap {
            stream,
            expected: 4,
            received: 6,
        });
        s.apply(&Item::Error {
            offset: 99,
            error: FrameError::Crc { expected: 1, actual: 2 },
        });
        assert_eq!(s.dropped_events, 7);
        assert_eq!(s.cpus[&3].dropped, 7);
        assert_eq!((s.health.sequence_gaps, s.health.missing_frames), (1, 2));
        assert_eq!(s.health.crc_errors, 1);
        assert!(s.warnings[1].contains("offset 99"));
    }

    #[test]
    fn a_snapshot_makes_a_late_console_complete() {
        let mut s = State::new();
        let snap = lucid_protocol::testdata::sample_messages()
            .into_iter()
            .filter(|m| matches!(m, Message::TaskSnapshot(_) | Message::WasmInstanceSnapshot(_)))
            .collect::<Vec<_>>();
        for m in snap {
            s.apply(&ev(0, 1, m));
        }
        let t = &s.tasks[&300];
        assert_eq!((t.name.as_str(), t.polls, t.busy_ticks), ("net-rx", 10, 50_000));
        assert_eq!(s.wasm[&1].fuel, 120_000);
        assert_eq!(s.wasm[&1].state, WasmState::Suspended);
    }

    #[test]
    fn warnings_are_bounded() {
        let mut s = State::new();
        for i in 0..(MAX_WARNINGS as u64 + 5) {
            s.warn(format!("w{i}"));
        }
        assert_eq!(s.warnings.len(), MAX_WARNINGS);
        assert_eq!(s.warnings_dropped, 5);
    }
}
