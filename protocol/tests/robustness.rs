//! The decoders never panic and degrade precisely: truncation, corruption, garbage,
//! gaps, versions, unknown kinds.

mod common;

use common::{decode_chunks, frame};
use lucid_protocol::recording::{RecordingError, RecordingReader};
use lucid_protocol::testdata::{Rng, Workload, generate};
use lucid_protocol::*;
use proptest::prelude::*;

fn small() -> testdata::Generated {
    generate(&Workload {
        cpus: 2,
        tasks: 20,
        polls_per_task: 3,
        wasm_instances: 1,
        loss: 3,
        frame_buffer: 256,
        seed: 5,
        ..Workload::default()
    })
}

fn poll(task: u64) -> Message<'static> {
    Message::PollStart { task: TaskId(task) }
}

/// A raw frame built by hand (header + given record bytes + CRC), COBS-free bytes.
fn raw_frame(major: u8, records: &[u8]) -> Vec<u8> {
    let mut raw = vec![major, 0x04, 0x00, 0x0a];
    raw.extend_from_slice(records);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&raw);
    raw.extend_from_slice(&crc.to_le_bytes());
    raw
}

/// COBS by hand, because the public encoder cannot produce invalid frame content.
fn cobs_wire(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    let mut code_at = 0;
    let mut code = 1u8;
    for &b in raw {
        if b != 0 {
            out.push(b);
            code += 1;
        }
        if b == 0 || code == 0xff {
            out[code_at] = code;
            code_at = out.len();
            out.push(0);
            code = 1;
        }
    }
    out[code_at] = code;
    out.push(0);
    out
}

#[test]
fn clean_stream_decodes_completely() {
    let g = small();
    let (c, d) = decode_chunks([g.wire().as_slice()]);
    assert!(c.errors.is_empty() && c.gaps.is_empty(), "{c:?}");
    assert_eq!(d.stats().events, g.events());
    assert_eq!(d.stats().frames, g.frames.len() as u64);
}

#[test]
fn every_truncation_of_a_stream_decodes_a_prefix() {
    let g = small();
    let wire = g.wire();
    let (full, _) = decode_chunks([wire.as_slice()]);
    for cut in 0..wire.len() {
        let (c, _) = decode_chunks([&wire[..cut]]);
        assert!(c.events.len() <= full.events.len());
        assert_eq!(c.events[..], full.events[..c.events.len()], "cut {cut}");
        let ends_on_delimiter = cut == 0 || wire[cut - 1] == 0;
        assert_eq!(c.errors.is_empty(), ends_on_delimiter, "cut {cut}: {:?}", c.errors);
    }
}

