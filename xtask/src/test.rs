//! `cargo xtask test`: everything CI checks, ending with one line `N passed, N failed`.
//!
//! Steps: `cargo fmt --check`, clippy (host crates, and the kernel with its test
//! runner), host tests, `nm -u` of the kernel (no stray libc/std symbols), the
//! in-QEMU suite, and the end-to-end runs of the booted kernel (trace stream, console,
//! metrics with Prometheus). A failing step does not stop the later ones.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{
    artifacts::{self, Variant},
    metrics_check,
    process::{self, workspace_root},
    qemu_cmd::{self, Config, Outcome},
    trace_check, trace_link,
};

/// Workspace members that only build freestanding (checked and built on their own).
const FREESTANDING_EXCLUDES: &[&str] = &[
    "--exclude",
    "lucid-kernel",
    "--exclude",
    "lucid-loader",
    "--exclude",
    "lucid-memfuncs",
];
const DENY: &[&str] = &["--", "-D", "warnings"];

/// Options of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Run only in-QEMU tests whose name contains this text (skips the host steps).
    #[arg(long)]
    ktest: Option<String>,
    /// Run only the trace stream's end-to-end checks.
    #[arg(long, conflicts_with = "ktest")]
    trace_only: bool,
    /// Run only the console's metrics against a real Prometheus (and the dashboards).
    #[arg(long, conflicts_with_all = ["ktest", "trace_only"])]
    metrics_only: bool,
    /// CPUs for the in-QEMU suite.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    smp: u32,
    /// Seconds one in-QEMU test may run before it counts as hung.
    #[arg(long, default_value_t = 60)]
    test_timeout: u64,
}

/// Passed and failed counts with the names of failures.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
}

impl Tally {
    fn record(&mut self, name: &str, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed.push(name.to_string());
        }
    }
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

pub fn main(args: Args) -> Result<()> {
    let mut tally = Tally::default();
    if args.trace_only {
        qemu_cmd::ensure_installed()?;
        let image = artifacts::build(Variant::Normal)?;
        kernel_end_to_end(&mut tally, &image);
        return finish(&tally);
    }
    if args.metrics_only {
        qemu_cmd::ensure_installed()?;
        let image = artifacts::build(Variant::Normal)?;
        metrics_end_to_end(&mut tally, &image);
        return finish(&tally);
    }
    if args.ktest.is_none() {
        step(
            &mut tally,
            "cargo fmt --check",
            cargo().args(["fmt", "--all", "--check"]),
        );
        // Host crates and freestanding crates are checked separately so that features
        // host crates enable (e.g. `std`) are not unified into the kernel's dependencies.
        step(
            &mut tally,
            "clippy (host crates)",
            cargo()
                .args(["clippy", "--workspace", "--all-targets"])
                .args(FREESTANDING_EXCLUDES)
                .args(DENY),
        );
        for (package, features) in [
            ("lucid-loader", &[][..]),
            ("lucid-kernel", &[]),
            ("lucid-kernel", &["ktest"]),
        ] {
            let name = format!("clippy ({package} {})", features.join(","));
            step(
                &mut tally,
                name.trim_end(),
                artifacts::freestanding_cargo("clippy", package, features).args(DENY),
            );
        }
        host_tests(&mut tally)?;
    }

    qemu_cmd::ensure_installed()?;
    match artifacts::build(Variant::Ktest) {
        Ok(image) => {
            if args.ktest.is_none() {
                let mut nm = Command::new("nm");
                nm.arg("-u").arg(&image.kernel);
                process::show(&nm);
                let out = nm.output().context("run nm")?;
                let undefined = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if !undefined.is_empty() {
                    eprintln!("kernel ELF has undefined symbols:\n{undefined}");
                }
                tally.record("nm -u kernel is empty", out.status.success() && undefined.is_empty());
            }
            let suite = Suite {
                smp: args.smp,
                filter: args.ktest.as_deref(),
                extra: "",
                per_test: Duration::from_secs(args.test_timeout),
            };
            let _ = std::fs::remove_file(trace_file());
            let results = ktests(&mut tally, &image, &suite)?;
            for (name, ok, _) in results.values() {
                tally.record(&format!("ktest {name}"), *ok);
            }
            if results.values().any(|(name, ok, _)| name.ends_with(STREAM_TEST) && *ok) {
                let verdict = verify_stream(&trace_file());
                if let Err(e) = &verdict {
                    eprintln!("virtio-serial stream check: {e}");
                }
                tally.record("virtio-serial stream arrives intact on the host", verdict.is_ok());
            }
            if args.ktest.is_none() {
                harness_selftest(&mut tally, &image)?;
            }
        }
        Err(e) => {
            eprintln!("error: building the test kernel failed: {e:#}");
            tally.record("build the test kernel", false);
        }
    }

    if args.ktest.is_none() {
        match artifacts::build(Variant::Normal) {
            Ok(image) => kernel_end_to_end(&mut tally, &image),
            Err(e) => {
                eprintln!("error: building the kernel failed: {e:#}");
                tally.record("build the kernel", false);
            }
        }
        // Proves the benchmark harness works end to end (every row measured, the
        // report written); its figures are not judged here.
        step(
            &mut tally,
            "cargo xtask bench --quick runs (harness smoke, no thresholds)",
            cargo().args(["xtask", "bench", "--quick"]),
        );
    }

    finish(&tally)
}

