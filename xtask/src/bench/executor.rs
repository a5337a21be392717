//! The executor and trace rows of the host bench program
//! (`kernel/executor/examples/bench.rs`): Lucid's executor against tokio, the trace
//! layer's overhead per poll and its bytes per event.

use std::{path::Path, process::Command};

use anyhow::Result;

use super::{
    build_example,
    row::{Row, run_rows},
};

/// The cost of reporting waits (`kernel/executor/examples/wait_cost.rs`): a wait
/// that does not happen and one that does, each the median of `runs` runs.
pub fn wait_rows(cargo: &str, runs: u32) -> Result<Vec<Row>> {
    let exe = build_example(cargo, "lucid-executor", "wait_cost")?;
    run_rows(Command::new(&exe).args(["--runs", &runs.to_string()]))
}

/// Runs the bench program `runs` times per configuration; it records its spawn_join
/// trace to `recording`.
pub fn rows(cargo: &str, runs: u32, recording: &Path) -> Result<Vec<Row>> {
    let exe = build_example(cargo, "lucid-executor", "bench")?;
    // The rows come on stdout; progress on stderr goes straight to the terminal.
    run_rows(
        Command::new(&exe)
            .args(["--runs", &runs.to_string()])
            .arg("--record")
            .arg(recording),
    )
}
