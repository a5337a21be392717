//! The host pauses the stream for 2 s and resumes it, and a level filter sent from
//! the host silences a kernel log target. Task events the kernel produced after the
//! resume must arrive: heartbeats alone would not show it (the kernel sends them
//! while paused and at the very end).

use std::time::Duration;

use anyhow::Result;

use super::{ended_cleanly, reader};
use crate::{
    artifacts::BootImage,
    test::{Tally, record_checks},
    trace_link::Link,
};

pub fn host_pauses_and_resumes(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!("trace end to end: the host pauses the stream for 2 s, then resumes it");
    // The drain logs (INFO) when the host connects, pauses and resumes; the filter
    // silences its target after the first of those.
    let quiet = lucid_protocol::Message::SetLevelFilter(lucid_protocol::SetLevelFilter {
        target: "lucid_kernel::trace::drain",
        filter: lucid_protocol::LevelFilter::Off,
    });
    let commands = [
        (Duration::from_millis(1000), quiet),
        (Duration::from_millis(1500), lucid_protocol::Message::Pause),
        (Duration::from_millis(3500), lucid_protocol::Message::Resume),
    ];
    let (seen, crc, beats_after, outcome) = reader::run(image, Link::Virtio, "soak:6 log=info", None, &commands)?;
    let texts = &seen.trace_texts;
    let logged = |needle: &str| texts.iter().any(|t| t.contains(needle));
    let checks = [
        ended_cleanly(outcome),
        (
            "events dropped while paused are counted",
            seen.total_lost() > 0,
            "0 lost".to_string(),
        ),
        (
            "the kernel answers Resume with what the pause dropped, between its Resume and a heartbeat",
            seen.resume_bursts == 1 && seen.lost_in_resume_bursts > 0,
            format!(
                "{} resume bursts, {} events lost in them, {} lost in all",
                seen.resume_bursts,
                seen.lost_in_resume_bursts,
                seen.total_lost()
            ),
        ),
        (
            "heartbeats arrive after resume",
            beats_after > 0,
            format!("{beats_after} heartbeats"),
        ),
        (
            "task events produced after resume arrive (polls stamped after the last heartbeat of the pause)",
            seen.poll_mark.is_some() && seen.polls_after_mark > 0,
            format!("mark {:?}, {} polls after it", seen.poll_mark, seen.polls_after_mark),
        ),
        (
            "losses are exact: decoded + lost = produced",
            seen.accounting_errors().is_empty(),
            format!("{:?}", seen.accounting_errors()),
        ),
        ("no CRC errors", crc == 0, format!("{crc} CRC errors")),
        (
            "kernel logs arrive as trace events; a target filter silences them",
            logged("host connected") && !logged("paused") && !logged("resumed"),
            format!("{texts:?}"),
        ),
    ];
    record_checks(tally, "trace pause", checks);
    Ok(())
}
