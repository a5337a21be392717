//! A short trace stream with every message kind the console exports metrics for,
//! including the ones the kernel does not send yet (wasm instances, run-queue depth):
//! a second scrape target, so every dashboard panel has data to be checked against.

use lucid_protocol::{
    FrameEncoder, Hello, InstanceId, Location, MAJOR, MINOR, Message, Outcome, PollResult, Ring, StreamId, TaskId,
    TaskKind, TaskSpawned, Waker, WasmInstanceCreated, WasmState, WasmTrap,
};

/// TSC frequency of the stream.
const TSC_HZ: u64 = 1_000_000_000;

/// Per-CPU frame encoders; frames are collected in the order they are finished.
struct Streams {
    encoders: Vec<FrameEncoder<Vec<u8>>>,
    wire: Vec<u8>,
}

impl Streams {
    fn push(&mut self, index: usize, ts: u64, m: &Message<'_>) {
        if self.encoders[index].push(ts, m).is_err() {
            self.flush(index);
            self.encoders[index]
                .push(ts, m)
                .expect("an empty 4 KiB frame holds any message here");
        }
    }

    fn flush(&mut self, index: usize) {
        let enc = &mut self.encoders[index];
        let mut out = vec![0; enc.max_finished_len()];
        let n = enc.finish(&mut out).expect("max_finished_len always fits");
        self.wire.extend_from_slice(&out[..n]);
    }
}

/// The wire bytes: CPU 0's control stream and the task streams of CPUs 0 and 1.
pub fn stream() -> Vec<u8> {
    let ids = [
        StreamId::new(0, Ring::Control),
        StreamId::new(0, Ring::Task),
        StreamId::new(1, Ring::Task),
    ];
    let mut s = Streams {
        encoders: ids.iter().map(|&id| FrameEncoder::new(vec![0; 4096], id)).collect(),
        wire: Vec::new(),
    };
    let (control, cpu0, cpu1) = (0, 1, 2);
    let hello = Hello {
        major: u16::from(MAJOR),
        minor: MINOR,
        build_id: "synthetic",
        tsc_hz: TSC_HZ,
        cpus: 2,
        boot_tsc: 1_000,
    };
    s.push(control, 1_000, &Message::Hello(hello));
    let location = Location {
        file: "xtask/src/test/metrics/synthetic.rs",
        line: 1,
        column: 1,
    };
    let spawn = |task, kind| {
        Message::TaskSpawned(TaskSpawned {
            task,
            name: if kind == TaskKind::Wasm { "guest" } else { "worker" },
            kind,
            location,
            parent: None,
        })
    };
    // Tasks 1..=20 on both CPUs: a few polls each, woken in between, then done.
    let mut ts = 10_000u64;
    for n in 1..=20u64 {
        let task = TaskId(n);
        let cpu = if n % 2 == 0 { cpu0 } else { cpu1 };
        s.push(cpu, ts, &spawn(task, TaskKind::Kernel));
        for poll in 0..3u64 {
            s.push(cpu, ts + 100, &Message::PollStart { task });
            // Polls of 2 µs to 8 ms: several latency buckets.
            let length = 2_000 * (1 + n * 20u64.pow(poll as u32 % 3));
            let result = if poll == 2 {
                PollResult::Ready
            } else {
                PollResult::Pending
            };
            s.push(cpu, ts + 100 + length, &Message::PollEnd { task, result });
            if poll < 2 {
                let wake = Message::Wake {
                    task,
                    waker: Waker::Interrupt(32),
                    by_ref: false,
                    self_wake: false,
                };
                s.push(cpu, ts + 200 + length, &wake);
            }
            ts += 300 + length + 5_000 * n;
        }
        s.push(
            cpu,
            ts,
            &Message::TaskCompleted {
                task,
                outcome: Outcome::Ok,
            },
        );
        s.push(cpu, ts + 10, &Message::RunQueueDepth { depth: (n % 4) as u32 });
    }
    // A cancelled task, a stolen one still waiting, and an idle CPU period.
    s.push(cpu0, ts, &spawn(TaskId(30), TaskKind::Kernel));
    s.push(
        cpu0,
        ts + 50,
        &Message::TaskCompleted {
            task: TaskId(30),
            outcome: Outcome::Cancelled,
        },
    );
    s.push(cpu0, ts + 60, &spawn(TaskId(31), TaskKind::Kernel));
    let steal = Message::Steal {
        task: TaskId(31),
        from_cpu: 0,
        to_cpu: 1,
    };
    s.push(cpu1, ts + 70, &steal);
    s.push(cpu1, ts + 80, &Message::CpuIdle);
    s.push(cpu1, ts + 50_080, &Message::CpuBusy);
    s.push(
        cpu0,
        ts + 90,
        &Message::Wake {
            task: TaskId(31),
            waker: Waker::None,
            by_ref: false,
            self_wake: false,
        },
    );
    // A wasm instance: memory growth, fuel, hostcalls, a trap.
    ts += 100_000;
    s.push(cpu0, ts, &spawn(TaskId(40), TaskKind::Wasm));
    let created = WasmInstanceCreated {
        instance: InstanceId(7),
        task: TaskId(40),
        module: "synthetic.wasm",
        memory_pages: 2,
        fuel_per_slice: 10_000,
    };
    s.push(cpu0, ts + 10, &Message::WasmInstanceCreated(created));
    s.push(cpu0, ts + 20, &Message::PollStart { task: TaskId(40) });
    s.push(
        cpu0,
        ts + 30,
        &Message::WasmStateChanged {
            instance: InstanceId(7),
            state: WasmState::Running,
            detail: 0,
        },
    );
    s.push(
        cpu0,
        ts + 40,
        &Message::WasmMemoryGrow {
            instance: InstanceId(7),
            old_pages: 2,
            new_pages: 5,
        },
    );
    for (hostcall, calls, ticks) in [(1u32, 40u64, 40_000u64), (2, 3, 900_000)] {
        let m = Message::WasmHostcalls {
            instance: InstanceId(7),
            hostcall,
            calls,
            ticks,
        };
        s.push(cpu0, ts + 50, &m);
    }
    let poll = Message::WasmPoll {
        instance: InstanceId(7),
        fuel: 25_000,
        slices: 3,
    };
    s.push(cpu0, ts + 60, &poll);
    let trap = WasmTrap {
        instance: InstanceId(7),
        task: TaskId(40),
        code: 4,
        reason: "integer divide by zero",
    };
    s.push(cpu0, ts + 70, &Message::WasmTrap(trap));
    s.push(
        cpu0,
        ts + 80,
        &Message::PollEnd {
            task: TaskId(40),
            result: PollResult::Ready,
        },
    );
    s.push(
        cpu0,
        ts + 90,
        &Message::TaskCompleted {
            task: TaskId(40),
            outcome: Outcome::Panicked,
        },
    );
    s.push(
        control,
        ts + 100,
        &Message::Loss {
            cpu: 1,
            ring: Ring::Task,
            count: 5,
        },
    );
    s.push(control, ts + 110, &Message::Heartbeat);
    for i in 0..ids.len() {
        s.flush(i);
    }
    s.wire
}
