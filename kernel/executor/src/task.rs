//! Tasks: the allocation, its type-erased handle, wakers and `JoinHandle`.
//!
//! See the crate documentation for the state machine and the join waker
//! rules; this module is where they are implemented.

pub(crate) mod state;
mod stats;

use alloc::boxed::Box;
use core::any::type_name;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::mem::{self, ManuallyDrop};
use core::panic::Location;
use core::pin::Pin;
use core::ptr::{self, NonNull};
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use cordyceps::{Linked, list, mpsc_queue};

use self::state::{CANCELLED, COMPLETE, EndPoll, PANICKED, POLLING, StartPoll, State, WOKEN, WakeAction};
pub use self::stats::{TaskCounters, TaskStats};
use crate::hooks::Outcome;
use crate::loom::atomic::{AtomicUsize, Ordering::*};
use crate::loom::cell::UnsafeCell;
use crate::platform::{PanicCaught, TaskPanic};
use crate::registry::{LiveState, LiveTask};
use crate::resource::{OwnedWait, ResourceKind, WaitOp};
use crate::runtime::Runtime;

/// A task's identity, unique among the tasks of one [`Runtime`] for its whole
/// life (ids are never reused). [`TaskId::STUB`] marks run-queue stubs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub(crate) u64);

impl TaskId {
    /// The id every run-queue stub carries; no spawned task has it.
    pub const STUB: TaskId = TaskId(0);

    /// The id as a number, as the trace carries it.
    #[must_use]
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task#{}", self.0)
    }
}

/// What a task runs on behalf of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TaskKind {
    /// A kernel service.
    #[default]
    Kernel,
    /// A WebAssembly instance.
    Wasm,
}

/// The result of polling a task once, as the scheduler acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PollResult {
    /// The task completed and nobody was waiting on its `JoinHandle`.
    Ready,
    /// The task completed and its `JoinHandle`'s waker was woken.
    ReadyJoined,
    /// The task is waiting; the scheduler drops its reference.
    Pending,
    /// The task was woken during its own poll (by itself, another CPU or a
    /// cancel): the scheduler puts it back into its run queue.
    PendingSchedule,
}

/// Why a [`JoinHandle`] did not produce the task's output.
pub enum JoinError<T> {
    /// The task was cancelled. If the task produced its output in the same
    /// poll during which the cancel arrived, the output is carried here.
    Cancelled(Option<T>),
    /// The task's future panicked and the platform contained the panic.
    Panic(TaskPanic),
}

impl<T> JoinError<T> {
    /// `true` for [`JoinError::Cancelled`].
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled(_))
    }

    /// `true` for [`JoinError::Panic`].
    #[must_use]
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panic(_))
    }

    /// The contained panic's message and location, for [`JoinError::Panic`].
    #[must_use]
    pub fn panic(&self) -> Option<&TaskPanic> {
        match self {
            JoinError::Panic(panic) => Some(panic),
            JoinError::Cancelled(_) => None,
        }
    }

    /// The output of a task that completed despite being cancelled.
    pub fn into_output(self) -> Option<T> {
        match self {
            JoinError::Cancelled(output) => output,
            JoinError::Panic(_) => None,
        }
    }
}

impl<T> fmt::Debug for JoinError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled(output) => f
                .debug_struct("Cancelled")
                .field("has_output", &output.is_some())
                .finish(),
            JoinError::Panic(panic) => f.debug_tuple("Panic").field(panic).finish(),
        }
    }
}

impl<T> fmt::Display for JoinError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled(_) => f.write_str("task was cancelled"),
            JoinError::Panic(panic) => write!(f, "task {panic}"),
        }
    }
}

impl<T> core::error::Error for JoinError<T> {}

