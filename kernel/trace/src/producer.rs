//! One CPU's producer for one context: fixed-size records written with plain stores
//! into a private ring, the clock it stamps them with, its counters, and the
//! consumer's side that frames the records for the wire.

use alloc::{boxed::Box, vec};
use core::panic::Location;

use lucid_protocol::{self as proto, EncodeError, FrameEncoder, Message, MessageKind, StreamId, varint_len};

use crate::{
    loom::{AtomicU64, Ordering, UnsafeCell},
    record::{self, Sink},
    ring::{MAX_ENTRY_SLOTS, RecordRing, Slot},
};

/// The encoder the consumer frames records with.
pub type Encoder = FrameEncoder<Box<[u8]>>;

/// Largest sealed (COBS-encoded, delimited) frame for a frame buffer of `frame_bytes`.
pub const fn sealed_max(frame_bytes: usize) -> usize {
    lucid_protocol::cobs_max_encoded_len(frame_bytes) + 1
}

/// Bytes of a detached record that fit in one entry.
pub(crate) const MAX_DETACHED: usize = (MAX_ENTRY_SLOTS - 1) * 32;

/// The producer's view of time and of the poll in progress, so one clock read serves
/// a poll boundary: a poll's end and the next poll's start share a timestamp unless
/// time is known to have passed between them, and events inside a poll carry the
/// poll's start time (or a later fresh read made inside it). Self-wakes are kept here
/// and written with the poll's end.
#[derive(Debug, Default)]
struct Local {
    /// The last timestamp handed out.
    last: u64,
    /// Whether `last` may stand for "now" (nothing untraced happened since).
    shareable: bool,
    /// Whether a poll is in progress in this producer's context, and of which task.
    in_poll: bool,
    task: u64,
    /// The poll's self-wakes so far.
    self_wakes: proto::SelfWakes,
}

/// The consumer's side: the frame encoder for this producer's stream and its buffers.
struct Framer {
    encoder: Encoder,
    sealed: Box<[u8]>,
    /// A sealed frame `(events, len)` the consumer's output has not taken yet.
    pending: Option<(u32, usize)>,
    entry: Box<[Slot; MAX_ENTRY_SLOTS]>,
    scratch: Box<[u8]>,
}

/// A producer: record ring, clock, counters, and the consumer's framer.
pub struct Producer {
    local: UnsafeCell<Local>,
    framer: UnsafeCell<Framer>,
    /// Records waiting for the consumer.
    pub ring: RecordRing,
    /// Events produced (recorded or dropped) since creation.
    pub produced: AtomicU64,
    /// Events dropped since creation (a full ring, a record the frame cannot hold, or
    /// the consumer's output gone), besides those skipped while paused.
    pub dropped: AtomicU64,
    /// Events dropped since the consumer last took the count.
    pub unreported: AtomicU64,
    /// Clock reads the producer made.
    pub clock_reads: AtomicU64,
    /// Events not recorded because tracing was paused (written only by the owner, so a
    /// paused event costs no locked instruction; part of `dropped_total`).
    skipped: AtomicU64,
    /// How much of `skipped` the consumer has reported.
    skipped_reported: AtomicU64,
    /// Events that happened while tracing was paused and no hook ran, counted in bulk
    /// when it resumed ([`Producer::count_paused`]; part of both totals).
    paused: AtomicU64,
}

impl core::fmt::Debug for Producer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Producer")
            .field("ring", &self.ring)
            .field("produced", &self.produced.load(Ordering::Relaxed))
            .field("dropped", &self.dropped_total())
            .finish_non_exhaustive()
    }
}

// SAFETY: `local` and the ring's producer side are touched only through the unsafe
// producer methods, whose contract gives one caller at a time (the owning CPU in the
// owning context); `framer` and the ring's consumer side only through
// `Producer::frame`, whose contract gives one consumer at a time. Counters are atomic.
unsafe impl Sync for Producer {}
// SAFETY: the producer owns all its buffers; the `'static` references its records hold
// are valid everywhere.
unsafe impl Send for Producer {}

