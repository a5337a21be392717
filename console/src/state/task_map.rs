//! The tasks of the state model by id: a hash index for the per-event lookups (several
//! per event on the ingest path) and the ids in order for everything that lists
//! tasks (views, exporters, serialisation), which sees them in id order as from a
//! `BTreeMap`; and a journal of the slots changed, so that a view deriving something
//! from every task (a sort key, a per-location sum) revisits only the tasks that
//! changed since its last frame instead of all of them.

use std::collections::{BTreeSet, HashMap, btree_set};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use lucid_protocol::TaskId;
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::task::Task;

/// Tasks by id. The tasks themselves live in a [`Slab`] (the index moves 16 bytes
/// per task when it grows, and holds no slack of whole tasks).
pub struct TaskMap {
    by_id: HashMap<TaskId, u32, FxBuildHasher>,
    order: BTreeSet<TaskId>,
    slab: Slab,
    journal: Journal,
}

/// Journal entries kept at least; past `max(this, tasks held)` the journal drops
/// its older half, and a reader behind what is left rebuilds from every task (as
/// cheap as reading that many entries).
const JOURNAL_MIN: usize = 1 << 16;

/// Distinguishes task maps, so a cursor of one is never read against another (a
/// replay seek replaces the whole state).
static MAP_INSTANCES: AtomicU64 = AtomicU64::new(1);

/// The slots of the tasks got mutably, inserted or removed, in order (with repeats,
/// but not one right after itself).
#[derive(Debug)]
struct Journal {
    map: u64,
    /// Entries dropped before `slots[0]`.
    base: u64,
    slots: Vec<u32>,
    /// The latest cursor handed out (a reader may be right after any entry before).
    read: AtomicU64,
}

impl Journal {
    fn new() -> Self {
        Self {
            map: MAP_INSTANCES.fetch_add(1, Ordering::Relaxed),
            base: 0,
            slots: Vec::new(),
            read: AtomicU64::new(0),
        }
    }

    #[inline]
    fn note(&mut self, slot: u32, held: usize) {
        // A task's events often come one after another: once is enough, unless a
        // reader's cursor is between them.
        let end = self.base + self.slots.len() as u64;
        if self.slots.last() == Some(&slot) && self.read.load(Ordering::Relaxed) < end {
            return;
        }
        if self.slots.len() >= JOURNAL_MIN.max(held) {
            // The older half goes: a reader that keeps up (a view, every frame) is
            // never that far behind, and would otherwise derive everything again.
            let old = self.slots.len() / 2;
            self.slots.drain(..old);
            self.base += old as u64;
        }
        self.slots.push(slot);
    }
}

/// A place in a [`TaskMap`]'s change journal (see [`TaskMap::changed_since`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    map: u64,
    at: u64,
}

impl Default for TaskMap {
    fn default() -> Self {
        Self {
            by_id: HashMap::default(),
            order: BTreeSet::new(),
            slab: Slab::default(),
            journal: Journal::new(),
        }
    }
}

/// A copy is a map of its own, with a journal of its own.
impl Clone for TaskMap {
    fn clone(&self) -> Self {
        Self {
            by_id: self.by_id.clone(),
            order: self.order.clone(),
            slab: self.slab.clone(),
            journal: Journal::new(),
        }
    }
}

/// Tasks per chunk of the slab.
const CHUNK: usize = 64;

/// Task slots in fixed chunks: one allocation per [`CHUNK`] tasks instead of one per
/// task (spawning and dropping many short tasks is the ingest path's common case), and
/// no task ever moves. Freed slots are reused, newest first.
#[derive(Clone, Default)]
struct Slab {
    chunks: Vec<Box<[Option<Task>]>>,
    free: Vec<u32>,
    /// Slots handed out at least once.
    used: u32,
}

impl Slab {
    #[inline]
    fn get(&self, slot: u32) -> Option<&Task> {
        let s = slot as usize;
        self.chunks.get(s / CHUNK)?.get(s % CHUNK)?.as_ref()
    }

    #[inline]
    fn get_mut(&mut self, slot: u32) -> Option<&mut Task> {
        let s = slot as usize;
        self.chunks.get_mut(s / CHUNK)?.get_mut(s % CHUNK)?.as_mut()
    }

    fn insert(&mut self, task: Task) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let s = self.used;
                if s as usize / CHUNK >= self.chunks.len() {
                    self.chunks.push((0..CHUNK).map(|_| None).collect());
                }
                self.used += 1;
                s
            }
        };
        let s = slot as usize;
        self.chunks[s / CHUNK][s % CHUNK] = Some(task);
        slot
    }

    fn remove(&mut self, slot: u32) -> Option<Task> {
        let s = slot as usize;
        let t = self.chunks.get_mut(s / CHUNK)?.get_mut(s % CHUNK)?.take()?;
        self.free.push(slot);
        Some(t)
    }
}

