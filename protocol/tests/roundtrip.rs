//! Every message kind survives encode → frame → decode, alone, in batches, and through
//! the streaming decoder in arbitrary chunks.

mod common;

use common::{decode_chunks, frame};
use lucid_protocol::*;
use proptest::prelude::*;

/// Raw material a test case builds messages from (messages borrow their strings).
#[derive(Debug, Clone)]
struct Pool {
    n: Vec<u64>,
    s: Vec<String>,
    values: Vec<(u8, u64, f64, usize)>,
}

fn pool() -> impl Strategy<Value = Pool> {
    (
        proptest::collection::vec(prop_oneof![any::<u64>(), 0..300u64, Just(0u64), Just(u64::MAX)], 16),
        proptest::collection::vec(".{0,24}", 4),
        proptest::collection::vec((0..5u8, any::<u64>(), -1.0e300..1.0e300f64, 0..4usize), 0..6),
    )
        .prop_map(|(n, s, values)| Pool { n, s, values })
}

fn values(p: &Pool) -> Vec<Value<'_>> {
    p.values
        .iter()
        .map(|&(k, n, f, s)| match k {
            0 => Value::Bool(n & 1 == 1),
            1 => Value::U64(n),
            2 => Value::I64(n as i64),
            3 => Value::F64(f),
            _ => Value::Str(&p.s[s]),
        })
        .collect()
}

