//! Host benchmark of `lucid-executor` against tokio, and of the cost of tracing it.
//! `cargo xtask bench [--quick]` builds this in release, runs it and collects its output;
//! `xtask/BENCHMARKS.md` explains every workload.
//!
//! ```text
//! bench [--quick] [--runs N] [--only throughput|trace|bytes]
//! ```
//!
//! Every result goes to stdout as one JSON object per line:
//! `{"name":…,"lucid":…,"anchor":…,"ratio":…,"unit":…}` with `ratio = lucid / anchor`
//! (`null` where there is no anchor). Progress goes to stderr.
//!
//! Each configuration runs once to warm up and then `runs` times; configurations are
//! interleaved round by round so that drift of a shared machine hits all of them alike,
//! and each figure is the median of its runs.

#[cfg(not(loom))]
fn main() {
    bench::main();
}

// The dev-dependencies this needs are left out under `--cfg loom` (see Cargo.toml).
#[cfg(loom)]
fn main() {}

#[cfg(not(loom))]
mod bench {
    use std::cell::RefCell;
    use std::future::Future;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Instant;

    use lucid_executor::{Hooks, Outcome, Platform, PollResult, Runtime, SpawnInfo, TaskId, TaskKind, ThreadPlatform};
    use lucid_protocol::{
        self as proto, EncodeError, FrameEncoder, Message, MessageKind, Ring, StreamId, cobs_max_encoded_len,
        varint_len,
    };

    /// Tasks in the spawn+join workload.
    const TASKS: usize = 100_000;
    /// `yield_now` calls per task (so each task is polled `YIELDS + 1` times).
    const YIELDS: usize = 10;
    /// Ping-pong pairs.
    const PAIRS: usize = 1_000;
    /// Round trips per pair.
    const TRIPS: u32 = 100;
    /// Capacity of each ping-pong channel: every send after the first waits for the peer.
    const CHANNEL_CAPACITY: usize = 1;

