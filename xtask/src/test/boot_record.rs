//! One boot recorded by the console: the shared first half of the end-to-end
//! scenarios that judge a kernel workload by `lucid stats` on its recording.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};

use super::console_binary;
use crate::{
    artifacts::{self, BootImage},
    process, trace_link,
};

/// A finished recording of one boot.
pub struct Recorded {
    /// The console binary that recorded it.
    pub lucid: PathBuf,
    /// The `.lucid` file.
    pub recording: PathBuf,
    /// Whether QEMU was still running when the console was done: the kernel did
    /// not stop on its own.
    pub kernel_survived: bool,
}

/// Boots the normal kernel with `cmdline`, waits `connect_after`, records `seconds`
/// with `lucid live` and stops QEMU.
pub fn boot_and_record(
    image: &BootImage,
    name: &str,
    cmdline: &str,
    connect_after: Duration,
    seconds: u32,
) -> Result<Recorded> {
    let lucid = console_binary()?;
    let recording = artifacts::target_dir()
        .join("freestanding")
        .join(format!("{name}.lucid"));
    let (mut child, stream) = trace_link::boot(image, name, cmdline, trace_link::Link::Virtio)?;
    drop(stream);
    std::thread::sleep(connect_after);
    let mut live = Command::new(&lucid);
    live.arg("live")
        .arg("--socket")
        .arg(trace_link::socket_path(name))
        .args(["--headless-for", &seconds.to_string(), "--record"])
        .arg(&recording);
    process::show(&live);
    let live_out = live.stderr(Stdio::inherit()).output().context("run lucid live")?;
    // A moment for a kernel that is going down to finish doing so.
    std::thread::sleep(Duration::from_millis(500));
    let kernel_survived = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    if !live_out.status.success() {
        bail!("lucid live failed: {}", live_out.status);
    }
    Ok(Recorded {
        lucid,
        recording,
        kernel_survived,
    })
}

/// `lucid stats --json` of a recording.
pub fn stats_json(recorded: &Recorded) -> Result<serde_json::Value> {
    let mut stats = Command::new(&recorded.lucid);
    stats.arg("stats").arg(&recorded.recording).arg("--json");
    process::show(&stats);
    let out = stats.output().context("run lucid stats")?;
    serde_json::from_slice(&out.stdout).context("lucid stats --json output")
}
