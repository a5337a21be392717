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

/// A producer: encoder + sealed-frame ring + counters.
pub struct Producer {
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
            encoder: UnsafeCell::new(encoder),
            scratch: UnsafeCell::new(vec![0u8; sealed_max(frame_bytes)].into_boxed_slice()),
            busy: AtomicBool::new(false),
            opened_at: AtomicU64::new(0),
            seal_age: AtomicU64::new(u64::MAX),
            ring: FrameRing::new(ring_bytes),
            produced: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
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
