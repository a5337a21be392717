//! Each task's sort key for one numeric column, by slot, kept across frames (see
//! [`kept`](crate::ui::kept)): a frame revisits only the tasks that changed since
//! the previous one and orders the list from a dense array of keys instead of from
//! the tasks themselves.

use lucid_protocol::TaskId;

use super::{Column, numeric_key, task_matches, waiting_matches};
use crate::state::State;
use crate::time::Ticks;
use crate::ui::kept::{Kept, Line, Shape, Smallest};

/// Rows above which a window is cut out of a full selection rather than a heap of
/// the best rows.
const HEAP_ROWS: usize = 4096;

/// A task's key and id.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Line,
    id: TaskId,
    /// The filter keeps the task for what the task itself says.
    kept: bool,
}

impl Entry {
    /// Where the task goes at `now`: ascending is the display order (by key, then
    /// id; all reversed when `descending`).
    fn order(&self, now: Ticks, descending: bool) -> u128 {
        let order = (u128::from(self.key.at(now)) << 64) | u128::from(self.id.get());
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
}

/// Whether column `c`'s keys can be kept: numeric, and a function of the task alone
/// (what a task waits on is the resources' state, which the task journal does not
/// see).
pub(super) fn cacheable(c: Column) -> bool {
    !matches!(c, Column::Name | Column::Location | Column::Waiting)
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
        self.kept.sync(
            state,
            same,
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
        );
        self.len = self.kept.counted();
        self.by_wait.clear();
        if needle.is_empty() {
            return;
        }
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

    /// Each held task as `(order, slot)` (see [`Entry::order`]).
    fn ordered_keys(&self, now: Ticks, descending: bool) -> impl Iterator<Item = (u128, u32)> + '_ {
        self.kept
            .iter()
            .filter(|&(slot, e)| self.keeps(slot, e))
            .map(move |(slot, e)| (e.order(now, descending), slot))
    }

    /// The newest task the filter keeps.
    pub(super) fn max_id(&self) -> Option<TaskId> {
        self.kept
            .iter()
            .filter(|&(slot, e)| self.keeps(slot, e))
            .map(|(_, e)| e.id)
            .max()
    }

    /// Where task `id` is in display order.
    pub(super) fn position(&self, state: &State, id: TaskId, descending: bool) -> Option<usize> {
        let slot = state.tasks.slot_of(&id)?;
        let now = state.now();
        let e = self.kept.get(slot).filter(|e| self.keeps(slot, e))?;
        let target = e.order(now, descending);
        Some(self.ordered_keys(now, descending).filter(|&(o, _)| o < target).count())
    }

    /// The slots at rows `from..from + n` in display order.
    pub(super) fn window(&self, state: &State, from: usize, n: usize, descending: bool) -> Vec<u32> {
        let now = state.now();
        let end = from.saturating_add(n).min(self.len());
        if from >= end {
            return Vec::new();
        }
        if end <= HEAP_ROWS {
            // The `end` first rows: one pass, most keys rejected by one comparison
            // with the worst row kept.
            let mut best = Smallest::new(end);
            self.ordered_keys(now, descending).for_each(|e| best.offer(e));
            return best.into_sorted_vec()[from..].iter().map(|&(_, s)| s).collect();
        }
        let mut all: Vec<(u128, u32)> = self.ordered_keys(now, descending).collect();
        if from > 0 {
            all.select_nth_unstable(from);
        }
        let rest = &mut all[from..];
        let n = end - from;
        if n < rest.len() {
            rest.select_nth_unstable(n - 1);
        }
        let window = &mut rest[..n];
        window.sort_unstable();
        window.iter().map(|&(_, s)| s).collect()
    }
}
