//! The host side of every trace scenario: the kernel runs a workload under QEMU, the
//! host reads `lucid.trace` through the protocol decoder and folds what arrived into
//! an [`Observed`] the scenario checks.

use std::{
    collections::{HashMap, HashSet},
    io::Read,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use lucid_protocol::{Decoder, Item, Message, Ring, StreamId, TaskId};

use crate::{
    artifacts::BootImage,
    qemu_cmd::{self, Outcome},
    trace_link::{self, Link},
};

/// What the host saw, folded as it arrives.
#[derive(Default, Debug)]
pub struct Observed {
    pub events: u64,
    pub spawned: HashSet<u64>,
    pub completed: HashSet<u64>,
    /// Task-context streams: the task whose poll is open.
    open_polls: HashMap<(u32, u8), TaskId>,
    pub poll_mismatches: Vec<String>,
    last_ts: HashMap<(u32, u8), u64>,
    pub non_monotonic: u64,
    /// Events decoded per (cpu, ring).
    pub decoded: HashMap<(u32, u8), u64>,
    /// Sum of `Loss` reports per (cpu, ring).
    pub lost: HashMap<(u32, u8), u64>,
    /// Last `EventCounts` per (cpu, ring): (produced, dropped).
    pub counts: HashMap<(u32, u8), (u64, u64)>,
    pub heartbeats: u64,
    /// Task polls begun (`PollStart`): task events, as opposed to the drain's own.
    pub polls: u64,
    /// Snapshot answers begun (`SnapshotBegin`).
    pub snapshots: u64,
    /// The kernel's resume bursts begun (`Resume` on the control stream).
    pub resume_bursts: u64,
    /// Inside a resume burst: until the kernel's next `Heartbeat`.
    in_resume_burst: bool,
    /// Events the `Loss` reports of resume bursts name: what the pauses dropped.
    pub lost_in_resume_bursts: u64,
    /// The timestamp of the newest `Heartbeat` so far.
    pub last_heartbeat_ts: Option<u64>,
    /// Task polls stamped after this kernel time are counted in `polls_after_mark`.
    pub poll_mark: Option<u64>,
    /// Set `poll_mark` to the timestamp of the next `Loss` report.
    pub mark_at_next_loss: bool,
    /// Task polls stamped after `poll_mark`: with the mark at a heartbeat or loss
    /// report sent while the kernel was dropping, events it produced afterwards.
    pub polls_after_mark: u64,
    /// The first text value of each trace event (a log line's message).
    pub trace_texts: Vec<String>,
    pub gaps: u64,
    pub errors: Vec<String>,
    pub cpus_with_polls: HashSet<u32>,
}

fn key(stream: StreamId) -> (u32, u8) {
    (stream.cpu, stream.ring.to_bits())
}

impl Observed {
    pub(super) fn item(&mut self, item: Item<'_>) {
        match item {
            Item::Event { stream, event, .. } => {
                self.events += 1;
                let k = key(stream);
                let last = self.last_ts.entry(k).or_insert(0);
                if event.ts < *last {
                    self.non_monotonic += 1;
                }
                *last = event.ts;
                if stream.ring != Ring::Control {
                    *self.decoded.entry(k).or_default() += 1;
                }
                match event.message {
                    Message::TaskSpawned(s) => {
                        self.spawned.insert(s.task.get());
                    }
                    Message::TaskCompleted { task, .. } => {
                        self.completed.insert(task.get());
                    }
                    Message::SnapshotBegin { .. } => self.snapshots += 1,
                    Message::Resume if stream.ring == Ring::Control => {
                        self.resume_bursts += 1;
                        self.in_resume_burst = true;
                    }
                    Message::PollStart { task } => {
                        self.polls += 1;
                        if self.poll_mark.is_some_and(|mark| event.ts > mark) {
                            self.polls_after_mark += 1;
                        }
                        self.cpus_with_polls.insert(stream.cpu);
                        if let Some(open) = self.open_polls.insert(k, task) {
                            self.poll_mismatches.push(format!(
                                "cpu {}: poll of {task} began inside poll of {open}",
                                stream.cpu
                            ));
                        }
                    }
                    Message::PollEnd { task, .. } => match self.open_polls.remove(&k) {
                        Some(open) if open == task => {}
                        other => self
                            .poll_mismatches
                            .push(format!("cpu {}: PollEnd of {task}, open: {other:?}", stream.cpu)),
                    },
                    Message::Loss { cpu, ring, count } => {
                        *self.lost.entry((cpu, ring.to_bits())).or_default() += count;
                        if self.in_resume_burst {
                            self.lost_in_resume_bursts += count;
                        }
                        if self.mark_at_next_loss {
                            self.mark_at_next_loss = false;
                            self.poll_mark = Some(event.ts);
                        }
                    }
                    Message::EventCounts {
                        cpu,
                        ring,
                        produced,
                        dropped,
                    } => {
                        self.counts.insert((cpu, ring.to_bits()), (produced, dropped));
                    }
                    Message::Heartbeat => {
                        self.in_resume_burst = false;
                        self.heartbeats += 1;
                        self.last_heartbeat_ts = Some(event.ts);
                    }
                    Message::TraceEvent(e) => {
                        if let Some(lucid_protocol::Value::Str(text)) = e.values.iter().next() {
                            self.trace_texts.push(text.to_string());
                        }
                    }
                    _ => {}
                }
            }
            Item::Gap {
                stream,
                expected,
                received,
            } => {
                self.gaps += 1;
                self.errors
                    .push(format!("gap on {stream:?}: expected {expected}, got {received}"));
            }
            Item::Restart { stream } => self.errors.push(format!("restart of {stream:?}")),
            Item::Error { offset, error } => self.errors.push(format!("at byte {offset}: {error}")),
        }
    }

    /// Lanes whose decoded + reported-lost events differ from what the kernel produced.
    pub fn accounting_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.counts.is_empty() {
            errors.push("no EventCounts arrived".to_string());
        }
        for (k, &(produced, dropped)) in &self.counts {
            let decoded = self.decoded.get(k).copied().unwrap_or(0);
            let lost = self.lost.get(k).copied().unwrap_or(0);
            if decoded + lost != produced || lost != dropped {
                errors.push(format!(
                    "cpu {} ring {}: decoded {decoded} + lost {lost} != produced {produced} (kernel dropped {dropped})",
                    k.0, k.1
                ));
            }
        }
        errors
    }

    pub fn total_lost(&self) -> u64 {
        self.lost.values().sum()
    }
}

