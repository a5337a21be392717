//! The trace stream end to end, one scenario a module, each booting the normal kernel
//! with a workload and reading its `lucid.trace` port through the protocol decoder
//! ([`reader`]): a burst read by a reader that keeps up ([`burst`]), a reader that
//! stalls ([`stall`]), the host pausing and resuming the stream ([`pause_resume`]),
//! a host flooding the control path ([`host_flood`]), a host that leaves and comes
//! back ([`reconnect`]), and the fallback to COM2 ([`com2`]).

mod burst;
mod com2;
mod host_flood;
mod pause_resume;
mod reader;
mod reconnect;
mod stall;

use anyhow::Result;

use super::Tally;
use crate::{artifacts::BootImage, qemu_cmd::Outcome};

/// The scenarios in order; one that cannot run to the end stops the ones after it.
pub fn end_to_end(tally: &mut Tally, image: &BootImage) -> Result<()> {
    burst::reader_keeps_up(tally, image)?;
    stall::reader_stalls(tally, image)?;
    pause_resume::host_pauses_and_resumes(tally, image)?;
    host_flood::host_floods_control(tally, image)?;
    reconnect::host_reconnects(tally, image)?;
    com2::falls_back_to_com2(tally, image)
}

/// The check each scenario makes first: QEMU exited with the kernel's success code.
fn ended_cleanly(outcome: Outcome) -> (&'static str, bool, String) {
    (
        "kernel ends the run cleanly",
        outcome == Outcome::Success,
        format!("{outcome}"),
    )
}
