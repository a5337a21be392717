//! What the hotspot panes show of every task, by slot, kept across frames (see
//! [`kept`](crate::ui::kept)): a frame revisits only the tasks that changed, the
//! top tasks are read from their keys held in order ([`ranks`](crate::ui::ranks)),
//! and each spawn location's sums are kept up to date as its tasks change.

use std::collections::{BTreeMap, HashMap};

use lucid_protocol::TaskId;
use rustc_hash::FxBuildHasher;

use super::{LocationSums, Ranking};
use crate::state::{State, Task, Text};
use crate::time::Ticks;
use crate::ui::kept::{Kept, Line, Shape};
use crate::ui::ranks::{self, Ranks};

/// Spawn locations kept beyond twice the tasks held (plus this) start the table over:
/// locations of tasks long gone must not pile up.
const SPARE_LOCATIONS: usize = 1024;

/// A task as the panes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spot {
    busy: Line,
    longest_poll: u64,
    /// p99 scheduling latency (only with that ranking: a percentile walks the
    /// histogram).
    sched_p99: u64,
    id: TaskId,
    /// Index of its spawn location in [`Hotspots::locations`].
    location: u32,
}

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub(super) struct Hotspots {
    ranking: Option<Ranking>,
    kept: Kept<Spot>,
    locations: Vec<Text>,
    location_index: HashMap<Text, u32, FxBuildHasher>,
    /// Each spot's ranking key, best first read descending (ids are held inverted,
    /// so that ties go to the lower id).
    ranks: Ranks,
    /// Each location's sums, by index in `locations`.
    sums: Vec<Sums>,
}

/// The largest of values added and removed, and how many of them hold it. Once
/// none does (`held` 0 with values left), it is unknown until a value at least as
/// large is added or it is found again.
#[derive(Debug, Clone, Copy, Default)]
struct Max {
    value: u64,
    held: u64,
}

impl Max {
    fn add(&mut self, v: u64) {
        // With none holding `value`, every value left is below it.
        if v > self.value || (self.held == 0 && v == self.value) {
            *self = Self { value: v, held: 1 };
        } else if v == self.value {
            self.held += 1;
        }
    }

    fn remove(&mut self, v: u64) {
        if v == self.value {
            self.held = self.held.saturating_sub(1);
        }
    }
}

/// A spawn location's tasks, summed as they change.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    tasks: u64,
    /// Busy time of the tasks whose busy time is fixed plus the bases of those whose
    /// busy time grows (`busy − now`): the sum at `now` adds `growing × now`. Spots
    /// whose busy time is volatile are summed each frame.
    busy_base: i128,
    growing: i128,
    longest_poll: Max,
    sched_p99: Max,
}

impl Sums {
    fn add(&mut self, s: &Spot) {
        self.tasks += 1;
        match s.busy.shape {
            Shape::Fixed => self.busy_base += i128::from(s.busy.base()),
            // A base is `busy − now`, wrapped: signed, it is that difference.
            Shape::Growing => {
                self.busy_base += i128::from(s.busy.base().cast_signed());
                self.growing += 1;
            }
            Shape::Volatile => {}
        }
        self.longest_poll.add(s.longest_poll);
        self.sched_p99.add(s.sched_p99);
    }

    fn remove(&mut self, s: &Spot) {
        self.tasks = self.tasks.saturating_sub(1);
        if self.tasks == 0 {
            *self = Self::default();
            return;
        }
        match s.busy.shape {
            Shape::Fixed => self.busy_base -= i128::from(s.busy.base()),
            Shape::Growing => {
                self.busy_base -= i128::from(s.busy.base().cast_signed());
                self.growing -= 1;
            }
            Shape::Volatile => {}
        }
        self.longest_poll.remove(s.longest_poll);
        self.sched_p99.remove(s.sched_p99);
    }

    /// A largest value is unknown (see [`Max`]).
    fn lost_max(&self) -> bool {
        self.tasks > 0 && (self.longest_poll.held == 0 || self.sched_p99.held == 0)
    }

