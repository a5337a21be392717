//! How a message is laid out in a record: the compact fields and extended bodies the
//! table in `message/mod.rs` names, and the record framing around them.

use serde::{Deserialize, Serialize};

use super::Message;
use super::list::{List, ListItem};
use super::types::{
    Callsite, CallsiteId, CallsiteKind, InstanceId, Level, Outcome, PollResult, Ring, SpanId, SpanNew, TaskId,
    TraceEvent, Waker, WasmState,
};
use crate::error::{DecodeError, EncodeError};
use crate::wire::{Reader, Writer};

/// Tag shape of extended records.
const SHAPE_EXTENDED: u8 = 7;
/// Extended code that means "the code follows as a varint".
const EXTENDED_ESCAPE: u8 = 31;

#[inline]
pub(crate) const fn compact_tag(fields: usize, code: u8) -> u8 {
    // `fields` excludes the timestamp delta, which every record carries first.
    (((fields + 1) as u8) << 5) | code
}

/// A compact record without its timestamp delta: code, fields, number of fields.
pub(super) type Compact = (u8, [u64; 5], usize);

/// The compact record of `code` with `fields`.
#[inline]
pub(super) fn compact(code: u8, fields: &[u64]) -> Compact {
    let mut a = [0u64; 5];
    a[..fields.len()].copy_from_slice(fields);
    (code, a, fields.len())
}

/// `MissingFields` unless a compact record carries at least `n` fields.
#[inline]
pub(super) fn need(f: &[u64], n: usize) -> Result<(), DecodeError> {
    if f.len() < n {
        Err(DecodeError::MissingFields)
    } else {
        Ok(())
    }
}

/// A field of a compact record: one varint.
pub(super) trait CompactField: Sized {
    /// The varint.
    fn to_varint(self) -> u64;
    /// The field of a varint.
    fn from_varint(v: u64) -> Result<Self, DecodeError>;
}

impl CompactField for u64 {
    #[inline]
    fn to_varint(self) -> u64 {
        self
    }
    #[inline]
    fn from_varint(v: u64) -> Result<Self, DecodeError> {
        Ok(v)
    }
}

impl CompactField for u32 {
    #[inline]
    fn to_varint(self) -> u64 {
        self.into()
    }
    #[inline]
    fn from_varint(v: u64) -> Result<Self, DecodeError> {
        u32::try_from(v).map_err(|_| DecodeError::OutOfRange)
    }
}

/// Ids written as their number.
macro_rules! id_fields {
    ($($ty:ty),*) => {$(
        impl CompactField for $ty {
            #[inline]
            fn to_varint(self) -> u64 {
                self.get()
            }
            #[inline]
            fn from_varint(v: u64) -> Result<Self, DecodeError> {
                Ok(Self(v))
            }
        }
    )*};
}

id_fields!(TaskId, SpanId, CallsiteId, InstanceId);

/// Enums written as their index in a table of every value.
macro_rules! indexed_fields {
    ($($ty:ty: $to:expr, $all:expr;)*) => {$(
        impl CompactField for $ty {
            #[inline]
            fn to_varint(self) -> u64 {
                let to: fn($ty) -> u64 = $to;
                to(self)
            }
            #[inline]
            fn from_varint(v: u64) -> Result<Self, DecodeError> {
                enum_u64(v, &$all)
            }
        }
    )*};
}

indexed_fields! {
    Ring: |r| r.to_bits().into(), [Ring::Task, Ring::Interrupt, Ring::Control, Ring::Host];
    Outcome: |o| o as u64, [Outcome::Ok, Outcome::Cancelled, Outcome::Panicked];
    WasmState: |s| s as u64, WasmState::ALL;
}

fn enum_u64<T: Copy>(v: u64, table: &[T]) -> Result<T, DecodeError> {
    usize::try_from(v)
        .ok()
        .and_then(|i| table.get(i).copied())
        .ok_or(DecodeError::InvalidDiscriminant)
}