/// The type-specific operations every task provides; the scheduler code calls
/// only these, so it is shared by every future type.
pub(crate) struct VTable {
    /// Poll (or cancel) the task. Called by the scheduler that dequeued it,
    /// holding the run queue's reference.
    poll: unsafe fn(NonNull<Header>) -> PollResult,
    /// Poll for the output; writes `Poll<Result<T, JoinError<T>>>` to the
    /// second argument.
    poll_join: unsafe fn(NonNull<Header>, NonNull<()>, &mut Context<'_>),
    /// Free the allocation; the last reference is gone.
    deallocate: unsafe fn(NonNull<Header>),
}

/// The type-erased head of every task allocation, and the node type of the
/// run queues.
#[repr(C)]
pub struct Header {
    state: State,
    vtable: &'static VTable,
    id: TaskId,
    links: mpsc_queue::Links<Header>,
    /// `None` only for run-queue stubs, which are never polled or woken.
    rt: Option<&'static Runtime>,
    /// The scheduler whose run queue a wake targets; a thief rebinds it.
    pub(crate) cpu: AtomicUsize,
    name: Option<&'static str>,
    kind: TaskKind,
    location: &'static Location<'static>,
    /// The task that spawned it, [`TaskId::STUB`] if none.
    parent: TaskId,
    /// Totals, maintained only while hooks are installed and enabled.
    stats: TaskStats,
    /// The task's place in its runtime's registry (only when hooks are installed).
    registry_links: list::Links<Header>,
    /// Which of the registry's lists holds it: the CPU it was first queued on.
    registry_shard: u32,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("cpu", &self.cpu.load(Relaxed))
            .finish_non_exhaustive()
    }
}

// SAFETY: the header is shared between CPUs only through atomics (`state`,
// `cpu`, `wakers`, `stats`, the queue links), the registry links (changed only
// under the registry's lock) and immutable fields; `Runtime` is `Sync`.
unsafe impl Send for Header {}
// SAFETY: as above.
unsafe impl Sync for Header {}

// SAFETY: a `Header` is pinned for its whole life (it lives in a heap
// allocation freed only when its last `TaskRef` is dropped), `into_ptr` and
// `from_ptr` transfer exactly one reference, and `links` points inside the
// allocation without creating a reference to it.
unsafe impl Linked<mpsc_queue::Links<Header>> for Header {
    type Handle = TaskRef;

    fn into_ptr(task: TaskRef) -> NonNull<Header> {
        let ptr = task.0;
        mem::forget(task);
        ptr
    }

    unsafe fn from_ptr(ptr: NonNull<Header>) -> TaskRef {
        TaskRef(ptr)
    }

    unsafe fn links(target: NonNull<Header>) -> NonNull<mpsc_queue::Links<Header>> {
        // SAFETY: `target` points to a live header (the caller's contract);
        // `&raw mut` takes the field's address without a reference.
        let links = unsafe { &raw mut (*target.as_ptr()).links };
        // SAFETY: a field of a non-null pointer is non-null.
        unsafe { NonNull::new_unchecked(links) }
    }
}

// SAFETY: the registry holds no reference count: a header is linked after its
// allocation and unlinked (under the registry lock) before it is freed, so
// every pointer in the list is live and pinned; `links` points inside the
// allocation without creating a reference to it.
unsafe impl Linked<list::Links<Header>> for Header {
    type Handle = NonNull<Header>;

    fn into_ptr(task: NonNull<Header>) -> NonNull<Header> {
        task
    }

    unsafe fn from_ptr(ptr: NonNull<Header>) -> NonNull<Header> {
        ptr
    }

    unsafe fn links(target: NonNull<Header>) -> NonNull<list::Links<Header>> {
        // SAFETY: `target` points to a live header (the caller's contract);
        // `&raw mut` takes the field's address without a reference.
        let links = unsafe { &raw mut (*target.as_ptr()).registry_links };
        // SAFETY: a field of a non-null pointer is non-null.
        unsafe { NonNull::new_unchecked(links) }
    }
}

enum Stage<F: Future> {
    Pending(F),
    Ready(Result<F::Output, JoinError<F::Output>>),
    Consumed,
}

