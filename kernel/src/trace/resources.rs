//! The resource hooks: primitives' creation and drop, and the waits tasks begin
//! and end on them (reported by the executor's `resource` module only on the path
//! that waits), as trace events.
//!
//! Live resources and waits in progress are also kept in two fixed tables, so the
//! answer to a snapshot request carries them to a console that connects late. The
//! tables take no lock and never allocate: a slot is claimed with a compare-exchange
//! among a few slots from the key's hash and freed with a store; a resource or wait
//! that finds no free slot is only missing from snapshots. A resource's slot also
//! holds its operation counts and the holders of its handles (a channel's
//! senders), which the executor updates in place.

use core::panic::Location;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use lucid_executor::holders::HolderSet;
use lucid_executor::resource::{CountedOp, OpCounts, ResourceHooks, ResourceKind, WaitOp, WaitOutcome};
use lucid_protocol::{self as proto, Message};

use super::{message, sched_current_task, traced, wire_task};

/// Longest resource name the trace carries (names are `&'static str` literals in
/// practice; the cut keeps any record inside a frame).
const MAX_NAME: usize = 64;

/// `name` cut to [`MAX_NAME`] bytes at a character boundary.
fn cut(name: &str) -> &str {
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The hooks instance to install with `lucid_executor::resource::install`.
pub static HOOKS: &dyn ResourceHooks = &ResourceTrace;

/// Emits resource and wait events.
#[derive(Debug)]
pub struct ResourceTrace;

fn kind(kind: ResourceKind) -> proto::ResourceKind {
    match kind {
        ResourceKind::Channel => proto::ResourceKind::Channel,
        ResourceKind::Oneshot => proto::ResourceKind::Oneshot,
        ResourceKind::Semaphore => proto::ResourceKind::Semaphore,
        ResourceKind::Mutex => proto::ResourceKind::Mutex,
        ResourceKind::WaitQueue => proto::ResourceKind::WaitQueue,
        ResourceKind::Timer => proto::ResourceKind::Timer,
        ResourceKind::Join => proto::ResourceKind::Join,
        ResourceKind::WasmChannel => proto::ResourceKind::WasmChannel,
        ResourceKind::Frame => proto::ResourceKind::Frame,
    }
}

fn op(op: WaitOp) -> proto::WaitOp {
    match op {
        WaitOp::Recv => proto::WaitOp::Recv,
        WaitOp::Send => proto::WaitOp::Send,
        WaitOp::Acquire => proto::WaitOp::Acquire,
        WaitOp::Lock => proto::WaitOp::Lock,
        WaitOp::Wait => proto::WaitOp::Wait,
        WaitOp::Sleep => proto::WaitOp::Sleep,
        WaitOp::Join => proto::WaitOp::Join,
        WaitOp::Inside => proto::WaitOp::Inside,
    }
}

fn outcome(outcome: WaitOutcome) -> proto::WaitOutcome {
    match outcome {
        WaitOutcome::Ready => proto::WaitOutcome::Ready,
        WaitOutcome::Cancelled => proto::WaitOutcome::Cancelled,
        WaitOutcome::TimedOut => proto::WaitOutcome::TimedOut,
    }
}

impl ResourceHooks for ResourceTrace {
    fn on_created(
        &self,
        id: u64,
        resource_kind: ResourceKind,
        name: &'static str,
        location: &'static Location<'static>,
        capacity: Option<u64>,
    ) -> bool {
        // The drain's own sleeps would feed the stream they wait to move.
        if sched_current_task().is_some_and(|t| !traced(t)) {
            return false;
        }
        LIVE.insert(id, resource_kind, name, location, capacity);
        message(&Message::ResourceCreated(proto::ResourceCreated {
            id: proto::ResourceId(id),
            kind: kind(resource_kind),
            name: cut(name),
            location: proto::Location {
                file: location.file(),
                line: location.line(),
                column: location.column(),
            },
            capacity,
        }));
        true
    }

    fn counters(&self, id: u64) -> Option<&'static OpCounts> {
        LIVE.find(id).map(|slot| &slot.ops)
    }

    fn holders(&self, id: u64) -> Option<&'static HolderSet> {
        LIVE.find(id).map(|slot| &slot.holders)
    }

    fn current_task(&self) -> u64 {
        sched_current_task()
            .filter(|&t| traced(t))
            .map_or(0, |t| wire_task(t).get())
    }

    fn on_holders(&self, id: u64, holders: &HolderSet) {
        message(&holders_message(id, holders));
    }

    fn on_dropped(&self, id: u64) {
        LIVE.remove(id);
        message(&Message::ResourceDropped(proto::ResourceDropped {
            id: proto::ResourceId(id),
        }));
    }

    fn on_wait_begin(&self, id: u64, wait_op: WaitOp) -> Option<u64> {
        let task = sched_current_task().filter(|&t| traced(t))?;
        let task = wire_task(task);
        WAITS.insert(task.get(), id, wait_op);
        super::wait(task.get(), id, Ok(op(wait_op)));
        Some(task.get())
    }

    fn on_wait_end(&self, task: u64, id: u64, wait_outcome: WaitOutcome) {
        WAITS.remove(task, id);
        super::wait(task, id, Err(outcome(wait_outcome)));
    }
}

