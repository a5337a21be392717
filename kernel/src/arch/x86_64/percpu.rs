//! Per-CPU data, reached through the GS base: `gs:[0]` holds a pointer to the
//! CPU's own [`PerCpu`], so `current()` is one load.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::wrmsr;
use crate::mem::stacks::KernelStack;

const IA32_GS_BASE: u32 = 0xc000_0101;

/// Upper bound of CPUs the kernel drives.
pub const MAX_CPUS: usize = 64;

/// What each CPU keeps for itself.
#[derive(Debug)]
#[repr(C)]
pub struct PerCpu {
    /// Points at this structure (read through `gs:[0]`).
    self_ptr: *const PerCpu,
    /// Dense CPU index, 0 = the bootstrap CPU.
    pub index: u32,
    /// Local APIC id.
    pub apic_id: u32,
    /// Nesting depth of interrupt and exception handlers on this CPU.
    pub interrupt_depth: AtomicU32,
    /// Kernel spin locks ([`crate::sync::SpinLock`]) held on this CPU: a panic
    /// then must not unwind (see [`crate::panic`]).
    pub spin_locks_held: AtomicU32,
    /// Allocator calls running on this CPU.
    pub allocator_depth: AtomicU32,
    /// [`crate::panic::catch_unwind`] frames live on this CPU's stack.
    pub catch_depth: AtomicU32,
    /// A panic is being unwound on this CPU.
    pub unwinding: AtomicBool,
    /// Interrupts this CPU has taken (all vectors).
    pub interrupts: AtomicU64,
    /// IPIs this CPU has received on the test/wake-up vector.
    pub ipis: AtomicU64,
    /// The IST stacks of this CPU.
    pub ist: [KernelStack; 4],
}

// SAFETY: `self_ptr` only ever points at the structure itself, which is never freed;
// every mutable field is atomic.
unsafe impl Sync for PerCpu {}
// SAFETY: as above.
unsafe impl Send for PerCpu {}

static CPUS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static ONLINE: AtomicU32 = AtomicU32::new(0);

/// Creates this CPU's block, points GS at it and publishes it.
pub fn init_cpu(index: u32, apic_id: u32, ist: [KernelStack; 4]) -> &'static PerCpu {
    assert!((index as usize) < MAX_CPUS, "CPU index {index} beyond MAX_CPUS");
    let cpu: &'static mut PerCpu = Box::leak(Box::new(PerCpu {
        self_ptr: core::ptr::null(),
        index,
        apic_id,
        interrupt_depth: AtomicU32::new(0),
        spin_locks_held: AtomicU32::new(0),
        allocator_depth: AtomicU32::new(0),
        catch_depth: AtomicU32::new(0),
        unwinding: AtomicBool::new(false),
        interrupts: AtomicU64::new(0),
        ipis: AtomicU64::new(0),
        ist,
    }));
    cpu.self_ptr = cpu;
    // SAFETY: IA32_GS_BASE exists on every x86_64 CPU; the block lives forever.
    unsafe { wrmsr(IA32_GS_BASE, cpu as *const PerCpu as u64) };
    CPUS[index as usize].store(cpu as *const PerCpu as u64, Ordering::Release);
    ONLINE.fetch_add(1, Ordering::AcqRel);
    cpu
}

/// This CPU's block, or `None` before [`init_cpu`] ran on it.
pub fn try_current() -> Option<&'static PerCpu> {
    // GS base is zero until `init_cpu`; reading gs:[0] then would read address 0.
    let base: u64;
    // SAFETY: reading the GS base MSR has no side effects.
    unsafe { base = super::rdmsr(IA32_GS_BASE) };
    if base == 0 {
        return None;
    }
    // SAFETY: a non-zero GS base is only ever set by `init_cpu`.
    Some(unsafe { current_unchecked() })
}

/// This CPU's block, read through `gs:[0]` without checking that GS is set up.
///
/// # Safety
/// [`init_cpu`] must have run on this CPU (with a zero GS base this reads address 0).
pub unsafe fn current_unchecked() -> &'static PerCpu {
    let ptr: *const PerCpu;
    // SAFETY: the caller guarantees GS points at this CPU's block.
    unsafe { core::arch::asm!("mov {}, gs:[0]", out(reg) ptr, options(nostack, readonly, preserves_flags)) };
    // SAFETY: `ptr` is the leaked, never-freed block of this CPU.
    unsafe { &*ptr }
}

/// This CPU's block.
///
/// # Panics
/// Before [`init_cpu`] ran on this CPU.
pub fn current() -> &'static PerCpu {
    try_current().expect("per-CPU data not initialised on this CPU")
}

/// CPUs that have come online.
pub fn online() -> u32 {
    ONLINE.load(Ordering::Acquire)
}

/// The block of CPU `index`, if it is online.
pub fn cpu(index: usize) -> Option<&'static PerCpu> {
    let p = CPUS.get(index)?.load(Ordering::Acquire);
    // SAFETY: only `init_cpu` stores here: pointers to leaked, never-freed blocks.
    (p != 0).then(|| unsafe { &*(p as *const PerCpu) })
}
