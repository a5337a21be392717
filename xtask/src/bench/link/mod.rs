//! Issue 8, row 3: the trace stream's rate against the raw rate of the link it
//! travels on, in one `workload=link-bench:SECS` boot (`kernel/src/link_bench.rs`).
//! [`splitter`] tells the bulk phase from the trace after it.

mod splitter;

use std::{
    collections::BTreeMap,
    io::Read,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use lucid_protocol::{Decoder, Item, Message, Ring};

use self::splitter::LinkSplitter;
use super::{
    TracedBoot, boot_traced, normal_kernel,
    row::{Row, parse_kernel_bench},
};
use crate::{artifacts::BootImage, qemu_cmd};

/// What one `workload=link-bench:SECS` boot measured (`kernel/src/link_bench.rs`).
#[derive(Debug)]
pub struct LinkBench {
    /// Header and bulk chunks received, and the seconds from the first byte to the last
    /// bulk byte (host clock).
    pub bulk_bytes: u64,
    pub bulk_secs: f64,
    /// Trace bytes received between the first and the latest read holding a task
    /// event, and the seconds between those reads.
    pub trace_bytes: u64,
    pub trace_secs: f64,
    /// Task-stream events decoded, the kernel's produced total (last `EventCounts` of
    /// every CPU and ring), and the sum of the Loss reports.
    pub events: u64,
    pub produced: u64,
    pub lost: u64,
    /// The kernel's COM1 output (with its `bench …` line).
    pub com1: String,
}

/// Issue 8, row 3, in one boot: the raw link rate (the kernel writing 64 KiB chunks,
/// timed here from the first byte to the last bulk byte), then the trace stream while
/// every CPU floods events.
pub fn rows(quick: bool) -> Result<Vec<Row>> {
    let image = normal_kernel()?;
    let m = run_link_bench(&image, if quick { 2 } else { 4 })?;
    let mib = 1024.0 * 1024.0;
    let link = m.bulk_bytes as f64 / mib / m.bulk_secs;
    let trace = m.trace_bytes as f64 / mib / m.trace_secs;
    let row = |name: &str, lucid: f64, anchor: Option<f64>, unit: &str| {
        Row::parse(
            &serde_json::json!({
                "name": name,
                "lucid": lucid,
                "anchor": anchor,
                "ratio": anchor.map(|a| lucid / a),
                "unit": unit,
            })
            .to_string(),
        )
    };
    let mut rows = vec![
        row("e2e.link_raw_mib_per_s", link, None, "MiB/s")?,
        row("e2e.trace_mib_per_s", trace, Some(link), "MiB/s")?,
        row("e2e.trace_vs_link", trace / link, None, "x")?,
        row(
            "e2e.trace_events_per_s",
            m.events as f64 / m.trace_secs,
            None,
            "events/s",
        )?,
        row(
            "e2e.trace_events_produced_per_s",
            m.produced as f64 / m.trace_secs,
            None,
            "events/s",
        )?,
        row("e2e.trace_events_lost", m.lost as f64, None, "events")?,
    ];
    rows.extend(parse_kernel_bench(&m.com1)?);
    Ok(rows)
}

/// Boots `image` with `workload=link-bench:SECS` (4 CPUs, the trace port on a socket,
/// COM1 to `<target>/bench/link-bench.com1.log`), reads the port as fast as it can
/// until QEMU exits, then decodes the trace part.
pub fn run_link_bench(image: &BootImage, secs: u64) -> Result<LinkBench> {
    let TracedBoot {
        mut child,
        mut stream,
        log,
    } = boot_traced(image, "link-bench", 4, &format!("workload=link-bench:{secs} log=warn"))?;

    // Reading only keeps the reader fast (decoding while reading made a loaded host
    // the bottleneck, and flow control then filled the kernel's rings); the trace
    // bytes are decoded after QEMU exits, each read with its arrival time.
    let mut split = LinkSplitter::new();
    let (mut bulk_start, mut bulk_end) = (None, None);
    let mut trace_bytes = Vec::new();
    // Per read of trace bytes: when it arrived and where it ends in `trace_bytes`.
    let mut arrivals: Vec<(Instant, usize)> = Vec::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        bulk_start.get_or_insert(now);
        let was_bulk = !split.in_trace();
        let trace = split.feed(&buf[..n])?;
        if was_bulk && split.in_trace() {
            bulk_end = Some(now);
        }
        if !trace.is_empty() {
            trace_bytes.extend_from_slice(trace);
            arrivals.push((now, trace_bytes.len()));
        }
        if now > deadline {
            break;
        }
    }

    let mut decoder = Decoder::new();
    // (when, trace bytes received by then) at the first and the latest task event.
    let mut first_event: Option<(Instant, usize)> = None;
    let mut last_event: Option<(Instant, usize)> = None;
    let (mut events, mut lost) = (0u64, 0u64);
    let mut produced: BTreeMap<(u32, Ring), u64> = Default::default();
    let mut from = 0;
    for &(when, to) in &arrivals {
        let mut saw_task_event = false;
        decoder.feed(&trace_bytes[from..to], |item| {
            if let Item::Event { stream, event, .. } = item {
                match event.message {
                    Message::Loss { count, .. } => lost += count,
                    Message::EventCounts {
                        cpu, ring, produced: p, ..
                    } => {
                        produced.insert((cpu, ring), p);
                    }
                    _ if stream.ring != Ring::Control => {
                        events += 1;
                        saw_task_event = true;
                    }
                    _ => {}
                }
            }
        });
        if saw_task_event {
            first_event.get_or_insert((when, to));
            last_event = Some((when, to));
        }
        from = to;
    }
    let outcome = qemu_cmd::wait_until(&mut child, Instant::now() + Duration::from_secs(10))?;
    if outcome != qemu_cmd::Outcome::Success {
        bail!("the link bench boot ended with: {outcome}; COM1 in {}", log.display());
    }
    let (Some(bulk_start), Some(bulk_end)) = (bulk_start, bulk_end) else {
        bail!(
            "the link bench never finished its bulk phase; COM1 in {}",
            log.display()
        );
    };
    let (Some((t0, b0)), Some((t1, b1))) = (first_event, last_event) else {
        bail!("the link bench sent no task event after its bulk phase");
    };
    Ok(LinkBench {
        bulk_bytes: split.bulk_bytes,
        bulk_secs: bulk_end.duration_since(bulk_start).as_secs_f64().max(1e-3),
        trace_bytes: (b1 - b0) as u64,
        trace_secs: t1.duration_since(t0).as_secs_f64().max(1e-3),
        events,
        produced: produced.values().sum(),
        lost,
        com1: std::fs::read_to_string(&log).with_context(|| format!("read {}", log.display()))?,
    })
}
