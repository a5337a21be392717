//! `lucid-loader`: the PVH boot stage.
//!
//! QEMU (`-kernel lucid-loader -initrd boot-archive`) enters [`pvh`] in 32-bit mode.
//! The loader switches to long mode, finds the kernel ELF in the boot archive,
//! copies its segments into fresh frames, builds the kernel's address space
//! (segments in the higher half with per-segment permissions, a direct map of all
//! physical memory, a boot stack with a guard page) and jumps to the kernel entry
//! with a [`BootInfo`] in `rdi`.
#![no_std]
#![no_main]

use lucid_boot_api::{
    BOOT_INFO_MAGIC, BootInfo, MAX_CMDLINE, MAX_MODULES, MemoryKind, MemoryRegion, Module, PhysRange,
    archive::{self, Archive},
    elf::Elf,
    layout,
    memmap::MemoryMap,
};
// Linked for the memcpy/memset symbols the compiler emits.
use lucid_memfuncs as _;

mod frames;
mod paging;
mod pvh;
#[macro_use]
mod serial;
mod start_info;

use frames::BumpFrames;
use paging::{AddressSpace, NX, W};
use start_info::{MemmapEntry, ModlistEntry, StartInfo};

unsafe extern "C" {
    static __loader_start: u8;
    static __loader_end: u8;
}

/// Reads a `T` from a physical address through the identity map.
///
/// # Safety
/// `phys` must hold a valid `T` and lie in the identity-mapped low 4 GiB.
unsafe fn read_phys<T: Copy>(phys: u64) -> T {
    // SAFETY: the caller's contract; firmware structures need not be aligned.
    unsafe { (phys as *const T).read_unaligned() }
}