/// One task: a single cache-aligned allocation with the header first so that
/// a `NonNull<Header>` is also a pointer to the whole task.
#[repr(C, align(64))]
pub(crate) struct Task<F: Future, M> {
    header: Header,
    metadata: M,
    /// Owned by whoever set POLLING while COMPLETE = 0, by the `JoinHandle`
    /// once COMPLETE = 1, and by `deallocate` at the end.
    stage: UnsafeCell<Stage<F>>,
    /// The join waker cell. Its rules, enforced by `State`:
    /// - JOIN_WAKER = 0: the `JoinHandle` has exclusive access.
    /// - JOIN_WAKER = 1: shared read access (the `JoinHandle` compares it with
    ///   its current waker).
    /// - JOIN_WAKER = 1 and COMPLETE = 1: the executor may read it (to wake).
    /// - To write, the `JoinHandle` (i) clears JOIN_WAKER if set, (ii) writes,
    ///   (iii) sets JOIN_WAKER, clearing the cell instead if COMPLETE won the
    ///   race. Only the `JoinHandle` changes JOIN_WAKER while COMPLETE = 0,
    ///   and only the executor after (it never needs to: it only reads).
    /// - JOIN_INTEREST = 0 and COMPLETE = 1: the executor owns the cell; it
    ///   drops the waker when it deallocates the task.
    join_waker: UnsafeCell<Option<Waker>>,
}

/// The `Header` + metadata prefix shared by every `Task<_, M>` (`repr(C)` puts
/// `metadata` at the same offset whatever `F` is).
#[repr(C)]
struct Prefix<M> {
    header: Header,
    metadata: M,
}

/// What a task is called and where it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskInfo {
    pub(crate) id: TaskId,
    pub(crate) name: Option<&'static str>,
    pub(crate) kind: TaskKind,
    pub(crate) location: &'static Location<'static>,
    pub(crate) cpu: usize,
    pub(crate) parent: Option<TaskId>,
}

impl<F, M> Task<F, M>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    M: Send + Sync + 'static,
{
    const VTABLE: VTable = VTable {
        poll: Self::poll,
        poll_join: Self::poll_join,
        deallocate: Self::deallocate,
    };

    /// Allocates the task with two references (run queue + `JoinHandle`).
    pub(crate) fn allocate(rt: &'static Runtime, info: TaskInfo, metadata: M, future: F) -> NonNull<Header> {
        let task = Box::new(Self {
            header: Header {
                state: State::new_task(),
                vtable: &Self::VTABLE,
                id: info.id,
                links: mpsc_queue::Links::new(),
                rt: Some(rt),
                cpu: AtomicUsize::new(info.cpu),
                name: info.name,
                kind: info.kind,
                location: info.location,
                parent: info.parent.unwrap_or(TaskId::STUB),
                stats: TaskStats::new(),
                registry_links: list::Links::new(),
                registry_shard: info.cpu as u32,
            },
            metadata,
            stage: UnsafeCell::new(Stage::Pending(future)),
            join_waker: UnsafeCell::new(None),
        });
        let ptr = NonNull::from(Box::leak(task)).cast();
        if let Some(registry) = rt.registry() {
            registry.insert(rt.platform(), ptr);
        }
        ptr
    }