impl TaskMap {
    /// Tasks held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The task `id`.
    #[must_use]
    #[inline]
    pub fn get(&self, id: &TaskId) -> Option<&Task> {
        self.slab.get(*self.by_id.get(id)?)
    }

    /// The task `id`, mutably.
    #[inline]
    pub fn get_mut(&mut self, id: &TaskId) -> Option<&mut Task> {
        let slot = *self.by_id.get(id)?;
        self.journal.note(slot, self.by_id.len());
        self.slab.get_mut(slot)
    }

    /// Whether `id` is held.
    #[must_use]
    #[inline]
    pub fn contains_key(&self, id: &TaskId) -> bool {
        self.by_id.contains_key(id)
    }

    /// The task `id`, made by `new` if absent.
    #[inline]
    pub fn get_or_insert_with(&mut self, id: TaskId, new: impl FnOnce() -> Task) -> &mut Task {
        let (order, slab) = (&mut self.order, &mut self.slab);
        let slot = *self.by_id.entry(id).or_insert_with(|| {
            order.insert(id);
            slab.insert(new())
        });
        self.journal.note(slot, self.by_id.len());
        self.slab.get_mut(slot).expect("an indexed slot holds its task")
    }

    /// Puts `task` in under `id`, returning the one it replaces.
    pub fn insert(&mut self, id: TaskId, task: Task) -> Option<Task> {
        let old = self.remove(&id);
        self.order.insert(id);
        let slot = self.slab.insert(task);
        self.by_id.insert(id, slot);
        self.journal.note(slot, self.by_id.len());
        old
    }

    /// Takes the task `id` out.
    pub fn remove(&mut self, id: &TaskId) -> Option<Task> {
        let slot = self.by_id.remove(id)?;
        self.order.remove(id);
        self.journal.note(slot, self.by_id.len());
        self.slab.remove(slot)
    }

    /// The end of the change journal now.
    #[must_use]
    pub fn cursor(&self) -> Cursor {
        let at = self.journal.base + self.journal.slots.len() as u64;
        self.journal.read.store(at, Ordering::Relaxed);
        Cursor {
            map: self.journal.map,
            at,
        }
    }

    /// The slots of the tasks that may have changed since `cursor` (got mutably,
    /// inserted or removed; with repeats), or `None` when the journal no longer
    /// reaches back that far or `cursor` is another map's: then any task may have
    /// changed.
    #[must_use]
    pub fn changed_since(&self, cursor: Cursor) -> Option<&[u32]> {
        let j = &self.journal;
        if cursor.map != j.map || cursor.at < j.base {
            return None;
        }
        j.slots.get(usize::try_from(cursor.at - j.base).ok()?..)
    }

    /// The task in `slot`, if one is there.
    #[must_use]
    #[inline]
    pub fn at_slot(&self, slot: u32) -> Option<&Task> {
        self.slab.get(slot)
    }

    /// The slot of task `id`.
    #[must_use]
    pub fn slot_of(&self, id: &TaskId) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// One past the highest slot ever used.
    #[must_use]
    pub fn slot_bound(&self) -> u32 {
        self.slab.used
    }

    /// (slot, task) of every held task, in slot order.
    pub fn slots(&self) -> impl Iterator<Item = (u32, &Task)> + '_ {
        self.slab
            .chunks
            .iter()
            .flat_map(|c| c.iter())
            .enumerate()
            .filter_map(|(i, t)| Some((u32::try_from(i).ok()?, t.as_ref()?)))
    }

    /// Ids, ascending.
    pub fn keys(&self) -> btree_set::Iter<'_, TaskId> {
        self.order.iter()
    }

    /// Tasks in id order.
    pub fn values(&self) -> Values<'_> {
        Values(self.iter())
    }

    /// The tasks in no particular order: a walk over the slab, without the id order's
    /// tree walk and a hash lookup per task (for a view that sorts or sums anyway).
    pub fn values_unordered(&self) -> impl Iterator<Item = &Task> + '_ {
        self.slab.chunks.iter().flat_map(|c| c.iter().flatten())
    }

    /// (id, task) in id order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            ids: self.order.iter(),
            map: self,
        }
    }
}

/// (id, task) of a [`TaskMap`] in id order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    ids: btree_set::Iter<'a, TaskId>,
    map: &'a TaskMap,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a TaskId, &'a Task);

    fn next(&mut self) -> Option<Self::Item> {
        let id = self.ids.next()?;
        Some((id, &self.map[id]))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ids.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let id = self.ids.next_back()?;
        Some((id, &self.map[id]))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The tasks of a [`TaskMap`] in id order.
#[derive(Debug, Clone)]
pub struct Values<'a>(Iter<'a>);