    /// The busy time of the tasks whose busy time is not volatile, at `now`
    /// (saturating, as a sum of each task's).
    fn busy_at(&self, now: Ticks) -> Ticks {
        let sum = self.busy_base + self.growing * i128::from(now.0);
        Ticks(u64::try_from(sum.max(0)).unwrap_or(u64::MAX))
    }
}

impl Spot {
    /// The spot's key for `ranking`.
    fn key(&self, ranking: Ranking) -> Line {
        match ranking {
            Ranking::Busy => self.busy,
            Ranking::LongestPoll => Line::fixed(self.longest_poll),
            Ranking::SchedP99 => Line::fixed(self.sched_p99),
        }
    }
}

/// The panes' contents at one frame.
pub(super) struct Ranked<'s> {
    /// The top tasks, best first, with their key.
    pub tasks: Vec<(Ticks, &'s Task)>,
    /// Every spawn location with tasks.
    pub locations: BTreeMap<&'s str, LocationSums>,
}

impl Hotspots {
    /// Brings the spots up to date with `state` for `ranking`.
    pub(super) fn sync(&mut self, ranking: Ranking, state: &State) {
        let mut same = self.ranking == Some(ranking);
        if self.locations.len() > 2 * self.kept.counted() + SPARE_LOCATIONS {
            same = false;
        }
        if !same {
            self.locations.clear();
            self.location_index.clear();
        }
        self.ranking = Some(ranking);
        let Self {
            kept,
            locations,
            location_index,
            ranks,
            sums,
            ..
        } = self;
        let mut last: Option<(Text, u32)> = None;
        let every = kept.sync(
            state,
            same,
            &[],
            |t, now| {
                let location = match &last {
                    // Tasks of one spawn location often come together (and share the
                    // interned string, so this is a pointer comparison).
                    Some((l, i)) if *l == t.location => *i,
                    _ => {
                        let i = *location_index.entry(t.location.clone()).or_insert_with(|| {
                            locations.push(t.location.clone());
                            u32::try_from(locations.len() - 1).unwrap_or(u32::MAX)
                        });
                        last = Some((t.location.clone(), i));
                        i
                    }
                };
                let busy = Line::of(now, |at| t.busy_ticks_at(at).0);
                let spot = Spot {
                    busy,
                    longest_poll: t.poll_hist.max(),
                    sched_p99: if ranking == Ranking::SchedP99 {
                        t.sched_hist.quantile(0.99)
                    } else {
                        0
                    },
                    id: t.id,
                    location,
                };
                (spot, busy.shape == Shape::Volatile)
            },
            |_| true,
            |slot, old, new| {
                if old == new {
                    return;
                }
                if let Some(s) = old {
                    ranks.remove(s.key(ranking), !s.id.get(), slot);
                    if let Some(sums) = sums.get_mut(s.location as usize) {
                        sums.remove(s);
                    }
                }
                if let Some(s) = new {
                    ranks.insert(s.key(ranking), !s.id.get(), slot);
                    let i = s.location as usize;
                    if i >= sums.len() {
                        sums.resize(i + 1, Sums::default());
                    }
                    sums[i].add(s);
                }
            },
        );
        if every {
            *ranks = Ranks::build(kept.iter().map(|(slot, s)| (s.key(ranking), !s.id.get(), slot)));
            sums.clear();
            sums.resize(locations.len(), Sums::default());
            for (_, s) in kept.iter() {
                sums[s.location as usize].add(s);
            }
        } else {
            ranks.refresh();
        }
        // The task that held a location's largest value changed or went: one pass
        // finds those largest values again.
        let lost: Vec<bool> = sums.iter().map(Sums::lost_max).collect();
        if lost.contains(&true) {
            for (sums, _) in sums.iter_mut().zip(&lost).filter(|(_, lost)| **lost) {
                sums.longest_poll = Max::default();
                sums.sched_p99 = Max::default();
            }
            for (_, s) in kept.iter() {
                let i = s.location as usize;
                if lost[i] {
                    sums[i].longest_poll.add(s.longest_poll);
                    sums[i].sched_p99.add(s.sched_p99);
                }
            }
        }
    }

