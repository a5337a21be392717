//! A small log-linear histogram: exact below 16, then 8 buckets per power of two
//! (at most 12.5 % relative error), grown lazily so an idle task costs a few bytes.

use serde::{Deserialize, Serialize};

/// Values below this are counted exactly.
const LINEAR: u64 = 16;
/// Buckets per power of two above [`LINEAR`].
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;

/// Buckets there are at most (the index of `u64::MAX`, plus one).
const MAX_BUCKETS: usize = (LINEAR + (63 - 4) * SUB + SUB) as usize;

/// Counts of `u64` values (TSC ticks) with percentiles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Serialised sparsely: most buckets are empty, and a keyframe holds thousands
    /// of histograms.
    #[serde(with = "sparse")]
    counts: Vec<u32>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
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

    /// Adds the values counted by `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        if self.count == 0 || other.min < self.min {
            self.min = other.min;
        }
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.sum += other.sum;
    }

    /// Counts one value.
    pub fn record(&mut self, v: u64) {
        let i = index(v);
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] = self.counts[i].saturating_add(1);
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.count += 1;
        self.sum += u128::from(v);
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
            (self.sum / u128::from(self.count)) as u64
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
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return upper(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Non-empty buckets as (upper bound, count), ascending.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &c)| (upper(i), u64::from(c)))
    }
}

/// `Vec<u32>` as its length and its non-zero entries.
mod sparse {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::MAX_BUCKETS;

    pub fn serialize<S: Serializer>(counts: &[u32], s: S) -> Result<S::Ok, S::Error> {
        let nonzero: Vec<(u32, u32)> = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &c)| (i as u32, c))
            .collect();
        (counts.len() as u32, nonzero).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        let (len, nonzero) = <(u32, Vec<(u32, u32)>)>::deserialize(d)?;
        let len = len as usize;
        if len > MAX_BUCKETS {
            return Err(D::Error::custom("histogram longer than its bucket range"));
        }
        let mut counts = vec![0; len];
        for (i, c) in nonzero {
            *counts
                .get_mut(i as usize)
                .ok_or_else(|| D::Error::custom("histogram bucket out of range"))? = c;
        }
        Ok(counts)
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
