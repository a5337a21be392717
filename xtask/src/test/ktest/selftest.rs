//! The harness's own tests (`ktest.selftest`), run to prove the harness reports
//! failures by name and keeps going.

use std::time::Duration;

use anyhow::Result;

use super::{Suite, ktests};
use crate::{artifacts::BootImage, test::Tally};

/// Runs the harness's own tests (`ktest.selftest`): one passes, and one each panics,
/// faults unexpectedly and hangs; a task's panic is contained (the test passes), while
/// one with a spin lock held, with interrupts masked, in an interrupt handler or while
/// unwinding stops the kernel with its reason. The harness must report exactly that,
/// by name, and keep going after each.
pub fn harness_selftest(tally: &mut Tally, image: &BootImage) -> Result<()> {
    let suite = Suite {
        smp: 1,
        filter: None,
        extra: "ktest.selftest",
        per_test: Duration::from_secs(5),
    };
    let results = ktests(tally, image, &suite)?;
    let outcome = |needle: &str| results.values().find(|(name, ..)| name.ends_with(needle)).cloned();
    let checks = [
        ("selftest::passes", true, ""),
        ("selftest::panics", false, "panicked: deliberate"),
        ("selftest::faults", false, "unexpected Unmapped"),
        ("selftest::hangs", false, "hung"),
        ("selftest::passes_after_a_hang", true, ""),
        ("selftest::task_panics", true, ""),
        (
            "selftest::task_panics_holding_a_spin_lock",
            false,
            "not contained: with 1 kernel spin lock(s)",
        ),
        (
            "selftest::task_panics_with_interrupts_masked",
            false,
            "not contained: with interrupts masked",
        ),
        (
            "selftest::task_panics_in_an_interrupt_handler",
            false,
            "not contained: in an interrupt handler",
        ),
        (
            "selftest::task_panics_again_while_unwinding",
            false,
            "not contained: a second panic while unwinding",
        ),
    ];
    let mut ok = results.len() == checks.len();
    for (needle, pass, reason) in checks {
        match outcome(needle) {
            Some((_, p, why)) if p == pass && why.contains(reason) => {}
            other => {
                eprintln!("harness self-test: {needle}: expected pass={pass} with {reason:?}, got {other:?}");
                ok = false;
            }
        }
    }
    tally.record(
        "ktest harness reports panics, faults and hangs by name and continues",
        ok,
    );
    Ok(())
}
