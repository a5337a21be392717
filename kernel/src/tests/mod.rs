//! In-QEMU tests, registered with `#[ktest]`.

mod executor;
mod heap;
mod interrupts;
mod mem;
mod panic;
pub mod platform;
mod sampling;
mod selftest;
mod smp;
mod trace;
mod virtio;
mod wasm;
mod wasm_isolation;
