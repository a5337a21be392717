//! Counts for the exports' counter tracks: live tasks, and tasks waiting by the
//! kind of resource they wait on (frames, stages a task is parked in, are not
//! waits on a resource and are left out).

use std::collections::{BTreeMap, BTreeSet};

use lucid_protocol::{Message, ResourceId, ResourceKind, TaskId, WaitOp};

use crate::state::State;

/// The counter name of waits on a resource of unknown kind (created before the
/// recording began and not in a snapshot).
pub const UNKNOWN_KIND: &str = "unknown";

/// Open waits and live tasks, as the items go by.
#[derive(Debug, Default)]
pub struct Waiting {
    kinds: BTreeMap<ResourceId, ResourceKind>,
    open: BTreeMap<(TaskId, ResourceId), &'static str>,
    by_kind: BTreeMap<&'static str, i64>,
    live: BTreeSet<TaskId>,
}

/// A counter that changed: its name and new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// Tasks waiting on a resource of this kind.
    Waiting(&'static str, i64),
    /// Live tasks.
    Live(i64),
}

impl Waiting {
    /// Knows the kinds of the resources live in `state` (the window's start).
    #[must_use]
    pub fn from_state(state: &State) -> Self {
        Self {
            kinds: state.resources.live.iter().map(|(&id, r)| (id, r.kind)).collect(),
            ..Self::default()
        }
    }

    /// Takes one message; calls `changed` with each counter it changed.
    pub fn observe(&mut self, m: &Message<'_>, mut changed: impl FnMut(Changed)) {
        match *m {
            Message::ResourceCreated(r) => {
                self.kinds.insert(r.id, r.kind);
            }
            Message::ResourceDropped(r) => {
                self.kinds.remove(&r.id);
            }
            Message::WaitBegin(w) if w.op != WaitOp::Inside => {
                let kind = self.kinds.get(&w.resource).map_or(UNKNOWN_KIND, |k| k.name());
                if self.open.insert((w.task, w.resource), kind).is_none() {
                    changed(self.add(kind, 1));
                }
            }
            Message::WaitEnd(w) => {
                if let Some(kind) = self.open.remove(&(w.task, w.resource)) {
                    changed(self.add(kind, -1));
                }
            }
            Message::TaskSpawned(s) if self.live.insert(s.task) => {
                changed(Changed::Live(self.live.len() as i64));
            }
            Message::TaskCompleted { task, .. } | Message::TaskDropped { task } => {
                // A task's end ends its waits (the stream may not carry their ends).
                let ended: Vec<_> = self
                    .open
                    .range((task, ResourceId(0))..)
                    .take_while(|((t, _), _)| *t == task)
                    .map(|(&k, &v)| (k, v))
                    .collect();
                for (key, kind) in ended {
                    self.open.remove(&key);
                    changed(self.add(kind, -1));
                }
                if self.live.remove(&task) {
                    changed(Changed::Live(self.live.len() as i64));
                }
            }
            _ => {}
        }
    }

    fn add(&mut self, kind: &'static str, delta: i64) -> Changed {
        let n = self.by_kind.entry(kind).or_default();
        *n += delta;
        Changed::Waiting(kind, *n)
    }

    /// The kind name of resource `id` (`unknown` if not seen).
    #[must_use]
    pub fn kind(&self, id: ResourceId) -> &'static str {
        self.kinds.get(&id).map_or(UNKNOWN_KIND, |k| k.name())
    }

    /// Whether `task` has an open wait on `resource`.
    #[must_use]
    pub fn is_open(&self, task: TaskId, resource: ResourceId) -> bool {
        self.open.contains_key(&(task, resource))
    }
}

#[cfg(test)]
mod tests {
    use lucid_protocol::{Location, ResourceCreated, TaskKind, TaskSpawned, WaitBegin, WaitEnd, WaitOutcome};

    use super::*;

    #[test]
    fn waits_count_by_kind_and_frames_and_repeats_do_not_count() {
        let mut w = Waiting::default();
        let at = Location {
            file: "w.rs",
            line: 1,
            column: 1,
        };
        let spawned = Message::TaskSpawned(TaskSpawned {
            task: TaskId(5),
            name: "t",
            kind: TaskKind::Kernel,
            location: at,
            parent: None,
        });
        let seen = |w: &mut Waiting, m: &Message<'_>| {
            let mut out = Vec::new();
            w.observe(m, |c| out.push(c));
            out
        };
        assert_eq!(seen(&mut w, &spawned), [Changed::Live(1)]);
        let created = |id, kind| {
            Message::ResourceCreated(ResourceCreated {
                id: ResourceId(id),
                kind,
                name: "",
                location: at,
                capacity: None,
            })
        };
        assert_eq!(seen(&mut w, &created(1, ResourceKind::Channel)), []);
        assert_eq!(seen(&mut w, &created(2, ResourceKind::Frame)), []);
        let begin = |resource, op| {
            Message::WaitBegin(WaitBegin {
                task: TaskId(5),
                resource: ResourceId(resource),
                op,
            })
        };
        assert_eq!(seen(&mut w, &begin(1, WaitOp::Recv)), [Changed::Waiting("chan", 1)]);
        assert_eq!(seen(&mut w, &begin(1, WaitOp::Recv)), [], "a snapshot's repeat");
        assert_eq!(seen(&mut w, &begin(2, WaitOp::Inside)), [], "a frame is no wait");
        assert_eq!(
            seen(&mut w, &begin(9, WaitOp::Recv)),
            [Changed::Waiting(UNKNOWN_KIND, 1)]
        );
        let end = Message::WaitEnd(WaitEnd {
            task: TaskId(5),
            resource: ResourceId(1),
            outcome: WaitOutcome::Ready,
        });
        assert_eq!(seen(&mut w, &end), [Changed::Waiting("chan", 0)]);
        assert_eq!(seen(&mut w, &end), []);
        assert!(w.is_open(TaskId(5), ResourceId(9)));
        let done = Message::TaskDropped { task: TaskId(5) };
        assert_eq!(
            seen(&mut w, &done),
            [Changed::Waiting(UNKNOWN_KIND, 0), Changed::Live(0)],
            "its end ended its waits"
        );
        assert!(!w.is_open(TaskId(5), ResourceId(9)));
    }
}
