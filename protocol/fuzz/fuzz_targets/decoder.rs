//! Arbitrary bytes, split at an arbitrary point, through every decoding entry point:
//! none may panic, and the decoder's counters must stay consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucid_protocol::recording::RecordingReader;
use lucid_protocol::{Decoder, Item, decode_frame};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut decoder = Decoder::new();
    let mut events = 0u64;
    let mut count = |item: Item<'_>| {
        if matches!(item, Item::Event { .. }) {
            events += 1;
        }
    };
    decoder.feed(&data[..split], &mut count);
    decoder.feed(&data[split..], &mut count);
    decoder.finish(&mut count);
    assert_eq!(decoder.stats().events, events);

    let mut buf = data.to_vec();
    if let Ok(frame) = decode_frame(&mut buf) {
        for event in frame.events() {
            let _ = event.map(|e| e.message.kind());
        }
    }

    if let Ok(mut reader) = RecordingReader::new(data) {
        while let Ok(Some(_)) = reader.next_record() {}
    }
});
