//! The trace layer: executor hooks write fixed-size records with plain stores into
//! per-CPU rings (no allocation, no lock, no locked instruction, no blocking; one
//! clock read per poll boundary); the [`drain`] task turns the records into protocol
//! frames (varints, CRC, COBS) and moves them to the `lucid.trace` virtio-serial
//! port. Every event that cannot be kept is counted, and the counts go out as `Loss`
//! and `EventCounts` messages.
//!
//! Each CPU has two producers: one for task context and one for interrupt context
//! (an interrupt handler must not touch a record the interrupted code is in the
//! middle of). The task-context producer is private to its CPU's task context, which
//! no interrupt handler touches and which is never preempted, so it is written with
//! interrupts enabled; the interrupt-context producer is written with interrupts
//! disabled (a nested handler would otherwise share it).

pub mod drain;
pub mod resources;
pub mod subscriber;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

use lucid_executor::{Hooks, Outcome, PanicLocation, PollResult, SpawnInfo, TaskId, TaskKind, TaskPanic, TaskStats};
use lucid_protocol::{self as proto, Message, Ring, StreamId};
use spin::Once;

use crate::arch::{self, percpu};
pub use lucid_trace::Producer;
use lucid_trace::{Event, Slot};

/// Raw bytes per frame: large enough to amortise framing, small enough to seal fast.
pub const FRAME_BYTES: usize = 4096;
/// Largest sealed (COBS-encoded, delimited) frame.
pub const SEALED_MAX: usize = lucid_trace::sealed_max(FRAME_BYTES);
/// Record ring per CPU for task context (2 MiB: 64 Ki records, about 30 ms of the
/// busiest host benchmark's events between two drain passes).
const TASK_RING_SLOTS: usize = (2 << 20) / core::mem::size_of::<Slot>();
/// Record ring per CPU for interrupt context (wakes from handlers, rarer).
const IRQ_RING_SLOTS: usize = (256 << 10) / core::mem::size_of::<Slot>();

/// A CPU's two producers.
pub struct CpuTrace {
    /// Task context.
    pub task: Producer,
    /// Interrupt context.
    pub irq: Producer,
}

impl core::fmt::Debug for CpuTrace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CpuTrace").finish_non_exhaustive()
    }
}

static CPUS: Once<Vec<CpuTrace>> = Once::new();
/// [`OFF`], [`RECORDING`] or [`PAUSED`]: one load decides a hook's path.
static STATE: AtomicU8 = AtomicU8::new(OFF);
/// Nothing is recorded or counted (before the drain starts, after it finishes).
const OFF: u8 = 0;
/// Events are recorded.
const RECORDING: u8 = 1;
/// The host paused the stream: events are counted as dropped, with no clock read.
const PAUSED: u8 = 2;
/// The drain task's id: its own activity is not traced (it would never quiesce).
static DRAIN_TASK: AtomicU64 = AtomicU64::new(u64::MAX);

/// Sets up producers for `cpus` CPUs.
pub fn init(cpus: usize) {
    CPUS.call_once(|| {
        (0..cpus as u32)
            .map(|c| CpuTrace {
                task: Producer::new(StreamId::new(c, Ring::Task), FRAME_BYTES, TASK_RING_SLOTS),
                irq: Producer::new(StreamId::new(c, Ring::Interrupt), FRAME_BYTES, IRQ_RING_SLOTS),
            })
            .collect()
    });
    lucid_executor::resource::install(&resources::HOOKS);
}

/// The producers of every CPU.
pub fn cpus() -> &'static [CpuTrace] {
    CPUS.get().map_or(&[], |v| v.as_slice())
}

/// True while events are recorded.
pub fn is_enabled() -> bool {
    STATE.load(Ordering::Relaxed) == RECORDING
}

/// Starts or stops recording events.
pub fn set_enabled(on: bool) {
    STATE.store(if on { RECORDING } else { OFF }, Ordering::Release);
    sync_hook_gate();
}

