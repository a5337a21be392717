//! One CPU's encoder for one context, its ring of sealed frames, and its counters.

use alloc::{boxed::Box, vec};

use lucid_protocol::{EncodeError, FrameEncoder, StreamId};

use crate::{
    FrameRing,
    loom::{AtomicBool, AtomicU64, Ordering, UnsafeCell},
};

/// The encoder a producer writes into.
pub type Encoder = FrameEncoder<Box<[u8]>>;
/// Encodes one event stamped with the given timestamp (called again after sealing if
/// the frame was full).
pub type EncodeFn<'a> = &'a dyn Fn(&mut Encoder, u64) -> Result<(), EncodeError>;

/// Largest sealed (COBS-encoded, delimited) frame for a frame buffer of `frame_bytes`.
pub const fn sealed_max(frame_bytes: usize) -> usize {
    lucid_protocol::cobs_max_encoded_len(frame_bytes) + 1
}

/// What the producer knows about time, so one clock read serves a poll boundary: a
/// poll's end and the next poll's start share a timestamp unless time is known to have
/// passed between them, and events inside a poll carry the poll's start time.
#[derive(Debug, Default)]
struct Clock {
    /// The last timestamp handed out.
    last: u64,
    /// Whether `last` may stand for "now" at the next poll start.
    shareable: bool,
    /// Whether a poll is in progress in this producer's context.
    in_poll: bool,
}

/// A producer: encoder + sealed-frame ring + counters.
pub struct Producer {
    clock: UnsafeCell<Clock>,
    encoder: UnsafeCell<Encoder>,
    scratch: UnsafeCell<Box<[u8]>>,
    busy: AtomicBool,
    opened_at: AtomicU64,
    seal_age: AtomicU64,
    /// Sealed frames waiting for the drain.
    pub ring: FrameRing,
    /// Events produced (encoded or dropped) since creation.
    pub produced: AtomicU64,
    /// Events dropped since creation.
    pub dropped: AtomicU64,
    /// Events dropped since the drain last took the count.
    pub unreported: AtomicU64,
    /// Clock reads made through [`Producer::poll_start_time`] and its siblings.
    pub clock_reads: AtomicU64,
    /// Events not recorded because tracing was paused (written only by the owner, so a
    /// paused event costs no locked instruction; part of `dropped_total`).
    skipped: AtomicU64,
    /// How much of `skipped` the drain has reported.
    skipped_reported: AtomicU64,
}

impl core::fmt::Debug for Producer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Producer")
            .field("ring", &self.ring)
            .field("produced", &self.produced.load(Ordering::Relaxed))
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

// SAFETY: `encoder`, `scratch` and `opened_at` are only touched inside `record` and
// `seal_now`, whose contracts give one caller at a time (the owning CPU with interrupts
// off); the `busy` flag additionally turns re-entry into a counted drop. The ring is SPSC
// by its own contract; everything else is atomic.
unsafe impl Sync for Producer {}
// SAFETY: the producer owns all its buffers.
unsafe impl Send for Producer {}

impl Producer {
    /// A producer for `stream` with `frame_bytes` raw bytes per frame and a ring of
    /// `ring_bytes` (a power of two).
    pub fn new(stream: StreamId, frame_bytes: usize, ring_bytes: usize) -> Self {
        let encoder = FrameEncoder::new(vec![0u8; frame_bytes].into_boxed_slice(), stream);
        Self {
            clock: UnsafeCell::new(Clock::default()),
            encoder: UnsafeCell::new(encoder),
            scratch: UnsafeCell::new(vec![0u8; sealed_max(frame_bytes)].into_boxed_slice()),
            busy: AtomicBool::new(false),
            opened_at: AtomicU64::new(0),
            seal_age: AtomicU64::new(u64::MAX),
            ring: FrameRing::new(ring_bytes),
            produced: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
            clock_reads: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            skipped_reported: AtomicU64::new(0),
        }
    }

