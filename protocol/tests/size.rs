//! Wire size is a format property: PollStart/PollEnd must average at most 8 bytes on
//! the wire, framing overhead included, for realistic batches.

use lucid_protocol::TaskId;
use lucid_protocol::testdata::{Workload, generate};
use lucid_protocol::{MessageKind, Ring, StreamId, testdata::Rng};

#[test]
fn poll_events_average_at_most_8_bytes_on_the_wire() {
    let g = generate(&Workload::default());
    let poll = [MessageKind::PollStart, MessageKind::PollEnd];
    let n: u64 = poll.iter().map(|k| g.counts[k]).sum();
    let bytes: f64 = poll.iter().map(|&k| g.bytes_per_event(k) * g.counts[&k] as f64).sum();
    let avg = bytes / n as f64;
    println!("bytes/event by kind (record + framing share), {} events:", g.events());
    for (k, c) in &g.counts {
        println!("  {:<24} {:>6}  {:>5.2}", k.name(), c, g.bytes_per_event(*k));
    }
    println!("  poll_start+poll_end average {avg:.2}");
    println!(
        "  all events: {:.2} bytes/event",
        g.wire_bytes() as f64 / g.events() as f64
    );
    assert!(avg <= 8.0, "PollStart/PollEnd average {avg:.2} bytes > 8");
}

/// A frame holding nothing but polls of 1000 tasks with TSC deltas of real polls: the
/// pure hot path, measured from finished wire bytes alone.
#[test]
fn a_pure_poll_batch_fits_the_budget() {
    let mut enc = lucid_protocol::FrameEncoder::new([0u8; 4096], StreamId::new(2, Ring::Task));
    let mut rng = Rng::new(7);
    let mut out = vec![0u8; 8192];
    let (mut wire, mut events, mut ts) = (0usize, 0u64, 10_000_000u64);
    for i in 0..20_000u64 {
        let task = 1 + rng.range(0, 1000);
        ts += rng.range(500, 5_000);
        let start = enc.poll_start(ts, TaskId(task));
        ts += rng.range(5_000, 100_000);
        let end = enc.poll_end(ts, TaskId(task), lucid_protocol::PollResult::Pending);
        if start.is_err() || end.is_err() {
            enc.discard();
            continue;
        }
        events += 2;
        if enc.raw_len() > 4000 || i == 19_999 {
            wire += enc.finish(&mut out).unwrap();
        }
    }
    let avg = wire as f64 / events as f64;
    println!("pure poll batch: {avg:.2} bytes/event");
    assert!(avg <= 8.0, "{avg:.2}");
}
