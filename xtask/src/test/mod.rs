//! `cargo xtask test`: everything CI checks, ending with one line `N passed, N failed`.
//!
//! Steps, in order: the host steps ([`host`]: `cargo fmt --check`, clippy of the host
//! crates and of the kernel with its test runner, host tests, a one-minute fuzz run
//! of the console, and `nm -u` of the kernel for stray libc/std symbols), the in-QEMU
//! suite and the harness's self-test ([`ktest`]), and the end-to-end runs of the booted kernel, one module a subsystem:
//! the trace stream ([`trace`]), the live console ([`console`]), metrics with
//! Prometheus ([`metrics`]), the link bench boot ([`link_bench`]), the wasm guests
//! ([`wasm`]), contained task panics ([`panic`]) and waits, deadlocks and lost
//! wakers ([`deadlock`]); last, a smoke run of `cargo xtask bench --quick`. A failing step does not
//! stop the later ones.

mod boot_record;
mod console;
mod deadlock;
mod host;
mod hostile;
mod ktest;
mod link_bench;
mod metrics;
mod panic;
mod sampling;
mod trace;
mod wasm;

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::Result;

use crate::{
    artifacts::{self, BootImage, Variant},
    process::{self, workspace_root},
    qemu_cmd,
};

/// Options of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Run only in-QEMU tests whose name contains this text (skips the host steps).
    #[arg(long)]
    ktest: Option<String>,
    /// Run only the trace stream's end-to-end checks.
    #[arg(long, conflicts_with = "ktest")]
    trace_only: bool,
    /// Run only the console's metrics against a real Prometheus (and the dashboards).
    #[arg(long, conflicts_with_all = ["ktest", "trace_only"])]
    metrics_only: bool,
    /// Run only the booted-kernel end-to-end scenarios whose name contains this text
    /// (trace, console, metrics, link bench, wasm, panic, deadlock).
    #[arg(long, conflicts_with_all = ["ktest", "trace_only", "metrics_only"])]
    scenario: Option<String>,
    /// Run only the wasm guests' end-to-end checks (the demo's, and your own module
    /// with `cargo xtask run --wasm`).
    #[arg(long, conflicts_with_all = ["ktest", "trace_only", "metrics_only"])]
    wasm_only: bool,
    /// Run only the fuzz smoke run (the fuzz crate's checks, build and a short run of each target).
    #[arg(long, conflicts_with_all = ["ktest", "trace_only", "metrics_only"])]
    fuzz_only: bool,
    /// CPUs for the in-QEMU suite.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    smp: u32,
    /// Seconds one in-QEMU test may run before it counts as hung.
    #[arg(long, default_value_t = 60)]
    test_timeout: u64,
}

/// Passed and failed counts with the names of failures.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
}

impl Tally {
    fn record(&mut self, name: &str, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed.push(name.to_string());
        }
    }
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Builds the console (`cargo build -p lucid-console`) and returns its `lucid` binary.
fn console_binary() -> Result<PathBuf> {
    process::run(cargo().args(["build", "-p", "lucid-console"]))?;
    Ok(artifacts::target_dir().join("debug").join("lucid"))
}

