//! Building the kernel's page tables while running identity mapped.

use crate::frames::BumpFrames;

/// Present.
pub const P: u64 = 1;
/// Writable.
pub const W: u64 = 1 << 1;
/// 2 MiB page (in a page-directory entry).
pub const HUGE: u64 = 1 << 7;
/// No execute.
pub const NX: u64 = 1 << 63;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// A 4-level page table under construction. Table frames are reached through
/// the loader's identity map.
pub struct AddressSpace {
    pub pml4: u64,
}

fn table(phys: u64) -> *mut u64 {
    phys as *mut u64
}

impl AddressSpace {
    pub fn new(frames: &mut BumpFrames) -> Self {
        Self {
            pml4: frames.alloc_zeroed(1),
        }
    }

    /// The next-level table for `index` in `parent`, created if absent.
    fn next(frames: &mut BumpFrames, parent: u64, index: usize) -> u64 {
        // SAFETY: `parent` is a table frame this loader allocated, identity mapped, and
        // `index < 512`.
        let entry = unsafe { table(parent).add(index) };
        // SAFETY: as above; single-threaded.
        let value = unsafe { entry.read() };
        if value & P != 0 {
            assert!(value & HUGE == 0, "mapping over a huge page");
            return value & ADDR;
        }
        let child = frames.alloc_zeroed(1);
        // SAFETY: as above.
        unsafe { entry.write(child | P | W) };
        child
    }

    /// The entry for `virt` in the table at `leaf_level` (1 = page table, 2 = page
    /// directory), creating intermediate tables.
    fn entry(&self, frames: &mut BumpFrames, virt: u64, leaf_level: u32) -> *mut u64 {
        let mut t = self.pml4;
        let mut level = 4;
        loop {
            let index = ((virt >> (12 + 9 * (level - 1))) & 0x1ff) as usize;
            if level == leaf_level {
                // SAFETY: `t` is a table frame this loader owns; `index < 512`.
                return unsafe { table(t).add(index) };
            }
            t = Self::next(frames, t, index);
            level -= 1;
        }
    }

    /// Maps one 4 KiB page.
    pub fn map_4k(&mut self, frames: &mut BumpFrames, virt: u64, phys: u64, flags: u64) {
        let e = self.entry(frames, virt, 1);
        // SAFETY: `e` points into a table frame this loader owns.
        unsafe { e.write(phys | flags | P) };
    }

    /// Maps one 2 MiB page.
    pub fn map_2m(&mut self, frames: &mut BumpFrames, virt: u64, phys: u64, flags: u64) {
        let e = self.entry(frames, virt, 2);
        // SAFETY: `e` points into a table frame this loader owns.
        unsafe { e.write(phys | flags | P | HUGE) };
    }
}
