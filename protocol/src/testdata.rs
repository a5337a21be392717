//! Sample messages and a synthetic workload generator, for tests, fuzz seeds and
//! benchmarks of both the protocol and its consumers.

use std::collections::BTreeMap;

use crate::message::*;
use crate::recording::RecordingWriter;
use crate::{FrameEncoder, MAJOR, MINOR, StreamId};

/// Encodes `events` (timestamp, message) into one wire frame of `stream` with
/// sequence number `seq`, delimiter included: how tests hand-build a stream.
///
/// # Panics
/// If the events do not fit in one frame.
#[must_use]
pub fn frame(stream: StreamId, seq: u32, events: &[(u64, Message<'_>)]) -> Vec<u8> {
    let mut enc = FrameEncoder::with_sequence(vec![0u8; 64 * 1024], stream, seq);
    for (ts, m) in events {
        enc.push(*ts, m).expect("the events fit in one frame");
    }
    let mut out = vec![0u8; enc.max_finished_len()];
    let n = enc.finish(&mut out).expect("the frame fits its buffer");
    out.truncate(n);
    out
}

/// One message of every [`MessageKind`], in [`MessageKind::ALL`] order, with fixed
/// contents (the golden vectors are made from these).
#[must_use]
pub fn sample_messages() -> Vec<Message<'static>> {
    const FIELDS: &[&str] = &["message", "bytes"];
    const VALUES: &[Value<'static>] = &[
        Value::Str("hello"),
        Value::U64(4096),
        Value::I64(-3),
        Value::F64(0.5),
        Value::Bool(true),
    ];
    let location = Location {
        file: "kernel/src/main.rs",
        line: 42,
        column: 9,
    };
    vec![
        Message::Hello(Hello {
            major: u16::from(MAJOR),
            minor: MINOR,
            build_id: "lucid 0.1.0 (abc1234)",
            tsc_hz: 2_500_000_000,
            cpus: 4,
            boot_tsc: 123_456_789,
        }),
        Message::Callsite(Callsite {
            id: CallsiteId(7),
            kind: CallsiteKind::Event,
            level: Level::Info,
            name: "event kernel/src/main.rs:50",
            target: "lucid_kernel",
            file: "kernel/src/main.rs",
            line: 50,
            fields: List::Slice(FIELDS),
        }),
        Message::TaskSpawned(TaskSpawned {
            task: TaskId(300),
            name: "net-rx",
            kind: TaskKind::Kernel,
            location,
            parent: Some(TaskId(1)),
        }),
        Message::PollStart { task: TaskId(300) },
        Message::PollEnd {
            task: TaskId(300),
            result: PollResult::Pending,
        },
        Message::Wake {
            task: TaskId(300),
            waker: Waker::Interrupt(0x31),
            by_ref: true,
            self_wake: false,
        },
        Message::WakerClone {
            task: TaskId(300),
            wakers: 2,
        },
        Message::WakerDrop {
            task: TaskId(300),
            wakers: 1,
        },
        Message::JoinWaiting {
            task: TaskId(300),
            waiter: TaskId(1),
        },
        Message::TaskCompleted {
            task: TaskId(300),
            outcome: Outcome::Panicked,
        },
        Message::TaskDropped { task: TaskId(300) },
        Message::Steal {
            task: TaskId(300),
            from_cpu: 1,
            to_cpu: 3,
        },
        Message::CpuIdle,
        Message::CpuBusy,
        Message::RunQueueDepth { depth: 17 },
        Message::TraceEvent(TraceEvent {
            callsite: CallsiteId(7),
            span: Some(SpanId(5)),
            values: List::Slice(VALUES),
        }),
        Message::SpanNew(SpanNew {
            span: SpanId(5),
            callsite: CallsiteId(8),
            parent: None,
            values: List::Slice(&VALUES[..2]),
        }),
        Message::SpanEnter { span: SpanId(5) },
        Message::SpanExit { span: SpanId(5) },
        Message::SpanClose { span: SpanId(5) },
        Message::Loss {
            cpu: 2,
            ring: Ring::Interrupt,
            count: 1234,
        },
        Message::Heartbeat,
        Message::EventCounts {
            cpu: 2,
            ring: Ring::Task,
            produced: 1_000_000,
            dropped: 1234,
        },
        Message::WasmInstanceCreated(WasmInstanceCreated {
            instance: InstanceId(1),
            task: TaskId(301),
            module: "fib.wasm",
            memory_pages: 2,
            fuel_per_slice: 10_000,
        }),
        Message::WasmStateChanged {
            instance: InstanceId(1),
            state: WasmState::Running,
            detail: 0,
        },
        Message::WasmMemoryGrow {
            instance: InstanceId(1),
            old_pages: 2,
            new_pages: 4,
        },
        Message::WasmPoll {
            instance: InstanceId(1),
            fuel: 10_000,
            slices: 1,
        },
        Message::WasmHostcalls {
            instance: InstanceId(1),
            hostcall: 3,
            calls: 12,
            ticks: 4_800,
        },
        Message::WasmTrap(WasmTrap {
            instance: InstanceId(1),
            task: TaskId(301),
            code: 7,
            reason: "integer divide by zero",
        }),
        Message::SnapshotBegin { request: 9 },
        Message::SnapshotEnd { request: 9 },
        Message::TaskSnapshot(TaskSnapshot {
            task: TaskId(300),
            name: "net-rx",
            kind: TaskKind::Kernel,
            location,
            parent: Some(TaskId(1)),
            state: TaskState::Idle,
            cpu: 1,
            spawned_tsc: 1_000,
            polls: 10,
            wakes: 9,
            self_wakes: 1,
            wakers: 1,
            busy_ticks: 50_000,
            scheduled_ticks: 7_000,
        }),
        Message::WasmInstanceSnapshot(WasmInstanceSnapshot {
            instance: InstanceId(1),
            task: TaskId(301),
            module: "fib.wasm",
            state: WasmState::Suspended,
            memory_pages: 4,
            fuel_used: 120_000,
            slices: 12,
            hostcalls: 30,
        }),
        Message::SetLevelFilter(SetLevelFilter {
            target: "lucid_kernel::net",
            filter: LevelFilter::Level(Level::Debug),
        }),
        Message::Pause,
        Message::Resume,
        Message::RequestSnapshot { request: 9 },
        Message::TaskPanicked(TaskPanicked {
            task: TaskId(302),
            message: "called `Option::unwrap()` on a `None` value",
            location: Some(Location {
                file: "kernel/src/workload.rs",
                line: 212,
                column: 9,
            }),
        }),
        Message::ResourceCreated(ResourceCreated {
            id: ResourceId(12),
            kind: ResourceKind::Channel,
            name: "ping",
            location: Location {
                file: "kernel/src/workload.rs",
                line: 108,
                column: 33,
            },
            capacity: Some(1),
        }),
        Message::ResourceDropped(ResourceDropped { id: ResourceId(12) }),
        Message::WaitBegin(WaitBegin {
            task: TaskId(301),
            resource: ResourceId(12),
            op: WaitOp::Recv,
        }),
        Message::WaitEnd(WaitEnd {
            task: TaskId(301),
            resource: ResourceId(12),
            outcome: WaitOutcome::Ready,
        }),
        Message::LostWaker(LostWaker { task: TaskId(301) }),
        Message::WasmStderrTail(WasmStderrTail {
            instance: InstanceId(3),
            lines: "thread 'main' panicked at src/main.rs:4:5\nexplicit panic",
        }),
        Message::WasmInstanceArgs(WasmInstanceArgs {
            instance: InstanceId(1),
            args: "fib.wasm\0--label\0two words\0",
            env: "RUST_BACKTRACE=1\0",
        }),
        Message::Sample(Sample {
            context: SampleContext::Task,
            task: Some(TaskId(303)),
            pc: 0xffff_ffff_8012_3456,
            frames: Frames::Slice(&[0xffff_ffff_8012_4000, 0xffff_ffff_8011_0f00, 0xffff_ffff_8013_0010]),
        }),
        Message::SetSampling(SetSampling { hz: 997 }),
        Message::WasmFunction(WasmFunction {
            start: 0xffff_c000_0001_2340,
            len: 412,
            module: "hasher",
            index: 7,
            name: "hasher::fnv1a",
        }),
        Message::ResourceOps(ResourceOps {
            id: ResourceId(12),
            op: WaitOp::Send,
            count: 1500,
        }),
        Message::Holders(Holders {
            resource: ResourceId(12),
            tasks: [Some(TaskId(301)), Some(TaskId(302)), None, None],
            unknown: 1,
        }),
    ]
}

/// A deterministic xorshift generator, so tests need no `rand`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (seed 0 is remapped).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `lo..hi` (`lo` if the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo { lo } else { lo + self.next_u64() % (hi - lo) }
    }
}

