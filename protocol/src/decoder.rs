//! The host-side streaming decoder: bytes in any chunking → events, gaps and errors.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::cobs;
use crate::error::FrameError;
use crate::frame::{Event, MAX_FRAME_LEN, StreamId, decode_frame};

/// Streams tracked for sequence gaps; frames of further streams are still decoded.
const MAX_TRACKED_STREAMS: usize = 4096;

/// Position of the first 0x00 in `s`, eight bytes at a time (delimiters are hundreds
/// of bytes apart, and the byte-by-byte search was a quarter of the decoder's time).
#[inline]
fn find_zero(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut words = s.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let v = u64::from_le_bytes(b);
        // The lowest set bit marks the first zero byte (a borrow only ever sets bits
        // above a zero byte).
        let z = v.wrapping_sub(LO) & !v & HI;
        if z != 0 {
            return Some(base + (z.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    words.remainder().iter().position(|&b| b == 0).map(|i| base + i)
}

/// What the decoder reports, in stream order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item<'a> {
    /// A decoded event.
    Event {
        /// Stream (CPU and ring) that carried it.
        stream: StreamId,
        /// Sequence number of its frame.
        seq: u32,
        /// The event.
        event: Event<'a>,
    },
    /// Frames of a stream are missing (or arrived out of order): reported before the
    /// events of the frame that revealed it.
    Gap {
        /// The stream.
        stream: StreamId,
        /// Sequence number the decoder expected.
        expected: u32,
        /// Sequence number it got.
        received: u32,
    },
    /// A stream started again at sequence 0 (the kernel rebooted).
    Restart {
        /// The stream.
        stream: StreamId,
    },
    /// A frame (or the tail of one) was rejected.
    Error {
        /// Offset in the input of the frame's first byte.
        offset: u64,
        /// Why.
        error: FrameError,
    },
}

/// Counters of everything the decoder has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecoderStats {
    /// Input bytes.
    pub bytes: u64,
    /// Frames accepted (CRC and header valid).
    pub frames: u64,
    /// Events delivered.
    pub events: u64,
    /// Records of unknown kinds skipped.
    pub unknown_events: u64,
    /// Frames with a CRC mismatch.
    pub crc_errors: u64,
    /// Frames with invalid COBS or too short to be a frame.
    pub cobs_errors: u64,
    /// Frames above [`MAX_FRAME_LEN`].
    pub oversized_frames: u64,
    /// Frames of an incompatible major version.
    pub version_errors: u64,
    /// Frames with a malformed header or record.
    pub malformed_frames: u64,
    /// Sequence discontinuities.
    pub sequence_gaps: u64,
    /// Frames missing according to those discontinuities.
    pub missing_frames: u64,
    /// Streams restarted at sequence 0.
    pub restarts: u64,
}

impl DecoderStats {
    /// All frames rejected for corruption: CRC, COBS, size, malformed content.
    #[must_use]
    pub fn corrupt_frames(&self) -> u64 {
        self.crc_errors + self.cobs_errors + self.oversized_frames + self.malformed_frames
    }
}

/// Streaming decoder: feed it arbitrary chunks of the byte stream.
///
/// It buffers at most one wire frame ([`crate::MAX_WIRE_FRAME_LEN`] bytes), resyncs at
/// the next 0x00 after garbage, and never panics.
///
/// It serialises (a replay's keyframes hold its state, partial frame included, so
/// decoding resumes mid-stream exactly as if it had never stopped); check a
/// deserialised one with [`Decoder::is_sound`].
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decoder {
    buf: Vec<u8>,
    /// The current frame outgrew the limit; skip to the next delimiter.
    overflowed: usize,
    offset: u64,
    frame_start: u64,
    next_seq: BTreeMap<StreamId, u32>,
    stats: DecoderStats,
}

impl Decoder {
    /// A decoder that has seen nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// Whether a deserialised decoder keeps the bounds a fed one keeps (at most one
    /// wire frame buffered, at most the tracked number of streams).
    #[must_use]
    pub fn is_sound(&self) -> bool {
        self.buf.len() <= cobs::max_encoded_len(MAX_FRAME_LEN)
            && self.next_seq.len() <= MAX_TRACKED_STREAMS
            && self.frame_start <= self.offset
    }

    /// Input offset of the next byte.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Decodes `chunk`, calling `sink` for every item it completes.
    pub fn feed(&mut self, mut chunk: &[u8], mut sink: impl FnMut(Item<'_>)) {
        let limit = cobs::max_encoded_len(MAX_FRAME_LEN);
        self.stats.bytes += chunk.len() as u64;
        while !chunk.is_empty() {
            let (part, delimited) = match find_zero(chunk) {
                Some(i) => (&chunk[..i], true),
                None => (chunk, false),
            };
            if self.overflowed > 0 || self.buf.len() + part.len() > limit {
                self.overflowed = self.overflowed.saturating_add(self.buf.len() + part.len());
                self.buf.clear();
            } else {
                self.buf.extend_from_slice(part);
            }
            let consumed = part.len() + usize::from(delimited);
            self.offset += consumed as u64;
            chunk = &chunk[consumed..];
            if delimited {
                self.end_frame(&mut sink);
                self.frame_start = self.offset;
            }
        }
    }

    /// Reports a frame left unfinished at the end of the input, if any.
    pub fn finish(&mut self, mut sink: impl FnMut(Item<'_>)) {
        let len = self.buf.len() + self.overflowed;
        if len > 0 {
            sink(Item::Error {
                offset: self.frame_start,
                error: FrameError::Incomplete { len },
            });
        }
        self.buf.clear();
        self.overflowed = 0;
        self.frame_start = self.offset;
    }

    fn end_frame(&mut self, sink: &mut impl FnMut(Item<'_>)) {
        let offset = self.frame_start;
        if self.overflowed > 0 {
            let len = self.overflowed;
            self.overflowed = 0;
            self.stats.oversized_frames += 1;
            sink(Item::Error {
                offset,
                error: FrameError::TooLarge { len },
            });
            return;
        }
        if self.buf.is_empty() {
            // Empty frames are padding; a sender may use them to force a resync.
            return;
        }
        let mut buf = core::mem::take(&mut self.buf);
        self.decode(&mut buf, offset, sink);
        buf.clear();
        self.buf = buf;
    }

    fn decode(&mut self, buf: &mut [u8], offset: u64, sink: &mut impl FnMut(Item<'_>)) {
        let frame = match decode_frame(buf) {
            Ok(f) => f,
            Err(error) => {
                match error {
                    FrameError::Crc { .. } => self.stats.crc_errors += 1,
                    FrameError::Cobs | FrameError::TooShort { .. } => self.stats.cobs_errors += 1,
                    FrameError::TooLarge { .. } => self.stats.oversized_frames += 1,
                    FrameError::IncompatibleVersion { .. } => self.stats.version_errors += 1,
                    _ => self.stats.malformed_frames += 1,
                }
                sink(Item::Error { offset, error });
                return;
            }
        };
        self.stats.frames += 1;
        self.check_sequence(frame.stream, frame.seq, sink);
        let mut events = frame.events();
        for item in events.by_ref() {
            match item {
                Ok(event) => {
                    self.stats.events += 1;
                    sink(Item::Event {
                        stream: frame.stream,
                        seq: frame.seq,
                        event,
                    });
                }
                Err(e) => {
                    self.stats.malformed_frames += 1;
                    sink(Item::Error {
                        offset,
                        error: FrameError::Record(e),
                    });
                }
            }
        }
        self.stats.unknown_events += u64::from(events.skipped());
    }

    fn check_sequence(&mut self, stream: StreamId, seq: u32, sink: &mut impl FnMut(Item<'_>)) {
        match self.next_seq.get(&stream).copied() {
            Some(expected) if expected != seq => {
                if seq == 0 {
                    self.stats.restarts += 1;
                    sink(Item::Restart { stream });
                } else {
                    let missing = seq.wrapping_sub(expected);
                    self.stats.sequence_gaps += 1;
                    // A "gap" of more than half the space is a frame from the past.
                    if missing < 1 << 31 {
                        self.stats.missing_frames += u64::from(missing);
                    }
                    sink(Item::Gap {
                        stream,
                        expected,
                        received: seq,
                    });
                }
            }
            Some(_) => {}
            None if self.next_seq.len() >= MAX_TRACKED_STREAMS => return,
            None => {}
        }
        self.next_seq.insert(stream, seq.wrapping_add(1));
    }
}

#[cfg(test)]
mod find_zero_tests {
    use super::find_zero;

    #[test]
    fn finds_the_first_zero_like_a_byte_search() {
        let mut rng = crate::testdata::Rng::new(3);
        for len in 0..80 {
            for _ in 0..200 {
                let v: alloc::vec::Vec<u8> = (0..len)
                    .map(|_| match rng.next_u64() % 8 {
                        0 => 0,
                        1 => 1,
                        2 => 0x80,
                        3 => 0xff,
                        _ => rng.next_u64() as u8,
                    })
                    .collect();
                assert_eq!(find_zero(&v), v.iter().position(|&b| b == 0), "{v:?}");
            }
        }
    }
}
