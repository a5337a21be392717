//! The host steps: `cargo fmt --check`, clippy, the host test suites (with the loom
//! models), a fuzz smoke run of the console, and `nm -u` of the test kernel.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context, Result};

use super::{Tally, cargo, step};
use crate::{
    artifacts::{self, BootImage},
    fuzz, process,
};

/// Workspace members that only build freestanding (checked and built on their own).
const FREESTANDING_EXCLUDES: &[&str] = &[
    "--exclude",
    "lucid-kernel",
    "--exclude",
    "lucid-loader",
    "--exclude",
    "lucid-memfuncs",
];
const DENY: &[&str] = &["--", "-D", "warnings"];

/// fmt, clippy of the host crates and of each freestanding build, and the host tests.
pub fn checks(tally: &mut Tally) -> Result<()> {
    step(tally, "cargo fmt --check", cargo().args(["fmt", "--all", "--check"]));
    // Host crates and freestanding crates are checked separately so that features
    // host crates enable (e.g. `std`) are not unified into the kernel's dependencies.
    step(
        tally,
        "clippy (host crates)",
        cargo()
            .args(["clippy", "--workspace", "--all-targets"])
            .args(FREESTANDING_EXCLUDES)
            .args(DENY),
    );
    for (package, features) in [
        ("lucid-loader", &[][..]),
        ("lucid-kernel", &[]),
        ("lucid-kernel", &["ktest"]),
    ] {
        let name = format!("clippy ({package} {})", features.join(","));
        step(
            tally,
            name.trim_end(),
            artifacts::freestanding_cargo("clippy", package, features).args(DENY),
        );
    }
    host_tests(tally)
}

/// `nm -u` of the kernel ELF: a freestanding kernel links no libc or std symbol.
pub fn no_undefined_symbols(tally: &mut Tally, image: &BootImage) -> Result<()> {
    let mut nm = Command::new("nm");
    nm.arg("-u").arg(&image.kernel);
    process::show(&nm);
    let out = nm.output().context("run nm")?;
    let undefined = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !undefined.is_empty() {
        eprintln!("kernel ELF has undefined symbols:\n{undefined}");
    }
    tally.record("nm -u kernel is empty", out.status.success() && undefined.is_empty());
    Ok(())
}

/// Runs the host test suites and counts their individual tests.
fn host_tests(tally: &mut Tally) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["test", "--workspace"]).args(FREESTANDING_EXCLUDES);
    count_test_output(tally, &mut cmd, "host test")?;
    // The loom models, in their own target dir: `--cfg loom` changes every crate's build.
    let mut loom = cargo();
    loom.args([
        "test",
        "--release",
        "-p",
        "lucid-executor",
        "-p",
        "lucid-trace",
        "--lib",
        "loom",
        "--target-dir",
    ])
    .arg(artifacts::target_dir().join("loom"))
    .env("RUSTFLAGS", "--cfg loom");
    count_test_output(tally, &mut loom, "loom model")
}

/// Runs a libtest command and adds each of its tests to the tally.
fn count_test_output(tally: &mut Tally, cmd: &mut Command, label: &str) -> Result<()> {
    let (ok, output) = run_tee(cmd)?;
    let (mut passed, mut failed) = (0, 0);
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
        }
        if let Some(name) = line.strip_prefix("test ").and_then(|l| l.strip_suffix(" ... FAILED")) {
            tally.failed.push(format!("{label} {name}"));
        }
    }
    tally.passed += passed;
    let named = tally.failed.iter().filter(|n| n.starts_with(label)).count();
    for _ in named..failed {
        tally.failed.push(format!("{label} (unnamed)"));
    }
    if !ok && failed == 0 {
        tally.record(&format!("{label}s build and run"), false);
    }
    Ok(())
}

/// `"3 passed; 0 failed; …"` → the number before `what`.
fn count(summary: &str, what: &str) -> usize {
    summary
        .split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(what.trim())
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `cmd`, echoing its stdout while capturing it.
fn run_tee(cmd: &mut Command) -> Result<(bool, String)> {
    process::show(cmd);
    let mut child = cmd.stdout(Stdio::piped()).spawn().context("spawn")?;
    let mut out = String::new();
    let mut reader = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        print!("{line}");
        out.push_str(&line);
        line.clear();
    }
    Ok((child.wait()?.success(), out))
}

/// Seconds each fuzz target runs in the smoke run.
const FUZZ_SMOKE_SECS: u64 = 30;

/// The fuzz crate's lints, its instrumented build and a short run of each target
/// from its seeds alone (a fresh corpus, so every run does the same kind of work).
pub fn fuzz_smoke(tally: &mut Tally) {
    let start = std::time::Instant::now();
    let lint = fuzz::lint().map_err(|e| eprintln!("error: {e:#}")).is_ok();
    tally.record("fuzz crate: fmt, clippy and unit tests", lint);
    if let Err(e) = fuzz::build(fuzz::Flavor::Full) {
        eprintln!("error: {e:#}");
        tally.record("fuzz targets build", false);
        return;
    }
    for target in fuzz::Target::ALL {
        let corpus = artifacts::target_dir()
            .join("fuzz")
            .join("smoke-corpus")
            .join(target.name());
        let _ = std::fs::remove_dir_all(&corpus);
        let name = format!("fuzz {} for {FUZZ_SMOKE_SECS} s: no crash", target.name());
        match fuzz::run(target, &corpus, std::time::Duration::from_secs(FUZZ_SMOKE_SECS)) {
            Ok(report) => {
                println!("fuzz smoke {}: {report}", target.name());
                tally.record(&name, true);
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                tally.record(&name, false);
            }
        }
    }
    println!(
        "fuzz smoke (lint, build, runs) took {:.0} s",
        start.elapsed().as_secs_f64()
    );
}
