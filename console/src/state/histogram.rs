//! A small log-linear histogram: exact below 16, then 8 buckets per power of two
//! (at most 12.5 % relative error), grown lazily so an idle task costs a few bytes.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::columns::{Bad, In, Out};

/// Values below this are counted exactly.
const LINEAR: u64 = 16;
/// Buckets per power of two above [`LINEAR`].
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;

/// Buckets there are at most (the index of `u64::MAX`, plus one).
const MAX_BUCKETS: usize = (LINEAR + (63 - 4) * SUB + SUB) as usize;

/// Counts of `u64` values (TSC ticks) with percentiles.
///
/// Buckets are held sparsely, as (index, count) pairs in index order, while that is
/// smaller than holding every bucket up to the highest one (a task's histograms
/// usually count a few values), and densely after that. The representation is not
/// observable: equality, debug output and serialisation are of the dense form.
#[derive(Clone, Default)]
pub struct Histogram {
    /// Sparse: index, count, index, count, … by index; dense: the counts. Up to five
    /// sparse buckets are held inline (no allocation for most tasks' histograms).
    counts: SmallVec<[u32; 10]>,
    /// Buckets of the dense form (the highest bucket counted so far, plus one).
    len: u16,
    dense: bool,
    count: u64,
    /// The sum, as two halves of a `u128` (keeps the struct 8-aligned and small).
    sum_lo: u64,
    sum_hi: u64,
    min: u64,
    max: u64,
}

impl PartialEq for Histogram {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self.count == other.count
            && self.sum() == other.sum()
            && self.min == other.min
            && self.max == other.max
            && self.nonzero().eq(other.nonzero())
    }
}

impl Eq for Histogram {}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("counts", &self.to_dense())
            .field("count", &self.count)
            .field("sum", &self.sum())
            .field("min", &self.min)
            .field("max", &self.max)
            .finish()
    }
}

/// The serialised form: the dense counts as their length and non-zero entries (most
/// buckets are empty, and a keyframe holds thousands of histograms), then the totals.
#[derive(Serialize, Deserialize)]
struct Repr {
    counts: (u32, Vec<(u32, u32)>),
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Serialize for Histogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Repr {
            counts: (
                u32::from(self.len),
                self.nonzero().map(|(i, c)| (i as u32, c)).collect(),
            ),
            count: self.count,
            sum: self.sum(),
            min: self.min,
            max: self.max,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let r = Repr::deserialize(d)?;
        let (len, nonzero) = r.counts;
        if len as usize > MAX_BUCKETS {
            return Err(D::Error::custom("histogram longer than its bucket range"));
        }
        let mut dense = vec![0u32; len as usize];
        for (i, c) in nonzero {
            *dense
                .get_mut(i as usize)
                .ok_or_else(|| D::Error::custom("histogram bucket out of range"))? = c;
        }
        let mut h = Histogram {
            len: len as u16,
            count: r.count,
            min: r.min,
            max: r.max,
            ..Histogram::default()
        };
        h.set_sum(r.sum);
        let pairs: Vec<(u32, u32)> = dense
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &c)| (i as u32, c))
            .collect();
        h.set_from_pairs(&pairs);
        Ok(h)
    }
}

impl Histogram {
    /// Writes `hs` as columns (for a keyframe): bucket ranges, non-empty buckets,
    /// their indexes (as steps) and counts, then the totals, the maximum after the
    /// minimum and the sum as its excess over `count × min`.
    pub(crate) fn write_columns(hs: &[&Histogram], o: &mut Out) {
        hs.iter().for_each(|h| o.u(u64::from(h.len)));
        hs.iter().for_each(|h| o.u(h.nonzero().count() as u64));
        for h in hs {
            let mut p = 0;
            h.nonzero().for_each(|(i, _)| o.delta(&mut p, i as u64));
        }
        hs.iter().for_each(|h| h.nonzero().for_each(|(_, c)| o.u(u64::from(c))));
        hs.iter().for_each(|h| o.relative(h.bucket_total(), h.count));
        hs.iter().for_each(|h| o.u(h.min));
        hs.iter().for_each(|h| o.relative(h.min, h.max));
        for h in hs {
            let excess = h.sum().wrapping_sub(u128::from(h.count) * u128::from(h.min));
            o.u(excess as u64);
            o.u((excess >> 64) as u64);
        }
    }

