//! The console's three clocks, each its own type, and the one place TSC ticks become
//! nanoseconds.
//!
//! - [`Ticks`]: the kernel's TSC, a reading or a span; every trace timestamp.
//! - trace nanoseconds: ticks through a [`Clock`] (the kernel's TSC rate), a plain
//!   `u64` of nanoseconds as every view and report shows them.
//! - [`HostNs`]: when the host received a chunk of the stream (its own clock, not
//!   comparable with trace time).

pub(crate) mod fastdiv;

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use fastdiv::Divisor;

lucid_protocol::u64_newtype! {
    /// A reading of the kernel's TSC, or a span of it. Serialised, displayed and
    /// debug-printed as the bare number, as the trace carries it.
    Ticks;
    /// When the host received a chunk of the stream: nanoseconds of the host's wall
    /// clock since the Unix epoch.
    HostNs;
}

impl Ticks {
    /// No time.
    pub const ZERO: Self = Self(0);
    /// The largest reading.
    pub const MAX: Self = Self(u64::MAX);

    /// `self - earlier`, or zero if `earlier` is later.
    #[inline]
    #[must_use]
    pub const fn saturating_sub(self, earlier: Self) -> Self {
        Self(self.0.saturating_sub(earlier.0))
    }

    /// `self + span`, at most [`Ticks::MAX`].
    #[inline]
    #[must_use]
    pub const fn saturating_add(self, span: Self) -> Self {
        Self(self.0.saturating_add(span.0))
    }
}

// Arithmetic on ticks saturates: every reading and span comes from the stream, which
// is untrusted, so a sum past the range stays at the top and a difference below zero
// is zero, instead of wrapping (or panicking in a debug build).
impl Add for Ticks {
    type Output = Self;
    #[inline]
    fn add(self, rhs: Self) -> Self {
        self.saturating_add(rhs)
    }
}

impl AddAssign for Ticks {
    #[inline]
    fn add_assign(&mut self, rhs: Self) {
        *self = self.saturating_add(rhs);
    }
}

impl Sub for Ticks {
    type Output = Self;
    #[inline]
    fn sub(self, rhs: Self) -> Self {
        self.saturating_sub(rhs)
    }
}

impl SubAssign for Ticks {
    #[inline]
    fn sub_assign(&mut self, rhs: Self) {
        *self = self.saturating_sub(rhs);
    }
}

impl Sum for Ticks {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Self::saturating_add)
    }
}

impl HostNs {
    /// Nanoseconds from `earlier` to `self`, zero if `earlier` is later.
    #[inline]
    #[must_use]
    pub const fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// The kernel's TSC rate: converts [`Ticks`] to nanoseconds and back. Every
/// conversion is exact (rounded down, saturating) whatever the path: the product
/// `ticks × 10⁹` usually fits in 64 bits and is divided by a precomputed reciprocal
/// instead of a division instruction, which matters on the per-event path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    hz: Divisor,
}

impl Clock {
    /// A clock of `hz` ticks per second (0 is taken as 1).
    #[must_use]
    pub fn new(hz: u64) -> Self {
        Self { hz: Divisor::new(hz) }
    }

    /// Ticks per second.
    #[inline]
    #[must_use]
    pub fn hz(self) -> u64 {
        self.hz.get()
    }

    /// `ticks` in nanoseconds.
    #[inline]
    #[must_use]
    pub fn ns(self, ticks: Ticks) -> u64 {
        match ticks.0.checked_mul(1_000_000_000) {
            Some(p) => self.hz.div(p),
            None => (u128::from(ticks.0) * 1_000_000_000 / u128::from(self.hz())).min(u128::from(u64::MAX)) as u64,
        }
    }

    /// `ticks` in seconds.
    #[must_use]
    pub fn secs_f64(self, ticks: Ticks) -> f64 {
        ticks.0 as f64 / self.hz() as f64
    }

    /// `ns` nanoseconds in ticks, rounded down.
    #[inline]
    #[must_use]
    pub fn ticks(self, ns: u64) -> Ticks {
        let hz = self.hz();
        Ticks(match ns.checked_mul(hz) {
            Some(p) => p / 1_000_000_000,
            None => (u128::from(ns) * u128::from(hz) / 1_000_000_000).min(u128::from(u64::MAX)) as u64,
        })
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock({} Hz)", self.hz())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_arithmetic_saturates() {
        let big = Ticks(u64::MAX - 5);
        assert_eq!(big + Ticks(10), Ticks::MAX);
        let mut t = big;
        t += Ticks(10);
        assert_eq!(t, Ticks::MAX);
        assert_eq!([big, big, Ticks(1)].into_iter().sum::<Ticks>(), Ticks::MAX);
        assert_eq!(Ticks(3) - Ticks(5), Ticks::ZERO);
        let mut t = Ticks(3);
        t -= Ticks(5);
        assert_eq!(t, Ticks::ZERO);
        assert_eq!(Ticks(7) + Ticks(5) - Ticks(2), Ticks(10));
    }

    /// The conversion by 128-bit arithmetic, which every path must equal.
    fn reference_ns(ticks: u64, hz: u64) -> u64 {
        (u128::from(ticks) * 1_000_000_000 / u128::from(hz.max(1))).min(u128::from(u64::MAX)) as u64
    }

    #[test]
    fn ns_equals_the_wide_division_on_both_paths() {
        for hz in [1, 3, 1_000_000_000, 2_900_000_123, u64::MAX] {
            let clock = Clock::new(hz);
            for t in [
                0,
                1,
                17,
                hz,
                u64::MAX / 1_000_000_000,
                u64::MAX / 1_000_000_000 + 1,
                u64::MAX,
            ] {
                assert_eq!(clock.ns(Ticks(t)), reference_ns(t, hz), "{t} ticks at {hz} Hz");
            }
        }
    }

    #[test]
    fn ticks_round_down_and_saturate() {
        let clock = Clock::new(2_500_000_000);
        assert_eq!(clock.ticks(1), Ticks(2));
        assert_eq!(clock.ticks(1_000_000_000), Ticks(2_500_000_000));
        assert_eq!(clock.ticks(u64::MAX), Ticks(u64::MAX));
        assert_eq!(clock.ns(clock.ticks(4_000)), 4_000);
    }

    #[test]
    fn a_zero_rate_is_one_hertz() {
        assert_eq!(Clock::new(0).hz(), 1);
        assert_eq!(Clock::new(0).ns(Ticks(2)), 2_000_000_000);
    }

    #[test]
    fn ids_and_times_serialise_as_bare_numbers() {
        assert_eq!(serde_json::to_string(&Ticks(42)).unwrap(), "42");
        assert_eq!(serde_json::to_string(&HostNs(7)).unwrap(), "7");
        assert_eq!(format!("{:?} {}", Ticks(5), HostNs(6)), "5 6");
    }
}
