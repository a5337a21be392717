//! Await frames: `.frame("serve client")` names a stage of a task. While the task
//! is parked inside the stage (its future returned `Pending` and has not been
//! polled since) the stage is a wait of the task on a resource of kind
//! [`ResourceKind::Frame`] with operation [`WaitOp::Inside`], so the trace holds a
//! parked task's await stack, outermost stage first down to the resource it waits
//! on: `demo > serve client > chan#12 recv` (await-tree's idea, recorded over time).
//!
//! A stage that never parks costs one load per poll: its resource is created when
//! it first parks (and dropped with the future), and each park is a wait begun at
//! `Pending` and ended when the future is next polled.

use core::fmt;
use core::future::Future;
use core::panic::Location;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::resource::{Resource, ResourceKind, WaitOp, WaitSpan};

/// A future running as a named stage of its task; see the module documentation.
pub struct Framed<F> {
    future: F,
    name: &'static str,
    location: &'static Location<'static>,
    /// Declared before `resource`: the open park ends before the resource drops.
    span: WaitSpan,
    /// Created at the first park.
    resource: Option<Resource>,
}

impl<F: Future> Future for Framed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned (never moved out or replaced while
        // `self` lives, and `Framed` has no `Unpin` impl of its own beyond the
        // auto trait, which holds only when `F: Unpin`); the other fields are not
        // pinned and are only accessed by reference.
        let this = unsafe { self.get_unchecked_mut() };
        // Polled again: the task is no longer parked inside the stage.
        this.span.ready();
        // SAFETY: see above: `future` is pinned with `self`.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        let poll = future.poll(cx);
        if poll.is_pending() {
            this.parked();
        }
        poll
    }
}

impl<F> Framed<F> {
    #[cold]
    fn parked(&mut self) {
        let (name, location) = (self.name, self.location);
        let resource = self
            .resource
            .get_or_insert_with(|| Resource::at(ResourceKind::Frame, name, None, location));
        self.span.pending(resource.id(), WaitOp::Inside);
    }

    /// The stage's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<F> fmt::Debug for Framed<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framed")
            .field("name", &self.name)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// `.frame(name)` on every future.
pub trait FrameExt: Future + Sized {
    /// Runs `self` as the stage `name` of its task (created at the caller's
    /// location): see the module documentation.
    #[track_caller]
    fn frame(self, name: &'static str) -> Framed<Self> {
        Framed {
            future: self,
            name,
            location: Location::caller(),
            span: WaitSpan::new(),
            resource: None,
        }
    }
}

impl<F: Future> FrameExt for F {}
