//! Profiling samples as the views use them: per task, how often each code address
//! was the sampled pc; per CPU, the pcs sampled during its poll in progress, which a
//! long-poll warning keeps to say what the poll was doing. The state holds addresses
//! only: the views name them (kernel symbols from the ELF, guest code from
//! [`super::WasmCode`]).

use std::collections::BTreeMap;

use lucid_protocol::{Sample, SampleContext, TaskId};
use serde::{Deserialize, Serialize};

use super::State;

/// Distinct (task, pc) pairs held over all tasks; samples past it count in the
/// task's total only.
pub const MAX_SAMPLED_PCS: usize = 1 << 16;
/// Pcs a CPU keeps of its poll in progress.
pub const MAX_POLL_SAMPLES: usize = 256;
/// Distinct pcs a long-poll warning keeps (the most sampled).
pub const MAX_WARNING_PCS: usize = 8;

/// One task's samples.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSampled {
    /// Samples taken while it was polled.
    pub total: u64,
    /// Samples by pc (the interrupted instruction).
    pub pcs: BTreeMap<u64, u32>,
}

/// The samples of the current boot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sampled {
    /// Samples seen.
    pub total: u64,
    /// Samples by context, in [`SampleContext::ALL`]'s order.
    pub by_context: [u64; 4],
    /// Tasks with samples.
    pub tasks: BTreeMap<TaskId, TaskSampled>,
    /// (task, pc) pairs held.
    held: usize,
    /// Samples whose pc was not held because [`MAX_SAMPLED_PCS`] pairs were.
    pub pcs_dropped: u64,
}

impl Sampled {
    fn record(&mut self, s: &Sample<'_>) {
        self.total = self.total.saturating_add(1);
        let i = SampleContext::ALL.iter().position(|&c| c == s.context).unwrap_or(0);
        self.by_context[i] = self.by_context[i].saturating_add(1);
        let (SampleContext::Task, Some(task)) = (s.context, s.task) else {
            return;
        };
        let t = self.tasks.entry(task).or_default();
        t.total = t.total.saturating_add(1);
        if let Some(n) = t.pcs.get_mut(&s.pc) {
            *n = n.saturating_add(1);
        } else if self.held < MAX_SAMPLED_PCS {
            t.pcs.insert(s.pc, 1);
            self.held += 1;
        } else {
            self.pcs_dropped = self.pcs_dropped.saturating_add(1);
        }
    }

    /// Forgets every sample (a new boot's addresses mean other code).
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

/// The most sampled of `pcs` with their counts, most first, at most
/// [`MAX_WARNING_PCS`].
pub(super) fn hottest_pcs(pcs: &[u64]) -> Vec<(u64, u32)> {
    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
    for &pc in pcs {
        *counts.entry(pc).or_default() += 1;
    }
    let mut v: Vec<(u64, u32)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(MAX_WARNING_PCS);
    v
}

impl State {
    /// Takes one `Sample` of `cpu`.
    pub(super) fn sample(&mut self, cpu: u32, s: &Sample<'_>) {
        self.sampled.record(s);
        if let (SampleContext::Task, Some(task)) = (s.context, s.task)
            && let Some(c) = self.cpus.get_mut(&cpu)
            && c.polling.is_some_and(|(t, _)| t == task)
            && c.poll_samples.len() < MAX_POLL_SAMPLES
        {
            c.poll_samples.push(s.pc);
        }
    }
}
