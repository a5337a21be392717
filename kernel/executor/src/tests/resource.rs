//! Resources and waits reach the resource hooks: creation and drop, and a wait only
//! when an operation returns `Pending`.

use std::sync::Mutex as StdMutex;
use std::thread::{self, ThreadId};
use std::vec::Vec;

use super::{poll_once, run_until_idle, single};
use crate::resource::{self, ResourceHooks, ResourceKind, WaitOp, WaitOutcome};
use crate::sync::{Semaphore, WaitQueue, mpsc, oneshot};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Created(u64, ResourceKind, String, u32),
    Dropped(u64),
    Begin(u64, WaitOp),
    End(u64, WaitOutcome),
    Holders(u64, Vec<u64>, u32),
}

std::thread_local! {
    /// Whether this thread's channels track their holders, and the task it runs.
    static HOLDERS: core::cell::Cell<Option<u64>> = const { core::cell::Cell::new(None) };
}

/// Records what each test thread did (tests run in parallel, the hooks are global).
struct Recorder(StdMutex<Vec<(ThreadId, Seen)>>);

impl Recorder {
    fn push(&self, seen: Seen) {
        self.0.lock().unwrap().push((thread::current().id(), seen));
    }
}

impl ResourceHooks for Recorder {
    fn on_created(
        &self,
        id: u64,
        kind: ResourceKind,
        name: &'static str,
        location: &'static core::panic::Location<'static>,
        _capacity: Option<u64>,
    ) -> bool {
        let line = if location.file().ends_with("tests/resource.rs") {
            location.line()
        } else {
            0
        };
        self.push(Seen::Created(id, kind, name.into(), line));
        true
    }
    fn counters(&self, id: u64) -> Option<&'static resource::OpCounts> {
        let counts: &'static resource::OpCounts = Box::leak(Box::default());
        COUNTS.lock().unwrap().push((id, counts));
        Some(counts)
    }
    fn holders(&self, _id: u64) -> Option<&'static crate::holders::HolderSet> {
        HOLDERS
            .get()
            .map(|_| &*Box::leak(Box::new(crate::holders::HolderSet::new())))
    }
    fn current_task(&self) -> u64 {
        HOLDERS.get().unwrap_or(0)
    }
    fn on_holders(&self, id: u64, holders: &crate::holders::HolderSet) {
        let (tasks, unknown) = holders.read();
        let mut tasks: Vec<u64> = tasks.into_iter().filter(|&t| t != 0).collect();
        tasks.sort_unstable();
        self.push(Seen::Holders(id, tasks, unknown));
    }
    fn on_dropped(&self, id: u64) {
        self.push(Seen::Dropped(id));
    }
    fn on_wait_begin(&self, id: u64, op: WaitOp) -> Option<u64> {
        self.push(Seen::Begin(id, op));
        Some(7)
    }
    fn on_wait_end(&self, task: u64, id: u64, outcome: WaitOutcome) {
        assert_eq!(task, 7, "the task the begin named");
        self.push(Seen::End(id, outcome));
    }
}

static RECORDER: Recorder = Recorder(StdMutex::new(Vec::new()));
/// The operation counts handed out, by resource id.
static COUNTS: StdMutex<Vec<(u64, &'static resource::OpCounts)>> = StdMutex::new(Vec::new());

fn counts_of(id: u64) -> &'static resource::OpCounts {
    COUNTS
        .lock()
        .unwrap()
        .iter()
        .find(|c| c.0 == id)
        .expect("counts of the resource")
        .1
}
static HOOKS: &dyn ResourceHooks = &RECORDER;

/// What this thread reported since the last call.
fn seen() -> Vec<Seen> {
    resource::install(&HOOKS);
    let me = thread::current().id();
    let mut all = RECORDER.0.lock().unwrap();
    let (mine, others) = all.drain(..).partition(|(t, _)| *t == me);
    *all = others;
    mine.into_iter().map(|(_, s)| s).collect()
}

