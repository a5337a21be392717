//! Built-in workloads, chosen with `workload=` on the kernel command line:
//!
//! - `demo` (default): a mix that never ends, so the console always has something real
//!   to show: ping-pong pairs over channels, periodic sleepers, CPU-bound workers that
//!   yield, and a spawner of short-lived tasks; plus every guest module of the boot
//!   bundle marked autostart (`kernel/guests/manifest.toml`).
//! - `burst:N`: N tasks (ping-pong pairs, yielders and sleepers spread over every CPU),
//!   then a final flush of the trace and QEMU exits (end-to-end tests).
//! - `soak:SECS`: a steady stream of events for SECS seconds, then the same ending.
//! - `steady:SECS`: a fixed set of tasks that yield and sleep for SECS seconds and
//!   spawn nothing, so the kernel heap stays level (checks that measure the heap),
//!   then the same ending.
//! - `hostile`: the demo, plus after 1 s guests that ignore the kernel's refusals
//!   (`hostile_pin`, `hostile_storm`, `hostile_log`) and one that forges a handle
//!   (`t_forge_handle`): the kernel kills or traps each with a named reason while
//!   the demo runs on.
//! - `panic`: the demo, plus a task that panics every few seconds (in turn a
//!   `panic!`, an `unwrap` on `None` and an out-of-bounds index); each panic ends
//!   only its task and the kernel stays up.
//! - `deadlock`: the demo, plus a few rounds of tasks that can never finish: a
//!   two-task deadlock over join handles, a task that loses its waker and a task
//!   stuck joining it (see [`deadlock`]).
//! - `wasm-bench`: the wasm host's measurements for `cargo xtask bench`, then QEMU
//!   exits.
//! - `trace-bench`: what tracing costs the kernel (off, recording and paused, in one
//!   boot) for `cargo xtask bench`, then QEMU exits (see [`trace_bench`]).
//! - `link-bench:SECS`: the trace link's raw rate, then an event flood through the
//!   trace, for `cargo xtask bench`; started from `lib.rs` because it owns the trace
//!   port before the drain does (see [`crate::link_bench`]).

use alloc::vec::Vec;
use core::time::Duration;

use lucid_executor::{FrameExt, sync::mpsc, yield_now};

use crate::{arch::percpu, sched, trace};

mod deadlock;
mod trace_bench;

/// Starts the workload the command line names.
pub fn start(cmdline: &str) {
    let rt = sched::runtime();
    match crate::cmdline::get(cmdline, "workload").unwrap_or("demo") {
        "demo" => start_demo(),
        "panic" => {
            start_demo();
            rt.builder().name("panicker").spawn(panicker());
        }
        "deadlock" => {
            start_demo();
            rt.builder().name("doomed-rounds").spawn(deadlock::doomed_rounds());
        }
        "hostile" => {
            start_demo();
            rt.builder().name("hostile").spawn(hostile());
        }
        "none" => {}
        "wasm-bench" => {
            rt.builder().name("wasm-bench").spawn(async {
                let result = match crate::wasm::runtime() {
                    Some(wasm) => crate::wasm::bench::run(wasm).await,
                    None => Err("no wasm runtime".into()),
                };
                match result {
                    Ok(()) => crate::qemu::exit(crate::qemu::ExitCode::Success),
                    Err(e) => {
                        log::error!("wasm bench failed: {e}");
                        crate::qemu::exit(crate::qemu::ExitCode::Failure)
                    }
                }
            });
        }
        "trace-bench" => {
            rt.builder().name("trace-bench").spawn(trace_bench::run());
        }
        spec => {
            if let Some(n) = spec.strip_prefix("burst:").and_then(|n| n.parse().ok()) {
                rt.builder().name("burst").spawn(async move {
                    burst(n).await;
                    run_on_every_cpu().await;
                    trace::drain::finish_and_exit();
                });
            } else if let Some(secs) = spec.strip_prefix("soak:").and_then(|n| n.parse().ok()) {
                rt.builder().name("soak").spawn(async move {
                    soak(Duration::from_secs(secs)).await;
                    trace::drain::finish_and_exit();
                });
            } else if let Some(secs) = spec.strip_prefix("steady:").and_then(|n| n.parse().ok()) {
                rt.builder().name("steady").spawn(async move {
                    steady(Duration::from_secs(secs)).await;
                    trace::drain::finish_and_exit();
                });
            } else {
                log::warn!(
                    "unknown workload `{spec}` (expected demo, hostile, panic, deadlock, none, wasm-bench, trace-bench, burst:N, soak:SECS, steady:SECS or link-bench:SECS)"
                );
            }
        }
    }
}

/// The demo mix and the autostart guests.
fn start_demo() {
    sched::runtime().builder().name("demo").spawn(demo());
    if let Some(wasm) = crate::wasm::runtime() {
        // Not inside the macro: `log` skips its arguments below the level.
        let started = wasm.autostart();
        log::info!("wasm: {started} guest instances started");
    }
}

/// Starts the hostile guests after 1 s (so a console that connects at boot sees
/// them from the start) and logs how each ended.
async fn hostile() {
    sched::sleep(Duration::from_secs(1)).await;
    let Some(wasm) = crate::wasm::runtime() else {
        log::warn!("hostile: no wasm runtime");
        return;
    };
    let rt = sched::runtime();
    for name in ["hostile_pin", "hostile_storm", "hostile_log", "t_forge_handle"] {
        match wasm.spawn(name) {
            Ok((id, ended)) => {
                rt.builder().name("hostile-watch").spawn(async move {
                    if let Ok(outcome) = ended.await {
                        log::info!("hostile: {name}#{id} ended: {outcome:?}");
                    }
                });
            }
            Err(e) => log::warn!("hostile: {name} not started: {e}"),
        }
    }
}

