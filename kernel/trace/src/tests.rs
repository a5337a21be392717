use alloc::vec::Vec;
use core::sync::atomic::Ordering::Relaxed;

use alloc::{format, string::String};

use lucid_protocol::{Decoder, Item, Message, MessageKind, PollResult, Ring, StreamId, TaskId, Waker};

use super::*;

fn producer(ring_slots: usize) -> Producer {
    Producer::new(StreamId::new(2, Ring::Task), 256, ring_slots)
}

/// Frames everything waiting (sealing the last partial frame) and decodes it; returns
/// the messages `(ts, message)` and the gaps seen.
fn drain(producer: &Producer, decoder: &mut Decoder) -> (Vec<(u64, MessageKind, String)>, u64) {
    let (mut events, mut gaps) = (Vec::new(), 0);
    // SAFETY: one thread, the only consumer.
    let done = unsafe {
        producer.frame(true, &mut |_, frame| {
            decoder.feed(frame, |item| match item {
                Item::Event { event, .. } => {
                    events.push((event.ts, event.message.kind(), format!("{:?}", event.message)))
                }
                Item::Gap { .. } => gaps += 1,
                _ => {}
            });
            true
        })
    };
    assert!(done);
    (events, gaps)
}

fn clock(start: u64) -> impl Fn() -> u64 {
    let t = core::cell::Cell::new(start);
    move || {
        t.set(t.get() + 10);
        t.get()
    }
}

#[test]
fn every_event_is_delivered_or_counted_as_dropped() {
    // A small ring that overflows: produced = decoded + dropped, exactly.
    let producer = producer(64);
    let mut decoder = Decoder::new();
    let now = clock(0);
    let mut decoded = 0;
    for i in 0..5_000u64 {
        // SAFETY: one thread, one caller.
        unsafe {
            producer.poll_start(i, &now);
            producer.poll_end(i, PollResult::Pending, &now);
        }
        if i % 70 == 0 {
            decoded += drain(&producer, &mut decoder).0.len() as u64;
        }
    }
    let (rest, gaps) = drain(&producer, &mut decoder);
    decoded += rest.len() as u64;
    let produced = producer.produced.load(Relaxed);
    let dropped = producer.dropped_total();
    assert_eq!(produced, 10_000);
    assert!(dropped > 0, "the ring was meant to overflow");
    assert_eq!(decoded + dropped, produced);
    assert_eq!(gaps, 0, "drops happen before framing: the sequence stays contiguous");
}