/// The bytes of `slots`, for a detached record written straight into them.
fn bytes_of(slots: &mut [Slot]) -> &mut [u8] {
    // SAFETY: `Slot` is plain `u64`s (no padding, any byte pattern is valid), so its
    // memory is `size_of_val(slots)` initialised bytes, borrowed mutably for as long.
    unsafe { core::slice::from_raw_parts_mut(slots.as_mut_ptr().cast::<u8>(), core::mem::size_of_val(slots)) }
}

/// Bumps an owner-only counter with a plain load and store (no locked instruction).
#[inline]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

impl Producer {
    /// A producer for `stream` whose consumer frames `frame_bytes` raw bytes per
    /// frame, with a ring of `ring_slots` records (a power of two).
    pub fn new(stream: StreamId, frame_bytes: usize, ring_slots: usize) -> Self {
        Self {
            local: UnsafeCell::new(Local::default()),
            framer: UnsafeCell::new(Framer {
                encoder: FrameEncoder::new(vec![0u8; frame_bytes].into_boxed_slice(), stream),
                sealed: vec![0u8; sealed_max(frame_bytes)].into_boxed_slice(),
                pending: None,
                entry: Box::new([Slot::default(); MAX_ENTRY_SLOTS]),
                scratch: vec![0u8; MAX_DETACHED].into_boxed_slice(),
            }),
            ring: RecordRing::new(ring_slots),
            produced: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
            clock_reads: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            skipped_reported: AtomicU64::new(0),
            paused: AtomicU64::new(0),
        }
    }

    /// Counts `n` events as dropped (also used by the consumer for frames it cannot
    /// deliver).
    pub fn drop_events(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.unreported.fetch_add(n, Ordering::Relaxed);
    }

