//! The wasm host on the booted kernel: the guests of the boot bundle, their traps,
//! preemption, limits and hostcalls.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use lucid_executor::yield_now;
use lucid_ktest_macros::ktest;
use lucid_wasm::abi::TrapCode;

use crate::arch::percpu;
use crate::sched::{self, block_on};
use crate::time::Instant;
use crate::wasm::{self, Outcome};

fn rt() -> &'static wasm::Runtime {
    wasm::runtime().expect("the boot bundle loaded")
}

fn run_to_end(name: &str) -> Outcome {
    let (_, handle) = rt().spawn(name).unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    block_on(async { sched::timeout(Duration::from_secs(20), handle).await })
        .unwrap_or_else(|_| panic!("{name} did not end within 20 s"))
        .unwrap_or_else(|e| panic!("{name}'s task failed: {e:?}"))
}

/// Waits until instances from earlier tests (cancelled, or still ending) are gone.
fn quiesce() {
    wait_for(Duration::from_secs(10), "earlier instances to end", || {
        rt().live_instances() == 0
    });
}

/// Runs the executor until `done` or `limit`.
fn wait_for(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    block_on(async {
        while !done() {
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            sched::sleep(Duration::from_millis(5)).await;
        }
    });
}

#[ktest]
fn the_bundle_loads_every_module() {
    let names: Vec<_> = rt().guests().iter().map(|g| g.entry.name).collect();
    for want in [
        "ping",
        "pong",
        "hasher",
        "sleeper",
        "grower",
        "trapper",
        "spinner",
        "spawner",
        "short",
        "rust_sieve",
        "c_clock",
        "rust_ping",
        "rust_pong",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
}

#[ktest]
fn every_trap_is_reported_with_its_code() {
    let cases = [
        ("t_unreachable", TrapCode::UnreachableCodeReached),
        ("t_div_zero", TrapCode::IntegerDivisionByZero),
        ("t_overflow", TrapCode::IntegerOverflow),
        ("t_oob", TrapCode::MemoryOutOfBounds),
        ("t_bad_signature", TrapCode::BadSignature),
        ("t_null_element", TrapCode::IndirectCallToNull),
        // Stopped by wasmtime's stack limit: had it reached the fiber stack's guard
        // page, the kernel would have faulted and this test would fail as a fault.
        ("t_stack", TrapCode::StackOverflow),
        ("t_bad_pointer", TrapCode::HostcallBadPointer),
        ("t_bad_handle", TrapCode::HostcallBadHandle),
    ];
    for (name, code) in cases {
        match run_to_end(name) {
            Outcome::Trapped(got, reason) => {
                assert_eq!(
                    got,
                    code,
                    "{name}: trapped with {} ({reason}), expected {}",
                    got.name(),
                    code.name()
                );
                assert!(!reason.is_empty(), "{name}: empty trap reason");
            }
            other => panic!("{name}: expected a {} trap, got {other:?}", code.name()),
        }
    }
}

#[ktest]
fn a_bad_hostcall_pointer_ends_only_its_instance() {
    let Outcome::Trapped(TrapCode::HostcallBadPointer, reason) = run_to_end("t_bad_pointer") else {
        panic!("t_bad_pointer did not trap on its pointer");
    };
    assert!(reason.contains("log") && reason.contains("outside"), "reason: {reason}");
    // The kernel and other instances carry on.
    assert_eq!(run_to_end("t_hostcalls"), Outcome::Exited(0));
    assert_eq!(run_to_end("t_exit"), Outcome::Exited(7));
}

#[ktest]
fn the_trapper_demo_traps_out_of_bounds() {
    assert!(matches!(
        run_to_end("trapper"),
        Outcome::Trapped(TrapCode::MemoryOutOfBounds, _)
    ));
}

/// Linear memories have no bounds checks in generated code: the page fault beyond
/// the accessible pages is the check. A fault just past 4 GiB (the guard region), a
/// fault on the page after a grown memory's new end and the memory's new last byte
/// (which must not fault) all behave as wasm says; and every instance gives its
/// address-space slots back when it ends.
#[ktest]
fn out_of_bounds_accesses_trap_through_the_guard_pages() {
    quiesce();
    let slots = wasm::vm::slots_in_use();
    let Outcome::Trapped(TrapCode::MemoryOutOfBounds, _) = run_to_end("t_oob_guard") else {
        panic!("t_oob_guard did not trap out of bounds");
    };
    match run_to_end("t_oob_grown") {
        Outcome::Trapped(TrapCode::MemoryOutOfBounds, reason) => {
            assert!(
                reason.contains("past_growth") && !reason.contains("in_growth"),
                "the trap must come from the byte past the grown page: {reason}"
            );
        }
        other => panic!("t_oob_grown ended {other:?}"),
    }
    for _ in 0..20 {
        let outcome = run_to_end("t_oob");
        assert!(
            matches!(outcome, Outcome::Trapped(TrapCode::MemoryOutOfBounds, _)),
            "t_oob ended {outcome:?}"
        );
    }
    quiesce();
    assert_eq!(
        wasm::vm::slots_in_use(),
        slots,
        "instances that ended kept address-space slots"
    );
}

#[ktest]
fn the_grower_demo_grows_to_its_limit_and_exits() {
    let limit = rt().guest("grower").expect("grower").entry.max_memory_pages;
    assert_eq!(run_to_end("grower"), Outcome::Exited(limit as i32));
}

#[ktest]
fn the_sleeper_demo_sleeps_50ms_per_tick() {
    let (id, handle) = rt().spawn("sleeper").expect("spawn");
    let start = Instant::now();
    block_on(sched::sleep(Duration::from_secs(1)));
    let hostcalls = wasm::stats(id).expect("alive").hostcalls;
    let elapsed = start.elapsed().as_millis() as u64;
    handle.cancel();
    // A sleep never ends early: at most one tick per 50 ms (+1 in flight).
    assert!(hostcalls <= elapsed / 50 + 1, "{hostcalls} sleeps in {elapsed} ms");
    assert!(hostcalls >= 5, "only {hostcalls} sleeps in {elapsed} ms");
}

#[ktest]
fn the_ping_pong_pair_exchanges_messages_until_ping_goes() {
    quiesce();
    let (id, handle) = rt().spawn("ping").expect("spawn");
    wait_for(Duration::from_secs(10), "100 round trips", || {
        wasm::stats(id).is_some_and(|s| s.hostcalls > 200)
    });
    assert_eq!(rt().live_instances(), 2, "ping did not start pong");
    handle.cancel();
    // pong sees its peer gone (chan_recv returns -1) and exits.
    wait_for(Duration::from_secs(10), "pong to exit", || rt().live_instances() == 0);
}

#[ktest]
fn the_spawner_demo_starts_short_lived_instances() {
    let (_, before) = rt().started_and_ended();
    let (_, handle) = rt().spawn("spawner").expect("spawn");
    wait_for(Duration::from_secs(10), "two short instances to end", || {
        rt().started_and_ended().1 >= before + 2
    });
    handle.cancel();
}

#[ktest]
fn the_hasher_demo_is_preempted_by_the_timer_every_slice() {
    let before = wasm::preempt::preemptions();
    let (id, handle) = rt().spawn("hasher").expect("spawn");
    wait_for(Duration::from_secs(10), "20 slices", || {
        wasm::stats(id).is_some_and(|s| s.slices >= 20)
    });
    let s = wasm::stats(id).expect("alive");
    handle.cancel();
    // It never calls the kernel between rounds and its code has no fuel checks:
    // only the timer ends its polls.
    assert!(!rt().guest("hasher").expect("hasher").fuel_metered());
    assert_eq!(s.fuel, 0, "a timer-sliced guest counts no fuel");
    let preempted = wasm::preempt::preemptions() - before;
    assert!(
        preempted >= s.slices - 1,
        "{} slices but only {preempted} preemptions",
        s.slices
    );
}

/// The expected result of `t_preempt_float`: its loop in Rust.
fn preempt_float_result() -> i32 {
    let (mut a, mut b, mut c, mut d) = (1.0f64, 0.5f64, 0.0f64, 3.0f64);
    for _ in 0..3_000_000 {
        c += a * b;
        a += 1.0;
        b *= 0.999_999;
        d -= c / a;
    }
    (c + d).to_bits() as u32 as i32
}

#[ktest]
fn guests_preempted_by_the_timer_compute_what_native_code_computes() {
    quiesce();
    let before = wasm::preempt::preemptions();
    // Floats live in SSE registers and the loop counter in a general-purpose one
    // across every preemption.
    assert_eq!(run_to_end("t_preempt_float"), Outcome::Exited(preempt_float_result()));
    let preempted = wasm::preempt::preemptions() - before;
    assert!(preempted >= 10, "only {preempted} preemptions in a long loop");
}

#[ktest]
fn a_guest_cancelled_while_preempted_is_unwound_and_gone() {
    quiesce();
    let before = wasm::preempt::preemptions();
    let (id, handle) = rt().spawn("hasher").expect("spawn");
    wait_for(Duration::from_secs(10), "a preemption", || {
        wasm::preempt::preemptions() > before && wasm::stats(id).is_some_and(|s| s.slices >= 2)
    });
    // Between its polls the hasher is suspended in the preemption trampoline: the
    // cancellation resumes its fiber with an error that unwinds the guest.
    assert!(handle.cancel(), "the hasher had already ended");
    let ended = block_on(async { sched::timeout(Duration::from_secs(10), handle).await });
    assert!(
        ended.is_ok_and(|r| r.is_err_and(|e| e.is_cancelled())),
        "the cancelled hasher did not end as cancelled"
    );
    quiesce();
    assert!(wasm::stats(id).is_none(), "the cancelled instance is gone");
}

#[ktest]
fn an_endless_loop_yields_every_slice_and_is_killed_at_its_budget() {
    static STOP: AtomicBool = AtomicBool::new(false);
    static MAX_GAP: AtomicU64 = AtomicU64::new(0);
    static SAMPLES: AtomicU64 = AtomicU64::new(0);
    quiesce();
    let (id, spinner) = rt().spawn("spinner").expect("spawn");
    STOP.store(false, Ordering::Relaxed);
    // One ticker per CPU keeps every CPU busy, so the spinner always shares a CPU
    // with a ticker. A ticker measures, in the spinner's slices, the gap between
    // two of its own polls while the spinner ran on its CPU throughout (gaps across
    // CPUs would measure QEMU's vCPU scheduling on the host, not ours).
    let tickers: Vec<_> = (0..percpu::online() as usize)
        .map(|cpu| {
            sched::runtime().builder().name("ticker").on_cpu(cpu).spawn(async move {
                let here = || percpu::current().index;
                let mut last = wasm::stats(id);
                while !STOP.load(Ordering::Relaxed) {
                    let before = here();
                    yield_now().await;
                    let now = wasm::stats(id);
                    if let (Some(a), Some(b)) = (last, now)
                        && a.cpu == before
                        && b.cpu == before
                        && here() == before
                    {
                        SAMPLES.fetch_add(1, Ordering::Relaxed);
                        MAX_GAP.fetch_max(b.slices - a.slices, Ordering::Relaxed);
                    }
                    last = now;
                }
            })
        })
        .collect();
    let outcome = block_on(async { sched::timeout(Duration::from_secs(60), spinner).await });
    STOP.store(true, Ordering::Relaxed);
    for t in tickers {
        let _ = block_on(t);
    }
    assert_eq!(
        outcome.ok().and_then(|r| r.ok()),
        Some(Outcome::Killed(lucid_wasm::abi::KillReason::Fuel)),
        "the spinner was not killed"
    );
    let samples = SAMPLES.load(Ordering::Relaxed);
    assert!(
        samples >= 50,
        "only {samples} polls of a ticker sharing the spinner's CPU"
    );
    let gap = MAX_GAP.load(Ordering::Relaxed);
    assert!(
        gap < 3,
        "a ticker waited {gap} spinner slices between polls on their shared CPU"
    );
}

#[ktest]
fn instances_beyond_the_limit_are_refused() {
    quiesce();
    let mut handles = Vec::new();
    let refused = loop {
        match rt().spawn("sleeper") {
            Ok((_, h)) => handles.push(h),
            Err(e) => break e,
        }
        assert!(handles.len() <= wasm::MAX_INSTANCES, "no limit");
    };
    assert_eq!(refused, wasm::SpawnError::TooManyInstances);
    for h in &handles {
        h.cancel();
    }
    wait_for(Duration::from_secs(10), "cancelled instances to end", || {
        rt().live_instances() == 0
    });
}

#[ktest]
fn every_wasi_function_answers_good_and_bad_arguments() {
    // t_wasi exits with 100 + the number of its first failed check, 42 if none.
    assert_eq!(run_to_end("t_wasi"), Outcome::Exited(42));
    // A bad pointer was an errno, not a trap: the kernel and other guests carry on.
    assert_eq!(run_to_end("t_exit"), Outcome::Exited(7));
}

#[ktest]
fn a_trap_names_the_wasm_functions_on_its_stack() {
    let Outcome::Trapped(TrapCode::UnreachableCodeReached, reason) = run_to_end("t_named_trap") else {
        panic!("t_named_trap did not trap on unreachable");
    };
    assert!(
        reason.contains("deep_crash @0x") && reason.contains("deep_crash @") && reason.contains("<- calls_the_crash"),
        "reason: {reason}"
    );
}

#[ktest]
fn the_rust_and_c_guests_run_on_wasi_and_exit_with_their_codes() {
    // rust_sieve exits with its argument count (the manifest gives it one), after
    // checking its sieve; c_clock exits with 3 after three nanosleeps.
    let start = Instant::now();
    assert_eq!(run_to_end("rust_sieve"), Outcome::Exited(1));
    assert_eq!(run_to_end("c_clock"), Outcome::Exited(3));
    assert!(start.elapsed() >= Duration::from_millis(450), "the sleeps ended early");
    // rust_ping (the lucid imports through the safe wrapper) exits 0 after 1000
    // round trips with rust_pong.
    assert_eq!(run_to_end("rust_ping"), Outcome::Exited(0));
}

#[ktest]
fn a_rust_panic_traps_with_the_demangled_rust_functions_in_its_reason() {
    let Outcome::Trapped(TrapCode::UnreachableCodeReached, reason) = run_to_end("t_rust_panic") else {
        panic!("t_rust_panic did not trap on unreachable");
    };
    assert!(reason.contains("t_rust_panic::explode"), "reason: {reason}");
    assert!(!reason.contains("_ZN"), "a mangled name: {reason}");
    // Built with line tables: the frame in `explode` names the `panic!` line.
    assert!(
        reason.contains("t_rust_panic::explode @") && reason.contains("(rust/t_rust_panic.rs:6)"),
        "reason: {reason}"
    );
}