/// Slots of the live-resource table.
const RESOURCE_SLOTS: usize = 4096;
/// Slots of the wait table.
const WAIT_SLOTS: usize = 1024;
/// Slots tried from a key's hash.
const PROBES: usize = 32;
/// A slot's key while its fields are being written.
const CLAIMED: u64 = u64::MAX;
/// `capacity` of a resource without one.
const NO_CAPACITY: u64 = u64::MAX;

/// The first slot to try for `key` in a table of `slots`.
fn home(key: u64, slots: usize) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % slots
}

/// The slots to try for `key`, in order.
fn probes(key: u64, slots: usize) -> impl Iterator<Item = usize> {
    let start = home(key, slots);
    (0..PROBES).map(move |i| (start + i) % slots)
}

/// One live resource; `id` 0 is a free slot.
struct ResourceSlot {
    id: AtomicU64,
    kind: AtomicU8,
    location: AtomicPtr<Location<'static>>,
    name: AtomicPtr<u8>,
    name_len: AtomicUsize,
    capacity: AtomicU64,
    /// Operations done on it (the primitive increments them; static, so a count
    /// racing the drop lands in memory that stays valid).
    ops: OpCounts,
    /// What of `ops` was reported.
    reported: [AtomicU64; CountedOp::ALL.len()],
    /// Who holds its handles (a channel's senders); static for the same reason.
    holders: HolderSet,
}

/// The `Holders` message of resource `id`.
fn holders_message(id: u64, holders: &HolderSet) -> Message<'static> {
    let (tasks, unknown) = holders.read();
    Message::Holders(proto::Holders {
        resource: proto::ResourceId(id),
        tasks: tasks.map(|t| (t != 0).then_some(proto::TaskId(t))),
        unknown,
    })
}