    /// Counts one event as produced and dropped without recording it or reading the
    /// clock (tracing is paused).
    ///
    /// # Safety
    /// As for [`Producer::record`].
    pub unsafe fn skip(&self) {
        self.produced
            .store(self.produced.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.skipped
            .store(self.skipped.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Events dropped since creation, including those skipped while paused.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed) + self.skipped.load(Ordering::Relaxed)
    }

    /// Sets every count back to zero (between runs of a benchmark, with nothing
    /// recording and the drain done).
    pub fn reset_counts(&self) {
        for count in [
            &self.produced,
            &self.dropped,
            &self.unreported,
            &self.clock_reads,
            &self.skipped,
            &self.skipped_reported,
        ] {
            count.store(0, Ordering::Relaxed);
        }
    }

    /// Events dropped since the last call (the drain's loss reports; one caller).
    pub fn take_unreported(&self) -> u64 {
        let skipped = self.skipped.load(Ordering::Relaxed);
        let reported = self.skipped_reported.swap(skipped, Ordering::Relaxed);
        self.unreported.swap(0, Ordering::Relaxed) + skipped.wrapping_sub(reported)
    }

    /// Runs `f` on the clock state.
    ///
    /// # Safety
    /// As for [`Producer::record`].
    unsafe fn clock<R>(&self, f: impl FnOnce(&mut Clock) -> R) -> R {
        // SAFETY: the caller's contract: one caller at a time.
        self.clock.with_mut(|c| f(unsafe { &mut *c }))
    }

    fn read(&self, now: impl FnOnce() -> u64) -> u64 {
        // Only the owning context counts its reads (the caller's contract).
        self.clock_reads
            .store(self.clock_reads.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        now()
    }

    /// The timestamp of a poll starting now: the previous boundary's when nothing is
    /// known to have happened since, else a fresh read of `now`.
    ///
    /// # Safety
    /// As for [`Producer::record`].
    pub unsafe fn poll_start_time(&self, now: impl FnOnce() -> u64) -> u64 {
        // SAFETY: the caller's contract.
        unsafe {
            self.clock(|c| {
                if !c.shareable {
                    c.last = self.read(now);
                }
                c.shareable = false;
                c.in_poll = true;
                c.last
            })
        }
    }

    /// The timestamp of a poll ending now (a fresh read), which the next poll's start
    /// may share.
    ///
    /// # Safety
    /// As for [`Producer::record`].
    pub unsafe fn poll_end_time(&self, now: impl FnOnce() -> u64) -> u64 {
        // SAFETY: the caller's contract.
        unsafe {
            self.clock(|c| {
                c.last = self.read(now);
                c.shareable = true;
                c.in_poll = false;
                c.last
            })
        }
    }

    /// The timestamp of any other event: inside a poll, the poll's start; outside, a
    /// fresh read (which the next poll start may share).
    ///
    /// # Safety
    /// As for [`Producer::record`].
    pub unsafe fn event_time(&self, now: impl FnOnce() -> u64) -> u64 {
        // SAFETY: the caller's contract.
        unsafe {
            self.clock(|c| {
                if !c.in_poll {
                    c.last = self.read(now);
                    c.shareable = true;
                }
                c.last
            })
        }
    }

    /// Untraced time passes (an idle CPU, an untraced task's poll): the next poll start
    /// reads the clock, and events until then are not inside a poll.
    ///
    /// # Safety
    /// As for [`Producer::record`].
    pub unsafe fn time_passes(&self) {
        // SAFETY: the caller's contract.
        unsafe {
            self.clock(|c| {
                c.shareable = false;
                c.in_poll = false;
            });
        }
    }

    /// Seals a partly filled frame once it is `ticks` old (checked at each record).
    pub fn set_seal_age(&self, ticks: u64) {
        self.seal_age.store(ticks, Ordering::Relaxed);
    }

    /// Counts `n` events as dropped (also used by the drain for frames it cannot deliver).
    pub fn drop_events(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.unreported.fetch_add(n, Ordering::Relaxed);
    }

    /// Seals the open frame into the ring, or discards it (counted) if the ring is full.
    ///
    /// # Safety
    /// Exclusive access to the encoder (see [`Producer::record`]) with `busy` held.
    unsafe fn seal(&self) {
        self.encoder.with_mut(|enc| {
            self.scratch.with_mut(|scratch| {
                // SAFETY: the caller's contract: nothing else touches the encoder or the
                // scratch buffer now.
                let (enc, scratch) = unsafe { (&mut *enc, &mut *scratch) };
                if enc.is_empty() {
                    return;
                }
                let events = enc.event_count();
                if self.ring.free() < FrameRing::entry_len(scratch.len()) {
                    enc.discard();
                    self.drop_events(u64::from(events));
                    return;
                }
                match enc.finish(scratch) {
                    Ok(n) => {
                        let pushed = self.ring.push(events, &scratch[..n]);
                        debug_assert!(pushed, "the ring had room for the largest frame");
                    }
                    Err(_) => self.drop_events(u64::from(events)),
                }
            });
        });
    }

    /// Encodes one event with timestamp `ts`.
    ///
    /// # Safety
    /// Only one caller at a time per producer: the owning CPU, with interrupts disabled (an
    /// interrupt that records into the same producer would be re-entry, which is counted
    /// as a drop, but only if it cannot interleave with the flag's own update).
    pub unsafe fn record(&self, ts: u64, encode: EncodeFn<'_>) {
        // Only the owning CPU writes `produced` and `busy` (the caller's contract), so
        // plain loads and stores do: no locked instruction on the hot path.
        self.produced
            .store(self.produced.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        if self.busy.load(Ordering::Relaxed) {
            self.drop_events(1);
            return;
        }
        self.busy.store(true, Ordering::Relaxed);
        let encoded = self.encoder.with_mut(|enc| {
            // SAFETY: the caller's contract plus `busy`: exclusive access.
            let enc = unsafe { &mut *enc };
            if enc.is_empty() {
                self.opened_at.store(ts, Ordering::Relaxed);
            }
            encode(enc, ts).is_ok()
        });
        let encoded = encoded || {
            // SAFETY: as above.
            unsafe { self.seal() };
            self.opened_at.store(ts, Ordering::Relaxed);
            // SAFETY: as above.
            self.encoder.with_mut(|enc| encode(unsafe { &mut *enc }, ts).is_ok())
        };
        if !encoded {
            self.drop_events(1);
        } else if ts.wrapping_sub(self.opened_at.load(Ordering::Relaxed)) > self.seal_age.load(Ordering::Relaxed) {
            // SAFETY: as above.
            unsafe { self.seal() };
        }
        self.busy.store(false, Ordering::Relaxed);
    }

    /// Seals the open frame now (before the CPU idles, or before a final drain).
    ///
    /// # Safety
    /// As for [`Producer::record`].
    pub unsafe fn seal_now(&self) {
        if self.busy.swap(true, Ordering::Acquire) {
            return;
        }
        // SAFETY: the caller's contract plus `busy`.
        unsafe { self.seal() };
        self.busy.store(false, Ordering::Release);
    }
}