/// The `i`th of a row's codes (its last if it has fewer).
fn nth_code(codes: &[u8], i: usize) -> u8 {
    codes.get(i).or(codes.last()).copied().unwrap_or(0)
}

/// [`Message::PollEnd`]: the result is the code (the row's first code for
/// `Pending`, its second for `Ready`, its third for `PendingWoken`), the task the
/// one field.
pub(super) mod poll_end {
    use super::{Compact, DecodeError, Message, PollResult, TaskId, compact, need, nth_code};

    #[inline]
    pub(in super::super) fn write(codes: &[u8], task: TaskId, result: PollResult) -> Compact {
        compact(nth_code(codes, result as usize), &[task.get()])
    }

    #[inline]
    pub(in super::super) fn read<'a>(codes: &[u8], code: u8, f: &[u64]) -> Result<Message<'a>, DecodeError> {
        need(f, 1)?;
        Ok(Message::PollEnd {
            task: TaskId(f[0]),
            result: if code == nth_code(codes, PollResult::Ready as usize) {
                PollResult::Ready
            } else if code == nth_code(codes, PollResult::PendingWoken as usize) {
                PollResult::PendingWoken
            } else {
                PollResult::Pending
            },
        })
    }
}

/// [`Message::Wake`]: task, waker value, then flags `waker kind << 2 | by_ref << 1 |
/// self_wake` (kinds: 0 none, 1 task, 2 interrupt).
pub(super) mod wake {
    use super::{Compact, DecodeError, Message, TaskId, Waker, compact, need, nth_code};

    #[inline]
    pub(in super::super) fn write(codes: &[u8], task: TaskId, waker: Waker, by_ref: bool, self_wake: bool) -> Compact {
        let (kind, value) = match waker {
            Waker::None => (0, 0),
            Waker::Task(t) => (1, t.get()),
            Waker::Interrupt(v) => (2, u64::from(v)),
        };
        let flags = kind << 2 | u64::from(by_ref) << 1 | u64::from(self_wake);
        compact(nth_code(codes, 0), &[task.get(), value, flags])
    }

    #[inline]
    pub(in super::super) fn read<'a>(_codes: &[u8], _code: u8, f: &[u64]) -> Result<Message<'a>, DecodeError> {
        need(f, 3)?;
        let flags = f[2];
        let waker = match flags >> 2 {
            0 => Waker::None,
            1 => Waker::Task(TaskId(f[1])),
            2 => Waker::Interrupt(u8::try_from(f[1]).map_err(|_| DecodeError::OutOfRange)?),
            _ => return Err(DecodeError::InvalidDiscriminant),
        };
        Ok(Message::Wake {
            task: TaskId(f[0]),
            waker,
            by_ref: flags & 2 != 0,
            self_wake: flags & 1 != 0,
        })
    }
}

/// How an extended record's body (after the timestamp delta) holds a `T`.
pub(super) trait ExtendedCodec<'a, T> {
    /// Appends the body.
    fn write(v: &T, w: &mut Writer<'_>) -> Result<(), EncodeError>;
    /// Reads the body; trailing bytes are fields of a newer minor version.
    fn read(r: &mut Reader<'a>) -> Result<T, DecodeError>;
}

/// The body is the postcard encoding of the struct.
pub(super) struct Postcard;

impl<'a, T: Serialize + Deserialize<'a>> ExtendedCodec<'a, T> for Postcard {
    fn write(v: &T, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        postcard_into(w, v)
    }
    fn read(r: &mut Reader<'a>) -> Result<T, DecodeError> {
        postcard_from(r)
    }
}

/// The body is the struct's fields in order, each laid out by its [`BodyField`]
/// (for structs with lists, which decode without allocating); `fields_body!` names
/// the structs and their fields.
pub(super) struct Fields;

/// A field of an extended body laid out by [`Fields`].
trait BodyField<'a>: Sized {
    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError>;
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError>;
}