/// Pauses recording or resumes it; no effect while tracing is off.
///
/// While paused the executor calls no hook at all (its hook gate is closed), so a
/// paused trace costs a poll one load per call site. What the executor did meanwhile
/// is counted from its per-CPU counters when the trace resumes, as events each CPU
/// produced and dropped (see [`executor_events`]); messages other than executor events
/// (logs, resource waits) are counted one by one as they are skipped. Both edges are
/// ordered so that an event in flight there may be counted twice but never missed.
pub fn set_paused(paused: bool) {
    if paused {
        if STATE
            .compare_exchange(RECORDING, PAUSED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            note_executor_events(|cpu, events| PAUSED_AT[cpu].store(events, Ordering::Relaxed));
            sync_hook_gate();
        }
    } else if STATE.load(Ordering::Relaxed) == PAUSED {
        if let Some(rt) = crate::sched::try_runtime() {
            rt.set_hooks_enabled(true);
        }
        note_executor_events(|cpu, events| {
            let skipped = events.saturating_sub(PAUSED_AT[cpu].load(Ordering::Relaxed));
            if let Some(producers) = cpus().get(cpu) {
                producers.task.count_paused(skipped);
            }
        });
        let _ = STATE.compare_exchange(PAUSED, RECORDING, Ordering::AcqRel, Ordering::Relaxed);
        sync_hook_gate();
    }
}

/// Per CPU: [`executor_events`] when the trace was paused.
static PAUSED_AT: [AtomicU64; percpu::MAX_CPUS] = [const { AtomicU64::new(0) }; percpu::MAX_CPUS];

/// The executor calls its hooks only while events are recorded.
pub(crate) fn sync_hook_gate() {
    if let Some(rt) = crate::sched::try_runtime() {
        rt.set_hooks_enabled(STATE.load(Ordering::Acquire) == RECORDING);
    }
}

/// Hands `f` each CPU's [`executor_events`] now.
fn note_executor_events(mut f: impl FnMut(usize, u64)) {
    if let Some(rt) = crate::sched::try_runtime() {
        for (cpu, scheduler) in rt.schedulers().iter().enumerate().take(percpu::MAX_CPUS) {
            f(cpu, executor_events(&scheduler.counters()));
        }
    }
}

/// The executor events a CPU's counters stand for: what the trace records for them
/// (a poll's start and end, a wake, a spawn, a completion, a steal, an idle period's
/// two edges). Waker clones and drops, join waits and task frees have no counter, so
/// a pause does not count them.
fn executor_events(c: &lucid_executor::SchedulerCounters) -> u64 {
    2 * c.polls + c.wakes_local + c.wakes_remote + c.spawns + c.completions + c.steals + 2 * c.idles
}

/// Runs `f` on the current CPU's producer for the current context (interrupts
/// disabled for the interrupt-context one); does nothing (and reads no clock) while
/// tracing is off, and only counts the event while it is paused.
#[inline]
fn with_producer(f: impl FnOnce(&Producer)) {
    let state = STATE.load(Ordering::Relaxed);
    if state == OFF {
        return;
    }
    // SAFETY: tracing is enabled only once every CPU has set up its per-CPU block
    // (the drain starts after SMP bring-up), so GS is valid here.
    let cpu = unsafe { percpu::current_unchecked() };
    let Some(producers) = cpus().get(cpu.index as usize) else {
        return;
    };
    if cpu.interrupt_depth.load(Ordering::Relaxed) > 0 {
        // A nested handler (an exception inside an interrupt) would share this one.
        let _irq = arch::InterruptGuard::new();
        run(&producers.irq, state, f);
    } else {
        run(&producers.task, state, f);
    }
}

#[inline]
fn run(producer: &Producer, state: u8, f: impl FnOnce(&Producer)) {
    if state == PAUSED {
        // SAFETY: this CPU's producer for this context (see `with_producer`).
        unsafe { producer.skip() };
        return;
    }
    f(producer);
}

/// Records a message that is not an executor event (logs, spans, wasm instance
/// state) on the current CPU's producer. Such messages are encoded where they happen
/// (they are rare); executor events are fixed-size records encoded by the drain.
pub fn message(msg: &Message<'_>) {
    // SAFETY: this CPU's producer for this context, chosen by `with_producer`: the
    // contract of `Producer`'s methods.
    with_producer(|producer| unsafe {
        producer.message(msg, arch::rdtsc);
    });
}

/// Records that `task` began waiting on resource `resource` for an operation (`Ok`)
/// or that its wait ended (`Err`), as one fixed-size record.
pub(crate) fn wait(task: u64, resource: u64, what: Result<proto::WaitOp, proto::WaitOutcome>) {
    // SAFETY: this CPU's producer for this context, chosen by `with_producer`: the
    // contract of `Producer`'s methods.
    with_producer(|producer| unsafe {
        producer.wait(task, resource, what, arch::rdtsc);
    });
}

