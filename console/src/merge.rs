//! Time-ordered merge of the per-CPU streams in front of the state model.
//!
//! The kernel sends one sequenced stream per CPU and ring, and frames of different
//! CPUs arrive interleaved in any order (a CPU seals a frame when it is full or 2 ms
//! old). The state model reasons about cross-CPU causality (a wake on one CPU, the
//! poll on another) from the order it sees events in, so it must see them in
//! timestamp order. TSCs are comparable across CPUs, so [`Merge`] buffers events per
//! stream and releases them in global timestamp order up to a watermark: the oldest
//! of the newest timestamps of the streams that may still send older events.
//!
//! A stream that stops sending (its CPU is idle, or it is simply quiet) must not hold
//! everything back: it counts as caught up once [`QUIET_FRAMES`] frames of other
//! streams arrived since its last frame. (A `CpuIdle` as a stream's latest event is
//! no such sign: CPUs idle for microseconds between interrupts and go on, and on a
//! real 4-CPU recording treating them as caught up made 38% of events late.) Memory
//! stays bounded: past [`Merge::max_buffered`] events the oldest is released early
//! (and counted). Control and host rings, gaps, restarts and frame errors pass straight
//! through: they carry no executor facts whose order matters. The exception is the
//! kernel's answer to a snapshot request: its totals are as of its timestamp, so it
//! is held like an executor event (in a lane of the control stream that never holds
//! the watermark back) and comes after every older event and before every newer
//! one, so nothing is counted twice or missed.

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, VecDeque};

use lucid_protocol::{Event, Item, Message, OwnedMessage, Ring, StreamId};
use serde::{Deserialize, Serialize};

use crate::time::HostNs;

mod snapshot;

pub use snapshot::{MergeSnapshot, SnapshotError};

/// Events buffered at most by default. In a healthy stream the merge holds about one
/// frame per stream (a few thousand events: 5,207 at most on a real 4-CPU
/// recording); the bound only bites when one stream lags far behind the others
/// without going quiet. At 48 bytes per held event (plus the strings of the rare
/// messages that have some) this is about 50 MB at worst.
pub const DEFAULT_MAX_BUFFERED: usize = 1 << 20;

/// Frames of other streams (at least; 16 per known stream with many streams) after
/// which a silent stream no longer holds the watermark back. The kernel's drain
/// forwards each CPU's ring in turn, so a stream can legitimately be silent for a
/// round of the other streams' frames; on the 4-CPU recording 64 frames never let a
/// live stream fall behind, 16 did.
pub const QUIET_FRAMES: u64 = 64;

/// Streams merged at most (more only come from a damaged or hostile stream; events
/// of further streams pass straight through). Lane numbers fit in [`LANE_BITS`].
pub const MAX_LANES: usize = 1 << 12;
const LANE_BITS: u32 = 12;
const LANE_MASK: usize = MAX_LANES - 1;

/// Host receive time without a frame after which the link counts as idle.
pub const LINK_IDLE_NS: u64 = 1_000_000_000;

/// Task streams announced by a `Hello` at most (a garbage CPU count must not make
/// the merge allocate).
const MAX_HELLO_CPUS: u32 = 1024;

/// What the merge had to do that weakens the ordering guarantee.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeStats {
    /// Events buffered so far.
    pub buffered: u64,
    /// Events released before the watermark reached them because the buffer was full.
    pub forced: u64,
    /// Events applied out of order: older than an event already released (their
    /// stream was taken for caught up), or of a stream beyond [`MAX_LANES`].
    pub late: u64,
    /// Most events held at once.
    pub peak: usize,
}

#[derive(Debug)]
struct Pending {
    ts: u64,
    seq: u32,
    /// `None` for a message that could not be copied (none that was decoded): it is
    /// released as nothing.
    message: Option<OwnedMessage>,
}

