//! A host floods the kernel's control path: 16 KiB of snapshot requests, then ten
//! thousand level filters for distinct targets. The kernel answers the requests
//! merged (not one answer each), refuses filters past its cap, its heap grows by no
//! more than the bound it documents (it logs the bound when the host connects and
//! its heap use every second), and the stream stays lossless. The workload keeps a
//! fixed set of tasks (`steady`), so the heap moves only with what the flood leaves.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use lucid_protocol::{Decoder, FrameEncoder, LevelFilter, Message, Ring, SetLevelFilter, StreamId};

use super::{ended_cleanly, reader};
use crate::{
    artifacts::BootImage,
    qemu_cmd,
    test::{Tally, record_checks},
    trace_link::{self, Link},
};

/// Bytes of snapshot requests the host sends.
const SNAPSHOT_REQUEST_BYTES: usize = 16 * 1024;
/// Level filters the host sends, each for a target of its own.
const FILTER_TARGETS: usize = 10_000;
/// When the flood starts: the kernel has logged its heap use a few times by then.
const FLOOD_AT: Duration = Duration::from_millis(3000);

/// What the writer thread sent and when it finished.
struct Flood {
    snapshot_requests: u64,
    filters: u64,
    sent_at: Duration,
}

/// One `heap:` log line: its place among the trace's texts, bytes in use and mapped.
#[derive(Clone, Copy, Debug)]
struct HeapSample {
    text: usize,
    in_use: u64,
    mapped: u64,
}

pub fn host_floods_control(tally: &mut Tally, image: &BootImage) -> Result<()> {
    println!(
        "trace end to end: the host sends {SNAPSHOT_REQUEST_BYTES} bytes of snapshot requests and {FILTER_TARGETS} level filters"
    );
    let (mut child, mut stream) =
        trace_link::boot(image, "check-host-flood", "workload=steady:8 log=info", Link::Virtio)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let start = Instant::now();
    let writer = stream.try_clone().context("clone the trace socket")?;
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(flood(writer, start));
    });

    let mut decoder = Decoder::new();
    let mut seen = reader::Observed::default();
    let mut heap = Vec::new();
    let mut texts_read = 0;
    let mut flood_done: Option<Result<Flood>> = None;
    let mut polls_after_flood = 0;
    // Texts before the chunk that brought the first snapshot answer predate the flood.
    let mut texts_before_flood = None;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if start.elapsed() > reader::TIMEOUT {
            let _ = child.kill();
            anyhow::bail!(
                "the host flood run did not finish within {} s",
                reader::TIMEOUT.as_secs()
            );
        }
        if flood_done.is_none()
            && let Ok(sent) = done_rx.try_recv()
        {
            flood_done = Some(sent);
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let polls = seen.polls;
                let texts = seen.trace_texts.len();
                decoder.feed(&buf[..n], |item| seen.item(item));
                if seen.snapshots > 0 && texts_before_flood.is_none() {
                    texts_before_flood = Some(texts);
                }
                if flood_done.is_some() {
                    polls_after_flood += seen.polls - polls;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if child.try_wait()?.is_some() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("read the trace socket"),
        }
        for (i, text) in seen.trace_texts.iter().enumerate().skip(texts_read) {
            if let Some(sample) = parse_heap(text, i) {
                heap.push(sample);
            }
        }
        texts_read = seen.trace_texts.len();
    }
    decoder.finish(|item| seen.item(item));
    let outcome = qemu_cmd::wait_until(&mut child, Instant::now() + Duration::from_secs(10))?;
    let crc = decoder.stats().crc_errors;
    let flood = match flood_done {
        Some(f) => f,
        None => done_rx
            .recv_timeout(Duration::from_secs(5))
            .context("the flood writer")?,
    };
    let (flood, flood_error) = match flood {
        Ok(f) => (f, None),
        Err(e) => (
            Flood {
                snapshot_requests: 0,
                filters: 0,
                sent_at: reader::TIMEOUT,
            },
            Some(format!("{e:#}")),
        ),
    };

    let bound = seen.trace_texts.iter().find_map(|t| parse_bound(t));
    // The flood has been taken once the kernel has logged on all the filters.
    let flood_handled = seen.trace_texts.iter().rposition(|t| t.contains("level filter"));
    let before: Vec<_> = heap
        .iter()
        .filter(|s| texts_before_flood.is_some_and(|b| s.text < b))
        .copied()
        .collect();
    let after: Vec<_> = heap
        .iter()
        .filter(|s| flood_handled.is_some_and(|h| s.text > h))
        .copied()
        .collect();
    // The least in use over the samples: what stays allocated, not a timer or a
    // snapshot answer that happened to be in flight at one sample.
    let least = |samples: &[HeapSample]| samples.iter().map(|s| s.in_use).min();
    let most_mapped = |samples: &[HeapSample]| samples.iter().map(|s| s.mapped).max();
    let growth = match (least(&before), least(&after)) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    let mapped_growth = match (most_mapped(&before), most_mapped(&after)) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    let dropped: u64 = seen.counts.values().map(|&(_, dropped)| dropped).sum();
    let refused = seen.trace_texts.iter().any(|t| t.contains("level filters refused"));
    println!(
        "trace host flood: {} snapshot requests and {} filters sent by {:?}; {} answers; heap in use {:?} -> {:?} (growth {growth:?}, bound {bound:?}), mapped growth {mapped_growth:?}; {} task polls after the flood",
        flood.snapshot_requests,
        flood.filters,
        flood.sent_at,
        seen.snapshots,
        least(&before),
        least(&after),
        polls_after_flood,
    );
    let within = |g: Option<u64>| matches!((g, bound), (Some(g), Some(b)) if g <= b);
    let checks = [
        ended_cleanly(outcome),
        (
            "the kernel takes the whole flood",
            flood_error.is_none(),
            flood_error.unwrap_or_default(),
        ),
        (
            "snapshot requests are merged: at least one answer, at most one per 16 requests",
            seen.snapshots >= 1 && seen.snapshots * 16 <= flood.snapshot_requests,
            format!("{} answers to {} requests", seen.snapshots, flood.snapshot_requests),
        ),
        (
            "filters past the cap are refused with a warning",
            refused,
            "no `level filters refused` line".to_string(),
        ),
        (
            "the kernel logs its heap use before and after the flood",
            before.len() >= 2 && after.len() >= 2,
            format!("{} samples before, {} after: {heap:?}", before.len(), after.len()),
        ),
        (
            "heap in use grows by at most the documented host-input bound",
            within(growth),
            format!("growth {growth:?}, bound {bound:?}"),
        ),
        (
            "mapped heap grows by at most the documented host-input bound",
            within(mapped_growth),
            format!("growth {mapped_growth:?}, bound {bound:?}"),
        ),
        (
            "task events keep arriving after the flood",
            polls_after_flood > 0,
            "no PollStart after the flood".to_string(),
        ),
        (
            "the stream stays lossless: 0 dropped, 0 gaps, 0 CRC errors",
            dropped == 0 && seen.gaps == 0 && crc == 0 && seen.total_lost() == 0,
            format!("{dropped} dropped, {} gaps, {crc} CRC errors", seen.gaps),
        ),
        (
            "losses are exact: decoded + lost = produced",
            seen.accounting_errors().is_empty(),
            format!("{:?}", seen.accounting_errors()),
        ),
    ];
    record_checks(tally, "trace host flood", checks);
    Ok(())
}

