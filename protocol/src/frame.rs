//! Frames: the unit of transport, integrity checking and loss detection.
//!
//! ```text
//! raw frame   = major:u8  stream:varint  seq:varint  base_ts:varint  record*  crc32:u32le
//! wire frame  = COBS(raw frame) 0x00
//! ```
//!
//! `stream` is `cpu << 2 | ring`; `seq` counts the stream's frames (wrapping `u32`);
//! `base_ts` is the absolute TSC value the first record's delta is taken from, so a
//! frame decodes on its own. Each record's timestamp is the previous record's (or
//! `base_ts`) plus its zigzag delta. The CRC-32 (ISO-HDLC, as in zlib) covers
//! everything before it.

use crc::{CRC_32_ISO_HDLC, Crc, Table};
use serde::{Deserialize, Serialize};

use crate::cobs;
use crate::error::{DecodeError, EncodeError, FrameError};
use crate::message::{CompactRecord, Message, PollResult, Ring, SelfWakes, TaskId, Waker, compact_tag};
use crate::wire::{MAX_VARINT_LEN, Reader, Writer, zigzag};

/// Protocol major version. Frames of another major version are refused.
pub const MAJOR: u8 = 1;
/// Protocol minor version. Newer minors only add record kinds and trailing fields.
///
/// - 1: the kernel sends `LostWaker`, its own verdict, and a console stops inferring
///   lost wakers from the order of the stream's waker counts.
/// - 2: frames: `ResourceKind::Frame` resources and `WaitOp::Inside` waits, a
///   task's await stack.
/// - 3: `PollResult::PendingWoken`: a poll's end says whether the task was woken
///   during it, and a console trusts that over the order of the stream's wakes.
/// - 4: a poll's end may carry the wakes the task gave itself during the poll (a
///   second field), which decoders yield as that many `Wake`s before it: one record
///   where there were `1 + wakes`.
pub const MINOR: u16 = 4;

/// Largest raw frame (header, records and CRC, before COBS). Decoders discard larger
/// ones, so no length on the wire makes them buffer more than this.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Largest wire frame: COBS of [`MAX_FRAME_LEN`] plus the 0x00 delimiter.
pub const MAX_WIRE_FRAME_LEN: usize = cobs::max_encoded_len(MAX_FRAME_LEN) + 1;

const CRC_LEN: usize = 4;
/// Header with the largest varints: major, stream, seq, base_ts.
const MAX_HEADER_LEN: usize = 1 + MAX_VARINT_LEN + 5 + MAX_VARINT_LEN;

/// Slice-by-16 tables (16 KiB of rodata): sealing a frame is on the kernel's per-CPU
/// path, and this is several times faster than the one-table variant.
pub(crate) static CRC32: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISO_HDLC);

/// A PollEnd record's code for `result` (the `poll_end` row's codes).
const fn poll_end_code(result: PollResult) -> u8 {
    match result {
        PollResult::Pending => 1,
        PollResult::Ready => 2,
        PollResult::PendingWoken => 28,
    }
}

/// Names a per-CPU event stream: frames of one stream are sequenced together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StreamId {
    /// CPU number.
    pub cpu: u32,
    /// Which of the CPU's rings.
    pub ring: Ring,
}

impl StreamId {
    /// Stream of `cpu`'s ring `ring`.
    #[must_use]
    pub const fn new(cpu: u32, ring: Ring) -> Self {
        Self { cpu, ring }
    }

    /// Wire value.
    #[must_use]
    pub const fn to_wire(self) -> u64 {
        ((self.cpu as u64) << 2) | self.ring.to_bits() as u64
    }

    /// Inverse of [`StreamId::to_wire`].
    pub fn from_wire(v: u64) -> Result<Self, DecodeError> {
        let cpu = u32::try_from(v >> 2).map_err(|_| DecodeError::OutOfRange)?;
        Ok(Self {
            cpu,
            ring: Ring::from_bits((v & 3) as u8),
        })
    }
}

/// Builds frames for one stream in a fixed buffer: no allocation, no locks, no panics.
///
/// `B` is the buffer: a `[u8; N]` owned by a per-CPU structure, or a `&mut [u8]`.
/// Events go into the open frame until it is full; [`FrameEncoder::finish`] seals it
/// (CRC + COBS + delimiter) into an output slice and opens the next one.
pub struct FrameEncoder<B> {
    buf: B,
    stream: StreamId,
    seq: u32,
    len: usize,
    events: u32,
    prev_ts: u64,
}

