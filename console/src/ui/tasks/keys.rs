//! Each task's sort key for one numeric column, by slot, kept across frames (see
//! [`kept`](crate::ui::kept)) and held in order ([`ranks`](crate::ui::ranks)): a
//! frame revisits only the tasks that changed since the previous one, and finds
//! the rows it shows and the selected task's row by binary searches.

use lucid_protocol::TaskId;

use super::{Column, numeric_key, task_matches, waiting_matches};
use crate::state::State;
use crate::time::Ticks;
use crate::ui::kept::{Kept, Line, Shape};
use crate::ui::ranks::{self, RankedAt, Ranks};

/// A task's key and id.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Line,
    id: TaskId,
    /// The filter keeps the task for what the task itself says.
    kept: bool,
}

impl Entry {
    /// What the ranks hold of the entry.
    fn rank(&self) -> (Line, u64) {
        (self.key, self.id.get())
    }

    /// Where the task goes at `now`: ascending is the display order (by key, then
    /// id; all reversed when `descending`).
    fn order(&self, now: Ticks, descending: bool) -> u128 {
        let order = ranks::order(self.key.at(now), self.id.get());
        if descending { !order } else { order }
    }
}

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub(super) struct KeyCache {
    column: Option<Column>,
    /// The filter (lowercase) the entries were matched against.
    needle: String,
    kept: Kept<Entry>,
    /// Tasks the filter keeps only for what they wait on (the resources' state,
    /// which the task journal does not see: found again every frame from the tasks
    /// that wait), as a bit per slot.
    by_wait: Vec<u64>,
    /// How many tasks the filter keeps.
    len: usize,
    /// The keys of the tasks the filter keeps for what they are, but volatile ones.
    ranks: Ranks,
    /// `(order, slot)` ascending at the last sync's `now` of the tasks the filter
    /// keeps that `ranks` does not hold (volatile keys, tasks kept for what they
    /// wait on).
    extra: Vec<(u128, u32)>,
    /// Sorting by what tasks wait on: each waiting task and when its wait began, as
    /// of the last sync (the tasks whose entry changes when this does).
    waits: Vec<(TaskId, Ticks)>,
}

/// Whether the ranks hold entry `e` (the filter keeps it for what the task is).
fn ranked(e: Option<&Entry>) -> Option<&Entry> {
    e.filter(|e| e.kept && e.key.shape != Shape::Volatile)
}

/// Whether column `c`'s keys can be kept: the numeric ones (what a task waits on is
/// the resources' state, which the task journal does not see: [`KeyCache`] finds
/// the tasks whose wait changed itself).
pub(super) fn cacheable(c: Column) -> bool {
    !matches!(c, Column::Name | Column::Location)
}

impl KeyCache {
    /// Brings the keys of column `c` and the filter `needle` (lowercase) up to
    /// date with `state`.
    pub(super) fn sync(&mut self, c: Column, needle: &str, state: &State) {
        let same = self.column == Some(c) && self.needle == needle;
        self.column = Some(c);
        if self.needle != needle {
            needle.clone_into(&mut self.needle);
        }
        let also = if c == Column::Waiting {
            self.waits_changed(state)
        } else {
            self.waits.clear();
            Vec::new()
        };
        let ranks = &mut self.ranks;
        let every = self.kept.sync(
            state,
            same,
            &also,
            |t, now| {
                let key = Line::of(now, |at| numeric_key(c, t, state, at).unwrap_or(0));
                let entry = Entry {
                    key,
                    id: t.id,
                    kept: task_matches(t, needle),
                };
                (entry, key.shape == Shape::Volatile)
            },
            |e| e.kept,
            |slot, old, new| {
                let (old, new) = (ranked(old).map(Entry::rank), ranked(new).map(Entry::rank));
                if old != new {
                    if let Some((key, id)) = old {
                        ranks.remove(key, id, slot);
                    }
                    if let Some((key, id)) = new {
                        ranks.insert(key, id, slot);
                    }
                }
            },
        );
        if every {
            self.ranks = Ranks::build(
                self.kept
                    .iter()
                    .filter(|&(_, e)| ranked(Some(e)).is_some())
                    .map(|(slot, e)| (e.key, e.id.get(), slot)),
            );
        } else {
            self.ranks.refresh();
        }
        self.len = self.kept.counted();
        self.by_wait.clear();
        if !needle.is_empty() {
            for &task in state.resources.waits.keys() {
                let Some(slot) = state.tasks.slot_of(&task) else {
                    continue;
                };
                if self.kept.get(slot).is_none_or(|e| e.kept) || !waiting_matches(state, task, needle) {
                    continue;
                }
                let (word, bit) = (slot as usize / 64, slot % 64);
                if word >= self.by_wait.len() {
                    self.by_wait.resize(word + 1, 0);
                }
                if self.by_wait[word] & (1 << bit) == 0 {
                    self.by_wait[word] |= 1 << bit;
                    self.len += 1;
                }
            }
        }
        self.collect_extra(state.now());
    }

