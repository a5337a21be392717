//! Warnings: facts from the stream that something is wrong, not guesses.

use std::fmt;

use lucid_protocol::TaskId;
use serde::{Deserialize, Serialize};

use crate::time::Ticks;

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WarningKind {
    /// A task is pending, not scheduled, and no waker for it exists: nothing can wake it.
    LostWaker,
    /// A single poll took longer than the threshold.
    LongPoll,
    /// A poll still in progress has run longer than the threshold: the task does not
    /// yield.
    NeverYields,
    /// A task woke itself many times in a row.
    SelfWakeStorm,
    /// A task panicked; the kernel contained it and went on.
    TaskPanicked,
    /// A cycle of tasks each waiting on something only another task of the cycle
    /// can signal.
    Deadlock,
    /// A task waits on something nothing alive can signal.
    StuckWait,
    /// Frames of a stream are missing.
    SequenceGap,
    /// A frame failed its CRC.
    CrcError,
    /// A frame of an incompatible protocol version, or a newer minor version.
    Protocol,
    /// Other damaged frames (COBS, size, malformed records, a cut-off frame).
    Malformed,
    /// Events that do not fit together (an unmatched poll end, time going backwards,
    /// a stream restart).
    Inconsistent,
    /// The kernel restarted: a new boot begins in the stream.
    KernelRestart,
}

impl WarningKind {
    /// Every kind, in display order.
    pub const ALL: [Self; 13] = [
        Self::LostWaker,
        Self::LongPoll,
        Self::NeverYields,
        Self::SelfWakeStorm,
        Self::TaskPanicked,
        Self::Deadlock,
        Self::StuckWait,
        Self::SequenceGap,
        Self::CrcError,
        Self::Protocol,
        Self::Malformed,
        Self::Inconsistent,
        Self::KernelRestart,
    ];

    /// Short name for tables.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::LostWaker => "lost waker",
            Self::LongPoll => "long poll",
            Self::NeverYields => "never yields",
            Self::SelfWakeStorm => "self-wake storm",
            Self::TaskPanicked => "task panicked",
            Self::Deadlock => "deadlock",
            Self::StuckWait => "stuck wait",
            Self::SequenceGap => "sequence gap",
            Self::CrcError => "crc error",
            Self::Protocol => "protocol",
            Self::Malformed => "malformed",
            Self::Inconsistent => "inconsistent",
            Self::KernelRestart => "kernel restart",
        }
    }
}

/// One warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// Trace time (TSC) when known.
    pub ts: Option<Ticks>,
    /// CPU when known.
    pub cpu: Option<u32>,
    /// Task when it concerns one.
    pub task: Option<TaskId>,
    /// The full sentence.
    pub message: String,
    /// Pcs sampled during what it is about (a long poll), most sampled first, with
    /// their counts: what the task was doing.
    #[serde(default)]
    pub samples: Vec<(u64, u32)>,
}

impl Warning {
    /// A warning with only a kind and a message.
    #[must_use]
    pub fn new(kind: WarningKind, message: String) -> Self {
        Self {
            kind,
            ts: None,
            cpu: None,
            task: None,
            message,
            samples: Vec::new(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
