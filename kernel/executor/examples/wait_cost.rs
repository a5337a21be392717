//! The cost of reporting waits (`lucid_executor::resource`), on the host:
//!
//! - `wait.not_taken.ns`: what tracking adds to a receive that completes at once
//!   (`Receiver::recv` polled ready, against the same future shape without the
//!   tracking: a future around `Receiver::poll_recv`, which tracks nothing): the
//!   wait span's setup and its branches on "is a wait open";
//! - `wait.taken.ns`: what a receive that waits (pending, then ready) costs on top of
//!   the same receive on a channel that is not tracked: the `WaitBegin` and `WaitEnd`
//!   records, encoded into a `lucid_trace::Producer` as the kernel's hooks do;
//! - `holders.send.ns`: what tracking who holds a channel's senders
//!   (`lucid_executor::holders`) adds to a send and receive that complete at once:
//!   the check that the sender's holder is the current task;
//! - `holders.lock.ns`: what tracking a mutex's holder adds to an uncontended lock
//!   and unlock: naming the current task and two stores.
//!
//! Each pair of sides runs back to back in alternating order (A B, then B A), so
//! neither side always runs first in a run.
//!
//! ```text
//! cargo run --release -p lucid-executor --example wait_cost [-- --runs N]
//! ```
//!
//! One JSON object per line, as `examples/bench.rs` prints them; each figure is the
//! median of the runs, each cost the median of the runs' paired differences.

#[cfg(not(loom))]
fn main() {
    wait_cost::main();
}

#[cfg(loom)]
fn main() {}

#[cfg(not(loom))]
mod wait_cost {
    use std::future::Future;
    use std::hint::black_box;
    use std::panic::Location;
    use std::pin::pin;
    use std::sync::OnceLock;
    use std::task::{Context, Waker};
    use std::time::Instant;

    use std::sync::atomic::{AtomicBool, Ordering};

    use lucid_executor::holders::HolderSet;
    use lucid_executor::resource::{self, ResourceHooks, ResourceKind, WaitOp, WaitOutcome};
    use lucid_executor::sync::{Mutex, mpsc};
    use lucid_protocol::{self as proto, Message, Ring, StreamId};
    use lucid_trace::Producer;

    const OPS: u32 = 200_000;

    static PRODUCER: OnceLock<Producer> = OnceLock::new();
    /// Whether resources created now track their holders.
    static TRACK_HOLDERS: AtomicBool = AtomicBool::new(false);

