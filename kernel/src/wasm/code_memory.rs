//! Executable pages for native guest code. wasmtime copies a `.cwasm` into a
//! page-aligned heap allocation (RW, NX like all heap pages) and then asks us to
//! publish its text section: those pages become read+execute (W^X) until the
//! module is dropped, when they go back to read+write before the heap reuses them.

use lucid_boot_api::layout::PAGE_SIZE;
use wasmtime::CustomCodeMemory;

use crate::mem::paging::{self, Flags};

/// The kernel's [`CustomCodeMemory`].
#[derive(Debug)]
pub struct KernelCodeMemory;

impl KernelCodeMemory {
    fn set(ptr: *const u8, len: usize, flags: Flags) -> wasmtime::Result<()> {
        let start = ptr as u64;
        if !start.is_multiple_of(PAGE_SIZE) || !(len as u64).is_multiple_of(PAGE_SIZE) {
            // Rounding would change the protection of a neighbouring allocation.
            wasmtime::bail!("code region {start:#x}+{len:#x} is not page aligned");
        }
        for page in (start..start + len as u64).step_by(PAGE_SIZE as usize) {
            paging::protect(page, flags)
                .map_err(|e| wasmtime::format_err!("cannot change protection of code page {page:#x}: {e}"))?;
        }
        Ok(())
    }
}

impl CustomCodeMemory for KernelCodeMemory {
    fn required_alignment(&self) -> usize {
        PAGE_SIZE as usize
    }

    fn publish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        // x86 keeps instruction fetch coherent with stores; `protect` flushes the
        // TLB on every CPU.
        Self::set(ptr, len, Flags::READ_EXECUTE)?;
        if !super::traps::publish(ptr as u64, ptr as u64 + len as u64) {
            // A trap in code the fault handler does not know would stop the kernel.
            Self::set(ptr, len, Flags::READ_WRITE)?;
            wasmtime::bail!("too many modules loaded at once");
        }
        Ok(())
    }

    fn unpublish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        super::traps::unpublish(ptr as u64);
        Self::set(ptr, len, Flags::READ_WRITE)
    }
}