    /// # Safety
    ///
    /// `ptr` is a live `Task<F, M>` and the caller holds the run queue's
    /// reference to it (it dequeued it), so nobody else polls it.
    unsafe fn poll(ptr: NonNull<Header>) -> PollResult {
        // SAFETY: the caller guarantees `ptr` is a live `Task<F, M>`.
        let this = unsafe { ptr.cast::<Self>().as_ref() };
        let hooks = this.header.rt.and_then(Runtime::hooks);
        let (cpu, id) = (this.header.cpu.load(Relaxed), this.header.id);
        let mut cancelled = false;
        let outcome = match this.header.state.start_poll() {
            StartPoll::Complete => {
                if let Some(hooks) = hooks {
                    hooks.on_poll_end(cpu, id, PollResult::Ready, &this.header.stats);
                }
                return PollResult::Ready;
            }
            StartPoll::Cancel => {
                this.finish(Err(JoinError::Cancelled(None)));
                cancelled = true;
                Some(0)
            }
            StartPoll::Poll => this.poll_future(ptr),
        };
        // Report the end of the poll (and the outcome) while POLLING is still held:
        // once `end_poll` releases the task, another CPU may poll it again or its
        // joiner may run, and the trace must not show those before this poll's end.
        if let Some(hooks) = hooks {
            let stats = &this.header.stats;
            match outcome {
                // A wake during the poll (WOKEN) makes `end_poll` reschedule the task.
                None if this.header.state.load().has(WOKEN) => {
                    hooks.on_poll_end(cpu, id, PollResult::PendingSchedule, stats);
                }
                None => hooks.on_poll_end(cpu, id, PollResult::Pending, stats),
                Some(flags) => {
                    hooks.on_poll_end(cpu, id, PollResult::Ready, stats);
                    let how = if flags & PANICKED != 0 {
                        this.stage.with(|stage| {
                            // SAFETY: POLLING is still ours: nobody else reads or
                            // writes the stage, which `finish` just set.
                            if let Stage::Ready(Err(JoinError::Panic(panic))) = unsafe { &*stage } {
                                hooks.on_task_panicked(cpu, id, panic);
                            }
                        });
                        Outcome::Panicked
                    } else if cancelled || this.header.state.load().has(CANCELLED) {
                        Outcome::Cancelled
                    } else {
                        Outcome::Ok
                    };
                    hooks.on_complete(cpu, id, how);
                }
            }
        }
        let (prev, end) = this.header.state.end_poll(outcome);
        match end {
            EndPoll::Pending => {
                // Not woken, not complete, and (from the same snapshot) no waker
                // left: nothing can ever poll the task again.
                if let Some(hooks) = hooks
                    && prev.wakers() == 0
                {
                    hooks.on_lost_waker(id);
                }
                PollResult::Pending
            }
            EndPoll::PendingSchedule => PollResult::PendingSchedule,
            EndPoll::Ready { join_waker: false } => PollResult::Ready,
            EndPoll::Ready { join_waker: true } => {
                // SAFETY: JOIN_WAKER = 1 and we set COMPLETE = 1: the executor
                // may read the cell, and nobody writes it any more.
                this.join_waker.with(|waker| unsafe {
                    if let Some(waker) = &*waker {
                        waker.wake_by_ref();
                    }
                });
                PollResult::ReadyJoined
            }
        }
    }

    /// Polls the future (POLLING is ours); `Some(flags)` if it completed.
    fn poll_future(&self, ptr: NonNull<Header>) -> Option<usize> {
        let platform = self.header.runtime().platform();
        // A borrowed waker: it does not own a reference, so it must never be
        // dropped; clones made from it do own one.
        let waker = ManuallyDrop::new(
            // SAFETY: the vtable's contract is upheld by the functions in it,
            // and the task outlives this poll (we hold the queue's reference).
            unsafe { Waker::from_raw(raw_waker(ptr)) },
        );
        let mut cx = Context::from_waker(&waker);
        let mut poll = Poll::Pending;
        let caught = platform.catch_unwind(&mut || {
            // SAFETY: POLLING is set by us, so we have exclusive access to the
            // stage; the future is never moved out of the allocation while
            // it is `Pending`, which makes the pin sound.
            self.stage.with_mut(|stage| unsafe {
                let Stage::Pending(future) = &mut *stage else {
                    unreachable!("a task without a future was polled");
                };
                poll = Pin::new_unchecked(future).poll(&mut cx);
            });
        });
        match (caught, poll) {
            (Ok(()), Poll::Pending) => None,
            (Ok(()), Poll::Ready(output)) => {
                self.finish(Ok(output));
                Some(0)
            }
            (Err(PanicCaught(panic)), _) => {
                self.finish(Err(JoinError::Panic(panic)));
                Some(PANICKED)
            }
        }
    }

    /// Drops the future in place (it is pinned) and stores the result,
    /// containing a panic in the future's destructor if the platform can.
    /// Called with POLLING held.
    fn finish(&self, result: Result<F::Output, JoinError<F::Output>>) {
        let platform = self.header.runtime().platform();
        self.stage.with_mut(|stage| {
            // SAFETY: POLLING is held by the caller: exclusive access to the
            // stage, which holds a live `Pending` future. If its destructor
            // panics, unwinding still drops the remaining fields, so the stage
            // counts as dropped either way.
            let _ = platform.catch_unwind(&mut || unsafe { ptr::drop_in_place(stage) });
            // SAFETY: the old stage was dropped just above; overwrite it
            // without dropping it again.
            unsafe { ptr::write(stage, Stage::Ready(result)) };
        });
    }

