use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::vec::Vec;

use super::{Gate, output, poll_once, run_until_idle, single};
use crate::hooks::{Hooks, Outcome, SpawnInfo};
use crate::{JoinError, PollResult, Runtime, TaskId, TaskKind, TaskStats, ThreadPlatform, yield_now};

#[test]
fn spawn_and_join_100k() {
    let rt = single();
    let mut handles: Vec<_> = (0..100_000u64).map(|i| rt.spawn(async move { i * 2 })).collect();
    let sum = rt.spawn(async move {
        let mut sum = 0;
        for h in handles.drain(..50_000) {
            sum += h.await.unwrap();
        }
        (sum, handles)
    });
    run_until_idle(rt, 0);
    let mut sum = sum;
    let (mut total, rest) = output(&mut sum).unwrap();
    for mut h in rest {
        total += output(&mut h).unwrap();
    }
    assert_eq!(total, (0..100_000u64).map(|i| i * 2).sum::<u64>());
    let c = rt.scheduler(0).counters();
    assert_eq!(c.spawns, 100_001);
    assert_eq!(c.completions, 100_001);
}

#[test]
fn yield_now_round_robins() {
    let rt = single();
    let log = Arc::new(Mutex::new(Vec::new()));
    for id in 0..3 {
        let log = log.clone();
        rt.spawn(async move {
            for _ in 0..4 {
                log.lock().unwrap().push(id);
                yield_now().await;
            }
        });
    }
    run_until_idle(rt, 0);
    let expected: Vec<i32> = (0..4).flat_map(|_| 0..3).collect();
    assert_eq!(*log.lock().unwrap(), expected);
}

/// A task woken by a poll runs next (the LIFO slot), ahead of tasks queued before
/// it; a few such polls in a row, then the queue gets its turn.
#[test]
fn a_task_woken_by_a_poll_runs_next_but_cannot_starve_the_queue() {
    let rt = single();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gate = Gate::default();
    let g = gate.clone();
    let l = log.clone();
    rt.spawn(async move {
        g.wait().await;
        l.lock().unwrap().push("woken");
    });
    run_until_idle(rt, 0);
    let g = gate.clone();
    let l = log.clone();
    rt.spawn(async move {
        l.lock().unwrap().push("waker");
        g.fire();
    });
    let l = log.clone();
    rt.spawn(async move { l.lock().unwrap().push("queued before the wake") });
    run_until_idle(rt, 0);
    assert_eq!(*log.lock().unwrap(), ["waker", "woken", "queued before the wake"]);

    // Two tasks that wake each other every poll, and one queued behind them.
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx_a, mut rx_a) = crate::sync::mpsc::channel::<u32>(1);
    let (tx_b, mut rx_b) = crate::sync::mpsc::channel::<u32>(1);
    let l = log.clone();
    rt.spawn(async move {
        while let Some(v) = rx_a.recv().await {
            l.lock().unwrap().push("pong");
            if v == 0 || tx_b.send(v - 1).await.is_err() {
                break;
            }
        }
    });
    let l = log.clone();
    rt.spawn(async move {
        tx_a.send(20).await.unwrap();
        while let Some(v) = rx_b.recv().await {
            l.lock().unwrap().push("ping");
            if v == 0 || tx_a.send(v - 1).await.is_err() {
                break;
            }
        }
    });
    let l = log.clone();
    rt.spawn(async move { l.lock().unwrap().push("other") });
    run_until_idle(rt, 0);
    let log = log.lock().unwrap();
    let other = log.iter().position(|&e| e == "other").expect("the third task ran");
    assert!(other <= 6, "the queued task waited behind {other} slot polls: {log:?}");
}

/// A task woken by a poll on another CPU moves to that CPU and runs there next,
/// instead of waiting for its old CPU.
#[test]
fn a_task_woken_by_another_cpus_poll_runs_on_that_cpu() {
    ThreadPlatform::enter(Some(0));
    let rt = Runtime::new(2, ThreadPlatform::new(2), None);
    let gate = Gate::default();
    let g = gate.clone();
    let mut woken = rt.builder().on_cpu(0).spawn(async move { g.wait().await });
    run_until_idle(rt, 0);
    let g = gate.clone();
    rt.builder().on_cpu(1).spawn(async move { g.fire() });
    ThreadPlatform::enter(Some(1));
    let tick = rt.tick(1);
    assert_eq!(tick.polled, 2, "the waker and, next, the task it woke");
    assert!(output(&mut woken).is_ok());
    assert_eq!(rt.scheduler(0).counters().polls, 1, "only the first poll on cpu 0");
    assert_eq!(rt.scheduler(0).queued(), 0);
    ThreadPlatform::enter(Some(0));
}

