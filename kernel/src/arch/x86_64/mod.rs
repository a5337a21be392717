//! Everything x86_64-specific: descriptor tables, interrupt entry, the local APIC,
//! the PIT, and the few instructions the rest of the kernel needs.

pub mod apic;
pub mod gdt;
pub mod idt;
pub mod percpu;
pub mod pit;
pub mod smp;

pub use x86_64::instructions::port::Port;

/// Reads the time-stamp counter.
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` only reads a counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// `cpuid` leaf `leaf`, sub-leaf 0.
pub fn cpuid(leaf: u32) -> core::arch::x86_64::CpuidResult {
    core::arch::x86_64::__cpuid(leaf)
}

/// The faulting address of the last page fault.
pub fn cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// Physical address of the active PML4.
pub fn cr3() -> u64 {
    x86_64::registers::control::Cr3::read_raw().0.start_address().as_u64()
}

/// Reloads CR3, flushing all non-global TLB entries.
pub fn reload_cr3() {
    let (frame, flags) = x86_64::registers::control::Cr3::read_raw();
    // SAFETY: writing back the current value keeps the same address space.
    unsafe { x86_64::registers::control::Cr3::write_raw(frame, flags) };
}

/// Invalidates the TLB entry for `virt` on this CPU.
pub fn invlpg(virt: u64) {
    x86_64::instructions::tlb::flush(x86_64::VirtAddr::new_truncate(virt));
}

/// Reads a model-specific register.
///
/// # Safety
/// `msr` must exist on this CPU.
pub unsafe fn rdmsr(msr: u32) -> u64 {
    // SAFETY: the caller guarantees the MSR exists.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
}

/// Writes a model-specific register.
///
/// # Safety
/// `msr` must exist and `value` must not break memory safety (e.g. EFER, GS base).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller's contract.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).write(value) }
}

/// True when interrupts are enabled on this CPU.
pub fn interrupts_enabled() -> bool {
    x86_64::instructions::interrupts::are_enabled()
}

/// Enables interrupts.
pub fn enable_interrupts() {
    x86_64::instructions::interrupts::enable();
}

/// Interrupts stay disabled while this guard lives; dropping it restores the
/// previous state, also when unwinding.
#[derive(Debug)]
pub struct InterruptGuard {
    were_enabled: bool,
}

impl InterruptGuard {
    /// Disables interrupts until the guard is dropped.
    pub fn new() -> Self {
        let were_enabled = interrupts_enabled();
        x86_64::instructions::interrupts::disable();
        Self { were_enabled }
    }
}

impl Default for InterruptGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if self.were_enabled {
            x86_64::instructions::interrupts::enable();
        }
    }
}

/// Waits for the next interrupt.
pub fn halt() {
    x86_64::instructions::hlt();
}

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
