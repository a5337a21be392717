//! Time: the TSC is the monotonic clock, calibrated against the PIT at boot.

use core::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use crate::arch;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

/// Records the TSC frequency (from calibration) and the boot reference point.
pub fn init(tsc_hz: u64, boot_tsc: u64) {
    TSC_HZ.store(tsc_hz, Ordering::Relaxed);
    BOOT_TSC.store(boot_tsc, Ordering::Relaxed);
}

/// The TSC value taken as time zero (when the loader was entered).
pub fn boot_tsc() -> u64 {
    BOOT_TSC.load(Ordering::Relaxed)
}

/// TSC ticks per second (0 before calibration).
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// A point on the monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// Now.
    pub fn now() -> Self {
        Self(arch::rdtsc())
    }

    /// The raw TSC value.
    pub fn ticks(self) -> u64 {
        self.0
    }

    /// From a raw TSC value.
    pub fn from_ticks(ticks: u64) -> Self {
        Self(ticks)
    }

    /// Time from `earlier` to `self` (zero if `earlier` is later).
    pub fn duration_since(self, earlier: Instant) -> Duration {
        ticks_to_duration(self.0.saturating_sub(earlier.0))
    }

    /// Time since `self`.
    pub fn elapsed(self) -> Duration {
        Self::now().duration_since(self)
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_to_ticks(d)))
    }
}

/// Converts TSC ticks to a duration (zero before calibration).
pub fn ticks_to_duration(ticks: u64) -> Duration {
    let hz = tsc_hz();
    if hz == 0 {
        return Duration::ZERO;
    }
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(hz);
    Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
}

/// Converts a duration to TSC ticks.
pub fn duration_to_ticks(d: Duration) -> u64 {
    let ticks = d.as_nanos() * u128::from(tsc_hz()) / 1_000_000_000;
    ticks.min(u128::from(u64::MAX)) as u64
}

/// Time since the loader was entered (zero before calibration).
pub fn since_boot() -> Duration {
    Instant::now().duration_since(Instant(BOOT_TSC.load(Ordering::Relaxed)))
}

/// Busy-waits for `d`.
pub fn spin_for(d: Duration) {
    let end = Instant::now().saturating_add(d);
    while Instant::now() < end {
        core::hint::spin_loop();
    }
}
