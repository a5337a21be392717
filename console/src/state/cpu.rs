//! One CPU: its polls, idle time, run queue and steals.

use std::collections::VecDeque;

use lucid_protocol::TaskId;
use serde::{Deserialize, Serialize};

use super::columns;
use super::history::BusyHistory;
use super::latency::LatencyHistogram;
use crate::time::Ticks;
use crate::time::fastdiv::Divisor;

/// Poll slices kept per CPU for the timeline.
pub const MAX_SLICES_PER_CPU: usize = 8192;
/// Run-queue depth samples kept per CPU.
pub const MAX_RQ_SAMPLES: usize = 512;
/// CPUs a CPU's steals are told apart by (a hostile stream cannot grow the list).
pub const MAX_STEAL_SOURCES: usize = 64;
/// Utilisation windows kept per CPU.
pub const MAX_UTIL_WINDOWS: usize = 256;

/// One completed poll on a CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// The task polled.
    pub task: TaskId,
    /// Poll start.
    pub start: Ticks,
    /// Poll end.
    pub end: Ticks,
    /// The poll returned `Ready`.
    pub ready: bool,
}

/// One CPU (all rings of it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    /// Events seen from this CPU's streams.
    pub events: u64,
    /// Task being polled and when the poll started.
    pub polling: Option<(TaskId, u64)>,
    /// Time spent in polls.
    pub busy_ticks: Ticks,
    /// Time between `CpuIdle` and `CpuBusy`.
    pub idle_ticks: Ticks,
    /// Since when the CPU is idle, if it is.
    pub idle_since: Option<u64>,
    /// Events dropped on this CPU (from `Loss` reports).
    pub dropped: u64,
    /// Tasks stolen from other CPUs.
    pub steals_in: u64,
    /// Tasks stolen by other CPUs.
    pub steals_out: u64,
    /// Tasks this CPU stole, by the CPU it took them from (sorted by CPU, at most
    /// [`MAX_STEAL_SOURCES`] CPUs; steals from further ones count only in
    /// `steals_in`).
    pub steals_from: Vec<(u32, u64)>,
    /// Session totals of this CPU's streams, never pruned (for exporters).
    pub totals: CpuTotals,
    /// Run-queue depth samples (TSC, depth), oldest first.
    pub run_queue: VecDeque<(u64, u32)>,
    /// Busy ticks per utilisation window (window index, ticks), oldest first.
    pub util: VecDeque<(u64, u64)>,
    /// Recent polls, oldest first.
    #[serde(with = "slice_columns")]
    pub slices: VecDeque<Slice>,
    /// Busy time over the whole session, for a timeline zoomed out past `slices`.
    pub history: BusyHistory,
    /// Start of the poll in progress that was reported as not yielding.
    pub(crate) stuck_warned: Option<u64>,
    /// Pcs sampled during the poll in progress (for a long-poll warning).
    #[serde(default)]
    pub(crate) poll_samples: Vec<u64>,
}

/// What one CPU's streams reported over the whole session. Unlike the per-task
/// figures these survive the pruning of completed tasks, so they only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CpuTotals {
    /// `PollStart` events.
    pub polls: u64,
    /// `Wake` events.
    pub wakes: u64,
    /// `TaskSpawned` events.
    pub spawns: u64,
    /// `TaskCompleted` events.
    pub completions: u64,
    /// Tasks that ended cancelled: completed as cancelled, or dropped unfinished.
    pub cancellations: u64,
    /// Durations of the polls that ended on this CPU.
    pub poll_latency: LatencyHistogram,
    /// Time from wake to poll start of the polls that started on this CPU.
    pub sched_latency: LatencyHistogram,
}

/// The slices as columns: tasks, start after the previous start, duration, ready.
mod slice_columns {
    use std::collections::VecDeque;

    use lucid_protocol::TaskId;
    use serde::{Deserializer, Serializer};

    use super::{Slice, columns};
    use crate::time::Ticks;

