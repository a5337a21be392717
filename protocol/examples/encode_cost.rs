//! Host-side cost of encoding the hot events, per event, including frame sealing:
//! `cargo run --release -p lucid-protocol --example encode_cost`.
//! The numbers are host numbers; they only rank encodings against each other.

use std::hint::black_box;
use std::time::Instant;

use lucid_protocol::TaskId;
use lucid_protocol::{FrameEncoder, Message, PollResult, Ring, StreamId, Waker, cobs_max_encoded_len};

const EVENTS: u64 = 10_000_000;

fn run(name: &str, mut encode: impl FnMut(&mut FrameEncoder<[u8; 4096]>, u64) -> bool) {
    let mut enc = FrameEncoder::new([0u8; 4096], StreamId::new(0, Ring::Task));
    let mut out = [0u8; cobs_max_encoded_len(4096) + 1];
    let (mut wire, mut ts) = (0usize, 1_000_000u64);
    let start = Instant::now();
    for i in 0..EVENTS {
        ts += 700 + (i & 0x3ff) * 13;
        if !encode(&mut enc, ts) {
            wire += enc.finish(&mut out).expect("fits");
            black_box(&out);
            assert!(encode(&mut enc, ts));
        }
    }
    wire += enc.finish(&mut out).expect("fits");
    let ns = start.elapsed().as_nanos() as f64 / EVENTS as f64;
    println!(
        "{name:<28} {ns:>6.1} ns/event  {:>5.2} wire bytes/event",
        wire as f64 / EVENTS as f64
    );
}

fn encode_only(name: &str) {
    let mut enc = FrameEncoder::new([0u8; 4096], StreamId::new(0, Ring::Task));
    let mut ts = 1_000_000u64;
    let start = Instant::now();
    for i in 0..EVENTS {
        ts += 700 + (i & 0x3ff) * 13;
        let task = black_box(ts % 1000);
        if enc.poll_start(ts, TaskId(task)).is_err() {
            black_box(enc.raw_bytes());
            enc.discard();
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / EVENTS as f64;
    println!("{name:<28} {ns:>6.1} ns/event");
}

fn seal_only(name: &str) {
    let mut enc = FrameEncoder::new([0u8; 4096], StreamId::new(0, Ring::Task));
    let mut out = [0u8; cobs_max_encoded_len(4096) + 1];
    let mut ts = 1u64;
    while enc.poll_start(ts, TaskId(ts % 1000)).is_ok() {
        ts += 1000;
    }
    let raw = enc.raw_len();
    let frames = 20_000;
    let mut total = std::time::Duration::ZERO;
    for _ in 0..frames {
        let mut e = FrameEncoder::new([0u8; 4096], StreamId::new(0, Ring::Task));
        let mut t = 1u64;
        while e.poll_start(t, TaskId(t % 1000)).is_ok() {
            t += 1000;
        }
        let start = Instant::now();
        black_box(e.finish(&mut out).unwrap());
        total += start.elapsed();
    }
    println!(
        "{name:<28} {:>6.2} ns/raw byte",
        total.as_nanos() as f64 / (frames * raw) as f64
    );
}

/// Record bytes of each sample message 2500 ticks (1 µs at 2.5 GHz) after the previous
/// record, without the framing share.
fn record_sizes() {
    println!("record bytes per kind (sample messages, delta 2500 ticks):");
    for m in lucid_protocol::testdata::sample_messages() {
        let mut enc = FrameEncoder::new([0u8; 1024], StreamId::new(0, Ring::Task));
        enc.push(1_000_000, &m).expect("fits");
        let one = enc.raw_len();
        enc.push(1_002_500, &m).expect("fits");
        println!("  {:<24} {:>3}", m.kind().name(), enc.raw_len() - one);
    }
}

fn main() {
    record_sizes();
    encode_only("poll_start, encode only");
    seal_only("finish (CRC + COBS)");
    run("poll_start/poll_end (fast)", |e, ts| {
        let task = black_box(ts % 1000);
        if ts & 1 == 0 {
            e.poll_start(ts, TaskId(task)).is_ok()
        } else {
            e.poll_end(ts, TaskId(task), PollResult::Pending).is_ok()
        }
    });
    run("PollStart/PollEnd via push", |e, ts| {
        let task = black_box(ts % 1000);
        let m = if ts & 1 == 0 {
            Message::PollStart { task: TaskId(task) }
        } else {
            Message::PollEnd {
                task: TaskId(task),
                result: PollResult::Pending,
            }
        };
        e.push(ts, &m).is_ok()
    });
    run("Wake via push", |e, ts| {
        let task = black_box(ts % 1000);
        let m = Message::Wake {
            task: TaskId(task),
            waker: Waker::Task(TaskId(task + 1)),
            by_ref: false,
            self_wake: false,
        };
        e.push(ts, &m).is_ok()
    });
}
