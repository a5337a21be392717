//! The local APIC (x2APIC through MSRs when the CPU has it, else xAPIC MMIO
//! through the direct map) and its timer, calibrated against the PIT.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{cpuid, idt, pit, rdmsr, wrmsr};

/// Vector of the local APIC timer.
pub const TIMER_VECTOR: u8 = 0x20;
/// Vector of spurious interrupts.
pub const SPURIOUS_VECTOR: u8 = 0xff;

const IA32_APIC_BASE: u32 = 0x1b;
const REG_ID: u32 = 0x20;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_LVT_TIMER: u32 = 0x320;
const REG_INITIAL_COUNT: u32 = 0x380;
const REG_CURRENT_COUNT: u32 = 0x390;
const REG_DIVIDE: u32 = 0x3e0;
const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
/// Divide configuration value for "divide by 16".
const DIVIDE_BY_16: u32 = 0b0011;

static X2APIC: AtomicBool = AtomicBool::new(false);
static MMIO_BASE: AtomicU64 = AtomicU64::new(0);
/// APIC timer input ticks per second after the divider.
static TIMER_HZ: AtomicU64 = AtomicU64::new(0);
/// Timer interrupts taken since boot (all CPUs).
static TICKS: AtomicU64 = AtomicU64::new(0);

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: x2APIC MSRs 0x800 + reg/16 exist once x2APIC mode is enabled.
        unsafe { rdmsr(0x800 + (reg >> 4)) as u32 }
    } else {
        let base = MMIO_BASE.load(Ordering::Relaxed);
        // SAFETY: `base` is the direct-map address of this CPU's APIC page and `reg`
        // is a valid register offset.
        unsafe { ((base + u64::from(reg)) as *const u32).read_volatile() }
    }
}

fn write(reg: u32, value: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: as in `read`; writes to these registers affect only the APIC.
        unsafe { wrmsr(0x800 + (reg >> 4), u64::from(value)) }
    } else {
        let base = MMIO_BASE.load(Ordering::Relaxed);
        // SAFETY: as in `read`.
        unsafe { ((base + u64::from(reg)) as *mut u32).write_volatile(value) }
    }
}

/// True when the APIC runs in x2APIC mode.
pub fn is_x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}

/// This CPU's APIC id.
pub fn id() -> u32 {
    if is_x2apic() { read(REG_ID) } else { read(REG_ID) >> 24 }
}

/// Signals end of interrupt.
pub fn eoi() {
    write(REG_EOI, 0);
}

/// Enables the local APIC of the bootstrap CPU (x2APIC if available), masks the PIC
/// and installs the timer and spurious handlers.
pub fn init(direct_map_offset: u64) {
    pit::disable_8259();
    enable_local();
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU.
    let base = unsafe { rdmsr(IA32_APIC_BASE) };
    MMIO_BASE.store((base & 0x000f_ffff_ffff_f000) + direct_map_offset, Ordering::Relaxed);
    configure_local();
    idt::set_handler(TIMER_VECTOR, on_timer);
    idt::set_handler(SPURIOUS_VECTOR, |_| {});
}

/// Enables the local APIC of an application processor (after [`init`] ran on the BSP).
pub fn init_ap() {
    enable_local();
    configure_local();
}

/// Software-enables this CPU's APIC with the spurious vector and leaves its timer
/// masked, dividing by 16.
fn configure_local() {
    write(REG_SVR, 0x100 | u32::from(SPURIOUS_VECTOR));
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(REG_DIVIDE, DIVIDE_BY_16);
}

/// Sets the global-enable (and x2APIC) bits of this CPU's APIC.
fn enable_local() {
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU.
    let base = unsafe { rdmsr(IA32_APIC_BASE) };
    let has_x2apic = cpuid(1).ecx & (1 << 21) != 0;
    let mut new_base = base | (1 << 11);
    if has_x2apic {
        new_base |= 1 << 10;
    }
    // SAFETY: enabling the APIC (and x2APIC mode when supported) is what the kernel wants.
    unsafe { wrmsr(IA32_APIC_BASE, new_base) };
    X2APIC.store(has_x2apic, Ordering::Relaxed);
}

/// Delivery modes of an inter-processor interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipi {
    /// A fixed interrupt on `vector`.
    Fixed(u8),
    /// INIT (resets the target into wait-for-SIPI).
    Init,
    /// Start-up at physical page `page` (address `page << 12`).
    Startup(u8),
}

/// Sends `ipi` to the CPU with APIC id `dest` and waits until the APIC accepted it.
pub fn send_ipi(dest: u32, ipi: Ipi) {
    let low = match ipi {
        Ipi::Fixed(v) => u32::from(v),
        Ipi::Init => (0b101 << 8) | (1 << 14),
        Ipi::Startup(page) => (0b110 << 8) | (1 << 14) | u32::from(page),
    };
    if is_x2apic() {
        // SAFETY: the x2APIC ICR MSR takes destination and command in one write.
        unsafe { wrmsr(0x830, (u64::from(dest) << 32) | u64::from(low)) };
    } else {
        write(REG_ICR_HIGH, dest << 24);
        write(REG_ICR_LOW, low);
        // Delivery status (bit 12) clears once the IPI has been sent.
        while read(REG_ICR_LOW) & (1 << 12) != 0 {
            core::hint::spin_loop();
        }
    }
}

/// The timer carries the earliest of this CPU's deadlines: its next sample and the
/// end of the slice of the guest it runs.
fn on_timer(frame: &mut idt::InterruptFrame) {
    TICKS.fetch_add(1, Ordering::Relaxed);
    let sample = crate::sampling::on_timer(frame);
    let slice = crate::wasm::preempt::on_timer(frame);
    let next = sample.min(slice);
    if next != u64::MAX {
        start_oneshot(next.saturating_sub(crate::sched::now_ns()).max(1));
    }
    eoi();
}

/// Timer interrupts taken since boot.
pub fn timer_ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Measures the TSC and the timer's input frequency (after the /16 divider) against
/// the PIT over the same intervals: five 20 ms runs, median. Returns `(apic_hz, tsc_hz)`.
pub fn calibrate() -> (u64, u64) {
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(REG_INITIAL_COUNT, u32::MAX);
    let (tsc_hz, apic_hz) = pit::median_rates(5, 23_864, || (super::rdtsc(), u64::from(read(REG_CURRENT_COUNT))));
    write(REG_INITIAL_COUNT, 0);
    TIMER_HZ.store(apic_hz, Ordering::Relaxed);
    (apic_hz, tsc_hz)
}

/// Timer input ticks per second (0 before [`calibrate`]).
pub fn timer_hz() -> u64 {
    TIMER_HZ.load(Ordering::Relaxed)
}

/// Fires the timer interrupt every `period_ns` nanoseconds.
pub fn start_periodic(period_ns: u64) {
    let count = (timer_hz() * period_ns / 1_000_000_000).clamp(1, u64::from(u32::MAX));
    write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
    write(REG_INITIAL_COUNT, count as u32);
}

/// Fires the timer interrupt once, `delay_ns` nanoseconds from now.
pub fn start_oneshot(delay_ns: u64) {
    let count = (timer_hz() * delay_ns / 1_000_000_000).clamp(1, u64::from(u32::MAX));
    write(REG_LVT_TIMER, u32::from(TIMER_VECTOR));
    write(REG_INITIAL_COUNT, count as u32);
}

/// Stops the timer.
pub fn stop_timer() {
    write(REG_INITIAL_COUNT, 0);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
}
