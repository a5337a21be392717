//! The task state word: a reference count, how many of those references are
//! wakers, and the lifecycle flags, changed only by atomic read-modify-writes so
//! that every transition sees one consistent snapshot.
//!
//! Counting wakers in the same word as the flags makes a lost waker (a pending
//! task with no waker left and nothing that will poll it) a property of one
//! snapshot: the transition that leaves the task so (a poll's end, a waker's drop)
//! sees it, exactly once, with no fence and no second read.

use core::fmt;

use crate::loom::atomic::{AtomicUsize, Ordering::*, fence};

/// The task is being polled (or cancelled) by a scheduler. Whoever set it has
/// exclusive access to the task's `Stage` until it clears it.
pub(crate) const POLLING: usize = 1 << 0;
/// The task has produced its outcome (output, cancellation or panic). From here
/// on the `JoinHandle` has exclusive access to the `Stage`.
pub(crate) const COMPLETE: usize = 1 << 1;
/// Cancellation was requested before the task completed.
pub(crate) const CANCELLED: usize = 1 << 2;
/// A `JoinHandle` exists.
pub(crate) const JOIN_INTEREST: usize = 1 << 3;
/// The join waker cell holds a waker the executor may read (see the rules on
/// `Task::join_waker`).
pub(crate) const JOIN_WAKER: usize = 1 << 4;
/// The task has been woken: it is in a run queue, or it is being polled and
/// must go back into one when the poll ends.
pub(crate) const WOKEN: usize = 1 << 5;
/// The future panicked; set together with `COMPLETE`.
pub(crate) const PANICKED: usize = 1 << 6;

const WAKER_SHIFT: usize = 7;
const WAKER_BITS: usize = 24;
/// One waker: each also owns one reference (`WAKER_ONE + REF_ONE` per waker).
const WAKER_ONE: usize = 1 << WAKER_SHIFT;
const WAKER_MASK: usize = ((1 << WAKER_BITS) - 1) << WAKER_SHIFT;
/// Beyond this many wakers something is leaking them in a loop; stop before the
/// count can wrap into the references.
const WAKER_MAX: usize = (1 << WAKER_BITS) - 1;
const REF_SHIFT: usize = WAKER_SHIFT + WAKER_BITS;
pub(crate) const REF_ONE: usize = 1 << REF_SHIFT;
/// Beyond this many references something is leaking references in a loop; stop
/// before the count can wrap.
const REF_MAX: usize = usize::MAX >> (REF_SHIFT + 1);
const _: () = assert!(
    usize::BITS == 64,
    "the state word packs flags, wakers and references into 64 bits"
);

pub(crate) struct State(AtomicUsize);

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(pub(crate) usize);

impl Snapshot {
    #[inline]
    pub(crate) fn has(self, flag: usize) -> bool {
        self.0 & flag == flag
    }

    #[inline]
    pub(crate) fn refs(self) -> usize {
        self.0 >> REF_SHIFT
    }

    /// Live wakers (references held by `Waker`s the executor handed out, beyond the
    /// one borrowed for a poll).
    #[inline]
    pub(crate) fn wakers(self) -> usize {
        (self.0 & WAKER_MASK) >> WAKER_SHIFT
    }

    /// Whether nothing will poll the task unless something wakes it: not being
    /// polled, not woken (queued), not complete or cancelled.
    #[inline]
    pub(crate) fn idle(self) -> bool {
        self.0 & (POLLING | WOKEN | COMPLETE | CANCELLED) == 0
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("State");
        for (name, flag) in [
            ("POLLING", POLLING),
            ("COMPLETE", COMPLETE),
            ("CANCELLED", CANCELLED),
            ("JOIN_INTEREST", JOIN_INTEREST),
            ("JOIN_WAKER", JOIN_WAKER),
            ("WOKEN", WOKEN),
            ("PANICKED", PANICKED),
        ] {
            if self.has(flag) {
                s.field(name, &true);
            }
        }
        s.field("wakers", &self.wakers()).field("refs", &self.refs()).finish()
    }
}

/// What a scheduler that dequeued the task must do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartPoll {
    /// Poll the future.
    Poll,
    /// Drop the future without polling it: the task was cancelled.
    Cancel,
    /// Nothing: the task already completed.
    Complete,
}