    /// Events dropped since creation, including those skipped while paused.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
            + self.skipped.load(Ordering::Relaxed)
            + self.paused.load(Ordering::Relaxed)
    }

    /// Events produced since creation (recorded or dropped), including those counted
    /// in bulk after a pause.
    pub fn produced_total(&self) -> u64 {
        self.produced.load(Ordering::Relaxed) + self.paused.load(Ordering::Relaxed)
    }

    /// Counts `n` events that happened while tracing was paused without reaching this
    /// producer (the executor called no hook for them) as produced and dropped. Any
    /// thread may call this.
    pub fn count_paused(&self, n: u64) {
        self.paused.fetch_add(n, Ordering::Relaxed);
        self.unreported.fetch_add(n, Ordering::Relaxed);
    }

    /// Events dropped since the last call (the consumer's loss reports; one caller).
    pub fn take_unreported(&self) -> u64 {
        let skipped = self.skipped.load(Ordering::Relaxed);
        let reported = self.skipped_reported.swap(skipped, Ordering::Relaxed);
        self.unreported.swap(0, Ordering::Relaxed) + skipped.wrapping_sub(reported)
    }

    /// Sets every count back to zero (between runs of a benchmark, with nothing
    /// recording and the consumer done).
    pub fn reset_counts(&self) {
        for count in [
            &self.produced,
            &self.dropped,
            &self.unreported,
            &self.clock_reads,
            &self.skipped,
            &self.skipped_reported,
            &self.paused,
        ] {
            count.store(0, Ordering::Relaxed);
        }
    }

    // ------------------------------------------------------------ producer side

    /// Runs `f` on the producer's local state.
    ///
    /// # Safety
    /// The producer contract (see [`Producer::poll_start`]).
    #[inline]
    unsafe fn local<R>(&self, f: impl FnOnce(&mut Local) -> R) -> R {
        // SAFETY: the caller's contract: one caller at a time.
        self.local.with_mut(|l| f(unsafe { &mut *l }))
    }

    #[inline]
    fn read(&self, now: impl FnOnce() -> u64) -> u64 {
        bump(&self.clock_reads, 1);
        now()
    }

    /// Writes one entry standing for `events` events, or counts them as dropped.
    ///
    /// # Safety
    /// The producer contract.
    #[inline]
    unsafe fn put(&self, first: Slot, extra: &[Slot], events: u64) {
        bump(&self.produced, events);
        // SAFETY: the caller's contract makes this the ring's one producer.
        if !unsafe { self.ring.push(first, extra) } {
            self.drop_events(events);
        }
    }

    /// Counts one event as produced and dropped without recording it or reading the
    /// clock (tracing is paused).
    ///
    /// # Safety
    /// The producer contract.
    pub unsafe fn skip(&self) {
        bump(&self.produced, 1);
        bump(&self.skipped, 1);
    }

    /// The timestamp of an event now: inside a poll, the poll's start; else the last
    /// timestamp when nothing untraced happened since, or a fresh read of `now`.
    ///
    /// # Safety
    /// The producer contract.
    #[inline]
    pub unsafe fn event_time(&self, now: impl FnOnce() -> u64) -> u64 {
        // SAFETY: the caller's contract.
        unsafe {
            self.local(|l| {
                if !(l.in_poll || l.shareable) {
                    l.last = self.read(now);
                    l.shareable = true;
                }
                l.last
            })
        }
    }

    /// The timestamp of a wake or waker count now: inside a poll, the poll's time (no
    /// clock read: a poll that wakes another task costs one read per boundary);
    /// outside one (an interrupt handler, the scheduler's timers), a fresh read, since
    /// nothing bounds how long ago the last timestamp was taken.
    ///
    /// Dated with the poll's start, a wake can sort before the woken task's own poll
    /// end on another CPU; the poll end says whether the task was woken during it
    /// (`PollResult::PendingWoken`), which is what a console trusts.
    ///
    /// # Safety
    /// The producer contract.
    #[inline]
    unsafe fn wake_time(&self, now: impl FnOnce() -> u64) -> u64 {
        // SAFETY: the caller's contract.
        unsafe {
            self.local(|l| {
                if !l.in_poll {
                    l.last = self.read(now);
                    l.shareable = true;
                }
                l.last
            })
        }
    }

    /// A fresh read of `now`, for an event whose time matters beyond its poll (a spawn,
    /// a log line, a wasm instance's state, which a long poll would otherwise date
    /// back to its start); later events inside the poll carry it, so time never runs
    /// backwards in the stream.
    ///
    /// # Safety
    /// The producer contract.
    #[inline]
    pub unsafe fn fresh_time(&self, now: impl FnOnce() -> u64) -> u64 {
        // SAFETY: the caller's contract.
        unsafe {
            self.local(|l| {
                l.last = self.read(now);
                l.shareable |= !l.in_poll;
                l.last
            })
        }
    }

    /// Untraced time passes (an idle CPU, an untraced task's poll): the next event
    /// reads the clock, and events until then are not inside a traced poll.
    ///
    /// # Safety
    /// The producer contract.
    #[inline]
    pub unsafe fn time_passes(&self) {
        // SAFETY: the caller's contract.
        unsafe {
            self.local(|l| {
                l.shareable = false;
                l.in_poll = false;
            });
        }
    }

    /// `task`'s poll starts: stamped with the previous boundary's time when nothing
    /// untraced happened since, else a fresh read of `now`. Returns the timestamp.
    ///
    /// # Safety
    /// The producer contract: only one caller at a time per producer, which is the
    /// owning CPU in the owning context (task or interrupt); an interrupt handler on
    /// the same CPU must use the other producer, and the caller must not be
    /// interrupted by anything that uses this one.
    #[inline]
    pub unsafe fn poll_start(&self, task: u64, now: impl FnOnce() -> u64) -> u64 {
        // SAFETY: the caller's contract.
        let ts = unsafe {
            self.local(|l| {
                if !l.shareable {
                    l.last = self.read(now);
                }
                l.shareable = false;
                l.in_poll = true;
                l.task = task;
                l.self_wakes = proto::SelfWakes::default();
                l.last
            })
        };
        // SAFETY: as above.
        unsafe { self.put(record::slot(ts, record::POLL_START, 0, task, 0), &[], 1) };
        ts
    }

    /// The poll started last ends with `result` (a fresh read of `now`, which the next
    /// poll's start may share), carrying the poll's self-wakes. Returns the timestamp.
    ///
    /// # Safety
    /// The producer contract.
    #[inline]
    pub unsafe fn poll_end(&self, task: u64, result: proto::PollResult, now: impl FnOnce() -> u64) -> u64 {
        // SAFETY: the caller's contract.
        let (ts, wakes) = unsafe {
            self.local(|l| {
                l.last = self.read(now);
                l.shareable = true;
                let wakes = if l.in_poll && l.task == task {
                    l.self_wakes
                } else {
                    proto::SelfWakes::default()
                };
                l.in_poll = false;
                (l.last, wakes)
            })
        };
        let first = record::slot(ts, record::POLL_END, record::pack_poll_end(result, wakes), task, 0);
        // SAFETY: as above.
        unsafe { self.put(first, &[], record::poll_end_events(wakes)) };
        ts
    }

    /// `task` was woken by `waker`. A self-wake inside the task's own poll rides on
    /// the poll's end (same by-ref flag, up to 255 per poll). Returns the timestamp.
    ///
    /// # Safety
    /// The producer contract.
    #[inline]
    pub unsafe fn wake(
        &self,
        task: u64,
        waker: proto::Waker,
        by_ref: bool,
        self_wake: bool,
        now: impl FnOnce() -> u64,
    ) -> u64 {
        // SAFETY: the caller's contract.
        let (ts, noted) = unsafe {
            self.local(|l| {
                let noted = self_wake
                    && l.in_poll
                    && l.task == task
                    && l.self_wakes.count < u8::MAX
                    && (l.self_wakes.count == 0 || l.self_wakes.by_ref == by_ref);
                if noted {
                    l.self_wakes.count += 1;
                    l.self_wakes.by_ref = by_ref;
                }
                (l.last, noted)
            })
        };
        if noted {
            return ts;
        }
        // SAFETY: as above.
        let ts = unsafe { self.wake_time(now) };
        let (code, id) = record::pack_waker(waker);
        let c = code | (u64::from(by_ref) << 2) | (u64::from(self_wake) << 3);
        // SAFETY: as above.
        unsafe { self.put(record::slot(ts, record::WAKE, c, task, id), &[], 1) };
        ts
    }

    /// A waker of `task` was cloned (`cloned`) or dropped; `count` now exist. The
    /// count goes out at once, never riding on the poll's end: another CPU can clone
    /// or drop the task's wakers while it runs, and a count held back to the poll's
    /// end would overwrite theirs with a stale one (a wrong count in the console).
    /// Inside a poll it carries the poll's time, like a wake, so two CPUs changing
    /// one task's count within a poll's length may reach the console in either order
    /// (the count shown is then stale until the next change; the kernel, not the
    /// count, decides lost wakers).
    ///
    /// # Safety
    /// The producer contract.
    #[inline]
    pub unsafe fn waker_count(&self, task: u64, count: u64, cloned: bool, now: impl FnOnce() -> u64) {
        let kind = if cloned {
            record::WAKER_CLONE
        } else {
            record::WAKER_DROP
        };
        // SAFETY: the caller's contract.
        unsafe {
            let ts = self.wake_time(now);
            self.put(record::slot(ts, kind, 0, task, count), &[], 1);
        }
    }

    /// A task was spawned (stamped with a fresh read: a spawn inside a long poll must
    /// not be dated before a snapshot that missed the task). Returns the timestamp.
    ///
    /// # Safety
    /// The producer contract.
    pub unsafe fn spawned(
        &self,
        task: u64,
        parent: Option<u64>,
        wasm: bool,
        name: &'static str,
        location: &'static Location<'static>,
        now: impl FnOnce() -> u64,
    ) -> u64 {
        // SAFETY: the caller's contract.
        let ts = unsafe { self.fresh_time(now) };
        let c = u64::from(wasm) | (u64::from(parent.is_some()) << 1);
        let first = Slot([
            ts,
            record::header(record::TASK_SPAWNED, 1, c),
            task,
            parent.unwrap_or(0),
        ]);
        let names = Slot([
            name.as_ptr() as usize as u64,
            name.len() as u64,
            core::ptr::from_ref(location) as usize as u64,
            0,
        ]);
        // SAFETY: as above.
        unsafe { self.put(first, &[names], 1) };
        ts
    }

    /// `task` began waiting on resource `resource` for `op` (`Ok`) or its wait ended
    /// with an outcome (`Err`): one slot, where an encoded message would take two and
    /// be encoded twice (here, then again by the consumer). Stamped with a fresh read,
    /// as an encoded message is: a wait's end comes from another task's poll or an
    /// interrupt, and the poll's start time could date it before the wait's begin.
    /// Returns the timestamp.
    ///
    /// # Safety
    /// The producer contract.
    #[inline]
    pub unsafe fn wait(
        &self,
        task: u64,
        resource: u64,
        what: Result<proto::WaitOp, proto::WaitOutcome>,
        now: impl FnOnce() -> u64,
    ) -> u64 {
        let (kind, c) = match what {
            Ok(op) => (record::WAIT_BEGIN, op as u64),
            Err(outcome) => (
                record::WAIT_END,
                match outcome {
                    proto::WaitOutcome::Ready => 0,
                    proto::WaitOutcome::Cancelled => 1,
                    proto::WaitOutcome::TimedOut => 2,
                },
            ),
        };
        // SAFETY: the caller's contract.
        unsafe {
            let ts = self.fresh_time(now);
            self.put(record::slot(ts, kind, c, task, resource), &[], 1);
            ts
        }
    }

    /// Records one of the small events (no poll state involved).
    ///
    /// # Safety
    /// The producer contract.
    #[inline]
    pub unsafe fn event(&self, event: Event, now: impl FnOnce() -> u64) {
        let (kind, c, a, b) = match event {
            Event::JoinWaiting { task, waiter } => (record::JOIN_WAITING, 0, task, waiter),
            Event::TaskCompleted { task, outcome } => {
                let code = match outcome {
                    proto::Outcome::Ok => 0,
                    proto::Outcome::Cancelled => 1,
                    proto::Outcome::Panicked => 2,
                };
                (record::TASK_COMPLETED, code, task, 0)
            }
            Event::TaskDropped { task } => (record::TASK_DROPPED, 0, task, 0),
            Event::LostWaker { task } => (record::LOST_WAKER, 0, task, 0),
            Event::Steal { task, from, to } => (
                record::STEAL,
                u64::from(from & 0xff_ffff) | (u64::from(to & 0xff_ffff) << 24),
                task,
                0,
            ),
            Event::CpuIdle => (record::CPU_IDLE, 0, 0, 0),
            Event::CpuBusy => (record::CPU_BUSY, 0, 0, 0),
            Event::RunQueueDepth { depth } => (record::RUN_QUEUE_DEPTH, u64::from(depth), 0, 0),
        };
        // SAFETY: the caller's contract.
        unsafe {
            let ts = self.event_time(now);
            self.put(record::slot(ts, kind, c.min(record::C_MAX), a, b), &[], 1);
        }
    }

    /// Records any message, stamped with a fresh read. A message with a compact layout
    /// (numbers only: wasm instance state, polls and hostcalls, CPU events) is kept as
    /// its code and fields in one or two slots; any other (logs, names, panics) is
    /// encoded here as a detached protocol record, and one that does not fit an entry
    /// is counted as dropped. Returns the timestamp.
    ///
    /// # Safety
    /// The producer contract.
    pub unsafe fn message(&self, msg: &Message<'_>, now: impl FnOnce() -> u64) -> u64 {
        // SAFETY: the caller's contract.
        let ts = unsafe { self.fresh_time(now) };
        if let Some(compact) = msg.to_compact() {
            let f = compact.fields();
            let field = |i: usize| f.get(i).copied().unwrap_or(0);
            let kind = msg.kind().index() as u64 & 0xff;
            let mut c = u64::from(compact.code()) | ((f.len() as u64) << 5) | (kind << 8);
            // A small third field (a state's detail, a slice count) rides in the header.
            let inline = f.len() == 3 && field(2) < record::COMPACT_INLINE_MAX;
            if inline {
                c |= (1 << 16) | (field(2) << 17);
            }
            let extra = Slot([field(2), field(3), field(4), 0]);
            let extra: &[Slot] = if f.len() > 2 && !inline {
                core::slice::from_ref(&extra)
            } else {
                &[]
            };
            let first = Slot([ts, record::header(record::COMPACT, extra.len(), c), field(0), field(1)]);
            // SAFETY: as above.
            unsafe { self.put(first, extra, 1) };
            return ts;
        }
        // Most such messages are short: a small buffer first, the largest only if needed
        // (a buffer is zeroed on every call).
        // SAFETY: as above.
        let recorded = unsafe { self.message_in::<8>(ts, msg) || self.message_in::<{ MAX_ENTRY_SLOTS - 1 }>(ts, msg) };
        if !recorded {
            bump(&self.produced, 1);
            self.drop_events(1);
        }
        ts
    }

    /// Records `msg` in an entry of at most `N` extra slots; false (nothing recorded or
    /// counted) if its record does not fit.
    ///
    /// # Safety
    /// The producer contract.
    unsafe fn message_in<const N: usize>(&self, ts: u64, msg: &Message<'_>) -> bool {
        let mut slots = [Slot::default(); N];
        let Ok(len) = msg.encode_detached(bytes_of(&mut slots)) else {
            return false;
        };
        let extra = len.div_ceil(32);
        // The slots hold the record's bytes in memory order; the consumer reads them back
        // the same way (`record::expand`).
        let first = Slot([
            ts,
            record::header(record::DETACHED, extra, len as u64),
            msg.kind() as u64,
            0,
        ]);
        // SAFETY: the caller's contract.
        unsafe { self.put(first, &slots[..extra], 1) };
        true
    }

    // ------------------------------------------------------------ consumer side

    /// Frames the waiting records: each record becomes the messages it stands for in
    /// this producer's stream; every full frame, and with `seal_partial` the last
    /// partly filled one, is sealed (CRC, COBS, delimiter) and handed to
    /// `out(events, bytes)`. When `out` returns false the frame is kept and offered
    /// first at the next call, and this returns false; else true once the ring is
    /// empty. Events that cannot be framed are counted as dropped.
    ///
    /// # Safety
    /// Only this producer's one consumer calls this, one call at a time.
    pub unsafe fn frame(&self, seal_partial: bool, out: &mut dyn FnMut(u32, &[u8]) -> bool) -> bool {
        // SAFETY: the caller's contract.
        unsafe { self.frame_observed(seal_partial, out, None) }
    }

    /// [`Producer::frame`], telling `observe` (if any) each framed message's kind and
    /// record bytes (frame headers excluded).
    ///
    /// # Safety
    /// As for [`Producer::frame`].
    pub unsafe fn frame_observed(
        &self,
        seal_partial: bool,
        out: &mut dyn FnMut(u32, &[u8]) -> bool,
        mut observe: Option<&mut dyn FnMut(MessageKind, usize)>,
    ) -> bool {
        self.framer.with_mut(|framer| {
            // SAFETY: the caller's contract: the framer is the consumer's alone.
            let framer = unsafe { &mut *framer };
            if !framer.offer(out) {
                return false;
            }
            let Framer {
                encoder,
                sealed,
                pending,
                entry,
                scratch,
            } = framer;
            let mut refused = false;
            loop {
                let mut lost = 0;
                // SAFETY: the caller's contract makes this the ring's one consumer.
                let taken = unsafe {
                    self.ring.drain(entry, |slots| {
                        if let [slot] = slots
                            && observe.is_none()
                            && record::frame_hot(encoder, slot)
                        {
                            return true;
                        }
                        let mut sink = FrameSink {
                            encoder,
                            sealed,
                            pending,
                            observe: &mut observe,
                        };
                        lost += record::expand(slots, &mut sink, scratch);
                        // Stop at a sealed frame, to hand it out before the next.
                        pending.is_none()
                    })
                };
                if lost > 0 {
                    self.drop_events(lost);
                }
                if !framer_offer(pending, sealed, out) {
                    refused = true;
                    break;
                }
                if taken == 0 {
                    break;
                }
            }
            if refused {
                return false;
            }
            if seal_partial && !encoder.is_empty() {
                seal(encoder, sealed, pending, self);
                return framer_offer(pending, sealed, out);
            }
            true
        })
    }
}

