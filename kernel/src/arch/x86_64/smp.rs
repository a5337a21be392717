//! Bringing up the application processors: a real-mode trampoline copied to
//! physical 0x8000 takes each AP from INIT-SIPI-SIPI to long mode on the kernel's
//! page table and into [`ap_entry`] on its own guarded stack.

use core::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use super::{apic, gdt, idt, percpu};
use crate::{
    mem::{
        paging::{self, Flags},
        phys_to_virt, stacks,
    },
    time::{Instant, spin_for},
};

/// Physical page the trampoline runs from (SIPI vector 0x08).
const TRAMPOLINE: u64 = 0x8000;
/// Stack pages of each AP's boot stack (plus a guard page).
const AP_STACK_PAGES: u64 = 16;

core::arch::global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a"
    .set TR_BASE, 0x8000
    .global ap_trampoline_start
    .global ap_trampoline_end
    .global ap_trampoline_cr3
    .global ap_trampoline_stack
    .global ap_trampoline_entry
    .global ap_trampoline_cpu
ap_trampoline_start:
    .code16
    cli
    cld
    xor %ax, %ax
    mov %ax, %ds
    lgdtl (TR_BASE + ap_trampoline_gdt_ptr - ap_trampoline_start)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x18, $(TR_BASE + ap_trampoline_pm32 - ap_trampoline_start)

    .code32
ap_trampoline_pm32:
    mov $0x20, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    mov %eax, %cr4
    mov (TR_BASE + ap_trampoline_cr3 - ap_trampoline_start), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx
    rdmsr
    or $((1 << 8) | (1 << 11)), %eax
    wrmsr
    mov %cr0, %eax
    and $~((1 << 2) | (1 << 3)), %eax
    or $((1 << 31) | (1 << 16) | (1 << 1) | 1), %eax
    mov %eax, %cr0
    ljmp $0x08, $(TR_BASE + ap_trampoline_lm64 - ap_trampoline_start)

    .code64
ap_trampoline_lm64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov (TR_BASE + ap_trampoline_stack - ap_trampoline_start), %rsp
    mov (TR_BASE + ap_trampoline_cpu - ap_trampoline_start), %rdi
    mov (TR_BASE + ap_trampoline_entry - ap_trampoline_start), %rax
    push $0
    jmp *%rax

    .p2align 3
    // Accessed bits preset: the CPU would otherwise write them into this read-only page.
ap_trampoline_gdt:
    .quad 0
    .quad 0x00af9b000000ffff
    .quad 0x00cf93000000ffff
    .quad 0x00cf9b000000ffff
    .quad 0x00cf93000000ffff
ap_trampoline_gdt_ptr:
    .word 39
    .long TR_BASE + ap_trampoline_gdt - ap_trampoline_start
    .p2align 3
ap_trampoline_cr3: .quad 0
ap_trampoline_stack: .quad 0
ap_trampoline_entry: .quad 0
ap_trampoline_cpu: .quad 0
ap_trampoline_end:
    .text
"#,
    options(att_syntax)
);

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_trampoline_cr3: u8;
    static ap_trampoline_stack: u8;
    static ap_trampoline_entry: u8;
    static ap_trampoline_cpu: u8;
}

/// Set by an AP once it runs Rust on its own stack and tables.
static AP_READY: AtomicBool = AtomicBool::new(false);

/// Writes `value` into the copied trampoline's data field `field`.
fn poke(field: *const u8, value: u64) {
    let offset = field as u64 - core::ptr::addr_of!(ap_trampoline_start) as u64;
    // SAFETY: `offset` lies inside the trampoline copied to TRAMPOLINE, which the
    // kernel reserved (memory below 1 MiB is never handed out) and reaches through
    // the direct map; the field is 8-byte aligned.
    unsafe { (phys_to_virt(TRAMPOLINE + offset) as *mut u64).write_volatile(value) };
}

/// Starts every CPU in `apic_ids` other than this one. Returns how many came up.
pub fn start_aps(apic_ids: &[u32]) -> usize {
    let start = core::ptr::addr_of!(ap_trampoline_start);
    let len = core::ptr::addr_of!(ap_trampoline_end) as usize - start as usize;
    // SAFETY: the trampoline page below 1 MiB belongs to the kernel (never allocated)
    // and is reached through the direct map; `len` < 4 KiB.
    unsafe { core::ptr::copy_nonoverlapping(start, phys_to_virt(TRAMPOLINE) as *mut u8, len) };
    // The AP turns paging on while executing from the trampoline page: identity map it.
    paging::map(TRAMPOLINE, TRAMPOLINE, Flags::READ_EXECUTE).expect("identity map the AP trampoline");
    poke(core::ptr::addr_of!(ap_trampoline_cr3), super::cr3());
    poke(core::ptr::addr_of!(ap_trampoline_entry), ap_entry as *const () as u64);

    let me = percpu::current().apic_id;
    let mut started = 0;
    let mut index = 1;
    for &apic_id in apic_ids.iter().filter(|&&id| id != me) {
        let stack = match stacks::allocate(AP_STACK_PAGES) {
            Ok(s) => s,
            Err(e) => {
                log::error!("no stack for CPU with APIC id {apic_id}: {e}");
                break;
            }
        };
        poke(core::ptr::addr_of!(ap_trampoline_stack), stack.top);
        poke(core::ptr::addr_of!(ap_trampoline_cpu), index);
        AP_READY.store(false, Ordering::SeqCst);
        apic::send_ipi(apic_id, apic::Ipi::Init);
        spin_for(Duration::from_millis(10));
        apic::send_ipi(apic_id, apic::Ipi::Startup((TRAMPOLINE >> 12) as u8));
        if !wait_ready(Duration::from_millis(1)) {
            apic::send_ipi(apic_id, apic::Ipi::Startup((TRAMPOLINE >> 12) as u8));
        }
        if wait_ready(Duration::from_millis(500)) {
            started += 1;
            index += 1;
        } else {
            log::error!("CPU with APIC id {apic_id} did not start");
        }
    }
    paging::unmap(TRAMPOLINE).expect("unmap the AP trampoline");
    started
}

fn wait_ready(limit: Duration) -> bool {
    let start = Instant::now();
    while !AP_READY.load(Ordering::SeqCst) {
        if start.elapsed() >= limit {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// First Rust code on an AP, on its own stack with the kernel's page table.
extern "sysv64" fn ap_entry(index: u64) -> ! {
    let ist = gdt::init_cpu();
    idt::init();
    apic::init_ap();
    let apic_id = super::cpuid(1).ebx >> 24;
    percpu::init_cpu(index as u32, apic_id, ist);
    AP_READY.store(true, Ordering::SeqCst);
    super::enable_interrupts();
    crate::sched::run(index as usize)
}