/// Prints the failures and the final line; exits non-zero on any failure.
fn finish(tally: &Tally) -> Result<()> {
    for name in &tally.failed {
        eprintln!("FAILED: {name}");
    }
    println!("{} passed, {} failed", tally.passed, tally.failed.len());
    if !tally.failed.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// A step that is one test: it passes when the command succeeds.
fn step(tally: &mut Tally, name: &str, cmd: &mut Command) {
    let ok = process::run(cmd).map_err(|e| eprintln!("error: {e:#}")).is_ok();
    tally.record(name, ok);
}

/// Runs the host test suites and counts their individual tests.
fn host_tests(tally: &mut Tally) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["test", "--workspace"]).args(FREESTANDING_EXCLUDES);
    count_test_output(tally, &mut cmd, "host test")?;
    // The loom models, in their own target dir: `--cfg loom` changes every crate's build.
    let mut loom = cargo();
    loom.args([
        "test",
        "--release",
        "-p",
        "lucid-executor",
        "-p",
        "lucid-trace",
        "--lib",
        "loom",
        "--target-dir",
    ])
    .arg(artifacts::target_dir().join("loom"))
    .env("RUSTFLAGS", "--cfg loom");
    count_test_output(tally, &mut loom, "loom model")
}

/// Runs a libtest command and adds each of its tests to the tally.
fn count_test_output(tally: &mut Tally, cmd: &mut Command, label: &str) -> Result<()> {
    let (ok, output) = run_tee(cmd)?;
    let (mut passed, mut failed) = (0, 0);
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
        }
        if let Some(name) = line.strip_prefix("test ").and_then(|l| l.strip_suffix(" ... FAILED")) {
            tally.failed.push(format!("{label} {name}"));
        }
    }
    tally.passed += passed;
    let named = tally.failed.iter().filter(|n| n.starts_with(label)).count();
    for _ in named..failed {
        tally.failed.push(format!("{label} (unnamed)"));
    }
    if !ok && failed == 0 {
        tally.record(&format!("{label}s build and run"), false);
    }
    Ok(())
}

/// `"3 passed; 0 failed; …"` → the number before `what`.
fn count(summary: &str, what: &str) -> usize {
    summary
        .split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(what.trim())
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `cmd`, echoing its stdout while capturing it.
fn run_tee(cmd: &mut Command) -> Result<(bool, String)> {
    process::show(cmd);
    let mut child = cmd.stdout(Stdio::piped()).spawn().context("spawn")?;
    let mut out = String::new();
    let mut reader = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        print!("{line}");
        out.push_str(&line);
        line.clear();
    }
    Ok((child.wait()?.success(), out))
}

/// One parsed line of the kernel's test protocol.
enum Report {
    Plan(usize),
    Start(usize, String),
    Pass(usize, String, String),
    Fail(usize, String, String),
    Done,
}

