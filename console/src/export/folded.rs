//! Folded stacks for inferno / flamegraph.pl: one line per
//! `cpu;task-kind;spawn-location;task-name` with the busy nanoseconds polling it.

use std::collections::BTreeMap;
use std::io::{self, Write};

use lucid_protocol::Item;

use crate::profile::{Polls, Tasks, executor_event};
use crate::state::State;
use crate::time::{Clock, Ticks};

/// Sums poll time per stack.
#[derive(Debug)]
pub struct Folded {
    tasks: Tasks,
    polls: Polls,
    stacks: BTreeMap<String, u64>,
}

/// A frame name without the separators of the format.
fn frame(s: &str) -> String {
    s.replace(';', ",").replace(['\n', '\r'], " ")
}

impl Folded {
    /// Starts from the state at the window's start (whose start is `from`, if any).
    #[must_use]
    pub fn new(state: &State, from: Option<u64>) -> Self {
        Self {
            tasks: Tasks::from_state(state),
            polls: Polls::from_state(state, from),
            stacks: BTreeMap::new(),
        }
    }

    /// Takes one item.
    pub fn observe(&mut self, item: &Item<'_>) {
        if let Item::Event { event, .. } = item {
            self.tasks.observe(&event.message);
        }
        let Some((cpu, ts, m)) = executor_event(item) else {
            return;
        };
        if let Some(s) = self.polls.observe(cpu, ts, m) {
            let t = self.tasks.get(s.task);
            let key = format!("cpu {cpu};{};{};{}", t.kind, frame(&t.location), frame(&t.name));
            *self.stacks.entry(key).or_default() += s.end - s.start;
        }
    }

    /// The stacks with their busy time in TSC ticks.
    #[must_use]
    pub fn stacks(&self) -> &BTreeMap<String, u64> {
        &self.stacks
    }

    /// Writes `stack busy_ns` lines, converting by `clock`.
    pub fn write(&self, mut out: impl Write, clock: Clock) -> io::Result<()> {
        for (stack, ticks) in &self.stacks {
            writeln!(out, "{stack} {}", clock.ns(Ticks(*ticks)))?;
        }
        out.flush()
    }
}

impl crate::window::Observer for Folded {
    fn observe(&mut self, item: &Item<'_>) {
        Folded::observe(self, item);
    }
}

/// Writes folded sample stacks (`root;frame;…;frame samples` lines).
pub fn write_folded_samples(mut out: impl Write, stacks: &BTreeMap<String, u64>) -> io::Result<()> {
    for (stack, n) in stacks {
        writeln!(out, "{stack} {n}")?;
    }
    out.flush()
}
