//! Traps by fault (`custom-native-signals`): guest code checks no bounds (see
//! [`super::vm`]), so an out-of-bounds access page-faults, and `unreachable`, a stack
//! overflow and other trap sites are `ud2` (or a divide error). The exception
//! handler ([`redirect`]) recognises such a fault by its RIP in published guest code
//! and returns from the exception into [`landing`], which calls wasmtime's trap
//! handler in ordinary task context (it allocates a backtrace and takes locks,
//! neither of which an exception handler may do); wasmtime then resumes at the
//! host's entry into wasm with the trap as the call's error.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::arch::idt::InterruptFrame;

/// Published guest code ranges that can be live at once.
const MAX_RANGES: usize = 256;

/// Start and end of each published code range (0, 0: a free entry).
static RANGES: [(AtomicU64, AtomicU64); MAX_RANGES] = [const { (AtomicU64::new(0), AtomicU64::new(0)) }; MAX_RANGES];

/// wasmtime's trap handler, `extern "C" fn(pc, fp, has_faulting_addr, faulting_addr)`.
static HANDLER: AtomicUsize = AtomicUsize::new(0);

type TrapHandler = extern "C" fn(usize, usize, bool, usize);

/// Records `start..end` as guest code. `false` when the table is full.
pub fn publish(start: u64, end: u64) -> bool {
    for (s, e) in &RANGES {
        if s.compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            e.store(end, Ordering::Release);
            return true;
        }
    }
    false
}

/// Forgets the code range that starts at `start`.
pub fn unpublish(start: u64) {
    for (s, e) in &RANGES {
        if s.load(Ordering::Acquire) == start {
            e.store(0, Ordering::Release);
            s.store(0, Ordering::Release);
            return;
        }
    }
}

/// Whether `rip` lies in published guest code.
pub fn in_guest_code(rip: u64) -> bool {
    RANGES.iter().any(|(s, e)| {
        let start = s.load(Ordering::Acquire);
        start != 0 && (start..e.load(Ordering::Acquire)).contains(&rip)
    })
}

#[unsafe(no_mangle)]
extern "C" fn wasmtime_init_traps(handler: TrapHandler) -> i32 {
    HANDLER.store(handler as usize, Ordering::Release);
    0
}

/// If the exception in `frame` is a guest trap, rewrites the frame so the return
/// from the exception enters [`landing`] on the guest's stack, and says so.
///
/// Guest traps are divide errors, invalid opcodes (`ud2`) and page faults (beyond a
/// linear memory's accessible pages, or through a null function reference near
/// address 0), raised by published guest code running in ring 0. wasmtime then
/// checks that the instruction is a trap site of that kind.
pub fn redirect(frame: &mut InterruptFrame, cr2: u64) -> bool {
    let fault_addr = match frame.vector {
        0 | 6 => None,
        14 => Some(cr2),
        _ => return false,
    };
    if frame.cs & 3 != 0 || HANDLER.load(Ordering::Acquire) == 0 || !in_guest_code(frame.rip) {
        return false;
    }
    // The guest's frame is abandoned: wasmtime unwinds to the host below it. Below
    // its stack pointer, leave a null return address (backtraces end there) with
    // the stack aligned as at a function's entry.
    let rsp = (frame.rsp & !15) - 64 - 8;
    // SAFETY: `rsp` lies below the interrupted guest's stack pointer on its fiber
    // stack, which has at least wasmtime's host reserve (`ASYNC_STACK_SIZE` less
    // `MAX_WASM_STACK`) free below any guest frame; nothing live is there.
    unsafe { (rsp as *mut u64).write(0) };
    frame.rdi = frame.rip;
    frame.rsi = frame.rbp;
    frame.rdx = u64::from(fault_addr.is_some());
    frame.rcx = fault_addr.unwrap_or(0);
    frame.rip = landing as *const () as u64;
    frame.rsp = rsp;
    true
}

/// Where a guest trap continues after its exception returned: hands the trap to
/// wasmtime, which does not return if the fault was a trap site.
extern "C" fn landing(pc: usize, fp: usize, has_faulting_addr: bool, faulting_addr: usize) -> ! {
    let h = HANDLER.load(Ordering::Acquire);
    // SAFETY: `redirect` only comes here once `HANDLER` was set, and only
    // `wasmtime_init_traps` stores into it, always a `TrapHandler`.
    let handler: TrapHandler = unsafe { core::mem::transmute::<usize, TrapHandler>(h) };
    handler(pc, fp, has_faulting_addr, faulting_addr);
    // wasmtime found no trap site at `pc`: a fault in guest code that is not the
    // guest's doing (a code generator bug). Stop like any other kernel fault.
    // SAFETY: the kernel stops right after this report; interleaving is acceptable.
    unsafe {
        crate::drivers::uart::force_write_fmt(format_args!(
            "\n!!! fault in wasm code at {pc:#x} (address {faulting_addr:#x}) is not a wasm trap site\n"
        ));
    }
    crate::report_current_task();
    #[cfg(feature = "ktest")]
    crate::ktest::fail_current(format_args!("fault in wasm code at {pc:#x} is not a wasm trap site"));
    crate::qemu::exit(crate::qemu::ExitCode::Failure)
}