impl BodyField<'_> for u64 {
    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.varint(*self)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.varint()
    }
}

impl BodyField<'_> for u32 {
    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.varint((*self).into())
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.varint_u32()
    }
}

impl<'a> BodyField<'a> for &'a str {
    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.str(self)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.str()
    }
}

/// A presence byte (0 or 1), then the value.
impl<'a, T: BodyField<'a>> BodyField<'a> for Option<T> {
    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self {
            None => w.u8(0),
            Some(v) => {
                w.u8(1)?;
                v.write(w)
            }
        }
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::read(r)?)),
            _ => Err(DecodeError::InvalidDiscriminant),
        }
    }
}

impl<'a, T: ListItem<'a>> BodyField<'a> for List<'a, T> {
    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        List::write(self, w)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        List::read(r)
    }
}

/// Ids written as their number's varint.
macro_rules! id_body_fields {
    ($($ty:ty),*) => {$(
        impl BodyField<'_> for $ty {
            fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
                w.varint(self.get())
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.varint().map(Self)
            }
        }
    )*};
}

id_body_fields!(SpanId, CallsiteId);

/// Enums written as their index in a table of every value, in one byte.
macro_rules! byte_fields {
    ($($ty:ty: $all:expr;)*) => {$(
        impl BodyField<'_> for $ty {
            fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
                w.u8(*self as u8)
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                enum_u64(r.u8()?.into(), &$all)
            }
        }
    )*};
}

byte_fields! {
    CallsiteKind: [CallsiteKind::Event, CallsiteKind::Span];
    Level: [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error];
}

/// Lays out each struct as its fields in the order given.
macro_rules! fields_body {
    ($($ty:ident { $($field:ident),* $(,)? };)*) => {$(
        impl<'a> ExtendedCodec<'a, $ty<'a>> for Fields {
            fn write(v: &$ty<'a>, w: &mut Writer<'_>) -> Result<(), EncodeError> {
                $(BodyField::write(&v.$field, w)?;)*
                Ok(())
            }
            fn read(r: &mut Reader<'a>) -> Result<$ty<'a>, DecodeError> {
                Ok($ty { $($field: BodyField::read(r)?,)* })
            }
        }
    )*};
}

fields_body! {
    Callsite { id, kind, level, name, target, file, line, fields };
    TraceEvent { callsite, span, values };
    SpanNew { span, callsite, parent, values };
}

/// A message in its compact layout: a record code and up to five fields (the
/// timestamp delta aside). It borrows nothing, so a producer can keep it in place of
/// the message and have [`FrameEncoder::push_compact`](crate::FrameEncoder::push_compact)
/// write the record later: the bytes [`FrameEncoder::push`](crate::FrameEncoder::push)
/// writes for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactRecord {
    code: u8,
    fields: [u64; 5],
    len: u8,
}

impl CompactRecord {
    /// Most fields a compact record has.
    pub const MAX_FIELDS: usize = 5;

    /// The record of `code` with `fields`, as [`CompactRecord::code`] and
    /// [`CompactRecord::fields`] gave them; `None` if `code` cannot be a compact code
    /// (it needs five bits) or there are more than [`CompactRecord::MAX_FIELDS`] fields.
    #[must_use]
    #[inline]
    pub fn new(code: u8, fields: &[u64]) -> Option<Self> {
        let mut all = [0; Self::MAX_FIELDS];
        // Element by element: five words at most, not worth a call to `memcpy`.
        for (to, from) in all.iter_mut().zip(fields) {
            *to = *from;
        }
        Self::from_array(code, all, fields.len())
    }

    /// The record of `code` with the first `len` of `fields` (the rest are ignored):
    /// [`CompactRecord::new`] for a caller that keeps the fields in a fixed array.
    #[inline]
    #[must_use]
    pub fn from_array(code: u8, mut fields: [u64; Self::MAX_FIELDS], len: usize) -> Option<Self> {
        if code >= 32 || len > Self::MAX_FIELDS {
            return None;
        }
        for (i, f) in fields.iter_mut().enumerate() {
            if i >= len {
                *f = 0;
            }
        }
        Some(Self {
            code,
            fields,
            len: len as u8,
        })
    }

