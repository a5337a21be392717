//! Who holds the handles that can signal a resource (a channel's senders), so a
//! trace can tell a channel whose only senders are themselves waiting (a
//! deadlock) from one that someone alive can still send on.
//!
//! Rust moves values without running code, so a handle cannot know where it is
//! moved. It knows who *uses* it: a [`Handle`] is held by the task that used it,
//! from its first use on. Before any use, or once tasks other than its first
//! user used it (a shared sender), its holder is unknown, and a trace must not
//! judge waits on its resource. A handle passed on after its last use still
//! counts for the task that used it last until the new holder uses it.
//!
//! The holders of one resource are a [`HolderSet`], a small lock-free multiset
//! the trace layer owns (statically, like [`crate::resource::OpCounts`]); every
//! change of it is reported through [`ResourceHooks::on_holders`], a rare event
//! (a handle's creation, first use, sharing and drop), never one per operation.
//!
//! A mutex is held by the task that took its lock, exactly (unless its guard is
//! moved to another task). Its lock changes hands at every use, so the holder is
//! stored in place ([`taken`], [`released`]) and reported only when it matters:
//! when a task begins to wait for the lock ([`waiting_on`]) and when a task that
//! waited takes it.

use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::resource::{Resource, ResourceHooks};

/// Tasks a [`HolderSet`] names; more holders are counted as unknown.
pub const NAMED_HOLDERS: usize = 4;

/// The holders of one resource's handles: up to [`NAMED_HOLDERS`] tasks (as the
/// trace names them; a task holding two handles is named twice) and a count of
/// handles whose holder is unknown.
#[derive(Debug)]
pub struct HolderSet {
    tasks: [AtomicU64; NAMED_HOLDERS],
    unknown: AtomicU32,
}

impl Default for HolderSet {
    fn default() -> Self {
        Self::new()
    }
}

impl HolderSet {
    /// No holder.
    #[cfg(not(loom))]
    #[must_use]
    pub const fn new() -> Self {
        Self {
            tasks: [const { AtomicU64::new(0) }; NAMED_HOLDERS],
            unknown: AtomicU32::new(0),
        }
    }

    /// No holder.
    #[cfg(loom)]
    #[must_use]
    pub fn new() -> Self {
        Self {
            tasks: core::array::from_fn(|_| AtomicU64::new(0)),
            unknown: AtomicU32::new(0),
        }
    }

