//! `cargo xtask bench`: builds the host benchmark (`kernel/executor/examples/bench.rs`)
//! in release, runs it, prints its rows as a table with the goals of issue 8, and writes
//! `<target>/bench/report.json`. Figures are medians of several runs on a shared
//! machine; nothing here fails because of a speed (a missed goal is reported, not an
//! error). `docs/benchmarks.md` explains the workloads.
//!
//! The anchors of issue 8's rows 1 and 2 come from `bench/tokio-console-anchor` (tokio
//! bare and with console-subscriber, and console-subscriber's recording) and from
//! `lucid export --perfetto` of the spawn_join trace the bench program records.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;

use crate::{artifacts, process};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Fewer runs per configuration (a smoke test that the harness works).
    #[arg(long)]
    quick: bool,
    /// Runs per configuration (default: 3 with `--quick`, else 9).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: Option<u32>,
    /// Skip the rows that boot the kernel under QEMU.
    #[arg(long)]
    no_qemu: bool,
    /// Only the trace-vs-link boot (`workload=link-bench`), no host benchmarks.
    #[arg(long, conflicts_with = "no_qemu")]
    link_only: bool,
}

/// One row as the bench program printed it, plus its goal.
#[derive(Debug)]
struct Row {
    name: String,
    lucid: Option<f64>,
    anchor: Option<f64>,
    ratio: Option<f64>,
    unit: String,
    goal: Option<Goal>,
}

/// A row of `report.json`, fields in the order issue 8 lists them.
#[derive(Debug, Serialize)]
struct ReportRow<'a> {
    name: &'a str,
    lucid: Option<f64>,
    anchor: Option<f64>,
    ratio: Option<f64>,
    unit: &'a str,
    goal: Option<String>,
    met: Option<bool>,
}

/// A bound on the Lucid figure, or on the ratio Lucid / anchor.
#[derive(Debug, Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
    RatioAtMost(f64),
}

impl Goal {
    fn text(self) -> String {
        match self {
            Goal::AtMost(v) => format!("<= {v}"),
            Goal::AtLeast(v) => format!(">= {v}"),
            Goal::RatioAtMost(v) => format!("ratio <= {v}"),
        }
    }

    /// Whether a row with these figures meets the goal (`None`: a figure it needs is missing).
    fn met(self, lucid: Option<f64>, ratio: Option<f64>) -> Option<bool> {
        Some(match self {
            Goal::AtMost(v) => lucid? <= v,
            Goal::AtLeast(v) => lucid? >= v,
            Goal::RatioAtMost(v) => ratio? <= v,
        })
    }
}

/// The goals of issue 8 that rows of this benchmark can be held to.
fn goal_for(name: &str) -> Option<Goal> {
    let leaf = name.rsplit('.').next().unwrap_or(name);
    if name.starts_with("trace.") && leaf == "overhead_ns_per_poll" {
        // "Lucid's overhead per poll … ≤ 25 ns absolute on the host build."
        Some(Goal::AtMost(25.0))
    } else if name.starts_with("bytes.") && matches!(leaf, "poll_start" | "poll_end" | "poll_start_end_avg") {
        // "Goal ≤ 8 B per PollStart/PollEnd."
        Some(Goal::AtMost(8.0))
    } else if name == "console.memory_per_retained_task_bytes" {
        // "console memory per retained task … ≤ 1 KiB per retained task."
        Some(Goal::AtMost(1024.0))
    } else if name == "console.ingest_events_per_s" {
        // "Goals: ≥ 20 M events/s … frame < 16 ms."
        Some(Goal::AtLeast(20e6))
    } else if name.starts_with("console.render_10k_tasks.") {
        Some(Goal::AtMost(16.0))
    } else if name == "e2e.trace_vs_link" {
        // Issue 8, row 3: "the highest event rate the kernel sustains … vs the raw
        // link rate … Goal ≥ 50% of link."
        Some(Goal::AtLeast(0.5))
    } else if name.starts_with("trace.") && leaf == "overhead_vs_console_subscriber" {
        // "Lucid's overhead per poll ≤ 1/50 of console-subscriber's."
        Some(Goal::RatioAtMost(0.02))
    } else if name == "console.replay_seek_max_ms" {
        // Issue 7: "seeking anywhere must be fast (< 100 ms seek)".
        Some(Goal::AtMost(100.0))
    } else {
        None
    }
}

