//! What the executor needs from the machine it runs on.

use alloc::string::String;
use core::fmt;

/// A panic contained while polling a task: what it said and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPanic {
    /// The panic message (empty if the payload was not a string).
    pub message: String,
    /// Where it panicked, if the platform knows.
    pub location: Option<PanicLocation>,
}

/// The source position of a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanicLocation {
    /// The source file.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl fmt::Display for PanicLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

impl fmt::Display for TaskPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(at) => write!(f, "panicked at {at}: {}", self.message),
            None => write!(f, "panicked: {}", self.message),
        }
    }
}

/// The future panicked while being polled and the panic was contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanicCaught(pub TaskPanic);

/// The embedder's side of the executor: CPU identity, idling, cross-CPU wake
/// ups, and (optionally) containing panics.
///
/// The kernel implements it with the GS-based per-CPU block, `sti; hlt`, a
/// wake-up IPI and its unwinding-based catch; host tests use
/// `ThreadPlatform` (feature `std`).
pub trait Platform: Sync {
    /// The index of the scheduler running on this CPU, or `None` outside any
    /// scheduler (early boot, a host thread that is not a CPU).
    fn current_cpu(&self) -> Option<usize>;

    /// Sleep until [`Platform::wake_cpu`] is called for `cpu` or an interrupt
    /// arrives. A wake that arrived after the executor decided to idle must
    /// not be lost: the kernel enables interrupts and halts atomically
    /// (`sti; hlt`), a host implementation keeps a wake-up token. This is
    /// also where the kernel programs its one-shot timer for
    /// [`Timer::next_deadline`](crate::Timer::next_deadline).
    fn idle(&self, cpu: usize);

    /// Wake `cpu` from [`Platform::idle`] (a wake-up IPI in the kernel). Only
    /// called when `cpu` announced it is about to idle.
    fn wake_cpu(&self, cpu: usize);

    /// Run `poll`, containing a panic if the platform can.
    ///
    /// The default cannot contain anything: a panic propagates to the caller
    /// (with `panic = "abort"`, it ends the system). A platform that can unwind
    /// returns `Err(PanicCaught)` with the panic's message and location, and
    /// the task completes as [`JoinError::Panic`](crate::JoinError::Panic). Dropping the
    /// panicked future goes through this hook too.
    fn catch_unwind(&self, poll: &mut dyn FnMut()) -> Result<(), PanicCaught> {
        poll();
        Ok(())
    }

    /// Run `f` with nothing on this CPU able to preempt it into the executor:
    /// the kernel masks interrupts. The task registry's locks are taken only
    /// inside it, because a task can be freed from an interrupt handler (the
    /// last waker dropped there). The default just calls `f`, which is right
    /// for a platform whose executor code never runs in a signal or interrupt
    /// context.
    fn without_interrupts(&self, f: &mut dyn FnMut()) {
        f();
    }
}
