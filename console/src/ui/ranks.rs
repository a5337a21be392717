//! Kept keys held in order, so that a frame finds the rows it shows, and where a
//! task is among them, by binary searches instead of a pass over every task: at a
//! million tasks one pass is a frame's budget.
//!
//! A key is a [`Line`]: fixed, or growing one tick per tick from a base. Fixed keys
//! are held ordered by value; growing keys ordered by base, which is their order at
//! any `now` but for the keys whose value wrapped past `u64::MAX`, which come first
//! (the order is rotated, not changed). Keys computed again every frame (volatile)
//! and the few a caller adds for one frame are a third, small sorted run. A frame's
//! order is the merge of the three runs, read through [`RankedAt`].

use crate::time::Ticks;
use crate::ui::kept::{Line, Shape};

/// A held key: a fixed value or a growing line's base, then the id that breaks
/// ties, then the slot it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    key: u64,
    id: u64,
    slot: u32,
}

/// Most entries per chunk of an [`OrderSet`]: a chunk that changes is copied once
/// per refresh, however many of its entries change. (Smaller in tests, so that
/// they cross many chunk boundaries.)
const CHUNK: usize = if cfg!(test) { 8 } else { 256 };

/// An ordered set with rank and select, as sorted chunks. Changes wait until
/// [`Self::refresh`], which sorts them and rewrites each chunk they touch once (a
/// frame of a live session at a million tasks brings tens of thousands).
#[derive(Debug, Clone, Default)]
struct OrderSet {
    /// Each non-empty and sorted; every entry of a chunk orders before the next
    /// chunk's.
    chunks: Vec<Vec<Held>>,
    /// Entries before each chunk, and each chunk's last entry (up to date after
    /// [`Self::refresh`]; searched instead of the chunks themselves, a cache miss
    /// each).
    starts: Vec<usize>,
    lasts: Vec<Held>,
    len: usize,
    /// Changes not applied yet, in order: an entry, and whether it is inserted
    /// (or removed).
    pending: Vec<(Held, bool)>,
}

impl OrderSet {
    /// The set of `sorted` (ascending, no repeats).
    fn from_sorted(sorted: &[Held]) -> Self {
        let mut set = Self {
            chunks: sorted.chunks(CHUNK / 2).map(<[Held]>::to_vec).collect(),
            ..Self::default()
        };
        set.count();
        set
    }

    /// The chunk `v` belongs in (the last one if it orders after everything;
    /// starts up to date).
    fn chunk_for(&self, v: &Held) -> usize {
        self.lasts
            .partition_point(|last| last < v)
            .min(self.chunks.len().saturating_sub(1))
    }

    /// Applies the pending changes (and counts the entries before each chunk).
    fn refresh(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return;
        }
        // Stable: an entry's changes stay in the order they came.
        pending.sort_by_key(|c| c.0);
        let mut last: Vec<(Held, bool)> = Vec::with_capacity(pending.len());
        for (v, insert) in pending {
            match last.last_mut() {
                Some(l) if l.0 == v => l.1 = insert,
                _ => last.push((v, insert)),
            }
        }
        self.apply(&last);
        self.count();
    }

    /// Applies `changes` (ascending, one per entry: whether it is in the set
    /// after), rewriting each chunk they fall in once.
    fn apply(&mut self, changes: &[(Held, bool)]) {
        let old = std::mem::take(&mut self.chunks);
        let mut chunks = Vec::with_capacity(old.len() + changes.len() / CHUNK + 1);
        let mut scratch = Vec::new();
        let mut rest = changes;
        let n = old.len().max(1);
        let mut old = old.into_iter();
        for c in 0..n {
            let mut chunk = old.next().unwrap_or_default();
            // The last chunk takes everything left; another what orders up to its last.
            let upto = match chunk.last() {
                Some(&last) if c + 1 < n => rest.partition_point(|e| e.0 <= last),
                _ => rest.len(),
            };
            let (mine, after) = rest.split_at(upto);
            rest = after;
            if mine.is_empty() {
                chunks.push(chunk);
                continue;
            }
            scratch.clear();
            merge_into(&mut scratch, &chunk, mine);
            if scratch.len() <= CHUNK {
                // The merged entries become the chunk; its old buffer the next scratch.
                std::mem::swap(&mut chunk, &mut scratch);
                if !chunk.is_empty() {
                    chunks.push(chunk);
                }
            } else {
                chunks.extend(scratch.chunks(CHUNK / 2).map(<[Held]>::to_vec));
                scratch = chunk;
            }
        }
        self.chunks = chunks;
    }

    /// Counts the entries, and those before each chunk.
    fn count(&mut self) {
        self.starts.clear();
        self.lasts.clear();
        let mut at = 0;
        for c in &self.chunks {
            self.starts.push(at);
            at += c.len();
            self.lasts.extend(c.last());
        }
        self.len = at;
    }

    /// The entry at rank `i` (`i < len`, starts up to date).
    fn get(&self, i: usize) -> Held {
        let c = self.starts.partition_point(|&s| s <= i) - 1;
        self.chunks[c][i - self.starts[c]]
    }

    /// How many entries order before `v` (starts up to date).
    fn below(&self, v: &Held) -> usize {
        if self.chunks.is_empty() {
            return 0;
        }
        let c = self.chunk_for(v);
        self.starts[c] + self.chunks[c].partition_point(|e| e < v)
    }
}