    /// # Safety
    ///
    /// `ptr` is a live `Task<F, M>`, the caller is its `JoinHandle` (the only
    /// one) and `out` points to a `Poll<Result<F::Output, JoinError<F::Output>>>`.
    unsafe fn poll_join(ptr: NonNull<Header>, out: NonNull<()>, cx: &mut Context<'_>) {
        // SAFETY: the caller guarantees `ptr` is a live `Task<F, M>`.
        let this = unsafe { ptr.cast::<Self>().as_ref() };
        let out = out.cast::<Poll<Result<F::Output, JoinError<F::Output>>>>();
        let state = &this.header.state;
        loop {
            let s = state.load();
            if s.has(COMPLETE) {
                let stage = this.stage.with_mut(|stage| {
                    // SAFETY: COMPLETE = 1 gives the JoinHandle exclusive
                    // access to the stage, and the Acquire load saw the
                    // executor's writes.
                    unsafe { mem::replace(&mut *stage, Stage::Consumed) }
                });
                let result = match stage {
                    Stage::Ready(Ok(output)) if s.has(CANCELLED) => Err(JoinError::Cancelled(Some(output))),
                    Stage::Ready(result) => result,
                    Stage::Pending(_) | Stage::Consumed => {
                        unreachable!("JoinHandle polled after it returned the output")
                    }
                };
                // SAFETY: the caller guarantees `out` is valid for writes.
                unsafe { out.write(Poll::Ready(result)) };
                return;
            }
            if s.has(state::JOIN_WAKER) {
                // SAFETY: JOIN_WAKER = 1: shared read access.
                let same = this
                    .join_waker
                    .with(|waker| unsafe { (*waker).as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) });
                if same {
                    break;
                }
                // (i) clear JOIN_WAKER, unless the task completed meanwhile.
                if state.unset_join_waker().is_err() {
                    continue;
                }
            }
            // (ii) JOIN_WAKER = 0: exclusive access; write the waker.
            this.join_waker.with_mut(|waker| {
                // SAFETY: JOIN_WAKER = 0: only the JoinHandle touches the cell.
                unsafe { *waker = Some(cx.waker().clone()) }
            });
            // (iii) publish it, or take it back if COMPLETE won the race.
            if state.set_join_waker().is_ok() {
                break;
            }
            // SAFETY: JOIN_WAKER is still 0: the executor did not read it.
            this.join_waker.with_mut(|waker| unsafe { *waker = None });
        }
        if let Some(hooks) = this.header.runtime().hooks() {
            hooks.on_join_waiting(this.header.id);
        }
        // SAFETY: the caller guarantees `out` is valid for writes.
        unsafe { out.write(Poll::Pending) };
    }

    /// # Safety
    ///
    /// `ptr` is a `Task<F, M>` whose last reference was just dropped.
    unsafe fn deallocate(ptr: NonNull<Header>) {
        // SAFETY: allocated by `Box` in `allocate`, and nobody else refers to
        // it any more.
        drop(unsafe { Box::from_raw(ptr.cast::<Self>().as_ptr()) });
    }
}

/// A run-queue stub: a header that is never polled.
#[repr(C, align(64))]
struct Stub {
    header: Header,
}

impl Stub {
    const VTABLE: VTable = VTable {
        poll: Self::poll,
        poll_join: Self::poll_join,
        deallocate: Self::deallocate,
    };

    /// # Safety
    ///
    /// Never called: cordyceps never hands out a queue's stub.
    unsafe fn poll(_: NonNull<Header>) -> PollResult {
        unreachable!("run-queue stubs are never polled")
    }

    /// # Safety
    ///
    /// Never called: stubs have no `JoinHandle`.
    unsafe fn poll_join(_: NonNull<Header>, _: NonNull<()>, _: &mut Context<'_>) {
        unreachable!("run-queue stubs have no JoinHandle")
    }

    /// # Safety
    ///
    /// `ptr` is a `Stub` whose last reference was just dropped.
    unsafe fn deallocate(ptr: NonNull<Header>) {
        // SAFETY: allocated by `Box` in `TaskRef::new_stub`.
        drop(unsafe { Box::from_raw(ptr.cast::<Stub>().as_ptr()) });
    }
}

/// A type-erased, reference-counted pointer to a task.
pub struct TaskRef(NonNull<Header>);