    pub fn main() {
        let mut quick = false;
        let mut runs = None;
        let mut only = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--runs" => runs = args.next().and_then(|n| n.parse::<usize>().ok()).filter(|&n| n > 0),
                "--only" => only = args.next(),
                other => {
                    eprintln!(
                        "unknown argument {other:?}; usage: bench [--quick] [--runs N] [--only throughput|trace|bytes]"
                    );
                    std::process::exit(2);
                }
            }
        }
        let runs = runs.unwrap_or(if quick { 3 } else { 9 });
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        eprintln!("bench: {runs} runs per configuration (median), {cpus} CPUs available");

        let section = |name: &str| only.as_deref().is_none_or(|o| o == name);
        if section("throughput") {
            throughput(runs, cpus);
        }
        if section("trace") {
            trace_cost(runs);
        }
        if section("bytes") {
            wire_size();
        }
    }

    // ---------------------------------------------------------------- measuring

    /// One timed run.
    #[derive(Clone, Copy)]
    struct Sample {
        secs: f64,
        /// Polls the executor counted (lucid only).
        polls: u64,
    }

    /// Runs every configuration once untimed, then `runs` rounds of all of them;
    /// returns each configuration's samples.
    fn measure(runs: usize, configs: &mut [(&str, &mut dyn FnMut() -> Sample)]) -> Vec<Vec<Sample>> {
        let mut samples = vec![Vec::with_capacity(runs); configs.len()];
        for (name, run) in configs.iter_mut() {
            eprintln!("bench: warm-up {name}");
            run();
        }
        for round in 0..runs {
            eprintln!("bench: round {}/{runs}", round + 1);
            for (i, (_, run)) in configs.iter_mut().enumerate() {
                samples[i].push(run());
            }
        }
        samples
    }

    fn median(mut values: Vec<f64>) -> f64 {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        }
    }

    /// Median of a per-run figure.
    fn median_of(samples: &[Sample], figure: impl Fn(&Sample) -> f64) -> f64 {
        median(samples.iter().map(figure).collect())
    }

    fn json_number(v: Option<f64>) -> String {
        match v {
            Some(v) if v.is_finite() => format!("{v}"),
            _ => "null".to_string(),
        }
    }

    /// Prints one result row.
    fn row(name: &str, lucid: f64, anchor: Option<f64>, unit: &str) {
        let ratio = anchor.filter(|&a| a != 0.0).map(|a| lucid / a);
        println!(
            "{{\"name\":\"{name}\",\"lucid\":{},\"anchor\":{},\"ratio\":{},\"unit\":\"{unit}\"}}",
            json_number(Some(lucid)),
            json_number(anchor),
            json_number(ratio)
        );
    }

    // ---------------------------------------------------------------- lucid

    /// Runs `root` as a task on a fresh lucid runtime with `cpus` CPUs: the calling
    /// thread is CPU 0, CPUs 1.. are scoped threads. Times from spawning the root to its
    /// completion.
    fn lucid_run<Fut>(
        cpus: usize,
        hooks: Option<&'static dyn Hooks>,
        root: impl FnOnce(&'static Runtime) -> Fut,
    ) -> Sample
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        // Both are leaked, as the kernel's live forever: a few hundred bytes per run.
        let platform = ThreadPlatform::new(cpus);
        let rt = Runtime::new(cpus, platform, hooks);
        ThreadPlatform::enter(Some(0));
        let stop = AtomicBool::new(false);
        let ready = Barrier::new(cpus);
        let sample = std::thread::scope(|s| {
            for cpu in 1..cpus {
                let (stop, ready) = (&stop, &ready);
                s.spawn(move || {
                    ThreadPlatform::enter(Some(cpu));
                    ready.wait();
                    while !stop.load(Ordering::Acquire) {
                        rt.tick_or_idle(cpu);
                    }
                });
            }
            ready.wait();
            let start = Instant::now();
            let handle = rt.builder().name("root").spawn(root(rt));
            // CPU 0 never idles: nothing would wake it when the root completes elsewhere.
            while !handle.is_finished() {
                if rt.tick(0).polled == 0 {
                    std::thread::yield_now();
                }
            }
            let secs = start.elapsed().as_secs_f64();
            stop.store(true, Ordering::Release);
            // The platform keeps a wake-up token, so a CPU that idles after this still
            // wakes up and sees `stop`.
            for cpu in 1..cpus {
                platform.wake_cpu(cpu);
            }
            secs
        });
        let polls = rt.schedulers().iter().map(|s| s.counters().polls).sum();
        Sample { secs: sample, polls }
    }

    async fn lucid_spawn_join(rt: &'static Runtime) {
        let mut handles = Vec::with_capacity(TASKS);
        for _ in 0..TASKS {
            handles.push(rt.builder().name("yielder").spawn(async {
                for _ in 0..YIELDS {
                    lucid_executor::yield_now().await;
                }
            }));
        }
        for handle in handles {
            handle.await.expect("the task completes");
        }
    }

    async fn lucid_ping_pong(rt: &'static Runtime) {
        use lucid_executor::sync::mpsc;
        let mut handles = Vec::with_capacity(2 * PAIRS);
        for _ in 0..PAIRS {
            let (ping_tx, mut ping_rx) = mpsc::channel::<u32>(CHANNEL_CAPACITY);
            let (pong_tx, mut pong_rx) = mpsc::channel::<u32>(CHANNEL_CAPACITY);
            handles.push(rt.builder().name("ping").spawn(async move {
                for i in 0..TRIPS {
                    ping_tx.send(i).await.expect("pong is alive");
                    assert_eq!(pong_rx.recv().await, Some(i));
                }
            }));
            handles.push(rt.builder().name("pong").spawn(async move {
                while let Some(v) = ping_rx.recv().await {
                    pong_tx.send(v).await.expect("ping is alive");
                }
            }));
        }
        for handle in handles {
            handle.await.expect("the task completes");
        }
    }

    // ---------------------------------------------------------------- tokio

    fn tokio_run<Fut>(runtime: tokio::runtime::Runtime, root: impl FnOnce() -> Fut) -> Sample
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let start = Instant::now();
        // The root is a spawned task, as in lucid (not the `block_on` future itself).
        runtime.block_on(async { tokio::spawn(root()).await.expect("the root completes") });
        let secs = start.elapsed().as_secs_f64();
        drop(runtime);
        Sample { secs, polls: 0 }
    }

    fn tokio_current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime")
    }

    fn tokio_multi_thread(workers: usize) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build()
            .expect("tokio runtime")
    }

    async fn tokio_spawn_join() {
        let mut handles = Vec::with_capacity(TASKS);
        for _ in 0..TASKS {
            handles.push(tokio::spawn(async {
                for _ in 0..YIELDS {
                    tokio::task::yield_now().await;
                }
            }));
        }
        for handle in handles {
            handle.await.expect("the task completes");
        }
    }

    async fn tokio_ping_pong() {
        use tokio::sync::mpsc;
        let mut handles = Vec::with_capacity(2 * PAIRS);
        for _ in 0..PAIRS {
            let (ping_tx, mut ping_rx) = mpsc::channel::<u32>(CHANNEL_CAPACITY);
            let (pong_tx, mut pong_rx) = mpsc::channel::<u32>(CHANNEL_CAPACITY);
            handles.push(tokio::spawn(async move {
                for i in 0..TRIPS {
                    ping_tx.send(i).await.expect("pong is alive");
                    assert_eq!(pong_rx.recv().await, Some(i));
                }
            }));
            handles.push(tokio::spawn(async move {
                while let Some(v) = ping_rx.recv().await {
                    pong_tx.send(v).await.expect("ping is alive");
                }
            }));
        }
        for handle in handles {
            handle.await.expect("the task completes");
        }
    }

    // ---------------------------------------------------------------- (1) lucid vs tokio

    fn throughput(runs: usize, cpus: usize) {
        let polls = (TASKS * (YIELDS + 1)) as f64;
        let messages = (PAIRS * TRIPS as usize * 2) as f64;
        let mut l1 = || lucid_run(1, None, lucid_spawn_join);
        let mut ln = || lucid_run(cpus, None, lucid_spawn_join);
        let mut t1 = || tokio_run(tokio_current_thread(), tokio_spawn_join);
        let mut tn = || tokio_run(tokio_multi_thread(cpus), tokio_spawn_join);
        let mut pl1 = || lucid_run(1, None, lucid_ping_pong);
        let mut pln = || lucid_run(cpus, None, lucid_ping_pong);
        let mut pt1 = || tokio_run(tokio_current_thread(), tokio_ping_pong);
        let mut ptn = || tokio_run(tokio_multi_thread(cpus), tokio_ping_pong);
        let mut configs: [(&str, &mut dyn FnMut() -> Sample); 8] = [
            ("spawn_join lucid 1 CPU", &mut l1),
            ("spawn_join lucid N CPUs", &mut ln),
            ("spawn_join tokio current_thread", &mut t1),
            ("spawn_join tokio multi_thread", &mut tn),
            ("ping_pong lucid 1 CPU", &mut pl1),
            ("ping_pong lucid N CPUs", &mut pln),
            ("ping_pong tokio current_thread", &mut pt1),
            ("ping_pong tokio multi_thread", &mut ptn),
        ];
        let s = measure(runs, &mut configs);
        let rate = |i: usize, per_run: f64| median_of(&s[i], |x| per_run / x.secs);
        let ns_per_poll = |i: usize| median_of(&s[i], |x| x.secs * 1e9 / polls);
        let per_task = TASKS as f64;
        row(
            "spawn_join.1cpu.tasks_per_s",
            rate(0, per_task),
            Some(rate(2, per_task)),
            "tasks/s",
        );
        row(
            "spawn_join.1cpu.ns_per_poll",
            ns_per_poll(0),
            Some(ns_per_poll(2)),
            "ns/poll",
        );
        let n = format!("spawn_join.{cpus}cpu");
        row(
            &format!("{n}.tasks_per_s"),
            rate(1, per_task),
            Some(rate(3, per_task)),
            "tasks/s",
        );
        row(
            &format!("{n}.ns_per_poll"),
            ns_per_poll(1),
            Some(ns_per_poll(3)),
            "ns/poll",
        );
        row(
            "ping_pong.1cpu.msgs_per_s",
            rate(4, messages),
            Some(rate(6, messages)),
            "msgs/s",
        );
        row(
            &format!("ping_pong.{cpus}cpu.msgs_per_s"),
            rate(5, messages),
            Some(rate(7, messages)),
            "msgs/s",
        );
    }

    // ---------------------------------------------------------------- (2) trace cost

    /// Raw bytes per frame, as in the kernel's trace layer.
    const FRAME_BYTES: usize = 4096;
    /// Largest sealed frame (COBS, delimiter).
    const SEALED_MAX: usize = cobs_max_encoded_len(FRAME_BYTES) + 1;
    /// Sealed-frame ring per thread: room for a whole run of either workload (about
    /// 25 MB for spawn+join), so the measured cost is encoding and sealing, not the
    /// cheaper drop path. Drops are counted and reported all the same.
    const RING_BYTES: usize = 64 << 20;
    const KINDS: usize = MessageKind::ALL.len();

    /// A bounded byte ring of sealed frames, each stored as a `u32` length and its
    /// bytes. Its memory is allocated once, before the measured runs.
    struct ByteRing {
        buf: Vec<u8>,
        head: usize,
        used: usize,
    }

    impl ByteRing {
        const fn empty() -> Self {
            Self {
                buf: Vec::new(),
                head: 0,
                used: 0,
            }
        }

        fn free(&self) -> usize {
            self.buf.len() - self.used
        }

        fn write_at(&mut self, at: usize, bytes: &[u8]) {
            let cap = self.buf.len();
            let at = at % cap;
            let first = bytes.len().min(cap - at);
            self.buf[at..at + first].copy_from_slice(&bytes[..first]);
            self.buf[..bytes.len() - first].copy_from_slice(&bytes[first..]);
        }

        fn read_at(&self, at: usize, out: &mut [u8]) {
            let cap = self.buf.len();
            let at = at % cap;
            let first = out.len().min(cap - at);
            out[..first].copy_from_slice(&self.buf[at..at + first]);
            let n = out.len();
            out[first..].copy_from_slice(&self.buf[..n - first]);
        }

        /// Appends a frame; false (and nothing written) if it does not fit.
        fn push(&mut self, frame: &[u8]) -> bool {
            if self.free() < 4 + frame.len() {
                return false;
            }
            let tail = self.head + self.used;
            self.write_at(tail, &(frame.len() as u32).to_le_bytes());
            self.write_at(tail + 4, frame);
            self.used += 4 + frame.len();
            true
        }

        /// Takes the oldest frame into `out` (cleared first); false when empty.
        fn pop(&mut self, out: &mut Vec<u8>) -> bool {
            if self.used == 0 {
                return false;
            }
            let mut len = [0u8; 4];
            self.read_at(self.head, &mut len);
            let len = u32::from_le_bytes(len) as usize;
            out.clear();
            out.resize(len, 0);
            self.read_at(self.head + 4, out);
            self.head = (self.head + 4 + len) % self.buf.len();
            self.used -= 4 + len;
            if self.used == 0 {
                // Each run then writes the same, already mapped, pages.
                self.head = 0;
            }
            true
        }
    }

    /// Count and record bytes of one kind of event (accounting runs only).
    #[derive(Clone, Copy, Default)]
    struct KindSize {
        events: u64,
        record_bytes: u64,
    }

    /// One thread's trace lane: the open frame, a scratch buffer to seal into, and the
    /// ring of sealed frames. Only its own thread touches it, so it needs no lock.
    struct Lane {
        enc: FrameEncoder<[u8; FRAME_BYTES]>,
        scratch: [u8; SEALED_MAX],
        ring: ByteRing,
        /// The task this thread is polling (parent of spawns, waiter of joins).
        current: Option<u64>,
        produced: u64,
        dropped: u64,
        kinds: [KindSize; KINDS],
    }

    impl Lane {
        const fn new() -> Self {
            Self {
                enc: FrameEncoder::new([0; FRAME_BYTES], StreamId::new(0, Ring::Task)),
                scratch: [0; SEALED_MAX],
                ring: ByteRing::empty(),
                current: None,
                produced: 0,
                dropped: 0,
                kinds: [KindSize {
                    events: 0,
                    record_bytes: 0,
                }; KINDS],
            }
        }

        /// Seals the open frame into the ring, or drops its events (counted) when the
        /// ring has no room for it.
        fn seal(&mut self) {
            if self.enc.is_empty() {
                return;
            }
            let events = u64::from(self.enc.event_count());
            if self.ring.free() < 4 + self.enc.max_finished_len() {
                self.enc.discard();
                self.dropped += events;
                return;
            }
            match self.enc.finish(&mut self.scratch) {
                Ok(n) => {
                    let pushed = self.ring.push(&self.scratch[..n]);
                    debug_assert!(pushed, "the ring had room for the frame");
                }
                Err(_) => self.dropped += events,
            }
        }
    }

    std::thread_local! {
        static LANE: RefCell<Lane> = const { RefCell::new(Lane::new()) };
    }

    /// Events that arrived while the lane was busy (a hook re-entered the tracer).
    static REENTERED: AtomicU64 = AtomicU64::new(0);

    fn now() -> u64 {
        // The kernel stamps events with the TSC; so does this, for the same deltas.
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: RDTSC has no preconditions; it only reads the time-stamp counter.
            unsafe { core::arch::x86_64::_rdtsc() }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            use std::sync::OnceLock;
            static EPOCH: OnceLock<Instant> = OnceLock::new();
            EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
        }
    }

    /// Encodes one event of `kind` into this thread's lane, sealing the frame when it
    /// is full. With `ACCOUNT`, also adds the record's size to the per-kind totals.
    #[inline]
    fn record<const ACCOUNT: bool>(
        kind: MessageKind,
        encode: impl Fn(&mut FrameEncoder<[u8; FRAME_BYTES]>, u64) -> Result<(), EncodeError>,
    ) {
        record_and_set_current::<ACCOUNT>(kind, None, encode);
    }

    /// [`record`], and (in the same visit to the thread-local lane, which costs a few
    /// ns each) set the task being polled to `current` unless it is `None`.
    #[inline]
    fn record_and_set_current<const ACCOUNT: bool>(
        kind: MessageKind,
        current: Option<Option<u64>>,
        encode: impl Fn(&mut FrameEncoder<[u8; FRAME_BYTES]>, u64) -> Result<(), EncodeError>,
    ) {
        let ts = now();
        LANE.with(|lane| {
            let Ok(mut lane) = lane.try_borrow_mut() else {
                REENTERED.fetch_add(1, Ordering::Relaxed);
                return;
            };
            if let Some(current) = current {
                lane.current = current;
            }
            lane.produced += 1;
            let before = lane.enc.raw_len();
            let mut opening = lane.enc.is_empty();
            let mut result = encode(&mut lane.enc, ts);
            if result.is_err() {
                lane.seal();
                opening = true;
                result = encode(&mut lane.enc, ts);
            }
            if result.is_err() {
                lane.dropped += 1;
            } else if ACCOUNT {
                let bytes = if opening {
                    // The frame header came with this record: major, stream, seq, base_ts.
                    let seq = u64::from(lane.enc.sequence());
                    let header = 1 + varint_len(lane.enc.stream().to_wire()) + varint_len(seq) + varint_len(ts);
                    lane.enc.raw_len() - header
                } else {
                    lane.enc.raw_len() - before
                };
                let k = &mut lane.kinds[kind as usize];
                k.events += 1;
                k.record_bytes += bytes as u64;
            }
        });
    }

    fn current_task() -> Option<u64> {
        LANE.with(|lane| lane.try_borrow().ok().and_then(|l| l.current))
    }

    /// The kernel trace layer's encoding of every executor hook (kernel/src/trace), on
    /// host threads: one lane per thread instead of per CPU and context.
    struct TraceHooks<const ACCOUNT: bool>;

    static TRACE: TraceHooks<false> = TraceHooks;
    static TRACE_ACCOUNTING: TraceHooks<true> = TraceHooks;

    fn poll_result(r: PollResult) -> proto::PollResult {
        match r {
            PollResult::Ready | PollResult::ReadyJoined => proto::PollResult::Ready,
            PollResult::Pending | PollResult::PendingSchedule => proto::PollResult::Pending,
        }
    }

    impl<const ACCOUNT: bool> Hooks for TraceHooks<ACCOUNT> {
        fn on_spawn(&self, info: &SpawnInfo<'_>) {
            let parent = current_task();
            record::<ACCOUNT>(MessageKind::TaskSpawned, |e, ts| {
                e.push(
                    ts,
                    &Message::TaskSpawned(proto::TaskSpawned {
                        task: info.id.as_u64(),
                        name: info.name.unwrap_or(""),
                        kind: match info.kind {
                            TaskKind::Kernel => proto::TaskKind::Kernel,
                            TaskKind::Wasm => proto::TaskKind::Wasm,
                        },
                        location: proto::Location {
                            file: info.location.file(),
                            line: info.location.line(),
                            column: info.location.column(),
                        },
                        parent,
                    }),
                )
            });
        }

        fn on_poll_start(&self, _cpu: usize, task: TaskId) {
            let task = task.as_u64();
            record_and_set_current::<ACCOUNT>(MessageKind::PollStart, Some(Some(task)), |e, ts| e.poll_start(ts, task));
        }

        fn on_poll_end(&self, _cpu: usize, task: TaskId, result: PollResult) {
            record_and_set_current::<ACCOUNT>(MessageKind::PollEnd, Some(None), |e, ts| {
                e.poll_end(ts, task.as_u64(), poll_result(result))
            });
        }

        fn on_wake(&self, task: TaskId, by_ref: bool, self_wake: bool, waker: Option<TaskId>) {
            let waker = waker.map_or(proto::Waker::None, |t| proto::Waker::Task(t.as_u64()));
            record::<ACCOUNT>(MessageKind::Wake, |e, ts| {
                e.push(
                    ts,
                    &Message::Wake {
                        task: task.as_u64(),
                        waker,
                        by_ref,
                        self_wake,
                    },
                )
            });
        }

        fn on_waker_clone(&self, task: TaskId, count: usize) {
            record::<ACCOUNT>(MessageKind::WakerClone, |e, ts| {
                e.push(
                    ts,
                    &Message::WakerClone {
                        task: task.as_u64(),
                        wakers: count as u64,
                    },
                )
            });
        }

        fn on_waker_drop(&self, task: TaskId, count: usize) {
            record::<ACCOUNT>(MessageKind::WakerDrop, |e, ts| {
                e.push(
                    ts,
                    &Message::WakerDrop {
                        task: task.as_u64(),
                        wakers: count as u64,
                    },
                )
            });
        }

        fn on_join_waiting(&self, task: TaskId) {
            let waiter = current_task().unwrap_or(0);
            record::<ACCOUNT>(MessageKind::JoinWaiting, |e, ts| {
                e.push(
                    ts,
                    &Message::JoinWaiting {
                        task: task.as_u64(),
                        waiter,
                    },
                )
            });
        }

        fn on_complete(&self, _cpu: usize, task: TaskId, outcome: Outcome) {
            let outcome = match outcome {
                Outcome::Completed => proto::Outcome::Ok,
                Outcome::Cancelled => proto::Outcome::Cancelled,
                Outcome::Panicked => proto::Outcome::Panicked,
            };
            record::<ACCOUNT>(MessageKind::TaskCompleted, |e, ts| {
                e.push(
                    ts,
                    &Message::TaskCompleted {
                        task: task.as_u64(),
                        outcome,
                    },
                )
            });
        }

        fn on_drop(&self, task: TaskId) {
            record::<ACCOUNT>(MessageKind::TaskDropped, |e, ts| {
                e.push(ts, &Message::TaskDropped { task: task.as_u64() })
            });
        }

        fn on_steal(&self, task: TaskId, from: usize, to: usize) {
            record::<ACCOUNT>(MessageKind::Steal, |e, ts| {
                e.push(
                    ts,
                    &Message::Steal {
                        task: task.as_u64(),
                        from_cpu: from as u32,
                        to_cpu: to as u32,
                    },
                )
            });
        }

        fn on_idle(&self, _cpu: usize, entering: bool) {
            let (kind, msg) = if entering {
                (MessageKind::CpuIdle, Message::CpuIdle)
            } else {
                (MessageKind::CpuBusy, Message::CpuBusy)
            };
            record::<ACCOUNT>(kind, |e, ts| e.push(ts, &msg));
        }
    }

    /// Gives this thread's lane a ring (outside any measured run: this allocates).
    fn install_lane() {
        LANE.with_borrow_mut(|lane| {
            if lane.ring.buf.len() != RING_BYTES {
                // Written once so that no measured run takes the page faults of first
                // touching it (zeroed memory from the allocator is mapped lazily).
                let mut buf = vec![0; RING_BYTES];
                buf.fill(0xa5);
                lane.ring = ByteRing { buf, head: 0, used: 0 };
            }
        });
    }

    /// What one run left in this thread's lane.
    struct Drained {
        events: u64,
        dropped: u64,
        frames: u64,
        wire_bytes: u64,
        /// Events per kind as decoded from the sealed frames.
        decoded: [u64; KINDS],
        kinds: [KindSize; KINDS],
    }

    /// Seals the open frame and empties this thread's lane (the drain task's job in the
    /// kernel, done here between runs). With `decode`, decodes every frame and counts
    /// its events by kind.
    fn drain_lane(decode: bool) -> Drained {
        LANE.with_borrow_mut(|lane| {
            lane.seal();
            let mut d = Drained {
                events: lane.produced,
                dropped: lane.dropped,
                frames: 0,
                wire_bytes: 0,
                decoded: [0; KINDS],
                kinds: lane.kinds,
            };
            let mut frame = Vec::with_capacity(SEALED_MAX);
            while lane.ring.pop(&mut frame) {
                d.frames += 1;
                d.wire_bytes += frame.len() as u64;
                if decode {
                    let body = frame.len() - 1; // without the 0x00 delimiter
                    let decoded = proto::decode_frame(&mut frame[..body]).expect("a sealed frame decodes");
                    for event in decoded.events() {
                        d.decoded[event.expect("a sealed record decodes").message.kind() as usize] += 1;
                    }
                }
            }
            lane.produced = 0;
            lane.dropped = 0;
            lane.current = None;
            lane.kinds = [KindSize::default(); KINDS];
            d
        })
    }

    /// Hooks that record nothing: what merely having hooks installed costs the
    /// executor (dynamic calls, exact waker counts).
    struct NoopHooks;

    impl Hooks for NoopHooks {}

    static NOOP: NoopHooks = NoopHooks;

    /// Nanoseconds per timestamp read, the part of every event's cost that belongs to
    /// the machine rather than to the encoding (large on some virtual machines).
    fn clock_cost() -> f64 {
        const READS: u32 = 1_000_000;
        let start = Instant::now();
        let mut sum = 0u64;
        for _ in 0..READS {
            sum = sum.wrapping_add(std::hint::black_box(now()));
        }
        std::hint::black_box(sum);
        start.elapsed().as_secs_f64() * 1e9 / f64::from(READS)
    }

    fn trace_cost(runs: usize) {
        install_lane();
        let dropped = AtomicU64::new(0);
        let (sj_events, pp_events) = (AtomicU64::new(0), AtomicU64::new(0));
        let traced = |root: Root, events: &AtomicU64| {
            let s = lucid_run(1, Some(&TRACE), root);
            let d = drain_lane(false);
            dropped.fetch_add(d.dropped, Ordering::Relaxed);
            events.store(d.events, Ordering::Relaxed);
            s
        };
        let mut bare_sj = || lucid_run(1, None, spawn_join_root as Root);
        let mut noop_sj = || lucid_run(1, Some(&NOOP), spawn_join_root as Root);
        let mut traced_sj = || traced(spawn_join_root, &sj_events);
        let mut bare_pp = || lucid_run(1, None, ping_pong_root as Root);
        let mut noop_pp = || lucid_run(1, Some(&NOOP), ping_pong_root as Root);
        let mut traced_pp = || traced(ping_pong_root, &pp_events);
        let s = measure(
            runs,
            &mut [
                ("spawn_join lucid 1 CPU bare", &mut bare_sj),
                ("spawn_join lucid 1 CPU no-op hooks", &mut noop_sj),
                ("spawn_join lucid 1 CPU traced", &mut traced_sj),
                ("ping_pong lucid 1 CPU bare", &mut bare_pp),
                ("ping_pong lucid 1 CPU no-op hooks", &mut noop_pp),
                ("ping_pong lucid 1 CPU traced", &mut traced_pp),
            ],
        );
        let ns = |samples: &[Sample]| median_of(samples, |x| x.secs * 1e9 / x.polls as f64);
        for (name, i, events) in [
            ("spawn_join", 0, sj_events.load(Ordering::Relaxed)),
            ("ping_pong", 3, pp_events.load(Ordering::Relaxed)),
        ] {
            let (bare, noop, traced) = (ns(&s[i]), ns(&s[i + 1]), ns(&s[i + 2]));
            row(&format!("trace.{name}.ns_per_poll"), traced, Some(bare), "ns/poll");
            row(
                &format!("trace.{name}.overhead_ns_per_poll"),
                traced - bare,
                None,
                "ns/poll",
            );
            row(
                &format!("trace.{name}.noop_hooks_overhead_ns_per_poll"),
                noop - bare,
                None,
                "ns/poll",
            );
            let polls = s[i + 2].last().map_or(1, |x| x.polls.max(1));
            row(
                &format!("trace.{name}.events_per_poll"),
                events as f64 / polls as f64,
                None,
                "events/poll",
            );
        }
        let lost = dropped.load(Ordering::Relaxed) + REENTERED.load(Ordering::Relaxed);
        row("trace.dropped_events", lost as f64, None, "events");
        row(
            "trace.clock_read_ns",
            median((0..5).map(|_| clock_cost()).collect()),
            None,
            "ns/read",
        );
    }

    type BoxedRoot = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;
    /// A workload's root task, as one type for either workload.
    type Root = fn(&'static Runtime) -> BoxedRoot;

    fn spawn_join_root(rt: &'static Runtime) -> BoxedRoot {
        Box::pin(lucid_spawn_join(rt))
    }

    fn ping_pong_root(rt: &'static Runtime) -> BoxedRoot {
        Box::pin(lucid_ping_pong(rt))
    }

    // ---------------------------------------------------------------- (2) wire size

    /// Bytes per event by kind, from one untimed, accounted run of each workload: each
    /// kind's record bytes per event plus an equal share of the framing (headers, CRC,
    /// COBS, delimiters), as `lucid_protocol::testdata` reports them. Every sealed frame
    /// is decoded and its events counted against what was encoded.
    fn wire_size() {
        install_lane();
        for (workload, root) in [("spawn_join", spawn_join_root as Root), ("ping_pong", ping_pong_root)] {
            lucid_run(1, Some(&TRACE_ACCOUNTING), root);
            let d = drain_lane(true);
            let kept = d.events - d.dropped;
            let encoded: u64 = d.kinds.iter().map(|k| k.events).sum();
            assert_eq!(encoded, kept, "every kept event was accounted");
            for (i, kind) in MessageKind::ALL.iter().enumerate() {
                assert_eq!(
                    d.decoded[i],
                    d.kinds[i].events,
                    "{workload}: {} events decoded vs encoded",
                    kind.name()
                );
            }
            let records: u64 = d.kinds.iter().map(|k| k.record_bytes).sum();
            let framing = (d.wire_bytes - records) as f64 / kept as f64;
            let bytes = |k: MessageKind| {
                let s = d.kinds[k as usize];
                s.record_bytes as f64 / s.events.max(1) as f64 + framing
            };
            eprintln!(
                "bench: {workload} trace: {kept} events, {} dropped, {} frames, {} wire bytes",
                d.dropped, d.frames, d.wire_bytes
            );
            let prefix = format!("bytes.{workload}");
            let start = d.kinds[MessageKind::PollStart as usize];
            let end = d.kinds[MessageKind::PollEnd as usize];
            let poll_events = start.events + end.events;
            let poll_avg = (start.record_bytes + end.record_bytes) as f64 / poll_events.max(1) as f64 + framing;
            row(&format!("{prefix}.poll_start_end_avg"), poll_avg, None, "B/event");
            row(&format!("{prefix}.per_poll"), 2.0 * poll_avg, None, "B/poll");
            row(
                &format!("{prefix}.all_events"),
                d.wire_bytes as f64 / kept.max(1) as f64,
                None,
                "B/event",
            );
            for kind in MessageKind::ALL {
                if d.kinds[*kind as usize].events > 0 {
                    row(&format!("{prefix}.{}", kind.name()), bytes(*kind), None, "B/event");
                }
            }
        }
    }
}
