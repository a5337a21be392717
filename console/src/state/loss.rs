//! Where the kernel's losses happened: while no console was attached (expected: the
//! kernel drops what nobody reads, and reports it when a console attaches) or while
//! one was (the reader or the link did not keep up: a warning). The kernel answers
//! an attaching console with a burst: `Hello`, the losses it could not report while
//! no console listened, then a `Heartbeat`. Loss reported in that burst predates the
//! attachment. A resume after the console's own Pause gets the same kind of burst
//! (`Resume`, what the pause dropped, `Heartbeat`; the kernel reports its losses
//! before pausing): that loss was asked for, and counts with the unattached.

use serde::{Deserialize, Serialize};

/// Losses by when they happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossOrigin {
    /// Events the kernel dropped while no console read them: none was attached, or
    /// the stream was paused at the console's request.
    pub unattached: u64,
    /// Between a `Hello` and the next `Heartbeat`: the kernel's attach burst.
    in_attach_burst: bool,
    /// Loss while attached before the latest `Hello` (an earlier attachment's).
    attached_before: u64,
    /// Loss while attached was warned about since the latest `Hello`.
    warned: bool,
    /// A `Hello` was seen: without one, where loss happened is not known.
    seen_hello: bool,
}

impl LossOrigin {
    /// A console (re)attached, `total` events dropped before it.
    pub fn hello(&mut self, total: u64) {
        self.attached_before = self.attached(total);
        self.in_attach_burst = true;
        self.warned = false;
        self.seen_hello = true;
    }

    /// The kernel resumed a paused stream: the losses up to its next heartbeat are
    /// the pause's.
    pub fn resumed(&mut self) {
        self.in_attach_burst = true;
    }

    /// The end of the attach burst.
    pub fn heartbeat(&mut self) {
        self.in_attach_burst = false;
    }

    /// A `Loss` report of `count` events.
    pub fn loss(&mut self, count: u64) {
        if self.in_attach_burst {
            self.unattached = self.unattached.saturating_add(count);
        }
    }

    /// Of `total` dropped events (the sum of the `Loss` reports), those dropped while
    /// a console was attached.
    #[must_use]
    pub fn attached(&self, total: u64) -> u64 {
        total.saturating_sub(self.unattached)
    }

    /// True once per attachment, the first time it is asked with loss during it
    /// (known only after a `Hello`).
    pub fn warn_once(&mut self, total: u64) -> bool {
        if !self.seen_hello || self.warned || self.attached(total) <= self.attached_before {
            return false;
        }
        self.warned = true;
        true
    }
}
