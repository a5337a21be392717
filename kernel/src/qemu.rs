//! Ending the QEMU run through `isa-debug-exit` (port 0xf4): QEMU exits with
//! status `(code << 1) | 1`. `xtask` maps these statuses back.

use crate::arch::Port;

/// Why the kernel asks QEMU to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// Everything passed / orderly shutdown (status 33).
    Success = 0x10,
    /// A failure (status 35).
    Failure = 0x11,
    /// The in-QEMU test runner stopped inside a test (a fault or panic it reported);
    /// xtask restarts the kernel at the next test (status 37).
    TestInterrupted = 0x12,
}

/// Stops QEMU. Without an isa-debug-exit device the CPU halts instead.
pub fn exit(code: ExitCode) -> ! {
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit device (ignored when absent).
    unsafe { Port::<u32>::new(0xf4).write(code as u32) };
    crate::arch::halt_forever()
}
