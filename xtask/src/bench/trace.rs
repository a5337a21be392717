//! The trace rows of the booted kernel: QEMU start to the first trace event, and the
//! trace stream's event rate through virtio-serial.

use std::{
    io::Read,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use lucid_protocol::{Decoder, Item, Message, Ring};

use super::{normal_kernel, row::Row};
use crate::trace_link;

/// Rows measured on the booted kernel: QEMU start to the first trace event, and the
/// rate of events delivered through virtio-serial while a 4 s steady workload runs
/// (with the events lost, which should be none while the reader keeps up).
pub fn rows() -> Result<Vec<Row>> {
    let image = normal_kernel()?;
    let start = Instant::now();
    let (mut child, mut stream) =
        trace_link::boot(&image, "bench", "workload=soak:4 log=warn", trace_link::Link::Virtio)?;
    let mut decoder = Decoder::new();
    let (mut first, mut events, mut lost) = (None, 0u64, 0u64);
    let (mut first_task_event, mut last_task_event) = (None, None);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        decoder.feed(&buf[..n], |item| {
            if let Item::Event { stream, event, .. } = item {
                first.get_or_insert_with(|| start.elapsed());
                match event.message {
                    Message::Loss { count, .. } => lost += count,
                    _ if stream.ring != Ring::Control => {
                        events += 1;
                        first_task_event.get_or_insert(Instant::now());
                        last_task_event = Some(Instant::now());
                    }
                    _ => {}
                }
            }
        });
        if start.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let first = first.context("the kernel sent no trace event")?;
    let secs = match (first_task_event, last_task_event) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64().max(1e-3),
        _ => bail!("the kernel sent no task event"),
    };
    let row = |name: &str, lucid: f64, unit: &str| {
        Row::parse(&serde_json::json!({ "name": name, "lucid": lucid, "unit": unit }).to_string())
    };
    Ok(vec![
        row(
            "boot.qemu_start_to_first_trace_event_ms",
            first.as_secs_f64() * 1e3,
            "ms",
        )?,
        row(
            "e2e.events_per_s_through_virtio_serial",
            events as f64 / secs,
            "events/s",
        )?,
        row("e2e.events_lost", lost as f64, "events")?,
    ])
}
