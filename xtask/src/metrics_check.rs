//! The console's Prometheus metrics against a real Prometheus: two `lucid live
//! --metrics` consoles (the booted kernel running a finite workload, and a synthetic
//! stream with the message kinds the kernel does not send yet) scraped every second;
//! then every PromQL expression of every dashboard must return data, and the counters
//! Prometheus stored must equal `lucid stats --json` on the consoles' recordings.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    os::unix::net::UnixListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{
    artifacts::{self, BootImage},
    http,
    process::{self, workspace_root},
    prometheus::Prometheus,
    qemu_cmd::{self, Outcome},
    synthetic, trace_link,
};

/// `instance` label of the console attached to the kernel.
const KERNEL: &str = "kernel-e2e";
/// `instance` label of the console reading the synthetic stream.
const SYNTHETIC: &str = "synthetic-e2e";
/// `instance` label of `lucid replay --headless --metrics` on the kernel console's recording.
const REPLAY: &str = "replay-e2e";
/// What the dashboards' interval variables stand for in the checked queries.
const RATE_INTERVAL: &str = "1m";
const INTERVAL: &str = "15s";
const RANGE: &str = "5m";

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

/// A child process killed (and reaped) when dropped, so an early error leaves nothing
/// running.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One PromQL expression of a dashboard.
#[derive(Debug)]
pub struct Expr {
    pub dashboard: String,
    pub panel: String,
    pub expr: String,
}

/// Every `targets[].expr` of every `dashboards/*.json`, with its panel title.
pub fn dashboard_exprs() -> Result<Vec<Expr>> {
    let dir = workspace_root().join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("read {}", f.display()))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", f.display()))?;
        let name = f.file_name().unwrap_or_default().to_string_lossy().to_string();
        walk(&v, &name, "", &mut out);
    }
    Ok(out)
}

fn walk(v: &Value, dashboard: &str, panel: &str, out: &mut Vec<Expr>) {
    match v {
        Value::Object(o) => {
            let panel = o.get("title").and_then(Value::as_str).unwrap_or(panel);
            if let Some(targets) = o.get("targets").and_then(Value::as_array) {
                for t in targets {
                    if let Some(expr) = t.get("expr").and_then(Value::as_str) {
                        out.push(Expr {
                            dashboard: dashboard.to_string(),
                            panel: panel.to_string(),
                            expr: expr.to_string(),
                        });
                    }
                }
            }
            for (k, child) in o {
                if k != "targets" {
                    walk(child, dashboard, panel, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| walk(c, dashboard, panel, out)),
        _ => {}
    }
}

/// `expr` with the dashboard variables replaced by concrete values; an error names a
/// variable left over.
pub fn substitute(expr: &str, instance: &str) -> Result<String> {
    let mut e = expr.to_string();
    for (var, value) in [
        ("__rate_interval", RATE_INTERVAL),
        ("__interval", INTERVAL),
        ("__range", RANGE),
        ("instance", instance),
    ] {
        e = e
            .replace(&format!("${{{var}}}"), value)
            .replace(&format!("${var}"), value);
    }
    if let Some(at) = e.find('$') {
        bail!("unknown dashboard variable at `{}` in {expr}", &e[at..]);
    }
    Ok(e)
}

/// The `lucid_…` metric names `expr` reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("lucid_") {
        let preceded = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if !preceded {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// Starts `lucid live --metrics 127.0.0.1:0` on `args` and returns it with the address
/// it serves on (read from its stderr, which is passed on).
fn console(lucid: &Path, args: &[&str], instance: &str, recording: &Path) -> Result<(Reaped, SocketAddr)> {
    let mut cmd = Command::new(lucid);
    cmd.arg("live")
        .args(args)
        .args([
            "--metrics",
            "127.0.0.1:0",
            "--instance",
            instance,
            "--headless-for",
            "120",
        ])
        .arg("--record")
        .arg(recording);
    serve(cmd, instance)
}

/// Starts `lucid replay RECORDING --headless --metrics ADDR`: the state at the end of
/// the recording, held until killed.
fn replay_console(lucid: &Path, recording: &Path, addr: SocketAddr, instance: &str) -> Result<(Reaped, SocketAddr)> {
    let mut cmd = Command::new(lucid);
    cmd.arg("replay")
        .arg(recording)
        .args(["--headless", "--metrics", &addr.to_string(), "--instance", instance]);
    serve(cmd, instance)
}

/// Runs a console command and returns it with the metrics address it announces.
fn serve(mut cmd: Command, instance: &str) -> Result<(Reaped, SocketAddr)> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    process::show(&cmd);
    let mut child = Reaped(cmd.spawn().context("start lucid live")?);
    let stderr = child.0.stderr.take().context("piped stderr")?;
    let (tx, rx) = mpsc::channel();
    let instance = instance.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line
                .strip_prefix("lucid: metrics at http://")
                .and_then(|l| l.strip_suffix("/metrics"))
            {
                let _ = tx.send(addr.to_string());
            } else {
                eprintln!("lucid ({instance}): {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .context("lucid live did not say where it serves metrics")?;
    Ok((child, addr.parse().with_context(|| format!("metrics address {addr}"))?))
}

/// Serves the synthetic stream to the first client on `socket` that connects within
/// 30 s, then stops listening (the console keeps what it received and retries in vain).
fn serve_synthetic(socket: &Path) -> Result<std::thread::JoinHandle<()>> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).with_context(|| format!("listen on {}", socket.display()))?;
    // Polled, so a console that never connects cannot hang the step.
    listener.set_nonblocking(true)?;
    let wire = synthetic::stream();
    Ok(std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.write_all(&wire);
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }))
}

/// Waits until Prometheus has scraped every target successfully at least twice since
/// `since`.
/// A loopback address with a port nothing listens on now.
fn free_loopback_addr() -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(l.local_addr()?)
}

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

