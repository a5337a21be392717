//! Waits, deadlocks, stuck waits and lost wakers end to end: the kernel runs
//! `workload=deadlock` (the demo plus, every 2 s for 3 rounds, a two-task deadlock over join
//! handles, one over channels, one over mutexes taken in opposite orders, a task that
//! loses its waker and a task joining it), `lucid live` records
//! it, and `lucid stats --json` must name the deadlocked tasks and their resources
//! (found within 1 s of trace time), the stuck wait and exactly the task that lost
//! its waker. Then the plain demo with a console that connects 3 s late: the
//! snapshot answer must give it the resources created before it came, and the
//! demo's waits must raise no deadlock or stuck wait.

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use super::{
    Tally,
    boot_record::{boot_and_record, stats_json},
    record_checks,
};
use crate::artifacts::BootImage;

/// Boots `workload=deadlock`, then `workload=demo`, and checks both recordings.
pub fn end_to_end(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!("deadlock end to end: workload=deadlock for 11 s, then the demo for 30 s (console 3 s late)");
    let recorded = boot_and_record(image, "deadlock-e2e", "log=warn workload=deadlock", Duration::ZERO, 11)?;
    let json = stats_json(&recorded)?;
    record_checks(tally, "deadlock e2e", deadlock_checks(&json));
    // 30 s: the false-positive horizon issue 18 names for deadlock warnings.
    let recorded = boot_and_record(
        image,
        "waits-demo-e2e",
        "log=warn workload=demo",
        Duration::from_secs(3),
        30,
    )?;
    let json = stats_json(&recorded)?;
    record_checks(tally, "waits on the demo", demo_checks(&json));
    Ok(())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

fn count(stats: &Value, kind: &str) -> u64 {
    stats["warning_counts"][kind].as_u64().unwrap_or(0)
}

/// What `workload=deadlock` must show.
fn deadlock_checks(stats: &Value) -> [(&'static str, bool, String); 7] {
    let empty = Vec::new();
    let deadlocks = stats["deadlocks"].as_array().unwrap_or(&empty);
    let pair = |d: &Value, a: &str, b: &str, resource: &str| {
        let mut names = strings(&d["names"]);
        names.sort();
        let resources = strings(&d["resources"]);
        names == [a, b]
            && resources.len() == 2
            && resources.iter().all(|r| r.starts_with(resource))
            && resources[0] != resources[1]
    };
    let joins = deadlocks
        .iter()
        .filter(|d| strings(&d["names"]).iter().all(|n| n.starts_with("deadlock-")))
        .count();
    let channels = deadlocks
        .iter()
        .filter(|d| pair(d, "chan-deadlock-a", "chan-deadlock-b", "chan#"))
        .count();
    let locks = deadlocks
        .iter()
        .filter(|d| pair(d, "lock-deadlock-a", "lock-deadlock-b", "mutex#"))
        .count();
    let in_time = deadlocks
        .iter()
        .all(|d| d["detected_after_ns"].as_u64().is_some_and(|ns| ns <= 1_000_000_000));
    // The first warnings of each kind: long polls under TCG flood the plain list.
    let by_kind = &stats["warnings_by_kind"];
    let deadlock_warnings = strings(&by_kind["deadlock"]);
    let named = deadlock_warnings.iter().all(|w| {
        (w.contains("(deadlock-a) waits on join#") && w.contains("(deadlock-b) waits on join#"))
            || (w.contains("(chan-deadlock-a) waits on chan#")
                && w.contains("to-a recv, sent to only by task")
                && w.contains("(chan-deadlock-b) waits on chan#")
                && w.contains("to-b recv, sent to only by task"))
            || (w.contains("(lock-deadlock-a) waits on mutex#")
                && w.contains("(lock-deadlock-b) waits on mutex#")
                && w.contains("lock, held by task"))
    });
    let lost = strings(&by_kind["lost waker"]);
    let stuck = strings(&by_kind["stuck wait"]);
    [
        (
            "each round's two joining tasks deadlock, found with both join resources",
            joins > 0
                && deadlocks
                    .iter()
                    .filter(|d| strings(&d["names"]).iter().all(|n| n.starts_with("deadlock-")))
                    .all(|d| pair(d, "deadlock-a", "deadlock-b", "join#")),
            format!("{deadlocks:?}"),
        ),
        (
            "each round's two tasks receiving from each other deadlock, found with both channels",
            channels == joins,
            format!("{joins} join deadlocks, {channels} channel deadlocks: {deadlocks:?}"),
        ),
        (
            "each round's two tasks taking two mutexes in opposite orders deadlock, found with both mutexes",
            locks == joins && joins + channels + locks == deadlocks.len(),
            format!("{joins} join deadlocks, {locks} lock deadlocks: {deadlocks:?}"),
        ),
        (
            "each deadlock is found within 1 s of trace time of forming",
            !deadlocks.is_empty() && in_time,
            format!("{deadlocks:?}"),
        ),
        (
            "the deadlock warning names both tasks and both resources",
            !deadlock_warnings.is_empty() && named && count(stats, "deadlock") == deadlocks.len() as u64,
            format!("{deadlock_warnings:?}"),
        ),
        (
            "the lost-waker warning names exactly the task that dropped its waker",
            !lost.is_empty()
                && lost.iter().all(|w| w.contains("(lost-waker)"))
                && count(stats, "lost waker") == lost.len() as u64
                && lost.len() == joins,
            format!("{lost:?}"),
        ),
        (
            "the task joining it is a stuck wait naming both tasks",
            !stuck.is_empty()
                && stuck
                    .iter()
                    .all(|w| w.contains("(stuck-joiner) waits on join#") && w.contains("(lost-waker)")),
            format!("{stuck:?}"),
        ),
    ]
}

/// What the plain demo must show to a late console: waits on its channels and
/// sleeps, the wasm channels created at boot, and no lost waker, deadlock or stuck
/// wait.
fn demo_checks(stats: &Value) -> [(&'static str, bool, String); 7] {
    let resources = &stats["resources"];
    let begun = resources["waits_begun"].as_u64().unwrap_or(0);
    let ready = resources["waits_ready"].as_u64().unwrap_or(0);
    let empty = Vec::new();
    let waits = stats["waits"].as_array().unwrap_or(&empty);
    let kinds: Vec<String> = waits
        .iter()
        .map(|w| {
            format!(
                "{} {}",
                w["kind"].as_str().unwrap_or(""),
                w["op"].as_str().unwrap_or("")
            )
        })
        .collect();
    // Await stacks: the demo's sleepers park in `nap` (almost always), the wasm
    // guests in their entry's frame, each down to what it waits on.
    let stacks: Vec<(String, String)> = waits
        .iter()
        .filter_map(|w| Some((w["name"].as_str()?.to_string(), w["stack"].as_str()?.to_string())))
        .collect();
    let kernel_stack = stacks
        .iter()
        .any(|(name, stack)| name == "sleeper" && stack.starts_with("nap › timer#") && stack.ends_with(" sleep"));
    let wasm_stack = stacks
        .iter()
        .any(|(_, stack)| stack.contains(" › wchan#") && stack.ends_with(" recv"));
    let ops = &resources["ops"];
    let (sends, recvs) = (ops["send"].as_u64().unwrap_or(0), ops["recv"].as_u64().unwrap_or(0));
    [
        (
            "the kernel counts operations on resources and reports them as deltas: the demo's channels send and receive",
            sends > 1000 && recvs > 1000 && sends.abs_diff(recvs) < sends / 10,
            format!("{ops}"),
        ),
        (
            "parked tasks show their await stacks down to the resource, late console included",
            kernel_stack && wasm_stack,
            format!("{stacks:?}"),
        ),
        (
            "the demo's tasks wait on channels and timers, and their waits end",
            begun > 1000 && ready > 1000 && kinds.iter().any(|k| k == "timer sleep"),
            format!("{begun} waits begun, {ready} ready; waiting at the end: {kinds:?}"),
        ),
        (
            "a late console knows the wasm ping's channels, created before it connected",
            resources["live_by_kind"]["wchan"].as_u64().unwrap_or(0) >= 2,
            format!("{resources}; waiting at the end: {kinds:?}"),
        ),
        (
            "no lost waker on the demo: the kernel's verdicts have no false positives, late console or not",
            count(stats, "lost waker") == 0,
            format!("{:?}", strings(&stats["warnings_by_kind"]["lost waker"])),
        ),
        (
            "the recording ends on a whole frame: no malformed frame, no damage",
            stats["malformed_frames"].as_u64() == Some(0) && stats["damage"].is_null(),
            format!("{} malformed, damage {}", stats["malformed_frames"], stats["damage"]),
        ),
        (
            "no deadlock or stuck wait on the demo",
            count(stats, "deadlock") == 0 && count(stats, "stuck wait") == 0,
            format!(
                "{} deadlocks, {} stuck waits: {:?}",
                count(stats, "deadlock"),
                count(stats, "stuck wait"),
                strings(&stats["warnings"])
            ),
        ),
    ]
}
