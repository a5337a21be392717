//! Lists of items on the wire, and the tracing field values they carry.

use serde::Serialize;

use crate::error::{DecodeError, EncodeError};
use crate::wire::{Reader, Writer};

/// A tracing field value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Value<'a> {
    /// `bool`
    Bool(bool),
    /// Any unsigned integer.
    U64(u64),
    /// Any signed integer.
    I64(i64),
    /// Any float.
    F64(f64),
    /// A string, or a value recorded with `Debug`/`Display`.
    Str(&'a str),
}

/// A list on the wire: a varint count, then the items.
///
/// Encoders build it from a slice; decoders return it as validated wire bytes that
/// [`List::iter`] turns back into items, so decoding never allocates.
#[derive(Debug, Clone, Copy)]
pub enum List<'a, T> {
    /// Items held by the caller.
    Slice(&'a [T]),
    /// Items still in wire form; validated when the record was decoded.
    Wire {
        /// Number of items.
        count: u32,
        /// Their encoding.
        bytes: &'a [u8],
    },
}

/// An item that can live in a [`List`].
pub trait ListItem<'a>: Copy + Sized {
    /// Appends the item.
    #[doc(hidden)]
    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError>;
    /// Reads one item.
    #[doc(hidden)]
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError>;
}

impl<'a> ListItem<'a> for &'a str {
    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.str(self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.str()
    }
}

impl<'a> ListItem<'a> for Value<'a> {
    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match *self {
            Value::Bool(b) => {
                w.u8(0)?;
                w.u8(u8::from(b))
            }
            Value::U64(v) => {
                w.u8(1)?;
                w.varint(v)
            }
            Value::I64(v) => {
                w.u8(2)?;
                w.varint(crate::wire::zigzag(v))
            }
            Value::F64(v) => {
                w.u8(3)?;
                w.bytes(&v.to_le_bytes())
            }
            Value::Str(s) => {
                w.u8(4)?;
                w.str(s)
            }
        }
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => match r.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(DecodeError::InvalidDiscriminant),
            },
            1 => Value::U64(r.varint()?),
            2 => Value::I64(crate::wire::unzigzag(r.varint()?)),
            3 => {
                let b = r.bytes(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::F64(f64::from_le_bytes(a))
            }
            4 => Value::Str(r.str()?),
            _ => return Err(DecodeError::InvalidDiscriminant),
        })
    }
}

impl<'a, T: ListItem<'a>> List<'a, T> {
    /// Number of items.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Slice(s) => s.len(),
            Self::Wire { count, .. } => *count as usize,
        }
    }

    /// Whether the list has no items.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items.
    #[must_use]
    pub fn iter(&self) -> ListIter<'a, T> {
        match *self {
            Self::Slice(s) => ListIter::Slice(s.iter()),
            Self::Wire { count, bytes } => ListIter::Wire {
                left: count,
                reader: Reader::new(bytes),
            },
        }
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let n = u32::try_from(self.len()).map_err(|_| EncodeError::Unrepresentable)?;
        w.varint(u64::from(n))?;
        for item in self.iter() {
            item.write(w)?;
        }
        Ok(())
    }

    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let count = r.varint_u32()?;
        let start = r.rest();
        let before = start.len();
        for _ in 0..count {
            T::read(r)?;
        }
        let used = before - r.rest().len();
        Ok(Self::Wire {
            count,
            bytes: start.get(..used).unwrap_or_default(),
        })
    }
}

impl<'a, T: ListItem<'a> + PartialEq> PartialEq for List<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// Iterator over a [`List`].
#[derive(Debug, Clone)]
pub enum ListIter<'a, T> {
    #[doc(hidden)]
    Slice(core::slice::Iter<'a, T>),
    #[doc(hidden)]
    Wire { left: u32, reader: Reader<'a> },
}

impl<'a, T: ListItem<'a>> Iterator for ListIter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            Self::Slice(it) => it.next().copied(),
            Self::Wire { left, reader } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // Validated at decode time; stop rather than panic if that ever breaks.
                T::read(reader).ok()
            }
        }
    }
}
