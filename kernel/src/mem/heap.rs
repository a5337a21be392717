//! The kernel heap: talc over a region that grows on demand. When talc runs out
//! it asks [`GrowHeap`], which maps fresh frames right after the heap's end.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::Ordering::Relaxed;

use lucid_boot_api::layout::{HEAP_BASE, HEAP_LIMIT, PAGE_SIZE};
use talc::{OomHandler, Span, Talc, Talck};

use super::paging::{self, Flags};
use crate::arch::percpu;

/// Heap mapped at boot.
const INITIAL_HEAP: u64 = 1024 * 1024;
/// Smallest growth step.
const MIN_GROWTH: u64 = 256 * 1024;

/// Grows the heap by mapping pages at its end.
#[derive(Debug)]
pub struct GrowHeap {
    /// The current heap span (empty before [`init`]).
    heap: Span,
    /// Bytes mapped so far.
    mapped: u64,
}

impl GrowHeap {
    fn grow(&mut self, bytes: u64) -> Result<Span, ()> {
        let bytes = bytes.next_multiple_of(PAGE_SIZE);
        let start = HEAP_BASE + self.mapped;
        if start + bytes > HEAP_LIMIT {
            return Err(());
        }
        paging::map_fresh(start, bytes / PAGE_SIZE, Flags::READ_WRITE).map_err(|_| ())?;
        self.mapped += bytes;
        Ok(Span::from_base_size(HEAP_BASE as *mut u8, self.mapped as usize))
    }
}

impl OomHandler for GrowHeap {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        let old = talc.oom_handler.heap;
        // Double, or more if one allocation needs it (plus talc's per-chunk overhead).
        let need = layout.size() as u64 + layout.align() as u64 + 64;
        let want = need.max(talc.oom_handler.mapped).max(MIN_GROWTH);
        // Short of frames for the doubling, the allocation may still fit in what is left.
        let requested = talc
            .oom_handler
            .grow(want)
            .or_else(|()| talc.oom_handler.grow(need.max(PAGE_SIZE)))?;
        // SAFETY: `requested` contains `old` and the pages just mapped, which nothing
        // else uses; `old` is the span talc manages.
        let new = unsafe {
            if old.is_empty() {
                talc.claim(requested)?
            } else {
                talc.extend(old, requested)
            }
        };
        talc.oom_handler.heap = new;
        Ok(())
    }
}

static ALLOCATOR: Talck<crate::sync::RawSpinLock, GrowHeap> = Talc::new(GrowHeap {
    heap: Span::empty(),
    mapped: 0,
})
.lock();

/// The global allocator: talc, counting on each CPU the calls in progress so that a
/// panic inside one stops the kernel (see [`crate::panic`]).
struct KernelHeap;

#[global_allocator]
static KERNEL_HEAP: KernelHeap = KernelHeap;

/// Runs `f` counted in this CPU's [`percpu::PerCpu::allocator_depth`].
fn counted<T>(f: impl FnOnce() -> T) -> T {
    let cpu = percpu::try_current();
    if let Some(cpu) = cpu {
        cpu.allocator_depth.fetch_add(1, Relaxed);
    }
    let out = f();
    if let Some(cpu) = cpu {
        cpu.allocator_depth.fetch_sub(1, Relaxed);
    }
    out
}

// SAFETY: every call is talc's own `GlobalAlloc`, with the caller's arguments.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        counted(|| unsafe { ALLOCATOR.alloc(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        counted(|| unsafe { ALLOCATOR.dealloc(ptr, layout) });
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        counted(|| unsafe { ALLOCATOR.alloc_zeroed(layout) })
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        counted(|| unsafe { ALLOCATOR.realloc(ptr, layout, new_size) })
    }
}

/// Maps and hands the initial heap to talc.
pub fn init() {
    let mut talc = ALLOCATOR.lock();
    let span = talc.oom_handler.grow(INITIAL_HEAP).expect("map the initial heap");
    // SAFETY: `span` is freshly mapped memory nothing else uses.
    let heap = unsafe { talc.claim(span).expect("claim the initial heap") };
    talc.oom_handler.heap = heap;
}

/// Bytes of address space the heap has mapped.
pub fn mapped_bytes() -> u64 {
    ALLOCATOR.lock().oom_handler.mapped
}

/// Bytes of heap handed out and not yet freed.
pub fn in_use_bytes() -> u64 {
    ALLOCATOR.lock().get_counters().allocated_bytes as u64
}
