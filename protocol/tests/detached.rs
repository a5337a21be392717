//! A record encoded detached (where the event happens) and framed later with its
//! timestamp gives exactly the bytes of pushing the message directly.

use lucid_protocol::*;

#[test]
fn detached_records_frame_to_the_same_bytes_as_direct_pushes() {
    let stream = StreamId::new(3, Ring::Task);
    // Deltas of every varint length, including one that lengthens an extended body's
    // length prefix.
    let times = [0u64, 1, 63, 64, 200, 20_000, 1 << 30, u64::MAX / 3];
    for msg in testdata::sample_messages() {
        let mut direct = FrameEncoder::new(vec![0u8; 4096], stream);
        let mut detached = FrameEncoder::new(vec![0u8; 4096], stream);
        let mut record = [0u8; 2048];
        let len = msg.encode_detached(&mut record).expect("a sample message encodes");
        for &ts in &times {
            direct.push(ts, &msg).expect("fits");
            detached.push_detached(ts, &record[..len]).expect("fits");
        }
        assert_eq!(direct.raw_bytes(), detached.raw_bytes(), "{msg:?}");
    }
}

#[test]
fn a_malformed_detached_record_is_refused_and_leaves_the_frame_unchanged() {
    let mut enc = FrameEncoder::new(vec![0u8; 256], StreamId::new(0, Ring::Task));
    enc.poll_start(5, TaskId(1)).expect("fits");
    let before = enc.raw_bytes().to_vec();
    assert!(enc.push_detached(9, &[]).is_err());
    assert!(
        enc.push_detached(9, &[0x41, 7, 1]).is_err(),
        "a nonzero delta is not detached"
    );
    assert_eq!(enc.raw_bytes(), before);
    assert_eq!(enc.event_count(), 1);
}