/// Shape of a synthetic executor workload.
#[derive(Debug, Clone)]
pub struct Workload {
    /// CPUs (one task stream each, plus CPU 0's control stream).
    pub cpus: u32,
    /// Kernel tasks spawned.
    pub tasks: u64,
    /// Polls per task; the last returns `Ready`.
    pub polls_per_task: u32,
    /// Wasm instances, each driven by one more task.
    pub wasm_instances: u64,
    /// Events reported in one `Loss` message on the control stream (0: none).
    pub loss: u64,
    /// Frame buffer size per stream (at least 128, so any generated message fits).
    pub frame_buffer: usize,
    /// RNG seed.
    pub seed: u64,
    /// Tasks stay alive: every poll returns `Pending` and no task completes (a
    /// console holding this many live tasks at the end).
    pub live: bool,
    /// Each kernel task has a name of its own (`worker-N`) instead of a shared one.
    pub distinct_names: bool,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            cpus: 4,
            tasks: 1000,
            polls_per_task: 5,
            wasm_instances: 2,
            loss: 0,
            frame_buffer: 4096,
            seed: 1,
            live: false,
            distinct_names: false,
        }
    }
}

/// What [`generate`] produced.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    /// Wire frames (each ends in 0x00), frames of different CPUs interleaved.
    pub frames: Vec<Vec<u8>>,
    /// Events by kind.
    pub counts: BTreeMap<MessageKind, u64>,
    /// Record bytes by kind (inside frames, before COBS).
    pub record_bytes: BTreeMap<MessageKind, u64>,
}

