//! Messages that outlive the buffer they were decoded from.

use alloc::boxed::Box;
use alloc::vec;

use super::{FixedMessage, Message};
use crate::error::EncodeError;
use crate::frame::MAX_FRAME_LEN;
use crate::wire::{Reader, Writer};

/// A [`Message`] that borrows nothing, in 32 bytes: a message of a compact record as
/// its fields, any other as its record bytes on the heap (one allocation), decoded
/// again by [`OwnedMessage::message`]. For holding messages a while, e.g. in a queue
/// that reorders them.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedMessage(Repr);

#[derive(Debug, Clone, PartialEq)]
enum Repr {
    Fixed(FixedMessage),
    /// The record at timestamp delta 0.
    Record(Box<[u8]>),
}

/// Record bytes tried on the stack before a frame's worth on the heap.
const SHORT_RECORD: usize = 256;

impl OwnedMessage {
    /// An owned copy of `m`. Fails only if `m` does not fit a frame, which a decoded
    /// message always does.
    #[inline]
    pub fn new(m: &Message<'_>) -> Result<Self, EncodeError> {
        match FixedMessage::of(m) {
            Some(fixed) => Ok(Self(Repr::Fixed(fixed))),
            None => Self::record(m),
        }
    }

    /// `m` as its record on the heap.
    #[inline(never)]
    fn record(m: &Message<'_>) -> Result<Self, EncodeError> {
        let mut short = [0u8; SHORT_RECORD];
        match record(m, &mut short) {
            Ok(bytes) => Ok(Self(Repr::Record(bytes.into()))),
            Err(EncodeError::BufferFull) => {
                let mut long = vec![0u8; MAX_FRAME_LEN];
                Ok(Self(Repr::Record(record(m, &mut long)?.into())))
            }
            Err(e) => Err(e),
        }
    }

    /// The message, borrowing its strings and lists from `self`. `None` only if its
    /// record did not decode again, which the protocol's round trip rules out.
    #[inline]
    #[must_use]
    pub fn message(&self) -> Option<Message<'_>> {
        match &self.0 {
            Repr::Fixed(m) => Some(m.message()),
            Repr::Record(bytes) => decode(bytes),
        }
    }

    /// The message if it borrows nothing (one of a compact record), at no more cost
    /// than a copy; `None` for one held as its record (see [`Self::message`]). For a
    /// hot path that keeps the decoding out of line.
    #[inline]
    #[must_use]
    pub fn fixed(&self) -> Option<Message<'static>> {
        match &self.0 {
            Repr::Fixed(m) => Some(m.message()),
            Repr::Record(_) => None,
        }
    }
}

/// The message of a record `OwnedMessage::record` wrote.
#[inline(never)]
fn decode(record: &[u8]) -> Option<Message<'_>> {
    super::read_record(&mut Reader::new(record)).ok()?.1
}

/// `m`'s record at timestamp delta 0, in `buf`.
fn record<'b>(m: &Message<'_>, buf: &'b mut [u8]) -> Result<&'b [u8], EncodeError> {
    let mut w = Writer::new(buf, 0);
    m.write_record(&mut w, 0)?;
    let n = w.pos();
    Ok(&buf[..n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{InstanceId, TaskId};
    use crate::testdata::sample_messages;

    #[test]
    fn every_sample_message_survives_owning() {
        for m in sample_messages() {
            let owned = OwnedMessage::new(&m).expect("a sample fits a frame");
            assert_eq!(owned.message(), Some(m), "{m:?}");
            if let Some(fixed) = owned.fixed() {
                assert_eq!(fixed, m);
            }
        }
    }

    #[test]
    fn an_owned_message_is_as_small_as_the_merge_needs() {
        // The console's merge queues one per held event.
        assert!(size_of::<OwnedMessage>() <= 32, "{}", size_of::<OwnedMessage>());
        assert!(size_of::<Option<OwnedMessage>>() <= 32);
    }

    #[test]
    fn a_message_longer_than_the_stack_buffer_is_owned_too() {
        let name = "n".repeat(SHORT_RECORD * 2);
        let m = Message::WasmTrap(crate::WasmTrap {
            instance: InstanceId(1),
            task: TaskId(2),
            code: 3,
            reason: &name,
        });
        let owned = OwnedMessage::new(&m).expect("fits a frame");
        assert_eq!(owned.message(), Some(m));
    }
}
