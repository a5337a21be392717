//! The test harness's own tests, run only with `ktest.selftest` (xtask checks that
//! each is reported as it should be and that the run goes on after each failure).
//! The panics here that stop the kernel are the ones unwinding cannot contain: the
//! report must say why.

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

/// A task's panic is contained: the test goes on and sees it in the `JoinError`.
#[ktest]
fn task_panics() {
    let rt = crate::sched::runtime();
    let handle = rt
        .builder()
        .name("doomed")
        .spawn(async { panic!("deliberate panic in a task") });
    let err = crate::sched::block_on(handle).expect_err("the task panicked");
    assert_eq!(
        err.panic().map(|p| p.message.as_str()),
        Some("deliberate panic in a task")
    );
}

/// Spawns a task named `name` running `body` and waits for it.
fn in_task(name: &'static str, body: fn()) {
    let handle = crate::sched::runtime()
        .builder()
        .name(name)
        .spawn(async move { body() });
    let _ = crate::sched::block_on(handle);
}

#[ktest]
fn task_panics_holding_a_spin_lock() {
    static LOCK: crate::sync::SpinLock<u32> = crate::sync::SpinLock::new(0);
    in_task("lock-holder", || {
        let mut held = LOCK.lock();
        *held += 1;
        panic!("deliberate panic with a spin lock held");
    });
}

#[ktest]
fn task_panics_with_interrupts_masked() {
    in_task("masker", || {
        let _masked = crate::arch::InterruptGuard::new();
        panic!("deliberate panic with interrupts masked");
    });
}

#[ktest]
fn task_panics_in_an_interrupt_handler() {
    fn handler(_frame: &mut crate::arch::idt::InterruptFrame) {
        panic!("deliberate panic in an interrupt handler");
    }
    crate::arch::idt::set_handler(0x42, handler);
    in_task("interrupted", || {
        // SAFETY: vector 0x42's handler panics; the kernel stops there.
        unsafe { core::arch::asm!("int 0x42") };
    });
}

#[ktest]
fn task_panics_again_while_unwinding() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("deliberate panic in a destructor while unwinding");
        }
    }
    in_task("double-panic", || {
        let _guard = PanicsOnDrop;
        panic!("deliberate first panic");
    });
}
