#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std")), no_std)]

mod bitmap;
mod paging;

pub use bitmap::FrameBitmap;
pub use paging::{Flags, FrameSource, MapError, PageTable, Translation};

/// Size of a frame and of a small page.
pub const PAGE_SIZE: u64 = 4096;
