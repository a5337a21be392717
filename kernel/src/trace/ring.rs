//! A single-producer, single-consumer ring of sealed frames. The producer is the
//! CPU that owns the ring (task or interrupt context, serialised by disabling
//! interrupts); the consumer is the drain task. Each entry is
//! `len: u32, events: u32, bytes[len]`, so the drain knows how many events it
//! drops when it must.

use alloc::{boxed::Box, vec};
use core::{
    cell::UnsafeCell,
    sync::atomic::{AtomicUsize, Ordering},
};

const HEADER: usize = 8;

/// A byte ring of sealed frames.
pub struct FrameRing {
    buf: Box<[UnsafeCell<u8>]>,
    mask: usize,
    /// Total bytes consumed (monotonic).
    head: AtomicUsize,
    /// Total bytes produced (monotonic).
    tail: AtomicUsize,
}

impl core::fmt::Debug for FrameRing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameRing").finish_non_exhaustive()
    }
}

// SAFETY: the producer writes only `[tail, head + cap)` and publishes with a Release
// store of `tail`; the consumer reads only `[head, tail)` and releases it with a
// Release store of `head`. One producer and one consumer at a time (callers' contract).
unsafe impl Sync for FrameRing {}

impl FrameRing {
    /// A ring of `capacity` bytes (a power of two).
    pub fn new(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two());
        let buf: Box<[UnsafeCell<u8>]> = vec![0u8; capacity].into_iter().map(UnsafeCell::new).collect();
        Self {
            buf,
            mask: capacity - 1,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    /// Free bytes.
    pub fn free(&self) -> usize {
        self.buf.len() - (self.tail.load(Ordering::Relaxed) - self.head.load(Ordering::Acquire))
    }

    /// Bytes an entry of `len` frame bytes needs.
    pub const fn entry_len(len: usize) -> usize {
        HEADER + len
    }

    fn write_at(&self, pos: usize, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: the producer owns `[tail, head + cap)` (checked by `push`).
            unsafe { *self.buf[(pos + i) & self.mask].get() = b };
        }
    }

    fn read_at(&self, pos: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: the consumer owns `[head, tail)`.
            *b = unsafe { *self.buf[(pos + i) & self.mask].get() };
        }
    }

    /// Appends a frame holding `events` events. Producer only.
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

    /// Removes the oldest frame, handing `(events, bytes)` to `f` if `f` accepts it:
    /// `f` returns false to leave the frame in the ring (e.g. the output is full).
    /// Consumer only. Returns whether a frame was removed.
    pub fn pop(&self, scratch: &mut [u8], f: impl FnOnce(u32, &[u8]) -> bool) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        if self.tail.load(Ordering::Acquire) == head {
            return false;
        }
        let mut header = [0u8; HEADER];
        self.read_at(head, &mut header);
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let events = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
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
