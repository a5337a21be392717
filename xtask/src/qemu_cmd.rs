//! QEMU: finding (or installing) it, its command line, and what its exit status means.

use std::{
    process::{Child, Command, ExitStatus},
    time::{Duration, Instant},
};

use anyhow::Result;

use crate::{artifacts::BootImage, process};

const QEMU: &str = "qemu-system-x86_64";

/// Makes sure QEMU is installed, installing Debian's `qemu-system-x86` when `apt-get`
/// is available.
pub fn ensure_installed() -> Result<()> {
    process::ensure_installed(QEMU, "qemu-system-x86")
}

/// How a QEMU run is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// `-smp`.
    pub smp: u32,
    /// `-m`.
    pub memory: String,
    /// Kernel command line (`-append`).
    pub cmdline: String,
    /// Wait for gdb on :1234 before the first instruction.
    pub gdb: bool,
    /// Extra arguments passed through to QEMU.
    pub extra: Vec<String>,
    /// Where COM1 goes: QEMU's stdout when `None`, else this file.
    pub com1_file: Option<std::path::PathBuf>,
}

/// The QEMU command line for `image`. COM1 goes to QEMU's stdout.
pub fn command(image: &BootImage, cfg: &Config) -> Command {
    let mut cmd = Command::new(QEMU);
    cmd.args(["-machine", "pc", "-cpu", "qemu64", "-display", "none", "-no-reboot"])
        .args(["-smp", &cfg.smp.to_string(), "-m", &cfg.memory])
        .arg("-serial")
        .arg(match &cfg.com1_file {
            Some(path) => format!("file:{}", path.display()),
            None => "stdio".to_string(),
        })
        .args(["-monitor", "none"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-kernel")
        .arg(&image.loader)
        .arg("-initrd")
        .arg(&image.archive)
        .args(["-append", &cfg.cmdline]);
    if cfg.gdb {
        cmd.args(["-s", "-S"]);
    }
    cmd.args(&cfg.extra);
    cmd
}

/// QEMU arguments for the virtio-serial device with the `lucid.trace` port on
/// `chardev` (a `-chardev` spec whose id is `trace`).
pub fn trace_port_args(chardev: &str) -> Vec<String> {
    [
        "-device",
        "virtio-serial-pci",
        "-chardev",
        chardev,
        "-device",
        "virtserialport,chardev=trace,name=lucid.trace",
    ]
    .map(String::from)
    .to_vec()
}

/// What a QEMU exit status means (isa-debug-exit writes `v`, QEMU exits `(v << 1) | 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The kernel reported success (status 33).
    Success,
    /// The kernel reported a failure (status 35).
    Failure,
    /// The test runner stopped inside a test it already reported (status 37).
    TestInterrupted,
    /// QEMU ended without the kernel saying why: a triple fault with `-no-reboot`,
    /// a QEMU error, or a signal.
    Unexpected(Option<i32>),
    /// Killed by xtask's timeout.
    TimedOut,
}

impl Outcome {
    /// Maps an exit status.
    pub fn from_status(status: ExitStatus) -> Self {
        match status.code() {
            Some(33) => Self::Success,
            Some(35) => Self::Failure,
            Some(37) => Self::TestInterrupted,
            code => Self::Unexpected(code),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Success => write!(f, "kernel reported success"),
            Self::Failure => write!(f, "kernel reported failure"),
            Self::TestInterrupted => write!(f, "kernel stopped inside a test"),
            Self::Unexpected(Some(c)) => write!(
                f,
                "QEMU exited with status {c} without a report from the kernel (triple fault?)"
            ),
            Self::Unexpected(None) => write!(f, "QEMU was killed by a signal"),
            Self::TimedOut => write!(f, "timed out"),
        }
    }
}

/// Waits for `child` until `deadline`, killing it then.
pub fn wait_until(child: &mut Child, deadline: Instant) -> Result<Outcome> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Outcome::from_status(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Outcome::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parses sizes like `512M`, `2G` for `-m` and rejects anything QEMU would not take.
pub fn parse_memory(s: &str) -> Result<String, String> {
    let digits = s.trim_end_matches(['M', 'G', 'm', 'g']);
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && s.len() - digits.len() <= 1 => Ok(s.to_ascii_uppercase()),
        _ => Err(format!("`{s}` is not a memory size like 512M or 2G")),
    }
}
