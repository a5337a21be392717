//! Resources tasks wait on (channels, semaphores, wait queues, timers, join
//! handles) and the waits themselves, reported to a trace layer.
//!
//! A primitive holds a [`Resource`]: created with a kind, an optional name and
//! its creation site, dropped with the primitive. A future that can wait holds
//! a [`WaitSpan`]: it reports a wait only when the operation returns
//! `Pending`, and its end when the operation completes or the future is
//! dropped. An operation that completes at once costs one compare of a field
//! with zero.
//!
//! With no [`ResourceHooks`] installed resources get id 0 ("untracked") and
//! nothing is reported.

use core::fmt;
use core::panic::Location;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crate::holders::HolderSet;

/// What kind of primitive a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// A bounded multi-producer channel.
    Channel,
    /// A one-value channel.
    Oneshot,
    /// A counting semaphore.
    Semaphore,
    /// An async mutex.
    Mutex,
    /// A wait queue.
    WaitQueue,
    /// One sleep.
    Timer,
    /// A join handle being awaited.
    Join,
    /// A channel between wasm instances.
    WasmChannel,
    /// A named stage of a task ([`crate::frame`]).
    Frame,
}

/// What a waiting task asked a resource for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOp {
    /// A value.
    Recv,
    /// Room for a value.
    Send,
    /// Permits.
    Acquire,
    /// A lock.
    Lock,
    /// A notification.
    Wait,
    /// A deadline.
    Sleep,
    /// Another task's end.
    Join,
    /// Being parked inside a stage ([`crate::frame`]).
    Inside,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The operation completed (granted, or failed because the resource
    /// closed).
    Ready,
    /// The waiting future was dropped first.
    Cancelled,
    /// A deadline ran out first.
    TimedOut,
}

/// What the trace layer records about resources and waits. Called on the
/// waiting path only (and at creation and drop); must not block or call back
/// into the primitives.
pub trait ResourceHooks: Sync {
    /// Resource `id` was created at `location`. Returns whether it is recorded:
    /// one that is not (created by a task the trace leaves out) stays untracked,
    /// its waits and drop unreported.
    fn on_created(
        &self,
        id: u64,
        kind: ResourceKind,
        name: &'static str,
        location: &'static Location<'static>,
        capacity: Option<u64>,
    ) -> bool;
    /// Where resource `id` (just recorded by [`ResourceHooks::on_created`]) counts
    /// the operations done on it, if the trace layer counts them (it reports them
    /// as periodic deltas, not an event per operation).
    fn counters(&self, id: u64) -> Option<&'static OpCounts> {
        let _ = id;
        None
    }
    /// Where resource `id` (a channel or mutex, just recorded) keeps the holders of
    /// its handles or lock ([`crate::holders`]), if the trace layer tracks them.
    fn holders(&self, id: u64) -> Option<&'static HolderSet> {
        let _ = id;
        None
    }
    /// The task running now as the trace names it (0: none, or one the trace
    /// leaves out): who uses a handle.
    fn current_task(&self) -> u64 {
        0
    }
    /// The holders of resource `id`'s handles changed to `holders`.
    fn on_holders(&self, id: u64, holders: &HolderSet) {
        let _ = (id, holders);
    }
    /// Resource `id` was dropped.
    fn on_dropped(&self, id: u64);
    /// The current task got `Pending` from resource `id` doing `op`. Returns
    /// the waiting task as the trace names it (handed back to
    /// [`ResourceHooks::on_wait_end`], which may run in another task's
    /// context), or `None` if the wait is not recorded.
    fn on_wait_begin(&self, id: u64, op: WaitOp) -> Option<u64>;
    /// `task`'s wait on resource `id` ended with `outcome`.
    fn on_wait_end(&self, task: u64, id: u64, outcome: WaitOutcome);
}

static HOOKS: AtomicPtr<&'static dyn ResourceHooks> = AtomicPtr::new(core::ptr::null_mut());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Installs the trace layer's hooks; resources created from now on are
/// reported.
pub fn install(hooks: &'static &'static dyn ResourceHooks) {
    HOOKS.store(core::ptr::from_ref(hooks).cast_mut(), Ordering::Release);
}