// SAFETY: tasks are `Send` futures with `Send + Sync` metadata; all shared
// state in the header is atomic.
unsafe impl Send for TaskRef {}
// SAFETY: as above; `&TaskRef` only reads immutable fields or uses atomics.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    pub(crate) fn new_stub() -> TaskRef {
        let stub = Box::new(Stub {
            header: Header {
                state: State::new_stub(),
                vtable: &Stub::VTABLE,
                id: TaskId::STUB,
                links: mpsc_queue::Links::new_stub(),
                rt: None,
                cpu: AtomicUsize::new(0),
                name: Some("stub"),
                kind: TaskKind::Kernel,
                location: Location::caller(),
                parent: TaskId::STUB,
                stats: TaskStats::new(),
                registry_links: list::Links::new(),
                registry_shard: 0,
            },
        });
        TaskRef(NonNull::from(Box::leak(stub)).cast())
    }

    /// Adopts one already-counted reference.
    ///
    /// # Safety
    ///
    /// `ptr` is a live task and the caller transfers one reference it owns.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> TaskRef {
        TaskRef(ptr)
    }

    /// The reference as a pointer, for a slot that holds it; [`TaskRef::from_raw`]
    /// takes it back.
    pub(crate) fn into_raw(self) -> NonNull<Header> {
        ManuallyDrop::new(self).0
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: we hold a reference, so the task is alive.
        unsafe { self.0.as_ref() }
    }

    /// The task's id.
    #[must_use]
    pub fn id(&self) -> TaskId {
        self.header().id
    }

    /// The task's name, if it was given one.
    #[must_use]
    pub fn name(&self) -> Option<&'static str> {
        self.header().name
    }

    /// Kernel service or wasm instance.
    #[must_use]
    pub fn kind(&self) -> TaskKind {
        self.header().kind
    }

    /// Where the task was spawned.
    #[must_use]
    pub fn location(&self) -> &'static Location<'static> {
        self.header().location
    }

    /// Whether the task has produced its outcome.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.header().state.load().has(COMPLETE)
    }

    /// The task's metadata.
    ///
    /// # Safety
    ///
    /// The task was spawned with metadata of type `M`.
    #[must_use]
    pub unsafe fn metadata<M>(&self) -> &M {
        // SAFETY: `Task<F, M>` is `repr(C)` with `header` and `metadata` first,
        // laid out exactly as `Prefix<M>`; the caller guarantees `M`.
        unsafe { &(*self.0.cast::<Prefix<M>>().as_ptr()).metadata }
    }

    /// Requests cancellation: the task is woken, and the scheduler that picks
    /// it up drops the future without polling it. Returns `false` if the task
    /// had already completed or been cancelled.
    pub fn cancel(&self) -> bool {
        let header = self.header();
        let (cancelled, enqueue) = header.state.cancel();
        if enqueue {
            // SAFETY: `cancel` counted a new reference for the run queue.
            let queued = unsafe { TaskRef::from_raw(self.0) };
            header.runtime().schedule(queued);
        }
        cancelled
    }

    /// Polls the task once; only the scheduler that dequeued it calls this.
    pub(crate) fn poll(&self) -> PollResult {
        // SAFETY: the scheduler holds the run queue's reference, so the task is
        // alive and polled by nobody else.
        unsafe { (self.header().vtable.poll)(self.0) }
    }

    /// Frees the task; its last reference is gone.
    ///
    /// # Safety
    ///
    /// No reference to the task remains.
    unsafe fn deallocate(ptr: NonNull<Header>) {
        // SAFETY: the caller guarantees the task is still allocated.
        let header = unsafe { ptr.as_ref() };
        if let Some(hooks) = header.rt.and_then(Runtime::hooks) {
            hooks.on_drop(header.id);
        }
        if let Some(rt) = header.rt
            && let Some(registry) = rt.registry()
        {
            // SAFETY: `allocate` listed every task of a runtime with a registry.
            unsafe { registry.remove(rt.platform(), ptr) };
        }
        // SAFETY: the vtable matches the allocation; no references remain.
        unsafe { (header.vtable.deallocate)(ptr) }
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> Self {
        self.header().state.clone_ref();
        TaskRef(self.0)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        if self.header().state.drop_ref() {
            // SAFETY: that was the last reference.
            unsafe { TaskRef::deallocate(self.0) }
        }
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.header(), f)
    }
}

