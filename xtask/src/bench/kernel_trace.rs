//! Issue 17's in-QEMU rows: what tracing costs the kernel's own executor, as
//! recording ÷ off and paused ÷ off in one boot (`workload=trace-bench`,
//! `kernel/src/workload/trace_bench.rs`), with a host reading the trace port.

use std::{
    io::Read,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{
    TracedBoot, boot_traced, normal_kernel,
    row::{Row, parse_kernel_bench},
};
use crate::qemu_cmd;

/// Boots the kernel on one CPU (so the drain frames on the CPU whose polls it frames),
/// reads its trace port to the end on a thread, and returns the rows it printed.
pub fn rows() -> Result<Vec<Row>> {
    let TracedBoot {
        mut child,
        mut stream,
        log,
    } = boot_traced(&normal_kernel()?, "trace-bench", 1, "workload=trace-bench log=warn")?;
    // The reader only keeps the port flowing; what it reads is not decoded.
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let outcome = qemu_cmd::wait_until(&mut child, Instant::now() + Duration::from_secs(600))?;
    let bytes = reader.join().unwrap_or(0);
    let text = std::fs::read_to_string(&log).with_context(|| format!("read {}", log.display()))?;
    if outcome != qemu_cmd::Outcome::Success {
        bail!("the trace bench boot ended with: {outcome}; COM1 in {}", log.display());
    }
    let rows = parse_kernel_bench(&text)?;
    if rows.is_empty() || bytes == 0 {
        bail!(
            "the trace bench printed {} rows and streamed {bytes} bytes; COM1 in {}",
            rows.len(),
            log.display()
        );
    }
    Ok(rows)
}
