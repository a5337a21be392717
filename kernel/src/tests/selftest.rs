//! The test harness's own tests, run only with `ktest.selftest` (xtask checks that
//! each is reported as it should be and that the run goes on after each failure).

use lucid_ktest_macros::ktest;

#[ktest]
fn passes() {}

#[ktest]
fn panics() {
    panic!("deliberate panic");
}

#[ktest]
fn faults() {
    // SAFETY: deliberately faulting: nothing is mapped at this canonical address.
    core::hint::black_box(unsafe { (0xffff_e800_0000_0000 as *const u64).read_volatile() });
}

#[ktest]
fn hangs() {
    loop {
        crate::arch::halt();
    }
}

#[ktest]
fn passes_after_a_hang() {}

#[ktest]
fn task_panics() {
    let rt = crate::sched::runtime();
    let handle = rt
        .builder()
        .name("doomed")
        .spawn(async { panic!("deliberate panic in a task") });
    crate::sched::block_on(handle).ok();
}
