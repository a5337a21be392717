//! Per-CPU GDT and TSS. Every interrupt vector runs on an IST stack (the
//! precompiled `core` uses the red zone, so the CPU must never push a frame onto
//! the interrupted stack); each IST stack has a guard page below it, and each CPU
//! has its own set (a TSS cannot be shared: its busy bit and stacks are per CPU).

use alloc::boxed::Box;

use x86_64::{
    VirtAddr,
    instructions::{
        segmentation::{CS, DS, ES, SS, Segment},
        tables::load_tss,
    },
    structures::{
        gdt::{Descriptor, GlobalDescriptorTable},
        tss::TaskStateSegment,
    },
};

use crate::mem::stacks::{self, KernelStack};

/// IST slot for double faults, NMIs and machine checks (never nest with others).
pub const IST_CRITICAL: u16 = 0;
/// IST slot for page faults, so a kernel stack overflow is reported, not a triple fault.
pub const IST_PAGE_FAULT: u16 = 1;
/// IST slot for the other exceptions.
pub const IST_EXCEPTION: u16 = 2;
/// IST slot for device interrupts (they never nest: interrupt gates clear IF).
pub const IST_IRQ: u16 = 3;

const IST_PAGES: u64 = 8;

/// Selector of the kernel code segment (the same in every CPU's GDT).
pub const KERNEL_CODE: u16 = 0x08;

/// Builds this CPU's GDT, TSS and IST stacks, loads them, and returns the IST stacks.
/// The tables live for the rest of the kernel's life.
pub fn init_cpu() -> [KernelStack; 4] {
    let ist: [KernelStack; 4] = core::array::from_fn(|_| stacks::allocate(IST_PAGES).expect("IST stack"));
    let mut tss = TaskStateSegment::new();
    for (slot, stack) in ist.iter().enumerate() {
        tss.interrupt_stack_table[slot] = VirtAddr::new(stack.top);
    }
    let tss: &'static TaskStateSegment = Box::leak(Box::new(tss));
    let mut gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_sel = gdt.append(Descriptor::tss_segment(tss));
    debug_assert_eq!(code.0, KERNEL_CODE);
    let gdt: &'static GlobalDescriptorTable = Box::leak(Box::new(gdt));
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, which is never freed.
    unsafe {
        CS::set_reg(code);
        SS::set_reg(data);
        DS::set_reg(data);
        ES::set_reg(data);
        load_tss(tss_sel);
    }
    ist
}
