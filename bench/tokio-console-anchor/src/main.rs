//! Anchor rows for `cargo xtask bench` (issue 8, rows 1 and 2): the workloads of
//! `kernel/executor/examples/bench.rs` on tokio `current_thread`, bare and with
//! console-subscriber installed, and the size of console-subscriber's recording of them.
//! `docs/benchmarks.md` explains the rows.
//!
//! ```text
//! tokio-console-anchor [--runs N] [--polls SPAWN_JOIN,PING_PONG] [--record-dir DIR]
//! ```
//!
//! Built without the `console` feature (and without `--cfg tokio_unstable`) it times bare
//! tokio only, the baseline the executor rows use; tokio cannot count polls then, so
//! `--polls` passes the counts a `console` build measured. With the feature (which needs
//! `RUSTFLAGS="--cfg tokio_unstable"`) it times bare tokio of that build and tokio with
//! console-subscriber, counting polls with tokio's own metrics, and with `--record-dir`
//! records each workload once (untimed) with `Builder::recording_path`.
//!
//! Rows go to stdout as JSON lines like the bench example's, with the figure in `anchor`
//! and `lucid` null (xtask puts Lucid's figures beside them); progress goes to stderr.
#![forbid(unsafe_code)]

#[cfg(all(feature = "console", not(tokio_unstable)))]
compile_error!("console-subscriber needs the whole build to have RUSTFLAGS=\"--cfg tokio_unstable\"");

use std::time::Instant;

use anyhow::{Context, Result, bail};

// The same workloads as kernel/executor/examples/bench.rs's tokio rows: one definition.
use tokio_console_anchor::median;
use tokio_console_anchor::workloads::{ping_pong, spawn_join};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Workload {
    SpawnJoin,
    PingPong,
}

impl Workload {
    const ALL: [Workload; 2] = [Workload::SpawnJoin, Workload::PingPong];

    fn name(self) -> &'static str {
        match self {
            Workload::SpawnJoin => "spawn_join",
            Workload::PingPong => "ping_pong",
        }
    }

    async fn run(self) {
        match self {
            Workload::SpawnJoin => spawn_join().await,
            Workload::PingPong => ping_pong().await,
        }
    }
}

/// One timed run.
#[derive(Clone, Copy, Debug)]
struct Sample {
    secs: f64,
    /// Tasks tokio polled (only tokio_unstable has the count).
    #[cfg(tokio_unstable)]
    polls: u64,
}

/// Runs `workload` as a spawned root task (as the bench example does) on a fresh
/// `current_thread` runtime, timed from spawning the root to its completion.
fn run(workload: Workload) -> Sample {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let start = Instant::now();
    runtime.block_on(async { tokio::spawn(workload.run()).await.expect("the root completes") });
    let secs = start.elapsed().as_secs_f64();
    let sample = Sample {
        secs,
        #[cfg(tokio_unstable)]
        polls: runtime.metrics().worker_poll_count(0),
    };
    drop(runtime);
    sample
}

/// Prints one row with the figure as the anchor.
fn row(name: &str, anchor: f64, unit: &str) {
    let anchor = if anchor.is_finite() {
        format!("{anchor}")
    } else {
        "null".to_string()
    };
    println!("{{\"name\":\"{name}\",\"lucid\":null,\"anchor\":{anchor},\"ratio\":null,\"unit\":\"{unit}\"}}");
}

/// A configuration's name and its run.
type Config<'a> = (String, Box<dyn FnMut() -> Sample + 'a>);

/// Each configuration once untimed, then `runs` rounds of all of them, interleaved so
/// that drift of a shared machine hits all alike.
fn measure(runs: usize, configs: &mut [Config<'_>]) -> Vec<Vec<Sample>> {
    for (name, run) in configs.iter_mut() {
        eprintln!("tokio-console-anchor: warm-up {name}");
        run();
    }
    let mut samples = vec![Vec::with_capacity(runs); configs.len()];
    for round in 0..runs {
        eprintln!("tokio-console-anchor: round {}/{runs}", round + 1);
        for (i, (_, run)) in configs.iter_mut().enumerate() {
            samples[i].push(run());
        }
    }
    samples
}

struct Args {
    runs: usize,
    polls: Option<[u64; 2]>,
    record_dir: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut parsed = Args {
        runs: 3,
        polls: None,
        record_dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => parsed.runs = value()?.parse().context("--runs N")?,
            "--polls" => {
                let v = value()?;
                let counts = v
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<Vec<u64>, _>>()
                    .context("--polls SPAWN_JOIN,PING_PONG")?;
                let [a, b] = counts[..] else {
                    bail!("--polls takes two counts, got {v:?}");
                };
                parsed.polls = Some([a, b]);
            }
            "--record-dir" => parsed.record_dir = Some(value()?.into()),
            other => bail!(
                "unknown argument {other:?}; usage: tokio-console-anchor [--runs N] [--polls SPAWN_JOIN,PING_PONG] [--record-dir DIR]"
            ),
        }
    }
    if parsed.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(parsed)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    #[cfg(feature = "console")]
    return console::main(&args);
    #[cfg(not(feature = "console"))]
    bare(&args)
}