/// A line's place in an order by value, then id: `value << 64 | id`.
#[inline]
pub(crate) fn order(value: u64, id: u64) -> u128 {
    (u128::from(value) << 64) | u128::from(id)
}

/// Puts in `out` the entries of `held` (ascending) with `changes` (ascending, one
/// per entry: whether it is in the set after) applied.
fn merge_into(out: &mut Vec<Held>, held: &[Held], changes: &[(Held, bool)]) {
    let mut rest = held;
    for &(c, insert) in changes {
        let at = rest.partition_point(|e| *e < c);
        out.extend_from_slice(&rest[..at]);
        rest = &rest[at..];
        // An entry held and changed: its last change says whether it stays.
        if rest.first() == Some(&c) {
            rest = &rest[1..];
        }
        if insert {
            out.push(c);
        }
    }
    out.extend_from_slice(rest);
}

/// The fixed and growing keys of the entries a view orders (see the module
/// documentation).
#[derive(Debug, Clone, Default)]
pub(crate) struct Ranks {
    fixed: OrderSet,
    growing: OrderSet,
}

/// Where a key with this line is held, if it is held at all.
fn held(line: Line, id: u64, slot: u32) -> Option<(bool, Held)> {
    let h = Held {
        key: line.base(),
        id,
        slot,
    };
    match line.shape {
        Shape::Fixed => Some((false, h)),
        Shape::Growing => Some((true, h)),
        Shape::Volatile => None,
    }
}

impl Ranks {
    /// The ranks of `entries` (`(key, id, slot)`; volatile keys are not held).
    pub(crate) fn build(entries: impl Iterator<Item = (Line, u64, u32)>) -> Self {
        let (mut fixed, mut growing) = (Vec::new(), Vec::new());
        for (line, id, slot) in entries {
            match held(line, id, slot) {
                Some((false, h)) => fixed.push(h),
                Some((true, h)) => growing.push(h),
                None => {}
            }
        }
        fixed.sort_unstable();
        fixed.dedup();
        growing.sort_unstable();
        growing.dedup();
        Self {
            fixed: OrderSet::from_sorted(&fixed),
            growing: OrderSet::from_sorted(&growing),
        }
    }

    /// Holds `(key, id, slot)` (nothing for a volatile key). Call
    /// [`Self::refresh`] before reading.
    pub(crate) fn insert(&mut self, line: Line, id: u64, slot: u32) {
        self.change(line, id, slot, true);
    }

    /// No longer holds `(key, id, slot)`. Call [`Self::refresh`] before reading.
    pub(crate) fn remove(&mut self, line: Line, id: u64, slot: u32) {
        self.change(line, id, slot, false);
    }

    fn change(&mut self, line: Line, id: u64, slot: u32, insert: bool) {
        match held(line, id, slot) {
            Some((false, h)) => self.fixed.pending.push((h, insert)),
            Some((true, h)) => self.growing.pending.push((h, insert)),
            None => {}
        }
    }

