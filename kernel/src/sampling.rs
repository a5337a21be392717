//! The sampling profiler: while a rate is set (by the host's `SetSampling` or the
//! `sample_hz=N` command-line option), each CPU's local APIC timer also fires at that
//! rate, and each firing records a `Sample` — what the CPU was doing, the
//! interrupted instruction pointer and the frame-pointer chain — on the CPU's
//! interrupt-context trace stream.
//!
//! The kernel stays tickless: a CPU arms its sampling deadline only while a rate is
//! set, and with sampling off the scheduler and the timer interrupt each pay one
//! relaxed load.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use lucid_protocol::{Frames, Message, Sample, SampleContext};

use crate::{
    arch::{apic, idt::InterruptFrame, percpu},
    mem::stacks,
    sched,
};

/// Most return addresses a sample carries.
pub const MAX_DEPTH: usize = 32;

/// Samples per second per CPU; 0 = off.
static HZ: AtomicU32 = AtomicU32::new(0);
/// Per CPU: its timer carries a sampling deadline.
static ARMED: [AtomicBool; percpu::MAX_CPUS] = [const { AtomicBool::new(false) }; percpu::MAX_CPUS];
/// Per CPU: when its next sample is due, in nanoseconds since boot.
static NEXT_NS: [AtomicU64; percpu::MAX_CPUS] = [const { AtomicU64::new(0) }; percpu::MAX_CPUS];
/// Per CPU: a sample was taken since the idle loop last looked.
static SAMPLED: [AtomicBool; percpu::MAX_CPUS] = [const { AtomicBool::new(false) }; percpu::MAX_CPUS];
/// Samples taken and TSC ticks spent taking them, over all CPUs (the profiler's cost).
static TAKEN: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Sets the rate (0 = off) for every CPU; each CPU arms its timer at its next
/// scheduling step.
pub fn set_rate(hz: u32) {
    HZ.store(hz.min(100_000), Ordering::Release);
    log::info!(
        "sampling: {}",
        if hz == 0 {
            "off".into()
        } else {
            alloc::format!("{hz} Hz per CPU")
        }
    );
}

/// The rate set (0 = off).
pub fn rate() -> u32 {
    HZ.load(Ordering::Relaxed)
}

/// Applies the `sample_hz=N` command-line option.
pub fn init(cmdline: &str) {
    if let Some(hz) = crate::cmdline::get(cmdline, "sample_hz").and_then(|v| v.parse().ok()) {
        set_rate(hz);
    }
}

/// Samples taken since boot and the TSC ticks spent taking them.
pub fn cost() -> (u64, u64) {
    (TAKEN.load(Ordering::Relaxed), TICKS.load(Ordering::Relaxed))
}

fn period_ns(hz: u32) -> u64 {
    1_000_000_000 / u64::from(hz.max(1))
}

/// Called at every scheduling step: arms this CPU's sampling deadline when a rate is
/// set and the timer does not carry one yet.
#[inline]
pub fn arm(cpu: usize) {
    let hz = HZ.load(Ordering::Relaxed);
    if hz == 0 || ARMED[cpu].load(Ordering::Relaxed) {
        return;
    }
    let _irq = crate::arch::InterruptGuard::new();
    ARMED[cpu].store(true, Ordering::Relaxed);
    let period = period_ns(hz);
    NEXT_NS[cpu].store(sched::now_ns() + period, Ordering::Relaxed);
    apic::start_oneshot(period);
}

/// When this CPU's next sample is due (`u64::MAX`: sampling off), for the idle loop,
/// which programs the timer for the earlier of this and its own deadline.
#[inline]
pub fn next_due_ns(cpu: usize) -> u64 {
    if ARMED[cpu].load(Ordering::Relaxed) {
        NEXT_NS[cpu].load(Ordering::Relaxed)
    } else {
        u64::MAX
    }
}

/// Whether a sample was taken since the last call (clears the flag): an idle CPU
/// woken only to be sampled halts again.
#[inline]
pub fn take_sampled(cpu: usize) -> bool {
    SAMPLED[cpu].swap(false, Ordering::Relaxed)
}

/// The local APIC timer fired: samples if due. Returns when this CPU's next sample
/// is due (`u64::MAX`: sampling is off), which the caller programs the timer for.
pub fn on_timer(frame: &InterruptFrame) -> u64 {
    let Some(me) = percpu::try_current() else {
        return u64::MAX;
    };
    let cpu = me.index as usize;
    if !ARMED[cpu].load(Ordering::Relaxed) {
        return u64::MAX;
    }
    let hz = HZ.load(Ordering::Relaxed);
    if hz == 0 {
        ARMED[cpu].store(false, Ordering::Relaxed);
        return u64::MAX;
    }
    let now = sched::now_ns();
    let mut next = NEXT_NS[cpu].load(Ordering::Relaxed);
    if now >= next {
        let start = crate::arch::rdtsc();
        record(frame, cpu);
        SAMPLED[cpu].store(true, Ordering::Relaxed);
        next = now + period_ns(hz);
        NEXT_NS[cpu].store(next, Ordering::Relaxed);
        TAKEN.fetch_add(1, Ordering::Relaxed);
        TICKS.fetch_add(crate::arch::rdtsc() - start, Ordering::Relaxed);
    }
    next
}

/// Records one sample of the interrupted context `frame` on this CPU.
fn record(frame: &InterruptFrame, cpu: usize) {
    let task = sched::try_runtime().and_then(|rt| rt.current_task());
    let nested = percpu::try_current().is_some_and(|c| c.interrupt_depth.load(Ordering::Relaxed) > 1);
    let context = if nested {
        SampleContext::Interrupt
    } else if task.is_some() {
        SampleContext::Task
    } else if sched::is_idling(cpu) {
        SampleContext::Idle
    } else {
        SampleContext::Scheduler
    };
    let mut frames = [0u64; MAX_DEPTH];
    let n = match stacks::containing(frame.rsp) {
        // SAFETY: a registered kernel stack is mapped over `[bottom, top)` for good.
        Some(stack) => unsafe { walk(frame.rbp, frame.rsp.max(stack.bottom), stack.top, &mut frames) },
        None => 0,
    };
    crate::trace::message(&Message::Sample(Sample {
        context,
        task: task.map(crate::trace::wire_task),
        pc: frame.rip,
        frames: Frames::Slice(&frames[..n]),
    }));
}

/// Follows the frame-pointer chain from `fp`, writing return addresses into `out`;
/// returns how many. Only reads 16-byte records `[fp, fp + 16)` that lie inside the
/// stack range `[low, high)`; each next frame pointer must be 8-aligned and strictly
/// above the one before, so the walk ends (cleanly) at the first broken link, the
/// end of the stack or `out`'s length.
///
/// # Safety
/// `[low, high)` must be mapped, readable memory (a registered kernel stack).
pub unsafe fn walk(mut fp: u64, low: u64, high: u64, out: &mut [u64]) -> usize {
    let mut n = 0;
    while n < out.len() {
        if !fp.is_multiple_of(8) || fp < low || fp.checked_add(16).is_none_or(|end| end > high) {
            break;
        }
        // SAFETY: `[fp, fp + 16)` is inside `[low, high)`, which the caller
        // guarantees is mapped and readable; 8-aligned. The values may be anything.
        let (next, ret) = unsafe {
            (
                core::ptr::read_volatile(fp as *const u64),
                core::ptr::read_volatile((fp + 8) as *const u64),
            )
        };
        if ret == 0 {
            break;
        }
        out[n] = ret;
        n += 1;
        if next <= fp {
            break;
        }
        fp = next;
    }
    n
}
