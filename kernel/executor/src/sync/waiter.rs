//! The intrusive wait-list node shared by the primitives, and a bounded batch
//! of wakers to wake after a lock is released.

use core::cell::UnsafeCell;
use core::marker::PhantomPinned;
use core::ptr::NonNull;
use core::task::Waker;

use cordyceps::{Linked, list};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitState {
    /// Not polled yet.
    Start,
    /// Linked into the wait list.
    Queued,
    /// Unlinked and granted what it waited for (a wake-up, or `want` permits).
    Woken,
    /// Unlinked because the primitive closed.
    Closed,
    /// Completed; polled again is a bug.
    Done,
}

pub(crate) struct Waiter {
    links: list::Links<Waiter>,
    pub(crate) waker: Option<Waker>,
    pub(crate) state: WaitState,
    /// Permits wanted (semaphores only).
    pub(crate) want: usize,
    _pin: PhantomPinned,
}

// SAFETY: nodes live in pinned futures that unlink them before they are
// dropped (see each future's `Drop`), handles are plain pointers that own
// nothing, and `links` is computed without creating a reference.
unsafe impl Linked<list::Links<Waiter>> for Waiter {
    type Handle = NonNull<Waiter>;

    fn into_ptr(handle: NonNull<Waiter>) -> NonNull<Waiter> {
        handle
    }

    unsafe fn from_ptr(ptr: NonNull<Waiter>) -> NonNull<Waiter> {
        ptr
    }

    unsafe fn links(target: NonNull<Waiter>) -> NonNull<list::Links<Waiter>> {
        // SAFETY: `target` is a live node (the caller's contract).
        let links = unsafe { &raw mut (*target.as_ptr()).links };
        // SAFETY: a field of a non-null pointer is non-null.
        unsafe { NonNull::new_unchecked(links) }
    }
}

/// A `Waiter` embedded in a future. It is only read or written with the
/// owning primitive's lock held, which is what makes sharing it sound.
pub(crate) struct Node(UnsafeCell<Waiter>);

// SAFETY: see the type's documentation: all access is serialized by a lock;
// the `Waker` inside is `Send + Sync`.
unsafe impl Send for Node {}
// SAFETY: as above.
unsafe impl Sync for Node {}

impl Node {
    pub(crate) fn new(want: usize) -> Self {
        Node(UnsafeCell::new(Waiter {
            links: list::Links::new(),
            waker: None,
            state: WaitState::Start,
            want,
            _pin: PhantomPinned,
        }))
    }

    pub(crate) fn ptr(&self) -> NonNull<Waiter> {
        // SAFETY: `UnsafeCell::get` never returns null.
        unsafe { NonNull::new_unchecked(self.0.get()) }
    }
}

/// The wait list, as the primitives keep it behind their lock.
pub(crate) struct List(pub(crate) list::List<Waiter>);

// SAFETY: the list only holds pointers to `Node`s, which are `Send`; it is
// only used behind a lock.
unsafe impl Send for List {}

impl List {
    pub(crate) fn new() -> Self {
        List(list::List::new())
    }
}

/// Registers `cx`'s waker in `waiter` unless it already holds an equivalent
/// one.
pub(crate) fn set_waker(waiter: &mut Waiter, waker: &Waker) {
    match &mut waiter.waker {
        Some(old) if old.will_wake(waker) => {}
        slot => *slot = Some(waker.clone()),
    }
}

const BATCH: usize = 8;

/// Wakers collected under a lock and woken after it is released, so a wake
/// never runs with a primitive's lock held.
pub(crate) struct WakeBatch {
    wakers: [Option<Waker>; BATCH],
    len: usize,
}

impl WakeBatch {
    pub(crate) fn new() -> Self {
        Self {
            wakers: [const { None }; BATCH],
            len: 0,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == BATCH
    }

    pub(crate) fn push(&mut self, waker: Option<Waker>) {
        debug_assert!(!self.is_full());
        self.wakers[self.len] = waker;
        self.len += 1;
    }

    pub(crate) fn wake_all(&mut self) {
        for waker in &mut self.wakers[..self.len] {
            if let Some(waker) = waker.take() {
                waker.wake();
            }
        }
        self.len = 0;
    }
}