    fn now() -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: RDTSC has no preconditions; it only reads the time-stamp counter.
            unsafe { core::arch::x86_64::_rdtsc() }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            0
        }
    }

    fn emit(msg: &Message<'_>) {
        if let Some(p) = PRODUCER.get() {
            // SAFETY: only the main thread records into this producer.
            unsafe { p.message(msg, now) };
        }
    }

    /// The kernel's resource hooks (`kernel/src/trace/resources.rs`) on one host
    /// thread: the same records into a producer.
    struct Hooks;

    impl ResourceHooks for Hooks {
        fn on_created(
            &self,
            id: u64,
            _kind: ResourceKind,
            name: &'static str,
            location: &'static Location<'static>,
            capacity: Option<u64>,
        ) -> bool {
            emit(&Message::ResourceCreated(proto::ResourceCreated {
                id: proto::ResourceId(id),
                kind: proto::ResourceKind::Channel,
                name,
                location: proto::Location {
                    file: location.file(),
                    line: location.line(),
                    column: location.column(),
                },
                capacity,
            }));
            true
        }
        fn holders(&self, _id: u64) -> Option<&'static HolderSet> {
            TRACK_HOLDERS
                .load(Ordering::Relaxed)
                .then(|| &*Box::leak(Box::new(HolderSet::new())))
        }
        fn current_task(&self) -> u64 {
            // As the kernel's: the running task, through a call.
            std::hint::black_box(1)
        }
        fn on_holders(&self, id: u64, holders: &HolderSet) {
            let (tasks, unknown) = holders.read();
            emit(&Message::Holders(proto::Holders {
                resource: proto::ResourceId(id),
                tasks: tasks.map(|t| (t != 0).then_some(proto::TaskId(t))),
                unknown,
            }));
        }
        fn on_dropped(&self, id: u64) {
            emit(&Message::ResourceDropped(proto::ResourceDropped {
                id: proto::ResourceId(id),
            }));
        }
        fn on_wait_begin(&self, id: u64, _op: WaitOp) -> Option<u64> {
            emit(&Message::WaitBegin(proto::WaitBegin {
                task: proto::TaskId(1),
                resource: proto::ResourceId(id),
                op: proto::WaitOp::Recv,
            }));
            Some(1)
        }
        fn on_wait_end(&self, task: u64, id: u64, _outcome: WaitOutcome) {
            emit(&Message::WaitEnd(proto::WaitEnd {
                task: proto::TaskId(task),
                resource: proto::ResourceId(id),
                outcome: proto::WaitOutcome::Ready,
            }));
        }
    }

    static HOOKS: &dyn ResourceHooks = &Hooks;

    /// `Receiver::recv` without its wait span: the like-for-like baseline of a
    /// receive that completes at once.
    struct BareRecv<'a>(&'a mut mpsc::Receiver<u32>);

    impl Future for BareRecv<'_> {
        type Output = Option<u32>;
        #[inline]
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> std::task::Poll<Option<u32>> {
            self.0.poll_recv(cx)
        }
    }

    /// A send, then a receive through the untracked future: one call, as
    /// [`recv_ready`] is, so both sides are compiled alike wherever they are timed.
    #[inline(never)]
    fn bare_recv_ready(tx: &mpsc::Sender<u32>, rx: &mut mpsc::Receiver<u32>, cx: &mut Context<'_>) -> bool {
        tx.try_send(1).unwrap();
        pin!(BareRecv(rx)).poll(cx).is_ready()
    }

    /// A send, then `Receiver::recv` polled ready.
    #[inline(never)]
    fn recv_ready(tx: &mpsc::Sender<u32>, rx: &mut mpsc::Receiver<u32>, cx: &mut Context<'_>) -> bool {
        tx.try_send(1).unwrap();
        pin!(rx.recv()).poll(cx).is_ready()
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// Nanoseconds per op of `f` run `OPS` times.
    fn time(mut f: impl FnMut()) -> f64 {
        let start = Instant::now();
        for _ in 0..OPS {
            f();
        }
        start.elapsed().as_secs_f64() * 1e9 / f64::from(OPS)
    }

    fn row(name: &str, ns: f64) {
        println!("{{\"name\":\"{name}\",\"lucid\":{ns},\"anchor\":null,\"ratio\":null,\"unit\":\"ns\"}}");
    }

    pub fn main() {
        let mut args = std::env::args().skip(1);
        let mut runs = 9;
        while let Some(a) = args.next() {
            if a == "--runs" {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or(runs);
            }
        }
        let mut cx = Context::from_waker(Waker::noop());
        // Created before the hooks are installed: never reported.
        let (untracked_tx, mut untracked_rx) = mpsc::channel::<u32>(1);
        PRODUCER.get_or_init(|| Producer::new(StreamId::new(0, Ring::Task), 4096, 1 << 21));
        resource::install(&HOOKS);
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        let plain_mutex = Mutex::new(0u32);
        TRACK_HOLDERS.store(true, Ordering::Relaxed);
        let (held_tx, mut held_rx) = mpsc::channel::<u32>(1);
        let held_mutex = Mutex::new(0u32);
        TRACK_HOLDERS.store(false, Ordering::Relaxed);

        let mut samples: [Vec<f64>; 8] = Default::default();
        for run in 0..runs {
            // Each pair of sides back to back, in alternating order (each closure
            // is written twice, so that each borrows the receiver on its own).
            macro_rules! pair {
                ($a:expr, $b:expr, $fa:expr, $fb:expr) => {
                    if run % 2 == 0 {
                        samples[$a].push(time($fa));
                        samples[$b].push(time($fb));
                    } else {
                        samples[$b].push(time($fb));
                        samples[$a].push(time($fa));
                    }
                };
            }
            // Ready at once: the bare future (no tracking) against recv (tracked
            // channel).
            pair!(
                0,
                1,
                || {
                    black_box(bare_recv_ready(&tx, &mut rx, &mut cx));
                },
                || {
                    black_box(recv_ready(&tx, &mut rx, &mut cx));
                }
            );
            // Pending, then ready: untracked against tracked.
            pair!(
                2,
                3,
                || {
                    let mut recv = pin!(untracked_rx.recv());
                    let _ = black_box(recv.as_mut().poll(&mut cx));
                    untracked_tx.try_send(1).unwrap();
                    let _ = black_box(recv.poll(&mut cx));
                },
                || {
                    let mut recv = pin!(rx.recv());
                    let _ = black_box(recv.as_mut().poll(&mut cx));
                    tx.try_send(1).unwrap();
                    let _ = black_box(recv.poll(&mut cx));
                }
            );
            // A send and receive at once, without and with holder tracking.
            pair!(
                4,
                5,
                || {
                    tx.try_send(1).unwrap();
                    let _ = black_box(rx.try_recv());
                },
                || {
                    held_tx.try_send(1).unwrap();
                    let _ = black_box(held_rx.try_recv());
                }
            );
            // An uncontended lock and unlock, without and with holder tracking.
            pair!(6, 7, || *black_box(plain_mutex.try_lock().unwrap()) += 1, || {
                *black_box(held_mutex.try_lock().unwrap()) += 1
            });
            // Empty the ring between runs, as the kernel's drain does.
            if let Some(p) = PRODUCER.get() {
                // SAFETY: the main thread is this producer's only consumer.
                while !unsafe { p.frame(true, &mut |_, _| true) } {}
            }
        }
        // Each cost is the median of the per-run differences: both sides of a pair
        // ran back to back, so the machine's drift between runs cancels.
        let paired = |base: &[f64], with: &[f64]| median(with.iter().zip(base).map(|(w, b)| w - b).collect());
        let not_taken = paired(&samples[0], &samples[1]);
        let taken = paired(&samples[2], &samples[3]);
        let holders_send = paired(&samples[4], &samples[5]);
        let holders_lock = paired(&samples[6], &samples[7]);
        let [untracked, tracked, wait_untracked, wait_tracked, ..] = samples.map(median);
        row("recv.ready.untracked.ns", untracked);
        row("recv.ready.tracked.ns", tracked);
        row("wait.not_taken.ns", not_taken);
        row("recv.wait.untracked.ns", wait_untracked);
        row("recv.wait.tracked.ns", wait_tracked);
        row("wait.taken.ns", taken);
        row("holders.send.ns", holders_send);
        row("holders.lock.ns", holders_lock);
    }
}