#[test]
fn a_sender_is_held_by_its_first_user_until_another_task_uses_it() {
    seen();
    HOLDERS.set(Some(0));
    let (tx, _rx) = mpsc::channel::<u8>(4);
    let id = match seen().as_slice() {
        [Seen::Created(id, ..), Seen::Holders(h, tasks, 1)] if h == id && tasks.is_empty() => *id,
        other => panic!("{other:?}"),
    };
    // Used outside a task: still unknown, and nothing to report.
    tx.try_send(0).unwrap();
    assert_eq!(seen(), []);
    let tx2 = tx.clone();
    HOLDERS.set(Some(5));
    // A new handle's first use by task 5 names it.
    tx2.try_send(1).unwrap();
    tx2.try_send(2).unwrap();
    assert_eq!(
        seen(),
        [Seen::Holders(id, vec![], 2), Seen::Holders(id, vec![5], 1)],
        "one report per change, none per send"
    );
    // Used by task 6 as well: shared, unknown for good.
    HOLDERS.set(Some(6));
    tx2.try_send(3).unwrap();
    HOLDERS.set(Some(5));
    tx2.try_send(4).unwrap_err();
    assert_eq!(seen(), [Seen::Holders(id, vec![], 2)]);
    drop(tx2);
    drop(tx);
    assert_eq!(seen(), [Seen::Holders(id, vec![], 1), Seen::Holders(id, vec![], 0)]);
    HOLDERS.set(None);
}

#[test]
fn a_mutex_reports_its_holder_only_to_a_task_that_waits_for_it() {
    seen();
    HOLDERS.set(Some(5));
    let m = crate::sync::Mutex::new(0u8);
    let id = match seen().as_slice() {
        [Seen::Created(id, ResourceKind::Mutex, ..)] => *id,
        other => panic!("{other:?}"),
    };
    // Uncontended: nothing reported.
    drop(m.try_lock().expect("free"));
    let g = poll_once(&mut Box::pin(m.lock()));
    assert!(g.is_ready());
    drop(g);
    let held = m.try_lock().expect("free");
    assert_eq!(seen(), []);
    // Task 6 waits: told that task 5 holds it; then takes it after a wait.
    HOLDERS.set(Some(6));
    let mut lock = Box::pin(m.lock());
    assert!(poll_once(&mut lock).is_pending());
    drop(held);
    assert!(poll_once(&mut lock).is_ready());
    assert_eq!(
        seen(),
        [
            Seen::Begin(id, WaitOp::Lock),
            Seen::Holders(id, vec![5], 0),
            Seen::End(id, WaitOutcome::Ready),
            Seen::Holders(id, vec![6], 0),
        ]
    );
    drop(lock);
    HOLDERS.set(None);
}

#[test]
fn a_holder_set_overflows_into_unknown_and_back() {
    let set = crate::holders::HolderSet::new();
    for t in 1..=6 {
        set.add(t);
    }
    assert_eq!(set.read(), ([1, 2, 3, 4], 2));
    set.remove(6);
    set.remove(2);
    assert_eq!(set.read(), ([1, 0, 3, 4], 1));
    set.add(0);
    set.remove(9);
    assert_eq!(set.read(), ([1, 0, 3, 4], 1));
    for t in [1, 3, 4, 0, 0] {
        set.remove(t);
    }
    assert!(set.is_empty());
}

