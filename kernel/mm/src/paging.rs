//! An x86_64 4-level page table reached through an offset mapping of physical
//! memory (`virt = phys + offset`): the kernel's direct map, or on the host
//! ordinary heap memory with offset 0.

use crate::PAGE_SIZE;

const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const ENTRIES: usize = 512;

/// Leaf permissions of a 4 KiB mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(u64);

impl Flags {
    /// Present.
    pub const PRESENT: Self = Self(1);
    /// Writable.
    pub const WRITABLE: Self = Self(1 << 1);
    /// Reachable from ring 3.
    pub const USER: Self = Self(1 << 2);
    /// Write-through caching.
    pub const WRITE_THROUGH: Self = Self(1 << 3);
    /// Caching disabled (MMIO).
    pub const NO_CACHE: Self = Self(1 << 4);
    /// 2 MiB / 1 GiB page (directory-level entries only).
    pub const HUGE: Self = Self(1 << 7);
    /// Kept in the TLB across CR3 loads.
    pub const GLOBAL: Self = Self(1 << 8);
    /// No instruction fetch.
    pub const NO_EXECUTE: Self = Self(1 << 63);

    /// Read-only, not executable.
    pub const READ: Self = Self(Self::PRESENT.0 | Self::NO_EXECUTE.0);
    /// Read-write, not executable.
    pub const READ_WRITE: Self = Self(Self::READ.0 | Self::WRITABLE.0);
    /// Read and execute.
    pub const READ_EXECUTE: Self = Self::PRESENT;

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }
    /// From raw entry bits (the address part is dropped).
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits & !ADDR_MASK)
    }
    /// True when every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Where page-table frames come from.
pub trait FrameSource {
    /// One zeroed 4 KiB frame, or `None` when memory is exhausted.
    fn alloc_table_frame(&mut self) -> Option<u64>;
}

/// Why a mapping operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The page is already mapped.
    AlreadyMapped(u64),
    /// The page is not mapped.
    NotMapped(u64),
    /// A huge page covers the address (the direct map); split mappings are not supported.
    HugePage(u64),
    /// No frame for an intermediate table.
    OutOfFrames,
    /// The address is not 4 KiB aligned or not canonical.
    BadAddress(u64),
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::AlreadyMapped(v) => write!(f, "page {v:#x} is already mapped"),
            Self::NotMapped(v) => write!(f, "page {v:#x} is not mapped"),
            Self::HugePage(v) => write!(f, "{v:#x} lies in a huge page"),
            Self::OutOfFrames => write!(f, "out of frames for page tables"),
            Self::BadAddress(v) => write!(f, "{v:#x} is not a page-aligned canonical address"),
        }
    }
}

impl core::error::Error for MapError {}

/// The result of a translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Physical address of the byte.
    pub phys: u64,
    /// The leaf entry's flags.
    pub flags: Flags,
    /// Size of the page that maps it.
    pub page_size: u64,
}

/// A page table rooted at a PML4 frame.
#[derive(Debug)]
pub struct PageTable {
    pml4: u64,
    offset: u64,
}

fn canonical(virt: u64) -> bool {
    let top = virt >> 47;
    top == 0 || top == 0x1ffff
}

