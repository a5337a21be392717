//! The `virtio-drivers` HAL: DMA memory is physically contiguous frames used
//! through the direct map, so device and CPU addresses are a fixed offset apart.

use core::ptr::NonNull;

use lucid_boot_api::layout::DIRECT_MAP_OFFSET;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use crate::mem::{frames, paging, phys_to_virt};

/// The kernel's virtio HAL.
#[derive(Debug)]
pub struct KernelHal;

/// Physical address of `virt`, which must lie in the direct map or in mapped pages that
/// are physically contiguous for `len` bytes.
fn dma_address(virt: u64, len: usize) -> PhysAddr {
    if (DIRECT_MAP_OFFSET..lucid_boot_api::layout::HEAP_BASE).contains(&virt) {
        return virt - DIRECT_MAP_OFFSET;
    }
    let start = paging::translate(virt).expect("DMA buffer is not mapped").phys;
    let mut page = virt & !0xfff;
    while page < virt + len as u64 {
        let t = paging::translate(page).expect("DMA buffer is not mapped");
        assert_eq!(t.phys, start - (virt - page), "DMA buffer is not physically contiguous");
        page += 4096;
    }
    start
}

// SAFETY: `dma_alloc` returns zeroed, physically contiguous frames that nothing else
// uses, and `share` returns the physical address of the exact buffer handed in.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(phys) = frames::alloc_contiguous(pages, 1) else {
            return (0, NonNull::dangling());
        };
        let virt = phys_to_virt(phys) as *mut u8;
        // SAFETY: the frames were just allocated and are reached through the direct map.
        unsafe { core::ptr::write_bytes(virt, 0, pages * 4096) };
        (phys, NonNull::new(virt).expect("direct map is not null"))
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        frames::free(paddr, pages);
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(phys_to_virt(paddr) as *mut u8).expect("direct map is not null")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        dma_address(buffer.as_ptr() as *mut u8 as u64, buffer.len())
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
