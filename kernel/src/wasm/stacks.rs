//! Fiber stacks for instances: kernel stacks (an unmapped guard page below each),
//! kept in a pool because instances come and go far more often than the stack
//! region could hold fresh stacks.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ops::Range;

use crate::sync::SpinLock;
use lucid_boot_api::layout::PAGE_SIZE;
use wasmtime::{StackCreator, StackMemory};

use crate::mem::stacks::{self, KernelStack};

static POOL: SpinLock<Vec<KernelStack>> = SpinLock::new(Vec::new());

/// The kernel's [`StackCreator`].
#[derive(Debug)]
pub struct KernelStacks;

struct PooledStack(KernelStack);

// SAFETY: `top`, `range` and `guard_range` describe a kernel stack that this value
// owns exclusively until it is dropped (then it returns to the pool): its mapped
// part is `[bottom, top)` and its guard page `[guard, bottom)` is never mapped.
unsafe impl StackMemory for PooledStack {
    fn top(&self) -> *mut u8 {
        self.0.top as *mut u8
    }

    fn range(&self) -> Range<usize> {
        self.0.bottom as usize..self.0.top as usize
    }

    fn guard_range(&self) -> Range<*mut u8> {
        self.0.guard as *mut u8..self.0.bottom as *mut u8
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        POOL.lock().push(self.0);
    }
}

// SAFETY: every stack handed out is exclusively owned (taken out of the pool or
// freshly mapped), at least `size` bytes, with an unmapped guard page below it.
unsafe impl StackCreator for KernelStacks {
    fn new_stack(&self, size: usize, zeroed: bool) -> wasmtime::Result<Box<dyn StackMemory>> {
        let pages = (size as u64).div_ceil(PAGE_SIZE);
        let reused = {
            let mut pool = POOL.lock();
            pool.iter()
                .position(|s| s.top - s.bottom >= pages * PAGE_SIZE)
                .map(|i| pool.swap_remove(i))
        };
        let stack = match reused {
            Some(s) => {
                if zeroed {
                    // SAFETY: the stack is mapped read-write over `[bottom, top)` and
                    // owned by nobody else now.
                    unsafe { core::ptr::write_bytes(s.bottom as *mut u8, 0, (s.top - s.bottom) as usize) };
                }
                s
            }
            // Fresh frames come zeroed from the frame allocator.
            None => stacks::allocate(pages).map_err(|e| wasmtime::format_err!("no fiber stack: {e}"))?,
        };
        Ok(Box::new(PooledStack(stack)))
    }
}