/// The outcome of a poll, as the state machine records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndPoll {
    /// Still pending and nobody woke it: the scheduler drops its reference.
    Pending,
    /// Woken (or cancelled) while it was being polled: the scheduler keeps its
    /// reference and puts it back into a run queue.
    PendingSchedule,
    /// Complete; `join_waker` says whether the executor must wake the join
    /// waker.
    Ready { join_waker: bool },
}

/// What dropping a waker left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WakerDropped {
    /// Wakers left.
    pub(crate) wakers: usize,
    /// The task is pending with no waker left and nothing that will poll it.
    pub(crate) lost: bool,
    /// The waker held the last reference: the caller must deallocate.
    pub(crate) last: bool,
}

/// What a wake must do after updating the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WakeAction {
    /// Put the task into a run queue; the waker's reference moves to the queue.
    Enqueue,
    /// Nothing more (already queued, being polled, or complete).
    None,
    /// The waker held the last reference: deallocate.
    Deallocate,
}

impl State {
    /// A freshly spawned task: queued (WOKEN) with one reference for the run
    /// queue and one for the `JoinHandle`.
    pub(crate) fn new_task() -> Self {
        Self(AtomicUsize::new(WOKEN | JOIN_INTEREST | (2 * REF_ONE)))
    }

    /// A run-queue stub, owned by its queue alone.
    pub(crate) fn new_stub() -> Self {
        Self(AtomicUsize::new(REF_ONE))
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Acquire))
    }

    fn transition<T>(&self, mut f: impl FnMut(Snapshot) -> (Option<usize>, T)) -> (Snapshot, T) {
        let mut cur = self.0.load(Acquire);
        loop {
            let (next, out) = f(Snapshot(cur));
            let Some(next) = next else {
                return (Snapshot(cur), out);
            };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return (Snapshot(cur), out),
                Err(actual) => cur = actual,
            }
        }
    }

    pub(crate) fn clone_ref(&self) {
        let prev = self.0.fetch_add(REF_ONE, Relaxed);
        assert!(Snapshot(prev).refs() < REF_MAX, "task reference count overflow");
    }

    /// A new waker (and its reference); returns the wakers now live.
    pub(crate) fn clone_waker(&self) -> usize {
        let prev = Snapshot(self.0.fetch_add(REF_ONE + WAKER_ONE, Relaxed));
        assert!(
            prev.refs() < REF_MAX && prev.wakers() < WAKER_MAX,
            "task waker count overflow"
        );
        prev.wakers() + 1
    }

    /// A waker (and its reference) is dropped without waking.
    pub(crate) fn drop_waker(&self) -> WakerDropped {
        let prev = Snapshot(self.0.fetch_sub(REF_ONE + WAKER_ONE, Release));
        debug_assert!(prev.wakers() > 0, "task waker count underflow");
        let wakers = prev.wakers().wrapping_sub(1);
        let last = prev.refs() == 1;
        if last {
            // As in `drop_ref`.
            fence(Acquire);
        }
        WakerDropped {
            wakers,
            lost: wakers == 0 && prev.idle(),
            last,
        }
    }

    /// Drops one reference; `true` if it was the last, in which case the caller
    /// must deallocate.
    pub(crate) fn drop_ref(&self) -> bool {
        let prev = self.0.fetch_sub(REF_ONE, Release);
        debug_assert!(Snapshot(prev).refs() > 0, "task reference count underflow");
        if Snapshot(prev).refs() == 1 {
            // Every other owner released the task before it dropped its
            // reference; see their writes before tearing the task down.
            fence(Acquire);
            true
        } else {
            false
        }
    }

    /// Called by the scheduler that dequeued the task (holding the run queue's
    /// reference).
    pub(crate) fn start_poll(&self) -> StartPoll {
        let (_, action) = self.transition(|s| {
            // Always checked (one bit test on a value already loaded): a task polled on
            // two CPUs at once would be undefined behaviour, so it must stop the kernel.
            assert!(!s.has(POLLING), "task polled concurrently: {s:?}");
            if s.has(COMPLETE) {
                return (Some(s.0 & !WOKEN), StartPoll::Complete);
            }
            let next = (s.0 | POLLING) & !WOKEN;
            if s.has(CANCELLED) {
                (Some(next), StartPoll::Cancel)
            } else {
                (Some(next), StartPoll::Poll)
            }
        });
        action
    }

    /// Ends a poll started by `start_poll`. `outcome` is `None` if the future
    /// is still pending, else the flags to set with `COMPLETE` (`0` or
    /// `PANICKED`).
    pub(crate) fn end_poll(&self, outcome: Option<usize>) -> (Snapshot, EndPoll) {
        let (prev, action) = self.transition(|s| {
            assert!(s.has(POLLING), "end_poll without start_poll: {s:?}");
            let cleared = s.0 & !POLLING;
            match outcome {
                Some(extra) => {
                    let join_waker = s.has(JOIN_INTEREST) && s.has(JOIN_WAKER);
                    (
                        Some((cleared | COMPLETE | extra) & !WOKEN),
                        EndPoll::Ready { join_waker },
                    )
                }
                None if s.has(WOKEN) => (Some(cleared), EndPoll::PendingSchedule),
                None => (Some(cleared), EndPoll::Pending),
            }
        });
        (prev, action)
    }

    /// A wake that consumes the caller's waker (and its reference). Returns what to
    /// do and the wakers left.
    pub(crate) fn wake_by_val(&self) -> (WakeAction, usize) {
        let (prev, action) = self.transition(|s| {
            debug_assert!(s.wakers() > 0, "a waker woke a task that counts none");
            if s.has(COMPLETE) || s.has(WOKEN) {
                let action = if s.refs() == 1 {
                    WakeAction::Deallocate
                } else {
                    WakeAction::None
                };
                return (Some(s.0 - REF_ONE - WAKER_ONE), action);
            }
            if s.has(POLLING) {
                // The poller holds a reference, so this cannot be the last.
                return (Some((s.0 | WOKEN) - REF_ONE - WAKER_ONE), WakeAction::None);
            }
            // The waker's reference moves to the run queue.
            (Some((s.0 | WOKEN) - WAKER_ONE), WakeAction::Enqueue)
        });
        if action == WakeAction::Deallocate {
            fence(Acquire);
        }
        (action, prev.wakers().wrapping_sub(1))
    }

    /// A wake that keeps the caller's reference: `true` if the caller must
    /// enqueue the task with a new reference (already counted).
    pub(crate) fn wake_by_ref(&self) -> bool {
        let (_, enqueue) = self.transition(|s| {
            if s.has(COMPLETE) || s.has(WOKEN) {
                return (None, false);
            }
            if s.has(POLLING) {
                return (Some(s.0 | WOKEN), false);
            }
            (Some((s.0 | WOKEN) + REF_ONE), true)
        });
        enqueue
    }

    /// Requests cancellation. Returns `(cancelled, enqueue)`: `cancelled` is
    /// false if the task had already completed or been cancelled; `enqueue`
    /// means the caller must put the task into a run queue with a new
    /// reference (already counted).
    pub(crate) fn cancel(&self) -> (bool, bool) {
        let (_, out) = self.transition(|s| {
            if s.has(COMPLETE) || s.has(CANCELLED) {
                return (None, (false, false));
            }
            let next = s.0 | CANCELLED | WOKEN;
            if s.has(WOKEN) || s.has(POLLING) {
                (Some(next), (true, false))
            } else {
                (Some(next + REF_ONE), (true, true))
            }
        });
        out
    }

    /// The `JoinHandle` gives up its interest (it keeps its reference until it
    /// drops it separately).
    pub(crate) fn drop_join_interest(&self) -> Snapshot {
        Snapshot(self.0.fetch_and(!JOIN_INTEREST, AcqRel))
    }

    /// Step (i) of writing the join waker: clear `JOIN_WAKER` unless the task
    /// completed. `Err` carries the completed snapshot.
    pub(crate) fn unset_join_waker(&self) -> Result<(), Snapshot> {
        let (prev, ok) = self.transition(|s| {
            debug_assert!(s.has(JOIN_INTEREST));
            if s.has(COMPLETE) {
                (None, false)
            } else {
                (Some(s.0 & !JOIN_WAKER), true)
            }
        });
        if ok { Ok(()) } else { Err(prev) }
    }

    /// Step (iii): publish the written waker by setting `JOIN_WAKER` unless the
    /// task completed in the meantime.
    pub(crate) fn set_join_waker(&self) -> Result<(), Snapshot> {
        let (prev, ok) = self.transition(|s| {
            debug_assert!(s.has(JOIN_INTEREST) && !s.has(JOIN_WAKER));
            if s.has(COMPLETE) {
                (None, false)
            } else {
                (Some(s.0 | JOIN_WAKER), true)
            }
        });
        if ok { Ok(()) } else { Err(prev) }
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Snapshot(self.0.load(Relaxed)), f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn flags_wakers_and_refcount_do_not_overlap() {
        let all = POLLING | COMPLETE | CANCELLED | JOIN_INTEREST | JOIN_WAKER | WOKEN | PANICKED;
        assert_eq!(all, WAKER_ONE - 1);
        assert_eq!(all | WAKER_MASK, REF_ONE - 1);
    }

    #[test]
    fn wakers_are_counted_in_the_word_and_the_last_drop_of_an_idle_task_is_lost() {
        let s = State::new_task();
        assert_eq!(s.start_poll(), StartPoll::Poll);
        assert_eq!(s.clone_waker(), 1);
        assert_eq!(s.clone_waker(), 2);
        let (prev, end) = s.end_poll(None);
        assert_eq!((end, prev.wakers()), (EndPoll::Pending, 2));
        assert!(!s.drop_ref(), "the scheduler lets go of the queue's reference");
        assert_eq!(s.load().refs(), 3, "the handle's and the wakers'");
        let first = s.drop_waker();
        assert_eq!((first.wakers, first.lost, first.last), (1, false, false));
        let second = s.drop_waker();
        assert_eq!((second.wakers, second.lost, second.last), (0, true, false));
        assert_eq!(s.load().refs(), 1, "the handle's");
    }

    #[test]
    fn a_wake_by_value_moves_its_reference_to_the_queue_and_is_never_lost() {
        let s = State::new_task();
        assert_eq!(s.start_poll(), StartPoll::Poll);
        s.clone_waker();
        s.end_poll(None);
        assert!(!s.drop_ref());
        assert_eq!(s.wake_by_val(), (WakeAction::Enqueue, 0));
        let now = s.load();
        assert!(now.has(WOKEN) && !now.idle());
        assert_eq!((now.wakers(), now.refs()), (0, 2), "handle + queue");
        // Woken during a poll: the waker's reference goes.
        assert_eq!(s.start_poll(), StartPoll::Poll);
        s.clone_waker();
        assert_eq!(s.wake_by_val(), (WakeAction::None, 0));
        assert_eq!(s.end_poll(None).1, EndPoll::PendingSchedule);
        assert_eq!((s.load().wakers(), s.load().refs()), (0, 2));
    }

    #[test]
    fn wake_while_polling_reschedules() {
        let s = State::new_task();
        assert_eq!(s.start_poll(), StartPoll::Poll);
        assert!(!s.wake_by_ref());
        assert_eq!(s.end_poll(None).1, EndPoll::PendingSchedule);
        assert_eq!(s.start_poll(), StartPoll::Poll);
        assert_eq!(s.end_poll(None).1, EndPoll::Pending);
        assert!(s.wake_by_ref());
        assert_eq!(s.load().refs(), 3);
    }

    #[test]
    fn cancel_idle_enqueues_and_completed_refuses() {
        let s = State::new_task();
        assert_eq!(s.start_poll(), StartPoll::Poll);
        assert_eq!(s.end_poll(None).1, EndPoll::Pending);
        assert_eq!(s.cancel(), (true, true));
        assert_eq!(s.cancel(), (false, false));
        assert_eq!(s.start_poll(), StartPoll::Cancel);
        assert_eq!(s.end_poll(Some(0)).1, EndPoll::Ready { join_waker: false });
        let t = State::new_task();
        assert_eq!(t.start_poll(), StartPoll::Poll);
        t.end_poll(Some(0));
        assert_eq!(t.cancel(), (false, false));
    }

    #[test]
    fn join_waker_handshake_loses_to_completion() {
        let s = State::new_task();
        assert_eq!(s.start_poll(), StartPoll::Poll);
        assert!(s.set_join_waker().is_ok());
        assert!(s.unset_join_waker().is_ok());
        s.end_poll(Some(0));
        assert!(s.set_join_waker().is_err());
        assert!(s.unset_join_waker().is_err());
    }
}
