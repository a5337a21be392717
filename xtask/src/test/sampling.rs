//! The sampling profiler end to end: the demo with `sample_hz=997` recorded for 10 s;
//! `lucid profile --samples --json` on the recording (symbols from the kernel ELF the
//! build produced) must name the CPU-bound kernel task's loop function as its hottest
//! and the hasher guest's hash function (`hasher!hash`, from the kernel's wasm code
//! map) as where most of its samples fall, and `lucid export --folded`/`--svg` must write stacks rooted at tasks.

use std::{process::Command, time::Duration};

use anyhow::{Context, Result, bail};

use super::{Tally, boot_record::boot_and_record, record_checks};
use crate::{
    artifacts::{self, BootImage},
    process,
};

/// Boots the demo with sampling on, records 10 s and checks the sample views.
pub fn end_to_end(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!("sampling end to end: the demo at sample_hz=997 for 10 s, in lucid profile --samples");
    let recorded = boot_and_record(image, "sampling-e2e", "log=warn sample_hz=997", Duration::ZERO, 10)?;
    let run = |cmd: &mut Command| -> Result<Vec<u8>> {
        process::show(cmd);
        let out = cmd.output().context("run lucid")?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(out.stdout)
    };
    let report: serde_json::Value = serde_json::from_slice(&run(Command::new(&recorded.lucid)
        .args(["profile", "--samples", "--json", "--top", "50"])
        .arg(&recorded.recording)
        .arg("--kernel-elf")
        .arg(&image.kernel))?)?;
    let folded = artifacts::target_dir().join("freestanding").join("sampling-e2e.folded");
    let svg = artifacts::target_dir().join("freestanding").join("sampling-e2e.svg");
    run(Command::new(&recorded.lucid)
        .arg("export")
        .arg(&recorded.recording)
        .arg("--folded")
        .arg(&folded)
        .arg("--svg")
        .arg(&svg)
        .arg("--kernel-elf")
        .arg(&image.kernel))?;
    let folded = std::fs::read_to_string(&folded).context("read the folded stacks")?;
    let svg = std::fs::read_to_string(&svg).context("read the flame graph")?;
    record_checks(tally, "sampling e2e", sampling_checks(&report, &folded));
    // inferno titles each frame `name (N samples, P%)`; tasks are the roots.
    let roots = ["<title>hasher (", "<title>cpu-worker ("];
    record_checks(
        tally,
        "sampling e2e",
        [(
            "lucid export --svg draws a flame graph whose root frames are tasks",
            svg.starts_with("<?xml") && roots.iter().all(|r| svg.contains(r)),
            format!("{} bytes of SVG, roots {roots:?}", svg.len()),
        )],
    );
    Ok(())
}

/// What the demo's samples must show.
fn sampling_checks(report: &serde_json::Value, folded: &str) -> [(&'static str, bool, String); 4] {
    let samples = report["samples"].as_u64().unwrap_or(0);
    let in_contexts: u64 = report["contexts"]
        .as_array()
        .map_or(0, |c| c.iter().filter_map(|c| c["samples"].as_u64()).sum());
    let empty = Vec::new();
    let tasks = report["tasks"].as_array().unwrap_or(&empty);
    let workers: Vec<(String, String)> = tasks
        .iter()
        .filter(|t| t["name"] == "cpu-worker")
        .map(|t| {
            let top = &t["top_self"][0];
            let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
            (text(&top["function"]), text(&top["location"]))
        })
        .collect();
    // The hasher guest spends its slices in its `$hash` loop: named from the
    // module's name section through the kernel's code map.
    let hashers: Vec<(String, f64)> = tasks
        .iter()
        .filter(|t| t["name"] == "hasher")
        .map(|t| {
            let top = &t["top_self"][0];
            (
                top["function"].as_str().unwrap_or("").to_string(),
                top["share"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    let roots_ok = !folded.is_empty()
        && folded.lines().all(|l| {
            let root = l.split(';').next().unwrap_or("");
            !root.is_empty() && !root.starts_with("0x") && !root.starts_with("lucid_")
        });
    [
        (
            "every CPU is sampled and every sample counted in a context",
            samples >= 400 && in_contexts == samples && report["cpus"].as_array().is_some_and(|c| c.len() >= 2),
            format!("{samples} samples, {in_contexts} by context, cpus {}", report["cpus"]),
        ),
        (
            "a CPU-bound kernel task's hottest function is its loop's function, with its file:line from DWARF",
            !workers.is_empty()
                && workers
                    .iter()
                    .all(|(f, at)| f.ends_with("workload::hash_round") && at.contains("kernel/src/workload.rs:")),
            format!("cpu-worker hottest functions: {workers:?}"),
        ),
        (
            "the hasher guest's samples fall at least 80 % in its hash function, named module!function",
            !hashers.is_empty() && hashers.iter().all(|(f, share)| f == "hasher!hash" && *share >= 0.8),
            format!("hasher hottest functions and shares: {hashers:?}"),
        ),
        (
            "folded sample stacks are rooted at tasks (or idle, scheduler, interrupt)",
            roots_ok,
            folded.lines().take(3).collect::<Vec<_>>().join(" | "),
        ),
    ]
}
