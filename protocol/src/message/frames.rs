//! The code addresses of a [`Sample`]: its `pc` as a zigzag varint of the address read
//! as signed (kernel addresses sit just below 2^64, so this takes 5 bytes rather than
//! 10), then a count and each return address as the zigzag delta from the address
//! before it (callers are usually near each other: 2–4 bytes each).

use super::codec::ExtendedCodec;
use super::types::{Sample, SampleContext, TaskId};
use crate::error::{DecodeError, EncodeError};
use crate::wire::{Reader, Writer, unzigzag, zigzag};

/// Return addresses of a sample, innermost first.
///
/// Encoders build it from a slice; decoders return the validated wire bytes that
/// [`Frames::iter`] turns back into addresses, so decoding never allocates.
#[derive(Debug, Clone, Copy)]
pub enum Frames<'a> {
    /// Addresses held by the caller.
    Slice(&'a [u64]),
    /// Addresses still in wire form, each a delta from the one before (the first
    /// from `base`); validated when the record was decoded.
    Wire {
        /// Number of addresses.
        count: u32,
        /// The address the first delta is taken from (the sample's `pc`).
        base: u64,
        /// The deltas.
        bytes: &'a [u8],
    },
}

impl<'a> Frames<'a> {
    /// Number of addresses.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Slice(s) => s.len(),
            Self::Wire { count, .. } => *count as usize,
        }
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The addresses, innermost first.
    #[must_use]
    pub fn iter(&self) -> FramesIter<'a> {
        match *self {
            Self::Slice(s) => FramesIter::Slice(s.iter()),
            Self::Wire { count, base, bytes } => FramesIter::Wire {
                left: count,
                prev: base,
                reader: Reader::new(bytes),
            },
        }
    }

    fn write(&self, base: u64, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let n = u32::try_from(self.len()).map_err(|_| EncodeError::Unrepresentable)?;
        w.varint(u64::from(n))?;
        let mut prev = base;
        for addr in self.iter() {
            w.varint(zigzag(addr.wrapping_sub(prev) as i64))?;
            prev = addr;
        }
        Ok(())
    }

    fn read(base: u64, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let count = r.varint_u32()?;
        let start = r.rest();
        for _ in 0..count {
            r.varint()?;
        }
        let used = start.len() - r.rest().len();
        Ok(Self::Wire {
            count,
            base,
            bytes: start.get(..used).unwrap_or_default(),
        })
    }
}

impl PartialEq for Frames<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// Iterator over [`Frames`].
#[derive(Debug, Clone)]
pub enum FramesIter<'a> {
    #[doc(hidden)]
    Slice(core::slice::Iter<'a, u64>),
    #[doc(hidden)]
    Wire { left: u32, prev: u64, reader: Reader<'a> },
}

impl Iterator for FramesIter<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        match self {
            Self::Slice(it) => it.next().copied(),
            Self::Wire { left, prev, reader } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // Validated at decode time; stop rather than panic if that ever breaks.
                let delta = unzigzag(reader.varint().ok()?);
                *prev = prev.wrapping_add(delta as u64);
                Some(*prev)
            }
        }
    }
}

/// The body of a [`Sample`]: context byte, task option (0, or 1 and the id), `pc`,
/// frames.
pub(super) struct SampleBody;

impl<'a> ExtendedCodec<'a, Sample<'a>> for SampleBody {
    fn write(v: &Sample<'a>, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u8(v.context as u8)?;
        match v.task {
            None => w.u8(0)?,
            Some(t) => {
                w.u8(1)?;
                w.varint(t.get())?;
            }
        }
        w.varint(zigzag(v.pc as i64))?;
        v.frames.write(v.pc, w)
    }

    fn read(r: &mut Reader<'a>) -> Result<Sample<'a>, DecodeError> {
        let context = *SampleContext::ALL
            .get(usize::from(r.u8()?))
            .ok_or(DecodeError::InvalidDiscriminant)?;
        let task = match r.u8()? {
            0 => None,
            1 => Some(TaskId(r.varint()?)),
            _ => return Err(DecodeError::InvalidDiscriminant),
        };
        let pc = unzigzag(r.varint()?) as u64;
        let frames = Frames::read(pc, r)?;
        Ok(Sample {
            context,
            task,
            pc,
            frames,
        })
    }
}
