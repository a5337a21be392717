//! `cargo xtask fuzz`: the console's fuzz targets (`console/fuzz`) built with
//! libFuzzer's coverage instrumentation on the stable toolchain and run for a time.
//!
//! The instrumentation is what cargo-fuzz passes, minus the nightly-only sanitizer:
//! LLVM's `sancov-module` pass with 8-bit counters, a PC table and compare tracing.
//! `console/fuzz/rustc-coverage.sh`, the build's `RUSTC_WRAPPER`, adds it to Lucid's
//! crates only (the libraries run uninstrumented, several times faster); `--target`
//! keeps `RUSTFLAGS` (`--cfg fuzzing`) off build scripts and proc-macros, and a
//! target dir of its own keeps all of it off every other build. Overflow checks and
//! debug assertions are on (the fuzz crate's release profile).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{artifacts, process};

const HOST: &str = "x86_64-unknown-linux-gnu";
/// Largest input (64 KiB: the size the heap cap of the targets is stated for).
const MAX_LEN: &str = "-max_len=65536";
/// The process's resident set must stay under this (MiB).
const RSS_LIMIT: &str = "-rss_limit_mb=1024";
/// One input taking longer than this (seconds) is a hang.
const INPUT_TIMEOUT: &str = "-timeout=10";

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct Args {
    /// Minutes to fuzz each target.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Fuzz only this target (default: every one, one after the other).
    #[arg(long, value_enum)]
    target: Option<Target>,
    /// Processes fuzzing each target at once, sharing its corpus (libFuzzer reloads
    /// what the others add).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: u32,
    /// Build without compare tracing: about twice the inputs per second, for long
    /// runs on a corpus that runs with it have grown (the smoke run keeps it).
    #[arg(long)]
    no_compares: bool,
}

/// How the targets are instrumented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Coverage and compare tracing (cargo-fuzz's instrumentation).
    Full,
    /// Coverage only: compare operands are not traced, so libFuzzer loses its
    /// table of recent comparisons and gains about twice the speed.
    NoCompares,
}

impl Flavor {
    /// The flavor's own target dir (the wrapper's flags are not part of cargo's
    /// fingerprint, so the flavors cannot share one).
    fn target_dir(self) -> PathBuf {
        match self {
            Self::Full => fuzz_dir(),
            Self::NoCompares => fuzz_dir().join("no-compares"),
        }
    }
}

/// A fuzz target of `console/fuzz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Link bytes → pipeline → state → every view drawn and the stats summary.
    Decode,
    /// The decode target's input and path without drawing: many more inputs per
    /// second through the decoder, merge and state model.
    Ingest,
    /// Bytes as a recording's index file → replay open → a seek to every keyframe.
    Index,
}

impl Target {
    /// Every target.
    pub const ALL: [Self; 3] = [Self::Decode, Self::Ingest, Self::Index];

    /// The target's binary name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Decode => "decode",
            Self::Ingest => "ingest",
            Self::Index => "index",
        }
    }
}

/// What one run of a target did, from libFuzzer's final statistics.
#[derive(Debug, Default)]
pub struct Report {
    /// Inputs run.
    pub inputs: u64,
    /// Inputs per second, as libFuzzer averaged them.
    pub per_second: u64,
    /// Largest resident set of the process (MiB).
    pub peak_rss_mb: u64,
    /// Largest heap the console held (bytes), from the targets' own count.
    pub peak_heap: u64,
    /// Coverage points reached.
    pub coverage: u64,
    /// Wall time of the run.
    pub wall: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} inputs in {:.0} s ({}/s), coverage {}, peak RSS {} MiB, peak heap {:.1} MiB",
            self.inputs,
            self.wall.as_secs_f64(),
            self.per_second,
            self.coverage,
            self.peak_rss_mb,
            self.peak_heap as f64 / f64::from(1 << 20)
        )
    }
}

pub fn main(args: Args) -> Result<()> {
    let targets = args.target.map_or(Target::ALL.to_vec(), |t| vec![t]);
    let flavor = if args.no_compares {
        Flavor::NoCompares
    } else {
        Flavor::Full
    };
    build(flavor)?;
    let mut failed = Vec::new();
    for target in targets {
        let corpus = fuzz_dir().join("corpus").join(target.name());
        let budget = Duration::from_secs(args.minutes * 60);
        match run_jobs(flavor, target, &corpus, budget, args.jobs) {
            Ok(report) => println!("fuzz {}: {report}, 0 crashes", target.name()),
            Err(e) => {
                eprintln!("error: fuzz {}: {e:#}", target.name());
                failed.push(target.name());
            }
        }
    }
    if !failed.is_empty() {
        bail!("fuzz targets failed: {}", failed.join(", "));
    }
    Ok(())
}

/// The fuzz build's own target dir.
fn fuzz_dir() -> PathBuf {
    artifacts::target_dir().join("fuzz")
}

fn crate_dir() -> PathBuf {
    process::workspace_root().join("console").join("fuzz")
}

fn manifest() -> PathBuf {
    crate_dir().join("Cargo.toml")
}