/// The small events a producer records in one slot.
#[derive(Debug, Clone, Copy)]
pub enum Event {
    /// A `JoinHandle` of `task` is awaited by `waiter` (0: none).
    JoinWaiting { task: u64, waiter: u64 },
    /// `task` completed.
    TaskCompleted { task: u64, outcome: proto::Outcome },
    /// `task`'s memory was freed.
    TaskDropped { task: u64 },
    /// `task` is pending with no waker left: nothing can wake it.
    LostWaker { task: u64 },
    /// `task` moved from CPU `from` to CPU `to`.
    Steal { task: u64, from: u32, to: u32 },
    /// The CPU goes idle.
    CpuIdle,
    /// The CPU woke up.
    CpuBusy,
    /// The CPU's run queue peaked at `depth` in the last window.
    RunQueueDepth { depth: u32 },
}

impl Framer {
    fn offer(&mut self, out: &mut dyn FnMut(u32, &[u8]) -> bool) -> bool {
        framer_offer(&mut self.pending, &self.sealed, out)
    }
}

/// Hands the pending sealed frame to `out`; false if it refused (the frame stays).
fn framer_offer(pending: &mut Option<(u32, usize)>, sealed: &[u8], out: &mut dyn FnMut(u32, &[u8]) -> bool) -> bool {
    match *pending {
        Some((events, len)) if !out(events, &sealed[..len]) => false,
        _ => {
            *pending = None;
            true
        }
    }
}