    /// Ready to read after inserts and removes.
    pub(crate) fn refresh(&mut self) {
        self.fixed.refresh();
        self.growing.refresh();
    }

    /// Keys held.
    pub(crate) fn len(&self) -> usize {
        self.fixed.len + self.growing.len
    }

    /// The order at `now` of the held keys and of `extra` (`(order, slot)` sorted
    /// ascending, where `order` is [`order`]`(value, id)`), ascending or descending
    /// (everything reversed, ids too).
    pub(crate) fn at<'a>(&'a self, now: Ticks, extra: &'a [(u128, u32)], descending: bool) -> RankedAt<'a> {
        // Growing keys whose value wrapped (base ≥ 2^64 − now) are the smallest.
        let unwrapped = if now.0 == 0 {
            self.growing.len
        } else {
            self.growing.below(&Held {
                key: now.0.wrapping_neg(),
                id: 0,
                slot: 0,
            })
        };
        RankedAt {
            runs: [
                Run::Fixed(&self.fixed),
                Run::Growing {
                    set: &self.growing,
                    unwrapped,
                    now: now.0,
                },
                Run::Extra(extra),
            ],
            descending,
        }
    }
}

/// One of the sorted runs a frame's order merges.
#[derive(Debug, Clone, Copy)]
enum Run<'a> {
    Fixed(&'a OrderSet),
    Growing {
        set: &'a OrderSet,
        /// Keys that did not wrap at `now` (they come after those that did).
        unwrapped: usize,
        now: u64,
    },
    Extra(&'a [(u128, u32)]),
}

impl Run<'_> {
    fn len(&self) -> usize {
        match self {
            Run::Fixed(set) | Run::Growing { set, .. } => set.len,
            Run::Extra(v) => v.len(),
        }
    }

    /// The `i`-th `(order, slot)` ascending.
    fn ascending(&self, i: usize) -> (u128, u32) {
        let line = |value: u64, h: Held| (order(value, h.id), h.slot);
        match *self {
            Run::Fixed(set) => {
                let h = set.get(i);
                line(h.key, h)
            }
            Run::Growing { set, unwrapped, now } => {
                let h = set.get((unwrapped + i) % set.len);
                line(h.key.wrapping_add(now), h)
            }
            Run::Extra(v) => v[i],
        }
    }
}

/// The merged order of a frame (see [`Ranks::at`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RankedAt<'a> {
    runs: [Run<'a>; 3],
    descending: bool,
}