fn parse(line: &str) -> Option<Report> {
    let rest = line.trim_end().strip_prefix("KTEST ")?;
    let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let (index, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let index: Option<usize> = index.parse().ok();
    match kind {
        "PLAN" => index.map(Report::Plan),
        "DONE" => Some(Report::Done),
        "START" => Some(Report::Start(index?, rest.to_string())),
        "PASS" => {
            let (name, detail) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(Report::Pass(index?, name.to_string(), detail.to_string()))
        }
        "FAIL" => {
            let (name, reason) = rest.split_once(": ").unwrap_or((rest, ""));
            Some(Report::Fail(index?, name.to_string(), reason.to_string()))
        }
        _ => None,
    }
}

/// Boots the test kernel as often as needed: a test that faults, panics or hangs
/// ends that boot, and the next boot starts after it.
/// The in-QEMU test whose bytes the host checks.
const STREAM_TEST: &str = "virtio_serial_streams_megabytes_with_flow_control";

/// Where the test kernel's `lucid.trace` port writes (appended across boots).
fn trace_file() -> std::path::PathBuf {
    artifacts::target_dir().join("freestanding").join("ktest-trace.bin")
}

/// Checks what the streaming test sent: `LUCIDTST`, a byte count, then that many
/// bytes of little-endian u32 counters.
fn verify_stream(path: &std::path::Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let at = bytes
        .windows(8)
        .position(|w| w == b"LUCIDTST")
        .ok_or("no LUCIDTST header in the stream")?;
    let body = &bytes[at + 16..];
    let len = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().expect("8 bytes")) as usize;
    if body.len() < len {
        return Err(format!("stream has {} of {len} bytes", body.len()));
    }
    for (i, word) in body[..len].chunks_exact(4).enumerate() {
        let got = u32::from_le_bytes(word.try_into().expect("4 bytes"));
        if got != i as u32 {
            return Err(format!("word {i} (byte {}) is {got}, expected {i}", i * 4));
        }
    }
    println!("virtio-serial stream: {len} bytes intact");
    Ok(())
}

/// Where one in-QEMU suite runs and what it selects.
struct Suite<'a> {
    smp: u32,
    filter: Option<&'a str>,
    /// Extra kernel command-line options.
    extra: &'a str,
    per_test: Duration,
}

/// Result of one in-QEMU test: name, passed, failure reason.
type KtestResults = BTreeMap<usize, (String, bool, String)>;

fn ktests(tally: &mut Tally, image: &artifacts::BootImage, suite: &Suite<'_>) -> Result<KtestResults> {
    let per_test = suite.per_test;
    let mut results = KtestResults::new();
    let mut plan = None;
    let mut from = 0;
    let mut boots = 0;
    let started = Instant::now();
    loop {
        boots += 1;
        let mut cmdline = format!("log=warn ktest.cpus={} ktest.from={from} {}", suite.smp, suite.extra);
        if let Some(f) = suite.filter {
            cmdline.push_str(&format!(" ktest.filter={f}"));
        }
        let cfg = Config {
            smp: suite.smp,
            memory: "512M".into(),
            cmdline,
            gdb: false,
            com1_file: None,
            extra: qemu_cmd::trace_port_args(&format!("file,id=trace,path={},append=on", trace_file().display())),
        };
        let mut cmd = qemu_cmd::command(image, &cfg);
        cmd.stdout(Stdio::piped()).stdin(Stdio::null());
        process::show(&cmd);
        let mut child = cmd.spawn().context("start QEMU")?;
        let lines = spawn_line_reader(child.stdout.take().expect("piped"));

        let mut current: Option<(usize, String)> = None;
        let mut context: Vec<String> = Vec::new();
        let mut done = false;
        let mut hung = false;
        let mut deadline = Instant::now() + per_test;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(wait) {
                Ok(line) => match parse(&line) {
                    Some(Report::Plan(n)) => plan = Some(n),
                    Some(Report::Start(i, name)) => {
                        current = Some((i, name));
                        context.clear();
                        deadline = Instant::now() + per_test;
                    }
                    Some(Report::Pass(i, name, detail)) => {
                        println!("ktest PASS {name} {}", pretty_detail(&detail));
                        results.insert(i, (name, true, String::new()));
                        current = None;
                    }
                    Some(Report::Fail(i, name, reason)) => {
                        for l in &context {
                            println!("    | {l}");
                        }
                        println!("ktest FAIL {name}: {reason}");
                        results.insert(i, (name, false, reason));
                        current = None;
                    }
                    Some(Report::Done) => done = true,
                    None => context.push(line.trim_end().to_string()),
                },
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    hung = true;
                    let _ = child.kill();
                    break;
                }
            }
        }
        let outcome = if hung {
            Outcome::TimedOut
        } else {
            qemu_cmd::wait_until(&mut child, Instant::now() + per_test)?
        };
        if let Some((i, name)) = current.take() {
            for l in &context {
                println!("    | {l}");
            }
            let why = if hung {
                format!("no result within {} s (hung)", per_test.as_secs())
            } else {
                outcome.to_string()
            };
            println!("ktest FAIL {name}: {why}");
            results.insert(i, (name, false, why));
        }
        if done {
            if outcome != Outcome::Success {
                eprintln!("kernel finished the tests but QEMU says: {outcome}");
                tally.record("in-QEMU runner exits cleanly", false);
            }
            break;
        }
        let next = results.keys().next_back().map_or(0, |i| i + 1);
        if next <= from && boots > 1 || results.is_empty() && plan.is_none() {
            for l in &context {
                println!("    | {l}");
            }
            eprintln!("error: the test kernel stopped before running a test: {outcome}");
            tally.record("in-QEMU runner reaches its tests", false);
            break;
        }
        if plan.is_some_and(|n| next >= n) {
            break;
        }
        from = next;
    }
    println!(
        "in-QEMU: {} tests in {boots} boot(s), {:.1} s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(results)
}