fn build<'a>(kind: MessageKind, p: &'a Pool, vals: &'a [Value<'a>], names: &'a [&'a str]) -> Message<'a> {
    let n = &p.n;
    let s = &p.s;
    let b = |i: usize| n[i] & 1 == 1;
    let loc = Location {
        file: &s[1],
        line: n[5] as u32,
        column: n[6] as u32,
    };
    let opt = |i: usize| (!n[i].is_multiple_of(3)).then_some(n[i + 1]);
    let ring = [Ring::Task, Ring::Interrupt, Ring::Control, Ring::Host][(n[3] % 4) as usize];
    let task_kind = if b(4) { TaskKind::Wasm } else { TaskKind::Kernel };
    let wasm_state = WasmState::ALL[(n[2] % WasmState::ALL.len() as u64) as usize];
    let level = [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error][(n[4] % 5) as usize];
    match kind {
        MessageKind::Hello => Message::Hello(Hello {
            major: n[0] as u16,
            minor: n[1] as u16,
            build_id: &s[0],
            tsc_hz: n[2],
            cpus: n[3] as u32,
            boot_tsc: n[4],
        }),
        MessageKind::Callsite => Message::Callsite(Callsite {
            id: CallsiteId(n[0]),
            kind: if b(1) { CallsiteKind::Span } else { CallsiteKind::Event },
            level,
            name: &s[0],
            target: &s[1],
            file: &s[2],
            line: n[2] as u32,
            fields: List::Slice(names),
        }),
        MessageKind::TaskSpawned => Message::TaskSpawned(TaskSpawned {
            task: TaskId(n[0]),
            name: &s[0],
            kind: task_kind,
            location: loc,
            parent: opt(7).map(TaskId),
        }),
        MessageKind::PollStart => Message::PollStart { task: TaskId(n[0]) },
        MessageKind::PollEnd => Message::PollEnd {
            task: TaskId(n[0]),
            result: match n[1] % 3 {
                0 => PollResult::Pending,
                1 => PollResult::Ready,
                _ => PollResult::PendingWoken,
            },
        },
        MessageKind::Wake => Message::Wake {
            task: TaskId(n[0]),
            waker: match n[1] % 3 {
                0 => Waker::None,
                1 => Waker::Task(TaskId(n[2])),
                _ => Waker::Interrupt(n[2] as u8),
            },
            by_ref: b(3),
            self_wake: b(4),
        },
        MessageKind::WakerClone => Message::WakerClone {
            task: TaskId(n[0]),
            wakers: n[1],
        },
        MessageKind::WakerDrop => Message::WakerDrop {
            task: TaskId(n[0]),
            wakers: n[1],
        },
        MessageKind::JoinWaiting => Message::JoinWaiting {
            task: TaskId(n[0]),
            waiter: TaskId(n[1]),
        },
        MessageKind::TaskCompleted => Message::TaskCompleted {
            task: TaskId(n[0]),
            outcome: [Outcome::Ok, Outcome::Cancelled, Outcome::Panicked][(n[1] % 3) as usize],
        },
        MessageKind::TaskDropped => Message::TaskDropped { task: TaskId(n[0]) },
        MessageKind::Steal => Message::Steal {
            task: TaskId(n[0]),
            from_cpu: n[1] as u32,
            to_cpu: n[2] as u32,
        },
        MessageKind::CpuIdle => Message::CpuIdle,
        MessageKind::CpuBusy => Message::CpuBusy,
        MessageKind::RunQueueDepth => Message::RunQueueDepth { depth: n[0] as u32 },
        MessageKind::TraceEvent => Message::TraceEvent(TraceEvent {
            callsite: CallsiteId(n[0]),
            span: opt(1).map(SpanId),
            values: List::Slice(vals),
        }),
        MessageKind::SpanNew => Message::SpanNew(SpanNew {
            span: SpanId(n[0]),
            callsite: CallsiteId(n[1]),
            parent: opt(2).map(SpanId),
            values: List::Slice(vals),
        }),
        MessageKind::SpanEnter => Message::SpanEnter { span: SpanId(n[0]) },
        MessageKind::SpanExit => Message::SpanExit { span: SpanId(n[0]) },
        MessageKind::SpanClose => Message::SpanClose { span: SpanId(n[0]) },
        MessageKind::Loss => Message::Loss {
            cpu: n[0] as u32,
            ring,
            count: n[1],
        },
        MessageKind::Heartbeat => Message::Heartbeat,
        MessageKind::EventCounts => Message::EventCounts {
            cpu: n[0] as u32,
            ring,
            produced: n[1],
            dropped: n[2],
        },
        MessageKind::WasmInstanceCreated => Message::WasmInstanceCreated(WasmInstanceCreated {
            instance: InstanceId(n[0]),
            task: TaskId(n[1]),
            module: &s[0],
            memory_pages: n[2] as u32,
            fuel_per_slice: n[3],
        }),
        MessageKind::WasmStateChanged => Message::WasmStateChanged {
            instance: InstanceId(n[0]),
            state: wasm_state,
            detail: n[1],
        },
        MessageKind::WasmMemoryGrow => Message::WasmMemoryGrow {
            instance: InstanceId(n[0]),
            old_pages: n[1] as u32,
            new_pages: n[2] as u32,
        },
        MessageKind::WasmPoll => Message::WasmPoll {
            instance: InstanceId(n[0]),
            fuel: n[1],
            slices: n[2] as u32,
        },
        MessageKind::WasmHostcalls => Message::WasmHostcalls {
            instance: InstanceId(n[0]),
            hostcall: n[1] as u32,
            calls: n[2],
            ticks: n[3],
        },
        MessageKind::WasmTrap => Message::WasmTrap(WasmTrap {
            instance: InstanceId(n[0]),
            task: TaskId(n[1]),
            code: n[2] as u32,
            reason: &s[3],
        }),
        MessageKind::TaskPanicked => Message::TaskPanicked(TaskPanicked {
            task: TaskId(n[0]),
            message: &s[0],
            location: n[1].is_multiple_of(2).then_some(Location {
                file: &s[1],
                line: n[2] as u32,
                column: n[3] as u32,
            }),
        }),
        MessageKind::ResourceCreated => Message::ResourceCreated(ResourceCreated {
            id: ResourceId(n[0]),
            kind: ResourceKind::ALL[(n[1] % ResourceKind::ALL.len() as u64) as usize],
            name: &s[0],
            location: loc,
            capacity: opt(4),
        }),
        MessageKind::ResourceDropped => Message::ResourceDropped(ResourceDropped { id: ResourceId(n[0]) }),
        MessageKind::LostWaker => Message::LostWaker(LostWaker { task: TaskId(n[0]) }),
        MessageKind::WaitBegin => Message::WaitBegin(WaitBegin {
            task: TaskId(n[0]),
            resource: ResourceId(n[1]),
            op: WaitOp::ALL[(n[2] % WaitOp::ALL.len() as u64) as usize],
        }),
        MessageKind::WaitEnd => Message::WaitEnd(WaitEnd {
            task: TaskId(n[0]),
            resource: ResourceId(n[1]),
            outcome: [WaitOutcome::Ready, WaitOutcome::Cancelled, WaitOutcome::TimedOut][(n[2] % 3) as usize],
        }),
        MessageKind::WasmStderrTail => Message::WasmStderrTail(WasmStderrTail {
            instance: InstanceId(n[0]),
            lines: &s[0],
        }),
        MessageKind::WasmInstanceArgs => Message::WasmInstanceArgs(WasmInstanceArgs {
            instance: InstanceId(n[0]),
            args: &s[0],
            env: &s[1],
        }),
        MessageKind::Sample => Message::Sample(Sample {
            context: SampleContext::ALL[(n[2] % 4) as usize],
            task: opt(7).map(TaskId),
            pc: n[0],
            frames: Frames::Slice(&n[8..8 + (n[9] % 8) as usize]),
        }),
        MessageKind::SetSampling => Message::SetSampling(SetSampling { hz: n[1] as u32 }),
        MessageKind::ResourceOps => Message::ResourceOps(ResourceOps {
            id: ResourceId(n[0]),
            op: WaitOp::ALL[(n[2] % WaitOp::ALL.len() as u64) as usize],
            count: n[1],
        }),
        MessageKind::Holders => Message::Holders(Holders {
            resource: ResourceId(n[0]),
            tasks: [
                opt(3).map(TaskId),
                opt(4).map(TaskId),
                opt(5).map(TaskId),
                opt(6).map(TaskId),
            ],
            unknown: n[1] as u32,
        }),
        MessageKind::WasmFunction => Message::WasmFunction(WasmFunction {
            start: n[0],
            len: n[1] as u32,
            module: &s[0],
            index: n[2] as u32,
            name: &s[1],
        }),
        MessageKind::SnapshotBegin => Message::SnapshotBegin { request: n[0] },
        MessageKind::SnapshotEnd => Message::SnapshotEnd { request: n[0] },
        MessageKind::TaskSnapshot => Message::TaskSnapshot(TaskSnapshot {
            task: TaskId(n[0]),
            name: &s[0],
            kind: task_kind,
            location: loc,
            parent: opt(7).map(TaskId),
            state: [
                TaskState::Idle,
                TaskState::Scheduled,
                TaskState::Running,
                TaskState::Completed,
            ][(n[9] % 4) as usize],
            cpu: n[10] as u32,
            spawned_tsc: n[11],
            polls: n[12],
            wakes: n[13],
            self_wakes: n[14],
            wakers: n[15],
            busy_ticks: n[1],
            scheduled_ticks: n[2],
        }),
        MessageKind::WasmInstanceSnapshot => Message::WasmInstanceSnapshot(WasmInstanceSnapshot {
            instance: InstanceId(n[0]),
            task: TaskId(n[1]),
            module: &s[2],
            state: wasm_state,
            memory_pages: n[3] as u32,
            fuel_used: n[4],
            slices: n[5],
            hostcalls: n[6],
        }),
        MessageKind::SetLevelFilter => Message::SetLevelFilter(SetLevelFilter {
            target: &s[0],
            filter: if b(1) {
                LevelFilter::Off
            } else {
                LevelFilter::Level(level)
            },
        }),
        MessageKind::Pause => Message::Pause,
        MessageKind::Resume => Message::Resume,
        MessageKind::RequestSnapshot => Message::RequestSnapshot { request: n[0] },
    }
}