#[test]
fn join_handle_wakes_the_joiner() {
    let rt = single();
    let gate = Gate::default();
    let g = gate.clone();
    let inner = rt.spawn(async move {
        g.wait().await;
        7
    });
    let mut outer = rt.spawn(async move { inner.await.unwrap() + 1 });
    run_until_idle(rt, 0);
    assert!(poll_once(&mut outer).is_pending());
    gate.fire();
    run_until_idle(rt, 0);
    assert_eq!(output(&mut outer).unwrap(), 8);
}

#[test]
fn cancel_before_first_poll() {
    let rt = single();
    let gate = Gate::default();
    let mut h = rt.spawn(gate.wait());
    assert!(h.cancel());
    assert!(!h.cancel(), "a second cancel reports false");
    run_until_idle(rt, 0);
    assert_eq!(gate.polls(), 0, "a cancelled task is never polled");
    assert!(gate.dropped());
    assert!(matches!(output(&mut h), Err(JoinError::Cancelled(None))));
}

#[test]
fn cancel_while_pending() {
    let rt = single();
    let gate = Gate::default();
    let mut h = rt.spawn(gate.wait());
    run_until_idle(rt, 0);
    assert_eq!(gate.polls(), 1);
    assert!(poll_once(&mut h).is_pending());
    assert!(h.cancel());
    run_until_idle(rt, 0);
    assert_eq!(gate.polls(), 1, "cancellation drops the future without polling");
    assert!(gate.dropped());
    assert!(output(&mut h).unwrap_err().is_cancelled());
    // A wake after cancellation is harmless.
    gate.fire();
    assert_eq!(run_until_idle(rt, 0), 0);
}

#[test]
fn cancel_after_completion_reports_false() {
    let rt = single();
    let mut h = rt.spawn(async { 5 });
    run_until_idle(rt, 0);
    assert!(h.is_finished());
    assert!(!h.cancel());
    assert_eq!(output(&mut h).unwrap(), 5);
}

#[test]
fn cancel_through_a_task_ref_of_a_detached_task() {
    let rt = single();
    let gate = Gate::default();
    let h = rt.spawn(gate.wait());
    let task = h.task_ref().unwrap();
    drop(h);
    run_until_idle(rt, 0);
    assert!(task.cancel());
    run_until_idle(rt, 0);
    assert!(task.is_complete());
    assert!(gate.dropped());
}

/// The poll blocks until another thread has cancelled the task, so the cancel
/// lands exactly while POLLING is set.
fn cancel_during_poll(complete: bool) -> Result<u32, JoinError<u32>> {
    let rt = Runtime::new(1, ThreadPlatform::new(1), None);
    let in_poll = Arc::new(AtomicBool::new(false));
    let cancelled = Arc::new(AtomicBool::new(false));
    let gate = Gate::default();
    let (ip, c, g) = (in_poll.clone(), cancelled.clone(), gate.clone());
    let mut h = rt.spawn(async move {
        ip.store(true, SeqCst);
        while !c.load(SeqCst) {
            std::hint::spin_loop();
        }
        if !complete {
            g.wait().await;
        }
        42
    });
    let task = h.task_ref().unwrap();
    let canceller = std::thread::spawn(move || {
        while !in_poll.load(SeqCst) {
            std::hint::spin_loop();
        }
        assert!(task.cancel());
        cancelled.store(true, SeqCst);
    });
    let cpu = std::thread::spawn(move || {
        ThreadPlatform::enter(Some(0));
        run_until_idle(rt, 0)
    });
    canceller.join().unwrap();
    cpu.join().unwrap();
    if !complete {
        assert_eq!(gate.polls(), 1, "cancelled during its first poll, never polled again");
        assert!(gate.dropped());
    }
    output(&mut h)
}

#[test]
fn cancel_while_being_polled_on_another_thread() {
    assert!(matches!(cancel_during_poll(false), Err(JoinError::Cancelled(None))));
}

#[test]
fn cancel_racing_the_final_poll_carries_the_output() {
    match cancel_during_poll(true) {
        Err(JoinError::Cancelled(Some(42))) => {}
        other => panic!("expected Cancelled(Some(42)), got {other:?}"),
    }
}

#[test]
fn panicking_task_is_contained() {
    let rt = single();
    let mut bad = rt.spawn(async {
        if true {
            panic!("task panic on purpose");
        }
    });
    let mut good = rt.spawn(async { 1 });
    run_until_idle(rt, 0);
    let err = output(&mut bad).unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic().map(|p| p.message.as_str()), Some("task panic on purpose"));
    assert_eq!(err.to_string(), "task panicked: task panic on purpose");
    assert_eq!(output(&mut good).unwrap(), 1);
}

#[test]
fn detached_task_still_runs_and_is_freed() {
    let rt = single();
    let gate = Gate::default();
    drop(rt.spawn(gate.wait()));
    run_until_idle(rt, 0);
    gate.fire();
    run_until_idle(rt, 0);
    assert_eq!(gate.polls(), 2);
    assert!(gate.dropped());
}

