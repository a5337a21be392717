//! Items that borrow nothing: what a pipeline releases, held past the chunk it was
//! decoded from (items after a replay's stop) or handed to another thread (the live
//! [`Worker`](super::Worker), replay's decoding worker).

use lucid_protocol::{Event, Item, OwnedMessage, Ring, StreamId};

/// An [`Item`] that borrows nothing.
#[derive(Debug, Clone)]
pub(crate) enum OwnedItem {
    Event {
        stream: StreamId,
        seq: u32,
        ts: u64,
        /// `None` for a message that could not be copied (none that was decoded):
        /// it is passed on as nothing.
        message: Option<OwnedMessage>,
    },
    /// A gap, restart or frame error, which borrow nothing anyway.
    Plain(Item<'static>),
}

impl OwnedItem {
    /// An owned copy of `item`.
    pub(crate) fn new(item: &Item<'_>) -> Self {
        match *item {
            Item::Event { stream, seq, event } => Self::Event {
                stream,
                seq,
                ts: event.ts,
                message: OwnedMessage::new(&event.message).ok(),
            },
            Item::Gap {
                stream,
                expected,
                received,
            } => Self::Plain(Item::Gap {
                stream,
                expected,
                received,
            }),
            Item::Restart { stream } => Self::Plain(Item::Restart { stream }),
            Item::Error { offset, error } => Self::Plain(Item::Error { offset, error }),
        }
    }

    /// Calls `f` with the item this holds (not for an event whose message could not
    /// be copied).
    pub(crate) fn with(&self, f: impl FnOnce(&Item<'_>)) {
        match self {
            Self::Plain(item) => f(item),
            Self::Event {
                stream,
                seq,
                ts,
                message,
            } => {
                if let Some(message) = message.as_ref().and_then(OwnedMessage::message) {
                    f(&Item::Event {
                        stream: *stream,
                        seq: *seq,
                        event: Event { ts: *ts, message },
                    });
                }
            }
        }
    }

    /// The timestamp of a task or interrupt event (as replay's cursor counts time).
    pub(crate) fn timestamp(&self) -> Option<u64> {
        match self {
            Self::Event { stream, ts, .. } if matches!(stream.ring, Ring::Task | Ring::Interrupt) => Some(*ts),
            _ => None,
        }
    }
}
