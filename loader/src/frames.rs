//! A bump allocator over one usable RAM range, stepping over the boot modules.
//! Everything it hands out stays in use by the kernel (reported as `Bootloader`).

use lucid_boot_api::PhysRange;

pub struct BumpFrames {
    pub next: u64,
    pub limit: u64,
    pub avoid: [PhysRange; 2],
}

impl BumpFrames {
    /// `count` contiguous 4 KiB frames.
    pub fn alloc(&mut self, count: u64) -> u64 {
        let size = count * 4096;
        loop {
            let (lo, hi) = (self.next, self.next + size);
            match self.avoid.iter().find(|r| !r.is_empty() && r.start < hi && lo < r.end) {
                Some(r) => self.next = r.end.next_multiple_of(4096),
                None => break,
            }
        }
        assert!(
            self.next + size <= self.limit,
            "out of memory for the kernel image and page tables"
        );
        let at = self.next;
        self.next += size;
        at
    }

    /// `count` contiguous zeroed frames.
    pub fn alloc_zeroed(&mut self, count: u64) -> u64 {
        let at = self.alloc(count);
        // SAFETY: the frames were just handed out and are identity mapped RAM.
        unsafe { core::ptr::write_bytes(at as *mut u8, 0, (count * 4096) as usize) };
        at
    }
}