/// Sends the flood at [`FLOOD_AT`]: snapshot requests one per frame until
/// [`SNAPSHOT_REQUEST_BYTES`] are sent, then [`FILTER_TARGETS`] level filters.
fn flood(mut out: UnixStream, start: Instant) -> Result<Flood> {
    std::thread::sleep(FLOOD_AT.saturating_sub(start.elapsed()));
    let mut host = FrameEncoder::new([0u8; 512], StreamId::new(0, Ring::Host));
    let mut wire = Vec::new();
    let mut frame = [0u8; 1024];
    let mut push = |msg: &Message<'_>, wire: &mut Vec<u8>| -> Result<()> {
        host.push(0, msg).context("encode a host command")?;
        let n = host.finish(&mut frame).context("seal a host command")?;
        wire.extend_from_slice(&frame[..n]);
        Ok(())
    };
    let mut snapshot_requests = 0;
    while wire.len() < SNAPSHOT_REQUEST_BYTES {
        push(
            &Message::RequestSnapshot {
                request: snapshot_requests,
            },
            &mut wire,
        )?;
        snapshot_requests += 1;
    }
    for i in 0..FILTER_TARGETS {
        let target = format!("flood::target{i:05}");
        push(
            &Message::SetLevelFilter(SetLevelFilter {
                target: &target,
                filter: LevelFilter::Off,
            }),
            &mut wire,
        )?;
    }
    let mut written = 0;
    for chunk in wire.chunks(4096) {
        out.write_all(chunk).with_context(|| {
            format!(
                "send the flood: {written} of {} bytes sent by {:?}",
                wire.len(),
                start.elapsed()
            )
        })?;
        written += chunk.len();
    }
    Ok(Flood {
        snapshot_requests,
        filters: FILTER_TARGETS as u64,
        sent_at: start.elapsed(),
    })
}

/// `heap: N bytes in use, M bytes mapped`, the trace's text number `text`.
fn parse_heap(text: &str, index: usize) -> Option<HeapSample> {
    let rest = text.strip_prefix("heap: ")?;
    let mut numbers = rest.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty());
    Some(HeapSample {
        text: index,
        in_use: numbers.next()?.parse().ok()?,
        mapped: numbers.next()?.parse().ok()?,
    })
}

/// The bound the kernel logs when a host connects: `... at most N bytes of kernel heap`.
fn parse_bound(text: &str) -> Option<u64> {
    let (_, rest) = text.split_once("host input holds at most ")?;
    rest.split_whitespace().next()?.parse().ok()
}