/// Runs the harness's own tests (`ktest.selftest`): one passes, and one each panics,
/// faults unexpectedly and hangs. The harness must report exactly that, by name, and
/// keep going after each.
fn harness_selftest(tally: &mut Tally, image: &artifacts::BootImage) -> Result<()> {
    let suite = Suite {
        smp: 1,
        filter: None,
        extra: "ktest.selftest",
        per_test: Duration::from_secs(5),
    };
    let results = ktests(tally, image, &suite)?;
    let outcome = |needle: &str| results.values().find(|(name, ..)| name.ends_with(needle)).cloned();
    let checks = [
        ("selftest::passes", true, ""),
        ("selftest::panics", false, "panicked: deliberate"),
        ("selftest::faults", false, "unexpected Unmapped"),
        ("selftest::hangs", false, "hung"),
        ("selftest::passes_after_a_hang", true, ""),
        ("selftest::task_panics", true, ""),
        (
            "selftest::task_panics_holding_a_spin_lock",
            false,
            "not contained: with 1 kernel spin lock(s)",
        ),
        (
            "selftest::task_panics_with_interrupts_masked",
            false,
            "not contained: with interrupts masked",
        ),
        (
            "selftest::task_panics_in_an_interrupt_handler",
            false,
            "not contained: in an interrupt handler",
        ),
        (
            "selftest::task_panics_again_while_unwinding",
            false,
            "not contained: a second panic while unwinding",
        ),
    ];
    let mut ok = results.len() == checks.len();
    for (needle, pass, reason) in checks {
        match outcome(needle) {
            Some((_, p, why)) if p == pass && why.contains(reason) => {}
            other => {
                eprintln!("harness self-test: {needle}: expected pass={pass} with {reason:?}, got {other:?}");
                ok = false;
            }
        }
    }
    tally.record(
        "ktest harness reports panics, faults and hangs by name and continues",
        ok,
    );
    Ok(())
}

fn pretty_detail(detail: &str) -> String {
    match detail.split_once(' ') {
        None => detail
            .parse::<u64>()
            .map(|us| format!("({:.1} ms)", us as f64 / 1000.0))
            .unwrap_or_default(),
        Some((_, note)) => note.to_string(),
    }
}

