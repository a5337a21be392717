//! The in-QEMU test runner. `#[ktest]` functions are collected from the `.ktests`
//! linker section and run in order; results go to COM1 as lines `xtask test` parses:
//!
//! ```text
//! KTEST PLAN <count>
//! KTEST START <index> <name>
//! KTEST PASS <index> <name> <micros>
//! KTEST FAIL <index> <name>: <reason>
//! KTEST DONE
//! ```
//!
//! A test that faults or panics is reported by the fault or panic path, which then
//! ends QEMU with [`ExitCode::TestInterrupted`]; xtask boots again with
//! `ktest.from=<index + 1>` so the remaining tests still run. A test that hangs is
//! caught by xtask's per-test timeout the same way.

use core::sync::atomic::{AtomicUsize, Ordering};

pub use crate::fault::Fault;
use crate::{
    qemu::{self, ExitCode},
    time::Instant,
};

/// A registered test.
#[derive(Debug)]
pub struct KTest {
    /// `module::path::name`.
    pub name: &'static str,
    /// The test body; it fails by panicking.
    pub func: fn(),
    /// The fault the test must end with, if any.
    pub should_fault: Option<Fault>,
}

// Only the addresses matter: the linker script defines them around `.ktests`.
unsafe extern "C" {
    static __ktests_start: u8;
    static __ktests_end: u8;
}

/// Every registered test, in link order.
pub fn tests() -> &'static [KTest] {
    let start = core::ptr::addr_of!(__ktests_start).cast::<KTest>();
    let end = core::ptr::addr_of!(__ktests_end).cast::<KTest>();
    let len = (end as usize - start as usize) / core::mem::size_of::<KTest>();
    // SAFETY: the linker script places only `#[ktest]` statics (all `KTest`, kept
    // with KEEP) between the two symbols, so they form an array of `len` tests.
    unsafe { core::slice::from_raw_parts(start, len) }
}

/// Index + 1 of the running test, 0 when none runs.
static CURRENT: AtomicUsize = AtomicUsize::new(0);

fn current() -> Option<(usize, &'static KTest)> {
    let i = CURRENT.load(Ordering::SeqCst).checked_sub(1)?;
    Some((i, &tests()[i]))
}

/// Runs the tests selected by the command line (`ktest.from=N`, `ktest.filter=TEXT`)
/// and ends QEMU.
pub fn run(cmdline: &str) -> ! {
    let tests = tests();
    let from: usize = crate::cmdline::get(cmdline, "ktest.from")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let filter = crate::cmdline::get(cmdline, "ktest.filter");
    // The harness's own tests fail on purpose: they run only when asked for, and alone.
    let selftest = crate::cmdline::get(cmdline, "ktest.selftest").is_some();
    crate::println!("KTEST PLAN {}", tests.len());
    for (i, test) in tests.iter().enumerate().skip(from) {
        if filter.is_some_and(|f| !test.name.contains(f)) || test.name.contains("::selftest::") != selftest {
            continue;
        }
        CURRENT.store(i + 1, Ordering::SeqCst);
        crate::println!("KTEST START {i} {}", test.name);
        let start = Instant::now();
        (test.func)();
        let micros = start.elapsed().as_micros();
        CURRENT.store(0, Ordering::SeqCst);
        match test.should_fault {
            Some(f) => crate::println!("KTEST FAIL {i} {}: expected {f:?}, but the test returned", test.name),
            None => crate::println!("KTEST PASS {i} {} {micros}", test.name),
        }
    }
    crate::println!("KTEST DONE");
    qemu::exit(ExitCode::Success)
}

/// From the exception path: if the running test expected `fault`, it passed.
pub fn pass_if_expected(fault: Fault) {
    if let Some((i, test)) = current()
        && test.should_fault == Some(fault)
    {
        crate::println!("KTEST PASS {i} {} 0 (faulted as expected: {fault:?})", test.name);
        qemu::exit(ExitCode::TestInterrupted);
    }
}

/// From the fault and panic paths: fails the running test, if any, and ends QEMU so
/// xtask resumes after it.
pub fn fail_current(reason: core::fmt::Arguments<'_>) {
    if let Some((i, test)) = current() {
        // SAFETY: the kernel stops right after; interleaving with a lock holder is fine.
        unsafe { crate::drivers::uart::force_write_fmt(format_args!("KTEST FAIL {i} {}: {reason}\n", test.name)) };
        qemu::exit(ExitCode::TestInterrupted);
    }
}
