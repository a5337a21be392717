//! `workload=trace-bench`: what tracing costs the kernel itself, for `cargo xtask
//! bench`. The host bench cannot see the kernel's own costs (the per-CPU lookup
//! through the GS base, the interrupt-depth check, interrupt masking, the drain
//! sharing the CPU with the work it drains), so the same two workloads run here, in
//! one boot, with tracing off (each hook returns after one load), recording, and
//! paused, in rounds that rotate the order. Meant for one CPU: the drain's framing
//! then runs on the CPU whose polls it frames, and a recording sample lasts until
//! every ring is empty, so its time is producer + drain.
//!
//! The drain's busy time ([`trace::drain::busy_ticks`]) splits a recording sample's
//! overhead into the drain's part and the producers'. Figures are medians of
//! per-round pairs (recording − off, recording ÷ off), printed to COM1 as
//! `bench NAME VALUE UNIT` lines; the boot ends with QEMU's exit (a failure when a
//! workload did not do its work).

use alloc::{boxed::Box, format, vec::Vec};
use core::{
    pin::Pin,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use lucid_executor::{sync::mpsc, yield_now};

use crate::{sched, time::Instant, trace};

/// Rounds; each round runs every mode of both workloads once.
const ROUNDS: usize = 9;
/// spawn_join: tasks spawned and joined per sample, each yielding this often.
const TASKS: usize = 2_000;
const YIELDS: usize = 10;
/// ping_pong: pairs of tasks per sample, each exchanging this many round trips over
/// channels of one slot.
const PAIRS: usize = 50;
const TRIPS: u32 = 100;

/// A workload did not do its work (a round trip went missing): its samples would
/// time something else, so the boot ends with a failure instead of rows.
static BROKEN: AtomicBool = AtomicBool::new(false);

/// What tracing does during a sample.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Off,
    Recording,
    Paused,
}

const MODES: [Mode; 3] = [Mode::Off, Mode::Recording, Mode::Paused];

/// A workload: one sample's work, as a fresh future.
type Work = fn() -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// One timed sample.
#[derive(Clone, Copy, Default)]
struct Sample {
    ns: f64,
    /// Polls the schedulers counted (the drain's included).
    polls: u64,
    /// Events the producers counted as produced and as dropped.
    produced: u64,
    dropped: u64,
    /// Time the drain spent framing and writing (part of `ns`).
    drain_ns: f64,
    /// Of `drain_ns`, the time spent in the port's writes.
    write_ns: f64,
}

fn set_mode(mode: Mode) {
    trace::set_enabled(mode != Mode::Off);
    trace::set_paused(mode == Mode::Paused);
}

fn polls() -> u64 {
    sched::runtime().schedulers().iter().map(|s| s.counters().polls).sum()
}

fn event_counts() -> (u64, u64) {
    trace::cpus()
        .iter()
        .flat_map(|c| [&c.task, &c.irq])
        .fold((0, 0), |(p, d), producer| {
            (p + producer.produced_total(), d + producer.dropped_total())
        })
}

fn rings_empty() -> bool {
    trace::cpus()
        .iter()
        .all(|c| c.task.ring.is_empty() && c.irq.ring.is_empty())
}

async fn spawn_join() {
    let rt = sched::runtime();
    let mut handles = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        handles.push(rt.builder().name("yielder").spawn(async {
            for _ in 0..YIELDS {
                yield_now().await;
            }
        }));
    }
    for handle in handles {
        let _ = handle.await;
    }
}

async fn ping_pong() {
    let rt = sched::runtime();
    let mut handles = Vec::with_capacity(2 * PAIRS);
    for _ in 0..PAIRS {
        let (ping_tx, mut ping_rx) = mpsc::channel::<u32>(1);
        let (pong_tx, mut pong_rx) = mpsc::channel::<u32>(1);
        handles.push(rt.builder().name("ping").spawn(async move {
            for i in 0..TRIPS {
                if ping_tx.send(i).await.is_err() || pong_rx.recv().await != Some(i) {
                    log::error!("trace bench: a pong went missing");
                    BROKEN.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }));
        handles.push(rt.builder().name("pong").spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v).await.is_err() {
                    return;
                }
            }
        }));
    }
    for handle in handles {
        let _ = handle.await;
    }
}

