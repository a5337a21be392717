//! The wasm host's rows, measured by the kernel itself.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{
    normal_kernel,
    row::{Row, parse_kernel_bench},
};
use crate::{artifacts, process, qemu_cmd};

/// The wasm host's rows, measured by the kernel itself in one boot
/// (`workload=wasm-bench`, `kernel/src/wasm/bench.rs`): guest vs native compute,
/// the hostcall round trip and instantiation from a loaded `.cwasm`.
pub fn rows() -> Result<Vec<Row>> {
    let image = normal_kernel()?;
    let log = artifacts::target_dir().join("bench").join("wasm-bench.com1.log");
    std::fs::create_dir_all(log.parent().expect("a parent")).context("create the bench dir")?;
    let cfg = qemu_cmd::Config {
        smp: 1,
        memory: "512M".into(),
        cmdline: "workload=wasm-bench log=warn".into(),
        gdb: false,
        com1_file: Some(log.clone()),
        extra: Vec::new(),
    };
    let mut cmd = qemu_cmd::command(&image, &cfg);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    process::show(&cmd);
    let mut child = cmd.spawn().context("start QEMU")?;
    let outcome = qemu_cmd::wait_until(&mut child, Instant::now() + Duration::from_secs(300))?;
    let text = std::fs::read_to_string(&log).with_context(|| format!("read {}", log.display()))?;
    if outcome != qemu_cmd::Outcome::Success {
        bail!("the wasm bench boot ended with: {outcome}; COM1 in {}", log.display());
    }
    let rows = parse_kernel_bench(&text)?;
    if rows.is_empty() {
        bail!("the wasm bench printed no rows; COM1 in {}", log.display());
    }
    Ok(rows)
}
