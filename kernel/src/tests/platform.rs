use lucid_ktest_macros::ktest;

use crate::{
    arch::{pit, rdtsc},
    time::{self, Instant},
};

#[ktest]
fn tsc_is_monotonic() {
    let mut last = rdtsc();
    for _ in 0..100_000 {
        let now = rdtsc();
        assert!(now >= last, "TSC went backwards: {last} -> {now}");
        last = now;
    }
    let a = Instant::now();
    let b = Instant::now();
    assert!(b >= a);
}

#[ktest]
fn tsc_calibration_agrees_with_the_pit() {
    // An independent measurement: three 50 ms PIT intervals, median.
    let (measured, _) = pit::median_rates(3, 59_659, || (rdtsc(), 0));
    let ratio = measured as f64 / time::tsc_hz() as f64;
    assert!(
        (0.95..=1.05).contains(&ratio),
        "TSC over PIT intervals runs at {ratio:.3} of the calibrated rate"
    );
    assert!(
        time::tsc_hz() > 100_000_000,
        "TSC at {} Hz is implausible",
        time::tsc_hz()
    );
}

#[ktest]
fn duration_conversions_round_trip() {
    let d = core::time::Duration::from_millis(1234);
    let back = time::ticks_to_duration(time::duration_to_ticks(d));
    let diff = back.abs_diff(d);
    assert!(diff < core::time::Duration::from_micros(1), "{d:?} -> {back:?}");
}

#[ktest]
fn acpi_tables_are_found() {
    let p = crate::acpi::discover(crate::tests::platform::rsdp()).expect("ACPI tables");
    assert!(p.table_count >= 3, "only {} ACPI tables", p.table_count);
    assert_eq!(p.local_apic, 0xfee0_0000);
    assert!(p.io_apics >= 1);
    assert!(p.hpet.is_some(), "no HPET table");
    if let Some(expected) = crate::cmdline::get(crate::tests::platform::cmdline(), "ktest.cpus") {
        assert_eq!(Some(p.cpu_count), expected.parse().ok(), "MADT CPUs vs QEMU -smp");
    }
    assert_eq!(crate::cpu_count(), p.cpu_count as u64);
}

static BOOT: spin::Once<(u64, &'static str)> = spin::Once::new();

/// Remembers what tests need from the boot info.
pub fn remember_boot(rsdp: u64, cmdline: &'static str) {
    BOOT.call_once(|| (rsdp, cmdline));
}

fn rsdp() -> u64 {
    BOOT.get().map_or(0, |b| b.0)
}

fn cmdline() -> &'static str {
    BOOT.get().map_or("", |b| b.1)
}