    /// Adds a handle held by `task` (0: unknown).
    pub fn add(&self, task: u64) {
        if task != 0 {
            for slot in &self.tasks {
                if slot
                    .compare_exchange(0, task, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            }
        }
        self.unknown.fetch_add(1, Ordering::AcqRel);
    }

    /// Removes a handle held by `task` (0: unknown). A task that found no free
    /// slot when added was counted as unknown, and is taken from that count.
    pub fn remove(&self, task: u64) {
        if task != 0 {
            for slot in &self.tasks {
                if slot
                    .compare_exchange(task, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            }
        }
        let _ = self
            .unknown
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// The named holders (0: an empty slot) and the count of unknown ones.
    #[must_use]
    pub fn read(&self) -> ([u64; NAMED_HOLDERS], u32) {
        let mut tasks = [0; NAMED_HOLDERS];
        for (t, slot) in tasks.iter_mut().zip(&self.tasks) {
            *t = slot.load(Ordering::Acquire);
        }
        (tasks, self.unknown.load(Ordering::Acquire))
    }

    /// Whether no handle is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        let (tasks, unknown) = self.read();
        unknown == 0 && tasks.iter().all(|&t| t == 0)
    }

    /// The one holder of an exclusive resource (a mutex) is now `task` (0: unknown).
    /// Plain stores: taking a mutex must stay cheap.
    pub fn hold(&self, task: u64) {
        self.tasks[0].store(task, Ordering::Release);
        self.unknown.store(u32::from(task == 0), Ordering::Release);
    }

    /// An exclusive resource (a mutex) is held by nobody: the two stores of
    /// [`HolderSet::hold`] undone.
    pub fn release(&self) {
        self.tasks[0].store(0, Ordering::Release);
        self.unknown.store(0, Ordering::Release);
    }

    /// Empties it (a trace layer reusing the storage).
    pub fn reset(&self) {
        for slot in &self.tasks {
            slot.store(0, Ordering::Release);
        }
        self.unknown.store(0, Ordering::Release);
    }
}

/// The current task took exclusive resource `resource` (a mutex's lock):
/// recorded in place, and reported when it `waited` for it (another task may wait
/// too, and must be judged against the new holder). Uncontended, this costs a
/// call naming the current task and two stores.
pub fn taken(resource: &Resource, waited: bool) {
    if let (Some(set), Some(hooks)) = (resource.holders(), crate::resource::hooks()) {
        set.hold(hooks.current_task());
        if waited {
            report(hooks, resource, set);
        }
    }
}

/// Exclusive resource `resource` was released (its next holder, if one waits,
/// reports when it takes it).
pub fn released(resource: &Resource) {
    if let Some(set) = resource.holders() {
        set.release();
    }
}

/// A task began waiting on exclusive resource `resource`: reports who holds it.
pub fn waiting_on(resource: &Resource) {
    if let (Some(set), Some(hooks)) = (resource.holders(), crate::resource::hooks()) {
        report(hooks, resource, set);
    }
}

/// [`Handle::holder`] before any use.
const UNUSED: u64 = 0;
/// [`Handle::holder`] once used by more than one task.
const SHARED: u64 = u64::MAX;

/// One handle of a resource (a sender), tracking its holder. The primitive
/// calls [`Handle::used`] on each use and [`Handle::release`] when it drops.
#[derive(Debug)]
pub struct Handle {
    /// `UNUSED`, `SHARED`, or the task that used it.
    holder: AtomicU64,
}

/// The set entry of a handle's holder value (0: unknown).
fn entry(holder: u64) -> u64 {
    if holder == SHARED { 0 } else { holder }
}

fn report(hooks: &dyn ResourceHooks, resource: &Resource, set: &HolderSet) {
    hooks.on_holders(resource.id(), set);
}

impl Handle {
    /// A new handle of `resource`, its holder unknown until used.
    #[must_use]
    pub fn new(resource: &Resource) -> Self {
        if let (Some(set), Some(hooks)) = (resource.holders(), crate::resource::hooks()) {
            set.add(0);
            report(hooks, resource, set);
        }
        Self {
            holder: AtomicU64::new(UNUSED),
        }
    }

    /// The current task used it. Costs one load and a compare when the holder is
    /// already known to be the current task or shared (and nothing on an
    /// untracked resource).
    #[inline]
    pub fn used(&self, resource: &Resource) {
        if let Some(set) = resource.holders() {
            let held = self.holder.load(Ordering::Relaxed);
            if held != SHARED {
                self.changed_hands(resource, set, held);
            }
        }
    }

    fn changed_hands(&self, resource: &Resource, set: &HolderSet, held: u64) {
        let Some(hooks) = crate::resource::hooks() else {
            return;
        };
        let now = hooks.current_task();
        if now == held {
            return;
        }
        // Known only from a first use inside a traced task; any other change means
        // several users: unknown for good.
        let next = if held == UNUSED && now != 0 { now } else { SHARED };
        if self
            .holder
            .compare_exchange(held, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            // A concurrent use changed it; that use reports.
            return;
        }
        if entry(held) != entry(next) {
            set.add(entry(next));
            set.remove(entry(held));
            report(hooks, resource, set);
        }
    }

    /// The handle is dropped.
    pub fn release(&self, resource: &Resource) {
        if let (Some(set), Some(hooks)) = (resource.holders(), crate::resource::hooks()) {
            set.remove(entry(self.holder.load(Ordering::Relaxed)));
            report(hooks, resource, set);
        }
    }
}