    pub(super) fn serialize<S: Serializer>(v: &VecDeque<Slice>, s: S) -> Result<S::Ok, S::Error> {
        columns::serialize(s, |o| {
            o.u(v.len() as u64);
            let mut p = 0;
            v.iter().for_each(|x| o.delta(&mut p, x.task.0));
            let mut p = 0;
            v.iter().for_each(|x| o.delta(&mut p, x.start.0));
            v.iter().for_each(|x| o.relative(x.start.0, x.end.0));
            v.iter().for_each(|x| o.u(u64::from(x.ready)));
        })
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VecDeque<Slice>, D::Error> {
        columns::deserialize(d, |r| {
            let n = r.count(4)?;
            let mut v = Vec::with_capacity(n);
            let mut p = 0;
            for _ in 0..n {
                v.push(Slice {
                    task: TaskId(r.delta(&mut p)?),
                    start: Ticks::ZERO,
                    end: Ticks::ZERO,
                    ready: false,
                });
            }
            let mut p = 0;
            for x in &mut v {
                x.start = Ticks(r.delta(&mut p)?);
            }
            for x in &mut v {
                x.end = Ticks(r.relative(x.start.0)?);
            }
            for x in &mut v {
                x.ready = r.bool()?;
            }
            Ok(v.into())
        })
    }
}

impl Cpu {
    pub(crate) fn set_idle(&mut self, ts: u64, idle: bool) {
        if idle {
            self.idle_since.get_or_insert(ts);
        } else if let Some(since) = self.idle_since.take() {
            self.idle_ticks += Ticks(ts.saturating_sub(since));
        }
    }

    pub(crate) fn count_steal_from(&mut self, victim: u32) {
        match self.steals_from.binary_search_by_key(&victim, |&(c, _)| c) {
            Ok(i) => self.steals_from[i].1 += 1,
            Err(i) if self.steals_from.len() < MAX_STEAL_SOURCES => self.steals_from.insert(i, (victim, 1)),
            Err(_) => {}
        }
    }

    pub(crate) fn sample_run_queue(&mut self, ts: u64, depth: u32) {
        if self.run_queue.len() >= MAX_RQ_SAMPLES {
            self.run_queue.pop_front();
        }
        self.run_queue.push_back((ts, depth));
    }

    /// [`Cpu::add_busy_by`] with the window width in ticks.
    #[cfg(test)]
    pub(crate) fn add_busy(&mut self, start: u64, end: u64, window_ticks: u64) {
        self.add_busy_by(start, end, Divisor::new(window_ticks));
    }

    /// Adds the busy time of a poll from `start` to `end` to the utilisation windows
    /// (of `window` ticks) it overlaps (only the newest [`MAX_UTIL_WINDOWS`] of a very
    /// long poll), and to the session's busy history.
    pub(crate) fn add_busy_by(&mut self, start: u64, end: u64, window: Divisor) {
        self.history.add(start, end);
        let window_ticks = window.get();
        let last = window.div(end);
        let first = window.div(start).max(last.saturating_sub(MAX_UTIL_WINDOWS as u64));
        for w in first..=last {
            let lo = start.max(w * window_ticks);
            let hi = end.min(w.saturating_add(1).saturating_mul(window_ticks));
            if hi > lo || start == end {
                self.add_util(w, hi.saturating_sub(lo));
            }
        }
    }

    fn add_util(&mut self, window: u64, ticks: u64) {
        match self.util.back_mut() {
            Some((w, t)) if *w == window => *t += ticks,
            // Polls that arrive late from an older window are added to the newest
            // one rather than searched for: windows are a display aid, the totals
            // live in `busy_ticks`.
            Some((w, t)) if *w > window => *t += ticks,
            _ => {
                if self.util.len() >= MAX_UTIL_WINDOWS {
                    self.util.pop_front();
                }
                self.util.push_back((window, ticks));
            }
        }
    }

    pub(crate) fn push_slice(&mut self, s: Slice) {
        if self.slices.len() >= MAX_SLICES_PER_CPU {
            self.slices.pop_front();
        }
        self.slices.push_back(s);
    }

    /// Latest run-queue depth sample.
    #[must_use]
    pub fn run_queue_depth(&self) -> Option<u32> {
        self.run_queue.back().map(|&(_, d)| d)
    }

    /// Utilisation (0.0..=1.0) of the last `n` windows of `window_ticks`, ending at
    /// the window that holds `now`; oldest first, zeros for windows without polls.
    #[must_use]
    pub fn utilisation(&self, now: u64, window_ticks: u64, n: usize) -> Vec<f64> {
        let window_ticks = window_ticks.max(1);
        let last = now / window_ticks;
        let first = last.saturating_sub(n.saturating_sub(1) as u64);
        let mut out = vec![0.0; (last - first + 1) as usize];
        for &(w, t) in &self.util {
            if w >= first && w <= last {
                out[(w - first) as usize] = (t as f64 / window_ticks as f64).min(1.0);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_is_spread_over_the_windows_it_overlaps() {
        let mut c = Cpu::default();
        c.add_busy(5, 35, 10);
        assert_eq!(
            c.util.iter().copied().collect::<Vec<_>>(),
            [(0, 5), (1, 10), (2, 10), (3, 5)]
        );
        assert_eq!(c.utilisation(39, 10, 4), [0.5, 1.0, 1.0, 0.5]);
        c.add_busy(0, u64::MAX / 2, 1);
        assert_eq!(c.util.len(), MAX_UTIL_WINDOWS);
    }
}