impl Generated {
    /// All events.
    #[must_use]
    pub fn events(&self) -> u64 {
        self.counts.values().sum()
    }

    /// All wire bytes.
    #[must_use]
    pub fn wire_bytes(&self) -> u64 {
        self.frames.iter().map(|f| f.len() as u64).sum()
    }

    /// The frames as one byte stream.
    #[must_use]
    pub fn wire(&self) -> Vec<u8> {
        self.frames.concat()
    }

    /// Average wire bytes of one event of `kind`: its record bytes plus an equal
    /// share of the framing overhead (headers, CRC, COBS, delimiters).
    #[must_use]
    pub fn bytes_per_event(&self, kind: MessageKind) -> f64 {
        let records: u64 = self.record_bytes.values().sum();
        let overhead = self.wire_bytes().saturating_sub(records) as f64 / self.events() as f64;
        let n = self.counts.get(&kind).copied().unwrap_or(0).max(1) as f64;
        self.record_bytes.get(&kind).copied().unwrap_or(0) as f64 / n + overhead
    }

    /// The stream as a `.lucid` recording, split into chunks of about `chunk` bytes
    /// (as a reader of a pipe would receive it), with receive times 1 ms apart.
    #[must_use]
    pub fn recording(&self, chunk: usize) -> Vec<u8> {
        let mut w = RecordingWriter::new(Vec::new()).expect("writing to a Vec cannot fail");
        let t0 = 1_700_000_000_000_000_000u64;
        for (i, part) in self.wire().chunks(chunk.max(1)).enumerate() {
            w.write_chunk(t0 + i as u64 * 1_000_000, part)
                .expect("writing to a Vec cannot fail");
        }
        w.into_inner().expect("writing to a Vec cannot fail")
    }
}

struct Stream {
    enc: FrameEncoder<Vec<u8>>,
    out: Vec<Vec<u8>>,
}

impl Stream {
    fn new(id: StreamId, buffer: usize) -> Self {
        Self {
            enc: FrameEncoder::new(vec![0; buffer], id),
            out: Vec::new(),
        }
    }

    fn push(&mut self, g: &mut Generated, ts: u64, m: &Message<'_>) {
        let mut before = (!self.enc.is_empty()).then(|| self.enc.raw_len());
        if self.enc.push(ts, m).is_err() {
            self.flush();
            self.enc
                .push(ts, m)
                .expect("the frame buffer holds any single generated message");
            before = None;
        }
        let after = self.enc.raw_len();
        let used = after - before.unwrap_or_else(|| header_len(self.enc.raw_bytes()));
        *g.counts.entry(m.kind()).or_default() += 1;
        *g.record_bytes.entry(m.kind()).or_default() += used as u64;
    }

    fn flush(&mut self) {
        let mut out = vec![0; self.enc.max_finished_len()];
        let n = self.enc.finish(&mut out).expect("max_finished_len always fits");
        if n > 0 {
            out.truncate(n);
            self.out.push(out);
        }
    }
}

/// Header bytes of a raw frame: major, stream, sequence, base timestamp.
fn header_len(raw: &[u8]) -> usize {
    let mut r = crate::wire::Reader::new(raw);
    let ok = r.u8().is_ok() && r.varint().is_ok() && r.varint().is_ok() && r.varint().is_ok();
    if ok { raw.len() - r.rest().len() } else { 0 }
}

