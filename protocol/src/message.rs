//! Every message of the trace protocol, in both directions, and how each is laid out
//! inside a frame.
//!
//! # Record layout
//!
//! A record starts with a tag byte `shape << 5 | code`:
//!
//! - `shape` 1..=6 — a *compact* record: exactly `shape` LEB128 varints follow. The
//!   first is the zigzag timestamp delta, the rest are the message's fields. The hot
//!   executor events use this form: no length byte, no postcard.
//! - `shape` 7 — an *extended* record: a varint body length follows, then the body,
//!   whose first item is the zigzag timestamp delta. `code` 0..=30 is the extended
//!   kind; code 31 means the kind follows as a varint (kinds 31 and up).
//! - `shape` 0 is reserved.
//!
//! Both forms can be skipped without knowing the kind, which is how a decoder skips
//! messages added by a newer minor version. For the same reason a decoder ignores
//! extra trailing varints of a known compact kind and extra trailing bytes of a known
//! extended body: a newer minor version may append fields.

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::wire::{Reader, Writer};

/// A task id, unique for the life of the kernel.
pub type TaskId = u64;
/// A span id as the kernel's tracing subscriber hands it out.
pub type SpanId = u64;
/// An interned callsite id (see [`Callsite`]).
pub type CallsiteId = u64;
/// A wasm instance id.
pub type InstanceId = u64;

/// Result of one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PollResult {
    /// The future returned `Poll::Pending`.
    Pending,
    /// The future returned `Poll::Ready`.
    Ready,
}

/// Who woke a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Waker {
    /// Woken from outside any task or interrupt (e.g. during boot).
    None,
    /// Woken by this task.
    Task(TaskId),
    /// Woken by the handler of this interrupt vector.
    Interrupt(u8),
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Returned its output.
    Ok,
    /// Cancelled (aborted or its join handle dropped with cancel-on-drop).
    Cancelled,
    /// Panicked while being polled.
    Panicked,
}

/// What kind of code a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskKind {
    /// A kernel future.
    Kernel,
    /// A task driving a wasm instance.
    Wasm,
}

/// State of a task in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    /// Pending and not scheduled.
    Idle,
    /// In a run queue.
    Scheduled,
    /// Being polled.
    Running,
    /// Finished; kept until its join handle collects the output.
    Completed,
}

/// Lifecycle state of a wasm instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WasmState {
    /// Instantiated, not yet run.
    Created,
    /// Executing guest code.
    Running,
    /// Out of fuel for this slice, or blocked in a hostcall.
    Suspended,
    /// Stopped by a trap.
    Trapped,
    /// Returned from its entry point or called `exit` (detail: the exit code as `i32`
    /// bits).
    Exited,
    /// Waiting in a blocking hostcall (detail: the hostcall number).
    Blocked,
    /// In the `sleep` hostcall (detail: the requested nanoseconds).
    Sleeping,
    /// Stopped by the kernel for exceeding its fuel budget (detail: the budget).
    Killed,
}

impl WasmState {
    /// Every state, in wire order (`state as u8` indexes it).
    pub const ALL: [WasmState; 8] = [
        WasmState::Created,
        WasmState::Running,
        WasmState::Suspended,
        WasmState::Trapped,
        WasmState::Exited,
        WasmState::Blocked,
        WasmState::Sleeping,
        WasmState::Killed,
    ];
}

/// Verbosity of a tracing event or span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// `TRACE`
    Trace,
    /// `DEBUG`
    Debug,
    /// `INFO`
    Info,
    /// `WARN`
    Warn,
    /// `ERROR`
    Error,
}

/// A per-target verbosity limit (host → kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LevelFilter {
    /// Nothing.
    Off,
    /// Up to and including this level.
    Level(Level),
}

/// Whether a callsite belongs to an event or a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CallsiteKind {
    /// `tracing::event!`
    Event,
    /// `tracing::span!`
    Span,
}

/// Per-CPU event ring; together with the CPU number it names a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Ring {
    /// Events from task context.
    Task,
    /// Events from interrupt context.
    Interrupt,
    /// Control messages (hello, heartbeats, loss reports, snapshots).
    Control,
    /// Messages from the host to the kernel.
    Host,
}

impl Ring {
    /// Wire value (two bits).
    #[must_use]
    pub const fn to_bits(self) -> u8 {
        match self {
            Self::Task => 0,
            Self::Interrupt => 1,
            Self::Control => 2,
            Self::Host => 3,
        }
    }

    /// Inverse of [`Ring::to_bits`]; only the low two bits count.
    #[must_use]
    pub const fn from_bits(b: u8) -> Self {
        match b & 3 {
            0 => Self::Task,
            1 => Self::Interrupt,
            2 => Self::Control,
            _ => Self::Host,
        }
    }
}

/// A source location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location<'a> {
    /// Source file.
    pub file: &'a str,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// A tracing field value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Value<'a> {
    /// `bool`
    Bool(bool),
    /// Any unsigned integer.
    U64(u64),
    /// Any signed integer.
    I64(i64),
    /// Any float.
    F64(f64),
    /// A string, or a value recorded with `Debug`/`Display`.
    Str(&'a str),
}

/// A list on the wire: a varint count, then the items.
///
/// Encoders build it from a slice; decoders return it as validated wire bytes that
/// [`List::iter`] turns back into items, so decoding never allocates.
#[derive(Debug, Clone, Copy)]
pub enum List<'a, T> {
    /// Items held by the caller.
    Slice(&'a [T]),
    /// Items still in wire form; validated when the record was decoded.
    Wire {
        /// Number of items.
        count: u32,
        /// Their encoding.
        bytes: &'a [u8],
    },
}

/// An item that can live in a [`List`].
pub trait ListItem<'a>: Copy + Sized {
    /// Appends the item.
    #[doc(hidden)]
    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError>;
    /// Reads one item.
    #[doc(hidden)]
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError>;
}

