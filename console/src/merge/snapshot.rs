//! A serialisable copy of a [`Merge`], so a replay keyframe resumes the merge exactly
//! where it was: same buffered events, same watermark inputs, same counters. Held
//! events are kept as one-event frames and go through `hold` again on restore, so a
//! restored merge holds what the original held and releases the same items in the
//! same order.

use std::collections::{BinaryHeap, VecDeque};
use std::fmt;

use lucid_protocol::{FrameEncoder, Message, OwnedMessage, Ring, StreamId, decode_frame};
use serde::{Deserialize, Serialize};

use super::{MAX_LANES, Merge, MergeStats, Pending, Progress, StreamQueue, hold, key};

/// The state of a [`Merge`], as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeSnapshot {
    lanes: Vec<LaneSnapshot>,
    progress: Progress,
    max_buffered: usize,
    stats: MergeStats,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LaneSnapshot {
    stream: StreamId,
    newest: Option<u64>,
    last_frame: u64,
    queue: Vec<HeldEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HeldEvent {
    ts: u64,
    seq: u32,
    /// A one-event frame (COBS-encoded, without the delimiter) at timestamp 0.
    frame: Vec<u8>,
}

/// A snapshot that no merge could have produced (damaged or from another build).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotError(&'static str);

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inconsistent merge snapshot: {}", self.0)
    }
}

impl std::error::Error for SnapshotError {}

impl Merge {
    /// Everything needed to continue this merge elsewhere.
    #[must_use]
    pub fn snapshot(&self) -> MergeSnapshot {
        let mut scratch = vec![0u8; lucid_protocol::MAX_FRAME_LEN];
        let mut wire = vec![0u8; lucid_protocol::cobs_max_encoded_len(lucid_protocol::MAX_FRAME_LEN) + 1];
        let lanes = self
            .lanes
            .iter()
            .map(|l| LaneSnapshot {
                stream: l.stream,
                newest: l.newest,
                last_frame: l.last_frame,
                queue: l
                    .queue
                    .iter()
                    .map(|p| HeldEvent {
                        ts: p.ts,
                        seq: p.seq,
                        frame: encode(p.message.as_ref(), &mut scratch, &mut wire),
                    })
                    .collect(),
            })
            .collect();
        MergeSnapshot {
            lanes,
            progress: self.progress,
            max_buffered: self.max_buffered,
            stats: self.stats,
        }
    }

    /// The merge `snapshot` was taken of.
    pub fn restore(snapshot: MergeSnapshot) -> Result<Self, SnapshotError> {
        let s = snapshot;
        if s.lanes.len() > MAX_LANES {
            return Err(SnapshotError("too many lanes"));
        }
        if s.progress.current.is_some_and(|(lane, _)| lane >= s.lanes.len()) {
            return Err(SnapshotError("current lane out of range"));
        }
        let held: usize = s.lanes.iter().map(|l| l.queue.len()).sum();
        if s.max_buffered == 0 || held > s.max_buffered {
            return Err(SnapshotError("more events held than the bound"));
        }
        let mut m = Merge::new(s.max_buffered);
        m.progress = s.progress;
        m.stats = s.stats;
        m.held = held;
        let mut heads = Vec::new();
        for (i, l) in s.lanes.into_iter().enumerate() {
            let mut queue = VecDeque::with_capacity(l.queue.len());
            for mut e in l.queue {
                let frame = decode_frame(&mut e.frame).map_err(|_| SnapshotError("a held event does not decode"))?;
                let Some(Ok(event)) = frame.events().next() else {
                    return Err(SnapshotError("a held frame has no event"));
                };
                queue.push_back(Pending {
                    ts: e.ts,
                    seq: e.seq,
                    message: hold(&event.message),
                });
            }
            if let Some(front) = queue.front() {
                heads.push(std::cmp::Reverse(key(front.ts, l.stream, i)));
            }
            m.lanes.push(StreamQueue {
                stream: l.stream,
                queue,
                newest: l.newest,
                last_frame: l.last_frame,
            });
        }
        m.heads = BinaryHeap::from(heads);
        Ok(m)
    }
}