// Not derived: the buffer's bytes are noise in a debug print.
impl<B> core::fmt::Debug for FrameEncoder<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameEncoder")
            .field("stream", &self.stream)
            .field("seq", &self.seq)
            .field("len", &self.len)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> FrameEncoder<B> {
    /// An encoder for `stream` whose first frame has sequence number 0. `const`, so a
    /// per-CPU `static` can hold one.
    pub const fn new(buf: B, stream: StreamId) -> Self {
        Self::with_sequence(buf, stream, 0)
    }

    /// An encoder whose next frame has sequence number `seq`.
    pub const fn with_sequence(buf: B, stream: StreamId, seq: u32) -> Self {
        Self {
            buf,
            stream,
            seq,
            len: 0,
            events: 0,
            prev_ts: 0,
        }
    }

    /// The stream this encoder writes.
    pub fn stream(&self) -> StreamId {
        self.stream
    }

    /// Sequence number of the open (or next) frame.
    pub fn sequence(&self) -> u32 {
        self.seq
    }

    /// Events in the open frame.
    pub fn event_count(&self) -> u32 {
        self.events
    }

    /// Whether the open frame has no events (then `finish` writes nothing).
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Raw bytes of the open frame so far (header and records, without CRC).
    pub fn raw_len(&self) -> usize {
        self.len
    }

    /// Bytes still free for records in the open frame (for an empty frame, after the
    /// longest possible header). A record of at most this many bytes always fits.
    pub fn remaining(&self) -> usize {
        let cap = self.buf.as_ref().len().min(MAX_FRAME_LEN).saturating_sub(CRC_LEN);
        if self.events == 0 {
            cap.saturating_sub(MAX_HEADER_LEN)
        } else {
            cap.saturating_sub(self.len)
        }
    }

    /// The open frame's raw bytes (header and records, without CRC).
    pub fn raw_bytes(&self) -> &[u8] {
        self.buf.as_ref().get(..self.len).unwrap_or_default()
    }

    /// An output slice of this length always holds the finished open frame.
    pub fn max_finished_len(&self) -> usize {
        cobs::max_encoded_len(self.len + CRC_LEN) + 1
    }

    /// Bytes available for header and records: the buffer minus room for the CRC.
    fn capacity(&mut self) -> usize {
        self.buf.as_mut().len().min(MAX_FRAME_LEN).saturating_sub(CRC_LEN)
    }

    /// Appends `msg` with timestamp `ts`. On error the frame is unchanged: when it is
    /// [`EncodeError::BufferFull`], finish the frame and retry, or count the event as
    /// lost.
    pub fn push(&mut self, ts: u64, msg: &Message<'_>) -> Result<(), EncodeError> {
        self.append(ts, |w, delta| msg.write_record(w, delta))
    }

    /// Appends the compact record `record` (a message's [`Message::to_compact`]) with
    /// timestamp `ts`: the bytes [`FrameEncoder::push`] writes for that message.
    pub fn push_compact(&mut self, ts: u64, record: &CompactRecord) -> Result<(), EncodeError> {
        self.append(ts, |w, delta| record.write(w, delta))
    }

    /// Appends a record encoded by [`Message::encode_detached`] with timestamp `ts`;
    /// the frame gets the bytes [`FrameEncoder::push`] would write for its message.
    pub fn push_detached(&mut self, ts: u64, record: &[u8]) -> Result<(), EncodeError> {
        self.append(ts, |w, delta| crate::message::write_detached(w, record, delta))
    }

    /// Appends a [`Message::PollStart`]; the fast path for the hottest event.
    #[inline]
    pub fn poll_start(&mut self, ts: u64, task: TaskId) -> Result<(), EncodeError> {
        self.compact(ts, compact_tag(1, 0), [task.get()])
    }

    /// Appends a [`Message::PollEnd`]; the fast path for the hottest event.
    #[inline]
    pub fn poll_end(&mut self, ts: u64, task: TaskId, result: PollResult) -> Result<(), EncodeError> {
        self.compact(ts, compact_tag(1, poll_end_code(result)), [task.get()])
    }

    /// Appends a [`Message::PollEnd`] that also stands for `wakes` self-wakes during
    /// the poll (minor 4): one record, which decoders yield as `wakes.count`
    /// [`Message::Wake`]s of the task by itself and then the poll's end, all at `ts`.
    /// The open frame counts them all as events.
    #[inline]
    pub fn poll_end_woke_self(
        &mut self,
        ts: u64,
        task: TaskId,
        result: PollResult,
        wakes: SelfWakes,
    ) -> Result<(), EncodeError> {
        if wakes.count == 0 {
            return self.poll_end(ts, task, result);
        }
        self.compact(
            ts,
            compact_tag(2, poll_end_code(result)),
            [task.get(), wakes.to_field()],
        )?;
        self.events += u32::from(wakes.count);
        Ok(())
    }

    /// Appends a [`Message::Wake`]; a fast path for a hot event.
    #[inline]
    pub fn wake(
        &mut self,
        ts: u64,
        task: TaskId,
        waker: Waker,
        by_ref: bool,
        self_wake: bool,
    ) -> Result<(), EncodeError> {
        let (kind, value) = match waker {
            Waker::None => (0, 0),
            Waker::Task(t) => (1, t.get()),
            Waker::Interrupt(v) => (2, u64::from(v)),
        };
        let flags = kind << 2 | u64::from(by_ref) << 1 | u64::from(self_wake);
        self.compact(ts, compact_tag(3, 3), [task.get(), value, flags])
    }

    /// Appends a [`Message::WakerClone`] (`cloned`) or [`Message::WakerDrop`]; a fast
    /// path for a hot event.
    #[inline]
    pub fn waker_count(&mut self, ts: u64, task: TaskId, wakers: u64, cloned: bool) -> Result<(), EncodeError> {
        let tag = compact_tag(2, if cloned { 4 } else { 5 });
        self.compact(ts, tag, [task.get(), wakers])
    }

    /// Appends the compact record `tag` with `fields`.
    #[inline]
    fn compact<const N: usize>(&mut self, ts: u64, tag: u8, fields: [u64; N]) -> Result<(), EncodeError> {
        self.append(ts, |w, delta| {
            w.u8(tag)?;
            w.varint(delta)?;
            for f in fields {
                w.varint(f)?;
            }
            Ok(())
        })
    }

    #[inline]
    fn append(
        &mut self,
        ts: u64,
        record: impl FnOnce(&mut Writer<'_>, u64) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let cap = self.capacity();
        let stream = self.stream;
        let seq = self.seq;
        let opening = self.events == 0;
        let (start, prev) = if opening { (0, ts) } else { (self.len, self.prev_ts) };
        let buf = self.buf.as_mut().get_mut(..cap).unwrap_or_default();
        let mut w = Writer::new(buf, start);
        if opening {
            w.u8(MAJOR)?;
            w.varint(stream.to_wire())?;
            w.varint(u64::from(seq))?;
            w.varint(ts)?;
        }
        // Wrapping keeps the delta exact even across a TSC that went backwards.
        let delta = zigzag(ts.wrapping_sub(prev) as i64);
        record(&mut w, delta)?;
        self.len = w.pos();
        self.prev_ts = ts;
        self.events += 1;
        Ok(())
    }

    /// Seals the open frame into `out` (CRC-32, COBS, 0x00 delimiter) and opens the
    /// next one with the next sequence number. Returns the bytes written to `out`; 0 if
    /// the frame was empty. If `out` is too small the frame stays open.
    pub fn finish(&mut self, out: &mut [u8]) -> Result<usize, EncodeError> {
        if self.events == 0 {
            return Ok(0);
        }
        let len = self.len;
        let buf = self.buf.as_mut();
        let crc = CRC32.checksum(buf.get(..len).unwrap_or_default());
        let raw = buf.get_mut(..len + CRC_LEN).ok_or(EncodeError::BufferFull)?;
        raw[len..].copy_from_slice(&crc.to_le_bytes());
        let n = cobs::encode(raw, out).ok_or(EncodeError::OutputTooSmall)?;
        *out.get_mut(n).ok_or(EncodeError::OutputTooSmall)? = 0;
        self.discard();
        self.seq = self.seq.wrapping_add(1);
        Ok(n + 1)
    }

    /// Drops the open frame's events without sending them (the caller counts them as
    /// lost). The sequence number is kept, so the frame leaves no gap.
    pub fn discard(&mut self) {
        self.len = 0;
        self.events = 0;
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

/// Smallest buffer that holds a frame header and one record of `record_len` bytes.
#[must_use]
pub const fn min_buffer_len(record_len: usize) -> usize {
    MAX_HEADER_LEN + record_len + CRC_LEN
}

/// A decoded frame; its records borrow the decode buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The stream it belongs to.
    pub stream: StreamId,
    /// Its sequence number in the stream.
    pub seq: u32,
    /// Absolute timestamp the first record's delta is relative to.
    pub base_ts: u64,
    records: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The frame's events, in order.
    #[must_use]
    pub fn events(&self) -> Events<'a> {
        Events {
            reader: Reader::new(self.records),
            ts: self.base_ts,
            skipped: 0,
            failed: false,
            held: None,
            wakes: SelfWakes::default(),
        }
    }
}

/// One decoded message with its absolute timestamp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event<'a> {
    /// TSC ticks.
    pub ts: u64,
    /// The message.
    pub message: Message<'a>,
}