/// How long one run may take before it counts as hung.
pub(super) const TIMEOUT: Duration = Duration::from_secs(180);

/// A stall of the reader: after `after` of reading, read nothing for `length`.
#[derive(Clone, Copy, Debug)]
pub struct Stall {
    pub after: Duration,
    pub length: Duration,
}

/// Boots the normal kernel with `workload`, reads its trace to the end, and returns
/// what arrived, the decoder's CRC error count, the heartbeats seen after a stall,
/// and how QEMU ended.
pub fn run(
    image: &BootImage,
    link: Link,
    workload: &str,
    stall: Option<Stall>,
    commands: &[(Duration, Message<'static>)],
) -> Result<(Observed, u64, u64, Outcome)> {
    // Options after the workload's value win over the defaults that follow them.
    let cmdline = format!("workload={workload} log=warn");
    let (mut child, mut stream) = trace_link::boot(image, &format!("check-{link:?}-{workload}"), &cmdline, link)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let start = Instant::now();
    let mut decoder = Decoder::new();
    let mut seen = Observed::default();
    let mut heartbeats_after_stall = 0;
    let mut stalled = false;
    let mut sent = 0;
    let mut buf = vec![0u8; 256 * 1024];
    let mut host = lucid_protocol::FrameEncoder::new([0u8; 256], StreamId::new(0, Ring::Host));
    loop {
        if let Some((at, msg)) = commands.get(sent)
            && start.elapsed() >= *at
        {
            eprintln!("reader: sending {msg:?}");
            let mut wire = [0u8; 512];
            host.push(0, msg).context("encode a host command")?;
            let n = host.finish(&mut wire).context("seal a host command")?;
            std::io::Write::write_all(&mut stream, &wire[..n]).context("send a host command")?;
            sent += 1;
            // Heartbeats after the last command show the kernel kept (or resumed)
            // sending; task polls stamped after the last heartbeat before it (sent
            // while paused, when task events are dropped) show that it delivers
            // events it produced afterwards.
            if sent == commands.len() {
                stalled = true;
                seen.poll_mark = seen.last_heartbeat_ts;
            }
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            anyhow::bail!("the {workload} run did not finish within {} s", TIMEOUT.as_secs());
        }
        if let Some(s) = stall
            && !stalled
            && start.elapsed() >= s.after
        {
            eprintln!("reader: stalling for {:?}", s.length);
            std::thread::sleep(s.length);
            stalled = true;
            // The first loss report after the stall is stamped after the kernel
            // began dropping: task polls stamped later were made after the stall.
            seen.mark_at_next_loss = true;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let before = seen.heartbeats;
                decoder.feed(&buf[..n], |item| seen.item(item));
                if stalled {
                    heartbeats_after_stall += seen.heartbeats - before;
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
    }
    decoder.finish(|item| seen.item(item));
    let outcome = qemu_cmd::wait_until(&mut child, Instant::now() + Duration::from_secs(10))?;
    Ok((seen, decoder.stats().crc_errors, heartbeats_after_stall, outcome))
}