    /// The record code.
    #[must_use]
    #[inline]
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The fields, in wire order.
    #[must_use]
    #[inline]
    pub fn fields(&self) -> &[u64] {
        &self.fields[..usize::from(self.len)]
    }

    /// Appends the record with timestamp delta `ts_delta`.
    #[inline]
    pub(crate) fn write(&self, w: &mut Writer<'_>, ts_delta: u64) -> Result<(), EncodeError> {
        w.u8(compact_tag(self.fields().len(), self.code))?;
        w.varint(ts_delta)?;
        for &f in self.fields() {
            w.varint(f)?;
        }
        Ok(())
    }
}

impl Message<'_> {
    /// The message's compact layout, or `None` for a message laid out as an extended
    /// record (one that carries strings, lists or a postcard body).
    #[must_use]
    #[inline]
    pub fn to_compact(&self) -> Option<CompactRecord> {
        self.compact().map(|(code, fields, len)| CompactRecord {
            code,
            fields,
            len: len as u8,
        })
    }

    /// Appends the record (tag, timestamp delta, fields) at the writer's position.
    pub(crate) fn write_record(&self, w: &mut Writer<'_>, ts_delta: u64) -> Result<(), EncodeError> {
        if let Some(record) = self.to_compact() {
            return record.write(w, ts_delta);
        }
        self.write_extended_record(w, ts_delta)
    }
}

impl Message<'_> {
    /// Encodes the message as a detached record: a record whose timestamp delta is
    /// left to [`FrameEncoder::push_detached`](crate::FrameEncoder::push_detached),
    /// so a producer can encode a message where it happens and a consumer can frame it
    /// later. Returns the bytes written to `out`.
    pub fn encode_detached(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, 0);
        self.write_record(&mut w, 0)?;
        Ok(w.pos())
    }
}

/// Writes the detached record `record` (see [`Message::encode_detached`]) with the
/// timestamp delta `delta`: the same bytes `write_record` writes for its message.
pub(crate) fn write_detached(w: &mut Writer<'_>, record: &[u8], delta: u64) -> Result<(), EncodeError> {
    let malformed = EncodeError::Unrepresentable;
    let mut r = Reader::new(record);
    let tag = r.u8().map_err(|_| malformed)?;
    if tag >> 5 != SHAPE_EXTENDED {
        // Tag, delta (0: one byte), fields.
        let zero = r.u8().map_err(|_| malformed)?;
        if zero != 0 {
            return Err(malformed);
        }
        w.u8(tag)?;
        w.varint(delta)?;
        return w.bytes(r.rest());
    }
    if tag & 0x1f == EXTENDED_ESCAPE {
        r.varint().map_err(|_| malformed)?;
    }
    let head = record.len() - r.rest().len();
    let len = usize::try_from(r.varint().map_err(|_| malformed)?).map_err(|_| malformed)?;
    let body = r.bytes(len).map_err(|_| malformed)?;
    // The body starts with the delta (0: one byte).
    if body.first() != Some(&0) {
        return Err(malformed);
    }
    w.bytes(&record[..head])?;
    w.varint((len - 1 + crate::wire::varint_len(delta)) as u64)?;
    w.varint(delta)?;
    w.bytes(&body[1..])
}

fn postcard_into<T: Serialize>(w: &mut Writer<'_>, v: &T) -> Result<(), EncodeError> {
    let n = postcard::to_slice(v, w.tail())
        .map_err(|e| match e {
            postcard::Error::SerializeBufferFull => EncodeError::BufferFull,
            _ => EncodeError::Unrepresentable,
        })?
        .len();
    w.advance(n)
}

