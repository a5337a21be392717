//! Memory-management building blocks of the Lucid kernel that need no hardware:
//!
//! - [`FrameBitmap`]: a bitmap allocator of 4 KiB physical frames (single and contiguous
//!   runs, with freeing).
//! - [`PageTable`]: map, unmap, change protection and translate in an x86_64 4-level
//!   page table reached through an offset mapping of physical memory.
//!
//! On the host, tests use heap memory as "physical" memory with a zero offset.
#![cfg_attr(not(any(test, feature = "std")), no_std)]

mod bitmap;
mod paging;

pub use bitmap::FrameBitmap;
pub use paging::{Flags, FrameSource, MapError, PageTable, Translation};

/// Size of a frame and of a small page.
pub const PAGE_SIZE: u64 = 4096;