impl ResourceSlot {
    /// Sends a `ResourceOps` for each operation counted since the last report.
    fn report_ops(&self, id: u64, mut send: impl FnMut(&Message<'_>)) {
        for (i, &counted) in CountedOp::ALL.iter().enumerate() {
            let now = self.ops.get(counted);
            let before = self.reported[i].swap(now, Ordering::Relaxed);
            if now > before {
                send(&Message::ResourceOps(proto::ResourceOps {
                    id: proto::ResourceId(id),
                    op: counted_op(counted),
                    count: now - before,
                }));
            }
        }
    }
}

fn counted_op(counted: CountedOp) -> proto::WaitOp {
    match counted {
        CountedOp::Send => proto::WaitOp::Send,
        CountedOp::Recv => proto::WaitOp::Recv,
        CountedOp::Acquire => proto::WaitOp::Acquire,
        CountedOp::Lock => proto::WaitOp::Lock,
    }
}

/// Sends the operations counted on every live resource since their last report
/// (the drain calls it now and then: counts go out as deltas, not an event per
/// operation).
pub fn report_ops(mut send: impl FnMut(&Message<'_>)) {
    for slot in &LIVE.slots {
        let id = slot.id.load(Ordering::Acquire);
        if id != 0 && id != CLAIMED {
            slot.report_ops(id, &mut send);
        }
    }
}

/// Live resources.
struct LiveResources {
    slots: [ResourceSlot; RESOURCE_SLOTS],
}

const KINDS: [ResourceKind; 9] = [
    ResourceKind::Channel,
    ResourceKind::Oneshot,
    ResourceKind::Semaphore,
    ResourceKind::Mutex,
    ResourceKind::WaitQueue,
    ResourceKind::Timer,
    ResourceKind::Join,
    ResourceKind::WasmChannel,
    ResourceKind::Frame,
];

static LIVE: LiveResources = LiveResources {
    slots: [const {
        ResourceSlot {
            id: AtomicU64::new(0),
            kind: AtomicU8::new(0),
            location: AtomicPtr::new(ptr::null_mut()),
            name: AtomicPtr::new(ptr::null_mut()),
            name_len: AtomicUsize::new(0),
            capacity: AtomicU64::new(NO_CAPACITY),
            ops: OpCounts::new(),
            reported: [const { AtomicU64::new(0) }; CountedOp::ALL.len()],
            holders: HolderSet::new(),
        }
    }; RESOURCE_SLOTS],
};

impl LiveResources {
    fn insert(
        &self,
        id: u64,
        kind: ResourceKind,
        name: &'static str,
        location: &'static Location<'static>,
        capacity: Option<u64>,
    ) {
        for i in probes(id, RESOURCE_SLOTS) {
            let slot = &self.slots[i];
            if slot
                .id
                .compare_exchange(0, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                let kind_index = KINDS.iter().position(|&k| k == kind).unwrap_or(0);
                slot.kind.store(kind_index as u8, Ordering::Relaxed);
                slot.location
                    .store(ptr::from_ref(location).cast_mut(), Ordering::Relaxed);
                slot.name.store(name.as_ptr().cast_mut(), Ordering::Relaxed);
                slot.name_len.store(name.len(), Ordering::Relaxed);
                slot.capacity.store(capacity.unwrap_or(NO_CAPACITY), Ordering::Relaxed);
                slot.ops.reset();
                for r in &slot.reported {
                    r.store(0, Ordering::Relaxed);
                }
                slot.holders.reset();
                slot.id.store(id, Ordering::Release);
                return;
            }
        }
    }

    fn find(&self, id: u64) -> Option<&ResourceSlot> {
        probes(id, RESOURCE_SLOTS)
            .map(|i| &self.slots[i])
            .find(|slot| slot.id.load(Ordering::Acquire) == id)
    }

    fn remove(&self, id: u64) {
        if let Some(slot) = self.find(id) {
            // What was done since the last report goes out with the drop.
            slot.report_ops(id, message);
            slot.id.store(0, Ordering::Release);
        }
    }
}

/// One wait in progress; `task` 0 is a free slot.
struct WaitSlot {
    task: AtomicU64,
    resource: AtomicU64,
    op: AtomicU8,
    /// When it began, in begin order over all waits: a snapshot answer repeats the
    /// waits in that order, so a task's frames keep their nesting.
    seq: AtomicU64,
}

/// The begin order of waits (see [`WaitSlot::seq`]).
static WAIT_SEQ: AtomicU64 = AtomicU64::new(0);

/// Waits in progress.
struct Waits {
    slots: [WaitSlot; WAIT_SLOTS],
}

const OPS: [WaitOp; 8] = [
    WaitOp::Recv,
    WaitOp::Send,
    WaitOp::Acquire,
    WaitOp::Lock,
    WaitOp::Wait,
    WaitOp::Sleep,
    WaitOp::Join,
    WaitOp::Inside,
];

static WAITS: Waits = Waits {
    slots: [const {
        WaitSlot {
            task: AtomicU64::new(0),
            resource: AtomicU64::new(0),
            op: AtomicU8::new(0),
            seq: AtomicU64::new(0),
        }
    }; WAIT_SLOTS],
};

impl Waits {
    fn key(task: u64, resource: u64) -> u64 {
        task.rotate_left(32) ^ resource
    }

    fn insert(&self, task: u64, resource: u64, wait_op: WaitOp) {
        for i in probes(Self::key(task, resource), WAIT_SLOTS) {
            let slot = &self.slots[i];
            if slot
                .task
                .compare_exchange(0, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                slot.resource.store(resource, Ordering::Relaxed);
                let op_index = OPS.iter().position(|&o| o == wait_op).unwrap_or(0);
                slot.op.store(op_index as u8, Ordering::Relaxed);
                slot.seq
                    .store(WAIT_SEQ.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
                slot.task.store(task, Ordering::Release);
                return;
            }
        }
    }

    fn remove(&self, task: u64, resource: u64) {
        for i in probes(Self::key(task, resource), WAIT_SLOTS) {
            let slot = &self.slots[i];
            if slot.task.load(Ordering::Acquire) == task && slot.resource.load(Ordering::Relaxed) == resource {
                slot.task.store(0, Ordering::Release);
                return;
            }
        }
    }
}

/// Calls `send` with a `ResourceCreated` for every live resource, then a
/// `WaitBegin` for every wait in progress: the resource part of a snapshot answer.
pub fn snapshot(mut send: impl FnMut(&Message<'_>)) {
    for slot in &LIVE.slots {
        let id = slot.id.load(Ordering::Acquire);
        if id == 0 || id == CLAIMED {
            continue;
        }
        let location = slot.location.load(Ordering::Relaxed);
        let name_ptr = slot.name.load(Ordering::Relaxed);
        if location.is_null() || name_ptr.is_null() {
            continue;
        }
        // SAFETY: both were stored from `&'static` references by `insert` before
        // the Release store of `id` this Acquire load saw.
        let (location, name) = unsafe {
            (
                &*location,
                core::str::from_utf8_unchecked(core::slice::from_raw_parts(
                    name_ptr,
                    slot.name_len.load(Ordering::Relaxed),
                )),
            )
        };
        let capacity = slot.capacity.load(Ordering::Relaxed);
        let kind_index = usize::from(slot.kind.load(Ordering::Relaxed));
        send(&Message::ResourceCreated(proto::ResourceCreated {
            id: proto::ResourceId(id),
            kind: kind(KINDS.get(kind_index).copied().unwrap_or(ResourceKind::Channel)),
            name: cut(name),
            location: proto::Location {
                file: location.file(),
                line: location.line(),
                column: location.column(),
            },
            capacity: (capacity != NO_CAPACITY).then_some(capacity),
        }));
        if !slot.holders.is_empty() {
            send(&holders_message(id, &slot.holders));
        }
    }
    // In begin order (the drain's snapshot, not a hot path, may allocate).
    let mut waits: alloc::vec::Vec<(u64, u64, u64, u8)> = WAITS
        .slots
        .iter()
        .filter_map(|slot| {
            let task = slot.task.load(Ordering::Acquire);
            (task != 0 && task != CLAIMED).then(|| {
                (
                    slot.seq.load(Ordering::Relaxed),
                    task,
                    slot.resource.load(Ordering::Relaxed),
                    slot.op.load(Ordering::Relaxed),
                )
            })
        })
        .collect();
    waits.sort_unstable_by_key(|w| w.0);
    for (_, task, resource, op_index) in waits {
        send(&Message::WaitBegin(proto::WaitBegin {
            task: proto::TaskId(task),
            resource: proto::ResourceId(resource),
            op: op(OPS.get(usize::from(op_index)).copied().unwrap_or(WaitOp::Wait)),
        }));
    }
}
