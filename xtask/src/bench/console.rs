//! The console's rows: ingest and render (`console/examples/ingest_render.rs`) and
//! replay (`console/examples/replay_seek.rs`).

use std::process::Command;

use anyhow::{Context, Result};

use super::{
    build_example,
    row::{Row, run_rows},
};
use crate::artifacts;

/// The console's rows: ingest rate and frame render time with 10k tasks, and (not
/// with `--quick`) with a million live tasks (`console/examples/ingest_render.rs`).
pub fn ingest_rows(cargo: &str, quick: bool) -> Result<Vec<Row>> {
    let exe = build_example(cargo, "lucid-console", "ingest_render")?;
    let mut cmd = Command::new(&exe);
    cmd.arg("--json");
    if !quick {
        cmd.arg("--million");
    }
    run_rows(&mut cmd)
}

/// The replay rows: index build, open, seek and play on a generated recording of
/// 1 GiB (64 MiB with `--quick`), kept in `<target>/bench` between runs
/// (`console/examples/replay_seek.rs`).
pub fn replay_rows(cargo: &str, quick: bool) -> Result<Vec<Row>> {
    let exe = build_example(cargo, "lucid-console", "replay_seek")?;
    let dir = artifacts::target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let (file, mib) = if quick {
        (dir.join("replay-64m.lucid"), "64")
    } else {
        (dir.join("replay-1g.lucid"), "1024")
    };
    run_rows(
        Command::new(&exe)
            .arg("--json")
            .arg("--file")
            .arg(&file)
            .args(["--mb", mib]),
    )
}
