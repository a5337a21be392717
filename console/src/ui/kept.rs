//! Values a view derives from each task and keeps across frames (a sort key, a busy
//! time), revisiting only the tasks the task map's change journal names: at a million
//! tasks, visiting every task is a frame's whole cost (a cache miss each).
//!
//! A value that grows with time (a running task's busy time, a live task's lifetime)
//! is kept as a [`Line`]: `base` or `base + now`. That holds while nothing about the
//! task changes, since every timestamp of a task is at most the state's `now`, and a
//! keeper that sees `now` go back computes everything again. A value found to be
//! neither constant nor growing one tick per tick is computed again every frame.

use crate::state::{State, Task, TaskCursor};
use crate::time::Ticks;

/// How far ahead a value is probed to tell its shape.
const PROBE: u64 = 1 << 20;

/// How a kept value moves with time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The value is `base`.
    Fixed,
    /// The value is `base + now` (wrapping).
    Growing,
    /// The value is `base` as of the last frame, and is computed again every frame.
    Volatile,
}

/// A value as a function of `now` (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    base: u64,
    /// How it moves.
    pub shape: Shape,
}

impl Line {
    /// The line of a value that does not move.
    pub fn fixed(value: u64) -> Self {
        Self {
            base: value,
            shape: Shape::Fixed,
        }
    }

    /// The line of `value` from `now` on, probed at `now` and two later times.
    pub fn of(now: Ticks, value: impl Fn(Ticks) -> u64) -> Self {
        let (v0, v1, v2) = (value(now), value(now + Ticks(PROBE)), value(now + Ticks(2 * PROBE)));
        if v0 == v1 && v1 == v2 {
            Self {
                base: v0,
                shape: Shape::Fixed,
            }
        } else if v1.wrapping_sub(v0) == PROBE && v2.wrapping_sub(v1) == PROBE {
            Self {
                base: v0.wrapping_sub(now.0),
                shape: Shape::Growing,
            }
        } else {
            Self {
                base: v0,
                shape: Shape::Volatile,
            }
        }
    }

    /// The value (fixed, volatile) or the value minus `now` (growing, wrapping).
    #[inline]
    pub fn base(self) -> u64 {
        self.base
    }

    /// The value at `now`.
    #[inline]
    pub fn at(self, now: Ticks) -> u64 {
        match self.shape {
            Shape::Fixed | Shape::Volatile => self.base,
            Shape::Growing => self.base.wrapping_add(now.0),
        }
    }
}

/// What a view derives from each task, by slot, kept up to date from the task map's
/// change journal.
#[derive(Debug, Clone)]
pub struct Kept<E> {
    cursor: Option<TaskCursor>,
    now: Ticks,
    entries: Vec<Option<E>>,
    /// Slots derived again every frame (those the last sync found volatile).
    volatile: Vec<u32>,
    /// Entries `counts` (see [`Self::sync`]) says to count.
    counted: usize,
    /// The sync that last derived each slot (the journal may name a busy task many
    /// times a frame).
    stamps: Vec<u32>,
    stamp: u32,
}

impl<E> Default for Kept<E> {
    fn default() -> Self {
        Self {
            cursor: None,
            now: Ticks::ZERO,
            entries: Vec::new(),
            volatile: Vec::new(),
            counted: 0,
            stamps: Vec::new(),
            stamp: 0,
        }
    }
}

impl<E> Kept<E> {
    /// Brings the entries up to date with `state`: `derive(task, now)` is a task's
    /// entry and whether it must be derived again next frame, and [`Self::counted`]
    /// is how many entries `counts`. The tasks the journal names are derived again,
    /// and those in slots `also` (what they derive from changed where the journal
    /// does not see it); `changed(slot, old, new)` is called for each. With `same`
    /// false (what is derived changed) every task is derived again, and it returns
    /// true without calling `changed` (what was kept from the entries is to be
    /// built again from [`Self::iter`]).
    pub fn sync(
        &mut self,
        state: &State,
        same: bool,
        also: &[u32],
        mut derive: impl FnMut(&Task, Ticks) -> (E, bool),
        counts: impl Fn(&E) -> bool,
        mut changed: impl FnMut(u32, Option<&E>, Option<&E>),
    ) -> bool {
        let now = state.now();
        let journal = self
            .cursor
            .filter(|_| same && now >= self.now)
            .and_then(|cur| state.tasks.changed_since(cur));
        let every = journal.is_none();
        if let Some(slots) = journal {
            let again = std::mem::take(&mut self.volatile);
            self.stamp = self.stamp.wrapping_add(1);
            if self.stamp == 0 {
                self.stamps.fill(0);
                self.stamp = 1;
            }
            for &slot in slots.iter().chain(&again).chain(also) {
                let i = slot as usize;
                if i >= self.stamps.len() {
                    self.stamps.resize(i + 1, 0);
                }
                if std::mem::replace(&mut self.stamps[i], self.stamp) == self.stamp {
                    continue;
                }
                let old = self.set(slot, state, now, &mut derive, &counts);
                changed(slot, old.as_ref(), self.get(slot));
            }
        } else {
            self.entries.clear();
            self.entries.resize_with(state.tasks.slot_bound() as usize, || None);
            self.volatile.clear();
            self.counted = 0;
            for (slot, _) in state.tasks.slots() {
                self.set(slot, state, now, &mut derive, &counts);
            }
        }
        self.cursor = Some(state.tasks.cursor());
        self.now = now;
        every
    }