fn index(virt: u64, level: u32) -> usize {
    ((virt >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

impl PageTable {
    /// Wraps the table whose PML4 is at `pml4` (physical).
    ///
    /// # Safety
    /// `pml4` must be a valid PML4 whose tables are all reachable at `phys + offset`,
    /// and nothing else may modify them while this value exists.
    pub unsafe fn from_root(pml4: u64, offset: u64) -> Self {
        Self { pml4, offset }
    }

    /// Physical address of the PML4 (for CR3).
    pub fn root(&self) -> u64 {
        self.pml4
    }

    fn entry(&self, table: u64, i: usize) -> *mut u64 {
        debug_assert!(i < ENTRIES);
        ((table + self.offset) as *mut u64).wrapping_add(i)
    }

    fn read(&self, table: u64, i: usize) -> u64 {
        // SAFETY: `table` is a table frame of this hierarchy (from_root's contract),
        // reachable at `table + offset`, and `i < 512`.
        unsafe { self.entry(table, i).read_volatile() }
    }

    fn write(&mut self, table: u64, i: usize, value: u64) {
        // SAFETY: as in `read`; `&mut self` gives exclusive access.
        unsafe { self.entry(table, i).write_volatile(value) }
    }

    /// Walks to the page table (level 1) for `virt`, creating tables when `frames` is given.
    fn walk(&mut self, virt: u64, mut frames: Option<&mut dyn FrameSource>) -> Result<u64, MapError> {
        let mut table = self.pml4;
        for level in (2..=4).rev() {
            let i = index(virt, level);
            let e = self.read(table, i);
            if e & Flags::PRESENT.0 == 0 {
                let Some(src) = frames.as_deref_mut() else {
                    return Err(MapError::NotMapped(virt));
                };
                let child = src.alloc_table_frame().ok_or(MapError::OutOfFrames)?;
                // Intermediate entries grant everything; the leaf decides.
                self.write(table, i, child | Flags::PRESENT.0 | Flags::WRITABLE.0);
                table = child;
            } else if e & Flags::HUGE.0 != 0 {
                return Err(MapError::HugePage(virt));
            } else {
                table = e & ADDR_MASK;
            }
        }
        Ok(table)
    }

    fn check(virt: u64) -> Result<(), MapError> {
        if !virt.is_multiple_of(PAGE_SIZE) || !canonical(virt) {
            return Err(MapError::BadAddress(virt));
        }
        Ok(())
    }

    /// Maps the 4 KiB page at `virt` to `phys` with `flags` (PRESENT is implied).
    /// The caller flushes nothing: a new mapping is never cached in a TLB.
    pub fn map(&mut self, virt: u64, phys: u64, flags: Flags, frames: &mut dyn FrameSource) -> Result<(), MapError> {
        Self::check(virt)?;
        let pt = self.walk(virt, Some(frames))?;
        let i = index(virt, 1);
        if self.read(pt, i) & Flags::PRESENT.0 != 0 {
            return Err(MapError::AlreadyMapped(virt));
        }
        self.write(pt, i, (phys & ADDR_MASK) | (flags | Flags::PRESENT).0);
        Ok(())
    }

    /// Unmaps the page at `virt` and returns the frame it mapped. The caller must
    /// invalidate the TLB entry (locally and on other CPUs).
    pub fn unmap(&mut self, virt: u64) -> Result<u64, MapError> {
        Self::check(virt)?;
        let pt = self.walk(virt, None)?;
        let i = index(virt, 1);
        let e = self.read(pt, i);
        if e & Flags::PRESENT.0 == 0 {
            return Err(MapError::NotMapped(virt));
        }
        self.write(pt, i, 0);
        Ok(e & ADDR_MASK)
    }

    /// Replaces the flags of the page at `virt`. The caller must invalidate the TLB entry.
    pub fn protect(&mut self, virt: u64, flags: Flags) -> Result<(), MapError> {
        Self::check(virt)?;
        let pt = self.walk(virt, None)?;
        let i = index(virt, 1);
        let e = self.read(pt, i);
        if e & Flags::PRESENT.0 == 0 {
            return Err(MapError::NotMapped(virt));
        }
        self.write(pt, i, (e & ADDR_MASK) | (flags | Flags::PRESENT).0);
        Ok(())
    }

    /// Translates any virtual address, following huge pages.
    pub fn translate(&self, virt: u64) -> Option<Translation> {
        if !canonical(virt) {
            return None;
        }
        let mut table = self.pml4;
        for level in (1..=4).rev() {
            let e = self.read(table, index(virt, level));
            if e & Flags::PRESENT.0 == 0 {
                return None;
            }
            let page_size = PAGE_SIZE << (9 * (level - 1));
            if level == 1 || (level <= 3 && e & Flags::HUGE.0 != 0) {
                let base = e & ADDR_MASK & !(page_size - 1);
                return Some(Translation {
                    phys: base + (virt & (page_size - 1)),
                    flags: Flags::from_bits(e),
                    page_size,
                });
            }
            table = e & ADDR_MASK;
        }
        None
    }

    /// Clears PML4 entry `slot` (e.g. the loader's identity map). The caller reloads CR3.
    pub fn clear_pml4_slot(&mut self, slot: usize) {
        self.write(self.pml4, slot, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(4096))]
    struct Frame([u8; 4096]);

    /// Heap frames posing as physical memory (offset 0).
    struct HeapFrames(Vec<Box<Frame>>);

    impl FrameSource for HeapFrames {
        fn alloc_table_frame(&mut self) -> Option<u64> {
            if self.0.len() >= 64 {
                return None;
            }
            let f = Box::new(Frame([0; 4096]));
            let p = &*f as *const Frame as u64;
            self.0.push(f);
            Some(p)
        }
    }

    fn table() -> (PageTable, HeapFrames) {
        let mut frames = HeapFrames(Vec::new());
        let root = frames.alloc_table_frame().unwrap();
        // SAFETY: `root` is a zeroed frame owned by `frames`, offset 0 on the host.
        (unsafe { PageTable::from_root(root, 0) }, frames)
    }

    #[test]
    fn map_translate_protect_unmap() {
        let (mut pt, mut frames) = table();
        let virt = 0xffff_d000_0000_3000;
        pt.map(virt, 0x1234_5000, Flags::READ_WRITE, &mut frames).unwrap();
        let t = pt.translate(virt + 0x10).unwrap();
        assert_eq!(t.phys, 0x1234_5010);
        assert!(t.flags.contains(Flags::WRITABLE | Flags::NO_EXECUTE));
        assert_eq!(
            pt.map(virt, 0x1000, Flags::READ, &mut frames),
            Err(MapError::AlreadyMapped(virt))
        );
        pt.protect(virt, Flags::READ).unwrap();
        assert!(!pt.translate(virt).unwrap().flags.contains(Flags::WRITABLE));
        assert_eq!(pt.unmap(virt), Ok(0x1234_5000));
        assert_eq!(pt.translate(virt), None);
        assert_eq!(pt.unmap(virt), Err(MapError::NotMapped(virt)));
        // root + PDPT + PD + PT
        assert_eq!(frames.0.len(), 4);
    }

    #[test]
    fn neighbours_share_tables_and_bad_addresses_are_refused() {
        let (mut pt, mut frames) = table();
        for k in 0..512 {
            pt.map(0x40_0000 + k * 4096, k * 4096, Flags::READ, &mut frames)
                .unwrap();
        }
        assert_eq!(frames.0.len(), 4);
        assert_eq!(
            pt.map(0x123, 0, Flags::READ, &mut frames),
            Err(MapError::BadAddress(0x123))
        );
        assert_eq!(
            pt.map(0x0000_8000_0000_0000, 0, Flags::READ, &mut frames),
            Err(MapError::BadAddress(0x0000_8000_0000_0000))
        );
    }

    #[test]
    fn huge_pages_translate_and_block_small_mappings() {
        let (mut pt, mut frames) = table();
        pt.map(0x1000, 0x1000, Flags::READ, &mut frames).unwrap();
        // Turn PD entry 1 into a 2 MiB page by hand, as the loader's direct map does.
        let pdpt = pt.read(pt.root(), 0) & ADDR_MASK;
        let pd = pt.read(pdpt, 0) & ADDR_MASK;
        pt.write(pd, 1, 0x4000_0000 | Flags::PRESENT.0 | Flags::HUGE.0);
        let t = pt.translate(0x20_1234).unwrap();
        assert_eq!((t.phys, t.page_size), (0x4000_1234, 2 << 20));
        assert_eq!(
            pt.map(0x20_1000, 0, Flags::READ, &mut frames),
            Err(MapError::HugePage(0x20_1000))
        );
    }

    #[test]
    fn exhausted_frames_are_an_error() {
        let (mut pt, mut frames) = table();
        let mut err = None;
        for k in 0..100u64 {
            if let Err(e) = pt.map(k << 30, 0, Flags::READ, &mut frames) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(MapError::OutOfFrames));
    }
}
