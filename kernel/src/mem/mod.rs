//! Memory: physical frames, the kernel page table, kernel stacks with guard
//! pages, and the growable kernel heap.

pub mod frames;
pub mod heap;
pub mod paging;
pub mod stacks;
pub mod tlb;

use lucid_boot_api::BootInfo;

/// Virtual address of physical `phys` in the direct map.
pub fn phys_to_virt(phys: u64) -> u64 {
    phys + lucid_boot_api::layout::DIRECT_MAP_OFFSET
}

/// Brings up memory management from the loader's hand-over: the frame allocator,
/// the page table (dropping the loader's identity map), stacks and the heap.
pub fn init(boot: &BootInfo) {
    frames::init(boot);
    paging::init();
    stacks::init(boot);
    heap::init();
}
