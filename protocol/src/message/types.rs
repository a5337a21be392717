//! The ids, enums and structs the messages are made of.

use serde::{Deserialize, Serialize};

use super::frames::Frames;
use super::list::{List, Value};

crate::u64_newtype! {
    /// A task id, unique for the life of the kernel.
    TaskId;
    /// A span id as the kernel's tracing subscriber hands it out.
    SpanId;
    /// An interned callsite id (see [`Callsite`]).
    CallsiteId;
    /// A wasm instance id.
    InstanceId;
    /// A resource id (channel, semaphore, timer, join handle…), unique for the life
    /// of the kernel.
    ResourceId;
}

/// Result of one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PollResult {
    /// The future returned `Poll::Pending` and the task waits for a wake.
    Pending,
    /// The future returned `Poll::Ready`.
    Ready,
    /// The future returned `Poll::Pending`, but the task was woken during the poll
    /// (by itself, another CPU or an interrupt), so it is queued to run again.
    ///
    /// Sent from protocol minor 3 on; before, a wake seen during the poll was the
    /// only sign, and a wake stamped after the poll it caused looked the same.
    PendingWoken,
}

impl PollResult {
    /// Whether the future returned `Poll::Pending`.
    #[must_use]
    pub fn is_pending(self) -> bool {
        self != Self::Ready
    }
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
    /// Its slice ended (out of fuel, or preempted by the timer), or blocked in a
    /// hostcall.
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
    /// Stopped by the kernel (detail: why, an index into
    /// [`WASM_KILL_REASON_NAMES`](crate::WASM_KILL_REASON_NAMES): cancelled, fuel,
    /// memory, instances, log; kernels before these reasons sent the fuel budget).
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
    /// Fuel per slice; 0 when the kernel's timer slices it (its code counts no
    /// fuel).
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

/// The last lines an ended wasm instance wrote to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmStderrTail<'a> {
    /// The instance.
    pub instance: InstanceId,
    /// Its latest stderr lines, oldest first, `\n`-separated (no final newline).
    pub lines: &'a str,
}

/// A wasm instance's WASI arguments and environment, as `args_get` and
/// `environ_get` give them to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmInstanceArgs<'a> {
    /// The instance.
    pub instance: InstanceId,
    /// The arguments, each ended by a NUL (`argv[0]`, the program, first).
    pub args: &'a str,
    /// The environment's `KEY=VALUE` strings, each ended by a NUL.
    pub env: &'a str,
}

/// One function of a loaded wasm module's compiled code, so that profiling samples
/// in it name `module!function` (sent in every snapshot answer: modules load at
/// boot, before a console can attach).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmFunction<'a> {
    /// Address of its first instruction.
    pub start: u64,
    /// Length of its code in bytes.
    pub len: u32,
    /// Its module's name.
    pub module: &'a str,
    /// Its index in the module's function index space.
    pub index: u32,
    /// Its name-section name (a Rust name demangled), empty without one.
    pub name: &'a str,
}

/// Operations done on a resource since its last report (sent periodically, and
/// at its drop, for the operations the kernel counts: send, recv, acquire, lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceOps {
    /// The resource.
    pub id: ResourceId,
    /// The operation.
    pub op: WaitOp,
    /// How many since the last report.
    pub count: u64,
}

/// Tasks named in [`Holders`]; more holders are counted as unknown.
pub const NAMED_HOLDERS: usize = 4;

/// Who holds the handles that can signal a resource, as the kernel knows it: a
/// channel's senders, each held by the task that used it (unknown before its first
/// use or once several tasks used it), sent whole whenever that changes (a
/// sender's creation, first use, sharing or drop); a mutex's lock, held by the task
/// that took it, sent when a task begins to wait for it and when a task that waited
/// takes it. Also in snapshot answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holders {
    /// The resource.
    pub resource: ResourceId,
    /// Tasks holding a handle (a task holding two is named twice), then `None`s.
    pub tasks: [Option<TaskId>; NAMED_HOLDERS],
    /// Handles whose holder is unknown.
    pub unknown: u32,
}

impl Holders {
    /// Whether no handle is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.unknown == 0 && self.tasks.iter().all(Option::is_none)
    }

    /// The named holders.
    pub fn named(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.tasks.iter().flatten().copied()
    }
}

/// A task's contained panic: what it said and where it was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPanicked<'a> {
    /// The task.
    pub task: TaskId,
    /// The panic message.
    pub message: &'a str,
    /// Where the panic was raised, when the platform knows.
    pub location: Option<Location<'a>>,
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

/// What kind of primitive a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceKind {
    /// A bounded multi-producer channel.
    Channel,
    /// A one-value channel.
    Oneshot,
    /// A counting semaphore.
    Semaphore,
    /// An async mutex.
    Mutex,
    /// A wait queue.
    WaitQueue,
    /// A timer (one sleep).
    Timer,
    /// A task's join handle; only the joined task can signal it.
    Join,
    /// A channel between wasm instances.
    WasmChannel,
    /// A named stage of a task (`.frame("serve client")`): a task "waits" in it
    /// while it is parked inside it, which makes its await stack (since minor 2).
    Frame,
}

