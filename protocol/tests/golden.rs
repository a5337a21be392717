//! Golden byte vectors: one wire frame per message kind, pinned byte for byte so the
//! format cannot drift silently. After an intended format change (which needs a
//! version bump), regenerate with `LUCID_BLESS=1 cargo test -p lucid-protocol --test golden`.

mod common;

use common::{frame, parse_golden, to_hex};
use lucid_protocol::testdata::sample_messages;
use lucid_protocol::{MessageKind, Ring, StreamId, decode_frame};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/messages.hex");
/// Fixed frame parameters for every vector.
const STREAM: StreamId = StreamId::new(1, Ring::Task);
const SEQ: u32 = 7;
const BASE_TS: u64 = 1_000_000;

fn vectors() -> Vec<(String, Vec<u8>)> {
    sample_messages()
        .into_iter()
        .map(|m| {
            // Two events, so the vector also pins the timestamp delta encoding.
            let wire = frame(STREAM, SEQ, &[(BASE_TS, m), (BASE_TS + 300, m)]);
            (m.kind().name().to_string(), wire)
        })
        .collect()
}

#[test]
fn samples_cover_every_kind_once() {
    let kinds: Vec<MessageKind> = sample_messages().iter().map(|m| m.kind()).collect();
    assert_eq!(kinds, MessageKind::ALL);
}

/// The golden file holds one vector per kind; a poll's end has three results, each
/// its own code (`PendingWoken` since minor 3).
#[test]
fn a_poll_end_woken_during_the_poll_has_its_own_code() {
    let m = lucid_protocol::Message::PollEnd {
        task: lucid_protocol::TaskId(300),
        result: lucid_protocol::PollResult::PendingWoken,
    };
    let wire = frame(STREAM, SEQ, &[(BASE_TS, m), (BASE_TS + 300, m)]);
    assert_eq!(to_hex(&wire), "08010407c0843d5c0cac025cd804ac0213e575ac00");
    let golden = parse_golden(&std::fs::read_to_string(GOLDEN).expect("golden file"));
    let pending = golden.iter().find(|(n, _)| n == "poll_end").expect("poll_end vector");
    assert_ne!(to_hex(&pending.1), to_hex(&wire));
}

/// A poll's end carrying the wakes the task gave itself during the poll (minor 4) is
/// one record with a second field, `count << 1 | by_ref`, and decodes to those wakes
/// and then the poll's end, all at its time; without self-wakes it is the plain record.
#[test]
fn a_poll_end_carries_its_self_wakes_in_one_record() {
    use lucid_protocol::{FrameEncoder, Message, PollResult, SelfWakes, TaskId, Waker};
    let task = TaskId(300);
    let mut enc = FrameEncoder::with_sequence(vec![0u8; 256], STREAM, SEQ);
    let woke = SelfWakes { count: 2, by_ref: true };
    enc.poll_end_woke_self(BASE_TS, task, PollResult::PendingWoken, woke)
        .expect("room");
    enc.poll_end_woke_self(BASE_TS + 300, task, PollResult::Ready, SelfWakes::default())
        .expect("room");
    assert_eq!(enc.event_count(), 4, "the frame counts the wakes as events");
    let mut wire = vec![0u8; enc.max_finished_len()];
    let n = enc.finish(&mut wire).expect("room");
    wire.truncate(n);
    // Tag 0x7c (3 varints, PendingWoken), delta 0, task 300, wakes 2 << 1 | 1; then
    // tag 0x42 (2 varints, Ready), delta 300, task 300: the plain record.
    assert_eq!(to_hex(&wire), "08010407c0843d7c0dac020542d804ac025a4419cc00");
    let mut buf = wire[..wire.len() - 1].to_vec();
    let f = decode_frame(&mut buf).expect("a valid frame");
    let events: Vec<_> = f.events().map(|e| e.expect("a valid record")).collect();
    let wake = Message::Wake {
        task,
        waker: Waker::Task(task),
        by_ref: true,
        self_wake: true,
    };
    let got: Vec<_> = events.iter().map(|e| (e.ts, e.message)).collect();
    assert_eq!(
        got,
        [
            (BASE_TS, wake),
            (BASE_TS, wake),
            (
                BASE_TS,
                Message::PollEnd {
                    task,
                    result: PollResult::PendingWoken
                }
            ),
            (
                BASE_TS + 300,
                Message::PollEnd {
                    task,
                    result: PollResult::Ready
                }
            ),
        ]
    );
}

