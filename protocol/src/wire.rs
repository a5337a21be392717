//! Primitive encodings shared by every message: LEB128 varints, zigzag, strings.
//!
//! Strings are a varint byte length followed by UTF-8, the same layout postcard uses,
//! so hand-encoded and postcard-encoded bodies read alike in a hex dump.

use crate::error::{DecodeError, EncodeError};

/// The longest LEB128 encoding of a `u64`.
pub const MAX_VARINT_LEN: usize = 10;

/// Maps signed to unsigned so small magnitudes of either sign stay short.
#[inline]
#[must_use]
pub const fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
#[must_use]
pub const fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Number of bytes the LEB128 varint encoding of `v` takes.
#[inline]
#[must_use]
pub const fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends to a fixed slice; never allocates, never panics.
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    #[inline]
    pub(crate) fn new(buf: &'b mut [u8], pos: usize) -> Self {
        Self { buf, pos }
    }

    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    pub(crate) fn u8(&mut self, b: u8) -> Result<(), EncodeError> {
        let slot = self.buf.get_mut(self.pos).ok_or(EncodeError::BufferFull)?;
        *slot = b;
        self.pos += 1;
        Ok(())
    }

    #[inline]
    pub(crate) fn varint(&mut self, mut v: u64) -> Result<(), EncodeError> {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                return self.u8(byte);
            }
            self.u8(byte | 0x80)?;
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        let end = self.pos.checked_add(b.len()).ok_or(EncodeError::BufferFull)?;
        let dst = self.buf.get_mut(self.pos..end).ok_or(EncodeError::BufferFull)?;
        dst.copy_from_slice(b);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn str(&mut self, s: &str) -> Result<(), EncodeError> {
        self.varint(s.len() as u64)?;
        self.bytes(s.as_bytes())
    }

    /// The unwritten tail, for encoders (postcard) that write a slice themselves.
    pub(crate) fn tail(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.pos..).unwrap_or_default()
    }

    /// Moves `len` bytes at `from` forward by `by`; the caller has advanced past them.
    pub(crate) fn shift(&mut self, from: usize, len: usize, by: usize) {
        let end = from.saturating_add(len);
        if end.saturating_add(by) <= self.buf.len() {
            self.buf.copy_within(from..end, from + by);
        }
    }

    /// Overwrites bytes at `at` (already counted as written).
    pub(crate) fn put(&mut self, at: usize, b: &[u8]) {
        if let Some(dst) = at.checked_add(b.len()).and_then(|end| self.buf.get_mut(at..end)) {
            dst.copy_from_slice(b);
        }
    }

    pub(crate) fn advance(&mut self, n: usize) -> Result<(), EncodeError> {
        let end = self.pos.checked_add(n).ok_or(EncodeError::BufferFull)?;
        if end > self.buf.len() {
            return Err(EncodeError::BufferFull);
        }
        self.pos = end;
        Ok(())
    }
}

/// Reads from a slice; every method fails cleanly on short or malformed input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for i in 0..MAX_VARINT_LEN {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            // The tenth byte may only carry the single remaining bit.
            if i == MAX_VARINT_LEN - 1 && b > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    pub(crate) fn varint_u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.varint()?).map_err(|_| DecodeError::OutOfRange)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let b = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(b)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)?;
        core::str::from_utf8(self.bytes(n)?).map_err(|_| DecodeError::InvalidUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_length() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut buf = [0u8; 16];
            let mut w = Writer::new(&mut buf, 0);
            w.varint(v).unwrap();
            assert_eq!(w.pos(), varint_len(v), "{v}");
            let mut r = Reader::new(&buf);
            assert_eq!(r.varint().unwrap(), v);
        }
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let mut r = Reader::new(&[0xff; 11]);
        assert_eq!(r.varint(), Err(DecodeError::VarintOverflow));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert_eq!(r.varint(), Err(DecodeError::VarintOverflow));
        let mut r = Reader::new(&[0x80]);
        assert_eq!(r.varint(), Err(DecodeError::Truncated));
    }

    #[test]
    fn zigzag_round_trip() {
        for v in [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn writer_reports_full_instead_of_panicking() {
        let mut buf = [0u8; 2];
        let mut w = Writer::new(&mut buf, 0);
        assert_eq!(w.varint(1 << 20), Err(EncodeError::BufferFull));
        assert_eq!(w.bytes(&[1, 2, 3]), Err(EncodeError::BufferFull));
    }
}
