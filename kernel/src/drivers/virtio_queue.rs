//! One virtqueue together with the DMA buffers it hands to the device.
//!
//! A buffer belongs to the device from `add` until its token comes back in the used
//! ring; the CPU must not touch it in between, and its memory must stay allocated.
//! [`DmaQueue`] keeps that rule in one place: it owns the queue, the pages behind its
//! buffers (`SLOTS` slots of `slot_bytes` each) and the token of every slot the device
//! holds. Bytes are copied in when a slot is posted and lent out, borrowed from the
//! queue, only once the device has given the slot back.

use virtio_drivers::{queue::VirtQueue, transport::Transport};

use super::dma::{DmaPages, KernelHal, PAGE_BYTES};

/// Why a queue could not be set up or take a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The device refused the queue's configuration.
    Setup(virtio_drivers::Error),
    /// No DMA memory for the queue's buffers.
    NoMemory,
    /// Every slot is with the device.
    Full,
    /// The virtqueue refused a buffer.
    Add(virtio_drivers::Error),
}

impl core::fmt::Display for QueueError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Setup(e) => write!(f, "virtqueue setup: {e}"),
            Self::NoMemory => write!(f, "no DMA memory for virtqueue buffers"),
            Self::Full => write!(f, "every virtqueue buffer is with the device"),
            Self::Add(e) => write!(f, "virtqueue refused a buffer: {e}"),
        }
    }
}

impl core::error::Error for QueueError {}

/// A slot the device holds: how it was added, so it can be popped with the same buffer.
#[derive(Clone, Copy, Debug)]
struct Held {
    token: u16,
    len: usize,
    device_writes: bool,
}

/// A buffer [`DmaQueue::send`] handed to the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    slot: usize,
    token: u16,
    /// Bytes of the data that went into the buffer.
    pub bytes: usize,
}

/// Queue `index` of the device, with `SLOTS` buffers of its own.
pub struct DmaQueue<const SIZE: usize, const SLOTS: usize> {
    queue: VirtQueue<KernelHal, SIZE>,
    index: u16,
    pages: DmaPages,
    slot_bytes: usize,
    held: [Option<Held>; SLOTS],
}

impl<const SIZE: usize, const SLOTS: usize> core::fmt::Debug for DmaQueue<SIZE, SLOTS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DmaQueue")
            .field("index", &self.index)
            .field("slot_bytes", &self.slot_bytes)
            .field("held", &self.held())
            .finish_non_exhaustive()
    }
}

impl<const SIZE: usize, const SLOTS: usize> DmaQueue<SIZE, SLOTS> {
    /// Sets up queue `index` of the device behind `transport` with `SLOTS` buffers of
    /// `slot_bytes` each.
    pub fn new<T: Transport>(transport: &mut T, index: u16, slot_bytes: usize) -> Result<Self, QueueError> {
        let queue = VirtQueue::new(transport, index, false, false).map_err(QueueError::Setup)?;
        let pages = DmaPages::new((SLOTS * slot_bytes).div_ceil(PAGE_BYTES)).ok_or(QueueError::NoMemory)?;
        Ok(Self {
            queue,
            index,
            pages,
            slot_bytes,
            held: [None; SLOTS],
        })
    }

    /// Slots the device holds.
    pub fn held(&self) -> usize {
        self.held.iter().filter(|h| h.is_some()).count()
    }

    /// True while the device holds the buffer `sent` went out in.
    pub fn holds(&self, sent: Sent) -> bool {
        self.held[sent.slot].is_some_and(|h| h.token == sent.token)
    }