/// A wake by value carrying the drop of its waker (minor 4) is the Wake record with a
/// fourth field, the wakers left, and decodes to the Wake and then the WakerDrop.
#[test]
fn a_wake_carries_the_drop_of_its_waker_in_one_record() {
    use lucid_protocol::{FrameEncoder, Message, TaskId, Waker};
    let (task, waker) = (TaskId(300), Waker::Task(TaskId(5)));
    let mut enc = FrameEncoder::with_sequence(vec![0u8; 256], STREAM, SEQ);
    enc.wake_dropping(BASE_TS, task, waker, false, 2).expect("room");
    assert_eq!(enc.event_count(), 2, "the frame counts the drop as an event");
    let mut wire = vec![0u8; enc.max_finished_len()];
    let n = enc.finish(&mut wire).expect("room");
    wire.truncate(n);
    // Tag 0xa3 (5 varints, Wake), delta 0, task 300, waker 5, flags 1 << 2 (a task,
    // by value, not a self-wake), 2 wakers left.
    assert_eq!(to_hex(&wire), "08010407c0843da30aac0205040299bd254000");
    let mut buf = wire[..wire.len() - 1].to_vec();
    let f = decode_frame(&mut buf).expect("a valid frame");
    let got: Vec<_> = f
        .events()
        .map(|e| e.expect("a valid record"))
        .map(|e| (e.ts, e.message))
        .collect();
    let wake = Message::Wake {
        task,
        waker,
        by_ref: false,
        self_wake: false,
    };
    assert_eq!(
        got,
        [(BASE_TS, wake), (BASE_TS, Message::WakerDrop { task, wakers: 2 })]
    );
}

#[test]
fn wire_bytes_match_the_golden_file() {
    let current = vectors();
    if std::env::var_os("LUCID_BLESS").is_some() {
        let mut text = String::from(
            "# One wire frame per message kind (stream cpu 1 / task ring, seq 7, the sample\n\
             # message at ts 1000000 and again at ts 1000300). Generated by tests/golden.rs.\n",
        );
        for (name, bytes) in &current {
            text.push_str(&format!("{name}: {}\n", to_hex(bytes)));
        }
        std::fs::write(GOLDEN, text).unwrap();
    }
    let golden = parse_golden(&std::fs::read_to_string(GOLDEN).expect("golden file"));
    let names: Vec<&str> = golden.iter().map(|(n, _)| n.as_str()).collect();
    let expected: Vec<&str> = current.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, expected, "golden file lists other kinds");
    for ((name, want), (_, got)) in golden.iter().zip(&current) {
        assert_eq!(
            to_hex(got),
            to_hex(want),
            "{name}: encoding drifted from the golden vector"
        );
    }
}

#[test]
fn golden_vectors_decode_to_the_samples() {
    let golden = parse_golden(&std::fs::read_to_string(GOLDEN).expect("golden file"));
    for ((name, bytes), sample) in golden.iter().zip(sample_messages()) {
        let mut buf = bytes[..bytes.len() - 1].to_vec();
        let f = decode_frame(&mut buf).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((f.stream, f.seq, f.base_ts), (STREAM, SEQ, BASE_TS));
        let events: Vec<_> = f.events().map(|e| e.unwrap()).collect();
        assert_eq!(events.len(), 2, "{name}");
        assert_eq!(events[0].message, sample, "{name}");
        assert_eq!(events[1].ts, BASE_TS + 300, "{name}");
    }
}
