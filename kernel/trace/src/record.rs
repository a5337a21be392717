//! The fixed-size records producers write, and how the consumer turns each back into
//! the protocol messages it stands for.
//!
//! A record's first slot is `[ts, header, a, b]`; the header holds the kind (bits
//! 0..8), the number of slots that follow (bits 8..16) and a small payload `c` (bits
//! 16..64). Only a spawn (its name and location, as `'static` references) and
//! arbitrary messages (encoded as detached protocol records) take more than one slot.

use core::panic::Location;

use lucid_protocol::{self as proto, EncodeError, Message, MessageKind};

use crate::producer::Encoder;
use crate::ring::{Slot, extra_slots};

pub(crate) const POLL_START: u8 = 1;
pub(crate) const POLL_END: u8 = 2;
pub(crate) const WAKE: u8 = 3;
pub(crate) const WAKER_CLONE: u8 = 4;
pub(crate) const WAKER_DROP: u8 = 5;
pub(crate) const JOIN_WAITING: u8 = 6;
pub(crate) const TASK_COMPLETED: u8 = 7;
pub(crate) const TASK_DROPPED: u8 = 8;
pub(crate) const STEAL: u8 = 9;
pub(crate) const CPU_IDLE: u8 = 10;
pub(crate) const CPU_BUSY: u8 = 11;
pub(crate) const RUN_QUEUE_DEPTH: u8 = 12;
pub(crate) const TASK_SPAWNED: u8 = 13;
pub(crate) const DETACHED: u8 = 14;
pub(crate) const LOST_WAKER: u8 = 15;
pub(crate) const WAIT_BEGIN: u8 = 16;
pub(crate) const WAIT_END: u8 = 17;
/// A message in its compact layout: `c` is the code (bits 0..5), the number of fields
/// (5..8), the kind's index in `MessageKind::ALL` (8..16) and, when bit 16 is set, a
/// third field below [`COMPACT_INLINE_MAX`] (17..48); the first two fields are `a`
/// and `b`, any others in one extra slot.
pub(crate) const COMPACT: u8 = 18;
/// A third field of a compact message below this rides in the header.
pub(crate) const COMPACT_INLINE_MAX: u64 = 1 << 31;

/// Largest `c` payload (48 bits).
pub(crate) const C_MAX: u64 = (1 << 48) - 1;

#[inline]
pub(crate) const fn header(kind: u8, extra: usize, c: u64) -> u64 {
    kind as u64 | ((extra as u64) << 8) | (c << 16)
}

#[inline]
pub(crate) const fn slot(ts: u64, kind: u8, c: u64, a: u64, b: u64) -> Slot {
    Slot([ts, header(kind, 0, c), a, b])
}

/// A PollEnd record's `c`: the poll's result and the wakes the task gave itself
/// during the poll (framed with the poll's end as one protocol record).
pub(crate) fn pack_poll_end(result: proto::PollResult, wakes: proto::SelfWakes) -> u64 {
    let result = match result {
        proto::PollResult::Pending => 1,
        proto::PollResult::Ready => 2,
        proto::PollResult::PendingWoken => 3,
    };
    result | (u64::from(wakes.count) << 2) | (u64::from(wakes.by_ref) << 10)
}

/// Messages a PollEnd record with `wakes` stands for (the PollEnd included).
pub(crate) fn poll_end_events(wakes: proto::SelfWakes) -> u64 {
    1 + u64::from(wakes.count)
}

/// A PollEnd record's self-wakes, from its `c`.
fn self_wakes(c: u64) -> proto::SelfWakes {
    proto::SelfWakes {
        count: ((c >> 2) & 0xff) as u8,
        by_ref: (c >> 10) & 1 == 1,
    }
}

pub(crate) fn pack_waker(waker: proto::Waker) -> (u64, u64) {
    match waker {
        proto::Waker::None => (0, 0),
        proto::Waker::Task(t) => (1, t.0),
        proto::Waker::Interrupt(irq) => (2, u64::from(irq)),
    }
}

/// A PollEnd record's result, from its `c`.
fn poll_result(c: u64) -> proto::PollResult {
    match c & 3 {
        2 => proto::PollResult::Ready,
        3 => proto::PollResult::PendingWoken,
        _ => proto::PollResult::Pending,
    }
}

/// A TASK_COMPLETED record's outcome, from its `c`.
fn outcome(c: u64) -> proto::Outcome {
    match c {
        1 => proto::Outcome::Cancelled,
        2 => proto::Outcome::Panicked,
        _ => proto::Outcome::Ok,
    }
}

/// A WAKE record's waker, by-reference flag and self-wake flag, from its `c` and `b`.
fn unpack_wake(c: u64, b: u64) -> (proto::Waker, bool, bool) {
    (unpack_waker(c & 3, b), (c >> 2) & 1 == 1, (c >> 3) & 1 == 1)
}

