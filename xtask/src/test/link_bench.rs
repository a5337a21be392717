//! The link bench boot end to end: the bench's trace-vs-link workload runs through on
//! the normal kernel (its figures are the bench's business, not asserted here).

use anyhow::bail;

use super::Tally;
use crate::{artifacts::BootImage, bench};

/// `workload=link-bench:1` (the bench's issue 8 row 3 boot) runs through: the bulk
/// phase ends with its last-chunk marker, the trace after it decodes, and the kernel's
/// accounting holds (decoded + lost = produced). No speed is asserted.
pub fn end_to_end(tally: &mut Tally, image: &BootImage) {
    println!("link bench end to end: workload=link-bench:1");
    let verdict = bench::run_link_bench(image, 1).and_then(|m| {
        println!(
            "link bench: {} bulk bytes, {} events decoded, {} lost, {} produced",
            m.bulk_bytes, m.events, m.lost, m.produced
        );
        if m.bulk_bytes <= 16 || m.events == 0 {
            bail!("no bulk data or no trace events");
        }
        if m.events + m.lost != m.produced {
            bail!("decoded {} + lost {} != produced {}", m.events, m.lost, m.produced);
        }
        if !m.com1.contains("bench e2e.link_raw_guest_mib_per_s ") {
            bail!("the kernel printed no link rate on COM1");
        }
        Ok(())
    });
    if let Err(e) = &verdict {
        eprintln!("error: link bench end to end: {e:#}");
    }
    tally.record(
        "link bench: bulk phase, then a complete trace (decoded + lost = produced)",
        verdict.is_ok(),
    );
}
