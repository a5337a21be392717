//! The in-QEMU suite: the test kernel (`--features ktest`) runs its tests and reports
//! each on COM1 in a line protocol ([`report`]); a test that faults, panics or hangs
//! ends its boot, and the next boot starts after it. Also the harness's own self-test
//! ([`selftest`]) and the host's check of the streaming test's bytes ([`stream`]).

mod report;
mod selftest;
mod stream;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read},
    process::Stdio,
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use self::report::{Report, parse, pretty_detail};
pub use self::selftest::harness_selftest;
use super::Tally;
use crate::{
    artifacts::BootImage,
    process,
    qemu_cmd::{self, Config, Outcome},
};

/// Where one in-QEMU suite runs and what it selects.
pub struct Suite<'a> {
    pub smp: u32,
    pub filter: Option<&'a str>,
    /// Extra kernel command-line options.
    pub extra: &'a str,
    pub per_test: Duration,
}

/// Result of one in-QEMU test: name, passed, failure reason.
type KtestResults = BTreeMap<usize, (String, bool, String)>;

/// Runs the suite, records each test, and when the streaming test passed, checks the
/// bytes it sent to the host.
pub fn suite_and_stream(tally: &mut Tally, image: &BootImage, suite: &Suite<'_>) -> Result<()> {
    let _ = std::fs::remove_file(stream::trace_file());
    let results = ktests(tally, image, suite)?;
    for (name, ok, _) in results.values() {
        tally.record(&format!("ktest {name}"), *ok);
    }
    if results
        .values()
        .any(|(name, ok, _)| name.ends_with(stream::STREAM_TEST) && *ok)
    {
        let verdict = stream::verify(&stream::trace_file());
        if let Err(e) = &verdict {
            eprintln!("virtio-serial stream check: {e}");
        }
        tally.record("virtio-serial stream arrives intact on the host", verdict.is_ok());
    }
    Ok(())
}

/// Boots the test kernel as often as needed: a test that faults, panics or hangs
/// ends that boot, and the next boot starts after it.
fn ktests(tally: &mut Tally, image: &BootImage, suite: &Suite<'_>) -> Result<KtestResults> {
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
            extra: qemu_cmd::trace_port_args(&format!(
                "file,id=trace,path={},append=on",
                stream::trace_file().display()
            )),
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