#[test]
fn builder_metadata_name_kind_and_location() {
    let rt = single();
    let builder = rt.builder().name("instance").kind(TaskKind::Wasm);
    let builder = builder.metadata(99u32);
    let (h, line) = (builder.spawn(async {}), line!());
    let task = h.task_ref().unwrap();
    assert_eq!(task.name(), Some("instance"));
    assert_eq!(task.kind(), TaskKind::Wasm);
    assert_eq!(task.location().file(), file!());
    assert_eq!(task.location().line(), line);
    assert_eq!(h.metadata(), Some(&99));
    // SAFETY: spawned with `u32` metadata just above.
    assert_eq!(unsafe { *task.metadata::<u32>() }, 99);
    assert_ne!(h.id(), TaskId::STUB);
}

#[test]
fn wakers_of_one_task_will_wake_each_other() {
    let rt = single();
    let same = Arc::new(AtomicBool::new(false));
    let s = same.clone();
    rt.spawn(std::future::poll_fn(move |cx| {
        let clone = cx.waker().clone();
        s.store(clone.will_wake(cx.waker()), SeqCst);
        Poll::Ready(())
    }));
    run_until_idle(rt, 0);
    assert!(same.load(SeqCst));
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    wakers: AtomicUsize,
}

use std::string::{String, ToString};

impl Hooks for Recorder {
    fn on_spawn(&self, info: &SpawnInfo<'_>) {
        self.events
            .lock()
            .unwrap()
            .push(format!("spawn {}", info.name.unwrap_or("?")));
    }
    fn on_poll_end(&self, _cpu: usize, _task: TaskId, result: PollResult, _stats: &TaskStats) {
        self.events.lock().unwrap().push(format!("poll {result:?}"));
    }
    fn on_wake(&self, _task: TaskId, by_ref: bool, self_wake: bool, _waker: Option<TaskId>, _stats: &TaskStats) {
        self.events
            .lock()
            .unwrap()
            .push(format!("wake by_ref={by_ref} self={self_wake}"));
    }
    fn on_waker_clone(&self, _task: TaskId, count: usize) {
        self.wakers.store(count, SeqCst);
    }
    fn on_waker_drop(&self, _task: TaskId, count: usize) {
        self.wakers.store(count, SeqCst);
    }
    fn on_task_panicked(&self, _cpu: usize, _task: TaskId, panic: &crate::TaskPanic) {
        self.events.lock().unwrap().push(format!("panicked {}", panic.message));
    }
    fn on_complete(&self, _cpu: usize, _task: TaskId, outcome: Outcome) {
        self.events.lock().unwrap().push(format!("complete {outcome:?}"));
    }
    fn on_drop(&self, _task: TaskId) {
        self.events.lock().unwrap().push("drop".to_string());
    }
    fn on_lost_waker(&self, _task: TaskId) {
        self.events.lock().unwrap().push("lost waker".to_string());
    }
}

#[test]
fn hooks_see_the_lifecycle_and_waker_counts() {
    let hooks: &'static Recorder = Box::leak(Box::default());
    ThreadPlatform::enter(Some(0));
    let rt = Runtime::new(1, ThreadPlatform::new(1), Some(hooks));
    let gate = Gate::default();
    let g = gate.clone();
    let h = rt.builder().name("t").spawn(async move {
        yield_now().await;
        g.wait().await;
    });
    drop(h);
    run_until_idle(rt, 0);
    assert_eq!(hooks.wakers.load(SeqCst), 1, "the gate holds one waker");
    gate.fire();
    assert_eq!(hooks.wakers.load(SeqCst), 0, "a wake by value consumes it");
    run_until_idle(rt, 0);
    let events = hooks.events.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            "spawn t",
            "wake by_ref=true self=true",
            "poll PendingSchedule",
            "poll Pending",
            "wake by_ref=false self=false",
            "poll Ready",
            "complete Ok",
            "drop",
        ]
    );
}

#[test]
fn a_closed_hook_gate_calls_no_hook_and_the_counters_still_count() {
    let hooks: &'static Recorder = Box::leak(Box::default());
    ThreadPlatform::enter(Some(0));
    let rt = Runtime::new(1, ThreadPlatform::new(1), Some(hooks));
    assert!(rt.hooks_enabled());
    rt.set_hooks_enabled(false);
    assert!(!rt.hooks_enabled());
    let gate = Gate::default();
    let g = gate.clone();
    let h = rt.builder().name("closed").spawn(async move {
        yield_now().await;
        g.wait().await;
    });
    run_until_idle(rt, 0);
    gate.fire();
    run_until_idle(rt, 0);
    assert!(h.is_finished());
    drop(h);
    assert_eq!(
        hooks.events.lock().unwrap().len(),
        0,
        "no hook while the gate is closed"
    );
    let counters = rt.scheduler(0).counters();
    assert_eq!(
        (counters.polls, counters.completions),
        (3, 1),
        "what the executor did is counted"
    );
    assert_eq!(counters.wakes_local + counters.wakes_remote, 2);

    rt.set_hooks_enabled(true);
    let h = rt.builder().name("open").spawn(async {});
    run_until_idle(rt, 0);
    drop(h);
    assert_eq!(
        hooks.events.lock().unwrap().clone(),
        ["spawn open", "poll Ready", "complete Ok", "drop"]
    );
}