/// Bare tokio, built as the bench example builds it: ns per poll with the poll counts a
/// `console` build measured.
#[cfg(not(feature = "console"))]
fn bare(args: &Args) -> Result<()> {
    let polls = args
        .polls
        .context("tokio without --cfg tokio_unstable cannot count polls: pass --polls")?;
    let mut configs: Vec<Config<'_>> = Workload::ALL
        .iter()
        .map(|&w| {
            let f: Box<dyn FnMut() -> Sample> = Box::new(move || run(w));
            (format!("{} tokio current_thread", w.name()), f)
        })
        .collect();
    let samples = measure(args.runs, &mut configs);
    for (i, w) in Workload::ALL.iter().enumerate() {
        let ns = median(samples[i].iter().map(|s| s.secs * 1e9 / polls[i] as f64).collect());
        row(&format!("anchor.tokio.{}.ns_per_poll", w.name()), ns, "ns/poll");
    }
    Ok(())
}

#[cfg(feature = "console")]
mod console {
    use std::path::Path;
    use std::time::Duration;

    use anyhow::{Context, Result, ensure};
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::{Args, Config, Sample, Workload, measure, median, row, run};

    /// Completed tasks are dropped from the aggregator's state this long after they
    /// end: the default (1 h) keeps every task of every run, several GB for 100k tasks.
    pub const RETENTION: Duration = Duration::from_secs(1);

    /// What `console_subscriber::Builder::spawn` filters to (its `console_filter`): only
    /// the runtime's own spans and events reach the layer.
    fn console_filter(meta: &tracing::Metadata<'_>) -> bool {
        if meta.is_event() {
            return meta.target().starts_with("runtime") || meta.target().starts_with("tokio");
        }
        meta.name().starts_with("runtime.") || meta.target().starts_with("tokio")
    }

    /// [`console_filter`] without tokio's resource instrumentation (channels, mutexes,
    /// timers and their async operations): only what Lucid's trace records too, tasks,
    /// polls and wakes.
    fn tasks_only_filter(meta: &tracing::Metadata<'_>) -> bool {
        console_filter(meta)
            && !meta.name().starts_with("runtime.resource")
            && !meta.target().starts_with("runtime::resource")
    }

    /// Runs `workload` with console-subscriber as the thread's default subscriber. Its
    /// aggregator runs on a thread of its own, as `Builder::spawn` runs it; no gRPC server
    /// is started and no client is connected (the server would only listen). The layer
    /// and aggregator are fresh for every run and torn down after it, untimed.
    fn run_with_console(workload: Workload, record: Option<&Path>, tasks_only: bool) -> Sample {
        let mut builder = console_subscriber::ConsoleLayer::builder().retention(RETENTION);
        if let Some(path) = record {
            builder = builder.recording_path(path);
        }
        let (layer, server) = builder.build();
        let console_subscriber::ServerParts {
            instrument_server,
            aggregator,
            ..
        } = server.into_parts();
        let aggregator = std::thread::Builder::new()
            .name("console_subscriber".into())
            .spawn(move || {
                // The aggregator's own spans must not reach a subscriber.
                let _guard = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
                tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("aggregator runtime")
                    .block_on(aggregator.run());
            })
            .expect("spawn the aggregator thread");
        let filter =
            tracing_subscriber::filter::FilterFn::new(if tasks_only { tasks_only_filter } else { console_filter });
        let subscriber = tracing_subscriber::registry().with(layer.with_filter(filter));
        let sample = tracing::subscriber::with_default(subscriber, || run(workload));
        // Closing the command channel ends the aggregator.
        drop(instrument_server);
        aggregator.join().expect("the aggregator thread ends");
        sample
    }

