//! The keyframe form of the state's long sequences (timeline slices, wake marks,
//! the task map's numbers): one byte blob per sequence, field by field (a column
//! each), timestamps as differences from the previous one, every number a varint.
//!
//! A keyframe is mostly such sequences. Written record by record, their timestamps
//! are full 8–9-byte varints that LZ4 cannot shorten; as columns of differences they
//! are one or two bytes each and the columns of small, similar numbers compress well.
//! Differences are taken with wrapping arithmetic, so every sequence of values round
//! trips exactly and no input makes the reader overflow.
//!
//! The blobs are untrusted input (an index file): every count is checked against the
//! bytes left before anything is allocated for it.

use std::fmt;
use std::marker::PhantomData;

use lucid_protocol::{unzigzag, zigzag};
use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// Columns being written.
#[derive(Default)]
pub(crate) struct Out(Vec<u8>);

impl Out {
    /// A number.
    #[inline]
    pub(crate) fn u(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// A number as its difference from `base` (another field of the same record).
    #[inline]
    pub(crate) fn relative(&mut self, base: u64, v: u64) {
        self.delta(&mut { base }, v);
    }

    /// A number as its difference from `*prev` (which becomes `v`).
    #[inline]
    pub(crate) fn delta(&mut self, prev: &mut u64, v: u64) {
        let d = v.wrapping_sub(*prev) as i64;
        *prev = v;
        self.u(zigzag(d));
    }

    /// An optional number: 0 for none, else its difference from `base` plus two
    /// (1 escapes the two largest differences, written as the value itself).
    pub(crate) fn opt_from(&mut self, base: u64, v: Option<u64>) {
        let Some(v) = v else {
            self.u(0);
            return;
        };
        match zigzag(v.wrapping_sub(base) as i64).checked_add(2) {
            Some(z) => self.u(z),
            None => {
                self.u(1);
                self.u(v);
            }
        }
    }

    /// `cols`, each after its length, so a reader can walk them side by side.
    pub(crate) fn columns<const N: usize>(&mut self, cols: [Out; N]) {
        cols.iter().for_each(|c| self.u(c.0.len() as u64));
        cols.iter().for_each(|c| self.0.extend_from_slice(&c.0));
    }

    /// The columns written.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Columns being read.
pub(crate) struct In<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// What is wrong with a blob.
pub(crate) type Bad = &'static str;

impl<'a> In<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// A number.
    #[inline]
    pub(crate) fn u(&mut self) -> Result<u64, Bad> {
        // Most numbers in a keyframe's columns are one byte.
        match self.bytes.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.u_long(),
        }
    }

    #[cold]
    fn u_long(&mut self) -> Result<u64, Bad> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = *self.bytes.get(self.pos).ok_or("columns end early")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    return Err("varint too long");
                }
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err("varint too long");
            }
        }
    }

    /// A number no larger than `max`.
    #[inline]
    pub(crate) fn at_most(&mut self, max: u64) -> Result<u64, Bad> {
        let v = self.u()?;
        if v > max {
            return Err("value out of range");
        }
        Ok(v)
    }

    /// A `u32`.
    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32, Bad> {
        Ok(self.at_most(u64::from(u32::MAX))? as u32)
    }

    /// A bool (0 or 1).
    #[inline]
    pub(crate) fn bool(&mut self) -> Result<bool, Bad> {
        Ok(self.at_most(1)? == 1)
    }

    /// A count of records, each taking at least `min_bytes` of what is left.
    pub(crate) fn count(&mut self, min_bytes: usize) -> Result<usize, Bad> {
        let n = self.u()?;
        self.fits(usize::try_from(n).unwrap_or(usize::MAX), min_bytes)
    }

    /// `n`, if `n` records of at least `min_bytes` each fit in what is left.
    pub(crate) fn fits(&self, n: usize, min_bytes: usize) -> Result<usize, Bad> {
        if n.saturating_mul(min_bytes) > self.bytes.len() - self.pos {
            return Err("count larger than the columns");
        }
        Ok(n)
    }

    /// A number written by [`Out::delta`].
    #[inline]
    pub(crate) fn delta(&mut self, prev: &mut u64) -> Result<u64, Bad> {
        *prev = prev.wrapping_add(unzigzag(self.u()?) as u64);
        Ok(*prev)
    }

    /// A number written by [`Out::relative`].
    #[inline]
    pub(crate) fn relative(&mut self, base: u64) -> Result<u64, Bad> {
        self.delta(&mut { base })
    }

    /// A number written by [`Out::opt_from`].
    #[inline]
    pub(crate) fn opt_from(&mut self, base: u64) -> Result<Option<u64>, Bad> {
        let z = match self.u()? {
            0 => return Ok(None),
            1 => return self.u().map(Some),
            z => z - 2,
        };
        Ok(Some(base.wrapping_add(unzigzag(z) as u64)))
    }

    /// The rest of the bytes as `N` columns written by [`Out::columns`].
    pub(crate) fn columns<const N: usize>(&mut self) -> Result<[In<'a>; N], Bad> {
        let mut lens = [0usize; N];
        for l in &mut lens {
            *l = usize::try_from(self.u()?).map_err(|_| "column length out of range")?;
        }
        let mut rest = &self.bytes[self.pos..];
        if lens.iter().try_fold(0usize, |a, &l| a.checked_add(l)) != Some(rest.len()) {
            return Err("column lengths do not add up");
        }
        self.pos = self.bytes.len();
        Ok(lens.map(|l| {
            let (col, tail) = rest.split_at(l);
            rest = tail;
            In::new(col)
        }))
    }

    /// Whether every byte was read.
    pub(crate) fn finish(&self) -> Result<(), Bad> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err("bytes left after the columns")
        }
    }
}

