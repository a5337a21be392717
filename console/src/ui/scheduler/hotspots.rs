//! What the hotspot panes show of every task, by slot, kept across frames (see
//! [`kept`](crate::ui::kept)): a frame revisits only the tasks that changed and
//! ranks tasks and sums spawn locations in one pass over a dense array instead of
//! over the tasks themselves.

use std::collections::{BTreeMap, HashMap};

use lucid_protocol::TaskId;
use rustc_hash::FxBuildHasher;

use super::{LocationSums, Ranking};
use crate::state::{State, Task, Text};
use crate::time::Ticks;
use crate::ui::kept::{Kept, Line, Shape, Smallest};

/// Spawn locations kept beyond twice the tasks held (plus this) start the table over:
/// locations of tasks long gone must not pile up.
const SPARE_LOCATIONS: usize = 1024;

/// A task as the panes see it.
#[derive(Debug, Clone, Copy)]
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
            ..
        } = self;
        let mut last: Option<(Text, u32)> = None;
        kept.sync(
            state,
            same,
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
        );
    }

    /// The best `shown` tasks by the ranking and every location's sums, at
    /// `state`'s `now` (the spots must be up to date with it).
    pub(super) fn ranked<'s>(&'s self, state: &'s State, shown: usize) -> Ranked<'s> {
        let now = state.now();
        let ranking = self.ranking.unwrap_or_default();
        let mut sums = vec![LocationSums::default(); self.locations.len()];
        // Ascending is best first: the key descending, then the id.
        let mut best = Smallest::new(shown);
        for (slot, s) in self.kept.iter() {
            let busy = Ticks(s.busy.at(now));
            let key = match ranking {
                Ranking::Busy => busy,
                Ranking::LongestPoll => Ticks(s.longest_poll),
                Ranking::SchedP99 => Ticks(s.sched_p99),
            };
            let order = (u128::from(!key.0) << 64) | u128::from(s.id.get());
            best.offer((order, slot));
            if let Some(e) = sums.get_mut(s.location as usize) {
                e.0 += 1;
                e.1 += busy;
                e.2 = e.2.max(Ticks(s.longest_poll));
                e.3 = e.3.max(Ticks(s.sched_p99));
            }
        }
        let tasks = best
            .into_sorted_vec()
            .into_iter()
            .filter_map(|(order, slot)| Some((Ticks(!((order >> 64) as u64)), state.tasks.at_slot(slot)?)))
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
