//! Interrupt entry: 256 stubs (16 bytes apart), one common path that saves every
//! general-purpose register and the SSE state, and a Rust dispatcher.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::gdt;

/// The registers of an interrupted context, as the common stub leaves them.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct InterruptFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Vectors for which the CPU pushes an error code: 8, 10–14, 17, 21, 29, 30.
const ERROR_CODE_VECTORS: u32 = (1 << 8) | (0x1f << 10) | (1 << 17) | (1 << 21) | (1 << 29) | (1 << 30);
const STUB_SIZE: usize = 16;

// Each stub pushes a zero error code if the CPU did not, then the vector, then
// joins `isr_common`. Stubs are 16-byte aligned so stub `v` is at `isr_stubs + 16 v`.
core::arch::global_asm!(
    r#"
    .section .text.isr, "ax"
    .p2align 4
    .global isr_stubs
isr_stubs:
    .set vec, 0
    .rept 256
        .p2align 4
        .if vec < 32
            .if ((({mask}) >> vec) & 1) == 0
                push 0
            .endif
        .else
            push 0
        .endif
        .byte 0x68
        .long vec
        jmp isr_common
        .set vec, vec + 1
    .endr

isr_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    cld
    mov rbp, rsp
    sub rsp, 512
    and rsp, -16
    fxsave64 [rsp]
    mov rdi, rbp
    call {dispatch}
    fxrstor64 [rsp]
    mov rsp, rbp
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq
"#,
    mask = const ERROR_CODE_VECTORS,
    dispatch = sym interrupt_dispatch,
);

unsafe extern "C" {
    static isr_stubs: u8;
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static mut IDT: Idt = Idt([Gate {
    offset_low: 0,
    selector: 0,
    ist: 0,
    type_attr: 0,
    offset_mid: 0,
    offset_high: 0,
    reserved: 0,
}; 256]);

/// An interrupt handler for vectors 32..=255.
pub type Handler = fn(&mut InterruptFrame);

static HANDLERS: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];

/// Installs `handler` for `vector` (>= 32).
pub fn set_handler(vector: u8, handler: Handler) {
    assert!(vector >= 32, "vectors below 32 are exceptions");
    HANDLERS[vector as usize].store(handler as usize, Ordering::Release);
}

/// Address of the entry stub for `vector`.
fn stub(vector: usize) -> u64 {
    core::ptr::addr_of!(isr_stubs) as u64 + (vector * STUB_SIZE) as u64
}

fn ist_for(vector: usize) -> u16 {
    match vector {
        2 | 8 | 18 => gdt::IST_CRITICAL,
        14 => gdt::IST_PAGE_FAULT,
        0..32 => gdt::IST_EXCEPTION,
        _ => gdt::IST_IRQ,
    }
}

/// Builds the IDT once and loads it on this CPU.
pub fn init() {
    static BUILT: spin::Once<()> = spin::Once::new();
    BUILT.call_once(|| {
        for v in 0..256 {
            let addr = stub(v);
            let gate = Gate {
                offset_low: addr as u16,
                selector: gdt::KERNEL_CODE,
                ist: ist_for(v) as u8 + 1,
                // Present, DPL 0, 64-bit interrupt gate (clears IF on entry).
                type_attr: 0x8e,
                offset_mid: (addr >> 16) as u16,
                offset_high: (addr >> 32) as u32,
                reserved: 0,
            };
            // SAFETY: runs once, before any CPU has loaded the IDT.
            unsafe { (*core::ptr::addr_of_mut!(IDT)).0[v] = gate };
        }
    });
    let ptr = x86_64::structures::DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: x86_64::VirtAddr::new(core::ptr::addr_of!(IDT) as u64),
    };
    // SAFETY: the IDT is static, fully initialised and every gate points at a stub.
    unsafe { x86_64::instructions::tables::lidt(&ptr) };
}

extern "C" fn interrupt_dispatch(frame: &mut InterruptFrame) {
    let vector = frame.vector as usize;
    enter_interrupt();
    if vector < 32 {
        crate::fault::exception(frame);
    } else {
        let h = HANDLERS[vector].load(Ordering::Acquire);
        if h == 0 {
            log::warn!("unexpected interrupt vector {vector}");
            super::apic::eoi();
        } else {
            // SAFETY: only `set_handler` stores into HANDLERS, always a `Handler`.
            let handler: Handler = unsafe { core::mem::transmute::<usize, Handler>(h) };
            handler(frame);
        }
    }
    leave_interrupt();
}

fn enter_interrupt() {
    if let Some(cpu) = super::percpu::try_current() {
        cpu.interrupt_depth.fetch_add(1, Ordering::Relaxed);
        cpu.interrupts.fetch_add(1, Ordering::Relaxed);
    }
}

fn leave_interrupt() {
    if let Some(cpu) = super::percpu::try_current() {
        cpu.interrupt_depth.fetch_sub(1, Ordering::Relaxed);
    }
}

/// True while an interrupt or exception handler runs on this CPU.
pub fn in_interrupt() -> bool {
    super::percpu::try_current().is_some_and(|c| c.interrupt_depth.load(Ordering::Relaxed) > 0)
}
