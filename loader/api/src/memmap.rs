//! The physical memory map the kernel receives, and how the loader builds it
//! from the firmware's E820-style map without allocating.

use crate::{MAX_MEMORY_REGIONS, PhysRange};

/// What a physical range holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MemoryKind {
    /// Free RAM the kernel may allocate.
    Usable = 1,
    /// Not RAM, or firmware-reserved.
    Reserved = 2,
    /// ACPI tables (reclaimable after parsing).
    AcpiReclaimable = 3,
    /// ACPI non-volatile storage.
    AcpiNvs = 4,
    /// Defective RAM.
    Bad = 5,
    /// RAM the loader used for the kernel's page tables, boot stack and [`crate::BootInfo`].
    Bootloader = 6,
    /// RAM holding the kernel image.
    Kernel = 7,
    /// RAM holding boot modules.
    Module = 8,
}

impl MemoryKind {
    /// Maps an E820 / `hvm_memmap_table_entry` type.
    pub fn from_e820(ty: u32) -> Self {
        match ty {
            1 => Self::Usable,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Bad,
            _ => Self::Reserved,
        }
    }
    /// True for kinds backed by RAM.
    pub fn is_ram(self) -> bool {
        matches!(
            self,
            Self::Usable | Self::Bootloader | Self::Kernel | Self::Module | Self::AcpiReclaimable
        )
    }
}

/// One entry of the memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct MemoryRegion {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    kind: u32,
    _pad: u32,
}

impl MemoryRegion {
    /// The empty region used to fill arrays.
    pub const EMPTY: Self = Self {
        start: 0,
        end: 0,
        kind: MemoryKind::Reserved as u32,
        _pad: 0,
    };

    /// A region of `kind` over `[start, end)`.
    pub const fn new(start: u64, end: u64, kind: MemoryKind) -> Self {
        Self {
            start,
            end,
            kind: kind as u32,
            _pad: 0,
        }
    }

    /// What the region holds (unknown values read as reserved).
    pub fn kind(&self) -> MemoryKind {
        match self.kind {
            1 => MemoryKind::Usable,
            3 => MemoryKind::AcpiReclaimable,
            4 => MemoryKind::AcpiNvs,
            5 => MemoryKind::Bad,
            6 => MemoryKind::Bootloader,
            7 => MemoryKind::Kernel,
            8 => MemoryKind::Module,
            _ => MemoryKind::Reserved,
        }
    }
}

/// Why a memory map could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryMapError {
    /// More than [`MAX_MEMORY_REGIONS`] entries would be needed.
    Full,
}

impl core::fmt::Display for MemoryMapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Full => write!(f, "memory map needs more than {MAX_MEMORY_REGIONS} entries"),
        }
    }
}

impl core::error::Error for MemoryMapError {}

/// A fixed-capacity memory map that is kept sorted by start address.
#[derive(Clone, Debug)]
pub struct MemoryMap {
    regions: [MemoryRegion; MAX_MEMORY_REGIONS],
    len: usize,
}

