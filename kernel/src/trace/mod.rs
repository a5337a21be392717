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
mod ring;

use alloc::{boxed::Box, vec::Vec};
use core::{
    cell::UnsafeCell,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use lucid_executor::{Hooks, Outcome, PollResult, SpawnInfo, TaskId, TaskKind};
use lucid_protocol::{self as proto, EncodeError, FrameEncoder, Message, Ring, StreamId};
use spin::Once;

use crate::arch::{self, percpu};
pub use ring::FrameRing;

/// Raw bytes per frame: large enough to amortise framing, small enough to seal fast.
pub const FRAME_BYTES: usize = 4096;
/// Largest sealed (COBS-encoded, delimited) frame.
pub const SEALED_MAX: usize = lucid_protocol::cobs_max_encoded_len(FRAME_BYTES) + 1;
/// Sealed-frame ring per CPU and context.
const RING_BYTES: usize = 512 * 1024;
/// A partly filled frame is sealed once it is this old (TSC ticks set at init).
static SEAL_AGE_TICKS: AtomicU64 = AtomicU64::new(u64::MAX);

type Encoder = FrameEncoder<Box<[u8]>>;
/// Encodes one event into an encoder (called again after sealing if the frame was full).
type EncodeFn<'a> = &'a dyn Fn(&mut Encoder) -> Result<(), EncodeError>;

/// One CPU's encoder, its ring, and its counters for one context.
pub struct Lane {
    encoder: UnsafeCell<Encoder>,
    scratch: UnsafeCell<Box<[u8]>>,
    busy: AtomicBool,
    opened_at: AtomicU64,
    /// Sealed frames waiting for the drain task.
    pub ring: FrameRing,
    /// Events produced (encoded or dropped) since boot.
    pub produced: AtomicU64,
    /// Events dropped since boot.
    pub dropped: AtomicU64,
    /// Events dropped since the drain task last reported.
    pub unreported: AtomicU64,
}

impl core::fmt::Debug for Lane {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Lane").finish_non_exhaustive()
    }
}

// SAFETY: `encoder`, `scratch` and `opened_at` are touched only by the owning CPU with
// interrupts disabled and the `busy` flag held; the ring is SPSC; the rest is atomic.
unsafe impl Sync for Lane {}

impl Lane {
    fn new(cpu: u32, ring: Ring) -> Self {
        let encoder = FrameEncoder::new(
            alloc::vec![0u8; FRAME_BYTES].into_boxed_slice(),
            StreamId::new(cpu, ring),
        );
        let scratch = alloc::vec![0u8; SEALED_MAX].into_boxed_slice();
        Self {
            encoder: UnsafeCell::new(encoder),
            scratch: UnsafeCell::new(scratch),
            busy: AtomicBool::new(false),
            opened_at: AtomicU64::new(0),
            ring: FrameRing::new(RING_BYTES),
            produced: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
        }
    }

    fn drop_events(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.unreported.fetch_add(n, Ordering::Relaxed);
    }

    /// Seals the open frame into the ring (or drops it, counted, if the ring is full).
    ///
    /// # Safety
    /// Owning CPU, interrupts disabled, `busy` held.
    unsafe fn seal(&self) {
        // SAFETY: the caller's contract gives exclusive access.
        let (enc, scratch) = unsafe { (&mut *self.encoder.get(), &mut *self.scratch.get()) };
        if enc.is_empty() {
            return;
        }
        let events = enc.event_count();
        if self.ring.free() < FrameRing::entry_len(scratch.len()) {
            enc.discard();
            self.drop_events(u64::from(events));
            return;
        }
        match enc.finish(scratch) {
            Ok(n) => {
                let pushed = self.ring.push(events, &scratch[..n]);
                debug_assert!(pushed, "ring had room for a full frame");
            }
            Err(_) => self.drop_events(u64::from(events)),
        }
    }