impl Row {
    fn parse(line: &str) -> Result<Row> {
        let v: Value = serde_json::from_str(line).with_context(|| format!("bench printed {line:?}"))?;
        let name = v["name"].as_str().context("row without a name")?.to_string();
        let unit = v["unit"].as_str().unwrap_or("").to_string();
        let goal = goal_for(&name);
        Ok(Row {
            lucid: v["lucid"].as_f64(),
            anchor: v["anchor"].as_f64(),
            ratio: v["ratio"].as_f64(),
            goal,
            name,
            unit,
        })
    }

    fn met(&self) -> Option<bool> {
        self.goal?.met(self.lucid, self.ratio)
    }

    /// A row built here rather than printed by a bench program.
    fn new(name: &str, lucid: Option<f64>, anchor: Option<f64>, unit: &str) -> Row {
        let ratio = lucid.zip(anchor.filter(|&a| a != 0.0)).map(|(l, a)| l / a);
        Row {
            goal: goal_for(name),
            name: name.to_string(),
            lucid,
            anchor,
            ratio,
            unit: unit.to_string(),
        }
    }

    fn report(&self) -> ReportRow<'_> {
        ReportRow {
            name: &self.name,
            lucid: self.lucid,
            anchor: self.anchor,
            ratio: self.ratio,
            unit: &self.unit,
            goal: self.goal.map(Goal::text),
            met: self.met(),
        }
    }
}

/// A figure with as many decimals as its size deserves.
fn figure(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(v) if v.abs() >= 1000.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        // Small ratios (a trace rate far below the link's) would read as 0.00.
        Some(v) if v != 0.0 && v.abs() < 0.1 => format!("{v:.4}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// The rows as a Markdown table (readable in a terminal, pasteable into docs/benchmarks.md).
fn table(rows: &[Row]) -> String {
    let header = ["row", "Lucid", "anchor", "ratio", "unit", "goal", "met"].map(String::from);
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                figure(r.lucid),
                figure(r.anchor),
                r.ratio.map_or("-".to_string(), |x| figure(Some(x))),
                r.unit.clone(),
                r.goal.map_or("-".to_string(), Goal::text),
                match r.met() {
                    Some(true) => "yes".to_string(),
                    Some(false) => "NO".to_string(),
                    None => "-".to_string(),
                },
            ]
        })
        .collect();
    let mut width = header.clone().map(|h| h.len());
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String; 7]| {
        let mut s = String::from("|");
        for (i, (c, w)) in row.iter().zip(width).enumerate() {
            // Text left, figures right.
            if i == 0 || i >= 4 {
                s.push_str(&format!(" {c:<w$} |"));
            } else {
                s.push_str(&format!(" {c:>w$} |"));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header);
    out.push('|');
    for (i, w) in width.iter().enumerate() {
        let dashes = "-".repeat(*w);
        if i == 0 || i >= 4 {
            out.push_str(&format!(" {dashes} |"));
        } else {
            out.push_str(&format!(" {}: |", &dashes[1..]));
        }
    }
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
    }
    out
}

/// `nproc` and the CPU model, for the report's context line.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    format!("{cpus} CPUs, {model}")
}

/// Rows measured on the booted kernel: QEMU start to the first trace event, and the
/// rate of events delivered through virtio-serial while a 4 s steady workload runs
/// (with the events lost, which should be none while the reader keeps up).
fn kernel_rows() -> Result<Vec<Row>> {
    use std::io::Read;

    use lucid_protocol::{Decoder, Item, Message};

    use crate::{artifacts::Variant, qemu_cmd, trace_link};

    qemu_cmd::ensure_installed()?;
    let image = artifacts::build(Variant::Normal)?;
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
                    _ if stream.ring != lucid_protocol::Ring::Control => {
                        events += 1;
                        first_task_event.get_or_insert(Instant::now());
                        last_task_event = Some(Instant::now());
                    }
                    _ => {}
                }
            }
        });
        if start.elapsed() > std::time::Duration::from_secs(120) {
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

/// Where the link bench's stream is: the header, the bulk chunks, or the trace after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkPhase {
    Header,
    /// Inside a bulk chunk of `size` bytes with `left` still to come.
    Chunk {
        size: u64,
        left: u64,
    },
    Trace,
}

/// Splits the stream of `workload=link-bench` (`kernel/src/link_bench.rs`): `LUCIDLNK`
/// and the chunk size (u64 LE), then chunks of that size starting with `LNK-MORE`, the
/// last with `LNK-LAST`, then the ordinary trace stream.
#[derive(Debug)]
struct LinkSplitter {
    phase: LinkPhase,
    /// The header or the current chunk's marker, as far as it has arrived.
    pending: Vec<u8>,
    /// Bytes of the header and bulk chunks so far.
    bulk_bytes: u64,
}

