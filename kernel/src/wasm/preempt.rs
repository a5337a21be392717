//! Preemption by the timer: a guest compiled without fuel
//! ([`lucid_wasm::Metering::Timer`]) carries no check in its code, so the kernel
//! stops it from outside. Before its instance task polls it, the task arms this
//! CPU's slot ([`arm`]) with the store and a deadline one slice away (its
//! manifest's `slice_us`, 1 ms by default), and the local APIC timer is programmed
//! for it. When the timer fires past the deadline with the CPU in the body of one of
//! the guest's functions, [`on_timer`] makes the return from the interrupt enter
//! `lucid_wasm_preempted` on the guest's own (fiber) stack, as if the guest had
//! called it there. That trampoline saves every register the guest may use (and
//! the SSE state), and calls [`preempted`], which suspends the fiber through
//! wasmtime exactly as an async hostcall awaiting a yield does: the call's future
//! returns `Pending`, the task goes to the back of its run queue, and when it is
//! polled again (on any CPU) the trampoline restores the registers and returns
//! into the guest where it stopped.
//!
//! The interrupt never suspends anything itself: it only redirects its return, so
//! the suspension runs in ordinary task context (wasmtime takes no locks there,
//! but it is Rust code that must not run in an interrupt). A deadline that finds
//! the CPU in host code (a hostcall, wasmtime's trampolines) is retried
//! [`RETRY_NS`] later; the guest cannot stay out of its own code for long without
//! blocking, which ends the poll anyway.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use wasmtime::PreemptHandle;

use super::Guest;
use crate::arch::{self, apic, idt::InterruptFrame, percpu};

/// How soon the timer looks again when a slice ended outside the guest's code.
pub const RETRY_NS: u64 = 50_000;

/// RFLAGS' interrupt-enable bit.
const RFLAGS_IF: u64 = 1 << 9;
/// Bytes below the interrupted stack pointer left alone (the System V red zone;
/// Cranelift does not use one, but nothing is lost by leaving it).
const RED_ZONE: u64 = 128;

/// One CPU's armed guest.
struct Slot {
    /// A guest's slice is being timed on this CPU.
    armed: AtomicBool,
    /// When its slice ends, in nanoseconds since boot.
    deadline_ns: AtomicU64,
    /// The guest (for its function bodies).
    guest: AtomicPtr<Guest>,
    /// Its store (read by [`preempted`] on this CPU).
    handle: UnsafeCell<Option<PreemptHandle>>,
}

// SAFETY: `handle` is written only by `arm` with this CPU's interrupts off and read
// only by `preempted`, on the same CPU, after the timer interrupt redirected the
// guest (which `arm` preceded); no two CPUs touch one slot's cell.
unsafe impl Sync for Slot {}

static SLOTS: [Slot; percpu::MAX_CPUS] = [const {
    Slot {
        armed: AtomicBool::new(false),
        deadline_ns: AtomicU64::new(u64::MAX),
        guest: AtomicPtr::new(core::ptr::null_mut()),
        handle: UnsafeCell::new(None),
    }
}; percpu::MAX_CPUS];

/// Guests suspended by the timer since boot.
static PREEMPTIONS: AtomicU64 = AtomicU64::new(0);

/// Guests suspended by the timer since boot (all CPUs).
pub fn preemptions() -> u64 {
    PREEMPTIONS.load(Ordering::Relaxed)
}

fn this_cpu() -> Option<usize> {
    percpu::try_current().map(|c| c.index as usize)
}

/// Starts a slice (its manifest's `slice_us`) for `guest`, whose store `handle` is
/// about to run on this CPU, and programs the timer for the slice's end (or for an
/// earlier sample).
pub fn arm(handle: PreemptHandle, guest: &'static Guest) {
    let Some(cpu) = this_cpu() else {
        return;
    };
    let slot = &SLOTS[cpu];
    let _irq = arch::InterruptGuard::new();
    // SAFETY: interrupts are off and only this CPU uses its slot's cell (see `Slot`).
    unsafe { *slot.handle.get() = Some(handle) };
    slot.guest
        .store(core::ptr::from_ref(guest).cast_mut(), Ordering::Relaxed);
    let now = crate::sched::now_ns();
    let deadline = now.saturating_add(guest.entry.slice_us.saturating_mul(1000));
    slot.deadline_ns.store(deadline, Ordering::Relaxed);
    slot.armed.store(true, Ordering::Release);
    let next = deadline.min(crate::sampling::next_due_ns(cpu));
    apic::start_oneshot(next.saturating_sub(now).max(1));
}

