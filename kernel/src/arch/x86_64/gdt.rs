//! GDT and TSS. Every interrupt vector runs on an IST stack (the precompiled
//! `core` uses the red zone, so the CPU must never push a frame onto the
//! interrupted stack); each IST stack has a guard page below it.

use core::ptr::addr_of;

use spin::Once;
use x86_64::{
    VirtAddr,
    instructions::{
        segmentation::{CS, DS, ES, SS, Segment},
        tables::load_tss,
    },
    structures::{
        gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector},
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

struct Tables {
    gdt: GlobalDescriptorTable,
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
static TABLES: Once<Tables> = Once::new();
static IST_STACKS: Once<[KernelStack; 4]> = Once::new();

/// The IST stacks (for reporting which stack a fault hit).
pub fn ist_stacks() -> &'static [KernelStack] {
    IST_STACKS.get().map_or(&[], |s| &s[..])
}

/// Loads the GDT and TSS on this CPU. Needs the kernel stack allocator.
pub fn init() {
    let ist = IST_STACKS.call_once(|| core::array::from_fn(|_| stacks::allocate(IST_PAGES).expect("IST stack")));
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        for (slot, stack) in ist.iter().enumerate() {
            tss.interrupt_stack_table[slot] = VirtAddr::new(stack.top);
        }
        tss
    });
    let tables = TABLES.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        // SAFETY: the TSS lives in a `Once` for the rest of the kernel's life.
        let tss = gdt.append(Descriptor::tss_segment(unsafe { &*addr_of!(*tss) }));
        Tables { gdt, code, data, tss }
    });
    tables.gdt.load();
    // SAFETY: the selectors index the GDT just loaded.
    unsafe {
        CS::set_reg(tables.code);
        SS::set_reg(tables.data);
        DS::set_reg(tables.data);
        ES::set_reg(tables.data);
        load_tss(tables.tss);
    }
}
