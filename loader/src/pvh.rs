//! The PVH entry: QEMU jumps here in 32-bit protected mode with paging off and
//! `ebx` = physical address of `hvm_start_info`. We identity map the low 4 GiB with
//! 2 MiB pages, enable SSE (the precompiled `core` uses it), PAE, long mode, NX and
//! supervisor write protection (CR0.WP, so read-only pages bind the kernel too),
//! and call [`crate::loader_main`] in 64-bit mode.

// The Xen ELF note (type 18 = XEN_ELFNOTE_PHYS32_ENTRY) names the 32-bit entry.
core::arch::global_asm!(
    r#"
    .section .note.Xen, "a"
    .p2align 2
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .p2align 2
    .quad pvh_start

    .section .bss.boot, "aw", @nobits
    .p2align 12
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
boot_pd:    .skip 4096 * 4
boot_stack: .skip 64 * 1024
boot_stack_top:

    .section .rodata.boot_gdt, "a"
    .p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .text.pvh, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    mov %ebx, %ebp
    mov $boot_stack_top, %esp
    rdtsc
    mov %eax, loader_entry_tsc
    mov %edx, loader_entry_tsc + 4

    mov $boot_pml4, %edi
    xor %eax, %eax
    mov $(6 * 1024), %ecx
    rep stosl

    mov $boot_pdpt, %eax
    or $3, %eax
    mov %eax, boot_pml4
    mov $boot_pd, %eax
    or $3, %eax
    mov %eax, boot_pdpt
    add $4096, %eax
    mov %eax, boot_pdpt + 8
    add $4096, %eax
    mov %eax, boot_pdpt + 16
    add $4096, %eax
    mov %eax, boot_pdpt + 24

    mov $boot_pd, %edi
    mov $0x83, %eax
    mov $2048, %ecx
1:
    mov %eax, (%edi)
    add $0x200000, %eax
    add $8, %edi
    loop 1b

    mov %cr4, %eax
    or $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx
    rdmsr
    or $((1 << 8) | (1 << 11)), %eax
    wrmsr
    mov %cr0, %eax
    and $~((1 << 2) | (1 << 3)), %eax
    or $((1 << 31) | (1 << 16) | (1 << 1) | 1), %eax
    mov %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x08, $pvh_long_mode

    .code64
pvh_long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    mov %ebp, %edi
    call loader_main
2:
    hlt
    jmp 2b
"#,
    options(att_syntax)
);

/// TSC when the PVH entry ran (written by the entry code before any Rust).
#[unsafe(no_mangle)]
pub static mut loader_entry_tsc: u64 = 0;
