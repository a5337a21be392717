use lucid_protocol::{Decoder, Item, Message, PollResult, Ring, StreamId};

use super::*;
use lucid_protocol::TaskId;

fn producer(ring_bytes: usize) -> Producer {
    Producer::new(StreamId::new(2, Ring::Task), 256, ring_bytes)
}

/// Drains a producer into a decoder; returns (events decoded, gaps).
fn drain(producer: &Producer, decoder: &mut Decoder) -> (u64, u64) {
    let mut scratch = vec![0u8; sealed_max(256)];
    let (mut events, mut gaps) = (0, 0);
    while producer.ring.pop(&mut scratch, |_, frame| {
        decoder.feed(frame, |item| match item {
            Item::Event { .. } => events += 1,
            Item::Gap { .. } => gaps += 1,
            _ => {}
        });
        true
    }) {}
    (events, gaps)
}

#[test]
fn every_event_is_delivered_or_counted_as_dropped() {
    // A small ring that overflows: produced = decoded + dropped, exactly.
    let producer = producer(1024);
    let mut decoder = Decoder::new();
    let mut decoded = 0;
    for i in 0..5_000u64 {
        // SAFETY: one thread, one caller.
        unsafe { producer.record(i * 10, &|e, ts| e.poll_start(ts, TaskId(i))) };
        if i % 700 == 0 {
            decoded += drain(&producer, &mut decoder).0;
        }
    }
    // SAFETY: as above.
    unsafe { producer.seal_now() };
    let (rest, gaps) = drain(&producer, &mut decoder);
    decoded += rest;
    let produced = producer.produced.load(core::sync::atomic::Ordering::Relaxed);
    let dropped = producer.dropped.load(core::sync::atomic::Ordering::Relaxed);
    assert_eq!(produced, 5_000);
    assert!(dropped > 0, "the ring was meant to overflow");
    assert_eq!(decoded + dropped, produced);
    assert_eq!(gaps, 0, "discarded frames keep the sequence contiguous");
}

#[test]
fn an_old_partial_frame_is_sealed_on_the_next_record() {
    let producer = producer(64 * 1024);
    producer.set_seal_age(1_000);
    // SAFETY: one thread, one caller.
    unsafe { producer.record(0, &|e, ts| e.poll_start(ts, TaskId(1))) };
    assert!(producer.ring.is_empty());
    // SAFETY: as above.
    unsafe { producer.record(5_000, &|e, ts| e.poll_end(ts, TaskId(1), PollResult::Pending)) };
    assert!(!producer.ring.is_empty(), "a frame older than the seal age is sealed");
    let mut decoder = Decoder::new();
    assert_eq!(drain(&producer, &mut decoder).0, 2);
}

#[test]
fn an_event_too_large_for_any_frame_is_counted() {
    let producer = producer(64 * 1024);
    let long = "x".repeat(1000);
    let msg = Message::TaskSpawned(lucid_protocol::TaskSpawned {
        task: TaskId(1),
        name: &long,
        kind: lucid_protocol::TaskKind::Kernel,
        location: lucid_protocol::Location {
            file: "f",
            line: 1,
            column: 1,
        },
        parent: None,
    });
    // SAFETY: one thread, one caller.
    unsafe { producer.record(1, &|e, ts| e.push(ts, &msg)) };
    assert_eq!(producer.dropped.load(core::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(producer.unreported.load(core::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn a_poll_boundary_reads_the_clock_once() {
    let producer = producer(64 * 1024);
    let clock = core::cell::Cell::new(100u64);
    let now = || {
        clock.set(clock.get() + 10);
        clock.get()
    };
    let reads = || producer.clock_reads.load(core::sync::atomic::Ordering::Relaxed);
    // SAFETY: one thread, one caller.
    unsafe {
        let first = producer.poll_start_time(now);
        assert_eq!((first, reads()), (110, 1), "nothing to share yet: a fresh read");
        assert_eq!(producer.event_time(now), first, "inside a poll: the poll's time");
        let end = producer.poll_end_time(now);
        assert_eq!(end, 120);
        assert_eq!(producer.poll_start_time(now), end, "the next start shares the end");
        assert_eq!(reads(), 2);
        let end = producer.poll_end_time(now);
        producer.time_passes();
        let start = producer.poll_start_time(now);
        assert!(start > end, "after untraced time a start reads the clock again");
        assert_eq!(reads(), 4);
        producer.poll_end_time(now);
        let outside = producer.event_time(now);
        assert_eq!(
            producer.poll_start_time(now),
            outside,
            "an event between polls is shared too"
        );
        assert_eq!(reads(), 6);
    }
}

#[test]
fn paused_events_are_counted_as_dropped_and_reported_once() {
    let producer = producer(64 * 1024);
    // SAFETY: one thread, one caller.
    unsafe {
        producer.skip();
        producer.skip();
    }
    assert_eq!(producer.produced.load(core::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(producer.dropped_total(), 2);
    assert_eq!(producer.clock_reads.load(core::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(producer.take_unreported(), 2);
    assert_eq!(producer.take_unreported(), 0);
}