#[test]
fn records_become_the_messages_the_hooks_saw() {
    let producer = producer(1024);
    let now = clock(1000);
    static LOCATION: &core::panic::Location<'static> = core::panic::Location::caller();
    // SAFETY: one thread, one caller.
    unsafe {
        producer.spawned(7, Some(1), false, "worker", LOCATION, &now);
        producer.poll_start(7, &now);
        producer.wake(9, Waker::Task(TaskId(7)), false, false, &now);
        producer.waker_count(9, 0, false, &now);
        producer.wake(7, Waker::Task(TaskId(7)), true, true, &now);
        producer.wake(7, Waker::Task(TaskId(7)), true, true, &now);
        producer.waker_count(7, 1, true, &now);
        producer.waker_count(7, 2, true, &now);
        // Woken by itself: queued again.
        producer.poll_end(7, PollResult::PendingWoken, &now);
        producer.event(
            Event::TaskCompleted {
                task: 9,
                outcome: lucid_protocol::Outcome::Ok,
            },
            &now,
        );
        producer.event(
            Event::Steal {
                task: 3,
                from: 1,
                to: 2,
            },
            &now,
        );
        producer.message(
            &Message::TaskPanicked(lucid_protocol::TaskPanicked {
                task: TaskId(9),
                message: "hello",
                location: None,
            }),
            &now,
        );
    }
    let (events, _) = drain(&producer, &mut Decoder::new());
    let kinds: Vec<MessageKind> = events.iter().map(|(_, k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            MessageKind::TaskSpawned,
            MessageKind::PollStart,
            MessageKind::Wake,
            MessageKind::WakerDrop,
            // Waker counts go out at once; self-wakes ride on the poll's end.
            MessageKind::WakerClone,
            MessageKind::WakerClone,
            MessageKind::Wake,
            MessageKind::Wake,
            MessageKind::PollEnd,
            MessageKind::TaskCompleted,
            MessageKind::Steal,
            MessageKind::TaskPanicked,
        ]
    );
    let ts: Vec<u64> = events.iter().map(|(ts, _, _)| *ts).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "time never runs backwards: {ts:?}");
    assert_eq!(ts[1], ts[0], "the poll start shares the spawn's read");
    assert_eq!(ts[2], ts[1], "a wake inside a poll carries the poll's time");
    assert_eq!(ts[3], ts[1], "so does a waker count");
    assert_eq!(ts[7], ts[8], "self-wakes carry their poll's end");
    assert_eq!(ts[8], ts[9], "an event after a poll shares its end");
    assert!(ts[11] > ts[10], "a message reads the clock afresh");
    assert_eq!(
        producer.clock_reads.load(Relaxed),
        3,
        "one read before the poll, one at its end, one for the message"
    );
    assert_eq!(producer.produced.load(Relaxed), events.len() as u64);
    let rendered: Vec<&String> = events.iter().map(|(_, _, m)| m).collect();
    assert!(rendered[0].contains("worker"), "{}", rendered[0]);
    assert!(rendered[4].contains("wakers: 1"), "{}", rendered[4]);
    assert!(rendered[5].contains("wakers: 2"), "{}", rendered[5]);
    assert!(rendered[8].contains("result: PendingWoken"), "{}", rendered[8]);
    assert!(
        rendered[6].contains("self_wake: true") && rendered[6].contains("by_ref: true"),
        "{}",
        rendered[6]
    );
    assert!(
        rendered[10].contains("from_cpu: 1") && rendered[10].contains("to_cpu: 2"),
        "{}",
        rendered[10]
    );
    assert!(rendered[11].contains("hello"), "{}", rendered[11]);
}

#[test]
fn wait_records_become_the_messages_they_stand_for() {
    let producer = producer(1024);
    let now = clock(0);
    let waits = [
        Message::WaitBegin(lucid_protocol::WaitBegin {
            task: TaskId(4),
            resource: lucid_protocol::ResourceId(70),
            op: lucid_protocol::WaitOp::Recv,
        }),
        Message::WaitBegin(lucid_protocol::WaitBegin {
            task: TaskId(u64::MAX),
            resource: lucid_protocol::ResourceId(u64::MAX),
            op: lucid_protocol::WaitOp::Inside,
        }),
        Message::WaitEnd(lucid_protocol::WaitEnd {
            task: TaskId(4),
            resource: lucid_protocol::ResourceId(70),
            outcome: lucid_protocol::WaitOutcome::Ready,
        }),
        Message::WaitEnd(lucid_protocol::WaitEnd {
            task: TaskId(5),
            resource: lucid_protocol::ResourceId(71),
            outcome: lucid_protocol::WaitOutcome::Cancelled,
        }),
        Message::WaitEnd(lucid_protocol::WaitEnd {
            task: TaskId(6),
            resource: lucid_protocol::ResourceId(72),
            outcome: lucid_protocol::WaitOutcome::TimedOut,
        }),
    ];
    for op in lucid_protocol::WaitOp::ALL {
        // SAFETY: one thread, one caller.
        unsafe { producer.wait(8, 9, Ok(op), &now) };
    }
    for m in &waits {
        let what = match m {
            Message::WaitBegin(w) => (w.task.0, w.resource.0, Ok(w.op)),
            Message::WaitEnd(w) => (w.task.0, w.resource.0, Err(w.outcome)),
            _ => unreachable!(),
        };
        // SAFETY: as above.
        unsafe { producer.wait(what.0, what.1, what.2, &now) };
    }
    let (events, _) = drain(&producer, &mut Decoder::new());
    let rendered: Vec<&String> = events.iter().map(|(_, _, m)| m).collect();
    let ops = lucid_protocol::WaitOp::ALL.len();
    for (op, got) in lucid_protocol::WaitOp::ALL.iter().zip(&rendered) {
        let want = Message::WaitBegin(lucid_protocol::WaitBegin {
            task: TaskId(8),
            resource: lucid_protocol::ResourceId(9),
            op: *op,
        });
        assert_eq!(**got, format!("{want:?}"));
    }
    let want: Vec<String> = waits.iter().map(|m| format!("{m:?}")).collect();
    assert_eq!(rendered[ops..], want.iter().collect::<Vec<_>>()[..]);
    let ts: Vec<u64> = events.iter().map(|(ts, _, _)| *ts).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "each wait reads the clock: {ts:?}");
    assert_eq!(producer.ring.used(), 0);
    assert_eq!(producer.produced.load(Relaxed), events.len() as u64);
}

