//! `lucid`: the host console for Lucid's trace stream.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use lucid_console::metrics;
use lucid_console::source::{Endpoint, Ingest, Recorder, RecordingFile};
use lucid_console::state::Config;
use lucid_console::stats::{Summary, collect};
use lucid_console::ui::App;
use lucid_console::window::{Window, scan};
use lucid_protocol::recording::RecordingWriter;

#[derive(Debug, Parser)]
#[command(name = "lucid", version, about = "Console for the Lucid kernel's trace stream")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a `.lucid` recording and print a summary.
    Stats {
        /// The recording.
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Summarise what decoded before damage (truncation, corruption) instead of
        /// failing.
        #[arg(long)]
        partial: bool,
        #[command(flatten)]
        window: WindowArgs,
    },
    /// Where the CPU time went: per task, per spawn location and per CPU, and the
    /// longest polls.
    Profile {
        /// The recording.
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Tasks, spawn locations and longest polls listed.
        #[arg(long, value_name = "N", default_value_t = 20)]
        top: usize,
        /// Report the profiling samples instead: hottest functions (self and total),
        /// per task, per CPU, and the share in tasks, scheduler, idle and interrupts.
        #[arg(long)]
        samples: bool,
        /// The kernel ELF to name sampled functions from (default: the build's).
        #[arg(long, value_name = "PATH")]
        kernel_elf: Option<PathBuf>,
        #[command(flatten)]
        window: WindowArgs,
    },
    /// Write a recording for other tools: Perfetto's protobuf trace, Perfetto /
    /// chrome://tracing JSON, folded stacks for inferno and flamegraph.pl, or a flame
    /// graph.
    #[command(group(clap::ArgGroup::new("format").required(true).multiple(true).args(["perfetto", "perfetto_proto", "folded", "svg"])))]
    Export {
        /// The recording.
        file: PathBuf,
        /// Write Chrome trace-event JSON to this file.
        #[arg(long, value_name = "OUT.json")]
        perfetto: Option<PathBuf>,
        /// Write Perfetto's native protobuf trace to this file (much smaller than the
        /// JSON; open it in the Perfetto UI).
        #[arg(long, value_name = "OUT.perfetto-trace")]
        perfetto_proto: Option<PathBuf>,
        /// Write folded stacks to this file: `task;frame;…;frame samples` when the
        /// recording has profiling samples, else `cpu;kind;location;name busy_ns`.
        #[arg(long, value_name = "OUT.txt")]
        folded: Option<PathBuf>,
        /// Write a flame graph (SVG) of the same stacks to this file.
        #[arg(long, value_name = "OUT.svg")]
        svg: Option<PathBuf>,
        /// The kernel ELF to name sampled functions from (default: the build's).
        #[arg(long, value_name = "PATH")]
        kernel_elf: Option<PathBuf>,
        #[command(flatten)]
        window: WindowArgs,
    },
    /// Attach to a running kernel's trace stream and show it live.
    Live(LiveArgs),
    /// Replay a recording in the live views, with play/pause, speed, stepping and
    /// seeking (builds `FILE.idx`, a keyframe index, on first use).
    Replay(ReplayArgs),
}

/// A time window of a recording.
#[derive(Debug, Clone, Copy, Args)]
struct WindowArgs {
    /// Start of the window, as trace time after the first event (e.g. `1.5s`).
    #[arg(long, value_name = "TIME", value_parser = lucid_console::fmt::parse_duration)]
    from: Option<Duration>,
    /// End of the window, as trace time after the first event.
    #[arg(long, value_name = "TIME", value_parser = lucid_console::fmt::parse_duration)]
    to: Option<Duration>,
}