/// Runs `work` once in `mode`; a recording sample ends when the drain has taken
/// every record of it out of the rings.
async fn sample(mode: Mode, work: Work) -> Sample {
    set_mode(mode);
    let (polls0, (produced0, dropped0)) = (polls(), event_counts());
    let (drain0, write0) = (trace::drain::busy_ticks(), trace::drain::write_ticks());
    let t = Instant::now();
    work().await;
    // Off first: this task's own polls while it waits would refill the rings.
    set_mode(Mode::Off);
    while !rings_empty() {
        yield_now().await;
    }
    let ns = t.elapsed().as_nanos() as f64;
    let (produced1, dropped1) = event_counts();
    let drain_ticks = trace::drain::busy_ticks() - drain0;
    let write_ticks = trace::drain::write_ticks() - write0;
    Sample {
        ns,
        polls: polls() - polls0,
        produced: produced1 - produced0,
        dropped: dropped1 - dropped0,
        drain_ns: crate::time::ticks_to_duration(drain_ticks).as_nanos() as f64,
        write_ns: crate::time::ticks_to_duration(write_ticks).as_nanos() as f64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn report(name: &str, value: f64, unit: &str) {
    crate::println!("bench {name} {value:.3} {unit}");
}

/// Measures both workloads and prints their rows; the recording samples' drops are
/// summed into `dropped`.
async fn measure(name: &str, work: Work, dropped: &mut u64) {
    // One untimed sample per mode first: the heap and the rings warm up.
    for mode in MODES {
        sample(mode, work).await;
    }
    let mut rounds: Vec<[Sample; 3]> = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let mut got = [Sample::default(); 3];
        for k in 0..MODES.len() {
            let i = (round + k) % MODES.len();
            got[i] = sample(MODES[i], work).await;
        }
        rounds.push(got);
    }
    let [off, rec, paused] = [0, 1, 2];
    *dropped += rounds.iter().map(|r| r[rec].dropped).sum::<u64>();
    // Per poll of the workload: the polls counted with tracing off (the drain
    // polls more while it has records to frame, and those polls are its cost).
    let polls = median(rounds.iter().map(|r| r[off].polls as f64).collect()).max(1.0);
    let per_poll = |a: usize, b: usize| median(rounds.iter().map(|r| (r[a].ns - r[b].ns) / polls).collect());
    let ratio = |a: usize, b: usize| median(rounds.iter().map(|r| r[a].ns / r[b].ns).collect());
    report(
        &format!("kernel.{name}.off_ns_per_poll"),
        median(rounds.iter().map(|r| r[off].ns / polls).collect()),
        "ns/poll",
    );
    report(
        &format!("kernel.{name}.trace_overhead_ns_per_poll"),
        per_poll(rec, off),
        "ns/poll",
    );
    let drain = median(rounds.iter().map(|r| r[rec].drain_ns / polls).collect());
    report(&format!("kernel.{name}.drain_ns_per_poll"), drain, "ns/poll");
    report(
        &format!("kernel.{name}.drain_write_ns_per_poll"),
        median(rounds.iter().map(|r| r[rec].write_ns / polls).collect()),
        "ns/poll",
    );
    report(
        &format!("kernel.{name}.producer_overhead_ns_per_poll"),
        median(
            rounds
                .iter()
                .map(|r| (r[rec].ns - r[rec].drain_ns - r[off].ns) / polls)
                .collect(),
        ),
        "ns/poll",
    );
    report(&format!("kernel.{name}.traced_vs_off"), ratio(rec, off), "x");
    report(
        &format!("kernel.{name}.paused_overhead_ns_per_poll"),
        per_poll(paused, off),
        "ns/poll",
    );
    report(&format!("kernel.{name}.paused_vs_off"), ratio(paused, off), "x");
    report(
        &format!("kernel.{name}.events_per_poll"),
        median(rounds.iter().map(|r| r[rec].produced as f64 / polls).collect()),
        "events/poll",
    );
}

/// Waits for a host to read the stream, measures, reports, and ends QEMU.
pub async fn run() {
    // A host that reads is part of what recording costs (the drain writes, and
    // waits when the port is full).
    let waited = Instant::now();
    while !trace::drain::host_connected() {
        if waited.elapsed() > Duration::from_secs(30) {
            log::error!("trace bench: no host read the trace port within 30 s");
            crate::qemu::exit(crate::qemu::ExitCode::Failure);
        }
        sched::sleep(Duration::from_millis(10)).await;
    }
    let mut dropped = 0;
    measure("spawn_join", || Box::pin(spawn_join()), &mut dropped).await;
    measure("ping_pong", || Box::pin(ping_pong()), &mut dropped).await;
    if BROKEN.load(Ordering::Relaxed) {
        crate::qemu::exit(crate::qemu::ExitCode::Failure);
    }
    report("kernel.trace_bench.dropped_events", dropped as f64, "events");
    set_mode(Mode::Recording);
    // Let the log drain before the boot ends.
    sched::sleep(Duration::from_millis(10)).await;
    crate::qemu::exit(crate::qemu::ExitCode::Success);
}