    /// The best `shown` tasks by the ranking and every location's sums, at
    /// `state`'s `now` (the spots must be up to date with it).
    pub(super) fn ranked<'s>(&'s self, state: &'s State, shown: usize) -> Ranked<'s> {
        let now = state.now();
        let ranking = self.ranking.unwrap_or_default();
        let mut sums: Vec<LocationSums> = self
            .sums
            .iter()
            .map(|s| {
                (
                    s.tasks,
                    s.busy_at(now),
                    Ticks(s.longest_poll.value),
                    Ticks(s.sched_p99.value),
                )
            })
            .collect();
        // Volatile busy times: summed, and ranked, at this frame's `now` (each slot is
        // listed once; the order does not matter: sums, then a sort).
        let mut extra = Vec::new();
        for &slot in self.kept.volatile() {
            let Some(s) = self.kept.get(slot).filter(|s| s.busy.shape == Shape::Volatile) else {
                continue;
            };
            let busy = Ticks(s.busy.at(now));
            if let Some(e) = sums.get_mut(s.location as usize) {
                e.1 += busy;
            }
            if ranking == Ranking::Busy {
                extra.push((ranks::order(busy.0, !s.id.get()), slot));
            }
        }
        extra.sort_unstable();
        let tasks = self
            .ranks
            .at(now, &extra, true)
            .window(0, shown)
            .into_iter()
            .filter_map(|slot| {
                let s = self.kept.get(slot)?;
                Some((Ticks(s.key(ranking).at(now)), state.tasks.at_slot(slot)?))
            })
            .collect();
        let locations = self
            .locations
            .iter()
            .zip(sums)
            .filter(|(_, s)| s.0 > 0)
            .map(|(l, s)| (l.as_str(), s))
            .collect();
        Ranked { tasks, locations }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::kept::after_every_chunk;

    /// The panes from kept spots are exactly what a pass over every task gives,
    /// after every chunk of input (tasks spawned, polled, completed, evicted, moved
    /// to another spawn location: `after_every_chunk`), for each ranking, kept all
    /// along or derived again after another ranking's.
    #[test]
    fn kept_spots_rank_and_sum_as_a_pass_over_every_task() {
        let rankings = [Ranking::Busy, Ranking::LongestPoll, Ranking::SchedP99];
        let mut kept: Vec<Hotspots> = rankings.iter().map(|_| Hotspots::default()).collect();
        let mut shared = Hotspots::default();
        let mut locations_seen = 0;
        after_every_chunk(|state| {
            let now = state.now();
            for (ranking, spots) in rankings.iter().zip(&mut kept) {
                spots.sync(*ranking, state);
                shared.sync(*ranking, state);
                let mut want: Vec<(Ticks, &Task)> = state
                    .tasks
                    .values_unordered()
                    .map(|t| (ranking.key(t, now), t))
                    .collect();
                want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
                want.truncate(15);
                let mut sums: BTreeMap<&str, LocationSums> = BTreeMap::new();
                for t in state.tasks.values_unordered() {
                    let e = sums.entry(t.location.as_str()).or_default();
                    e.0 += 1;
                    e.1 += t.busy_ticks_at(now);
                    e.2 = e.2.max(Ticks(t.poll_hist.max()));
                    if *ranking == Ranking::SchedP99 {
                        e.3 = e.3.max(ranking.key(t, now));
                    }
                }
                for spots in [&*spots, &shared] {
                    let got = spots.ranked(state, 15);
                    let ids = |v: &[(Ticks, &Task)]| v.iter().map(|(k, t)| (*k, t.id)).collect::<Vec<_>>();
                    assert_eq!(ids(&got.tasks), ids(&want), "{ranking:?}");
                    assert_eq!(got.locations, sums, "{ranking:?}");
                }
                locations_seen = locations_seen.max(sums.len());
            }
        });
        assert!(locations_seen > 1, "{locations_seen} spawn locations");
    }
}
