//! The `virtio-drivers` HAL: DMA memory is physically contiguous frames used
//! through the direct map, so device and CPU addresses are a fixed offset apart.

use core::ptr::NonNull;

use lucid_boot_api::layout::DIRECT_MAP_OFFSET;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use crate::mem::{frames, paging, phys_to_virt};

/// Bytes in one DMA page.
pub const PAGE_BYTES: usize = 4096;

/// Physically contiguous, zeroed DMA pages from [`KernelHal`], freed on drop.
///
/// It hands out raw pointers only: whether the CPU may touch a range depends on whether a
/// device owns it, which only the user of the pages knows.
#[derive(Debug)]
pub struct DmaPages {
    phys: PhysAddr,
    virt: NonNull<u8>,
    pages: usize,
}

// SAFETY: the pages are memory this value alone owns, reached through the direct map that
// every CPU shares; nothing about them is tied to the CPU that allocated them.
unsafe impl Send for DmaPages {}

impl DmaPages {
    /// `pages` zeroed pages, or `None` when physical memory runs out.
    pub fn new(pages: usize) -> Option<Self> {
        let (phys, virt) = KernelHal::dma_alloc(pages, BufferDirection::Both);
        (phys != 0).then_some(Self { phys, virt, pages })
    }

    /// A pointer to `len` bytes at `offset`, which must lie inside the pages.
    pub fn range(&self, offset: usize, len: usize) -> NonNull<[u8]> {
        assert!(
            offset
                .checked_add(len)
                .is_some_and(|end| end <= self.pages * PAGE_BYTES),
            "DMA range {offset}+{len} outside {} pages",
            self.pages
        );
        let start = self.virt.as_ptr().wrapping_add(offset);
        NonNull::new(core::ptr::slice_from_raw_parts_mut(start, len)).expect("direct map is not null")
    }

    /// Gives the pages up without freeing them, for memory a device may still write to.
    pub fn leak(&mut self) {
        self.pages = 0;
    }
}

impl Drop for DmaPages {
    fn drop(&mut self) {
        if self.pages == 0 {
            return;
        }
        // SAFETY: `phys` and `virt` came from `KernelHal::dma_alloc` for `pages` pages and
        // are freed only here, once.
        unsafe { KernelHal::dma_dealloc(self.phys, self.virt, self.pages) };
    }
}

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
        unsafe { core::ptr::write_bytes(virt, 0, pages * PAGE_BYTES) };
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