#[test]
fn hooks_see_a_contained_panic_with_its_message_before_the_completion() {
    let hooks: &'static Recorder = Box::leak(Box::default());
    ThreadPlatform::enter(Some(0));
    let rt = Runtime::new(1, ThreadPlatform::new(1), Some(hooks));
    let h = rt.builder().name("p").spawn(async {
        if true {
            panic!("hooked panic");
        }
    });
    drop(h);
    run_until_idle(rt, 0);
    let events = hooks.events.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            "spawn p",
            "poll Ready",
            "panicked hooked panic",
            "complete Panicked",
            "drop"
        ]
    );
}

#[test]
fn lost_waker_is_visible_to_hooks() {
    let hooks: &'static Recorder = Box::leak(Box::default());
    ThreadPlatform::enter(Some(0));
    let rt = Runtime::new(1, ThreadPlatform::new(1), Some(hooks));
    let _handle = rt.spawn(std::future::poll_fn(|cx| {
        drop(cx.waker().clone());
        Poll::<()>::Pending
    }));
    run_until_idle(rt, 0);
    assert_eq!(hooks.wakers.load(SeqCst), 0, "pending with no waker left");
    let events = hooks.events.lock().unwrap().clone();
    assert_eq!(events[events.len() - 2..], ["poll Pending", "lost waker"]);
}

#[test]
fn the_last_waker_dropped_while_the_task_is_idle_is_a_lost_waker() {
    let hooks: &'static Recorder = Box::leak(Box::default());
    ThreadPlatform::enter(Some(0));
    let rt = Runtime::new(1, ThreadPlatform::new(1), Some(hooks));
    let gate = Gate::default();
    let g = gate.clone();
    let _handle = rt.spawn(async move { g.wait().await });
    run_until_idle(rt, 0);
    let lost = || {
        hooks
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| *e == "lost waker")
            .count()
    };
    assert_eq!(lost(), 0, "the gate holds its waker");
    gate.forget();
    assert_eq!(hooks.wakers.load(SeqCst), 0);
    assert_eq!(lost(), 1, "dropped without a wake while the task waits");
}

#[test]
fn a_wake_by_value_or_a_drop_while_the_task_runs_is_no_lost_waker() {
    let hooks: &'static Recorder = Box::leak(Box::default());
    ThreadPlatform::enter(Some(0));
    let rt = Runtime::new(1, ThreadPlatform::new(1), Some(hooks));
    let gate = Gate::default();
    let g = gate.clone();
    let h = rt.spawn(async move {
        g.wait().await;
        // A waker cloned and dropped inside a poll: the task is running, so the
        // count reaching zero is no verdict.
        std::future::poll_fn(|cx| {
            drop(cx.waker().clone());
            Poll::Ready(())
        })
        .await;
    });
    run_until_idle(rt, 0);
    gate.fire();
    run_until_idle(rt, 0);
    assert!(h.is_finished());
    let events = hooks.events.lock().unwrap().clone();
    assert!(!events.iter().any(|e| e == "lost waker"), "{events:?}");
}

/// Records its address when polled and when dropped: a pinned future must be
/// dropped where it was polled.
struct AddressProbe(Arc<Mutex<Vec<usize>>>);

impl std::future::Future for AddressProbe {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _cx: &mut std::task::Context<'_>) -> Poll<()> {
        let addr = std::ptr::from_ref::<Self>(&self) as usize;
        self.0.lock().unwrap().push(addr);
        Poll::Pending
    }
}

impl Drop for AddressProbe {
    fn drop(&mut self) {
        let addr = std::ptr::from_ref::<Self>(self) as usize;
        self.0.lock().unwrap().push(addr);
    }
}

#[test]
fn cancelled_future_is_dropped_in_place() {
    let rt = single();
    let addrs = Arc::new(Mutex::new(Vec::new()));
    let h = rt.spawn(AddressProbe(addrs.clone()));
    run_until_idle(rt, 0);
    assert!(h.cancel());
    run_until_idle(rt, 0);
    let addrs = addrs.lock().unwrap();
    assert_eq!(addrs.len(), 2);
    assert_eq!(addrs[0], addrs[1], "the future moved before being dropped");
}
