//! Division by a divisor fixed for a long time (the TSC frequency, the utilisation
//! window) without a `div` instruction on the per-event path: an estimate from a
//! multiplication by the reciprocal, corrected once. Exact for every dividend.

/// `n / d` for a fixed `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Divisor {
    d: u64,
    /// floor(2^64 / d); unused when `d` is 1.
    r: u64,
}

impl Divisor {
    /// Division by `d` (0 is taken as 1).
    pub(crate) fn new(d: u64) -> Self {
        let d = d.max(1);
        let r = if d == 1 {
            0
        } else {
            ((1u128 << 64) / u128::from(d)) as u64
        };
        Self { d, r }
    }

    /// The divisor.
    pub(crate) fn get(self) -> u64 {
        self.d
    }

    /// `n / self.d`, rounded down.
    #[inline]
    pub(crate) fn div(self, n: u64) -> u64 {
        if self.d == 1 {
            return n;
        }
        // r ≤ 2^64/d < r + 1, so q ≤ n/d < q + 2: one correction at most.
        let q = ((u128::from(n) * u128::from(self.r)) >> 64) as u64;
        let rem = n - q * self.d;
        if rem >= self.d { q + 1 } else { q }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lucid_protocol::testdata::Rng;

    #[test]
    fn equals_the_division_instruction() {
        let mut rng = Rng::new(7);
        let divisors = [
            1,
            2,
            3,
            7,
            10,
            1_000_000_000,
            2_500_000_000,
            2_900_000_123,
            u64::MAX / 3,
            u64::MAX,
        ];
        for &d in divisors
            .iter()
            .chain(&[rng.next_u64(), rng.next_u64() >> 20, rng.next_u64() >> 40])
        {
            let div = Divisor::new(d);
            for n in [0, 1, d - 1, d, d.wrapping_add(1), u64::MAX, u64::MAX - 1, u64::MAX / 2] {
                assert_eq!(div.div(n), n / d, "{n} / {d}");
            }
            for _ in 0..20_000 {
                let n = rng.next_u64() >> (rng.next_u64() % 64);
                assert_eq!(div.div(n), n / d, "{n} / {d}");
            }
        }
    }
}
