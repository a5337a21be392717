//! Kernel memory budgets: every byte a hostcall makes the kernel hold for a guest
//! (channels, queued messages, handle tables, child instances) is charged to the
//! guest's instance tree (the instance the kernel started and every instance
//! spawned under it) before it is allocated, and credited back when it is freed.
//! A tree is limited by its root's manifest budget, and all trees together by
//! [`KERNEL_LIMIT`], so guests can never pin more than that much kernel heap.

use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use lucid_wasm::abi::MAX_TREE_INSTANCES;

/// Bytes all instance trees together may hold through hostcalls.
pub const KERNEL_LIMIT: usize = 32 * 1024 * 1024;
/// What a spawned child costs its tree besides its handle table: its store,
/// instance, task and bookkeeping on the kernel heap (its linear memory is
/// limited by its own `max_memory_pages`).
pub const CHILD_COST: usize = 32 * 1024;
/// Allocator overhead charged with every allocation.
pub const ALLOCATION_OVERHEAD: usize = 16;

/// Bytes charged to all trees now.
static CHARGED: AtomicUsize = AtomicUsize::new(0);

/// Bytes charged to all instance trees now (tests compare it before and after).
pub fn charged() -> usize {
    CHARGED.load(Ordering::Acquire)
}

/// Why a charge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The tree's budget (or [`KERNEL_LIMIT`], or the kernel heap) has no room.
    NoMemory,
    /// The tree has [`MAX_TREE_INSTANCES`] live instances.
    TooManyInstances,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMemory => write!(f, "the instance tree's kernel memory budget is used up"),
            Self::TooManyInstances => write!(f, "the instance tree has {MAX_TREE_INSTANCES} live instances"),
        }
    }
}

impl core::error::Error for Refusal {}

/// One instance tree's budget.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    instances: AtomicUsize,
}

impl Budget {
    /// A new tree's budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            instances: AtomicUsize::new(0),
        })
    }

    /// Bytes charged to this tree now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The tree's limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Charges `bytes`, or refuses if the tree or the kernel would go over.
    pub fn charge(self: &Arc<Self>, bytes: usize) -> Result<Charge, Refusal> {
        let mut charge = Charge {
            budget: self.clone(),
            bytes: 0,
        };
        charge.grow(bytes)?;
        Ok(charge)
    }

    fn take(&self, bytes: usize) -> Result<(), Refusal> {
        let limit = self.limit;
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(bytes).filter(|&n| n <= limit)
            })
            .map_err(|_| Refusal::NoMemory)?;
        let global = CHARGED.fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
            u.checked_add(bytes).filter(|&n| n <= KERNEL_LIMIT)
        });
        if global.is_err() {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
            return Err(Refusal::NoMemory);
        }
        Ok(())
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        CHARGED.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Counts one more live instance in the tree, or refuses past
    /// [`MAX_TREE_INSTANCES`].
    pub fn join(self: &Arc<Self>) -> Result<Member, Refusal> {
        self.instances
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_TREE_INSTANCES).then_some(n + 1)
            })
            .map_err(|_| Refusal::TooManyInstances)?;
        Ok(Member(self.clone()))
    }
}

/// Bytes charged to a budget, given back when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Charge {
    /// A charge of nothing (to [`grow`](Self::grow) later).
    pub fn none(budget: &Arc<Budget>) -> Self {
        Self {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    /// Charges `bytes` more, or refuses (the charge is unchanged).
    pub fn grow(&mut self, bytes: usize) -> Result<(), Refusal> {
        self.budget.take(bytes)?;
        self.bytes += bytes;
        Ok(())
    }

    /// The budget charged.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// A live instance of a tree, counted until dropped.
#[derive(Debug)]
pub struct Member(Arc<Budget>);

impl Member {
    /// The tree's budget.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.0
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.0.instances.fetch_sub(1, Ordering::AcqRel);
    }
}