impl<'a> Iterator for Values<'a> {
    type Item = &'a Task;

    fn next(&mut self) -> Option<&'a Task> {
        self.0.next().map(|(_, t)| t)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<'a> DoubleEndedIterator for Values<'a> {
    fn next_back(&mut self) -> Option<&'a Task> {
        self.0.next_back().map(|(_, t)| t)
    }
}

impl ExactSizeIterator for Values<'_> {}

impl std::ops::Index<&TaskId> for TaskMap {
    type Output = Task;

    fn index(&self, id: &TaskId) -> &Task {
        self.get(id).expect("no task with this id")
    }
}

impl PartialEq for TaskMap {
    fn eq(&self, other: &Self) -> bool {
        self.order == other.order && self.values().eq(other.values())
    }
}

impl fmt::Debug for TaskMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// As a map in id order, like the `BTreeMap` it replaces (keyframes stay readable).
impl Serialize for TaskMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::task_columns::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for TaskMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::task_columns::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Ticks;

    #[test]
    fn the_unordered_walk_sees_every_held_task_once() {
        let mut m = TaskMap::default();
        for id in (1..=300u64).rev() {
            m.insert(TaskId(id), Task::new(TaskId(id), Ticks(id)));
        }
        for id in (1..=300u64).step_by(3) {
            m.remove(&TaskId(id));
        }
        // Freed slots are reused.
        m.insert(TaskId(1000), Task::new(TaskId(1000), Ticks(1)));
        let mut unordered: Vec<TaskId> = m.values_unordered().map(|t| t.id).collect();
        unordered.sort_unstable();
        let ordered: Vec<TaskId> = m.values().map(|t| t.id).collect();
        assert_eq!(unordered, ordered);
        assert_eq!(unordered.len(), m.len());
        let by_slot: Vec<TaskId> = m
            .slots()
            .map(|(slot, t)| {
                assert_eq!(m.slot_of(&t.id), Some(slot));
                t.id
            })
            .collect();
        assert_eq!(by_slot.len(), m.len());
    }

    /// Every way a task changes is in the journal, a cursor of another map or from
    /// before what the journal kept reads as "anything may have changed", and a
    /// copy has a journal of its own.
    #[test]
    fn the_journal_names_every_changed_slot() {
        let mut m = TaskMap::default();
        let start = m.cursor();
        assert_eq!(m.changed_since(start), Some(&[][..]));
        m.insert(TaskId(1), Task::new(TaskId(1), Ticks(1)));
        m.get_or_insert_with(TaskId(2), || Task::new(TaskId(2), Ticks(2)));
        let after_inserts = m.cursor();
        let (one, two) = (m.slot_of(&TaskId(1)).unwrap(), m.slot_of(&TaskId(2)).unwrap());
        assert_eq!(m.changed_since(start), Some(&[one, two][..]));
        m.get_mut(&TaskId(2)).unwrap().polls += 1;
        m.remove(&TaskId(1));
        assert_eq!(m.changed_since(after_inserts), Some(&[two, one][..]));
        // Reading is not changing.
        let _ = m.get(&TaskId(2));
        assert_eq!(m.changed_since(after_inserts).map(<[u32]>::len), Some(2));
        let copy = m.clone();
        assert_eq!(copy.changed_since(start), None, "another map's cursor");
        assert_eq!(copy.changed_since(copy.cursor()), Some(&[][..]));
        // A task changed again right after itself is named once.
        let here = m.cursor();
        m.get_mut(&TaskId(2));
        m.get_mut(&TaskId(2));
        assert_eq!(m.changed_since(here), Some(&[two][..]));
        // Past its bound the journal drops its older half: an old cursor sees
        // "anything", a recent one what changed since.
        m.insert(TaskId(3), Task::new(TaskId(3), Ticks(3)));
        let three = m.slot_of(&TaskId(3)).unwrap();
        let mut recent = m.cursor();
        for i in 0..=JOURNAL_MIN {
            if i == JOURNAL_MIN * 3 / 4 {
                recent = m.cursor();
            }
            m.get_mut(&TaskId(if i % 2 == 0 { 2 } else { 3 }));
        }
        assert_eq!(m.changed_since(start), None);
        let since = m.changed_since(recent).expect("a recent cursor reads on");
        assert_eq!(since.len(), JOURNAL_MIN - JOURNAL_MIN * 3 / 4 + 1);
        assert!(since.contains(&two) && since.contains(&three));
        assert!(m.changed_since(m.cursor()).is_some());
    }
}
