//! A single-producer, single-consumer ring of fixed-size record slots.

use alloc::boxed::Box;

use crate::loom::{AtomicUsize, Ordering, UnsafeCell};

/// One ring slot: four words, aligned so a one-slot record is one store burst into
/// one cache line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(32))]
pub struct Slot(pub [u64; 4]);

/// Slots after an entry's first, from its header word (`Slot.0[1]`, bits 8..16).
pub const fn extra_slots(first: &Slot) -> usize {
    let extra = ((first.0[1] >> 8) & 0xff) as usize;
    if extra < MAX_ENTRY_SLOTS {
        extra
    } else {
        MAX_ENTRY_SLOTS - 1
    }
}

/// Most slots one entry takes.
pub const MAX_ENTRY_SLOTS: usize = 1 + 128;

/// A ring of record entries: each entry is one or more [`Slot`]s, the first of which
/// says how many follow ([`extra_slots`]). The producer writes slots with plain
/// stores and publishes them with one Release store of `tail`; the consumer reads
/// `[head, tail)` and gives the slots back with one Release store of `head` per batch.
/// Each side caches the other's index, so the producer reads `head` only when the
/// ring looks full.
pub struct RecordRing {
    slots: Box<[UnsafeCell<Slot>]>,
    mask: usize,
    /// Slots consumed (monotonic).
    head: AtomicUsize,
    /// Slots published (monotonic).
    tail: AtomicUsize,
    /// The producer's last look at `head`.
    head_seen: UnsafeCell<usize>,
}

impl core::fmt::Debug for RecordRing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecordRing")
            .field("slots", &self.slots.len())
            .field("used", &self.used())
            .finish()
    }
}

// SAFETY: the producer writes only slots in `[tail, head + capacity)` and publishes them
// with a Release store of `tail`; the consumer reads only `[head, tail)` (after an
// Acquire load of `tail`) and gives them back with a Release store of `head`, which the
// producer loads with Acquire before reusing them. `head_seen` is the producer's alone.
// One producer and one consumer at a time is the callers' contract (`push` and `drain`
// say so).
unsafe impl Sync for RecordRing {}
// SAFETY: the ring owns its buffer; nothing in it is tied to a thread.
unsafe impl Send for RecordRing {}

impl RecordRing {
    /// A ring of `slots` slots (a power of two).
    ///
    /// # Panics
    /// When `slots` is not a power of two.
    pub fn new(slots: usize) -> Self {
        assert!(slots.is_power_of_two(), "ring capacity must be a power of two");
        let slots: Box<[UnsafeCell<Slot>]> = (0..slots).map(|_| UnsafeCell::new(Slot::default())).collect();
        Self {
            mask: slots.len() - 1,
            slots,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            head_seen: UnsafeCell::new(0),
        }
    }

    /// Capacity in slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Slots in use (exact for either side about its own index, a snapshot otherwise).
    pub fn used(&self) -> usize {
        self.tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head.load(Ordering::Acquire))
    }

    /// True when no entry is waiting.
    pub fn is_empty(&self) -> bool {
        self.used() == 0
    }

    /// Appends the entry `first, extra…` (the header in `first` must say
    /// `extra.len()`); false if it does not fit.
    ///
    /// # Safety
    /// Only the ring's producer calls this, one call at a time.
    #[inline]
    pub unsafe fn push(&self, first: Slot, extra: &[Slot]) -> bool {
        debug_assert_eq!(extra_slots(&first), extra.len());
        let tail = self.tail.load(Ordering::Relaxed);
        let need = 1 + extra.len();
        let fits = self.head_seen.with_mut(|seen| {
            // SAFETY: `head_seen` is the producer's (the caller's contract).
            let seen = unsafe { &mut *seen };
            if tail.wrapping_sub(*seen) + need > self.slots.len() {
                *seen = self.head.load(Ordering::Acquire);
            }
            tail.wrapping_sub(*seen) + need <= self.slots.len()
        });
        if !fits {
            return false;
        }
        // SAFETY: `[tail, head + capacity)` is the producer's, and it covers these.
        self.slots[tail & self.mask].with_mut(|p| unsafe { p.write(first) });
        for (i, slot) in extra.iter().enumerate() {
            // SAFETY: as above.
            self.slots[(tail + 1 + i) & self.mask].with_mut(|p| unsafe { p.write(*slot) });
        }
        self.tail.store(tail + need, Ordering::Release);
        true
    }

    /// Hands each waiting entry to `f` in order, copied into `entry` (which holds
    /// [`MAX_ENTRY_SLOTS`]); stops when the ring is empty or `f` returns false (that
    /// entry is consumed all the same). Returns the entries handed out.
    ///
    /// # Safety
    /// Only the ring's consumer calls this, one call at a time.
    pub unsafe fn drain(&self, entry: &mut [Slot; MAX_ENTRY_SLOTS], mut f: impl FnMut(&[Slot]) -> bool) -> usize {
        let mut head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        let mut taken = 0;
        while head != tail {
            // SAFETY: `[head, tail)` is the consumer's after the Acquire load of `tail`.
            let first = self.slots[head & self.mask].with(|p| unsafe { p.read() });
            let n = 1 + extra_slots(&first);
            entry[0] = first;
            for (i, slot) in entry.iter_mut().enumerate().take(n).skip(1) {
                // SAFETY: as above: the producer published the whole entry at once.
                *slot = self.slots[(head + i) & self.mask].with(|p| unsafe { p.read() });
            }
            head += n;
            taken += 1;
            if !f(&entry[..n]) {
                break;
            }
        }
        self.head.store(head, Ordering::Release);
        taken
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn entry(tag: u64, extra: usize) -> (Slot, alloc::vec::Vec<Slot>) {
        let first = Slot([tag, (extra as u64) << 8, tag, tag]);
        (first, (0..extra).map(|i| Slot([tag, i as u64, 0, 0])).collect())
    }

    #[test]
    fn entries_come_out_whole_and_in_order_across_the_wrap() {
        let ring = RecordRing::new(8);
        let mut buf = [Slot::default(); MAX_ENTRY_SLOTS];
        for round in 0u64..50 {
            let extra = (round % 3) as usize;
            let (first, rest) = entry(round, extra);
            // SAFETY: one thread is both producer and consumer.
            unsafe {
                assert!(ring.push(first, &rest));
                let taken = ring.drain(&mut buf, |got| {
                    assert_eq!(got[0], first);
                    assert_eq!(&got[1..], &rest[..]);
                    true
                });
                assert_eq!(taken, 1);
            }
        }
        assert!(ring.is_empty());
    }

    #[test]
    fn a_full_ring_refuses_until_the_consumer_frees_room() {
        let ring = RecordRing::new(4);
        let mut buf = [Slot::default(); MAX_ENTRY_SLOTS];
        let (a, a_rest) = entry(1, 2);
        let (b, b_rest) = entry(2, 1);
        // SAFETY: one thread is both producer and consumer.
        unsafe {
            assert!(ring.push(a, &a_rest));
            assert!(!ring.push(b, &b_rest), "3 + 2 slots > 4");
            let mut seen = alloc::vec::Vec::new();
            assert_eq!(
                ring.drain(&mut buf, |e| {
                    seen.push(e[0].0[0]);
                    true
                }),
                1
            );
            assert!(ring.push(b, &b_rest));
            assert_eq!(
                ring.drain(&mut buf, |e| {
                    seen.push(e[0].0[0]);
                    false
                }),
                1
            );
            assert_eq!(seen, [1, 2]);
        }
        assert!(ring.is_empty());
    }
}