/// Ends the slice on this CPU when dropped (the poll that runs the guest
/// returned, or unwound).
#[derive(Debug)]
pub struct Slice;

impl Drop for Slice {
    fn drop(&mut self) {
        if let Some(cpu) = this_cpu() {
            SLOTS[cpu].armed.store(false, Ordering::Release);
        }
    }
}

/// From the timer interrupt: if this CPU's guest is past its deadline and stopped
/// in its own code, redirects the return from the interrupt into the trampoline.
/// Returns when the timer must fire next for this CPU's slice (`u64::MAX`: no
/// slice is armed).
pub fn on_timer(frame: &mut InterruptFrame) -> u64 {
    let Some(cpu) = this_cpu() else {
        return u64::MAX;
    };
    let slot = &SLOTS[cpu];
    if !slot.armed.load(Ordering::Acquire) {
        return u64::MAX;
    }
    let now = crate::sched::now_ns();
    let deadline = slot.deadline_ns.load(Ordering::Relaxed);
    if now < deadline {
        return deadline;
    }
    // SAFETY: `arm` stored a `&'static Guest` before setting `armed`.
    let guest = unsafe { &*slot.guest.load(Ordering::Relaxed) };
    let in_guest = frame.cs & 3 == 0 && frame.rflags & RFLAGS_IF != 0 && guest.in_body(frame.rip);
    if !in_guest {
        return now + RETRY_NS;
    }
    let rsp = frame.rsp - RED_ZONE - 8;
    // SAFETY: `rsp` lies below the interrupted guest's stack pointer on its fiber
    // stack, which keeps wasmtime's host reserve (`ASYNC_STACK_SIZE` less
    // `MAX_WASM_STACK`) free below any guest frame; the slot becomes the return
    // address the trampoline's `ret` takes back into the guest.
    unsafe { (rsp as *mut u64).write(frame.rip) };
    frame.rsp = rsp;
    frame.rip = lucid_wasm_preempted as *const () as u64;
    slot.armed.store(false, Ordering::Relaxed);
    u64::MAX
}

/// Called by the trampoline on the guest's stack with everything the guest may
/// use saved: suspends the store's fiber until the task is polled again.
/// `frame` is the trampoline's frame pointer (the guest's frame pointer is saved
/// there) and `pc` the interrupted instruction, its return address.
extern "C" fn preempted(frame: usize, pc: usize) {
    let Some(cpu) = this_cpu() else {
        return;
    };
    // SAFETY: on the CPU whose timer interrupt redirected the guest here; `arm` set
    // the cell before arming (see `Slot`).
    let Some(handle) = (unsafe { *SLOTS[cpu].handle.get() }) else {
        return;
    };
    PREEMPTIONS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: this runs on the fiber of the store's async call, entered from an
    // interrupt of that store's wasm in a function body, right below on this stack;
    // the trampoline saved every register and the SSE state, and nothing in this
    // frame has a destructor; `frame` and `pc` describe the interrupted guest.
    unsafe { handle.yield_now(frame, pc) };
}

unsafe extern "C" {
    /// The trampoline: entered by the return from the timer interrupt with the
    /// guest's `rip` on its stack as a return address, [`RED_ZONE`] bytes below its
    /// stack pointer.
    fn lucid_wasm_preempted();
}

// A frame of its own (so frame-pointer walks through it see the guest's rip as a
// return address), then RFLAGS and every caller-saved register (the callee-saved
// ones survive `preempted` by the ABI), then the x87/SSE state, aligned.
core::arch::global_asm!(
    r#"
    .section .text.lucid_wasm_preempted, "ax"
    .p2align 4
    .global lucid_wasm_preempted
lucid_wasm_preempted:
    push rbp
    mov rbp, rsp
    pushfq
    push rax
    push rcx
    push rdx
    push rsi
    push rdi
    push r8
    push r9
    push r10
    push r11
    and rsp, -64
    sub rsp, 512
    fxsave64 [rsp]
    cld
    mov rdi, rbp
    mov rsi, [rbp + 8]
    call {preempted}
    fxrstor64 [rsp]
    lea rsp, [rbp - 80]
    pop r11
    pop r10
    pop r9
    pop r8
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rax
    popfq
    pop rbp
    ret {red_zone}
"#,
    preempted = sym preempted,
    red_zone = const RED_ZONE,
);
