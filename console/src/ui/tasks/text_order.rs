//! The task list's order by a text column (name or location), kept across frames.
//! A task's text rarely changes after its spawn, so a frame revisits the tasks the
//! task map journaled, and only those whose text is new, changed or gone move: they
//! leave the sorted list in one pass and come back by one merge, instead of a sort
//! of every task's string each frame.

use std::cmp::Ordering;

use lucid_protocol::TaskId;

use super::Column;
use crate::state::{State, Task, TaskCursor, Text};

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub(super) struct TextOrder {
    column: Option<Column>,
    cursor: Option<TaskCursor>,
    /// Per slot: the text and id the task there is ordered by.
    by_slot: Vec<Option<(Text, TaskId)>>,
    /// The held slots, ascending by (text, id).
    sorted: Vec<u32>,
}

/// Whether the list can be ordered by column `c` from a [`TextOrder`].
pub(super) fn orders(c: Column) -> bool {
    matches!(c, Column::Name | Column::Location)
}

fn text_of(c: Column, t: &Task) -> Text {
    if c == Column::Name {
        t.name.clone()
    } else {
        t.location.clone()
    }
}

impl TextOrder {
    /// Brings the order by column `c` up to date with `state`.
    pub(super) fn sync(&mut self, c: Column, state: &State) {
        let changed = self
            .cursor
            .filter(|_| self.column == Some(c))
            .and_then(|cur| state.tasks.changed_since(cur));
        self.column = Some(c);
        self.cursor = Some(state.tasks.cursor());
        let Some(changed) = changed else {
            self.by_slot.clear();
            self.by_slot.resize(state.tasks.slot_bound() as usize, None);
            self.sorted.clear();
            for (slot, t) in state.tasks.slots() {
                self.by_slot[slot as usize] = Some((text_of(c, t), t.id));
                self.sorted.push(slot);
            }
            let by_slot = &self.by_slot;
            self.sorted.sort_unstable_by(|&a, &b| cmp_slots(by_slot, a, b));
            return;
        };
        let mut moved: Vec<u32> = Vec::new();
        let mut arrived: Vec<u32> = Vec::new();
        for &slot in changed {
            let i = slot as usize;
            if i >= self.by_slot.len() {
                self.by_slot.resize(i + 1, None);
            }
            let now = state.tasks.at_slot(slot).map(|t| (text_of(c, t), t.id));
            if now == self.by_slot[i] {
                continue;
            }
            if self.by_slot[i].is_some() {
                moved.push(slot);
            }
            if now.is_some() {
                arrived.push(slot);
            }
            self.by_slot[i] = now;
        }
        if moved.is_empty() && arrived.is_empty() {
            return;
        }
        // A slot that left and came back (its text changed, or its task was replaced)
        // leaves its old place and takes a new one.
        moved.sort_unstable();
        moved.dedup();
        if !moved.is_empty() {
            self.sorted.retain(|s| moved.binary_search(s).is_err());
        }
        arrived.sort_unstable();
        arrived.dedup();
        let by_slot = &self.by_slot;
        arrived.sort_unstable_by(|&a, &b| cmp_slots(by_slot, a, b));
        let old = std::mem::take(&mut self.sorted);
        let mut merged = Vec::with_capacity(old.len() + arrived.len());
        let (mut a, mut b) = (old.into_iter().peekable(), arrived.into_iter().peekable());
        while let (Some(&x), Some(&y)) = (a.peek(), b.peek()) {
            if cmp_slots(by_slot, x, y).is_le() {
                merged.push(x);
                a.next();
            } else {
                merged.push(y);
                b.next();
            }
        }
        merged.extend(a);
        merged.extend(b);
        self.sorted = merged;
    }

    /// Tasks ordered.
    pub(super) fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The slot at `row` in display order.
    fn slot_at(&self, row: usize, descending: bool) -> Option<u32> {
        let i = if descending {
            self.sorted.len().checked_sub(row + 1)?
        } else {
            row
        };
        self.sorted.get(i).copied()
    }

    /// The slots at rows `from..from + n` in display order.
    pub(super) fn window(&self, from: usize, n: usize, descending: bool) -> Vec<u32> {
        (from..from.saturating_add(n).min(self.len()))
            .filter_map(|row| self.slot_at(row, descending))
            .collect()
    }

    /// The held slots in display order.
    pub(super) fn slots(&self, descending: bool) -> impl Iterator<Item = u32> + '_ {
        let (asc, desc) = if descending {
            (None, Some(self.sorted.iter().rev()))
        } else {
            (Some(self.sorted.iter()), None)
        };
        asc.into_iter().flatten().chain(desc.into_iter().flatten()).copied()
    }

    /// Where task `id` is in display order.
    pub(super) fn position(&self, state: &State, id: TaskId, descending: bool) -> Option<usize> {
        let slot = state.tasks.slot_of(&id)?;
        let i = self
            .sorted
            .binary_search_by(|&s| cmp_slots(&self.by_slot, s, slot))
            .ok()?;
        Some(if descending { self.sorted.len() - 1 - i } else { i })
    }
}

/// The order of two held slots: by text, then id.
fn cmp_slots(by_slot: &[Option<(Text, TaskId)>], a: u32, b: u32) -> Ordering {
    let key = |s: u32| by_slot.get(s as usize).and_then(Option::as_ref);
    match (key(a), key(b)) {
        (Some((ta, ia)), Some((tb, ib))) => ta.cmp(tb).then(ia.cmp(ib)),
        (x, y) => x.is_some().cmp(&y.is_some()),
    }
}
