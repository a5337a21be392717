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
            ..Workload::default()
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
    // The count of tasks waiting on channels follows the waits.
    let waiting: Vec<u64> = doc["traceEvents"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["ph"] == "C" && e["name"] == "tasks waiting")
        .map(|e| e["args"]["chan"].as_u64().expect("a chan count"))
        .collect();
    assert_eq!(waiting, [1, 2, 1]);
}

/// The protobuf export of `path` and the Chrome JSON's size for the same window.
fn perfetto_proto(path: &std::path::Path, window: Window) -> (Vec<u8>, usize) {
    let ((proto, json), scanned) = scan(path, Config::default(), window, |s| {
        (
            PerfettoProtoWriter::new(Vec::new(), s.state, s.from_ts, s.origin_ts).expect("vec"),
            PerfettoWriter::new(Vec::new(), s.state, s.from_ts, s.origin_ts).expect("vec"),
        )
    })
    .expect("scan");
    (
        proto.finish(scanned.to_ts).expect("vec"),
        json.finish(scanned.to_ts).expect("vec").len(),
    )
}

/// Counts the `PollStart`s of each CPU's executor streams.
#[derive(Default)]
struct PollStarts(BTreeMap<u32, u64>);

impl crate::window::Observer for PollStarts {
    fn observe(&mut self, item: &lucid_protocol::Item<'_>) {
        if let Some((cpu, _, lucid_protocol::Message::PollStart { .. })) = crate::profile::executor_event(item) {
            *self.0.entry(cpu).or_default() += 1;
        }
    }
}

#[test]
fn the_perfetto_proto_decodes_back_to_the_recordings_polls() {
    use perfetto_protos::trace::Trace;
    use perfetto_protos::track_event::track_event::Type;
    use protobuf::Message as _;

    use super::perfetto_proto::{ROOT_CPUS, ROOT_TASKS, TrackKind, track_uuid};

    let dir = TempDir::new();
    let path = recording(&dir);
    let (bytes, json_len) = perfetto_proto(&path, Window::default());
    let trace = Trace::parse_from_bytes(&bytes).expect("a Trace");
    // A fifth on the demo recording; this small one has shorter names and fewer polls
    // per task, so the JSON it is compared with is leaner.
    assert!(
        bytes.len() * 3 <= json_len,
        "{} bytes of protobuf vs {json_len} of JSON",
        bytes.len()
    );

    let (starts, _) = scan(&path, Config::default(), Window::default(), |_| PollStarts::default()).expect("scan");
    let polls: u64 = starts.0.values().sum();
    assert!(polls > 400, "{polls}");

    let mut parent = BTreeMap::new();
    let mut names = BTreeMap::new();
    // Flow ids in flight (an ended one may be used again).
    let mut flows_started = std::collections::BTreeSet::new();
    let (mut flows_ended, mut counters) = (0, 0);
    // (track, time, file order, +1 begin / -1 end)
    let mut edges = Vec::new();
    let mut base = None::<u64>;
    for (i, p) in trace.packet.iter().enumerate() {
        assert_eq!(p.trusted_packet_sequence_id(), 1);
        if p.has_clock_snapshot() {
            assert!(
                p.trace_packet_defaults.is_some(),
                "the incremental clock is the default"
            );
            base = Some(0);
            continue;
        }
        if p.has_track_descriptor() {
            let d = p.track_descriptor();
            assert!(!d.name().is_empty());
            if d.has_parent_uuid() {
                parent.insert(d.uuid(), (d.parent_uuid(), d.counter.is_some()));
            }
            continue;
        }
        for n in &p.interned_data.event_names {
            assert!(
                names.insert(n.iid(), n.name().to_string()).is_none(),
                "iid {} twice",
                n.iid()
            );
        }
        let e = p.track_event();
        let t = if p.timestamp_clock_id() == 6 {
            p.timestamp()
        } else {
            let t = base.expect("the clock snapshot comes first") + p.timestamp();
            base = Some(t);
            t
        };
        assert!(
            parent.contains_key(&e.track_uuid()) || e.track_uuid() < 8,
            "undescribed track"
        );
        if e.has_name_iid() {
            assert!(
                names.contains_key(&e.name_iid()),
                "name {} used before it is interned",
                e.name_iid()
            );
        }
        for id in &e.terminating_flow_ids {
            assert!(flows_started.remove(id), "flow {id} ends before it starts");
            flows_ended += 1;
        }
        for &id in &e.flow_ids {
            assert!(flows_started.insert(id), "flow {id} starts twice");
        }
        match e.type_() {
            Type::TYPE_SLICE_BEGIN => edges.push((e.track_uuid(), t, i, 1i64)),
            Type::TYPE_SLICE_END => edges.push((e.track_uuid(), t, i, -1)),
            Type::TYPE_COUNTER => counters += 1,
            _ => {}
        }
    }
    assert!(
        flows_ended > 0 && counters > 0,
        "{flows_ended} flows, {counters} counters"
    );
    assert_eq!(
        parent.get(&track_uuid(TrackKind::Count, 0)),
        Some(&(ROOT_TASKS, true)),
        "a live-tasks counter track in the Tasks group"
    );

    // Per CPU: one slice per poll the recording started there.
    for (&cpu, &n) in &starts.0 {
        let uuid = track_uuid(TrackKind::Cpu, u64::from(cpu));
        assert_eq!(parent.get(&uuid), Some(&(ROOT_CPUS, false)));
        let begins = edges.iter().filter(|e| e.0 == uuid && e.3 == 1).count() as u64;
        assert_eq!(begins, n, "cpu {cpu}");
    }
    // Task tracks hold every poll again, plus one lifetime slice per task.
    let task_tracks: Vec<u64> = parent
        .iter()
        .filter(|(_, (p, _))| *p == ROOT_TASKS)
        .map(|(&u, _)| u)
        .collect();
    let task_begins = edges.iter().filter(|e| task_tracks.contains(&e.0) && e.3 == 1).count() as u64;
    assert!(
        task_begins >= polls && task_begins <= polls + task_tracks.len() as u64,
        "{task_begins} task slices for {polls} polls"
    );
    // Slices nest on every track: in time order, never more ends than begins, all closed.
    edges.sort_by_key(|&(track, t, i, _)| (track, t, i));
    let mut depth: BTreeMap<u64, i64> = BTreeMap::new();
    for (track, t, _, d) in &edges {
        let v = depth.entry(*track).or_default();
        *v += d;
        assert!(*v >= 0, "track {track} ends a slice it did not begin at {t}");
    }
    assert!(depth.values().all(|&d| d == 0), "unclosed slices");
}