fn spawn_line_reader(stdout: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(String::from_utf8_lossy(&buf).replace('\r', "")).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// The checks that boot the normal kernel: the trace stream and the live console. A
/// scenario that cannot run to the end (QEMU does not start, a run times out) counts
/// as a failure, and the next one still runs.
fn kernel_end_to_end(tally: &mut Tally, image: &artifacts::BootImage) {
    if let Err(e) = trace_end_to_end(tally, image) {
        eprintln!("error: trace end to end: {e:#}");
        tally.record("trace end to end runs to completion", false);
    }
    if let Err(e) = console_end_to_end(tally, image) {
        eprintln!("error: console end to end: {e:#}");
        tally.record("console end to end runs to completion", false);
    }
    metrics_end_to_end(tally, image);
    link_bench_end_to_end(tally, image);
    if let Err(e) = wasm_end_to_end(tally, image) {
        eprintln!("error: wasm end to end: {e:#}");
        tally.record("wasm end to end runs to completion", false);
    }
}

/// `workload=link-bench:1` (the bench's issue 8 row 3 boot) runs through: the bulk
/// phase ends with its last-chunk marker, the trace after it decodes, and the kernel's
/// accounting holds (decoded + lost = produced). No speed is asserted.
fn link_bench_end_to_end(tally: &mut Tally, image: &artifacts::BootImage) {
    println!("link bench end to end: workload=link-bench:1");
    let verdict = crate::bench::run_link_bench(image, 1).and_then(|m| {
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

/// The demo's wasm guests as the console sees them: `lucid live` records 10 s of
/// the demo workload, and `lucid stats --json` on the recording must show every
/// demo instance doing what it is for.
fn wasm_end_to_end(tally: &mut Tally, image: &artifacts::BootImage) -> Result<()> {
    println!("wasm end to end: the demo's guests, a console connecting after 3 s for 10 s, in lucid stats");
    process::run(cargo().args(["build", "-p", "lucid-console"]))?;
    let lucid = artifacts::target_dir().join("debug").join("lucid");
    let recording = artifacts::target_dir().join("freestanding").join("wasm-e2e.lucid");
    let (mut child, stream) = trace_link::boot(image, "wasm-e2e", "log=warn workload=demo", trace_link::Link::Virtio)?;
    drop(stream);
    // Connect late: the instances started at boot must come from the kernel's
    // answer to the console's snapshot request.
    std::thread::sleep(Duration::from_secs(3));
    let mut live = Command::new(&lucid);
    live.arg("live")
        .arg("--socket")
        .arg(trace_link::socket_path("wasm-e2e"))
        .args(["--headless-for", "10", "--record"])
        .arg(&recording);
    process::show(&live);
    let live_out = live.stderr(Stdio::inherit()).output().context("run lucid live")?;
    let _ = child.kill();
    let _ = child.wait();
    if !live_out.status.success() {
        bail!("lucid live failed: {}", live_out.status);
    }
    let mut stats = Command::new(&lucid);
    stats.arg("stats").arg(&recording).arg("--json");
    process::show(&stats);
    let out = stats.output().context("run lucid stats")?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).context("lucid stats --json output")?;
    record_checks(tally, "wasm e2e", wasm_demo_checks(&json));
    record_checks(tally, "wasm e2e", profile_and_export_checks(&lucid, &recording)?);
    Ok(())
}

/// `lucid profile` and `lucid export` on the demo's recording: the CPU-bound guest
/// is the top busy task, and the Perfetto file has one CPU-track slice per poll.
fn profile_and_export_checks(
    lucid: &std::path::Path,
    recording: &std::path::Path,
) -> Result<[(&'static str, bool, String); 2]> {
    let run = |cmd: &mut Command| -> Result<Vec<u8>> {
        process::show(cmd);
        let out = cmd.output().context("run lucid")?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(out.stdout)
    };
    let profile: serde_json::Value = serde_json::from_slice(&run(Command::new(lucid)
        .arg("profile")
        .arg(recording)
        .args(["--json", "--top", "3"]))?)?;
    let top = profile["tasks"][0]["name"].as_str().unwrap_or("").to_string();
    // A window keeps the export small; `stats` counts the same window.
    let window = ["--to", "500ms"];
    let perfetto = artifacts::target_dir()
        .join("freestanding")
        .join("wasm-e2e.perfetto.json");
    run(Command::new(lucid)
        .arg("export")
        .arg(recording)
        .arg("--perfetto")
        .arg(&perfetto)
        .args(window))?;
    let trace: serde_json::Value = serde_json::from_slice(&std::fs::read(&perfetto)?)?;
    let stats: serde_json::Value = serde_json::from_slice(&run(Command::new(lucid)
        .arg("stats")
        .arg(recording)
        .arg("--json")
        .args(window))?)?;
    let events = trace["traceEvents"].as_array().cloned().unwrap_or_default();
    // The process named "CPUs" holds one track per CPU.
    let cpus_pid = events
        .iter()
        .find(|e| e["ph"] == "M" && e["name"] == "process_name" && e["args"]["name"] == "CPUs")
        .map(|e| e["pid"].clone());
    let slices = events
        .iter()
        .filter(|e| e["ph"] == "X" && Some(&e["pid"]) == cpus_pid.as_ref())
        .count() as u64;
    let poll_ends = stats["events_by_kind"]["poll_end"].as_u64().unwrap_or(0);
    let cpus = stats["cpus"].as_u64().unwrap_or(0);
    Ok([
        (
            "lucid profile names the CPU-bound guest the busiest task",
            top == "hasher",
            format!("top: {top:?}"),
        ),
        (
            // A console that connects late may see each CPU's first poll end without
            // its start: at most one poll per CPU has no slice.
            "lucid export --perfetto has a CPU-track slice for every poll",
            slices <= poll_ends && slices + cpus >= poll_ends && slices > 0,
            format!("{slices} slices, {poll_ends} poll ends, {cpus} CPUs"),
        ),
    ])
}

/// What the demo's guests must have done in a `lucid stats --json` summary.
fn wasm_demo_checks(stats: &serde_json::Value) -> [(&'static str, bool, String); 11] {
    let empty = Vec::new();
    let wasm = stats["wasm"].as_array().unwrap_or(&empty);
    fn of<'a>(wasm: &'a [serde_json::Value], module: &'a str) -> impl Iterator<Item = &'a serde_json::Value> {
        wasm.iter().filter(move |w| w["module"] == module)
    }
    let of = |module: &'static str| of(wasm, module);
    let state_of = |module: &'static str| {
        of(module)
            .map(|w| w["state"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    let calls = |module: &'static str, hostcall: &str| -> u64 {
        of(module)
            .map(|w| w["hostcalls"][hostcall]["calls"].as_u64().unwrap_or(0))
            .sum()
    };
    let grows: u64 = of("grower").map(|w| w["memory_grows"].as_u64().unwrap_or(0)).sum();
    let exited_shorts = state_of("short").iter().filter(|s| *s == "exited(3)").count();
    let hasher_slices: u64 = of("hasher").map(|w| w["slices"].as_u64().unwrap_or(0)).sum();
    let snapshots = stats["events_by_kind"]["wasm_instance_snapshot"].as_u64().unwrap_or(0);
    let task_snapshots = stats["events_by_kind"]["task_snapshot"].as_u64().unwrap_or(0);
    let unnamed = stats["tasks_unnamed"].as_u64().unwrap_or(u64::MAX);
    let unnamed_alive = stats["tasks_unnamed_unfinished"].as_u64().unwrap_or(u64::MAX);
    let depth_samples = stats["events_by_kind"]["run_queue_depth"].as_u64().unwrap_or(0);
    [
        (
            "a late console learns live instances from the snapshot",
            snapshots >= 5,
            format!("{snapshots} instance snapshots"),
        ),
        (
            // A task that ended between the console connecting and the kernel reading
            // its registry is known only from the events still in flight; every task
            // alive at the snapshot must be named by it.
            "a late console learns live tasks from the snapshot: every unfinished task has a name",
            task_snapshots >= snapshots && unnamed_alive == 0,
            format!(
                "{task_snapshots} task snapshots; {unnamed} tasks known only from events, {unnamed_alive} of them unfinished"
            ),
        ),
        (
            // One sample per busy CPU per 10 ms window.
            "the kernel samples every CPU's run-queue depth",
            depth_samples >= 400,
            format!("{depth_samples} run-queue depth samples in 10 s"),
        ),
        (
            "at least 6 instances",
            wasm.len() >= 6,
            format!("{} instances", wasm.len()),
        ),
        (
            "ping and pong exchange messages",
            calls("ping", "chan_send") >= 100 && calls("pong", "chan_send") >= 100,
            format!(
                "ping sent {}, pong sent {}",
                calls("ping", "chan_send"),
                calls("pong", "chan_send")
            ),
        ),
        (
            "the hasher is preempted every slice",
            hasher_slices >= 100,
            format!("{hasher_slices} slices"),
        ),
        (
            "the sleeper sleeps",
            calls("sleeper", "sleep") >= 20,
            format!("{} sleeps", calls("sleeper", "sleep")),
        ),
        (
            "the grower's memory grows in steps",
            grows >= 5,
            format!("{grows} growths"),
        ),
        (
            "the trapper traps out of bounds",
            state_of("trapper") == ["trapped(memory_out_of_bounds)"],
            format!("{:?}", state_of("trapper")),
        ),
        (
            "the spinner is killed at its budget",
            state_of("spinner").iter().any(|s| s.starts_with("killed")),
            format!("{:?}", state_of("spinner")),
        ),
        (
            "short-lived instances exit",
            exited_shorts >= 5,
            format!("{exited_shorts} exited(3)"),
        ),
    ]
}

/// The console's metrics scraped by a real Prometheus, and every dashboard query on
/// them (see `metrics_check`).
fn metrics_end_to_end(tally: &mut Tally, image: &artifacts::BootImage) {
    println!("metrics end to end: lucid live --metrics scraped by Prometheus; every dashboard query");
    let lucid = artifacts::target_dir().join("debug").join("lucid");
    let result =
        process::run(cargo().args(["build", "-p", "lucid-console"])).and_then(|()| metrics_check::run(image, &lucid));
    match result {
        Ok(checks) => {
            for c in checks {
                if !c.ok {
                    eprintln!("metrics e2e: {}: {}", c.name, c.detail);
                }
                println!("metrics e2e {}: {}", if c.ok { "PASS" } else { "FAIL" }, c.name);
                tally.record(&format!("metrics e2e: {}", c.name), c.ok);
            }
        }
        Err(e) => {
            eprintln!("error: metrics end to end: {e:#}");
            tally.record("metrics end to end runs to completion", false);
        }
    }
}

/// Records named checks `(name, passed, detail shown on failure)` under `label`.
fn record_checks<const N: usize>(tally: &mut Tally, label: &str, checks: [(&str, bool, String); N]) {
    for (name, ok, detail) in checks {
        if !ok {
            eprintln!("{label}: {name}: {detail}");
        }
        println!("{label} {}: {name}", if ok { "PASS" } else { "FAIL" });
        tally.record(&format!("{label}: {name}"), ok);
    }
}

/// The trace stream end to end: a burst of tasks read by a reader that keeps up, and
/// a steady workload read by a reader that stalls for seconds.
fn trace_end_to_end(tally: &mut Tally, image: &artifacts::BootImage) -> Result<()> {
    println!("trace end to end: burst of 1200 tasks, reader keeps up");
    let (seen, crc, _, outcome) = trace_check::run(
        image,
        trace_link::Link::Virtio,
        "burst:1200",
        None,
        &[],
        Duration::from_secs(180),
    )?;
    let unfinished: Vec<_> = seen.spawned.difference(&seen.completed).take(5).collect();
    let checks = [
        (
            "kernel ends the run cleanly",
            outcome == Outcome::Success,
            format!("{outcome}"),
        ),
        (
            "at least 1000 tasks, each spawn has a completion",
            seen.spawned.len() >= 1000 && unfinished.is_empty(),
            format!("{} spawned, never completed: {unfinished:?}", seen.spawned.len()),
        ),
        (
            "tasks ran on all 4 CPUs",
            seen.cpus_with_polls.len() == 4,
            format!("{:?}", seen.cpus_with_polls),
        ),
        (
            "every PollStart has its PollEnd on the same CPU",
            seen.poll_mismatches.is_empty(),
            format!("{:?}", seen.poll_mismatches.iter().take(3).collect::<Vec<_>>()),
        ),
        (
            "no sequence gaps, CRC errors or bad frames",
            seen.gaps == 0 && crc == 0 && seen.errors.is_empty(),
            format!(
                "{} gaps, {crc} CRC errors, {:?}",
                seen.gaps,
                seen.errors.iter().take(3).collect::<Vec<_>>()
            ),
        ),
        (
            "no losses while the reader keeps up",
            seen.total_lost() == 0,
            format!("{} lost", seen.total_lost()),
        ),
        (
            "timestamps monotonic per stream",
            seen.non_monotonic == 0,
            format!("{} steps back", seen.non_monotonic),
        ),
        (
            "decoded + lost = produced (kernel counters)",
            seen.accounting_errors().is_empty(),
            format!("{:?}", seen.accounting_errors()),
        ),
    ];
    record_checks(tally, "trace e2e", checks);
    println!("trace e2e: {} events, {} tasks", seen.events, seen.spawned.len());

    println!("trace end to end: 8 s soak, reader stalls for 4 s");
    let stall = trace_check::Stall {
        after: Duration::from_secs(2),
        length: Duration::from_secs(4),
    };
    let (seen, crc, beats_after, outcome) = trace_check::run(
        image,
        trace_link::Link::Virtio,
        "soak:8",
        Some(stall),
        &[],
        Duration::from_secs(180),
    )?;
    let checks = [
        (
            "kernel ends the run cleanly",
            outcome == Outcome::Success,
            format!("{outcome}"),
        ),
        (
            "heartbeats continue after the stall",
            beats_after > 0,
            format!("{beats_after} heartbeats"),
        ),
        (
            "the stall made the kernel drop events",
            seen.total_lost() > 0,
            "0 lost".to_string(),
        ),
        (
            "losses are exact: decoded + lost = produced",
            seen.accounting_errors().is_empty(),
            format!("{:?}", seen.accounting_errors()),
        ),
        (
            "no gaps or CRC errors (losses are whole, counted frames)",
            seen.gaps == 0 && crc == 0,
            format!("{} gaps, {crc} CRC errors", seen.gaps),
        ),
    ];
    record_checks(tally, "trace stall", checks);
    println!(
        "trace stall: {} events decoded, {} lost",
        seen.events,
        seen.total_lost()
    );

    println!("trace end to end: the host pauses the stream for 2 s, then resumes it");
    // The drain logs (INFO) when the host connects, pauses and resumes; the filter
    // silences its target after the first of those.
    let quiet = lucid_protocol::Message::SetLevelFilter(lucid_protocol::SetLevelFilter {
        target: "lucid_kernel::trace::drain",
        filter: lucid_protocol::LevelFilter::Off,
    });
    let commands = [
        (Duration::from_millis(1000), quiet),
        (Duration::from_millis(1500), lucid_protocol::Message::Pause),
        (Duration::from_millis(3500), lucid_protocol::Message::Resume),
    ];
    let (seen, crc, beats_after, outcome) = trace_check::run(
        image,
        trace_link::Link::Virtio,
        "soak:6 log=info",
        None,
        &commands,
        Duration::from_secs(180),
    )?;
    let texts = &seen.trace_texts;
    let logged = |needle: &str| texts.iter().any(|t| t.contains(needle));
    let checks = [
        (
            "kernel ends the run cleanly",
            outcome == Outcome::Success,
            format!("{outcome}"),
        ),
        (
            "events dropped while paused are counted",
            seen.total_lost() > 0,
            "0 lost".to_string(),
        ),
        (
            "heartbeats arrive after resume",
            beats_after > 0,
            format!("{beats_after} heartbeats"),
        ),
        (
            "losses are exact: decoded + lost = produced",
            seen.accounting_errors().is_empty(),
            format!("{:?}", seen.accounting_errors()),
        ),
        ("no CRC errors", crc == 0, format!("{crc} CRC errors")),
        (
            "kernel logs arrive as trace events; a target filter silences them",
            logged("host connected") && !logged("paused") && !logged("resumed"),
            format!("{texts:?}"),
        ),
    ];
    record_checks(tally, "trace pause", checks);

    println!("trace end to end: no virtio-serial device, fallback to COM2");
    let (seen, crc, _, outcome) = trace_check::run(
        image,
        trace_link::Link::Com2,
        "burst:200",
        None,
        &[],
        Duration::from_secs(180),
    )?;
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

/// `lucid live` attached to a booted kernel, headless: the state it built must match
/// `lucid stats` on the recording it made of the same stream.
fn console_end_to_end(tally: &mut Tally, image: &artifacts::BootImage) -> Result<()> {
    println!("console end to end: lucid live on a booted kernel vs lucid stats on its recording");
    process::run(cargo().args(["build", "-p", "lucid-console"]))?;
    let lucid = artifacts::target_dir().join("debug").join("lucid");
    let recording = artifacts::target_dir().join("freestanding").join("console-e2e.lucid");
    let (mut child, stream) = trace_link::boot(
        image,
        "console-e2e",
        "log=warn workload=burst:600",
        trace_link::Link::Virtio,
    )?;
    // The console connects by itself once this probe has let go of the socket.
    drop(stream);
    let socket = trace_link::socket_path("console-e2e");
    let mut live = Command::new(&lucid);
    live.arg("live")
        .arg("--socket")
        .arg(&socket)
        .args(["--headless-for", "20", "--record"])
        .arg(&recording);
    process::show(&live);
    let live_out = live.stderr(Stdio::inherit()).output().context("run lucid live")?;
    let outcome = qemu_cmd::wait_until(&mut child, Instant::now() + Duration::from_secs(30))?;
    let mut stats = Command::new(&lucid);
    stats.arg("stats").arg(&recording).arg("--json");
    process::show(&stats);
    let stats_out = stats.output().context("run lucid stats")?;
    let parse = |bytes: &[u8]| -> Option<serde_json::Value> {
        let mut v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        // A live stream has no file to be damaged; everything else must agree.
        v.as_object_mut()?.remove("damage");
        Some(v)
    };
    let (live_json, stats_json) = (parse(&live_out.stdout), parse(&stats_out.stdout));
    let tasks = live_json.as_ref().and_then(|v| v["tasks"].as_u64()).unwrap_or(0);
    let ok = outcome == Outcome::Success && live_json.is_some() && live_json == stats_json && tasks >= 600;
    if !ok {
        eprintln!("console e2e: QEMU {outcome}; {tasks} tasks");
        eprintln!("  live:  {}", String::from_utf8_lossy(&live_out.stdout).trim());
        eprintln!("  stats: {}", String::from_utf8_lossy(&stats_out.stdout).trim());
    }
    println!(
        "console e2e {}: the live state matches lucid stats on the recording ({tasks} tasks)",
        if ok { "PASS" } else { "FAIL" }
    );
    tally.record(
        "console e2e: lucid live on the kernel matches lucid stats on its recording",
        ok,
    );
    Ok(())
}