    /// Reads `n` histograms written by [`Histogram::write_columns`].
    pub(crate) fn read_columns(r: &mut In<'_>, n: usize) -> Result<Vec<Histogram>, Bad> {
        let mut hs = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.at_most(MAX_BUCKETS as u64)? as u16;
            hs.push(Histogram {
                len,
                ..Histogram::default()
            });
        }
        let mut ks = Vec::with_capacity(n);
        for h in &hs {
            ks.push(r.at_most(u64::from(h.len))? as usize);
        }
        // Each bucket takes two bytes at least (index step and count).
        let total = r.fits(ks.iter().sum(), 2)?;
        let mut idx = Vec::with_capacity(total);
        for (h, &k) in hs.iter().zip(&ks) {
            let mut p = 0;
            for j in 0..k {
                let before = p;
                let i = r.delta(&mut p)?;
                if (j > 0 && i <= before) || i >= u64::from(h.len) {
                    return Err("histogram buckets out of order or range");
                }
                idx.push(i as u32);
            }
        }
        let mut counts = Vec::with_capacity(total);
        for _ in 0..total {
            counts.push(r.u32()?);
        }
        let (mut at, mut pairs) = (0, Vec::new());
        for (h, &k) in hs.iter_mut().zip(&ks) {
            pairs.clear();
            pairs.extend(idx[at..at + k].iter().zip(&counts[at..at + k]).map(|(&i, &c)| (i, c)));
            at += k;
            h.set_from_pairs(&pairs);
        }
        for h in &mut hs {
            h.count = r.relative(h.bucket_total())?;
        }
        for h in &mut hs {
            h.min = r.u()?;
        }
        for h in &mut hs {
            h.max = r.relative(h.min)?;
        }
        for h in &mut hs {
            let excess = u128::from(r.u()?) | u128::from(r.u()?) << 64;
            h.set_sum(excess.wrapping_add(u128::from(h.count) * u128::from(h.min)));
        }
        Ok(hs)
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    (LINEAR + u64::from(exp - 4) * SUB + sub) as usize
}

/// Largest value that falls into bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let exp = (i - LINEAR) / SUB + 4;
    let sub = (i - LINEAR) % SUB;
    let base = (SUB + sub) << (exp - u64::from(SUB_BITS));
    base.saturating_add((1u64 << (exp - u64::from(SUB_BITS))) - 1)
}

impl Histogram {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The sum of the values counted.
    fn sum(&self) -> u128 {
        (u128::from(self.sum_hi) << 64) | u128::from(self.sum_lo)
    }

    fn set_sum(&mut self, s: u128) {
        self.sum_lo = s as u64;
        self.sum_hi = (s >> 64) as u64;
    }

    fn add_sum(&mut self, v: u128) {
        self.set_sum(self.sum() + v);
    }

    /// The counts of the buckets added up (what `count` is, unless a bucket
    /// saturated).
    fn bucket_total(&self) -> u64 {
        self.nonzero().map(|(_, c)| u64::from(c)).sum()
    }

