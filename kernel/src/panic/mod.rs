//! Panics. A panic inside a task's poll is contained: the task's stack is unwound
//! to the executor's catch ([`catch_unwind`]), its future is dropped (destructors
//! run) and the task ends with `JoinError::Panic`; the kernel goes on. Where
//! unwinding is not safe the kernel stops with the full report, naming why
//! ([`Uncontained`]).

mod catch;
mod personality;

use alloc::string::ToString;
use core::fmt;
use core::panic::PanicInfo;
use core::sync::atomic::Ordering::Relaxed;

pub use catch::catch_unwind;
use lucid_executor::{PanicLocation, TaskPanic};

use crate::arch::{self, percpu};
use crate::{drivers, qemu};

/// Why a panic stops the kernel instead of ending only its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uncontained {
    /// Before this CPU's per-CPU block exists (early boot).
    EarlyBoot,
    /// Panicked again while the first panic was being unwound.
    WhileUnwinding,
    /// In an interrupt or exception handler: its entry has no unwind tables and
    /// an interrupted context cannot be abandoned.
    InInterrupt,
    /// Interrupts masked by the panicking context: it is inside a critical section.
    InterruptsMasked,
    /// Inside the allocator: the panic could not even be boxed.
    InAllocator,
    /// Holding kernel spin locks, which unwinding would leave locked.
    SpinLocksHeld(u32),
    /// Not inside any task's poll (boot, a test body, the scheduler itself).
    OutsideTask,
    /// Unwinding reached code without unwind tables (a wasm guest frame, an
    /// interrupt entry) at `ip` before the catch.
    NoUnwindTables { ip: usize },
    /// The unwinder failed with this `_Unwind_Reason_Code`.
    UnwinderFailed(i32),
}

impl fmt::Display for Uncontained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EarlyBoot => f.write_str("during early boot, before per-CPU data"),
            Self::WhileUnwinding => f.write_str("a second panic while unwinding the first"),
            Self::InInterrupt => f.write_str("in an interrupt handler"),
            Self::InterruptsMasked => f.write_str("with interrupts masked"),
            Self::InAllocator => f.write_str("inside the allocator"),
            Self::SpinLocksHeld(n) => write!(f, "with {n} kernel spin lock(s) held"),
            Self::OutsideTask => f.write_str("outside any task (boot, a test body or the scheduler)"),
            Self::NoUnwindTables { ip } => {
                write!(
                    f,
                    "unwinding reached code without unwind tables at {ip:#x} (wasm guest code?)"
                )
            }
            Self::UnwinderFailed(code) => write!(f, "the unwinder failed (reason code {code})"),
        }
    }
}

/// Why the running context cannot unwind, if it cannot. The order matters: a
/// panic in an interrupt handler also has interrupts masked, and says so first.
fn uncontained() -> Option<Uncontained> {
    let Some(cpu) = percpu::try_current() else {
        return Some(Uncontained::EarlyBoot);
    };
    if cpu.unwinding.swap(true, Relaxed) {
        return Some(Uncontained::WhileUnwinding);
    }
    let why = if cpu.interrupt_depth.load(Relaxed) > 0 {
        Uncontained::InInterrupt
    } else if !arch::interrupts_enabled() {
        Uncontained::InterruptsMasked
    } else if cpu.allocator_depth.load(Relaxed) > 0 {
        Uncontained::InAllocator
    } else if cpu.spin_locks_held.load(Relaxed) > 0 {
        Uncontained::SpinLocksHeld(cpu.spin_locks_held.load(Relaxed))
    } else if cpu.catch_depth.load(Relaxed) == 0 {
        Uncontained::OutsideTask
    } else {
        return None;
    };
    Some(why)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if let Some(why) = uncontained() {
        stop(format_args!("{info}"), format_args!("{}", info.message()), why);
    }
    let panic = TaskPanic {
        message: info.message().to_string(),
        location: info.location().map(|l| PanicLocation {
            file: l.file().to_string(),
            line: l.line(),
            column: l.column(),
        }),
    };
    unwind(panic)
}

/// Raises `panic` again from here: a panic a wasm host function contained (see
/// `wasm::host`) ends the instance's task like any task panic, with the original
/// message and location. Stops the kernel where a panic here could not unwind.
pub fn resume(panic: TaskPanic) -> ! {
    if let Some(why) = uncontained() {
        stop_uncontained(&panic, why);
    }
    unwind(panic)
}

fn unwind(panic: TaskPanic) -> ! {
    let code = catch::unwind(panic.clone());
    stop_uncontained(&panic, Uncontained::UnwinderFailed(code.0))
}

/// Ends the kernel for a panic that unwinding could not contain after all.
fn stop_uncontained(panic: &TaskPanic, why: Uncontained) -> ! {
    let at = panic.location.as_ref();
    match at {
        Some(at) => stop(
            format_args!("panicked at {at}:\n{}", panic.message),
            format_args!("{}", panic.message),
            why,
        ),
        None => stop(
            format_args!("panicked:\n{}", panic.message),
            format_args!("{}", panic.message),
            why,
        ),
    }
}

/// The full report of an uncontained panic (COM1, and the running test's
/// failure: `message` on one line), then QEMU exits.
fn stop(report: fmt::Arguments<'_>, message: fmt::Arguments<'_>, why: Uncontained) -> ! {
    // SAFETY: the kernel stops right after; interleaving with a lock holder is fine.
    unsafe { drivers::uart::force_write_fmt(format_args!("\n!!! PANIC: {report}\n    not contained: {why}\n")) };
    crate::report_current_task();
    #[cfg(feature = "ktest")]
    match crate::sched::try_runtime().and_then(|rt| rt.current_task_info()) {
        Some(t) => crate::ktest::fail_current(format_args!(
            "panicked: {message} (in task {} `{}`; not contained: {why})",
            t.id.as_u64(),
            t.name.unwrap_or("<unnamed>")
        )),
        None => crate::ktest::fail_current(format_args!("panicked: {message} (not contained: {why})")),
    }
    #[cfg(not(feature = "ktest"))]
    let _ = message;
    qemu::exit(qemu::ExitCode::Failure)
}
