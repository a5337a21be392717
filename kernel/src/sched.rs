//! The kernel's executor: one `lucid-executor` scheduler per CPU.
//!
//! - Idle CPUs `sti; hlt` until an interrupt: a wake-up IPI from a CPU that queued
//!   work for them, or their APIC one-shot timer, programmed for the earliest sleep.
//! - Timers: any CPU turns the shared timer when the earliest deadline (cached in an
//!   atomic, so the common case takes no lock) has passed, on every loop iteration.
//!   There is no periodic tick.

use core::{
    future::Future,
    panic::Location,
    pin::pin,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    task::{Context, Poll, Waker},
    time::Duration,
};

use lucid_executor::{PanicCaught, Platform, Runtime, time::Instant as TimerInstant};
use spin::Once;

use crate::{
    arch::{self, apic, idt, percpu},
    time,
};

/// Vector of the wake-up IPI.
pub const WAKE_VECTOR: u8 = 0xf1;

static RUNTIME: Once<&'static Runtime> = Once::new();

/// Earliest timer deadline in nanoseconds since boot (`u64::MAX`: none).
static NEXT_DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);

/// Per-CPU "a wake-up arrived": set by the IPI handler, consumed by `idle`, so a wake
/// that lands between the executor's last look at its queues and `hlt` is not lost.
static WAKE_PENDING: [AtomicBool; percpu::MAX_CPUS] = [const { AtomicBool::new(false) }; percpu::MAX_CPUS];

/// Per-CPU "halted in `idle`", for the sampler.
static IDLING: [AtomicBool; percpu::MAX_CPUS] = [const { AtomicBool::new(false) }; percpu::MAX_CPUS];

/// Whether `cpu` is halted waiting for work.
pub fn is_idling(cpu: usize) -> bool {
    IDLING.get(cpu).is_some_and(|i| i.load(Ordering::Relaxed))
}

struct KernelPlatform;

impl Platform for KernelPlatform {
    fn current_cpu(&self) -> Option<usize> {
        percpu::try_current().map(|c| c.index as usize)
    }

    fn idle(&self, cpu: usize) {
        let start = time::Instant::now();
        let _irq = arch::InterruptGuard::new();
        if WAKE_PENDING[cpu].swap(false, Ordering::AcqRel) {
            return;
        }
        IDLING[cpu].store(true, Ordering::Relaxed);
        loop {
            let deadline = NEXT_DEADLINE.load(Ordering::Acquire);
            let now = now_ns();
            if deadline <= now {
                break;
            }
            let next = deadline.min(crate::sampling::next_due_ns(cpu));
            if next != u64::MAX {
                apic::start_oneshot(next.saturating_sub(now).max(1));
            }
            crate::sampling::take_sampled(cpu);
            // `sti; hlt` back to back: an interrupt cannot slip in between.
            x86_64::instructions::interrupts::enable_and_hlt();
            x86_64::instructions::interrupts::disable();
            // Woken only to be sampled: halt again.
            if WAKE_PENDING[cpu].load(Ordering::Acquire) || !crate::sampling::take_sampled(cpu) {
                break;
            }
        }
        IDLING[cpu].store(false, Ordering::Relaxed);
        WAKE_PENDING[cpu].store(false, Ordering::Release);
        if let Some(rt) = RUNTIME.get() {
            rt.record_idle_time(cpu, start.elapsed().as_nanos() as u64);
        }
    }

    fn wake_cpu(&self, cpu: usize) {
        WAKE_PENDING[cpu].store(true, Ordering::Release);
        if let Some(target) = percpu::cpu(cpu)
            && percpu::try_current().is_none_or(|me| me.index as usize != cpu)
        {
            apic::send_ipi(target.apic_id, apic::Ipi::Fixed(WAKE_VECTOR));
        }
    }

    fn catch_unwind(&self, poll: &mut dyn FnMut()) -> Result<(), PanicCaught> {
        crate::panic::catch_unwind(poll).map_err(PanicCaught)
    }

    fn without_interrupts(&self, f: &mut dyn FnMut()) {
        let _irq = arch::InterruptGuard::new();
        f();
    }
}

static PLATFORM: KernelPlatform = KernelPlatform;

