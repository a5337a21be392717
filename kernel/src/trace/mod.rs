//! The trace layer: executor hooks encode events into per-CPU frame encoders
//! (no allocation, no lock shared between CPUs, no blocking); full or aged frames
//! are sealed into per-CPU rings; the [`drain`] task moves sealed frames to the
//! `lucid.trace` virtio-serial port. Every event that cannot be kept is counted,
//! and the counts go out as `Loss` and `EventCounts` messages.
//!
//! Each CPU has two encoders: one for task context and one for interrupt context
//! (a wake from an interrupt handler must not touch a frame the interrupted code
//! is in the middle of). Encoders are touched only by their CPU with interrupts
//! disabled, and a re-entrancy flag drops (and counts) anything traced from inside
//! the tracer itself.

pub mod drain;
pub mod subscriber;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

use lucid_executor::{Hooks, Outcome, PanicLocation, PollResult, SpawnInfo, TaskId, TaskKind, TaskPanic, TaskStats};
use lucid_protocol::{self as proto, Message, Ring, StreamId};
use spin::Once;

use crate::arch::{self, percpu};
use lucid_trace::EncodeFn;
pub use lucid_trace::Producer;

/// Raw bytes per frame: large enough to amortise framing, small enough to seal fast.
pub const FRAME_BYTES: usize = 4096;
/// Largest sealed (COBS-encoded, delimited) frame.
pub const SEALED_MAX: usize = lucid_trace::sealed_max(FRAME_BYTES);
/// Sealed-frame ring per CPU and context.
const RING_BYTES: usize = 512 * 1024;

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
                task: Producer::new(StreamId::new(c, Ring::Task), FRAME_BYTES, RING_BYTES),
                irq: Producer::new(StreamId::new(c, Ring::Interrupt), FRAME_BYTES, RING_BYTES),
            })
            .collect()
    });
    // Seal a partly filled frame after 2 ms, so a quiet CPU's events still flow.
    for producers in CPUS.get().into_iter().flatten() {
        producers.task.set_seal_age(crate::time::tsc_hz() / 500);
        producers.irq.set_seal_age(crate::time::tsc_hz() / 500);
    }
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
}

/// Pauses recording (events are counted as dropped, nothing else is done for them) or
/// resumes it; no effect while tracing is off.
pub fn set_paused(paused: bool) {
    let (from, to) = if paused {
        (RECORDING, PAUSED)
    } else {
        (PAUSED, RECORDING)
    };
    let _ = STATE.compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed);
}

/// Runs `f` on the current CPU's producer for the current context, with interrupts
/// disabled; does nothing (and reads no clock) while tracing is off.
#[inline]
fn with_producer(f: impl FnOnce(&Producer)) {
    let state = STATE.load(Ordering::Relaxed);
    if state == OFF {
        return;
    }
    let _irq = arch::InterruptGuard::new();
    // SAFETY: tracing is enabled only once every CPU has set up its per-CPU block
    // (the drain starts after SMP bring-up), so GS is valid here.
    let cpu = unsafe { percpu::current_unchecked() };
    let Some(producers) = cpus().get(cpu.index as usize) else {
        return;
    };
    let producer = if cpu.interrupt_depth.load(Ordering::Relaxed) > 0 {
        &producers.irq
    } else {
        &producers.task
    };
    if state == PAUSED {
        // SAFETY: this CPU's producer for this context, interrupts disabled.
        unsafe { producer.skip() };
        return;
    }
    f(producer);
}

/// Records `encode` on the current CPU's producer for the current context, stamped
/// with the poll's time inside a poll, else with a fresh clock read.
fn emit(encode: EncodeFn<'_>) {
    with_producer(|producer| {
        // SAFETY: this CPU's producer for this context, interrupts disabled.
        unsafe {
            let ts = producer.event_time(arch::rdtsc);
            producer.record(ts, encode);
        }
    });
}

/// Records a message that is not an executor event (wasm instance state) on the
/// current CPU's producer.
pub fn message(msg: &Message<'_>) {
    emit(&|e, ts| e.push(ts, msg));
}

/// Seals the current CPU's open frames (before it idles, or before the drain reads).
pub fn seal_current_cpu() {
    let _irq = arch::InterruptGuard::new();
    if let Some(cpu) = percpu::try_current()
        && let Some(producers) = cpus().get(cpu.index as usize)
    {
        // SAFETY: this CPU's producers, interrupts disabled.
        unsafe {
            producers.task.seal_now();
            producers.irq.seal_now();
        }
    }
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
        // SAFETY: this CPU's producer for this context, interrupts disabled.
        let now = unsafe { producer.event_time(arch::rdtsc) };
        if now < RUN_QUEUE_WINDOW_END[cpu].load(Ordering::Relaxed) {
            RUN_QUEUE_PEAK[cpu].store(peak, Ordering::Relaxed);
            return;
        }
        RUN_QUEUE_PEAK[cpu].store(0, Ordering::Relaxed);
        RUN_QUEUE_WINDOW_END[cpu].store(now + crate::time::tsc_hz() / RUN_QUEUE_WINDOWS_PER_S, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { producer.record(now, &|e, ts| e.push(ts, &Message::RunQueueDepth { depth: peak })) };
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
        PollResult::Pending | PollResult::PendingSchedule => proto::PollResult::Pending,
    }
}

/// The executor hooks that feed the trace.
#[derive(Debug)]
pub struct TraceHooks;

