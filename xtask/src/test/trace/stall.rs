//! An 8 s soak whose reader stalls for 4 s: the kernel drops events, counts every
//! loss exactly, and delivers task events it produced after the stall (not only
//! heartbeats).

use std::time::Duration;

use anyhow::Result;

use super::{ended_cleanly, reader};
use crate::{
    artifacts::BootImage,
    test::{Tally, record_checks},
    trace_link::Link,
};

pub fn reader_stalls(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!("trace end to end: 8 s soak, reader stalls for 4 s");
    let stall = reader::Stall {
        after: Duration::from_secs(2),
        length: Duration::from_secs(4),
    };
    let (seen, crc, beats_after, outcome) = reader::run(image, Link::Virtio, "soak:8", Some(stall), &[])?;
    let checks = [
        ended_cleanly(outcome),
        (
            "heartbeats continue after the stall",
            beats_after > 0,
            format!("{beats_after} heartbeats"),
        ),
        (
            "task events produced after the stall arrive (polls stamped after its first loss report)",
            seen.poll_mark.is_some() && seen.polls_after_mark > 0,
            format!("mark {:?}, {} polls after it", seen.poll_mark, seen.polls_after_mark),
        ),
        (
            "the stall made the kernel drop events",
            seen.total_lost() > 0,
            "0 lost".to_string(),
        ),
        (
            "losses are exact: decoded + lost = produced",
            seen.accounting_errors().is_empty(),
            format!("{:?}", seen.accounting_errors()),
        ),
        (
            "no gaps or CRC errors (losses are whole, counted frames)",
            seen.gaps == 0 && crc == 0,
            format!("{} gaps, {crc} CRC errors", seen.gaps),
        ),
    ];
    record_checks(tally, "trace stall", checks);
    println!(
        "trace stall: {} events decoded, {} lost, {} task polls after the stall",
        seen.events,
        seen.total_lost(),
        seen.polls_after_mark
    );
    Ok(())
}
