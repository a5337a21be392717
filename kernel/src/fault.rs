//! CPU exceptions: report everything a kernel developer needs (vector, error code,
//! RIP, CR2, registers, which stack overflowed) and stop, unless the in-QEMU test
//! runner expected this fault.

use crate::arch::{self, idt::InterruptFrame};

/// What kind of fault a test can expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A write to a present, read-only page.
    Write,
    /// An instruction fetch from a no-execute page.
    Fetch,
    /// A kernel stack ran into its guard page.
    StackOverflow,
    /// An access to an unmapped page (outside any stack guard).
    Unmapped,
    /// A general protection fault.
    GeneralProtection,
    /// Another exception (by vector).
    Other(u8),
}

const NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor overrun",
    "invalid TSS",
    "segment not present",
    "stack-segment fault",
    "general protection",
    "page fault",
    "reserved",
    "x87 FP",
    "alignment check",
    "machine check",
    "SIMD FP",
    "virtualization",
    "control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "hypervisor injection",
    "VMM communication",
    "security",
    "reserved",
];

/// Classifies an exception frame.
pub fn classify(frame: &InterruptFrame, cr2: u64) -> Fault {
    match frame.vector {
        14 => {
            let present = frame.error_code & 1 != 0;
            let write = frame.error_code & 2 != 0;
            let fetch = frame.error_code & 0x10 != 0;
            if !present && crate::mem::stacks::guard_hit(cr2).is_some() {
                Fault::StackOverflow
            } else if present && fetch {
                Fault::Fetch
            } else if present && write {
                Fault::Write
            } else if !present {
                Fault::Unmapped
            } else {
                Fault::Other(14)
            }
        }
        13 => Fault::GeneralProtection,
        v => Fault::Other(v as u8),
    }
}

/// Entry from the interrupt dispatcher for vectors 0..32.
pub fn exception(frame: &mut InterruptFrame) {
    let cr2 = arch::cr2();
    if crate::wasm::traps::redirect(frame, cr2) {
        return;
    }
    let fault = classify(frame, cr2);
    #[cfg(feature = "ktest")]
    crate::ktest::pass_if_expected(fault);
    report(frame, cr2, fault);
    #[cfg(feature = "ktest")]
    crate::ktest::fail_current(format_args!(
        "unexpected {fault:?} at RIP {:#x} (CR2 {cr2:#x})",
        frame.rip
    ));
    crate::qemu::exit(crate::qemu::ExitCode::Failure);
}

/// Prints the fault report to COM1, even if another CPU holds the port lock.
pub fn report(frame: &InterruptFrame, cr2: u64, fault: Fault) {
    let v = frame.vector as usize;
    let name = NAMES.get(v).copied().unwrap_or("?");
    let p = |args: core::fmt::Arguments<'_>| {
        // SAFETY: the kernel stops right after this report; interleaving is acceptable.
        unsafe { crate::drivers::uart::force_write_fmt(args) }
    };
    p(format_args!(
        "\n!!! EXCEPTION {v} ({name}), error code {:#x}: {fault:?}\n",
        frame.error_code
    ));
    p(format_args!(
        "    RIP {:#018x}  CS {:#x}  RFLAGS {:#x}\n",
        frame.rip, frame.cs, frame.rflags
    ));
    p(format_args!(
        "    RSP {:#018x}  SS {:#x}  CR2 {cr2:#018x}\n",
        frame.rsp, frame.ss
    ));
    if let Some(stack) = crate::mem::stacks::guard_hit(cr2) {
        p(format_args!(
            "    kernel stack overflow: guard page {:#x} below stack [{:#x}, {:#x})\n",
            stack.guard, stack.bottom, stack.top
        ));
    }
    p(format_args!(
        "    RAX {:#018x} RBX {:#018x} RCX {:#018x} RDX {:#018x}\n",
        frame.rax, frame.rbx, frame.rcx, frame.rdx
    ));
    p(format_args!(
        "    RSI {:#018x} RDI {:#018x} RBP {:#018x} R8  {:#018x}\n",
        frame.rsi, frame.rdi, frame.rbp, frame.r8
    ));
    p(format_args!(
        "    R9  {:#018x} R10 {:#018x} R11 {:#018x} R12 {:#018x}\n",
        frame.r9, frame.r10, frame.r11, frame.r12
    ));
    p(format_args!(
        "    R13 {:#018x} R14 {:#018x} R15 {:#018x}\n",
        frame.r13, frame.r14, frame.r15
    ));
    crate::report_current_task();
}