impl Hooks for TraceHooks {
    fn on_spawn(&self, info: &SpawnInfo<'_>) {
        if !traced(info.id) {
            return;
        }
        with_producer(|producer| {
            // SAFETY: this CPU's producer for this context, interrupts disabled.
            let now = unsafe { producer.event_time(arch::rdtsc) };
            info.stats.spawned(now);
            let encode: EncodeFn<'_> = &|e, ts| {
                e.push(
                    ts,
                    &Message::TaskSpawned(proto::TaskSpawned {
                        task: wire_task(info.id),
                        name: info.name.unwrap_or(""),
                        kind: task_kind(info.kind),
                        location: proto::Location {
                            file: info.location.file(),
                            line: info.location.line(),
                            column: info.location.column(),
                        },
                        parent: info.parent.map(wire_task),
                    }),
                )
            };
            // SAFETY: as above.
            unsafe { producer.record(now, encode) };
        });
    }

    fn on_poll_start(&self, _cpu: usize, task: TaskId, stats: &TaskStats) {
        with_producer(|producer| {
            if !traced(task) {
                // SAFETY: this CPU's producer for this context, interrupts disabled.
                unsafe { producer.time_passes() };
                return;
            }
            // SAFETY: as above.
            unsafe {
                let now = producer.poll_start_time(arch::rdtsc);
                stats.poll_started(now);
                producer.record(now, &|e, ts| e.poll_start(ts, wire_task(task)));
            }
        });
    }

    fn on_poll_end(&self, _cpu: usize, task: TaskId, result: PollResult, stats: &TaskStats) {
        with_producer(|producer| {
            if !traced(task) {
                // SAFETY: this CPU's producer for this context, interrupts disabled.
                unsafe { producer.time_passes() };
                return;
            }
            // SAFETY: as above.
            unsafe {
                let now = producer.poll_end_time(arch::rdtsc);
                stats.poll_ended(now);
                producer.record(now, &|e, ts| e.poll_end(ts, wire_task(task), poll_result(result)));
            }
        });
    }

    fn on_wake(&self, task: TaskId, by_ref: bool, self_wake: bool, waker: Option<TaskId>, stats: &TaskStats) {
        if !traced(task) {
            return;
        }
        let waker = match waker {
            Some(t) => proto::Waker::Task(wire_task(t)),
            None if arch::idt::in_interrupt() => proto::Waker::Interrupt(0),
            None => proto::Waker::None,
        };
        with_producer(|producer| {
            // SAFETY: this CPU's producer for this context, interrupts disabled.
            unsafe {
                let now = producer.event_time(arch::rdtsc);
                stats.woken(now);
                producer.record(now, &|e, ts| {
                    e.push(
                        ts,
                        &Message::Wake {
                            task: wire_task(task),
                            waker,
                            by_ref,
                            self_wake,
                        },
                    )
                });
            }
        });
    }

    fn on_waker_clone(&self, task: TaskId, count: usize) {
        if traced(task) {
            emit(&|e, ts| {
                e.push(
                    ts,
                    &Message::WakerClone {
                        task: wire_task(task),
                        wakers: count as u64,
                    },
                )
            });
        }
    }

    fn on_waker_drop(&self, task: TaskId, count: usize) {
        if traced(task) {
            emit(&|e, ts| {
                e.push(
                    ts,
                    &Message::WakerDrop {
                        task: wire_task(task),
                        wakers: count as u64,
                    },
                )
            });
        }
    }

    fn on_join_waiting(&self, task: TaskId) {
        if !traced(task) {
            return;
        }
        let waiter = sched_current_task().map_or(proto::TaskId(0), wire_task);
        emit(&|e, ts| {
            e.push(
                ts,
                &Message::JoinWaiting {
                    task: wire_task(task),
                    waiter,
                },
            )
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
        emit(&|e, ts| {
            e.push(
                ts,
                &Message::TaskCompleted {
                    task: wire_task(task),
                    outcome,
                },
            )
        });
    }

    fn on_drop(&self, task: TaskId) {
        if traced(task) {
            emit(&|e, ts| e.push(ts, &Message::TaskDropped { task: wire_task(task) }));
        }
    }

    fn on_steal(&self, task: TaskId, from: usize, to: usize) {
        if traced(task) {
            emit(&|e, ts| {
                e.push(
                    ts,
                    &Message::Steal {
                        task: wire_task(task),
                        from_cpu: from as u32,
                        to_cpu: to as u32,
                    },
                )
            });
        }
    }

    fn on_idle(&self, _cpu: usize, entering: bool) {
        with_producer(|producer| {
            // SAFETY: this CPU's producer for this context, interrupts disabled.
            unsafe {
                producer.time_passes();
                let ts = producer.event_time(arch::rdtsc);
                let msg = if entering { Message::CpuIdle } else { Message::CpuBusy };
                producer.record(ts, &|e, ts| e.push(ts, &msg));
                if entering {
                    // Time passes while the CPU idles: the first poll after it reads
                    // the clock again.
                    producer.time_passes();
                }
            }
        });
        if entering {
            seal_current_cpu();
        }
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
        emit(&|e, ts| {
            e.push(
                ts,
                &Message::TaskPanicked(proto::TaskPanicked {
                    task: wire_task(task),
                    message: &message[..end],
                    location: location.map(|at| proto::Location {
                        file: &at.file,
                        line: at.line,
                        column: at.column,
                    }),
                }),
            )
        });
    }
    match location {
        Some(at) => log::error!("task {} `{name}` panicked at {at}: {message}", task.as_u64()),
        None => log::error!("task {} `{name}` panicked: {message}", task.as_u64()),
    }
}