#[inline]
pub(crate) fn hooks() -> Option<&'static dyn ResourceHooks> {
    let p = HOOKS.load(Ordering::Acquire);
    // SAFETY: the only non-null value is the `&'static` reference `install`
    // stored.
    unsafe { p.as_ref() }.copied()
}

/// Operations done on one resource, by [`CountedOp`]: plain relaxed increments
/// the trace layer reads and reports as deltas now and then.
#[derive(Debug, Default)]
pub struct OpCounts {
    counts: [AtomicU64; CountedOp::ALL.len()],
}

/// The operations a resource counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountedOp {
    /// A value sent.
    Send,
    /// A value received.
    Recv,
    /// Permits acquired.
    Acquire,
    /// A lock taken.
    Lock,
}

impl CountedOp {
    /// Every counted operation, in [`OpCounts`] order.
    pub const ALL: [CountedOp; 4] = [CountedOp::Send, CountedOp::Recv, CountedOp::Acquire, CountedOp::Lock];
}

impl OpCounts {
    /// No operation counted.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            counts: [const { AtomicU64::new(0) }; CountedOp::ALL.len()],
        }
    }

    /// Counts one `op`.
    #[inline]
    pub fn add(&self, op: CountedOp) {
        self.counts[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// How many `op` were counted.
    #[must_use]
    pub fn get(&self, op: CountedOp) -> u64 {
        self.counts[op as usize].load(Ordering::Relaxed)
    }

    /// Sets every count to zero (a trace layer reusing the storage).
    pub fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// A primitive's identity in the trace; reports its drop.
pub struct Resource {
    id: u64,
    counts: Option<&'static OpCounts>,
    holders: Option<&'static HolderSet>,
}

impl Resource {
    /// A resource created at the caller's location.
    #[track_caller]
    #[must_use]
    pub fn new(kind: ResourceKind, name: &'static str, capacity: Option<u64>) -> Self {
        Self::at(kind, name, capacity, Location::caller())
    }

    /// A resource created at `location`.
    #[must_use]
    pub fn at(
        kind: ResourceKind,
        name: &'static str,
        capacity: Option<u64>,
        location: &'static Location<'static>,
    ) -> Self {
        match hooks() {
            None => Self::untracked(),
            Some(h) => {
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                if h.on_created(id, kind, name, location, capacity) {
                    Self {
                        id,
                        counts: h.counters(id),
                        holders: if matches!(kind, ResourceKind::Channel | ResourceKind::Mutex) {
                            h.holders(id)
                        } else {
                            None
                        },
                    }
                } else {
                    Self::untracked()
                }
            }
        }
    }

    /// A resource that is never reported (parts of another primitive).
    #[must_use]
    pub const fn untracked() -> Self {
        Self {
            id: 0,
            counts: None,
            holders: None,
        }
    }

    /// Counts one `op` done on it (when the trace layer counts them).
    #[inline]
    pub fn count(&self, op: CountedOp) {
        if let Some(c) = self.counts {
            c.add(op);
        }
    }

    /// Where the holders of its handles are kept, if they are tracked.
    #[must_use]
    pub fn holders(&self) -> Option<&'static HolderSet> {
        self.holders
    }

    /// Its id, 0 if untracked.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Resource {
    fn drop(&mut self) {
        if self.id != 0
            && let Some(h) = hooks()
        {
            h.on_dropped(self.id);
        }
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Resource").field(&self.id).finish()
    }
}

/// One future's wait on a resource: begun by [`WaitSpan::pending`], ended by
/// [`WaitSpan::ready`] or by dropping the span. Its fields are atomics (plain
/// loads and stores on x86) so pinned futures update it through a shared
/// reference and stay `Sync`; only the future's owner touches them.
#[derive(Default)]
pub struct WaitSpan {
    /// The resource waited on, 0 while not waiting.
    resource: AtomicU64,
    /// The waiting task as the hooks named it.
    task: AtomicU64,
}

impl WaitSpan {
    /// Not waiting.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            resource: AtomicU64::new(0),
            task: AtomicU64::new(0),
        }
    }

    /// Whether a wait is open.
    #[must_use]
    pub fn is_waiting(&self) -> bool {
        self.resource.load(Ordering::Relaxed) != 0
    }

    /// The operation on `resource` returned `Pending`: begins the wait unless
    /// one is open.
    #[inline]
    pub fn pending(&self, resource: u64, op: WaitOp) {
        if self.resource.load(Ordering::Relaxed) == 0 && resource != 0 {
            self.begin(resource, op);
        }
    }

    #[cold]
    fn begin(&self, resource: u64, op: WaitOp) {
        if let Some(task) = hooks().and_then(|h| h.on_wait_begin(resource, op)) {
            self.task.store(task, Ordering::Relaxed);
            self.resource.store(resource, Ordering::Relaxed);
        }
    }

    /// The operation completed: ends the open wait, if any.
    #[inline]
    pub fn ready(&self) {
        if self.resource.load(Ordering::Relaxed) != 0 {
            self.end(WaitOutcome::Ready);
        }
    }

    /// Ends the open wait, if any, with `outcome`.
    #[cold]
    pub fn end(&self, outcome: WaitOutcome) {
        let resource = self.resource.swap(0, Ordering::Relaxed);
        if resource != 0
            && let Some(h) = hooks()
        {
            h.on_wait_end(self.task.load(Ordering::Relaxed), resource, outcome);
        }
    }
}