impl WindowArgs {
    fn window(self) -> anyhow::Result<Window> {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let w = Window {
            from_ns: self.from.map(ns),
            to_ns: self.to.map(ns),
        };
        if let (Some(a), Some(b)) = (w.from_ns, w.to_ns)
            && a > b
        {
            bail!("--from must not be after --to");
        }
        Ok(w)
    }
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The recording.
    file: PathBuf,
    /// No terminal: move the cursor to `--at` (default: the end), print the
    /// `lucid stats` summary of the state there, and hold it for `--hold`.
    #[arg(long)]
    headless: bool,
    /// Start at this trace time after the first event, e.g. `1.5s`.
    #[arg(long, value_name = "TIME", value_parser = lucid_console::fmt::parse_duration)]
    at: Option<Duration>,
    /// With --headless: keep the process (and the state at the cursor) alive this
    /// many seconds after printing; 0 holds until killed.
    #[arg(long, value_name = "SECS", requires = "headless")]
    hold: Option<f64>,
    /// Print the headless summary as JSON.
    #[arg(long, requires = "headless")]
    json: bool,
    /// How long completed tasks stay visible (trace time).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = lucid_console::fmt::parse_duration)]
    retain: Duration,
    /// Polls longer than this are warnings.
    #[arg(long, value_name = "DURATION", default_value = "10ms", value_parser = lucid_console::fmt::parse_duration)]
    long_poll: Duration,
    /// Tasks held at most; beyond it the task that completed longest ago is dropped
    /// (about 1 KiB each).
    #[arg(long, value_name = "N", default_value_t = lucid_console::state::MAX_TASKS)]
    max_tasks: usize,
    /// The kernel ELF to name sampled functions from in the task detail and long-poll
    /// warnings (default: the build's, when there is one).
    #[arg(long, value_name = "PATH")]
    kernel_elf: Option<PathBuf>,
    /// Serve Prometheus metrics of the state at the cursor at http://ADDR/metrics.
    /// With --headless and no --hold, holds until killed.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// The `instance` label of the metrics (default: the kernel's build id).
    #[arg(long, value_name = "NAME", requires = "metrics")]
    instance: Option<String>,
    /// Keep the replay index at about this percentage of the recording's size
    /// (1–100): keyframes farther apart, so seeks play further (about 100/PCT times
    /// as far as the default).
    #[arg(long, value_name = "PCT", default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
    index_size: u8,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["socket", "tcp", "stdin", "serial"])))]
struct LiveArgs {
    /// Connect to a unix-domain socket (QEMU `-chardev socket,path=…`).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Connect to a TCP address (`host:port`).
    #[arg(long, value_name = "ADDR")]
    tcp: Option<String>,
    /// Read the stream from standard input.
    #[arg(long)]
    stdin: bool,
    /// Open a serial device (a QEMU pty or a USB-serial adapter).
    #[arg(long, value_name = "DEVICE")]
    serial: Option<String>,
    /// Baud rate of the serial device.
    #[arg(long, value_name = "N", default_value_t = 115_200, requires = "serial")]
    baud: u32,
    /// Also write everything received to FILE (a `.lucid` recording).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// How long completed tasks stay visible (trace time), e.g. `60s`, `500ms`, `5m`.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = lucid_console::fmt::parse_duration)]
    retain: Duration,
    /// Polls longer than this are warnings, e.g. `10ms`.
    #[arg(long, value_name = "DURATION", default_value = "10ms", value_parser = lucid_console::fmt::parse_duration)]
    long_poll: Duration,
    /// Tasks held at most; beyond it the task that completed longest ago is dropped
    /// (about 1 KiB each).
    #[arg(long, value_name = "N", default_value_t = lucid_console::state::MAX_TASKS)]
    max_tasks: usize,
    /// Threads the stream is ingested on: 1, or 2 to decode and order it on a thread
    /// of its own while the state model runs on the session's (for streams faster
    /// than one core folds).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    ingest_threads: u8,
    /// No terminal: ingest for SECS seconds, then print the `lucid stats --json`
    /// object for what was received.
    #[arg(long, value_name = "SECS")]
    headless_for: Option<f64>,
    /// Show this file (the kernel's COM1 output) in a pane, followed as it grows.
    #[arg(long, value_name = "FILE")]
    kernel_log: Option<PathBuf>,
    /// The kernel ELF to name sampled functions from in the task detail and long-poll
    /// warnings (default: the build's, when there is one).
    #[arg(long, value_name = "PATH")]
    kernel_elf: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. `127.0.0.1:9464`).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// The `instance` label of the metrics (default: the kernel's build id).
    #[arg(long, value_name = "NAME", requires = "metrics")]
    instance: Option<String>,
}