#[test]
fn compact_messages_are_kept_as_fields_and_framed_as_the_message() {
    let producer = producer(1024);
    let now = clock(0);
    let messages = [
        Message::WasmPoll {
            instance: lucid_protocol::InstanceId(3),
            fuel: u64::MAX,
            slices: 7,
        },
        Message::WasmStateChanged {
            instance: lucid_protocol::InstanceId(3),
            state: lucid_protocol::WasmState::Running,
            detail: 0,
        },
        Message::WasmHostcalls {
            instance: lucid_protocol::InstanceId(4),
            hostcall: 2,
            calls: 1 << 40,
            ticks: u64::MAX,
        },
        Message::WasmStateChanged {
            instance: lucid_protocol::InstanceId(3),
            state: lucid_protocol::WasmState::Trapped,
            detail: u64::MAX,
        },
        Message::CpuIdle,
        Message::RunQueueDepth { depth: 12 },
    ];
    for m in &messages {
        // SAFETY: one thread, one caller.
        unsafe { producer.message(m, &now) };
    }
    // One slot each; two for more than two fields, unless the third is small.
    assert_eq!(producer.ring.used(), messages.len() + 2);
    let (events, _) = drain(&producer, &mut Decoder::new());
    let got: Vec<(MessageKind, &String)> = events.iter().map(|(_, k, m)| (*k, m)).collect();
    let want: Vec<(MessageKind, String)> = messages.iter().map(|m| (m.kind(), format!("{m:?}"))).collect();
    assert_eq!(got, want.iter().map(|(k, m)| (*k, m)).collect::<Vec<_>>());
    assert_eq!(producer.produced.load(Relaxed), messages.len() as u64);
    assert_eq!(producer.dropped_total(), 0);
}

#[test]
fn a_refused_frame_is_offered_again_first() {
    let producer = producer(1 << 12);
    let now = clock(0);
    for i in 0..200 {
        // SAFETY: one thread, one caller.
        unsafe { producer.poll_start(i, &now) };
    }
    let mut frames = Vec::new();
    let mut refuse = true;
    // SAFETY: one thread, the only consumer.
    let done = unsafe {
        producer.frame(true, &mut |events, bytes| {
            if core::mem::take(&mut refuse) {
                return false;
            }
            frames.push((events, bytes.to_vec()));
            true
        })
    };
    assert!(!done, "the first frame was refused");
    // SAFETY: as above.
    assert!(unsafe {
        producer.frame(true, &mut |events, bytes| {
            frames.push((events, bytes.to_vec()));
            true
        })
    });
    let events: u32 = frames.iter().map(|(e, _)| e).sum();
    assert_eq!(events, 200, "nothing lost, nothing twice");
    let mut decoder = Decoder::new();
    let mut seen = 0;
    for (_, bytes) in &frames {
        decoder.feed(bytes, |item| {
            if let Item::Event { .. } = item {
                seen += 1;
            }
            assert!(!matches!(item, Item::Gap { .. }));
        });
    }
    assert_eq!(seen, 200);
}

