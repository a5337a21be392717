//! Unwinding a panicking task's stack back to the executor's poll, built the way
//! glibc cancels a thread: [`catch_unwind`] enters an assembly trampoline that
//! saves the callee-saved registers on its own stack and calls the closure through
//! an `extern "C-unwind"` shim. The panic handler boxes the panic and forces an
//! unwind ([`unwind`]); each frame's landing pads run its destructors, and the
//! trampoline, which has no unwind tables, is where the unwinder reaches the end of
//! the stack: the stop function checks that it is the trampoline's return address
//! and resumes the trampoline there with the panic, discarding the stack below.
//!
//! The catch keeps nothing but a per-CPU depth: its saved registers are found
//! from the stack pointer the unwinder hands the stop function, so nested catches
//! (a wasm host function inside a task's poll) need no registry.

use alloc::boxed::Box;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::Ordering::Relaxed;

use lucid_executor::TaskPanic;
use unwinding::abi::{
    _Unwind_ForcedUnwind, _Unwind_GetCFA, _Unwind_GetIP, UnwindAction, UnwindContext, UnwindException, UnwindReasonCode,
};

use crate::arch::percpu;

/// `_Unwind_Exception::exception_class` of a kernel panic.
const EXCEPTION_CLASS: u64 = u64::from_be_bytes(*b"LUCIDRST");

/// What the unwinder carries: its header first, then the panic.
#[repr(C)]
struct PanicException {
    header: UnwindException,
    panic: TaskPanic,
}

// `lucid_catch(data, shim) -> *mut PanicException` (as `*mut c_void`): calls `shim(data)` and returns
// null, or the panic if one was unwound back here. The stack stays 16-byte aligned
// at the call (entry rsp is 8 mod 16, six pushes and 8 more make it 0).
// `lucid_catch_resume(rsp, exception)` returns from `lucid_catch` with `exception`,
// given the stack pointer right after its call returned.
core::arch::global_asm!(
    r#"
    .section .text.lucid_catch, "ax"
    .p2align 4
    .global lucid_catch
lucid_catch:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    sub rsp, 8
    call rsi
    .global lucid_catch_return
lucid_catch_return:
    xor eax, eax
lucid_catch_done:
    add rsp, 8
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

    .p2align 4
    .global lucid_catch_resume
lucid_catch_resume:
    mov rsp, rdi
    mov rax, rsi
    jmp lucid_catch_done
"#
);

unsafe extern "C" {
    fn lucid_catch(data: *mut c_void, shim: unsafe extern "C-unwind" fn(*mut c_void)) -> *mut c_void;
    fn lucid_catch_resume(rsp: usize, exception: *mut UnwindException) -> !;
    /// Only the address matters: where the trampoline's call returns.
    static lucid_catch_return: u8;
}

/// Runs `f`; a panic inside it that the panic handler may contain unwinds `f`'s
/// frames (running their destructors) and comes back here as `Err`.
pub fn catch_unwind(f: &mut dyn FnMut()) -> Result<(), TaskPanic> {
    /// # Safety
    /// `data` points at a live `&mut dyn FnMut()`.
    unsafe extern "C-unwind" fn call(data: *mut c_void) {
        // SAFETY: `catch_unwind` passes its `&mut dyn FnMut()`, alive for the call.
        let f = unsafe { &mut *data.cast::<&mut dyn FnMut()>() };
        f();
    }
    let cpu = percpu::current();
    let mut f = f;
    cpu.catch_depth.fetch_add(1, Relaxed);
    // SAFETY: the trampoline calls `call` with a pointer to `f`, which outlives the
    // call; it returns either normally or through `lucid_catch_resume`, with every
    // callee-saved register restored either way.
    let caught = unsafe { lucid_catch(ptr::addr_of_mut!(f).cast(), call) }.cast::<PanicException>();
    cpu.catch_depth.fetch_sub(1, Relaxed);
    if caught.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null result is the exception `unwind` leaked from a `Box`, and
    // the unwinder is done with it.
    let exception = unsafe { Box::from_raw(caught) };
    cpu.unwinding.store(false, Relaxed);
    Err(exception.panic)
}

/// Unwinds the current stack back to the innermost [`catch_unwind`], carrying
/// `panic`. Returns only if the unwinder could not start; if it reaches code
/// without unwind tables (a wasm guest, an interrupt entry) before the catch,
/// [`super::stop_uncontained`] stops the kernel.
pub(super) fn unwind(panic: TaskPanic) -> UnwindReasonCode {
    // SAFETY: every field of the header is an integer or an `Option` of a function
    // pointer, for which zero is valid (`None`, no private state yet).
    let mut header: UnwindException = unsafe { core::mem::zeroed() };
    header.exception_class = EXCEPTION_CLASS;
    let exception = Box::into_raw(Box::new(PanicException { header, panic }));
    // SAFETY: `exception` starts with its header and stays alive until the catch
    // takes it back; `stop` ends the unwind at the trampoline.
    unsafe { _Unwind_ForcedUnwind(exception.cast(), stop, ptr::null_mut()) }
}

/// The forced unwind's stop function: lets the unwinder clean up every frame, and
/// at the end of the unwind tables resumes the trampoline if that is where it is.
///
/// # Safety
/// Called by the unwinder with the exception [`unwind`] started.
unsafe extern "C" fn stop(
    _version: i32,
    actions: UnwindAction,
    _class: u64,
    exception: *mut UnwindException,
    ctx: &mut UnwindContext<'_>,
    _arg: *mut c_void,
) -> UnwindReasonCode {
    if !actions.contains(UnwindAction::END_OF_STACK) {
        return UnwindReasonCode::NO_REASON;
    }
    let ip = _Unwind_GetIP(ctx);
    if ip == ptr::addr_of!(lucid_catch_return) as usize {
        // SAFETY: the frame above is the trampoline's: the unwinder's stack pointer
        // is its rsp right after the call returned, with its saved registers above.
        unsafe { lucid_catch_resume(_Unwind_GetCFA(ctx), exception) }
    }
    // SAFETY: the exception is the `PanicException` `unwind` started.
    let panic = unsafe { &(*exception.cast::<PanicException>()).panic };
    super::stop_uncontained(panic, super::Uncontained::NoUnwindTables { ip })
}
