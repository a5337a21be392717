//! Channels between instances: bounded queues of byte messages. A channel is
//! reached only through a handle in an instance's [`Handles`]; handles are
//! capabilities, copied to a child at `spawn` and never forgeable (an index the
//! instance does not hold traps).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::SpinLock;
use lucid_executor::sync::WaitQueue;

/// Messages a channel holds before `send` blocks.
pub const CAPACITY: usize = 16;
/// Largest message.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Handles an instance may hold.
pub const MAX_HANDLES: usize = 32;

/// One channel.
#[derive(Debug, Default)]
pub struct Channel {
    queue: SpinLock<VecDeque<Vec<u8>>>,
    /// Handle tables holding this channel.
    holders: AtomicUsize,
    readable: WaitQueue,
    writable: WaitQueue,
}

impl Channel {
    /// True when no other instance holds the channel (nobody can answer).
    fn alone(&self) -> bool {
        self.holders.load(Ordering::Acquire) <= 1
    }

    /// Queues `msg`, waiting while the channel is full. `false` if no other
    /// instance holds the channel.
    pub async fn send(&self, msg: Vec<u8>) -> bool {
        loop {
            if self.alone() {
                return false;
            }
            {
                let mut q = self.queue.lock();
                if q.len() < CAPACITY {
                    q.push_back(msg);
                    drop(q);
                    self.readable.wake();
                    return true;
                }
            }
            let _ = self.writable.wait().await;
        }
    }

    /// The next message, waiting while the channel is empty; `None` once it is
    /// empty and no other instance holds it.
    pub async fn recv(&self) -> Option<Vec<u8>> {
        loop {
            if let Some(m) = self.queue.lock().pop_front() {
                self.writable.wake();
                return Some(m);
            }
            if self.alone() {
                return None;
            }
            let _ = self.readable.wait().await;
        }
    }
}

/// An instance's handles: index = handle.
#[derive(Debug, Default)]
pub struct Handles(Vec<Arc<Channel>>);

impl Handles {
    /// A new channel's handle, or `None` if the table is full.
    pub fn create(&mut self) -> Option<u32> {
        if self.0.len() >= MAX_HANDLES {
            return None;
        }
        let ch = Arc::new(Channel::default());
        ch.holders.store(1, Ordering::Release);
        self.0.push(ch);
        Some(self.0.len() as u32 - 1)
    }

    /// The channel behind `handle`, if this table holds it.
    pub fn get(&self, handle: i32) -> Option<Arc<Channel>> {
        usize::try_from(handle).ok().and_then(|i| self.0.get(i)).cloned()
    }

    /// Copies of every handle, for a child instance.
    pub fn share(&self) -> Self {
        for ch in &self.0 {
            ch.holders.fetch_add(1, Ordering::AcqRel);
        }
        Self(self.0.clone())
    }
}

impl Drop for Handles {
    fn drop(&mut self) {
        for ch in &self.0 {
            ch.holders.fetch_sub(1, Ordering::AcqRel);
            // Whoever waits on the other side must see that we are gone; `wake`
            // also covers a waiter that checked just before and waits just after.
            ch.readable.wake_all();
            ch.writable.wake_all();
            ch.readable.wake();
            ch.writable.wake();
        }
    }
}