impl RankedAt<'_> {
    /// Entries in the order.
    pub(crate) fn len(&self) -> usize {
        self.runs.iter().map(Run::len).sum()
    }

    /// The `i`-th `(order, slot)` of run `r` in display order (an order as
    /// [`Ranks::at`] says, inverted when descending).
    fn get(&self, r: usize, i: usize) -> (u128, u32) {
        let run = &self.runs[r];
        if self.descending {
            let (o, slot) = run.ascending(run.len() - 1 - i);
            (!o, slot)
        } else {
            run.ascending(i)
        }
    }

    /// Entries of run `r` before `order` in display order.
    fn run_below(&self, r: usize, order: u128) -> usize {
        let (mut lo, mut hi) = (0, self.runs[r].len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.get(r, mid).0 < order {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Entries before `order` (as [`Ranks::at`] says, inverted when descending) in
    /// display order: where an entry of that order is.
    pub(crate) fn below(&self, order: u128) -> usize {
        (0..self.runs.len()).map(|r| self.run_below(r, order)).sum()
    }

    /// The slots at rows `from..from + n` in display order.
    pub(crate) fn window(&self, from: usize, n: usize) -> Vec<u32> {
        let end = from.saturating_add(n).min(self.len());
        if from >= end {
            return Vec::new();
        }
        // The entry at row `from` is in one of the runs: the one whose entry has
        // exactly `from` entries before it (ranks grow along a run).
        let mut first = None;
        for r in 0..self.runs.len() {
            let (mut lo, mut hi) = (0, self.runs[r].len());
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let order = self.get(r, mid).0;
                match self.below(order).cmp(&from) {
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                    std::cmp::Ordering::Equal => {
                        first = Some(order);
                        break;
                    }
                }
            }
            if first.is_some() {
                break;
            }
        }
        let Some(first) = first else {
            return Vec::new();
        };
        let mut at = [0; 3];
        for (r, a) in at.iter_mut().enumerate() {
            *a = self.run_below(r, first);
        }
        let mut rows = Vec::with_capacity(end - from);
        while rows.len() < end - from {
            let next = (0..self.runs.len())
                .filter(|&r| at[r] < self.runs[r].len())
                .map(|r| (self.get(r, at[r]), r))
                .min();
            let Some(((_, slot), r)) = next else { break };
            rows.push(slot);
            at[r] += 1;
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A key from `(shape, value)`: fixed or growing (through 0 and `u64::MAX`).
    fn line(now: Ticks, fixed: bool, value: u64) -> Line {
        if fixed {
            Line::of(now, |_| value)
        } else {
            Line::of(now, |at| value.wrapping_add(at.0.wrapping_sub(now.0)))
        }
    }

    proptest! {
        /// Rows and positions read from the ranks, after any inserts and removes
        /// (applied one by one or merged),
        /// are those of a full sort of the entries by their value at a later `now`,
        /// ids breaking ties, both directions, growing values wrapping included.
        #[test]
        fn ranks_order_as_a_full_sort(
            entries in prop::collection::vec((any::<bool>(), prop_oneof![any::<u64>(), 0u64..50, (u64::MAX - 50)..=u64::MAX], 0u64..40), 0..300),
            removed in prop::collection::vec(any::<prop::sample::Index>(), 0..60),
            extra in prop::collection::vec((0u64..100, 1000u64..1100), 0..20),
            now in prop_oneof![Just(0u64), 0u64..100, 0u64..(1 << 62)],
            later in 0u64..1000,
            from in 0usize..400,
            n in 0usize..60,
            built in any::<bool>(),
            one_by_one in any::<bool>(),
        ) {
            let at0 = Ticks(now);
            let mut seen = std::collections::HashSet::new();
            let mut live: Vec<(Line, u64, u32)> = Vec::new();
            for (slot, (fixed, value, id)) in entries.into_iter().enumerate() {
                // Ids are unique among the tasks held.
                let id = id * 1000 + slot as u64;
                if seen.insert(id) {
                    live.push((line(at0, fixed, value), id, slot as u32));
                }
            }
            let mut ranks = if built { Ranks::build(live.iter().copied()) } else {
                let mut r = Ranks::default();
                for &(l, id, slot) in &live {
                    r.insert(l, id, slot);
                    if one_by_one { r.refresh(); }
                }
                r
            };
            for i in removed {
                if live.is_empty() { break; }
                let (l, id, slot) = live.swap_remove(i.index(live.len()));
                ranks.remove(l, id, slot);
                // Changed and changed back, as a task derived twice in one frame is.
                ranks.insert(l, id, slot);
                ranks.remove(l, id, slot);
                if one_by_one { ranks.refresh(); }
            }
            ranks.refresh();
            prop_assert_eq!(ranks.len(), live.len());
            let now = Ticks(now.wrapping_add(later));
            let mut extra: Vec<(u128, u32)> = extra
                .into_iter()
                .enumerate()
                .map(|(i, (v, id))| (order(v, id * 1000 + 999 - i as u64), 10_000 + i as u32))
                .collect();
            extra.sort_unstable();
            for descending in [false, true] {
                let mut want: Vec<(u128, u32)> = live
                    .iter()
                    .map(|&(l, id, slot)| (order(l.at(now), id), slot))
                    .chain(extra.iter().copied())
                    .collect();
                want.sort_unstable();
                if descending {
                    want.reverse();
                }
                let view = ranks.at(now, &extra, descending);
                prop_assert_eq!(view.len(), want.len());
                let rows: Vec<u32> = want.iter().skip(from).take(n).map(|e| e.1).collect();
                prop_assert_eq!(view.window(from, n), rows);
                for (i, &(order, _)) in want.iter().enumerate().step_by(7) {
                    let order = if descending { !order } else { order };
                    prop_assert_eq!(view.below(order), i);
                }
            }
        }
    }
}