/// Called from the PVH entry in long mode with the identity map of the low 4 GiB.
#[unsafe(no_mangle)]
extern "C" fn loader_main(start_info_phys: u64) -> ! {
    // SAFETY: QEMU passes the physical address of a `hvm_start_info` in `ebx`.
    let info: StartInfo = unsafe { read_phys(start_info_phys) };
    if info.magic != start_info::MAGIC {
        fail(format_args!("bad hvm_start_info magic {:#x}", info.magic));
    }

    let mut memmap = MemoryMap::new();
    let mut ram_end = 0u64;
    for i in 0..u64::from(info.memmap_entries) {
        // SAFETY: `memmap_entries` entries follow `memmap_paddr` (start_info version >= 1).
        let e: MemmapEntry = unsafe { read_phys(info.memmap_paddr + i * core::mem::size_of::<MemmapEntry>() as u64) };
        let kind = MemoryKind::from_e820(e.ty);
        if kind.is_ram() {
            ram_end = ram_end.max(e.addr + e.size);
        }
        if memmap.push(MemoryRegion::new(e.addr, e.addr + e.size, kind)).is_err() {
            fail(format_args!("firmware memory map has too many entries"));
        }
    }

    let mut cmdline = [0u8; MAX_CMDLINE];
    let mut cmdline_len = 0;
    if info.cmdline_paddr != 0 {
        while cmdline_len < MAX_CMDLINE {
            // SAFETY: the command line is a NUL-terminated string in low memory.
            let b: u8 = unsafe { read_phys(info.cmdline_paddr + cmdline_len as u64) };
            if b == 0 {
                break;
            }
            cmdline[cmdline_len] = b;
            cmdline_len += 1;
        }
    }

    if info.nr_modules == 0 {
        fail(format_args!("no boot archive: pass it with -initrd"));
    }
    // SAFETY: `nr_modules >= 1` entries live at `modlist_paddr`.
    let module: ModlistEntry = unsafe { read_phys(info.modlist_paddr) };
    let module_range = PhysRange {
        start: module.paddr,
        end: module.paddr + module.size,
    };
    // SAFETY: QEMU loaded the initrd at `paddr` with `size` bytes, below 4 GiB.
    let archive_bytes = unsafe { core::slice::from_raw_parts(module.paddr as *const u8, module.size as usize) };
    let archive = Archive::parse(archive_bytes).unwrap_or_else(|e| fail(format_args!("{e}")));
    let kernel = archive
        .find(archive::KERNEL_ENTRY)
        .unwrap_or_else(|| fail(format_args!("boot archive has no `kernel` entry")));
    let elf = Elf::parse(kernel.data).unwrap_or_else(|e| fail(format_args!("kernel: {e}")));

    let loader_start = core::ptr::addr_of!(__loader_start) as u64;
    let loader_end = core::ptr::addr_of!(__loader_end) as u64;
    let region = memmap
        .regions()
        .iter()
        .find(|r| r.kind() == MemoryKind::Usable && r.start <= loader_end && loader_end < r.end)
        .copied()
        .unwrap_or_else(|| fail(format_args!("no usable RAM after the loader")));
    let mut frames = BumpFrames {
        next: loader_end,
        limit: region.end.min(4 << 30),
        avoid: [
            module_range,
            PhysRange {
                start: start_info_phys,
                end: start_info_phys + 4096,
            },
        ],
    };

    // The kernel image: one contiguous run of frames, segment after segment.
    let mut space = AddressSpace::new(&mut frames);
    let kernel_pages: u64 = elf.segments().map(|s| s.mem_size.div_ceil(4096)).sum();
    let kernel_start = frames.alloc_zeroed(kernel_pages);
    let mut next = kernel_start;
    for seg in elf.segments() {
        let bytes = elf.file_bytes(&seg);
        // SAFETY: `next` heads `mem_size` freshly allocated, zeroed, identity-mapped bytes.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), next as *mut u8, bytes.len()) };
        let mut flags = 0;
        if seg.writable() {
            flags |= W;
        }
        if !seg.executable() {
            flags |= NX;
        }
        for page in 0..seg.mem_size.div_ceil(4096) {
            space.map_4k(&mut frames, seg.vaddr + page * 4096, next + page * 4096, flags);
        }
        next += seg.mem_size.div_ceil(4096) * 4096;
    }
    let kernel_phys = PhysRange {
        start: kernel_start,
        end: next,
    };

    // Direct map of all physical memory (and the PCI hole below 4 GiB), no execute.
    let direct_end = ram_end.max(4 << 30).next_multiple_of(layout::HUGE_PAGE_SIZE);
    let mut phys = 0;
    while phys < direct_end {
        space.map_2m(&mut frames, layout::DIRECT_MAP_OFFSET + phys, phys, W | NX);
        phys += layout::HUGE_PAGE_SIZE;
    }
    // Identity map of the low 4 GiB so this code keeps running across the CR3 switch;
    // the kernel removes it once it runs on its own.
    let mut phys = 0;
    while phys < 4 << 30 {
        space.map_2m(&mut frames, phys, phys, W);
        phys += layout::HUGE_PAGE_SIZE;
    }

    // Boot stack; the page below it stays unmapped as a guard.
    let stack_pages = layout::BOOT_STACK_SIZE / 4096;
    let stack = frames.alloc(stack_pages);
    for page in 0..stack_pages {
        space.map_4k(
            &mut frames,
            layout::BOOT_STACK_BOTTOM + page * 4096,
            stack + page * 4096,
            W | NX,
        );
    }

    let info_pages = (core::mem::size_of::<BootInfo>() as u64).div_ceil(4096);
    let info_phys = frames.alloc_zeroed(info_pages);
    let loader_phys = PhysRange {
        start: loader_start,
        end: frames.next,
    };

    let carve = |m: &mut MemoryMap, r: PhysRange, k: MemoryKind| {
        if m.carve(r, k).is_err() {
            fail(format_args!("memory map has too many entries"));
        }
    };
    carve(&mut memmap, kernel_phys, MemoryKind::Kernel);
    carve(&mut memmap, module_range, MemoryKind::Module);
    carve(&mut memmap, loader_phys, MemoryKind::Bootloader);

    // SAFETY: `info_phys` heads `info_pages` zeroed frames, identity mapped; all-zero
    // bytes are a valid `BootInfo` (integers and arrays of integers).
    let boot_info = unsafe { &mut *(info_phys as *mut BootInfo) };
    boot_info.magic = BOOT_INFO_MAGIC;
    boot_info.direct_map_offset = layout::DIRECT_MAP_OFFSET;
    boot_info.memory_region_count = memmap.write_to(&mut boot_info.memory_regions) as u64;
    boot_info.kernel_phys = kernel_phys;
    boot_info.loader_phys = loader_phys;
    boot_info.boot_stack_bottom = layout::BOOT_STACK_BOTTOM;
    boot_info.boot_stack_top = layout::BOOT_STACK_TOP;
    let mut count = 0;
    for entry in archive.entries().filter(|e| e.name() != archive::KERNEL_ENTRY) {
        if count == MAX_MODULES {
            fail(format_args!("boot archive has more than {MAX_MODULES} modules"));
        }
        let start = module.paddr + entry.offset as u64;
        boot_info.modules[count] = Module {
            name: entry.name,
            phys: PhysRange {
                start,
                end: start + entry.data.len() as u64,
            },
        };
        count += 1;
    }
    boot_info.module_count = count as u64;
    boot_info.cmdline = cmdline;
    boot_info.cmdline_len = cmdline_len as u64;
    boot_info.rsdp_phys = info.rsdp_paddr;
    // SAFETY: written once by the entry code before Rust ran.
    boot_info.loader_entry_tsc = unsafe { core::ptr::addr_of!(pvh::loader_entry_tsc).read() };

    let entry = elf.entry();
    let info_virt = layout::phys_to_virt(info_phys);
    // SAFETY: the new tables map this code (identity), the kernel image, its stack and the
    // direct map through which `info_virt` is reachable; the kernel entry never returns.
    unsafe {
        core::arch::asm!(
            "mov cr3, {pml4}",
            "mov rsp, {stack}",
            "push 0",
            "xor ebp, ebp",
            "jmp {entry}",
            pml4 = in(reg) space.pml4,
            stack = in(reg) layout::BOOT_STACK_TOP,
            entry = in(reg) entry,
            in("rdi") info_virt,
            options(noreturn)
        )
    }
}

fn fail(args: core::fmt::Arguments<'_>) -> ! {
    println!("error: {args}");
    exit_qemu_failure()
}

/// Ends QEMU through isa-debug-exit (when present) so a broken boot fails fast.
fn exit_qemu_failure() -> ! {
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit; without it the write is ignored.
    unsafe { core::arch::asm!("out dx, eax", in("dx") 0xf4u16, in("eax") 0x7fu32, options(nomem, nostack)) };
    loop {
        // SAFETY: halting with interrupts off parks the CPU for good.
        unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("panic: {info}");
    exit_qemu_failure()
}

/// The precompiled `core`'s unwind tables name this symbol; the loader never unwinds.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
