//! Synchronization primitives for tasks: [`oneshot`] and bounded [`mpsc`]
//! channels, [`WaitQueue`], [`Semaphore`] and an async [`Mutex`].
//!
//! Waiting futures embed their queue node (a cordyceps intrusive list entry),
//! so waiting never allocates; a node is only touched with its primitive's
//! lock held, and a future that is dropped while queued unlinks itself.

pub mod mpsc;
pub mod oneshot;
mod semaphore;
mod wait_queue;
mod waiter;

use core::fmt;

pub use semaphore::{Acquire, Mutex, MutexGuard, Permit, Semaphore};
pub use wait_queue::{Wait, WaitQueue};

/// The primitive was closed: no permit or wake-up will ever come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("closed")
    }
}

impl core::error::Error for Closed {}
