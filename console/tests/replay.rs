//! Runs the real `lucid` binary's replay, profile and export commands on generated
//! recordings.

mod common;

use std::path::PathBuf;

use common::lucid;
use lucid_protocol::testdata::{Workload, generate};
use serde_json::Value;

fn write(name: &str) -> PathBuf {
    let g = generate(&Workload {
        cpus: 3,
        tasks: 200,
        polls_per_task: 4,
        wasm_instances: 2,
        loss: 5,
        frame_buffer: 1024,
        seed: 4,
        ..Workload::default()
    });
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("replay-cli-{name}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("r.lucid");
    std::fs::write(&path, g.recording(2048)).expect("write");
    let _ = std::fs::remove_file(dir.join("r.lucid.idx"));
    path
}

fn json(args: &[&str]) -> Value {
    let out = lucid(args);
    assert!(
        out.status.success(),
        "lucid failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn headless_replay_at_the_end_equals_stats() {
    let path = write("headless");
    let p = path.to_str().expect("utf-8");
    let stats = json(&["stats", p, "--json"]);
    let replay = json(&["replay", p, "--headless", "--json"]);
    assert_eq!(replay, stats);
    assert!(PathBuf::from(format!("{p}.idx")).exists(), "the index is written");
    // Half way there is less.
    let half = json(&["replay", p, "--headless", "--json", "--at", "200us"]);
    assert!(half["events"].as_u64() < stats["events"].as_u64());
}

#[test]
fn a_smaller_index_replays_to_the_same_state_and_a_bad_size_is_refused() {
    let path = write("index-size");
    let p = path.to_str().expect("utf-8");
    let full = json(&["replay", p, "--headless", "--json", "--at", "300us"]);
    let small = json(&[
        "replay",
        p,
        "--headless",
        "--json",
        "--at",
        "300us",
        "--index-size",
        "10",
    ]);
    assert_eq!(small, full);
    for bad in ["0", "101", "ten"] {
        let out = lucid(&["replay", p, "--headless", "--index-size", bad]);
        assert!(!out.status.success(), "--index-size {bad} is refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--index-size"), "{err}");
    }
}

#[test]
fn max_tasks_caps_what_a_replay_holds_and_counts_the_rest() {
    let path = write("max-tasks");
    let p = path.to_str().expect("utf-8");
    let full = json(&["replay", p, "--headless", "--json"]);
    assert_eq!(full["tasks_evicted"].as_u64(), Some(0));
    let capped = json(&["replay", p, "--headless", "--json", "--max-tasks", "10"]);
    let evicted = capped["tasks_evicted"].as_u64().expect("a count");
    assert!(evicted > 0, "a cap of 10 evicts: {capped}");
    assert_eq!(capped["events"], full["events"], "every event is still read");
}

#[test]
fn headless_replay_holds_the_state_for_hold_seconds() {
    let path = write("hold");
    let started = std::time::Instant::now();
    let out = lucid(&["replay", path.to_str().expect("utf-8"), "--headless", "--hold", "0.4"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    assert!(String::from_utf8_lossy(&out.stdout).contains("events"));
    let bad = lucid(&["replay", path.to_str().expect("utf-8"), "--hold", "1"]);
    assert!(!bad.status.success(), "--hold needs --headless");
}

#[test]
fn windowed_stats_count_only_the_window() {
    let path = write("window");
    let p = path.to_str().expect("utf-8");
    let all = json(&["stats", p, "--json"]);
    let a = json(&["stats", p, "--json", "--to", "300us"]);
    let b = json(&["stats", p, "--json", "--from", "300us"]);
    let (ea, eb, e) = (a["events"].as_u64(), b["events"].as_u64(), all["events"].as_u64());
    assert!(ea > Some(0) && eb > Some(0));
    assert_eq!(ea.zip(eb).map(|(x, y)| x + y), e, "the two halves add up");
    let bad = lucid(&["stats", p, "--from", "2ms", "--to", "1ms"]);
    assert!(!bad.status.success());
}

#[test]
fn profile_and_export_write_their_formats() {
    let path = write("export");
    let p = path.to_str().expect("utf-8");
    let prof = json(&["profile", p, "--json", "--top", "3"]);
    assert_eq!(prof["longest_polls"].as_array().map(Vec::len), Some(3));
    assert!(prof["tasks"].as_array().is_some_and(|t| !t.is_empty()));
    let text = lucid(&["profile", p, "--top", "3", "--from", "100us", "--to", "400us"]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("tasks by busy time"));
    let dir = path.parent().expect("dir");
    let (j, f) = (dir.join("out.json"), dir.join("out.folded"));
    let out = lucid(&[
        "export",
        p,
        "--perfetto",
        j.to_str().expect("utf-8"),
        "--folded",
        f.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&std::fs::read(&j).expect("json")).expect("valid JSON");
    assert!(doc["traceEvents"].as_array().is_some_and(|e| e.len() > 100));
    let folded = std::fs::read_to_string(&f).expect("folded");
    let total: u64 = folded
        .lines()
        .map(|l| {
            l.rsplit_once(' ')
                .and_then(|(_, n)| n.parse::<u64>().ok())
                .expect("count")
        })
        .sum();
    let busy = prof["busy_ns"].as_u64().expect("busy");
    // Per-line conversion to ns rounds each line down.
    assert!(
        total <= busy && busy - total <= folded.lines().count() as u64,
        "{total} vs {busy}"
    );
    let none = lucid(&["export", p]);
    assert!(!none.status.success(), "a format is required");
}

#[test]
fn export_writes_a_perfetto_protobuf_trace_a_fraction_of_the_json() {
    use perfetto_protos::trace::Trace;
    use perfetto_protos::track_event::track_event::Type;
    use protobuf::Message as _;

    let path = write("export-proto");
    let p = path.to_str().expect("utf-8");
    let dir = path.parent().expect("dir");
    let (j, pb) = (dir.join("out.json"), dir.join("out.perfetto-trace"));
    let out = lucid(&[
        "export",
        p,
        "--perfetto",
        j.to_str().expect("utf-8"),
        "--perfetto-proto",
        pb.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&pb).expect("trace");
    let json_len = std::fs::metadata(&j).expect("json").len() as usize;
    assert!(bytes.len() * 3 <= json_len, "{} vs {json_len}", bytes.len());
    let trace = Trace::parse_from_bytes(&bytes).expect("a Trace");
    let begins = trace
        .packet
        .iter()
        .filter(|p| p.has_track_event() && p.track_event().type_() == Type::TYPE_SLICE_BEGIN)
        .count();
    let doc: Value = serde_json::from_slice(&std::fs::read(&j).expect("json")).expect("valid JSON");
    let polls = doc["traceEvents"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["ph"] == "X")
        .count();
    // Each poll is a slice on its CPU's track and on its task's (the JSON's two X
    // events), plus one lifetime slice per task.
    assert!(begins >= polls, "{begins} slices for {polls} poll events");
}

#[test]
fn damaged_and_foreign_files_fail_in_one_line() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let text = dir.join("replay-not-a-recording.lucid");
    std::fs::write(&text, "hello").expect("write");
    for cmd in ["replay", "profile"] {
        let mut args = vec![cmd, text.to_str().expect("utf-8")];
        if cmd == "replay" {
            args.push("--headless");
        }
        let out = lucid(&args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("not a Lucid recording"), "{err}");
    }
}
