//! The trace layer's pause, with no host: while paused the executor calls no hook,
//! and what it did is counted when the trace resumes.

use core::{sync::atomic::Ordering, time::Duration};

use lucid_executor::yield_now;
use lucid_ktest_macros::ktest;

use crate::{arch::percpu, sched, time::Instant, trace};

/// Events produced one by one and dropped (all contexts, all CPUs).
fn totals() -> (u64, u64) {
    trace::cpus()
        .iter()
        .flat_map(|c| [&c.task, &c.irq])
        .fold((0, 0), |(produced, dropped), p| {
            (
                produced + p.produced.load(Ordering::Relaxed),
                dropped + p.dropped_total(),
            )
        })
}

#[ktest]
fn a_paused_trace_calls_no_hook_and_counts_what_the_executor_did() {
    const YIELDS: u64 = 500;
    assert!(percpu::online() >= 2, "needs -smp 2 or more");
    let rt = sched::runtime();
    assert!(!rt.hooks_enabled(), "with tracing off the hook gate is closed");
    trace::set_enabled(true);
    assert!(rt.hooks_enabled(), "recording opens the hook gate");
    trace::set_paused(true);
    assert!(!rt.hooks_enabled(), "a pause closes it");
    let (produced0, dropped0) = totals();
    // On CPU 1, whose scheduler runs while this test spins on CPU 0.
    let handle = rt.builder().name("paused-yielder").on_cpu(1).spawn(async {
        for _ in 0..YIELDS {
            yield_now().await;
        }
    });
    let start = Instant::now();
    while !handle.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(10), "the yielder did not finish");
        core::hint::spin_loop();
    }
    let (produced1, _) = totals();
    trace::set_paused(false);
    assert!(rt.hooks_enabled(), "a resume opens the gate again");
    let (_, dropped2) = totals();
    trace::set_enabled(false);
    assert!(!rt.hooks_enabled(), "tracing off closes it");
    // Each of the yielder's polls would have been a start and an end event.
    assert!(
        produced1 - produced0 < YIELDS,
        "hooks ran while paused: {} events produced one by one",
        produced1 - produced0
    );
    assert!(
        dropped2 - dropped0 >= 2 * YIELDS,
        "the resume counted {} events dropped for the yielder's {} polls",
        dropped2 - dropped0,
        YIELDS + 1
    );
}
