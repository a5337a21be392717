//! `cargo xtask bench`: builds the host benchmark (`kernel/executor/examples/bench.rs`)
//! in release, runs it, prints its rows as a table with the goals of issue 8, and writes
//! `<target>/bench/report.json`. Figures are medians of several runs on a shared
//! machine; nothing here fails because of a speed (a missed goal is reported, not an
//! error). `docs/benchmarks.md` explains the workloads.
//!
//! One module a source of rows, in the order they are measured: the executor and
//! trace rows of the host bench program and the cost of reporting waits
//! ([`executor`]), the anchors and the rows that
//! compare Lucid with them ([`anchor`]), the console's ingest, render and replay rows
//! ([`console`]), and the rows of the booted kernel: its trace stream ([`trace`]), the
//! cost of tracing to the kernel's own executor ([`kernel_trace`]), the
//! trace against the raw link ([`link`]) and the wasm host ([`wasm`]). A row and its
//! goal are [`row`] and [`goal`]; [`report`] writes `report.json` and lays the rows out
//! as a table.
//!
//! The anchors of issue 8's rows 1 and 2 come from `bench/tokio-console-anchor` (tokio
//! bare and with console-subscriber, and console-subscriber's recording) and from
//! `lucid export --perfetto` of the spawn_join trace the bench program records.

mod anchor;
mod console;
mod executor;
mod goal;
mod kernel_trace;
mod link;
mod report;
mod row;
mod sampling;
mod trace;
mod wasm;

use std::{path::PathBuf, process::Command, time::Instant};

use anyhow::{Context, Result, bail};

pub use self::link::run_link_bench;
use self::report::{machine, table};
use crate::{
    artifacts::{self, BootImage, Variant},
    process, qemu_cmd, trace_link,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Fewer runs per configuration (a smoke test that the harness works).
    #[arg(long)]
    quick: bool,
    /// Runs per configuration (default: 3 with `--quick`, else 9).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: Option<u32>,
    /// Skip the rows that boot the kernel under QEMU.
    #[arg(long)]
    no_qemu: bool,
    /// Only the trace-vs-link boot (`workload=link-bench`), no host benchmarks.
    #[arg(long, conflicts_with = "no_qemu")]
    link_only: bool,
    /// Only the sampling profiler's cost (the demo sampled at 997 Hz), no host
    /// benchmarks.
    #[arg(long, conflicts_with_all = ["no_qemu", "link_only"])]
    sampling_only: bool,
    /// Only the wasm host's rows (`workload=wasm-bench`), no host benchmarks.
    #[arg(long, conflicts_with_all = ["no_qemu", "link_only", "sampling_only"])]
    wasm_only: bool,
    /// Only what tracing costs the kernel's own executor (`workload=trace-bench`),
    /// no host benchmarks.
    #[arg(long, conflicts_with_all = ["no_qemu", "link_only", "sampling_only", "wasm_only"])]
    kernel_trace_only: bool,
}

pub fn main(args: Args) -> Result<()> {
    let started = Instant::now();
    if args.link_only || args.sampling_only || args.wasm_only || args.kernel_trace_only {
        let rows = if args.link_only {
            link::rows(args.quick)?
        } else if args.wasm_only {
            wasm::rows()?
        } else if args.kernel_trace_only {
            kernel_trace::rows()?
        } else {
            sampling::rows()?
        };
        println!();
        print!("{}", table(&rows));
        println!();
        println!("{}; {:.0} s in all", machine(), started.elapsed().as_secs_f64());
        return Ok(());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let runs = args.runs.unwrap_or(if args.quick { 3 } else { 9 });
    let dir = artifacts::target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let recording = dir.join("spawn_join.lucid");
    let mut rows = executor::rows(&cargo, runs, &recording)?;
    rows.extend(executor::wait_rows(&cargo, runs)?);
    let chrome = anchor::chrome_json(&cargo, &recording)?;
    rows.extend(anchor::rows(&cargo, runs)?);
    let compared = anchor::comparisons(&rows, Some(chrome));
    rows.extend(compared);
    rows.extend(console::ingest_rows(&cargo, args.quick)?);
    rows.extend(console::replay_rows(&cargo, args.quick)?);
    if !args.no_qemu {
        rows.extend(trace::rows()?);
        rows.extend(kernel_trace::rows()?);
        rows.extend(link::rows(args.quick)?);
        rows.extend(wasm::rows()?);
        rows.extend(sampling::rows()?);
    }
    if rows.is_empty() {
        bail!("the bench program printed no rows");
    }

    let report = report::write(&dir, &rows)?;

    println!();
    print!("{}", table(&rows));
    println!();
    println!(
        "{}; ratio = Lucid / anchor; medians of {runs} runs; {:.0} s in all",
        machine(),
        started.elapsed().as_secs_f64()
    );
    let missed = rows.iter().filter(|r| r.met() == Some(false)).count();
    let held = rows.iter().filter(|r| r.met().is_some()).count();
    println!("goals met: {}/{held}; report: {}", held - missed, report.display());
    Ok(())
}

/// QEMU, and the normal kernel built, for the rows that boot it.
fn normal_kernel() -> Result<BootImage> {
    qemu_cmd::ensure_installed()?;
    artifacts::build(Variant::Normal)
}

/// A boot of `image` with its trace port on a socket, connected, and COM1 going to
/// a log file under `<target>/bench`.
struct TracedBoot {
    child: std::process::Child,
    stream: std::os::unix::net::UnixStream,
    log: PathBuf,
}

/// Boots `image` on `smp` CPUs with `cmdline`, COM1 to `<target>/bench/{name}.com1.log`
/// and the trace port on a socket named after `name`, and connects to the port.
fn boot_traced(image: &BootImage, name: &str, smp: u32, cmdline: &str) -> Result<TracedBoot> {
    let dir = artifacts::target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let log = dir.join(format!("{name}.com1.log"));
    let socket = trace_link::socket_path(&format!("bench-{name}"));
    let _ = std::fs::remove_file(&socket);
    let cfg = qemu_cmd::Config {
        smp,
        memory: "512M".into(),
        cmdline: cmdline.into(),
        gdb: false,
        com1_file: Some(log.clone()),
        extra: qemu_cmd::trace_port_args(&trace_link::chardev(&socket)),
    };
    let mut cmd = qemu_cmd::command(image, &cfg);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    process::show(&cmd);
    let child = cmd.spawn().context("start QEMU")?;
    let stream = trace_link::connect(&socket, std::time::Duration::from_secs(10))?;
    Ok(TracedBoot { child, stream, log })
}

/// Builds `package`'s `example` in release and returns the executable's path.
fn build_example(cargo: &str, package: &str, example: &str) -> Result<PathBuf> {
    process::run(Command::new(cargo).current_dir(process::workspace_root()).args([
        "build",
        "--release",
        "-p",
        package,
        "--example",
        example,
    ]))?;
    Ok(artifacts::target_dir().join("release/examples").join(example))
}