#[test]
fn every_truncation_of_a_recording_reads_a_prefix() {
    let g = small();
    let rec = g.recording(97);
    for cut in 0..rec.len() {
        let Ok(mut r) = RecordingReader::new(&rec[..cut]) else {
            assert!(cut < 16);
            continue;
        };
        let mut events = 0u64;
        let mut d = Decoder::new();
        let end = loop {
            match r.next_chunk() {
                Ok(Some(chunk)) => d.feed(&chunk.data, |i| {
                    if matches!(i, Item::Event { .. }) {
                        events += 1;
                    }
                }),
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        assert!(events <= g.events());
        if let Some(e) = end {
            assert!(matches!(e, RecordingError::Truncated { .. }), "cut {cut}: {e}");
            assert!(e.offset().unwrap() <= cut as u64);
        }
    }
}

#[test]
fn bit_flips_are_caught_by_the_crc_and_the_decoder_resyncs() {
    let g = small();
    let wire = g.wire();
    let mut rng = Rng::new(99);
    for _ in 0..300 {
        let mut bad = wire.clone();
        let i = rng.range(0, bad.len() as u64) as usize;
        bad[i] ^= 1 << rng.range(0, 8);
        let (c, d) = decode_chunks([bad.as_slice()]);
        let s = d.stats();
        // One flipped bit damages at most the frame it is in (or, if it makes or
        // removes a delimiter, the two frames around it).
        assert!(s.frames + 2 >= g.frames.len() as u64, "flip at {i}: {s:?}");
        assert!(!c.errors.is_empty(), "flip at {i} went unnoticed");
        assert!(s.events <= g.events());
    }
}

#[test]
fn garbage_before_and_between_frames_is_skipped() {
    let stream = StreamId::new(0, Ring::Task);
    let mut wire = b"\x13\x37garbage\xff\xfe".to_vec();
    wire.push(0);
    wire.extend(frame(stream, 0, &[(1, poll(1))]));
    wire.extend(b"noise without delimiter then ");
    wire.extend(frame(stream, 1, &[(2, poll(2))]));
    let (c, d) = decode_chunks([wire.as_slice()]);
    // The noise glues onto the second frame up to its delimiter: one frame lost.
    assert_eq!(c.events.len(), 1);
    assert_eq!(d.stats().corrupt_frames(), 2, "{:?}", d.stats());
    // A sender that starts with a delimiter (an empty frame) resyncs without loss.
    let mut wire = b"noise".to_vec();
    wire.push(0);
    wire.extend(frame(stream, 0, &[(1, poll(1))]));
    wire.push(0);
    wire.extend(frame(stream, 1, &[(2, poll(2))]));
    let (c, _) = decode_chunks([wire.as_slice()]);
    assert_eq!(c.events.len(), 2);
    assert_eq!(c.errors.len(), 1);
    assert_eq!(c.errors[0].0, 0, "error names the offset of the garbage");
}

#[test]
fn sequence_gaps_are_reported_per_stream() {
    let a = StreamId::new(0, Ring::Task);
    let b = StreamId::new(1, Ring::Task);
    let mut wire = Vec::new();
    wire.extend(frame(a, 0, &[(1, poll(1))]));
    wire.extend(frame(b, 0, &[(1, poll(1))]));
    wire.extend(frame(a, 3, &[(2, poll(1))]));
    wire.extend(frame(b, 1, &[(2, poll(1))]));
    let (c, d) = decode_chunks([wire.as_slice()]);
    assert_eq!(c.gaps, vec![(a, 1, 3)]);
    assert_eq!(d.stats().missing_frames, 2);
    assert_eq!(c.events.len(), 4);
}

#[test]
fn an_incompatible_major_version_is_refused_clearly() {
    let wire = cobs_wire(&raw_frame(MAJOR + 1, &[0x40, 0x00, 0x01]));
    let (c, d) = decode_chunks([wire.as_slice()]);
    assert!(c.events.is_empty());
    assert_eq!(d.stats().version_errors, 1);
    assert!(
        c.errors[0].1.contains("incompatible protocol version"),
        "{}",
        c.errors[0].1
    );
}

#[test]
fn unknown_kinds_of_a_newer_minor_are_skipped() {
    let records = [
        0x40, 0x02, 0x05, // PollStart task 5, ts +1
        0x5d, 0x02, 0x09, // unknown compact code 29 with one field, ts +1
        0xfe, 0x03, 0x02, 0xaa, 0xbb, // unknown extended code 30, 3-byte body (ts +1)
        0xff, 0x40, 0x01, 0x02, // escaped extended code 64, 1-byte body (ts +1)
        0x60, 0x02, 0x05, 0x07, // PollStart with an extra trailing field, ts +1
    ];
    let wire = cobs_wire(&raw_frame(MAJOR, &records));
    let (c, d) = decode_chunks([wire.as_slice()]);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(d.stats().unknown_events, 3);
    let ts: Vec<u64> = c.events.iter().map(|e| e.1).collect();
    // base 10; deltas of the skipped records still count.
    assert_eq!(ts, vec![11, 15]);
    assert_eq!(c.events[1].2, "PollStart { task: 5 }");
}

#[test]
fn an_oversized_frame_is_discarded_without_buffering_it() {
    let mut wire = vec![1u8; MAX_WIRE_FRAME_LEN * 2];
    wire.push(0);
    wire.extend(frame(StreamId::new(0, Ring::Task), 0, &[(1, poll(1))]));
    let (c, d) = decode_chunks(wire.chunks(1000));
    assert_eq!(d.stats().oversized_frames, 1);
    assert_eq!(c.events.len(), 1);
}

proptest! {
    #[test]
    fn random_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000), split in 0..2000usize) {
        let split = split.min(data.len());
        let (c, d) = decode_chunks([&data[..split], &data[split..]]);
        prop_assert!(d.stats().events as usize == c.events.len());
        let _ = RecordingReader::new(data.as_slice()).map(|mut r| while let Ok(Some(_)) = r.next_record() {});
        let mut buf = data.clone();
        let _ = decode_frame(&mut buf).map(|f| f.events().count());
    }

    #[test]
    fn random_records_in_a_valid_frame_never_panic(records in proptest::collection::vec(any::<u8>(), 0..300)) {
        let wire = cobs_wire(&raw_frame(MAJOR, &records));
        let _ = decode_chunks([wire.as_slice()]);
    }
}

#[test]
fn a_stream_starting_over_is_a_restart_not_a_gap() {
    let a = StreamId::new(2, Ring::Control);
    let mut wire = Vec::new();
    for seq in [0, 1, 2, 0, 1] {
        wire.extend(frame(a, seq, &[(u64::from(seq), Message::Heartbeat)]));
    }
    let mut restarts = 0;
    let mut d = Decoder::new();
    d.feed(&wire, |i| {
        if matches!(i, Item::Restart { stream } if stream == a) {
            restarts += 1;
        }
    });
    assert_eq!(restarts, 1);
    assert_eq!(d.stats().sequence_gaps, 0);
    assert_eq!(d.stats().events, 5);
}
