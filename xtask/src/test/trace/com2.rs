//! No virtio-serial device: the kernel falls back to COM2, and the stream still
//! decodes and accounts for every event.

use anyhow::Result;

use super::reader;
use crate::{artifacts::BootImage, qemu_cmd::Outcome, test::Tally, trace_link::Link};

pub fn falls_back_to_com2(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!("trace end to end: no virtio-serial device, fallback to COM2");
    let (seen, crc, _, outcome) = reader::run(image, Link::Com2, "burst:200", None, &[])?;
    let ok = outcome == Outcome::Success
        && seen.spawned.len() >= 200
        && seen.errors.is_empty()
        && crc == 0
        && seen.accounting_errors().is_empty();
    if !ok {
        eprintln!(
            "trace com2: {outcome}, {} tasks, {crc} CRC errors, {:?}, {:?}",
            seen.spawned.len(),
            seen.errors.iter().take(3).collect::<Vec<_>>(),
            seen.accounting_errors()
        );
    }
    println!(
        "trace com2 {}: the stream falls back to COM2 and decodes",
        if ok { "PASS" } else { "FAIL" }
    );
    tally.record(
        "trace com2: the stream falls back to COM2, decodes, and accounts for every event",
        ok,
    );
    Ok(())
}
