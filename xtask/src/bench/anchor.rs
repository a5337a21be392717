//! The anchors of issue 8's rows 1 and 2: tokio bare and with console-subscriber, and
//! console-subscriber's recording (`bench/tokio-console-anchor`); the spawn_join
//! recording exported as Chrome trace-event JSON by `lucid export --perfetto`; and the
//! rows that hold Lucid's figures against them.

use std::{path::Path, process::Command};

use anyhow::{Context, Result, bail};

use super::row::{Row, figure_of, run_rows};
use crate::{artifacts, process};

/// tokio `current_thread` bare and with console-subscriber, and the size of its
/// recording (`bench/tokio-console-anchor`). console-subscriber needs
/// `--cfg tokio_unstable` for the whole build, so that build has its own target
/// directory and never invalidates the others; the bare baseline is built as the bench
/// program's tokio is, without it, and told the poll counts tokio cannot count then.
pub fn rows(cargo: &str, runs: u32) -> Result<Vec<Row>> {
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
pub struct ChromeJson {
    pub bytes: u64,
    pub events: u64,
}

/// The export at `path`: `lucid export --perfetto` writes one event per line between
/// an opening and a closing line.
/// A task-track poll slice: `lucid export --perfetto` writes every poll twice, on its
/// CPU's track and on its task's track (process 2); the anchor counts each poll once,
/// so the task-track copies are left out.
fn is_task_track_poll(line: &[u8]) -> bool {
    let has = |needle: &[u8]| line.windows(needle.len()).any(|w| w == needle);
    has(br#""ph":"X""#) && has(br#""pid":2,"#)
}

fn chrome_json_size(path: &Path) -> Result<ChromeJson> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("read {}", path.display()))?;
        if n == 0 {
            break;
        }
        if is_task_track_poll(&line) {
            continue;
        }
        bytes += n as u64;
        lines += u64::from(line.ends_with(b"\n"));
    }
    if lines < 3 {
        bail!("{} holds no trace events", path.display());
    }
    Ok(ChromeJson {
        bytes,
        events: lines - 2,
    })
}

pub fn chrome_json(cargo: &str, recording: &Path) -> Result<ChromeJson> {
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
pub fn comparisons(rows: &[Row], chrome: Option<ChromeJson>) -> Vec<Row> {
    let lucid = |name: &str| figure_of(rows, name, |r| r.lucid);
    let anchor = |name: &str| figure_of(rows, name, |r| r.anchor);
    let mut out = Vec::new();
    let mut push = |name: String, l: Option<f64>, a: Option<f64>, unit: &str| {
        if l.is_some() && a.is_some() {
            out.push(Row::new(&name, l, a, unit));
        }
    };
    for w in ["spawn_join", "ping_pong"] {
        // Like for like: Lucid records no channel operations, so console-subscriber is
        // held to its task instrumentation only (resources filtered out); the figure
        // with everything it records stands beside it.
        push(
            format!("trace.{w}.overhead_vs_console_subscriber"),
            lucid(&format!("trace.{w}.overhead_ns_per_poll")),
            anchor(&format!("anchor.console_subscriber_tasks.{w}.overhead_ns_per_poll")),
            "ns/poll",
        );
        push(
            format!("trace.{w}.overhead_vs_console_subscriber_all"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(lines: &[&str]) -> Vec<Row> {
        lines.iter().map(|l| Row::parse(l).unwrap()).collect()
    }

    #[test]
    fn comparisons_put_lucid_beside_its_anchors() {
        let rows = parsed(&[
            r#"{"name":"trace.spawn_join.overhead_ns_per_poll","lucid":40.0,"anchor":null,"ratio":null,"unit":"ns/poll"}"#,
            r#"{"name":"anchor.console_subscriber.spawn_join.overhead_ns_per_poll","lucid":null,"anchor":5000.0,"ratio":null,"unit":"ns/poll"}"#,
            r#"{"name":"anchor.console_subscriber_tasks.spawn_join.overhead_ns_per_poll","lucid":null,"anchor":4000.0,"ratio":null,"unit":"ns/poll"}"#,
            r#"{"name":"trace.ping_pong.overhead_ns_per_poll","lucid":900.0,"anchor":null,"ratio":null,"unit":"ns/poll"}"#,
            r#"{"name":"anchor.console_subscriber.ping_pong.overhead_ns_per_poll","lucid":null,"anchor":9000.0,"ratio":null,"unit":"ns/poll"}"#,
            r#"{"name":"anchor.console_subscriber_tasks.ping_pong.overhead_ns_per_poll","lucid":null,"anchor":3000.0,"ratio":null,"unit":"ns/poll"}"#,
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
        let all = get("trace.ping_pong.overhead_vs_console_subscriber_all");
        assert_eq!((all.anchor, all.ratio, all.met()), (Some(9000.0), Some(0.1), None));
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
        assert_eq!((c.bytes, c.events), (text.len() as u64, 2));
        // A poll on its task's track repeats the CPU track's slice: counted once.
        let cpu = "{\"name\":\"t\",\"ph\":\"X\",\"ts\":1.0,\"dur\":2.0,\"pid\":1,\"tid\":0},\n";
        let task = "{\"name\":\"t\",\"ph\":\"X\",\"ts\":1.0,\"dur\":2.0,\"pid\":2,\"tid\":7},\n";
        let twice = format!("{{\"traceEvents\":[\n{cpu}{task}]}}\n");
        std::fs::write(&path, &twice).unwrap();
        let c = chrome_json_size(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((c.bytes, c.events), ((twice.len() - task.len()) as u64, 1));
    }
}
