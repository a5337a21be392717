use core::sync::atomic::{AtomicU64, Ordering};

use lucid_ktest_macros::ktest;

use crate::mem::{
    frames,
    paging::{self, Flags},
    phys_to_virt, stacks,
};

/// Virtual addresses for tests (PML4 slot 480, just past the WebAssembly region,
/// unused by the kernel).
static TEST_VA: AtomicU64 = AtomicU64::new(lucid_boot_api::layout::WASM_LIMIT);

fn test_pages(pages: u64) -> u64 {
    // Leave an unmapped page after each block so blocks never touch.
    TEST_VA.fetch_add((pages + 1) * 4096, Ordering::Relaxed)
}

#[ktest]
fn frames_are_distinct_and_freed() {
    let before = frames::free_frames();
    let mut got = [0u64; 64];
    for f in got.iter_mut() {
        *f = frames::alloc().expect("a free frame");
        assert_eq!(*f % 4096, 0);
    }
    for (i, a) in got.iter().enumerate() {
        assert!(got[i + 1..].iter().all(|b| a != b), "frame {a:#x} handed out twice");
    }
    assert_eq!(frames::free_frames(), before - 64);
    for f in got {
        frames::free(f, 1);
    }
    assert_eq!(frames::free_frames(), before);
}

#[ktest]
fn contiguous_frames_are_aligned_and_usable() {
    let before = frames::free_frames();
    let run = frames::alloc_contiguous(32, 16).expect("32 contiguous frames");
    assert_eq!(run % (16 * 4096), 0);
    // The whole run is RAM reachable through the direct map.
    let p = phys_to_virt(run) as *mut u64;
    for i in 0..32 * 512 {
        // SAFETY: the run is ours and mapped through the direct map.
        unsafe { p.add(i).write_volatile(i as u64) };
    }
    // SAFETY: as above.
    assert_eq!(unsafe { p.add(32 * 512 - 1).read_volatile() }, 32 * 512 - 1);
    frames::free(run, 32);
    assert_eq!(frames::free_frames(), before);
}

#[ktest]
fn mapping_reaches_the_frame_and_unmapping_removes_it() {
    let va = test_pages(1);
    let frame = frames::alloc_zeroed().unwrap();
    paging::map(va, frame, Flags::READ_WRITE).unwrap();
    // SAFETY: `va` was just mapped read-write to a frame we own.
    unsafe { (va as *mut u64).write_volatile(0xdead_beef) };
    // SAFETY: the same frame through the direct map.
    let through_direct_map = unsafe { (phys_to_virt(frame) as *const u64).read_volatile() };
    assert_eq!(through_direct_map, 0xdead_beef);
    let t = paging::translate(va + 8).unwrap();
    assert_eq!(t.phys, frame + 8);
    assert_eq!(
        paging::map(va, frame, Flags::READ),
        Err(paging::MapError::AlreadyMapped(va))
    );
    assert_eq!(paging::unmap(va), Ok(frame));
    assert!(paging::translate(va).is_none());
    frames::free(frame, 1);
}

#[ktest]
fn protect_makes_a_page_read_only_but_readable() {
    let va = test_pages(1);
    paging::map_fresh(va, 1, Flags::READ_WRITE).unwrap();
    // SAFETY: mapped read-write above.
    unsafe { (va as *mut u32).write_volatile(7) };
    paging::protect(va, Flags::READ).unwrap();
    let t = paging::translate(va).unwrap();
    assert!(!t.flags.contains(Flags::WRITABLE));
    // SAFETY: still mapped (read-only now).
    assert_eq!(unsafe { (va as *const u32).read_volatile() }, 7);
}

#[ktest(should_fault = Fault::Write)]
fn write_to_read_only_mapping_faults() {
    let va = test_pages(1);
    paging::map_fresh(va, 1, Flags::READ).unwrap();
    // SAFETY: deliberately faulting: the page is mapped read-only.
    unsafe { (va as *mut u64).write_volatile(1) };
}

static RODATA_WORD: u64 = 0x1234;

