//! Channels between instances: bounded queues of byte messages. A channel is
//! reached only through a handle in an instance's [`Handles`]; handles are
//! capabilities, copied to a child at `spawn` and never forgeable (an index the
//! instance does not hold traps).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::mem::size_of;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::SpinLock;
use lucid_executor::resource::{CountedOp, Resource, ResourceKind, WaitOp};
use lucid_executor::sync::WaitQueue;

use super::budget::{ALLOCATION_OVERHEAD, Budget, Charge, Refusal};

/// Messages a channel holds before `send` blocks.
pub const CAPACITY: usize = 16;
/// Largest message.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Handles an instance may hold.
pub const MAX_HANDLES: usize = 32;

/// What a channel costs its creator's tree: the shared object with its reference
/// counts and its queue's room for [`CAPACITY`] messages.
pub const CHANNEL_COST: usize =
    size_of::<Channel>() + 2 * size_of::<usize>() + CAPACITY * size_of::<Message>() + 2 * ALLOCATION_OVERHEAD;
/// What a handle costs its holder's tree (a table slot, with room to grow).
pub const HANDLE_COST: usize = 2 * size_of::<Arc<Channel>>();

/// A queued message: a copy of the sender's bytes, charged to the sender's tree
/// until the receiver takes it.
#[derive(Debug)]
pub struct Message {
    bytes: Vec<u8>,
    _charge: Charge,
}

impl Message {
    /// A copy of `bytes` charged to `budget`; refused over budget or when the
    /// kernel heap has no room.
    pub fn copy(bytes: &[u8], budget: &Arc<Budget>) -> Result<Self, Refusal> {
        let charge = budget.charge(bytes.len() + ALLOCATION_OVERHEAD)?;
        let mut copy = Vec::new();
        copy.try_reserve_exact(bytes.len()).map_err(|_| Refusal::NoMemory)?;
        copy.extend_from_slice(bytes);
        Ok(Self {
            bytes: copy,
            _charge: charge,
        })
    }

    /// The message's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// One channel.
#[derive(Debug)]
pub struct Channel {
    /// Room for [`CAPACITY`] messages is reserved up front: queueing never
    /// allocates.
    queue: SpinLock<VecDeque<Message>>,
    /// Handle tables holding this channel.
    holders: AtomicUsize,
    readable: WaitQueue,
    writable: WaitQueue,
    /// [`CHANNEL_COST`], charged to the creator's tree for the channel's life.
    _charge: Charge,
    /// The channel in the trace; waits on `readable` and `writable` are its own.
    resource: Resource,
}

impl Channel {
    /// A new channel charged to `budget`, held by one table.
    #[track_caller]
    fn new(budget: &Arc<Budget>) -> Result<Arc<Self>, Refusal> {
        let charge = budget.charge(CHANNEL_COST)?;
        let mut queue = VecDeque::new();
        queue.try_reserve_exact(CAPACITY).map_err(|_| Refusal::NoMemory)?;
        // The fixed-size object itself (charged above) is the one allocation here
        // that stable Rust offers no fallible form of.
        Ok(Arc::new(Self {
            queue: SpinLock::new(queue),
            holders: AtomicUsize::new(1),
            readable: WaitQueue::untracked(),
            writable: WaitQueue::untracked(),
            _charge: charge,
            resource: Resource::new(ResourceKind::WasmChannel, "", Some(CAPACITY as u64)),
        }))
    }

    /// True when no other instance holds the channel (nobody can answer).
    fn alone(&self) -> bool {
        self.holders.load(Ordering::Acquire) <= 1
    }

    /// Queues `msg`, waiting while the channel is full. `false` if no other
    /// instance holds the channel.
    pub async fn send(&self, msg: Message) -> bool {
        loop {
            if self.alone() {
                return false;
            }
            {
                let mut q = self.queue.lock();
                if q.len() < CAPACITY {
                    q.push_back(msg);
                    drop(q);
                    self.resource.count(CountedOp::Send);
                    self.readable.wake();
                    return true;
                }
            }
            let _ = self.writable.wait_for(self.resource.id(), WaitOp::Send).await;
        }
    }

    /// The next message, waiting while the channel is empty; `None` once it is
    /// empty and no other instance holds it.
    pub async fn recv(&self) -> Option<Message> {
        loop {
            if let Some(m) = self.queue.lock().pop_front() {
                self.resource.count(CountedOp::Recv);
                self.writable.wake();
                return Some(m);
            }
            if self.alone() {
                return None;
            }
            let _ = self.readable.wait_for(self.resource.id(), WaitOp::Recv).await;
        }
    }
}

/// Why `chan_create` gave no handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateError {
    /// The instance holds [`MAX_HANDLES`].
    TableFull,
    /// The tree's budget or the kernel heap refused.
    NoMemory,
}

/// An instance's handles: index = handle. The table is charged to the
/// instance's tree.
#[derive(Debug)]
pub struct Handles {
    slots: Vec<Arc<Channel>>,
    charge: Charge,
}

impl Handles {
    /// An empty table charging `budget`.
    pub fn new(budget: &Arc<Budget>) -> Self {
        Self {
            slots: Vec::new(),
            charge: Charge::none(budget),
        }
    }

    /// A new channel's handle.
    #[track_caller]
    pub fn create(&mut self) -> Result<u32, CreateError> {
        if self.slots.len() >= MAX_HANDLES {
            return Err(CreateError::TableFull);
        }
        self.charge.grow(HANDLE_COST).map_err(|_| CreateError::NoMemory)?;
        self.slots.try_reserve(1).map_err(|_| CreateError::NoMemory)?;
        let ch = Channel::new(self.charge.budget()).map_err(|_| CreateError::NoMemory)?;
        self.slots.push(ch);
        Ok(self.slots.len() as u32 - 1)
    }

    /// The channel behind `handle`, if this table holds it.
    pub fn get(&self, handle: i32) -> Option<Arc<Channel>> {
        usize::try_from(handle).ok().and_then(|i| self.slots.get(i)).cloned()
    }

    /// Copies of every handle, for a child instance in the same tree.
    pub fn share(&self) -> Result<Self, Refusal> {
        let budget = self.charge.budget();
        let charge = budget.charge(self.slots.len() * HANDLE_COST)?;
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(self.slots.len())
            .map_err(|_| Refusal::NoMemory)?;
        for ch in &self.slots {
            ch.holders.fetch_add(1, Ordering::AcqRel);
            slots.push(ch.clone());
        }
        Ok(Self { slots, charge })
    }

    /// The tree budget this table charges.
    pub fn budget(&self) -> &Arc<Budget> {
        self.charge.budget()
    }
}

impl Drop for Handles {
    fn drop(&mut self) {
        for ch in &self.slots {
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