fn unpack_waker(code: u64, id: u64) -> proto::Waker {
    match code {
        1 => proto::Waker::Task(proto::TaskId(id)),
        2 => proto::Waker::Interrupt(id as u8),
        _ => proto::Waker::None,
    }
}

/// Events one entry stands for (for loss counting when it cannot be framed).
pub(crate) fn events_in(entry: &[Slot]) -> u64 {
    let [_, h, _, _] = entry[0].0;
    if h as u8 == POLL_END {
        1 + u64::from(self_wakes(h >> 16).count)
    } else {
        1
    }
}

/// Where framed messages go: the encoder, and an observer of each message's kind and
/// record bytes (for accounting).
pub(crate) trait Sink {
    /// Appends one record of `kind` (`None`: a detached record of a kind this build
    /// does not name) at `ts`, written by `push`; a full frame is the sink's to seal,
    /// and `push` then runs again on the next one.
    fn record(
        &mut self,
        ts: u64,
        kind: Option<MessageKind>,
        push: impl Fn(&mut Encoder) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError>;

    /// Tells the observer of `n` more messages of `kind` that the last record stood
    /// for besides its own (the self-wakes a poll's end carries), taking no bytes.
    fn also(&mut self, kind: MessageKind, n: u64);

    /// Appends `msg` through the encoder's generic path.
    fn message(&mut self, ts: u64, msg: &Message<'_>) -> Result<(), EncodeError> {
        self.record(ts, Some(msg.kind()), |e| e.push(ts, msg))
    }
}

/// A WakerClone (`cloned`) or WakerDrop, through the encoder's fast path.
fn waker_count(
    sink: &mut impl Sink,
    ts: u64,
    task: proto::TaskId,
    wakers: u64,
    cloned: bool,
) -> Result<(), EncodeError> {
    let kind = if cloned {
        MessageKind::WakerClone
    } else {
        MessageKind::WakerDrop
    };
    sink.record(ts, Some(kind), |e| e.waker_count(ts, task, wakers, cloned))
}

/// Frames the one-slot records of the hottest kinds straight into `encoder`: a poll's
/// start, its end, a wake, a waker count and a task's end (join, completion, free).
/// False, with nothing written, for any other record, when the open frame lacks room
/// for the record or the encoder refuses it: [`expand`] then handles it.
#[inline]
pub(crate) fn frame_hot(encoder: &mut Encoder, slot: &Slot) -> bool {
    /// Room for a record of a tag and at most four varints (10 bytes each).
    const ROOM: usize = 1 + 4 * 10;
    let [ts, h, a, b] = slot.0;
    let c = h >> 16;
    let task = proto::TaskId(a);
    if (h >> 8) as u8 != 0 || encoder.remaining() < ROOM || encoder.is_empty() {
        return false;
    }
    let written = match h as u8 {
        POLL_START => encoder.poll_start(ts, task),
        POLL_END => encoder.poll_end_woke_self(ts, task, poll_result(c), self_wakes(c)),
        WAKE => {
            let (waker, by_ref, self_wake) = unpack_wake(c, b);
            encoder.wake(ts, task, waker, by_ref, self_wake)
        }
        WAKER_CLONE => encoder.waker_count(ts, task, b, true),
        WAKER_DROP => encoder.waker_count(ts, task, b, false),
        // A task's end (a join, its completion, its memory freed): once per task,
        // through the message table but past the sink.
        JOIN_WAITING => encoder.push(
            ts,
            &Message::JoinWaiting {
                task,
                waiter: proto::TaskId(b),
            },
        ),
        TASK_COMPLETED => encoder.push(
            ts,
            &Message::TaskCompleted {
                task,
                outcome: outcome(c),
            },
        ),
        TASK_DROPPED => encoder.push(ts, &Message::TaskDropped { task }),
        _ => return false,
    };
    // The room checked above holds any record written here; should one still be
    // refused (nothing is written then), the general path frames it or counts it lost.
    written.is_ok()
}

/// Sends the messages `entry` stands for to `sink`, in the order they happened;
/// returns the number that the sink refused or that could not be rebuilt.
pub(crate) fn expand(entry: &[Slot], sink: &mut impl Sink, scratch: &mut [u8]) -> u64 {
    let [ts, h, a, b] = entry[0].0;
    let c = h >> 16;
    let task = proto::TaskId(a);
    let mut lost = 0;
    // Events beside its own that a refused record stood for.
    let mut lost_with_record = 0;
    let mut put = |r: Result<(), EncodeError>| {
        if r.is_err() {
            lost += 1;
        }
    };
    match h as u8 {
        POLL_START => put(sink.record(ts, Some(MessageKind::PollStart), |e| e.poll_start(ts, task))),
        POLL_END => {
            let wakes = self_wakes(c);
            let framed = sink.record(ts, Some(MessageKind::PollEnd), |e| {
                e.poll_end_woke_self(ts, task, poll_result(c), wakes)
            });
            match framed {
                Ok(()) => sink.also(MessageKind::Wake, u64::from(wakes.count)),
                // The self-wakes are lost with the record.
                Err(_) => lost_with_record = u64::from(wakes.count),
            }
            put(framed);
        }
        WAKE => {
            let (waker, by_ref, self_wake) = unpack_wake(c, b);
            put(sink.record(ts, Some(MessageKind::Wake), |e| {
                e.wake(ts, task, waker, by_ref, self_wake)
            }));
        }
        WAKER_CLONE => put(waker_count(sink, ts, task, b, true)),
        WAKER_DROP => put(waker_count(sink, ts, task, b, false)),
        JOIN_WAITING => put(sink.message(
            ts,
            &Message::JoinWaiting {
                task,
                waiter: proto::TaskId(b),
            },
        )),
        TASK_COMPLETED => put(sink.message(
            ts,
            &Message::TaskCompleted {
                task,
                outcome: outcome(c),
            },
        )),
        TASK_DROPPED => put(sink.message(ts, &Message::TaskDropped { task })),
        LOST_WAKER => put(sink.message(ts, &Message::LostWaker(proto::LostWaker { task }))),
        COMPACT => {
            let n = ((c >> 5) & 7) as usize;
            let inline = (c >> 16) & 1 == 1;
            let more = match entry.get(1) {
                Some(s) => s.0,
                None => [c >> 17, 0, 0, 0],
            };
            let fields = [a, b, more[0], more[1], more[2]];
            let kind = MessageKind::ALL.get(((c >> 8) & 0xff) as usize).copied();
            let whole = if inline {
                n == 3 && entry.len() == 1
            } else {
                n <= 2 || entry.len() == 2
            };
            match fields
                .get(..n)
                .and_then(|f| proto::CompactRecord::new((c & 0x1f) as u8, f))
            {
                Some(record) if whole => {
                    put(sink.record(ts, kind, |e| e.push_compact(ts, &record)));
                }
                _ => lost += 1,
            }
        }
        WAIT_BEGIN => match proto::WaitOp::ALL.get(c as usize) {
            Some(&op) => put(sink.message(
                ts,
                &Message::WaitBegin(proto::WaitBegin {
                    task,
                    resource: proto::ResourceId(b),
                    op,
                }),
            )),
            None => lost += 1,
        },
        WAIT_END => {
            let outcome = match c {
                1 => proto::WaitOutcome::Cancelled,
                2 => proto::WaitOutcome::TimedOut,
                _ => proto::WaitOutcome::Ready,
            };
            put(sink.message(
                ts,
                &Message::WaitEnd(proto::WaitEnd {
                    task,
                    resource: proto::ResourceId(b),
                    outcome,
                }),
            ));
        }
        STEAL => put(sink.message(
            ts,
            &Message::Steal {
                task,
                from_cpu: (c & 0xff_ffff) as u32,
                to_cpu: (c >> 24) as u32,
            },
        )),
        CPU_IDLE => put(sink.message(ts, &Message::CpuIdle)),
        CPU_BUSY => put(sink.message(ts, &Message::CpuBusy)),
        RUN_QUEUE_DEPTH => put(sink.message(ts, &Message::RunQueueDepth { depth: c as u32 })),
        TASK_SPAWNED if entry.len() == 2 => {
            let [name_ptr, name_len, location, _] = entry[1].0;
            // SAFETY: the producer stored a `&'static str` and a `&'static Location`
            // (see `Producer::spawned`); both live forever.
            let (name, location) = unsafe {
                (
                    core::str::from_utf8_unchecked(core::slice::from_raw_parts(
                        name_ptr as usize as *const u8,
                        name_len as usize,
                    )),
                    &*(location as usize as *const Location<'static>),
                )
            };
            put(sink.message(
                ts,
                &Message::TaskSpawned(proto::TaskSpawned {
                    task,
                    name,
                    kind: if c & 1 == 1 {
                        proto::TaskKind::Wasm
                    } else {
                        proto::TaskKind::Kernel
                    },
                    location: proto::Location {
                        file: location.file(),
                        line: location.line(),
                        column: location.column(),
                    },
                    parent: ((c >> 1) & 1 == 1).then_some(proto::TaskId(b)),
                }),
            ));
        }
        DETACHED => {
            let len = c as usize;
            let words = &entry[1..];
            for (chunk, slot) in scratch.chunks_exact_mut(32).zip(words) {
                for (out, word) in chunk.chunks_exact_mut(8).zip(slot.0) {
                    // The producer wrote the bytes in memory order.
                    out.copy_from_slice(&word.to_ne_bytes());
                }
            }
            let kind = MessageKind::ALL.get(a as usize).copied();
            match scratch.get(..len.min(words.len() * 32)) {
                Some(record) => put(sink.record(ts, kind, |e| e.push_detached(ts, record))),
                None => lost += 1,
            }
        }
        _ => lost += events_in(entry),
    }
    debug_assert!(entry.len() == 1 + extra_slots(&entry[0]));
    lost + lost_with_record
}