impl LiveArgs {
    fn endpoint(&self) -> Endpoint {
        if let Some(p) = &self.socket {
            Endpoint::Unix(p.clone())
        } else if let Some(a) = &self.tcp {
            Endpoint::Tcp(a.clone())
        } else if let Some(d) = &self.serial {
            Endpoint::Serial {
                device: d.clone(),
                baud: self.baud,
            }
        } else {
            Endpoint::Stdin
        }
    }

    fn config(&self) -> Config {
        config(self.retain, self.long_poll, self.max_tasks)
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: scripts and people both read it.
            eprintln!("lucid: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Stats {
            file,
            json,
            partial,
            window,
        } => {
            let window = window.window()?;
            if window.is_all() {
                stats(&file, json, partial)
            } else {
                stats_window(&file, json, partial, window)
            }
        }
        Command::Profile {
            file,
            json,
            top,
            samples,
            kernel_elf,
            window,
        } => {
            if samples {
                profile_samples(&file, json, top, kernel_elf.as_deref(), window.window()?)
            } else {
                profile(&file, json, top, window.window()?)
            }
        }
        Command::Export {
            file,
            perfetto,
            perfetto_proto,
            folded,
            svg,
            kernel_elf,
            window,
        } => export(
            &file,
            Outputs {
                perfetto: perfetto.as_deref(),
                perfetto_proto: perfetto_proto.as_deref(),
                folded: folded.as_deref(),
                svg: svg.as_deref(),
                kernel_elf: kernel_elf.as_deref(),
            },
            window.window()?,
        ),
        Command::Live(args) => live(&args),
        Command::Replay(args) => replay(&args),
    }
}

fn config(retain: Duration, long_poll: Duration, max_tasks: usize) -> Config {
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Config {
        retain_ns: ns(retain),
        long_poll_ns: ns(long_poll),
        max_tasks: max_tasks.max(1),
        ..Config::default()
    }
}

/// The metrics server `--metrics ADDR` asks for, if any, announced on stderr.
fn start_metrics(addr: Option<&str>, instance: &Option<String>) -> anyhow::Result<Option<metrics::Server>> {
    let server = addr
        .map(|addr| metrics::Server::start(addr, instance.clone()))
        .transpose()?;
    if let Some(m) = &server {
        eprintln!("lucid: metrics at http://{}/metrics", m.addr());
    }
    Ok(server)
}

