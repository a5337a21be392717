//! `cargo xtask run`: build, boot under QEMU, show the kernel's COM1 log.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::{
    artifacts::{self, Variant},
    process,
    qemu_cmd::{self, Config, Outcome},
    trace_link,
};

/// Options shared by `run` and `qemu`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Number of CPUs.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub smp: u32,
    /// Guest memory (e.g. 512M, 2G).
    #[arg(long, default_value = "1G", value_parser = qemu_cmd::parse_memory)]
    pub memory: String,
    /// No interactive console (the kernel's log still goes to stdout).
    #[arg(long)]
    pub headless: bool,
    /// Stop QEMU after this many seconds (a clean end, exit status 0).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Kill QEMU (and fail) if it is still running after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    /// Record the trace stream to this `.lucid` file.
    #[arg(long)]
    pub record: Option<std::path::PathBuf>,
    /// Serve the trace port on a pty (printed by QEMU) instead of a unix socket.
    #[arg(long, conflicts_with = "record")]
    pub trace_pty: bool,
    /// Kernel command line, e.g. `log=debug workload=burst:2000`.
    #[arg(long, default_value = "")]
    pub cmdline: String,
    /// Extra QEMU arguments.
    #[arg(last = true)]
    pub qemu_args: Vec<String>,
}

pub fn main(args: Args) -> Result<()> {
    boot(args, false)
}

/// Builds, boots and waits; shared with `cargo xtask qemu`.
pub fn boot(args: Args, gdb: bool) -> Result<()> {
    qemu_cmd::ensure_installed()?;
    let image = artifacts::build(Variant::Normal)?;
    let socket = trace_link::socket_path("lucid-trace");
    let _ = std::fs::remove_file(&socket);
    let chardev = if args.trace_pty {
        "pty,id=trace".to_string()
    } else {
        trace_link::chardev(&socket)
    };
    let mut extra = qemu_cmd::trace_port_args(&chardev);
    extra.extend(args.qemu_args);
    let cfg = Config {
        smp: args.smp,
        memory: args.memory,
        cmdline: args.cmdline,
        gdb,
        extra,
    };
    if gdb {
        eprintln!("QEMU waits for gdb on localhost:1234. In another terminal:");
        eprintln!(
            "  gdb {} -ex 'target remote :1234' -ex 'hbreak kernel_entry' -ex continue",
            image.kernel.display()
        );
    }
    let mut cmd = qemu_cmd::command(&image, &cfg);
    process::show(&cmd);
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    if !args.trace_pty {
        eprintln!("trace stream: unix socket {}", socket.display());
    }
    let recorder = match &args.record {
        Some(path) => {
            let stream = trace_link::connect(&socket, Duration::from_secs(10))?;
            let path = path.clone();
            Some(std::thread::spawn(move || {
                trace_link::record(stream, &path).map(|n| (n, path))
            }))
        }
        None => None,
    };
    let limit = Duration::from_secs(args.duration.unwrap_or(args.timeout).min(args.timeout));
    let outcome = qemu_cmd::wait_until(&mut child, start + limit)?;
    if let Some(recorder) = recorder {
        let (bytes, path) = recorder
            .join()
            .map_err(|_| anyhow::anyhow!("the recorder thread panicked"))??;
        eprintln!("recorded {bytes} bytes of trace to {}", path.display());
    }
    match outcome {
        Outcome::Success => Ok(()),
        Outcome::TimedOut if args.duration.is_some_and(|d| d <= args.timeout) => {
            eprintln!("stopped QEMU after {} s (--duration)", limit.as_secs());
            Ok(())
        }
        other => bail!("QEMU: {other}"),
    }
}
