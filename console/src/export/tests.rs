use std::collections::BTreeMap;

use lucid_protocol::testdata::{Workload, generate};
use serde_json::Value;

use super::*;
use crate::replay::tests::TempDir;
use crate::state::Config;
use crate::window::{Window, scan};

fn recording(dir: &TempDir) -> std::path::PathBuf {
    dir.file(
        "e.lucid",
        &generate(&Workload {
            cpus: 3,
            tasks: 120,
            polls_per_task: 4,
            wasm_instances: 2,
            loss: 4,
            frame_buffer: 512,
            seed: 8,
        })
        .recording(600),
    )
}

fn perfetto(path: &std::path::Path, window: Window) -> Vec<Value> {
    let (w, scan) = scan(path, Config::default(), window, |s| {
        PerfettoWriter::new(Vec::new(), s.state, s.from_ts, s.origin_ts).expect("vec")
    })
    .expect("scan");
    let bytes = w.finish(scan.to_ts).expect("vec");
    let doc: Value = serde_json::from_slice(&bytes).expect("valid JSON");
    doc["traceEvents"].as_array().expect("traceEvents").clone()
}

#[test]
fn perfetto_events_are_well_formed() {
    let dir = TempDir::new();
    let events = perfetto(&recording(&dir), Window::default());
    let ph = |e: &Value| e["ph"].as_str().expect("ph").to_string();
    let mut by_ph: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        *by_ph.entry(ph(e)).or_default() += 1;
    }
    for p in ["M", "X", "b", "e", "s", "f", "C", "i"] {
        assert!(by_ph.get(p).copied().unwrap_or(0) > 0, "no {p} events: {by_ph:?}");
    }
    // Every slice has a duration, and slices of a track start in order.
    let mut last: BTreeMap<(u64, u64), f64> = BTreeMap::new();
    for e in events.iter().filter(|e| ph(e) == "X") {
        let dur = e["dur"].as_f64().expect("X has dur");
        assert!(dur >= 0.0);
        let track = (e["pid"].as_u64().expect("pid"), e["tid"].as_u64().expect("tid"));
        let ts = e["ts"].as_f64().expect("ts");
        let prev = last.insert(track, ts + dur).unwrap_or(0.0);
        assert!(
            ts >= prev - 1e-6,
            "overlapping or unordered slices on {track:?}: {ts} after end {prev}"
        );
    }
    // Async begins and ends pair up per id, begin first.
    let mut open: BTreeMap<u64, f64> = BTreeMap::new();
    for e in &events {
        let id = e["id"].as_u64();
        match ph(e).as_str() {
            "b" => assert!(open.insert(id.expect("id"), e["ts"].as_f64().expect("ts")).is_none()),
            "e" => {
                let b = open.remove(&id.expect("id")).expect("e after its b");
                assert!(e["ts"].as_f64().expect("ts") >= b);
            }
            _ => {}
        }
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
    // Flows pair up: one start and one finish per id, the finish not before the start.
    let mut flows: BTreeMap<u64, (Option<f64>, Option<f64>)> = BTreeMap::new();
    for e in &events {
        let ts = e["ts"].as_f64();
        match ph(e).as_str() {
            "s" => flows.entry(e["id"].as_u64().expect("id")).or_default().0 = ts,
            "f" => flows.entry(e["id"].as_u64().expect("id")).or_default().1 = ts,
            _ => {}
        }
    }
    for (id, (s, f)) in flows {
        let (s, f) = (s.expect("start"), f.expect("finish"));
        assert!(f >= s, "flow {id}");
    }
    // Counters of one name never go back in time.
    let mut counters: BTreeMap<String, f64> = BTreeMap::new();
    for e in events.iter().filter(|e| ph(e) == "C") {
        let ts = e["ts"].as_f64().expect("ts");
        let prev = counters
            .insert(e["name"].as_str().expect("name").into(), ts)
            .unwrap_or(0.0);
        assert!(ts >= prev, "{e}");
    }
}

