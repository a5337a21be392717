//! Hostile guests end to end: `workload=hostile` runs the demo and, after 1 s,
//! guests that keep calling after the kernel refuses them (pinning memory through
//! channels, a spawn storm, a log flood) and one that forges a handle. A console
//! records 10 s from boot; `lucid stats --json` must name how each offender ended,
//! and `lucid profile` over the seconds after they ended must show the kernel's own
//! tasks and the demo's guests still running.

use std::{process::Command, time::Duration};

use anyhow::{Context, Result, bail};

use super::{
    Tally,
    boot_record::{boot_and_record, stats_json},
    record_checks,
};
use crate::{artifacts::BootImage, process};

/// The window `lucid profile` judges: after the offenders have ended.
const AFTER: &str = "5s";

pub fn end_to_end(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!("hostile end to end: the demo with guests that ignore refusals, recorded 10 s from boot");
    let recorded = boot_and_record(image, "hostile-e2e", "log=warn workload=hostile", Duration::ZERO, 10)?;
    let stats = stats_json(&recorded)?;
    let mut profile = Command::new(&recorded.lucid);
    profile
        .arg("profile")
        .arg(&recorded.recording)
        .args(["--json", "--top", "1000", "--from", AFTER]);
    process::show(&profile);
    let out = profile.output().context("run lucid profile")?;
    if !out.status.success() {
        bail!("lucid profile: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let profile: serde_json::Value = serde_json::from_slice(&out.stdout).context("lucid profile --json output")?;

    let empty = Vec::new();
    let wasm = stats["wasm"].as_array().unwrap_or(&empty);
    let state_of = |module: &str| -> Vec<String> {
        wasm.iter()
            .filter(|w| w["module"] == module)
            .map(|w| w["state"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let tasks = profile["tasks"].as_array().unwrap_or(&empty);
    let polls_after = |name: &str, kind: &str| -> u64 {
        tasks
            .iter()
            .filter(|t| t["name"] == name && t["kind"] == kind)
            .map(|t| t["polls"].as_u64().unwrap_or(0))
            .sum()
    };
    let ended_as = |name: &'static str, module: &str, expected: &str| {
        let states = state_of(module);
        (
            name,
            states == [expected],
            format!("{module}: {states:?}, expected [{expected:?}]"),
        )
    };
    let checks = [
        (
            "the kernel keeps running",
            recorded.kernel_survived,
            "QEMU had stopped".to_string(),
        ),
        ended_as("memory pinning ends killed(memory)", "hostile_pin", "killed(memory)"),
        ended_as(
            "a spawn storm ends killed(instances)",
            "hostile_storm",
            "killed(instances)",
        ),
        ended_as("a log flood ends killed(log)", "hostile_log", "killed(log)"),
        ended_as(
            "a forged handle ends trapped(hostcall_bad_handle)",
            "t_forge_handle",
            "trapped(hostcall_bad_handle)",
        ),
        (
            "the kernel's own tasks keep running after the offenders ended",
            polls_after("ping-pong", "kernel") >= 100 && polls_after("cpu-worker", "kernel") >= 100,
            format!(
                "from {AFTER}: ping-pong {} polls, cpu-worker {} polls",
                polls_after("ping-pong", "kernel"),
                polls_after("cpu-worker", "kernel")
            ),
        ),
        (
            "the demo's guests keep running after the offenders ended",
            polls_after("ping", "wasm") >= 50
                && polls_after("pong", "wasm") >= 50
                && polls_after("hasher", "wasm") >= 50
                && polls_after("sleeper", "wasm") >= 10,
            format!(
                "from {AFTER}: ping {}, pong {}, hasher {}, sleeper {} polls",
                polls_after("ping", "wasm"),
                polls_after("pong", "wasm"),
                polls_after("hasher", "wasm"),
                polls_after("sleeper", "wasm")
            ),
        ),
    ];
    record_checks(tally, "hostile e2e", checks);
    Ok(())
}
