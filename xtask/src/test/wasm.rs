//! The demo's wasm guests end to end: a console that connects late records the demo
//! workload, and `lucid stats`, `lucid profile` and `lucid export` on the recording
//! must show every guest doing what it is for.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, Result, bail};

use super::{
    Tally,
    boot_record::{boot_and_record, stats_json},
    record_checks,
};
use crate::{
    artifacts::{self, BootImage},
    process,
};

/// The demo's wasm guests as the console sees them: `lucid live` records 10 s of
/// the demo workload, and `lucid stats --json` on the recording must show every
/// demo instance doing what it is for.
pub fn end_to_end(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!("wasm end to end: the demo's guests, a console connecting after 3 s for 10 s, in lucid stats");
    // Connect late: the instances started at boot must come from the kernel's
    // answer to the console's snapshot request.
    let recorded = boot_and_record(image, "wasm-e2e", "log=warn workload=demo", Duration::from_secs(3), 10)?;
    let json = stats_json(&recorded)?;
    record_checks(tally, "wasm e2e", wasm_demo_checks(&json));
    record_checks(
        tally,
        "wasm e2e",
        profile_and_export_checks(&recorded.lucid, &recorded.recording)?,
    );
    Ok(())
}

/// Your own module with one flag: a Rust program compiled here with the wasm32-wasi
/// toolchain runs under `cargo xtask run --headless --duration 15 --wasm 'prog.wasm
/// a b'`, its stdout lines are in the COM1 log and `lucid stats --json` on the
/// recording shows the instance with its arguments and exit code; a module importing what Lucid
/// does not offer is refused before boot, naming the import.
pub fn user_module(tally: &mut Tally, _image: &BootImage) -> Result<()> {
    println!("wasm user module: cargo xtask run --wasm 'prog.wasm a b', and a refused module");
    let dir = artifacts::target_dir().join("freestanding").join("wasm-user");
    std::fs::create_dir_all(&dir)?;
    let src = dir.join("prog.rs");
    std::fs::write(
        &src,
        "fn main() {\n    let args: Vec<String> = std::env::args().skip(1).collect();\n    \
         println!(\"user prog: args {:?}\", args);\n    println!(\"user prog: second line\");\n    \
         eprintln!(\"user prog: exiting with {}\", args.len() + 3);\n    \
         std::process::exit(args.len() as i32 + 3);\n}\n",
    )?;
    let prog = dir.join("prog.wasm");
    crate::guest_toolchain::compile_rust_program(&src, &prog)?;
    let bad = dir.join("bad.wat");
    std::fs::write(
        &bad,
        r#"(module (import "env" "open_file" (func)) (func (export "_start")))"#,
    )?;

    let xtask_run = |extra: &[&str]| -> Result<std::process::Output> {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(process::workspace_root())
            .args(["xtask", "run", "--headless"])
            .args(extra);
        process::show(&cmd);
        cmd.output().context("run cargo xtask run")
    };
    let refused = xtask_run(&["--duration", "5", "--wasm", &bad.display().to_string()])?;
    let refusal = String::from_utf8_lossy(&refused.stderr).into_owned();
    let recording = dir.join("user.lucid");
    let _ = std::fs::remove_file(&recording);
    let spec = format!("{} a b", prog.display());
    let ran = xtask_run(&[
        "--duration",
        "15",
        "--record",
        &recording.display().to_string(),
        "--wasm",
        &spec,
    ])?;
    let com1 = String::from_utf8_lossy(&ran.stdout).into_owned();
    let lines: Vec<&str> = com1.lines().filter(|l| l.contains("stdout: user prog:")).collect();
    let stats = super::boot_record::stats_json(&super::boot_record::Recorded {
        lucid: super::console_binary()?,
        recording,
        kernel_survived: true,
    })?;
    let states: Vec<String> = stats["wasm"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter(|w| w["module"] == "prog")
                .map(|w| {
                    format!(
                        "{} / args {} / stderr {:?}",
                        w["state"].as_str().unwrap_or(""),
                        w["args"],
                        w["stderr_tail"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    record_checks(
        tally,
        "wasm user module",
        [
            (
                "a module importing what Lucid does not offer is refused before boot, naming the import",
                !refused.status.success() && refusal.contains("imports env.open_file, which Lucid does not offer"),
                format!("status {}; stderr tail: {}", refused.status, tail(&refusal)),
            ),
            (
                "the program's stdout lines are in the COM1 log, with its arguments",
                ran.status.success()
                    && lines.len() == 2
                    && lines[0].contains("prog#")
                    && lines[0].contains(r#"args ["a", "b"]"#),
                format!("status {}; lines {lines:?}", ran.status),
            ),
            (
                "lucid stats --json shows the instance with its arguments, exit code and last stderr line",
                states == [r#"exited(5) / args ["prog","a","b"] / stderr "user prog: exiting with 5""#],
                format!("prog instances: {states:?}"),
            ),
        ],
    );
    Ok(())
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("at ")).collect();
    lines[lines.len().saturating_sub(4)..].join(" | ")
}

/// `lucid profile` and `lucid export` on the demo's recording: the CPU-bound guest
/// is the top busy task, and the Perfetto file has one CPU-track slice per poll.
fn profile_and_export_checks(lucid: &Path, recording: &Path) -> Result<[(&'static str, bool, String); 2]> {
    let run = |cmd: &mut Command| -> Result<Vec<u8>> {
        process::show(cmd);
        let out = cmd.output().context("run lucid")?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(out.stdout)
    };
    let profile: serde_json::Value = serde_json::from_slice(&run(Command::new(lucid)
        .arg("profile")
        .arg(recording)
        .args(["--json", "--top", "3"]))?)?;
    let top = profile["tasks"][0]["name"].as_str().unwrap_or("").to_string();
    // A window keeps the export small; `stats` counts the same window.
    let window = ["--to", "500ms"];
    let perfetto = artifacts::target_dir()
        .join("freestanding")
        .join("wasm-e2e.perfetto.json");
    run(Command::new(lucid)
        .arg("export")
        .arg(recording)
        .arg("--perfetto")
        .arg(&perfetto)
        .args(window))?;
    let trace: serde_json::Value = serde_json::from_slice(&std::fs::read(&perfetto)?)?;
    let stats: serde_json::Value = serde_json::from_slice(&run(Command::new(lucid)
        .arg("stats")
        .arg(recording)
        .arg("--json")
        .args(window))?)?;
    let events = trace["traceEvents"].as_array().cloned().unwrap_or_default();
    // The process named "CPUs" holds one track per CPU.
    let cpus_pid = events
        .iter()
        .find(|e| e["ph"] == "M" && e["name"] == "process_name" && e["args"]["name"] == "CPUs")
        .map(|e| e["pid"].clone());
    let slices = events
        .iter()
        .filter(|e| e["ph"] == "X" && Some(&e["pid"]) == cpus_pid.as_ref())
        .count() as u64;
    let poll_ends = stats["events_by_kind"]["poll_end"].as_u64().unwrap_or(0);
    let cpus = stats["cpus"].as_u64().unwrap_or(0);
    Ok([
        (
            "lucid profile names the CPU-bound guest the busiest task",
            top == "hasher",
            format!("top: {top:?}"),
        ),
        (
            // A console that connects late may see each CPU's first poll end without
            // its start: at most one poll per CPU has no slice.
            "lucid export --perfetto has a CPU-track slice for every poll",
            slices <= poll_ends && slices + cpus >= poll_ends && slices > 0,
            format!("{slices} slices, {poll_ends} poll ends, {cpus} CPUs"),
        ),
    ])
}

/// What the demo's guests must have done in a `lucid stats --json` summary.
fn wasm_demo_checks(stats: &serde_json::Value) -> [(&'static str, bool, String); 11] {
    let empty = Vec::new();
    let wasm = stats["wasm"].as_array().unwrap_or(&empty);
    fn of<'a>(wasm: &'a [serde_json::Value], module: &'a str) -> impl Iterator<Item = &'a serde_json::Value> {
        wasm.iter().filter(move |w| w["module"] == module)
    }
    let of = |module: &'static str| of(wasm, module);
    let state_of = |module: &'static str| {
        of(module)
            .map(|w| w["state"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    let calls = |module: &'static str, hostcall: &str| -> u64 {
        of(module)
            .map(|w| w["hostcalls"][hostcall]["calls"].as_u64().unwrap_or(0))
            .sum()
    };
    let grows: u64 = of("grower").map(|w| w["memory_grows"].as_u64().unwrap_or(0)).sum();
    let exited_shorts = state_of("short").iter().filter(|s| *s == "exited(3)").count();
    let hasher_slices: u64 = of("hasher").map(|w| w["slices"].as_u64().unwrap_or(0)).sum();
    let snapshots = stats["events_by_kind"]["wasm_instance_snapshot"].as_u64().unwrap_or(0);
    let task_snapshots = stats["events_by_kind"]["task_snapshot"].as_u64().unwrap_or(0);
    let unnamed = stats["tasks_unnamed"].as_u64().unwrap_or(u64::MAX);
    let unnamed_alive = stats["tasks_unnamed_unfinished"].as_u64().unwrap_or(u64::MAX);
    let depth_samples = stats["events_by_kind"]["run_queue_depth"].as_u64().unwrap_or(0);
    [
        (
            "a late console learns live instances from the snapshot",
            snapshots >= 5,
            format!("{snapshots} instance snapshots"),
        ),
        (
            // A task that ended between the console connecting and the kernel reading
            // its registry is known only from the events still in flight; every task
            // alive at the snapshot must be named by it.
            "a late console learns live tasks from the snapshot: every unfinished task has a name",
            task_snapshots >= snapshots && unnamed_alive == 0,
            format!(
                "{task_snapshots} task snapshots; {unnamed} tasks known only from events, {unnamed_alive} of them unfinished"
            ),
        ),
        (
            // One sample per busy CPU per 10 ms window.
            "the kernel samples every CPU's run-queue depth",
            depth_samples >= 400,
            format!("{depth_samples} run-queue depth samples in 10 s"),
        ),
        (
            "at least 6 instances",
            wasm.len() >= 6,
            format!("{} instances", wasm.len()),
        ),
        (
            "ping and pong exchange messages",
            calls("ping", "chan_send") >= 100 && calls("pong", "chan_send") >= 100,
            format!(
                "ping sent {}, pong sent {}",
                calls("ping", "chan_send"),
                calls("pong", "chan_send")
            ),
        ),
        (
            "the hasher is preempted every slice",
            hasher_slices >= 100,
            format!("{hasher_slices} slices"),
        ),
        (
            "the sleeper sleeps",
            calls("sleeper", "sleep") >= 20,
            format!("{} sleeps", calls("sleeper", "sleep")),
        ),
        (
            "the grower's memory grows in steps",
            grows >= 5,
            format!("{grows} growths"),
        ),
        (
            "the trapper traps out of bounds",
            state_of("trapper") == ["trapped(memory_out_of_bounds)"],
            format!("{:?}", state_of("trapper")),
        ),
        (
            "the spinner is killed at its budget",
            state_of("spinner").iter().any(|s| s.starts_with("killed")),
            format!("{:?}", state_of("spinner")),
        ),
        (
            "short-lived instances exit",
            exited_shorts >= 5,
            format!("{exited_shorts} exited(3)"),
        ),
    ]
}