impl<'a> ListItem<'a> for &'a str {
    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.str(self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.str()
    }
}

impl<'a> ListItem<'a> for Value<'a> {
    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match *self {
            Value::Bool(b) => {
                w.u8(0)?;
                w.u8(u8::from(b))
            }
            Value::U64(v) => {
                w.u8(1)?;
                w.varint(v)
            }
            Value::I64(v) => {
                w.u8(2)?;
                w.varint(crate::wire::zigzag(v))
            }
            Value::F64(v) => {
                w.u8(3)?;
                w.bytes(&v.to_le_bytes())
            }
            Value::Str(s) => {
                w.u8(4)?;
                w.str(s)
            }
        }
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => match r.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(DecodeError::InvalidDiscriminant),
            },
            1 => Value::U64(r.varint()?),
            2 => Value::I64(crate::wire::unzigzag(r.varint()?)),
            3 => {
                let b = r.bytes(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::F64(f64::from_le_bytes(a))
            }
            4 => Value::Str(r.str()?),
            _ => return Err(DecodeError::InvalidDiscriminant),
        })
    }
}

impl<'a, T: ListItem<'a>> List<'a, T> {
    /// Number of items.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Slice(s) => s.len(),
            Self::Wire { count, .. } => *count as usize,
        }
    }

    /// Whether the list has no items.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items.
    #[must_use]
    pub fn iter(&self) -> ListIter<'a, T> {
        match *self {
            Self::Slice(s) => ListIter::Slice(s.iter()),
            Self::Wire { count, bytes } => ListIter::Wire {
                left: count,
                reader: Reader::new(bytes),
            },
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let n = u32::try_from(self.len()).map_err(|_| EncodeError::Unrepresentable)?;
        w.varint(u64::from(n))?;
        for item in self.iter() {
            item.write(w)?;
        }
        Ok(())
    }

    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let count = r.varint_u32()?;
        let start = r.rest();
        let before = start.len();
        for _ in 0..count {
            T::read(r)?;
        }
        let used = before - r.rest().len();
        Ok(Self::Wire {
            count,
            bytes: start.get(..used).unwrap_or_default(),
        })
    }
}

impl<'a, T: ListItem<'a> + PartialEq> PartialEq for List<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// Iterator over a [`List`].
#[derive(Debug, Clone)]
pub enum ListIter<'a, T> {
    #[doc(hidden)]
    Slice(core::slice::Iter<'a, T>),
    #[doc(hidden)]
    Wire { left: u32, reader: Reader<'a> },
}

impl<'a, T: ListItem<'a>> Iterator for ListIter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            Self::Slice(it) => it.next().copied(),
            Self::Wire { left, reader } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // Validated at decode time; stop rather than panic if that ever breaks.
                T::read(reader).ok()
            }
        }
    }
}

/// First message of every connection and of every recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello<'a> {
    /// Protocol major version; a decoder refuses a different one.
    pub major: u16,
    /// Protocol minor version; newer minors only add messages and trailing fields.
    pub minor: u16,
    /// Kernel build id (e.g. a git describe string).
    pub build_id: &'a str,
    /// TSC ticks per second, to turn timestamps into time.
    pub tsc_hz: u64,
    /// Number of CPUs.
    pub cpus: u32,
    /// TSC value at boot.
    pub boot_tsc: u64,
}

/// Registers a callsite once; later events refer to it by id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Callsite<'a> {
    /// Interned id.
    pub id: CallsiteId,
    /// Event or span.
    pub kind: CallsiteKind,
    /// Level.
    pub level: Level,
    /// Name (`event src/main.rs:12` for events without a name).
    pub name: &'a str,
    /// Target (module path by default).
    pub target: &'a str,
    /// Source file.
    pub file: &'a str,
    /// Source line.
    pub line: u32,
    /// Field names; [`TraceEvent::values`] follow this order.
    pub fields: List<'a, &'a str>,
}

/// A task was spawned (on the CPU of the stream that carries this message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpawned<'a> {
    /// The new task.
    pub task: TaskId,
    /// Name given at spawn, may be empty.
    pub name: &'a str,
    /// Kernel or wasm.
    pub kind: TaskKind,
    /// Where `spawn` was called.
    pub location: Location<'a>,
    /// The spawning task, if spawned from a task.
    pub parent: Option<TaskId>,
}

/// A tracing event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceEvent<'a> {
    /// Its registered callsite.
    pub callsite: CallsiteId,
    /// The current span, if any.
    pub span: Option<SpanId>,
    /// Field values in the callsite's field order.
    pub values: List<'a, Value<'a>>,
}

/// A tracing span was created.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpanNew<'a> {
    /// The new span.
    pub span: SpanId,
    /// Its registered callsite.
    pub callsite: CallsiteId,
    /// Parent span, if any.
    pub parent: Option<SpanId>,
    /// Field values in the callsite's field order.
    pub values: List<'a, Value<'a>>,
}

/// A wasm instance was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmInstanceCreated<'a> {
    /// The instance.
    pub instance: InstanceId,
    /// The task that drives it.
    pub task: TaskId,
    /// Module name.
    pub module: &'a str,
    /// Initial linear memory in 64 KiB pages.
    pub memory_pages: u32,
    /// Fuel per slice.
    pub fuel_per_slice: u64,
}

/// A wasm instance trapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmTrap<'a> {
    /// The instance.
    pub instance: InstanceId,
    /// The task that drives it.
    pub task: TaskId,
    /// Trap code (the wasm host's numbering).
    pub code: u32,
    /// Human-readable reason.
    pub reason: &'a str,
}

