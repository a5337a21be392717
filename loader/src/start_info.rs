//! `hvm_start_info` (Xen's PVH boot ABI, `xen/include/public/arch-x86/hvm/start_info.h`).

/// `hvm_start_info::magic`.
pub const MAGIC: u32 = 0x336e_c578;

/// The start-of-day structure QEMU's PVH boot hands over in `ebx`.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct StartInfo {
    pub magic: u32,
    pub version: u32,
    pub flags: u32,
    pub nr_modules: u32,
    pub modlist_paddr: u64,
    pub cmdline_paddr: u64,
    pub rsdp_paddr: u64,
    pub memmap_paddr: u64,
    pub memmap_entries: u32,
    pub reserved: u32,
}

/// One `hvm_modlist_entry`.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct ModlistEntry {
    pub paddr: u64,
    pub size: u64,
    pub cmdline_paddr: u64,
    pub reserved: u64,
}

/// One `hvm_memmap_table_entry` (E820 types).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct MemmapEntry {
    pub addr: u64,
    pub size: u64,
    pub ty: u32,
    pub reserved: u32,
}