    /// Derives the entry of `slot` again; returns the one it replaced.
    fn set(
        &mut self,
        slot: u32,
        state: &State,
        now: Ticks,
        derive: &mut impl FnMut(&Task, Ticks) -> (E, bool),
        counts: &impl Fn(&E) -> bool,
    ) -> Option<E> {
        let i = slot as usize;
        if i >= self.entries.len() {
            self.entries.resize_with(i + 1, || None);
        }
        let entry = state.tasks.at_slot(slot).map(|t| {
            let (e, volatile) = derive(t, now);
            if volatile {
                self.volatile.push(slot);
            }
            e
        });
        let counted = |e: &Option<E>| usize::from(e.as_ref().is_some_and(&counts));
        self.counted = self.counted + counted(&entry) - counted(&self.entries[i]);
        std::mem::replace(&mut self.entries[i], entry)
    }

    /// Slots derived again every frame, as of the last sync (an entry derived
    /// again since may no longer be volatile).
    pub fn volatile(&self) -> &[u32] {
        &self.volatile
    }

    /// Entries `counts` (see [`Self::sync`]).
    pub fn counted(&self) -> usize {
        self.counted
    }

    /// `(slot, entry)` of every held task, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &E)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(slot, e)| Some((u32::try_from(slot).ok()?, e.as_ref()?)))
    }

    /// The entry of `slot`.
    pub fn get(&self, slot: u32) -> Option<&E> {
        self.entries.get(slot as usize)?.as_ref()
    }
}

/// Input that changes tasks between frames, for the keepers' tests: a 3-CPU
/// workload of 400 tasks fed in 2 KiB chunks, once with every task alive at the end
/// and once completing with a cap of 150 tasks (so tasks are evicted and slots
/// reused); after each chunk a fifth of the tasks move to the other of two spawn
/// locations (the generator has one), long after their last event, the way the
/// state model changes a task, then `frame(state)` runs.
#[cfg(test)]
pub(crate) fn after_every_chunk(mut frame: impl FnMut(&State)) {
    use lucid_protocol::testdata::{Workload, generate};

    for (live, max_tasks) in [(true, 1 << 20), (false, 150)] {
        let g = generate(&Workload {
            cpus: 3,
            tasks: 400,
            polls_per_task: 4,
            wasm_instances: 2,
            live,
            ..Workload::default()
        });
        let config = crate::state::Config {
            max_tasks,
            ..crate::state::Config::default()
        };
        let mut session = crate::live::Session::new("test".into(), config);
        for (k, chunk) in g.wire().chunks(2048).enumerate() {
            session.feed(crate::time::HostNs(0), chunk);
            let tasks = &mut session.state.tasks;
            let moved: Vec<lucid_protocol::TaskId> = tasks
                .keys()
                .copied()
                .filter(|id| id.get() % 5 == k as u64 % 5)
                .collect();
            for id in moved {
                if let Some(t) = tasks.get_mut(&id) {
                    let to = if t.location.starts_with("kernel/src/a") {
                        "kernel/src/workload.rs:10:5"
                    } else {
                        "kernel/src/a.rs:1:1"
                    };
                    t.location = crate::state::Text::from(to);
                }
            }
            frame(&session.state);
        }
        assert!(live || session.state.tasks_evicted > 0, "tasks were evicted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each shape is told from the value's behaviour, and the line gives the value
    /// at later times; a value with a bend (here: a saturating start in the future)
    /// is volatile.
    #[test]
    fn a_line_follows_the_value_it_was_probed_from() {
        let now = Ticks(5_000);
        let fixed = Line::of(now, |_| 42);
        assert_eq!((fixed.shape, fixed.at(Ticks(9_999_999))), (Shape::Fixed, 42));
        let growing = Line::of(now, |t| t.0 - 1_000 + 7);
        assert_eq!(growing.shape, Shape::Growing);
        for later in [5_000, 5_001, 7_777, 1 << 40] {
            assert_eq!(growing.at(Ticks(later)), later - 1_000 + 7);
        }
        let bent = Line::of(now, |t| t.0.saturating_sub(5_000 + PROBE / 2));
        assert_eq!((bent.shape, bent.at(now)), (Shape::Volatile, 0));
    }
}