/// A live task with its counters, sent in answer to a snapshot request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSnapshot<'a> {
    /// The task.
    pub task: TaskId,
    /// Name.
    pub name: &'a str,
    /// Kernel or wasm.
    pub kind: TaskKind,
    /// Spawn location.
    pub location: Location<'a>,
    /// Parent task.
    pub parent: Option<TaskId>,
    /// Current state.
    pub state: TaskState,
    /// CPU it last ran on.
    pub cpu: u32,
    /// TSC at spawn.
    pub spawned_tsc: u64,
    /// Polls so far.
    pub polls: u64,
    /// Wakes so far.
    pub wakes: u64,
    /// Self-wakes so far.
    pub self_wakes: u64,
    /// Live wakers.
    pub wakers: u64,
    /// TSC ticks spent being polled.
    pub busy_ticks: u64,
    /// TSC ticks spent scheduled but not running.
    pub scheduled_ticks: u64,
}

/// A live wasm instance, sent in answer to a snapshot request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmInstanceSnapshot<'a> {
    /// The instance.
    pub instance: InstanceId,
    /// The task that drives it.
    pub task: TaskId,
    /// Module name.
    pub module: &'a str,
    /// Current state.
    pub state: WasmState,
    /// Linear memory in pages.
    pub memory_pages: u32,
    /// Fuel consumed so far.
    pub fuel_used: u64,
    /// Slices run so far.
    pub slices: u64,
    /// Hostcalls so far.
    pub hostcalls: u64,
}

/// Host → kernel: change the level filter for a target (`""` = default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetLevelFilter<'a> {
    /// Target prefix.
    pub target: &'a str,
    /// New filter.
    pub filter: LevelFilter,
}

macro_rules! message_kinds {
    ($( $(#[$doc:meta])* $kind:ident = $name:literal ),* $(,)?) => {
        /// The kind of a [`Message`], without its data.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum MessageKind { $( $(#[$doc])* $kind, )* }

        impl MessageKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [MessageKind] = &[$(MessageKind::$kind,)*];

            /// Stable snake_case name, used in summaries and golden files.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self { $(MessageKind::$kind => $name,)* }
            }
        }
    };
}

message_kinds! {
    /// [`Message::Hello`]
    Hello = "hello",
    /// [`Message::Callsite`]
    Callsite = "callsite",
    /// [`Message::TaskSpawned`]
    TaskSpawned = "task_spawned",
    /// [`Message::PollStart`]
    PollStart = "poll_start",
    /// [`Message::PollEnd`]
    PollEnd = "poll_end",
    /// [`Message::Wake`]
    Wake = "wake",
    /// [`Message::WakerClone`]
    WakerClone = "waker_clone",
    /// [`Message::WakerDrop`]
    WakerDrop = "waker_drop",
    /// [`Message::JoinWaiting`]
    JoinWaiting = "join_waiting",
    /// [`Message::TaskCompleted`]
    TaskCompleted = "task_completed",
    /// [`Message::TaskDropped`]
    TaskDropped = "task_dropped",
    /// [`Message::Steal`]
    Steal = "steal",
    /// [`Message::CpuIdle`]
    CpuIdle = "cpu_idle",
    /// [`Message::CpuBusy`]
    CpuBusy = "cpu_busy",
    /// [`Message::RunQueueDepth`]
    RunQueueDepth = "run_queue_depth",
    /// [`Message::TraceEvent`]
    TraceEvent = "trace_event",
    /// [`Message::SpanNew`]
    SpanNew = "span_new",
    /// [`Message::SpanEnter`]
    SpanEnter = "span_enter",
    /// [`Message::SpanExit`]
    SpanExit = "span_exit",
    /// [`Message::SpanClose`]
    SpanClose = "span_close",
    /// [`Message::Loss`]
    Loss = "loss",
    /// [`Message::Heartbeat`]
    Heartbeat = "heartbeat",
    /// [`Message::EventCounts`]
    EventCounts = "event_counts",
    /// [`Message::WasmInstanceCreated`]
    WasmInstanceCreated = "wasm_instance_created",
    /// [`Message::WasmStateChanged`]
    WasmStateChanged = "wasm_state_changed",
    /// [`Message::WasmMemoryGrow`]
    WasmMemoryGrow = "wasm_memory_grow",
    /// [`Message::WasmPoll`]
    WasmPoll = "wasm_poll",
    /// [`Message::WasmHostcalls`]
    WasmHostcalls = "wasm_hostcalls",
    /// [`Message::WasmTrap`]
    WasmTrap = "wasm_trap",
    /// [`Message::SnapshotBegin`]
    SnapshotBegin = "snapshot_begin",
    /// [`Message::SnapshotEnd`]
    SnapshotEnd = "snapshot_end",
    /// [`Message::TaskSnapshot`]
    TaskSnapshot = "task_snapshot",
    /// [`Message::WasmInstanceSnapshot`]
    WasmInstanceSnapshot = "wasm_instance_snapshot",
    /// [`Message::SetLevelFilter`]
    SetLevelFilter = "set_level_filter",
    /// [`Message::Pause`]
    Pause = "pause",
    /// [`Message::Resume`]
    Resume = "resume",
    /// [`Message::RequestSnapshot`]
    RequestSnapshot = "request_snapshot",
}