impl Default for MemoryMap {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryMap {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            regions: [MemoryRegion::EMPTY; MAX_MEMORY_REGIONS],
            len: 0,
        }
    }

    /// The entries, sorted by start.
    pub fn regions(&self) -> &[MemoryRegion] {
        &self.regions[..self.len]
    }

    /// Adds a firmware region. Empty regions are ignored.
    pub fn push(&mut self, region: MemoryRegion) -> Result<(), MemoryMapError> {
        if region.end <= region.start {
            return Ok(());
        }
        if self.len == MAX_MEMORY_REGIONS {
            return Err(MemoryMapError::Full);
        }
        let at = self.regions[..self.len].partition_point(|r| r.start <= region.start);
        self.regions.copy_within(at..self.len, at + 1);
        self.regions[at] = region;
        self.len += 1;
        Ok(())
    }

    /// Marks the usable parts of `range` as `kind`, splitting usable regions as needed.
    /// Parts of `range` that are not usable RAM keep their kind.
    pub fn carve(&mut self, range: PhysRange, kind: MemoryKind) -> Result<(), MemoryMapError> {
        let mut i = 0;
        while i < self.len {
            let r = self.regions[i];
            let (lo, hi) = (r.start.max(range.start), r.end.min(range.end));
            if r.kind() != MemoryKind::Usable || lo >= hi {
                i += 1;
                continue;
            }
            // Replace `r` by up to three pieces: [r.start, lo) usable, [lo, hi) kind,
            // [hi, r.end) usable.
            let pieces = [
                MemoryRegion::new(r.start, lo, MemoryKind::Usable),
                MemoryRegion::new(lo, hi, kind),
                MemoryRegion::new(hi, r.end, MemoryKind::Usable),
            ];
            let extra = pieces.iter().filter(|p| p.end > p.start).count() - 1;
            if self.len + extra > MAX_MEMORY_REGIONS {
                return Err(MemoryMapError::Full);
            }
            self.regions.copy_within(i + 1..self.len, i + 1 + extra);
            let mut at = i;
            for p in pieces.iter().filter(|p| p.end > p.start) {
                self.regions[at] = *p;
                at += 1;
            }
            self.len += extra;
            i = at;
        }
        Ok(())
    }

    /// Copies the map into `out` and returns the number of entries.
    pub fn write_to(&self, out: &mut [MemoryRegion; MAX_MEMORY_REGIONS]) -> usize {
        out[..self.len].copy_from_slice(self.regions());
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(regions: &[(u64, u64, MemoryKind)]) -> MemoryMap {
        let mut m = MemoryMap::new();
        for &(s, e, k) in regions {
            m.push(MemoryRegion::new(s, e, k)).unwrap();
        }
        m
    }

    #[test]
    fn push_keeps_regions_sorted() {
        let m = map(&[
            (0x100000, 0x200000, MemoryKind::Usable),
            (0, 0x9f000, MemoryKind::Usable),
        ]);
        assert_eq!(m.regions()[0].start, 0);
        assert_eq!(m.regions()[1].start, 0x100000);
    }

    #[test]
    fn carve_splits_a_usable_region_in_three() {
        let mut m = map(&[(0, 0x1000_0000, MemoryKind::Usable)]);
        m.carve(
            PhysRange {
                start: 0x10_0000,
                end: 0x20_0000,
            },
            MemoryKind::Kernel,
        )
        .unwrap();
        let kinds: Vec<_> = m
            .regions()
            .iter()
            .map(|r| (r.start, r.end, r.kind()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (0, 0x10_0000, MemoryKind::Usable),
                (0x10_0000, 0x20_0000, MemoryKind::Kernel),
                (0x20_0000, 0x1000_0000, MemoryKind::Usable),
            ]
        );
    }

    #[test]
    fn carve_leaves_reserved_memory_alone_and_spans_regions() {
        let mut m = map(&[
            (0, 0x9f000, MemoryKind::Usable),
            (0x9f000, 0x100000, MemoryKind::Reserved),
            (0x100000, 0x800000, MemoryKind::Usable),
        ]);
        m.carve(
            PhysRange {
                start: 0x90000,
                end: 0x200000,
            },
            MemoryKind::Module,
        )
        .unwrap();
        let kinds: Vec<_> = m
            .regions()
            .iter()
            .map(|r| (r.start, r.end, r.kind()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (0, 0x90000, MemoryKind::Usable),
                (0x90000, 0x9f000, MemoryKind::Module),
                (0x9f000, 0x100000, MemoryKind::Reserved),
                (0x100000, 0x200000, MemoryKind::Module),
                (0x200000, 0x800000, MemoryKind::Usable),
            ]
        );
    }

    #[test]
    fn carve_reports_a_full_map() {
        let mut m = MemoryMap::new();
        for i in 0..MAX_MEMORY_REGIONS as u64 {
            m.push(MemoryRegion::new(
                i * 0x10000,
                i * 0x10000 + 0x8000,
                MemoryKind::Usable,
            ))
            .unwrap();
        }
        assert_eq!(
            m.carve(
                PhysRange {
                    start: 0x1000,
                    end: 0x2000
                },
                MemoryKind::Kernel
            ),
            Err(MemoryMapError::Full)
        );
        assert_eq!(
            m.push(MemoryRegion::new(1, 2, MemoryKind::Usable)),
            Err(MemoryMapError::Full)
        );
    }
}