    /// The slots of the tasks whose current wait began, ended or changed since the
    /// last sync (their Waiting key changed with no change to the task itself).
    fn waits_changed(&mut self, state: &State) -> Vec<u32> {
        let now: Vec<(TaskId, Ticks)> = state
            .resources
            .waits
            .keys()
            .filter_map(|&task| Some((task, state.resources.current_wait(task)?.since)))
            .collect();
        let (old, mut changed) = (std::mem::replace(&mut self.waits, now), Vec::new());
        let (mut a, mut b) = (old.iter().peekable(), self.waits.iter().peekable());
        // Both ascending by task: a merge finds what differs.
        loop {
            let task = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(x), Some(y)) if x == y => {
                    a.next();
                    b.next();
                    continue;
                }
                (Some(x), Some(y)) if x.0 == y.0 => {
                    a.next();
                    b.next().map(|e| e.0)
                }
                (Some(x), y) if y.is_none_or(|y| x.0 < y.0) => a.next().map(|e| e.0),
                _ => b.next().map(|e| e.0),
            };
            if let Some(slot) = task.and_then(|t| state.tasks.slot_of(&t)) {
                changed.push(slot);
            }
        }
        changed
    }

    /// Finds the kept tasks the ranks do not hold (see [`Self::extra`]).
    fn collect_extra(&mut self, now: Ticks) {
        self.extra.clear();
        let waiting = self.by_wait.iter().enumerate().flat_map(|(word, &bits)| {
            (0..64u32)
                .filter(move |bit| bits & (1 << bit) != 0)
                .map(move |bit| word as u32 * 64 + bit)
        });
        for slot in self.kept.volatile().iter().copied().chain(waiting) {
            if let Some(e) = self.kept.get(slot)
                && self.keeps(slot, e)
                && ranked(Some(e)).is_none()
            {
                self.extra.push((e.order(now, false), slot));
            }
        }
        self.extra.sort_unstable();
        self.extra.dedup();
        debug_assert_eq!(
            self.ranks.len() + self.extra.len(),
            self.len,
            "every kept task is ordered once"
        );
    }

    /// Tasks the filter keeps.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether the filter keeps the task in `slot`.
    #[inline]
    pub(super) fn keeps_slot(&self, slot: u32) -> bool {
        self.kept.get(slot).is_some_and(|e| self.keeps(slot, e))
    }

    /// Whether the filter keeps the task in `slot`, whose entry is `e`.
    #[inline]
    fn keeps(&self, slot: u32, e: &Entry) -> bool {
        e.kept
            || self
                .by_wait
                .get(slot as usize / 64)
                .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    /// The kept tasks' order at `now`.
    fn at(&self, now: Ticks, descending: bool) -> RankedAt<'_> {
        self.ranks.at(now, &self.extra, descending)
    }

    /// The newest task the filter keeps: the tasks by id from the newest, until one
    /// is kept (without a filter, the first).
    pub(super) fn max_id(&self, state: &State) -> Option<TaskId> {
        state
            .tasks
            .keys()
            .rev()
            .find(|id| state.tasks.slot_of(id).is_some_and(|slot| self.keeps_slot(slot)))
            .copied()
    }

    /// Where task `id` is in display order.
    pub(super) fn position(&self, state: &State, id: TaskId, descending: bool) -> Option<usize> {
        let slot = state.tasks.slot_of(&id)?;
        let now = state.now();
        let e = self.kept.get(slot).filter(|e| self.keeps(slot, e))?;
        Some(self.at(now, descending).below(e.order(now, descending)))
    }

    /// The slots at rows `from..from + n` in display order.
    pub(super) fn window(&self, state: &State, from: usize, n: usize, descending: bool) -> Vec<u32> {
        self.at(state.now(), descending).window(from, n)
    }
}