impl LinkSplitter {
    const MAGIC: &[u8; 8] = b"LUCIDLNK";
    const MORE: &[u8; 8] = b"LNK-MORE";
    const LAST: &[u8; 8] = b"LNK-LAST";

    fn new() -> Self {
        Self {
            phase: LinkPhase::Header,
            pending: Vec::new(),
            bulk_bytes: 0,
        }
    }

    fn in_trace(&self) -> bool {
        self.phase == LinkPhase::Trace
    }

    /// Consumes the bulk part of `data`; returns what belongs to the trace stream.
    fn feed<'a>(&mut self, mut data: &'a [u8]) -> Result<&'a [u8]> {
        while !data.is_empty() {
            match self.phase {
                LinkPhase::Header => {
                    let take = (16 - self.pending.len()).min(data.len());
                    self.pending.extend_from_slice(&data[..take]);
                    self.bulk_bytes += take as u64;
                    data = &data[take..];
                    if self.pending.len() == 16 {
                        if &self.pending[..8] != Self::MAGIC {
                            bail!("the link bench stream does not start with LUCIDLNK");
                        }
                        let size = u64::from_le_bytes(self.pending[8..].try_into().expect("8 bytes"));
                        if size < 8 {
                            bail!("link bench chunk size {size} is smaller than its marker");
                        }
                        self.pending.clear();
                        self.phase = LinkPhase::Chunk { size, left: size };
                    }
                }
                LinkPhase::Chunk { size, left } => {
                    let take = left.min(data.len() as u64) as usize;
                    let at = (size - left) as usize;
                    if at < 8 {
                        let marker = (8 - at).min(take);
                        self.pending.extend_from_slice(&data[..marker]);
                    }
                    self.bulk_bytes += take as u64;
                    data = &data[take..];
                    let left = left - take as u64;
                    self.phase = LinkPhase::Chunk { size, left };
                    if left == 0 {
                        self.phase = match &self.pending[..] {
                            m if m == Self::MORE => LinkPhase::Chunk { size, left: size },
                            m if m == Self::LAST => LinkPhase::Trace,
                            m => bail!("bad link bench chunk marker {m:?}"),
                        };
                        self.pending.clear();
                    }
                }
                LinkPhase::Trace => return Ok(data),
            }
        }
        Ok(data)
    }
}

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
fn link_rows(quick: bool) -> Result<Vec<Row>> {
    crate::qemu_cmd::ensure_installed()?;
    let image = artifacts::build(artifacts::Variant::Normal)?;
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
pub fn run_link_bench(image: &artifacts::BootImage, secs: u64) -> Result<LinkBench> {
    use std::io::Read;

    use lucid_protocol::{Decoder, Item, Message, Ring};

    use crate::{qemu_cmd, trace_link};

    let dir = artifacts::target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let log = dir.join("link-bench.com1.log");
    let socket = trace_link::socket_path("bench-link");
    let _ = std::fs::remove_file(&socket);
    let cfg = qemu_cmd::Config {
        smp: 4,
        memory: "512M".into(),
        cmdline: format!("workload=link-bench:{secs} log=warn"),
        gdb: false,
        com1_file: Some(log.clone()),
        extra: qemu_cmd::trace_port_args(&trace_link::chardev(&socket)),
    };
    let mut cmd = qemu_cmd::command(image, &cfg);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    process::show(&cmd);
    let mut child = cmd.spawn().context("start QEMU")?;
    let mut stream = trace_link::connect(&socket, std::time::Duration::from_secs(10))?;

    // Reading only keeps the reader fast (decoding while reading made a loaded host
    // the bottleneck, and flow control then filled the kernel's rings); the trace
    // bytes are decoded after QEMU exits, each read with its arrival time.
    let mut split = LinkSplitter::new();
    let (mut bulk_start, mut bulk_end) = (None, None);
    let mut trace_bytes = Vec::new();
    // Per read of trace bytes: when it arrived and where it ends in `trace_bytes`.
    let mut arrivals: Vec<(Instant, usize)> = Vec::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
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
    let mut produced: std::collections::BTreeMap<(u32, Ring), u64> = Default::default();
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
    let outcome = qemu_cmd::wait_until(&mut child, Instant::now() + std::time::Duration::from_secs(10))?;
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

/// The wasm host's rows, measured by the kernel itself in one boot
/// (`workload=wasm-bench`, `kernel/src/wasm/bench.rs`): guest vs native compute,
/// the hostcall round trip and instantiation from a loaded `.cwasm`.
fn wasm_rows() -> Result<Vec<Row>> {
    use crate::{artifacts::Variant, qemu_cmd};

    qemu_cmd::ensure_installed()?;
    let image = artifacts::build(Variant::Normal)?;
    let log = artifacts::target_dir().join("bench").join("wasm-bench.com1.log");
    std::fs::create_dir_all(log.parent().expect("a parent")).context("create the bench dir")?;
    let cfg = qemu_cmd::Config {
        smp: 1,
        memory: "512M".into(),
        cmdline: "workload=wasm-bench log=warn".into(),
        gdb: false,
        com1_file: Some(log.clone()),
        extra: Vec::new(),
    };
    let mut cmd = qemu_cmd::command(&image, &cfg);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    process::show(&cmd);
    let mut child = cmd.spawn().context("start QEMU")?;
    let outcome = qemu_cmd::wait_until(&mut child, Instant::now() + std::time::Duration::from_secs(300))?;
    let text = std::fs::read_to_string(&log).with_context(|| format!("read {}", log.display()))?;
    if outcome != qemu_cmd::Outcome::Success {
        bail!("the wasm bench boot ended with: {outcome}; COM1 in {}", log.display());
    }
    let rows = parse_kernel_bench(&text)?;
    if rows.is_empty() {
        bail!("the wasm bench printed no rows; COM1 in {}", log.display());
    }
    Ok(rows)
}

/// `bench NAME VALUE UNIT` lines of a kernel's COM1 log.
fn parse_kernel_bench(com1: &str) -> Result<Vec<Row>> {
    com1.lines()
        .filter_map(|l| l.strip_prefix("bench "))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let (Some(name), Some(value), Some(unit)) = (parts.next(), parts.next(), parts.next()) else {
                bail!("malformed bench line {l:?}");
            };
            let value: f64 = value.parse().with_context(|| format!("bad value in {l:?}"))?;
            Row::parse(&serde_json::json!({ "name": name, "lucid": value, "unit": unit }).to_string())
        })
        .collect()
}