impl Drop for WaitSpan {
    fn drop(&mut self) {
        if self.resource.load(Ordering::Relaxed) != 0 {
            self.end(WaitOutcome::Cancelled);
        }
    }
}

impl fmt::Debug for WaitSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitSpan")
            .field("resource", &self.resource.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A wait on a resource that exists only while it is waited on (a sleep, an
/// awaited join handle): the resource is created when the wait begins and
/// dropped when it ends.
#[derive(Default)]
pub struct OwnedWait {
    // Declared first: dropped (ending the wait) before the resource.
    span: WaitSpan,
    resource: AtomicU64,
}

impl OwnedWait {
    /// Not waiting.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            span: WaitSpan::new(),
            resource: AtomicU64::new(0),
        }
    }

    /// The operation returned `Pending`: creates the resource and begins the
    /// wait unless one is open.
    #[inline]
    pub fn pending(
        &self,
        kind: ResourceKind,
        name: &'static str,
        capacity: Option<u64>,
        location: &'static Location<'static>,
        op: WaitOp,
    ) {
        if self.resource.load(Ordering::Relaxed) == 0 {
            self.begin(kind, name, capacity, location, op);
        }
    }

    #[cold]
    fn begin(
        &self,
        kind: ResourceKind,
        name: &'static str,
        capacity: Option<u64>,
        location: &'static Location<'static>,
        op: WaitOp,
    ) {
        if hooks().is_none() {
            return;
        }
        let resource = Resource::at(kind, name, capacity, location);
        let id = core::mem::ManuallyDrop::new(resource).id;
        self.resource.store(id, Ordering::Relaxed);
        self.span.pending(id, op);
    }

    /// The operation completed: ends the wait and drops the resource.
    #[inline]
    pub fn ready(&self) {
        if self.resource.load(Ordering::Relaxed) != 0 {
            self.finish(WaitOutcome::Ready);
        }
    }

    /// Ends the open wait with `outcome` and drops the resource.
    #[cold]
    pub fn finish(&self, outcome: WaitOutcome) {
        self.span.end(outcome);
        let id = self.resource.swap(0, Ordering::Relaxed);
        drop(Resource {
            id,
            counts: None,
            holders: None,
        });
    }
}

impl Drop for OwnedWait {
    fn drop(&mut self) {
        if self.resource.load(Ordering::Relaxed) != 0 {
            self.finish(WaitOutcome::Cancelled);
        }
    }
}

impl fmt::Debug for OwnedWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedWait")
            .field("resource", &self.resource.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