#[test]
fn a_perfetto_window_holds_only_its_time_range() {
    let dir = TempDir::new();
    let path = recording(&dir);
    let all = perfetto(&path, Window::default());
    let end_us = all
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| e["ts"].as_f64().expect("ts") + e["dur"].as_f64().expect("dur"))
        .fold(0.0, f64::max);
    let (from, to) = ((end_us * 250.0) as u64, (end_us * 500.0) as u64);
    let part = perfetto(
        &path,
        Window {
            from_ns: Some(from),
            to_ns: Some(to),
        },
    );
    let xs: Vec<_> = part.iter().filter(|e| e["ph"] == "X").collect();
    assert!(!xs.is_empty() && xs.len() < all.iter().filter(|e| e["ph"] == "X").count());
    for e in xs {
        let (ts, dur) = (e["ts"].as_f64().expect("ts"), e["dur"].as_f64().expect("dur"));
        assert!(
            ts * 1000.0 >= from as f64 - 1.0 && (ts + dur) * 1000.0 <= to as f64 + 1.0,
            "{e}"
        );
    }
}

#[test]
fn folded_stacks_sum_to_the_busy_time() {
    let dir = TempDir::new();
    let path = recording(&dir);
    let (folded, scan) = scan(&path, Config::default(), Window::default(), |s| {
        Folded::new(s.state, s.from_ts)
    })
    .expect("scan");
    let busy: u64 = scan.end.cpus.values().map(|c| c.busy_ticks.get()).sum();
    assert_eq!(folded.stacks().values().sum::<u64>(), busy);
    let mut out = Vec::new();
    folded.write(&mut out, scan.end.clock()).expect("vec");
    let text = String::from_utf8(out).expect("utf-8");
    let mut lines = 0;
    for line in text.lines() {
        let (stack, n) = line.rsplit_once(' ').expect("stack and count");
        assert_eq!(stack.split(';').count(), 4, "{line}");
        assert!(stack.starts_with("cpu "), "{line}");
        n.parse::<u64>().expect("count");
        lines += 1;
    }
    assert_eq!(lines, folded.stacks().len());
}

#[test]
fn perfetto_carries_a_wait_slice_per_wait_named_by_its_resource() {
    use lucid_protocol::{
        Event, Item, Location, Message, ResourceCreated, ResourceId, ResourceKind, Ring, StreamId, TaskId, WaitBegin,
        WaitEnd, WaitOp, WaitOutcome,
    };
    let state = crate::state::State::new();
    let mut w = PerfettoWriter::new(Vec::new(), &state, None, 0).expect("vec");
    let ev = |ts, message| Item::Event {
        stream: StreamId::new(0, Ring::Task),
        seq: 0,
        event: Event { ts, message },
    };
    let created = Message::ResourceCreated(ResourceCreated {
        id: ResourceId(12),
        kind: ResourceKind::Channel,
        name: "ping",
        location: Location {
            file: "w.rs",
            line: 1,
            column: 1,
        },
        capacity: Some(1),
    });
    let begin = |task| {
        Message::WaitBegin(WaitBegin {
            task: TaskId(task),
            resource: ResourceId(12),
            op: WaitOp::Recv,
        })
    };
    w.observe(&ev(1_000, created));
    w.observe(&ev(2_000, begin(5)));
    w.observe(&ev(2_500, begin(6)));
    w.observe(&ev(
        3_000,
        Message::WaitEnd(WaitEnd {
            task: TaskId(5),
            resource: ResourceId(12),
            outcome: WaitOutcome::Ready,
        }),
    ));
    let bytes = w.finish(Some(4_000)).expect("vec");
    let doc: Value = serde_json::from_slice(&bytes).expect("valid JSON");
    let waits: Vec<(String, String, u64)> = doc["traceEvents"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["cat"] == "wait")
        .map(|e| {
            (
                e["ph"].as_str().unwrap_or("").to_string(),
                e["name"].as_str().unwrap_or("").to_string(),
                e["tid"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let name = "wait chan#12 ping recv".to_string();
    assert_eq!(
        waits,
        [
            ("b".to_string(), name.clone(), 5),
            ("b".to_string(), name.clone(), 6),
            ("e".to_string(), name.clone(), 5),
            // Still waiting at the end: closed there.
            ("e".to_string(), name, 6),
        ]
    );
}
