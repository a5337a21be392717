//! A CPU's busy time over the whole session, summarised at three resolutions, so a
//! timeline zoomed out past the retained poll slices still shows how busy the CPU
//! was (and says where it knows nothing) instead of drawing the past as idle.
//!
//! Buckets are powers of two of TSC ticks, so no division and no TSC rate is needed
//! to fold a poll: at 2.1 GHz they are about 1 ms, 32 ms and 1 s wide, and each
//! level keeps [`BUCKETS_PER_LEVEL`] of them (about 1 s, 33 s and 17 min). Only
//! buckets in which something ran are stored, so a quiet CPU costs nothing.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Buckets kept per level.
pub const BUCKETS_PER_LEVEL: usize = 1024;
/// log2 of the bucket width in ticks, finest first.
const SHIFTS: [u32; 3] = [21, 26, 31];
/// A poll spread over more buckets than this (a poll much longer than the level's
/// whole span) is folded into its newest ones only.
const MAX_SPREAD: u64 = BUCKETS_PER_LEVEL as u64;

/// Busy ticks per bucket at one resolution, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Level {
    /// (bucket index = tick >> shift, busy ticks in it).
    buckets: VecDeque<(u64, u64)>,
    /// The oldest bucket this level still describes: everything from here on that
    /// is not in `buckets` was idle (or not reported).
    from: Option<u64>,
}

/// See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusyHistory {
    levels: [Level; 3],
}

impl BusyHistory {
    /// Folds a poll that ran from `start` to `end` (TSC).
    pub fn add(&mut self, start: u64, end: u64) {
        let end = end.max(start);
        for (level, &shift) in self.levels.iter_mut().zip(&SHIFTS) {
            level.add(start, end, shift);
        }
    }

    /// The share of `from..to` (TSC) the CPU spent in polls, from the finest level
    /// that still covers `from`; `None` when no level reaches back that far.
    #[must_use]
    pub fn busy_share(&self, from: u64, to: u64) -> Option<f64> {
        if to <= from {
            return None;
        }
        let (level, shift) = self
            .levels
            .iter()
            .zip(SHIFTS)
            .find(|(l, shift)| l.from.is_some_and(|b| b << shift <= from))?;
        Some(level.busy_between(from, to, shift) as f64 / (to - from) as f64)
    }

    /// The oldest tick any level describes.
    #[must_use]
    pub fn covers_from(&self) -> Option<u64> {
        self.levels
            .iter()
            .zip(SHIFTS)
            .filter_map(|(l, shift)| l.from.map(|b| b << shift))
            .min()
    }
}

/// The first tick after bucket `b` (saturating at the end of time).
fn bucket_end(b: u64, shift: u32) -> u64 {
    u64::try_from(u128::from(b + 1) << shift).unwrap_or(u64::MAX)
}

impl Level {
    fn add(&mut self, start: u64, end: u64, shift: u32) {
        let (first, last) = (start >> shift, end >> shift);
        let first = first.max(last.saturating_sub(MAX_SPREAD - 1));
        for b in first..=last {
            let lo = start.max(b << shift);
            let hi = end.min(bucket_end(b, shift));
            self.credit(b, hi.saturating_sub(lo));
        }
    }

    fn credit(&mut self, bucket: u64, ticks: u64) {
        if self.from.is_none() {
            self.from = Some(bucket);
        }
        match self.buckets.back_mut() {
            Some((b, t)) if *b == bucket => *t += ticks,
            Some((b, _)) if *b > bucket => {
                // A poll reported late (the merge released it after newer ones):
                // find its bucket; older than what is kept, it is dropped.
                match self.buckets.binary_search_by_key(&bucket, |&(b, _)| b) {
                    Ok(i) => self.buckets[i].1 += ticks,
                    Err(i) if i > 0 || self.from.is_some_and(|f| bucket >= f) => {
                        self.buckets.insert(i, (bucket, ticks));
                        self.trim();
                    }
                    Err(_) => {}
                }
            }
            _ => {
                self.buckets.push_back((bucket, ticks));
                self.trim();
            }
        }
    }

    fn trim(&mut self) {
        while self.buckets.len() > BUCKETS_PER_LEVEL {
            if let Some((b, _)) = self.buckets.pop_front() {
                self.from = Some(b + 1);
            }
        }
    }

    /// Busy ticks in `from..to`, buckets cut at the edges pro rata.
    fn busy_between(&self, from: u64, to: u64, shift: u32) -> u64 {
        let first = self.buckets.partition_point(|&(b, _)| bucket_end(b, shift) <= from);
        let mut busy = 0u128;
        for &(b, ticks) in self.buckets.range(first..) {
            let (lo, hi) = (b << shift, bucket_end(b, shift));
            if lo >= to {
                break;
            }
            let overlap = hi.min(to) - lo.max(from);
            busy += u128::from(ticks) * u128::from(overlap) / u128::from(hi - lo);
        }
        u64::try_from(busy).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1 << 21;

    #[test]
    fn a_half_busy_stretch_reads_as_half_busy_at_every_zoom() {
        let mut h = BusyHistory::default();
        for i in 0..100 {
            h.add(i * MS, i * MS + MS / 2);
        }
        let share = h.busy_share(0, 100 * MS).unwrap();
        assert!((share - 0.5).abs() < 0.01, "{share}");
        let one = h.busy_share(10 * MS, 11 * MS).unwrap();
        assert!((one - 0.5).abs() < 0.01, "{one}");
        assert_eq!(
            h.busy_share(200 * MS, 300 * MS),
            Some(0.0),
            "known idle after the last poll"
        );
    }

    #[test]
    fn old_time_falls_back_to_coarser_levels_then_to_unknown() {
        let mut h = BusyHistory::default();
        // 4096 fully busy fine buckets: the finest level keeps the newest 1024.
        for i in 0..4096 {
            h.add(i * MS, (i + 1) * MS);
        }
        let old = h.busy_share(0, MS).expect("a coarser level still covers it");
        assert!((old - 1.0).abs() < 0.01, "{old}");
        assert_eq!(h.covers_from(), Some(0));
        let mut late = BusyHistory::default();
        late.add(1 << 40, (1 << 40) + MS);
        assert_eq!(late.busy_share(0, MS), None, "before the first poll nothing is known");
    }

    #[test]
    fn a_late_poll_lands_in_its_own_bucket() {
        let mut h = BusyHistory::default();
        h.add(10 * MS, 11 * MS);
        h.add(12 * MS, 12 * MS + MS / 4);
        h.add(11 * MS, 11 * MS + MS / 2);
        let share = h.busy_share(11 * MS, 12 * MS).unwrap();
        assert!((share - 0.5).abs() < 0.01, "{share}");
    }

    #[test]
    fn a_very_long_poll_is_bounded() {
        let mut h = BusyHistory::default();
        h.add(0, u64::MAX / 2);
        h.add(u64::MAX - 5, u64::MAX);
        assert!(h.busy_share(u64::MAX - 10, u64::MAX).is_some());
        assert!(h.levels.iter().all(|l| l.buckets.len() <= BUCKETS_PER_LEVEL));
    }
}
