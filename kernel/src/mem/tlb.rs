//! TLB shootdown: after a mapping is removed, every other CPU drops what its TLB
//! may still cache of it before the frames or the addresses are used again.
//! [`shootdown`] asks each other online CPU to reload CR3 (an IPI on [`VECTOR`]) and
//! waits until each has done so.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::{self, apic, idt, percpu};

/// The shootdown IPI's vector.
pub const VECTOR: u8 = 0xf2;

/// The latest shootdown asked for.
static REQUESTED: AtomicU64 = AtomicU64::new(0);
/// The latest shootdown each CPU has carried out.
static DONE: [AtomicU64; percpu::MAX_CPUS] = [const { AtomicU64::new(0) }; percpu::MAX_CPUS];

/// Installs the IPI handler. Call once, before a second CPU starts.
pub fn init() {
    idt::set_handler(VECTOR, on_ipi);
}

fn on_ipi(_frame: &mut idt::InterruptFrame) {
    if let Some(cpu) = percpu::try_current() {
        serve(cpu.index as usize);
    }
    apic::eoi();
}

/// Carries out every shootdown asked for so far on CPU `index` (this one).
fn serve(index: usize) {
    // Read the request before flushing: a request made after this read is not
    // claimed as done by this flush.
    let requested = REQUESTED.load(Ordering::Acquire);
    arch::reload_cr3();
    DONE[index].fetch_max(requested, Ordering::Release);
}

/// Flushes the TLB of every other CPU and returns once all have (the caller
/// invalidated its own entries already: `paging` does so page by page).
///
/// Two CPUs shooting down at once serve each other's request while they wait, by
/// IPI or, with interrupts masked, by polling.
///
/// Returns the shootdown's generation (0 when there is no other CPU).
pub fn shootdown() -> u64 {
    let online = percpu::online() as usize;
    let Some(me) = percpu::try_current().filter(|_| online > 1) else {
        return 0;
    };
    let generation = REQUESTED.fetch_add(1, Ordering::AcqRel) + 1;
    for i in (0..online).filter(|&i| i != me.index as usize) {
        if let Some(cpu) = percpu::cpu(i) {
            apic::send_ipi(cpu.apic_id, apic::Ipi::Fixed(VECTOR));
        }
    }
    for i in (0..online).filter(|&i| i != me.index as usize) {
        while DONE[i].load(Ordering::Acquire) < generation {
            // Serve the others' requests while waiting, in case this CPU runs with
            // interrupts masked: two such CPUs would otherwise wait for each other.
            if DONE[me.index as usize].load(Ordering::Relaxed) < REQUESTED.load(Ordering::Acquire) {
                serve(me.index as usize);
            }
            core::hint::spin_loop();
        }
    }
    generation
}

/// The latest shootdown CPU `index` has carried out.
pub fn done(index: usize) -> u64 {
    DONE.get(index).map_or(0, |d| d.load(Ordering::Acquire))
}
