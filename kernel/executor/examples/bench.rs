//! Host benchmark of `lucid-executor` against tokio, and of the cost of tracing it.
//! `cargo xtask bench [--quick]` builds this in release, runs it and collects its output;
//! `docs/benchmarks.md` explains every workload.
//!
//! ```text
//! bench [--quick] [--runs N] [--only throughput|trace|bytes] [--record FILE.lucid]
//! ```
//!
//! `--record` also writes the frames of the `bytes` section's spawn_join run as a
//! `.lucid` recording (after a Hello with this machine's TSC rate), for `lucid export`.
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
    use std::cell::Cell;
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
    use std::sync::{Barrier, OnceLock};
    use std::time::Instant;

    use lucid_executor::{
        Hooks, Outcome, Platform, PollResult, Runtime, SpawnInfo, TaskId, TaskKind, TaskStats, ThreadPlatform,
    };
    use lucid_protocol::{self as proto, Message, MessageKind, Ring, StreamId};
    use lucid_trace::{Event, Producer};

    // The workloads' sizes and their tokio side are shared with the console-subscriber
    // anchor, so both time the same work.
    use tokio_console_anchor::median;
    use tokio_console_anchor::workloads::{
        CHANNEL_CAPACITY, PAIRS, TASKS, TRIPS, YIELDS, ping_pong as tokio_ping_pong, spawn_join as tokio_spawn_join,
    };

    pub fn main() {
        let mut quick = false;
        let mut runs = None;
        let mut only = None;
        let mut record = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--runs" => runs = args.next().and_then(|n| n.parse::<usize>().ok()).filter(|&n| n > 0),
                "--only" => only = args.next(),
                "--record" => record = args.next().map(std::path::PathBuf::from),
                other => {
                    eprintln!(
                        "unknown argument {other:?}; usage: bench [--quick] [--runs N] [--only throughput|trace|bytes] [--record FILE.lucid]"
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
            wire_size(record.as_deref());
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

    /// Whether the next runs start with tracing paused (the host's Pause): the hooks'
    /// gate closed, as the kernel's trace layer closes it.
    static HOOKS_PAUSED: AtomicBool = AtomicBool::new(false);

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
        // As the kernel's trace layer does while the host has paused the stream.
        rt.set_hooks_enabled(!HOOKS_PAUSED.load(Ordering::Relaxed));
        set_current_runtime(rt, platform);
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

    /// Raw bytes per frame, as in the kernel's trace layer (`trace::FRAME_BYTES`).
    const FRAME_BYTES: usize = 4096;
    /// Record ring per CPU: room for a whole run of either workload (32 B per record,
    /// about 3.5 M records for spawn_join), so the measured cost is recording, not the
    /// cheaper drop path. Drops are counted and reported all the same. (The kernel's
    /// rings hold 64 Ki records, emptied by its drain task while the CPU runs.)
    const RING_SLOTS: usize = 1 << 22;
    /// CPUs of the traced runtimes (every traced run is a 1-CPU run).
    const TRACE_CPUS: usize = 1;
    const KINDS: usize = MessageKind::ALL.len();

    /// The producers of every traced CPU, as the kernel's `trace::cpus()`: one
    /// `lucid_trace::Producer` per CPU for task context (a host thread takes no
    /// interrupts, so the kernel's interrupt-context producer has no counterpart here).
    static PRODUCERS: OnceLock<Vec<Producer>> = OnceLock::new();

    /// The runtime of the run in progress (the kernel's `sched::try_runtime()`), for the
    /// current task and the current CPU.
    static RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());
    /// Its platform: `current_cpu` is the CPU the calling thread entered as (the
    /// kernel's `percpu::try_current()`).
    static PLATFORM: AtomicPtr<ThreadPlatform> = AtomicPtr::new(std::ptr::null_mut());

    /// Makes `rt` and `platform` the ones the trace hooks see (before a run starts).
    fn set_current_runtime(rt: &'static Runtime, platform: &'static ThreadPlatform) {
        RUNTIME.store(std::ptr::from_ref(rt).cast_mut(), Ordering::Release);
        PLATFORM.store(std::ptr::from_ref(platform).cast_mut(), Ordering::Release);
    }

    fn current_runtime() -> Option<&'static Runtime> {
        // SAFETY: the pointer is null or comes from a leaked `&'static Runtime`.
        unsafe { RUNTIME.load(Ordering::Acquire).as_ref() }
    }

    fn current_cpu() -> Option<usize> {
        // SAFETY: the pointer is null or comes from a leaked `&'static ThreadPlatform`.
        unsafe { PLATFORM.load(Ordering::Acquire).as_ref() }.and_then(|p| p.current_cpu())
    }

    /// Sets up the producers (outside any measured run: this allocates).
    fn install_producers() {
        PRODUCERS.get_or_init(|| {
            (0..TRACE_CPUS as u32)
                .map(|c| {
                    let producer = Producer::new(StreamId::new(c, Ring::Task), FRAME_BYTES, RING_SLOTS);
                    prefault(&producer);
                    producer
                })
                .collect()
        });
    }

    /// Writes every slot of `producer`'s ring once and empties it again, so that no
    /// measured run takes the page faults of first touching it (zeroed memory from the
    /// allocator is mapped lazily).
    fn prefault(producer: &Producer) {
        for _ in 0..producer.ring.capacity() {
            // SAFETY: no runtime runs yet; this thread is the only producer.
            unsafe { producer.event(Event::CpuBusy, now) };
        }
        drain_producers_of(producer);
    }

    /// TSC ticks (or `now()` units) per second, measured against the OS clock.
    fn ticks_per_second() -> u64 {
        let (start, ts) = (Instant::now(), now());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let ticks = now().wrapping_sub(ts);
        (ticks as f64 / start.elapsed().as_secs_f64()) as u64
    }

    fn now() -> u64 {
        // The kernel stamps events with the TSC; so does this, for the same deltas.
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: RDTSC has no preconditions; it only reads the time-stamp counter.
            unsafe { core::arch::x86_64::_rdtsc() }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            static EPOCH: OnceLock<Instant> = OnceLock::new();
            EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
        }
    }

    thread_local! {
        /// The producer of the CPU this thread is (a thread is one CPU for its whole
        /// life), found once: what the kernel reaches through its per-CPU block.
        static CPU_PRODUCER: Cell<Option<&'static Producer>> = const { Cell::new(None) };
    }

    /// Runs `f` on the current CPU's producer: the kernel's `trace::with_producer`,
    /// with a thread-local load standing for the kernel's load through the GS base, and
    /// without what a host thread does not need (choosing the interrupt-context
    /// producer).
    #[inline]
    fn with_producer(f: impl FnOnce(&Producer)) {
        let producer = CPU_PRODUCER.get().or_else(|| {
            let found = current_cpu().and_then(|cpu| PRODUCERS.get()?.get(cpu));
            CPU_PRODUCER.set(found);
            found
        });
        if let Some(producer) = producer {
            f(producer);
        }
    }

    fn sched_current_task() -> Option<TaskId> {
        current_runtime().and_then(Runtime::current_task)
    }

    /// The kernel's executor hooks (`kernel/src/trace`, `TraceHooks`), on host threads:
    /// the same records, stamped with `rdtsc` in the same places, into the same
    /// `lucid_trace::Producer`s.
    struct TraceHooks;

    static TRACE: TraceHooks = TraceHooks;

    fn poll_result(r: PollResult) -> proto::PollResult {
        match r {
            PollResult::Ready | PollResult::ReadyJoined => proto::PollResult::Ready,
            PollResult::Pending => proto::PollResult::Pending,
            PollResult::PendingSchedule => proto::PollResult::PendingWoken,
        }
    }

    // Every hook body runs inside `with_producer`, which hands it this thread's CPU's
    // producer: the contract of `Producer`'s unsafe methods.
    impl Hooks for TraceHooks {
        fn on_spawn(&self, info: &SpawnInfo<'_>) {
            // SAFETY: see above.
            with_producer(|producer| unsafe {
                let at = producer.spawned(
                    info.id.as_u64(),
                    info.parent.map(TaskId::as_u64),
                    info.kind == TaskKind::Wasm,
                    info.name.unwrap_or(""),
                    info.location,
                    now,
                );
                info.stats.spawned(at);
            });
        }

        fn on_poll_start(&self, _cpu: usize, task: TaskId, stats: &TaskStats) {
            // SAFETY: see above.
            with_producer(|producer| unsafe { stats.poll_started(producer.poll_start(task.as_u64(), now)) });
        }

        fn on_poll_end(&self, _cpu: usize, task: TaskId, result: PollResult, stats: &TaskStats) {
            // SAFETY: see above.
            with_producer(|producer| unsafe {
                stats.poll_ended(producer.poll_end(task.as_u64(), poll_result(result), now));
            });
        }

        fn on_wake(&self, task: TaskId, by_ref: bool, self_wake: bool, waker: Option<TaskId>, stats: &TaskStats) {
            // No interrupt handlers on a host thread: no `Waker::Interrupt`.
            let waker = waker.map_or(proto::Waker::None, |t| proto::Waker::Task(proto::TaskId(t.as_u64())));
            // SAFETY: see above.
            with_producer(|producer| unsafe {
                stats.woken(producer.wake(task.as_u64(), waker, by_ref, self_wake, now));
            });
        }

        fn on_waker_clone(&self, task: TaskId, count: usize) {
            // SAFETY: see above.
            with_producer(|producer| unsafe { producer.waker_count(task.as_u64(), count as u64, true, now) });
        }

        fn on_waker_drop(&self, task: TaskId, count: usize) {
            // SAFETY: see above.
            with_producer(|producer| unsafe { producer.waker_count(task.as_u64(), count as u64, false, now) });
        }

        fn on_join_waiting(&self, task: TaskId) {
            let waiter = sched_current_task().map_or(0, TaskId::as_u64);
            // SAFETY: see above.
            with_producer(|producer| unsafe {
                producer.event(
                    Event::JoinWaiting {
                        task: task.as_u64(),
                        waiter,
                    },
                    now,
                );
            });
        }

        fn on_complete(&self, _cpu: usize, task: TaskId, outcome: Outcome) {
            let outcome = match outcome {
                Outcome::Ok => proto::Outcome::Ok,
                Outcome::Cancelled => proto::Outcome::Cancelled,
                Outcome::Panicked => proto::Outcome::Panicked,
            };
            // SAFETY: see above.
            with_producer(|producer| unsafe {
                producer.event(
                    Event::TaskCompleted {
                        task: task.as_u64(),
                        outcome,
                    },
                    now,
                );
            });
        }

        fn on_drop(&self, task: TaskId) {
            // SAFETY: see above.
            with_producer(|producer| unsafe { producer.event(Event::TaskDropped { task: task.as_u64() }, now) });
        }

        fn on_steal(&self, task: TaskId, from: usize, to: usize) {
            // SAFETY: see above.
            with_producer(|producer| unsafe {
                producer.event(
                    Event::Steal {
                        task: task.as_u64(),
                        from: from as u32,
                        to: to as u32,
                    },
                    now,
                );
            });
        }

        fn on_idle(&self, _cpu: usize, entering: bool) {
            // SAFETY: see above.
            with_producer(|producer| unsafe {
                producer.time_passes();
                producer.event(if entering { Event::CpuIdle } else { Event::CpuBusy }, now);
                if entering {
                    producer.time_passes();
                }
            });
        }
    }

    /// Count and record bytes of one kind of event.
    #[derive(Clone, Copy, Default)]
    struct KindSize {
        events: u64,
        record_bytes: u64,
    }

    /// What one run left in the producers.
    struct Drained {
        events: u64,
        dropped: u64,
        /// Clock reads the producers made.
        clock_reads: u64,
        frames: u64,
        wire_bytes: u64,
        /// Seconds the drain took to frame and seal every record (the kernel's drain
        /// task's work, off the polling CPU).
        drain_secs: f64,
        /// Events per kind as decoded from the sealed frames.
        decoded: [u64; KINDS],
        kinds: [KindSize; KINDS],
    }

    /// Frames and empties one producer's ring, discarding the frames (for pre-faulting).
    fn drain_producers_of(producer: &Producer) {
        // SAFETY: no runtime runs; this thread is the only consumer.
        while !unsafe { producer.frame(true, &mut |_, _| true) } {}
        producer.reset_counts();
    }

    /// Frames every record left in the producers into sealed frames (the kernel's drain
    /// task's job, done here after a run, with the runtime stopped, and timed), and
    /// restarts the producers' counts. With `account`, also adds up each kind's record
    /// bytes and decodes every frame to count its events by kind (untimed). With `keep`,
    /// the sealed frames are also appended to it as they came off the rings.
    fn drain_producers(account: bool, keep: Option<&mut Vec<u8>>) -> Drained {
        let mut d = Drained {
            events: 0,
            dropped: 0,
            clock_reads: 0,
            frames: 0,
            wire_bytes: 0,
            drain_secs: 0.0,
            decoded: [0; KINDS],
            kinds: [KindSize::default(); KINDS],
        };
        let mut sealed: Vec<u8> = Vec::new();
        for producer in PRODUCERS.get().into_iter().flatten() {
            let start = Instant::now();
            let mut out = |_events: u32, frame: &[u8]| {
                d.frames += 1;
                d.wire_bytes += frame.len() as u64;
                if account || keep.is_some() {
                    sealed.extend_from_slice(frame);
                }
                true
            };
            let mut observe = |kind: MessageKind, bytes: usize| {
                d.kinds[kind as usize].events += 1;
                d.kinds[kind as usize].record_bytes += bytes as u64;
            };
            // SAFETY: between runs no executor thread is left, and this is the only
            // thread touching the producers.
            let done = unsafe {
                if account {
                    producer.frame_observed(true, &mut out, Some(&mut observe))
                } else {
                    producer.frame(true, &mut out)
                }
            };
            assert!(done, "the bench's output takes every frame");
            d.drain_secs += start.elapsed().as_secs_f64();
            d.events += producer.produced.load(Ordering::Relaxed);
            d.dropped += producer.dropped_total();
            d.clock_reads += producer.clock_reads.load(Ordering::Relaxed);
            producer.reset_counts();
        }
        if account {
            for frame in sealed.split_inclusive(|&b| b == 0) {
                let mut frame = frame.to_vec();
                let body = frame.len() - 1; // without the 0x00 delimiter
                let decoded = proto::decode_frame(&mut frame[..body]).expect("a sealed frame decodes");
                for event in decoded.events() {
                    d.decoded[event.expect("a sealed record decodes").message.kind() as usize] += 1;
                }
            }
        }
        if let Some(keep) = keep {
            keep.extend_from_slice(&sealed);
        }
        d
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

    /// Median over rounds of the paired difference `a − b` of two configurations'
    /// per-run figures (each round runs every configuration once, so a pair shares the
    /// machine's state of that moment).
    fn paired_median(a: &[Sample], b: &[Sample], figure: impl Fn(&Sample) -> f64) -> f64 {
        median(a.iter().zip(b).map(|(a, b)| figure(a) - figure(b)).collect())
    }

    /// What the traced runs of one workload left behind, summed over its runs.
    #[derive(Default)]
    struct TracedTotals {
        events: AtomicU64,
        clock_reads: AtomicU64,
        polls: AtomicU64,
        /// Drain time per run, in nanoseconds, in round order (the warm-up's first).
        drain_ns: std::sync::Mutex<Vec<f64>>,
    }

    fn trace_cost(runs: usize) {
        install_producers();
        let dropped = AtomicU64::new(0);
        let (sj, pp) = (TracedTotals::default(), TracedTotals::default());
        let traced = |root: Root, totals: &TracedTotals| {
            let s = lucid_run(1, Some(&TRACE), root);
            let d = drain_producers(false, None);
            dropped.fetch_add(d.dropped, Ordering::Relaxed);
            totals.events.fetch_add(d.events, Ordering::Relaxed);
            totals.clock_reads.fetch_add(d.clock_reads, Ordering::Relaxed);
            totals.polls.fetch_add(s.polls, Ordering::Relaxed);
            totals
                .drain_ns
                .lock()
                .expect("not poisoned")
                .push(d.drain_secs * 1e9 / s.polls.max(1) as f64);
            s
        };
        let paused = |root: Root| {
            HOOKS_PAUSED.store(true, Ordering::Relaxed);
            let s = lucid_run(1, Some(&TRACE), root);
            HOOKS_PAUSED.store(false, Ordering::Relaxed);
            drain_producers(false, None);
            s
        };
        let mut bare_sj = || lucid_run(1, None, spawn_join_root as Root);
        let mut noop_sj = || lucid_run(1, Some(&NOOP), spawn_join_root as Root);
        let mut traced_sj = || traced(spawn_join_root, &sj);
        let mut paused_sj = || paused(spawn_join_root);
        let mut bare_pp = || lucid_run(1, None, ping_pong_root as Root);
        let mut noop_pp = || lucid_run(1, Some(&NOOP), ping_pong_root as Root);
        let mut traced_pp = || traced(ping_pong_root, &pp);
        let mut paused_pp = || paused(ping_pong_root);
        let s = measure(
            runs,
            &mut [
                ("spawn_join lucid 1 CPU bare", &mut bare_sj),
                ("spawn_join lucid 1 CPU no-op hooks", &mut noop_sj),
                ("spawn_join lucid 1 CPU traced", &mut traced_sj),
                ("spawn_join lucid 1 CPU traced, paused", &mut paused_sj),
                ("ping_pong lucid 1 CPU bare", &mut bare_pp),
                ("ping_pong lucid 1 CPU no-op hooks", &mut noop_pp),
                ("ping_pong lucid 1 CPU traced", &mut traced_pp),
                ("ping_pong lucid 1 CPU traced, paused", &mut paused_pp),
            ],
        );
        let lost = dropped.load(Ordering::Relaxed);
        // With events dropped the figures are those of the cheaper drop path: the
        // overhead rows are left without a figure, which counts as a missed goal.
        let kept = |v: f64| if lost == 0 { v } else { f64::NAN };
        let ns = |x: &Sample| x.secs * 1e9 / x.polls as f64;
        for (name, i, totals) in [("spawn_join", 0, &sj), ("ping_pong", 4, &pp)] {
            let (bare, noop, traced, paused) = (&s[i], &s[i + 1], &s[i + 2], &s[i + 3]);
            row(
                &format!("trace.{name}.ns_per_poll"),
                median_of(traced, ns),
                Some(median_of(bare, ns)),
                "ns/poll",
            );
            // The warm-up's drain is not part of the rounds.
            let drain: Vec<f64> = totals.drain_ns.lock().expect("not poisoned")[1..].to_vec();
            let producer = paired_median(traced, bare, ns);
            let total = median(
                traced
                    .iter()
                    .zip(bare)
                    .zip(&drain)
                    .map(|((t, b), d)| ns(t) - ns(b) + d)
                    .collect(),
            );
            row(
                &format!("trace.{name}.producer_overhead_ns_per_poll"),
                kept(producer),
                None,
                "ns/poll",
            );
            row(
                &format!("trace.{name}.drain_ns_per_poll"),
                kept(median(drain.clone())),
                None,
                "ns/poll",
            );
            let (events, polls) = (
                totals.events.load(Ordering::Relaxed) as f64,
                totals.polls.load(Ordering::Relaxed).max(1) as f64,
            );
            row(
                &format!("trace.{name}.drain_ns_per_event"),
                kept(median(drain) * polls / events.max(1.0)),
                None,
                "ns/event",
            );
            row(
                &format!("trace.{name}.overhead_ns_per_poll"),
                kept(total),
                None,
                "ns/poll",
            );
            row(
                &format!("trace.{name}.paused_overhead_ns_per_poll"),
                paired_median(paused, bare, ns),
                None,
                "ns/poll",
            );
            row(
                &format!("trace.{name}.noop_hooks_overhead_ns_per_poll"),
                paired_median(noop, bare, ns),
                None,
                "ns/poll",
            );
            row(
                &format!("trace.{name}.events_per_poll"),
                events / polls,
                None,
                "events/poll",
            );
            row(
                &format!("trace.{name}.clock_reads_per_poll"),
                totals.clock_reads.load(Ordering::Relaxed) as f64 / polls,
                None,
                "reads/poll",
            );
        }
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
    /// Polls in a drained trace (one PollStart each).
    fn start_polls(d: &Drained) -> u64 {
        d.kinds[MessageKind::PollStart as usize].events.max(1)
    }

    /// Writes `frames` (sealed, as drained) as a `.lucid` recording, after a control
    /// frame with the Hello a kernel sends first: the console needs its TSC rate.
    fn write_recording(path: &std::path::Path, boot_tsc: u64, frames: &[u8]) {
        use std::io::Write;

        let mut hello = proto::FrameEncoder::new(vec![0; FRAME_BYTES], StreamId::new(0, Ring::Control));
        hello
            .push(
                boot_tsc,
                &Message::Hello(proto::Hello {
                    major: u16::from(proto::MAJOR),
                    minor: proto::MINOR,
                    build_id: "bench",
                    tsc_hz: ticks_per_second(),
                    cpus: TRACE_CPUS as u32,
                    boot_tsc,
                }),
            )
            .expect("a Hello fits a frame");
        let mut sealed = vec![0; hello.max_finished_len()];
        let n = hello.finish(&mut sealed).expect("max_finished_len fits");
        let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        let mut w = proto::recording::RecordingWriter::new(std::io::BufWriter::new(file)).expect("write the header");
        let rx_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        w.write_chunk(rx_ns, &sealed[..n]).expect("write the Hello");
        w.write_chunk(rx_ns, frames).expect("write the frames");
        w.into_inner()
            .expect("flush the recording")
            .flush()
            .expect("flush the recording");
    }

    fn wire_size(record: Option<&std::path::Path>) {
        install_producers();
        for (workload, root) in [("spawn_join", spawn_join_root as Root), ("ping_pong", ping_pong_root)] {
            let t0 = now();
            lucid_run(1, Some(&TRACE), root);
            let mut frames = Vec::new();
            let keep = record.is_some() && workload == "spawn_join";
            let d = drain_producers(true, keep.then_some(&mut frames));
            if let (true, Some(path)) = (keep, record) {
                write_recording(path, t0, &frames);
                eprintln!("bench: {workload} trace written to {}", path.display());
            }
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
            // Every byte of the trace per poll, to hold against other tools' whole output.
            row(
                &format!("{prefix}.all_bytes_per_poll"),
                d.wire_bytes as f64 / start_polls(&d) as f64,
                None,
                "B/poll",
            );
            row(&format!("{prefix}.events"), kept as f64, None, "events");
            row(&format!("{prefix}.polls"), start_polls(&d) as f64, None, "polls");
            for kind in MessageKind::ALL {
                if d.kinds[*kind as usize].events > 0 {
                    row(&format!("{prefix}.{}", kind.name()), bytes(*kind), None, "B/event");
                }
            }
        }
    }
}