fn replay(args: &ReplayArgs) -> anyhow::Result<()> {
    use lucid_console::replay::{IndexParams, Replay};
    let name = args.file.display();
    let metrics = start_metrics(args.metrics.as_deref(), &args.instance)?;
    let config = config(args.retain, args.long_poll, args.max_tasks);
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut progress = |done: u64, len: u64| {
        if tty {
            eprint!("\rlucid: indexing {name}: {}%", done * 100 / len.max(1));
        }
    };
    let params = IndexParams::with_index_percent(args.index_size);
    let opened = Replay::open_with_progress(&args.file, config, params, &mut progress);
    if tty {
        // Clears the progress line, if there was one.
        eprint!("\r\x1b[2K");
    }
    let mut replay = opened.with_context(|| format!("{name}"))?;
    if let Some(n) = replay.take_notice() {
        eprintln!("lucid: {name}: {n}");
    }
    if let Some(d) = replay.damage() {
        eprintln!("lucid: {name}: {} (replaying what came before)", d.message);
    }
    match args.at {
        Some(at) => replay.seek_time(u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)),
        None if args.headless => replay.seek(replay.len()),
        None => Ok(()),
    }
    .with_context(|| format!("{name}"))?;
    if let Some(n) = replay.take_notice() {
        eprintln!("lucid: {name}: {n}");
    }
    if args.headless {
        let collected = lucid_console::stats::Collected {
            state: replay.state().clone(),
            decoder: replay.decoder_stats(),
            damage: None,
        };
        let mut summary = Summary::new(&collected);
        if replay.position() >= replay.len() {
            summary.damage = replay.damage().cloned();
        }
        print_summary(&summary, args.json)?;
        if let Some(m) = &metrics {
            m.publish(replay.state());
        }
        let hold = match (args.hold, &metrics) {
            (None, Some(_)) => Some(0.0),
            (hold, _) => hold,
        };
        match hold {
            Some(s) if s <= 0.0 => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            Some(s) => std::thread::sleep(Duration::try_from_secs_f64(s).context("--hold")?),
            None => {}
        }
        return Ok(());
    }
    let mut app = App::new(lucid_console::live::Session::new(format!("replay {name}"), config));
    app.metrics = metrics;
    app.symbols = tui_symbols(args.kernel_elf.as_deref())?;
    let mut controls = lucid_console::ui::replay::ReplayControls::new(replay);
    let mut terminal = ratatui::try_init().context("opening the terminal")?;
    let result = lucid_console::ui::replay::run(&mut terminal, &mut app, &mut controls);
    ratatui::restore();
    result.context("terminal I/O")
}

fn recorder(path: &Path) -> anyhow::Result<Recorder> {
    let name = path.display();
    let file = std::fs::File::create(path).with_context(|| format!("creating {name}"))?;
    let mut w = RecordingWriter::new(std::io::BufWriter::new(file)).with_context(|| format!("writing {name}"))?;
    w.flush().with_context(|| format!("writing {name}"))?;
    Ok(w)
}

