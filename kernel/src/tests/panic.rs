//! Contained panics: a panicking task unwinds its own stack only, its destructors
//! run, its `JoinHandle` yields the panic, and everything else goes on. (Panics
//! that must stop the kernel are harness self-tests, see `selftest.rs`.)

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use lucid_executor::{JoinError, TaskPanic, yield_now};
use lucid_ktest_macros::ktest;

use crate::{arch::percpu, sched};

/// Counts its drops.
struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn expect_panic<T: core::fmt::Debug>(result: Result<T, JoinError<T>>) -> TaskPanic {
    match result {
        Err(JoinError::Panic(panic)) => panic,
        other => panic!("expected a contained panic, got {other:?}"),
    }
}

/// No catch, lock, allocator call or unwind left behind on this CPU.
fn assert_cpu_clean() {
    let cpu = percpu::current();
    assert_eq!(cpu.catch_depth.load(Ordering::SeqCst), 0, "catch depth");
    assert_eq!(cpu.spin_locks_held.load(Ordering::SeqCst), 0, "spin locks held");
    assert_eq!(cpu.allocator_depth.load(Ordering::SeqCst), 0, "allocator depth");
    assert!(!cpu.unwinding.load(Ordering::SeqCst), "still unwinding");
}

#[ktest]
fn panicking_tasks_end_alone_with_their_message_and_drop_guards_run() {
    let rt = sched::runtime();
    let drops = Arc::new(AtomicUsize::new(0));
    let spawn_doomed = |kind: usize| {
        let guard = DropGuard(drops.clone());
        rt.builder().name("doomed").spawn(async move {
            let _guard = guard;
            yield_now().await;
            let empty: Vec<u32> = Vec::new();
            match kind {
                0 => panic!("deliberate panic {}", 7),
                1 => core::hint::black_box(None::<u32>).unwrap(),
                _ => empty[core::hint::black_box(3)],
            }
        })
    };
    let doomed: Vec<_> = (0..3).map(spawn_doomed).collect();
    let workers: Vec<_> = (0..8u64)
        .map(|i| {
            rt.builder().name("worker").spawn(async move {
                let mut sum = 0;
                for j in 0..20 {
                    sum += i * j;
                    yield_now().await;
                }
                sum
            })
        })
        .collect();
    let panics: Vec<TaskPanic> = doomed.into_iter().map(|h| expect_panic(sched::block_on(h))).collect();
    for (i, h) in workers.into_iter().enumerate() {
        assert_eq!(sched::block_on(h).expect("a worker completes"), i as u64 * 190);
    }
    assert_eq!(panics[0].message, "deliberate panic 7");
    assert_eq!(panics[1].message, "called `Option::unwrap()` on a `None` value");
    assert!(
        panics[2]
            .message
            .starts_with("index out of bounds: the len is 0 but the index is 3"),
        "{}",
        panics[2].message
    );
    for panic in &panics {
        let at = panic.location.as_ref().expect("the kernel knows where it panicked");
        assert!(at.file.ends_with("tests/panic.rs"), "{at}");
    }
    assert_eq!(
        drops.load(Ordering::SeqCst),
        3,
        "every panicking task dropped its guard"
    );
    assert_cpu_clean();
}

#[ktest]
fn two_hundred_contained_panics_leave_the_cpu_as_it_was() {
    let rt = sched::runtime();
    for i in 0..200u32 {
        let h = rt.builder().name("doomed").spawn(async move {
            let v: Vec<u32> = (0..i % 7).collect();
            if core::hint::black_box(true) {
                panic!("panic {i} with {} values live", v.len());
            }
        });
        let panic = expect_panic(sched::block_on(h));
        assert!(
            panic.message.starts_with(&alloc::format!("panic {i} ")),
            "{}",
            panic.message
        );
    }
    assert_cpu_clean();
    assert!(crate::arch::interrupts_enabled(), "interrupts still enabled");
}

#[ktest]
fn catch_unwind_returns_the_panic_and_keeps_the_callers_state() {
    let before = core::hint::black_box(0x1234_5678_u64);
    let mut reached = false;
    let caught = crate::panic::catch_unwind(&mut || {
        reached = true;
        panic!("caught directly");
    });
    assert!(reached);
    assert_eq!(caught.map_err(|p| p.message), Err("caught directly".into()));
    assert_eq!(core::hint::black_box(before), 0x1234_5678);
    assert_eq!(crate::panic::catch_unwind(&mut || {}), Ok(()));
    assert_cpu_clean();
}

#[ktest]
fn a_panic_in_a_nested_catch_unwinds_to_the_inner_one() {
    let drops = Arc::new(AtomicUsize::new(0));
    let outer = crate::panic::catch_unwind(&mut || {
        let _outer_guard = DropGuard(drops.clone());
        let inner = crate::panic::catch_unwind(&mut || {
            let _inner_guard = DropGuard(drops.clone());
            panic!("inner");
        });
        assert_eq!(inner.map_err(|p| p.message), Err("inner".into()));
        assert_eq!(drops.load(Ordering::SeqCst), 1, "only the inner guard dropped so far");
    });
    assert_eq!(outer, Ok(()));
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_cpu_clean();
}

#[ktest]
fn a_hostcall_panic_becomes_an_error_and_raised_again_ends_the_task() {
    use crate::wasm::host::{HostPanic, contained};
    let err = contained(|| -> wasmtime::Result<()> { panic!("in a hostcall") }).expect_err("it panicked");
    let HostPanic(panic) = err.downcast::<HostPanic>().expect("the error is the panic");
    assert_eq!(panic.message, "in a hostcall");
    assert_eq!(contained(|| Ok(5)).ok(), Some(5));
    let raised = panic.clone();
    let h = sched::runtime().builder().name("instance").spawn(async move {
        yield_now().await;
        if core::hint::black_box(true) {
            crate::panic::resume(raised);
        }
    });
    assert_eq!(
        expect_panic(sched::block_on(h)),
        panic,
        "the task ends as the hostcall's panic"
    );
    assert_cpu_clean();
}

#[ktest]
fn a_blocking_hostcall_panic_after_a_suspension_becomes_an_error() {
    use crate::wasm::host::{HostPanic, contained_async};
    let fut = contained_async::<()>(alloc::boxed::Box::new(async {
        yield_now().await;
        panic!("in a blocking hostcall");
    }));
    let err = sched::block_on(alloc::boxed::Box::into_pin(fut)).expect_err("it panicked");
    let HostPanic(panic) = err.downcast::<HostPanic>().expect("the error is the panic");
    assert_eq!(panic.message, "in a blocking hostcall");
    assert_cpu_clean();
}