/// A held message as a one-event frame without its delimiter (empty for none).
fn encode(held: Option<&OwnedMessage>, scratch: &mut [u8], wire: &mut [u8]) -> Vec<u8> {
    held.and_then(OwnedMessage::message)
        .map_or_else(Vec::new, |m| one_event_frame(&m, scratch, wire))
}

/// `m` alone in a frame at timestamp 0 (stream 0, sequence 0), without the 0x00
/// delimiter, as `decode_frame` takes it. `scratch` holds [`lucid_protocol::MAX_FRAME_LEN`]
/// bytes and `wire` its COBS encoding; a decoded message always fits, since it came
/// in a frame no larger whose header was no shorter. Empty if it does not.
fn one_event_frame(m: &Message<'_>, scratch: &mut [u8], wire: &mut [u8]) -> Vec<u8> {
    let mut enc = FrameEncoder::new(scratch, StreamId::new(0, Ring::Task));
    let n = enc.push(0, m).and_then(|()| enc.finish(wire)).unwrap_or_default();
    wire.get(..n.saturating_sub(1)).unwrap_or_default().to_vec()
}

#[cfg(test)]
mod tests {
    use lucid_protocol::Item;
    use lucid_protocol::testdata::{Workload, generate};

    use super::*;
    use crate::pipeline::Pipeline;
    use crate::time::HostNs;

    /// Every item the pipeline hands on, as text (items borrow buffers).
    fn collect(p: &mut Pipeline, wire: &[u8], out: &mut Vec<String>) {
        for chunk in wire.chunks(97) {
            p.feed(HostNs(1), chunk, &mut |i: &Item<'_>| out.push(format!("{i:?}")));
        }
    }

    #[test]
    fn a_restored_merge_releases_what_the_original_would() {
        let g = generate(&Workload {
            cpus: 3,
            tasks: 60,
            polls_per_task: 3,
            wasm_instances: 1,
            frame_buffer: 256,
            ..Workload::default()
        });
        let wire = g.wire();
        let (head, tail) = wire.split_at(wire.len() / 2);
        let mut original = Pipeline::new();
        let mut before = Vec::new();
        collect(&mut original, head, &mut before);
        let m = original.merge();
        assert!(m.buffered() > 0, "the merge holds events at the cut");
        let snap = m.snapshot();
        let bytes = postcard::to_allocvec(&snap).expect("serialise");
        let back: MergeSnapshot = postcard::from_bytes(&bytes).expect("deserialise");
        assert_eq!(back, snap);
        let mut restored = Pipeline::restore(original.decoder().clone(), back).expect("restore");
        let r = restored.merge();
        assert_eq!(r.snapshot(), snap);
        assert_eq!((r.buffered(), r.stats()), (m.buffered(), m.stats()));

        let (mut from_original, mut from_copy) = (Vec::new(), Vec::new());
        collect(&mut original, tail, &mut from_original);
        collect(&mut restored, tail, &mut from_copy);
        original.finish(&mut |i: &Item<'_>| from_original.push(format!("{i:?}")));
        restored.finish(&mut |i: &Item<'_>| from_copy.push(format!("{i:?}")));
        assert!(from_original.len() > 100);
        assert_eq!(from_original, from_copy);
    }

    #[test]
    fn inconsistent_snapshots_are_refused() {
        let mut snap = Merge::default().snapshot();
        snap.progress.current = Some((3, 0));
        assert!(Merge::restore(snap.clone()).is_err());
        snap.progress.current = None;
        snap.max_buffered = 0;
        assert!(Merge::restore(snap.clone()).is_err());
        snap.max_buffered = 1;
        snap.lanes.push(LaneSnapshot {
            stream: StreamId::new(0, lucid_protocol::Ring::Task),
            newest: None,
            last_frame: 0,
            queue: vec![HeldEvent {
                ts: 1,
                seq: 0,
                frame: vec![1, 2, 3],
            }],
        });
        let e = Merge::restore(snap).expect_err("garbage frame");
        assert!(e.to_string().contains("does not decode"), "{e}");
    }
}