fn live(args: &LiveArgs) -> anyhow::Result<()> {
    // Before anything is created: a bad address must not leave an empty recording.
    let metrics = start_metrics(args.metrics.as_deref(), &args.instance)?;
    let recorder = args.record.as_deref().map(recorder).transpose()?;
    let endpoint = args.endpoint();
    if let Some(secs) = args.headless_for {
        let duration = Duration::try_from_secs_f64(secs).context("--headless-for")?;
        let worker = args.ingest_threads == 2;
        let run = lucid_console::live::headless(endpoint, recorder, args.config(), duration, metrics.as_ref(), worker)
            .context("starting the ingest thread")?;
        // The JSON on stdout is the same as `lucid stats --json`; what the status bar
        // would have shown goes to stderr for people.
        if run.connections == 0 || run.problem.is_some() {
            eprintln!("lucid: {}", run.link);
        }
        if let Some(p) = &run.problem {
            eprintln!("lucid: {p}");
        }
        let summary = Summary::new(&run.collected);
        return print_summary(&summary, true);
    }
    let session = if args.ingest_threads == 2 {
        lucid_console::live::Session::with_worker(endpoint.to_string(), args.config())
            .context("starting the pipeline thread")?
    } else {
        lucid_console::live::Session::new(endpoint.to_string(), args.config())
    };
    let ingest = Ingest::spawn(endpoint, recorder).context("starting the ingest thread")?;
    let mut app = App::new(session);
    app.metrics = metrics;
    app.symbols = tui_symbols(args.kernel_elf.as_deref())?;
    app.kernel_log = args
        .kernel_log
        .clone()
        .map(lucid_console::ui::kernel_log::KernelLog::new);
    let mut terminal = ratatui::try_init().context("opening the terminal")?;
    let result = lucid_console::ui::run(&mut terminal, &mut app, &ingest);
    ratatui::restore();
    ingest.request_stop();
    result.context("terminal I/O")
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stops early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

/// The `lucid stats` summary on stdout: one JSON object, or the text form.
fn print_summary(summary: &Summary, json: bool) -> anyhow::Result<()> {
    let text = if json {
        serde_json::to_string(summary)? + "\n"
    } else {
        summary.to_text()
    };
    print(&text)
}

fn stats(file: &std::path::Path, json: bool, partial: bool) -> anyhow::Result<()> {
    let name = file.display();
    let mut source = RecordingFile::open(file).with_context(|| format!("{name}"))?;
    let collected = collect(&mut source);
    if !partial {
        if let Some(damage) = &collected.damage {
            bail!("{name}: {damage} (use --partial to summarise what decoded before it)");
        }
        if let Some((offset, error)) = &collected.state.first_version_error {
            bail!("{name}: stream byte offset {offset}: {error}");
        }
    }
    print_summary(&Summary::new(&collected), json)
}

fn stats_window(file: &Path, json: bool, partial: bool, window: Window) -> anyhow::Result<()> {
    let name = file.display();
    let (_, scan) = scan(file, Config::default(), window, |_| ()).with_context(|| format!("{name}"))?;
    if !partial && let Some(d) = &scan.damage {
        bail!(
            "{name}: {} (use --partial to summarise what decoded before it)",
            d.message
        );
    }
    let from = scan.from_ts.unwrap_or(scan.origin_ts);
    let to = scan.to_ts.unwrap_or_else(|| scan.end.now().get());
    let duration_s = scan
        .end
        .clock()
        .secs_f64(lucid_console::time::Ticks(to.saturating_sub(from)));
    let collected = |state: &lucid_console::state::State, decoder| lucid_console::stats::Collected {
        state: state.clone(),
        decoder,
        damage: None,
    };
    let mut summary = Summary::between(
        &collected(&scan.start, scan.start_decoder),
        &collected(&scan.end, scan.end_decoder),
        duration_s,
    );
    summary.damage = scan.damage.clone();
    print_summary(&summary, json)
}

fn profile(file: &Path, json: bool, top: usize, window: Window) -> anyhow::Result<()> {
    use lucid_console::profile::Profiler;
    let name = file.display();
    let (profiler, scan) = scan(file, Config::default(), window, |s| {
        Profiler::new(s.state, s.from_ts, top)
    })
    .with_context(|| format!("{name}"))?;
    if let Some(d) = &scan.damage {
        eprintln!("lucid: {name}: {} (profiling what came before)", d.message);
    }
    let p = profiler.finish(scan.end.clock(), scan.origin_ts, (scan.from_ts, scan.to_ts));
    let text = if json {
        serde_json::to_string(&p)? + "\n"
    } else {
        p.to_text(top)
    };
    print(&text)
}

/// The kernel's symbols from `path` or the build's ELF; none (every address shown
/// in hex) with a warning if it cannot be read.
fn kernel_symbols(path: Option<&Path>) -> lucid_console::symbols::Symbolizer {
    use lucid_console::symbols::{Symbolizer, default_kernel_elf};
    let path = path.map_or_else(default_kernel_elf, Path::to_path_buf);
    Symbolizer::load(&path).unwrap_or_else(|e| {
        eprintln!(
            "lucid: no kernel symbols from {}: {e} (addresses shown in hex)",
            path.display()
        );
        Symbolizer::default()
    })
}

/// The kernel's symbols for the views: from `path` (an error if it cannot be read),
/// else from the build's ELF when there is one, else none (addresses in hex).
fn tui_symbols(path: Option<&Path>) -> anyhow::Result<lucid_console::symbols::Symbolizer> {
    use lucid_console::symbols::{Symbolizer, default_kernel_elf};
    match path {
        Some(p) => Symbolizer::load(p).with_context(|| format!("--kernel-elf {}", p.display())),
        None => Ok(Symbolizer::load(&default_kernel_elf()).unwrap_or_default()),
    }
}

fn profile_samples(
    file: &Path,
    json: bool,
    top: usize,
    kernel_elf: Option<&Path>,
    window: Window,
) -> anyhow::Result<()> {
    use lucid_console::samples::Samples;
    let name = file.display();
    let (samples, scan) =
        scan(file, Config::default(), window, |s| Samples::new(s.state)).with_context(|| format!("{name}"))?;
    if let Some(d) = &scan.damage {
        eprintln!("lucid: {name}: {} (profiling what came before)", d.message);
    }
    if samples.is_empty() {
        eprintln!("lucid: {name}: no profiling samples (record with `cargo xtask run --profile`)");
    }
    let report = samples.report(&kernel_symbols(kernel_elf), top);
    let text = if json {
        serde_json::to_string(&report)? + "\n"
    } else {
        report.to_text()
    };
    print(&text)
}

/// Where `lucid export` writes each format asked for, and the kernel ELF that names
/// sampled addresses.
struct Outputs<'a> {
    perfetto: Option<&'a Path>,
    perfetto_proto: Option<&'a Path>,
    folded: Option<&'a Path>,
    svg: Option<&'a Path>,
    kernel_elf: Option<&'a Path>,
}