/// The events held for one stream, oldest first.
#[derive(Debug)]
struct StreamQueue {
    stream: StreamId,
    queue: VecDeque<Pending>,
    /// Newest timestamp seen on this stream.
    newest: Option<u64>,
    /// Arrival clock (frames seen by the merge) at this stream's latest frame.
    last_frame: u64,
}

/// Whether a stream's progress bounds what may be released: the CPUs' task and
/// interrupt streams. The control stream's held messages (snapshot answers) are
/// stamped when sent, after everything they describe, so it never holds others back.
fn paces(stream: StreamId) -> bool {
    matches!(stream.ring, Ring::Task | Ring::Interrupt)
}

/// The kernel's answer to a snapshot request, whose totals are as of its timestamp.
///
/// Resources, waits and instances' arguments reach the control stream only inside a
/// snapshot answer (as they happen they ride their CPU's task stream), so they are
/// held with it: passed straight through they would overtake the answer's beginning
/// and reach the state model before it, out of the kernel's order.
fn is_snapshot_answer(m: &Message<'_>) -> bool {
    matches!(
        m,
        Message::SnapshotBegin { .. }
            | Message::TaskSnapshot(_)
            | Message::WasmInstanceSnapshot(_)
            | Message::WasmInstanceArgs(_)
            | Message::ResourceCreated(_)
            | Message::WaitBegin(_)
            | Message::Holders(_)
            | Message::WasmFunction(_)
            | Message::SnapshotEnd { .. }
    )
}

/// How far a merge has got through its input: what it decides releases on besides
/// the events it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Progress {
    /// The frame the previous event came from: (lane, seq).
    current: Option<(usize, u32)>,
    /// Frames seen: the merge's clock in arrival terms.
    frames: u64,
    /// Newest timestamp released so far.
    released: Option<u64>,
    /// Whether a `Hello` announced the CPUs' task streams.
    hello: bool,
    /// Host receive time of the input being pushed.
    rx: HostNs,
    /// Host receive time of the latest frame.
    last_frame_rx: HostNs,
}

/// Buffers decoded items and hands them on in global timestamp order.
#[derive(Debug)]
pub struct Merge {
    lanes: Vec<StreamQueue>,
    /// Heads of the non-empty lanes, as [`key`]s: by timestamp, then stream (so ties
    /// do not depend on arrival order), then lane.
    heads: BinaryHeap<Reverse<u128>>,
    held: usize,
    progress: Progress,
    /// Buffer bound in events.
    max_buffered: usize,
    /// Counters.
    stats: MergeStats,
}

impl Default for Merge {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BUFFERED)
    }
}

impl Merge {
    /// A merge that holds at most `max_buffered` events (at least 1).
    #[must_use]
    pub fn new(max_buffered: usize) -> Self {
        Self {
            lanes: Vec::new(),
            heads: BinaryHeap::new(),
            held: 0,
            progress: Progress::default(),
            max_buffered: max_buffered.max(1),
            stats: MergeStats::default(),
        }
    }