fn on_wake_ipi(_frame: &mut idt::InterruptFrame) {
    if let Some(cpu) = percpu::try_current() {
        WAKE_PENDING[cpu.index as usize].store(true, Ordering::Release);
        cpu.ipis.fetch_add(1, Ordering::Relaxed);
    }
    apic::eoi();
}

/// Nanoseconds since boot on the executor's clock.
pub fn now_ns() -> u64 {
    time::since_boot().as_nanos() as u64
}

/// Creates the runtime for `cpus` CPUs. Call once, on the BSP, before starting APs.
pub fn init(cpus: usize) -> &'static Runtime {
    idt::set_handler(WAKE_VECTOR, on_wake_ipi);
    let rt = *RUNTIME.call_once(|| Runtime::new(cpus.max(1), &PLATFORM, Some(&crate::trace::HOOKS)));
    // The hooks are called only while the trace records.
    crate::trace::sync_hook_gate();
    rt
}

/// The runtime, if it exists yet.
pub fn try_runtime() -> Option<&'static Runtime> {
    RUNTIME.get().copied()
}

/// The runtime.
///
/// # Panics
/// Before [`init`].
pub fn runtime() -> &'static Runtime {
    RUNTIME.get().expect("executor not initialised")
}

/// Turns the timer if its earliest deadline has passed.
fn turn_timer(rt: &Runtime) {
    let now = now_ns();
    if now < NEXT_DEADLINE.load(Ordering::Acquire) {
        return;
    }
    rt.timer().turn(TimerInstant::from_nanos(now));
    let next = || rt.timer().next_deadline().map_or(u64::MAX, |d| d.as_nanos());
    NEXT_DEADLINE.store(next(), Ordering::Release);
    // A sleep registered on another CPU between our look at the timer and the store
    // above announced its deadline first and was overwritten: look again. (Sleeps
    // announce only after they are in the timer, see `sleep_until`.)
    NEXT_DEADLINE.fetch_min(next(), Ordering::AcqRel);
}

/// One scheduler step on this CPU: timers, then up to a budget of polls, idling if
/// there was nothing to do.
pub fn step(cpu: usize) {
    let rt = runtime();
    turn_timer(rt);
    crate::sampling::arm(cpu);
    crate::trace::sample_run_queue(cpu, rt.scheduler(cpu).queued());
    rt.tick_or_idle(cpu);
}

/// Runs this CPU's scheduler forever.
pub fn run(cpu: usize) -> ! {
    loop {
        step(cpu);
    }
}

/// Sleeps for `d` (at least); the trace shows the sleep at the caller's location.
#[track_caller]
pub fn sleep(d: Duration) -> impl Future<Output = ()> {
    sleep_until_at(time::Instant::now().saturating_add(d), Location::caller())
}

/// Sleeps until `deadline` (at least).
#[track_caller]
pub fn sleep_until(deadline: time::Instant) -> impl Future<Output = ()> {
    sleep_until_at(deadline, Location::caller())
}

async fn sleep_until_at(deadline: time::Instant, location: &'static Location<'static>) {
    let ns = deadline
        .duration_since(time::Instant::from_ticks(time::boot_tsc()))
        .as_nanos() as u64;
    let mut sleep = pin!(runtime().timer().sleep_until_at(TimerInstant::from_nanos(ns), location));
    let mut announced = false;
    core::future::poll_fn(|cx| {
        // The first poll puts the sleep into the timer; only then is its deadline
        // announced, so `turn_timer` can never miss it (see there).
        let ready = sleep.as_mut().poll(cx);
        if !announced {
            NEXT_DEADLINE.fetch_min(ns, Ordering::AcqRel);
            announced = true;
        }
        ready
    })
    .await;
}

/// Why [`timeout`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// Runs `fut` for at most `d`; the future is dropped if time runs out.
pub async fn timeout<F: Future>(d: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let mut fut = pin!(fut);
    let mut sleep = pin!(sleep(d));
    core::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        sleep.as_mut().poll(cx).map(|()| Err(Elapsed))
    })
    .await
}

/// Runs `fut` to completion on this CPU, driving this CPU's scheduler (and timers)
/// while it waits, so tasks bound to this CPU keep running.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let cpu = percpu::current().index as usize;
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        let rt = runtime();
        turn_timer(rt);
        rt.tick(cpu);
        core::hint::spin_loop();
    }
}
