//! The kernel's page table: map, unmap and change protection, with a TLB
//! shootdown hook that SMP bring-up installs.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::SpinLock;
use lucid_boot_api::layout::DIRECT_MAP_OFFSET;
pub use lucid_mm::{Flags, MapError, Translation};
use lucid_mm::{FrameSource, PageTable};

use crate::arch::{self, InterruptGuard};

static KERNEL_TABLE: SpinLock<Option<PageTable>> = SpinLock::new(None);

/// Called after a mapping is removed or restricted, with the page address, to
/// invalidate other CPUs' TLBs. Zero until SMP installs one.
static SHOOTDOWN: AtomicUsize = AtomicUsize::new(0);

struct KernelFrames;

impl FrameSource for KernelFrames {
    fn alloc_table_frame(&mut self) -> Option<u64> {
        super::frames::alloc_zeroed()
    }
}

/// Adopts the loader's page table and drops its identity map of low memory.
pub fn init() {
    // SAFETY: CR3 holds the loader-built PML4 whose tables are all RAM inside the
    // direct map; from here on only this module edits them.
    let mut table = unsafe { PageTable::from_root(arch::cr3(), DIRECT_MAP_OFFSET) };
    table.clear_pml4_slot(0);
    arch::reload_cr3();
    *KERNEL_TABLE.lock() = Some(table);
}

/// Installs the function that invalidates a page on the other CPUs.
pub fn set_shootdown(f: fn(u64)) {
    SHOOTDOWN.store(f as usize, Ordering::Release);
}

fn flush(virt: u64) {
    arch::invlpg(virt);
    let f = SHOOTDOWN.load(Ordering::Acquire);
    if f != 0 {
        // SAFETY: only `set_shootdown` stores here, always an `fn(u64)`.
        let f: fn(u64) = unsafe { core::mem::transmute::<usize, fn(u64)>(f) };
        f(virt);
    }
}

fn with<R>(f: impl FnOnce(&mut PageTable) -> R) -> R {
    let _irq = InterruptGuard::new();
    let mut table = KERNEL_TABLE.lock();
    f(table.as_mut().expect("paging not initialised"))
}

/// Maps the page at `virt` to the frame at `phys`.
pub fn map(virt: u64, phys: u64, flags: Flags) -> Result<(), MapError> {
    with(|t| t.map(virt, phys, flags, &mut KernelFrames))
}

/// Unmaps the page at `virt` and returns its frame (the caller frees it if it owns it).
pub fn unmap(virt: u64) -> Result<u64, MapError> {
    let frame = with(|t| t.unmap(virt))?;
    flush(virt);
    Ok(frame)
}

/// Changes the permissions of the page at `virt`.
pub fn protect(virt: u64, flags: Flags) -> Result<(), MapError> {
    with(|t| t.protect(virt, flags))?;
    flush(virt);
    Ok(())
}

/// Translates `virt`. Does not block: returns `None` if the table is locked (a fault
/// handler may run while the lock is held).
pub fn translate(virt: u64) -> Option<Translation> {
    KERNEL_TABLE.try_lock()?.as_ref()?.translate(virt)
}

/// Maps `pages` fresh zeroed frames at `virt`, all or nothing: when a frame or a page
/// table cannot be had, the pages already mapped are unmapped and their frames freed,
/// so the range can be asked for again once memory is back.
pub fn map_fresh(virt: u64, pages: u64, flags: Flags) -> Result<(), MapError> {
    for i in 0..pages {
        let mapped = super::frames::alloc_zeroed()
            .ok_or(MapError::OutOfFrames)
            .and_then(|frame| map(virt + i * 4096, frame, flags).inspect_err(|_| super::frames::free(frame, 1)));
        if let Err(e) = mapped {
            unmap_fresh(virt, i);
            return Err(e);
        }
    }
    Ok(())
}

/// Unmaps `pages` pages at `virt` mapped by [`map_fresh`] and frees their frames.
fn unmap_fresh(virt: u64, pages: u64) {
    for i in 0..pages {
        if let Ok(frame) = unmap(virt + i * 4096) {
            super::frames::free(frame, 1);
        }
    }
}