    /// Events held now.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.held
    }

    /// What the merge had to do so far that weakens the ordering guarantee.
    #[must_use]
    pub fn stats(&self) -> MergeStats {
        self.stats
    }

    /// Notes that the items pushed next were received at `rx`; if
    /// the link was idle until then, everything held goes first (see [`Self::tick`]).
    pub fn start_chunk(&mut self, rx: HostNs, out: &mut impl FnMut(&Item<'_>)) {
        self.tick(rx, out);
        self.progress.rx = rx;
    }

    /// Takes one decoder item; hands on, in order, every item that may go now.
    pub fn push(&mut self, item: &Item<'_>, out: &mut impl FnMut(&Item<'_>)) {
        let Item::Event { stream, seq, ref event } = *item else {
            if matches!(item, Item::Restart { .. }) {
                // A rebooted kernel starts its TSC again: nothing buffered is
                // comparable with what follows, so everything before goes first.
                self.flush(out);
                self.lanes.iter_mut().for_each(|l| l.newest = None);
                self.progress.released = None;
            }
            out(item);
            return;
        };
        if matches!(stream.ring, Ring::Control | Ring::Host) {
            if let Message::Hello(h) = event.message {
                // Every CPU has a task stream: until one has spoken (or stayed quiet
                // for a while) it may still send events older than what others sent.
                for cpu in 0..h.cpus.min(MAX_HELLO_CPUS) {
                    self.lane(StreamId::new(cpu, Ring::Task), u32::MAX);
                }
                self.progress.hello = true;
            }
            // A snapshot answer's totals are as of its timestamp: it waits in the
            // control stream's lane (which never holds the watermark back) for its
            // place in time order.
            if stream.ring == Ring::Control
                && is_snapshot_answer(&event.message)
                && let Some(lane) = self.lane(stream, seq)
            {
                self.enqueue(lane, stream, event.ts, seq, hold(&event.message), out);
                self.release(out);
                return;
            }
            out(item);
            return;
        }
        let Some(lane) = self.lane(stream, seq) else {
            self.stats.late += 1;
            out(item);
            return;
        };
        if self.progress.current != Some((lane, seq)) {
            // The previous frame is complete: its stream's newest timestamp is known,
            // so the watermark may have moved.
            self.release(out);
            self.progress.frames += 1;
            self.progress.last_frame_rx = self.progress.rx;
            self.progress.current = Some((lane, seq));
            self.lanes[lane].last_frame = self.progress.frames;
        }
        let message = hold(&event.message);
        let l = &mut self.lanes[lane];
        l.newest = Some(l.newest.map_or(event.ts, |n| n.max(event.ts)));
        self.enqueue(lane, stream, event.ts, seq, message, out);
    }

    /// Queues an event on `lane` (of `stream`); past the bound, the oldest held
    /// event goes early.
    #[inline]
    fn enqueue(
        &mut self,
        lane: usize,
        stream: StreamId,
        ts: u64,
        seq: u32,
        message: Option<OwnedMessage>,
        out: &mut impl FnMut(&Item<'_>),
    ) {
        let l = &mut self.lanes[lane];
        if l.queue.is_empty() {
            self.heads.push(Reverse(key(ts, stream, lane)));
        }
        l.queue.push_back(Pending { ts, seq, message });
        self.held += 1;
        self.stats.buffered += 1;
        while self.held > self.max_buffered {
            self.stats.forced += 1;
            self.pop(out);
        }
        self.stats.peak = self.stats.peak.max(self.held);
    }

    /// Notes that it is `now_ns` (host receive-time clock): once no frame has arrived
    /// for [`LINK_IDLE_NS`], nothing is in flight that could be older than what is
    /// held, so everything held goes (a live view must not wait for more traffic to
    /// show the last frames). Receive times are recorded, so a replay releases at the
    /// same points as the live session did.
    pub fn tick(&mut self, now: HostNs, out: &mut impl FnMut(&Item<'_>)) -> bool {
        if self.held == 0 || now.since(self.progress.last_frame_rx) < LINK_IDLE_NS {
            return false;
        }
        self.flush(out);
        true
    }

    /// Hands on everything held, in timestamp order (end of input).
    pub fn flush(&mut self, out: &mut impl FnMut(&Item<'_>)) {
        while self.pop(out) {}
        self.progress.current = None;
    }

    /// Releases every event at or below the watermark. `push` does this at every
    /// frame boundary; call it after a batch of input too, since the decoder only
    /// hands on whole frames, so the last frame of the batch is complete.
    pub fn release(&mut self, out: &mut impl FnMut(&Item<'_>)) {
        let frames = self.progress.frames;
        let quiet = QUIET_FRAMES.max(16 * self.lanes.len() as u64);
        if !self.progress.hello && frames <= quiet {
            // Until a Hello names the CPUs, a stream not heard yet is unknown, not
            // caught up: give every stream a chance to speak first.
            return;
        }
        let watermark = self
            .lanes
            .iter()
            .filter(|l| paces(l.stream) && frames - l.last_frame <= quiet)
            .map(|l| l.newest.unwrap_or(0))
            .min()
            .unwrap_or(u64::MAX);
        while let Some(&Reverse(k)) = self.heads.peek()
            && (k >> 64) as u64 <= watermark
        {
            self.pop(out);
        }
    }

    /// Hands on the oldest event held; false if there is none.
    #[inline]
    fn pop(&mut self, out: &mut impl FnMut(&Item<'_>)) -> bool {
        let Some(mut top) = self.heads.peek_mut() else {
            return false;
        };
        let lane = (top.0 as usize) & LANE_MASK;
        let l = &mut self.lanes[lane];
        let Some(p) = l.queue.front() else {
            PeekMut::pop(top);
            return true;
        };
        let stream = l.stream;
        // The event is read where it is held and dropped after: moving it out first
        // costs more than the rest of the release.
        let (ts, seq) = (p.ts, p.seq);
        self.held -= 1;
        if self.progress.released.is_some_and(|r| ts < r) {
            self.stats.late += 1;
        }
        self.progress.released = Some(self.progress.released.map_or(ts, |r| r.max(ts)));
        if let Some(held) = &p.message {
            // Messages that borrow nothing are copied out here; the others decode
            // out of line, so that this path stays small.
            match held.fixed() {
                Some(message) => out(&Item::Event {
                    stream,
                    seq,
                    event: Event { ts, message },
                }),
                None => emit_decoded(stream, seq, ts, held, out),
            }
        }
        l.queue.pop_front();
        // Replacing the top in place sifts once, where a pop and a push would
        // sift twice: this is the merge's per-event cost.
        match l.queue.front() {
            Some(next) => top.0 = key(next.ts, stream, lane),
            None => {
                PeekMut::pop(top);
            }
        }
        true
    }

    /// The lane of `stream`, created if new; `None` once [`MAX_LANES`] exist.
    fn lane(&mut self, stream: StreamId, seq: u32) -> Option<usize> {
        if let Some((lane, s)) = self.progress.current
            && s == seq
            && self.lanes[lane].stream == stream
        {
            return Some(lane);
        }
        if let Some(i) = self.lanes.iter().position(|l| l.stream == stream) {
            return Some(i);
        }
        if self.lanes.len() >= MAX_LANES {
            return None;
        }
        self.lanes.push(StreamQueue {
            stream,
            queue: VecDeque::new(),
            newest: None,
            last_frame: self.progress.frames,
        });
        Some(self.lanes.len() - 1)
    }
}

/// Hands on `held`, a message held as its record, as an event of `stream`.
#[inline(never)]
fn emit_decoded(stream: StreamId, seq: u32, ts: u64, held: &OwnedMessage, out: &mut impl FnMut(&Item<'_>)) {
    if let Some(message) = held.message() {
        out(&Item::Event {
            stream,
            seq,
            event: Event { ts, message },
        });
    }
}

/// An owned copy of `m`, to hold until its turn.
#[inline]
fn hold(m: &Message<'_>) -> Option<OwnedMessage> {
    OwnedMessage::new(m).ok()
}

/// Heap key of a lane's head: timestamp, stream, lane, compared as one integer.
fn key(ts: u64, stream: StreamId, lane: usize) -> u128 {
    (u128::from(ts) << 64) | (u128::from(stream.to_wire()) << LANE_BITS) | lane as u128
}

#[cfg(test)]
mod tests {
    use lucid_protocol::testdata::{Workload, frame, generate};
    use lucid_protocol::{Decoder, Hello, Location, PollResult, TaskId, TaskKind, Waker, decode_frame};

    use super::*;
    use crate::pipeline::Pipeline;
    use crate::state::{State, WarningKind};
    use crate::time::Ticks;

    fn hello(cpus: u32) -> Vec<u8> {
        frame(
            StreamId::new(0, Ring::Control),
            0,
            &[(
                1,
                Message::Hello(Hello {
                    major: 1,
                    minor: 0,
                    build_id: "test",
                    tsc_hz: 1_000_000_000,
                    cpus,
                    boot_tsc: 0,
                }),
            )],
        )
    }

    fn task(cpu: u32) -> StreamId {
        StreamId::new(cpu, Ring::Task)
    }

    /// Feeds `frames` one by one, as a port delivers them, into a fresh pipeline and
    /// state, then ends the input.
    fn run(frames: &[Vec<u8>]) -> (Pipeline, State) {
        let (mut pipeline, mut state) = fed(frames);
        pipeline.finish_into(&mut state);
        (pipeline, state)
    }

    /// Feeds `frames` one by one into a fresh pipeline and state, without ending
    /// the input.
    fn fed(frames: &[Vec<u8>]) -> (Pipeline, State) {
        let mut pipeline = Pipeline::new();
        let mut state = State::new();
        for f in frames {
            pipeline.feed_into(&mut state, HostNs(0), f);
        }
        (pipeline, state)
    }

    fn lost_wakers(s: &State) -> u64 {
        s.warning_counts.get(&WarningKind::LostWaker).copied().unwrap_or(0)
    }

    fn end(task: TaskId) -> Message<'static> {
        Message::PollEnd {
            task,
            result: PollResult::Pending,
        }
    }

    fn wake(task: TaskId) -> Message<'static> {
        Message::Wake {
            task,
            waker: Waker::Task(TaskId(3)),
            by_ref: false,
            self_wake: false,
        }
    }

    /// The kernel's snapshot answer carries totals as of its timestamp: a poll
    /// older than it that arrives after it is already in them, and a newer one is not.
    #[test]
    fn a_snapshot_answer_takes_its_place_in_time_order() {
        let control = StreamId::new(0, Ring::Control);
        let snapshot = |polls: u64, busy_ticks: u64| {
            Message::TaskSnapshot(lucid_protocol::TaskSnapshot {
                task: TaskId(7),
                name: "net",
                kind: TaskKind::Kernel,
                location: Location {
                    file: "net.rs",
                    line: 1,
                    column: 1,
                },
                parent: None,
                state: lucid_protocol::TaskState::Idle,
                cpu: 0,
                spawned_tsc: 10,
                polls,
                wakes: 0,
                self_wakes: 0,
                wakers: 1,
                busy_ticks,
                scheduled_ticks: 0,
            })
        };
        let frames = [
            hello(1),
            frame(
                task(0),
                0,
                &[(20, Message::PollStart { task: TaskId(7) }), (30, end(TaskId(7)))],
            ),
            // Sent after the kernel read its totals at 50: two polls, 10 + 5 ticks.
            frame(
                control,
                1,
                &[
                    (50, Message::SnapshotBegin { request: 1 }),
                    (50, snapshot(2, 15)),
                    (50, Message::SnapshotEnd { request: 1 }),
                ],
            ),
            frame(
                task(0),
                1,
                &[
                    (40, Message::PollStart { task: TaskId(7) }),
                    (45, end(TaskId(7))),
                    (60, Message::PollStart { task: TaskId(7) }),
                    (70, end(TaskId(7))),
                ],
            ),
        ];
        let (_, s) = run(&frames);
        let t = &s.tasks[&TaskId(7)];
        assert_eq!(
            (t.polls, t.busy_ticks),
            (3, Ticks(25)),
            "the snapshot's 2 polls, then the one at 60"
        );
        assert_eq!(t.name, "net");
    }

    #[test]
    fn a_snapshot_answers_resources_and_waits_keep_their_place_inside_it() {
        let control = StreamId::new(0, Ring::Control);
        let timer = Message::ResourceCreated(lucid_protocol::ResourceCreated {
            id: lucid_protocol::ResourceId(1),
            kind: lucid_protocol::ResourceKind::Timer,
            name: "",
            location: Location {
                file: "sched.rs",
                line: 1,
                column: 1,
            },
            capacity: None,
        });
        let wait = Message::WaitBegin(lucid_protocol::WaitBegin {
            task: TaskId(7),
            resource: lucid_protocol::ResourceId(1),
            op: lucid_protocol::WaitOp::Sleep,
        });
        let frames = [
            hello(1),
            frame(
                control,
                1,
                &[
                    (50, Message::SnapshotBegin { request: 1 }),
                    (60, timer),
                    (61, wait),
                    (62, Message::SnapshotEnd { request: 1 }),
                ],
            ),
            frame(task(0), 0, &[(100, Message::PollStart { task: TaskId(7) })]),
        ];
        let mut pipeline = Pipeline::new();
        let mut control_order = Vec::new();
        let mut state = State::new();
        let mut apply = |item: &Item<'_>| {
            if let Item::Event { stream, event, .. } = item
                && stream.ring == Ring::Control
            {
                control_order.push(event.ts);
            }
            state.apply(item);
        };
        for f in &frames {
            pipeline.feed(HostNs(0), f, &mut apply);
        }
        pipeline.finish(&mut apply);
        assert_eq!(
            control_order[1..],
            [50, 60, 61, 62],
            "after the Hello, in the kernel's order"
        );
        assert_eq!(
            state.warning_counts.get(&WarningKind::Inconsistent),
            None,
            "{:?}",
            state.warnings
        );
        assert_eq!(
            state.resources.current_wait(TaskId(7)).map(|w| w.resource),
            Some(lucid_protocol::ResourceId(1))
        );
    }

    #[test]
    fn out_of_order_frames_from_two_cpus_build_the_same_state_as_in_order_delivery() {
        // Task 7 polled on CPU 1 while CPU 0 wakes it and drops its last waker, then
        // polled on CPU 0, woken again, and finished on CPU 1.
        let a = frame(
            task(1),
            0,
            &[
                (100, Message::PollStart { task: TaskId(7) }),
                (
                    110,
                    Message::WakerClone {
                        task: TaskId(7),
                        wakers: 1,
                    },
                ),
                (200, end(TaskId(7))),
            ],
        );
        let b = frame(
            task(0),
            0,
            &[
                (150, wake(TaskId(7))),
                (
                    151,
                    Message::WakerDrop {
                        task: TaskId(7),
                        wakers: 0,
                    },
                ),
            ],
        );
        let c = frame(
            task(0),
            1,
            &[
                (250, Message::PollStart { task: TaskId(7) }),
                (
                    260,
                    Message::WakerClone {
                        task: TaskId(7),
                        wakers: 1,
                    },
                ),
                (270, end(TaskId(7))),
                (300, wake(TaskId(7))),
                (
                    301,
                    Message::WakerDrop {
                        task: TaskId(7),
                        wakers: 0,
                    },
                ),
            ],
        );
        let d = frame(
            task(1),
            1,
            &[
                (320, Message::PollStart { task: TaskId(7) }),
                (
                    330,
                    Message::PollEnd {
                        task: TaskId(7),
                        result: PollResult::Ready,
                    },
                ),
            ],
        );
        let h = hello(2);
        let (_, in_order) = run(&[h.clone(), a.clone(), b.clone(), c.clone(), d.clone()]);
        // CPU 0's events from t=150..301 arrive before CPU 1's from t=100..200.
        let (pipeline, shuffled) = run(&[h, b, c, a, d]);
        assert_eq!(format!("{shuffled:?}"), format!("{in_order:?}"));
        assert_eq!(lost_wakers(&shuffled), 0);
        assert!(shuffled.warnings.is_empty(), "{:?}", shuffled.warnings);
        let merge = pipeline.merge();
        assert_eq!((merge.stats().late, merge.stats().forced, merge.buffered()), (0, 0, 0));
        let t = &shuffled.tasks[&TaskId(7)];
        assert_eq!((t.polls, t.wakes, t.busy_ticks), (3, 2, Ticks(100 + 20 + 10)));
    }

    /// The frames of `g`, each with its stream (read from its header).
    fn with_streams(frames: &[Vec<u8>]) -> Vec<(StreamId, Vec<u8>)> {
        frames
            .iter()
            .map(|f| {
                let mut copy = f[..f.len() - 1].to_vec();
                let stream = decode_frame(&mut copy).expect("generated frames decode").stream;
                (stream, f.clone())
            })
            .collect()
    }

    #[test]
    fn a_generated_workload_merges_the_same_whatever_the_interleaving() {
        let g = generate(&Workload {
            cpus: 3,
            tasks: 120,
            polls_per_task: 3,
            wasm_instances: 1,
            frame_buffer: 256,
            ..Workload::default()
        });
        let frames = with_streams(&g.frames);
        // Another interleaving a port might deliver: CPU 2's frames held back by up to
        // eight frames of the others, CPU 1's sent first within each block. Every
        // stream's own frames stay in sequence.
        let mut other: Vec<Vec<u8>> = Vec::new();
        let mut held: Vec<Vec<u8>> = Vec::new();
        for block in frames.chunks(8) {
            let mut first: Vec<Vec<u8>> = block
                .iter()
                .filter(|(s, _)| s.cpu == 1)
                .map(|(_, f)| f.clone())
                .collect();
            first.extend(
                block
                    .iter()
                    .filter(|(s, _)| s.cpu != 1 && s.cpu != 2)
                    .map(|(_, f)| f.clone()),
            );
            other.append(&mut first);
            other.append(&mut held);
            held = block
                .iter()
                .filter(|(s, _)| s.cpu == 2)
                .map(|(_, f)| f.clone())
                .collect();
        }
        other.append(&mut held);
        assert_eq!(other.len(), g.frames.len());
        assert_ne!(other, g.frames);
        let (_, a) = run(&g.frames);
        let (p2, b) = run(&other);
        assert_eq!(a.events, g.events());
        let stats = p2.merge().stats();
        assert_eq!((stats.late, stats.forced), (0, 0));
        assert_eq!(format!("{b:?}"), format!("{a:?}"));
    }

    #[test]
    fn a_quiet_stream_does_not_stall_release() {
        // CPU 1 says something early and then nothing; CPU 0 keeps sending.
        let mut frames = vec![hello(2), frame(task(1), 0, &[(10, Message::CpuIdle)])];
        frames.extend((0..300u32).map(|i| frame(task(0), i, &[(100 + u64::from(i), Message::CpuBusy)])));
        let (pipeline, state) = fed(&frames);
        // Only the frames since CPU 1 went quiet wait, not the whole stream.
        let held = pipeline.merge().buffered();
        assert!(held <= QUIET_FRAMES as usize + 1, "{held}");
        assert!(state.events >= 300 - QUIET_FRAMES, "{}", state.events);
        // A CPU the Hello announced that never speaks does not stall it either.
        let mut frames = vec![hello(4)];
        frames.extend((0..300u32).map(|i| frame(task(0), i, &[(100 + u64::from(i), Message::CpuBusy)])));
        let (pipeline, _) = fed(&frames);
        let held = pipeline.merge().buffered();
        assert!(held <= QUIET_FRAMES as usize + 1, "{held}");
        assert_eq!(pipeline.merge().stats().late, 0);
    }

    #[test]
    fn the_buffer_bound_is_honoured_and_overflow_is_counted() {
        // CPU 1's only event holds the watermark at t=0 while CPU 0's frames pile up.
        let mut frames = vec![hello(2), frame(task(1), 0, &[(0, Message::CpuIdle)])];
        frames.extend((0..30u32).map(|i| frame(task(0), i, &[(100 + u64::from(i), Message::CpuBusy)])));
        let mut pipeline = Pipeline::with_merge(Merge::new(10));
        let mut state = State::new();
        let mut most = 0;
        for f in &frames {
            pipeline.feed_into(&mut state, HostNs(0), f);
            most = most.max(pipeline.merge().buffered());
        }
        assert_eq!(most, 10);
        let stats = pipeline.merge().stats();
        assert_eq!(stats.peak, 10);
        // CPU 0's 30 events through a buffer of 10: 20 went early, oldest first, so
        // the order still holds.
        assert_eq!((stats.forced, stats.late), (20, 0));
        pipeline.finish_into(&mut state);
        assert_eq!(state.events, 32);
        assert_eq!(pipeline.merge().buffered(), 0);
    }

    #[test]
    fn a_held_event_takes_what_the_buffer_bound_assumes() {
        // `DEFAULT_MAX_BUFFERED` is sized for 48 bytes an event.
        assert!(size_of::<Pending>() <= 48, "{}", size_of::<Pending>());
    }

    #[test]
    fn messages_with_strings_survive_the_buffer() {
        let samples = lucid_protocol::testdata::sample_messages();
        let msgs: Vec<(u64, Message<'_>)> = samples
            .iter()
            .filter(|m| {
                !matches!(
                    m,
                    Message::Hello(_) | Message::Loss { .. } | Message::EventCounts { .. }
                )
            })
            .map(|m| (5, *m))
            .collect();
        let f = frame(task(0), 0, &msgs);
        let mut merge = Merge::default();
        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        decoder.feed(&f, |item| {
            merge.push(&item, &mut |i: &Item<'_>| got.push(format!("{i:?}")))
        });
        assert!(got.is_empty(), "held until released");
        merge.flush(&mut |i: &Item<'_>| got.push(format!("{i:?}")));
        let mut direct = Vec::new();
        Decoder::new().feed(&f, |item| direct.push(format!("{item:?}")));
        assert_eq!(got, direct);
    }
}

#[cfg(test)]
mod idle_tests {
    use lucid_protocol::{FrameEncoder, Ring};

    use super::*;
    use crate::pipeline::Pipeline;
    use crate::state::State;

    #[test]
    fn an_idle_link_releases_what_is_held() {
        let mut enc = FrameEncoder::new(vec![0u8; 256], StreamId::new(0, Ring::Task));
        let mut frames = Vec::new();
        for ts in [10, 20] {
            enc.push(ts, &Message::CpuBusy).expect("fits");
            let mut out = vec![0u8; enc.max_finished_len()];
            let n = enc.finish(&mut out).expect("fits");
            out.truncate(n);
            frames.push(out);
        }
        // A second stream that spoke once, long ago in stream terms, holds CPU 0 back.
        let mut enc = FrameEncoder::new(vec![0u8; 256], StreamId::new(1, Ring::Task));
        enc.push(5, &Message::CpuIdle).expect("fits");
        let mut out = vec![0u8; enc.max_finished_len()];
        let n = enc.finish(&mut out).expect("fits");
        out.truncate(n);
        let (mut p, mut s) = (Pipeline::new(), State::new());
        p.feed_into(&mut s, HostNs(1_000), &out);
        p.feed_into(&mut s, HostNs(2_000), &frames[0]);
        p.feed_into(&mut s, HostNs(3_000), &frames[1]);
        assert!(p.merge().buffered() > 0);
        assert!(!p.tick_into(&mut s, HostNs(3_000 + LINK_IDLE_NS / 2)));
        assert!(p.tick_into(&mut s, HostNs(3_000 + LINK_IDLE_NS)));
        assert_eq!((p.merge().buffered(), s.events), (0, 3));
    }
}
