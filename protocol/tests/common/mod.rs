//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub use lucid_protocol::testdata::frame;
use lucid_protocol::{Decoder, Item, StreamId, decode_frame};

/// Decodes one wire frame (with delimiter) into (ts, debug string of message).
pub fn decode_one(wire: &[u8]) -> Vec<(u64, String)> {
    let mut buf = wire[..wire.len() - 1].to_vec();
    let f = decode_frame(&mut buf).expect("valid frame");
    f.events()
        .map(|e| {
            let e = e.expect("valid record");
            (e.ts, format!("{:?}", e.message))
        })
        .collect()
}

/// Everything a decoder reports, as strings (so results outlive the decode buffer).
#[derive(Debug, Default, PartialEq)]
pub struct Collected {
    pub events: Vec<(StreamId, u64, String)>,
    pub gaps: Vec<(StreamId, u32, u32)>,
    pub errors: Vec<(u64, String)>,
}

pub fn decode_chunks<'c>(chunks: impl IntoIterator<Item = &'c [u8]>) -> (Collected, Decoder) {
    let mut d = Decoder::new();
    let mut c = Collected::default();
    let mut sink = |item: Item<'_>| match item {
        Item::Event { stream, event, .. } => {
            c.events.push((stream, event.ts, format!("{:?}", event.message)));
        }
        Item::Gap {
            stream,
            expected,
            received,
        } => c.gaps.push((stream, expected, received)),
        Item::Restart { .. } => {}
        Item::Error { offset, error } => c.errors.push((offset, error.to_string())),
    };
    for ch in chunks {
        d.feed(ch, &mut sink);
    }
    d.finish(&mut sink);
    (c, d)
}

/// Parses the hex lines of a golden file: `name: hex`.
pub fn parse_golden(text: &str) -> Vec<(String, Vec<u8>)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, hex) = l.split_once(':').expect("name: hex");
            let hex: String = hex.split_whitespace().collect();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            (name.trim().to_string(), bytes)
        })
        .collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
