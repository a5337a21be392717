#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(not(any(test, feature = "std")), no_std)]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

pub mod abi;
pub mod bundle;
pub mod config;
pub mod demangle;
pub mod lines;
pub mod strikes;
pub mod text;
pub mod wasi;

pub use bundle::{Bundle, BundleError, DEFAULT_KERNEL_MEMORY_BUDGET, DEFAULT_SLICE_US, GuestEntry};
pub use config::{ASYNC_STACK_SIZE, MAX_WASM_STACK, Metering, TARGET, configure, fingerprint};