#[test]
fn an_event_too_large_for_an_entry_is_counted() {
    let producer = producer(1024);
    let long = "x".repeat(5000);
    let msg = Message::TaskPanicked(lucid_protocol::TaskPanicked {
        task: TaskId(1),
        message: &long,
        location: None,
    });
    // SAFETY: one thread, one caller.
    unsafe { producer.message(&msg, clock(0)) };
    assert_eq!(producer.produced.load(Relaxed), 1);
    assert_eq!(producer.dropped.load(Relaxed), 1);
    assert_eq!(producer.take_unreported(), 1);
}

#[test]
fn a_poll_boundary_reads_the_clock_once() {
    let producer = producer(1024);
    let now = clock(100);
    let reads = || producer.clock_reads.load(Relaxed);
    // SAFETY: one thread, one caller.
    unsafe {
        let first = producer.poll_start(1, &now);
        assert_eq!((first, reads()), (110, 1), "nothing to share yet: a fresh read");
        assert_eq!(producer.event_time(&now), first, "inside a poll: the poll's time");
        let end = producer.poll_end(1, PollResult::Pending, &now);
        assert_eq!(end, 120);
        assert_eq!(producer.poll_start(2, &now), end, "the next start shares the end");
        assert_eq!(reads(), 2);
        let end = producer.poll_end(2, PollResult::Pending, &now);
        // Outside a poll (a timer or interrupt handler) nothing bounds how old the
        // last timestamp is: a wake reads the clock.
        let woken = producer.wake(5, Waker::None, false, false, &now);
        assert!(woken > end, "a wake outside a poll reads the clock");
        assert_eq!(reads(), 4);
        producer.time_passes();
        let start = producer.poll_start(3, &now);
        assert!(start > woken, "after untraced time a start reads the clock again");
        assert_eq!(reads(), 5);
    }
}

#[test]
fn paused_events_are_counted_as_dropped_and_reported_once() {
    let producer = producer(1024);
    // SAFETY: one thread, one caller.
    unsafe {
        producer.skip();
        producer.skip();
    }
    assert_eq!(producer.produced.load(Relaxed), 2);
    assert_eq!(producer.dropped_total(), 2);
    assert_eq!(producer.clock_reads.load(Relaxed), 0);
    assert_eq!(producer.take_unreported(), 2);
    assert_eq!(producer.take_unreported(), 0);
    // What the executor did while no hook ran, counted in bulk on resume.
    producer.count_paused(5);
    assert_eq!(producer.produced_total(), 7);
    assert_eq!(producer.dropped_total(), 7);
    assert_eq!(producer.take_unreported(), 5);
    assert_eq!(producer.take_unreported(), 0);
}

/// One producer call of the hot kinds (and a spawn and a message to break the runs).
#[derive(Debug, Clone)]
enum Call {
    PollStart(u64),
    /// The task, its self-wakes during the poll (by reference?), its own waker count
    /// changes, and the result.
    Poll(u64, u8, bool, Option<(u64, bool)>, u8),
    Wake(u64, u8, u64, bool, bool),
    WakerCount(u64, u64, bool),
    Spawn(u64),
    Message(u64),
    /// A task's end: a join wait on it (by a waiter), its completion, its free.
    End(u64, u64, u8),
}

fn call() -> impl proptest::strategy::Strategy<Value = Call> {
    use proptest::prelude::*;
    let id = prop_oneof![0u64..200, Just(u64::MAX), 1u64 << 40..1u64 << 41];
    prop_oneof![
        id.clone().prop_map(Call::PollStart),
        (
            id.clone(),
            0u8..4,
            any::<bool>(),
            proptest::option::of((id.clone(), any::<bool>())),
            0u8..3
        )
            .prop_map(|(t, w, r, c, e)| Call::Poll(t, w, r, c, e)),
        (id.clone(), 0u8..3, id.clone(), any::<bool>(), any::<bool>())
            .prop_map(|(t, k, v, r, s)| Call::Wake(t, k, v, r, s)),
        (id.clone(), id.clone(), any::<bool>()).prop_map(|(t, n, c)| Call::WakerCount(t, n, c)),
        id.clone().prop_map(Call::Spawn),
        id.clone().prop_map(Call::Message),
        (id.clone(), id, 0u8..3).prop_map(|(t, w, o)| Call::End(t, w, o)),
    ]
}