    /// Waits until console-subscriber's recorder thread has written everything and ended:
    /// nothing joins it when the layer is dropped.
    fn wait_for_recorder() -> Result<()> {
        // Thread names are cut to 15 bytes in /proc.
        let recorder = &"console/subscriber/recorder/io"[..15];
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let alive = std::fs::read_dir("/proc/self/task")
                .context("list /proc/self/task")?
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .any(|comm| comm.trim_end() == recorder);
            if !alive {
                return Ok(());
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "console-subscriber's recorder is still writing after 2 minutes"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Peak resident memory of this process so far, in MiB.
    fn peak_rss_mib() -> f64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map_or(f64::NAN, |kib| kib / 1024.0)
    }

    pub fn main(args: &Args) -> Result<()> {
        let mut configs: Vec<Config<'_>> = Vec::new();
        for w in Workload::ALL {
            configs.push((
                format!("{} tokio_unstable current_thread", w.name()),
                Box::new(move || run(w)),
            ));
            configs.push((
                format!("{} tokio_unstable + console-subscriber", w.name()),
                Box::new(move || run_with_console(w, None, false)),
            ));
            configs.push((
                format!("{} tokio_unstable + console-subscriber, tasks only", w.name()),
                Box::new(move || run_with_console(w, None, true)),
            ));
        }
        let samples = measure(args.runs, &mut configs);
        let mut polls = Vec::new();
        for (i, w) in Workload::ALL.iter().enumerate() {
            let (bare, console, tasks) = (&samples[3 * i], &samples[3 * i + 1], &samples[3 * i + 2]);
            let per_poll = |x: &Sample| x.secs * 1e9 / x.polls.max(1) as f64;
            let ns = |s: &[Sample]| median(s.iter().map(per_poll).collect());
            // Overheads are medians of the per-round differences (a pair ran back to back).
            let paired =
                |a: &[Sample], b: &[Sample]| median(a.iter().zip(b).map(|(a, b)| per_poll(a) - per_poll(b)).collect());
            let (bare_ns, console_ns) = (ns(bare), ns(console));
            let n = w.name();
            let p = bare.last().map_or(0, |s| s.polls);
            polls.push(p);
            row(&format!("anchor.tokio_unstable.{n}.ns_per_poll"), bare_ns, "ns/poll");
            row(
                &format!("anchor.console_subscriber.{n}.ns_per_poll"),
                console_ns,
                "ns/poll",
            );
            row(
                &format!("anchor.console_subscriber.{n}.overhead_ns_per_poll"),
                paired(console, bare),
                "ns/poll",
            );
            row(
                &format!("anchor.console_subscriber_tasks.{n}.ns_per_poll"),
                ns(tasks),
                "ns/poll",
            );
            row(
                &format!("anchor.console_subscriber_tasks.{n}.overhead_ns_per_poll"),
                paired(tasks, bare),
                "ns/poll",
            );
            row(&format!("anchor.tokio.{n}.polls"), p as f64, "polls");
        }
        row("anchor.console_subscriber.peak_rss_mib", peak_rss_mib(), "MiB");
        if let Some(dir) = &args.record_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            for w in Workload::ALL {
                let path = dir.join(format!("console-{}.ndjson", w.name()));
                eprintln!("tokio-console-anchor: recording {} to {}", w.name(), path.display());
                let sample = run_with_console(w, Some(&path), false);
                wait_for_recorder()?;
                let text = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                // The first line is the format header, not an event.
                let events = text.iter().filter(|&&b| b == b'\n').count().saturating_sub(1) as u64;
                ensure!(events > 0, "{} holds no events", path.display());
                let n = w.name();
                let polls = sample.polls.max(1) as f64;
                row(
                    &format!("anchor.console_recording.{n}.bytes_per_poll"),
                    text.len() as f64 / polls,
                    "B/poll",
                );
                row(
                    &format!("anchor.console_recording.{n}.bytes_per_event"),
                    text.len() as f64 / events as f64,
                    "B/event",
                );
                row(
                    &format!("anchor.console_recording.{n}.events_per_poll"),
                    events as f64 / polls,
                    "events/poll",
                );
                // Hundreds of MB for spawn_join: only its size is needed.
                std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
            }
        }
        eprintln!(
            "tokio-console-anchor: polls per run {}",
            polls.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
        );
        Ok(())
    }
}