impl ResourceKind {
    /// Every kind, in wire order.
    pub const ALL: [ResourceKind; 9] = [
        ResourceKind::Channel,
        ResourceKind::Oneshot,
        ResourceKind::Semaphore,
        ResourceKind::Mutex,
        ResourceKind::WaitQueue,
        ResourceKind::Timer,
        ResourceKind::Join,
        ResourceKind::WasmChannel,
        ResourceKind::Frame,
    ];

    /// Short lowercase name, as views and exports show it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            ResourceKind::Channel => "chan",
            ResourceKind::Oneshot => "oneshot",
            ResourceKind::Semaphore => "sem",
            ResourceKind::Mutex => "mutex",
            ResourceKind::WaitQueue => "waitq",
            ResourceKind::Timer => "timer",
            ResourceKind::Join => "join",
            ResourceKind::WasmChannel => "wchan",
            ResourceKind::Frame => "frame",
        }
    }
}

/// What a waiting task asked a resource for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WaitOp {
    /// Receive a value.
    Recv,
    /// Room to send a value.
    Send,
    /// Permits.
    Acquire,
    /// A lock.
    Lock,
    /// A notification.
    Wait,
    /// A deadline.
    Sleep,
    /// Another task's end.
    Join,
    /// Parked inside a frame (a [`ResourceKind::Frame`]; since minor 2).
    Inside,
}

impl WaitOp {
    /// Every operation, in wire order.
    pub const ALL: [WaitOp; 8] = [
        WaitOp::Recv,
        WaitOp::Send,
        WaitOp::Acquire,
        WaitOp::Lock,
        WaitOp::Wait,
        WaitOp::Sleep,
        WaitOp::Join,
        WaitOp::Inside,
    ];

    /// Lowercase name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            WaitOp::Recv => "recv",
            WaitOp::Send => "send",
            WaitOp::Acquire => "acquire",
            WaitOp::Lock => "lock",
            WaitOp::Wait => "wait",
            WaitOp::Sleep => "sleep",
            WaitOp::Join => "join",
            WaitOp::Inside => "inside",
        }
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WaitOutcome {
    /// The resource granted what was asked (or closed, which also ends the wait).
    Ready,
    /// The waiting future was dropped.
    Cancelled,
    /// A deadline ran out first.
    TimedOut,
}

/// A resource was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceCreated<'a> {
    /// The resource.
    pub id: ResourceId,
    /// What it is.
    pub kind: ResourceKind,
    /// Name given at creation, may be empty.
    pub name: &'a str,
    /// Where it was created.
    pub location: Location<'a>,
    /// Values or permits it holds, where that applies.
    pub capacity: Option<u64>,
}

/// A resource was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDropped {
    /// The resource.
    pub id: ResourceId,
}

/// A task can never be woken again: the executor saw it pending with no waker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostWaker {
    /// The task.
    pub task: TaskId,
}

/// A task began waiting on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitBegin {
    /// The waiting task.
    pub task: TaskId,
    /// What it waits on.
    pub resource: ResourceId,
    /// What for.
    pub op: WaitOp,
}

/// A task's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitEnd {
    /// The task.
    pub task: TaskId,
    /// The resource it waited on.
    pub resource: ResourceId,
    /// How the wait ended.
    pub outcome: WaitOutcome,
}

/// What a CPU was doing when a [`Sample`] was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SampleContext {
    /// Polling a task (the sample names it).
    Task,
    /// In the scheduler, between polls.
    Scheduler,
    /// Halted with nothing to run.
    Idle,
    /// In another interrupt handler.
    Interrupt,
}

impl SampleContext {
    /// Every context, in wire order.
    pub const ALL: [SampleContext; 4] = [Self::Task, Self::Scheduler, Self::Idle, Self::Interrupt];

    /// Lowercase name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Scheduler => "scheduler",
            Self::Idle => "idle",
            Self::Interrupt => "interrupt",
        }
    }
}

/// One profiling sample of the CPU of the stream that carries it, taken from a timer
/// interrupt: where the CPU was and the return addresses of its frame-pointer chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    /// What the CPU was doing.
    pub context: SampleContext,
    /// The task being polled, if any.
    pub task: Option<TaskId>,
    /// The interrupted instruction pointer.
    pub pc: u64,
    /// Return addresses of the frame-pointer chain, innermost first (the caller of
    /// the function holding `pc` first).
    pub frames: Frames<'a>,
}

/// Host → kernel: sample every CPU `hz` times a second (0 turns sampling off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSampling {
    /// Samples per second per CPU; 0 = off.
    pub hz: u32,
}