/// Makes `calls` on `producer` with a clock that jumps by `steps` (wide jumps make
/// long timestamp deltas).
fn make(producer: &Producer, calls: &[Call], steps: &[u64]) {
    static LOCATION: &core::panic::Location<'static> = core::panic::Location::caller();
    let t = core::cell::Cell::new(0u64);
    let i = core::cell::Cell::new(0usize);
    let now = || {
        t.set(t.get().wrapping_add(steps[i.get() % steps.len()]));
        i.set(i.get() + 1);
        t.get()
    };
    for call in calls {
        // SAFETY: one thread, one caller.
        unsafe {
            match *call {
                Call::PollStart(task) => {
                    producer.poll_start(task, now);
                }
                Call::Poll(task, self_wakes, by_ref, count, end) => {
                    producer.poll_start(task, now);
                    for _ in 0..self_wakes {
                        producer.wake(task, Waker::Task(TaskId(task)), by_ref, true, now);
                    }
                    if let Some((n, cloned)) = count {
                        producer.waker_count(task, n, cloned, now);
                    }
                    let result = [PollResult::Pending, PollResult::Ready, PollResult::PendingWoken][end as usize];
                    producer.poll_end(task, result, now);
                }
                Call::Wake(task, kind, value, by_ref, self_wake) => {
                    let waker = match kind {
                        0 => Waker::None,
                        1 => Waker::Task(TaskId(value)),
                        _ => Waker::Interrupt(value as u8),
                    };
                    producer.wake(task, waker, by_ref, self_wake, now);
                }
                Call::WakerCount(task, n, cloned) => producer.waker_count(task, n, cloned, now),
                Call::Spawn(task) => {
                    producer.spawned(task, None, false, "spawned", LOCATION, now);
                }
                Call::End(task, waiter, outcome) => {
                    producer.event(Event::JoinWaiting { task, waiter }, now);
                    let outcome = [
                        lucid_protocol::Outcome::Ok,
                        lucid_protocol::Outcome::Cancelled,
                        lucid_protocol::Outcome::Panicked,
                    ][usize::from(outcome)];
                    producer.event(Event::TaskCompleted { task, outcome }, now);
                    producer.event(Event::TaskDropped { task }, now);
                }
                Call::Message(task) => {
                    producer.message(&Message::TaskDropped { task: TaskId(task) }, now);
                }
            }
        }
    }
}

mod hot_path {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The drain frames the hottest records on a path of their own; observed (as
        /// the host bench's accounting does) it takes the general path for every
        /// record. Both must seal the same bytes, frame by frame, full frames and
        /// nearly full ones.
        #[test]
        fn the_hot_records_frame_as_the_general_path_frames_them(
            calls in proptest::collection::vec(call(), 0..300),
            steps in proptest::collection::vec(
                prop_oneof![0u64..3, 1u64 << 20..1u64 << 21, Just(u64::MAX / 3)],
                1..8,
            ),
        ) {
            let (hot, general) = (producer(4096), producer(4096));
            make(&hot, &calls, &steps);
            make(&general, &calls, &steps);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            // SAFETY: one thread, the only consumer of each.
            let done = unsafe {
                let hot_done = hot.frame(true, &mut |_, f| {
                    a.push(f.to_vec());
                    true
                });
                let general_done = general.frame_observed(
                    true,
                    &mut |_, f| {
                        b.push(f.to_vec());
                        true
                    },
                    Some(&mut |_, _| {}),
                );
                hot_done && general_done
            };
            prop_assert!(done);
            prop_assert_eq!(a, b);
            prop_assert_eq!(hot.dropped_total(), 0);
        }
    }
}
