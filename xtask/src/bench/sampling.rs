//! The sampling profiler's cost, measured on the booted demo at 997 Hz per CPU: the
//! CPU share the kernel spent taking samples (its own count of TSC ticks in the
//! sampling interrupt, against the CPUs' time since boot), samples per CPU-second,
//! and the bytes a sample takes in the stream.

use std::{
    io::Read,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use lucid_protocol::{Decoder, FrameEncoder, Item, Message, Ring, StreamId};

use super::{TracedBoot, boot_traced, normal_kernel, row::Row};

/// How long the demo runs sampled (the kernel logs the cost every 5 s).
const RUN: Duration = Duration::from_secs(11);
/// CPUs of the boot.
const CPUS: u32 = 4;

/// Rows of one sampled boot of the demo.
pub fn rows() -> Result<Vec<Row>> {
    let TracedBoot {
        mut child,
        mut stream,
        log,
    } = boot_traced(&normal_kernel()?, "sampling", CPUS, "sample_hz=997 log=info")?;
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .context("socket timeout")?;
    let mut decoder = Decoder::new();
    // Each CPU's samples re-encoded in order, as its interrupt stream carries them:
    // the growth of the frame is the bytes of each record.
    let mut encoders: Vec<FrameEncoder<Vec<u8>>> = (0..CPUS)
        .map(|cpu| FrameEncoder::new(vec![0u8; 1 << 16], StreamId::new(cpu, Ring::Interrupt)))
        .collect();
    let (mut samples, mut bytes) = (0u64, 0u64);
    let (mut first, mut last) = (None, None);
    let mut scratch = vec![0u8; 1 << 17];
    let mut buf = vec![0u8; 256 * 1024];
    let start = Instant::now();
    while start.elapsed() < RUN {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e).context("read the trace stream"),
        };
        decoder.feed(&buf[..n], |item| {
            if let Item::Event { stream, event, .. } = item
                && let Message::Sample(_) = event.message
                && let Some(enc) = encoders.get_mut(stream.cpu as usize)
            {
                let before = enc.raw_len();
                if enc.push(event.ts, &event.message).is_err() {
                    let _ = enc.finish(&mut scratch);
                    let _ = enc.push(event.ts, &event.message);
                    bytes += enc.raw_len() as u64;
                } else {
                    bytes += (enc.raw_len() - before) as u64;
                }
                samples += 1;
                first.get_or_insert_with(Instant::now);
                last = Some(Instant::now());
            }
        });
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).with_context(|| format!("read {}", log.display()))?;
    // The kernel's own account, every 5 s: `sampling: N samples, T TSC ticks each,
    // P ppm of CPU time`.
    let ppm = text
        .lines()
        .filter_map(|l| l.split_once("sampling: ").map(|(_, r)| r))
        .filter_map(|r| r.split_once(" ppm of CPU time").map(|(a, _)| a))
        .filter_map(|a| a.rsplit(", ").next()?.trim().parse::<f64>().ok())
        .next_back()
        .with_context(|| format!("the kernel logged no sampling cost; COM1 in {}", log.display()))?;
    let (Some(first), Some(last)) = (first, last) else {
        bail!("the sampled boot streamed no sample");
    };
    let secs = last.duration_since(first).as_secs_f64().max(1e-3);
    let row = |name: &str, lucid: f64, unit: &str| {
        Row::parse(&serde_json::json!({ "name": name, "lucid": lucid, "unit": unit }).to_string())
    };
    Ok(vec![
        row("sampling.cpu_share_pct_at_997hz", ppm / 1e4, "%")?,
        row(
            "sampling.samples_per_cpu_s",
            samples as f64 / secs / f64::from(CPUS),
            "samples/s",
        )?,
        row("sampling.bytes_per_sample", bytes as f64 / samples as f64, "B")?,
    ])
}