impl Header {
    /// The task's name, if it was given one.
    #[must_use]
    pub fn name(&self) -> Option<&'static str> {
        self.name
    }

    /// Where the task was spawned.
    #[must_use]
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    pub(crate) fn runtime(&self) -> &'static Runtime {
        match self.rt {
            Some(rt) => rt,
            None => unreachable!("run-queue stubs have no runtime"),
        }
    }

    /// The task's id.
    #[must_use]
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task's totals (kept only while hooks are installed and enabled).
    #[must_use]
    pub fn stats(&self) -> &TaskStats {
        &self.stats
    }

    pub(crate) fn registry_shard(&self) -> usize {
        self.registry_shard as usize
    }

    /// The task as the registry lists it.
    pub(crate) fn live_task(&self) -> LiveTask {
        let s = self.state.load();
        let state = if s.has(COMPLETE) {
            LiveState::Completed
        } else if s.has(POLLING) {
            LiveState::Running
        } else if s.has(WOKEN) {
            LiveState::Scheduled
        } else {
            LiveState::Idle
        };
        LiveTask {
            id: self.id,
            name: self.name,
            kind: self.kind,
            location: self.location,
            parent: (self.parent != TaskId::STUB).then_some(self.parent),
            state,
            cpu: self.cpu.load(Relaxed),
            wakers: s.wakers(),
            counters: self.stats.counters(),
        }
    }

    fn report_wake(&self, by_ref: bool) {
        let rt = self.runtime();
        rt.count_wake(self.cpu.load(Relaxed));
        if let Some(hooks) = rt.hooks() {
            let waker = rt.current_task();
            let self_wake = waker == Some(self.id);
            self.stats.count_wake(self_wake);
            hooks.on_wake(self.id, by_ref, self_wake, waker, &self.stats);
        }
    }
}

// === wakers ===

/// One constant, promoted to a single `'static` by the only function that
/// names it, so `Waker::will_wake` is one pointer comparison.
const WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

fn raw_waker(ptr: NonNull<Header>) -> RawWaker {
    RawWaker::new(ptr.as_ptr().cast_const().cast(), &WAKER_VTABLE)
}

/// # Safety
///
/// `data` comes from `raw_waker` and its task is alive.
unsafe fn header<'a>(data: *const ()) -> &'a Header {
    // SAFETY: the caller guarantees `data` is a live header.
    unsafe { &*data.cast::<Header>() }
}

/// # Safety
///
/// `data` comes from `raw_waker` and the waker owns (or borrows) a reference.
unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: the caller guarantees the task is alive.
    let header = unsafe { header(data) };
    let count = header.state.clone_waker();
    if let Some(hooks) = header.runtime().hooks() {
        hooks.on_waker_clone(header.id, count);
    }
    raw_waker(NonNull::from(header))
}

/// # Safety
///
/// `data` comes from `raw_waker` and the waker owns one reference, which this
/// consumes.
unsafe fn waker_wake(data: *const ()) {
    // SAFETY: the caller guarantees the task is alive.
    let header = unsafe { header(data) };
    header.report_wake(false);
    let ptr = NonNull::from(header);
    let (id, rt) = (header.id, header.runtime());
    // One transition marks the task woken and takes the waker off the count, so no
    // snapshot shows the task with neither: a wake in flight is never a lost waker.
    let (action, wakers) = header.state.wake_by_val();
    // Reported before the task can run elsewhere (and, with the waker's reference
    // gone, be freed): only the id and the runtime are used, both copied above.
    if let Some(hooks) = rt.hooks() {
        hooks.on_waker_drop(id, wakers);
    }
    match action {
        // SAFETY: the waker's reference moves to the run queue.
        WakeAction::Enqueue => rt.schedule(unsafe { TaskRef::from_raw(ptr) }),
        WakeAction::None => {}
        // SAFETY: the waker held the last reference.
        WakeAction::Deallocate => unsafe { TaskRef::deallocate(ptr) },
    }
}

