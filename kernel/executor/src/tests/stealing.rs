use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};
use std::vec::Vec;

use std::boxed::Box;

use super::{output, ping_pong_pair};
use crate::sync::WaitQueue;
use crate::{Platform, Runtime, ThreadPlatform, yield_now};

/// Runs `cpus` host threads as CPUs until `done` returns true.
fn run_cpus(rt: &'static Runtime, platform: &'static ThreadPlatform, done: impl Fn() -> bool) {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..rt.schedulers().len())
        .map(|cpu| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                ThreadPlatform::enter(Some(cpu));
                while !stop.load(SeqCst) {
                    rt.tick_or_idle(cpu);
                }
            })
        })
        .collect();
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "tasks did not finish");
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, SeqCst);
    for cpu in 0..rt.schedulers().len() {
        platform.wake_cpu(cpu);
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn idle_cpus_steal_from_a_busy_one() {
    ThreadPlatform::enter(None);
    let platform = ThreadPlatform::new(4);
    let rt = Runtime::new(4, platform, None);
    let ran_on: Arc<Vec<AtomicUsize>> = Arc::new((0..4).map(|_| AtomicUsize::new(0)).collect());
    let handles: Vec<_> = (0..2000)
        .map(|_| {
            let ran_on = ran_on.clone();
            rt.builder().on_cpu(0).spawn(async move {
                for _ in 0..5 {
                    let cpu = platform.current_cpu().unwrap();
                    ran_on[cpu].fetch_add(1, SeqCst);
                    std::thread::sleep(Duration::from_micros(10));
                    yield_now().await;
                }
            })
        })
        .collect();
    run_cpus(rt, platform, || handles.iter().all(|h| h.is_finished()));
    let steals: u64 = rt.schedulers().iter().map(|s| s.counters().steals).sum();
    assert!(steals > 0, "no steals");
    let cpus_used = ran_on.iter().filter(|n| n.load(SeqCst) > 0).count();
    assert!(cpus_used > 1, "all tasks ran on one CPU: {ran_on:?}");
    let total: usize = ran_on.iter().map(|n| n.load(SeqCst)).sum();
    assert_eq!(total, 2000 * 5);
    let completions: u64 = rt.schedulers().iter().map(|s| s.counters().completions).sum();
    assert_eq!(completions, 2000);
}

#[test]
fn injector_tasks_and_cross_cpu_wakes() {
    ThreadPlatform::enter(None);
    let platform = ThreadPlatform::new(2);
    let rt = Runtime::new(2, platform, None);
    let yielders: Vec<_> = (0..500)
        .map(|_| {
            rt.spawn(async {
                for _ in 0..3 {
                    yield_now().await;
                }
            })
        })
        .collect();
    let gate = super::Gate::default();
    let waiter = rt.builder().on_cpu(0).spawn(gate.wait());
    let g = gate.clone();
    let firer = rt.builder().on_cpu(1).spawn(async move {
        while g.inner.waker.lock().unwrap().is_none() {
            yield_now().await;
        }
        g.fire();
    });
    run_cpus(rt, platform, || {
        waiter.is_finished() && firer.is_finished() && yielders.iter().all(|h| h.is_finished())
    });
    let c: Vec<_> = rt.schedulers().iter().map(|s| s.counters()).collect();
    assert_eq!(c.iter().map(|c| c.completions).sum::<u64>(), 502);
    assert_eq!(
        c.iter().map(|c| c.spawns).sum::<u64>(),
        2,
        "the rest went to the injector"
    );
    assert!(c.iter().map(|c| c.wakes_local + c.wakes_remote).sum::<u64>() > 0);
}

#[test]
fn ping_pong_and_remote_cancel_on_four_cpus() {
    ThreadPlatform::enter(None);
    let platform = ThreadPlatform::new(4);
    let rt = Runtime::new(4, platform, None);
    let pairs: Vec<_> = (0..1000).map(|_| ping_pong_pair(rt, 20)).collect();
    let queue: &'static WaitQueue = Box::leak(Box::default());
    let mut waiters: Vec<_> = (0..100).map(|_| rt.spawn(queue.wait())).collect();
    let cancelled = AtomicBool::new(false);
    run_cpus(rt, platform, || {
        // Cancel from this thread, which is no CPU, while the CPUs run.
        if !cancelled.swap(true, SeqCst) {
            for w in &waiters {
                assert!(w.cancel());
            }
        }
        pairs.iter().all(|h| h.is_finished()) && waiters.iter().all(|h| h.is_finished())
    });
    for mut h in pairs {
        assert_eq!(output(&mut h).unwrap(), 20);
    }
    for h in &mut waiters {
        assert!(output(h).unwrap_err().is_cancelled());
    }
}