fn create(path: Option<&Path>) -> anyhow::Result<Option<std::io::BufWriter<std::fs::File>>> {
    path.map(|p| {
        std::fs::File::create(p)
            .map(|f| std::io::BufWriter::with_capacity(1 << 20, f))
            .with_context(|| format!("creating {}", p.display()))
    })
    .transpose()
}

fn export(file: &Path, outputs: Outputs<'_>, window: Window) -> anyhow::Result<()> {
    use lucid_console::export::{Folded, PerfettoProtoWriter, PerfettoWriter};
    let wants_stacks = outputs.folded.is_some() || outputs.svg.is_some();
    let name = file.display();
    let json_out = create(outputs.perfetto)?;
    let proto_out = create(outputs.perfetto_proto)?;
    let mut start_err = None;
    let (((json, proto), stacks), scan) = scan(file, Config::default(), window, |s| {
        let json = json_out.and_then(|out| match PerfettoWriter::new(out, s.state, s.from_ts, s.origin_ts) {
            Ok(w) => Some(w),
            Err(e) => {
                start_err = Some((outputs.perfetto, e));
                None
            }
        });
        let proto = proto_out.and_then(
            |out| match PerfettoProtoWriter::new(out, s.state, s.from_ts, s.origin_ts) {
                Ok(w) => Some(w),
                Err(e) => {
                    start_err = Some((outputs.perfetto_proto, e));
                    None
                }
            },
        );
        (
            (json, proto),
            wants_stacks.then(|| {
                (
                    Folded::new(s.state, s.from_ts),
                    lucid_console::samples::Samples::new(s.state),
                )
            }),
        )
    })
    .with_context(|| format!("{name}"))?;
    if let Some((path, e)) = start_err {
        bail!(
            "writing {}: {e}",
            path.map_or(name.to_string(), |p| p.display().to_string())
        );
    }
    if let Some(d) = &scan.damage {
        eprintln!("lucid: {name}: {} (exported what came before)", d.message);
    }
    if let (Some(w), Some(p)) = (json, outputs.perfetto) {
        w.finish(scan.to_ts)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let (Some(w), Some(p)) = (proto, outputs.perfetto_proto) {
        w.finish(scan.to_ts)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let Some((f, samples)) = stacks else {
        return Ok(());
    };
    if let Some((p, out)) = outputs.folded.zip(create(outputs.folded)?) {
        let written = if samples.is_empty() {
            f.write(out, scan.end.clock())
        } else {
            lucid_console::export::write_folded_samples(out, &samples.folded(&kernel_symbols(outputs.kernel_elf)))
        };
        written.with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some((p, out)) = outputs.svg.zip(create(outputs.svg)?) {
        let (stacks, title, unit) = if samples.is_empty() {
            let clock = scan.end.clock();
            let ns = f
                .stacks()
                .iter()
                .map(|(k, t)| (k.clone(), clock.ns(lucid_console::time::Ticks(*t))))
                .collect();
            (ns, "Busy time by task", "ns")
        } else {
            (
                samples.folded(&kernel_symbols(outputs.kernel_elf)),
                "Samples by task",
                "samples",
            )
        };
        lucid_console::export::write_flamegraph(out, &stacks, title, unit)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