#[ktest(should_fault = Fault::Write)]
fn write_to_kernel_rodata_faults() {
    let p = core::ptr::addr_of!(RODATA_WORD) as *mut u64;
    // SAFETY: deliberately faulting: the loader maps .rodata read-only.
    unsafe { p.write_volatile(0) };
}

#[ktest(should_fault = Fault::Fetch)]
fn instruction_fetch_from_nx_page_faults() {
    let va = test_pages(1);
    paging::map_fresh(va, 1, Flags::READ_WRITE).unwrap();
    // SAFETY: writing `ret` into our own read-write page.
    unsafe { (va as *mut u8).write_volatile(0xc3) };
    // SAFETY: deliberately faulting: the page is mapped no-execute.
    let f: extern "C" fn() = unsafe { core::mem::transmute::<u64, extern "C" fn()>(va) };
    f();
}

#[ktest]
fn kernel_segments_have_their_own_permissions() {
    let text = paging::translate(kernel_segments_have_their_own_permissions as *const () as u64).unwrap();
    assert!(!text.flags.contains(Flags::WRITABLE), "text is writable");
    assert!(!text.flags.contains(Flags::NO_EXECUTE), "text is not executable");
    let ro = paging::translate(core::ptr::addr_of!(RODATA_WORD) as u64).unwrap();
    assert!(
        !ro.flags.contains(Flags::WRITABLE) && ro.flags.contains(Flags::NO_EXECUTE),
        "rodata: {:?}",
        ro.flags
    );
    static mut DATA: u64 = 0;
    let rw = paging::translate(core::ptr::addr_of!(DATA) as u64).unwrap();
    assert!(
        rw.flags.contains(Flags::WRITABLE) && rw.flags.contains(Flags::NO_EXECUTE),
        "data: {:?}",
        rw.flags
    );
    let direct = paging::translate(phys_to_virt(0x20_0000)).unwrap();
    assert!(direct.flags.contains(Flags::NO_EXECUTE), "direct map is executable");
    assert!(
        paging::translate(0x20_0000).is_none(),
        "the loader's identity map is still there"
    );
}

#[ktest]
fn stacks_have_unmapped_guard_pages() {
    let s = stacks::allocate(4).unwrap();
    assert_eq!(s.top - s.bottom, 4 * 4096);
    assert!(paging::translate(s.guard).is_none());
    assert!(paging::translate(s.bottom).is_some());
    assert!(paging::translate(s.top - 1).is_some());
    assert_eq!(stacks::guard_hit(s.guard + 100), Some(s));
    assert_eq!(stacks::guard_hit(s.bottom), None);
}

#[inline(never)]
#[expect(unconditional_recursion, reason = "the test overflows the stack on purpose")]
fn recurse(depth: u64) -> u64 {
    let pad = [depth; 64];
    // `black_box` keeps the frame (and the array) from being optimised away.
    core::hint::black_box(&pad);
    recurse(depth + 1) + core::hint::black_box(pad[3])
}

#[ktest(should_fault = Fault::StackOverflow)]
fn stack_overflow_hits_the_guard_page() {
    core::hint::black_box(recurse(0));
}

#[ktest(should_fault = Fault::Unmapped)]
fn read_of_unmapped_memory_faults() {
    let va = test_pages(1);
    // SAFETY: deliberately faulting: nothing is mapped at `va`.
    core::hint::black_box(unsafe { (va as *const u64).read_volatile() });
}

#[ktest]
fn a_tlb_shootdown_is_carried_out_by_every_other_cpu() {
    let online = crate::arch::percpu::online() as usize;
    let me = crate::arch::percpu::current().index as usize;
    for _ in 0..3 {
        let generation = crate::mem::tlb::shootdown();
        assert_eq!(generation > 0, online > 1, "a shootdown on {online} CPUs");
        for cpu in (0..online).filter(|&c| c != me) {
            let done = crate::mem::tlb::done(cpu);
            assert!(done >= generation, "CPU {cpu} flushed up to {done}, asked {generation}");
        }
    }
}