/// `cargo fmt --check`, clippy and the unit tests of the fuzz crate (it is outside
/// the workspace, so the workspace's own checks do not reach it).
pub fn lint() -> Result<()> {
    let cargo = || Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    process::run(cargo().args(["fmt", "--check", "--manifest-path"]).arg(manifest()))?;
    process::run(
        cargo()
            .args(["clippy", "--all-targets", "--manifest-path"])
            .arg(manifest())
            .args(["--", "-D", "warnings"]),
    )?;
    process::run(cargo().args(["test", "--lib", "--manifest-path"]).arg(manifest()))
}

/// Builds every target with coverage instrumentation of `flavor`.
pub fn build(flavor: Flavor) -> Result<()> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "--release", "--bins", "--target", HOST, "--manifest-path"])
        .arg(manifest())
        .arg("--target-dir")
        .arg(flavor.target_dir())
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTC_WRAPPER", crate_dir().join("rustc-coverage.sh"))
        .env("LUCID_FUZZ_COMPARES", if flavor == Flavor::Full { "1" } else { "0" })
        .env("RUSTFLAGS", "--cfg fuzzing");
    process::run(&mut cmd)
}

/// [`run`] in `jobs` processes at once on one corpus; the report adds their inputs
/// and takes the largest of their peaks. Any process failing fails the run.
fn run_jobs(flavor: Flavor, target: Target, corpus: &Path, budget: Duration, jobs: u32) -> Result<Report> {
    if jobs == 1 {
        return run_flavor(flavor, target, corpus, budget);
    }
    let reports: Vec<Result<Report>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs)
            .map(|_| scope.spawn(|| run_flavor(flavor, target, corpus, budget)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a fuzz job's thread panicked")))
            })
            .collect()
    });
    let mut total = Report::default();
    for report in reports {
        let r = report?;
        total.inputs += r.inputs;
        total.per_second += r.per_second;
        total.peak_rss_mb = total.peak_rss_mb.max(r.peak_rss_mb);
        total.peak_heap = total.peak_heap.max(r.peak_heap);
        total.coverage = total.coverage.max(r.coverage);
        total.wall = total.wall.max(r.wall);
    }
    Ok(total)
}

/// Runs `target` for `budget` on the corpus in `corpus` (seeded by the target
/// itself), keeping what libFuzzer finds in `corpus`'s sibling `artifacts/`. A crash,
/// a hang, an input over the heap cap or over the RSS limit is an error.
pub fn run(target: Target, corpus: &Path, budget: Duration) -> Result<Report> {
    run_flavor(Flavor::Full, target, corpus, budget)
}

fn run_flavor(flavor: Flavor, target: Target, corpus: &Path, budget: Duration) -> Result<Report> {
    let binary = flavor.target_dir().join(HOST).join("release").join(target.name());
    let artifacts = fuzz_dir().join("artifacts").join(target.name());
    fs::create_dir_all(corpus).with_context(|| format!("create {}", corpus.display()))?;
    fs::create_dir_all(&artifacts).with_context(|| format!("create {}", artifacts.display()))?;
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "10"])
        .arg(&binary)
        .arg(corpus)
        .args([MAX_LEN, RSS_LIMIT, INPUT_TIMEOUT, "-print_final_stats=1"])
        .arg(format!("-max_total_time={}", budget.as_secs().max(1)))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .env("LUCID_FUZZ_SEEDS", corpus);
    process::show(&cmd);
    let start = Instant::now();
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let mut report = Report::default();
    let reader = BufReader::new(child.stderr.take().context("piped stderr")?);
    for line in reader.lines() {
        let line = line?;
        eprintln!("{line}");
        note(&mut report, &line);
    }
    let status = child.wait()?;
    report.wall = start.elapsed();
    if !status.success() {
        bail!(
            "{} exited with {status}; the input is in {}",
            binary.display(),
            artifacts.display()
        );
    }
    Ok(report)
}

/// Takes the figures a report needs from one line of libFuzzer's output.
fn note(report: &mut Report, line: &str) {
    let number = |text: &str| text.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
    if let Some(rest) = line.strip_prefix("stat::number_of_executed_units:") {
        report.inputs = number(rest).unwrap_or(report.inputs);
    } else if let Some(rest) = line.strip_prefix("stat::average_exec_per_sec:") {
        report.per_second = number(rest).unwrap_or(report.per_second);
    } else if let Some(rest) = line.strip_prefix("stat::peak_rss_mb:") {
        report.peak_rss_mb = number(rest).unwrap_or(report.peak_rss_mb);
    } else if let Some(rest) = line.strip_prefix("lucid-fuzz: peak heap ") {
        report.peak_heap = number(rest).unwrap_or(report.peak_heap);
    } else if let Some((_, rest)) = line.split_once(" cov: ") {
        report.coverage = number(rest).unwrap_or(report.coverage);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_takes_libfuzzers_final_figures() {
        let mut r = Report::default();
        for line in [
            "#4096\tpulse  cov: 5310 ft: 20000 corp: 300/90Kb exec/s: 2048 rss: 120Mb",
            "lucid-fuzz: peak heap 3145728 bytes (input of 12 bytes)",
            "stat::number_of_executed_units: 123456",
            "stat::average_exec_per_sec:     2057",
            "stat::peak_rss_mb:              131",
        ] {
            note(&mut r, line);
        }
        assert_eq!(
            (r.inputs, r.per_second, r.peak_rss_mb, r.peak_heap, r.coverage),
            (123_456, 2057, 131, 3_145_728, 5310)
        );
    }
}
