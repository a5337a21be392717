//! The sampler's frame-pointer walk: real chains are followed, broken ones end the
//! walk cleanly (never a fault), both on hand-built stacks and under the live
//! sampling interrupt.

use core::sync::atomic::Ordering;

use lucid_ktest_macros::ktest;

use crate::{
    arch::percpu,
    mem::stacks,
    sampling::{self, MAX_DEPTH},
    time::Instant,
};

/// A fake stack of `N` words whose frame records sit every 4 words.
struct FakeStack([u64; 64]);

impl FakeStack {
    fn new() -> Self {
        Self([0; 64])
    }
    fn addr(&self, word: usize) -> u64 {
        core::ptr::addr_of!(self.0[word]) as u64
    }
    /// A frame record at `word`: saved frame pointer `next`, return address `ret`.
    fn frame(&mut self, word: usize, next: u64, ret: u64) {
        self.0[word] = next;
        self.0[word + 1] = ret;
    }
    fn walk(&self, fp: u64, out: &mut [u64]) -> usize {
        let low = self.addr(0);
        let high = low + 8 * self.0.len() as u64;
        // SAFETY: `[low, high)` is this array, mapped and readable.
        unsafe { sampling::walk(fp, low, high, out) }
    }
}

#[ktest]
fn a_frame_chain_is_walked_to_its_end() {
    let mut s = FakeStack::new();
    s.frame(0, s.addr(4), 0x1111);
    s.frame(4, s.addr(8), 0x2222);
    s.frame(8, 0, 0x3333);
    let mut out = [0; MAX_DEPTH];
    let n = s.walk(s.addr(0), &mut out);
    assert_eq!(&out[..n], &[0x1111, 0x2222, 0x3333]);
}

/// Where a broken record's saved frame pointer points.
type NextFrame = fn(&FakeStack) -> u64;

#[ktest]
fn a_corrupted_frame_pointer_ends_the_walk() {
    let mut out = [0; MAX_DEPTH];
    let bad: [(&str, NextFrame); 5] = [
        ("pointing down", |s| s.addr(2)),
        ("pointing at itself", |s| s.addr(4)),
        ("misaligned", |s| s.addr(8) + 3),
        ("outside the stack", |_| 0xdead_0000_0000),
        ("non-canonical", |_| 0xdead_beef_dead_beef),
    ];
    for (what, next) in bad {
        let mut s = FakeStack::new();
        s.frame(0, s.addr(4), 0x1111);
        s.frame(4, next(&s), 0x2222);
        s.frame(8, 0, 0x3333);
        let n = s.walk(s.addr(0), &mut out);
        assert_eq!(&out[..n], &[0x1111, 0x2222], "{what}");
    }
    // The last record straddling the stack's end is not read.
    let s = FakeStack::new();
    assert_eq!(s.walk(s.addr(63), &mut out), 0);
}

#[ktest]
fn a_frame_chain_longer_than_the_depth_limit_is_cut() {
    let mut s = FakeStack::new();
    for w in (0..60).step_by(2) {
        s.frame(w, s.addr(w + 2), 0x1000 + w as u64);
    }
    let mut out = [0; 8];
    assert_eq!(s.walk(s.addr(0), &mut out), 8);
}

#[ktest]
fn the_current_stack_is_walked_through_the_callers() {
    let fp: u64;
    let sp: u64;
    // SAFETY: reads two registers.
    unsafe { core::arch::asm!("mov {}, rbp", "mov {}, rsp", out(reg) fp, out(reg) sp) };
    let stack = stacks::containing(sp).expect("the test runs on a registered stack");
    let mut out = [0; MAX_DEPTH];
    // SAFETY: a registered stack is mapped over `[bottom, top)`.
    let n = unsafe { sampling::walk(fp, sp, stack.top, &mut out) };
    assert!(n >= 2, "only {n} frames above the test");
    let text = kernel_text();
    for &ret in &out[..n] {
        assert!(
            text.contains(&ret),
            "return address {ret:#x} outside the kernel's text {text:x?}"
        );
    }
}

/// The kernel's code, between the linker script's marks.
fn kernel_text() -> core::ops::Range<u64> {
    unsafe extern "C" {
        static __executable_start: u8;
        static __etext: u8;
    }
    core::ptr::addr_of!(__executable_start) as u64..core::ptr::addr_of!(__etext) as u64
}

/// Spins `iterations` times with `rbp` set to `bad`, interrupts on.
fn spin_with_frame_pointer(bad: u64, iterations: u64) {
    // SAFETY: rbp is saved and restored around the loop, which touches no memory;
    // interrupt entry does not use the interrupted rbp.
    unsafe {
        core::arch::asm!(
            "push rbp",
            "mov rbp, {bad}",
            "2:",
            "dec {n}",
            "jnz 2b",
            "pop rbp",
            bad = in(reg) bad,
            n = inout(reg) iterations => _,
        );
    }
}

#[ktest]
fn samples_of_code_with_a_broken_frame_pointer_never_fault() {
    let cpu = percpu::current().index as usize;
    let sp: u64;
    // SAFETY: reads a register.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) sp) };
    let stack = stacks::containing(sp).expect("registered stack");
    let bad = [
        0xdead_beef_dead_beef,
        0,
        stack.guard + 8,
        sp - 64,
        sp + 3,
        stack.top - 8,
    ];
    sampling::set_rate(10_000);
    sampling::arm(cpu);
    let (before, _) = sampling::cost();
    let start = Instant::now();
    for &fp in bad.iter().cycle() {
        spin_with_frame_pointer(fp, 200_000);
        if sampling::cost().0 >= before + 30 || start.elapsed().as_secs() >= 5 {
            break;
        }
    }
    sampling::set_rate(0);
    let (after, ticks) = sampling::cost();
    assert!(
        after >= before + 30,
        "only {} samples in {:?}",
        after - before,
        start.elapsed()
    );
    let cycles = ticks / after.max(1);
    crate::println!("sampling: {after} samples, {cycles} TSC ticks each on average");
    assert!(percpu::current().interrupt_depth.load(Ordering::Relaxed) == 0);
}