/// `lucid stats --json` of `recording`.
fn stats(lucid: &Path, recording: &Path) -> Result<Value> {
    let mut cmd = Command::new(lucid);
    cmd.arg("stats").arg(recording).arg("--json");
    process::show(&cmd);
    let out = cmd.output().context("run lucid stats")?;
    if !out.status.success() {
        bail!("lucid stats failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    serde_json::from_slice(&out.stdout).context("lucid stats printed no JSON object")
}

/// Counters in Prometheus for `instance` against `lucid stats --json` of its recording.
fn counters_match(prom: &Prometheus, instance: &str, stats: &Value) -> Result<Vec<String>> {
    let total = |metric: &str| -> Result<f64> {
        let r = prom.query(&format!("sum({metric}{{instance=\"{instance}\"}})"))?;
        Ok(r.first().map_or(f64::NAN, |s| s.value))
    };
    let kind = |k: &str| stats["events_by_kind"][k].as_f64().unwrap_or(f64::NAN);
    let field = |k: &str| stats[k].as_f64().unwrap_or(f64::NAN);
    let pairs = [
        ("lucid_tasks_spawned_total", field("tasks")),
        ("lucid_tasks_completed_total", field("tasks_completed")),
        ("lucid_dropped_events_total", field("dropped_events")),
        ("lucid_sequence_gaps_total", field("sequence_gaps")),
        ("lucid_missing_frames_total", field("missing_frames")),
        ("lucid_crc_errors_total", field("crc_errors")),
        ("lucid_malformed_frames_total", field("malformed_frames")),
        ("lucid_events_total", field("events")),
        ("lucid_polls_total", kind("poll_start")),
        ("lucid_wakes_total", kind("wake")),
        ("lucid_steals_total", kind("steal")),
        ("lucid_poll_duration_seconds_count", kind("poll_end")),
    ];
    let mut wrong = Vec::new();
    for (metric, expected) in pairs {
        let got = total(metric)?;
        if got != expected {
            wrong.push(format!("{metric}: Prometheus {got}, lucid stats {expected}"));
        }
    }
    // One memory series per instance; `count` of nothing is no result, not 0.
    let instances = prom.query(&format!("lucid_wasm_memory_bytes{{instance=\"{instance}\"}}"))?;
    if Some(instances.len() as f64) != stats["wasm_instances"].as_f64() {
        wrong.push(format!(
            "wasm instances: Prometheus {}, lucid stats {}",
            instances.len(),
            stats["wasm_instances"]
        ));
    }
    let by_kind = prom.query(&format!("lucid_events_total{{instance=\"{instance}\"}}"))?;
    let kinds = stats["events_by_kind"].as_object().context("events_by_kind")?;
    for (k, n) in kinds {
        let got = by_kind
            .iter()
            .find(|s| s.labels.get("kind") == Some(k))
            .map_or(f64::NAN, |s| s.value);
        if Some(got) != n.as_f64() {
            wrong.push(format!(
                "lucid_events_total{{kind=\"{k}\"}}: Prometheus {got}, lucid stats {n}"
            ));
        }
    }
    Ok(wrong)
}

/// Runs the scenario and returns its checks.
pub fn run(image: &BootImage, lucid: &Path) -> Result<Vec<Check>> {
    let started = Instant::now();
    process::ensure_installed("prometheus", "prometheus")?;
    let exprs = dashboard_exprs()?;
    let dir = artifacts::target_dir().join("freestanding");
    let (kernel_rec, synthetic_rec) = (dir.join("metrics-e2e.lucid"), dir.join("metrics-synthetic.lucid"));
    let synthetic_sock = trace_link::socket_path("metrics-synthetic");
    let server = serve_synthetic(&synthetic_sock)?;
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
    let (_kernel_console, kernel_addr) = console(
        lucid,
        &["--socket", &kernel_sock.to_string_lossy()],
        KERNEL,
        &kernel_rec,
    )?;
    let (_synthetic_console, synthetic_addr) = console(
        lucid,
        &["--socket", &synthetic_sock.to_string_lossy()],
        SYNTHETIC,
        &synthetic_rec,
    )?;
    // The replay console serves the kernel console's recording once it is complete;
    // Prometheus knows its address from the start.
    let replay_addr = free_loopback_addr()?;
    let prom = Prometheus::start("metrics-e2e-prometheus", &[kernel_addr, synthetic_addr, replay_addr])?;
    let outcome = qemu_cmd::wait_until(&mut qemu.0, Instant::now() + Duration::from_secs(90))?;
    let _ = server.join();
    // The consoles publish what they have within 0.2 s of the link going quiet.
    std::thread::sleep(Duration::from_millis(500));
    let (_replay_console, _) = replay_console(lucid, &kernel_rec, replay_addr, REPLAY)?;
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

    let kernel_stats = stats(lucid, &kernel_rec)?;
    let synthetic_stats = stats(lucid, &synthetic_rec)?;
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
        let wrong = counters_match(&prom, instance, s)?;
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

    // Metrics the kernel sends data for: panels reading only these must show the
    // kernel's data, not just the synthetic stream's.
    let kernel_names: BTreeSet<String> = prom
        .label_values("__name__", &format!("{{instance=\"{KERNEL}\"}}"))?
        .into_iter()
        .collect();
    let mut empty = Vec::new();
    let mut on_kernel = 0;
    for e in &exprs {
        let names = metric_names(&e.expr);
        let mut instances = vec![SYNTHETIC];
        if !names.is_empty() && names.is_subset(&kernel_names) {
            instances.push(KERNEL);
            on_kernel += 1;
        }
        for instance in instances {
            let at = format!("{} / {:?} ({instance})", e.dashboard, e.panel);
            match substitute(&e.expr, instance).and_then(|q| Ok((prom.query(&q)?, q))) {
                Ok((result, q)) if result.is_empty() => empty.push(format!("{at}: no data: {q}")),
                Ok(_) => {}
                Err(err) => empty.push(format!("{at}: {err:#}")),
            }
        }
        if names.is_empty() {
            empty.push(format!(
                "{} / {:?}: reads no lucid_ metric: {}",
                e.dashboard, e.panel, e.expr
            ));
        }
    }
    println!(
        "metrics e2e: {} dashboard expressions queried ({} also on the kernel's data)",
        exprs.len(),
        on_kernel
    );
    checks.push(check(
        "every dashboard expression returns data",
        !exprs.is_empty() && empty.is_empty(),
        if exprs.is_empty() {
            "no expressions found in dashboards/*.json".to_string()
        } else {
            format!("empty results:\n  {}", empty.join("\n  "))
        },
    ));

    if process::on_path("promtool") {
        let mut problems = Vec::new();
        for addr in [kernel_addr, synthetic_addr] {
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
        checks.push(check(
            "promtool check metrics accepts the exposition",
            problems.is_empty(),
            problems.join("; "),
        ));
    }
    println!("metrics e2e: {:.1} s in all", started.elapsed().as_secs_f64());
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_filled_in_and_unknown_ones_named() {
        let e = r#"sum(rate(lucid_polls_total{instance="$instance"}[$__rate_interval])) / ${__range}"#;
        assert_eq!(
            substitute(e, "k").unwrap(),
            r#"sum(rate(lucid_polls_total{instance="k"}[1m])) / 5m"#
        );
        assert_eq!(
            substitute("x{i=\"${instance}\"}[$__interval]", "k").unwrap(),
            "x{i=\"k\"}[15s]"
        );
        let err = substitute("lucid_polls_total{cpu=\"$cpu\"}", "k").unwrap_err();
        assert!(err.to_string().contains("`$cpu\"}`"), "{err}");
    }

    #[test]
    fn metric_names_are_whole_lucid_identifiers() {
        let names = metric_names(
            "histogram_quantile(0.9, sum by (le) (rate(lucid_a_bucket{x=\"y\"}[1m]))) / my_lucid_b + lucid_c",
        );
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["lucid_a_bucket", "lucid_c"]);
    }

    #[test]
    fn every_target_expr_of_nested_panels_is_found_with_its_title() {
        let v: Value = serde_json::from_str(
            r#"{"panels": [
                {"type": "row", "title": "r", "panels": [{"title": "inner", "targets": [{"expr": "a"}, {"refId": "B"}]}]},
                {"title": "outer", "targets": [{"expr": "b"}]}
            ], "templating": {"list": [{"query": "label_values(x, instance)"}]}}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        walk(&v, "d.json", "", &mut out);
        let got: Vec<(&str, &str)> = out.iter().map(|e| (e.panel.as_str(), e.expr.as_str())).collect();
        assert_eq!(got, [("inner", "a"), ("outer", "b")]);
    }

    #[test]
    fn every_dashboard_has_the_datasource_and_instance_variables() {
        let dir = workspace_root().join("dashboards");
        let mut n = 0;
        for f in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
            if f.extension().is_none_or(|x| x != "json") {
                continue;
            }
            n += 1;
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            let vars = v["templating"]["list"].as_array().unwrap();
            let var = |name: &str| {
                vars.iter()
                    .find(|x| x["name"] == name)
                    .unwrap_or_else(|| panic!("{f:?}: no ${name}"))
            };
            assert_eq!(
                (&var("datasource")["type"], &var("datasource")["query"]),
                (&"datasource".into(), &"prometheus".into())
            );
            let instance = var("instance");
            assert_eq!(instance["type"], "query");
            assert_eq!(instance["definition"], "label_values(lucid_events_total, instance)");
            for p in v["panels"].as_array().unwrap() {
                assert_eq!(p["datasource"]["uid"], "${datasource}", "{f:?} {}", p["title"]);
            }
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn the_checked_in_dashboards_have_expressions_and_their_variables() {
        let exprs = dashboard_exprs().unwrap();
        assert!(exprs.len() >= 20, "{}", exprs.len());
        for e in &exprs {
            substitute(&e.expr, "x").unwrap();
            assert!(!metric_names(&e.expr).is_empty(), "{e:?}");
        }
    }
}