/// One message. Kernel → host unless marked host → kernel.
///
/// The CPU a message concerns is the CPU of the stream that carries it (see
/// [`crate::StreamId`]) unless the message names one; its timestamp is the
/// [`crate::Event::ts`] it is decoded with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Message<'a> {
    /// Protocol version and kernel facts.
    Hello(Hello<'a>),
    /// Callsite registration (sent once per callsite).
    Callsite(Callsite<'a>),
    /// A task was spawned.
    TaskSpawned(TaskSpawned<'a>),
    /// A poll began.
    PollStart {
        /// The task polled.
        task: TaskId,
    },
    /// A poll ended.
    PollEnd {
        /// The task polled.
        task: TaskId,
        /// What the poll returned.
        result: PollResult,
    },
    /// A task was woken.
    Wake {
        /// The woken task.
        task: TaskId,
        /// Who woke it.
        waker: Waker,
        /// `wake_by_ref` rather than `wake`.
        by_ref: bool,
        /// The task woke itself.
        self_wake: bool,
    },
    /// A waker was cloned.
    WakerClone {
        /// The task the waker wakes.
        task: TaskId,
        /// Live wakers after the clone.
        wakers: u64,
    },
    /// A waker was dropped.
    WakerDrop {
        /// The task the waker wakes.
        task: TaskId,
        /// Live wakers after the drop.
        wakers: u64,
    },
    /// A task awaits another's join handle.
    JoinWaiting {
        /// The task joined.
        task: TaskId,
        /// The task waiting.
        waiter: TaskId,
    },
    /// A task finished.
    TaskCompleted {
        /// The task.
        task: TaskId,
        /// How.
        outcome: Outcome,
    },
    /// A task's storage was freed.
    TaskDropped {
        /// The task.
        task: TaskId,
    },
    /// A task moved between CPUs.
    Steal {
        /// The task.
        task: TaskId,
        /// Victim CPU.
        from_cpu: u32,
        /// Thief CPU.
        to_cpu: u32,
    },
    /// The CPU has nothing to run.
    CpuIdle,
    /// The CPU has work again.
    CpuBusy,
    /// Periodic run-queue depth sample.
    RunQueueDepth {
        /// Tasks queued.
        depth: u32,
    },
    /// A tracing event.
    TraceEvent(TraceEvent<'a>),
    /// A span was created.
    SpanNew(SpanNew<'a>),
    /// A span was entered.
    SpanEnter {
        /// The span.
        span: SpanId,
    },
    /// A span was exited.
    SpanExit {
        /// The span.
        span: SpanId,
    },
    /// A span was closed.
    SpanClose {
        /// The span.
        span: SpanId,
    },
    /// Events discarded since the last report on this CPU's ring.
    Loss {
        /// CPU whose ring overflowed.
        cpu: u32,
        /// Which ring.
        ring: Ring,
        /// Events discarded.
        count: u64,
    },
    /// The kernel is alive.
    Heartbeat,
    /// Totals a ring has produced and dropped since boot, to check loss accounting.
    EventCounts {
        /// CPU.
        cpu: u32,
        /// Ring.
        ring: Ring,
        /// Events produced (encoded or dropped).
        produced: u64,
        /// Events dropped.
        dropped: u64,
    },
    /// A wasm instance was created.
    WasmInstanceCreated(WasmInstanceCreated<'a>),
    /// A wasm instance changed state.
    WasmStateChanged {
        /// The instance.
        instance: InstanceId,
        /// Its new state.
        state: WasmState,
        /// What the state is about (see [`WasmState`]'s variants; 0 if nothing).
        detail: u64,
    },
    /// A wasm instance's memory grew.
    WasmMemoryGrow {
        /// The instance.
        instance: InstanceId,
        /// Pages before.
        old_pages: u32,
        /// Pages after.
        new_pages: u32,
    },
    /// Fuel and slices a wasm instance used in one poll.
    WasmPoll {
        /// The instance.
        instance: InstanceId,
        /// Fuel consumed.
        fuel: u64,
        /// Slices run.
        slices: u32,
    },
    /// Hostcall statistics of a wasm instance since its last report.
    WasmHostcalls {
        /// The instance.
        instance: InstanceId,
        /// Hostcall number.
        hostcall: u32,
        /// Calls.
        calls: u64,
        /// TSC ticks spent in them.
        ticks: u64,
    },
    /// A wasm instance trapped.
    WasmTrap(WasmTrap<'a>),
    /// A snapshot answer begins.
    SnapshotBegin {
        /// The request it answers.
        request: u64,
    },
    /// A snapshot answer is complete.
    SnapshotEnd {
        /// The request it answers.
        request: u64,
    },
    /// One live task of a snapshot.
    TaskSnapshot(TaskSnapshot<'a>),
    /// One live wasm instance of a snapshot.
    WasmInstanceSnapshot(WasmInstanceSnapshot<'a>),
    /// Host → kernel: set a level filter.
    SetLevelFilter(SetLevelFilter<'a>),
    /// Host → kernel: stop streaming (events are counted as lost).
    Pause,
    /// Host → kernel: resume streaming.
    Resume,
    /// Host → kernel: send a full state snapshot.
    RequestSnapshot {
        /// Echoed in the answer's [`Message::SnapshotBegin`]/[`Message::SnapshotEnd`].
        request: u64,
    },
}

// Compact codes (tag shape 1..=6). Never renumber: the golden vectors pin them.
mod code {
    pub const POLL_START: u8 = 0;
    pub const POLL_END_PENDING: u8 = 1;
    pub const POLL_END_READY: u8 = 2;
    pub const WAKE: u8 = 3;
    pub const WAKER_CLONE: u8 = 4;
    pub const WAKER_DROP: u8 = 5;
    pub const JOIN_WAITING: u8 = 6;
    pub const TASK_COMPLETED: u8 = 7;
    pub const TASK_DROPPED: u8 = 8;
    pub const STEAL: u8 = 9;
    pub const CPU_IDLE: u8 = 10;
    pub const CPU_BUSY: u8 = 11;
    pub const RUN_QUEUE_DEPTH: u8 = 12;
    pub const SPAN_ENTER: u8 = 13;
    pub const SPAN_EXIT: u8 = 14;
    pub const SPAN_CLOSE: u8 = 15;
    pub const LOSS: u8 = 16;
    pub const HEARTBEAT: u8 = 17;
    pub const EVENT_COUNTS: u8 = 18;
    pub const WASM_POLL: u8 = 19;
    pub const WASM_MEMORY_GROW: u8 = 20;
    pub const WASM_HOSTCALLS: u8 = 21;
    pub const WASM_STATE_CHANGED: u8 = 22;
    pub const SNAPSHOT_BEGIN: u8 = 23;
    pub const SNAPSHOT_END: u8 = 24;
    pub const PAUSE: u8 = 25;
    pub const RESUME: u8 = 26;
    pub const REQUEST_SNAPSHOT: u8 = 27;
    // 28..=31 reserved for compact kinds of later minor versions.

    // Extended codes (tag shape 7).
    pub const HELLO: u64 = 0;
    pub const CALLSITE: u64 = 1;
    pub const TASK_SPAWNED: u64 = 2;
    pub const TRACE_EVENT: u64 = 3;
    pub const SPAN_NEW: u64 = 4;
    pub const WASM_INSTANCE_CREATED: u64 = 5;
    pub const WASM_TRAP: u64 = 6;
    pub const TASK_SNAPSHOT: u64 = 7;
    pub const WASM_INSTANCE_SNAPSHOT: u64 = 8;
    pub const SET_LEVEL_FILTER: u64 = 9;
}

/// Tag shape of extended records.
pub(crate) const SHAPE_EXTENDED: u8 = 7;
/// Extended code that means "the code follows as a varint".
const EXTENDED_ESCAPE: u8 = 31;

#[inline]
pub(crate) const fn compact_tag(fields: usize, code: u8) -> u8 {
    // `fields` excludes the timestamp delta, which every record carries first.
    (((fields + 1) as u8) << 5) | code
}

fn waker_parts(w: Waker) -> (u64, u64) {
    match w {
        Waker::None => (0, 0),
        Waker::Task(t) => (1, t),
        Waker::Interrupt(v) => (2, u64::from(v)),
    }
}

fn enum_u64<T: Copy>(v: u64, table: &[T]) -> Result<T, DecodeError> {
    usize::try_from(v)
        .ok()
        .and_then(|i| table.get(i).copied())
        .ok_or(DecodeError::InvalidDiscriminant)
}

fn u32_of(v: u64) -> Result<u32, DecodeError> {
    u32::try_from(v).map_err(|_| DecodeError::OutOfRange)
}

const RINGS: [Ring; 4] = [Ring::Task, Ring::Interrupt, Ring::Control, Ring::Host];
const OUTCOMES: [Outcome; 3] = [Outcome::Ok, Outcome::Cancelled, Outcome::Panicked];
const WASM_STATES: [WasmState; 8] = WasmState::ALL;
const LEVELS: [Level; 5] = [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error];

/// Compact form: (code, fields) or `None` for extended messages.
type Compact = (u8, [u64; 5], usize);

impl<'a> Message<'a> {
    /// The message's kind.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Hello(_) => MessageKind::Hello,
            Self::Callsite(_) => MessageKind::Callsite,
            Self::TaskSpawned(_) => MessageKind::TaskSpawned,
            Self::PollStart { .. } => MessageKind::PollStart,
            Self::PollEnd { .. } => MessageKind::PollEnd,
            Self::Wake { .. } => MessageKind::Wake,
            Self::WakerClone { .. } => MessageKind::WakerClone,
            Self::WakerDrop { .. } => MessageKind::WakerDrop,
            Self::JoinWaiting { .. } => MessageKind::JoinWaiting,
            Self::TaskCompleted { .. } => MessageKind::TaskCompleted,
            Self::TaskDropped { .. } => MessageKind::TaskDropped,
            Self::Steal { .. } => MessageKind::Steal,
            Self::CpuIdle => MessageKind::CpuIdle,
            Self::CpuBusy => MessageKind::CpuBusy,
            Self::RunQueueDepth { .. } => MessageKind::RunQueueDepth,
            Self::TraceEvent(_) => MessageKind::TraceEvent,
            Self::SpanNew(_) => MessageKind::SpanNew,
            Self::SpanEnter { .. } => MessageKind::SpanEnter,
            Self::SpanExit { .. } => MessageKind::SpanExit,
            Self::SpanClose { .. } => MessageKind::SpanClose,
            Self::Loss { .. } => MessageKind::Loss,
            Self::Heartbeat => MessageKind::Heartbeat,
            Self::EventCounts { .. } => MessageKind::EventCounts,
            Self::WasmInstanceCreated(_) => MessageKind::WasmInstanceCreated,
            Self::WasmStateChanged { .. } => MessageKind::WasmStateChanged,
            Self::WasmMemoryGrow { .. } => MessageKind::WasmMemoryGrow,
            Self::WasmPoll { .. } => MessageKind::WasmPoll,
            Self::WasmHostcalls { .. } => MessageKind::WasmHostcalls,
            Self::WasmTrap(_) => MessageKind::WasmTrap,
            Self::SnapshotBegin { .. } => MessageKind::SnapshotBegin,
            Self::SnapshotEnd { .. } => MessageKind::SnapshotEnd,
            Self::TaskSnapshot(_) => MessageKind::TaskSnapshot,
            Self::WasmInstanceSnapshot(_) => MessageKind::WasmInstanceSnapshot,
            Self::SetLevelFilter(_) => MessageKind::SetLevelFilter,
            Self::Pause => MessageKind::Pause,
            Self::Resume => MessageKind::Resume,
            Self::RequestSnapshot { .. } => MessageKind::RequestSnapshot,
        }
    }

    fn compact(&self) -> Option<Compact> {
        use code::*;
        let c = |code: u8, f: &[u64]| {
            let mut a = [0u64; 5];
            a[..f.len()].copy_from_slice(f);
            Some((code, a, f.len()))
        };
        match *self {
            Self::PollStart { task } => c(POLL_START, &[task]),
            Self::PollEnd { task, result } => match result {
                PollResult::Pending => c(POLL_END_PENDING, &[task]),
                PollResult::Ready => c(POLL_END_READY, &[task]),
            },
            Self::Wake {
                task,
                waker,
                by_ref,
                self_wake,
            } => {
                let (kind, value) = waker_parts(waker);
                let flags = kind << 2 | u64::from(by_ref) << 1 | u64::from(self_wake);
                c(WAKE, &[task, value, flags])
            }
            Self::WakerClone { task, wakers } => c(WAKER_CLONE, &[task, wakers]),
            Self::WakerDrop { task, wakers } => c(WAKER_DROP, &[task, wakers]),
            Self::JoinWaiting { task, waiter } => c(JOIN_WAITING, &[task, waiter]),
            Self::TaskCompleted { task, outcome } => c(TASK_COMPLETED, &[task, outcome as u64]),
            Self::TaskDropped { task } => c(TASK_DROPPED, &[task]),
            Self::Steal { task, from_cpu, to_cpu } => c(STEAL, &[task, from_cpu.into(), to_cpu.into()]),
            Self::CpuIdle => c(CPU_IDLE, &[]),
            Self::CpuBusy => c(CPU_BUSY, &[]),
            Self::RunQueueDepth { depth } => c(RUN_QUEUE_DEPTH, &[depth.into()]),
            Self::SpanEnter { span } => c(SPAN_ENTER, &[span]),
            Self::SpanExit { span } => c(SPAN_EXIT, &[span]),
            Self::SpanClose { span } => c(SPAN_CLOSE, &[span]),
            Self::Loss { cpu, ring, count } => c(LOSS, &[cpu.into(), ring.to_bits().into(), count]),
            Self::Heartbeat => c(HEARTBEAT, &[]),
            Self::EventCounts {
                cpu,
                ring,
                produced,
                dropped,
            } => c(EVENT_COUNTS, &[cpu.into(), ring.to_bits().into(), produced, dropped]),
            Self::WasmPoll { instance, fuel, slices } => c(WASM_POLL, &[instance, fuel, slices.into()]),
            Self::WasmMemoryGrow {
                instance,
                old_pages,
                new_pages,
            } => c(WASM_MEMORY_GROW, &[instance, old_pages.into(), new_pages.into()]),
            Self::WasmHostcalls {
                instance,
                hostcall,
                calls,
                ticks,
            } => c(WASM_HOSTCALLS, &[instance, hostcall.into(), calls, ticks]),
            Self::WasmStateChanged {
                instance,
                state,
                detail,
            } => c(WASM_STATE_CHANGED, &[instance, state as u64, detail]),
            Self::SnapshotBegin { request } => c(SNAPSHOT_BEGIN, &[request]),
            Self::SnapshotEnd { request } => c(SNAPSHOT_END, &[request]),
            Self::Pause => c(PAUSE, &[]),
            Self::Resume => c(RESUME, &[]),
            Self::RequestSnapshot { request } => c(REQUEST_SNAPSHOT, &[request]),
            Self::Hello(_)
            | Self::Callsite(_)
            | Self::TaskSpawned(_)
            | Self::TraceEvent(_)
            | Self::SpanNew(_)
            | Self::WasmInstanceCreated(_)
            | Self::WasmTrap(_)
            | Self::TaskSnapshot(_)
            | Self::WasmInstanceSnapshot(_)
            | Self::SetLevelFilter(_) => None,
        }
    }

    /// Appends the record (tag, timestamp delta, fields) at the writer's position.
    pub(crate) fn write_record(&self, w: &mut Writer<'_>, ts_delta: u64) -> Result<(), EncodeError> {
        if let Some((code, fields, n)) = self.compact() {
            w.u8(compact_tag(n, code))?;
            w.varint(ts_delta)?;
            for &f in &fields[..n] {
                w.varint(f)?;
            }
            return Ok(());
        }
        let ext = match self {
            Self::Hello(_) => code::HELLO,
            Self::Callsite(_) => code::CALLSITE,
            Self::TaskSpawned(_) => code::TASK_SPAWNED,
            Self::TraceEvent(_) => code::TRACE_EVENT,
            Self::SpanNew(_) => code::SPAN_NEW,
            Self::WasmInstanceCreated(_) => code::WASM_INSTANCE_CREATED,
            Self::WasmTrap(_) => code::WASM_TRAP,
            Self::TaskSnapshot(_) => code::TASK_SNAPSHOT,
            Self::WasmInstanceSnapshot(_) => code::WASM_INSTANCE_SNAPSHOT,
            _ => code::SET_LEVEL_FILTER,
        };
        write_extended(w, ext, |w| {
            w.varint(ts_delta)?;
            self.write_extended_body(w)
        })
    }

    fn write_extended_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self {
            Self::Hello(m) => postcard_into(w, m),
            Self::TaskSpawned(m) => postcard_into(w, m),
            Self::WasmInstanceCreated(m) => postcard_into(w, m),
            Self::WasmTrap(m) => postcard_into(w, m),
            Self::TaskSnapshot(m) => postcard_into(w, m),
            Self::WasmInstanceSnapshot(m) => postcard_into(w, m),
            Self::SetLevelFilter(m) => postcard_into(w, m),
            Self::Callsite(m) => {
                w.varint(m.id)?;
                w.u8(m.kind as u8)?;
                w.u8(m.level as u8)?;
                w.str(m.name)?;
                w.str(m.target)?;
                w.str(m.file)?;
                w.varint(m.line.into())?;
                m.fields.write(w)
            }
            Self::TraceEvent(m) => {
                w.varint(m.callsite)?;
                write_option(w, m.span)?;
                m.values.write(w)
            }
            Self::SpanNew(m) => {
                w.varint(m.span)?;
                w.varint(m.callsite)?;
                write_option(w, m.parent)?;
                m.values.write(w)
            }
            _ => Err(EncodeError::Unrepresentable),
        }
    }
}

fn write_option(w: &mut Writer<'_>, v: Option<u64>) -> Result<(), EncodeError> {
    match v {
        None => w.u8(0),
        Some(v) => {
            w.u8(1)?;
            w.varint(v)
        }
    }
}

fn read_option(r: &mut Reader<'_>) -> Result<Option<u64>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.varint()?)),
        _ => Err(DecodeError::InvalidDiscriminant),
    }
}

fn postcard_into<T: Serialize>(w: &mut Writer<'_>, v: &T) -> Result<(), EncodeError> {
    let n = postcard::to_slice(v, w.tail())
        .map_err(|e| match e {
            postcard::Error::SerializeBufferFull => EncodeError::BufferFull,
            _ => EncodeError::Unrepresentable,
        })?
        .len();
    w.advance(n)
}

/// Writes an extended record: tag, body length, body. The body is written once, after
/// a one-byte length guess, and moved if its length needs a longer varint.
fn write_extended(
    w: &mut Writer<'_>,
    code: u64,
    body: impl FnOnce(&mut Writer<'_>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let short = u8::try_from(code).ok().filter(|&c| c < EXTENDED_ESCAPE);
    w.u8((SHAPE_EXTENDED << 5) | short.unwrap_or(EXTENDED_ESCAPE))?;
    if short.is_none() {
        w.varint(code)?;
    }
    let len_at = w.pos();
    w.u8(0)?;
    let body_at = w.pos();
    body(w)?;
    let body_len = w.pos() - body_at;
    w.move_body_after_len(len_at, body_at, body_len)
}

impl Writer<'_> {
    /// Writes `len` as a varint at `len_at`, shifting the `len` body bytes that start
    /// at `body_at` (one byte after `len_at`) if the varint needs more than one byte.
    fn move_body_after_len(&mut self, len_at: usize, body_at: usize, len: usize) -> Result<(), EncodeError> {
        let mut tmp = [0u8; crate::wire::MAX_VARINT_LEN];
        let n = {
            let mut lw = Writer::new(&mut tmp, 0);
            lw.varint(len as u64)?;
            lw.pos()
        };
        let extra = n - 1;
        if extra > 0 {
            self.advance(extra)?;
            self.shift(body_at, len, extra);
        }
        self.put(len_at, &tmp[..n]);
        Ok(())
    }
}

/// Reads one record; `Ok(None)` means a record of a kind this decoder does not know,
/// which has been skipped.
#[inline]
pub(crate) fn read_record<'a>(r: &mut Reader<'a>) -> Result<(u64, Option<Message<'a>>), DecodeError> {
    let tag = r.u8()?;
    let shape = tag >> 5;
    let code = tag & 0x1f;
    match shape {
        0 => Err(DecodeError::ReservedShape),
        SHAPE_EXTENDED => {
            let ext = if code == EXTENDED_ESCAPE {
                r.varint()?
            } else {
                u64::from(code)
            };
            let len = usize::try_from(r.varint()?).map_err(|_| DecodeError::Truncated)?;
            let mut body = Reader::new(r.bytes(len)?);
            let delta = body.varint()?;
            Ok((delta, read_extended(ext, &mut body)?))
        }
        _ => {
            let mut f = [0u64; 6];
            let n = usize::from(shape);
            for slot in f.iter_mut().take(n) {
                *slot = r.varint()?;
            }
            Ok((f[0], read_compact(code, &f[1..n])?))
        }
    }
}

#[inline]
fn read_compact<'a>(code: u8, f: &[u64]) -> Result<Option<Message<'a>>, DecodeError> {
    use code::*;
    let need = |k: usize| {
        if f.len() < k {
            Err(DecodeError::MissingFields)
        } else {
            Ok(())
        }
    };
    let m = match code {
        POLL_START => {
            need(1)?;
            Message::PollStart { task: f[0] }
        }
        POLL_END_PENDING | POLL_END_READY => {
            need(1)?;
            Message::PollEnd {
                task: f[0],
                result: if code == POLL_END_READY {
                    PollResult::Ready
                } else {
                    PollResult::Pending
                },
            }
        }
        WAKE => {
            need(3)?;
            let flags = f[2];
            let waker = match flags >> 2 {
                0 => Waker::None,
                1 => Waker::Task(f[1]),
                2 => Waker::Interrupt(u8::try_from(f[1]).map_err(|_| DecodeError::OutOfRange)?),
                _ => return Err(DecodeError::InvalidDiscriminant),
            };
            Message::Wake {
                task: f[0],
                waker,
                by_ref: flags & 2 != 0,
                self_wake: flags & 1 != 0,
            }
        }
        WAKER_CLONE => {
            need(2)?;
            Message::WakerClone {
                task: f[0],
                wakers: f[1],
            }
        }
        WAKER_DROP => {
            need(2)?;
            Message::WakerDrop {
                task: f[0],
                wakers: f[1],
            }
        }
        JOIN_WAITING => {
            need(2)?;
            Message::JoinWaiting {
                task: f[0],
                waiter: f[1],
            }
        }
        TASK_COMPLETED => {
            need(2)?;
            Message::TaskCompleted {
                task: f[0],
                outcome: enum_u64(f[1], &OUTCOMES)?,
            }
        }
        TASK_DROPPED => {
            need(1)?;
            Message::TaskDropped { task: f[0] }
        }
        STEAL => {
            need(3)?;
            Message::Steal {
                task: f[0],
                from_cpu: u32_of(f[1])?,
                to_cpu: u32_of(f[2])?,
            }
        }
        CPU_IDLE => Message::CpuIdle,
        CPU_BUSY => Message::CpuBusy,
        RUN_QUEUE_DEPTH => {
            need(1)?;
            Message::RunQueueDepth { depth: u32_of(f[0])? }
        }
        SPAN_ENTER => {
            need(1)?;
            Message::SpanEnter { span: f[0] }
        }
        SPAN_EXIT => {
            need(1)?;
            Message::SpanExit { span: f[0] }
        }
        SPAN_CLOSE => {
            need(1)?;
            Message::SpanClose { span: f[0] }
        }
        LOSS => {
            need(3)?;
            Message::Loss {
                cpu: u32_of(f[0])?,
                ring: enum_u64(f[1], &RINGS)?,
                count: f[2],
            }
        }
        HEARTBEAT => Message::Heartbeat,
        EVENT_COUNTS => {
            need(4)?;
            Message::EventCounts {
                cpu: u32_of(f[0])?,
                ring: enum_u64(f[1], &RINGS)?,
                produced: f[2],
                dropped: f[3],
            }
        }
        WASM_POLL => {
            need(3)?;
            Message::WasmPoll {
                instance: f[0],
                fuel: f[1],
                slices: u32_of(f[2])?,
            }
        }
        WASM_MEMORY_GROW => {
            need(3)?;
            Message::WasmMemoryGrow {
                instance: f[0],
                old_pages: u32_of(f[1])?,
                new_pages: u32_of(f[2])?,
            }
        }
        WASM_HOSTCALLS => {
            need(4)?;
            Message::WasmHostcalls {
                instance: f[0],
                hostcall: u32_of(f[1])?,
                calls: f[2],
                ticks: f[3],
            }
        }
        WASM_STATE_CHANGED => {
            need(2)?;
            Message::WasmStateChanged {
                instance: f[0],
                state: enum_u64(f[1], &WASM_STATES)?,
                // Streams from before `detail` existed carry two fields.
                detail: f.get(2).copied().unwrap_or(0),
            }
        }
        SNAPSHOT_BEGIN => {
            need(1)?;
            Message::SnapshotBegin { request: f[0] }
        }
        SNAPSHOT_END => {
            need(1)?;
            Message::SnapshotEnd { request: f[0] }
        }
        PAUSE => Message::Pause,
        RESUME => Message::Resume,
        REQUEST_SNAPSHOT => {
            need(1)?;
            Message::RequestSnapshot { request: f[0] }
        }
        _ => return Ok(None),
    };
    Ok(Some(m))
}

fn postcard_from<'a, T: Deserialize<'a>>(r: &mut Reader<'a>) -> Result<T, DecodeError> {
    // Trailing bytes are fields appended by a newer minor version.
    postcard::take_from_bytes(r.rest())
        .map(|(v, _rest)| v)
        .map_err(|_| DecodeError::Body)
}

fn read_extended<'a>(ext: u64, r: &mut Reader<'a>) -> Result<Option<Message<'a>>, DecodeError> {
    let m = match ext {
        code::HELLO => Message::Hello(postcard_from(r)?),
        code::TASK_SPAWNED => Message::TaskSpawned(postcard_from(r)?),
        code::WASM_INSTANCE_CREATED => Message::WasmInstanceCreated(postcard_from(r)?),
        code::WASM_TRAP => Message::WasmTrap(postcard_from(r)?),
        code::TASK_SNAPSHOT => Message::TaskSnapshot(postcard_from(r)?),
        code::WASM_INSTANCE_SNAPSHOT => Message::WasmInstanceSnapshot(postcard_from(r)?),
        code::SET_LEVEL_FILTER => Message::SetLevelFilter(postcard_from(r)?),
        code::CALLSITE => {
            let id = r.varint()?;
            let kind = match r.u8()? {
                0 => CallsiteKind::Event,
                1 => CallsiteKind::Span,
                _ => return Err(DecodeError::InvalidDiscriminant),
            };
            let level = enum_u64(r.u8()?.into(), &LEVELS)?;
            Message::Callsite(Callsite {
                id,
                kind,
                level,
                name: r.str()?,
                target: r.str()?,
                file: r.str()?,
                line: r.varint_u32()?,
                fields: List::read(r)?,
            })
        }
        code::TRACE_EVENT => Message::TraceEvent(TraceEvent {
            callsite: r.varint()?,
            span: read_option(r)?,
            values: List::read(r)?,
        }),
        code::SPAN_NEW => Message::SpanNew(SpanNew {
            span: r.varint()?,
            callsite: r.varint()?,
            parent: read_option(r)?,
            values: List::read(r)?,
        }),
        _ => return Ok(None),
    };
    Ok(Some(m))
}

/// Names of the wasm hostcall numbers in [`Message::WasmHostcalls`] (the kernel's
/// `lucid` import module, in number order).
pub const WASM_HOSTCALL_NAMES: [&str; 9] = [
    "log",
    "now",
    "sleep",
    "yield",
    "chan_create",
    "chan_send",
    "chan_recv",
    "spawn",
    "exit",
];

/// Names of the trap codes in [`WasmTrap::code`], in number order.
pub const WASM_TRAP_NAMES: [&str; 16] = [
    "stack_overflow",
    "memory_out_of_bounds",
    "heap_misaligned",
    "table_out_of_bounds",
    "indirect_call_to_null",
    "bad_signature",
    "integer_overflow",
    "integer_division_by_zero",
    "bad_conversion_to_integer",
    "unreachable",
    "out_of_fuel",
    "hostcall_bad_pointer",
    "hostcall_bad_handle",
    "hostcall_bad_argument",
    "resource_limit",
    "other",
];

/// The name of a hostcall number (`"hostcall#N"` for one this build does not know).
#[cfg(feature = "std")]
#[must_use]
pub fn wasm_hostcall_name(n: u32) -> std::borrow::Cow<'static, str> {
    match WASM_HOSTCALL_NAMES.get(n as usize) {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(format!("hostcall#{n}")),
    }
}

/// The name of a trap code (`"trap#N"` for one this build does not know).
#[cfg(feature = "std")]
#[must_use]
pub fn wasm_trap_name(n: u32) -> std::borrow::Cow<'static, str> {
    match WASM_TRAP_NAMES.get(n as usize) {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(format!("trap#{n}")),
    }
}
