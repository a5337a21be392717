//! The console's Prometheus metrics against a real Prometheus: two `lucid live
//! --metrics` consoles (the booted kernel running a finite workload, and a synthetic
//! stream with the message kinds the kernel does not send yet, [`synthetic`]) and a
//! `lucid replay --headless --metrics` of the kernel console's recording
//! ([`consoles`]), scraped every second by a throwaway [`prometheus`]; then every
//! PromQL expression of every dashboard must return data ([`dashboards`]), and the
//! counters Prometheus stored must equal `lucid stats --json` on the recordings
//! ([`counters`]).

mod consoles;
mod counters;
mod dashboards;
mod http;
mod prometheus;
mod synthetic;

use std::{
    io::Write,
    net::SocketAddr,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use self::{
    consoles::Reaped,
    prometheus::{Prometheus, free_loopback_addr},
};
use super::{Tally, console_binary};
use crate::{
    artifacts::{self, BootImage},
    process,
    qemu_cmd::{self, Outcome},
    trace_link,
};

/// `instance` label of the console attached to the kernel.
const KERNEL: &str = "kernel-e2e";
/// `instance` label of the console reading the synthetic stream.
const SYNTHETIC: &str = "synthetic-e2e";
/// `instance` label of `lucid replay --headless --metrics` on the kernel console's recording.
const REPLAY: &str = "replay-e2e";

/// One named check and what to show when it fails.
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

fn check(name: &str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.to_string(),
        ok,
        detail: detail.into(),
    }
}

/// The scenario, each of its checks recorded; one that cannot run to the end counts
/// as a failure.
pub fn end_to_end(tally: &mut Tally, image: &BootImage) {
    println!("metrics end to end: lucid live --metrics scraped by Prometheus; every dashboard query");
    match console_binary().and_then(|lucid| run(image, &lucid)) {
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

/// Waits until Prometheus has scraped every target successfully at least twice since
/// `since`.
fn wait_for_scrapes(prom: &Prometheus, since: Instant, targets: usize, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let secs = since.elapsed().as_secs().max(1);
        let ups = prom.query(&format!("sum_over_time(up{{job=\"lucid\"}}[{secs}s])"))?;
        if ups.len() == targets && ups.iter().all(|s| s.value >= 2.0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "Prometheus did not scrape all {targets} consoles twice within {} s: {:?}",
                timeout.as_secs(),
                ups.iter().map(|s| (&s.labels, s.value)).collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs the scenario and returns its checks.
fn run(image: &BootImage, lucid: &Path) -> Result<Vec<Check>> {
    let started = Instant::now();
    process::ensure_installed("prometheus", "prometheus")?;
    let exprs = dashboards::dashboard_exprs()?;
    let dir = artifacts::target_dir().join("freestanding");
    let (kernel_rec, synthetic_rec) = (dir.join("metrics-e2e.lucid"), dir.join("metrics-synthetic.lucid"));
    let synthetic_sock = trace_link::socket_path("metrics-synthetic");
    let server = consoles::serve_synthetic(&synthetic_sock)?;
    let (qemu, probe) = trace_link::boot(
        image,
        "metrics-e2e",
        "log=warn workload=burst:600",
        trace_link::Link::Virtio,
    )?;
    let mut qemu = Reaped(qemu);
    // The console connects by itself once this probe has let go of the socket.
    drop(probe);
    let kernel_sock = trace_link::socket_path("metrics-e2e");
    let (_kernel_console, kernel_addr) = consoles::console(lucid, &kernel_sock, KERNEL, &kernel_rec)?;
    let (_synthetic_console, synthetic_addr) = consoles::console(lucid, &synthetic_sock, SYNTHETIC, &synthetic_rec)?;
    // The replay console serves the kernel console's recording once it is complete;
    // Prometheus knows its address from the start.
    let replay_addr = free_loopback_addr()?;
    let prom = Prometheus::start("metrics-e2e-prometheus", &[kernel_addr, synthetic_addr, replay_addr])?;
    let outcome = qemu_cmd::wait_until(&mut qemu.0, Instant::now() + Duration::from_secs(90))?;
    let _ = server.join();
    // The consoles publish what they have within 0.2 s of the link going quiet.
    std::thread::sleep(Duration::from_millis(500));
    let (_replay_console, _) = consoles::replay_console(lucid, &kernel_rec, replay_addr, REPLAY)?;
    let settled = Instant::now();
    wait_for_scrapes(&prom, settled, 3, Duration::from_secs(30))?;
    println!(
        "metrics e2e: workload done and scraped twice after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut checks = vec![check(
        "the kernel runs its workload to the end",
        outcome == Outcome::Success,
        format!("QEMU: {outcome}"),
    )];

    let kernel_stats = consoles::stats(lucid, &kernel_rec)?;
    let synthetic_stats = consoles::stats(lucid, &synthetic_rec)?;
    let tasks = kernel_stats["tasks"].as_u64().unwrap_or(0);
    checks.push(check(
        "the kernel console received the whole workload",
        tasks >= 600,
        format!("{tasks} tasks"),
    ));
    for (instance, s) in [
        (KERNEL, &kernel_stats),
        (SYNTHETIC, &synthetic_stats),
        (REPLAY, &kernel_stats),
    ] {
        let wrong = counters::counters_match(&prom, instance, s)?;
        checks.push(check(
            &format!("counters in Prometheus equal lucid stats --json ({instance})"),
            wrong.is_empty(),
            wrong.join("; "),
        ));
    }

    let instances = prom.label_values("instance", "lucid_events_total")?;
    checks.push(check(
        "the dashboards' instance variable lists both consoles",
        instances.iter().any(|i| i == KERNEL) && instances.iter().any(|i| i == SYNTHETIC),
        format!("label_values(lucid_events_total, instance) = {instances:?}"),
    ));

    checks.push(dashboards::every_expression_returns_data(&prom, &exprs)?);
    if process::on_path("promtool") {
        checks.push(promtool_accepts(&[kernel_addr, synthetic_addr])?);
    }
    println!("metrics e2e: {:.1} s in all", started.elapsed().as_secs_f64());
    Ok(checks)
}

/// `promtool check metrics` on what each console at `addrs` serves on `/metrics`.
fn promtool_accepts(addrs: &[SocketAddr]) -> Result<Check> {
    let mut problems = Vec::new();
    for &addr in addrs {
        let (_, body) = http::get(addr, "/metrics")?;
        let mut cmd = Command::new("promtool");
        cmd.args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        process::show(&cmd);
        let mut child = cmd.spawn().context("start promtool")?;
        child.stdin.take().context("piped stdin")?.write_all(body.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            problems.push(format!(
                "{addr}: {}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(check(
        "promtool check metrics accepts the exposition",
        problems.is_empty(),
        problems.join("; "),
    ))
}
