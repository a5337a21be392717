//! Kernel stacks: each one sits in the stack region with an unmapped guard page
//! below it, so an overflow faults (and is reported) instead of corrupting memory.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::sync::SpinLock;
use lucid_boot_api::{
    BootInfo,
    layout::{PAGE_SIZE, STACKS_BASE, STACKS_LIMIT},
};

use super::paging::{self, Flags, MapError};

/// A kernel stack: `[bottom, top)` mapped, `[guard, bottom)` never mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelStack {
    /// The guard page.
    pub guard: u64,
    /// Lowest mapped byte.
    pub bottom: u64,
    /// One past the highest byte (the initial stack pointer).
    pub top: u64,
}

static NEXT: AtomicU64 = AtomicU64::new(STACKS_BASE);
const MAX_STACKS: usize = 256;
static REGISTRY: SpinLock<([Option<KernelStack>; MAX_STACKS], usize)> = SpinLock::new(([None; MAX_STACKS], 0));

fn register(stack: KernelStack) {
    let mut reg = REGISTRY.lock();
    let (slots, len) = &mut *reg;
    if *len < MAX_STACKS {
        slots[*len] = Some(stack);
        *len += 1;
    }
}

/// Registers the loader's boot stack.
pub fn init(boot: &BootInfo) {
    register(KernelStack {
        guard: boot.boot_stack_bottom - PAGE_SIZE,
        bottom: boot.boot_stack_bottom,
        top: boot.boot_stack_top,
    });
}

/// A new stack of `pages` pages.
pub fn allocate(pages: u64) -> Result<KernelStack, MapError> {
    let span = (pages + 1) * PAGE_SIZE;
    let guard = NEXT.fetch_add(span, Ordering::Relaxed);
    if guard + span > STACKS_LIMIT {
        return Err(MapError::OutOfFrames);
    }
    let bottom = guard + PAGE_SIZE;
    paging::map_fresh(bottom, pages, Flags::READ_WRITE)?;
    let stack = KernelStack {
        guard,
        bottom,
        top: bottom + pages * PAGE_SIZE,
    };
    register(stack);
    Ok(stack)
}

/// The stack whose guard page contains `addr`. Does not block (fault handlers call it).
pub fn guard_hit(addr: u64) -> Option<KernelStack> {
    let reg = REGISTRY.try_lock()?;
    let (slots, len) = &*reg;
    slots[..*len]
        .iter()
        .flatten()
        .find(|s| (s.guard..s.bottom).contains(&addr))
        .copied()
}

/// The stack whose mapped range `[bottom, top)` contains `addr`; `None` also when the
/// registry is busy. Does not block (the sampling interrupt calls it).
pub fn containing(addr: u64) -> Option<KernelStack> {
    let reg = REGISTRY.try_lock()?;
    let (slots, len) = &*reg;
    slots[..*len]
        .iter()
        .flatten()
        .find(|s| (s.bottom..s.top).contains(&addr))
        .copied()
}