/// Iterator over a frame's events. Skips (and counts) records of unknown kinds; stops
/// after the first malformed record.
#[derive(Debug, Clone)]
pub struct Events<'a> {
    reader: Reader<'a>,
    ts: u64,
    skipped: u32,
    failed: bool,
    /// A poll's end held back while the self-wakes its record carries go first.
    held: Option<(Event<'a>, TaskId)>,
    /// Those self-wakes still to go.
    wakes: SelfWakes,
}

impl Events<'_> {
    /// Records of unknown kinds skipped so far (sent by a newer minor version).
    #[must_use]
    pub fn skipped(&self) -> u32 {
        self.skipped
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<Event<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if let Some((end, task)) = self.held {
            if self.wakes.count == 0 {
                self.held = None;
                return Some(Ok(end));
            }
            self.wakes.count -= 1;
            let message = Message::Wake {
                task,
                waker: Waker::Task(task),
                by_ref: self.wakes.by_ref,
                self_wake: true,
            };
            return Some(Ok(Event { ts: end.ts, message }));
        }
        while !self.failed && !self.reader.is_empty() {
            match crate::message::read_record(&mut self.reader) {
                Ok((delta, msg, wakes)) => {
                    self.ts = self.ts.wrapping_add(crate::wire::unzigzag(delta) as u64);
                    match msg {
                        Some(message @ Message::PollEnd { task, .. }) if wakes.count > 0 => {
                            self.held = Some((Event { ts: self.ts, message }, task));
                            self.wakes = wakes;
                            return self.next();
                        }
                        Some(message) => {
                            return Some(Ok(Event { ts: self.ts, message }));
                        }
                        None => self.skipped += 1,
                    }
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Decodes one wire frame (without its 0x00 delimiter) in place: COBS, CRC, version
/// and header. Records are decoded lazily by [`Frame::events`].
pub fn decode_frame(buf: &mut [u8]) -> Result<Frame<'_>, FrameError> {
    if buf.len() > cobs::max_encoded_len(MAX_FRAME_LEN) {
        return Err(FrameError::TooLarge { len: buf.len() });
    }
    let n = cobs::decode_in_place(buf).map_err(|_| FrameError::Cobs)?;
    let raw = buf.get(..n).unwrap_or_default();
    if n < 1 + 3 + CRC_LEN {
        return Err(FrameError::TooShort { len: n });
    }
    let (body, crc) = raw.split_at(n - CRC_LEN);
    let mut c = [0u8; CRC_LEN];
    c.copy_from_slice(crc);
    let expected = u32::from_le_bytes(c);
    let actual = CRC32.checksum(body);
    if expected != actual {
        return Err(FrameError::Crc { expected, actual });
    }
    let mut r = Reader::new(body);
    let major = r.u8().map_err(FrameError::Header)?;
    if major != MAJOR {
        return Err(FrameError::IncompatibleVersion {
            found: major,
            supported: MAJOR,
        });
    }
    let stream = r.varint().and_then(StreamId::from_wire).map_err(FrameError::Header)?;
    let seq = r.varint_u32().map_err(FrameError::Header)?;
    let base_ts = r.varint().map_err(FrameError::Header)?;
    Ok(Frame {
        stream,
        seq,
        base_ts,
        records: r.rest(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{InstanceId, MessageKind, WasmTrap};

    fn stream() -> StreamId {
        StreamId::new(5, Ring::Interrupt)
    }

    #[test]
    fn a_full_buffer_leaves_the_frame_unchanged() {
        let mut enc = FrameEncoder::new([0u8; 32], stream());
        let mut n = 0;
        while enc.poll_start(1000 + n, TaskId(n)).is_ok() {
            n += 1;
        }
        assert!(n > 3);
        let before = enc.raw_bytes().to_vec();
        assert_eq!(
            enc.poll_end(5, TaskId(1), PollResult::Ready),
            Err(EncodeError::BufferFull)
        );
        assert_eq!(enc.raw_bytes(), before.as_slice());
        assert_eq!(enc.event_count() as u64, n);
        let mut out = [0u8; 64];
        let len = enc.finish(&mut out).unwrap();
        let f = decode_frame(&mut out[..len - 1]).unwrap();
        assert_eq!(f.events().count() as u64, n);
    }

    /// The fast paths write what the message table lays out.
    #[test]
    fn the_fast_paths_write_the_records_push_writes() {
        let (mut fast, mut table) = (
            FrameEncoder::new([0u8; 1024], stream()),
            FrameEncoder::new([0u8; 1024], stream()),
        );
        fast.poll_start(10, TaskId(7)).unwrap();
        table.push(10, &Message::PollStart { task: TaskId(7) }).unwrap();
        for (ts, result) in [
            (20, PollResult::Pending),
            (30, PollResult::Ready),
            (40, PollResult::PendingWoken),
        ] {
            fast.poll_end(ts, TaskId(7), result).unwrap();
            table
                .push(
                    ts,
                    &Message::PollEnd {
                        task: TaskId(7),
                        result,
                    },
                )
                .unwrap();
        }
        let wakers = [
            Waker::None,
            Waker::Task(TaskId(3)),
            Waker::Task(TaskId(u64::MAX)),
            Waker::Interrupt(0x21),
        ];
        for (i, waker) in wakers.into_iter().enumerate() {
            for (by_ref, self_wake) in [(false, false), (true, false), (false, true), (true, true)] {
                let ts = 50 + i as u64;
                fast.wake(ts, TaskId(9), waker, by_ref, self_wake).unwrap();
                table
                    .push(
                        ts,
                        &Message::Wake {
                            task: TaskId(9),
                            waker,
                            by_ref,
                            self_wake,
                        },
                    )
                    .unwrap();
            }
        }
        for (ts, wakers, cloned) in [(90, 0, false), (91, 1, true), (u64::MAX, u64::MAX, false)] {
            fast.waker_count(ts, TaskId(4), wakers, cloned).unwrap();
            let msg = if cloned {
                Message::WakerClone {
                    task: TaskId(4),
                    wakers,
                }
            } else {
                Message::WakerDrop {
                    task: TaskId(4),
                    wakers,
                }
            };
            table.push(ts, &msg).unwrap();
        }
        assert_eq!(fast.raw_bytes(), table.raw_bytes());
    }

    #[test]
    fn a_kind_s_index_is_its_place_in_all() {
        for (i, kind) in MessageKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind:?}");
        }
    }

    /// A message's compact layout, kept and pushed later, is the message's record.
    #[test]
    fn a_compact_record_writes_what_push_writes() {
        use crate::message::{InstanceId, WasmState};
        let messages = [
            Message::WasmPoll {
                instance: InstanceId(3),
                fuel: u64::MAX,
                slices: 7,
            },
            Message::WasmStateChanged {
                instance: InstanceId(3),
                state: WasmState::Trapped,
                detail: 9,
            },
            Message::WasmHostcalls {
                instance: InstanceId(u64::MAX),
                hostcall: u32::MAX,
                calls: 1 << 40,
                ticks: 0,
            },
            Message::CpuIdle,
            Message::Steal {
                task: TaskId(5),
                from_cpu: 1,
                to_cpu: 2,
            },
            Message::PollEnd {
                task: TaskId(5),
                result: PollResult::PendingWoken,
            },
        ];
        let (mut kept, mut pushed) = (
            FrameEncoder::new([0u8; 1024], stream()),
            FrameEncoder::new([0u8; 1024], stream()),
        );
        for (i, m) in messages.iter().enumerate() {
            let record = m.to_compact().expect("a compact message");
            let again = CompactRecord::new(record.code(), record.fields()).expect("its parts");
            assert_eq!(again, record);
            let mut array = [u64::MAX; CompactRecord::MAX_FIELDS];
            array[..record.fields().len()].copy_from_slice(record.fields());
            let from_array = CompactRecord::from_array(record.code(), array, record.fields().len());
            assert_eq!(from_array, Some(record));
            let ts = 100 + i as u64 * 1000;
            kept.push_compact(ts, &again).unwrap();
            pushed.push(ts, m).unwrap();
        }
        assert_eq!(kept.raw_bytes(), pushed.raw_bytes());
        let extended = Message::TaskPanicked(crate::message::TaskPanicked {
            task: TaskId(1),
            message: "no",
            location: None,
        });
        assert_eq!(extended.to_compact(), None);
        assert_eq!(CompactRecord::new(32, &[]), None);
        assert_eq!(CompactRecord::new(1, &[0; 6]), None);
        assert_eq!(CompactRecord::from_array(1, [0; 5], 6), None);
    }

    #[test]
    fn remaining_is_a_promise() {
        let mut enc = FrameEncoder::new([0u8; 100], stream());
        let mut ts = 0;
        // A PollStart record is at most 21 bytes.
        while enc.remaining() >= 21 {
            ts += 1 << 40;
            enc.poll_start(ts, TaskId(u64::MAX)).unwrap();
        }
        assert!(enc.remaining() < 21);
        assert_eq!(FrameEncoder::new([0u8; 2], stream()).remaining(), 0);
    }

    #[test]
    fn too_small_output_keeps_the_frame_open() {
        let mut enc = FrameEncoder::new([0u8; 64], stream());
        enc.poll_start(1, TaskId(1)).unwrap();
        let mut small = [0u8; 4];
        assert_eq!(enc.finish(&mut small), Err(EncodeError::OutputTooSmall));
        assert_eq!(enc.sequence(), 0);
        let mut out = vec![0u8; enc.max_finished_len()];
        assert!(enc.finish(&mut out).unwrap() > 0);
        assert_eq!(enc.sequence(), 1);
        assert!(enc.is_empty());
        assert_eq!(enc.finish(&mut out), Ok(0), "an empty frame writes nothing");
        assert_eq!(enc.sequence(), 1);
    }

    #[test]
    fn discard_keeps_the_sequence_contiguous() {
        let mut enc = FrameEncoder::with_sequence([0u8; 64], stream(), u32::MAX);
        enc.poll_start(1, TaskId(1)).unwrap();
        enc.discard();
        assert_eq!(enc.sequence(), u32::MAX);
        enc.poll_start(2, TaskId(1)).unwrap();
        let mut out = [0u8; 80];
        let n = enc.finish(&mut out).unwrap();
        assert_eq!(decode_frame(&mut out[..n - 1]).unwrap().seq, u32::MAX);
        assert_eq!(enc.sequence(), 0, "sequence numbers wrap");
    }

    #[test]
    fn long_extended_bodies_get_a_longer_length() {
        let reason = "x".repeat(300);
        let m = Message::WasmTrap(WasmTrap {
            instance: InstanceId(1),
            task: TaskId(2),
            code: 3,
            reason: &reason,
        });
        let mut enc = FrameEncoder::new(vec![0u8; 1024], stream());
        enc.push(7, &m).unwrap();
        enc.push(9, &Message::CpuIdle).unwrap();
        let mut out = vec![0u8; enc.max_finished_len()];
        let n = enc.finish(&mut out).unwrap();
        let f = decode_frame(&mut out[..n - 1]).unwrap();
        let ev: Vec<_> = f.events().map(Result::unwrap).collect();
        assert_eq!(ev[0].message, m);
        assert_eq!((ev[1].ts, ev[1].message), (9, Message::CpuIdle));
    }

    #[test]
    fn timestamps_may_go_backwards() {
        let mut enc = FrameEncoder::new([0u8; 64], stream());
        for ts in [u64::MAX, 0, 5, 3] {
            enc.push(ts, &Message::Heartbeat).unwrap();
        }
        let mut out = [0u8; 80];
        let n = enc.finish(&mut out).unwrap();
        let f = decode_frame(&mut out[..n - 1]).unwrap();
        let ts: alloc::vec::Vec<u64> = f.events().map(|e| e.unwrap().ts).collect();
        assert_eq!(ts, [u64::MAX, 0, 5, 3]);
    }

    #[test]
    fn the_buffer_is_capped_at_the_decoders_frame_limit() {
        let mut enc = FrameEncoder::new(vec![0u8; MAX_FRAME_LEN * 2], stream());
        while enc.poll_start(1, TaskId(u64::MAX)).is_ok() {}
        assert!(enc.raw_len() + CRC_LEN <= MAX_FRAME_LEN);
        let mut out = vec![0u8; enc.max_finished_len()];
        let n = enc.finish(&mut out).unwrap();
        assert!(n <= MAX_WIRE_FRAME_LEN);
        assert!(decode_frame(&mut out[..n - 1]).is_ok());
    }
}