/// Builds `package`'s `example` in release and returns the executable's path.
fn build_example(cargo: &str, package: &str, example: &str) -> Result<PathBuf> {
    process::run(Command::new(cargo).current_dir(process::workspace_root()).args([
        "build",
        "--release",
        "-p",
        package,
        "--example",
        example,
    ]))?;
    Ok(artifacts::target_dir().join("release/examples").join(example))
}

/// The console's rows: ingest rate and frame render time with 10k tasks
/// (`console/examples/ingest_render.rs`).
fn console_rows(cargo: &str) -> Result<Vec<Row>> {
    let exe = build_example(cargo, "lucid-console", "ingest_render")?;
    run_rows(Command::new(&exe).arg("--json"))
}

/// The replay rows: index build, open, seek and play on a generated recording of
/// 1 GiB (64 MiB with `--quick`), kept in `<target>/bench` between runs
/// (`console/examples/replay_seek.rs`).
fn replay_rows(cargo: &str, quick: bool) -> Result<Vec<Row>> {
    let exe = build_example(cargo, "lucid-console", "replay_seek")?;
    let dir = artifacts::target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let (file, mib) = if quick {
        (dir.join("replay-64m.lucid"), "64")
    } else {
        (dir.join("replay-1g.lucid"), "1024")
    };
    run_rows(
        Command::new(&exe)
            .arg("--json")
            .arg("--file")
            .arg(&file)
            .args(["--mb", mib]),
    )
}

/// JSON lines of a bench program's stdout as rows.
fn parse_rows(stdout: &[u8]) -> Result<Vec<Row>> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(Row::parse)
        .collect()
}

/// Runs `cmd` (printed first), progress on stderr to the terminal, and returns its rows.
fn run_rows(cmd: &mut Command) -> Result<Vec<Row>> {
    process::show(cmd);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start {program}"))?;
    if !out.status.success() {
        bail!("{program} failed: {}", out.status);
    }
    parse_rows(&out.stdout)
}

/// The figure a row named `name` carries in `column`.
fn figure_of(rows: &[Row], name: &str, column: fn(&Row) -> Option<f64>) -> Option<f64> {
    rows.iter().find(|r| r.name == name).and_then(column)
}