/// Generates a workload: spawns, polls (with realistic TSC deltas at 2.5 GHz: polls of
/// 2–40 µs, gaps of 0.2–2 µs), wakes, completions, a few wasm instances, heartbeats
/// and optionally a loss report.
#[must_use]
pub fn generate(w: &Workload) -> Generated {
    let mut g = Generated::default();
    let mut rng = Rng::new(w.seed);
    let cpus = w.cpus.max(1);
    let mut control = Stream::new(StreamId::new(0, Ring::Control), w.frame_buffer);
    let mut streams: Vec<Stream> = (0..cpus)
        .map(|c| Stream::new(StreamId::new(c, Ring::Task), w.frame_buffer))
        .collect();
    let boot = 1_000_000u64;
    let mut clock = vec![boot; cpus as usize];
    control.push(
        &mut g,
        boot,
        &Message::Hello(Hello {
            major: u16::from(MAJOR),
            minor: MINOR,
            build_id: "synthetic",
            tsc_hz: 2_500_000_000,
            cpus,
            boot_tsc: boot,
        }),
    );
    let total = w.tasks + w.wasm_instances;
    for i in 0..total {
        let task = i + 1;
        let cpu = (i % u64::from(cpus)) as usize;
        let s = &mut streams[cpu];
        let is_wasm = i >= w.tasks;
        let instance = i - w.tasks.min(i) + 1;
        clock[cpu] += rng.range(500, 5_000);
        let own_name = (w.distinct_names && !is_wasm).then(|| format!("worker-{task}"));
        s.push(
            &mut g,
            clock[cpu],
            &Message::TaskSpawned(TaskSpawned {
                task: TaskId(task),
                name: match &own_name {
                    Some(name) => name,
                    None if is_wasm => "wasm",
                    None => "worker",
                },
                kind: if is_wasm { TaskKind::Wasm } else { TaskKind::Kernel },
                location: Location {
                    file: "kernel/src/workload.rs",
                    line: 10,
                    column: 5,
                },
                parent: None,
            }),
        );
        if is_wasm {
            s.push(
                &mut g,
                clock[cpu],
                &Message::WasmInstanceCreated(WasmInstanceCreated {
                    instance: InstanceId(instance),
                    task: TaskId(task),
                    module: "spin.wasm",
                    memory_pages: 1,
                    fuel_per_slice: 10_000,
                }),
            );
        }
        for p in 0..w.polls_per_task {
            clock[cpu] += rng.range(500, 5_000);
            s.push(&mut g, clock[cpu], &Message::PollStart { task: TaskId(task) });
            clock[cpu] += rng.range(5_000, 100_000);
            if is_wasm {
                s.push(
                    &mut g,
                    clock[cpu],
                    &Message::WasmPoll {
                        instance: InstanceId(instance),
                        fuel: 10_000,
                        slices: 1,
                    },
                );
            }
            let last = p + 1 == w.polls_per_task;
            let result = if last && !w.live {
                PollResult::Ready
            } else {
                PollResult::Pending
            };
            s.push(
                &mut g,
                clock[cpu],
                &Message::PollEnd {
                    task: TaskId(task),
                    result,
                },
            );
            if !last {
                clock[cpu] += rng.range(200, 2_000);
                s.push(
                    &mut g,
                    clock[cpu],
                    &Message::Wake {
                        task: TaskId(task),
                        waker: Waker::Interrupt(0x30),
                        by_ref: true,
                        self_wake: false,
                    },
                );
            }
        }
        if w.live {
            continue;
        }
        s.push(
            &mut g,
            clock[cpu],
            &Message::TaskCompleted {
                task: TaskId(task),
                outcome: Outcome::Ok,
            },
        );
        s.push(&mut g, clock[cpu], &Message::TaskDropped { task: TaskId(task) });
    }
    let end = clock.iter().copied().max().unwrap_or(boot);
    if w.loss > 0 {
        control.push(
            &mut g,
            end,
            &Message::Loss {
                cpu: 0,
                ring: Ring::Task,
                count: w.loss,
            },
        );
    }
    control.push(&mut g, end, &Message::Heartbeat);
    control.flush();
    for s in &mut streams {
        s.flush();
    }
    // Interleave the streams' frames as a multiplexed port would deliver them.
    g.frames.append(&mut control.out);
    let mut iters: Vec<_> = streams.into_iter().map(|s| s.out.into_iter()).collect();
    loop {
        let mut any = false;
        for it in &mut iters {
            if let Some(f) = it.next() {
                g.frames.push(f);
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    g
}