/// # Safety
///
/// `data` comes from `raw_waker` and the task is alive.
unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: the caller guarantees the task is alive.
    let header = unsafe { header(data) };
    header.report_wake(true);
    if header.state.wake_by_ref() {
        // SAFETY: `wake_by_ref` counted a new reference for the run queue.
        let queued = unsafe { TaskRef::from_raw(NonNull::from(header)) };
        header.runtime().schedule(queued);
    }
}

/// # Safety
///
/// `data` comes from `raw_waker` and the waker owns one reference.
unsafe fn waker_drop(data: *const ()) {
    // SAFETY: the caller guarantees the task is alive.
    let header = unsafe { header(data) };
    let (id, rt) = (header.id, header.runtime());
    let dropped = header.state.drop_waker();
    if let Some(hooks) = rt.hooks() {
        hooks.on_waker_drop(id, dropped.wakers);
        if dropped.lost {
            hooks.on_lost_waker(id);
        }
    }
    if dropped.last {
        // SAFETY: the waker held the last reference.
        unsafe { TaskRef::deallocate(NonNull::from(header)) };
    }
}

// === JoinHandle ===

/// Awaits a task's outcome: `Ok(output)`, or why there is none.
///
/// Dropping the handle detaches the task; it keeps running.
pub struct JoinHandle<T, M = ()> {
    task: Option<TaskRef>,
    id: TaskId,
    wait: OwnedWait,
    _output: PhantomData<fn() -> (T, M)>,
}

impl<T, M> JoinHandle<T, M> {
    /// # Safety
    ///
    /// `ptr` is a live `Task<F, M>` with `F::Output = T`, and the caller
    /// transfers the JoinHandle's reference.
    pub(crate) unsafe fn new(ptr: NonNull<Header>) -> Self {
        // SAFETY: transferred by the caller.
        let task = unsafe { TaskRef::from_raw(ptr) };
        let id = task.id();
        Self {
            task: Some(task),
            id,
            wait: OwnedWait::new(),
            _output: PhantomData,
        }
    }

    /// The task's id.
    #[must_use]
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// A new reference to the task, or `None` once the output was taken.
    #[must_use]
    pub fn task_ref(&self) -> Option<TaskRef> {
        self.task.clone()
    }

    /// The task's metadata, or `None` once the output was taken.
    #[must_use]
    pub fn metadata(&self) -> Option<&M> {
        self.task.as_ref().map(|task| {
            // SAFETY: the type parameter `M` is the task's metadata type.
            unsafe { task.metadata::<M>() }
        })
    }

    /// Requests cancellation (see [`TaskRef::cancel`]); `false` if the task
    /// already completed, was already cancelled, or its output was taken.
    pub fn cancel(&self) -> bool {
        self.task.as_ref().is_some_and(TaskRef::cancel)
    }

    /// Whether the task has produced its outcome.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(TaskRef::is_complete)
    }
}

impl<T, M> Future for JoinHandle<T, M> {
    type Output = Result<T, JoinError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(task) = this.task.as_ref() else {
            panic!("JoinHandle for {} polled after completion", this.id);
        };
        let mut out: Poll<Result<T, JoinError<T>>> = Poll::Pending;
        // SAFETY: we are the task's only JoinHandle, `T` is its output type
        // and `out` has the type `poll_join` writes.
        unsafe { (task.header().vtable.poll_join)(task.0, NonNull::from(&mut out).cast(), cx) };
        if out.is_pending() {
            let header = task.header();
            this.wait.pending(
                ResourceKind::Join,
                header.name.unwrap_or(""),
                None,
                header.location,
                WaitOp::Join,
            );
        } else {
            this.wait.ready();
        }
        if out.is_ready() {
            // The output is taken; let the task go now rather than when the
            // handle is dropped.
            if let Some(task) = this.task.take() {
                task.header().state.drop_join_interest();
            }
        }
        out
    }
}

impl<T, M> Drop for JoinHandle<T, M> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.header().state.drop_join_interest();
        }
    }
}

impl<T, M> fmt::Debug for JoinHandle<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .field("output", &type_name::<T>())
            .field("task", &self.task)
            .finish()
    }
}

// === yield_now ===

/// Yields to the scheduler once: the task goes to the back of its run queue.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