    /// Non-empty buckets as (index, count), ascending.
    fn nonzero(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        let (dense, sparse) = if self.dense {
            (&self.counts[..], &[][..])
        } else {
            (&[][..], &self.counts[..])
        };
        dense
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &c)| (i, c))
            .chain(
                sparse
                    .chunks_exact(2)
                    .map(|p| (p[0] as usize, p[1]))
                    .filter(|(_, c)| *c > 0),
            )
    }

    /// Every bucket up to the highest one counted.
    fn to_dense(&self) -> Vec<u32> {
        let mut d = vec![0u32; usize::from(self.len)];
        for (i, c) in self.nonzero() {
            d[i] = c;
        }
        d
    }

    /// Takes the non-empty buckets `pairs` (index, count; ascending, below `self.len`)
    /// in the smaller of the two forms.
    fn set_from_pairs(&mut self, pairs: &[(u32, u32)]) {
        let nonzero = pairs.iter().filter(|(_, c)| *c > 0).count();
        if nonzero * 2 < usize::from(self.len) {
            self.dense = false;
            self.counts = SmallVec::with_capacity(nonzero * 2);
            for &(i, c) in pairs.iter().filter(|(_, c)| *c > 0) {
                self.counts.extend([i, c]);
            }
        } else {
            self.dense = true;
            self.counts = SmallVec::from_elem(0, usize::from(self.len));
            for &(i, c) in pairs {
                self.counts[i as usize] = c;
            }
        }
    }

    /// Adds `n` to bucket `i`.
    fn add(&mut self, i: usize, n: u32) {
        if i >= usize::from(self.len) {
            self.len = (i + 1) as u16;
        }
        if self.dense {
            if self.counts.len() <= i {
                self.counts.resize(i + 1, 0);
            }
            self.counts[i] = self.counts[i].saturating_add(n);
            return;
        }
        let pairs = self.counts.len() / 2;
        // Binary search over the pairs' indexes.
        let (mut lo, mut hi) = (0, pairs);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if (self.counts[2 * mid] as usize) < i {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo < pairs && self.counts[2 * lo] as usize == i {
            self.counts[2 * lo + 1] = self.counts[2 * lo + 1].saturating_add(n);
            return;
        }
        if (pairs + 1) * 2 >= usize::from(self.len) {
            // Dense is no larger now.
            let mut d = self.to_dense();
            d[i] = d[i].saturating_add(n);
            self.counts = SmallVec::from_vec(d);
            self.dense = true;
            return;
        }
        if self.counts.len() == self.counts.capacity() {
            // Five buckets fit inline (a task's histograms count few values); past
            // them, twice as many each time.
            self.counts.reserve_exact(self.counts.capacity().max(10));
        }
        // Shifted by hand: a few pairs, where `insert` calls memmove twice.
        let at = 2 * lo;
        self.counts.extend_from_slice(&[0, 0]);
        let mut j = self.counts.len() - 2;
        while j > at {
            self.counts[j + 1] = self.counts[j - 1];
            self.counts[j] = self.counts[j - 2];
            j -= 2;
        }
        self.counts[at] = i as u32;
        self.counts[at + 1] = n;
    }

    /// Adds the values counted by `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if other.len > self.len && self.dense {
            self.counts.resize(usize::from(other.len), 0);
        }
        self.len = self.len.max(other.len);
        for (i, c) in other.nonzero() {
            self.add(i, c);
        }
        if self.count == 0 || other.min < self.min {
            self.min = other.min;
        }
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.add_sum(other.sum());
    }

    /// Counts one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.add(index(v), 1);
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.count += 1;
        self.add_sum(u128::from(v));
    }

    /// Values counted.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest value (0 when empty).
    #[must_use]
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Smallest value (0 when empty).
    #[must_use]
    pub fn min(&self) -> u64 {
        self.min
    }

    /// Mean (0 when empty).
    #[must_use]
    pub fn mean(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            (self.sum() / u128::from(self.count)) as u64
        }
    }

    /// The value at quantile `q` (0.0..=1.0): the upper bound of the bucket that holds
    /// it, never above the maximum. 0 when empty.
    #[must_use]
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, c) in self.nonzero() {
            seen += u64::from(c);
            if seen >= rank {
                return upper(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Non-empty buckets as (upper bound, count), ascending.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.nonzero().map(|(i, c)| (upper(i), u64::from(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_sparsely_and_round_trips() {
        let mut h = Histogram::new();
        for v in [3, 3, 900, 1_000_000, u64::MAX] {
            h.record(v);
        }
        let bytes = postcard::to_allocvec(&h).expect("serialise");
        assert!(bytes.len() < 60, "{} bytes", bytes.len());
        assert_eq!(postcard::from_bytes::<Histogram>(&bytes).expect("deserialise"), h);
        // A length beyond the bucket range is refused, not allocated.
        // (Postcard lays a struct out as the tuple of its fields.)
        let bad =
            postcard::to_allocvec(&(u32::MAX, Vec::<(u32, u32)>::new(), 0u64, 0u128, 0u64, 0u64)).expect("serialise");
        assert!(postcard::from_bytes::<Histogram>(&bad).is_err());
        let good = postcard::to_allocvec(&(3u32, vec![(2u32, 1u32)], 1u64, 2u128, 2u64, 2u64)).expect("serialise");
        assert_eq!(
            postcard::from_bytes::<Histogram>(&good)
                .expect("deserialise")
                .quantile(0.5),
            2
        );
    }

    #[test]
    fn buckets_cover_every_value_and_bound_the_error() {
        for v in (0..5000u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(upper(i) >= v, "{v}");
            if i > 0 {
                assert!(upper(i - 1) < v, "{v}");
            }
            assert!(upper(i) - v <= v / 8 + 1, "{v}: {}", upper(i));
        }
    }

    #[test]
    fn quantiles_of_a_uniform_range() {
        let mut h = Histogram::new();
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!((h.count(), h.min(), h.max(), h.mean()), (1000, 1, 1000, 500));
        let p50 = h.quantile(0.5);
        assert!((500..=563).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((990..=1000).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), 1000);
        assert_eq!(Histogram::new().quantile(0.5), 0);
        assert_eq!(h.buckets().map(|(_, c)| c).sum::<u64>(), 1000);
    }
}
