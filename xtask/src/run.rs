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
    /// Your own module, started at boot: `'[key=value…] PATH [ARGS…]'` (PATH a
    /// `.wasm` or `.wat` file; its name is the file stem; settings: fuel_per_slice,
    /// fuel_budget, max_memory_pages, kernel_memory_budget, entry). Repeatable. A
    /// module that imports something Lucid does not offer is refused before boot.
    #[arg(long = "wasm", value_name = "SPEC")]
    pub wasm: Vec<String>,
    /// Start with the sampling profiler on (997 samples per second per CPU).
    #[arg(long)]
    pub profile: bool,
    /// Extra QEMU arguments.
    #[arg(last = true)]
    pub qemu_args: Vec<String>,
}

/// The kernel command line `args` ask for.
fn kernel_cmdline(args: &Args) -> String {
    if args.profile {
        format!("{} sample_hz=997", args.cmdline).trim().to_string()
    } else {
        args.cmdline.clone()
    }
}

pub fn main(args: Args) -> Result<()> {
    boot(args, false)
}

/// Builds, boots and waits; shared with `cargo xtask qemu`.
pub fn boot(args: Args, gdb: bool) -> Result<()> {
    qemu_cmd::ensure_installed()?;
    let wasm = user_modules(&args.wasm)?;
    let image = artifacts::build_with(Variant::Normal, &wasm)?;
    let socket = trace_link::socket_path("lucid-trace");
    let _ = std::fs::remove_file(&socket);
    let chardev = if args.trace_pty {
        "pty,id=trace".to_string()
    } else {
        trace_link::chardev(&socket)
    };
    let mut extra = qemu_cmd::trace_port_args(&chardev);
    extra.extend(args.qemu_args.iter().cloned());
    // With a terminal, the live console takes it over and shows COM1 in a pane.
    let interactive = !args.headless && !args.trace_pty && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let com1 = artifacts::target_dir().join("freestanding").join("com1.log");
    let console = if interactive { Some(build_console()?) } else { None };
    let cfg = Config {
        smp: args.smp,
        memory: args.memory.clone(),
        cmdline: with_epoch(&kernel_cmdline(&args)),
        gdb,
        extra,
        com1_file: interactive.then(|| com1.clone()),
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
    if let Some(console) = console {
        return live_console(&mut cmd, &console, &socket, &com1, &args, start);
    }
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

/// The `--wasm` specs with their paths made absolute (the precompiler runs in the
/// workspace root) and checked to exist.
fn user_modules(specs: &[String]) -> Result<Vec<String>> {
    specs
        .iter()
        .map(|spec| {
            let mut words: Vec<String> = spec.split_whitespace().map(str::to_string).collect();
            let at = words
                .iter()
                .position(|w| !w.contains('=') || w.ends_with(".wasm") || w.ends_with(".wat"))
                .ok_or_else(|| anyhow::anyhow!("--wasm {spec:?}: no module path"))?;
            let path = std::path::absolute(&words[at])?;
            crate::guest_toolchain::check_module_path(&path)?;
            words[at] = path.display().to_string();
            Ok(words.join(" "))
        })
        .collect()
}

/// The kernel command line with the host's time as the realtime clock's origin
/// (`epoch=SECONDS`), unless the user gave one.
fn with_epoch(cmdline: &str) -> String {
    if cmdline.split_whitespace().any(|w| w.starts_with("epoch=")) {
        return cmdline.to_string();
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{cmdline} epoch={secs}").trim_start().to_string()
}

/// Builds the `lucid` console (release) and returns its path.
fn build_console() -> Result<std::path::PathBuf> {
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(process::workspace_root())
        .args(["build", "--release", "--package", "lucid-console"]);
    process::run(&mut cmd)?;
    Ok(artifacts::target_dir().join("release").join("lucid"))
}

/// Boots QEMU in the background and runs `lucid live` on the terminal until the user
/// quits it (or `--duration` ends QEMU); quitting the console stops QEMU.
fn live_console(
    qemu: &mut std::process::Command,
    console: &std::path::Path,
    socket: &std::path::Path,
    com1: &std::path::Path,
    args: &Args,
    start: Instant,
) -> Result<()> {
    let _ = std::fs::remove_file(com1);
    let qemu_log = com1.with_file_name("qemu.log");
    qemu.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&qemu_log)?);
    let child = std::sync::Arc::new(std::sync::Mutex::new(qemu.spawn()?));
    let limit = Duration::from_secs(args.duration.unwrap_or(args.timeout).min(args.timeout));
    let watchdog = {
        let child = std::sync::Arc::clone(&child);
        std::thread::spawn(move || {
            while start.elapsed() < limit {
                if child
                    .lock()
                    .map(|mut c| c.try_wait().ok().flatten().is_some())
                    .unwrap_or(true)
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if let Ok(mut c) = child.lock() {
                let _ = c.kill();
            }
        })
    };
    let mut live = std::process::Command::new(console);
    live.arg("live")
        .arg("--socket")
        .arg(socket)
        .arg("--kernel-log")
        .arg(com1);
    if let Some(record) = &args.record {
        live.arg("--record").arg(record);
    }
    process::show(&live);
    let status = live.status();
    if let Ok(mut c) = child.lock() {
        let _ = c.kill();
        let _ = c.wait();
    }
    let _ = watchdog.join();
    eprintln!("QEMU stopped; its messages are in {}", qemu_log.display());
    let status = status?;
    if !status.success() {
        bail!("lucid live exited with {status}");
    }
    Ok(())
}
