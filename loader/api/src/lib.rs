#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std")), no_std)]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

pub mod archive;
pub mod elf;
pub mod layout;
pub mod memmap;

pub use memmap::{MemoryKind, MemoryRegion};

/// `BootInfo::magic`: the kernel checks it before trusting anything else.
pub const BOOT_INFO_MAGIC: u64 = 0x4c55_4349_4442_4f4f; // "LUCIDBOO"

/// Upper bound of memory-map entries carried in [`BootInfo`].
pub const MAX_MEMORY_REGIONS: usize = 128;
/// Upper bound of boot modules carried in [`BootInfo`].
pub const MAX_MODULES: usize = 16;
/// Upper bound of the kernel command line in bytes.
pub const MAX_CMDLINE: usize = 512;

/// A half-open physical address range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct PhysRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl PhysRange {
    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }
    /// True when the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// A boot module: a named blob the loader left in physical memory.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Module {
    /// NUL-padded UTF-8 name (from the boot archive).
    pub name: [u8; archive::NAME_LEN],
    /// Where its bytes are.
    pub phys: PhysRange,
}

impl Module {
    /// The name up to the first NUL.
    pub fn name(&self) -> &str {
        archive::name_str(&self.name)
    }
}

/// Everything the loader tells the kernel. Lives in memory the loader reserved
/// ([`MemoryKind::Bootloader`]); the kernel receives it through the direct map.
#[derive(Debug)]
#[repr(C)]
pub struct BootInfo {
    /// [`BOOT_INFO_MAGIC`].
    pub magic: u64,
    /// Virtual address at which all physical memory is mapped ([`layout::DIRECT_MAP_OFFSET`]).
    pub direct_map_offset: u64,
    /// Physical memory map, sorted, non-overlapping, with the loader's and the
    /// modules' memory carved out of the usable ranges.
    pub memory_regions: [MemoryRegion; MAX_MEMORY_REGIONS],
    /// Valid entries in `memory_regions`.
    pub memory_region_count: u64,
    /// Frames holding the kernel image.
    pub kernel_phys: PhysRange,
    /// Frames the loader allocated and the kernel must keep (page tables, boot stack, this).
    pub loader_phys: PhysRange,
    /// The boot stack in the kernel's address space (an unmapped guard page lies below it).
    pub boot_stack_bottom: u64,
    /// One past the top of the boot stack.
    pub boot_stack_top: u64,
    /// Boot modules other than the kernel.
    pub modules: [Module; MAX_MODULES],
    /// Valid entries in `modules`.
    pub module_count: u64,
    /// The kernel command line (QEMU `-append`), not NUL terminated.
    pub cmdline: [u8; MAX_CMDLINE],
    /// Valid bytes in `cmdline`.
    pub cmdline_len: u64,
    /// Physical address of the ACPI RSDP, 0 when the firmware gave none.
    pub rsdp_phys: u64,
    /// TSC value when the loader was entered, for boot timing.
    pub loader_entry_tsc: u64,
}

impl BootInfo {
    /// The valid memory regions.
    pub fn memory_regions(&self) -> &[MemoryRegion] {
        let n = (self.memory_region_count as usize).min(MAX_MEMORY_REGIONS);
        &self.memory_regions[..n]
    }
    /// The valid boot modules.
    pub fn modules(&self) -> &[Module] {
        let n = (self.module_count as usize).min(MAX_MODULES);
        &self.modules[..n]
    }
    /// The command line, lossily as UTF-8 (invalid input gives an empty string).
    pub fn cmdline(&self) -> &str {
        let n = (self.cmdline_len as usize).min(MAX_CMDLINE);
        core::str::from_utf8(&self.cmdline[..n]).unwrap_or("")
    }
    /// Total bytes of RAM (usable plus what the loader, kernel and modules hold).
    pub fn total_ram(&self) -> u64 {
        self.memory_regions()
            .iter()
            .filter(|r| r.kind().is_ram())
            .map(|r| r.end - r.start)
            .sum()
    }
}