/// Writes an extended record: tag, body length, body. The body is written once, after
/// a one-byte length guess, and moved if its length needs a longer varint.
pub(super) fn write_extended(
    w: &mut Writer<'_>,
    code: u64,
    body: impl FnOnce(&mut Writer<'_>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let short = u8::try_from(code).ok().filter(|&c| c < EXTENDED_ESCAPE);
    w.u8((SHAPE_EXTENDED << 5) | short.unwrap_or(EXTENDED_ESCAPE))?;
    if short.is_none() {
        w.varint(code)?;
    }
    let len_at = w.pos();
    w.u8(0)?;
    let body_at = w.pos();
    body(w)?;
    let body_len = w.pos() - body_at;
    w.move_body_after_len(len_at, body_at, body_len)
}

impl Writer<'_> {
    /// Writes `len` as a varint at `len_at`, shifting the `len` body bytes that start
    /// at `body_at` (one byte after `len_at`) if the varint needs more than one byte.
    fn move_body_after_len(&mut self, len_at: usize, body_at: usize, len: usize) -> Result<(), EncodeError> {
        let mut tmp = [0u8; crate::wire::MAX_VARINT_LEN];
        let n = {
            let mut lw = Writer::new(&mut tmp, 0);
            lw.varint(len as u64)?;
            lw.pos()
        };
        let extra = n - 1;
        if extra > 0 {
            self.advance(extra)?;
            self.shift(body_at, len, extra);
        }
        self.put(len_at, &tmp[..n]);
        Ok(())
    }
}

/// Wakes a task gave itself during a poll, carried by the poll's end (minor 4): the
/// PollEnd record's second field, `count << 1 | by_ref` (one byte for up to 63).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SelfWakes {
    /// How many.
    pub count: u8,
    /// Whether they were `wake_by_ref`.
    pub by_ref: bool,
}

impl SelfWakes {
    pub(crate) fn to_field(self) -> u64 {
        u64::from(self.count) << 1 | u64::from(self.by_ref)
    }

    /// Bits above the count are for later minor versions.
    fn from_field(v: u64) -> Self {
        Self {
            count: (v >> 1) as u8,
            by_ref: v & 1 == 1,
        }
    }
}

/// Reads one record: its timestamp delta, its message (`None` for a kind this decoder
/// does not know, which has been skipped) and, for a poll's end, the self-wakes it
/// carries.
#[inline]
pub(crate) fn read_record<'a>(r: &mut Reader<'a>) -> Result<(u64, Option<Message<'a>>, SelfWakes), DecodeError> {
    let tag = r.u8()?;
    let shape = tag >> 5;
    let code = tag & 0x1f;
    match shape {
        0 => Err(DecodeError::ReservedShape),
        SHAPE_EXTENDED => {
            let ext = if code == EXTENDED_ESCAPE {
                r.varint()?
            } else {
                u64::from(code)
            };
            let len = usize::try_from(r.varint()?).map_err(|_| DecodeError::Truncated)?;
            let mut body = Reader::new(r.bytes(len)?);
            let delta = body.varint()?;
            Ok((delta, super::read_extended(ext, &mut body)?, SelfWakes::default()))
        }
        _ => {
            let mut f = [0u64; 6];
            let n = usize::from(shape);
            for slot in f.iter_mut().take(n) {
                *slot = r.varint()?;
            }
            let message = super::read_compact(code, &f[1..n])?;
            let wakes = match message {
                Some(Message::PollEnd { .. }) if n >= 3 => SelfWakes::from_field(f[2]),
                _ => SelfWakes::default(),
            };
            Ok((f[0], message, wakes))
        }
    }
}

fn postcard_from<'a, T: Deserialize<'a>>(r: &mut Reader<'a>) -> Result<T, DecodeError> {
    // Trailing bytes are fields appended by a newer minor version.
    postcard::take_from_bytes(r.rest())
        .map(|(v, _rest)| v)
        .map_err(|_| DecodeError::Body)
}