#[test]
fn a_channel_reports_creation_drop_and_only_the_waits_that_happen() {
    seen();
    let line = line!() + 1;
    let (tx, mut rx) = mpsc::named_channel::<u8>("ping", 1);
    let created = seen();
    let [Seen::Created(id, ResourceKind::Channel, name, at)] = created.as_slice() else {
        panic!("{created:?}");
    };
    assert_eq!((name.as_str(), *at), ("ping", line));
    let id = *id;

    // Completes at once: no wait.
    tx.try_send(1).unwrap();
    assert_eq!(poll_once(&mut Box::pin(rx.recv())), std::task::Poll::Ready(Some(1)));
    assert_eq!(seen(), []);

    // Waits, then completes.
    let mut recv = Box::pin(rx.recv());
    assert!(poll_once(&mut recv).is_pending());
    assert!(
        poll_once(&mut recv).is_pending(),
        "a second pending poll begins nothing"
    );
    tx.try_send(2).unwrap();
    assert_eq!(poll_once(&mut recv), std::task::Poll::Ready(Some(2)));
    drop(recv);
    assert_eq!(
        seen(),
        [Seen::Begin(id, WaitOp::Recv), Seen::End(id, WaitOutcome::Ready)]
    );

    // Dropped while waiting.
    let mut recv = Box::pin(rx.recv());
    assert!(poll_once(&mut recv).is_pending());
    drop(recv);
    assert_eq!(
        seen(),
        [Seen::Begin(id, WaitOp::Recv), Seen::End(id, WaitOutcome::Cancelled)]
    );

    // A full channel: the sender waits on the channel, not on its semaphore.
    tx.try_send(3).unwrap();
    let mut send = Box::pin(tx.send(4));
    assert!(poll_once(&mut send).is_pending());
    assert_eq!(rx.try_recv(), Ok(3));
    assert!(poll_once(&mut send).is_ready());
    drop(send);
    assert_eq!(
        seen(),
        [Seen::Begin(id, WaitOp::Send), Seen::End(id, WaitOutcome::Ready)]
    );

    drop((tx, rx));
    assert_eq!(seen(), [Seen::Dropped(id)]);
}

#[test]
fn semaphores_wait_queues_and_oneshots_report_their_waits() {
    seen();
    let sem = Semaphore::new(0);
    let queue = WaitQueue::named("jobs");
    let (tx, mut rx) = oneshot::channel::<u8>();
    let ids: Vec<(u64, ResourceKind)> = seen()
        .into_iter()
        .map(|s| match s {
            Seen::Created(id, kind, ..) => (id, kind),
            other => panic!("{other:?}"),
        })
        .collect();
    let kinds: Vec<ResourceKind> = ids.iter().map(|&(_, k)| k).collect();
    assert_eq!(
        kinds,
        [ResourceKind::Semaphore, ResourceKind::WaitQueue, ResourceKind::Oneshot]
    );

    let mut acquire = Box::pin(sem.acquire(1));
    assert!(poll_once(&mut acquire).is_pending());
    sem.add_permits(1);
    assert!(poll_once(&mut acquire).is_ready());
    let mut wait = Box::pin(queue.wait());
    assert!(poll_once(&mut wait).is_pending());
    queue.wake();
    assert!(poll_once(&mut wait).is_ready());
    assert!(poll_once(&mut rx).is_pending());
    tx.send(1).unwrap();
    assert!(poll_once(&mut rx).is_ready());
    assert_eq!(
        seen(),
        [
            Seen::Begin(ids[0].0, WaitOp::Acquire),
            Seen::End(ids[0].0, WaitOutcome::Ready),
            Seen::Begin(ids[1].0, WaitOp::Wait),
            Seen::End(ids[1].0, WaitOutcome::Ready),
            Seen::Begin(ids[2].0, WaitOp::Recv),
            Seen::End(ids[2].0, WaitOutcome::Ready),
        ]
    );
}

#[test]
fn a_join_handle_that_waits_owns_a_join_resource_for_the_wait() {
    let rt = single();
    seen();
    let (tx, rx) = oneshot::channel::<u8>();
    let mut joined = rt.spawn(rx);
    run_until_idle(rt, 0);
    seen();
    assert!(poll_once(&mut joined).is_pending());
    let begun = seen();
    let [
        Seen::Created(id, ResourceKind::Join, ..),
        Seen::Begin(begin_id, WaitOp::Join),
    ] = begun.as_slice()
    else {
        panic!("{begun:?}");
    };
    assert_eq!(id, begin_id);
    let id = *id;
    tx.send(5).unwrap();
    run_until_idle(rt, 0);
    assert!(poll_once(&mut joined).is_ready());
    let ended = seen();
    assert!(
        ended.ends_with(&[Seen::End(id, WaitOutcome::Ready), Seen::Dropped(id)]),
        "{ended:?}"
    );
}

