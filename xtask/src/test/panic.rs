//! Contained task panics end to end: the kernel runs `workload=panic` (the demo plus
//! a task that panics every 3 s), `lucid live` records 10 s of it, and `lucid stats
//! --json` on the recording must count the panics with their messages and locations
//! while the kernel is still running at the end.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};

use super::{Tally, console_binary, record_checks};
use crate::{
    artifacts::{self, BootImage},
    process, trace_link,
};

/// Boots `workload=panic`, records 10 s and checks the panics in `lucid stats --json`.
pub fn end_to_end(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!("panic end to end: workload=panic for 10 s, the panics in lucid stats");
    let lucid = console_binary()?;
    let recording = artifacts::target_dir().join("freestanding").join("panic-e2e.lucid");
    let (mut child, stream) =
        trace_link::boot(image, "panic-e2e", "log=warn workload=panic", trace_link::Link::Virtio)?;
    drop(stream);
    let mut live = Command::new(&lucid);
    live.arg("live")
        .arg("--socket")
        .arg(trace_link::socket_path("panic-e2e"))
        .args(["--headless-for", "10", "--record"])
        .arg(&recording);
    process::show(&live);
    let live_out = live.stderr(Stdio::inherit()).output().context("run lucid live")?;
    // Give a panic in flight time to end the kernel if it were not contained.
    std::thread::sleep(Duration::from_millis(500));
    let still_running = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    if !live_out.status.success() {
        bail!("lucid live failed: {}", live_out.status);
    }
    let mut stats = Command::new(&lucid);
    stats.arg("stats").arg(&recording).arg("--json");
    process::show(&stats);
    let out = stats.output().context("run lucid stats")?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).context("lucid stats --json output")?;
    record_checks(tally, "panic e2e", panic_checks(&json, still_running));
    Ok(())
}

/// What `workload=panic` must show in a `lucid stats --json` summary.
fn panic_checks(stats: &serde_json::Value, still_running: bool) -> [(&'static str, bool, String); 3] {
    let count = stats["task_panics"].as_u64().unwrap_or(0);
    let empty = Vec::new();
    let panics = stats["panics"].as_array().unwrap_or(&empty);
    let text = |p: &serde_json::Value, k: &str| p[k].as_str().unwrap_or("").to_string();
    let messages: Vec<String> = panics.iter().map(|p| text(p, "message")).collect();
    let located = panics
        .iter()
        .all(|p| text(p, "location").starts_with("kernel/src/workload.rs:") && text(p, "name") == "doomed");
    let kinds = [
        messages.iter().any(|m| m.starts_with("deliberate panic #")),
        messages
            .iter()
            .any(|m| m.contains("`Option::unwrap()` on a `None` value")),
        messages.iter().any(|m| m.starts_with("index out of bounds")),
    ];
    [
        (
            "the kernel runs on through its task panics",
            still_running,
            "QEMU was still running after 10 s of workload=panic".into(),
        ),
        (
            "lucid stats counts each panic (one every 3 s) with its message",
            count >= 2 && count == panics.len() as u64 && messages.iter().all(|m| !m.is_empty()),
            format!("{count} panics: {messages:?}"),
        ),
        (
            "each panic names its task and where it was raised",
            located && kinds.iter().filter(|k| **k).count() >= 2,
            format!("{panics:?}"),
        ),
    ]
}