/// Writes `write`'s columns as one byte blob.
pub(crate) fn serialize<S: Serializer>(s: S, write: impl FnOnce(&mut Out)) -> Result<S::Ok, S::Error> {
    let mut out = Out::default();
    write(&mut out);
    s.serialize_bytes(&out.0)
}

/// Reads a blob written by [`serialize`] with `read`, which must consume all of it.
pub(crate) fn deserialize<'de, D: Deserializer<'de>, T>(
    d: D,
    read: impl FnOnce(&mut In<'_>) -> Result<T, Bad>,
) -> Result<T, D::Error> {
    struct Blob<T, F>(F, PhantomData<T>);
    impl<'de, T, F: FnOnce(&mut In<'_>) -> Result<T, Bad>> Visitor<'de> for Blob<T, F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("columns (bytes)")
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<T, E> {
            let mut r = In::new(v);
            let t = (self.0)(&mut r).map_err(E::custom)?;
            r.finish().map_err(E::custom)?;
            Ok(t)
        }
        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<T, E> {
            self.visit_bytes(&v)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
            // Formats without a bytes type write them as a sequence.
            let mut v = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                v.push(b);
            }
            self.visit_bytes(&v)
        }
    }
    d.deserialize_bytes(Blob(read, PhantomData))
}

/// A blob of columns inside a larger serialised value (read whole, then parsed).
pub(crate) struct Blob(pub Vec<u8>);

impl serde::Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize(d, |r| {
            let rest = r.bytes[r.pos..].to_vec();
            r.pos = r.bytes.len();
            Ok(Blob(rest))
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn numbers_round_trip(values in proptest::collection::vec(any::<u64>(), 0..64),
                              opts in proptest::collection::vec(proptest::option::of(any::<u64>()), 0..64),
                              base in any::<u64>()) {
            let mut out = Out::default();
            let mut prev = 0;
            for &v in &values {
                out.u(v);
                out.delta(&mut prev, v);
                out.relative(base, v);
            }
            for &o in &opts {
                out.opt_from(base, o);
            }
            let bytes = out.into_bytes();
            let mut r = In::new(&bytes);
            let mut prev = 0;
            for &v in &values {
                prop_assert_eq!(r.u().unwrap(), v);
                prop_assert_eq!(r.delta(&mut prev).unwrap(), v);
                prop_assert_eq!(r.relative(base).unwrap(), v);
            }
            for &o in &opts {
                prop_assert_eq!(r.opt_from(base).unwrap(), o);
            }
            prop_assert!(r.finish().is_ok());
        }

        #[test]
        fn any_bytes_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = In::new(&bytes);
            let mut prev = 0;
            while r.u().is_ok() && r.delta(&mut prev).is_ok() && r.opt_from(7).is_ok() && r.count(3).is_ok() {}
        }
    }

    #[test]
    fn edge_optionals_round_trip() {
        for base in [0, 1, u64::MAX, 1 << 63] {
            for v in [
                None,
                Some(base),
                Some(base.wrapping_add(1)),
                Some(base.wrapping_sub(1)),
                Some(0),
                Some(u64::MAX),
                Some(base.wrapping_add(1 << 63)),
                Some(base.wrapping_add((1 << 63) - 1)),
            ] {
                let mut out = Out::default();
                out.opt_from(base, v);
                let bytes = out.into_bytes();
                let mut r = In::new(&bytes);
                assert_eq!(r.opt_from(base).unwrap(), v, "base {base}");
                r.finish().unwrap();
            }
        }
    }

    #[test]
    fn a_count_beyond_the_bytes_is_refused() {
        let mut out = Out::default();
        out.u(1000);
        out.u(1);
        let bytes = out.into_bytes();
        assert!(In::new(&bytes).count(1).is_err());
        assert!(In::new(&[0x80; 11]).u().is_err());
    }
}