#[test]
fn a_frame_is_a_wait_only_while_its_task_is_parked_inside_it() {
    use crate::frame::FrameExt;
    seen();
    let (tx, mut rx) = mpsc::named_channel::<u8>("inner", 1);
    let chan = match seen().as_slice() {
        [Seen::Created(id, ResourceKind::Channel, _, _)] => *id,
        other => panic!("{other:?}"),
    };
    // A stage that completes at once reports nothing.
    tx.try_send(1).unwrap();
    let mut quick = Box::pin(async { rx.recv().await }.frame("quick"));
    assert_eq!(poll_once(&mut quick), std::task::Poll::Ready(Some(1)));
    drop(quick);
    assert_eq!(seen(), []);

    let line = line!() + 1;
    let mut framed = Box::pin(async { rx.recv().await }.frame("serve client"));
    assert!(poll_once(&mut framed).is_pending());
    let first = seen();
    let [
        Seen::Begin(c, WaitOp::Recv),
        Seen::Created(frame, ResourceKind::Frame, name, at),
        Seen::Begin(f, WaitOp::Inside),
    ] = first.as_slice()
    else {
        panic!("the inner wait, then the stage parked: {first:?}");
    };
    assert_eq!((*c, name.as_str(), *at, f), (chan, "serve client", line, frame));
    let frame = *frame;
    // Woken without its value: out of the stage and parked in it again; the
    // channel's wait stays open.
    assert!(poll_once(&mut framed).is_pending());
    assert_eq!(
        seen(),
        [Seen::End(frame, WaitOutcome::Ready), Seen::Begin(frame, WaitOp::Inside)]
    );
    tx.try_send(2).unwrap();
    assert_eq!(poll_once(&mut framed), std::task::Poll::Ready(Some(2)));
    drop(framed);
    assert_eq!(
        seen(),
        [
            Seen::End(frame, WaitOutcome::Ready),
            Seen::End(chan, WaitOutcome::Ready),
            Seen::Dropped(frame)
        ]
    );
    drop((tx, rx));
    seen();
}

#[test]
fn channels_semaphores_and_mutexes_count_their_operations() {
    use crate::resource::CountedOp;
    use crate::sync::Mutex;
    seen();
    let (tx, mut rx) = mpsc::named_channel::<u8>("counted", 2);
    let sem = Semaphore::new(3);
    let mutex = Mutex::new(0u8);
    let ids: Vec<u64> = seen()
        .iter()
        .filter_map(|s| match s {
            Seen::Created(id, ..) => Some(*id),
            _ => None,
        })
        .collect();
    let [chan, sem_id, mutex_id] = ids[..] else {
        panic!("{ids:?}");
    };
    tx.try_send(1).unwrap();
    assert_eq!(poll_once(&mut Box::pin(tx.send(2))), std::task::Poll::Ready(Ok(())));
    assert!(tx.try_send(3).is_err(), "full: not counted");
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(poll_once(&mut Box::pin(rx.recv())), std::task::Poll::Ready(Some(2)));
    let c = counts_of(chan);
    assert_eq!((c.get(CountedOp::Send), c.get(CountedOp::Recv)), (2, 2));
    let p = sem.try_acquire(1).unwrap();
    assert!(poll_once(&mut Box::pin(sem.acquire(2))).is_ready());
    drop(p);
    assert_eq!(counts_of(sem_id).get(CountedOp::Acquire), 2);
    drop(mutex.try_lock().unwrap());
    drop(poll_once(&mut Box::pin(mutex.lock())));
    let m = counts_of(mutex_id);
    assert_eq!((m.get(CountedOp::Lock), m.get(CountedOp::Acquire)), (2, 0));
    drop((tx, rx, sem, mutex));
    seen();
}
