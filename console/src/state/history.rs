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
        busy_in(self.buckets.range(first..), shift, from, to)
    }
}

/// Busy ticks in `from..to` of `buckets` (oldest first, from the first that ends
/// after `from`), buckets cut at the edges pro rata.
fn busy_in<'a>(buckets: impl Iterator<Item = &'a (u64, u64)>, shift: u32, from: u64, to: u64) -> u64 {
    let mut busy = 0u128;
    for &(b, ticks) in buckets {
        let (lo, hi) = (b << shift, bucket_end(b, shift));
        if lo >= to {
            break;
        }
        let overlap = hi.min(to) - lo.max(from);
        busy += u128::from(ticks) * u128::from(overlap) / u128::from(hi - lo);
    }
    u64::try_from(busy).unwrap_or(u64::MAX)
}

/// Buckets a task's history keeps before halving its resolution.
pub const TASK_BUCKETS: usize = 256;
/// log2 of a task history's finest bucket in ticks (about 1 ms at 2.1 GHz).
const TASK_FINEST_SHIFT: u8 = 21;

/// One task's busy time over its whole life, in buckets that double in width each
/// time more than [`TASK_BUCKETS`] would be needed: a short task costs one bucket, a
/// task that runs for an hour still at most 256 (about 14 s each). Only buckets in
/// which it ran are stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskHistory {
    shift: u8,
    /// (bucket index = tick >> shift, busy ticks in it), oldest first.
    buckets: Vec<(u64, u64)>,
}

impl Default for TaskHistory {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskHistory {
    /// A history with nothing in it.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            shift: TASK_FINEST_SHIFT,
            buckets: Vec::new(),
        }
    }

    /// Folds a poll that ran from `start` to `end` (TSC).
    pub fn add(&mut self, start: u64, end: u64) {
        let end = end.max(start);
        // A poll spanning more buckets than kept coarsens first.
        while (end >> self.shift) - (start >> self.shift) >= TASK_BUCKETS as u64 && self.shift < 63 {
            self.coarsen();
        }
        let shift = u32::from(self.shift);
        for b in (start >> shift)..=(end >> shift) {
            let lo = start.max(b << shift);
            let hi = end.min(bucket_end(b, shift));
            self.credit(b, hi.saturating_sub(lo));
        }
        while self.buckets.len() > TASK_BUCKETS && self.shift < 63 {
            self.coarsen();
        }
    }

    fn credit(&mut self, bucket: u64, ticks: u64) {
        match self.buckets.last_mut() {
            Some((b, t)) if *b == bucket => *t += ticks,
            Some((b, _)) if *b > bucket => match self.buckets.binary_search_by_key(&bucket, |&(b, _)| b) {
                Ok(i) => self.buckets[i].1 += ticks,
                Err(i) => self.buckets.insert(i, (bucket, ticks)),
            },
            _ => self.buckets.push((bucket, ticks)),
        }
    }

    /// Halves the resolution: pairs of buckets become one.
    fn coarsen(&mut self) {
        self.shift += 1;
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.buckets.len() / 2 + 1);
        for &(b, t) in &self.buckets {
            match merged.last_mut() {
                Some((m, mt)) if *m == b >> 1 => *mt += t,
                _ => merged.push((b >> 1, t)),
            }
        }
        self.buckets = merged;
    }

    /// The share of `from..to` (TSC) the task spent in polls, buckets cut at the
    /// edges pro rata.
    #[must_use]
    pub fn busy_share(&self, from: u64, to: u64) -> f64 {
        if to <= from {
            return 0.0;
        }
        let shift = u32::from(self.shift);
        let first = self.buckets.partition_point(|&(b, _)| bucket_end(b, shift) <= from);
        busy_in(self.buckets[first..].iter(), shift, from, to) as f64 / (to - from) as f64
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
    fn a_task_history_covers_a_whole_life_in_bounded_buckets() {
        let mut h = TaskHistory::default();
        // An hour-long task, busy half of every millisecond.
        for i in 0..3_600_000u64 {
            h.add(i * MS, i * MS + MS / 2);
        }
        assert!(h.buckets.len() <= TASK_BUCKETS, "{}", h.buckets.len());
        let whole = h.busy_share(0, 3_600_000 * MS);
        assert!((whole - 0.5).abs() < 0.01, "{whole}");
        let early = h.busy_share(0, 60_000 * MS);
        assert!((early - 0.5).abs() < 0.05, "the first minute is still there: {early}");
        let mut short = TaskHistory::default();
        short.add(5 * MS, 5 * MS + 100);
        assert_eq!(short.buckets.len(), 1, "a short task costs one bucket");
        assert_eq!(short.busy_share(10 * MS, 20 * MS), 0.0);
    }

    #[test]
    fn a_task_history_takes_late_and_endless_polls() {
        let mut h = TaskHistory::default();
        h.add(10 * MS, 11 * MS);
        h.add(3 * MS, 3 * MS + MS / 2);
        assert!((h.busy_share(3 * MS, 4 * MS) - 0.5).abs() < 0.01);
        h.add(0, u64::MAX);
        assert!(h.buckets.len() <= TASK_BUCKETS);
        assert!(h.busy_share(u64::MAX / 2, u64::MAX / 2 + MS) > 0.9);
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