/// tokio `current_thread` bare and with console-subscriber, and the size of its
/// recording (`bench/tokio-console-anchor`). console-subscriber needs
/// `--cfg tokio_unstable` for the whole build, so that build has its own target
/// directory and never invalidates the others; the bare baseline is built as the bench
/// program's tokio is, without it, and told the poll counts tokio cannot count then.
fn anchor_rows(cargo: &str, runs: u32) -> Result<Vec<Row>> {
    let unstable_target = artifacts::target_dir().join("bench-anchor");
    process::run(
        Command::new(cargo)
            .current_dir(process::workspace_root())
            .env("RUSTFLAGS", "--cfg tokio_unstable")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env("CARGO_TARGET_DIR", &unstable_target)
            .args([
                "build",
                "--release",
                "-p",
                "tokio-console-anchor",
                "--features",
                "console",
            ]),
    )?;
    let records = unstable_target.join("recordings");
    let mut rows = run_rows(
        Command::new(unstable_target.join("release/tokio-console-anchor"))
            .args(["--runs", &runs.to_string()])
            .arg("--record-dir")
            .arg(&records),
    )?;
    let polls = ["spawn_join", "ping_pong"]
        .map(|w| figure_of(&rows, &format!("anchor.tokio.{w}.polls"), |r| r.anchor).map(|p| p as u64));
    let [Some(sj), Some(pp)] = polls else {
        bail!("tokio-console-anchor printed no poll counts");
    };
    process::run(Command::new(cargo).current_dir(process::workspace_root()).args([
        "build",
        "--release",
        "-p",
        "tokio-console-anchor",
    ]))?;
    rows.extend(run_rows(
        Command::new(artifacts::target_dir().join("release/tokio-console-anchor"))
            .args(["--runs", &runs.to_string()])
            .args(["--polls", &format!("{sj},{pp}")]),
    )?);
    Ok(rows)
}

/// Size of a Chrome trace-event JSON export.
#[derive(Debug, Clone, Copy)]
struct ChromeJson {
    bytes: u64,
    events: u64,
}

/// `lucid export --perfetto` writes one event per line between an opening and a
/// closing line.
fn chrome_json_size(path: &std::path::Path) -> Result<ChromeJson> {
    use std::io::Read;

    let mut file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("read {}", path.display()))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    if lines < 3 {
        bail!("{} holds no trace events", path.display());
    }
    Ok(ChromeJson {
        bytes,
        events: lines - 2,
    })
}

/// The spawn_join trace the bench program recorded, exported by `lucid export
/// --perfetto` (the export is deleted after measuring: about 0.5 GB).
fn chrome_json(cargo: &str, recording: &std::path::Path) -> Result<ChromeJson> {
    process::run(Command::new(cargo).current_dir(process::workspace_root()).args([
        "build",
        "--release",
        "-p",
        "lucid-console",
        "--bin",
        "lucid",
    ]))?;
    let out = recording.with_extension("json");
    process::run(
        Command::new(artifacts::target_dir().join("release/lucid"))
            .arg("export")
            .arg(recording)
            .arg("--perfetto")
            .arg(&out),
    )?;
    let size = chrome_json_size(&out);
    std::fs::remove_file(&out).with_context(|| format!("remove {}", out.display()))?;
    size
}

/// Rows that hold Lucid's figures against the anchors' (ratio = Lucid / anchor). A
/// row whose figures are missing is left out.
fn comparisons(rows: &[Row], chrome: Option<ChromeJson>) -> Vec<Row> {
    let lucid = |name: &str| figure_of(rows, name, |r| r.lucid);
    let anchor = |name: &str| figure_of(rows, name, |r| r.anchor);
    let mut out = Vec::new();
    let mut push = |name: String, l: Option<f64>, a: Option<f64>, unit: &str| {
        if l.is_some() && a.is_some() {
            out.push(Row::new(&name, l, a, unit));
        }
    };
    for w in ["spawn_join", "ping_pong"] {
        push(
            format!("trace.{w}.overhead_vs_console_subscriber"),
            lucid(&format!("trace.{w}.overhead_ns_per_poll")),
            anchor(&format!("anchor.console_subscriber.{w}.overhead_ns_per_poll")),
            "ns/poll",
        );
        push(
            format!("bytes.{w}.per_poll_vs_console_recording"),
            lucid(&format!("bytes.{w}.all_bytes_per_poll")),
            anchor(&format!("anchor.console_recording.{w}.bytes_per_poll")),
            "B/poll",
        );
        push(
            format!("bytes.{w}.per_event_vs_console_recording"),
            lucid(&format!("bytes.{w}.all_events")),
            anchor(&format!("anchor.console_recording.{w}.bytes_per_event")),
            "B/event",
        );
    }
    if let Some(c) = chrome {
        let bytes = c.bytes as f64;
        // The same events in both encodings, so per Lucid event and per poll.
        push(
            "bytes.spawn_join.per_event_vs_chrome_json".into(),
            lucid("bytes.spawn_join.all_events"),
            lucid("bytes.spawn_join.events").map(|e| bytes / e),
            "B/event",
        );
        push(
            "bytes.spawn_join.per_poll_vs_chrome_json".into(),
            lucid("bytes.spawn_join.all_bytes_per_poll"),
            lucid("bytes.spawn_join.polls").map(|p| bytes / p),
            "B/poll",
        );
        out.push(Row::new(
            "anchor.chrome_json.spawn_join.bytes_per_json_event",
            None,
            Some(bytes / c.events as f64),
            "B/event",
        ));
    }
    out
}

