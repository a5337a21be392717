//! The kernel ELF's entry point: the loader jumps to `kernel_entry` (named in
//! `linker.ld`) on the boot stack with `rdi` = the `BootInfo`.
#![no_std]
#![no_main]

use lucid_boot_api::BootInfo;

#[unsafe(no_mangle)]
extern "sysv64" fn kernel_entry(boot: &'static BootInfo) -> ! {
    lucid_kernel::start(boot)
}