    /// Encodes one event at `ts`.
    ///
    /// # Safety
    /// Owning CPU, interrupts disabled.
    unsafe fn record(&self, ts: u64, encode: EncodeFn<'_>) {
        self.produced.fetch_add(1, Ordering::Relaxed);
        if self.busy.swap(true, Ordering::Acquire) {
            self.drop_events(1);
            return;
        }
        // SAFETY: owning CPU, interrupts off, `busy` held.
        let enc = unsafe { &mut *self.encoder.get() };
        if enc.is_empty() {
            self.opened_at.store(ts, Ordering::Relaxed);
        }
        let mut result = encode(enc);
        if result.is_err() {
            // SAFETY: as above.
            unsafe { self.seal() };
            self.opened_at.store(ts, Ordering::Relaxed);
            result = encode(enc);
        }
        if result.is_err() {
            self.drop_events(1);
        } else if ts.wrapping_sub(self.opened_at.load(Ordering::Relaxed)) > SEAL_AGE_TICKS.load(Ordering::Relaxed) {
            // SAFETY: as above.
            unsafe { self.seal() };
        }
        self.busy.store(false, Ordering::Release);
    }

    /// Seals this lane's open frame. Owning CPU only.
    fn seal_now(&self) {
        let _irq = arch::InterruptGuard::new();
        if self.busy.swap(true, Ordering::Acquire) {
            return;
        }
        // SAFETY: owning CPU (caller), interrupts off, `busy` held.
        unsafe { self.seal() };
        self.busy.store(false, Ordering::Release);
    }
}

/// A CPU's two lanes.
pub struct CpuTrace {
    /// Task context.
    pub task: Lane,
    /// Interrupt context.
    pub irq: Lane,
}

impl core::fmt::Debug for CpuTrace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CpuTrace").finish_non_exhaustive()
    }
}

static CPUS: Once<Vec<CpuTrace>> = Once::new();
static ENABLED: AtomicBool = AtomicBool::new(false);
/// The drain task's id: its own activity is not traced (it would never quiesce).
static DRAIN_TASK: AtomicU64 = AtomicU64::new(u64::MAX);

/// Sets up lanes for `cpus` CPUs.
pub fn init(cpus: usize) {
    CPUS.call_once(|| {
        (0..cpus as u32)
            .map(|c| CpuTrace {
                task: Lane::new(c, Ring::Task),
                irq: Lane::new(c, Ring::Interrupt),
            })
            .collect()
    });
    // Seal a partly filled frame after 2 ms, so a quiet CPU's events still flow.
    SEAL_AGE_TICKS.store(crate::time::tsc_hz() / 500, Ordering::Relaxed);
}

/// The lanes of every CPU.
pub fn cpus() -> &'static [CpuTrace] {
    CPUS.get().map_or(&[], |v| v.as_slice())
}

/// Starts or stops recording events.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Release);
}

/// Records `encode` on the current CPU's lane for the current context.
fn emit(encode: EncodeFn<'_>) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let _irq = arch::InterruptGuard::new();
    let Some(cpu) = percpu::try_current() else { return };
    let Some(lanes) = cpus().get(cpu.index as usize) else {
        return;
    };
    let lane = if cpu.interrupt_depth.load(Ordering::Relaxed) > 0 {
        &lanes.irq
    } else {
        &lanes.task
    };
    // SAFETY: this CPU's lane, interrupts disabled by `_irq`.
    unsafe { lane.record(arch::rdtsc(), encode) };
}