/// Run-queue depth is reported once per window per CPU: the peak depth seen at the
/// CPU's scheduling steps in it (a burst that is drained within the window still
/// shows), on the CPU's own producer.
const RUN_QUEUE_WINDOWS_PER_S: u64 = 100;
/// Per CPU: the peak depth of the current window, and the TSC at which it ends.
/// Each is touched only by its own CPU.
static RUN_QUEUE_PEAK: [AtomicU32; percpu::MAX_CPUS] = [const { AtomicU32::new(0) }; percpu::MAX_CPUS];
static RUN_QUEUE_WINDOW_END: [AtomicU64; percpu::MAX_CPUS] = [const { AtomicU64::new(0) }; percpu::MAX_CPUS];

/// Notes that `cpu`'s run queue holds `depth` tasks at one of its scheduling steps;
/// at the end of a window, sends the window's peak.
pub fn sample_run_queue(cpu: usize, depth: usize) {
    if !is_enabled() || cpu >= percpu::MAX_CPUS {
        return;
    }
    let peak = RUN_QUEUE_PEAK[cpu]
        .load(Ordering::Relaxed)
        .max(u32::try_from(depth).unwrap_or(u32::MAX));
    // The read is made through the producer, so the next poll start shares it.
    with_producer(|producer| {
        // SAFETY: this CPU's producer for this context (see `with_producer`).
        let now = unsafe { producer.event_time(arch::rdtsc) };
        if now < RUN_QUEUE_WINDOW_END[cpu].load(Ordering::Relaxed) {
            RUN_QUEUE_PEAK[cpu].store(peak, Ordering::Relaxed);
            return;
        }
        RUN_QUEUE_PEAK[cpu].store(0, Ordering::Relaxed);
        RUN_QUEUE_WINDOW_END[cpu].store(now + crate::time::tsc_hz() / RUN_QUEUE_WINDOWS_PER_S, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { producer.event(Event::RunQueueDepth { depth: peak }, arch::rdtsc) };
    });
}

fn task_kind(kind: TaskKind) -> proto::TaskKind {
    match kind {
        TaskKind::Kernel => proto::TaskKind::Kernel,
        TaskKind::Wasm => proto::TaskKind::Wasm,
    }
}

/// The executor's task id as the trace protocol carries it.
pub(crate) fn wire_task(task: TaskId) -> proto::TaskId {
    proto::TaskId(task.as_u64())
}

fn traced(task: TaskId) -> bool {
    task.as_u64() != DRAIN_TASK.load(Ordering::Relaxed)
}

fn poll_result(r: PollResult) -> proto::PollResult {
    match r {
        PollResult::Ready | PollResult::ReadyJoined => proto::PollResult::Ready,
        PollResult::Pending => proto::PollResult::Pending,
        PollResult::PendingSchedule => proto::PollResult::PendingWoken,
    }
}

/// The executor hooks that feed the trace.
#[derive(Debug)]
pub struct TraceHooks;

// Every hook body runs inside `with_producer`, which hands it this CPU's producer for
// this context: the contract of `Producer`'s unsafe methods.
impl Hooks for TraceHooks {
    fn on_spawn(&self, info: &SpawnInfo<'_>) {
        if !traced(info.id) {
            return;
        }
        // SAFETY: see above.
        with_producer(|producer| unsafe {
            let now = producer.spawned(
                info.id.as_u64(),
                info.parent.map(TaskId::as_u64),
                info.kind == TaskKind::Wasm,
                info.name.unwrap_or(""),
                info.location,
                arch::rdtsc,
            );
            info.stats.spawned(now);
        });
    }

    fn on_poll_start(&self, _cpu: usize, task: TaskId, stats: &TaskStats) {
        // SAFETY: see above.
        with_producer(|producer| unsafe {
            if traced(task) {
                stats.poll_started(producer.poll_start(task.as_u64(), arch::rdtsc));
            } else {
                producer.time_passes();
            }
        });
    }

    fn on_poll_end(&self, _cpu: usize, task: TaskId, result: PollResult, stats: &TaskStats) {
        // SAFETY: see above.
        with_producer(|producer| unsafe {
            if traced(task) {
                stats.poll_ended(producer.poll_end(task.as_u64(), poll_result(result), arch::rdtsc));
            } else {
                producer.time_passes();
            }
        });
    }

    fn on_wake(&self, task: TaskId, by_ref: bool, self_wake: bool, waker: Option<TaskId>, stats: &TaskStats) {
        if !traced(task) {
            return;
        }
        // SAFETY: see above.
        with_producer(|producer| unsafe {
            let waker = match waker {
                Some(t) => proto::Waker::Task(wire_task(t)),
                None if arch::idt::in_interrupt() => proto::Waker::Interrupt(0),
                None => proto::Waker::None,
            };
            stats.woken(producer.wake(task.as_u64(), waker, by_ref, self_wake, arch::rdtsc));
        });
    }

    fn on_waker_clone(&self, task: TaskId, count: usize) {
        if traced(task) {
            // SAFETY: see above.
            with_producer(|producer| unsafe {
                producer.waker_count(task.as_u64(), count as u64, true, arch::rdtsc);
            });
        }
    }

    fn on_waker_drop(&self, task: TaskId, count: usize) {
        if traced(task) {
            // SAFETY: see above.
            with_producer(|producer| unsafe {
                producer.waker_count(task.as_u64(), count as u64, false, arch::rdtsc);
            });
        }
    }

    fn on_lost_waker(&self, task: TaskId) {
        if traced(task) {
            // SAFETY: see above.
            with_producer(|producer| unsafe {
                producer.event(Event::LostWaker { task: task.as_u64() }, arch::rdtsc);
            });
        }
    }

    fn on_join_waiting(&self, task: TaskId) {
        if !traced(task) {
            return;
        }
        let waiter = sched_current_task().map_or(0, TaskId::as_u64);
        // SAFETY: see above.
        with_producer(|producer| unsafe {
            producer.event(
                Event::JoinWaiting {
                    task: task.as_u64(),
                    waiter,
                },
                arch::rdtsc,
            );
        });
    }

    fn on_task_panicked(&self, _cpu: usize, task: TaskId, panic: &TaskPanic) {
        task_panicked(task, &panic.message, panic.location.as_ref());
    }

    fn on_complete(&self, _cpu: usize, task: TaskId, outcome: Outcome) {
        if !traced(task) {
            return;
        }
        let outcome = match outcome {
            Outcome::Ok => proto::Outcome::Ok,
            Outcome::Cancelled => proto::Outcome::Cancelled,
            Outcome::Panicked => proto::Outcome::Panicked,
        };
        // SAFETY: see above.
        with_producer(|producer| unsafe {
            producer.event(
                Event::TaskCompleted {
                    task: task.as_u64(),
                    outcome,
                },
                arch::rdtsc,
            );
        });
    }

    fn on_drop(&self, task: TaskId) {
        if traced(task) {
            // SAFETY: see above.
            with_producer(|producer| unsafe {
                producer.event(Event::TaskDropped { task: task.as_u64() }, arch::rdtsc);
            });
        }
    }

    fn on_steal(&self, task: TaskId, from: usize, to: usize) {
        if traced(task) {
            // SAFETY: see above.
            with_producer(|producer| unsafe {
                producer.event(
                    Event::Steal {
                        task: task.as_u64(),
                        from: from as u32,
                        to: to as u32,
                    },
                    arch::rdtsc,
                );
            });
        }
    }

    fn on_idle(&self, _cpu: usize, entering: bool) {
        // SAFETY: see above.
        with_producer(|producer| unsafe {
            // Time passes while the CPU idles: the events on either side read the clock.
            producer.time_passes();
            producer.event(if entering { Event::CpuIdle } else { Event::CpuBusy }, arch::rdtsc);
            if entering {
                producer.time_passes();
            }
        });
    }
}

fn sched_current_task() -> Option<TaskId> {
    crate::sched::try_runtime().and_then(|rt| rt.current_task())
}

/// The hooks instance to hand the executor.
pub static HOOKS: TraceHooks = TraceHooks;

/// Longest panic message the trace carries; a longer one is cut at a character
/// boundary, so the record always fits in a frame.
const MAX_PANIC_MESSAGE: usize = 512;

/// A task's panic was contained: `task` ends as panicked with `message`, raised
/// at `location`. Reported as a `TaskPanicked` trace event and an error-level kernel
/// log line (COM1 and the trace); the task's `TaskCompleted` follows with outcome
/// `Panicked`.
pub fn task_panicked(task: TaskId, message: &str, location: Option<&PanicLocation>) {
    let name = crate::sched::try_runtime()
        .and_then(|rt| rt.current_task_info())
        .filter(|t| t.id == task)
        .and_then(|t| t.name);
    let name = name.unwrap_or("<unnamed>");
    if traced(task) {
        let mut end = message.len().min(MAX_PANIC_MESSAGE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        self::message(&Message::TaskPanicked(proto::TaskPanicked {
            task: wire_task(task),
            message: &message[..end],
            location: location.map(|at| proto::Location {
                file: &at.file,
                line: at.line,
                column: at.column,
            }),
        }));
    }
    match location {
        Some(at) => log::error!("task {} `{name}` panicked at {at}: {message}", task.as_u64()),
        None => log::error!("task {} `{name}` panicked: {message}", task.as_u64()),
    }
}