fn decoded_events(wire: &[u8]) -> Vec<(u64, String)> {
    let mut buf = wire[..wire.len() - 1].to_vec();
    let f = decode_frame(&mut buf).unwrap();
    f.events()
        .map(|e| {
            let e = e.unwrap();
            (e.ts, format!("{:?}", e.message))
        })
        .collect()
}

proptest! {
    /// Each kind alone in a frame, compared structurally (decoded `List`s equal the
    /// slices they were built from).
    #[test]
    fn every_kind_round_trips(p in pool(), ts in any::<u64>(), cpu in any::<u32>(), seq in any::<u32>()) {
        let vals = values(&p);
        let names: Vec<&str> = p.s.iter().map(String::as_str).collect();
        for &kind in MessageKind::ALL {
            let m = build(kind, &p, &vals, &names);
            prop_assert_eq!(m.kind(), kind);
            let stream = StreamId::new(cpu, Ring::from_bits(seq as u8));
            let wire = frame(stream, seq, &[(ts, m)]);
            prop_assert_eq!(wire.iter().filter(|&&b| b == 0).count(), 1);
            let mut buf = wire[..wire.len() - 1].to_vec();
            let f = decode_frame(&mut buf).unwrap();
            prop_assert_eq!((f.stream, f.seq, f.base_ts), (stream, seq, ts));
            let events: Vec<_> = f.events().collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(events.len(), 1);
            prop_assert_eq!(events[0].ts, ts);
            prop_assert_eq!(events[0].message, m);
        }
    }

    /// Many kinds in one frame with arbitrary (even decreasing) timestamps, decoded by
    /// the streaming decoder from arbitrary chunks.
    #[test]
    fn batches_round_trip_through_the_streaming_decoder(
        p in pool(),
        picks in proptest::collection::vec((0..MessageKind::ALL.len(), any::<u64>()), 2..40),
        cuts in proptest::collection::vec(1..64usize, 0..20),
    ) {
        let vals = values(&p);
        let names: Vec<&str> = p.s.iter().map(String::as_str).collect();
        let events: Vec<(u64, Message<'_>)> = picks
            .iter()
            .map(|&(k, ts)| (ts, build(MessageKind::ALL[k], &p, &vals, &names)))
            .collect();
        let stream = StreamId::new(3, Ring::Task);
        let mut wire = frame(stream, 0, &events[..events.len() / 2]);
        wire.extend(frame(stream, 1, &events[events.len() / 2..]));
        let expected: Vec<_> = events
            .iter()
            .map(|(ts, m)| (stream, *ts, format!("{m:?}")))
            .collect();
        let mut chunks = Vec::new();
        let mut rest = wire.as_slice();
        for c in cuts {
            let c = c.min(rest.len());
            let (a, b) = rest.split_at(c);
            chunks.push(a);
            rest = b;
        }
        chunks.push(rest);
        let (got, d) = decode_chunks(chunks);
        prop_assert!(got.errors.is_empty(), "{:?}", got.errors);
        prop_assert!(got.gaps.is_empty());
        prop_assert_eq!(d.stats().frames, 2);
        // Debug strings compare `List::Slice` and `List::Wire` by representation, so
        // compare only kinds without lists textually and the rest structurally above.
        let plain = |s: &String| !s.contains("List") && !s.contains("Slice") && !s.contains("Wire");
        for (g, e) in got.events.iter().zip(&expected) {
            prop_assert_eq!((g.0, g.1), (e.0, e.1));
            if plain(&e.2) {
                prop_assert_eq!(&g.2, &e.2);
            }
        }
        prop_assert_eq!(got.events.len(), expected.len());
    }

    /// Poll ends carrying any number of self-wakes (minor 4), between other records,
    /// decode to the wakes and then the poll's end at the record's time; the streaming
    /// decoder counts every one as an event.
    #[test]
    fn poll_ends_with_self_wakes_round_trip(
        polls in proptest::collection::vec(
            (any::<u64>(), any::<u64>(), 0u8..3, any::<u8>(), any::<bool>()),
            1..30,
        ),
    ) {
        let stream = StreamId::new(1, Ring::Task);
        let mut enc = FrameEncoder::new(vec![0u8; MAX_FRAME_LEN], stream);
        let mut expected = Vec::new();
        for &(ts, task, result, count, by_ref) in &polls {
            let (task, result) = (TaskId(task), [PollResult::Pending, PollResult::Ready, PollResult::PendingWoken][usize::from(result)]);
            enc.poll_start(ts, task).unwrap();
            expected.push((ts, Message::PollStart { task }));
            enc.poll_end_woke_self(ts, task, result, SelfWakes { count, by_ref }).unwrap();
            let wake = Message::Wake { task, waker: Waker::Task(task), by_ref, self_wake: true };
            expected.extend((0..count).map(|_| (ts, wake)));
            expected.push((ts, Message::PollEnd { task, result }));
        }
        prop_assert_eq!(enc.event_count() as usize, expected.len());
        let mut wire = vec![0u8; enc.max_finished_len()];
        let n = enc.finish(&mut wire).unwrap();
        let (got, d) = decode_chunks([&wire[..n]]);
        prop_assert!(got.errors.is_empty(), "{:?}", got.errors);
        prop_assert_eq!(d.stats().events as usize, expected.len());
        let expected: Vec<_> = expected.iter().map(|(ts, m)| (stream, *ts, format!("{m:?}"))).collect();
        prop_assert_eq!(got.events, expected);
    }
}

#[test]
fn decoded_lists_iterate_back_to_their_items() {
    let vals = [Value::Str("a"), Value::F64(-0.0), Value::I64(i64::MIN)];
    let m = Message::TraceEvent(TraceEvent {
        callsite: CallsiteId(1),
        span: None,
        values: List::Slice(&vals),
    });
    let wire = frame(StreamId::new(0, Ring::Task), 0, &[(5, m)]);
    let mut buf = wire[..wire.len() - 1].to_vec();
    let f = decode_frame(&mut buf).unwrap();
    let e = f.events().next().unwrap().unwrap();
    let Message::TraceEvent(t) = e.message else {
        panic!("wrong kind {:?}", e.message)
    };
    assert!(matches!(t.values, List::Wire { count: 3, .. }));
    assert_eq!(t.values.iter().collect::<Vec<_>>(), vals);
    assert_eq!(decoded_events(&wire).len(), 1);
}