/// Seals the current CPU's open frames (before it idles, or before the drain reads).
pub fn seal_current_cpu() {
    if let Some(cpu) = percpu::try_current()
        && let Some(lanes) = cpus().get(cpu.index as usize)
    {
        lanes.task.seal_now();
        lanes.irq.seal_now();
    }
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
        let parent = sched_current_task();
        emit(&|e| {
            e.push(
                arch::rdtsc(),
                &Message::TaskSpawned(proto::TaskSpawned {
                    task: info.id.as_u64(),
                    name: info.name.unwrap_or(""),
                    kind: match info.kind {
                        TaskKind::Kernel => proto::TaskKind::Kernel,
                        TaskKind::Wasm => proto::TaskKind::Wasm,
                    },
                    location: proto::Location {
                        file: info.location.file(),
                        line: info.location.line(),
                        column: info.location.column(),
                    },
                    parent: parent.map(|p| p.as_u64()),
                }),
            )
        });
    }

    fn on_poll_start(&self, _cpu: usize, task: TaskId) {
        if traced(task) {
            emit(&|e| e.poll_start(arch::rdtsc(), task.as_u64()));
        }
    }

    fn on_poll_end(&self, _cpu: usize, task: TaskId, result: PollResult) {
        if traced(task) {
            emit(&|e| e.poll_end(arch::rdtsc(), task.as_u64(), poll_result(result)));
        }
    }

    fn on_wake(&self, task: TaskId, by_ref: bool, self_wake: bool, waker: Option<TaskId>) {
        if !traced(task) {
            return;
        }
        let waker = match waker {
            Some(t) => proto::Waker::Task(t.as_u64()),
            None if arch::idt::in_interrupt() => proto::Waker::Interrupt(0),
            None => proto::Waker::None,
        };
        emit(&|e| {
            e.push(
                arch::rdtsc(),
                &Message::Wake {
                    task: task.as_u64(),
                    waker,
                    by_ref,
                    self_wake,
                },
            )
        });
    }

    fn on_waker_clone(&self, task: TaskId, count: usize) {
        if traced(task) {
            emit(&|e| {
                e.push(
                    arch::rdtsc(),
                    &Message::WakerClone {
                        task: task.as_u64(),
                        wakers: count as u64,
                    },
                )
            });
        }
    }

    fn on_waker_drop(&self, task: TaskId, count: usize) {
        if traced(task) {
            emit(&|e| {
                e.push(
                    arch::rdtsc(),
                    &Message::WakerDrop {
                        task: task.as_u64(),
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
        let waiter = sched_current_task().map_or(0, |t| t.as_u64());
        emit(&|e| {
            e.push(
                arch::rdtsc(),
                &Message::JoinWaiting {
                    task: task.as_u64(),
                    waiter,
                },
            )
        });
    }

    fn on_complete(&self, _cpu: usize, task: TaskId, outcome: Outcome) {
        if !traced(task) {
            return;
        }
        let outcome = match outcome {
            Outcome::Completed => proto::Outcome::Ok,
            Outcome::Cancelled => proto::Outcome::Cancelled,
            Outcome::Panicked => proto::Outcome::Panicked,
        };
        emit(&|e| {
            e.push(
                arch::rdtsc(),
                &Message::TaskCompleted {
                    task: task.as_u64(),
                    outcome,
                },
            )
        });
    }

    fn on_drop(&self, task: TaskId) {
        if traced(task) {
            emit(&|e| e.push(arch::rdtsc(), &Message::TaskDropped { task: task.as_u64() }));
        }
    }

    fn on_steal(&self, task: TaskId, from: usize, to: usize) {
        if traced(task) {
            emit(&|e| {
                e.push(
                    arch::rdtsc(),
                    &Message::Steal {
                        task: task.as_u64(),
                        from_cpu: from as u32,
                        to_cpu: to as u32,
                    },
                )
            });
        }
    }

    fn on_idle(&self, _cpu: usize, entering: bool) {
        if entering {
            emit(&|e| e.push(arch::rdtsc(), &Message::CpuIdle));
            seal_current_cpu();
        } else {
            emit(&|e| e.push(arch::rdtsc(), &Message::CpuBusy));
        }
    }
}

fn sched_current_task() -> Option<TaskId> {
    crate::sched::try_runtime().and_then(|rt| rt.current_task())
}

/// The hooks instance to hand the executor.
pub static HOOKS: TraceHooks = TraceHooks;