    /// Gives every free slot to the device to write into (a receive queue).
    pub fn refill<T: Transport>(&mut self, transport: &mut T) -> Result<(), QueueError> {
        let mut posted = 0;
        let mut result = Ok(());
        for slot in 0..SLOTS {
            if self.held[slot].is_none() {
                match self.post(slot, None) {
                    Ok(_) => posted += 1,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        if posted > 0 && self.queue.should_notify() {
            transport.notify(self.index);
        }
        result
    }

    /// Copies up to one slot of `data` into a free slot and gives it to the device to
    /// read (a transmit queue).
    pub fn send<T: Transport>(&mut self, transport: &mut T, data: &[u8]) -> Result<Sent, QueueError> {
        let slot = self.held.iter().position(Option::is_none).ok_or(QueueError::Full)?;
        let sent = self.post(slot, Some(data))?;
        if self.queue.should_notify() {
            transport.notify(self.index);
        }
        Ok(sent)
    }

    /// Adds `slot` to the queue: holding `data` for the device to read, or (`None`)
    /// whole for the device to write.
    fn post(&mut self, slot: usize, data: Option<&[u8]>) -> Result<Sent, QueueError> {
        debug_assert!(self.held[slot].is_none(), "slot {slot} is with the device");
        let len = data.map_or(self.slot_bytes, |d| d.len().min(self.slot_bytes));
        let mut buffer = self.pages.range(slot * self.slot_bytes, len);
        // SAFETY: the slot is free, so the device does not use its bytes and no reference
        // to them exists (this type lends a slot's bytes out only borrowed from `self`),
        // which makes the unique reference sound. For `add`: from here until `pop_used`
        // returns the token, `held` marks the slot, so this type neither touches its bytes
        // nor posts it again, and the pages stay allocated (`Drop` leaks them while a slot
        // is held).
        let token = unsafe {
            let buffer = buffer.as_mut();
            match data {
                Some(data) => {
                    buffer.copy_from_slice(&data[..len]);
                    self.queue.add(&[&*buffer], &mut [])
                }
                None => self.queue.add(&[], &mut [buffer]),
            }
        }
        .map_err(QueueError::Add)?;
        self.held[slot] = Some(Held {
            token,
            len,
            device_writes: data.is_none(),
        });
        Ok(Sent {
            slot,
            token,
            bytes: len,
        })
    }

    /// Takes back the next buffer the device is done with and lends out its bytes: what
    /// the device wrote (receive) or what was sent (transmit). `None` when the device
    /// has returned nothing.
    pub fn pop_used(&mut self) -> Option<&[u8]> {
        let token = self.queue.peek_used()?;
        let Some(slot) = self.held.iter().position(|h| h.is_some_and(|h| h.token == token)) else {
            log::error!("virtqueue {}: unknown token {token}", self.index);
            return None;
        };
        let held = self.held[slot]?;
        let mut buffer = self.pages.range(slot * self.slot_bytes, held.len);
        // SAFETY: `buffer` is the slot's range with the length and direction `post` added
        // under `token`, as `pop_used` requires. The device has put the token in the used
        // ring, so it is done with the bytes, and no other reference to them exists while
        // the slot is held; the reference returned borrows `self`, so the slot cannot be
        // posted again while it lives.
        let (buffer, popped) = unsafe {
            let buffer = buffer.as_mut();
            let popped = if held.device_writes {
                self.queue.pop_used(token, &[], &mut [&mut *buffer])
            } else {
                self.queue.pop_used(token, &[&*buffer], &mut [])
            };
            (buffer, popped)
        };
        match popped {
            Ok(written) => {
                self.held[slot] = None;
                let len = if held.device_writes {
                    (written as usize).min(held.len)
                } else {
                    held.len
                };
                Some(&buffer[..len])
            }
            Err(e) => {
                log::error!("virtqueue {}: pop of token {token}: {e}", self.index);
                None
            }
        }
    }
}

impl<const SIZE: usize, const SLOTS: usize> Drop for DmaQueue<SIZE, SLOTS> {
    fn drop(&mut self) {
        // A device that was not reset may still write into a held slot: never hand that
        // memory back to the frame allocator.
        if self.held() > 0 {
            self.pages.leak();
        }
    }
}