/// Seals the open frame into `sealed` as the pending frame (at most one frame is
/// sealed per record, so nothing is pending yet).
fn seal(encoder: &mut Encoder, sealed: &mut [u8], pending: &mut Option<(u32, usize)>, producer: &Producer) {
    debug_assert!(pending.is_none());
    let events = encoder.event_count();
    match encoder.finish(sealed) {
        Ok(0) => {}
        Ok(n) => *pending = Some((events, n)),
        Err(_) => {
            encoder.discard();
            producer.drop_events(u64::from(events));
        }
    }
}

/// The consumer's sink for expanded records: the encoder, sealing a full frame into
/// the pending slot and retrying.
struct FrameSink<'a, 'b> {
    encoder: &'a mut Encoder,
    sealed: &'a mut [u8],
    pending: &'a mut Option<(u32, usize)>,
    observe: &'a mut Option<&'b mut dyn FnMut(MessageKind, usize)>,
}

impl Sink for FrameSink<'_, '_> {
    fn also(&mut self, kind: MessageKind, n: u64) {
        if let Some(observe) = self.observe.as_mut() {
            for _ in 0..n {
                observe(kind, 0);
            }
        }
    }

    #[inline]
    fn record(
        &mut self,
        ts: u64,
        kind: Option<MessageKind>,
        push: impl Fn(&mut Encoder) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let mut before = self.encoder.raw_len();
        let mut result = push(self.encoder);
        if matches!(result, Err(EncodeError::BufferFull)) && !self.encoder.is_empty() && self.pending.is_none() {
            let events = self.encoder.event_count();
            let n = self.encoder.finish(self.sealed)?;
            *self.pending = (n > 0).then_some((events, n));
            before = 0;
            result = push(self.encoder);
        }
        if result.is_ok()
            && let (Some(observe), Some(kind)) = (self.observe.as_mut(), kind)
        {
            let e = &*self.encoder;
            // A record that opened the frame came with the frame header.
            let start = if e.event_count() == 1 {
                1 + varint_len(e.stream().to_wire()) + varint_len(u64::from(e.sequence())) + varint_len(ts)
            } else {
                before
            };
            observe(kind, e.raw_len() - start);
        }
        result
    }
}
