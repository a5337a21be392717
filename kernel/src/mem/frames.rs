//! The physical frame allocator: a bitmap over all RAM, fed by the loader's map.

use crate::sync::SpinLock;
use lucid_boot_api::{BootInfo, MemoryKind};
use lucid_mm::{FrameBitmap, PAGE_SIZE};

use super::phys_to_virt;
use crate::arch::InterruptGuard;

static FRAMES: SpinLock<Option<FrameBitmap<'static>>> = SpinLock::new(None);

/// Memory below 1 MiB stays reserved (real-mode trampolines, firmware).
const LOW_MEMORY: u64 = 0x10_0000;

/// Builds the bitmap in the first usable range large enough to hold it.
pub fn init(boot: &BootInfo) {
    let regions = boot.memory_regions();
    let ram_end = regions
        .iter()
        .filter(|r| r.kind().is_ram())
        .map(|r| r.end)
        .max()
        .unwrap_or(0);
    let frames = ram_end.div_ceil(PAGE_SIZE);
    let words = frames.div_ceil(64) as usize;
    let bytes = (words * 8) as u64;
    let home = regions
        .iter()
        .filter(|r| r.kind() == MemoryKind::Usable && r.start >= LOW_MEMORY)
        .find(|r| r.end - r.start.next_multiple_of(PAGE_SIZE) >= bytes)
        .expect("no usable RAM for the frame bitmap");
    let bitmap_phys = home.start.next_multiple_of(PAGE_SIZE);
    // SAFETY: `bitmap_phys` starts a usable RAM range of at least `bytes` bytes that
    // nothing else uses (it is reserved below before any frame is handed out), reached
    // through the direct map; u64 has no invalid bit patterns.
    let storage = unsafe { core::slice::from_raw_parts_mut(phys_to_virt(bitmap_phys) as *mut u64, words) };
    let mut bitmap = FrameBitmap::new(0, storage);
    for r in regions.iter().filter(|r| r.kind() == MemoryKind::Usable) {
        bitmap.free_range(r.start.max(LOW_MEMORY), r.end);
    }
    bitmap.reserve_range(bitmap_phys, bitmap_phys + bytes);
    *FRAMES.lock() = Some(bitmap);
}

fn with<R>(f: impl FnOnce(&mut FrameBitmap<'static>) -> R) -> R {
    let _irq = InterruptGuard::new();
    let mut frames = FRAMES.lock();
    f(frames.as_mut().expect("frame allocator not initialised"))
}

/// One free frame.
pub fn alloc() -> Option<u64> {
    with(|b| b.alloc())
}

/// One zeroed frame.
pub fn alloc_zeroed() -> Option<u64> {
    let f = alloc()?;
    // SAFETY: the frame was just allocated, so nothing else refers to it; it is RAM
    // reached through the direct map.
    unsafe { core::ptr::write_bytes(phys_to_virt(f) as *mut u8, 0, PAGE_SIZE as usize) };
    Some(f)
}

/// `count` physically contiguous frames aligned to `align` frames.
pub fn alloc_contiguous(count: usize, align: usize) -> Option<u64> {
    with(|b| b.alloc_contiguous(count, align))
}

/// Returns `count` frames starting at `phys`.
pub fn free(phys: u64, count: usize) {
    with(|b| b.free(phys, count))
}

/// Frames currently free.
pub fn free_frames() -> u64 {
    with(|b| b.free_frames())
}