/// Every few seconds spawns a task that panics (in turn: `panic!`, `unwrap` on
/// `None`, an out-of-bounds index) and checks that only that task ended.
async fn panicker() {
    let rt = sched::runtime();
    for round in 0u64.. {
        sched::sleep(Duration::from_secs(3)).await;
        let doomed = rt.builder().name("doomed").spawn(async move {
            yield_now().await;
            let empty: Vec<u64> = Vec::new();
            match round % 3 {
                0 => panic!("deliberate panic #{round}"),
                1 => core::hint::black_box(None::<u64>).unwrap(),
                _ => empty[core::hint::black_box(round as usize)],
            }
        });
        match doomed.await {
            Err(e) if e.is_panic() => log::info!("panic #{round} was contained: {e}"),
            other => log::error!("panic #{round}: expected a contained panic, got {other:?}"),
        }
    }
}

fn cpus() -> usize {
    percpu::online().max(1) as usize
}

async fn ping_pong(rounds: u64) {
    let (ping_tx, mut ping_rx) = mpsc::named_channel::<u64>("ping", 1);
    let (pong_tx, mut pong_rx) = mpsc::named_channel::<u64>("pong", 1);
    let rt = sched::runtime();
    let pong = rt.builder().name("pong").spawn(async move {
        while let Some(i) = ping_rx.recv().await {
            if pong_tx.send(i + 1).await.is_err() {
                break;
            }
        }
    });
    for i in 0..rounds {
        if ping_tx.send(i).await.is_err() {
            break;
        }
        let _ = pong_rx.recv().await;
    }
    drop(ping_tx);
    let _ = pong.await;
}

async fn worker(iterations: u32) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for i in 0..iterations {
        h = hash_round(h, i);
        yield_now().await;
    }
    h
}

/// The CPU-bound part of [`worker`], out of line so a profile names it.
#[inline(never)]
fn hash_round(mut h: u64, i: u32) -> u64 {
    for _ in 0..2_000 {
        h = (h ^ u64::from(i)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// `n` tasks of several shapes spread over every CPU, all joined.
pub async fn burst(n: usize) {
    let rt = sched::runtime();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let b = rt.builder().on_cpu(i % cpus());
        handles.push(match i % 4 {
            0 => b.name("pinger").spawn(async { ping_pong(5).await }),
            1 => b.name("yielder").spawn(async {
                let _ = worker(3).await;
            }),
            2 => b
                .name("sleeper")
                .spawn(async { sched::sleep(Duration::from_millis(1)).await }),
            _ => b.name("leaf").spawn(async {}),
        });
    }
    for h in handles {
        let _ = h.await;
    }
}

/// Runs tasks on each CPU. A task queued on a CPU may still be stolen: a CPU busy with
/// the trace drain, or asleep while the spawning CPU goes idle, can see its whole queue
/// taken. So each CPU gets a batch of tasks that each hold their CPU for a while (a
/// thief takes at most half of a queue, then is busy with what it took), queued again
/// until one of a batch ran there (a bounded number of times: a CPU that never runs
/// its own queue is what a reader of the trace should see).
async fn run_on_every_cpu() {
    const BATCH: usize = 16;
    let rt = sched::runtime();
    for cpu in 0..cpus() {
        for _ in 0..20 {
            let batch: Vec<_> = (0..BATCH)
                .map(|_| {
                    rt.builder().name("on-cpu").on_cpu(cpu).spawn(async {
                        crate::time::spin_for(Duration::from_micros(500));
                        percpu::current().index as usize
                    })
                })
                .collect();
            let mut ran_here = false;
            for h in batch {
                ran_here |= h.await.ok() == Some(cpu);
            }
            if ran_here {
                break;
            }
        }
    }
}

/// A steady mix for `length`.
async fn soak(length: Duration) {
    let end = crate::time::Instant::now().saturating_add(length);
    while crate::time::Instant::now() < end {
        burst(64).await;
        sched::sleep(Duration::from_millis(5)).await;
    }
}

/// Two tasks per CPU that yield in rounds and sleep between them, for `length`.
async fn steady(length: Duration) {
    let rt = sched::runtime();
    for i in 0..2 * cpus() as u64 {
        rt.builder().name("steady").spawn(async move {
            loop {
                for _ in 0..5 {
                    yield_now().await;
                }
                sched::sleep(Duration::from_millis(5 + i % 3)).await;
            }
        });
    }
    sched::sleep(length).await;
}

/// The never-ending demo.
async fn demo() {
    let rt = sched::runtime();
    for pair in 0..4 {
        let _ = pair;
        rt.builder().name("ping-pong").spawn(async {
            loop {
                // Named stages (await frames): a parked loop reads `between
                // rounds › timer#N sleep`. Only the slow stage: a frame costs a wait
                // begin and end each time the task parks in it, and the rounds park
                // on every message.
                ping_pong(100).await;
                sched::sleep(Duration::from_millis(50)).frame("between rounds").await;
            }
        });
    }
    for period in [10u64, 100, 250] {
        rt.builder().name("sleeper").spawn(async move {
            loop {
                sched::sleep(Duration::from_millis(period)).frame("nap").await;
            }
        });
    }
    for _ in 0..cpus() {
        rt.builder().name("cpu-worker").spawn(async {
            loop {
                let _ = worker(200).await;
                sched::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    loop {
        for _ in 0..8 {
            rt.builder().name("short-lived").spawn(async { yield_now().await });
        }
        sched::sleep(Duration::from_millis(300)).frame("between spawns").await;
    }
}
