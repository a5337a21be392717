//! The live console end to end: `lucid live` attached to a booted kernel must build
//! the same state as `lucid stats` on the recording it made.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use super::{Tally, console_binary};
use crate::{
    artifacts::{self, BootImage},
    process,
    qemu_cmd::{self, Outcome},
    trace_link,
};

/// `lucid live` attached to a booted kernel, headless: the state it built must match
/// `lucid stats` on the recording it made of the same stream.
pub fn end_to_end(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!("console end to end: lucid live on a booted kernel vs lucid stats on its recording");
    let lucid = console_binary()?;
    let recording = artifacts::target_dir().join("freestanding").join("console-e2e.lucid");
    let (mut child, stream) = trace_link::boot(
        image,
        "console-e2e",
        "log=warn workload=burst:600",
        trace_link::Link::Virtio,
    )?;
    // The console connects by itself once this probe has let go of the socket.
    drop(stream);
    let socket = trace_link::socket_path("console-e2e");
    let mut live = Command::new(&lucid);
    live.arg("live")
        .arg("--socket")
        .arg(&socket)
        .args(["--headless-for", "20", "--record"])
        .arg(&recording);
    process::show(&live);
    let live_out = live.stderr(Stdio::inherit()).output().context("run lucid live")?;
    let outcome = qemu_cmd::wait_until(&mut child, Instant::now() + Duration::from_secs(30))?;
    let mut stats = Command::new(&lucid);
    stats.arg("stats").arg(&recording).arg("--json");
    process::show(&stats);
    let stats_out = stats.output().context("run lucid stats")?;
    let parse = |bytes: &[u8]| -> Option<serde_json::Value> {
        let mut v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        // A live stream has no file to be damaged; everything else must agree.
        v.as_object_mut()?.remove("damage");
        Some(v)
    };
    let (live_json, stats_json) = (parse(&live_out.stdout), parse(&stats_out.stdout));
    let tasks = live_json.as_ref().and_then(|v| v["tasks"].as_u64()).unwrap_or(0);
    let ok = outcome == Outcome::Success && live_json.is_some() && live_json == stats_json && tasks >= 600;
    if !ok {
        eprintln!("console e2e: QEMU {outcome}; {tasks} tasks");
        eprintln!("  live:  {}", String::from_utf8_lossy(&live_out.stdout).trim());
        eprintln!("  stats: {}", String::from_utf8_lossy(&stats_out.stdout).trim());
    }
    println!(
        "console e2e {}: the live state matches lucid stats on the recording ({tasks} tasks)",
        if ok { "PASS" } else { "FAIL" }
    );
    tally.record(
        "console e2e: lucid live on the kernel matches lucid stats on its recording",
        ok,
    );
    Ok(())
}
