//! `cargo xtask`: the one place that knows how to build the freestanding kernel
//! and loader and how to drive QEMU. Every command it runs is printed first.
#![forbid(unsafe_code)]

mod artifacts;
mod bench;
mod build;
mod fuzz;
mod guest_toolchain;
mod process;
mod qemu;
mod qemu_cmd;
mod run;
mod test;
mod trace_link;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, boot and test Lucid")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the loader, the kernel and the boot archive.
    Build(build::Args),
    /// Build everything and boot it under QEMU, showing the kernel's COM1 log.
    Run(run::Args),
    /// Like `run`, but can wait for gdb (`--gdb`).
    Qemu(qemu::Args),
    /// fmt, clippy, host tests and the in-QEMU suite; ends with `N passed, N failed`.
    Test(test::Args),
    /// Host benchmarks against tokio and of the trace layer; writes target/bench/report.json.
    Bench(bench::Args),
    /// Fuzz the console (decoder → state → views, and the replay index) for a time.
    Fuzz(fuzz::Args),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Build(args) => build::main(args),
        Command::Run(args) => run::main(args),
        Command::Qemu(args) => qemu::main(args),
        Command::Test(args) => test::main(args),
        Command::Bench(args) => bench::main(args),
        Command::Fuzz(args) => fuzz::main(args),
    }
}
