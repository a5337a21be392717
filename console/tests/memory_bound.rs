//! A stream cannot make the state model hold more than `MAX_BYTES_PER_BYTE` times its
//! own size: floods of distinct ids of every kind keyed by the state, decoded and
//! folded, with the heap counted by a counting allocator (one test, so nothing else
//! allocates meanwhile).

use std::alloc::System;

use cap::Cap;
use lucid_console::state::{Config, MAX_BYTES_PER_BYTE, State};
use lucid_protocol::testdata::frame;
use lucid_protocol::{
    Callsite, CallsiteId, CallsiteKind, Decoder, InstanceId, Level, List, Location, Message, Ring, StreamId, TaskId,
    TaskKind, TaskSpawned, Waker, WasmInstanceCreated, WasmTrap,
};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Heap a state may hold whatever the stream: the fixed windows' first chunks, the
/// CPUs a stream may name before its `Hello`.
const SLACK: usize = 4 << 20;

/// Frames of `n` events made by `message(i)` on CPU 0's task stream.
fn wire(n: u64, message: impl Fn(u64) -> Message<'static>) -> Vec<u8> {
    let mut out = Vec::new();
    let ids: Vec<u64> = (0..n).collect();
    for (seq, chunk) in ids.chunks(500).enumerate() {
        let events: Vec<(u64, Message<'static>)> = chunk.iter().map(|&i| (i, message(i))).collect();
        out.extend(frame(StreamId::new(0, Ring::Task), seq as u32, &events));
    }
    out
}

/// Heap bytes the state holds after folding `bytes`, and the state's task count.
fn held_after(bytes: &[u8], config: Config) -> (usize, usize) {
    let before = ALLOCATOR.allocated();
    let mut s = State::with_config(config);
    let mut d = Decoder::new();
    for chunk in bytes.chunks(4096) {
        d.feed(chunk, |item| s.apply(&item));
    }
    d.finish(|item| s.apply(&item));
    drop(d);
    let held = ALLOCATOR.allocated().saturating_sub(before);
    let tasks = s.tasks.len();
    drop(s);
    (held, tasks)
}

fn spawned(i: u64) -> Message<'static> {
    // Distinct names are leaked: the test runs once and they must outlive the wire.
    let name: &'static str = Box::leak(format!("task-{i}").into_boxed_str());
    Message::TaskSpawned(TaskSpawned {
        task: TaskId(i),
        name,
        kind: TaskKind::Kernel,
        location: Location {
            file: "f.rs",
            line: 1,
            column: 1,
        },
        parent: None,
    })
}

#[test]
fn floods_of_distinct_ids_stay_within_the_documented_multiple_of_the_stream() {
    let floods: Vec<(&str, Vec<u8>)> = vec![
        (
            "wakes of new task ids",
            wire(20_000, |i| Message::Wake {
                task: TaskId(i),
                waker: Waker::None,
                by_ref: true,
                self_wake: false,
            }),
        ),
        ("spawns with distinct names", wire(20_000, spawned)),
        (
            "wasm instances",
            wire(4000, |i| {
                Message::WasmInstanceCreated(WasmInstanceCreated {
                    instance: InstanceId(i),
                    task: TaskId(i),
                    module: "m.wasm",
                    memory_pages: 1,
                    fuel_per_slice: 1,
                })
            }),
        ),
        (
            "trap codes",
            [
                wire(1, |_| {
                    Message::WasmInstanceCreated(WasmInstanceCreated {
                        instance: InstanceId(1),
                        task: TaskId(1),
                        module: "m.wasm",
                        memory_pages: 1,
                        fuel_per_slice: 1,
                    })
                }),
                wire(20_000, |i| {
                    Message::WasmTrap(WasmTrap {
                        instance: InstanceId(1),
                        task: TaskId(1),
                        code: i as u32,
                        reason: "",
                    })
                }),
            ]
            .concat(),
        ),
        (
            "callsites",
            wire(20_000, |i| {
                Message::Callsite(Callsite {
                    id: CallsiteId(i),
                    kind: CallsiteKind::Span,
                    level: Level::Info,
                    name: "",
                    target: "",
                    file: "",
                    line: 0,
                    fields: List::Slice(&[]),
                })
            }),
        ),
    ];
    for (what, bytes) in &floods {
        let (held, _) = held_after(bytes, Config::default());
        let ratio = held as f64 / bytes.len() as f64;
        eprintln!("{what}: {} stream bytes, {held} state bytes ({ratio:.0}x)", bytes.len());
        assert!(
            held <= SLACK + MAX_BYTES_PER_BYTE * bytes.len(),
            "{what}: {held} bytes held for {} stream bytes",
            bytes.len()
        );
    }
    // Beyond the cap the state stops growing however long the flood.
    let capped = Config {
        max_tasks: 1000,
        ..Config::default()
    };
    let (small, tasks) = held_after(&floods[1].1, capped);
    assert_eq!(tasks, 1000);
    let (large, tasks) = held_after(&wire(100_000, spawned), capped);
    assert_eq!(tasks, 1000);
    eprintln!("capped at 1000 tasks: {small} bytes after 20k spawns, {large} after 100k");
    assert!(
        large < small + SLACK,
        "{large} bytes after 100k spawns, {small} after 20k"
    );
}
