//! loom models of the task state machine and the run queues.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p lucid-executor --release --lib loom`.
//! Each model keeps to two threads and a preemption bound of 3 (override with `LOOM_MAX_PREEMPTIONS`) so the whole
//! run stays within a few minutes.

use std::boxed::Box;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::Mutex;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use crate::loom::{model, thread};
use crate::{JoinError, JoinHandle, Platform, Runtime};

loom::thread_local! {
    static CPU: std::cell::Cell<Option<usize>> = std::cell::Cell::new(None);
}

struct LoomPlatform;

impl Platform for LoomPlatform {
    fn current_cpu(&self) -> Option<usize> {
        CPU.with(std::cell::Cell::get)
    }
    fn idle(&self, _cpu: usize) {
        thread::yield_now();
    }
    fn wake_cpu(&self, _cpu: usize) {}
}

static PLATFORM: LoomPlatform = LoomPlatform;

fn enter(cpu: usize) {
    CPU.with(|c| c.set(Some(cpu)));
}

fn runtime(cpus: usize) -> &'static Runtime {
    enter(0);
    Runtime::new(cpus, &PLATFORM, None)
}

fn run(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

fn drain(rt: &Runtime, cpu: usize) -> usize {
    let mut polled = 0;
    loop {
        let tick = rt.tick(cpu);
        polled += tick.polled;
        if tick.polled == 0 && tick.stolen == 0 {
            return polled;
        }
    }
}

/// Shared between a test future and the model's threads.
#[derive(Default)]
struct Probe {
    go: AtomicBool,
    polls: AtomicUsize,
    waker: Mutex<Option<Waker>>,
    /// Incremented when the task's metadata is dropped: the task was freed.
    freed: AtomicUsize,
    /// Incremented when the task's output is dropped.
    outputs_dropped: AtomicUsize,
}

impl Probe {
    fn take_waker(&self) -> Waker {
        self.waker.lock().unwrap().take().expect("the task stored a waker")
    }
}

/// Pending (storing its waker) until `go`, or until its `ready_after`-th poll.
struct Wait {
    probe: Arc<Probe>,
    ready_after: usize,
}

impl Future for Wait {
    type Output = Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Output> {
        let polls = self.probe.polls.fetch_add(1, SeqCst) + 1;
        // Register before checking `go`, so a `go` set after the check is
        // followed by a wake of this waker.
        *self.probe.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.probe.go.load(SeqCst) || polls >= self.ready_after {
            // Drop the waker: it would keep the task (and so the probe) alive.
            drop(self.probe.waker.lock().unwrap().take());
            return Poll::Ready(Output(self.probe.clone()));
        }
        Poll::Pending
    }
}

struct Output(Arc<Probe>);

impl Drop for Output {
    fn drop(&mut self) {
        self.0.outputs_dropped.fetch_add(1, SeqCst);
    }
}

struct Meta(Arc<Probe>);

impl Drop for Meta {
    fn drop(&mut self) {
        self.0.freed.fetch_add(1, SeqCst);
    }
}

fn spawn(rt: &'static Runtime, ready_after: usize) -> (Arc<Probe>, JoinHandle<Output, Meta>) {
    let probe = Arc::new(Probe::default());
    let handle = rt.builder().metadata(Meta(probe.clone())).spawn(Wait {
        probe: probe.clone(),
        ready_after,
    });
    (probe, handle)
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

fn flag_waker() -> (Arc<Flag>, Waker) {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    (flag.clone(), Waker::from(flag))
}

fn poll_with<T, M>(handle: &mut JoinHandle<T, M>, waker: &Waker) -> Poll<Result<T, JoinError<T>>> {
    Pin::new(handle).poll(&mut Context::from_waker(waker))
}

/// A wake from another thread races a poll of the same task: the wake is
/// never lost and the task completes.
fn wake_vs_poll(by_ref: bool) {
    run(move || {
        let rt = runtime(1);
        let (probe, mut handle) = spawn(rt, usize::MAX);
        drain(rt, 0);
        // Queue it again so the next tick polls concurrently with the wake.
        probe.take_waker().wake();
        let p = probe.clone();
        let waker = thread::spawn(move || {
            p.go.store(true, SeqCst);
            let w = p.waker.lock().unwrap().take();
            if let Some(w) = w {
                if by_ref {
                    w.wake_by_ref();
                } else {
                    w.wake();
                }
            }
        });
        rt.tick(0);
        waker.join().unwrap();
        drain(rt, 0);
        let (_, w) = flag_waker();
        assert!(poll_with(&mut handle, &w).is_ready(), "lost wakeup");
        assert!(probe.polls.load(SeqCst) <= 3);
    });
}

#[test]
fn loom_wake_vs_poll() {
    wake_vs_poll(false);
}

#[test]
fn loom_wake_by_ref_vs_poll() {
    wake_vs_poll(true);
}

/// Counts the executor's lost-waker verdicts. A std atomic: it only tallies what
/// the model's threads report, and each model leaks a fresh one.
#[derive(Default)]
struct LostWakers(std::sync::atomic::AtomicUsize);

impl crate::Hooks for LostWakers {
    fn on_lost_waker(&self, _task: crate::TaskId) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A runtime whose hooks count lost-waker verdicts.
fn runtime_counting_lost_wakers() -> (&'static Runtime, &'static LostWakers) {
    enter(0);
    let hooks: &'static LostWakers = Box::leak(Box::default());
    (Runtime::new(1, &PLATFORM, Some(hooks)), hooks)
}

/// Another thread takes the task's stored waker while the task is being polled
/// (storing a new one) and either wakes it by value or drops it. A wake in
/// flight must never be judged a lost waker; a drop that leaves the task pending
/// with no waker must be judged one exactly once, whichever side comes last.
fn waker_gone_vs_poll_end(wake: bool) {
    run(move || {
        let (rt, lost) = runtime_counting_lost_wakers();
        let (probe, _handle) = spawn(rt, usize::MAX);
        drain(rt, 0);
        // Queued again, so the next tick polls while the other thread acts.
        probe.take_waker().wake();
        let p = probe.clone();
        let other = thread::spawn(move || {
            let taken = p.waker.lock().unwrap().take();
            let took = taken.is_some();
            if let Some(w) = taken {
                if wake {
                    w.wake();
                } else {
                    drop(w);
                }
            }
            took
        });
        rt.tick(0);
        let took = other.join().unwrap();
        drain(rt, 0);
        let verdicts = lost.0.load(std::sync::atomic::Ordering::SeqCst);
        let stored = probe.waker.lock().unwrap().is_some();
        if wake || stored {
            assert_eq!(
                verdicts, 0,
                "a woken task, or one holding a waker, is not lost (took {took})"
            );
        } else {
            assert_eq!(verdicts, 1, "pending with no waker left: reported once (took {took})");
        }
    });
}

/// Between a poll's end and its lost-waker verdict, another CPU wakes the task by
/// value (its last waker) and polls it again, and that poll stores a new waker:
/// the verdict must not combine the count read before the new poll with the state
/// read after it.
#[test]
fn loom_a_poll_between_the_verdicts_reads_is_no_lost_waker() {
    run(|| {
        enter(0);
        let lost: &'static LostWakers = Box::leak(Box::default());
        let rt = Runtime::new(2, &PLATFORM, Some(lost));
        let (probe, _handle) = spawn(rt, usize::MAX);
        let p = probe.clone();
        let other = thread::spawn(move || {
            enter(1);
            let waker = loop {
                if let Some(w) = p.waker.lock().unwrap().take() {
                    break w;
                }
                thread::yield_now();
            };
            waker.wake();
            while p.polls.load(SeqCst) < 2 {
                drain(rt, 1);
                thread::yield_now();
            }
        });
        rt.tick(0);
        other.join().unwrap();
        assert_eq!(probe.polls.load(SeqCst), 2);
        assert!(
            probe.waker.lock().unwrap().is_some(),
            "the second poll stored its waker"
        );
        assert_eq!(
            lost.0.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "a task holding a waker judged lost"
        );
    });
}

#[test]
fn loom_wake_by_value_vs_poll_end_is_never_a_lost_waker() {
    waker_gone_vs_poll_end(true);
}

#[test]
fn loom_last_waker_dropped_vs_poll_end_is_a_lost_waker() {
    waker_gone_vs_poll_end(false);
}

#[test]
fn loom_wake_vs_cancel() {
    run(|| {
        let rt = runtime(1);
        let (probe, mut handle) = spawn(rt, usize::MAX);
        drain(rt, 0);
        let w = probe.take_waker();
        let waker = thread::spawn(move || w.wake());
        assert!(handle.cancel());
        waker.join().unwrap();
        drain(rt, 0);
        assert_eq!(probe.polls.load(SeqCst), 1, "a cancelled task is not polled");
        let (_, w) = flag_waker();
        match poll_with(&mut handle, &w) {
            Poll::Ready(Err(JoinError::Cancelled(None))) => {}
            _ => panic!("expected Cancelled"),
        }
        drop(handle);
        assert_eq!(probe.freed.load(SeqCst), 1, "task leaked or freed twice");
    });
}

#[test]
fn loom_join_handle_poll_vs_completion() {
    run(|| {
        let rt = runtime(1);
        let (probe, mut handle) = spawn(rt, 1);
        let worker = thread::spawn(move || {
            enter(0);
            drain(rt, 0);
        });
        let (flag1, w1) = flag_waker();
        let (flag2, w2) = flag_waker();
        let mut result = poll_with(&mut handle, &w1);
        if result.is_pending() {
            // Re-register with a different waker while the task may complete.
            result = poll_with(&mut handle, &w2);
        }
        worker.join().unwrap();
        if result.is_pending() {
            assert!(flag2.0.load(SeqCst), "the latest join waker was not woken");
            assert!(poll_with(&mut handle, &w2).is_ready());
        }
        let _ = flag1;
        drop(result);
        drop(handle);
        assert_eq!(probe.outputs_dropped.load(SeqCst), 1);
        assert_eq!(probe.freed.load(SeqCst), 1);
    });
}

#[test]
fn loom_join_handle_drop_vs_completion() {
    run(|| {
        let rt = runtime(1);
        let (probe, mut handle) = spawn(rt, 1);
        let (_, w) = flag_waker();
        // Register a join waker so completion has one to wake (or not).
        assert!(poll_with(&mut handle, &w).is_pending());
        let worker = thread::spawn(move || {
            enter(0);
            drain(rt, 0);
        });
        drop(handle);
        worker.join().unwrap();
        assert_eq!(probe.outputs_dropped.load(SeqCst), 1, "output leaked or dropped twice");
        assert_eq!(probe.freed.load(SeqCst), 1, "task leaked or freed twice");
    });
}

#[test]
fn loom_waker_clone_drop_vs_deallocation() {
    run(|| {
        let rt = runtime(1);
        let (probe, handle) = spawn(rt, 2);
        drop(handle);
        drain(rt, 0);
        let w1 = probe.take_waker();
        let w2 = w1.clone();
        let other = thread::spawn(move || {
            let w3 = w1.clone();
            drop(w1);
            drop(w3);
        });
        w2.wake();
        drain(rt, 0);
        other.join().unwrap();
        assert_eq!(probe.polls.load(SeqCst), 2);
        assert_eq!(probe.freed.load(SeqCst), 1, "task leaked or freed twice");
    });
}

#[test]
fn loom_concurrent_wakes() {
    run(|| {
        let rt = runtime(1);
        let (probe, handle) = spawn(rt, 2);
        drain(rt, 0);
        let w1 = probe.take_waker();
        let w2 = w1.clone();
        let other = thread::spawn(move || w1.wake());
        w2.wake_by_ref();
        other.join().unwrap();
        assert_eq!(rt.scheduler(0).queued(), 1, "two wakes enqueued the task twice");
        drop(w2);
        assert_eq!(drain(rt, 0), 1);
        assert!(handle.is_finished());
        drop(handle);
        assert_eq!(probe.freed.load(SeqCst), 1);
    });
}

#[test]
fn loom_run_queue_with_stealing() {
    run(|| {
        let rt = runtime(2);
        let (a, ha) = spawn(rt, 1);
        let (b, hb) = spawn(rt, 1);
        let thief = thread::spawn(move || {
            enter(1);
            drain(rt, 1)
        });
        let mine = drain(rt, 0);
        let stolen = thief.join().unwrap();
        assert_eq!(mine + stolen, 2, "a task was lost or polled twice");
        assert_eq!(a.polls.load(SeqCst), 1);
        assert_eq!(b.polls.load(SeqCst), 1);
        assert!(ha.is_finished() && hb.is_finished());
    });
}

/// Wakes itself on its first poll (so the poll loop puts it back), then is ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A run queue's length is three counters, two of them without a locked add: read
/// from another CPU while tasks are put back, popped and stolen, it may read high
/// (pushes counted after the pops were read) but never below zero, which would wrap
/// to a huge count; it ends at zero.
#[test]
fn loom_queue_length_with_requeues_and_steals() {
    run(|| {
        let rt = runtime(2);
        let a = rt.builder().on_cpu(0).spawn(YieldOnce(false));
        let b = rt.builder().on_cpu(0).spawn(YieldOnce(false));
        let thief = thread::spawn(move || {
            enter(1);
            let seen = rt.scheduler(0).queued();
            drain(rt, 1);
            seen
        });
        drain(rt, 0);
        let seen = thief.join().unwrap();
        // Two spawns and two tasks put back: four pushes in all.
        assert!(seen <= 4, "CPU 0's queue read as {seen} tasks");
        drain_all(rt);
        assert!(a.is_finished() && b.is_finished());
        assert_eq!((rt.scheduler(0).queued(), rt.scheduler(1).queued()), (0, 0));
    });
}

/// Ticks every CPU from this thread until none polls anything.
fn drain_all(rt: &Runtime) {
    loop {
        let mut polled = 0;
        for cpu in 0..rt.schedulers().len() {
            enter(cpu);
            polled += drain(rt, cpu);
        }
        if polled == 0 {
            return;
        }
    }
}

#[test]
fn loom_wait_queue_wake_vs_wait() {
    run(|| {
        let rt = runtime(1);
        let queue: &'static crate::sync::WaitQueue = Box::leak(Box::default());
        let waiter = rt.spawn(async move { queue.wait().await });
        let waker = thread::spawn(move || queue.wake());
        drain(rt, 0);
        waker.join().unwrap();
        drain(rt, 0);
        assert!(waiter.is_finished(), "the wake-up was lost");
    });
}

#[test]
fn loom_mpsc_send_vs_recv_across_cpus() {
    run(|| {
        let rt = runtime(2);
        let (tx, mut rx) = crate::sync::mpsc::channel::<u8>(1);
        let sender = rt.builder().on_cpu(1).spawn(async move {
            tx.send(1).await.unwrap();
        });
        let receiver = rt.builder().on_cpu(0).spawn(async move {
            let a = rx.recv().await;
            let end = rx.recv().await;
            (a, end)
        });
        let other = thread::spawn(move || {
            enter(1);
            drain(rt, 1);
        });
        drain(rt, 0);
        other.join().unwrap();
        drain_all(rt);
        assert!(sender.is_finished());
        let mut receiver = receiver;
        let (_, w) = flag_waker();
        match poll_with(&mut receiver, &w) {
            Poll::Ready(Ok(out)) => assert_eq!(out, (Some(1), None)),
            _ => panic!("receiver did not finish"),
        }
    });
}

/// Hooks that record nothing: installing them turns on the live-task registry.
struct Silent;

impl crate::Hooks for Silent {}

static SILENT: Silent = Silent;

#[test]
fn loom_registry_listing_vs_free_on_another_cpu() {
    run(|| {
        enter(0);
        let rt = Runtime::new(1, &PLATFORM, Some(&SILENT));
        let (probe, handle) = spawn(rt, 2);
        drop(handle);
        drain(rt, 0);
        // The task is pending and this waker holds its only reference: dropping it
        // on the other thread frees the task there, while this one lists tasks.
        let w = probe.take_waker();
        let other = thread::spawn(move || drop(w));
        let listed = rt.live_tasks();
        assert!(listed.len() <= 1);
        if let Some(t) = listed.first() {
            assert_eq!(t.counters.polls, 1, "a listed task is read whole, before it is freed");
        }
        other.join().unwrap();
        assert!(rt.live_tasks().is_empty(), "a freed task left the registry");
        assert_eq!(probe.freed.load(SeqCst), 1);
    });
}

/// Two tasks' handles change hands at once on one holder set: neither change is
/// lost, and no holder is counted twice.
#[test]
fn loom_concurrent_holder_changes_keep_the_set_exact() {
    use crate::holders::HolderSet;
    model(|| {
        let set = Arc::new(HolderSet::new());
        set.add(0);
        set.add(0);
        let other = set.clone();
        let t = thread::spawn(move || {
            other.add(7);
            other.remove(0);
        });
        set.add(8);
        set.remove(0);
        t.join().unwrap();
        let (mut tasks, unknown) = set.read();
        tasks.sort_unstable();
        assert_eq!((tasks, unknown), ([0, 0, 7, 8], 0));
        set.remove(7);
        set.remove(8);
        assert!(set.is_empty());
    });
}
