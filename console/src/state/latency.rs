//! Latency distributions with fixed bucket bounds (1 µs … 1 s), kept for the whole
//! session: exporters need cumulative counts that never shrink, which the per-task
//! [`super::Histogram`]s (dropped with their task) cannot give.

/// Upper bounds of the buckets in nanoseconds; one more bucket counts everything above.
pub const LATENCY_BOUNDS_NS: [u64; 19] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
];

/// Counts of durations per fixed bucket, with their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LatencyHistogram {
    /// Per bucket (not cumulative); the last one is above every bound.
    counts: [u64; LATENCY_BOUNDS_NS.len() + 1],
    count: u64,
    sum_ns: u128,
}

impl LatencyHistogram {
    /// Counts `n` durations of `ns` nanoseconds each.
    pub fn record_n(&mut self, ns: u64, n: u64) {
        // A count of the bounds below (branch-free and vectorised) is the same index
        // as a binary search of the sorted bounds.
        let i = LATENCY_BOUNDS_NS.iter().map(|&b| usize::from(b < ns)).sum::<usize>();
        self.counts[i] = self.counts[i].saturating_add(n);
        self.count = self.count.saturating_add(n);
        self.sum_ns += u128::from(ns) * u128::from(n);
    }

    /// Counts one duration.
    pub fn record(&mut self, ns: u64) {
        self.record_n(ns, 1);
    }

    /// Durations counted.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the durations in nanoseconds.
    #[must_use]
    pub fn sum_ns(&self) -> u128 {
        self.sum_ns
    }

    /// `(upper bound in ns, durations at or below it)` for every bound, ascending; the
    /// count above the last bound is `count() - ` the last of these.
    pub fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        LATENCY_BOUNDS_NS.iter().zip(&self.counts).scan(0u64, |acc, (&b, &c)| {
            *acc += c;
            Some((b, *acc))
        })
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_on_a_bound_counts_in_that_bucket() {
        let mut h = LatencyHistogram::default();
        for ns in [0, 1_000, 1_001, 999_999_999, 1_000_000_000, 1_000_000_001] {
            h.record(ns);
        }
        h.record_n(30_000, 3);
        let c: Vec<(u64, u64)> = h.cumulative().collect();
        assert_eq!(c[0], (1_000, 2));
        assert_eq!(c[1], (2_500, 3));
        assert_eq!(c[4], (25_000, 3));
        assert_eq!(c[5], (50_000, 6));
        assert_eq!(c[17], (500_000_000, 6));
        assert_eq!(c[18], (1_000_000_000, 8));
        assert_eq!(h.count(), 9);
        assert_eq!(h.sum_ns(), 3_000_002_001 + 90_000);
        let mut twice = h;
        twice.merge(&h);
        assert_eq!(twice.count(), 18);
        assert_eq!(twice.cumulative().last(), Some((1_000_000_000, 16)));
    }
}