pub fn main(args: Args) -> Result<()> {
    let mut tally = Tally::default();
    if args.trace_only {
        qemu_cmd::ensure_installed()?;
        let image = artifacts::build(Variant::Normal)?;
        kernel_end_to_end(&mut tally, &image, "");
        return finish(&tally);
    }
    if let Some(filter) = &args.scenario {
        qemu_cmd::ensure_installed()?;
        let image = artifacts::build(Variant::Normal)?;
        kernel_end_to_end(&mut tally, &image, filter);
        return finish(&tally);
    }
    if args.metrics_only {
        qemu_cmd::ensure_installed()?;
        let image = artifacts::build(Variant::Normal)?;
        metrics::end_to_end(&mut tally, &image);
        return finish(&tally);
    }
    if args.wasm_only {
        qemu_cmd::ensure_installed()?;
        let image = artifacts::build(Variant::Normal)?;
        for (name, scenario) in [
            ("wasm", wasm::end_to_end as fn(&mut Tally, &BootImage) -> Result<()>),
            ("wasm user module", wasm::user_module),
        ] {
            if let Err(e) = scenario(&mut tally, &image) {
                eprintln!("error: {name} end to end: {e:#}");
                tally.record(&format!("{name} end to end runs to completion"), false);
            }
        }
        return finish(&tally);
    }
    if args.fuzz_only {
        host::fuzz_smoke(&mut tally);
        return finish(&tally);
    }
    let everything = args.ktest.is_none();
    if everything {
        host::checks(&mut tally)?;
        host::fuzz_smoke(&mut tally);
    }

    qemu_cmd::ensure_installed()?;
    match artifacts::build(Variant::Ktest) {
        Ok(image) => {
            if everything {
                host::no_undefined_symbols(&mut tally, &image)?;
            }
            let suite = ktest::Suite {
                smp: args.smp,
                filter: args.ktest.as_deref(),
                extra: "",
                per_test: Duration::from_secs(args.test_timeout),
            };
            ktest::suite_and_stream(&mut tally, &image, &suite)?;
            if everything {
                ktest::harness_selftest(&mut tally, &image)?;
            }
        }
        Err(e) => {
            eprintln!("error: building the test kernel failed: {e:#}");
            tally.record("build the test kernel", false);
        }
    }

    if everything {
        match artifacts::build(Variant::Normal) {
            Ok(image) => kernel_end_to_end(&mut tally, &image, ""),
            Err(e) => {
                eprintln!("error: building the kernel failed: {e:#}");
                tally.record("build the kernel", false);
            }
        }
        // Proves the benchmark harness works end to end (every row measured, the
        // report written); its figures are not judged here.
        step(
            &mut tally,
            "cargo xtask bench --quick runs (harness smoke, no thresholds)",
            cargo().args(["xtask", "bench", "--quick"]),
        );
    }

    finish(&tally)
}

/// Prints the failures and the final line; exits non-zero on any failure.
fn finish(tally: &Tally) -> Result<()> {
    for name in &tally.failed {
        eprintln!("FAILED: {name}");
    }
    println!("{} passed, {} failed", tally.passed, tally.failed.len());
    if !tally.failed.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// A step that is one test: it passes when the command succeeds.
fn step(tally: &mut Tally, name: &str, cmd: &mut Command) {
    let ok = process::run(cmd).map_err(|e| eprintln!("error: {e:#}")).is_ok();
    tally.record(name, ok);
}

/// Records named checks `(name, passed, detail shown on failure)` under `label`.
fn record_checks<const N: usize>(tally: &mut Tally, label: &str, checks: [(&str, bool, String); N]) {
    for (name, ok, detail) in checks {
        if !ok {
            eprintln!("{label}: {name}: {detail}");
        }
        println!("{label} {}: {name}", if ok { "PASS" } else { "FAIL" });
        tally.record(&format!("{label}: {name}"), ok);
    }
}

/// The checks that boot the normal kernel, one scenario after the other. A scenario
/// that cannot run to the end (QEMU does not start, a run times out) counts as a
/// failure, and the next one still runs.
fn kernel_end_to_end(tally: &mut Tally, image: &BootImage, filter: &str) {
    type Scenario = fn(&mut Tally, &BootImage) -> Result<()>;
    let scenarios: [(&str, Scenario); 10] = [
        ("trace", trace::end_to_end),
        ("console", console::end_to_end),
        // These two record their own failures as checks.
        ("metrics", |tally, image| {
            metrics::end_to_end(tally, image);
            Ok(())
        }),
        ("link bench", |tally, image| {
            link_bench::end_to_end(tally, image);
            Ok(())
        }),
        ("wasm", wasm::end_to_end),
        ("wasm user module", wasm::user_module),
        ("hostile", hostile::end_to_end),
        ("panic", panic::end_to_end),
        ("deadlock", deadlock::end_to_end),
        ("sampling", sampling::end_to_end),
    ];
    for (name, scenario) in scenarios.into_iter().filter(|(name, _)| name.contains(filter)) {
        if let Err(e) = scenario(tally, image) {
            eprintln!("error: {name} end to end: {e:#}");
            tally.record(&format!("{name} end to end runs to completion"), false);
        }
    }
}
