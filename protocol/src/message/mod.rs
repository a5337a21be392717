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
//!
//! # Adding a message
//!
//! One row in the table below: its fields, its code, its name. A compact message
//! needs nothing else (unless its layout is not one varint per field); an extended one
//! needs its struct in `types.rs`, which postcard lays out (or, for a struct with
//! lists, one line in `fields_body!` in `codec.rs`). Codes never change: the golden
//! vectors pin them; compact codes 28..=31 are free for later minor versions.

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::wire::{Reader, Writer};

mod codec;
mod frames;
mod list;
mod names;
#[cfg(any(test, feature = "alloc"))]
mod owned;
mod table;
mod types;

use codec::{Compact, CompactField, ExtendedCodec, Fields, Postcard, compact, need, poll_end, wake, write_extended};
pub use codec::{CompactRecord, SelfWakes};
pub(crate) use codec::{compact_tag, read_record, write_detached};
use frames::SampleBody;
pub use frames::{Frames, FramesIter};
pub use list::{List, ListItem, ListIter, Value};
pub use names::*;
#[cfg(any(test, feature = "alloc"))]
pub use owned::OwnedMessage;
pub use types::*;

table::messages! {
    /// Protocol version and kernel facts.
    Hello(Hello<'a>) = extended(0, Postcard), "hello";
    /// Callsite registration (sent once per callsite).
    Callsite(Callsite<'a>) = extended(1, Fields), "callsite";
    /// A task was spawned.
    TaskSpawned(TaskSpawned<'a>) = extended(2, Postcard), "task_spawned";
    /// A poll began.
    PollStart {
        /// The task polled.
        task: TaskId,
    } = compact(0), "poll_start";
    /// A poll ended.
    PollEnd {
        /// The task polled.
        task: TaskId,
        /// What the poll returned.
        result: PollResult,
    } = custom(1 | 2 | 28, poll_end), "poll_end";
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
    } = custom(3, wake), "wake";
    /// A waker was cloned.
    WakerClone {
        /// The task the waker wakes.
        task: TaskId,
        /// Live wakers after the clone.
        wakers: u64,
    } = compact(4), "waker_clone";
    /// A waker was dropped.
    WakerDrop {
        /// The task the waker wakes.
        task: TaskId,
        /// Live wakers after the drop.
        wakers: u64,
    } = compact(5), "waker_drop";
    /// A task awaits another's join handle.
    JoinWaiting {
        /// The task joined.
        task: TaskId,
        /// The task waiting.
        waiter: TaskId,
    } = compact(6), "join_waiting";
    /// A task finished.
    TaskCompleted {
        /// The task.
        task: TaskId,
        /// How.
        outcome: Outcome,
    } = compact(7), "task_completed";
    /// A task's storage was freed.
    TaskDropped {
        /// The task.
        task: TaskId,
    } = compact(8), "task_dropped";
    /// A task moved between CPUs.
    Steal {
        /// The task.
        task: TaskId,
        /// Victim CPU.
        from_cpu: u32,
        /// Thief CPU.
        to_cpu: u32,
    } = compact(9), "steal";
    /// The CPU has nothing to run.
    CpuIdle = compact(10), "cpu_idle";
    /// The CPU has work again.
    CpuBusy = compact(11), "cpu_busy";
    /// Periodic run-queue depth sample.
    RunQueueDepth {
        /// Tasks queued.
        depth: u32,
    } = compact(12), "run_queue_depth";
    /// A tracing event.
    TraceEvent(TraceEvent<'a>) = extended(3, Fields), "trace_event";
    /// A span was created.
    SpanNew(SpanNew<'a>) = extended(4, Fields), "span_new";
    /// A span was entered.
    SpanEnter {
        /// The span.
        span: SpanId,
    } = compact(13), "span_enter";
    /// A span was exited.
    SpanExit {
        /// The span.
        span: SpanId,
    } = compact(14), "span_exit";
    /// A span was closed.
    SpanClose {
        /// The span.
        span: SpanId,
    } = compact(15), "span_close";
    /// Events discarded since the last report on this CPU's ring.
    Loss {
        /// CPU whose ring overflowed.
        cpu: u32,
        /// Which ring.
        ring: Ring,
        /// Events discarded.
        count: u64,
    } = compact(16), "loss";
    /// The kernel is alive.
    Heartbeat = compact(17), "heartbeat";
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
    } = compact(18), "event_counts";
    /// A wasm instance was created.
    WasmInstanceCreated(WasmInstanceCreated<'a>) = extended(5, Postcard), "wasm_instance_created";
    /// A wasm instance changed state.
    WasmStateChanged {
        /// The instance.
        instance: InstanceId,
        /// Its new state.
        state: WasmState,
        /// What the state is about (see [`WasmState`]'s variants; 0 if nothing).
        /// Streams from before it existed carry two fields: it reads as 0.
        detail: u64 = 0,
    } = compact(22), "wasm_state_changed";
    /// A wasm instance's memory grew.
    WasmMemoryGrow {
        /// The instance.
        instance: InstanceId,
        /// Pages before.
        old_pages: u32,
        /// Pages after.
        new_pages: u32,
    } = compact(20), "wasm_memory_grow";
    /// Fuel and slices a wasm instance used in one poll.
    WasmPoll {
        /// The instance.
        instance: InstanceId,
        /// Fuel consumed.
        fuel: u64,
        /// Slices run.
        slices: u32,
    } = compact(19), "wasm_poll";
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
    } = compact(21), "wasm_hostcalls";
    /// A wasm instance trapped.
    WasmTrap(WasmTrap<'a>) = extended(6, Postcard), "wasm_trap";
    /// A snapshot answer begins.
    SnapshotBegin {
        /// The request it answers.
        request: u64,
    } = compact(23), "snapshot_begin";
    /// A snapshot answer is complete.
    SnapshotEnd {
        /// The request it answers.
        request: u64,
    } = compact(24), "snapshot_end";
    /// One live task of a snapshot.
    TaskSnapshot(TaskSnapshot<'a>) = extended(7, Postcard), "task_snapshot";
    /// One live wasm instance of a snapshot.
    WasmInstanceSnapshot(WasmInstanceSnapshot<'a>) = extended(8, Postcard), "wasm_instance_snapshot";
    /// Host → kernel: set a level filter.
    SetLevelFilter(SetLevelFilter<'a>) = extended(9, Postcard), "set_level_filter";
    /// Host → kernel: stop streaming (events are counted as lost).
    Pause = compact(25), "pause";
    /// Host → kernel: resume streaming.
    Resume = compact(26), "resume";
    /// Host → kernel: send a full state snapshot.
    RequestSnapshot {
        /// Echoed in the answer's [`Message::SnapshotBegin`]/[`Message::SnapshotEnd`].
        request: u64,
    } = compact(27), "request_snapshot";
    /// A task's poll panicked and the panic was contained; its `TaskCompleted` with
    /// outcome `Panicked` follows.
    TaskPanicked(TaskPanicked<'a>) = extended(10, Postcard), "task_panicked";
    /// A resource tasks can wait on (channel, semaphore, timer, join handle…) was
    /// created.
    ResourceCreated(ResourceCreated<'a>) = extended(11, Postcard), "resource_created";
    /// A resource was dropped.
    ResourceDropped(ResourceDropped) = extended(12, Postcard), "resource_dropped";
    /// A task got `Pending` from a resource and waits on it (sent only on the path
    /// that waits).
    WaitBegin(WaitBegin) = extended(13, Postcard), "wait_begin";
    /// A task's wait on a resource ended.
    WaitEnd(WaitEnd) = extended(14, Postcard), "wait_end";
    /// A task's poll returned `Pending` and it has no waker left and no wake or
    /// cancellation pending, or its last waker was dropped while it was so: nothing
    /// can ever wake it. The executor decides this itself, from its own atomic state,
    /// so the verdict needs no cross-CPU ordering of the stream (since minor 1).
    LostWaker(LostWaker) = extended(15, Postcard), "lost_waker";
    /// A wasm instance ended having written to stderr: its last lines (sent after
    /// its final `WasmStateChanged`).
    WasmStderrTail(WasmStderrTail<'a>) = extended(16, Postcard), "wasm_stderr_tail";
    /// A wasm instance's WASI arguments and environment (sent after its
    /// `WasmInstanceCreated` when it has any, and in a snapshot answer).
    WasmInstanceArgs(WasmInstanceArgs<'a>) = extended(17, Postcard), "wasm_instance_args";
    /// A profiling sample of this CPU (on its interrupt stream).
    Sample(Sample<'a>) = extended(18, SampleBody), "sample";
    /// Host → kernel: set the sampling rate (0 = off).
    SetSampling(SetSampling) = extended(19, Postcard), "set_sampling";
    /// Where one function of a loaded wasm module's code lies (in snapshot answers).
    WasmFunction(WasmFunction<'a>) = extended(20, Postcard), "wasm_function";
    /// Operations done on a resource since its last report (periodic deltas).
    ResourceOps(ResourceOps) = extended(21, Postcard), "resource_ops";
    /// Who holds the handles that can signal a resource (when it changes, and in
    /// snapshot answers).
    Holders(Holders) = extended(22, Postcard), "holders";
}
