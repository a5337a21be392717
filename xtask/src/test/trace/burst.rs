//! A burst of 1200 tasks on 4 CPUs, read by a reader that keeps up: every task and
//! poll arrives, nothing is lost, and the stream is intact.

use anyhow::Result;

use super::{ended_cleanly, reader};
use crate::{
    artifacts::BootImage,
    test::{Tally, record_checks},
    trace_link::Link,
};

pub fn reader_keeps_up(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!("trace end to end: burst of 1200 tasks, reader keeps up");
    let (seen, crc, _, outcome) = reader::run(image, Link::Virtio, "burst:1200", None, &[])?;
    let unfinished: Vec<_> = seen.spawned.difference(&seen.completed).take(5).collect();
    let checks = [
        ended_cleanly(outcome),
        (
            "at least 1000 tasks, each spawn has a completion",
            seen.spawned.len() >= 1000 && unfinished.is_empty(),
            format!("{} spawned, never completed: {unfinished:?}", seen.spawned.len()),
        ),
        (
            "tasks ran on all 4 CPUs",
            seen.cpus_with_polls.len() == 4,
            format!("{:?}", seen.cpus_with_polls),
        ),
        (
            "every PollStart has its PollEnd on the same CPU",
            seen.poll_mismatches.is_empty(),
            format!("{:?}", seen.poll_mismatches.iter().take(3).collect::<Vec<_>>()),
        ),
        (
            "no sequence gaps, CRC errors or bad frames",
            seen.gaps == 0 && crc == 0 && seen.errors.is_empty(),
            format!(
                "{} gaps, {crc} CRC errors, {:?}",
                seen.gaps,
                seen.errors.iter().take(3).collect::<Vec<_>>()
            ),
        ),
        (
            "no losses while the reader keeps up",
            seen.total_lost() == 0,
            format!("{} lost", seen.total_lost()),
        ),
        (
            "timestamps monotonic per stream",
            seen.non_monotonic == 0,
            format!("{} steps back", seen.non_monotonic),
        ),
        (
            "decoded + lost = produced (kernel counters)",
            seen.accounting_errors().is_empty(),
            format!("{:?}", seen.accounting_errors()),
        ),
    ];
    record_checks(tally, "trace e2e", checks);
    println!("trace e2e: {} events, {} tasks", seen.events, seen.spawned.len());
    Ok(())
}
