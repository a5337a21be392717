//! The kernel's virtual address space. Each region owns whole PML4 slots so that
//! the loader and the kernel never share a page-table page by accident.

/// Where the kernel image is linked (`-C code-model=kernel`: the top 2 GiB).
pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;
/// All physical memory is mapped here: `virt = phys + DIRECT_MAP_OFFSET` (PML4 slot 256).
pub const DIRECT_MAP_OFFSET: u64 = 0xffff_8000_0000_0000;
/// The kernel heap grows upwards from here (PML4 slot 384).
pub const HEAP_BASE: u64 = 0xffff_c000_0000_0000;
/// Upper bound of the heap region (512 GiB).
pub const HEAP_LIMIT: u64 = HEAP_BASE + (1 << 39);
/// Kernel stacks (each with an unmapped guard page below it) are carved from here
/// (PML4 slot 416).
pub const STACKS_BASE: u64 = 0xffff_d000_0000_0000;
/// Upper bound of the stack region.
pub const STACKS_LIMIT: u64 = STACKS_BASE + (1 << 39);
/// WebAssembly memories and code images are carved from here in fixed slots, each
/// mapped only where accessible (PML4 slots 448..480: 16 TiB).
pub const WASM_BASE: u64 = 0xffff_e000_0000_0000;
/// Upper bound of the WebAssembly region.
pub const WASM_LIMIT: u64 = WASM_BASE + (1 << 44);
/// The boot stack the loader maps (PML4 slot 509); the page below it stays unmapped.
pub const BOOT_STACK_GUARD: u64 = 0xffff_fe80_0000_0000;
/// Size of the boot stack.
pub const BOOT_STACK_SIZE: u64 = 256 * 1024;
/// Bottom of the boot stack (just above the guard page).
pub const BOOT_STACK_BOTTOM: u64 = BOOT_STACK_GUARD + PAGE_SIZE;
/// One past the top of the boot stack.
pub const BOOT_STACK_TOP: u64 = BOOT_STACK_BOTTOM + BOOT_STACK_SIZE;
/// The page size used for everything but the direct map.
pub const PAGE_SIZE: u64 = 4096;
/// The page size of the direct map.
pub const HUGE_PAGE_SIZE: u64 = 2 * 1024 * 1024;

/// Index of the PML4 slot that covers `virt`.
pub const fn pml4_index(virt: u64) -> usize {
    ((virt >> 39) & 0x1ff) as usize
}

/// Physical to direct-map virtual.
pub const fn phys_to_virt(phys: u64) -> u64 {
    phys + DIRECT_MAP_OFFSET
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_do_not_share_pml4_slots() {
        let slots = [
            pml4_index(DIRECT_MAP_OFFSET),
            pml4_index(HEAP_BASE),
            pml4_index(STACKS_BASE),
            pml4_index(BOOT_STACK_GUARD),
            pml4_index(KERNEL_BASE),
        ];
        for (i, a) in slots.iter().enumerate() {
            for b in &slots[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(slots, [256, 384, 416, 509, 511]);
        assert_eq!(pml4_index(HEAP_LIMIT - 1), pml4_index(HEAP_BASE));
        assert_eq!(pml4_index(STACKS_LIMIT - 1), pml4_index(STACKS_BASE));
    }
}