pub fn main(args: Args) -> Result<()> {
    let started = Instant::now();
    if args.link_only {
        let rows = link_rows(args.quick)?;
        println!();
        print!("{}", table(&rows));
        println!();
        println!("{}; {:.0} s in all", machine(), started.elapsed().as_secs_f64());
        return Ok(());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let exe = build_example(&cargo, "lucid-executor", "bench")?;
    let runs = args.runs.unwrap_or(if args.quick { 3 } else { 9 });
    let dir = artifacts::target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let recording = dir.join("spawn_join.lucid");
    // The rows come on stdout; progress on stderr goes straight to the terminal.
    let mut rows = run_rows(
        Command::new(&exe)
            .args(["--runs", &runs.to_string()])
            .arg("--record")
            .arg(&recording),
    )?;
    let chrome = chrome_json(&cargo, &recording)?;
    rows.extend(anchor_rows(&cargo, runs)?);
    let compared = comparisons(&rows, Some(chrome));
    rows.extend(compared);
    rows.extend(console_rows(&cargo)?);
    rows.extend(replay_rows(&cargo, args.quick)?);
    if !args.no_qemu {
        rows.extend(kernel_rows()?);
        rows.extend(link_rows(args.quick)?);
        rows.extend(wasm_rows()?);
    }
    if rows.is_empty() {
        bail!("the bench program printed no rows");
    }

    let report = dir.join("report.json");
    let json = serde_json::to_string_pretty(&rows.iter().map(Row::report).collect::<Vec<_>>())?;
    std::fs::write(&report, json + "\n").with_context(|| format!("write {}", report.display()))?;

    println!();
    print!("{}", table(&rows));
    println!();
    println!(
        "{}; ratio = Lucid / anchor; medians of {runs} runs; {:.0} s in all",
        machine(),
        started.elapsed().as_secs_f64()
    );
    let missed = rows.iter().filter(|r| r.met() == Some(false)).count();
    let held = rows.iter().filter(|r| r.met().is_some()).count();
    println!("goals met: {}/{held}; report: {}", held - missed, report.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_apply_to_the_rows_issue_8_names() {
        let bound = |name: &str| goal_for(name).map(Goal::text);
        let bound = |name: &str| bound(name).map(|t| t.trim_start_matches("<= ").parse::<f64>().unwrap_or(f64::NAN));
        assert_eq!(bound("trace.spawn_join.overhead_ns_per_poll"), Some(25.0));
        assert_eq!(bound("trace.ping_pong.overhead_ns_per_poll"), Some(25.0));
        assert_eq!(bound("bytes.spawn_join.poll_start"), Some(8.0));
        assert_eq!(bound("bytes.spawn_join.poll_end"), Some(8.0));
        assert_eq!(bound("bytes.ping_pong.poll_start_end_avg"), Some(8.0));
        assert_eq!(bound("trace.spawn_join.noop_hooks_overhead_ns_per_poll"), None);
        assert_eq!(bound("bytes.spawn_join.per_poll"), None);
        assert_eq!(bound("bytes.spawn_join.task_spawned"), None);
        assert_eq!(bound("spawn_join.1cpu.ns_per_poll"), None);
        let console = goal_for("console.ingest_events_per_s").expect("a goal");
        let met = |g: Goal, lucid: f64| g.met(Some(lucid), None) == Some(true);
        assert!(
            met(console, 25e6) && !met(console, 5e6),
            "the ingest goal is a lower bound"
        );
        assert!(goal_for("console.render_10k_tasks.tasks").is_some_and(|g| met(g, 2.0) && !met(g, 20.0)));
        assert!(goal_for("console.replay_seek_max_ms").is_some_and(|g| met(g, 60.0) && !met(g, 150.0)));
        assert!(goal_for("console.replay_seek_p50_ms").is_none());
        assert!(goal_for("e2e.trace_vs_link").is_some_and(|g| met(g, 0.6) && !met(g, 0.3)));
        assert!(goal_for("e2e.trace_mib_per_s").is_none());
        assert!(goal_for("console.memory_per_retained_task_bytes").is_some_and(|g| met(g, 900.0) && !met(g, 2000.0)));
        assert!(goal_for("e2e.link_raw_mib_per_s").is_none());

        // 1/50 of console-subscriber's overhead bounds the ratio, whatever the figures.
        let vs = goal_for("trace.spawn_join.overhead_vs_console_subscriber").expect("a goal");
        assert_eq!(vs.met(Some(400.0), Some(0.01)), Some(true));
        assert_eq!(vs.met(Some(10.0), Some(0.5)), Some(false));
        assert_eq!(vs.met(Some(10.0), None), None);
        assert!(goal_for("trace.ping_pong.overhead_vs_console_subscriber").is_some());
        assert!(goal_for("anchor.console_subscriber.spawn_join.overhead_ns_per_poll").is_none());
        assert!(goal_for("bytes.spawn_join.per_poll_vs_console_recording").is_none());
    }

    fn parsed(lines: &[&str]) -> Vec<Row> {
        lines.iter().map(|l| Row::parse(l).unwrap()).collect()
    }

    #[test]
    fn comparisons_put_lucid_beside_its_anchors() {
        let rows = parsed(&[
            r#"{"name":"trace.spawn_join.overhead_ns_per_poll","lucid":40.0,"anchor":null,"ratio":null,"unit":"ns/poll"}"#,
            r#"{"name":"anchor.console_subscriber.spawn_join.overhead_ns_per_poll","lucid":null,"anchor":4000.0,"ratio":null,"unit":"ns/poll"}"#,
            r#"{"name":"trace.ping_pong.overhead_ns_per_poll","lucid":900.0,"anchor":null,"ratio":null,"unit":"ns/poll"}"#,
            r#"{"name":"anchor.console_subscriber.ping_pong.overhead_ns_per_poll","lucid":null,"anchor":3000.0,"ratio":null,"unit":"ns/poll"}"#,
            r#"{"name":"bytes.spawn_join.all_bytes_per_poll","lucid":27.0,"anchor":null,"ratio":null,"unit":"B/poll"}"#,
            r#"{"name":"anchor.console_recording.spawn_join.bytes_per_poll","lucid":null,"anchor":430.0,"ratio":null,"unit":"B/poll"}"#,
            r#"{"name":"bytes.spawn_join.all_events","lucid":8.4,"anchor":null,"ratio":null,"unit":"B/event"}"#,
            r#"{"name":"bytes.spawn_join.events","lucid":1000.0,"anchor":null,"ratio":null,"unit":"events"}"#,
            r#"{"name":"bytes.spawn_join.polls","lucid":400.0,"anchor":null,"ratio":null,"unit":"polls"}"#,
        ]);
        let chrome = ChromeJson {
            bytes: 200_000,
            events: 1_250,
        };
        let out = comparisons(&rows, Some(chrome));
        let get = |name: &str| {
            out.iter()
                .find(|r| r.name == name)
                .unwrap_or_else(|| panic!("no {name}"))
        };
        let sj = get("trace.spawn_join.overhead_vs_console_subscriber");
        assert_eq!((sj.lucid, sj.anchor, sj.ratio), (Some(40.0), Some(4000.0), Some(0.01)));
        assert_eq!(sj.met(), Some(true));
        let pp = get("trace.ping_pong.overhead_vs_console_subscriber");
        assert_eq!((pp.ratio, pp.met()), (Some(0.3), Some(false)));
        let rec = get("bytes.spawn_join.per_poll_vs_console_recording");
        assert_eq!((rec.lucid, rec.anchor), (Some(27.0), Some(430.0)));
        // The recording's per-event anchor is missing, so is the row.
        assert!(
            out.iter()
                .all(|r| r.name != "bytes.spawn_join.per_event_vs_console_recording")
        );
        let json = get("bytes.spawn_join.per_event_vs_chrome_json");
        assert_eq!((json.lucid, json.anchor), (Some(8.4), Some(200.0)));
        assert_eq!(get("bytes.spawn_join.per_poll_vs_chrome_json").anchor, Some(500.0));
        assert_eq!(
            get("anchor.chrome_json.spawn_join.bytes_per_json_event").anchor,
            Some(160.0)
        );
        assert!(comparisons(&rows, None).iter().all(|r| !r.name.contains("chrome_json")));
    }

    #[test]
    fn a_chrome_json_export_counts_one_event_per_line() {
        let dir = std::env::temp_dir().join(format!("xtask-chrome-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.json");
        let text = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n{\"ph\":\"M\"},\n{\"ph\":\"X\"}\n]}\n";
        std::fs::write(&path, text).unwrap();
        let c = chrome_json_size(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((c.bytes, c.events), (text.len() as u64, 2));
    }

    fn link_stream(chunk: usize, chunks: usize, trace: &[u8]) -> Vec<u8> {
        let mut s = b"LUCIDLNK".to_vec();
        s.extend_from_slice(&(chunk as u64).to_le_bytes());
        for i in 0..chunks {
            let mut c = vec![0xa5u8; chunk];
            c[..8].copy_from_slice(if i + 1 == chunks { b"LNK-LAST" } else { b"LNK-MORE" });
            s.extend_from_slice(&c);
        }
        s.extend_from_slice(trace);
        s
    }

    #[test]
    fn the_link_splitter_finds_the_trace_after_the_bulk_chunks_in_any_pieces() {
        let trace = b"\x01trace frames\x00";
        let stream = link_stream(20, 3, trace);
        for piece in [1, 3, 7, 20, 1000] {
            let mut split = LinkSplitter::new();
            let mut out = Vec::new();
            for p in stream.chunks(piece) {
                out.extend_from_slice(split.feed(p).unwrap());
            }
            assert!(split.in_trace(), "piece {piece}");
            assert_eq!(split.bulk_bytes, 16 + 60, "piece {piece}");
            assert_eq!(out, trace, "piece {piece}");
        }
        let mut split = LinkSplitter::new();
        assert!(split.feed(&link_stream(20, 2, b"")[..40]).unwrap().is_empty());
        assert!(!split.in_trace(), "still inside the second chunk");
    }

    #[test]
    fn the_link_splitter_rejects_a_foreign_stream() {
        assert!(LinkSplitter::new().feed(b"not a link bench").is_err());
        let mut bad = link_stream(20, 2, b"");
        bad[16 + 20] = b'X';
        assert!(LinkSplitter::new().feed(&bad).is_err());
        let mut tiny = b"LUCIDLNK".to_vec();
        tiny.extend_from_slice(&4u64.to_le_bytes());
        assert!(LinkSplitter::new().feed(&tiny).is_err());
    }

    #[test]
    fn a_row_round_trips_into_the_report_with_its_goal() {
        let row = Row::parse(
            r#"{"name":"trace.spawn_join.overhead_ns_per_poll","lucid":30.5,"anchor":null,"ratio":null,"unit":"ns/poll"}"#,
        )
        .unwrap();
        assert_eq!(row.met(), Some(false));
        let json = serde_json::to_value(row.report()).unwrap();
        assert_eq!(json["goal"], "<= 25");
        assert_eq!(json["met"], false);
        assert_eq!(json["anchor"], Value::Null);
        assert_eq!(json["lucid"], 30.5);

        let row = Row::parse(r#"{"name":"bytes.x.poll_end","lucid":5.9,"anchor":null,"ratio":null,"unit":"B/event"}"#)
            .unwrap();
        assert_eq!(row.met(), Some(true));
        let row = Row::parse(
            r#"{"name":"spawn_join.1cpu.tasks_per_s","lucid":2.0,"anchor":4.0,"ratio":0.5,"unit":"tasks/s"}"#,
        )
        .unwrap();
        assert_eq!(row.met(), None);
        assert_eq!(serde_json::to_value(row.report()).unwrap()["met"], Value::Null);
        assert!(Row::parse("not json").is_err());
    }

    #[test]
    fn kernel_bench_lines_become_rows() {
        let rows = parse_kernel_bench(
            "[ 0.1] INFO boot\nbench wasm.guest_vs_native 1.500 x\nbench wasm.instantiate_us 12.000 us\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "wasm.guest_vs_native");
        assert_eq!(rows[0].lucid, Some(1.5));
        assert_eq!(rows[1].unit, "us");
        assert!(parse_kernel_bench("bench wasm.x notanumber x\n").is_err());
        assert!(parse_kernel_bench("bench wasm.x\n").is_err());
    }

    #[test]
    fn the_table_has_one_line_per_row_and_marks_missed_goals() {
        let rows = [
            r#"{"name":"trace.a.overhead_ns_per_poll","lucid":30.0,"anchor":null,"ratio":null,"unit":"ns/poll"}"#,
            r#"{"name":"spawn_join.1cpu.tasks_per_s","lucid":600000.0,"anchor":400000.0,"ratio":1.5,"unit":"tasks/s"}"#,
        ]
        .map(|l| Row::parse(l).unwrap());
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[2].contains("NO"), "{t}");
        assert!(lines[3].contains("600000") && lines[3].contains("1.50"), "{t}");
        assert!(
            lines.iter().all(|l| l.chars().count() == lines[0].chars().count()),
            "{t}"
        );
    }
}
