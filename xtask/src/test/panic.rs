//! Contained task panics end to end: the kernel runs `workload=panic` (the demo plus
//! a task that panics every 3 s), `lucid live` records 10 s of it, and `lucid stats
//! --json` on the recording must count the panics with their messages and locations
//! while the kernel is still running at the end.

use std::time::Duration;

use anyhow::Result;

use super::{
    Tally,
    boot_record::{boot_and_record, stats_json},
    record_checks,
};
use crate::artifacts::BootImage;

/// Boots `workload=panic`, records 10 s and checks the panics in `lucid stats --json`.
pub fn end_to_end(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!("panic end to end: workload=panic for 10 s, the panics in lucid stats");
    let recorded = boot_and_record(image, "panic-e2e", "log=warn workload=panic", Duration::ZERO, 10)?;
    let json = stats_json(&recorded)?;
    record_checks(tally, "panic e2e", panic_checks(&json, recorded.kernel_survived));
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
