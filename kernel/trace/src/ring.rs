//! A single-producer, single-consumer ring of sealed frames.

use alloc::boxed::Box;

use crate::loom::{AtomicUsize, Ordering, UnsafeCell};

const HEADER: usize = 8;

/// A byte ring of sealed frames: `len: u32, events: u32, bytes[len]` per entry.
pub struct FrameRing {
    buf: Box<[UnsafeCell<u8>]>,
    mask: usize,
    /// Total bytes consumed (monotonic; wraps only after 2^64 bytes).
    head: AtomicUsize,
    /// Total bytes produced (monotonic).
    tail: AtomicUsize,
}

impl core::fmt::Debug for FrameRing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameRing")
            .field("capacity", &self.buf.len())
            .field("used", &(self.buf.len() - self.free()))
            .finish()
    }
}

// SAFETY: the producer writes only bytes in `[tail, head + capacity)` and publishes them
// with a Release store of `tail`; the consumer reads only `[head, tail)` (after an
// Acquire load of `tail`) and gives them back with a Release store of `head`, which the
// producer loads with Acquire before reusing them. One producer and one consumer at a
// time is the callers' contract (`push` and `pop` say so).
unsafe impl Sync for FrameRing {}
// SAFETY: the ring owns its buffer; nothing in it is tied to a thread.
unsafe impl Send for FrameRing {}

impl FrameRing {
    /// A ring of `capacity` bytes (a power of two).
    ///
    /// # Panics
    /// When `capacity` is not a power of two.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two(), "ring capacity must be a power of two");
        let buf: Box<[UnsafeCell<u8>]> = (0..capacity).map(|_| UnsafeCell::new(0)).collect();
        Self {
            buf,
            mask: capacity - 1,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Free bytes (exact for the producer, a lower bound for anyone else).
    pub fn free(&self) -> usize {
        self.buf.len() - (self.tail.load(Ordering::Relaxed) - self.head.load(Ordering::Acquire))
    }

    /// Bytes an entry of `len` frame bytes takes.
    pub const fn entry_len(len: usize) -> usize {
        HEADER + len
    }

    fn write_at(&self, pos: usize, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: the producer owns `[tail, head + capacity)`, which `push` checked
            // covers `pos..pos + bytes.len()`.
            self.buf[(pos + i) & self.mask].with_mut(|p| unsafe { p.write(b) });
        }
    }

    fn read_at(&self, pos: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: the consumer owns `[head, tail)`, which `pop` checked covers
            // `pos..pos + out.len()`.
            *b = self.buf[(pos + i) & self.mask].with(|p| unsafe { p.read() });
        }
    }

    /// Appends a frame holding `events` events; false if it does not fit.
    /// Only the ring's one producer may call this.
    pub fn push(&self, events: u32, frame: &[u8]) -> bool {
        let need = Self::entry_len(frame.len());
        if self.free() < need {
            return false;
        }
        let tail = self.tail.load(Ordering::Relaxed);
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        header[4..].copy_from_slice(&events.to_le_bytes());
        self.write_at(tail, &header);
        self.write_at(tail + HEADER, frame);
        self.tail.store(tail + need, Ordering::Release);
        true
    }

    /// Hands the oldest frame `(events, bytes)` to `f`, copied into `scratch` (which
    /// must hold the largest frame pushed). If `f` returns false the frame stays for
    /// later (e.g. the output is full). Only the ring's one consumer may call this.
    /// Returns whether a frame was removed.
    pub fn pop(&self, scratch: &mut [u8], f: impl FnOnce(u32, &[u8]) -> bool) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        if self.tail.load(Ordering::Acquire) == head {
            return false;
        }
        let mut header = [0u8; HEADER];
        self.read_at(head, &mut header);
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let events = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let frame = &mut scratch[..len];
        self.read_at(head + HEADER, frame);
        if !f(events, frame) {
            return false;
        }
        self.head.store(head + HEADER + len, Ordering::Release);
        true
    }

    /// True when no frame is waiting.
    pub fn is_empty(&self) -> bool {
        self.tail.load(Ordering::Acquire) == self.head.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn frames_come_out_in_order_across_the_wrap() {
        let ring = FrameRing::new(64);
        let mut scratch = [0u8; 64];
        for round in 0u8..50 {
            let frame = [round; 13];
            assert!(ring.push(u32::from(round), &frame));
            assert!(ring.pop(&mut scratch, |events, bytes| {
                assert_eq!(events, u32::from(round));
                assert_eq!(bytes, frame);
                true
            }));
        }
        assert!(ring.is_empty());
    }

    #[test]
    fn a_full_ring_refuses_and_a_refused_pop_keeps_the_frame() {
        let ring = FrameRing::new(32);
        assert!(ring.push(1, &[1; 20]));
        assert!(!ring.push(2, &[2; 8]), "20 + 8 header + 8 + 8 header > 32");
        let mut scratch = [0u8; 32];
        assert!(!ring.pop(&mut scratch, |_, _| false));
        assert!(!ring.is_empty());
        assert!(ring.pop(&mut scratch, |events, bytes| events == 1 && bytes == [1; 20]));
        assert!(ring.push(2, &[2; 8]));
        assert_eq!(ring.free(), 32 - 16);
    }
}
